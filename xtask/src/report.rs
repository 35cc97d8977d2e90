//! The benchmark's outputs: a Markdown table (stdout and
//! `bench/results/<date>.md`), the raw numbers as JSON, and PNG strip
//! charts of the failover distributions per system, of the many-VIP rows
//! and of the uplink-loss rows.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::{json, Value};

use crate::stats::fmt_cell;
use crate::systems::{Kind, Spec};
use crate::uplink::UplinkSpec;
use crate::vips::VipSpec;

/// Run-wide facts printed above the table.
pub struct Report {
    /// UTC date of the run (file name).
    pub date: String,
    /// CPU, cores, kernel, load.
    pub machine: String,
    /// Free text from `--note`.
    pub note: String,
    /// Failover runs per scenario.
    pub runs: usize,
    /// Idle period (s).
    pub idle_s: u64,
    /// Stress duration (s).
    pub stress_s: u64,
    /// Wall time of the whole run.
    pub minutes: f64,
    /// Output file stem (the date unless `--name` was given).
    pub file: String,
    /// The wasmbeat binary measured (`resume::build_id`).
    pub build: String,
}

/// The rows of one run, section by section, as the report and the
/// checkpoints write them.
#[derive(Default)]
pub struct Tables {
    /// One VIP, per system and timing.
    pub rows: Vec<(Spec, Value)>,
    /// Many VIPs.
    pub vip_rows: Vec<(VipSpec, Value)>,
    /// Uplink loss.
    pub uplink_rows: Vec<(UplinkSpec, Value)>,
    /// The four-resource footprint.
    pub four: Vec<Value>,
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The failover and two-node footprint tables.
fn failover_tables(rows: &[(Spec, Value)]) -> String {
    let mut s = String::new();
    s.push_str(
        "\nClient-visible times in ms as min / median / p95 / max: from the event to the first HTTP answer \
         through the VIP from the expected node (a new probe every 10 ms from the client namespace).\n\n\
         | system | link-down failover | failback on link-up | SIGKILL failover | restart after SIGKILL → node1 | start → serving (1 node) |\n\
         |---|---|---|---|---|---|\n",
    );
    for (spec, v) in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            spec.label,
            fmt_cell(&v["linkdown_failover_ms"]),
            fmt_cell(&v["linkdown_failback_ms"]),
            fmt_cell(&v["sigkill_failover_ms"]),
            fmt_cell(&v["sigkill_restart_to_node1_ms"]),
            f(&v["start_to_serving_ms"])
                .map(|x| format!("{x:.0}"))
                .unwrap_or("–".into()),
        ));
    }
    s.push_str(
        "\nFootprint in a healthy two-node cluster over the idle window (sum over each daemon's processes; \
         CPU % from the scheduler's run time of every thread, `*` where a thread ended in the window and \
         clock ticks were counted instead) and false failovers under stress (both cores busy with CPU hogs, 1% random frame loss between all nodes):\n\n\
         | system | active: procs, RSS KiB, CPU % | standby: procs, RSS KiB, CPU % | stress: node2 takeovers logged / seen by client |\n\
         |---|---|---|---|\n",
    );
    for (spec, v) in rows {
        let side = |w: &str| {
            let x = &v["idle"][w];
            match (
                x["processes"].as_u64(),
                x["rss_kib"].as_u64(),
                f(&x["cpu_percent"]),
            ) {
                (Some(p), Some(k), Some(c)) => format!("{p}, {k}, {c:.2}{}", tick_mark(x)),
                _ => "–".into(),
            }
        };
        let stress = match (
            v["stress"]["takeovers_logged_by_node2"].as_u64(),
            v["stress"]["client_saw_node2"].as_u64(),
            f(&v["stress"]["seconds"]),
        ) {
            (Some(l), Some(c), Some(sec)) => format!("{l} / {c} in {sec:.0} s"),
            _ => "not run".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            spec.label,
            side("active"),
            side("standby"),
            stress
        ));
    }
    s
}

