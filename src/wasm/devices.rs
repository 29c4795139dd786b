//! Several devices on `RingKernelRuntime`: `topology()`, `deviceCount`, `deviceOf`,
//! `selectDevice`, `migrate`, `destroyDevice(device)` (see [`crate::devices`]), `gpuDevice(device)`
//! for the application's own WebGPU work, and what happens
//! to them: `lastDeviceEvent` and `nextDeviceEvent`, which `deviceEvents()` (iteration.js) reads
//! (see [`crate::device_events`]). A device is a plain number in JavaScript: its place in the
//! runtime's list.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::abort::Abort;
use super::errors::{js_error, range_error, type_error};
use super::messages::shown;
use super::options::{parse_options, u32_argument, with_signal, NoOptions};
use super::runtime::JsRuntime;
use super::{kernel_id, promise, to_js};
use crate::devices::{DeviceId, DeviceRequirements};

/// A device id from JavaScript: a whole number from 0. Not a number is a `TypeError`, any other
/// number a `RangeError`, as one past the runtime's devices is (the core's), and as a launch's
/// `device` option is.
pub(super) fn device_id(value: &JsValue, argument: &str) -> Result<DeviceId, JsValue> {
    let refused = format!("{argument} must be a device id (a whole number from 0), got {}", shown(value));
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) => Ok(DeviceId(n as u32)),
        Some(_) => Err(range_error(refused)),
        None => Err(type_error(refused)),
    }
}

#[wasm_bindgen(js_class = RingKernelRuntime)]
impl JsRuntime {
    /// Every device: `{ devices: [{ id, adapter, limits, memoryBytes, kernels, messagesProcessed,
    /// queued, lost, losses, recoveries, ticks }] }`.
    #[wasm_bindgen(unchecked_return_type = "Topology")]
    pub fn topology(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.gpu_topology())
    }

    /// How many devices the runtime runs kernels on.
    #[wasm_bindgen(getter, js_name = deviceCount)]
    pub fn device_count(&self) -> usize {
        self.inner.device_count()
    }

    /// The device kernel `id` runs on.
    #[wasm_bindgen(js_name = deviceOf)]
    pub fn device_of(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<u32, JsValue> {
        let device = self.inner.device_of(&kernel_id(&id, "id")?).map_err(js_error)?;
        Ok(device.0)
    }

    /// The device a launch with these requirements (none without them) would get now (the
    /// runtime's `loadBalancing`); a `RangeError` when no device meets them.
    #[wasm_bindgen(js_name = selectDevice)]
    pub fn select_device(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "DeviceRequirements")] requirements: Option<JsValue>,
    ) -> Result<u32, JsValue> {
        let requirements: DeviceRequirements = parse_options(requirements, "requirements")?;
        Ok(self.inner.select_device(&requirements).map_err(js_error)?.0)
    }

    /// Moves kernel `id`, live, to `device`: it keeps its id, handles, connections, counters and
    /// state, and every message is answered exactly once and in order, `call`s in flight
    /// included; a kernel stranded on a lost device runs again there. Resolves with `{ kernelId,
    /// from, to, pauseMs, requeued }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<MigrationReport>")]
    pub fn migrate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] device: JsValue,
    ) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let id = kernel_id(&id, "id")?;
            let device = device_id(&device, "device")?;
            to_js(&rt.migrate(&id, device).await.map_err(js_error)?)
        })
    }

    /// Destroys a GPU device (`GPUDevice.destroy()`; the first GPU device without `device`), as a driver
    /// reset or a lost GPU would, to test how an application handles `DeviceLostError` and
    /// `recover()`. Only the kernels on that device fail.
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] device: Option<JsValue>,
    ) -> Result<(), JsValue> {
        match device.filter(|d| !d.is_undefined()) {
            Some(device) => self.inner.destroy_device_at(device_id(&device, "device")?),
            None => self.inner.destroy_device(),
        }
        .map_err(js_error)
    }

    /// The `GPUDevice` the runtime runs kernels on (its first device without `device`; `null`
    /// for a cpu device), for WebGPU work of the application's own beside them, such as
    /// drawing a copy of a kernel's state (`stateToGPU`). It is replaced when the device is
    /// recovered (`deviceEvents()` says when), and `dispose()` destroys it. An error of the
    /// application's work that no error scope catches counts as the device's own fault and
    /// fails its kernels until `recover()`. The runtime hears of those through an
    /// `uncapturederror` listener of its own, so `onuncapturederror` is the application's to
    /// set. Destroying it is `destroyDevice`.
    #[wasm_bindgen(js_name = gpuDevice, unchecked_return_type = "GPUDevice | null")]
    pub fn gpu_device(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] device: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let device = match device.filter(|d| !d.is_undefined()) {
            Some(device) => device_id(&device, "device")?,
            None => DeviceId(0),
        };
        let pair = self.inner.wgpu_device(device).map_err(js_error)?;
        Ok(pair.and_then(|(device, _)| device.as_webgpu().cloned()).map_or(JsValue::NULL, JsValue::from))
    }

    /// The number of the last device event so far (0 before the first).
    #[wasm_bindgen(getter, js_name = lastDeviceEvent)]
    pub fn last_device_event(&self) -> f64 {
        self.inner.last_device_event() as f64
    }

    /// Resolves with the first device event numbered after `after` as soon as there is one, or
    /// `null` once the runtime has stopped with none after it; `{ signal }` ends the wait.
    /// `for await (const event of runtime.deviceEvents())` reads them one after another.
    #[wasm_bindgen(js_name = nextDeviceEvent, unchecked_return_type = "Promise<DeviceEvent | null>")]
    pub fn next_device_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] after: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "{ signal?: AbortSignal | null | undefined }")] options: Option<
            JsValue,
        >,
    ) -> Promise {
        let read = u32_argument(Some(after), "nextDeviceEvent", "after")
            .and_then(|after| Ok((after, with_signal::<NoOptions>(options, "nextDeviceEvent options")?.1)));
        let (after, signal) = match read {
            Ok(read) => read,
            Err(error) => return Promise::reject(&error),
        };
        let rt = self.inner.clone();
        Abort::by(signal).promise(async move {
            match rt.next_device_event(after as u64).await {
                Some(event) => to_js(&event),
                None => Ok(JsValue::NULL),
            }
        })
    }
}
