//! Parsing of heartbeat's ha.cf, haresources and authkeys into typed structs,
//! with every problem reported at once as a [`Diagnostic`].

pub mod agents;
pub mod authkeys;
pub mod check;
pub mod diag;
pub mod duration;
pub mod hacf;
pub mod haresources;

pub mod token;

use std::path::{Path, PathBuf};

pub use crate::grant::Policy;
pub use agents::{Resolution, BUILTIN_AGENTS};
pub use authkeys::{AuthKey, AuthKeys, AuthMethod, Secret};
pub use diag::{Code, Diagnostic, Diagnostics, Severity};
pub use hacf::{AutoFailback, HaCf, Medium};
pub use haresources::{Haresources, ResourceGroup};
pub use token::{AgentRef, ResourceToken};

/// heartbeat's configuration directory.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/ha.d";

/// The whole configuration of this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory the files were read from.
    pub dir: PathBuf,
    /// ha.cf.
    pub ha: HaCf,
    /// haresources.
    pub resources: Haresources,
    /// authkeys.
    pub auth: AuthKeys,
    /// This node's name (lowercased), one of `ha.nodes`.
    pub local_node: String,
    /// agents.toml (empty when absent).
    pub policy: Policy,
}

/// This node's name as heartbeat finds it: `<config-dir>/nodeinfo` if that
/// file exists, else `uname -n`; lowercased.
pub fn local_node_name(config_dir: &Path) -> std::io::Result<String> {
    let nodeinfo = config_dir.join("nodeinfo");
    let raw = match std::fs::read_to_string(&nodeinfo) {
        Ok(s) => s,
        // The kernel's UTS nodename is what uname -n prints.
        Err(_) => std::fs::read_to_string("/proc/sys/kernel/hostname")?,
    };
    let name = raw.lines().next().unwrap_or_default().trim().to_lowercase();
    if name.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "empty node name",
        ));
    }
    Ok(name)
}

/// wasmbeat-only choices that are not in heartbeat's files (ha.cf must stay
/// readable by heartbeat), given on the command line of `run` and `check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--allow-crc-on-network`: accept unkeyed `crc` authkeys with UDP media.
    pub allow_crc_on_network: bool,
}

/// What was understood of a configuration directory, even when it has errors.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// ha.cf, if it could be read.
    pub ha: Option<HaCf>,
    /// haresources, if present.
    pub resources: Option<Haresources>,
    /// authkeys, if valid.
    pub auth: Option<AuthKeys>,
    /// This node's name, if known.
    pub local_node: Option<String>,
    /// agents.toml (empty when absent or unusable).
    pub policy: Policy,
    /// Every diagnostic, in file order: ha.cf, haresources, authkeys, cross-checks.
    pub diagnostics: Vec<Diagnostic>,
}

fn read(dir: &Path, name: &str, diags: &mut Vec<Diagnostic>, required: bool) -> Option<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::Unreadable,
                    name,
                    None,
                    format!("cannot read {}: {e}", path.display()),
                )
                .hint(format!(
                    "wasmbeat reads heartbeat's files from {}; pass --config-dir if they are elsewhere",
                    dir.display()
                )),
            );
            None
        }
    }
}

impl Loaded {
    /// Read and cross-check all three files with the default (strict)
    /// options, collecting every diagnostic.
    pub fn from_dir(dir: &Path, node_override: Option<&str>) -> Loaded {
        Loaded::from_dir_with(dir, node_override, LoadOptions::default())
    }

    /// Read and cross-check all three files, collecting every diagnostic.
    pub fn from_dir_with(dir: &Path, node_override: Option<&str>, opts: LoadOptions) -> Loaded {
        let mut diags = Vec::new();
        let ha = read(dir, hacf::FILE, &mut diags, true).map(|t| {
            let (ha, d) = HaCf::parse(&t);
            diags.extend(d);
            ha
        });
        let resources = read(dir, haresources::FILE, &mut diags, false).map(|t| {
            let (h, d) = Haresources::parse(&t);
            diags.extend(d);
            h
        });
        if resources.is_none() && diags.iter().all(|d| d.file != haresources::FILE) {
            diags.push(
                Diagnostic::warning(
                    Code::EmptyGroup,
                    haresources::FILE,
                    None,
                    format!(
                        "{} does not exist: the nodes will watch each other but manage no resources",
                        dir.join(haresources::FILE).display()
                    ),
                )
                .hint("list resource groups there, e.g. \"node1 10.0.0.10 httpd\""),
            );
        }
        let (policy, d) = Policy::load(dir);
        diags.extend(d);
        let auth = match AuthKeys::load(&dir.join(authkeys::FILE)) {
            Ok((a, d)) => {
                diags.extend(d);
                Some(a)
            }
            Err(d) => {
                diags.extend(d);
                None
            }
        };
        let local_node = match node_override {
            Some(n) => Some(n.to_lowercase()),
            None => match local_node_name(dir) {
                Ok(n) => Some(n),
                Err(e) => {
                    diags.push(
                        Diagnostic::error(
                            Code::LocalNodeMissing,
                            hacf::FILE,
                            None,
                            format!("cannot find this node's name (uname -n): {e}"),
                        )
                        .hint("pass --node NAME"),
                    );
                    None
                }
            },
        };
        if let Some(ha) = &ha {
            if let Some(me) = &local_node {
                if !ha.nodes.contains(me) && ha.autojoin != hacf::AutoJoin::Any {
                    diags.push(
                        Diagnostic::error(
                            Code::LocalNodeMissing,
                            hacf::FILE,
                            None,
                            format!(
                                "this node {me:?} is not among the nodes ({}) (heartbeat: \"Current node [{me}] not in configuration!\")",
                                ha.nodes.join(", ")
                            ),
                        )
                        .text(me.clone())
                        .hint(format!(
                            "add \"node {me}\" to ha.cf, or pass --node with this machine's cluster name (node names must match `uname -n`)"
                        )),
                    );
                }
            }
            if let Some(r) = &resources {
                diags.extend(r.check_nodes(&ha.nodes));
            }
            if let Some(a) = &auth {
                diags.extend(authkeys::crc_on_network(
                    a,
                    &ha.media,
                    opts.allow_crc_on_network,
                ));
            }
        }
        if let Some(r) = &resources {
            diags.extend(check::resource_diagnostics(dir, r, &policy));
        }
        Loaded {
            ha,
            resources,
            auth,
            local_node,
            policy,
            diagnostics: diags,
        }
    }
}

impl Config {
    /// Load `<dir>/ha.cf`, `haresources` and `authkeys`. On success returns
    /// the configuration and its warnings; otherwise every diagnostic found
    /// (errors and warnings).
    pub fn load(
        dir: &Path,
        node_override: Option<&str>,
    ) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
        Config::load_with(dir, node_override, LoadOptions::default())
    }

    /// [`Config::load`] with wasmbeat-only options.
    pub fn load_with(
        dir: &Path,
        node_override: Option<&str>,
        opts: LoadOptions,
    ) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
        let l = Loaded::from_dir_with(dir, node_override, opts);
        if diag::has_errors(&l.diagnostics) {
            return Err(l.diagnostics);
        }
        match (l.ha, l.auth, l.local_node) {
            (Some(ha), Some(auth), Some(local_node)) => Ok((
                Config {
                    dir: dir.to_path_buf(),
                    ha,
                    resources: l.resources.unwrap_or_default(),
                    auth,
                    local_node,
                    policy: l.policy,
                },
                l.diagnostics,
            )),
            _ => Err(l.diagnostics),
        }
    }
}
