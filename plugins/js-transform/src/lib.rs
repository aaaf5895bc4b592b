//! Outrider's JavaScript transformer (`javascript`): the configured `code` defines
//! `function transform(input) { ... }`, called with the parsed input; its return value is
//! the output. `null` or `undefined` drops the input (a skipped delivery); with
//! **Split arrays** an array return value becomes one output per element.
//!
//! The script runs in the Boa engine compiled into this component, so the host's
//! sandbox limits apply to it like to any plugin call: a runaway loop is stopped by the
//! call deadline and an allocation bomb by the memory limit, failing that call only.
//! No loop-iteration limit is set inside the engine on purpose: the host's limits are the
//! guarantee, not the script engine's goodwill. The script has no I/O: no network, no
//! files, no clock (`Date.now()` is unavailable).

use std::rc::Rc;

use boa_engine::context::time::{Clock, JsInstant};
use boa_engine::{Context, Source};
use outrider_sdk::prelude::*;

struct JsTransform;

/// Nested JS calls allowed before a script gets a `RangeError` (deep recursion would
/// otherwise exhaust the component's native stack and trap).
const RECURSION_LIMIT: usize = 256;

const INSTRUCTIONS: &str = r#"`code` defines a `transform` function:

```js
function transform(input) {
  if (input.type !== "order.paid") return null;   // drop
  return { id: input.order.id, total: input.order.total / 100 };
}
```

- `input` is the event payload (parsed JSON); the return value must be JSON-serialisable.
- `null`/`undefined` drops the event; with **Split arrays** an array becomes one output per element.
- A thrown error fails the delivery with its message.
- The host's memory limit and call deadline apply: endless loops and runaway allocations are stopped."#;

impl Plugin for JsTransform {
    fn manifest() -> Manifest {
        Manifest::new("js-transform", env!("CARGO_PKG_VERSION"))
            .description("JavaScript code transformer, sandboxed in WebAssembly.")
            .prototype(
                Prototype::transformer("javascript")
                    .label("JavaScript code")
                    .description(
                        "Transforms the input with a JavaScript `transform(input)` function.",
                    )
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("code")
                            .label("Code")
                            .description("JavaScript defining function transform(input)")
                            .min_length(1)
                            .max_length(262_144)
                            .required(),
                    )
                    .config_field(
                        Field::checkbox("split_arrays")
                            .label("Split arrays")
                            .description("An array return value becomes one output per element")
                            .default_value(false),
                    ),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("maps an object", "javascript")
                .config(json!({"code": "function transform(e) { return {id: e.order.id, total: e.order.total / 100}; }"}))
                .input(json!({"order": {"id": 7, "total": 1999}}))
                .expect(vec![json!({"id": 7, "total": 19.99})]),
            TestCase::new("drops on null", "javascript")
                .config(json!({"code": "function transform(e) { return e.keep ? e : null; }"}))
                .input(json!({"keep": false}))
                .expect(vec![]),
            TestCase::new("splits arrays", "javascript")
                .config(json!({"code": "function transform(e) { return e.items.map(i => ({sku: i})); }", "split_arrays": true}))
                .input(json!({"items": ["A", "B"]}))
                .expect(vec![json!({"sku": "A"}), json!({"sku": "B"})]),
            TestCase::new("a thrown error fails the call", "javascript")
                .config(json!({"code": "function transform(e) { throw new Error('no order'); }"}))
                .input(json!({}))
                .expect_error(),
            TestCase::new("rejects code without transform()", "javascript")
                .config(json!({"code": "const x = 1;"}))
                .input(json!({}))
                .expect_error(),
        ]
    }
}

/// The engine's clock, read from the host (`wasi:clocks`): Boa's default clock asks
/// `std::time`, which wasm32-unknown-unknown does not have.
struct HostClock;

impl Clock for HostClock {
    fn now(&self) -> JsInstant {
        let ms = outrider_sdk::time::unix_millis();
        JsInstant::new(ms / 1000, ((ms % 1000) * 1_000_000) as u32)
    }

