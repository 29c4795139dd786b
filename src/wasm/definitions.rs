//! `defineMessage` and `ringKernel`: message types and kernels defined from JavaScript, turned
//! into the core's [`MessageLayout`] and [`KernelDefinition`] and put in the registries
//! (the seeds' `@message` and `@ring_kernel`).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::errors::{range_error, type_error};
use super::host_handler::JsHostHandler;
use super::messages::{mistyped, shown};
use super::options::{own_entries, own_keys};
use crate::error::Quoted;
use crate::kernel::{self, KernelDefinition, StateElement, DEFAULT_WORKGROUP_SIZE};
use crate::message::{registry, FieldType, MessageLayout, MAX_NESTING};

/// A message type: `defineMessage("Particle", { position: "vec3<f32>", mass: "f32" })`.
/// Field types are WGSL spellings (`i32`, `vec2<u32>`, `array<f32, 16>`), other message types
/// (their description, or their name once defined: `"Particle"`, `"array<Particle, 8>"`).
/// Registers the type by name and returns the description `{ name, fields }` that
/// `ringKernel`, `launch` and other messages accept.
#[wasm_bindgen(js_name = defineMessage, skip_typescript)] // declared generic in TS_TYPES
pub fn define_message(
    // Taken as a value and checked here: wasm-bindgen's own string conversion of a number traps.
    name: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, FieldType>")] fields: JsValue,
) -> Result<JsValue, JsValue> {
    if name.as_string().is_none() {
        return Err(mistyped(format_args!("defineMessage's name must be a string"), &name));
    }
    let description = Object::new();
    Reflect::set(&description, &"name".into(), &name)?;
    // A copy, frozen with the description: the caller's object changed later (or reused for
    // another message) must not change the message it defined. Made from its entries, so an
    // own `__proto__` key (from `JSON.parse`) stays a field, as it is to `Object.entries`.
    // (Shallow: a nested description given inline is the caller's still.)
    if fields.is_object() {
        let copy = Object::from_entries(&own_entries(&fields)?.into())?;
        Reflect::set(&description, &"fields".into(), &Object::freeze(&copy))?;
    } else {
        Reflect::set(&description, &"fields".into(), &fields)?;
    }
    // Validate now so a bad type is reported where it was written.
    let layout = message_layout(&description.clone().into(), 0)?;
    registry::register(layout);
    Ok(Object::freeze(&description).into())
}

/// A description object, or the name of a defined message; `depth` counts the descriptions it
/// is nested in, so a deliberately deep one is refused instead of overflowing the stack.
fn message_layout(description: &JsValue, depth: u32) -> Result<MessageLayout, JsValue> {
    if let Some(name) = description.as_string() {
        return registry::lookup(&name)
            .map(|layout| (*layout).clone())
            .ok_or_else(|| type_error(format!("no message type named '{name}'; define it with defineMessage first")));
    }
    if !description.is_object() {
        return Err(mistyped(format_args!("a message type must be a defineMessage result"), description));
    }
    let name = Reflect::get(description, &"name".into())?
        .as_string()
        .ok_or_else(|| type_error("a message needs a string name".into()))?;
    if depth >= MAX_NESTING {
        return Err(type_error(format!(
            "message {name} nests messages more than {MAX_NESTING} deep; WGSL allows {MAX_NESTING}"
        )));
    }
    let fields = Reflect::get(description, &"fields".into())?;
    if !fields.is_object() {
        return Err(type_error(format!("message {name}: fields must be an object like {{ value: \"i32\" }}")));
    }
    let mut parsed = Vec::new();
    for entry in own_entries(&fields)?.iter() {
        let entry: Array = entry.unchecked_into();
        let field = entry.get(0).as_string().unwrap_or_default();
        let ty = entry.get(1);
        let ty = match ty.as_string() {
            Some(text) => FieldType::parse(&text).ok_or_else(|| {
                type_error(format!(
                    "message {name}: field '{field}' has unsupported type '{text}' (use i32, u32, f32, vecN<T> for N \
                     of 2 to 4, array<T, N> for N of 1 or more nested fewer than {MAX_NESTING} deep, or a defined \
                     message's name)"
                ))
            })?,
            None if ty.is_object() && Reflect::get(&ty, &"name".into())?.is_string() => {
                FieldType::message(&message_layout(&ty, depth + 1)?)
            }
            None => {
                return Err(type_error(format!(
                    "message {name}: field '{field}' needs a type: a name such as \"f32\" or \"array<f32, 4>\", or a \
                     message from defineMessage; got {}",
                    shown(&ty)
                )))
            }
        };
        parsed.push((field, ty));
    }
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut refs = Vec::with_capacity(parsed.len());
    for (n, t) in &parsed {
        refs.push((n.as_str(), t.clone()));
    }
    let layout = MessageLayout::new(&name, &refs).map_err(|e| type_error(format!("message {name}: {e}")))?;
    // Messages that nest a defined one by name resolve it when used: another layout under the
    // same name, defined or described inline, would change them silently.
    if registry::lookup(&name).is_some_and(|defined| *defined != layout) {
        return Err(type_error(format!(
            "message type '{name}' is already defined with other fields; give this one another name"
        )));
    }
    Ok(layout)
}

