//! A real heartbeat 3.0.6 node for lab tests and benchmarks: the daemon
//! runs in its own mount, UTS and PID namespaces, with `/etc/ha.d`, `/run`
//! and `/var/lib/heartbeat` bound from a directory of the caller's, so it
//! never touches the host's own heartbeat files.

use std::path::Path;
use std::process::Command;

/// Debian's heartbeat daemon binary.
pub const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";

/// cluster-glue's directory of `external/*` STONITH plugins.
const STONITH_EXTERNAL: &str = "/usr/lib/stonith/plugins/external";

/// Create `root/etc`, `root/run` and `root/lib` for [`node_command`] as a
/// package install leaves them: the packaged /etc/ha.d (harc, rc.d,
/// resource.d, shellfuncs) and /var/lib/heartbeat's directories with their
/// owners (cores/root, cores/nobody, cores/hacluster, ccm, ...). Without
/// cores/root, heartbeat's children cannot chdir after the re-exec that
/// follows a healed partition, and the node never comes back.
pub fn prepare_root(root: &Path) -> Result<(), crate::LabError> {
    for d in ["etc", "run", "lib"] {
        std::fs::create_dir_all(root.join(d)).map_err(|source| crate::LabError::Spawn {
            cmd: format!("mkdir {}", root.join(d).display()),
            source,
        })?;
    }
    crate::run(
        Command::new("cp")
            .arg("-a")
            .arg("/etc/ha.d/.")
            .arg(root.join("etc")),
    )?;
    // The directories only: no state (hb_uuid, host caches) of the host's.
    copy_dirs(Path::new("/var/lib/heartbeat"), &root.join("lib")).map_err(|source| {
        crate::LabError::Spawn {
            cmd: format!(
                "copying /var/lib/heartbeat's directories to {}",
                root.display()
            ),
            source,
        }
    })
}

/// Recreate the directory tree under `from` in `to` with the same modes
/// and owners, leaving files out.
fn copy_dirs(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(from)?;
    std::fs::create_dir_all(to)?;
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dirs(&entry.path(), &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A cluster-glue `external` STONITH plugin that drives the lab's power
/// switch ([`crate::power_switch`]) with curl; its one parameter `base` is
/// the switch's base URL, so `stonith_host * external/wasmbeat-http-switch
/// http://SWITCH/pdu` fences exactly as wasmbeat's `http-switch` does.
pub const HTTP_SWITCH_PLUGIN: &str = r#"#!/bin/sh
# cluster-glue external STONITH plugin for the wasmbeat lab's power switch.
case "$1" in
gethosts) exec curl -fsS -m 10 "$base/nodes" ;;
on|off|reset) exec curl -fsS -m 20 -o /dev/null -X POST "$base/nodes/$2/$1" ;;
status) exec curl -fsS -m 10 -o /dev/null "$base/nodes" ;;
getconfignames) echo base ;;
getinfo-devid) echo "wasmbeat-lab-switch" ;;
getinfo-devname) echo "wasmbeat lab HTTP power switch" ;;
getinfo-devdescr) echo "The simulated power switch of the wasmbeat fencing lab" ;;
getinfo-devurl) echo "http://localhost/" ;;
getinfo-xml) cat <<'XML'
<parameters>
<parameter name="base" unique="1" required="1">
<content type="string" />
<shortdesc lang="en">Base URL</shortdesc>
<longdesc lang="en">The switch's base URL, e.g. http://10.88.0.254:8080/pdu</longdesc>
</parameter>
</parameters>
XML
;;
*) exit 1 ;;
esac
"#;

/// Put [`HTTP_SWITCH_PLUGIN`] where [`node_command`] binds it over
/// `/usr/lib/stonith/plugins/external` (so the host's plugin directory is
/// never written to): `root/stonith/wasmbeat-http-switch`.
pub fn install_http_switch_plugin(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join("stonith");
    std::fs::create_dir_all(&dir)?;
    let plugin = dir.join("wasmbeat-http-switch");
    std::fs::write(&plugin, HTTP_SWITCH_PLUGIN)?;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755))
}

/// The command that runs heartbeat in the foreground as node `hostname`
/// with `root/etc` as `/etc/ha.d`, `root/run` as `/run` and `root/lib` as
/// `/var/lib/heartbeat` (made by [`prepare_root`]); with `output`,
/// heartbeat's stdout and stderr go to that file. Spawn it inside a
/// network namespace; killing the recorded PID (`unshare`) takes the whole
/// PID namespace, heartbeat's children included, down with it. The shell
/// stays PID 1 of that namespace (no `exec`) and outlives `heartbeat -f`:
/// after a split brain heartbeat re-executes itself *without* `-f`, so the
/// new instance daemonizes and the process the shell started exits 0. A
/// shell that ended then (PID 1 exiting) took the whole namespace with it,
/// the re-executed daemon included: heartbeat's rows "stalled" after every
/// healed partition. So the shell waits while anything else lives in the
/// namespace (counted in its own /proc, without starting a process),
/// adopting and reaping the daemonized heartbeat.
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
         if [ -d {r}/stonith ]; then mount --bind {r}/stonith {STONITH_EXTERNAL}; fi\n\
         hostname {hostname}\n\
         {HEARTBEAT} -f{redirect}\n\
         while :; do n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; [ $n -gt 1 ] || exit 0; sleep 1; done\n",
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
