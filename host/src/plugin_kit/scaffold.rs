//! `outrider plugin new`: a plugin project that builds as is, from templates embedded in
//! the binary. Rust projects depend on the SDK sources by path and start from the
//! `Cargo.lock` of the SDK's source tree (the dependency versions the SDK is built and
//! tested with); JavaScript and Python projects get a copy of the WIT package in `wit/`
//! (what componentize-js/-py build against).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What a plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Delivers events somewhere.
    Destination,
    /// Maps one JSON input to zero or more outputs.
    Transformer,
}

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the `outrider-sdk` crate.
    Rust,
    /// JavaScript, built with componentize-js.
    Js,
    /// Python, built with componentize-py.
    Python,
}

/// The WIT package a new JavaScript or Python project builds against.
const WIT_FILES: [(&str, &str); 11] = [
    ("plugin.wit", include_str!("../../../wit/v0.1.0/plugin.wit")),
    ("types.wit", include_str!("../../../wit/v0.1.0/types.wit")),
    ("worlds.wit", include_str!("../../../wit/v0.1.0/worlds.wit")),
    (
        "destination.wit",
        include_str!("../../../wit/v0.1.0/destination.wit"),
    ),
    (
        "transformer.wit",
        include_str!("../../../wit/v0.1.0/transformer.wit"),
    ),
    ("http.wit", include_str!("../../../wit/v0.1.0/http.wit")),
    ("log.wit", include_str!("../../../wit/v0.1.0/log.wit")),
    ("state.wit", include_str!("../../../wit/v0.1.0/state.wit")),
    ("tcp.wit", include_str!("../../../wit/v0.1.0/tcp.wit")),
    (
        "deps/wasi-clocks/wall-clock.wit",
        include_str!("../../../wit/v0.1.0/deps/wasi-clocks/wall-clock.wit"),
    ),
    (
        "deps/wasi-random/random.wit",
        include_str!("../../../wit/v0.1.0/deps/wasi-random/random.wit"),
    ),
];

/// Where `outrider plugin new` looks for the SDK when `--sdk` is not given: the SDK
/// sources next to the host crate this binary was built from.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Project (and component) name, `^[a-z][a-z0-9-]*$`.
    pub name: String,
    /// What the plugin provides.
    pub kind: Kind,
    /// Its language.
    pub lang: Lang,
    /// Folder to create (`./NAME` by default).
    pub dir: PathBuf,
    /// The `outrider-sdk` sources (Rust only).
    pub sdk: PathBuf,
}

