//! `cargo run --release -p xtask -- bench [--quick]`: the failover rows
//! for wasmbeat, keepalived and heartbeat 3.0.6, the many-VIP rows, the
//! uplink-loss rows, then the footprint with the classic four-resource
//! group, then the report. `--resume` carries on an interrupted run
//! (see `resume.rs`).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::failover::{bench_system, row_json, Plan, Row};
use crate::interrupt::{self, interrupted};
use crate::machine::{machine, today};
use crate::resume::{build_id, Earlier};
use crate::systems::{available, Kind, Spec};
use crate::{footprint, report, uplink, vips};

/// Benchmark settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// What each row measures.
    pub plan: Plan,
    /// Only rows whose label contains one of these (empty: all).
    pub only: Vec<String>,
    /// Where the Markdown, JSON and PNG go.
    pub out_dir: PathBuf,
    /// Skip classic-timing rows (they take ~15 s per run).
    pub skip_classic: bool,
}

const USAGE: &str = "usage: bench [--quick] [--runs N] [--idle S] [--stress S] [--only WORD]... [--no-classic] [--out DIR] [--name STEM] [--note TEXT] [--resume FILE.json]\n\
    --only keeps the rows whose label contains WORD: `--only VIPs` runs just the many-VIP rows, `--only \"256 VIPs\"` one shape, `--only uplink` the uplink-loss rows; `--only =LABEL` keeps exactly that row; --resume keeps the finished rows of an interrupted run's report (same plan; with another wasmbeat binary only heartbeat's and keepalived's rows) and runs the rest";

/// Whether `label` passes the `--only` filter.
fn wanted(o: &Options, label: &str) -> bool {
    o.only.is_empty()
        || o.only.iter().any(|w| match w.strip_prefix('=') {
            Some(exact) => label == exact,
            None => label.contains(w.as_str()),
        })
}

/// The rows of this run, in order.
fn specs(o: &Options) -> Vec<Spec> {
    let s = Duration::from_secs;
    let m = Duration::from_millis;
    let mut v = vec![
        Spec {
            label: "wasmbeat fast (keepalive 50ms, deadtime 200ms)".into(),
            kind: Kind::Wasmbeat,
            interval: m(50),
            deadtime: m(200),
            stress: true,
        },
        // keepalived's backup declares the master down 3 x advert_int +
        // (256 - priority) / 256 x advert_int after its last advert: 180 ms
        // at 0.05 and priority 100. This row gives wasmbeat that window.
        Spec {
            label: "wasmbeat matched (keepalive 50ms, deadtime 180ms)".into(),
            kind: Kind::Wasmbeat,
            interval: m(50),
            deadtime: m(180),
            stress: true,
        },
        Spec {
            label: "keepalived advert_int 0.05".into(),
            kind: Kind::Keepalived,
            interval: m(50),
            deadtime: m(150),
            stress: true,
        },
        // The fastest detection offered (issue 21): 4 heartbeats per
        // deadtime, as the fast row; keepalived's backup gives up after
        // 3.6 x advert_int = 72 ms at 0.02.
        Spec {
            label: "wasmbeat fastest (keepalive 15ms, deadtime 60ms)".into(),
            kind: Kind::Wasmbeat,
            interval: m(15),
            deadtime: m(60),
            stress: true,
        },
        Spec {
            label: "keepalived advert_int 0.02".into(),
            kind: Kind::Keepalived,
            interval: m(20),
            deadtime: m(60),
            stress: true,
        },
        Spec {
            label: "heartbeat 3.0.6 fast (keepalive 50ms, deadtime 200ms)".into(),
            kind: Kind::Heartbeat,
            interval: m(50),
            deadtime: m(200),
            stress: false,
        },
    ];
    if !o.skip_classic {
        v.extend([
            Spec {
                label: "wasmbeat classic (keepalive 1s, deadtime 5s)".into(),
                kind: Kind::Wasmbeat,
                interval: s(1),
                deadtime: s(5),
                stress: false,
            },
            Spec {
                label: "keepalived advert_int 1".into(),
                kind: Kind::Keepalived,
                interval: s(1),
                deadtime: s(3),
                stress: false,
            },
            Spec {
                label: "heartbeat 3.0.6 classic (keepalive 1s, deadtime 5s)".into(),
                kind: Kind::Heartbeat,
                interval: s(1),
                deadtime: s(5),
                stress: false,
            },
        ]);
    }
    v.retain(|s| wanted(o, &s.label));
    v
}

