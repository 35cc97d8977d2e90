//! heartbeat's parameter table: what its client API answers for a
//! configuration parameter (`cl_status hbparameter -p NAME`).
//!
//! heartbeat 3.0.6 (`config.c`: the `Directives[]` table, `add_option`,
//! `init_config`) records each one-value directive's value *as written*
//! (`keepalive 1` answers `1`, not `1000ms`); a directive left out answers
//! its fixed default (`keepalive` `1000ms`), and the ones derived from
//! deadtime answer the derived figure in milliseconds (`warntime`
//! `15000ms`). Lists (`node`, media), whole-line directives (`stonith`,
//! `respawn`, `apiauth`) and `nice_failback` are not recorded: asking for
//! them fails, as in heartbeat.

use std::collections::BTreeMap;

use super::{syslog_facility_code, HaCf, DEFAULT_UDPPORT};

/// The directives heartbeat records, with the fixed default it records
/// when the directive is absent (None: absent means no value, or a value
/// derived in [`HaCf::parameters`]).
const RECORDED: &[(&str, Option<&str>)] = &[
    ("cluster", Some("linux-ha")),
    ("hopfudge", Some("1")),
    ("keepalive", Some("1000ms")),
    ("deadtime", Some("30000ms")),
    ("deadping", None),
    ("initdead", None),
    ("warntime", None),
    ("watchdog", None),
    ("baud", Some("19200")),
    ("udpport", None),
    ("logfacility", None),
    ("logfile", None),
    ("debugfile", None),
    ("auto_failback", Some("legacy")),
    ("rtprio", None),
    ("hbgenmethod", Some("file")),
    ("realtime", Some("true")),
    ("debug", Some("0")),
    ("msgfmt", Some("classic")),
    ("use_logd", None),
    ("conn_logd_time", Some("60")),
    ("log_badpack", Some("true")),
    ("syslogmsgfmt", Some("true")),
    ("coredumps", Some("true")),
    ("coreroot", None),
    ("crm_daemon_dir", None),
    ("crmd_spawns_pengine", None),
    ("pacemaker", Some("false")),
    ("autojoin", Some("none")),
    ("uuidfrom", Some("file")),
    ("compression", Some("zlib")),
    ("compression_threshold", Some("2")),
    ("traditional_compression", Some("no")),
    ("max_rexmit_delay", Some("250")),
    ("record_config_changes", Some("on")),
    ("record_pengine_inputs", Some("on")),
    ("enable_config_writes", Some("on")),
    ("memreserve", Some("6500")),
    ("quorum_server", None),
];

fn ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl HaCf {
    /// heartbeat's parameter table for this configuration: name -> value
    /// as its client API answers it.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        let mut table = BTreeMap::new();
        for (name, default) in RECORDED {
            let written = match *name {
                // `crm` is the old spelling; heartbeat records it as pacemaker.
                "pacemaker" => self
                    .written
                    .get("pacemaker")
                    .or_else(|| self.written.get("crm")),
                n => self.written.get(n),
            };
            let derived = || match *name {
                "warntime" => Some(ms(self.warntime)),
                "initdead" => Some(ms(self.initdead)),
                "deadping" => Some(ms(self.deadping)),
                // heartbeat asks /etc/services for ha-cluster (694).
                "udpport" => Some(DEFAULT_UDPPORT.to_string()),
                _ => None,
            };
            if let Some(v) = written
                .cloned()
                .or_else(|| default.map(str::to_string))
                .or_else(derived)
            {
                table.insert(name.to_string(), v);
            }
        }
        // Logging to syslog without files: heartbeat points the files at
        // /dev/null; with no logging at all it turns logd on.
        let facility = self
            .logfacility
            .as_deref()
            .and_then(syslog_facility_code)
            .unwrap_or(0);
        if facility > 0 {
            for file in ["logfile", "debugfile"] {
                table
                    .entry(file.to_string())
                    .or_insert_with(|| "/dev/null".into());
            }
        } else if self.logfile.is_none() && self.debugfile.is_none() {
            table
                .entry("use_logd".to_string())
                .or_insert_with(|| "yes".into());
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> BTreeMap<String, String> {
        HaCf::parse(text).0.parameters()
    }

    #[test]
    fn values_answer_as_written() {
        let t = table(
            "keepalive 1\ndeadtime 5\nwarntime 3\ninitdead 10\nudpport 694\nbcast eth0\n\
             auto_failback on\nnode a\nnode b\nlogfacility none\nlogfile /tmp/x\ncrm off\n",
        );
        assert_eq!(t["keepalive"], "1");
        assert_eq!(t["deadtime"], "5");
        assert_eq!(t["warntime"], "3");
        assert_eq!(t["initdead"], "10");
        assert_eq!(t["udpport"], "694");
        assert_eq!(t["auto_failback"], "on");
        assert_eq!(t["logfile"], "/tmp/x");
        assert_eq!(t["pacemaker"], "off");
        assert!(!t.contains_key("node"));
        assert!(!t.contains_key("bcast"));
        assert!(!t.contains_key("crm"));
        assert!(!t.contains_key("use_logd"));
    }

    #[test]
    fn absent_values_answer_heartbeats_defaults_and_derived_figures() {
        let t = table("deadtime 8\nbcast eth0\nnode a\nlogfacility local0\n");
        assert_eq!(t["keepalive"], "1000ms");
        assert_eq!(t["deadtime"], "8");
        assert_eq!(t["warntime"], "4000ms");
        assert_eq!(t["initdead"], "16000ms");
        assert_eq!(t["deadping"], "8000ms");
        assert_eq!(t["udpport"], "694");
        assert_eq!(t["auto_failback"], "legacy");
        assert_eq!(t["logfile"], "/dev/null");
        assert_eq!(t["debugfile"], "/dev/null");
        assert_eq!(t["pacemaker"], "false");
        assert!(!t.contains_key("watchdog"));
        let t = table("bcast eth0\nnode a\n");
        assert_eq!(t["use_logd"], "yes");
        assert_eq!(t["deadtime"], "30000ms");
        assert_eq!(t["initdead"], "30000ms");
    }
}
