//! What confinement this machine allows, decided once per process: which
//! hierarchies resource cgroups go in, which limits they can carry, and
//! whether capabilities and users can be changed. Each missing item has a
//! one-line reason for the log at start-up and for `wasmbeat check`.

use std::path::Path;
use std::sync::OnceLock;

use super::cgroup::Bases;
use super::hierarchy::{self, Place, Places};

/// What can be applied to the processes agents start, on this machine.
#[derive(Debug, Clone)]
pub struct ConfinementSupport {
    /// `no_new_privs` (always, on Linux 3.5+).
    pub no_new_privs: bool,
    /// The capability bounding set can be reduced (CAP_SETPCAP held).
    pub capability_bounding: bool,
    /// `user =` can be honoured (CAP_SETUID and CAP_SETGID held).
    pub user_switch: bool,
    /// pidfds (Linux 5.3): signals never reach a recycled PID.
    pub pidfd: bool,
    /// Where resource cgroups are made (v2 directory), if anywhere.
    pub cgroup_v2: Option<std::path::PathBuf>,
    /// `cgroup.kill` stops a resource's processes in one write.
    pub cgroup_kill: bool,
    /// Where `pids.max` is applied: "v2", "v1" or not at all.
    pub pids_max: Option<&'static str>,
    /// Where the memory limit is applied: "v2", "v1" or not at all.
    pub memory_max: Option<&'static str>,
    pub(crate) bases: Bases,
    missing: Vec<String>,
    applied: Vec<String>,
}

impl ConfinementSupport {
    /// One line per item that cannot be applied here, saying why and what
    /// would fix it ("pids.max not applied: ...").
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// One line per item, applied ones first: what `wasmbeat check`
    /// prints.
    pub fn lines(&self) -> Vec<String> {
        self.applied
            .iter()
            .chain(self.missing.iter())
            .cloned()
            .collect()
    }
}

/// The confinement this process can apply (computed on first use; in a
/// delegated cgroup subtree this also moves the process into a leaf of its
/// own and enables the controllers, once).
pub fn support() -> &'static ConfinementSupport {
    static SUPPORT: OnceLock<ConfinementSupport> = OnceLock::new();
    SUPPORT.get_or_init(|| detect(hierarchy::own_places()))
}

/// Log [`support`] once per process: what is applied at info, each
/// missing item at warn.
pub fn log_support_once() {
    static LOGGED: OnceLock<()> = OnceLock::new();
    LOGGED.get_or_init(|| {
        let s = support();
        tracing::info!(
            "confinement of agent-started processes: {}",
            s.applied.join("; ")
        );
        for m in &s.missing {
            tracing::warn!("{m}");
        }
    });
}

/// Kernel release at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let (Some(a), Some(b)) = (it.next(), it.next()) else {
        return false;
    };
    let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Whether we may make cgroups below `place`: the hierarchy's root, or a
/// subtree delegated to us. The reason when not.
fn ours(place: &Place, hierarchy_name: &str) -> Result<(), String> {
    if !hierarchy::writable(&place.dir) {
        return Err(format!(
            "{} ({hierarchy_name}) is not writable (read-only cgroup mount, or not root)",
            place.dir.display()
        ));
    }
    if place.rel == "/" || hierarchy::is_delegated(&place.dir) {
        return Ok(());
    }
    Err(format!(
        "this process's {hierarchy_name} cgroup {} is not delegated to it (run wasmbeat as a systemd \
         service with Delegate=yes, or from the hierarchy's root)",
        place.rel
    ))
}

/// In a delegated v2 subtree: move this process into a leaf of its own
/// and enable `pids` and `memory` for the subtree, so resource cgroups
/// (siblings of the leaf) get them. Returns a note for what failed.
fn enable_delegated_controllers(dir: &Path) -> Vec<String> {
    let available = hierarchy::controllers(&dir.join("cgroup.controllers"));
    let enabled = hierarchy::controllers(&dir.join("cgroup.subtree_control"));
    let wanted: Vec<&str> = ["pids", "memory"]
        .into_iter()
        .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let leaf = dir.join(format!("wasmbeat-daemon-{}", std::process::id()));
    let moved = std::fs::create_dir(&leaf)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .and_then(|()| std::fs::write(leaf.join("cgroup.procs"), "0"));
    if let Err(e) = moved {
        notes.push(format!(
            "could not move wasmbeat into its own leaf cgroup {}: {e}",
            leaf.display()
        ));
        return notes;
    }
    for c in wanted {
        if let Err(e) = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")) {
            notes.push(format!(
                "could not enable the {c} controller in {}: {e}",
                dir.display()
            ));
        }
    }
    notes
}