/// Entry point for `bench [--quick] [--runs N] [--idle S] [--stress S] [--only WORD]... [--no-classic]`.
pub fn main(args: &[&str]) -> Result<()> {
    let mut o = Options {
        plan: Plan {
            runs: 10,
            idle: Duration::from_secs(60),
            stress: Duration::from_secs(120),
        },
        only: Vec::new(),
        out_dir: PathBuf::from("bench/results"),
        skip_classic: false,
    };
    let mut note = String::new();
    let mut file = None;
    let mut resume = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| -> Result<String> {
            it.next()
                .map(|s| s.to_string())
                .with_context(|| format!("{a} needs {what}"))
        };
        match *a {
            "--quick" => {
                o.plan.runs = 3;
                o.plan.idle = Duration::from_secs(20);
                o.plan.stress = Duration::from_secs(30);
            }
            "--runs" => o.plan.runs = val("a count")?.parse().context("--runs")?,
            "--idle" => {
                o.plan.idle = Duration::from_secs(val("seconds")?.parse().context("--idle")?)
            }
            "--stress" => {
                o.plan.stress = Duration::from_secs(val("seconds")?.parse().context("--stress")?)
            }
            "--only" => o.only.push(val("a label word")?),
            "--out" => o.out_dir = PathBuf::from(val("a directory")?),
            "--no-classic" => o.skip_classic = true,
            "--note" => note = val("a sentence")?,
            "--name" => file = Some(val("a file stem")?),
            "--resume" => resume = Some(PathBuf::from(val("a report's .json")?)),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark builds network namespaces: run it as root");
    }
    interrupt::install();
    // The daemon under test and the lab's HTTP responder, built next to us.
    let exe = std::env::current_exe()?;
    let (bin, responder) = (
        exe.with_file_name("wasmbeat"),
        exe.with_file_name("wasmbeat-lab"),
    );
    // The daemon compiles agents with the helper beside it (a fresh lab
    // has an empty agent cache).
    let compiler = exe.with_file_name("wasmbeat-compile");
    for b in [&bin, &compiler, &responder] {
        if !b.exists() {
            bail!(
                "{} not found: scripts/build.sh && cargo build --release -p wasmbeat-lab -p xtask",
                b.display()
            );
        }
    }
    let build = build_id(&bin)?;
    let earlier = match &resume {
        Some(path) => Some(Earlier::load(path, &o.plan, &build)?),
        None => None,
    };
    // A finished row of the interrupted run, announced as kept.
    let kept = Cell::new(0);
    let keep = |section: &str, key: &str, value: &str, label: &str, kind: Kind| {
        let row = earlier.as_ref()?.row(section, key, value, kind)?;
        println!("{label}: kept from the interrupted run");
        kept.set(kept.get() + 1);
        Some(row)
    };
    let date = today();
    let run = Invocation {
        started: Instant::now(),
        machine: machine(),
        file: file.unwrap_or_else(|| date.clone()),
        date,
        note,
        build,
        plan: &o.plan,
        out_dir: &o.out_dir,
        earlier: earlier.as_ref(),
    };
    println!("machine: {}; wasmbeat binary {}", run.machine, run.build);
    let mut t = report::Tables::default();
    // After SIGINT the row in progress is kept (aborted), the rest are
    // skipped, and the report is still written: a long run stopped near
    // its end keeps what it measured.
    for spec in specs(&o) {
        if interrupt::requested() {
            break;
        }
        if let Some(v) = keep("rows", "label", &spec.label, &spec.label, spec.kind) {
            t.rows.push((spec, v));
            continue;
        }
        if !available(spec.kind) {
            println!("{}: not installed, skipped", spec.label);
            continue;
        }
        println!("{}:", spec.label);
        let mut row = Row::default();
        if let Err(e) = bench_system(&spec, &bin, &responder, &o.plan, &mut row) {
            println!("  {}: aborted: {e:#}", spec.label);
            row.aborted(&e);
        }
        let v = row_json(&spec, &row);
        t.rows.push((spec, v));
        run.checkpoint(&t, kept.get());
    }
    // Many VIPs (issue 21): after the one-VIP rows, whose figures they
    // are read against.
    for v in vips::specs()
        .into_iter()
        .filter(|v| wanted(&o, &v.spec.label))
    {
        if interrupt::requested() {
            break;
        }
        if let Some(json) = keep(
            "vip_rows",
            "label",
            &v.spec.label,
            &v.spec.label,
            v.spec.kind,
        ) {
            t.vip_rows.push((v, json));
            continue;
        }
        if !available(v.spec.kind) {
            println!("{}: not installed, skipped", v.spec.label);
            continue;
        }
        println!("{}:", v.spec.label);
        let mut row = vips::VipRow::default();
        if let Err(e) = vips::bench_vips(&v, &bin, &responder, o.plan.runs, &mut row) {
            println!("  {}: aborted: {e:#}", v.spec.label);
            row.aborted(&e);
        }
        let json = vips::row_json(&v, &row);
        t.vip_rows.push((v, json));
        run.checkpoint(&t, kept.get());
    }
    // Uplink loss (issue 18): its own two-network lab per row. A row that
    // cannot run here stays in the report with the reason.
    for u in uplink::specs()
        .into_iter()
        .filter(|u| wanted(&o, &u.spec.label))
    {
        if interrupt::requested() {
            break;
        }
        if let Some(json) = keep(
            "uplink_rows",
            "label",
            &u.spec.label,
            &u.spec.label,
            u.spec.kind,
        ) {
            t.uplink_rows.push((u, json));
            continue;
        }
        let row = if let Some(why) = uplink::missing(&u) {
            println!("{}: not measured: {why}", u.spec.label);
            uplink::UplinkRow::not_measured(&why)
        } else {
            println!("{}:", u.spec.label);
            let mut row = uplink::UplinkRow::default();
            if let Err(e) = uplink::bench_uplink(&u, &bin, &responder, o.plan.runs, &mut row) {
                println!("  {}: aborted: {e:#}", u.spec.label);
                row.aborted(&e);
            }
            row
        };
        let json = uplink::row_json(&u, &row);
        t.uplink_rows.push((u, json));
        run.checkpoint(&t, kept.get());
    }
    for kind in [Kind::Wasmbeat, Kind::Heartbeat] {
        if interrupt::requested() {
            break;
        }
        let name = if kind == Kind::Wasmbeat {
            "wasmbeat"
        } else {
            "heartbeat 3.0.6"
        };
        let label = format!("{name} four resources");
        if !wanted(&o, &label) {
            continue;
        }
        if let Some(v) = keep(
            "four_resources",
            "system",
            &format!("{kind:?}"),
            &label,
            kind,
        ) {
            t.four.push(v);
            continue;
        }
        let servers = ["/usr/sbin/named", "/usr/sbin/apache2", "/usr/sbin/mariadbd"];
        if !available(kind) || !servers.iter().all(|b| Path::new(b).exists()) {
            println!("{label}: not installed, skipped");
            continue;
        }
        println!("{label}:");
        match footprint::run(kind, &bin, o.plan.idle) {
            Ok(v) => t.four.push(v),
            Err(e) => {
                println!("  {label}: failed: {e:#}");
                t.four.push(json!({"label": label, "system": format!("{kind:?}"), "errors": [format!("{e:#}")]}));
            }
        }
        run.checkpoint(&t, kept.get());
    }
    let mut stopped = String::new();
    if interrupt::requested() {
        let minutes = run.started.elapsed().as_secs_f64() / 60.0;
        let last = (t.rows.iter().map(|(s, _)| s.label.as_str()))
            .chain(t.vip_rows.iter().map(|(v, _)| v.spec.label.as_str()))
            .chain(t.uplink_rows.iter().map(|(u, _)| u.spec.label.as_str()))
            .chain(t.four.iter().filter_map(|f| f["label"].as_str()))
            .last()
            .unwrap_or("none");
        // The signal may land inside that row (which then reports itself
        // aborted) or just after it finished.
        stopped = format!(
            "Interrupted (SIGINT/SIGTERM) after {minutes:.1} min, during or right after the row {last:?}: the rows after it did not run."
        );
        println!("{stopped} Writing the report of what ran.");
    }
    let report = run.report(&stopped, kept.get());
    report::write(&report, &t, run.out_dir)?;
    // Still a failure for whoever waits on the exit status.
    interrupted()
}

