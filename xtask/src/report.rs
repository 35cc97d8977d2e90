//! The benchmark's outputs: a Markdown table (stdout and
//! `bench/results/<date>.md`), the raw numbers as JSON, and a PNG strip
//! chart of the failover distributions per system.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::{json, Value};

use crate::stats::fmt_cell;
use crate::systems::{Kind, Spec};

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
        "\nFootprint in a healthy two-node cluster over the idle window (sum over each daemon's processes) \
         and false failovers under stress (both cores busy with CPU hogs, 1% random frame loss between all nodes):\n\n\
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
                (Some(p), Some(k), Some(c)) => format!("{p}, {k}, {c:.2}"),
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

fn markdown(r: &Report, rows: &[(Spec, Value)], four: &[Value]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "## Failover benchmark, {}\n\nMachine: {}. {} runs per scenario, {} s idle window, {} s stress; whole run {:.1} min.\n",
        r.date, r.machine, r.runs, r.idle_s, r.stress_s, r.minutes
    ));
    if !r.note.is_empty() {
        s.push_str(&format!("\n**Note:** {}\n", r.note));
    }
    if !rows.is_empty() {
        s.push_str(&failover_tables(rows));
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
                    "| {label} | {p} | {k} ({:.1}) | {c:.2} | {:.0} |\n",
                    k as f64 / 1024.0,
                    f(&v["start_to_all_serving_ms"]).unwrap_or(f64::NAN)
                )),
                _ => s.push_str(&format!(
                    "| {label} | failed: {} | | | |\n",
                    v["errors"][0].as_str().map(headline).unwrap_or_default()
                )),
            }
        }
    }
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|(spec, v)| {
            v["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    e.as_str()
                        .map(|e| format!("- {}: {}", spec.label, headline(e)))
                })
        })
        .collect();
    if !errors.is_empty() {
        s.push_str("\nRuns that failed (not in the numbers above):\n\n");
        s.push_str(&errors.join("\n"));
        s.push('\n');
    }
    s.push_str(&targets(rows, four));
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
fn targets(rows: &[(Spec, Value)], four: &[Value]) -> String {
    let mut s = String::from("\nTargets:\n\n");
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
    if let (Some((_, w)), Some((_, k))) = (find(Kind::Wasmbeat, true), find(Kind::Keepalived, true))
    {
        for key in ["linkdown_failover", "sigkill_failover"] {
            if let (Some(a), Some(b)) = (p95(w, key), p95(k, key)) {
                s.push_str(&format!(
                    "- fast timings, {key} p95: wasmbeat {a:.0} ms vs keepalived advert_int 0.05 {b:.0} ms: {}\n",
                    if a < b { "below (met)" } else { "NOT below" }
                ));
            }
        }
        if let Some(n) = w["stress"]["takeovers_logged_by_node2"].as_u64() {
            s.push_str(&format!(
                "- wasmbeat fast, false failovers under stress: {n} ({})\n",
                if n == 0 { "met" } else { "NOT met" }
            ));
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
    for (spec, v) in rows.iter().filter(|(sp, _)| sp.kind == Kind::Wasmbeat) {
        for side in ["active", "standby"] {
            if let Some(c) = f(&v["idle"][side]["cpu_percent"]) {
                s.push_str(&format!(
                    "- {} {side} idle CPU {c:.2}% vs 0.5%: {}\n",
                    spec.label,
                    if c < 0.5 { "met" } else { "NOT met" }
                ));
            }
        }
    }
    s
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

fn chart(rows: &[(Spec, Value)], path: &Path) -> Result<()> {
    register_font()?;

    let series: Vec<(String, Vec<f64>)> = rows
        .iter()
        .flat_map(|(spec, v)| {
            [
                ("link-down", "linkdown_failover_ms"),
                ("SIGKILL", "sigkill_failover_ms"),
            ]
            .into_iter()
            .map(move |(what, key)| {
                let xs: Vec<f64> = v[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                (format!("{} — {what}", spec.label), xs)
            })
        })
        .filter(|(_, xs)| !xs.is_empty())
        .collect();
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
    let root = BitMapBackend::new(path, (1400, 90 + 42 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "Client-visible failover (ms, log scale; dots = runs, bar = median)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(560)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))?;
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
        .x_labels(16)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("ms from the event to the first answer from node2")
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

/// Print the table and write `<dir>/<date>.md`, `.json` and `.png`.
pub fn write(r: &Report, rows: &[(Spec, Value)], four: &[Value], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let md = markdown(r, rows, four);
    println!("\n{md}");
    let base = dir.join(&r.file);
    let png = base.with_extension("png");
    let chart_ok = match chart(rows, &png) {
        Ok(()) => true,
        Err(e) => {
            println!("chart not written: {e:#}");
            false
        }
    };
    let mut md_file = md.clone();
    if chart_ok {
        md_file.push_str(&format!("\n![failover distributions]({}.png)\n", r.file));
    }
    std::fs::write(base.with_extension("md"), md_file)?;
    let doc = json!({
        "date": r.date, "machine": r.machine, "note": r.note, "runs": r.runs,
        "idle_s": r.idle_s, "stress_s": r.stress_s, "minutes": r.minutes,
        "rows": rows.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "four_resources": four,
    });
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    println!(
        "wrote {}.md, .json{}",
        base.display(),
        if chart_ok { ", .png" } else { "" }
    );
    Ok(())
}
