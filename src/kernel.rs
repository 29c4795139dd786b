//! Kernel definitions and the global registry (the seeds' `@ring_kernel` decorator registry).
//!
//! A definition is data: an id, input and output layouts, and the WGSL source of `handle`.
//! Built-ins from `shaders/kernels/` are registered before any user code runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::message::{FieldType, MessageLayout};

/// Default invocations per workgroup: 64 is a safe fit for every adapter's limits and a
/// multiple of common subgroup sizes (4 on SwiftShader, 32 on NVIDIA, 64 on AMD).
pub const DEFAULT_WORKGROUP_SIZE: u32 = 64;

/// Everything needed to launch a ring kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelDefinition {
    pub id: String,
    pub input: MessageLayout,
    pub output: MessageLayout,
    /// WGSL defining `fn handle(msg: <input>) -> <output>` plus any helpers it needs.
    pub wgsl: String,
    pub workgroup_size: u32,
}

impl KernelDefinition {
    pub fn new(id: &str, input: MessageLayout, output: MessageLayout, wgsl: &str) -> Self {
        KernelDefinition {
            id: id.to_owned(),
            input,
            output,
            wgsl: wgsl.to_owned(),
            workgroup_size: DEFAULT_WORKGROUP_SIZE,
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<KernelDefinition>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<KernelDefinition>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let map = builtins().into_iter().map(|def| (def.id.clone(), Arc::new(def))).collect();
        Mutex::new(map)
    })
}

/// Registers (or replaces) a definition under its id, for `Runtime::launch(id)` to find.
pub fn register(definition: KernelDefinition) {
    registry().lock().expect("kernel registry poisoned").insert(definition.id.clone(), Arc::new(definition));
}

/// Looks a definition up by id.
pub fn lookup(id: &str) -> Option<Arc<KernelDefinition>> {
    registry().lock().expect("kernel registry poisoned").get(id).cloned()
}

/// Ids of every registered definition, sorted.
pub fn registered_ids() -> Vec<String> {
    let mut ids: Vec<String> = registry().lock().expect("kernel registry poisoned").keys().cloned().collect();
    ids.sort();
    ids
}

fn layout(name: &str, fields: &[(&str, FieldType)]) -> MessageLayout {
    MessageLayout::new(name, fields).expect("built-in layouts are valid")
}

/// The `{ value: i32 }` request of the seeds' doubler.
pub fn doubler_request() -> MessageLayout {
    layout("Request", &[("value", FieldType::I32)])
}

/// The `{ result: i32 }` response of the seeds' doubler.
pub fn doubler_response() -> MessageLayout {
    layout("Response", &[("result", FieldType::I32)])
}

fn builtins() -> Vec<KernelDefinition> {
    let echo = layout("EchoMessage", &[("value", FieldType::I32)]);
    vec![
        KernelDefinition::new(
            "doubler",
            doubler_request(),
            doubler_response(),
            include_str!("../shaders/kernels/doubler.wgsl"),
        ),
        KernelDefinition::new("echo", echo.clone(), echo, include_str!("../shaders/kernels/echo.wgsl")),
    ]
}
