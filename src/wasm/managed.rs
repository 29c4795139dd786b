//! `managedKernel`: the seeds' `managed_kernel` for JavaScript, a kernel launched and activated
//! for a scope and terminated when the holder is done (`await using`).

use std::time::Duration;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::errors::{js_error, js_void};
use super::options::{parse_options, ManagedKernelOptions};
use super::runtime::{launch_definition, JsRuntime};
use super::{kernel_id, promise, started_promise};
use crate::KernelHandle;

/// A kernel that was launched and activated by `managedKernel` and is terminated when the
/// holder is done: `await using kernel = await managedKernel(runtime, "worker")`, or an
/// explicit `await kernel.terminate()` in a `finally`.
#[wasm_bindgen]
pub struct ManagedKernel {
    /// Its launch: once that kernel is removed, a kernel launched later under the id is
    /// another, which `terminate` never reaches.
    handle: KernelHandle,
    /// `None`: as long as it takes (`terminateTimeout: Infinity`).
    terminate_timeout: Option<Duration>,
}

#[wasm_bindgen]
impl ManagedKernel {
    /// The kernel's id, for `runtime.send(kernel.id, ...)`.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.handle.id().to_owned()
    }

    /// Terminates the kernel gracefully (also `[Symbol.asyncDispose]`). Does nothing if it is
    /// already terminated or removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn terminate(&self) -> Promise {
        let (handle, timeout) = (self.handle.clone(), self.terminate_timeout);
        promise(async move {
            match handle.live_id() {
                Ok(id) => js_void(handle.runtime().terminate_if_live(id, timeout).await),
                Err(_removed) => Ok(JsValue::UNDEFINED),
            }
        })
    }
}

/// The seeds' `managed_kernel`: launches and activates `id` (a registered kernel, or
/// `definition`) and resolves with a handle that terminates it on `await using` exit.
/// Options: `{ queueSize, mode, terminateTimeout }` (ms, default 5000; `Infinity`: no timeout).
#[wasm_bindgen(js_name = managedKernel, skip_typescript)] // declared generic in TS_TYPES
pub fn managed_kernel(
    runtime: &JsRuntime,
    id: JsValue,
    definition: Option<JsValue>,
    options: Option<JsValue>,
) -> Promise {
    let rt = runtime.inner.clone();
    // Started when called, as `launch` is: the id is `created` (reserved) before this returns.
    started_promise(Box::pin(async move {
        let id = kernel_id(&id, "id")?;
        let options: ManagedKernelOptions = parse_options(options, "managedKernel options")?;
        let terminate_timeout = options.terminate_timeout()?;
        let definition = launch_definition(&id, definition)?;
        let handle = rt.launch_and_activate(&id, definition, options.launch()).await.map_err(js_error)?;
        Ok(ManagedKernel { handle, terminate_timeout }.into())
    }))
}
