//! Generated guest bindings for `outrider:plugin@0.1.1` (`wit/v0.1.1`).
//!
//! One `generate!` for the `full-batch-plugin` world produces every import, the shared
//! `types`, and the export glue of `plugin`, `destination`, `batch-destination` and
//! `transformer`. The worlds plugins implement reuse that glue: wit-bindgen names each
//! interface's export macro after the interface alone
//! (`__export_outrider_plugin_destination_0_1_1_cabi`) and `#[macro_export]`s it, so a
//! second `generate!` exporting the same interface in this crate would define those
//! macros twice.
//!
//! With `pub_export_macro`, the custom section this crate always links describes the
//! imports only; the section that also names the exports is embedded by the SDK's
//! `export_*!` macro in the plugin crate ([`DESTINATION_WORLD`], [`TRANSFORMER_WORLD`],
//! [`BATCH_DESTINATION_WORLD`] or [`FULL_WORLD`]), so a plugin is a component of exactly
//! the world it implements.

#![allow(missing_docs, clippy::all)]

wit_bindgen::generate!({
    path: "../wit/v0.1.1",
    world: "outrider:plugin/full-batch-plugin@0.1.1",
    pub_export_macro: true,
    export_macro_name: "__outrider_export_full_plugin",
    default_bindings_module: "$crate::bindings",
    generate_all,
});

pub use outrider::plugin::{http, log, state, tcp, types};
pub use wasi::clocks::wall_clock;
pub use wasi::random::random;

/// Encoded `component-type` section (wit-component's format) of `destination-plugin`.
/// Regenerate with `OUTRIDER_BLESS=1 cargo test -p outrider-sdk worlds`.
pub const DESTINATION_WORLD: [u8; DESTINATION_WORLD_LEN] =
    *include_bytes!("worlds/destination-plugin.bin");
pub const DESTINATION_WORLD_LEN: usize = include_bytes!("worlds/destination-plugin.bin").len();

/// Encoded `component-type` section of `transformer-plugin`.
pub const TRANSFORMER_WORLD: [u8; TRANSFORMER_WORLD_LEN] =
    *include_bytes!("worlds/transformer-plugin.bin");
pub const TRANSFORMER_WORLD_LEN: usize = include_bytes!("worlds/transformer-plugin.bin").len();

/// Encoded `component-type` section of `batch-destination-plugin`.
pub const BATCH_DESTINATION_WORLD: [u8; BATCH_DESTINATION_WORLD_LEN] =
    *include_bytes!("worlds/batch-destination-plugin.bin");
pub const BATCH_DESTINATION_WORLD_LEN: usize =
    include_bytes!("worlds/batch-destination-plugin.bin").len();

/// Encoded `component-type` section of `full-plugin`.
pub const FULL_WORLD: [u8; FULL_WORLD_LEN] = *include_bytes!("worlds/full-plugin.bin");
pub const FULL_WORLD_LEN: usize = include_bytes!("worlds/full-plugin.bin").len();

#[cfg(test)]
mod tests {
    use std::path::Path;
    use wit_component::StringEncoding;
    use wit_parser::Resolve;

    /// The embedded world sections match what `wit/v0.1.1` encodes to today.
    #[test]
    fn worlds_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut resolve = Resolve::default();
        let (pkg, _) = resolve.push_dir(root.join("../wit/v0.1.1")).unwrap();
        let bless = std::env::var_os("OUTRIDER_BLESS").is_some();
        for (world, embedded) in [
            ("destination-plugin", &super::DESTINATION_WORLD[..]),
            ("transformer-plugin", &super::TRANSFORMER_WORLD[..]),
            (
                "batch-destination-plugin",
                &super::BATCH_DESTINATION_WORLD[..],
            ),
            ("full-plugin", &super::FULL_WORLD[..]),
        ] {
            let id = resolve.select_world(&[pkg], Some(world)).unwrap();
            let encoded =
                wit_component::metadata::encode(&resolve, id, StringEncoding::UTF8, None, false)
                    .unwrap();
            let file = root.join(format!("src/worlds/{world}.bin"));
            if bless {
                std::fs::write(&file, &encoded).unwrap();
            } else {
                assert!(
                    encoded == embedded,
                    "{} is stale: run `OUTRIDER_BLESS=1 cargo test -p outrider-sdk worlds`",
                    file.display()
                );
            }
        }
    }
}
