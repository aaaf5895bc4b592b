//! Finding what `cargo xtask plugins` builds: the Rust crates under `plugins/`,
//! `examples/` and `tests/fixtures/`, and the JavaScript and Python examples (built after
//! the cargo call by componentize-js and componentize-py).

use crate::workspace::{relative, Workspace};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Where a crate lives, which decides where its component is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `plugins/NAME`: built-in plugins, `target/plugins/NAME.wasm`.
    Plugin,
    /// `examples/[LANG/]NAME`: examples for plugin authors, `target/plugins/NAME.wasm`.
    Example,
    /// `tests/fixtures/NAME`: test components, `target/plugins/fixtures/NAME.wasm`.
    Fixture,
}

impl Group {
    /// The folders (relative to the workspace root) whose crates belong to the group.
    const ALL: [(Group, &'static str); 3] = [
        (Group::Plugin, "plugins"),
        (Group::Example, "examples"),
        (Group::Fixture, "tests/fixtures"),
    ];
}

/// A workspace crate to build for wasm and wrap into a component.
#[derive(Debug, Clone)]
pub struct WasmCrate {
    /// Cargo package name (`-p`).
    pub package: String,
    /// Component name: the crate's folder name.
    pub name: String,
    pub group: Group,
    pub manifest_path: PathBuf,
}

/// A folder that looks like a plugin project but is not built by this step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub dir: PathBuf,
    pub reason: String,
}

/// Everything found under the plugin folders.
#[derive(Debug, Default)]
pub struct Discovery {
    pub crates: Vec<WasmCrate>,
    /// JavaScript and Python projects under `examples/`.
    pub scripted: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// Names the xtask writes itself into `target/plugins/fixtures/`.
pub const RESERVED_FIXTURE_NAMES: [&str; 2] = ["core-module", "random-bytes"];

/// Classifies the workspace members and scans the plugin folders for projects that are
/// not members (forgotten `members` lines, JavaScript and Python examples).
pub fn discover(ws: &Workspace) -> Result<Discovery> {
    let root = &ws.workspace_root;
    let mut found = Discovery::default();
    let mut members = BTreeMap::new();
    for package in &ws.packages {
        members.insert(package.dir().to_path_buf(), package);
        let Some(group) = group_of(root, package.dir()) else {
            continue;
        };
        if !package.is_cdylib() {
            found.skipped.push(Skipped {
                dir: package.dir().to_path_buf(),
                reason: "not a `cdylib` crate (add `[lib] crate-type = [\"cdylib\"]`)".into(),
            });
            continue;
        }
        let name = package
            .dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| package.name.clone());
        found.crates.push(WasmCrate {
            package: package.name.clone(),
            name,
            group,
            manifest_path: package.manifest_path.clone(),
        });
    }

    for (group, folder) in Group::ALL {
        for dir in project_dirs(&root.join(folder), group == Group::Example) {
            if members.contains_key(&dir) {
                continue;
            }
            if group == Group::Example && is_scripted(&dir) {
                found.scripted.push(dir);
                continue;
            }
            if let Some(reason) = why_skipped(&dir) {
                found.skipped.push(Skipped { dir, reason });
            }
        }
    }

    found.crates.sort_by(|a, b| a.name.cmp(&b.name));
    found.skipped.sort_by(|a, b| a.dir.cmp(&b.dir));
    found.scripted.sort();
    check_names(root, &found.crates, &found.scripted)?;
    Ok(found)
}

fn group_of(root: &Path, dir: &Path) -> Option<Group> {
    Group::ALL
        .iter()
        .find(|(_, folder)| dir.starts_with(root.join(folder)) && dir != root.join(folder))
        .map(|(group, _)| *group)
}

/// Sub-folders of `base` that hold a project; with `nested`, also one level deeper
/// (`examples/rust/NAME`, `examples/js/NAME`).
fn project_dirs(base: &Path, nested: bool) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in sub_dirs(base) {
        if why_skipped(&dir).is_some() {
            dirs.push(dir);
        } else if nested {
            dirs.extend(sub_dirs(&dir).filter(|d| why_skipped(d).is_some()));
        }
    }
    dirs
}

fn sub_dirs(base: &Path) -> impl Iterator<Item = PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
}

/// Why a project folder that is not a workspace member is not built here, or `None` if
/// the folder is not a project at all.
fn why_skipped(dir: &Path) -> Option<String> {
    if dir.join("Cargo.toml").is_file() {
        Some("Rust crate that is not a workspace member (add it to `members` in Cargo.toml)".into())
    } else if dir.join("package.json").is_file() {
        Some("JavaScript project: built by its own step (componentize-js)".into())
    } else if dir.join("pyproject.toml").is_file() || dir.join("app.py").is_file() {
        Some("Python project: built by its own step (componentize-py)".into())
    } else {
        None
    }
}

