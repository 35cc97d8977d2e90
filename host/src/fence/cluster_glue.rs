//! heartbeat's own STONITH devices: a `stonith_host` line naming a
//! cluster-glue plugin (`baytech`, `external/ipmi`, ...) runs it through
//! cluster-glue's `stonith` tool exactly as heartbeat 3.0.6 does, so a
//! node migrated from heartbeat keeps its fencing unchanged. The plugin
//! runs outside the Wasm sandbox, as root, with the parameters the
//! administrator wrote in ha.cf: the same trust heartbeat gives it, and
//! nothing an agent can widen. Each call is bounded by the deadline and
//! its process group is killed when it runs past it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{FenceAction, PowerState};

/// cluster-glue's command-line front end to every plugin.
pub const STONITH_TOOL: &str = "/usr/sbin/stonith";
/// Where cluster-glue keeps its plugins (`stonith2/NAME.so`, `external/NAME`).
pub const PLUGIN_DIR: &str = "/usr/lib/stonith/plugins";

/// The file that provides plugin `kind` (`baytech`, `external/ipmi`), if
/// cluster-glue and that plugin are installed.
pub fn plugin_path(kind: &str) -> Option<PathBuf> {
    plugin_path_in(Path::new(PLUGIN_DIR), Path::new(STONITH_TOOL), kind)
}

fn plugin_path_in(dir: &Path, tool: &Path, kind: &str) -> Option<PathBuf> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            && s != ".."
            && s != "."
    };
    if !tool.is_file() {
        return None;
    }
    let path = match kind.split_once('/') {
        Some(("external", name)) if ok(name) => dir.join("external").join(name),
        None if ok(kind) => dir.join("stonith2").join(format!("{kind}.so")),
        _ => return None,
    };
    path.is_file().then_some(path)
}

/// One cluster-glue device: plugin type and its parameters as heartbeat
/// passes them (`stonith -p`, the plugin's positional configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueDevice {
    /// Plugin type as written (`baytech`, `external/ipmi`).
    pub kind: String,
    /// The parameters, space-joined (heartbeat's compat string).
    pub params: String,
}

impl GlueDevice {
    /// The nodes the device can fence (`stonith -l`).
    pub async fn list(&self, deadline: Duration) -> Result<Vec<String>, String> {
        let out = self.run(&["-l"], deadline).await?;
        Ok(out.split_whitespace().map(|s| s.to_lowercase()).collect())
    }

    /// Power `node` on/off or reset it (`stonith -T`); `Status` asks the
    /// device itself (`stonith -S`, cluster-glue has no per-node status).
    pub async fn act(
        &self,
        node: &str,
        action: FenceAction,
        deadline: Duration,
    ) -> Result<Option<PowerState>, String> {
        let what = match action {
            FenceAction::On => "on",
            FenceAction::Off => "off",
            FenceAction::Reset => "reset",
            FenceAction::Status => {
                self.run(&["-S"], deadline).await?;
                return Ok(Some(PowerState::Unknown));
            }
            FenceAction::List => return Ok(None),
        };
        self.run(&["-T", what, node], deadline).await.map(|_| None)
    }

    async fn run(&self, args: &[&str], deadline: Duration) -> Result<String, String> {
        let mut cmd = tokio::process::Command::new(STONITH_TOOL);
        cmd.args(["-t", &self.kind, "-p", &self.params])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {STONITH_TOOL}: {e}"))?;
        let pid = child.id();
        let what = format!("stonith -t {} {}", self.kind, args.join(" "));
        match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(Ok(out)) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(Ok(out)) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                Err(format!("{what} failed ({}): {}", out.status, last.trim()))
            }
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => {
                if let Some(pid) = pid {
                    // The plugin may have forked (external plugins are
                    // scripts): the whole process group goes.
                    // SAFETY: kill(2) on the group we created for this call.
                    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                }
                Err(format!("{what} did not finish within {deadline:?}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_resolve_inside_the_plugin_directory_only() {
        let d = tempfile::tempdir().unwrap();
        let tool = d.path().join("stonith");
        std::fs::write(&tool, "").unwrap();
        std::fs::create_dir_all(d.path().join("stonith2")).unwrap();
        std::fs::create_dir_all(d.path().join("external")).unwrap();
        std::fs::write(d.path().join("stonith2/null.so"), "").unwrap();
        std::fs::write(d.path().join("external/ipmi"), "").unwrap();
        let p = |k| plugin_path_in(d.path(), &tool, k);
        assert!(p("null").is_some());
        assert!(p("external/ipmi").is_some());
        for bad in [
            "nope",
            "external/nope",
            "../stonith2/null",
            "external/../x",
            "stonith2/null",
            "a/b",
            "",
        ] {
            assert!(p(bad).is_none(), "{bad}");
        }
        assert!(plugin_path_in(d.path(), &d.path().join("missing"), "null").is_none());
    }

    /// The real cluster-glue `null` plugin (it lists the hosts it was given
    /// and "resets" without doing anything), when installed.
    #[tokio::test]
    async fn the_null_plugin_lists_and_resets_and_a_missing_plugin_fails() {
        if plugin_path("null").is_none() {
            eprintln!("skipping: cluster-glue's null plugin is not installed");
            return;
        }
        let d = GlueDevice {
            kind: "null".into(),
            params: "alpha beta".into(),
        };
        let t = Duration::from_secs(20);
        assert_eq!(d.list(t).await.unwrap(), vec!["alpha", "beta"]);
        d.act("beta", FenceAction::Reset, t).await.unwrap();
        let missing = GlueDevice {
            kind: "no-such-plugin".into(),
            params: "alpha".into(),
        };
        let e = missing.list(t).await.unwrap_err();
        assert!(e.contains("failed (exit status: 8)"), "{e}");
    }
}
