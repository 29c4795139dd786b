//! Option objects from JavaScript, read into a struct (the core's `RuntimeOptions` and
//! `LaunchOptions` with their nested ones, or one of the small ones here); a missing argument,
//! `undefined` and `null` mean defaults. Unknown keys are refused so a typo never silently does
//! nothing: the keys allowed are asked of the struct's own `Deserialize` (no list kept by hand).
//!
//! The fields are read as serde-wasm-bindgen read them for that derived `Deserialize`, to the
//! same values and refusing the same ones (a browser test compares the two on every field), by
//! [`ReadFields`] and the readers here: serde-wasm-bindgen's deserializer, instantiated for each
//! struct, cost the package several KB gzipped. Some are read stricter, within the range the
//! core holds them to, so the refusal is in JavaScript's terms: queue sizes, counts from 1
//! (`count`, `count_u32`), positive durations (`positive_millis`), fractions and hysteresis,
//! positive numbers, and a device list that is not empty (natively an empty list means the
//! default device). A refusal names the option by its path and the value as
//! JavaScript prints it (`launch options: queueSize must be a whole number from 1 to 4194304,
//! got -1`), not in serde's Rust terms (`invalid type: floating point \`-1.0\`, expected
//! usize`).

use js_sys::{Array, Number, Object, Reflect};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::time::Duration;

use crate::error::Quoted;

use super::abort::{as_signal, AbortSignal};
use super::errors::{js_error, range_error, type_error};
use super::messages::{js_string, mistyped, shown, state_values};
use crate::backend::BackendChoice;
use crate::circuit::CircuitBreakerConfig;
use crate::degradation::{DegradationOptions, MILLISECONDS};
use crate::devices::{DeviceId, DeviceRequirements, DeviceSpec, LoadBalancing, PowerPreference};
use crate::error::Error;
use crate::health::HealthThresholds;
use crate::lifecycle::KernelMode;
use crate::runtime::builder::RuntimeBuilder;
use crate::runtime::{LaunchOptions, RuntimeOptions, DEFAULT_TERMINATE_TIMEOUT, MAX_QUEUE_SIZE};
use crate::waiting::duration_from_ms;
use crate::watchdog::{WatchdogAction, WatchdogConfig};
use crate::{circuit, degradation};

/// `{ timeout }` in milliseconds: without one, the operation waits as long as it takes.
#[derive(serde::Deserialize, Default)]
#[cfg_attr(test, derive(Debug))]
#[serde(default, deny_unknown_fields)]
pub(super) struct TimeoutOptions {
    pub timeout: Option<f64>,
}

impl TimeoutOptions {
    /// The timeout as a `Duration`: `None` without one, or for `Infinity` (see [`millis`]); a
    /// `RangeError` for a negative number or NaN (`what` names the options in it).
    pub fn timeout(&self, what: &str) -> Result<Option<Duration>, JsValue> {
        millis(self.timeout, what, "timeout")
    }
}

/// Reads an optional `{ timeout }` argument (`what` names it in errors) as a `Duration`.
pub(super) fn timeout_option(options: Option<JsValue>, what: &str) -> Result<Option<Duration>, JsValue> {
    timeout_option_or(options, what, None)
}

/// [`timeout_option`] for a wait that has a `default` when no timeout is given (a handle's
/// `terminate`, `drain`): `Infinity` is still no timeout.
pub(super) fn timeout_option_or(
    options: Option<JsValue>,
    what: &str,
    default: Option<Duration>,
) -> Result<Option<Duration>, JsValue> {
    let given = match options.as_ref().and_then(only_a_timeout) {
        Some(ms) => Some(ms),
        None => parse_options::<TimeoutOptions>(options, what)?.timeout,
    };
    match given {
        Some(ms) => wait_millis(ms, what, "timeout"),
        None => Ok(default),
    }
}

/// The options of an operation that takes none but `{ signal }`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NoOptions {}

/// How long an operation that waits (a send, a receive, a call) may: `{ timeout, signal }`.
#[derive(Default)]
pub(super) struct Wait {
    pub timeout: Option<Duration>,
    /// Ends the wait when it aborts (see [`super::abort`]).
    pub signal: Option<AbortSignal>,
}

/// Reads an optional `{ timeout, signal }` argument (`what` names it in errors).
pub(super) fn wait_option(options: Option<JsValue>, what: &str) -> Result<Wait, JsValue> {
    if let Some(ms) = options.as_ref().and_then(only_a_timeout) {
        return Ok(Wait { timeout: millis(Some(ms), what, "timeout")?, signal: None });
    }
    let (options, signal) = with_signal::<TimeoutOptions>(options, what)?;
    Ok(Wait { timeout: options.timeout(what)?, signal })
}

/// [`parse_options`] for an operation that waits, whose options may also hold an `AbortSignal`
/// under `signal` (not a field of `T`: the signal is read apart, as only the web has one).
pub(super) fn with_signal<T>(value: Option<JsValue>, what: &str) -> Result<(T, Option<AbortSignal>), JsValue>
where
    T: ReadFields + Default + for<'de> Deserialize<'de>,
{
    let mut options = T::default();
    let signal = read_options(value, what, shape::<T>().1, true, &mut options)?;
    Ok((options, signal))
}

/// The `AbortSignal` under `signal` in the options object `value` (`what` names it in errors);
/// `undefined` and `null` are none, anything else that is not a signal is a `TypeError`.
pub(super) fn signal_of(value: &JsValue, what: &str) -> Result<Option<AbortSignal>, JsValue> {
    let signal = Reflect::get(value, &"signal".into())?;
    if signal.is_undefined() || signal.is_null() {
        return Ok(None);
    }
    let refusal = Refusal::mistyped("an AbortSignal", &signal).under("signal");
    as_signal(signal).map(Some).ok_or_else(|| refused(what, refusal))
}

/// The number in `{ timeout: n }`, an object with no other own key, read with no string made
/// on either side: the options of nearly every `send`, `receive` and `call`, which the general
/// reader took about 15 µs of a one-message round trip to check. Anything else is `None`, for
/// [`parse_options`] to read or refuse.
fn only_a_timeout(value: &JsValue) -> Option<f64> {
    if !value.is_object() {
        return None;
    }
    let keys = own_keys(value).ok()?;
    TIMEOUT_KEY.with(|timeout| {
        let timeout: &JsValue = timeout.as_ref();
        let only = keys.length() == 1 && keys.get(0) == *timeout;
        only.then(|| Reflect::get(value, timeout).ok()?.as_f64()).flatten()
    })
}

// Key listings that user code can make throw (a Proxy's `ownKeys` trap, a revoked Proxy; and
// getters, for entries), caught: an exception crossing into wasm would unwind past the Rust code
// reading the object, and out of the future of an operation reading its options there, which
// would then never settle.
#[wasm_bindgen]
extern "C" {
    /// `Object.keys(object)`, or what it threw.
    #[wasm_bindgen(js_namespace = Object, js_name = keys, catch)]
    pub(super) fn own_keys(object: &JsValue) -> Result<Array, JsValue>;
    /// `Object.entries(object)`, or what it threw.
    #[wasm_bindgen(js_namespace = Object, js_name = entries, catch)]
    pub(super) fn own_entries(object: &JsValue) -> Result<Array, JsValue>;
    /// `Object.assign(target, source)`, or what it threw.
    #[wasm_bindgen(js_namespace = Object, js_name = assign, catch)]
    fn assign(target: &Object, source: &JsValue) -> Result<Object, JsValue>;
}

// rustfmt drops the initializer of an extern static, which only wasm-bindgen's macro accepts.
#[rustfmt::skip]
#[wasm_bindgen]
extern "C" {
    /// `"timeout"`, made once in JavaScript for [`only_a_timeout`].
    #[wasm_bindgen(thread_local_v2, static_string)]
    static TIMEOUT_KEY: js_sys::JsString = "timeout";
}

/// `receiveBatch`'s `{ max, timeout, packed }`.
#[derive(serde::Deserialize, Default)]
#[cfg_attr(test, derive(Debug))]
#[serde(default, deny_unknown_fields)]
pub(super) struct ReceiveBatchOptions {
    /// The fewest answers it waits for, until the timeout (1 when not given).
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub timeout: Option<f64>,
    /// The answers packed in the output layout (a `Uint8Array`) instead of objects.
    pub packed: bool,
}

impl ReceiveBatchOptions {
    /// The timeout as a `Duration` (as [`TimeoutOptions::timeout`] reads it).
    pub fn timeout(&self) -> Result<Option<Duration>, JsValue> {
        millis(self.timeout, "receiveBatch options", "timeout")
    }
}