/// Writes the project and returns the files written, relative to its folder.
pub fn create(new: &NewProject) -> Result<Vec<String>> {
    check_name(&new.name)?;
    if new.dir.exists()
        && std::fs::read_dir(&new.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", new.dir.display());
    }
    let files = files(new)?;
    for (path, text) in &files {
        let path = new.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// The project's files: relative path and contents.
fn files(new: &NewProject) -> Result<Vec<(String, String)>> {
    let prototype = new.name.replace('-', "_");
    let world = match new.kind {
        Kind::Destination => "destination-plugin",
        Kind::Transformer => "transformer-plugin",
    };
    let sdk = if new.lang == Lang::Rust {
        let sdk = new.sdk.canonicalize().with_context(|| {
            format!(
                "the Outrider SDK is not at {} (pass --sdk PATH to the sdk/ folder of an \
                 Outrider source tree)",
                new.sdk.display()
            )
        })?;
        if !sdk.join("Cargo.toml").is_file() {
            bail!("--sdk {}: no Cargo.toml there", sdk.display());
        }
        sdk.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let vars = [
        ("{{name}}", new.name.as_str()),
        ("{{prototype}}", prototype.as_str()),
        ("{{type}}", &type_name(&new.name)),
        ("{{world}}", world),
        ("{{sdk}}", sdk.as_str()),
        ("{{profile}}", outrider_plugin_build::rust::PROFILE_TOML),
    ];
    let fill = |template: &str| {
        vars.iter()
            .fold(template.to_string(), |text, (key, value)| {
                text.replace(key, value)
            })
    };
    let destination = new.kind == Kind::Destination;
    let mut out = vec![(
        "event.json".to_string(),
        "{\n  \"id\": \"evt_1\",\n  \"topic\": \"order.paid\",\n  \"data\": { \"order\": 7, \"amount\": 42 }\n}\n"
            .to_string(),
    )];
    out.push(("input.json".into(), "{ \"order\": 7 }\n".into()));
    match new.lang {
        Lang::Rust => {
            out.push((
                "Cargo.toml".into(),
                fill(include_str!("templates/rust/Cargo.toml.tmpl")),
            ));
            out.push((
                ".gitignore".into(),
                fill(include_str!("templates/rust/gitignore.tmpl")),
            ));
            if let Some(lock) = sdk_lock_file(Path::new(&sdk)) {
                out.push(("Cargo.lock".into(), lock));
            }
            let lib = if destination {
                include_str!("templates/rust/destination.rs.tmpl")
            } else {
                include_str!("templates/rust/transformer.rs.tmpl")
            };
            out.push(("src/lib.rs".into(), fill(lib)));
        }
        Lang::Js => {
            out.push((
                "package.json".into(),
                fill(include_str!("templates/js/package.json.tmpl")),
            ));
            out.push((
                ".gitignore".into(),
                fill(include_str!("templates/js/gitignore.tmpl")),
            ));
            let index = if destination {
                include_str!("templates/js/destination.js.tmpl")
            } else {
                include_str!("templates/js/transformer.js.tmpl")
            };
            out.push(("src/index.js".into(), fill(index)));
        }
        Lang::Python => {
            out.push((
                "pyproject.toml".into(),
                fill(include_str!("templates/python/pyproject.toml.tmpl")),
            ));
            out.push((
                ".gitignore".into(),
                fill(include_str!("templates/python/gitignore.tmpl")),
            ));
            let app = if destination {
                include_str!("templates/python/destination.py.tmpl")
            } else {
                include_str!("templates/python/transformer.py.tmpl")
            };
            out.push(("app.py".into(), fill(app)));
        }
    }
    if new.lang != Lang::Rust {
        for (path, text) in WIT_FILES {
            out.push((format!("wit/{path}"), text.to_string()));
        }
    }
    Ok(out)
}

/// The `Cargo.lock` of the workspace the SDK at `sdk` belongs to, if there is one. Cargo
/// drops the entries the project does not use at its first build.
fn sdk_lock_file(sdk: &Path) -> Option<String> {
    let lock = sdk.parent()?.join("Cargo.lock");
    std::fs::read_to_string(lock).ok()
}

fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!("name `{name}`: use lowercase letters, digits and `-`, starting with a letter");
    }
    Ok(())
}

/// `my-plugin` -> `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_converted() {
        assert!(check_name("my-plugin2").is_ok());
        for bad in ["", "My", "2x", "a_b", "a-"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-chat-hook"), "MyChatHook");
    }

    #[test]
    fn every_template_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            for kind in [Kind::Destination, Kind::Transformer] {
                let new = NewProject {
                    name: "demo-hook".into(),
                    kind,
                    lang,
                    dir: dir.path().join(format!("{lang:?}-{kind:?}")),
                    sdk: default_sdk_path(),
                };
                for (path, text) in files(&new).unwrap() {
                    assert!(
                        !text.contains("{{"),
                        "{lang:?} {kind:?} {path}: unfilled placeholder"
                    );
                }
                let written = create(&new).unwrap();
                assert!(written.iter().any(|p| p == "event.json"));
                if lang == Lang::Rust {
                    // Built with the workspace's plugin profile, from the SDK tree's lock.
                    let manifest = new.dir.join("Cargo.toml");
                    assert!(outrider_plugin_build::rust::declares_profile(&manifest).unwrap());
                    assert!(written.iter().any(|p| p == "Cargo.lock"), "{written:?}");
                }
                assert!(create(&new).is_err(), "must not overwrite");
            }
        }
    }
}
