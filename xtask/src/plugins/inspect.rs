//! What a component imports and exports, by WIT interface name (`--list`).

use anyhow::{bail, Result};
use wit_component::DecodedWasm;
use wit_parser::{Resolve, WorldItem, WorldKey};

/// The imports and exports of a component's world.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Decodes a component and names what it imports and exports: interfaces as
/// `ns:pkg/iface@version`, bare functions as `func NAME`.
pub fn interfaces(component: &[u8]) -> Result<Interfaces> {
    if !wasmparser::Parser::is_component(component) {
        bail!("not a component");
    }
    let decoded = wit_component::decode(component)?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        bail!("not a component (a WIT package encoded as wasm)");
    };
    let world = &resolve.worlds[world];
    let name = |(key, item): (&WorldKey, &WorldItem)| describe(&resolve, key, item);
    Ok(Interfaces {
        imports: world.imports.iter().filter_map(name).collect(),
        exports: world.exports.iter().filter_map(name).collect(),
    })
}

fn describe(resolve: &Resolve, key: &WorldKey, item: &WorldItem) -> Option<String> {
    match item {
        WorldItem::Interface { .. } => Some(resolve.name_world_key(key)),
        WorldItem::Function(f) => Some(format!("func {}", f.name)),
        WorldItem::Type { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::componentize::{encode, random_bytes, MINIMAL_CORE_MODULE};
    use std::path::Path;
    use wit_component::StringEncoding;
    use wit_parser::ManglingAndAbi;

    /// A component of `world` from the project's WIT `version`, made from a dummy core
    /// module.
    fn dummy_component(version: &str, world: &str) -> Vec<u8> {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../wit/v{version}"));
        let mut resolve = Resolve::default();
        let (pkg, _) = resolve.push_dir(&wit).unwrap();
        let world = resolve.select_world(&[pkg], Some(world)).unwrap();
        let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            StringEncoding::UTF8,
            false,
        )
        .unwrap();
        encode(&module).unwrap()
    }

    #[test]
    fn lists_interfaces_of_each_world() {
        let imports = [
            "outrider:plugin/types@0.1.0",
            "outrider:plugin/log@0.1.0",
            "outrider:plugin/http@0.1.0",
            "outrider:plugin/tcp@0.1.0",
            "outrider:plugin/state@0.1.0",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:random/random@0.2.0",
        ];
        for (world, exports) in [
            ("destination-plugin", &["plugin", "destination"][..]),
            ("transformer-plugin", &["plugin", "transformer"][..]),
            ("full-plugin", &["plugin", "destination", "transformer"][..]),
        ] {
            let found = interfaces(&dummy_component("0.1.0", world)).unwrap();
            for i in imports {
                assert!(
                    found.imports.iter().any(|x| x == i),
                    "{world}: {i} in {found:?}"
                );
            }
            let expected: Vec<String> = exports
                .iter()
                .map(|e| format!("outrider:plugin/{e}@0.1.0"))
                .collect();
            assert_eq!(found.exports, expected, "{world}");
        }
    }

    #[test]
    fn lists_the_batch_export_of_wit_0_1_1() {
        let found = interfaces(&dummy_component("0.1.1", "batch-destination-plugin")).unwrap();
        let mut exports = found.exports.clone();
        exports.sort();
        let expected: Vec<String> = ["batch-destination", "destination", "plugin"]
            .iter()
            .map(|e| format!("outrider:plugin/{e}@0.1.1"))
            .collect();
        assert_eq!(exports, expected);
        assert!(found
            .imports
            .iter()
            .any(|i| i == "outrider:plugin/tcp@0.1.1"));
    }

    #[test]
    fn rejects_non_components() {
        assert!(interfaces(MINIMAL_CORE_MODULE).is_err());
        assert!(interfaces(&random_bytes(256)).is_err());
    }
}