fn markdown(r: &Report, t: &Tables) -> String {
    let Tables {
        rows,
        vip_rows,
        uplink_rows,
        four,
    } = t;
    let mut s = String::new();
    // The idle window and stress belong to the one-VIP rows and the
    // four-resource footprint: a run without them does not claim them.
    let windows = if rows.is_empty() && four.is_empty() {
        String::new()
    } else {
        format!(", {} s idle window, {} s stress", r.idle_s, r.stress_s)
    };
    s.push_str(&format!(
        "## Failover benchmark, {}\n\nMachine: {}. wasmbeat binary {} (SHA-256 prefix). {} runs per scenario{windows}; whole run {:.1} min.\n",
        r.date, r.machine, r.build, r.runs, r.minutes
    ));
    if !r.note.is_empty() {
        s.push_str(&format!("\n**Note:** {}\n", r.note));
    }
    if !rows.is_empty() {
        s.push_str(&failover_tables(rows));
    }
    if !vip_rows.is_empty() {
        s.push_str(&vip_table(vip_rows));
    }
    if !uplink_rows.is_empty() {
        s.push_str(&uplink_table(uplink_rows));
    }
    if !four.is_empty() {
        s.push_str(
            "\nFootprint with the classic four-resource group running on one node (haresources \
             `node1 IPaddr::VIP named httpd mysqld`; real BIND, Apache and MariaDB serving a client; \
             classic timings). Counted: the daemon's own processes; the servers and resource scripts \
             are the same work under both systems.\n\n\
             | system | processes | RSS KiB (MiB) | idle CPU % | start → all four serving (ms) |\n\
             |---|---|---|---|---|\n",
        );
        for v in four {
            let label = v["label"].as_str().unwrap_or("?");
            match (
                v["processes"].as_u64(),
                v["rss_kib"].as_u64(),
                f(&v["cpu_percent"]),
            ) {
                (Some(p), Some(k), Some(c)) => s.push_str(&format!(
                    "| {label} | {p} | {k} ({:.1}) | {c:.2}{} | {:.0} |\n",
                    k as f64 / 1024.0,
                    tick_mark(v),
                    f(&v["start_to_all_serving_ms"]).unwrap_or(f64::NAN)
                )),
                _ => s.push_str(&format!(
                    "| {label} | failed: {} | | | |\n",
                    v["errors"][0].as_str().map(headline).unwrap_or_default()
                )),
            }
        }
    }
    let labelled = rows
        .iter()
        .map(|(s, v)| (&s.label, v))
        .chain(vip_rows.iter().map(|(s, v)| (&s.spec.label, v)))
        .chain(uplink_rows.iter().map(|(s, v)| (&s.spec.label, v)));
    let errors: Vec<String> = labelled
        .flat_map(|(label, v)| {
            v["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(move |e| e.as_str().map(|e| format!("- {label}: {}", headline(e))))
        })
        .collect();
    if !errors.is_empty() {
        s.push_str("\nRuns that failed (not in the numbers above):\n\n");
        s.push_str(&errors.join("\n"));
        s.push('\n');
    }
    s.push_str(&targets(rows, vip_rows, four));
    s
}

/// One line of an error for the table: the cause, not a log banner.
fn headline(e: &str) -> String {
    let first = e.lines().next().unwrap_or("");
    if first.contains("(last 15 lines)") {
        let last = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        format!(
            "{} {}",
            first.split("---").next().unwrap_or(""),
            last.trim_start_matches(": ")
        )
    } else {
        first.to_string()
    }
}

fn p95(v: &Value, key: &str) -> Option<f64> {
    f(&v[key]["p95"])
}

/// The targets, checked against the measured numbers.
fn targets(rows: &[(Spec, Value)], vip_rows: &[(VipSpec, Value)], four: &[Value]) -> String {
    let mut s = String::from("\nTargets:\n\n");
    for (spec, v) in vip_rows
        .iter()
        .filter(|(sp, _)| sp.spec.kind == Kind::Wasmbeat)
    {
        let bound = spec.spec.deadtime.as_secs_f64() * 1e3 + 50.0;
        if let Some(p) = p95(v, "failover_all") {
            s.push_str(&format!(
                "- {}: failover to every VIP p95 {p:.0} ms vs deadtime + 50 ms = {bound:.0} ms: {}\n",
                spec.spec.label,
                if p <= bound { "met" } else { "NOT met" }
            ));
        }
    }
    let find = |kind: Kind, fast: bool| {
        rows.iter()
            .find(|(sp, _)| sp.kind == kind && (sp.interval.as_millis() < 1000) == fast)
    };
    for (spec, v) in rows.iter().filter(|(sp, _)| sp.kind == Kind::Wasmbeat) {
        let bound = spec.deadtime.as_secs_f64() * 1e3 + 30.0;
        for key in ["linkdown_failover", "sigkill_failover"] {
            if let Some(p) = p95(v, key) {
                s.push_str(&format!(
                    "- {}: {key} p95 {p:.0} ms vs deadtime + 30 ms = {bound:.0} ms: {}\n",
                    spec.label,
                    if p <= bound { "met" } else { "NOT met" }
                ));
            }
        }
    }
    for (spec, w) in rows.iter().filter(|(sp, _)| sp.kind == Kind::Wasmbeat) {
        let Some((kspec, k)) = peer_keepalived(rows, spec) else {
            continue;
        };
        if spec.interval.as_millis() < 1000 {
            for key in ["linkdown_failover", "sigkill_failover"] {
                if let (Some(a), Some(b)) = (p95(w, key), p95(k, key)) {
                    s.push_str(&format!(
                        "- {}: {key} p95 {a:.0} ms vs {} {b:.0} ms: {}\n",
                        spec.label,
                        kspec.label,
                        if a < b { "below (met)" } else { "NOT below" }
                    ));
                }
            }
        }
        if let Some(n) = w["stress"]["takeovers_logged_by_node2"].as_u64() {
            s.push_str(&format!(
                "- {}: false failovers under stress: {n} ({})\n",
                spec.label,
                if n == 0 { "met" } else { "NOT met" }
            ));
        }
        // Issue 21: idle CPU at or below keepalived's master at the
        // nearest advert_int, measured in the same run.
        if let Some(master) = f(&k["idle"]["active"]["cpu_percent"]) {
            for side in ["active", "standby"] {
                if let Some(c) = f(&w["idle"][side]["cpu_percent"]) {
                    s.push_str(&format!(
                        "- {} {side} idle CPU {c:.2}% vs {} master {master:.2}%: {}\n",
                        spec.label,
                        kspec.label,
                        if c <= master { "met" } else { "NOT met" }
                    ));
                }
            }
        }
    }
    let rss = |kind: Kind, fast: bool| {
        find(kind, fast).and_then(|(_, v)| v["idle"]["active"]["rss_kib"].as_u64())
    };
    for fast in [true, false] {
        if let (Some(a), Some(b)) = (rss(Kind::Wasmbeat, fast), rss(Kind::Heartbeat, fast)) {
            s.push_str(&format!(
                "- {} timings, active node RSS: wasmbeat {a} KiB vs heartbeat 3.0.6 {b} KiB: {}\n",
                if fast { "fast" } else { "classic" },
                if a <= b { "met" } else { "NOT met" }
            ));
        }
    }
    let four_rss = |system: &str| {
        four.iter()
            .find(|v| v["system"] == system)
            .and_then(|v| v["rss_kib"].as_u64())
    };
    if let (Some(a), Some(b)) = (four_rss("Wasmbeat"), four_rss("Heartbeat")) {
        s.push_str(&format!(
            "- four resources running, RSS: wasmbeat {a} KiB vs heartbeat 3.0.6 {b} KiB: {}\n",
            if a <= b { "met" } else { "NOT met" }
        ));
    }
    s
}

/// The keepalived row whose advert_int is nearest `spec`'s keepalive:
/// the system a wasmbeat row is compared with.
fn peer_keepalived<'a>(rows: &'a [(Spec, Value)], spec: &Spec) -> Option<&'a (Spec, Value)> {
    let gap = |k: &Spec| {
        (k.interval.as_secs_f64() / spec.interval.as_secs_f64())
            .ln()
            .abs()
    };
    rows.iter()
        .filter(|(k, _)| k.kind == Kind::Keepalived)
        .min_by(|(a, _), (b, _)| gap(a).total_cmp(&gap(b)))
}

