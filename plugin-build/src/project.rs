//! Recognising a plugin project folder and reading its build settings.
//!
//! - Rust: a `Cargo.toml` whose library is a `cdylib` (built with the SDK).
//! - JavaScript: a `package.json` with an `outrider` object:
//!   `{"source": "src/index.js", "wit": "wit", "world": "destination-plugin"}`.
//! - Python: a `pyproject.toml` with a `[tool.outrider]` table:
//!   `module = "app"`, `wit = "wit"`, `world = "transformer-plugin"`.
//!
//! `wit` is the folder of the `outrider:plugin` WIT package (relative to the project);
//! `world` is `destination-plugin`, `transformer-plugin` or `full-plugin`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The language a project is written in, which decides how it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `cargo` for wasm, then `wit-component`.
    Rust,
    /// `componentize-js`.
    JavaScript,
    /// `componentize-py`.
    Python,
}

/// A plugin project and what building it needs.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// Component name: the folder's name.
    pub name: String,
    /// How it is built.
    pub language: Language,
    /// Settings of JavaScript and Python projects.
    pub settings: Option<Settings>,
}

/// Where a JavaScript or Python project's code and WIT are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// JavaScript: the entry module file; Python: the module name.
    pub entry: String,
    /// The WIT package folder, resolved against the project folder.
    pub wit: PathBuf,
    /// The world the component implements.
    pub world: String,
}

#[derive(Deserialize)]
struct PackageJson {
    outrider: Option<RawSettings>,
}

#[derive(Deserialize)]
struct PyProject {
    tool: Option<PyTool>,
}

#[derive(Deserialize)]
struct PyTool {
    outrider: Option<RawSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(alias = "module")]
    source: Option<String>,
    wit: Option<String>,
    world: String,
}

const WORLDS: [&str; 3] = ["destination-plugin", "transformer-plugin", "full-plugin"];

impl Project {
    /// Reads the project in `dir`.
    pub fn open(dir: &Path) -> Result<Project> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("{} is not a folder", dir.display()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the project folder has no name")?;
        let (language, settings) = if dir.join("Cargo.toml").is_file() {
            (Language::Rust, None)
        } else if dir.join("package.json").is_file() {
            let text = read(&dir.join("package.json"))?;
            let raw = serde_json::from_str::<PackageJson>(&text)
                .context("package.json is not valid JSON")?
                .outrider
                .context(
                    "package.json has no `outrider` object \
                     ({\"source\": \"src/index.js\", \"wit\": \"wit\", \"world\": \"destination-plugin\"})",
                )?;
            (
                Language::JavaScript,
                Some(settings(
                    &dir,
                    raw,
                    "src/index.js",
                    "package.json: outrider",
                )?),
            )
        } else if dir.join("pyproject.toml").is_file() {
            let text = read(&dir.join("pyproject.toml"))?;
            let raw = toml::from_str::<PyProject>(&text)
                .context("pyproject.toml")?
                .tool
                .and_then(|t| t.outrider)
                .context(
                    "pyproject.toml has no [tool.outrider] table \
                     (module = \"app\", wit = \"wit\", world = \"transformer-plugin\")",
                )?;
            (
                Language::Python,
                Some(settings(&dir, raw, "app", "pyproject.toml: tool.outrider")?),
            )
        } else {
            bail!(
                "{} is not a plugin project: expected Cargo.toml (Rust), package.json \
                 (JavaScript) or pyproject.toml (Python)",
                dir.display()
            );
        };
        Ok(Project {
            dir,
            name,
            language,
            settings,
        })
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn settings(dir: &Path, raw: RawSettings, entry: &str, origin: &str) -> Result<Settings> {
    if !WORLDS.contains(&raw.world.as_str()) {
        bail!(
            "{origin}.world: `{}` is not one of {}",
            raw.world,
            WORLDS.join(", ")
        );
    }
    let wit = dir.join(raw.wit.as_deref().unwrap_or("wit"));
    if !wit.is_dir() {
        bail!("{origin}.wit: {} is not a folder", wit.display());
    }
    Ok(Settings {
        entry: raw.source.unwrap_or_else(|| entry.to_string()),
        wit,
        world: raw.world,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plugin-build-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("wit")).unwrap();
        dir
    }

    #[test]
    fn reads_js_and_python_settings() {
        let js = temp("js");
        std::fs::write(
            js.join("package.json"),
            r#"{"name":"x","outrider":{"source":"main.js","world":"destination-plugin"}}"#,
        )
        .unwrap();
        let p = Project::open(&js).unwrap();
        assert_eq!(p.language, Language::JavaScript);
        let s = p.settings.unwrap();
        assert_eq!(
            (s.entry.as_str(), s.world.as_str()),
            ("main.js", "destination-plugin")
        );
        assert!(s.wit.ends_with("wit"));

        let py = temp("py");
        std::fs::write(
            py.join("pyproject.toml"),
            "[project]\nname = \"x\"\n[tool.outrider]\nworld = \"transformer-plugin\"\n",
        )
        .unwrap();
        let p = Project::open(&py).unwrap();
        assert_eq!(p.language, Language::Python);
        assert_eq!(p.settings.unwrap().entry, "app");
        for dir in [js, py] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn errors_name_the_setting() {
        let js = temp("bad-world");
        std::fs::write(js.join("package.json"), r#"{"outrider":{"world":"nope"}}"#).unwrap();
        let err = Project::open(&js).unwrap_err().to_string();
        assert!(err.contains("outrider.world"), "{err}");
        std::fs::write(js.join("package.json"), r#"{"name":"x"}"#).unwrap();
        let err = Project::open(&js).unwrap_err().to_string();
        assert!(err.contains("no `outrider` object"), "{err}");
        std::fs::remove_dir_all(js).unwrap();
        let empty = temp("empty");
        assert!(Project::open(&empty).is_err());
        std::fs::remove_dir_all(empty).unwrap();
    }
}