/// A JavaScript or Python project (built by componentize-js or componentize-py).
fn is_scripted(dir: &Path) -> bool {
    !dir.join("Cargo.toml").is_file()
        && (dir.join("package.json").is_file() || dir.join("pyproject.toml").is_file())
}

/// Every component written to `target/plugins/` (built-in plugins, Rust examples, and
/// the JavaScript and Python examples, named after their folders) or to
/// `target/plugins/fixtures/` needs a name of its own there.
fn check_names(root: &Path, crates: &[WasmCrate], scripted: &[PathBuf]) -> Result<()> {
    let mut seen: BTreeMap<(bool, String), &Path> = BTreeMap::new();
    let folder_name = |dir: &Path| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let components = crates
        .iter()
        .map(|c| {
            let fixture = c.group == Group::Fixture;
            (fixture, c.name.clone(), c.manifest_path.as_path())
        })
        .chain(
            scripted
                .iter()
                .map(|d| (false, folder_name(d), d.as_path())),
        );
    for (fixture, name, source) in components {
        if fixture && RESERVED_FIXTURE_NAMES.contains(&name.as_str()) {
            bail!(
                "fixture name `{name}` ({}) is reserved for a file the xtask writes",
                relative(source, root).display()
            );
        }
        if let Some(other) = seen.insert((fixture, name.clone()), source) {
            bail!(
                "two projects would both write component `{name}.wasm`: {} and {}",
                relative(other, root).display(),
                relative(source, root).display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::{Package, Target};

    fn package(root: &Path, rel: &str, kind: &str) -> Package {
        Package {
            name: format!("pkg-{}", rel.replace('/', "-")),
            manifest_path: root.join(rel).join("Cargo.toml"),
            targets: vec![Target {
                kind: vec![kind.into()],
            }],
        }
    }

    fn temp_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("xtask-discover-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        root
    }

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "").unwrap();
    }

    #[test]
    fn classifies_members_and_skips_other_projects() {
        let root = temp_root("classify");
        for rel in [
            "plugins/webhook/Cargo.toml",
            "tests/fixtures/echo/Cargo.toml",
            "examples/rust/hello/Cargo.toml",
            "examples/js/hello-js/package.json",
            "examples/python/hello-py/pyproject.toml",
            "plugins/forgotten/Cargo.toml",
        ] {
            touch(&root.join(rel));
        }
        let ws = Workspace {
            workspace_root: root.clone(),
            target_directory: root.join("target"),
            packages: vec![
                package(&root, "plugins/webhook", "cdylib"),
                package(&root, "tests/fixtures/echo", "cdylib"),
                package(&root, "examples/rust/hello", "cdylib"),
                package(&root, "sdk", "lib"),
            ],
        };
        let found = discover(&ws).unwrap();
        let crates: Vec<_> = found
            .crates
            .iter()
            .map(|c| (c.name.as_str(), c.group))
            .collect();
        assert_eq!(
            crates,
            [
                ("echo", Group::Fixture),
                ("hello", Group::Example),
                ("webhook", Group::Plugin)
            ]
        );
        let skipped: Vec<_> = found
            .skipped
            .iter()
            .map(|s| relative(&s.dir, &root).to_string_lossy().into_owned())
            .collect();
        assert_eq!(skipped, ["plugins/forgotten"]);
        let scripted: Vec<_> = found
            .scripted
            .iter()
            .map(|d| relative(d, &root).to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            scripted,
            ["examples/js/hello-js", "examples/python/hello-py"]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn rejects_duplicate_and_reserved_names() {
        let root = temp_root("names");
        let mut ws = Workspace {
            workspace_root: root.clone(),
            target_directory: root.join("target"),
            packages: vec![
                package(&root, "plugins/same", "cdylib"),
                package(&root, "examples/rust/same", "cdylib"),
            ],
        };
        let err = discover(&ws).unwrap_err().to_string();
        assert!(err.contains("component `same.wasm`"), "{err}");

        ws.packages = vec![package(&root, "tests/fixtures/random-bytes", "cdylib")];
        let err = discover(&ws).unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");

        // A JavaScript example writes target/plugins/NAME.wasm like a built-in plugin.
        touch(&root.join("examples/webhook/package.json"));
        ws.packages = vec![package(&root, "plugins/webhook", "cdylib")];
        let err = discover(&ws).unwrap_err().to_string();
        assert!(err.contains("component `webhook.wasm`"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}
