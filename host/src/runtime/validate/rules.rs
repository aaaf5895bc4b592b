//! Manifest rules: names, versions, prototype ids, fields (keys, options, patterns,
//! lengths, defaults) and network access, each broken rule a [`ManifestError`].

use std::collections::HashSet;

use super::{ExportSet, LoadError};
use crate::runtime::fields::{compile_pattern, default_matches};
use crate::runtime::manifest::{Field, Manifest, PrototypeKind, Section};

/// One broken manifest rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Plugin name does not match `^[a-z0-9][a-z0-9_-]*$` (max 64).
    #[error("plugin name `{0}` must match ^[a-z0-9][a-z0-9_-]*$ (at most 64 characters)")]
    PluginName(String),
    /// Plugin version is not semantic.
    #[error("plugin version `{0}` is not a semantic version like 1.2.0")]
    PluginVersion(String),
    /// No prototypes at all.
    #[error("the plugin declares no prototypes")]
    NoPrototypes,
    /// A prototype id is malformed.
    #[error("prototype id `{0}` must match ^[a-z0-9][a-z0-9_-]*$ (at most 64 characters)")]
    PrototypeId(String),
    /// Two prototypes share an id.
    #[error("prototype id `{0}` is declared more than once")]
    DuplicatePrototype(String),
    /// A prototype's kind interface is not exported.
    #[error("prototype `{prototype}` is a {kind} but the component does not export the `{kind}` interface")]
    KindNotExported {
        /// Prototype id.
        prototype: String,
        /// Its kind.
        kind: PrototypeKind,
    },
    /// A field key is malformed.
    #[error("field `{path}` of prototype `{prototype}`: key must match ^[a-z][a-z0-9_]*$")]
    FieldKey {
        /// Prototype id.
        prototype: String,
        /// `config.<key>` or `credentials.<key>`.
        path: String,
    },
    /// Two fields of one section share a key.
    #[error("field `{path}` of prototype `{prototype}` is declared more than once")]
    DuplicateField {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
    },
    /// A select field without options.
    #[error("select field `{path}` of prototype `{prototype}` has no options")]
    SelectWithoutOptions {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
    },
    /// Options on a field that is not a select.
    #[error("field `{path}` of prototype `{prototype}` has options but is not a select")]
    OptionsOnNonSelect {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
    },
    /// A pattern that does not compile.
    #[error("pattern of field `{path}` of prototype `{prototype}` does not compile: {error}")]
    BadPattern {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
        /// The regex error.
        error: String,
    },
    /// `min-length` above `max-length`.
    #[error(
        "field `{path}` of prototype `{prototype}` has min-length {min} above max-length {max}"
    )]
    MinAboveMax {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
        /// Minimum.
        min: u32,
        /// Maximum.
        max: u32,
    },
    /// A default that is not JSON or does not fit the field's type.
    #[error("default of field `{path}` of prototype `{prototype}` {reason}")]
    BadDefault {
        /// Prototype id.
        prototype: String,
        /// Field path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Network access refers to an undeclared config field or a malformed pattern.
    #[error("network access of prototype `{prototype}`: {reason}")]
    NetworkAccess {
        /// Prototype id.
        prototype: String,
        /// What is wrong.
        reason: String,
    },
}

fn valid_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && s.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

fn valid_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

