//! Compiled components: the daemon carries no compiler. An agent is
//! compiled by the `wasmbeat-compile` helper in a child process, into an
//! on-disk cache where a second load (also by a later process, e.g. the
//! next `wasmbeat agent` call) memory-maps the machine code. Keeping
//! Cranelift out of the daemon keeps its code out of the daemon's memory
//! (and a JIT compiler out of a root process that only runs agents).
//! Cached machine code runs as is, so the helper, the directory and each
//! entry must be trusted (root-owned, not writable by group or others:
//! [`crate::trust`]) before the helper runs or an entry is mapped.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::LoadError;

/// Whether loading a component used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache directory configured (or it is not writable).
    Disabled,
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled now (and stored for next time).
    Miss,
}

/// The helper's file name.
pub const COMPILER: &str = "wasmbeat-compile";

/// Where the package installs the helper, relative to `wasmbeat`'s
/// directory (`/usr/sbin` → `/usr/libexec/wasmbeat`).
const PACKAGED: &str = "../libexec/wasmbeat";

/// How the helper says why it failed (its exit status).
pub mod exit {
    /// The input is not a valid component.
    pub const INVALID: u8 = 65;
    /// The cache entry could not be written.
    pub const CANNOT_STORE: u8 = 73;
}

/// The helper for this executable: beside it (a build tree), where the
/// package puts it, or (for the test binaries cargo builds in `deps/`)
/// beside the binaries they test. The first when none exists, for the
/// error message.
pub fn default_compiler() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![dir.join(COMPILER), dir.join(PACKAGED).join(COMPILER)];
    if dir.ends_with("deps") {
        candidates.extend(dir.parent().map(|up| up.join(COMPILER)));
    }
    match candidates.iter().find(|p| p.exists()) {
        // Without `..`, for the trust check of each directory above it.
        Some(found) => found.canonicalize().unwrap_or_else(|_| found.clone()),
        None => candidates.swap_remove(0),
    }
}

/// A cache entry's name, `<content>-<engine>.cwasm`: both parts hex
/// digests, of the component and of the engine settings and wasmtime
/// release that shape its machine code ([`super::engine_fingerprint`]).
/// Built and read here only.
#[derive(Debug, PartialEq, Eq)]
struct EntryName {
    content: String,
    engine: String,
}

impl EntryName {
    const SUFFIX: &'static str = ".cwasm";

    /// The entry of `wasm` for this build's engine.
    fn of(wasm: &[u8]) -> EntryName {
        let content = Sha256::digest(wasm);
        let engine = Sha256::digest(super::engine_fingerprint().as_bytes());
        EntryName {
            content: hex::encode(&content[..16]),
            engine: hex::encode(&engine[..8]),
        }
    }

    /// The parts of a file name, if it names an entry.
    fn parse(file_name: &str) -> Option<EntryName> {
        let stem = file_name.strip_suffix(Self::SUFFIX)?;
        let (content, engine) = stem.split_once('-')?;
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(content) && hex(engine)).then(|| EntryName {
            content: content.into(),
            engine: engine.into(),
        })
    }

    fn file_name(&self) -> String {
        format!("{}-{}{}", self.content, self.engine, Self::SUFFIX)
    }
}

/// The cache file for `wasm` under `dir`, for this build's engine.
pub fn cache_path(dir: &Path, wasm: &[u8]) -> PathBuf {
    dir.join(EntryName::of(wasm).file_name())
}

/// Load `wasm` as a component: mapped from the cache in `dir` if there,
/// else compiled by `compiler` in a child process (into the cache when
/// one is given and writable).
pub fn load(
    engine: &Engine,
    dir: Option<&Path>,
    name: &str,
    wasm: &[u8],
    compiler: &Path,
) -> Result<(Component, CacheUse), LoadError> {
    let Some(dir) = dir else {
        return compiled_in_memory(engine, name, wasm, compiler);
    };
    if dir.exists() {
        crate::trust::check("agent cache directory", dir)?;
    }
    let path = cache_path(dir, wasm);
    if path.exists() {
        crate::trust::check("compiled agent", &path)?;
        // SAFETY: the cache directory and this entry are trusted (checked
        // just above: root-owned, writable by no one else); entries are
        // written by the trusted helper, keyed by content and engine.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok((c, CacheUse::Hit)),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached component, compiling it again: {e:#}")
            }
        }
    }
    match run(compiler, Some(dir), name, wasm) {
        Ok(_) => {}
        Err(Failed::CannotStore(why)) => {
            tracing::warn!(dir = %dir.display(), agent = name, "component cache not writable, compiling every time: {why}");
            return compiled_in_memory(engine, name, wasm, compiler);
        }
        Err(Failed::Load(e)) => return Err(e),
    }
    if !path.exists() {
        return Err(LoadError::Compiler {
            program: compiler.to_path_buf(),
            reason: format!("reported success but wrote no {}", path.display()),
        });
    }
    crate::trust::check("agent cache directory", dir)?;
    crate::trust::check("compiled agent", &path)?;
    // SAFETY: as above; the helper wrote it with `store`.
    match unsafe { Component::deserialize_file(engine, &path) } {
        Ok(c) => Ok((c, CacheUse::Miss)),
        Err(e) => Err(unusable(compiler, e)),
    }
}

