//! Helpers shared by test files (`mod common;`): native ones here, the browser's in [`web`].
//! Each file uses only some of them.
#![allow(dead_code)]

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::time::{Duration, Instant};

    use ringkernel_web::{BackendChoice, Runtime, RuntimeOptions};

    /// A runtime on `backend`; a GPU backend without an adapter is a failure that says what to
    /// install, never a skip.
    pub fn runtime_on(backend: BackendChoice) -> Runtime {
        pollster::block_on(Runtime::new(RuntimeOptions { backend, ..Default::default() })).unwrap_or_else(|e| {
            panic!("{backend:?}: {e} (GPU tests need a wgpu adapter; install mesa-vulkan-drivers for lavapipe)")
        })
    }

    /// Polls `done` until it holds. The bound only keeps a broken runtime from hanging the suite;
    /// it is generous so that a slow machine never fails here.
    #[track_caller]
    pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "waited a minute for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