/// A wait's timeout, milliseconds from JavaScript under `key` of the options `what`, as a
/// `Duration` by the core's rule (`waiting::duration_from_ms`): `None` when not given, and for
/// `Infinity` or past 9e15, which wait as long as it takes; a refusal names both, as every
/// option error does.
fn millis(ms: Option<f64>, what: &str, key: &str) -> Result<Option<Duration>, JsValue> {
    Ok(ms.map(|ms| wait_millis(ms, what, key)).transpose()?.flatten())
}

/// [`millis`] for a number given: `None` is no timeout.
fn wait_millis(ms: f64, what: &str, key: &str) -> Result<Option<Duration>, JsValue> {
    duration_from_ms(ms, key).map_err(|error| match error {
        Error::OutOfRange(refusal) => range_error(format!("{what}: {refusal}")),
        other => js_error(other),
    })
}

/// `managedKernel`'s `{ queueSize, mode, terminateTimeout }`.
#[derive(serde::Deserialize, Default)]
#[cfg_attr(test, derive(Debug))]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ManagedKernelOptions {
    pub queue_size: Option<usize>,
    pub mode: KernelMode,
    /// Milliseconds the kernel gets to drain when the holder is done.
    pub terminate_timeout: Option<f64>,
}

impl ManagedKernelOptions {
    /// How long the kernel gets to drain when the holder is done (default five seconds; `None`,
    /// as long as it takes, for `Infinity`).
    pub fn terminate_timeout(&self) -> Result<Option<Duration>, JsValue> {
        match self.terminate_timeout {
            None => Ok(Some(DEFAULT_TERMINATE_TIMEOUT)),
            Some(ms) => wait_millis(ms, "managedKernel options", "terminateTimeout"),
        }
    }

    /// The launch options among these.
    pub fn launch(&self) -> LaunchOptions {
        LaunchOptions { queue_size: self.queue_size, mode: self.mode, ..LaunchOptions::default() }
    }
}

/// Parses an optional options object into `T` (see the module docs); `what` names it in errors.
pub(super) fn parse_options<T>(value: Option<JsValue>, what: &str) -> Result<T, JsValue>
where
    T: ReadFields + Default + for<'de> Deserialize<'de>,
{
    let mut options = T::default();
    read_options(value, what, shape::<T>().1, false, &mut options)?;
    Ok(options)
}

/// [`parse_options`] past the struct's type, so the wasm holds one copy of it; with `signal`,
/// the object may also hold an `AbortSignal` under `signal`, which it returns.
fn read_options(
    value: Option<JsValue>,
    what: &str,
    fields: &[&str],
    signal: bool,
    options: &mut dyn ReadFields,
) -> Result<Option<AbortSignal>, JsValue> {
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(None);
    };
    check_keys_and(&value, fields, signal.then_some("signal"), what)?;
    read_fields(&value, fields, options).map_err(|refusal| refused(what, refusal))?;
    if signal {
        return signal_of(&value, what);
    }
    Ok(None)
}

/// Reads each field in `fields` that the object `value` gives, in order, as serde-wasm-bindgen
/// visits them; the first field refused ends it. A key set to `undefined` is not given, as in a
/// WebIDL dictionary (`{ timeout: undefined }` is `{}`), whatever the option's type.
fn read_fields(value: &JsValue, fields: &[&str], options: &mut dyn ReadFields) -> Read<()> {
    for &field in fields {
        let found = Reflect::get(value, &JsValue::from_str(field)).map_err(|e| thrown(e).under(field))?;
        if !found.is_undefined() {
            options.read_field(field, &found).map_err(|refusal| refusal.under(field))?;
        }
    }
    Ok(())
}

/// The error for an options object (`what`) refused by a reader: a `RangeError` for a number
/// outside what its option allows, else a `TypeError`.
fn refused(what: &str, refusal: Refusal) -> JsValue {
    let message = format!("{what}: {} {}", refusal.path, refusal.text);
    match refusal.range {
        true => range_error(message),
        false => type_error(message),
    }
}

/// An optional whole-number argument, `name` of the call `what`: 0 when not given, else a whole
/// number from 0 (a `RangeError` for another number, a `TypeError` for anything else).
pub(super) fn u32_argument(value: Option<JsValue>, what: &str, name: &str) -> Result<u32, JsValue> {
    match value.filter(|v| !v.is_undefined()) {
        None => Ok(0),
        Some(value) => unsigned_u32(&value).map_err(|refusal| refused(what, refusal.under(name))),
    }
}

/// Refuses an options object with a key `known` does not list (or a BigInt where a number
/// belongs), naming it; `what` names the object.
pub(super) fn check_keys(value: &JsValue, known: &[&str], what: &str) -> Result<(), JsValue> {
    check_keys_and(value, known, None, what)
}

/// [`check_keys`] with `also` known too.
fn check_keys_and(value: &JsValue, known: &[&str], also: Option<&str>, what: &str) -> Result<(), JsValue> {
    if !value.is_object() {
        return Err(mistyped(format_args!("{what} must be an object"), value));
    }
    let keys =
        own_keys(value).map_err(|thrown| type_error(format!("{what} could not be read: {}", js_string(&thrown))))?;
    for js_key in keys.iter() {
        let key = js_key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) && also != Some(key.as_str()) {
            let also = also.map_or(String::new(), |also| format!(", {also}"));
            return Err(type_error(format!(
                "{what}: unknown option {} (expected one of {}{also})",
                Quoted(&key),
                crate::error::joined(known, ", ")
            )));
        }
        // serde-wasm-bindgen took a BigInt for a number, which these options are not.
        if Reflect::get(value, &js_key)?.is_bigint() {
            return Err(type_error(format!("{what}: option {} must be a number, got a BigInt", Quoted(&key))));
        }
    }
    Ok(())
}

/// What `RingKernelRuntime.create`'s option errors begin with.
pub(super) const CREATE_OPTIONS: &str = "RingKernelRuntime.create options";

/// `RingKernelRuntime.create`'s options: [`parse_options`], with the nested `circuitBreaker`,
/// `watchdog`, `health` and `degradation` objects held to their own keys too (serde would skip unknown ones silently).
pub(super) fn runtime_options(value: Option<JsValue>) -> Result<RuntimeOptions, JsValue> {
    let (value, preset) = without_preset(value)?;
    if let Some(options) = value.as_ref().filter(|v| v.is_object()) {
        // An unknown key is named beside every known one, `preset` included.
        check_keys_and(options, shape::<RuntimeOptions>().1, Some("preset"), CREATE_OPTIONS)?;
        let nested = [
            ("circuitBreaker", shape::<CircuitBreakerConfig>().1),
            ("watchdog", shape::<WatchdogConfig>().1),
            ("health", shape::<HealthThresholds>().1),
            ("degradation", shape::<DegradationOptions>().1),
        ];
        for (key, known) in nested {
            check_nested(options, key, known, CREATE_OPTIONS)?;
        }
        let devices = Reflect::get(options, &"devices".into())?;
        if let Some(devices) = devices.dyn_ref::<js_sys::Array>() {
            for (i, device) in devices.iter().enumerate() {
                check_keys(&device, shape::<DeviceSpec>().1, &format!("{CREATE_OPTIONS}.devices[{i}]"))?;
            }
        }
    }
    let Some(mut options) = preset else { return parse_options(value, CREATE_OPTIONS) };
    // The preset's options, with each key the object gives taking the given value: the object
    // is checked whole first (its errors as without a preset), then each of its own keys is
    // read again onto the preset's options. A nested object's keys are read onto the preset's
    // (see `onto`: `watchdog: { action }` keeps the preset's heartbeat); `null` turns an
    // optional one off.
    let Some(given) = value.filter(|v| v.is_object()) else { return Ok(options) };
    parse_options::<RuntimeOptions>(Some(given.clone()), CREATE_OPTIONS)?;
    for key in own_keys(&given)?.iter() {
        let key = key.as_string().unwrap_or_default();
        let value = Reflect::get(&given, &key.as_str().into())?;
        if value.is_undefined() {
            continue; // not given: the preset's stays (`null` turns an optional one off)
        }
        options.read_field(&key, &value).map_err(|refusal| refused(CREATE_OPTIONS, refusal.under(&key)))?;
    }
    Ok(options)
}

