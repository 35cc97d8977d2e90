//! On-disk cache of compiled components: a second load of the same agent
//! (also by a later process, e.g. the next `wasmbeat agent` call)
//! memory-maps machine code instead of recompiling. Cached machine code
//! runs as is, so the directory and each entry must be trusted (root-owned,
//! not writable by group or others: [`crate::trust`]) before it is mapped.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::LoadError;

/// Whether loading a component used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache directory configured (or it is unusable).
    Disabled,
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled now (and stored for next time).
    Miss,
}

/// The cache file for `wasm` under `dir`: keyed by the component's
/// content and by everything in the engine that affects machine code
/// (wasmtime version, target, compiler settings).
pub fn cache_path(engine: &Engine, dir: &Path, wasm: &[u8]) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}-{:016x}.cwasm", h.finish()))
}

/// Load `wasm` as a component, through the cache in `dir` if given. On a
/// miss, `child` (the wasmbeat binary) compiles it into the cache in a
/// separate process when given, so the compiler's code and heap never
/// become part of a long-running daemon's memory.
pub fn load(
    engine: &Engine,
    dir: Option<&Path>,
    name: &str,
    wasm: &[u8],
    child: Option<&Path>,
) -> Result<(Component, CacheUse), LoadError> {
    let compile = || {
        Component::new(engine, wasm).map_err(|e| LoadError::Invalid {
            name: name.to_string(),
            reason: format!("{e:#}"),
        })
    };
    let Some(dir) = dir else {
        return Ok((compile()?, CacheUse::Disabled));
    };
    if dir.exists() {
        crate::trust::check("agent cache directory", dir)?;
    }
    let path = cache_path(engine, dir, wasm);
    if path.exists() {
        crate::trust::check("compiled agent", &path)?;
        // SAFETY: the cache directory and this entry are trusted (checked
        // just above: root-owned, writable by no one else); files in it were
        // written by `serialize` below and are keyed by content hash and
        // engine compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok((c, CacheUse::Hit)),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e:#}")
            }
        }
    }
    if let Some(program) = child {
        match compile_in_child(program, dir, wasm) {
            Ok(()) => {
                crate::trust::check("agent cache directory", dir)?;
                crate::trust::check("compiled agent", &path)?;
                // SAFETY: as above; the child wrote it with `store`.
                match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(c) => return Ok((c, CacheUse::Miss)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "component compiled by the helper process is unusable, compiling here: {e:#}")
                    }
                }
            }
            Err(e) => tracing::warn!(
                agent = name,
                "compiling in a helper process failed, compiling here: {e}"
            ),
        }
    }
    let component = compile()?;
    match store(dir, &path, &component) {
        Ok(()) => Ok((component, CacheUse::Miss)),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "component cache not writable, compiling every time: {e}");
            Ok((component, CacheUse::Disabled))
        }
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
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
        f.write_all(&bytes)?;
    }
    std::fs::rename(&tmp, path)
}

/// Run `program compile-agent --cache-dir DIR` with the component on stdin.
fn compile_in_child(program: &Path, dir: &Path, wasm: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .arg("compile-agent")
        .arg("--cache-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let written = child.stdin.take().expect("stdin is piped").write_all(wasm);
    let out = child.wait_with_output()?;
    written?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The `compile-agent` helper: compile `wasm` with `engine` into the cache
/// in `dir`, where a daemon using the same engine settings finds it.
pub fn compile_into(engine: &Engine, dir: &Path, wasm: &[u8]) -> Result<PathBuf, LoadError> {
    let component = Component::new(engine, wasm).map_err(|e| LoadError::Invalid {
        name: "component".to_string(),
        reason: format!("{e:#}"),
    })?;
    let path = cache_path(engine, dir, wasm);
    store(dir, &path, &component).map_err(|source| LoadError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
