//! Which agent a haresources resource names: resolution order, checked when
//! the configuration is loaded rather than discovered at failover time.

use std::path::{Path, PathBuf};

use super::token::AgentRef;
use crate::grant::policy::{self, Policy};
use wasmbeat_args::address::MaskRule;

/// Whether a built-in agent ships today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinStatus {
    /// Provided by the runtime.
    Available,
    /// Announced; accepted by `check` so heartbeat files keep working.
    Planned,
}

/// A built-in agent name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinAgent {
    /// Name as written in haresources (case-sensitive, as heartbeat's script names).
    pub name: &'static str,
    /// Whether it ships today.
    pub status: BuiltinStatus,
    /// How it reads a dotted netmask that is not contiguous: heartbeat's
    /// IPaddr guesses (findif), IPaddr2 refuses.
    pub mask_rule: MaskRule,
}

/// The built-in agents. The runtime may pass its own list to [`resolve_with`].
pub const BUILTIN_AGENTS: &[BuiltinAgent] = &[
    BuiltinAgent {
        name: "IPaddr",
        status: BuiltinStatus::Available,
        mask_rule: MaskRule::Findif,
    },
    BuiltinAgent {
        name: "IPaddr2",
        status: BuiltinStatus::Available,
        mask_rule: MaskRule::Strict,
    },
    BuiltinAgent {
        name: "named",
        status: BuiltinStatus::Available,
        mask_rule: MaskRule::Strict,
    },
    BuiltinAgent {
        name: "httpd",
        status: BuiltinStatus::Available,
        mask_rule: MaskRule::Strict,
    },
    BuiltinAgent {
        name: "mysqld",
        status: BuiltinStatus::Available,
        mask_rule: MaskRule::Strict,
    },
];

/// How the agent called `name` in haresources reads a non-contiguous
/// netmask (strict for every agent but heartbeat's IPaddr).
pub fn mask_rule(name: &str) -> MaskRule {
    BUILTIN_AGENTS
        .iter()
        .find(|b| b.name == name)
        .map_or(MaskRule::Strict, |b| b.mask_rule)
}

/// Where a resource's agent was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Resolution {
    /// A built-in agent.
    Builtin {
        /// Its name.
        name: String,
        /// Whether it is only planned.
        status: BuiltinStatus,
    },
    /// A Wasm component file.
    Wasm {
        /// Its path.
        path: PathBuf,
    },
    /// A heartbeat/LSB script granted in agents.toml, run by the built-in
    /// `lsb` agent.
    Lsb {
        /// The script.
        path: PathBuf,
    },
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolution::Builtin {
                status: BuiltinStatus::Available,
                ..
            } => f.write_str("built-in"),
            Resolution::Builtin {
                status: BuiltinStatus::Planned,
                ..
            } => f.write_str("built-in (planned)"),
            Resolution::Wasm { path } => write!(f, "{}", path.display()),
            Resolution::Lsb { path } => {
                write!(f, "LSB script {} (granted in agents.toml)", path.display())
            }
        }
    }
}

/// Why a resource names no agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A bare name that is neither built-in nor a Wasm file in resource.d.
    #[error("no agent named {name:?}: tried {}", tried.join(", then "))]
    NotFound {
        /// The name.
        name: String,
        /// Places tried, in order.
        tried: Vec<String>,
        /// A heartbeat shell script of that name, which wasmbeat runs only
        /// when agents.toml grants it.
        script: Option<PathBuf>,
        /// Whether agents.toml has an `[lsb.NAME]` grant (then no script
        /// was found where it points).
        granted: bool,
    },
    /// A `.wasm` path that does not exist.
    #[error("agent file {} does not exist", path.display())]
    MissingWasm {
        /// The path tried.
        path: PathBuf,
    },
}

/// `<config-dir>/resource.d`, where agents named in haresources live.
pub fn resource_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("resource.d")
}

/// Resolve against [`BUILTIN_AGENTS`] with no policy file.
pub fn resolve(agent: &AgentRef, config_dir: &Path) -> Result<Resolution, ResolveError> {
    resolve_with(agent, config_dir, BUILTIN_AGENTS)
}

