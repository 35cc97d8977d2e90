//! A real heartbeat 3.0.6 node for lab tests and benchmarks: the daemon
//! runs in its own mount, UTS and PID namespaces, with `/etc/ha.d`, `/run`
//! and `/var/lib/heartbeat` bound from a directory of the caller's, so it
//! never touches the host's own heartbeat files.

use std::path::Path;
use std::process::Command;

/// Debian's heartbeat daemon binary.
pub const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";

/// The command that runs heartbeat in the foreground as node `hostname`
/// with `root/etc` as `/etc/ha.d`, `root/run` as `/run` and `root/lib` as
/// `/var/lib/heartbeat` (the caller creates those three); with `output`,
/// heartbeat's stdout and stderr go to that file. Spawn it inside a
/// network namespace; killing the recorded PID (`unshare`) takes the whole
/// PID namespace, heartbeat's children included, down with it. The shell
/// stays PID 1 of that namespace (no `exec`): heartbeat re-executes itself
/// after a split brain and must not be the namespace's init.
pub fn node_command(root: &Path, hostname: &str, output: Option<&Path>) -> Command {
    let redirect = output
        .map(|o| format!(" >{} 2>&1", o.display()))
        .unwrap_or_default();
    let script = format!(
        "set -e\n\
         mount --bind {r}/run /run\n\
         mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/rsctmp /run/resource-agents /run/lock\n\
         mount --bind {r}/lib /var/lib/heartbeat\n\
         mount --bind {r}/etc /etc/ha.d\n\
         hostname {hostname}\n\
         {HEARTBEAT} -f{redirect}\n",
        r = root.display()
    );
    let mut c = Command::new("unshare");
    c.args([
        "-m",
        "-u",
        "-p",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        "-c",
        &script,
    ]);
    c
}