/// `launch`'s options: [`parse_options`], with the nested `requirements` held to its own keys,
/// and `maxBatch` to the range the core holds it to, from 1 to the kernel's input queue size
/// (`inputQueueSize`, else `queueSize`, else the runtime's `default_queue_size`), named in its
/// refusal.
pub(super) fn launch_options(value: Option<JsValue>, default_queue_size: usize) -> Result<LaunchOptions, JsValue> {
    const WHAT: &str = "launch options";
    if let Some(options) = value.as_ref().filter(|v| v.is_object()) {
        check_nested(options, "requirements", shape::<DeviceRequirements>().1, WHAT)?;
    }
    let mut launch = Launch { options: LaunchOptions::default(), default_queue_size };
    read_options(value, WHAT, shape::<LaunchOptions>().1, false, &mut launch)?;
    Ok(launch.options)
}

/// `LaunchOptions` as `launch` reads them: `maxBatch` against the input queue size, which the
/// fields before it (read first, in the struct's order) and the runtime's default give.
struct Launch {
    options: LaunchOptions,
    default_queue_size: usize,
}

impl ReadFields for Launch {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        let options = &mut self.options;
        if name != "maxBatch" || value.loose_eq(&JsValue::NULL) {
            return options.read_field(name, value);
        }
        let input_size = options.input_queue_size.or(options.queue_size).unwrap_or(self.default_queue_size);
        let batch = size(value).ok().filter(|n| (1..=input_size).contains(n)).ok_or_else(|| {
            Refusal::out_of_range(&format!("a whole number from 1 to {input_size} (the input queue size)"), value)
        });
        put(&mut options.max_batch, batch.map(Some))
    }
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
    if !Reflect::has(object, &"preset".into())? {
        return Ok((value, None));
    }
    let rest = assign(&Object::new(), object)?;
    Reflect::delete_property(&rest, &"preset".into())?;
    let name = Reflect::get(object, &"preset".into())?;
    if name.is_undefined() {
        return Ok((Some(rest.into()), None)); // not given, as every key set to `undefined`
    }
    let preset = name.as_string().as_deref().and_then(RuntimeBuilder::preset).ok_or_else(|| {
        mistyped(format_args!("RingKernelRuntime.create options: preset must be \"development\", \"production\" or \"highPerformance\""), &name)
    })?;
    Ok((Some(rest.into()), Some(preset.options().clone())))
}

/// A watchdog action from JavaScript: `"report"`, `"deactivate"` or `"recoverDevice"`.
pub(super) fn watchdog_action(value: JsValue) -> Result<WatchdogAction, JsValue> {
    variant(&value).map_err(|_| {
        mistyped(format_args!("the watchdog action must be \"report\", \"deactivate\" or \"recoverDevice\""), &value)
    })
}

/// A reader's result: the value, or why not.
type Read<T> = Result<T, Refusal>;

/// Why a reader refused a value: where it lies in the object read (`circuitBreaker.windowMs`,
/// `devices[1].index`; filled in on the way out), what follows that in the error (`must be a
/// boolean, got 1`), and whether it is a number outside what the option allows (a
/// `RangeError`) rather than a value of the wrong kind (a `TypeError`).
pub(super) struct Refusal {
    path: String,
    text: String,
    range: bool,
}

impl Refusal {
    /// `value` is not `expected` (a `TypeError`, or with `range` a `RangeError`).
    #[inline(never)] // one copy for every reader
    fn new(expected: &str, value: &JsValue, range: bool) -> Self {
        Refusal { path: String::new(), text: format!("must be {expected}, got {}", shown(value)), range }
    }

    /// A value of the wrong kind.
    fn mistyped(expected: &str, value: &JsValue) -> Self {
        Self::new(expected, value, false)
    }

    /// Not `expected`: a `RangeError` for a number (a BigInt too) outside it, else a
    /// `TypeError`.
    fn out_of_range(expected: &str, value: &JsValue) -> Self {
        Self::new(expected, value, value.as_f64().is_some() || value.is_bigint())
    }

    /// The same refusal one level up: of element `i` of an array.
    #[inline(never)] // one copy for every reader of arrays
    fn at(self, i: usize) -> Self {
        self.under(&format!("[{i}]"))
    }

    /// The same refusal one level up: of the option `field` (a key, or `[i]` for an element).
    #[inline(never)] // one copy for every level
    fn under(mut self, field: &str) -> Self {
        self.path = match (self.path.is_empty(), self.path.starts_with('[')) {
            (true, _) => field.to_owned(),
            (false, true) => format!("{field}{}", self.path),
            (false, false) => format!("{field}.{}", self.path),
        };
        self
    }
}

/// What the integer options must be (`usize` is `u32` on wasm32).
const U32_RANGE: &str = "a whole number from 0 to 4294967295";
const U64_RANGE: &str = "a whole number from 0 to 9007199254740991";
const BUDGET_RANGE: &str = "a whole number from 1 to 9007199254740991";
const QUEUE_SIZE_RANGE: &str = "a whole number from 1 to 4194304";
const COUNT_RANGE: &str = "a whole number from 1 to 4294967295";
const _: () = assert!(MAX_QUEUE_SIZE == 4_194_304, "QUEUE_SIZE_RANGE names MAX_QUEUE_SIZE");
const I32_RANGE: &str = "a whole number from -2147483648 to 2147483647";

/// An options struct whose fields [`parse_options`] reads one by one.
pub(super) trait ReadFields {
    /// Sets the field `name` (its serialized spelling, one `Deserialize` declares) from `value`,
    /// or says why not.
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()>;
}

/// A field `Deserialize` declares that [`ReadFields::read_field`] does not read: a field added
/// to a struct without its reader (the tests read every field).
#[inline(never)]
fn unread(name: &str) -> Read<()> {
    Err(Refusal { path: String::new(), text: format!("(option '{name}') has no reader"), range: false })
}

impl ReadFields for NoOptions {
    fn read_field(&mut self, name: &str, _: &JsValue) -> Read<()> {
        unread(name)
    }
}

impl ReadFields for TimeoutOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "timeout" => put(&mut self.timeout, option(value, number)),
            _ => unread(name),
        }
    }
}

impl ReadFields for ReceiveBatchOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "min" => put(&mut self.min, option(value, count)),
            "max" => put(&mut self.max, option(value, count)),
            "timeout" => put(&mut self.timeout, option(value, number)),
            "packed" => put(&mut self.packed, boolean(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for ManagedKernelOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "queueSize" => put(&mut self.queue_size, option(value, queue_size)),
            "mode" => put(&mut self.mode, variant(value)),
            "terminateTimeout" => put(&mut self.terminate_timeout, option(value, number)),
            _ => unread(name),
        }
    }
}

impl ReadFields for RuntimeOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "enableTelemetry" => put(&mut self.enable_telemetry, boolean(value)),
            "defaultQueueSize" => put(&mut self.default_queue_size, queue_size(value)),
            "backend" => put(&mut self.backend, variant::<BackendChoice>(value)),
            "autoRecover" => put(&mut self.auto_recover, boolean(value)),
            "deviceIndex" => put(&mut self.device_index, size(value)),
            "devices" => put(&mut self.devices, sequence(value, nested).and_then(some_devices)),
            "loadBalancing" => put(&mut self.load_balancing, variant::<LoadBalancing>(value)),
            "debug" => put(&mut self.debug, boolean(value)),
            "maxMessagesPerTick" => put(&mut self.max_messages_per_tick, option(value, count)),
            "tracing" => put(&mut self.tracing, boolean(value)),
            "health" => onto(&mut self.health, value),
            "circuitBreaker" => optional_onto(&mut self.circuit_breaker, value),
            "watchdog" => onto(&mut self.watchdog, value),
            "memoryBudget" => put(&mut self.memory_budget, option(value, budget_u64)),
            "degradation" => optional_onto(&mut self.degradation, value),
            _ => unread(name),
        }
    }
}