/// Resolve as wasmbeat runs it: built-in, `resource.d/NAME.wasm`, then a
/// heartbeat/LSB script (heartbeat's order: `resource.d/NAME`, then
/// `/etc/init.d/NAME`) if and only if `policy` grants it with `[lsb.NAME]`.
pub fn resolve_policy(
    agent: &AgentRef,
    config_dir: &Path,
    policy: &Policy,
) -> Result<Resolution, ResolveError> {
    match resolve_with(agent, config_dir, BUILTIN_AGENTS) {
        Err(ResolveError::NotFound {
            name,
            mut tried,
            script,
            ..
        }) => match policy.lsb_script(&name, config_dir) {
            Some(Ok(path)) => Ok(Resolution::Lsb { path }),
            Some(Err(paths)) => {
                tried.extend(
                    paths
                        .iter()
                        .map(|p| format!("{} (granted in agents.toml)", p.display())),
                );
                Err(ResolveError::NotFound {
                    name,
                    tried,
                    script,
                    granted: true,
                })
            }
            None => Err(ResolveError::NotFound {
                name,
                tried,
                script,
                granted: false,
            }),
        },
        other => other,
    }
}

/// Resolve a token's agent: a bare name is a built-in, else
/// `<config-dir>/resource.d/NAME.wasm`; a `.wasm` path is taken relative to
/// `<config-dir>/resource.d/` unless absolute.
pub fn resolve_with(
    agent: &AgentRef,
    config_dir: &Path,
    builtins: &[BuiltinAgent],
) -> Result<Resolution, ResolveError> {
    match agent {
        AgentRef::Name(name) => {
            if let Some(b) = builtins.iter().find(|b| b.name == name) {
                return Ok(Resolution::Builtin {
                    name: b.name.to_string(),
                    status: b.status,
                });
            }
            let wasm = resource_dir(config_dir).join(format!("{name}.wasm"));
            if wasm.is_file() {
                return Ok(Resolution::Wasm { path: wasm });
            }
            // heartbeat would have run a shell script from these places.
            let script = policy::script_candidates(name, config_dir)
                .into_iter()
                .find(|p| p.is_file());
            Err(ResolveError::NotFound {
                name: name.clone(),
                tried: vec![
                    "the built-in agents".to_string(),
                    wasm.display().to_string(),
                ],
                script,
                granted: false,
            })
        }
        AgentRef::WasmPath(p) => {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                resource_dir(config_dir).join(p)
            };
            if path.is_file() {
                Ok(Resolution::Wasm { path })
            } else {
                Err(ResolveError::MissingWasm { path })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_builtin_then_resource_d() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("resource.d")).unwrap();
        std::fs::write(dir.path().join("resource.d/mine.wasm"), b"\0asm").unwrap();
        let r = resolve(&AgentRef::Name("IPaddr".into()), dir.path()).unwrap();
        assert_eq!(r.to_string(), "built-in");
        let r = resolve(&AgentRef::Name("httpd".into()), dir.path()).unwrap();
        assert_eq!(r.to_string(), "built-in");
        let r = resolve(&AgentRef::Name("mine".into()), dir.path()).unwrap();
        assert!(matches!(r, Resolution::Wasm { .. }));
        let r = resolve(&AgentRef::WasmPath("mine.wasm".into()), dir.path()).unwrap();
        assert!(matches!(r, Resolution::Wasm { .. }));
        let e = resolve(&AgentRef::Name("nosuch".into()), dir.path()).unwrap_err();
        assert!(e.to_string().contains("resource.d/nosuch.wasm"), "{e}");
        let e = resolve(
            &AgentRef::WasmPath("/nonexistent/x.wasm".into()),
            dir.path(),
        )
        .unwrap_err();
        assert!(matches!(e, ResolveError::MissingWasm { .. }));
    }

    #[test]
    fn scripts_resolve_only_when_granted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let rd = dir.path().join("resource.d");
        std::fs::create_dir(&rd).unwrap();
        let script = rd.join("legacy");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let name = AgentRef::Name("legacy".into());
        let e = resolve_policy(&name, dir.path(), &Policy::default()).unwrap_err();
        assert!(
            matches!(&e, ResolveError::NotFound { script: Some(s), granted: false, .. } if *s == script),
            "{e:?}"
        );
        let (p, _) = Policy::parse("[lsb.legacy]\n");
        assert_eq!(
            resolve_policy(&name, dir.path(), &p).unwrap(),
            Resolution::Lsb { path: script }
        );
        let (p, _) = Policy::parse("[lsb.other]\n");
        let e = resolve_policy(&AgentRef::Name("other".into()), dir.path(), &p).unwrap_err();
        assert!(matches!(e, ResolveError::NotFound { granted: true, .. }));
        assert!(e.to_string().contains("granted in agents.toml"), "{e}");
    }
}