/// Make DejaVu Sans the charts' "sans-serif" (plotters renders text in
/// pure Rust and needs the font's bytes).
pub fn register_font() -> Result<()> {
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT).with_context(|| format!("chart font {FONT}"))?;
    // ab_glyph needs the bytes for the whole process lifetime.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("cannot load {FONT}"))
}

/// Tick values for a log axis over `lo..hi`: 1, 2, 5 times each power of
/// ten, so every decade has labels (plotters' own log ticks put few or
/// none below 1000 ms, where every fast row lives).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-3).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                out.push(t);
            }
        }
        decade *= 10.0;
    }
    out
}

/// A tick label: milliseconds below a second, seconds above.
fn tick_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

fn series(rows: &[(String, &Value)], keys: &[(&str, &str)]) -> Vec<(String, Vec<f64>)> {
    rows.iter()
        .flat_map(|(label, v)| {
            keys.iter().map(move |(what, key)| {
                let xs: Vec<f64> = v[*key]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                (format!("{label} — {what}"), xs)
            })
        })
        .filter(|(_, xs)| !xs.is_empty())
        .collect()
}

/// A strip chart on a log axis: one line per series, a dot per run and a
/// bar at the median, with a labelled tick at every 1-2-5 step.
fn strip_chart(
    title: &str,
    x_desc: &str,
    series: &[(String, Vec<f64>)],
    path: &Path,
) -> Result<()> {
    register_font()?;
    let n = series.len().max(1);
    let lo = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(f64::MAX, f64::min)
        .max(1.0)
        * 0.7;
    let hi = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(1.0, f64::max)
        * 1.4;
    let ticks = log_ticks(lo, hi);
    let root = BitMapBackend::new(path, (1400, 90 + 42 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(560)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(ticks),
            -0.5f64..(n as f64 - 0.5),
        )?;
    let labels: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    c.configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 0.01 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| tick_label(*x))
        .x_desc(x_desc)
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (_, xs)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(xs.iter().enumerate().map(|(k, x)| {
            // A little vertical jitter so equal values stay visible.
            let y = i as f64 + ((k % 5) as f64 - 2.0) * 0.06;
            Circle::new((*x, y), 4, color.filled())
        }))?;
        let mut sorted = xs.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let med = sorted[(sorted.len() - 1) / 2];
        c.draw_series(std::iter::once(PathElement::new(
            vec![(med, i as f64 - 0.3), (med, i as f64 + 0.3)],
            BLACK.stroke_width(2),
        )))?;
    }
    root.present()?;
    Ok(())
}