fn detect(places: Places) -> ConfinementSupport {
    let mut missing = Vec::new();
    let mut applied = vec!["no_new_privs".to_string()];
    let capability_bounding = super::privileges::can_drop_bounding();
    if capability_bounding {
        applied.push("capability bounding set reduced to each command's list".into());
    } else {
        missing.push(
            "capability bounding set not reduced: wasmbeat lacks CAP_SETPCAP (not root?); \
             started processes keep the daemon's bounding set (they still gain nothing through \
             setuid bits or file capabilities: no_new_privs)"
                .into(),
        );
    }
    let (eff, _, _) = super::privileges::current_sets().unwrap_or((0, 0, 0));
    // CAP_SETGID is 6, CAP_SETUID 7.
    let user_switch = eff & (1 << 6) != 0 && eff & (1 << 7) != 0;
    if !user_switch {
        missing.push("user = cannot be honoured: wasmbeat lacks CAP_SETUID/CAP_SETGID".into());
    }
    let pidfd = super::cgroup::pidfd_open(std::process::id()).is_ok();
    if pidfd {
        applied.push("signals through pidfds".into());
    } else {
        missing
            .push("pidfds unavailable (Linux < 5.3?): spawned processes cannot be started".into());
    }

    let mut bases = Bases::default();
    match &places.v2 {
        None => missing.push(
            "cgroup v2 is not mounted: no cgroup per resource; stop and run timeouts kill by \
             process group, and pid files are trusted by executable and start time"
                .into(),
        ),
        Some(p) => match ours(p, "cgroup v2") {
            Err(why) => missing.push(format!(
                "no cgroup per resource: {why}; stop and run timeouts kill by process group, and \
                 pid files are trusted by executable and start time"
            )),
            Ok(()) => {
                if p.rel != "/" {
                    missing.extend(enable_delegated_controllers(&p.dir));
                }
                let enabled = hierarchy::controllers(&p.dir.join("cgroup.subtree_control"));
                bases.v2_pids = enabled.iter().any(|c| c == "pids");
                bases.v2_memory = enabled.iter().any(|c| c == "memory");
                bases.v2_kill = kernel_at_least(5, 14);
                applied.push(format!("one cgroup per resource under {}", p.dir.display()));
                if bases.v2_kill {
                    applied.push("stop by cgroup.kill".into());
                } else {
                    missing.push(
                        "cgroup.kill unavailable (Linux < 5.14): stop kills the cgroup's \
                         processes one by one"
                            .into(),
                    );
                }
                bases.v2 = Some(p.clone());
            }
        },
    }
    let v1 = |controller: &str, place: &Option<Place>| -> Result<Place, String> {
        let p = place.as_ref().ok_or_else(|| {
            format!(
                "neither cgroup v2 nor a v1 {controller} hierarchy has the {controller} controller"
            )
        })?;
        ours(p, &format!("v1 {controller}")).map(|()| p.clone())
    };
    let pids_max = if bases.v2_pids {
        Some("v2")
    } else {
        match v1("pids", &places.v1_pids) {
            Ok(p) => {
                bases.v1_pids = Some(p);
                Some("v1")
            }
            Err(why) => {
                missing.push(format!("pids.max not applied: {why}"));
                None
            }
        }
    };
    let memory_max = if bases.v2_memory {
        Some("v2")
    } else {
        match v1("memory", &places.v1_memory) {
            Ok(p) => {
                bases.v1_memory = Some(p);
                Some("v1")
            }
            Err(why) => {
                missing.push(format!("memory.max not applied: {why}"));
                None
            }
        }
    };
    if let Some(w) = pids_max {
        applied.push(format!("pids.max ({w})"));
    }
    if let Some(w) = memory_max {
        applied.push(format!("memory limit ({w})"));
    }
    ConfinementSupport {
        no_new_privs: true,
        capability_bounding,
        user_switch,
        pidfd,
        cgroup_v2: bases.v2.as_ref().map(|p| p.dir.clone()),
        cgroup_kill: bases.v2.is_some() && bases.v2_kill,
        pids_max,
        memory_max,
        bases,
        missing,
        applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hierarchy_means_every_cgroup_item_is_reported_missing() {
        let s = detect(Places::default());
        assert!(s.cgroup_v2.is_none() && s.pids_max.is_none() && s.memory_max.is_none());
        let m = s.missing().join("\n");
        assert!(m.contains("cgroup v2 is not mounted"), "{m}");
        assert!(m.contains("pids.max not applied"), "{m}");
        assert!(m.contains("memory.max not applied"), "{m}");
    }

    #[test]
    fn an_undelegated_cgroup_is_not_used_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let s = detect(Places {
            v2: Some(Place {
                rel: "/system.slice/ssh.service".into(),
                dir: dir.path().to_path_buf(),
            }),
            ..Places::default()
        });
        assert!(s.cgroup_v2.is_none());
        assert!(
            s.missing()
                .iter()
                .any(|m| m.contains("not delegated") && m.contains("Delegate=yes")),
            "{:?}",
            s.missing()
        );
    }

    #[test]
    fn this_machine_is_described() {
        let s = support();
        let lines = s.lines();
        assert!(!lines.is_empty());
        println!("{}", lines.join("\n"));
    }
}
