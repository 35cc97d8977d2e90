//! `wasmbeat status`: the snapshot the daemon sends over the control socket
//! (JSON, also what `--json` prints) and its rendering for humans.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{json, Value};

use super::Node;

/// The daemon's current state as one JSON document.
pub(super) fn snapshot(node: &Node) -> Value {
    let now = Instant::now();
    let peers: Vec<Value> = node
        .endpoint
        .peers(now)
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "status": p.status,
                "alive": p.alive,
                "generation": p.generation,
                "deadtime_ms": p.deadtime_ms,
                "links": p.links.iter().map(|(l, up)| json!({"link": l, "up": up})).collect::<Vec<_>>(),
                "acked_seq": p.acked,
            })
        })
        .collect();
    let counters = node.endpoint.counters();
    let drops: serde_json::Map<String, Value> = counters
        .snapshot()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let reports: Vec<Value> = node
        .reports
        .iter()
        .map(|(key, (op, r))| {
            json!({
                "group": key,
                "op": op,
                "ok": r.ok,
                "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
                "failure": r.failure,
                "summary": r.summary(),
            })
        })
        .collect();
    json!({
        "node": node.cfg.local_node,
        "generation": node.generation,
        "uptime_s": node.started.elapsed().as_secs_f64(),
        "cluster": serde_json::to_value(node.core.status()).unwrap_or(Value::Null),
        "peers": peers,
        "packets": { "accepted": counters.accepted(), "dropped": drops },
        "session": serde_json::to_value(node.endpoint.stats()).unwrap_or(Value::Null),
        "last_group_operations": reports,
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Render a snapshot for an operator.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let c = &v["cluster"];
    let _ = writeln!(
        out,
        "node {} (generation {}), up {:.1} s; communication {}; holds {}",
        s(&v["node"]),
        s(&v["generation"]),
        v["uptime_s"].as_f64().unwrap_or(0.0),
        if c["comm_up"].as_bool() == Some(true) {
            "up"
        } else {
            "not up yet"
        },
        s(&c["rscstatus"])
    );
    let _ = writeln!(out, "\nnodes:");
    for n in c["nodes"].as_array().into_iter().flatten() {
        let links: Vec<String> = n["links"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                format!(
                    "{} {}",
                    s(&l["link"]),
                    if l["up"].as_bool() == Some(true) {
                        "up"
                    } else {
                        "dead"
                    }
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<12} {:<7} {}holds {}{}",
            s(&n["name"]),
            s(&n["status"]),
            if n["local"].as_bool() == Some(true) {
                "(this node) "
            } else {
                ""
            },
            s(&n["holds"]),
            if links.is_empty() {
                String::new()
            } else {
                format!("; links: {}", links.join(", "))
            }
        );
    }
    let _ = writeln!(out, "\ngroups:");
    for g in c["groups"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<32} preferred {:<10} owner {:<10} here: {}",
            s(&g["key"]),
            s(&g["preferred"]),
            s(&g["owner"]),
            s(&g["local_state"])
        );
    }
    for r in v["last_group_operations"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    last {} of {}: {} ({:.1} ms) {}",
            s(&r["op"]),
            s(&r["group"]),
            if r["ok"].as_bool() == Some(true) {
                "ok"
            } else {
                "FAILED"
            },
            r["elapsed_ms"].as_f64().unwrap_or(0.0),
            s(&r["summary"])
        );
    }
    if let Some(t) = c["last_transition"].as_object() {
        let _ = writeln!(
            out,
            "\nlast transition at {} ms: {}: {}",
            s(&t["at"]),
            s(&t["change"]["what"]),
            s(&t["change"]["why"])
        );
    }
    let dropped: u64 = v["packets"]["dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "duplicate" | "own_message"))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let _ = writeln!(
        out,
        "\npackets: {} accepted, {} rejected (bad auth, malformed, replayed, ...)",
        s(&v["packets"]["accepted"]),
        dropped
    );
    out
}
