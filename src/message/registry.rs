//! Message types by name (the seeds' `@message` registry): `defineMessage` and
//! [`register`] put a type here so later fields can name it (`array<Particle, 8>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::MessageLayout;

fn registry() -> &'static Mutex<HashMap<String, Arc<MessageLayout>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<MessageLayout>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers (or replaces) `layout` under its name and returns the shared copy.
pub fn register(layout: MessageLayout) -> Arc<MessageLayout> {
    let layout = Arc::new(layout);
    registry().lock().unwrap_or_else(|p| p.into_inner()).insert(layout.name().to_owned(), layout.clone());
    layout
}

/// The message type registered under `name`.
pub fn lookup(name: &str) -> Option<Arc<MessageLayout>> {
    registry().lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
}
