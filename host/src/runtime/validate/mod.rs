//! Load-time checks: is this a component, built against a WIT version we know, exporting
//! the plugin interface and a kind, importing only what the host grants, with a sound
//! manifest? Each failure is a distinct [`LoadError`] (or [`ManifestError`]) variant
//! whose message names what is wrong.

mod rules;

pub use rules::{check_manifest, ManifestError};

/// WIT versions of `outrider:plugin` this host loads. A version that only adds to the one
/// before is served by the same bindings and export glue; a breaking one means a new
/// bindings module and an arm in the version dispatch (`guest/mod.rs`).
pub const KNOWN_WIT_VERSIONS: &[&str] = &["0.1.0", "0.1.1"];

/// The WIT package plugins are built against.
pub const PACKAGE: &str = "outrider:plugin";

/// Interfaces of our package a plugin may import.
const GRANTED_OWN: &[&str] = &["types", "log", "http", "tcp", "state"];

/// WASI 0.2 interfaces wasmtime-wasi provides (with no ambient authority).
const GRANTED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Why a component was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary (the file does not start with the `\\0asm` header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; wrap it with `wasm-tools component new` \
         (or build for wasm32-wasip2 / with the Outrider SDK)"
    )]
    CoreModule,
    /// The component does not validate or compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// No `outrider:plugin/plugin@<version>` export.
    #[error(
        "the component does not export `outrider:plugin/plugin` (it exports: {}); build it \
         against one of the outrider:plugin worlds",
        list_or_nothing(.exports)
    )]
    MissingPluginExport {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// Built against a WIT version this host does not know.
    #[error(
        "the component was built against outrider:plugin@{version}, which this host does not \
         support (supported: {})",
        KNOWN_WIT_VERSIONS.join(", ")
    )]
    UnknownWitVersion {
        /// The version found.
        version: String,
    },
    /// Exports `plugin` but neither `destination` nor `transformer`.
    #[error(
        "the component exports outrider:plugin/plugin@{version} but neither \
         `destination` nor `transformer`"
    )]
    NoKindExport {
        /// The WIT version.
        version: String,
    },
    /// Imports something the host does not grant.
    #[error("the component imports `{import}`, which the host does not grant")]
    UngrantedImport {
        /// The import's name.
        import: String,
    },
    /// Imports are granted by name but do not link (e.g. mismatched signatures).
    #[error("the component's imports do not match what the host provides: {0}")]
    Link(String),
    /// `plugin.manifest` failed (trap, timeout, memory limit).
    #[error("calling the plugin's manifest failed: {0}")]
    ManifestCall(String),
    /// The manifest breaks one or more rules.
    #[error("invalid manifest: {}", join_errors(.0))]
    InvalidManifest(Vec<ManifestError>),
    /// The host failed (not the component's fault).
    #[error("internal error while loading the plugin: {0}")]
    Internal(String),
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

fn join_errors(errors: &[ManifestError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `bytes` is a component, a core module or neither.
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(LoadError::CoreModule)
    } else if bytes.starts_with(b"\0asm") {
        Err(LoadError::Invalid(
            "unknown WebAssembly binary version or layer".into(),
        ))
    } else {
        Err(LoadError::NotWasm)
    }
}

/// Split `ns:pkg/iface@version` into (`ns:pkg/iface`, `version`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// What a component exports, as far as the host cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSet {
    /// WIT version of `outrider:plugin/plugin`.
    pub version: String,
    /// Whether `destination` is exported.
    pub destination: bool,
    /// Whether `transformer` is exported.
    pub transformer: bool,
    /// Whether `batch-destination` (0.1.1) is exported beside `destination`.
    pub batch: bool,
}

/// Find the plugin export and kind exports among the component's export names.
pub fn check_exports(names: &[String]) -> Result<ExportSet, LoadError> {
    let plugin_prefix = format!("{PACKAGE}/plugin");
    let version = names
        .iter()
        .find_map(|n| match split_version(n) {
            (base, Some(v)) if base == plugin_prefix => Some(v.to_owned()),
            _ => None,
        })
        .ok_or_else(|| LoadError::MissingPluginExport {
            exports: names.to_vec(),
        })?;
    if !KNOWN_WIT_VERSIONS.contains(&version.as_str()) {
        return Err(LoadError::UnknownWitVersion { version });
    }
    let has = |iface: &str| names.contains(&format!("{PACKAGE}/{iface}@{version}"));
    let set = ExportSet {
        destination: has("destination"),
        transformer: has("transformer"),
        batch: has("destination") && has("batch-destination"),
        version,
    };
    if !set.destination && !set.transformer {
        return Err(LoadError::NoKindExport {
            version: set.version,
        });
    }
    Ok(set)
}