/// What every report of one invocation shares, the final one and the
/// checkpoints written after each row.
struct Invocation<'a> {
    started: Instant,
    machine: String,
    /// UTC date at the start: a run that crosses midnight keeps one file.
    date: String,
    file: String,
    /// From `--note`.
    note: String,
    build: String,
    plan: &'a Plan,
    out_dir: &'a Path,
    earlier: Option<&'a Earlier>,
}

impl Invocation<'_> {
    /// The report as of now, `more` appended to the `--note` text.
    fn report(&self, more: &str, kept: usize) -> report::Report {
        let resumed = self.earlier.map(|e| e.note(kept)).unwrap_or_default();
        let note = [self.note.as_str(), more, &resumed]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let minutes =
            self.started.elapsed().as_secs_f64() / 60.0 + self.earlier.map_or(0.0, |e| e.minutes());
        report::Report {
            file: self.file.clone(),
            date: self.date.clone(),
            machine: self.machine.clone(),
            note,
            runs: self.plan.runs,
            idle_s: self.plan.idle.as_secs(),
            stress_s: self.plan.stress.as_secs(),
            minutes,
            build: self.build.clone(),
        }
    }

    /// The JSON of the rows finished so far, which `--resume` can carry
    /// on: a run killed outright (a closed session, an OOM kill) writes
    /// no report, and a three-hour run should not lose all of it. The
    /// final report overwrites it.
    fn checkpoint(&self, t: &report::Tables, kept: usize) {
        let minutes = self.started.elapsed().as_secs_f64() / 60.0;
        let more = format!(
            "Checkpoint after {minutes:.1} min: the run was still going; if no .md was written beside this file, it was killed, and `--resume` with this file carries it on."
        );
        let r = self.report(&more, kept);
        if let Err(e) = report::write_json(&r, t, self.out_dir) {
            println!("checkpoint not written: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_checkpoint_is_a_report_that_resume_carries_on() {
        let dir = std::env::temp_dir().join(format!("wbb-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let plan = Plan {
            runs: 10,
            idle: Duration::from_secs(60),
            stress: Duration::from_secs(120),
        };
        let run = Invocation {
            started: Instant::now(),
            machine: "m".into(),
            date: "2026-12-06".into(),
            file: "cp".into(),
            note: "by hand".into(),
            build: "abcd".into(),
            plan: &plan,
            out_dir: &dir,
            earlier: None,
        };
        let o = Options {
            plan: plan.clone(),
            only: vec![],
            out_dir: dir.clone(),
            skip_classic: false,
        };
        let spec = specs(&o).remove(0);
        let row = row_json(&spec, &Row::default());
        let t = report::Tables {
            rows: vec![(spec.clone(), row)],
            ..Default::default()
        };
        run.checkpoint(&t, 0);
        let path = dir.join("cp.json");
        let e = Earlier::load(&path, &plan, "abcd").expect("a checkpoint loads for --resume");
        let kept = e.row("rows", "label", &spec.label, spec.kind);
        assert!(kept.is_some(), "the finished row is kept");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let note = doc["note"].as_str().unwrap();
        assert!(
            note.starts_with("by hand Checkpoint after") && note.contains("--resume"),
            "{note}"
        );
        assert!(!dir.join("cp.json.tmp").exists(), "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_matches_a_word_anywhere_or_a_whole_label_after_an_equals_sign() {
        let o = |only: &[&str]| Options {
            plan: Plan {
                runs: 1,
                idle: Duration::ZERO,
                stress: Duration::ZERO,
            },
            only: only.iter().map(|w| w.to_string()).collect(),
            out_dir: PathBuf::new(),
            skip_classic: false,
        };
        let vip = "256 VIPs in one group: keepalived advert_int 0.05";
        assert!(wanted(&o(&[]), vip));
        assert!(wanted(&o(&["advert_int 0.05"]), vip));
        assert!(!wanted(&o(&["=keepalived advert_int 0.05"]), vip));
        assert!(wanted(
            &o(&["=keepalived advert_int 0.05"]),
            "keepalived advert_int 0.05"
        ));
    }
}