const DEFINITION_KEYS: &[&str] = &["id", "input", "output", "wgsl", "handler", "workgroupSize", "state", "replace"];

/// Reads a `ringKernel`-style definition object; `id` (from `launch(id, definition)`) wins over
/// the object's own.
pub(super) fn kernel_definition(definition: &JsValue, id: Option<String>) -> Result<KernelDefinition, JsValue> {
    if !definition.is_object() {
        return Err(mistyped(format_args!("a kernel definition must be an object"), definition));
    }
    let get = |key: &str| Reflect::get(definition, &key.into());
    let id = match id {
        Some(id) => id,
        None => get("id")?.as_string().unwrap_or_default(),
    };
    let quoted = Quoted(&id);
    for key in own_keys(definition)?.iter() {
        let key = key.as_string().unwrap_or_default();
        if !DEFINITION_KEYS.contains(&key.as_str()) {
            return Err(type_error(format!(
                "kernel {quoted}: unknown key {} (expected one of {})",
                Quoted(&key),
                crate::error::joined(DEFINITION_KEYS, ", ")
            )));
        }
    }
    replace(&id, &get("replace")?)?; // checked here, read by ringKernel (launch has nothing to replace)
    let (wgsl, handler) = (get("wgsl")?, get("handler")?);
    // A handler that is no function is what is wrong, whether or not there is WGSL.
    if !handler.is_undefined() && !handler.is_function() {
        return Err(mistyped(format_args!("kernel {quoted}: handler must be a function"), &handler));
    }
    let wgsl = match wgsl.as_string() {
        Some(text) => text,
        None if wgsl.is_undefined() && handler.is_function() => String::new(),
        None => {
            return Err(type_error(format!(
                "kernel {quoted}: wgsl must be a string (GPU backends run it); a kernel for the cpu backend alone may \
                 give only a handler function"
            )))
        }
    };
    let (input, output) = (message_layout(&get("input")?, 0)?, message_layout(&get("output")?, 0)?);
    let mut def = KernelDefinition::new(&id, input, output, &wgsl);
    def.workgroup_size = workgroup_size(&id, &get("workgroupSize")?)?;
    if let Some((element, length)) = state(&id, &get("state")?)? {
        def = def.with_state(element, length);
    }
    // The core's rules, reported here, where the definition was written.
    def.check_shape().map_err(|e| range_error(format!("kernel {quoted}: {e}")))?;
    if !handler.is_undefined() {
        let function: js_sys::Function = handler.unchecked_into();
        let scalar = def.state.map(|spec| spec.element.scalar());
        let host = JsHostHandler::new(function, def.input.clone(), def.output.clone(), scalar);
        def = def.with_host_handler(host);
    }
    Ok(def)
}