fn chart(rows: &[(Spec, Value)], path: &Path) -> Result<()> {
    let rows: Vec<(String, &Value)> = rows.iter().map(|(s, v)| (s.label.clone(), v)).collect();
    strip_chart(
        "Client-visible failover (log scale; dots = runs, bar = median)",
        "from the event to the first answer from node2",
        &series(
            &rows,
            &[
                ("link-down", "linkdown_failover_ms"),
                ("SIGKILL", "sigkill_failover_ms"),
            ],
        ),
        path,
    )
}

fn vip_chart(rows: &[(VipSpec, Value)], path: &Path) -> Result<()> {
    let rows: Vec<(String, &Value)> = rows
        .iter()
        .map(|(s, v)| (s.spec.label.clone(), v))
        .collect();
    strip_chart(
        "Many VIPs: until the client reaches every VIP (log scale; dots = runs, bar = median)",
        "from SIGKILL (failover) or node1's restart (failback) to an answer from the new holder at every VIP",
        &series(
            &rows,
            &[
                ("failover", "failover_all_ms"),
                ("failback", "failback_all_ms"),
            ],
        ),
        path,
    )
}

/// The uplink-loss table; a row not measured says why in its cells.
fn uplink_table(rows: &[(UplinkSpec, Value)]) -> String {
    let mut s = String::from(
        "\nUplink loss: two networks (a heartbeat link between the nodes only; a public LAN with \
         the client and a router namespace, the ping node). node1's public port goes down at the \
         switch (its eth0 loses carrier), the heartbeat link stays up; later the port comes back. \
         ms as min / median / p95 / max from the cut until the client's first answer from node2 \
         at the VIP, and from the port's return until node1 answers again (`auto_failback on` / \
         higher VRRP priority); a new probe every 10 ms. wasmbeat and heartbeat: `ping <router>`, \
         `respawn hacluster /usr/libexec/heartbeat/ipfail`, heartbeats on the link only; \
         keepalived: VRRP on the link, the VIP on eth0, `track_interface { eth0 }`.\n\n\
         | row | failover on uplink loss | failback on uplink return | both started → node1 serving |\n\
         |---|---|---|---|\n",
    );
    for (spec, v) in rows {
        let why = v["errors"]
            .as_array()
            .and_then(|e| e.first())
            .and_then(Value::as_str)
            .filter(|e| e.starts_with("not measured"));
        match why {
            Some(why) => s.push_str(&format!("| {} | {why} | – | – |\n", spec.spec.label)),
            None => s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                spec.spec.label,
                fmt_cell(&v["failover_ms"]),
                fmt_cell(&v["failback_ms"]),
                f(&v["start_to_serving_ms"])
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or("–".into()),
            )),
        }
    }
    s
}

