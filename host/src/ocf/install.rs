//! `wasmbeat ocf install`: the provider directory
//! `/usr/lib/ocf/resource.d/wasmbeat/`, one small script per agent that
//! execs the one `wasmbeat` binary (`wasmbeat ocf AGENT ACTION`), so
//! Pacemaker finds `ocf:wasmbeat:NAME` where it looks for every provider.

use std::path::{Path, PathBuf};

use crate::runtime::builtin;

/// The provider directory, relative to the file system root.
pub const PROVIDER_DIR: &str = "usr/lib/ocf/resource.d/wasmbeat";

/// Marks a script as ours, so a re-install removes the scripts of agents
/// that are gone and never touches a file someone else put there.
const MARKER: &str = "# written by `wasmbeat ocf install`";

/// What to install and where.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Prefix of the provider directory (`/` on a node; a staging
    /// directory for packages and tests).
    pub root: PathBuf,
    /// The configuration directory the scripts pass on (agents in
    /// `resource.d/`, grants in `agents.toml`), as seen on the node.
    pub config_dir: PathBuf,
    /// The wasmbeat binary the scripts exec, as seen on the node.
    pub binary: PathBuf,
    /// Cache of compiled agents the scripts pass on (None: wasmbeat's default).
    pub cache_dir: Option<PathBuf>,
    /// Where servers the agents start write their output, passed on
    /// (None: wasmbeat's default, `/var/log/wasmbeat`).
    pub server_log_dir: Option<PathBuf>,
}

/// Why the provider directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What an install did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Scripts written.
    pub written: Vec<PathBuf>,
    /// Scripts of agents that no longer exist, removed.
    pub removed: Vec<PathBuf>,
    /// `.wasm` files skipped, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Whether `name` can be an OCF agent type and a file name in a shell
/// script: letters, digits, `._-`, not starting with `.` or `-`.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The agents a node offers: the built-in ones, then every
/// `<config_dir>/resource.d/NAME.wasm` (the names haresources resolves),
/// sorted; and the files whose names cannot be agent types.
pub fn agent_names(config_dir: &Path) -> (Vec<String>, Vec<(PathBuf, String)>) {
    let mut names: Vec<String> = builtin::NAMES.iter().map(|s| s.to_string()).collect();
    let mut skipped = Vec::new();
    if let Ok(dir) = std::fs::read_dir(config_dir.join("resource.d")) {
        let mut found: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        found.sort();
        for p in found {
            if p.extension().and_then(|e| e.to_str()) != Some("wasm") {
                continue;
            }
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if builtin::lookup(&stem).is_some() {
                skipped.push((
                    p,
                    format!("the built-in agent {stem} takes precedence (as in haresources)"),
                ));
            } else if !valid_agent_name(&stem) {
                skipped.push((
                    p,
                    "its name is not an OCF agent type (letters, digits, ._- only); rename it"
                        .into(),
                ));
            } else {
                names.push(stem);
            }
        }
    }
    (names, skipped)
}

/// `'text'` for sh, with embedded quotes escaped.
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The provider script for `agent`.
pub fn script(opts: &InstallOptions, agent: &str) -> String {
    let cache = opts
        .cache_dir
        .as_ref()
        .map(|c| format!(" --cache-dir {}", sh_quote(c)))
        .unwrap_or_default();
    let server_logs = opts
        .server_log_dir
        .as_ref()
        .map(|d| format!(" --server-log-dir {}", sh_quote(d)))
        .unwrap_or_default();
    format!(
        "#!/bin/sh\n\
         {MARKER}; re-run it after adding or removing agents.\n\
         # ocf:wasmbeat:{agent}: the wasmbeat agent {agent}, run sandboxed by wasmbeat\n\
         # with the grants of {}/agents.toml.\n\
         exec {} ocf --config-dir {}{cache}{server_logs} {agent} \"$@\"\n",
        opts.config_dir.display(),
        sh_quote(&opts.binary),
        sh_quote(&opts.config_dir),
    )
}

/// Write one script per agent into `ROOT/usr/lib/ocf/resource.d/wasmbeat`
/// (mode 0755: Pacemaker's executor and `ocf-tester` run it as any
/// user), and remove earlier scripts of agents that are gone.
pub fn install(opts: &InstallOptions) -> Result<Installed, InstallError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Io { path, source }
    };
    let dir = opts.root.join(PROVIDER_DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let (names, skipped) = agent_names(&opts.config_dir);
    let mut done = Installed {
        skipped,
        ..Installed::default()
    };
    for name in &names {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, script(opts, name)).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io(&path))?;
        done.written.push(path);
    }
    for e in std::fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = std::fs::read_to_string(&path).is_ok_and(|t| t.contains(MARKER));
        if ours && !names.contains(&name) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            done.removed.push(path);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_for_builtins_and_resource_d_and_stale_ones_removed() {
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("conf");
        std::fs::create_dir_all(conf.join("resource.d")).unwrap();
        std::fs::write(conf.join("resource.d/tcpservice.wasm"), b"").unwrap();
        std::fs::write(conf.join("resource.d/httpd.wasm"), b"").unwrap();
        std::fs::write(conf.join("resource.d/bad name.wasm"), b"").unwrap();
        let opts = InstallOptions {
            root: t.path().join("root"),
            config_dir: conf.clone(),
            binary: "/usr/sbin/wasmbeat".into(),
            cache_dir: None,
            server_log_dir: None,
        };
        let dir = opts.root.join(PROVIDER_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("gone"), format!("#!/bin/sh\n{MARKER}\n")).unwrap();
        std::fs::write(dir.join("foreign"), "#!/bin/sh\n").unwrap();
        let done = install(&opts).unwrap();
        let names: Vec<_> = done
            .written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "IPaddr",
                "IPaddr2",
                "named",
                "httpd",
                "mysqld",
                "tcpservice"
            ]
        );
        assert_eq!(done.removed, vec![dir.join("gone")]);
        assert!(dir.join("foreign").exists());
        assert_eq!(done.skipped.len(), 2, "{:?}", done.skipped);
        let text = std::fs::read_to_string(dir.join("tcpservice")).unwrap();
        assert!(text.ends_with(&format!(
            "exec '/usr/sbin/wasmbeat' ocf --config-dir '{}' tcpservice \"$@\"\n",
            conf.display()
        )));
        // A server log directory other than the default is passed on, quoted.
        let logs = InstallOptions {
            server_log_dir: Some("/srv/ha logs".into()),
            ..opts.clone()
        };
        assert!(script(&logs, "httpd").contains(" --server-log-dir '/srv/ha logs' httpd \"$@\""));
    }
}
