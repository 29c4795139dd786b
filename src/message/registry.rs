//! Message types by name (the seeds' `@message` registry): `defineMessage` and
//! [`register`] put a type here so later fields can name it (`array<Particle, 8>`).

use std::sync::{Arc, Mutex, OnceLock};

use super::MessageLayout;

/// Entries by name, in name order, found by binary search: the message types here, and the
/// kernel definitions (the kernel module's `register`). Registering is rare and lookups few,
/// and a `HashMap` type for each weighed more in the wasm.
pub(crate) struct Registry<T>(Vec<(String, Arc<T>)>);

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Registry<T> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(entry, _)| entry.as_str().cmp(name))
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<T>> {
        self.find(name).ok().map(|i| self.0[i].1.clone())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Registers `value` under `name`, replacing what was.
    pub(crate) fn insert(&mut self, name: String, value: Arc<T>) {
        match self.find(&name) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// The names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }
}

fn registry() -> &'static Mutex<Registry<MessageLayout>> {
    static REGISTRY: OnceLock<Mutex<Registry<MessageLayout>>> = OnceLock::new();
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
    registry().lock().unwrap_or_else(|p| p.into_inner()).get(name)
}
