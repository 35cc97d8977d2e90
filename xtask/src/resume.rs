//! `bench --resume FILE.json`: carry on a full-length run that was
//! interrupted, keeping the rows it finished.
//!
//! A full-length run takes longer than many working windows (about three
//! hours, most of it heartbeat's many-VIP rows), and an interrupted run
//! writes the report of what it measured. Resuming re-runs only the rows
//! that report lacks or that the interruption cut short, with the same
//! plan, and writes one report saying it was made in two invocations. A
//! row is taken from the earlier report whole or not at all.
//!
//! The wasmbeat binary is identified by its SHA-256. With another binary
//! (a fix landed between the invocations) every wasmbeat row is measured
//! again and only heartbeat's and keepalived's rows are kept: they do not
//! run wasmbeat, and they are the slow ones (heartbeat's many-VIP rows).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::failover::Plan;
use crate::systems::Kind;

/// What every row of an interrupted row says (see `interrupt.rs`).
const INTERRUPTED: &str = "interrupted; lab torn down";

/// The wasmbeat binary's identity: the first 16 hex digits of its SHA-256.
pub fn build_id(bin: &Path) -> Result<String> {
    let bytes = std::fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The report of the interrupted invocation.
pub struct Earlier {
    path: PathBuf,
    doc: Value,
    /// This invocation's wasmbeat binary, when the earlier one measured
    /// another (its wasmbeat rows are then not kept).
    other_build: Option<String>,
}

impl Earlier {
    /// Load `path` and check it was made with this plan and this binary.
    pub fn load(path: &Path, plan: &Plan, build: &str) -> Result<Earlier> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Earlier::check(path, doc, plan, build)
    }

    fn check(path: &Path, doc: Value, plan: &Plan, build: &str) -> Result<Earlier> {
        let p = path.display();
        let same = [
            ("runs", plan.runs as u64),
            ("idle_s", plan.idle.as_secs()),
            ("stress_s", plan.stress.as_secs()),
        ];
        for (key, want) in same {
            if doc[key].as_u64() != Some(want) {
                bail!(
                    "{p}: {key} was {} there and is {want} here: resume with the same --runs, --idle and --stress",
                    doc[key]
                );
            }
        }
        let other_build = match doc["build"].as_str() {
            Some(b) if b == build => None,
            Some(_) => Some(build.to_string()),
            None => bail!(
                "{p} does not say which wasmbeat binary it measured (made before --resume existed)"
            ),
        };
        Ok(Earlier {
            path: path.to_path_buf(),
            doc,
            other_build,
        })
    }

    /// Whether `kind`'s rows can be kept: all of them with the same
    /// wasmbeat binary, else only the other systems'.
    fn keeps(&self, kind: Kind) -> bool {
        self.other_build.is_none() || kind != Kind::Wasmbeat
    }

    /// The finished row of `section` (`rows`, `vip_rows`, `uplink_rows`,
    /// `four_resources`) whose `key` field is `value`, measuring `kind`;
    /// None if it did not run, the interruption cut it short, or it
    /// measured another wasmbeat binary.
    pub fn row(&self, section: &str, key: &str, value: &str, kind: Kind) -> Option<Value> {
        if !self.keeps(kind) {
            return None;
        }
        let row = self.doc[section]
            .as_array()?
            .iter()
            .find(|r| r[key].as_str() == Some(value))?;
        let cut = row["errors"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e.as_str().is_some_and(|e| e.contains(INTERRUPTED)))
        });
        (!cut).then(|| row.clone())
    }

    /// Wall time of the earlier invocation, in minutes.
    pub fn minutes(&self) -> f64 {
        self.doc["minutes"].as_f64().unwrap_or(0.0)
    }

    /// The report's sentence about the two invocations.
    pub fn note(&self, kept: usize) -> String {
        let same = match &self.other_build {
            None => "same plan and binary".to_string(),
            Some(now) => format!(
                "same plan; the earlier invocation measured wasmbeat binary {}, so every wasmbeat row is from this one (binary {now}) and only heartbeat's and keepalived's rows were kept",
                self.doc["build"].as_str().unwrap_or("?")
            ),
        };
        format!(
            "Resumed: {kept} row(s) come from the interrupted invocation of {} ({}; {:.0} min, machine then: {}), the rest from this one, {same}.",
            self.doc["date"].as_str().unwrap_or("?"),
            self.path.display(),
            self.minutes(),
            self.doc["machine"].as_str().unwrap_or("?"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn plan() -> Plan {
        Plan {
            runs: 10,
            idle: Duration::from_secs(60),
            stress: Duration::from_secs(120),
        }
    }

    fn doc() -> Value {
        json!({
            "date": "2026-12-05", "machine": "m", "runs": 10, "idle_s": 60, "stress_s": 120,
            "minutes": 95.0, "build": "abcd",
            "rows": [
                {"label": "wasmbeat fast", "errors": []},
                {"label": "keepalived advert_int 0.05", "errors": ["aborted: interrupted; lab torn down"]},
            ],
            "four_resources": [{"system": "Wasmbeat", "rss_kib": 1}],
        })
    }

    /// Whether `e` keeps the `rows` row `label` of `kind`.
    fn kept(e: &Earlier, label: &str, kind: Kind) -> bool {
        e.row("rows", "label", label, kind).is_some()
    }

    #[test]
    fn finished_rows_are_kept_and_a_row_the_interruption_cut_is_run_again() {
        let e = Earlier::check(Path::new("x.json"), doc(), &plan(), "abcd").unwrap();
        assert!(kept(&e, "wasmbeat fast", Kind::Wasmbeat));
        assert!(!kept(&e, "keepalived advert_int 0.05", Kind::Keepalived));
        assert!(!kept(&e, "never ran", Kind::Heartbeat));
        assert!(e
            .row("four_resources", "system", "Wasmbeat", Kind::Wasmbeat)
            .is_some());
        assert!(e
            .row("vip_rows", "label", "wasmbeat fast", Kind::Wasmbeat)
            .is_none());
        assert!(e.note(2).contains("2 row(s)"));
    }

    #[test]
    fn with_another_binary_only_the_other_systems_rows_are_kept() {
        let mut d = doc();
        d["rows"][1]["errors"] = json!([]);
        let e = Earlier::check(Path::new("x.json"), d, &plan(), "ef01").unwrap();
        assert!(!kept(&e, "wasmbeat fast", Kind::Wasmbeat));
        assert!(kept(&e, "keepalived advert_int 0.05", Kind::Keepalived));
        let note = e.note(1);
        assert!(
            note.contains("binary abcd") && note.contains("(binary ef01)"),
            "{note}"
        );
    }

    #[test]
    fn another_plan_or_a_report_without_a_binary_is_refused() {
        let mut other = plan();
        other.runs = 3;
        let err = Earlier::check(Path::new("x.json"), doc(), &other, "abcd")
            .err()
            .unwrap();
        assert!(format!("{err}").contains("runs was 10 there and is 3 here"));
        let mut old = doc();
        old.as_object_mut().unwrap().remove("build");
        assert!(Earlier::check(Path::new("x.json"), old, &plan(), "abcd").is_err());
    }
}