fn uplink_chart(rows: &[(UplinkSpec, Value)], path: &Path) -> Result<()> {
    let rows: Vec<(String, &Value)> = rows
        .iter()
        .map(|(s, v)| (s.spec.label.clone(), v))
        .collect();
    strip_chart(
        "Uplink loss: client-visible (log scale; dots = runs, bar = median)",
        "from node1's uplink cut (failover) or return (failback) to an answer from the new holder",
        &series(
            &rows,
            &[("failover", "failover_ms"), ("failback", "failback_ms")],
        ),
        path,
    )
}

/// The many-VIP table.
fn vip_table(rows: &[(VipSpec, Value)]) -> String {
    let mut s = String::from(
        "\nMany VIPs (SIGKILL of node1's daemon, then its restart with `auto_failback on` / higher \
         VRRP priority): ms as min / median / p95 / max from the event until the client had an \
         answer from the new holder at a sample of the VIPs (first and last of each group, every \
         16th; probed every 10 ms) and at every VIP (the rest probed once the sample had moved). \
         keepalived: one `vrrp_instance` per group.\n\n\
         | rows | failover: sample | failover: every VIP | failback: sample | failback: every VIP | start → every VIP (1 node) |\n\
         |---|---|---|---|---|---|\n",
    );
    for (spec, v) in rows {
        let label = match v["runs_capped"]["runs"].as_u64() {
            Some(n) => format!(
                "{} ({n} runs: {})",
                spec.spec.label,
                v["runs_capped"]["why"].as_str().unwrap_or_default()
            ),
            None => spec.spec.label.clone(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            label,
            fmt_cell(&v["failover_sample_ms"]),
            fmt_cell(&v["failover_all_ms"]),
            fmt_cell(&v["failback_sample_ms"]),
            fmt_cell(&v["failback_all_ms"]),
            f(&v["start_to_all_serving_ms"])
                .map(|x| format!("{x:.0}"))
                .unwrap_or("–".into()),
        ));
    }
    s
}

