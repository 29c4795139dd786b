//! The operations views on `RingKernelRuntime`: the GPU memory dashboard (`memory()`,
//! `memoryPressure`, memory alerts) and the degradation manager (`degradationLevel`,
//! `degradationStatus()`). Alerts are callbacks, not DOM events: they work the same on a page,
//! in a worker and in Node, and a callback that throws, or an `async` one that rejects, is
//! reported in the console without reaching the runtime.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::errors::js_error;
use super::messages::mistyped;
use super::runtime::JsRuntime;
use super::to_js;
use crate::memory::{MemoryAlertEvent, MemoryPressureAlert, MemoryWatchId};

/// A JavaScript function as an alert callback.
struct JsAlertCallback(Function);

// SAFETY: without the `atomics` target feature a wasm32 module has exactly one thread, so the
// JS function is never touched from another one (as for host handlers).
#[cfg(not(target_feature = "atomics"))]
unsafe impl Send for JsAlertCallback {}
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for JsAlertCallback {}

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// `callback(event)`, its throw or its promise's rejection shown in the console (bound with
    /// `catch` for its shim: see `abort::start_abort_wait`).
    #[wasm_bindgen(js_name = callAlert, catch)]
    fn call_alert(callback: &Function, event: &JsValue) -> Result<(), JsValue>;
}

impl JsAlertCallback {
    fn call(&self, event: &MemoryAlertEvent) {
        let Ok(event) = to_js(event) else { return };
        // `callAlert` catches what the callback throws itself.
        let _ = call_alert(&self.0, &event);
    }
}

#[wasm_bindgen(js_class = RingKernelRuntime)]
impl JsRuntime {
    /// Device bytes by kernel and by purpose, against the `memoryBudget` (see `MemoryReport`).
    #[wasm_bindgen(unchecked_return_type = "MemoryReport")]
    pub fn memory(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.memory_report())
    }

    /// Bytes held over `memoryBudget`, from 0 to 1; 0 without a budget.
    #[wasm_bindgen(getter, js_name = memoryPressure)]
    pub fn memory_pressure(&self) -> f64 {
        self.inner.memory_pressure()
    }

    /// Calls `callback(event)` once each time memory pressure crosses `threshold` (0 < t ≤ 1):
    /// `alert: "high"` on the way up, `"normal"` once it is back below `threshold - 0.05`.
    /// Returns the watch's id, for `removeMemoryAlert`. `dispose()` lets every callback go.
    #[wasm_bindgen(js_name = onMemoryAlert)]
    pub fn on_memory_alert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] threshold: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: MemoryAlertEvent) => void")] callback: JsValue,
    ) -> Result<f64, JsValue> {
        let Some(threshold) = threshold.as_f64() else {
            return Err(mistyped(format_args!("threshold must be a number"), &threshold));
        };
        let Some(function) = callback.dyn_ref::<Function>().cloned() else {
            return Err(mistyped(format_args!("callback must be a function"), &callback));
        };
        let callback = JsAlertCallback(function);
        let id = self.inner.gpu_memory_dashboard().on_alert(threshold, move |event| callback.call(event));
        id.map(|id| id.as_u64() as f64).map_err(js_error)
    }

    /// Stops the watch `id`; false when there was none.
    #[wasm_bindgen(js_name = removeMemoryAlert)]
    pub fn remove_memory_alert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<bool, JsValue> {
        let Some(id) = id.as_f64().filter(|id| id.fract() == 0.0 && *id >= 0.0) else {
            return Err(mistyped(format_args!("id must be a watch id from onMemoryAlert"), &id));
        };
        Ok(self.inner.gpu_memory_dashboard().remove_alert(MemoryWatchId::from_u64(id as u64)))
    }

    /// Sends `alert` ("high" or "normal") to every memory alert callback now, at the current
    /// pressure (the seed's `trigger_alert`).
    #[wasm_bindgen(js_name = triggerMemoryAlert)]
    pub fn trigger_memory_alert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "MemoryPressureAlert")] alert: JsValue,
    ) -> Result<(), JsValue> {
        let Some(alert) = alert.as_string().as_deref().and_then(MemoryPressureAlert::parse) else {
            return Err(mistyped(format_args!("alert must be \"high\" or \"normal\""), &alert));
        };
        self.inner.gpu_memory_dashboard().trigger_alert(alert).map_err(js_error)
    }

    /// The degradation level now: "normal", "light", "moderate", "severe" or "critical"
    /// (always "normal" without `degradation` in the options).
    #[wasm_bindgen(getter, js_name = degradationLevel, unchecked_return_type = "DegradationLevel")]
    pub fn degradation_level(&self) -> String {
        self.inner.degradation_level().as_str().to_owned()
    }

    /// The level, the signal that set it, and the signals.
    #[wasm_bindgen(js_name = degradationStatus, unchecked_return_type = "DegradationStatus")]
    pub fn degradation_status(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.degradation_status())
    }
}