impl ReadFields for LaunchOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "queueSize" => put(&mut self.queue_size, option(value, queue_size)),
            "inputQueueSize" => put(&mut self.input_queue_size, option(value, queue_size)),
            "outputQueueSize" => put(&mut self.output_queue_size, option(value, queue_size)),
            "mode" => put(&mut self.mode, variant(value)),
            "maxBatch" => put(&mut self.max_batch, option(value, count)),
            "autoActivate" => put(&mut self.auto_activate, boolean(value)),
            "workgroupSize" => put(&mut self.block_size, option(value, count_u32)),
            "maxWorkgroups" => put(&mut self.grid_size, option(value, count_u32)),
            "sharedMemory" => put(&mut self.shared_memory, unsigned_u32(value)),
            "unfused" => put(&mut self.unfused, boolean(value)),
            "priority" => put(&mut self.priority, signed_i32(value)),
            // `deserialize_with` takes the value as it is: `null` is no number, not `None`.
            "latencyBudgetMs" => put(&mut self.latency_budget, positive_millis(value).map(Some)),
            "checkpointIntervalMs" => put(&mut self.checkpoint_interval, checkpoint_millis(value).map(Some)),
            "initialState" => put(&mut self.initial_state, option(value, state_array)),
            // `DeviceId` is a transparent `u32`.
            "device" => put(&mut self.device, option(value, unsigned_u32).map(|id| id.map(DeviceId))),
            "requirements" => put(&mut self.requirements, nested(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for DeviceSpec {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "backend" => put(&mut self.backend, variant::<BackendChoice>(value)),
            "index" => put(&mut self.index, size(value)),
            "powerPreference" => put(&mut self.power_preference, variant::<PowerPreference>(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for DeviceRequirements {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "backend" => put(&mut self.backend, option(value, variant::<BackendChoice>)),
            "minBufferBytes" => put(&mut self.min_buffer_bytes, option(value, unsigned_u64)),
            "minBindingBytes" => put(&mut self.min_binding_bytes, option(value, unsigned_u64)),
            _ => unread(name),
        }
    }
}

impl ReadFields for CircuitBreakerConfig {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "failureThreshold" => put(&mut self.failure_threshold, count_u32(value)),
            // A window of 0 ms would hold no failure: the circuit would never open.
            "windowMs" => put(&mut self.window, positive_millis(value)),
            "openMs" => put(&mut self.open_duration, circuit_millis(value)),
            "halfOpenProbes" => put(&mut self.half_open_probes, count_u32(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for WatchdogConfig {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "heartbeatTimeoutMs" => put(&mut self.heartbeat_timeout, positive_millis(value)),
            "action" => put(&mut self.action, variant(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for HealthThresholds {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "queueFill" => put(&mut self.queue_fill, fraction(value)),
            "errorRateDegraded" => put(&mut self.error_rate_degraded, fraction(value)),
            "errorRateUnhealthy" => put(&mut self.error_rate_unhealthy, fraction(value)),
            "memoryDegraded" => put(&mut self.memory_degraded, fraction(value)),
            "memoryUnhealthy" => put(&mut self.memory_unhealthy, fraction(value)),
            _ => unread(name),
        }
    }
}

impl ReadFields for DegradationOptions {
    fn read_field(&mut self, name: &str, value: &JsValue) -> Read<()> {
        match name {
            "queueFillThresholds" => put(&mut self.queue_fill_thresholds, four_numbers(value)),
            "latencyThresholds" => put(&mut self.latency_thresholds, four_numbers(value)),
            "memoryThresholds" => put(&mut self.memory_thresholds, four_numbers(value)),
            "hysteresis" => put(&mut self.hysteresis, hysteresis(value)),
            "cooldownMs" => put(&mut self.cooldown, degradation_millis(value)),
            "windowMs" => put(&mut self.window, positive_millis(value)),
            "defaultLatencyBudgetMs" => put(&mut self.default_latency_budget, positive_millis(value).map(Some)),
            "protectedPriority" => put(&mut self.protected_priority, signed_i32(value)),
            _ => unread(name),
        }
    }
}

/// Stores what a reader read in `slot`, or passes its error on: one copy of that for every
/// field type, rather than one per field.
#[inline(never)]
fn put<T>(slot: &mut T, read: Read<T>) -> Read<()> {
    *slot = read?;
    Ok(())
}

/// `Option<T>`: `null` and `undefined` are `None`.
fn option<T>(value: &JsValue, read: fn(&JsValue) -> Read<T>) -> Read<Option<T>> {
    match value.loose_eq(&JsValue::NULL) {
        true => Ok(None),
        false => read(value).map(Some),
    }
}

/// A nested options struct: an object whose fields are read as the top level's are.
#[inline(never)] // one copy for each struct, not one in every reader of its parent
fn nested<T: ReadFields + Default + for<'de> Deserialize<'de>>(value: &JsValue) -> Read<T> {
    let mut options = T::default();
    read_nested(value, shape::<T>().1, &mut options)?;
    Ok(options)
}

/// A nested options struct read onto `slot`: the keys given take their values, the others keep
/// the slot's (the defaults, or a preset's).
fn onto<T: ReadFields + for<'de> Deserialize<'de>>(slot: &mut T, value: &JsValue) -> Read<()> {
    read_nested(value, shape::<T>().1, slot)
}

/// [`onto`] for an optional one: `null` and `undefined` turn it off; an object is read onto it,
/// or onto the defaults when it was off.
fn optional_onto<T: ReadFields + Default + for<'de> Deserialize<'de>>(
    slot: &mut Option<T>,
    value: &JsValue,
) -> Read<()> {
    if value.loose_eq(&JsValue::NULL) {
        *slot = None;
        return Ok(());
    }
    onto(slot.get_or_insert_with(T::default), value)
}

/// [`nested`] past the struct's type.
#[inline(never)] // one copy for every nested struct
fn read_nested(value: &JsValue, fields: &[&str], options: &mut dyn ReadFields) -> Read<()> {
    if !value.is_object() {
        return Err(Refusal::mistyped("an object", value));
    }
    read_fields(value, fields, options)
}

/// `bool`: a boolean.
#[inline(never)] // one copy for every field that reads it
fn boolean(value: &JsValue) -> Read<bool> {
    value.as_bool().ok_or_else(|| Refusal::mistyped("a boolean", value))
}

/// Values for a state array (see [`state_values`]).
fn state_array(value: &JsValue) -> Read<crate::kernel::StateValues> {
    match state_values(value) {
        Ok(Some(values)) => Ok(values),
        Ok(None) => Err(Refusal::mistyped("a Uint32Array, Int32Array or Float32Array", value)),
        Err(what) => Err(Refusal { path: String::new(), text: format!("cannot be read: it is {what}"), range: false }),
    }
}

/// `f64`: any number.
#[inline(never)] // one copy for every field that reads it
fn number(value: &JsValue) -> Read<f64> {
    value.as_f64().ok_or_else(|| Refusal::mistyped("a number", value))
}

/// `usize`: read as a `u64` (a BigInt too), then narrowed.
#[inline(never)] // one copy for every field that reads it
fn size(value: &JsValue) -> Read<usize> {
    let range = || Refusal::out_of_range(U32_RANGE, value);
    usize::try_from(u64_of(value).ok_or_else(range)?).map_err(|_| range())
}

/// A count of at least one ([`size`] without 0): `receiveBatch`'s `max`, since at least one
/// answer comes and 0 could only be taken as 1, more than it asked for.
fn count(value: &JsValue) -> Read<usize> {
    size(value).ok().filter(|&n| n > 0).ok_or_else(|| Refusal::out_of_range(COUNT_RANGE, value))
}

/// A queue size: a whole number from 1 to [`MAX_QUEUE_SIZE`], the range the core holds it to,
/// so that a refusal names the range that applies (a number or a BigInt, as [`size`]).
#[inline(never)] // one copy for every field that reads it
fn queue_size(value: &JsValue) -> Read<usize> {
    let size = u64_of(value).and_then(|n| usize::try_from(n).ok());
    size.filter(|n| (1..=MAX_QUEUE_SIZE).contains(n)).ok_or_else(|| Refusal::out_of_range(QUEUE_SIZE_RANGE, value))
}

/// `u64`: a safe integer not below zero, or a BigInt within `u64`.
#[inline(never)] // one copy for every field that reads it
fn unsigned_u64(value: &JsValue) -> Read<u64> {
    u64_of(value).ok_or_else(|| Refusal::out_of_range(U64_RANGE, value))
}

/// A budget in bytes: [`unsigned_u64`] but for 0, under which pressure would read full with
/// nothing held.
fn budget_u64(value: &JsValue) -> Read<u64> {
    u64_of(value).filter(|&n| n > 0).ok_or_else(|| Refusal::out_of_range(BUDGET_RANGE, value))
}

/// [`size`] and [`unsigned_u64`] before narrowing: a safe integer not below zero, or a BigInt
/// within `u64`.
fn u64_of(value: &JsValue) -> Option<u64> {
    match value.is_bigint() {
        true => u64::try_from(value.clone()).ok(),
        false => safe_integer(value).and_then(|n| u64::try_from(n).ok()),
    }
}

/// `u32` from a number: a safe integer not below zero, within `u32`.
#[inline(never)] // one copy for every field that reads it
fn unsigned_u32(value: &JsValue) -> Read<u32> {
    safe_integer(value).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| Refusal::out_of_range(U32_RANGE, value))
}

/// `i32` from a number: a safe integer within `i32`.
#[inline(never)] // one copy for every field that reads it
fn signed_i32(value: &JsValue) -> Read<i32> {
    safe_integer(value).and_then(|n| i32::try_from(n).ok()).ok_or_else(|| Refusal::out_of_range(I32_RANGE, value))
}

/// A `u32` of at least 1 (a count that 0 would make meaningless).
fn count_u32(value: &JsValue) -> Read<u32> {
    unsigned_u32(value).ok().filter(|&n| n > 0).ok_or_else(|| Refusal::out_of_range(COUNT_RANGE, value))
}

fn safe_integer(value: &JsValue) -> Option<i64> {
    Number::is_safe_integer(value).then(|| value.unchecked_into_f64() as i64)
}

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// The iterator of an iterable that is not an array (`None`: not iterable), as
    /// `js_sys::try_iter` finds it, in one call into JavaScript.
    #[wasm_bindgen(js_name = iteratorOf, catch)]
    fn iterator_of(value: &JsValue) -> Result<Option<js_sys::Iterator>, JsValue>;
}

/// The elements of an array, or of another iterable, one by one as they are asked for (an
/// iterator's exception passed on as serde-wasm-bindgen passed it); `expected` names what was
/// wanted when `value` is neither.
#[inline(never)] // one copy for every sequence
fn elements<'a>(value: &'a JsValue, expected: &str) -> Read<Box<dyn Iterator<Item = Read<JsValue>> + 'a>> {
    Ok(match value.dyn_ref::<Array>() {
        Some(array) => Box::new(array.iter().map(Ok)),
        None if !value.is_object() => return Err(Refusal::mistyped(expected, value)),
        None => match iterator_of(value).map_err(thrown)? {
            Some(iter) => Box::new(iter.into_iter().map(|element| element.map_err(thrown))),
            None => return Err(Refusal::mistyped(expected, value)),
        },
    })
}

/// `Vec<T>`: every element of an array (or another iterable), each read by `read`.
fn sequence<T>(value: &JsValue, read: fn(&JsValue) -> Read<T>) -> Read<Vec<T>> {
    // Pushed, not collected: a `collect` into a `Result` is a copy of `Vec`'s `from_iter` and
    // `try_process` in the wasm for each `T`.
    let mut list = Vec::new();
    for (i, element) in elements(value, "an array")?.enumerate() {
        list.push(read(&element?).map_err(|refusal| refusal.at(i))?);
    }
    Ok(list)
}

/// `devices` as given: an empty list (which the core reads as "not given") is a `RangeError`.
fn some_devices(devices: Vec<DeviceSpec>) -> Read<Vec<DeviceSpec>> {
    match devices.is_empty() {
        true => Err(Refusal { path: String::new(), text: "must list at least one device, got []".into(), range: true }),
        false => Ok(devices),
    }
}

/// An exception thrown while reading (by an iterable's own iterator), passed on as its text.
fn thrown(error: JsValue) -> Refusal {
    Refusal { path: String::new(), text: format!("could not be read: {}", js_string(&error)), range: false }
}

/// `[f64; 4]`: an array (or another iterable) whose first four elements are numbers; more are
/// not looked at.
#[inline(never)] // one copy for every field that reads it
fn four_numbers(value: &JsValue) -> Read<[f64; 4]> {
    const EXPECTED: &str = "an array of 4 numbers";
    let mut elements = elements(value, EXPECTED)?;
    let mut numbers = [0.0; 4];
    for (i, slot) in numbers.iter_mut().enumerate() {
        match elements.next() {
            Some(element) => *slot = positive_number(&element?).map_err(|refusal| refusal.at(i))?,
            None => {
                let text = format!("must be {EXPECTED}, got {i} of them");
                return Err(Refusal { path: String::new(), text, range: false });
            }
        }
    }
    Ok(numbers)
}

/// A circuit breaker's or the watchdog's milliseconds (see `circuit::millis`).
#[inline(never)] // one copy for every field that reads it
fn circuit_millis(value: &JsValue) -> Read<Duration> {
    circuit::millis_within(number(value)?)
        .ok_or_else(|| Refusal::out_of_range("a number of milliseconds from 0 to 9e15", value))
}

/// Milliseconds more than 0 (and within what [`circuit_millis`] takes): a heartbeat, a window
/// or a latency budget of 0 could never be met or would hold nothing.
#[inline(never)] // one copy for every field that reads it
fn positive_millis(value: &JsValue) -> Read<Duration> {
    circuit_millis(value)
        .ok()
        .filter(|ms| !ms.is_zero())
        .ok_or_else(|| Refusal::out_of_range("a number of milliseconds more than 0, up to 9e15", value))
}

/// A checkpoint interval: milliseconds as [`circuit_millis`] takes them, or `Infinity` for never.
fn checkpoint_millis(value: &JsValue) -> Read<Duration> {
    match value.as_f64() {
        Some(f64::INFINITY) => Ok(Duration::MAX),
        _ => circuit_millis(value)
            .map_err(|_| Refusal::out_of_range("a number of milliseconds from 0 to 9e15, or Infinity", value)),
    }
}

/// `setHeartbeatTimeout`'s argument, read as `create`'s `watchdog.heartbeatTimeoutMs` is.
pub(super) fn heartbeat_timeout(ms: &JsValue) -> Result<Duration, JsValue> {
    positive_millis(ms).map_err(|refusal| refused("setHeartbeatTimeout", refusal.under("the heartbeat timeout")))
}

/// A number `allowed` takes, else a refusal saying it must be `expected`.
#[inline(never)] // one copy for every reader of a bounded number
fn number_where(value: &JsValue, allowed: fn(f64) -> bool, expected: &str) -> Read<f64> {
    let number = number(value)?;
    allowed(number).then_some(number).ok_or_else(|| Refusal::out_of_range(expected, value))
}

/// A health threshold: a fraction more than 0 (at 0 every kernel or runtime would meet it) and
/// at most 1.
fn fraction(value: &JsValue) -> Read<f64> {
    number_where(value, |n| n > 0.0 && n <= 1.0, "a number more than 0 and at most 1")
}

/// The degradation manager's hysteresis: a fraction from 0 up to, not including, 1.
fn hysteresis(value: &JsValue) -> Read<f64> {
    number_where(value, |n| (0.0..1.0).contains(&n), "a number from 0 up to, not including, 1")
}

/// A finite number more than 0 (a degradation threshold).
fn positive_number(value: &JsValue) -> Read<f64> {
    number_where(value, |n| n.is_finite() && n > 0.0, "a finite number more than 0")
}

/// The degradation manager's milliseconds (see `degradation::millis`).
#[inline(never)] // one copy for every field that reads it
fn degradation_millis(value: &JsValue) -> Read<Duration> {
    degradation::duration_from_millis(number(value)?)
        .ok_or_else(|| Refusal::out_of_range(&format!("a number of {MILLISECONDS}"), value))
}

/// A unit variant of `E`: its name as a string, or an object with that one key whose value is
/// `null` or `undefined`. Names and aliases are `E`'s derived ones; a refusal lists the names.
fn variant<E: for<'de> Deserialize<'de>>(value: &JsValue) -> Read<E> {
    let names = shape::<E>().1;
    let tag = variant_tag(value, names)?;
    E::deserialize(IntoDeserializer::<Unread>::into_deserializer(tag.as_str()))
        .map_err(|_| variant_refused(value, names))
}

/// [`variant`]'s tag, whatever the enum (`names` its variants'): refused when `value` is
/// neither a string nor an object with one key whose value is `null` or `undefined`.
#[inline(never)] // one copy for every enum
fn variant_tag(value: &JsValue, names: &[&str]) -> Read<String> {
    if let Some(tag) = value.as_string() {
        return Ok(tag);
    }
    if value.is_object() {
        let entries = own_entries(value).map_err(thrown)?;
        if entries.length() == 1 {
            let entry: Array = entries.get(0).unchecked_into();
            if entry.get(1).loose_eq(&JsValue::NULL) {
                return Ok(entry.get(0).as_string().unwrap_or_default());
            }
        }
    }
    Err(variant_refused(value, names))
}

/// The refusal of `value` for an enum option of variants `names`.
#[inline(never)] // one copy for every enum
fn variant_refused(value: &JsValue, names: &[&str]) -> Refusal {
    Refusal::mistyped(&one_of(names), value)
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`: what an enum option must be.
fn one_of(names: &[&str]) -> String {
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut quoted = Vec::with_capacity(names.len());
    for name in names {
        quoted.push(format!("{name:?}"));
    }
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, [first])) => format!("{first} or {last}"),
        _ => format!("one of {}", crate::error::joined(&quoted, ", ")),
    }
}

/// The name and field names (or variant names) `T`'s derived `Deserialize` asks for (in their
/// serialized spelling).
fn shape<T: for<'de> Deserialize<'de>>() -> (&'static str, &'static [&'static str]) {
    let mut names = Shape("", &[]);
    let _ = T::deserialize(&mut names);
    (names.0, names.1)
}

/// The error of [`variant`]'s and [`Shape`]'s deserializers, which their callers drop unread:
/// no message is formatted (serde's `de::value::Error` formats each into a `String`, its
/// expected variants with them).
#[derive(Debug)]
struct Unread;

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not read")
    }
}

impl std::error::Error for Unread {}

impl de::Error for Unread {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unread
    }
}

/// A deserializer that only records the name and the fields or variants a struct or enum asks
/// for, then gives up.
struct Shape(&'static str, &'static [&'static str]);

impl<'de> Deserializer<'de> for &mut Shape {
    type Error = Unread;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Unread)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self = Shape(name, fields);
        Err(Unread)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self = Shape(name, variants);
        Err(Unread)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    //! The readers against serde-wasm-bindgen itself, which they replace: for every field of every
    //! options struct and many kinds of value, the same options or a refusal; and the refusals'
    //! texts and classes.

    use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
    use serde::Deserialize;
    use wasm_bindgen::JsValue;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn object(entries: &[(&str, JsValue)]) -> JsValue {
        let object = Object::new();
        for (key, value) in entries {
            Reflect::set(&object, &(*key).into(), value).unwrap();
        }
        object.into()
    }

    fn numbers(values: &[f64]) -> JsValue {
        values.iter().map(|v| JsValue::from(*v)).collect::<Array>().into()
    }

    fn values() -> Vec<JsValue> {
        let mut values: Vec<JsValue> = [
            0.0,
            -0.0,
            1.0,
            1.5,
            -1.0,
            -1.5,
            7.0,
            0.25,
            2f64.powi(31),
            -(2f64.powi(31)) - 1.0,
            2f64.powi(32) - 1.0,
            2f64.powi(32),
            2f64.powi(40),
            2f64.powi(53),
            2f64.powi(53) + 2.0,
            9.0e15,
            1e21,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]
        .into_iter()
        .map(JsValue::from)
        .collect();
        for s in [
            "",
            "8",
            "persistent",
            "event-driven",
            "fast",
            "auto",
            "gl",
            "gles",
            "webgpu",
            "cpu",
            "report",
            "recoverDevice",
            "leastLoaded",
            "roundRobin",
            "low-power",
            "high-performance",
            "say \"hi\"\n",
        ] {
            values.push(s.into());
        }
        values.extend([
            JsValue::UNDEFINED,
            JsValue::NULL,
            true.into(),
            false.into(),
            JsValue::bigint_from_str("5"),
            object(&[]),
            object(&[("persistent", JsValue::NULL)]),
            object(&[("event-driven", JsValue::UNDEFINED)]),
            object(&[("persistent", 5.into())]),
            object(&[("fast", JsValue::NULL)]),
            object(&[("a", 1.into()), ("b", 2.into())]),
            object(&[("failureThreshold", 3.into()), ("windowMs", 10.into()), ("halfOpenProbes", 0.5.into())]),
            object(&[("heartbeatTimeoutMs", (-1).into()), ("action", "deactivate".into())]),
            object(&[("queueFill", 0.5.into()), ("memoryUnhealthy", "x".into())]),
            object(&[("queueFillThresholds", numbers(&[0.1, 0.2, 0.3, 0.4])), ("cooldownMs", 1e300.into())]),
            object(&[("latencyThresholds", numbers(&[1.0, 2.0])), ("protectedPriority", 3.into())]),
            object(&[("backend", "cpu".into()), ("index", 1.into()), ("powerPreference", "low-power".into())]),
            object(&[("backend", JsValue::NULL), ("minBufferBytes", 1024.into()), ("minBindingBytes", (-1).into())]),
            Array::of2(&object(&[("backend", "cpu".into())]), &object(&[("index", 1.5.into())])).into(),
            Array::of1(&object(&[("powerPreference", "fast".into())])).into(),
            Array::new().into(),
            Array::of1(&"persistent".into()).into(),
            numbers(&[1.0, 2.0, 3.0]),
            numbers(&[1.0, 2.0, 3.0, 4.0]),
            numbers(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            Array::of4(&1.into(), &"2".into(), &3.into(), &4.into()).into(),
            js_sys::Set::new(&numbers(&[1.0, 2.0, 3.0, 4.0])).into(),
            Uint8Array::new_with_length(2).into(),
            Uint8Array::new_with_length(4).into(),
            ArrayBuffer::new(2).into(),
        ]);
        values
    }

    /// Every field of `T` with every value, alone and all at once: the same result as serde's for
    /// the object without its keys set to `undefined`, which are not given (serde would read them
    /// as given, and refuse `undefined` for a field that is not an `Option`).
    fn same_as_serde<T>()
    where
        T: ReadFields + Default + for<'de> Deserialize<'de> + std::fmt::Debug,
    {
        // Queue sizes are read stricter than serde reads a `usize`: from 1 to MAX_QUEUE_SIZE,
        // which the core would refuse anyway (`queue_sizes_are_refused_outside_what_the_core_takes`).
        // So is a receive batch's `max`, from 1 (the core refuses 0).
        let stricter = ["queueSize", "inputQueueSize", "outputQueueSize", "defaultQueueSize", "max"];
        let fields: Vec<&str> = shape::<T>().1.iter().copied().filter(|field| !stricter.contains(field)).collect();
        let mut objects: Vec<JsValue> = Vec::new();
        for value in values() {
            objects.extend(fields.iter().map(|field| object(&[(field, value.clone())])));
            objects.push(object(&fields.iter().map(|field| (*field, value.clone())).collect::<Vec<_>>()));
        }
        for object in objects {
            let mut ours = T::default();
            let ours = read_fields(&object, shape::<T>().1, &mut ours).map(|()| ours).map_err(|_| ());
            // An empty device list, which serde takes as none given, is refused (`some_devices`).
            let devices = Reflect::get(&object, &"devices".into()).unwrap();
            if devices.dyn_ref::<Array>().is_some_and(|list| list.length() == 0) {
                assert!(ours.is_err(), "devices: [] is refused");
                continue;
            }
            let given = Object::assign(&Object::new(), object.unchecked_ref());
            for key in Object::keys(&given).iter() {
                if Reflect::get(&given, &key).unwrap().is_undefined() {
                    Reflect::delete_property(&given, &key).unwrap();
                }
            }
            let serde = serde_wasm_bindgen::from_value::<T>(given.into()).map_err(|_| ());
            // Options that could never work are refused here although serde takes them (a
            // heartbeat, window or budget of 0 ms, a memory budget of 0 bytes, health lines of
            // 0, counts of 0, infinite thresholds): the core refuses them too, though not in
            // JavaScript's terms.
            let narrower = [
                "memoryBudget",
                "maxMessagesPerTick",
                "maxBatch",
                "min",
                "max",
                "workgroupSize",
                "maxWorkgroups",
                "latencyBudgetMs",
                "defaultLatencyBudgetMs",
                "windowMs",
                "heartbeatTimeoutMs",
                "failureThreshold",
                "halfOpenProbes",
                "queueFill",
                "errorRateDegraded",
                "errorRateUnhealthy",
                "memoryDegraded",
                "memoryUnhealthy",
                "hysteresis",
                "queueFillThresholds",
                "latencyThresholds",
                "memoryThresholds",
            ];
            let keys = Object::keys(object.unchecked_ref::<Object>());
            if ours.is_err() && serde.is_ok() && keys.iter().any(|key| narrower.contains(&&*key.as_string().unwrap())) {
                continue;
            }
            // Compared as printed: a NaN threshold is the same option, though not `==`.
            assert_eq!(format!("{ours:?}"), format!("{serde:?}"), "{:?}", js_sys::JSON::stringify(&object));
        }
    }

    #[wasm_bindgen_test]
    fn queue_sizes_are_refused_outside_what_the_core_takes() {
        for value in values().into_iter().filter(|value| !value.is_bigint()) {
            let taken = value.as_f64().filter(|n| n.fract() == 0.0 && (1.0..=MAX_QUEUE_SIZE as f64).contains(n));
            let read = queue_size(&value).ok();
            assert_eq!(read.map(|n| n as f64), taken, "{value:?}");
        }
        assert_eq!(queue_size(&JsValue::from(1024)).ok(), Some(1024));
        assert_eq!(queue_size(&js_sys::BigInt::from(1024u32).into()).ok(), Some(1024));
    }

    /// A preset's nested options take the keys given and keep the rest: `watchdog: { action }`
    /// keeps the development preset's 5 s heartbeat; `null` turns an optional one off.
    #[wasm_bindgen_test]
    fn a_presets_nested_options_keep_what_is_not_given() {
        let read = |entries: &[(&str, JsValue)]| runtime_options(Some(object(entries))).expect("read");
        let development = read(&[("preset", "development".into())]);
        assert_eq!(development.watchdog.heartbeat_timeout, Duration::from_secs(5));
        let action =
            read(&[("preset", "development".into()), ("watchdog", object(&[("action", "deactivate".into())]))]);
        assert_eq!(action.watchdog.heartbeat_timeout, Duration::from_secs(5), "the preset's heartbeat stays");
        assert_eq!(action.watchdog.action, WatchdogAction::Deactivate);

        let production = read(&[("preset", "production".into())]);
        let given = read(&[
            ("preset", "production".into()),
            ("circuitBreaker", object(&[("failureThreshold", 9.into())])),
            ("degradation", object(&[("protectedPriority", 3.into())])),
            ("health", object(&[("queueFill", 0.5.into())])),
        ]);
        let (circuit, preset_circuit) = (given.circuit_breaker.unwrap(), production.circuit_breaker.unwrap());
        assert_eq!((circuit.failure_threshold, circuit.window), (9, preset_circuit.window));
        let degradation = given.degradation.unwrap();
        assert_eq!(degradation.protected_priority, 3);
        assert_eq!(degradation.cooldown, production.degradation.unwrap().cooldown);
        assert_eq!(
            (given.health.queue_fill, given.health.error_rate_degraded),
            (0.5, production.health.error_rate_degraded)
        );

        let off = read(&[("preset", "production".into()), ("degradation", JsValue::NULL)]);
        assert!(off.degradation.is_none(), "null turns the preset's degradation manager off");
        let kept = read(&[("preset", "production".into()), ("degradation", JsValue::UNDEFINED)]);
        assert!(kept.degradation.is_some(), "undefined is not given: the preset's stays");
        // A key set to `undefined` is not given, at the top and nested, with a preset or without,
        // whatever its type (a boolean here, a number nested).
        let unset = |preset: &[(&str, JsValue)]| {
            let mut entries = preset.to_vec();
            entries.push(("enableTelemetry", JsValue::UNDEFINED));
            let watchdog = object(&[("heartbeatTimeoutMs", JsValue::UNDEFINED), ("action", "report".into())]);
            entries.push(("watchdog", watchdog));
            runtime_options(Some(object(&entries))).expect("undefined is not given")
        };
        let plain = unset(&[("preset", JsValue::UNDEFINED)]);
        assert_eq!(plain.enable_telemetry, RuntimeOptions::default().enable_telemetry);
        assert_eq!(plain.watchdog.heartbeat_timeout, WatchdogConfig::default().heartbeat_timeout);
        let with_preset = unset(&[("preset", "development".into())]);
        assert_eq!(with_preset.watchdog.heartbeat_timeout, Duration::from_secs(5), "the preset's heartbeat stays");
        let launch = launch_options(
            Some(object(&[("queueSize", JsValue::UNDEFINED), ("autoActivate", JsValue::UNDEFINED)])),
            1024,
        );
        assert_eq!(launch.expect("undefined is not given").auto_activate, LaunchOptions::default().auto_activate);
        // A nested object for an option the preset leaves off starts from its defaults.
        let on =
            read(&[("preset", "development".into()), ("circuitBreaker", object(&[("failureThreshold", 2.into())]))]);
        let circuit = on.circuit_breaker.unwrap();
        assert_eq!((circuit.failure_threshold, circuit.window), (2, CircuitBreakerConfig::default().window));
        // Given keys are still checked as without a preset.
        let bad = runtime_options(Some(object(&[
            ("preset", "development".into()),
            ("watchdog", object(&[("actoin", "report".into())])),
        ])));
        assert!(bad.is_err());
    }

    #[wasm_bindgen_test]
    fn options_read_as_serde_reads_them() {
        same_as_serde::<TimeoutOptions>();
        same_as_serde::<ReceiveBatchOptions>();
        same_as_serde::<ManagedKernelOptions>();
        same_as_serde::<RuntimeOptions>();
        same_as_serde::<LaunchOptions>();
        same_as_serde::<CircuitBreakerConfig>();
        same_as_serde::<WatchdogConfig>();
        same_as_serde::<HealthThresholds>();
        same_as_serde::<DegradationOptions>();
        same_as_serde::<DeviceSpec>();
        same_as_serde::<DeviceRequirements>();
    }

    /// Refusals name the option by its path and the value as JavaScript prints it, and are
    /// `RangeError`s for numbers outside what the option allows, `TypeError`s otherwise.
    #[wasm_bindgen_test]
    fn refusals_name_the_option_and_the_value_in_javascript_terms() {
        let error = |result: Result<(), JsValue>| {
            let error: js_sys::Error = result.expect_err("refused").into();
            format!("{}: {}", String::from(error.name()), String::from(error.message()))
        };
        let launch = |entries: &[(&str, JsValue)]| error(launch_options(Some(object(entries)), 1024).map(drop));
        let create = |entries: &[(&str, JsValue)]| error(runtime_options(Some(object(entries))).map(drop));
        let n = |v: f64| JsValue::from(v);
        let cases = [
            (launch(&[("queueSize", n(-1.0))]), "RangeError: launch options: queueSize must be a whole number from 1 to 4194304, got -1"),
            (launch(&[("inputQueueSize", n(0.0))]), "RangeError: launch options: inputQueueSize must be a whole number from 1 to 4194304, got 0"),
            (launch(&[("outputQueueSize", n(4194305.0))]), "RangeError: launch options: outputQueueSize must be a whole number from 1 to 4194304, got 4194305"),
            (launch(&[("queueSize", n(1e300))]), "RangeError: launch options: queueSize must be a whole number from 1 to 4194304, got 1e+300"),
            // maxBatch's top is the input queue size: the runtime's default (1024 here), or the launch's.
            (launch(&[("maxBatch", "7".into())]), "TypeError: launch options: maxBatch must be a whole number from 1 to 1024 (the input queue size), got \"7\""),
            (launch(&[("maxBatch", n(1025.0))]), "RangeError: launch options: maxBatch must be a whole number from 1 to 1024 (the input queue size), got 1025"),
            (launch(&[("queueSize", n(16.0)), ("maxBatch", n(0.0))]), "RangeError: launch options: maxBatch must be a whole number from 1 to 16 (the input queue size), got 0"),
            (launch(&[("maxBatch", n(9.0)), ("inputQueueSize", n(8.0)), ("queueSize", n(16.0))]), "RangeError: launch options: maxBatch must be a whole number from 1 to 8 (the input queue size), got 9"),
            (launch(&[("workgroupSize", n(0.5))]), "RangeError: launch options: workgroupSize must be a whole number from 1 to 4294967295, got 0.5"),
            (launch(&[("maxWorkgroups", n(-1.0))]), "RangeError: launch options: maxWorkgroups must be a whole number from 1 to 4294967295, got -1"),
            (create(&[("maxMessagesPerTick", n(1.5))]), "RangeError: RingKernelRuntime.create options: maxMessagesPerTick must be a whole number from 1 to 4294967295, got 1.5"),
            (launch(&[("priority", n(f64::INFINITY))]), "RangeError: launch options: priority must be a whole number from -2147483648 to 2147483647, got Infinity"),
            (launch(&[("queueSize", js_sys::Float64Array::new_with_length(2).into())]), "TypeError: launch options: queueSize must be a whole number from 1 to 4194304, got a Float64Array"),
            (launch(&[("autoActivate", n(1.0))]), "TypeError: launch options: autoActivate must be a boolean, got 1"),
            (launch(&[("mode", "fast".into())]), "TypeError: launch options: mode must be \"persistent\" or \"event-driven\", got \"fast\""),
            (launch(&[("requirements", object(&[("minBufferBytes", n(-1.0))]))]), "RangeError: launch options: requirements.minBufferBytes must be a whole number from 0 to 9007199254740991, got -1"),
            (create(&[("defaultQueueSize", JsValue::NULL)]), "TypeError: RingKernelRuntime.create options: defaultQueueSize must be a whole number from 1 to 4194304, got null"),
            (create(&[("defaultQueueSize", n(0.0))]), "RangeError: RingKernelRuntime.create options: defaultQueueSize must be a whole number from 1 to 4194304, got 0"),
            (create(&[("memoryBudget", Array::new().into())]), "TypeError: RingKernelRuntime.create options: memoryBudget must be a whole number from 1 to 9007199254740991, got an array"),
            (create(&[("memoryBudget", n(0.0))]), "RangeError: RingKernelRuntime.create options: memoryBudget must be a whole number from 1 to 9007199254740991, got 0"),
            (create(&[("circuitBreaker", object(&[("windowMs", n(-1.0))]))]), "RangeError: RingKernelRuntime.create options: circuitBreaker.windowMs must be a number of milliseconds more than 0, up to 9e15, got -1"),
            (create(&[("circuitBreaker", object(&[("openMs", n(-1.0))]))]), "RangeError: RingKernelRuntime.create options: circuitBreaker.openMs must be a number of milliseconds from 0 to 9e15, got -1"),
            (create(&[("circuitBreaker", object(&[("failureThreshold", n(0.0))]))]), "RangeError: RingKernelRuntime.create options: circuitBreaker.failureThreshold must be a whole number from 1 to 4294967295, got 0"),
            (create(&[("watchdog", object(&[("heartbeatTimeoutMs", "5".into())]))]), "TypeError: RingKernelRuntime.create options: watchdog.heartbeatTimeoutMs must be a number of milliseconds more than 0, up to 9e15, got \"5\""),
            (create(&[("watchdog", object(&[("heartbeatTimeoutMs", n(0.0))]))]), "RangeError: RingKernelRuntime.create options: watchdog.heartbeatTimeoutMs must be a number of milliseconds more than 0, up to 9e15, got 0"),
            (create(&[("health", object(&[("queueFill", n(0.0))]))]), "RangeError: RingKernelRuntime.create options: health.queueFill must be a number more than 0 and at most 1, got 0"),
            (create(&[("health", object(&[("memoryDegraded", n(f64::INFINITY))]))]), "RangeError: RingKernelRuntime.create options: health.memoryDegraded must be a number more than 0 and at most 1, got Infinity"),
            (create(&[("degradation", object(&[("hysteresis", n(1e300))]))]), "RangeError: RingKernelRuntime.create options: degradation.hysteresis must be a number from 0 up to, not including, 1, got 1e+300"),
            (create(&[("degradation", object(&[("latencyThresholds", numbers(&[1.0, 2.0, f64::INFINITY, 4.0]))]))]), "RangeError: RingKernelRuntime.create options: degradation.latencyThresholds[2] must be a finite number more than 0, got Infinity"),
            (launch(&[("latencyBudgetMs", n(0.0))]), "RangeError: launch options: latencyBudgetMs must be a number of milliseconds more than 0, up to 9e15, got 0"),
            (create(&[("health", n(0.5))]), "TypeError: RingKernelRuntime.create options.health must be an object, got 0.5"),
            (create(&[("devices", Array::of2(&object(&[]), &object(&[("index", n(1.5))])).into())]), "RangeError: RingKernelRuntime.create options: devices[1].index must be a whole number from 0 to 4294967295, got 1.5"),
            (create(&[("devices", n(2.0))]), "TypeError: RingKernelRuntime.create options: devices must be an array, got 2"),
            (create(&[("devices", Array::new().into())]), "RangeError: RingKernelRuntime.create options: devices must list at least one device, got []"),
            (create(&[("degradation", object(&[("latencyThresholds", numbers(&[1.0, 2.0]))]))]), "TypeError: RingKernelRuntime.create options: degradation.latencyThresholds must be an array of 4 numbers, got 2 of them"),
            (create(&[("degradation", object(&[("memoryThresholds", Array::of4(&n(1.0), &"2".into(), &n(3.0), &n(4.0)).into())]))]), "TypeError: RingKernelRuntime.create options: degradation.memoryThresholds[1] must be a number, got \"2\""),
            (create(&[("degradation", object(&[("cooldownMs", n(-5.0))]))]), "RangeError: RingKernelRuntime.create options: degradation.cooldownMs must be a number of milliseconds, at least 0, got -5"),
            (create(&[("backend", "fast".into())]), "TypeError: RingKernelRuntime.create options: backend must be one of \"auto\", \"vulkan\", \"gl\", \"gles\", \"metal\", \"dx12\", \"webgpu\", \"cpu\", got \"fast\""),
            (create(&[("preset", "production".into()), ("enableTelemetry", "yes".into())]), "TypeError: RingKernelRuntime.create options: enableTelemetry must be a boolean, got \"yes\""),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    /// The core's checks of options against each other reject `create` under the options' name
    /// too, in the class of the core's error (`InvalidArgument` a `TypeError`, `OutOfRange` a
    /// `RangeError`).
    #[wasm_bindgen_test]
    async fn create_names_its_options_in_the_cores_refusals() {
        let rejected = |entries: &[(&str, JsValue)]| {
            let created =
                wasm_bindgen_futures::JsFuture::from(super::super::runtime::JsRuntime::create(Some(object(entries))));
            async move {
                let error: js_sys::Error = created.await.expect_err("refused").into();
                format!("{}: {}", String::from(error.name()), String::from(error.message()))
            }
        };
        let cpu = ("backend", JsValue::from("cpu"));
        let one_device = Array::of1(&object(&[])).into();
        let too_many: JsValue = (0..65).map(|_| object(&[])).collect::<Array>().into();
        assert_eq!(
            rejected(&[cpu.clone(), ("deviceIndex", 1.into()), ("devices", one_device)]).await,
            "TypeError: RingKernelRuntime.create options: deviceIndex picks the adapter of a runtime's one device; \
             with devices, each device's own index picks its adapter"
        );
        assert_eq!(
            rejected(&[cpu, ("devices", too_many)]).await,
            "RangeError: RingKernelRuntime.create options: devices lists 65 devices; a runtime runs at most 64 (each \
             has a tick loop of its own)"
        );
    }

    #[wasm_bindgen_test]
    fn watchdog_actions_read_as_serde_reads_them() {
        for value in values() {
            let ours = variant::<WatchdogAction>(&value).map_err(|_| ());
            let serde = serde_wasm_bindgen::from_value::<WatchdogAction>(value.clone()).map_err(|_| ());
            assert_eq!(ours, serde, "{value:?}");
        }
    }

    /// Iterables other than arrays are read through their iterators, one element at a time, as
    /// `js_sys::try_iter` found them: a `Symbol.iterator` that is no function, or gives no object
    /// with a `next` method, is not iterable; what its getter, it or the iterator throws is
    /// passed on as a refusal, a throwing `next` getter too (which js-sys read outside any
    /// `catch`: it threw through the wasm).
    #[wasm_bindgen_test]
    fn iterables_are_read_through_their_iterators() {
        let made = |body: &str| js_sys::Function::new_no_args(body).call0(&JsValue::NULL).unwrap();
        let read = |body: &str| -> std::result::Result<Vec<f64>, String> {
            let value = made(body);
            let elements = elements(&value, "an array").map_err(|refusal| refusal.text)?;
            elements.map(|element| element.map(|n| n.as_f64().unwrap()).map_err(|refusal| refusal.text)).collect()
        };
        assert_eq!(read("return new Set([1, 2])"), Ok(vec![1.0, 2.0]));
        let counter = "let i = 0; return { [Symbol.iterator]: () => ({ next: () => ({ done: i > 2, value: i++ }) }) }";
        assert_eq!(read(counter), Ok(vec![0.0, 1.0, 2.0]));
        for not_iterable in [
            "return {}",
            "return { [Symbol.iterator]: 1 }",
            "return { [Symbol.iterator]: () => 1 }",
            "return { [Symbol.iterator]: () => null }",
            "return { [Symbol.iterator]: () => ({ next: 1 }) }",
        ] {
            assert_eq!(read(not_iterable), Err("must be an array, got an object".into()), "{not_iterable}");
        }
        for (throws, said) in [
            ("return { get [Symbol.iterator]() { throw new Error('a') } }", "a"),
            ("return { [Symbol.iterator]() { throw new Error('b') } }", "b"),
            ("return { [Symbol.iterator]: () => ({ get next() { throw new Error('c') } }) }", "c"),
            ("return { [Symbol.iterator]: () => ({ next() { throw new Error('d') } }) }", "d"),
        ] {
            assert_eq!(read(throws), Err(format!("could not be read: Error: {said}")), "{throws}");
        }
    }
}