/// `workgroupSize`: a whole number (the core checks its range), or the default.
fn workgroup_size(id: &str, value: &JsValue) -> Result<u32, JsValue> {
    let quoted = Quoted(id);
    match value.as_f64() {
        None if value.is_undefined() => Ok(DEFAULT_WORKGROUP_SIZE),
        Some(n) if is_u32(n) => Ok(n as u32),
        Some(_) => Err(range_error(format!("kernel {quoted}: workgroupSize must be an integer from 1 to 256"))),
        None => Err(type_error(format!("kernel {quoted}: workgroupSize must be an integer from 1 to 256"))),
    }
}

/// `replace`: whether `ringKernel` may replace a kernel registered under the same id.
fn replace(id: &str, value: &JsValue) -> Result<bool, JsValue> {
    let quoted = Quoted(id);
    match value.as_bool() {
        None if value.is_undefined() => Ok(false),
        Some(replace) => Ok(replace),
        None => Err(mistyped(format_args!("kernel {quoted}: replace must be a boolean"), value)),
    }
}

/// `state: { length, type? }`, if given: its element type and length (the core checks the range).
fn state(id: &str, state: &JsValue) -> Result<Option<(StateElement, u32)>, JsValue> {
    let quoted = Quoted(id);
    if state.is_undefined() {
        return Ok(None);
    }
    let expected = format!(
        "kernel {quoted}: state must be {{ length: 1 to {}, type?: \"atomic<u32>\" | \"atomic<i32>\" | \"u32\" | \"i32\" \
         | \"f32\" }}",
        kernel::MAX_STATE_LEN);
    let bad = || type_error(expected.clone());
    if !state.is_object() {
        return Err(bad());
    }
    // Only its own two keys, as the definition's (a misspelt `typ` would go unread).
    let keys = own_keys(state)?;
    if keys.iter().any(|key| !matches!(key.as_string().as_deref(), Some("length" | "type"))) {
        return Err(bad());
    }
    let length = match Reflect::get(state, &"length".into())?.as_f64() {
        Some(n) if is_u32(n) => n,
        Some(_) => return Err(range_error(expected)), // a number, but no length
        None => return Err(bad()),
    };
    let given = Reflect::get(state, &"type".into())?;
    let element = match given.as_string() {
        None if given.is_undefined() => StateElement::AtomicU32,
        None => return Err(bad()),
        Some(text) => StateElement::parse(&text).ok_or_else(bad)?,
    };
    Ok(Some((element, length as u32)))
}

/// Whether a JS number is a whole number a `u32` holds.
fn is_u32(n: f64) -> bool {
    n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n)
}

/// Registers a kernel globally so `runtime.launch(id)` finds it (the seeds' `@ring_kernel`).
/// `wgsl` is the GPU handler: `fn handle(msg: In) -> Out`, or `fn handle(msg: In, out:
/// ptr<function, Out>) -> bool` to drop messages; with `state`, it may use the `state` array.
/// `handler` is the same in JavaScript for the `cpu` backend: `(msg, state) => answer`, `null`
/// to drop. An id that is already registered is a `TypeError` unless the definition says
/// `replace: true` (kernels already launched keep the definition they were launched with).
/// Returns the definition it was given, for `launch(otherId, definition)` and for typing.
#[wasm_bindgen(js_name = ringKernel, skip_typescript)] // declared generic in TS_TYPES
pub fn ring_kernel(
    #[wasm_bindgen(unchecked_param_type = "KernelDefinitionInput")] definition: JsValue,
) -> Result<JsValue, JsValue> {
    let def = kernel_definition(&definition, None)?;
    if def.id.is_empty() {
        return Err(type_error("ringKernel needs an id".into()));
    }
    if replace(&def.id, &Reflect::get(&definition, &"replace".into())?)? {
        kernel::register_or_replace(def);
        return Ok(definition);
    }
    // The core refuses only an id that is taken; its message names the Rust calls.
    let id = def.id.clone();
    if !kernel::register_new(def) {
        return Err(type_error(format!(
            "a kernel named {} is already registered; ringKernel({{ ..., replace: true }}) replaces it, and \
             launch(otherId, definition) runs a second kernel from the same definition",
            Quoted(&id)
        )));
    }
    Ok(definition)
}