    fn system_time_millis(&self) -> i64 {
        outrider_sdk::time::unix_millis() as i64
    }
}

/// A fresh engine with the script loaded and `transform` defined.
fn load(code: &str) -> Result<Context, String> {
    let mut context = Context::builder()
        .clock(Rc::new(HostClock))
        .build()
        .map_err(|e| format!("the JavaScript engine failed to start: {e}"))?;
    context
        .runtime_limits_mut()
        .set_recursion_limit(RECURSION_LIMIT);
    context
        .eval(Source::from_bytes(code))
        .map_err(|e| format!("the script failed to load: {e}"))?;
    let kind = context
        .eval(Source::from_bytes("typeof transform"))
        .map_err(|e| e.to_string())?;
    match kind.as_string().map(|s| s.to_std_string_escaped()) {
        Some(kind) if kind == "function" => Ok(context),
        _ => Err("the script must define `function transform(input)`".into()),
    }
}

fn code(config: &Config) -> Result<&str, Vec<FieldError>> {
    config.str("code").map_err(|e| vec![e])
}

fn split_arrays(config: &Config) -> Result<bool, FieldError> {
    match config.get("split_arrays") {
        None | Some(Value::Null) => Ok(false),
        Some(_) => config.bool("split_arrays"),
    }
}

/// Run `transform(input)` and turn its return value into outputs.
fn run(code: &str, input: &Value, split: bool) -> Result<Vec<Value>, TransformError> {
    let mut context = load(code).map_err(TransformError::misconfigured)?;
    let input_literal = outrider_sdk::serde_json::to_string(&input.to_string())
        .map_err(|e| TransformError::invalid_input(e.to_string()))?;
    let call = format!("JSON.stringify(transform(JSON.parse({input_literal})))");
    let result = context
        .eval(Source::from_bytes(&call))
        .map_err(|e| TransformError::invalid_input(format!("transform threw: {e}")))?;
    let Some(text) = result.as_string() else {
        return Ok(Vec::new()); // undefined (or a function): nothing to output
    };
    let value: Value = outrider_sdk::serde_json::from_str(&text.to_std_string_escaped())
        .map_err(|e| TransformError::invalid_input(format!("transform returned non-JSON: {e}")))?;
    Ok(match value {
        Value::Null => Vec::new(),
        Value::Array(items) if split => items,
        other => vec![other],
    })
}

impl Transformer for JsTransform {
    fn validate(
        _prototype: &str,
        config: &Config,
        _credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        let code = code(config)?;
        split_arrays(config).map_err(|e| vec![e])?;
        load(code)
            .map(|_| ())
            .map_err(|message| vec![config.error("code", message)])
    }

    fn transform(target: &Target, input: Value) -> Result<Vec<Value>, TransformError> {
        let code = code(&target.config)?;
        let split = split_arrays(&target.config)?;
        run(code, &input, split)
    }
}

export_transformer!(JsTransform);

/// Randomness for the engine (`Math.random`): getrandom's custom backend, fed by the
/// host's `wasi:random` import.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    let bytes = outrider_sdk::random::bytes(len);
    // SAFETY: getrandom passes a writable buffer of `len` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dest, len) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_tests_pass() {
        for test in JsTransform::self_tests() {
            let config = Config::from_value(test.config.clone()).unwrap();
            let credentials = Credentials::from_value(test.credentials.clone()).unwrap();
            let result =
                <JsTransform as Transformer>::validate(&test.prototype, &config, &credentials)
                    .map_err(TransformError::from)
                    .and_then(|_| {
                        let target = Target::new(test.prototype.clone()).with_config(config);
                        JsTransform::transform(&target, test.input.clone().unwrap())
                    });
            match (&test.expected, result) {
                (_, Err(e)) => assert!(test.expect_error, "{}: {e}", test.name),
                (Some(expected), Ok(outputs)) => {
                    assert!(!test.expect_error, "{}: expected an error", test.name);
                    assert_eq!(&outputs, expected, "{}", test.name);
                }
                (None, Ok(_)) => assert!(!test.expect_error, "{}", test.name),
            }
        }
    }
}
