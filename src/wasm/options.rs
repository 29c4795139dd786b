//! Option objects from JavaScript. Each deserializes with serde into a struct (the core's
//! `RuntimeOptions` and `LaunchOptions`, or one of the small ones here); a missing argument,
//! `undefined` and `null` mean defaults. Unknown keys are refused so a typo never silently does
//! nothing: serde-wasm-bindgen reads only the keys a struct declares, so the keys allowed are
//! asked of the struct's own `Deserialize` (no list kept by hand).

use js_sys::{Object, Reflect};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::forward_to_deserialize_any;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::time::Duration;

use super::errors::{js_error, range_error, type_error};
use super::messages::type_name;
use crate::circuit::CircuitBreakerConfig;
use crate::degradation::{DegradationOptions, MILLISECONDS};
use crate::devices::{DeviceRequirements, DeviceSpec};
use crate::health::HealthThresholds;
use crate::lifecycle::KernelMode;
use crate::runtime::builder::RuntimeBuilder;
use crate::runtime::{LaunchOptions, RuntimeOptions, DEFAULT_TERMINATE_TIMEOUT};
use crate::waiting::duration_from_ms;
use crate::watchdog::{WatchdogAction, WatchdogConfig};

/// `{ timeout }` in milliseconds: without one, the operation waits as long as it takes.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct TimeoutOptions {
    pub timeout: Option<f64>,
}

impl TimeoutOptions {
    /// The timeout as a `Duration` (`TypeError` for a negative or non-finite number).
    pub fn timeout(&self) -> Result<Option<Duration>, JsValue> {
        millis(self.timeout)
    }
}

/// Reads an optional `{ timeout }` argument (`what` names it in errors) as a `Duration`.
pub(super) fn timeout_option(options: Option<JsValue>, what: &str) -> Result<Option<Duration>, JsValue> {
    parse_options::<TimeoutOptions>(options, what)?.timeout()
}

/// `receiveBatch`'s `{ max, timeout, packed }`.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ReceiveBatchOptions {
    pub max: Option<usize>,
    pub timeout: Option<f64>,
    /// The answers packed in the output layout (a `Uint8Array`) instead of objects.
    pub packed: bool,
}

impl ReceiveBatchOptions {
    /// The timeout as a `Duration` (`TypeError` for a negative or non-finite number).
    pub fn timeout(&self) -> Result<Option<Duration>, JsValue> {
        millis(self.timeout)
    }
}

/// Milliseconds from JavaScript as a `Duration`, by the core's rule.
fn millis(ms: Option<f64>) -> Result<Option<Duration>, JsValue> {
    ms.map(duration_from_ms).transpose().map_err(js_error)
}

/// `managedKernel`'s `{ queueSize, mode, terminateTimeout }`.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ManagedKernelOptions {
    pub queue_size: Option<usize>,
    pub mode: KernelMode,
    /// Milliseconds the kernel gets to drain when the holder is done.
    pub terminate_timeout: Option<f64>,
}

impl ManagedKernelOptions {
    /// How long the kernel gets to drain when the holder is done (default five seconds).
    pub fn terminate_timeout(&self) -> Result<Duration, JsValue> {
        Ok(millis(self.terminate_timeout)?.unwrap_or(DEFAULT_TERMINATE_TIMEOUT))
    }

    /// The launch options among these.
    pub fn launch(&self) -> LaunchOptions {
        LaunchOptions { queue_size: self.queue_size, mode: self.mode, ..LaunchOptions::default() }
    }
}

/// Parses an optional options object into `T` (see the module docs); `what` names it in errors.
pub(super) fn parse_options<T>(value: Option<JsValue>, what: &str) -> Result<T, JsValue>
where
    T: for<'de> Deserialize<'de> + Default,
{
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    check_keys(&value, field_names::<T>(), what)?;
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        let message = format!("{what}: {e}");
        // serde names what it refused and what it wanted: a number (`floating point \`1.5\``)
        // where a number of narrower range belongs (`expected usize`) is a RangeError, any other
        // mismatch a TypeError; so is a duration the core refused as out of range.
        let given_number = message.contains("integer `") || message.contains("floating point `");
        let wanted_number = NUMBER_TYPES.iter().any(|ty| message.ends_with(&format!("expected {ty}")))
            || message.ends_with(&format!("expected {MILLISECONDS}"));
        match (given_number && wanted_number) || message.contains("out of range: ") {
            true => range_error(message),
            false => type_error(message),
        }
    })
}

/// Refuses an options object with a key `known` does not list (or a BigInt where a number
/// belongs), naming it; `what` names the object.
fn check_keys(value: &JsValue, known: &[&str], what: &str) -> Result<(), JsValue> {
    if !value.is_object() {
        return Err(type_error(format!("{what} must be an object, got {}", type_name(value))));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(type_error(format!("{what}: unknown option '{key}' (expected one of {})", known.join(", "))));
        }
        // serde-wasm-bindgen would take a BigInt for a number, which these options are not.
        if Reflect::get(value, &key.as_str().into())?.is_bigint() {
            return Err(type_error(format!("{what}: option '{key}' must be a number, got a BigInt")));
        }
    }
    Ok(())
}

