//! After every line is read and every name looked up: heartbeat's defaults
//! that derive from other settings, and the checks that span the whole file
//! (timing rules, no nodes, no media, autojoin, missing auto_failback).

use std::time::Duration;

use super::super::diag::{Code, Diagnostic};
use super::super::duration::format_duration as fmt;
use super::reader::{MediumLine, Reader};
use super::{AutoJoin, HaCf, FILE};

/// Merge `late` (line diagnostics found after reading, e.g. by name
/// lookups) into the reading order, apply the derived defaults and run the
/// whole-file checks.
pub(super) fn finish(mut r: Reader, late: Vec<Diagnostic>) -> (HaCf, Vec<Diagnostic>) {
    merge_by_line(&mut r.diags, late);
    derive_defaults(&mut r);
    check_timing(&mut r);
    check_membership(&mut r);
    check_ipfail(&mut r);
    check_track_link(&mut r);
    check_watchdog(&mut r);
    point_timing_at_values(&mut r);
    r.cf.media = r
        .media
        .into_iter()
        .filter_map(|(m, _)| match m {
            MediumLine::Ready(m) => Some(m),
            // resolve_names turned every name into an address or dropped it.
            MediumLine::Named(_) => None,
        })
        .collect();
    (r.cf, r.diags)
}

/// The line that last set `setting`, if any did.
fn line(r: &Reader, setting: &str) -> Option<usize> {
    r.set_at.get(setting).copied()
}

/// heartbeat's defaults that follow deadtime: warntime, initdead, deadping.
fn derive_defaults(r: &mut Reader) {
    let deadtime = r.cf.deadtime;
    if line(r, "warntime").is_none() {
        r.cf.warntime = deadtime / 2;
    }
    if line(r, "initdead").is_none() {
        r.cf.initdead = if deadtime > Duration::from_secs(10) {
            deadtime
        } else if deadtime < Duration::from_secs(6) {
            Duration::from_secs(12)
        } else {
            deadtime * 2
        };
    }
    if line(r, "deadping").is_none() {
        r.cf.deadping = deadtime;
    }
}

/// The timing rules heartbeat enforces at start, and the ones it should.
fn check_timing(r: &mut Reader) {
    let (kline, warn_line, init_line, ping_line) = (
        line(r, "keepalive"),
        line(r, "warntime"),
        line(r, "initdead"),
        line(r, "deadping"),
    );
    let dline = line(r, "deadtime").or(kline);
    let (keepalive, deadtime) = (r.cf.keepalive, r.cf.deadtime);
    let (warntime, initdead, deadping) = (r.cf.warntime, r.cf.initdead, r.cf.deadping);

    if keepalive.is_zero() {
        timing_err(
            r,
            kline,
            "keepalive 0 would send heartbeats in a busy loop".into(),
            "write e.g. \"keepalive 1\" or \"keepalive 200ms\"".into(),
        );
    }
    if deadtime <= keepalive * 2 {
        timing_err(
            r,
            dline,
            format!(
                "deadtime {} must be more than twice keepalive {} (heartbeat refuses to start)",
                fmt(deadtime),
                fmt(keepalive)
            ),
            format!(
                "raise deadtime above {} or lower keepalive",
                fmt(keepalive * 2)
            ),
        );
    }
    if let Some(l) = init_line {
        if initdead < deadtime {
            timing_err(
                r,
                Some(l),
                format!(
                    "initdead {} must be at least deadtime {} (heartbeat refuses to start)",
                    fmt(initdead),
                    fmt(deadtime)
                ),
                format!("write e.g. \"initdead {}\"", fmt(deadtime * 2)),
            );
        } else if initdead < Duration::from_secs(10) {
            r.diags.push(
                Diagnostic::warning(
                    Code::Timing,
                    FILE,
                    Some(l),
                    format!(
                        "initdead {} is under 10 s; after a reboot the network may not be up in time and the peer would be declared dead",
                        fmt(initdead)
                    ),
                )
                .hint("heartbeat suggests at least twice deadtime"),
            );
        }
    }
    if let Some(l) = ping_line {
        if deadping <= keepalive * 2 {
            timing_err(
                r,
                Some(l),
                format!(
                    "deadping {} must be more than twice keepalive {} (heartbeat refuses to start)",
                    fmt(deadping),
                    fmt(keepalive)
                ),
                format!("raise deadping above {}", fmt(keepalive * 2)),
            );
        }
    }
    if let Some(l) = warn_line {
        if warntime.is_zero() {
            timing_err(
                r,
                Some(l),
                "warntime must be greater than 0".into(),
                format!("write e.g. \"warntime {}\"", fmt(deadtime / 2)),
            );
        } else if warntime >= deadtime {
            r.diags.push(
                Diagnostic::warning(
                    Code::Timing,
                    FILE,
                    Some(l),
                    format!(
                        "warntime {} is not less than deadtime {}: a node is declared dead before a heartbeat can be late, so the \"late heartbeat\" warning can never fire (heartbeat accepts this silently)",
                        fmt(warntime),
                        fmt(deadtime)
                    ),
                )
                .text(fmt(warntime))
                .hint(format!(
                    "set warntime between keepalive and deadtime, e.g. \"warntime {}\"",
                    fmt(deadtime / 2)
                )),
            );
        }
    }
}

