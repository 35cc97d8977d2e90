//! Programs that run other programs: shells, interpreters and launchers.
//! Granting one with an argument an agent or a parameter can influence is
//! granting a root shell, so a command whose program is one of these must
//! be written out in full by the administrator: no holes, and never
//! declared by an agent.

use std::path::Path;

/// Exact program names.
const EXACT: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "ash",
    "zsh",
    "ksh",
    "mksh",
    "pdksh",
    "csh",
    "tcsh",
    "fish",
    "rbash",
    "busybox",
    "toybox",
    "env",
    "nice",
    "nohup",
    "setsid",
    "timeout",
    "stdbuf",
    "chroot",
    "unshare",
    "nsenter",
    "sudo",
    "su",
    "runuser",
    "doas",
    "pkexec",
    "setpriv",
    "capsh",
    "systemd-run",
    "script",
    "xargs",
    "find",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
    "expect",
    "tclsh",
    "wish",
    "node",
    "nodejs",
    "deno",
    "bun",
    "java",
    "jshell",
    "gdb",
    "strace",
    "ltrace",
    "socat",
    "ncat",
    "nc",
    "netcat",
    "ssh",
    "ip",
    "flock",
    "watch",
    "taskset",
    "ionice",
    "chrt",
    "prlimit",
    "start-stop-daemon",
    "run-parts",
    "make",
    "vim",
    "vi",
    "emacs",
    "ed",
    "less",
    "more",
    "man",
    "tar",
    "zip",
    "rsync",
    "dpkg",
    "apt",
    "apt-get",
    "Rscript",
    "R",
    "osqueryi",
    "sqlite3",
    "mysql",
    "mariadb",
    "psql",
];

/// Name prefixes (versioned interpreters: python3.11, perl5.36, php8.2).
const PREFIXES: &[&str] = &[
    "python", "perl", "ruby", "php", "lua", "luajit", "guile", "pypy", "irb",
];

/// Whether `program` (its file name, after resolving symlinks when it
/// exists) is a shell, interpreter or launcher.
pub fn is_launcher(program: &Path) -> bool {
    let resolved = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    [program, resolved.as_path()].iter().any(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
            EXACT.contains(&name) || PREFIXES.iter().any(|pre| name.starts_with(pre))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_and_interpreters_are_launchers() {
        for p in [
            "/bin/sh",
            "/usr/bin/bash",
            "/usr/bin/python3",
            "/usr/bin/python3.11",
            "/usr/bin/perl",
            "/usr/bin/env",
            "/bin/busybox",
            "/usr/bin/sudo",
            "/usr/sbin/ip",
        ] {
            assert!(is_launcher(Path::new(p)), "{p}");
        }
        for p in [
            "/usr/sbin/apache2",
            "/usr/sbin/named",
            "/usr/sbin/mariadbd",
            "/usr/sbin/nginx",
        ] {
            assert!(!is_launcher(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn a_symlink_to_a_shell_is_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("innocent");
        std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
        assert!(is_launcher(&link));
    }
}