/// `RingKernelRuntime.create`'s options: [`parse_options`], with the nested `circuitBreaker`,
/// `watchdog`, `health` and `degradation` objects held to their own keys too (serde would skip unknown ones silently).
pub(super) fn runtime_options(value: Option<JsValue>) -> Result<RuntimeOptions, JsValue> {
    const WHAT: &str = "RingKernelRuntime.create options";
    let (value, preset) = without_preset(value)?;
    if let Some(options) = value.as_ref().filter(|v| v.is_object()) {
        let nested = [
            ("circuitBreaker", field_names::<CircuitBreakerConfig>()),
            ("watchdog", field_names::<WatchdogConfig>()),
            ("health", field_names::<HealthThresholds>()),
            ("degradation", field_names::<DegradationOptions>()),
        ];
        for (key, known) in nested {
            check_nested(options, key, known, WHAT)?;
        }
        let devices = Reflect::get(options, &"devices".into())?;
        if let Some(devices) = devices.dyn_ref::<js_sys::Array>() {
            for (i, device) in devices.iter().enumerate() {
                check_keys(&device, field_names::<DeviceSpec>(), &format!("{WHAT}.devices[{i}]"))?;
            }
        }
    }
    let Some(mut options) = preset else { return parse_options(value, WHAT) };
    // The preset's options, with each key the object gives taking the given value.
    let Some(given) = value.filter(|v| v.is_object()) else { return Ok(options) };
    let keys = Object::keys(given.unchecked_ref::<Object>());
    let parsed: RuntimeOptions = parse_options(Some(given), WHAT)?;
    for key in keys.iter() {
        override_option(&mut options, &parsed, &key.as_string().unwrap_or_default());
    }
    Ok(options)
}

/// `launch`'s options: [`parse_options`], with the nested `requirements` held to its own keys.
pub(super) fn launch_options(value: Option<JsValue>) -> Result<LaunchOptions, JsValue> {
    const WHAT: &str = "launch options";
    if let Some(options) = value.as_ref().filter(|v| v.is_object()) {
        check_nested(options, "requirements", field_names::<DeviceRequirements>(), WHAT)?;
    }
    parse_options(value, WHAT)
}

/// Refuses unknown keys in the object at `options[key]`, if there is one.
fn check_nested(options: &JsValue, key: &str, known: &[&str], what: &str) -> Result<(), JsValue> {
    let inner = Reflect::get(options, &key.into())?;
    if inner.is_undefined() || inner.is_null() {
        return Ok(());
    }
    check_keys(&inner, known, &format!("{what}.{key}"))
}

/// The object without its `preset` key (a copy), and that preset's options.
fn without_preset(value: Option<JsValue>) -> Result<(Option<JsValue>, Option<RuntimeOptions>), JsValue> {
    let Some(object) = value.as_ref().filter(|v| v.is_object()) else { return Ok((value, None)) };
    let name = Reflect::get(object, &"preset".into())?;
    if name.is_undefined() && !Reflect::has(object, &"preset".into())? {
        return Ok((value, None));
    }
    let preset = name.as_string().as_deref().and_then(RuntimeBuilder::preset).ok_or_else(|| {
        type_error(format!(
            "RingKernelRuntime.create options: preset must be \"development\", \"production\" or \"highPerformance\", got {}",
            name.as_string().map_or_else(|| type_name(&name), |s| format!("\"{s}\""))
        ))
    })?;
    let rest = Object::assign(&Object::new(), object.unchecked_ref::<Object>());
    Reflect::delete_property(&rest, &"preset".into())?;
    Ok((Some(rest.into()), Some(preset.options().clone())))
}

/// Sets the option named `key` (as JavaScript spells it) of `options` to its value in `given`.
fn override_option(options: &mut RuntimeOptions, given: &RuntimeOptions, key: &str) {
    // Every field by name: a field added to RuntimeOptions does not compile without its key here.
    let RuntimeOptions {
        enable_telemetry,
        default_queue_size,
        backend,
        auto_recover,
        device_index,
        devices,
        load_balancing,
        debug,
        max_messages_per_tick,
        tracing,
        health,
        circuit_breaker,
        watchdog,
        memory_budget,
        degradation,
    } = given.clone();
    match key {
        "enableTelemetry" => options.enable_telemetry = enable_telemetry,
        "defaultQueueSize" => options.default_queue_size = default_queue_size,
        "backend" => options.backend = backend,
        "autoRecover" => options.auto_recover = auto_recover,
        "deviceIndex" => options.device_index = device_index,
        "devices" => options.devices = devices,
        "loadBalancing" => options.load_balancing = load_balancing,
        "debug" => options.debug = debug,
        "maxMessagesPerTick" => options.max_messages_per_tick = max_messages_per_tick,
        "tracing" => options.tracing = tracing,
        "health" => options.health = health,
        "circuitBreaker" => options.circuit_breaker = circuit_breaker,
        "watchdog" => options.watchdog = watchdog,
        "memoryBudget" => options.memory_budget = memory_budget,
        "degradation" => options.degradation = degradation,
        _ => {} // parse_options refused every other key
    }
}

/// A watchdog action from JavaScript: `"report"`, `"deactivate"` or `"recoverDevice"`.
pub(super) fn watchdog_action(value: JsValue) -> Result<WatchdogAction, JsValue> {
    serde_wasm_bindgen::from_value(value.clone()).map_err(|_| {
        type_error(format!(
            "the watchdog action must be \"report\", \"deactivate\" or \"recoverDevice\", got {}",
            value.as_string().map_or_else(|| type_name(&value), |s| format!("\"{s}\""))
        ))
    })
}

/// How serde names the numeric types of option fields in its errors.
const NUMBER_TYPES: [&str; 6] = ["usize", "u32", "u64", "i32", "f32", "f64"];

/// The field names `T`'s derived `Deserialize` asks for (in their serialized spelling).
fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut names = FieldNames(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

/// A deserializer that only records the fields a struct asks for, then gives up.
struct FieldNames(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only struct fields are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
