//! Configuration files of the real services the lab runs under agents
//! (BIND, Apache, MariaDB): small, private to a directory, listening only
//! on the address given, so several can run side by side in namespaces.

use std::path::Path;
use std::process::Command;

use crate::LabError;

/// The zone every lab named serves.
pub const ZONE: &str = "wasmbeat.test";

/// named.conf for a primary of [`ZONE`] answering on `listen`:53, with
/// its pid file, zone file and working files under `dir`.
pub fn named_conf(dir: &str, listen: &str) -> String {
    format!(
        "options {{ directory \"{dir}\"; pid-file \"{dir}/named.pid\"; listen-on port 53 {{ {listen}; }}; \
         listen-on-v6 {{ none; }}; recursion no; session-keyfile none; }};\n\
         controls {{ }};\n\
         zone \"{ZONE}\" {{ type primary; file \"{dir}/db.test\"; }};\n"
    )
}

/// The zone file `db.test` for [`named_conf`]: `ns` is `ns_ip`, `www` is
/// `www_ip`.
pub fn named_zone(ns_ip: &str, www_ip: &str) -> String {
    format!(
        "$TTL 60\n@ IN SOA ns.{ZONE}. root.{ZONE}. 1 60 60 60 60\n@ IN NS ns\n\
         ns IN A {ns_ip}\nwww IN A {www_ip}\n"
    )
}

/// A minimal Apache config (event MPM, three modules) serving `dir`/www on
/// `listen`; its runtime files go under `dir`. The agent sets the pid file.
pub fn apache_conf(dir: &str, listen: &str) -> String {
    format!(
        "ServerRoot /etc/apache2\nServerName wasmbeat-test\nListen {listen}\n\
         LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
         LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
         LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so\n\
         User ${{APACHE_RUN_USER}}\nGroup ${{APACHE_RUN_GROUP}}\n\
         DefaultRuntimeDir {dir}\nPidFile /nonexistent/overridden.pid\nMutex file:{dir} default\n\
         ErrorLog {dir}/error.log\nDocumentRoot {dir}/www\nDirectoryIndex index.html\n\
         <Directory {dir}/www>\n  Require all granted\n</Directory>\n"
    )
}

/// `[mysqld]` settings for a small test server that starts in seconds.
pub const MARIADB_SMALL: &str = "skip-name-resolve\ninnodb_buffer_pool_size=16M\n\
                                 innodb_log_file_size=8M\nperformance_schema=OFF\nskip-log-bin\n";

/// `chown -R user path`: the service's user must write its directory.
pub fn chown(user: &str, path: &Path) -> Result<(), LabError> {
    crate::run(Command::new("chown").arg("-R").arg(user).arg(path)).map(|_| ())
}