fn valid_semver(s: &str) -> bool {
    let (core, _build) = s.split_once('+').unwrap_or((s, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| p.split('.').all(ident))
        && (_build.is_empty() || _build.split('.').all(ident))
}

/// Check every manifest rule; `exports` says which kind interfaces exist.
pub fn check_manifest(manifest: &Manifest, exports: &ExportSet) -> Result<(), LoadError> {
    let mut errors = Vec::new();
    if !valid_id(&manifest.name) {
        errors.push(ManifestError::PluginName(manifest.name.clone()));
    }
    if !valid_semver(&manifest.version) {
        errors.push(ManifestError::PluginVersion(manifest.version.clone()));
    }
    if manifest.prototypes.is_empty() {
        errors.push(ManifestError::NoPrototypes);
    }
    let mut ids = HashSet::new();
    for p in &manifest.prototypes {
        if !valid_id(&p.id) {
            errors.push(ManifestError::PrototypeId(p.id.clone()));
        }
        if !ids.insert(p.id.as_str()) {
            errors.push(ManifestError::DuplicatePrototype(p.id.clone()));
        }
        let exported = match p.kind {
            PrototypeKind::Destination => exports.destination,
            PrototypeKind::Transformer => exports.transformer,
        };
        if !exported {
            errors.push(ManifestError::KindNotExported {
                prototype: p.id.clone(),
                kind: p.kind,
            });
        }
        for section in [Section::Config, Section::Credentials] {
            check_fields(&p.id, section, p.fields(section), &mut errors);
        }
        let config_keys: HashSet<&str> = p.config_fields.iter().map(|f| f.key.as_str()).collect();
        for key in &p.network.url_fields {
            if !config_keys.contains(key.as_str()) {
                errors.push(ManifestError::NetworkAccess {
                    prototype: p.id.clone(),
                    reason: format!("url field `{key}` is not a declared config field"),
                });
            }
        }
        for pattern in &p.network.hosts {
            if let Err(reason) = check_host_pattern(pattern, &config_keys) {
                errors.push(ManifestError::NetworkAccess {
                    prototype: p.id.clone(),
                    reason,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::InvalidManifest(errors))
    }
}

fn check_host_pattern(pattern: &str, config_keys: &HashSet<&str>) -> Result<(), String> {
    let mut rest = pattern;
    let mut literal = String::new();
    while let Some(start) = rest.find('{') {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("host pattern `{pattern}` has an unclosed `{{`"))?;
        let key = &after[..end];
        if !config_keys.contains(key) {
            return Err(format!(
                "host pattern `{pattern}` refers to `{{{key}}}`, which is not a declared config field"
            ));
        }
        literal.push('x');
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    let host = literal.split(':').next().unwrap_or_default();
    let host = host.strip_prefix("*.").unwrap_or(host);
    let ok = !host.is_empty()
        && !host.contains('*')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && literal
            .split_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host pattern `{pattern}` must be a host name, optionally `*.`-prefixed and with `:port`"
        ))
    }
}

fn check_fields(
    prototype: &str,
    section: Section,
    fields: &[Field],
    errors: &mut Vec<ManifestError>,
) {
    let mut keys = HashSet::new();
    for f in fields {
        let path = format!("{}.{}", section.as_str(), f.key);
        let p = || prototype.to_owned();
        if !valid_key(&f.key) {
            errors.push(ManifestError::FieldKey {
                prototype: p(),
                path: path.clone(),
            });
        }
        if !keys.insert(f.key.as_str()) {
            errors.push(ManifestError::DuplicateField {
                prototype: p(),
                path: path.clone(),
            });
        }
        let is_select = f.r#type == crate::runtime::manifest::FieldType::Select;
        if is_select && f.options.is_empty() {
            errors.push(ManifestError::SelectWithoutOptions {
                prototype: p(),
                path: path.clone(),
            });
        }
        if !is_select && !f.options.is_empty() {
            errors.push(ManifestError::OptionsOnNonSelect {
                prototype: p(),
                path: path.clone(),
            });
        }
        if let Some(pattern) = &f.pattern {
            if let Err(e) = compile_pattern(pattern) {
                errors.push(ManifestError::BadPattern {
                    prototype: p(),
                    path: path.clone(),
                    error: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                });
            }
        }
        if let (Some(min), Some(max)) = (f.min_length, f.max_length) {
            if min > max {
                errors.push(ManifestError::MinAboveMax {
                    prototype: p(),
                    path: path.clone(),
                    min,
                    max,
                });
            }
        }
        if let Some(text) = &f.default {
            let reason = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => default_matches(f, &value).err(),
                Err(e) => Some(format!("is not JSON text ({e})")),
            };
            if let Some(reason) = reason {
                errors.push(ManifestError::BadDefault {
                    prototype: p(),
                    path,
                    reason,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::manifest::{FieldType, NetworkAccess, Prototype, SelectOption};

    fn field(key: &str, ty: FieldType) -> Field {
        Field {
            key: key.into(),
            r#type: ty,
            label: key.into(),
            description: String::new(),
            required: false,
            sensitive: false,
            default: None,
            min_length: None,
            max_length: None,
            pattern: None,
            options: vec![],
            generate: None,
        }
    }

    fn proto(id: &str, kind: PrototypeKind, config: Vec<Field>) -> Prototype {
        Prototype {
            id: id.into(),
            kind,
            label: id.into(),
            description: String::new(),
            icon: String::new(),
            instructions: String::new(),
            setup_link: None,
            config_fields: config,
            credential_fields: vec![],
            network: NetworkAccess::default(),
        }
    }

    fn manifest(prototypes: Vec<Prototype>) -> Manifest {
        Manifest {
            name: "webhook".into(),
            version: "1.0.0".into(),
            description: String::new(),
            prototypes,
        }
    }

    const DEST: ExportSet = ExportSet {
        version: String::new(),
        destination: true,
        transformer: false,
        batch: false,
    };

    fn errors(m: &Manifest) -> Vec<ManifestError> {
        match check_manifest(m, &DEST) {
            Ok(()) => vec![],
            Err(LoadError::InvalidManifest(e)) => e,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    fn one_error(m: &Manifest) -> ManifestError {
        let e = errors(m);
        assert_eq!(e.len(), 1, "{e:?}");
        e.into_iter().next().unwrap()
    }

    fn ok_manifest() -> Manifest {
        manifest(vec![proto(
            "webhook",
            PrototypeKind::Destination,
            vec![field("url", FieldType::Text)],
        )])
    }

    #[test]
    fn good_manifest_passes() {
        assert!(errors(&ok_manifest()).is_empty());
    }

    #[test]
    fn bad_plugin_name_and_version() {
        for name in ["", "Webhook", "-x", "a b", &"a".repeat(65)] {
            let mut m = ok_manifest();
            m.name = name.into();
            assert!(
                matches!(one_error(&m), ManifestError::PluginName(_)),
                "{name}"
            );
        }
        for version in [
            "1",
            "1.0",
            "v1.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-beta..1",
            "",
        ] {
            let mut m = ok_manifest();
            m.version = version.into();
            assert!(
                matches!(one_error(&m), ManifestError::PluginVersion(_)),
                "{version}"
            );
        }
        for version in ["0.1.0", "1.2.3-rc.1", "1.2.3+build.5", "10.20.30-alpha-1"] {
            let mut m = ok_manifest();
            m.version = version.into();
            assert!(errors(&m).is_empty(), "{version}");
        }
    }

    #[test]
    fn no_prototypes() {
        assert_eq!(one_error(&manifest(vec![])), ManifestError::NoPrototypes);
    }

    #[test]
    fn duplicate_and_bad_prototype_ids() {
        let m = manifest(vec![
            proto("a", PrototypeKind::Destination, vec![]),
            proto("a", PrototypeKind::Destination, vec![]),
        ]);
        assert_eq!(one_error(&m), ManifestError::DuplicatePrototype("a".into()));
        for id in ["A", "_a", "a.b", ""] {
            let m = manifest(vec![proto(id, PrototypeKind::Destination, vec![])]);
            assert_eq!(one_error(&m), ManifestError::PrototypeId(id.into()), "{id}");
        }
    }

    #[test]
    fn kind_must_be_exported() {
        let m = manifest(vec![proto("t", PrototypeKind::Transformer, vec![])]);
        assert!(matches!(
            one_error(&m),
            ManifestError::KindNotExported {
                kind: PrototypeKind::Transformer,
                ..
            }
        ));
    }

    #[test]
    fn field_key_pattern_and_duplicates() {
        for key in ["Url", "1url", "u-rl", ""] {
            let m = manifest(vec![proto(
                "p",
                PrototypeKind::Destination,
                vec![field(key, FieldType::Text)],
            )]);
            assert!(
                matches!(one_error(&m), ManifestError::FieldKey { .. }),
                "{key}"
            );
        }
        let m = manifest(vec![proto(
            "p",
            PrototypeKind::Destination,
            vec![
                field("url", FieldType::Text),
                field("url", FieldType::Number),
            ],
        )]);
        assert_eq!(
            one_error(&m),
            ManifestError::DuplicateField {
                prototype: "p".into(),
                path: "config.url".into()
            }
        );
        // The same key in config and credentials is fine.
        let mut p = proto(
            "p",
            PrototypeKind::Destination,
            vec![field("key", FieldType::Text)],
        );
        p.credential_fields = vec![field("key", FieldType::Text)];
        assert!(errors(&manifest(vec![p])).is_empty());
    }

    #[test]
    fn select_options_rules() {
        let m = manifest(vec![proto(
            "p",
            PrototypeKind::Destination,
            vec![field("m", FieldType::Select)],
        )]);
        assert!(matches!(
            one_error(&m),
            ManifestError::SelectWithoutOptions { .. }
        ));
        let mut f = field("m", FieldType::Text);
        f.options = vec![SelectOption {
            value: "a".into(),
            label: "A".into(),
        }];
        let m = manifest(vec![proto("p", PrototypeKind::Destination, vec![f])]);
        assert!(matches!(
            one_error(&m),
            ManifestError::OptionsOnNonSelect { .. }
        ));
    }

    #[test]
    fn patterns_must_compile() {
        let mut f = field("u", FieldType::Text);
        f.pattern = Some("(unclosed".into());
        let m = manifest(vec![proto("p", PrototypeKind::Destination, vec![f])]);
        let e = one_error(&m);
        assert!(matches!(e, ManifestError::BadPattern { .. }), "{e}");
        assert!(e.to_string().contains("config.u"), "{e}");
    }

    #[test]
    fn min_above_max() {
        let mut f = field("u", FieldType::Text);
        f.min_length = Some(5);
        f.max_length = Some(2);
        let m = manifest(vec![proto("p", PrototypeKind::Destination, vec![f])]);
        assert!(matches!(
            one_error(&m),
            ManifestError::MinAboveMax { min: 5, max: 2, .. }
        ));
    }

    #[test]
    fn defaults_must_match_type() {
        for (ty, default) in [
            (FieldType::Number, "\"30\""),
            (FieldType::Checkbox, "1"),
            (FieldType::Text, "not json"),
            (FieldType::KeyValueMap, "[1]"),
        ] {
            let mut f = field("d", ty);
            f.default = Some(default.into());
            let m = manifest(vec![proto("p", PrototypeKind::Destination, vec![f])]);
            assert!(
                matches!(one_error(&m), ManifestError::BadDefault { .. }),
                "{ty:?} {default}"
            );
        }
        let mut f = field("d", FieldType::Number);
        f.default = Some("30".into());
        assert!(errors(&manifest(vec![proto(
            "p",
            PrototypeKind::Destination,
            vec![f]
        )]))
        .is_empty());
    }

    #[test]
    fn network_access_refers_to_declared_fields() {
        let mut p = proto(
            "p",
            PrototypeKind::Destination,
            vec![field("region", FieldType::Text)],
        );
        p.network.url_fields = vec!["url".into()];
        p.network.hosts = vec![
            "sqs.{region}.amazonaws.com".into(),
            "{nope}.x.com".into(),
            "*.ok.com:443".into(),
        ];
        let e = errors(&manifest(vec![p]));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e
            .iter()
            .all(|e| matches!(e, ManifestError::NetworkAccess { .. })));
    }

    #[test]
    fn several_errors_are_reported_together() {
        let mut m = manifest(vec![proto("P", PrototypeKind::Transformer, vec![])]);
        m.name = "Bad".into();
        let e = errors(&m);
        assert_eq!(e.len(), 3, "{e:?}");
        let message = LoadError::InvalidManifest(e).to_string();
        assert!(
            message.contains("plugin name `Bad`") && message.contains("prototype id `P`"),
            "{message}"
        );
    }
}