/// Print the table and write `<dir>/<date>.md`, `.json`, `.png` (the
/// failover rows), `-vips.png` (the many-VIP rows) and `-uplink.png` (the
/// uplink-loss rows).
pub fn write(r: &Report, t: &Tables, dir: &Path) -> Result<()> {
    let Tables {
        rows,
        vip_rows,
        uplink_rows,
        ..
    } = t;
    std::fs::create_dir_all(dir)?;
    let md = markdown(r, t);
    println!("\n{md}");
    let base = dir.join(&r.file);
    let mut md_file = md.clone();
    let mut written = Vec::new();
    if !rows.is_empty() {
        match chart(rows, &base.with_extension("png")) {
            Ok(()) => {
                md_file.push_str(&format!("\n![failover distributions]({}.png)\n", r.file));
                written.push(".png".to_string());
            }
            Err(e) => println!("chart not written: {e:#}"),
        }
    }
    if !vip_rows.is_empty() {
        let png = dir.join(format!("{}-vips.png", r.file));
        match vip_chart(vip_rows, &png) {
            Ok(()) => {
                md_file.push_str(&format!(
                    "\n![many-VIP distributions]({}-vips.png)\n",
                    r.file
                ));
                written.push("-vips.png".to_string());
            }
            Err(e) => println!("many-VIP chart not written: {e:#}"),
        }
    }
    // Only rows with a measured run: a chart of nothing is no chart.
    if uplink_rows
        .iter()
        .any(|(_, v)| v["failover_ms"].as_array().is_some_and(|a| !a.is_empty()))
    {
        let png = dir.join(format!("{}-uplink.png", r.file));
        match uplink_chart(uplink_rows, &png) {
            Ok(()) => {
                md_file.push_str(&format!(
                    "\n![uplink-loss distributions]({}-uplink.png)\n",
                    r.file
                ));
                written.push("-uplink.png".to_string());
            }
            Err(e) => println!("uplink chart not written: {e:#}"),
        }
    }
    std::fs::write(base.with_extension("md"), md_file)?;
    write_json(r, t, dir)?;
    println!("wrote {}.md, .json {}", base.display(), written.join(" "));
    Ok(())
}

/// The raw numbers alone, `<dir>/<file>.json`: what `--resume` reads.
/// Also written after every row, so a run killed outright (no SIGTERM,
/// no report) still leaves the rows it finished.
pub fn write_json(r: &Report, t: &Tables, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let doc = json!({
        "date": r.date, "machine": r.machine, "note": r.note, "runs": r.runs,
        "idle_s": r.idle_s, "stress_s": r.stress_s, "minutes": r.minutes, "build": r.build,
        "rows": t.rows.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "vip_rows": t.vip_rows.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "uplink_rows": t.uplink_rows.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "four_resources": t.four,
    });
    // Written whole then renamed: a kill mid-write leaves the last
    // checkpoint, not half of this one.
    let path = dir.join(&r.file).with_extension("json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&doc)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// `*` when a CPU figure was counted in clock ticks (see
/// [`crate::systems::CpuMethod`]); reports written before the scheduler's
/// run time was used have no method and no mark.
fn tick_mark(v: &Value) -> &'static str {
    if v["cpu_method"].as_str() == Some(crate::systems::CpuMethod::Ticks.label()) {
        "*"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tick_counted_cpu_figures_are_marked() {
        use crate::systems::CpuMethod;
        assert_eq!(
            tick_mark(&json!({"cpu_method": CpuMethod::Ticks.label()})),
            "*"
        );
        assert_eq!(
            tick_mark(&json!({"cpu_method": CpuMethod::SchedulerNs.label()})),
            ""
        );
        // Reports from before the method was recorded.
        assert_eq!(tick_mark(&json!({"cpu_percent": 0.4})), "");
    }

    #[test]
    fn an_uplink_row_that_could_not_run_says_why_and_invents_no_numbers() {
        let specs = crate::uplink::specs();
        let ran = json!({"failover_ms": [2500.0, 2600.0], "failback_ms": [4100.0],
                         "start_to_serving_ms": 9000.0, "errors": []});
        let missing = json!({"failover_ms": [], "failback_ms": [],
                             "errors": ["not measured: Keepalived is not installed"]});
        let t = uplink_table(&[(specs[0].clone(), ran), (specs[3].clone(), missing)]);
        assert!(
            t.contains("| 2500 / 2500 / 2600 / 2600 | 4100 / 4100 / 4100 / 4100 | 9000 |"),
            "{t}"
        );
        assert!(
            t.contains("| not measured: Keepalived is not installed | – | – |"),
            "{t}"
        );
    }

    #[test]
    fn every_decade_of_the_axis_has_labelled_ticks() {
        assert_eq!(
            log_ticks(140.0, 7000.0),
            [200.0, 500.0, 1000.0, 2000.0, 5000.0]
        );
        assert_eq!(log_ticks(7.0, 60.0), [10.0, 20.0, 50.0]);
        assert_eq!(tick_label(200.0), "200 ms");
        assert_eq!(tick_label(5000.0), "5 s");
        assert_eq!(tick_label(1500.0), "1.5 s");
    }
}
