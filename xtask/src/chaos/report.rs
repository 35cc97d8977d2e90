//! The chaos run's report: Markdown (bounds, faults by kind, gap
//! distribution, footprints, violations), the event log, the raw numbers
//! as JSON and the gap distribution as a PNG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use plotters::prelude::*;
use serde_json::json;

use super::{Options, Outcome};
use crate::machine::{machine, today};

/// Upper edges (ms) of the gap histogram's buckets; the last is open.
const BUCKETS: [u64; 8] = [50, 100, 200, 500, 1000, 2000, 5000, u64::MAX];

fn bucket_label(i: usize) -> String {
    let lo = if i == 0 { 0 } else { BUCKETS[i - 1] };
    match BUCKETS[i] {
        u64::MAX => format!("> {lo} ms"),
        hi => format!("{lo}–{hi} ms"),
    }
}

/// Client outages per bucket.
fn histogram(o: &Outcome) -> [usize; BUCKETS.len()] {
    let mut h = [0; BUCKETS.len()];
    for g in &o.gaps {
        let ms = g.len().as_millis() as u64;
        let i = BUCKETS.iter().position(|hi| ms < *hi).unwrap_or(0);
        h[i] += 1;
    }
    h
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Write `<stem>.md`, `<stem>.json`, `<stem>-events.log` and
/// `<stem>-gaps.png` into the options' directory; returns the Markdown's path.
pub fn write(o: &Options, out: &Outcome) -> Result<PathBuf> {
    std::fs::create_dir_all(&o.out_dir)?;
    let stem = o.name.clone().unwrap_or_else(|| {
        format!(
            "{}-chaos{}",
            today(),
            if o.heartbeat { "-heartbeat" } else { "" }
        )
    });
    let md = o.out_dir.join(format!("{stem}.md"));
    let png = o.out_dir.join(format!("{stem}-gaps.png"));
    let log = o.out_dir.join(format!("{stem}-events.log"));
    std::fs::write(&log, out.events.join("\n") + "\n")?;
    let chart_ok = chart(out, &png).is_ok();
    let b = o.bounds();
    let mut s = String::new();
    let _ = writeln!(s, "# Chaos run, {}\n", today());
    let _ = writeln!(
        s,
        "`{}` on {}.\n\nnode1 wasmbeat, node2 {}; keepalive {} ms, deadtime {} ms, \
         one haresources line `node1 IPaddr::VIP wedge` (an LSB script whose status can be made to hang; monitored every second by wasmbeat, one restart, then hand-over), auto_failback on. A client \
         requests `http://VIP/` every 10 ms (200 ms timeout); an observer reads \
         both nodes' addresses and daemon processes every 50 ms. Faults come one \
         at a time from the seeded schedule, each followed by a settle wait and \
         1–3 s of quiet.\n",
        o.replay(),
        machine(),
        if o.heartbeat {
            "heartbeat 3.0.6 (Debian)"
        } else {
            "wasmbeat"
        },
        o.keepalive.as_millis(),
        o.deadtime.as_millis()
    );
    let _ = writeln!(
        s,
        "**{} faults in {:.1} min, {} violation(s)**; {} probes, {} observer samples; \
         hub: {} frames forwarded, {} dropped, {} duplicated, {} reordered.\n",
        out.windows.len(),
        secs(out.elapsed) / 60.0,
        out.violations.len(),
        out.probes,
        out.samples,
        out.hub[0],
        out.hub[1],
        out.hub[2],
        out.hub[3]
    );
    let _ = writeln!(s, "## Invariants and their bounds\n");
    let _ = writeln!(
        s,
        "- never two holders, except during a partitioning fault (link down, \
         one-way loss, SIGSTOP) and at most {} ms after it heals;\n\
         - {} ms after the last fault ended, exactly one holder and both daemons running;\n\
         - the client never goes longer than {} ms (deadtime + 3 s: a node in its first 5 s advertises deadtime + 2 s, then the takeover) without an answer;\n\
         - no daemon gone unasked, no panic in any log, a clean SIGTERM stop \
         (exit 0 within 150 s) that leaves no VIP and no process behind;\n\
         - per daemon process (lives with ≥ 4 quiet samples): open files grow by at \
         most {}, threads by at most {}, RSS by at most the larger of {} KiB and a quarter.\n\
         \nEvery condition must last two consecutive samples (the two nodes are read \
         one after the other).\n",
        b.after_heal.as_millis(),
        b.settle.as_millis(),
        b.gap.as_millis(),
        super::verdict::FLAT.0,
        super::verdict::FLAT.1,
        super::verdict::FLAT.2
    );
    let _ = writeln!(s, "## Violations\n");
    if out.violations.is_empty() {
        let _ = writeln!(s, "None.\n");
    }
    for v in &out.violations {
        let _ = writeln!(
            s,
            "- at {:.1} s{}: {}",
            secs(v.at),
            v.fault
                .map(|i| format!(" (fault #{i}: {})", out.windows[i].what))
                .unwrap_or_default(),
            v.what
        );
    }
    let _ = writeln!(s, "\n## Faults by kind\n");
    let _ = writeln!(
        s,
        "| kind | count | longest client gap within it or its settle (ms) |\n|---|---:|---:|"
    );
    let mut kinds: BTreeMap<String, (usize, u128)> = BTreeMap::new();
    for (i, w) in out.windows.iter().enumerate() {
        let until = out
            .windows
            .get(i + 1)
            .map(|n| n.start)
            .unwrap_or(out.elapsed);
        let worst = out
            .gaps
            .iter()
            .filter(|g| g.start >= w.start && g.start < until)
            .map(|g| g.len().as_millis())
            .max()
            .unwrap_or(0);
        let e = kinds.entry(w.kind.to_string()).or_default();
        e.0 += 1;
        e.1 = e.1.max(worst);
    }
    for (k, (n, worst)) in &kinds {
        let _ = writeln!(s, "| {k} | {n} | {worst} |");
    }
    let _ = writeln!(s, "\n## Client gaps\n");
    let h = histogram(out);
    let _ = writeln!(s, "| outage | count |\n|---|---:|");
    for (i, n) in h.iter().enumerate() {
        let _ = writeln!(s, "| {} | {n} |", bucket_label(i));
    }
    if chart_ok {
        let _ = writeln!(
            s,
            "\n![gap distribution]({})",
            png.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    let _ = writeln!(s, "\n## Daemon footprint at quiet points\n");
    let _ = writeln!(s, "| node | pid | samples | fds min–max | threads min–max | RSS KiB min–max |\n|---|---:|---:|---|---|---|");
    let mut lives: BTreeMap<(usize, u32), Vec<&super::observe::Footprint>> = BTreeMap::new();
    for f in &out.footprints {
        lives.entry((f.node, f.pid)).or_default().push(f);
    }
    for ((node, pid), l) in &lives {
        let mm = |g: fn(&super::observe::Footprint) -> u64| {
            let xs = l.iter().map(|f| g(f));
            (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0))
        };
        let (f0, f1) = mm(|f| f.fds as u64);
        let (t0, t1) = mm(|f| f.threads as u64);
        let (r0, r1) = mm(|f| f.rss_kib);
        let _ = writeln!(
            s,
            "| node{} | {pid} | {} | {f0}–{f1} | {t0}–{t1} | {r0}–{r1} |",
            node + 1,
            l.len()
        );
    }
    let _ = writeln!(
        s,
        "\nEvery fault with its outcome: [{}]({}).",
        log.file_name().unwrap_or_default().to_string_lossy(),
        log.file_name().unwrap_or_default().to_string_lossy()
    );
    std::fs::write(&md, s)?;
    let raw = json!({
        "seed": o.seed,
        "heartbeat": o.heartbeat,
        "keepalive_ms": o.keepalive.as_millis() as u64,
        "deadtime_ms": o.deadtime.as_millis() as u64,
        "minutes": secs(out.elapsed) / 60.0,
        "faults": out.windows.iter().map(|w| json!({
            "index": w.index, "what": w.what, "start_s": secs(w.start), "end_s": secs(w.end),
        })).collect::<Vec<_>>(),
        "gaps_ms": out.gaps.iter().map(|g| json!([secs(g.start), g.len().as_millis() as u64])).collect::<Vec<_>>(),
        "violations": out.violations.iter().map(|v| json!({
            "at_s": secs(v.at), "fault": v.fault, "what": v.what,
        })).collect::<Vec<_>>(),
        "hub": {"forwarded": out.hub[0], "dropped": out.hub[1], "duplicated": out.hub[2], "reordered": out.hub[3]},
    });
    std::fs::write(
        o.out_dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&raw)?,
    )?;
    Ok(md)
}

fn chart(out: &Outcome, path: &Path) -> Result<()> {
    crate::report::register_font()?;
    let h = histogram(out);
    let top = h.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
    let root = BitMapBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!(
                "Client outages over {} faults (count per length)",
                out.windows.len()
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        // One segment per bucket, labelled at its centre (a plain f64 axis
        // put its ticks on the bars' edges and the labels went missing).
        .build_cartesian_2d((0..h.len()).into_segmented(), 0f64..top)?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(h.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < BUCKETS.len() => bucket_label(*i),
            _ => String::new(),
        })
        .x_desc("outage length")
        .y_desc("outages")
        .draw()?;
    c.draw_series(
        Histogram::vertical(&c)
            .style(BLUE.mix(0.6).filled())
            .margin(10)
            .data(h.iter().enumerate().map(|(i, n)| (i, *n as f64))),
    )?;
    root.present()?;
    Ok(())
}