/// Who is in the cluster, how the nodes hear each other, which resource
/// protocol runs.
/// ipfail needs ping nodes and the nice_failback protocol; heartbeat's
/// ipfail exits at start under `auto_failback legacy`, and so wasmbeat's
/// built-in one stays off there.
/// track_link acts through ipfail: without it a lost carrier is only logged.
fn check_track_link(r: &mut Reader) {
    let Some(l) = line(r, "track_link") else {
        return;
    };
    if !r.cf.ipfail() || r.cf.auto_failback == super::AutoFailback::Legacy {
        r.diags.push(
            Diagnostic::warning(
                Code::Ipfail,
                FILE,
                Some(l),
                "track_link moves groups through ipfail, which is not running here: a lost carrier is only logged",
            )
            .hint("add \"respawn hacluster /usr/libexec/heartbeat/ipfail\", \"auto_failback on\" and a ping node"),
        );
    }
}

/// The watchdog resets a hung node before the peer takes over only when
/// a whole number of seconds fits between two keepalives and deadtime −
/// keepalive (see `choose_watchdog_timeout`).
fn check_watchdog(r: &mut Reader) {
    let Some(l) = line(r, "watchdog") else {
        return;
    };
    let (deadtime, keepalive) = (r.cf.deadtime, r.cf.keepalive);
    if keepalive.is_zero() || deadtime <= keepalive * 2 {
        return; // already an error
    }
    let t = super::choose_watchdog_timeout(deadtime, keepalive);
    if t.late() {
        let timeout = Duration::from_secs(t.secs.into());
        r.diags.push(
            Diagnostic::warning(
                Code::Timing,
                FILE,
                Some(l),
                format!(
                    "the watchdog timeout is {} s (whole seconds, at least two keepalives), longer than deadtime {} − keepalive {}: a hung node is reset up to {} after the peer may have taken its groups",
                    t.secs,
                    fmt(deadtime),
                    fmt(keepalive),
                    fmt(timeout - t.latest)
                ),
            )
            .hint(format!(
                "raise deadtime to at least {} (the timeout plus a keepalive)",
                fmt(timeout + keepalive)
            )),
        );
    }
}

fn check_ipfail(r: &mut Reader) {
    let Some(l) = line(r, "respawn").filter(|_| r.cf.ipfail()) else {
        return;
    };
    if r.cf.auto_failback == super::AutoFailback::Legacy {
        r.diags.push(
            Diagnostic::warning(
                Code::Ipfail,
                FILE,
                Some(l),
                "ipfail does not run with auto_failback legacy (heartbeat's ipfail exits: \"incompatible legacy option\"); ping nodes are only watched",
            )
            .hint("write \"auto_failback on\" or \"auto_failback off\""),
        );
    }
    if r.cf.ping_nodes().is_empty() {
        r.diags.push(
            Diagnostic::warning(
                Code::Ipfail,
                FILE,
                Some(l),
                "ipfail has no ping node to count: it never moves anything",
            )
            .hint("add the router both nodes reach, e.g. \"ping 10.10.10.254\""),
        );
    }
}

fn check_membership(r: &mut Reader) {
    if let Some(l) = line(r, "autojoin") {
        if r.cf.autojoin != AutoJoin::None {
            r.diags.push(
                Diagnostic::error(
                    Code::Autojoin,
                    FILE,
                    Some(l),
                    "autojoin conflicts with haresources resource management (heartbeat: \"R1 style resource management conflicts with autojoin set\")",
                )
                .hint("write \"autojoin none\" and list every machine with \"node\""),
            );
        }
    }
    if r.cf.nodes.is_empty() && r.cf.autojoin != AutoJoin::Any {
        r.diags.push(
            Diagnostic::error(Code::NoNodes, FILE, None, "no \"node\" directive: the cluster has no members")
                .hint("add one line per machine with its `uname -n`, e.g. \"node node1\" and \"node node2\""),
        );
    }
    if r.media.is_empty() {
        r.diags.push(
            Diagnostic::error(Code::NoMedia, FILE, None, "no heartbeat medium (bcast, ucast, mcast or serial): the nodes could not hear each other")
                .hint("add e.g. \"bcast eth0\" or \"ucast eth0 10.0.0.2\""),
        );
    }
    if line(r, "auto_failback").is_none() {
        r.diags.push(
            Diagnostic::warning(
                Code::LegacyFailback,
                FILE,
                None,
                "no auto_failback directive: heartbeat then uses the deprecated \"legacy\" resource protocol",
            )
            .hint("add \"auto_failback on\" or \"auto_failback off\""),
        );
    }
}

/// Timing diagnostics point at the value on their line.
fn point_timing_at_values(r: &mut Reader) {
    for d in r.diags.iter_mut().filter(|d| d.code == Code::Timing) {
        if let Some((_, col, text)) = r
            .timing_values
            .iter()
            .rev()
            .find(|(l, _, _)| Some(*l) == d.line)
        {
            d.column = Some(*col);
            d.text = text.clone();
        }
    }
}

fn timing_err(r: &mut Reader, line: Option<usize>, msg: String, hint: String) {
    r.diags
        .push(Diagnostic::error(Code::Timing, FILE, line, msg).hint(hint));
}

/// Insert each of `late` after the diagnostics of its line and before any
/// of a later line, keeping both lists' own order (`diags` is in line order).
fn merge_by_line(diags: &mut Vec<Diagnostic>, mut late: Vec<Diagnostic>) {
    late.sort_by_key(|d| d.line);
    for d in late {
        let at = diags.partition_point(|x| x.line <= d.line);
        diags.insert(at, d);
    }
}