/// Check every import name against what the host grants for WIT `version`.
pub fn check_imports(names: &[String], version: &str) -> Result<(), LoadError> {
    for name in names {
        if !is_granted(name, version) {
            return Err(LoadError::UngrantedImport {
                import: name.clone(),
            });
        }
    }
    Ok(())
}

fn is_granted(name: &str, version: &str) -> bool {
    let (base, import_version) = split_version(name);
    let Some(import_version) = import_version else {
        return false;
    };
    if let Some(iface) = base.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) {
        return GRANTED_OWN.contains(&iface) && import_version == version;
    }
    GRANTED_WASI.contains(&base) && import_version.starts_with("0.2.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        assert_eq!(check_header(b"hello world"), Err(LoadError::NotWasm));
        assert_eq!(
            check_header(&[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
            Err(LoadError::CoreModule)
        );
        assert_eq!(
            check_header(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]),
            Ok(())
        );
        assert!(matches!(
            check_header(&[0x00, 0x61, 0x73, 0x6d, 9, 9, 9, 9]),
            Err(LoadError::Invalid(_))
        ));
    }

    #[test]
    fn export_checks() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let set = check_exports(&names(&[
            "outrider:plugin/plugin@0.1.0",
            "outrider:plugin/destination@0.1.0",
        ]))
        .unwrap();
        assert!(set.destination && !set.transformer && !set.batch);
        let set = check_exports(&names(&[
            "outrider:plugin/plugin@0.1.1",
            "outrider:plugin/destination@0.1.1",
            "outrider:plugin/batch-destination@0.1.1",
        ]))
        .unwrap();
        assert!(set.destination && set.batch);
        // `batch-destination` of another version, or without `destination`, is no batch.
        for names in [
            names(&[
                "outrider:plugin/plugin@0.1.1",
                "outrider:plugin/destination@0.1.1",
                "outrider:plugin/batch-destination@0.1.0",
            ]),
            names(&[
                "outrider:plugin/plugin@0.1.1",
                "outrider:plugin/transformer@0.1.1",
                "outrider:plugin/batch-destination@0.1.1",
            ]),
        ] {
            assert!(!check_exports(&names).unwrap().batch, "{names:?}");
        }
        assert!(matches!(
            check_exports(&names(&["outrider:plugin/destination@0.1.0"])),
            Err(LoadError::MissingPluginExport { .. })
        ));
        assert_eq!(
            check_exports(&names(&[
                "outrider:plugin/plugin@9.0.0",
                "outrider:plugin/destination@9.0.0"
            ])),
            Err(LoadError::UnknownWitVersion {
                version: "9.0.0".into()
            })
        );
        assert_eq!(
            check_exports(&names(&["outrider:plugin/plugin@0.1.0"])),
            Err(LoadError::NoKindExport {
                version: "0.1.0".into()
            })
        );
        // A kind export of another version does not count.
        assert!(check_exports(&names(&[
            "outrider:plugin/plugin@0.1.0",
            "outrider:plugin/transformer@0.2.0"
        ]))
        .is_err());
    }

    #[test]
    fn import_checks() {
        let granted = [
            "outrider:plugin/types@0.1.0",
            "outrider:plugin/http@0.1.0",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:io/streams@0.2.6",
            "wasi:cli/stdout@0.2.3",
        ];
        assert!(check_imports(&granted.map(String::from), "0.1.0").is_ok());
        for bad in [
            "wasi:http/outgoing-handler@0.2.0",
            "outrider:plugin/http@0.2.0",
            "outrider:plugin/secrets@0.1.0",
            "wasi:clocks/wall-clock@0.3.0",
            "env",
            "my:evil/api@1.0.0",
        ] {
            assert_eq!(
                check_imports(&[bad.to_string()], "0.1.0"),
                Err(LoadError::UngrantedImport { import: bad.into() }),
                "{bad}"
            );
        }
    }
}
