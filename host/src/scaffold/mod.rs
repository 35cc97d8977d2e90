//! `wasmbeat agent new NAME --lang LANG`: writes a buildable agent
//! skeleton (source, a copy of the WIT, a build script, a README saying how
//! to test it) so a new agent passes `wasmbeat agent test` before its
//! author changes a line. Every skeleton is the same small address agent
//! of the narrow world `address-agent` (start adds the address in `ip`,
//! monitor looks for it, stop removes it): it needs no server, so `agent
//! test` passes in its throw-away namespace. The templates are files under
//! `templates/`, compiled in; `host/tests/agent_new.rs` builds each one.

use std::path::{Path, PathBuf};

/// The languages `agent new` writes skeletons in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen (target wasm32-wasip2).
    Rust,
    /// Python with componentize-py.
    Python,
    /// C with wit-bindgen c, wasi-libc and wasm-tools.
    C,
    /// TypeScript with jco guest-types, tsc and componentize-js.
    Ts,
    /// Go 1.27 (wasip1) with wit-bindgen go and wasm-tools.
    Go,
}

impl Lang {
    /// Every language, in the order `--help` lists them.
    pub const ALL: [Lang; 5] = [Lang::Rust, Lang::Python, Lang::C, Lang::Ts, Lang::Go];

    /// The name `--lang` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::C => "c",
            Lang::Ts => "ts",
            Lang::Go => "go",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::C => "C",
            Lang::Ts => "TypeScript",
            Lang::Go => "Go",
        }
    }
}

/// Why a skeleton could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be an agent's file stem and agents.toml section.
    #[error(
        "agent name {0:?}: use 1-40 lowercase letters, digits and '-', starting with a letter \
         (it names the .wasm file and the [agent.NAME] section of agents.toml)"
    )]
    BadName(String),
    /// The target directory exists and is not empty.
    #[error("{0} already exists and is not empty: choose another NAME or --dir")]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One file of a skeleton: its path inside the skeleton, its text with
/// `@NAME@`/`@CRATE@`/`@LANG@` holes, and whether it is a script.
struct Template {
    path: &'static str,
    text: &'static str,
    exec: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        exec: false,
    }
}

const fn script(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        exec: true,
    }
}

/// The WIT every skeleton builds against: this wasmbeat's own, so the
/// skeleton matches the host that wrote it.
const WIT: &str = include_str!("../../../wit/agent.wit");
const README: &str = include_str!("templates/README.md");
/// One source for the TypeScript helper and npm pins: the example's.
const TS_HELPER: &str = include_str!("../../../agents/examples/ts-redis/src/wasmbeat.ts");
const TS_GLOBALS: &str = include_str!("../../../agents/examples/ts-redis/src/globals.d.ts");
const TS_LOCK: &str = include_str!("../../../agents/examples/ts-redis/package-lock.json");
const TS_CONFIG: &str = include_str!("../../../agents/examples/ts-redis/tsconfig.json");
/// The npm package name in the example's lock file, replaced by the agent's.
const TS_LOCK_NAME: &str = "wasmbeat-example-ts-redis";

fn templates(lang: Lang) -> Vec<Template> {
    match lang {
        Lang::Rust => vec![
            file("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            file("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
            script("build.sh", include_str!("templates/rust/build.sh")),
        ],
        Lang::Python => vec![
            file("app.py", include_str!("templates/python/app.py")),
            script("build.sh", include_str!("templates/python/build.sh")),
        ],
        Lang::C => vec![
            file("agent.c", include_str!("templates/c/agent.c")),
            script("build.sh", include_str!("templates/c/build.sh")),
        ],
        Lang::Ts => vec![
            file("src/agent.ts", include_str!("templates/ts/src/agent.ts")),
            file("src/wasmbeat.ts", TS_HELPER),
            file("src/globals.d.ts", TS_GLOBALS),
            file("package.json", include_str!("templates/ts/package.json")),
            file("package-lock.json", TS_LOCK),
            file("tsconfig.json", TS_CONFIG),
            script("build.sh", include_str!("templates/ts/build.sh")),
        ],
        Lang::Go => vec![
            file("agent.go", include_str!("templates/go/agent.go")),
            script("build.sh", include_str!("templates/go/build.sh")),
        ],
    }
}

/// Whether `name` can be an agent's file stem, npm/Cargo package name and
/// agents.toml section: `[a-z][a-z0-9-]*`, at most 40 bytes.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 40
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && !name.ends_with('-')
}

fn fill(text: &str, name: &str, lang: Lang) -> String {
    text.replace("@NAME@", name)
        .replace("@CRATE@", &name.replace('-', "_"))
        .replace("@LANG@", lang.title())
        .replace(TS_LOCK_NAME, name)
}

/// Write the skeleton of agent `name` in `lang` into `dir` (created; it
/// must not exist or be empty). Returns the files written.
pub fn write(name: &str, lang: Lang, dir: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let mut all = templates(lang);
    all.push(file("wit/agent.wit", WIT));
    all.push(file("README.md", README));
    let mut written = Vec::with_capacity(all.len());
    for t in all {
        let path = dir.join(t.path);
        let err = |source| ScaffoldError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&path, fill(t.text, name, lang)).map_err(err)?;
        if t.exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(err)?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_file_stem_and_section_are_refused() {
        for ok in ["a", "my-agent", "redis2", &"x".repeat(40)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "2x",
            "-a",
            "a-",
            "My",
            "a_b",
            "a.b",
            "a/b",
            &"x".repeat(41),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_skeleton_is_filled_in_and_refuses_to_overwrite() {
        let base = std::env::temp_dir().join(format!("wasmbeat-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for lang in Lang::ALL {
            let dir = base.join(lang.as_str());
            let files = write("demo-agent", lang, &dir).unwrap();
            assert!(files.iter().any(|f| f.ends_with("wit/agent.wit")));
            for f in &files {
                let text = std::fs::read_to_string(f).unwrap();
                for hole in ["@NAME@", "@CRATE@", "@LANG@"] {
                    assert!(!text.contains(hole), "{hole} in {}", f.display());
                }
                assert!(!text.contains(TS_LOCK_NAME), "{}", f.display());
            }
            let build = std::fs::read_to_string(dir.join("build.sh")).unwrap();
            assert!(build.contains("demo-agent.wasm"), "{lang:?}: {build}");
            let e = write("demo-agent", lang, &dir).unwrap_err();
            assert!(matches!(e, ScaffoldError::Exists(_)), "{e}");
        }
        let e = write("Demo", Lang::Rust, &base.join("x")).unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