/// Compile through the helper's stdout, for a load without a (writable)
/// cache.
fn compiled_in_memory(
    engine: &Engine,
    name: &str,
    wasm: &[u8],
    compiler: &Path,
) -> Result<(Component, CacheUse), LoadError> {
    let bytes = match run(compiler, None, name, wasm) {
        Ok(bytes) => bytes,
        Err(Failed::Load(e)) => return Err(e),
        Err(Failed::CannotStore(why)) => {
            return Err(LoadError::Compiler {
                program: compiler.to_path_buf(),
                reason: why,
            })
        }
    };
    // SAFETY: machine code from the trusted helper (checked before it
    // ran), compiled with this engine's settings.
    let component =
        unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| unusable(compiler, e))?;
    Ok((component, CacheUse::Disabled))
}

fn unusable(compiler: &Path, e: wasmtime::Error) -> LoadError {
    LoadError::Compiler {
        program: compiler.to_path_buf(),
        reason: format!(
            "its output does not load in this engine (a helper from another build?): {e:#}"
        ),
    }
}

/// Why the helper did not deliver.
enum Failed {
    /// The cache entry could not be written (compiling without the cache
    /// still can work).
    CannotStore(String),
    /// Anything else, as the load's error.
    Load(LoadError),
}

/// Run `compiler [--cache-dir DIR]` with the component on stdin; its
/// stdout (the compiled component when there is no cache directory).
fn run(compiler: &Path, dir: Option<&Path>, name: &str, wasm: &[u8]) -> Result<Vec<u8>, Failed> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let failed = |reason: String| {
        Failed::Load(LoadError::Compiler {
            program: compiler.to_path_buf(),
            reason,
        })
    };
    if !compiler.exists() {
        return Err(failed(format!(
            "not found (the package installs it in /usr/libexec/wasmbeat; in a build tree: \
             cargo build --release -p wasmbeat --bin {COMPILER})"
        )));
    }
    // Its output becomes machine code in this process.
    crate::trust::check("agent compiler", compiler).map_err(|e| Failed::Load(e.into()))?;
    let mut cmd = Command::new(compiler);
    if let Some(dir) = dir {
        cmd.arg("--cache-dir").arg(dir);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    // The helper reads all of its input before it writes anything.
    let written = child.stdin.take().expect("stdin is piped").write_all(wasm);
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("waiting for it: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(0) => match written {
            Ok(()) => Ok(out.stdout),
            Err(e) => Err(failed(format!("writing the component to it: {e}"))),
        },
        Some(exit::INVALID) => Err(Failed::Load(LoadError::Invalid {
            name: name.to_string(),
            reason: stderr,
        })),
        Some(exit::CANNOT_STORE) => Err(Failed::CannotStore(stderr)),
        _ => Err(failed(format!("{}: {stderr}", out.status))),
    }
}

/// Write `bytes` as the cache entry `path` in `dir` (created owner-only).
pub fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Write-then-rename so a concurrent reader never maps a partial file;
    // owner-only like the directory.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)?;
    prune_other_engines(dir, path);
    Ok(())
}

/// Remove the entries of the same component compiled for another engine
/// (an older wasmtime, other settings): no engine of this build can map
/// them, so each upgrade would otherwise leave a compiled copy of every
/// agent behind for good. A process still running from one keeps its
/// mapping. Best effort: a file that cannot be removed stays.
fn prune_other_engines(dir: &Path, kept: &Path) {
    let Some(kept) = kept
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(EntryName::parse)
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let other = e.file_name().to_str().and_then(EntryName::parse);
        if other.is_some_and(|o| o.content == kept.content && o.engine != kept.engine) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The helper's work: compile `wasm` for the runtime's engine and return
/// the serialized component (what [`load`] maps).
#[cfg(feature = "compiler")]
pub fn compile(wasm: &[u8]) -> Result<Vec<u8>, wasmtime::Error> {
    let engine = Engine::new(&super::engine_config())?;
    Component::new(&engine, wasm)?.serialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storing_an_entry_removes_the_same_components_entries_for_other_engines_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let wasm = b"not really a component";
        let path = cache_path(d, wasm);
        let content = EntryName::of(wasm).content;
        let stale = d.join(
            EntryName {
                content: content.clone(),
                engine: "0011223344556677".into(),
            }
            .file_name(),
        );
        let other_component = d.join("00112233445566778899aabbccddeeff-0011223344556677.cwasm");
        let not_an_entry = d.join(format!("{content}-notes.txt"));
        for f in [&stale, &other_component, &not_an_entry] {
            std::fs::write(f, b"x").unwrap();
        }
        store(d, &path, b"compiled").expect("store");
        assert_eq!(std::fs::read(&path).unwrap(), b"compiled");
        assert!(
            !stale.exists(),
            "the other engine's entry of this component stays"
        );
        assert!(
            other_component.exists(),
            "another component's entry was removed"
        );
        assert!(
            not_an_entry.exists(),
            "a file that is not an entry was removed"
        );
    }

    #[test]
    fn entry_names_read_back_and_other_files_are_not_entries() {
        let e = EntryName::of(b"component");
        assert_eq!(EntryName::parse(&e.file_name()), Some(e));
        for not in [
            "abc-def.txt",
            "abc.cwasm",
            "-def.cwasm",
            "abc-.cwasm",
            "ab-cd-ef.cwasm",
        ] {
            assert_eq!(EntryName::parse(not), None, "{not}");
        }
    }
}
