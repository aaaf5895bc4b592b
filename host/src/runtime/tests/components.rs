//! Test components: a core module written in WAT whose `manifest` is a static memory
//! image and whose `deliver` does one chosen thing, wrapped into a component by
//! `wit-component` against the real WIT.

const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/v0.1.0");

/// Memory image offsets of the test module.
const RET_AREA: u32 = 16;
const MANIFEST: u32 = 1024;
const PROTOTYPE: u32 = 1100;
const STRINGS: u32 = 2048;
const HEAP: u32 = 8192;

/// What `deliver` does in a test component.
#[derive(Clone, Copy, Debug)]
pub(super) enum Behaviour {
    /// Return `ok({none, none})`.
    Ok,
    /// Spin forever.
    Loop,
    /// `unreachable`.
    Trap,
    /// Grow memory until refused, then abort like an allocator would.
    Hog,
}

fn deliver_body(b: Behaviour) -> &'static str {
    match b {
        Behaviour::Ok => "(i32.const 16)",
        Behaviour::Loop => "(loop $l (br $l)) (i32.const 16)",
        Behaviour::Trap => "unreachable",
        Behaviour::Hog => {
            "(block $done (loop $l (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $l))) unreachable"
        }
    }
}

/// Little-endian memory image with the manifest `{name, 1.0.0, "", [prototype]}`.
fn manifest_image(name: &str, version: &str, prototype: &str) -> Vec<u8> {
    let mut mem = vec![0u8; HEAP as usize];
    let mut next = STRINGS;
    let mut string = |mem: &mut Vec<u8>, at: u32, s: &str| {
        mem[next as usize..next as usize + s.len()].copy_from_slice(s.as_bytes());
        mem[at as usize..at as usize + 4].copy_from_slice(&next.to_le_bytes());
        mem[at as usize + 4..at as usize + 8].copy_from_slice(&(s.len() as u32).to_le_bytes());
        next += s.len() as u32;
    };
    string(&mut mem, MANIFEST, name);
    string(&mut mem, MANIFEST + 8, version);
    // description (MANIFEST + 16) stays empty; prototypes = [PROTOTYPE; 1]
    mem[(MANIFEST + 24) as usize..(MANIFEST + 28) as usize]
        .copy_from_slice(&PROTOTYPE.to_le_bytes());
    mem[(MANIFEST + 28) as usize..(MANIFEST + 32) as usize].copy_from_slice(&1u32.to_le_bytes());
    // prototype: id, kind = destination (0), label; everything else empty / none / false.
    string(&mut mem, PROTOTYPE, prototype);
    string(&mut mem, PROTOTYPE + 12, "Test");
    mem
}

fn data_segment(mem: &[u8]) -> String {
    let mut out = String::new();
    for b in &mem[MANIFEST as usize..] {
        out.push_str(&format!("\\{b:02x}"));
    }
    out
}

fn core_module(
    name: &str,
    version: &str,
    prototype: &str,
    behaviour: Behaviour,
    extra_import: &str,
) -> String {
    let mem = manifest_image(name, version, prototype);
    let data = data_segment(&mem);
    let body = deliver_body(behaviour);
    format!(
        r#"(module
  {extra_import}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const {HEAP}))
  (data (i32.const {MANIFEST}) "{data}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow (i32.add (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1)))))
    (local.get $p))
  (func (export "outrider:plugin/plugin@0.1.0#manifest") (result i32) (i32.const {MANIFEST}))
  (func (export "outrider:plugin/plugin@0.1.0#self-tests") (result i32) (i32.const {RET_AREA}))
  (func (export "outrider:plugin/destination@0.1.0#validate")
    (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const {RET_AREA}))
  (func (export "outrider:plugin/destination@0.1.0#deliver") (param i32) (result i32) {body})
)"#
    )
}

/// Build a destination-plugin component; `extra_wit` may add a package whose world
/// `test` includes the destination world plus other imports.
pub(super) fn component_with(
    name: &str,
    version: &str,
    prototype: &str,
    behaviour: Behaviour,
    extra_wit: Option<&str>,
    extra_import: &str,
) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(WIT_DIR).expect("WIT package parses");
    let world = match extra_wit {
        Some(text) => {
            let extra = resolve.push_str("extra.wit", text).unwrap();
            resolve.select_world(&[extra], Some("test")).unwrap()
        }
        None => resolve
            .select_world(&[pkg], Some("destination-plugin"))
            .unwrap(),
    };
    let mut module = wat::parse_str(core_module(
        name,
        version,
        prototype,
        behaviour,
        extra_import,
    ))
    .unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

pub(super) fn component(name: &str, behaviour: Behaviour) -> Vec<u8> {
    component_with(name, "1.0.0", "test", behaviour, None, "")
}
