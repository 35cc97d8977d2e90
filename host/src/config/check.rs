//! `wasmbeat check`: resolve every resource to an agent, sanity-check IPaddr
//! arguments, and summarise the cluster as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::agents::{self, Resolution, ResolveError};
use super::diag::{has_errors, Code, Diagnostic, Severity};
use super::hacf::{AutoFailback, HaCf, Medium};
use super::haresources::{Haresources, FILE};
use super::token::{AgentRef, ResourceToken};
use super::Loaded;
use crate::grant::Policy;
use wasmbeat_args::address::{AddressError, AddressSpec, Broadcast, MaskRule};

/// A resource with its agent and parameters by name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedResource {
    /// The token as written (after bare-IP expansion).
    pub text: String,
    /// The agent's name.
    pub agent: String,
    /// Where the agent was found, if it was.
    pub resolution: Option<Resolution>,
    /// Parameters by name: IPaddr's `ip`, `cidr_netmask`, `nic`, `broadcast`;
    /// `arg1..N` for other agents until their meta-data names them.
    pub params: Vec<(String, String)>,
}

/// Parameters by name for a resource token.
pub fn named_params(token: &ResourceToken) -> Vec<(String, String)> {
    if is_ipaddr(token) {
        if let Some(a) = token.args.first().and_then(|a| AddressSpec::parse(a).ok()) {
            return ipaddr_named_params(&a);
        }
    }
    token
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("arg{}", i + 1), a.clone()))
        .collect()
}

/// IPaddr's OCF-style parameters (`ip`, `cidr_netmask`, `nic`,
/// `broadcast`) for an address as heartbeat's IPaddr reads it; absent ones
/// are omitted.
fn ipaddr_named_params(a: &AddressSpec) -> Vec<(String, String)> {
    let mut v = vec![("ip".to_string(), a.ip.to_string())];
    if let Ok(Some(p)) = a.prefix(MaskRule::Findif) {
        v.push(("cidr_netmask".into(), p.to_string()));
    }
    if let Some(n) = &a.nic {
        let nic = match &a.label {
            Some(l) => format!("{n}:{l}"),
            None => n.clone(),
        };
        v.push(("nic".into(), nic));
    }
    match a.broadcast {
        Broadcast::Auto => {}
        Broadcast::Off => v.push(("broadcast".into(), "-".into())),
        Broadcast::Addr(b) => v.push(("broadcast".into(), b.to_string())),
    }
    v
}

fn is_ipaddr(token: &ResourceToken) -> bool {
    matches!(&token.agent, AgentRef::Name(n) if n == "IPaddr" || n == "IPaddr2")
}

/// Resolve every resource of every group (missing agents give `resolution: None`).
pub fn resolve_groups(
    dir: &Path,
    res: &Haresources,
    policy: &Policy,
) -> Vec<Vec<ResolvedResource>> {
    res.groups
        .iter()
        .map(|g| {
            g.resources
                .iter()
                .map(|t| ResolvedResource {
                    text: t.text.clone(),
                    agent: t.agent.display_name(),
                    resolution: agents::resolve_policy(&t.agent, dir, policy).ok(),
                    params: named_params(t),
                })
                .collect()
        })
        .collect()
}

/// Diagnostics for agent resolution and IPaddr arguments, one per problem.
pub fn resource_diagnostics(dir: &Path, res: &Haresources, policy: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for g in &res.groups {
        for (i, t) in g.resources.iter().enumerate() {
            let (line, col) = g.positions.get(i).copied().unwrap_or((g.line, 1));
            let at = |d: Diagnostic| d.col(col).text(t.text.clone());
            if let Err(e) = agents::resolve_policy(&t.agent, dir, policy) {
                out.push(at(unresolved(line, &e)));
            }
            if is_ipaddr(t) {
                out.extend(ipaddr_diagnostic(line, t).map(at));
            }
        }
    }
    out
}

fn unresolved(line: usize, e: &ResolveError) -> Diagnostic {
    let d = Diagnostic::error(Code::UnresolvedAgent, FILE, Some(line), e.to_string());
    match e {
        ResolveError::NotFound {
            granted: true,
            name,
            ..
        } => d.hint(format!(
            "agents.toml grants [lsb.{name}] but no executable script was found there; install the script or set script = \"/path\" in that section"
        )),
        ResolveError::NotFound {
            name,
            script: Some(s),
            ..
        } => d.hint(format!(
            "heartbeat would run the script {}; wasmbeat runs it as an LSB script ({} start|stop|status) only when granted: add the section [lsb.{name}] to {} in the configuration directory, or use a built-in or Wasm agent",
            s.display(),
            s.display(),
            crate::grant::policy::FILE
        )),
        ResolveError::NotFound { name, .. } => {
            let builtins: Vec<&str> = agents::BUILTIN_AGENTS.iter().map(|b| b.name).collect();
            d.hint(format!(
                "build a Wasm agent and install it as resource.d/{name}.wasm, or use a built-in agent ({})",
                builtins.join(", ")
            ))
        }
        ResolveError::MissingWasm { .. } => d.hint(
            "relative .wasm names are looked up in <config-dir>/resource.d/; give an absolute path or install the file there",
        ),
    }
}

fn ipaddr_diagnostic(line: usize, t: &ResourceToken) -> Option<Diagnostic> {
    let agent = t.agent.display_name();
    let bad = |msg: String, hint: &str| {
        Some(Diagnostic::error(Code::BadIpaddrArg, FILE, Some(line), msg).hint(hint.to_string()))
    };
    let example = format!("write e.g. \"{agent}::10.0.0.10/24\" or \"{agent}::10.0.0.10/24/eth0\"");
    match t.args.len() {
        0 => return bad(format!("{agent} needs the address to manage"), &example),
        1 => {}
        _ => {
            // heartbeat splits on `::`, which cuts an IPv6 address: the
            // agents join the pieces back (the same rule, asked here).
            let get = |name: &str| {
                wasmbeat_args::address::PARAMS
                    .iter()
                    .position(|p| *p == name)
                    .and_then(|i| t.args.get(i))
                    .map(String::as_str)
            };
            if AddressSpec::from_params(get).is_ok_and(|a| a.ip.is_ipv6()) {
                return None;
            }
            return bad(
                format!(
                    "{agent} takes one argument IP[/MASK[/NIC[/BROADCAST]]], but {} were given",
                    t.args.len()
                ),
                "join the fields with '/' instead of '::' (an IPv6 address may keep its own '::')",
            );
        }
    }
    let arg = &t.args[0];
    let a = match AddressSpec::parse(arg) {
        Ok(a) => a,
        Err(e) => {
            let hint = match e {
                AddressError::TooManyFields(_)
                | AddressError::BadIface(_)
                | AddressError::EmptyField(_)
                | AddressError::FieldAfterBroadcast(_)
                | AddressError::LabelOnV6(_) => {
                    "the form is IP[/MASK[/NIC[/BROADCAST]]]".to_string()
                }
                _ => example,
            };
            return bad(format!("{agent} argument {arg:?}: {e}"), &hint);
        }
    };
    let mask = a.noncontiguous_mask()?;
    let ip = a.ip;
    let prefix = a.prefix(MaskRule::Findif).ok().flatten().unwrap_or(32);
    let what = format!(
        "{agent} argument {arg:?}: heartbeat reads the second field {mask} as a netmask (not a gateway or peer address), and {mask} is not a valid netmask (its one bits are not contiguous)"
    );
    let hint = format!(
        "{agent} has no gateway argument; write \"{agent}::{ip}/24\" with the subnet's real prefix length (or \"{agent}::{ip}/24/eth0\" to pin the interface), or just \"{agent}::{ip}\" to take netmask and interface from the connected route"
    );
    Some(if agent == "IPaddr" {
        Diagnostic::warning(
            Code::SuspiciousIpaddrArg,
            FILE,
            Some(line),
            format!("{what}; heartbeat's IPaddr accepts it and brings the address up as {ip}/{prefix}, which is almost certainly not what was meant"),
        )
        .hint(hint)
    } else {
        Diagnostic::error(
            Code::BadIpaddrArg,
            FILE,
            Some(line),
            format!("{what}; heartbeat's IPaddr2 refuses to start it (\"Invalid netmask specification\")"),
        )
        .hint(hint)
    })
}

/// Diagnostics in reading order: errors first, then by file (ha.cf,
/// haresources, authkeys) and line.
pub fn sorted(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    let rank = |f: &str| match f {
        super::hacf::FILE => 0,
        FILE => 1,
        super::authkeys::FILE => 2,
        _ => 3,
    };
    let mut v: Vec<&Diagnostic> = diags.iter().collect();
    v.sort_by_key(|d| {
        (
            d.severity != Severity::Error,
            rank(&d.file),
            d.line.unwrap_or(0),
            d.column.unwrap_or(0),
        )
    });
    v
}

/// ha.cf as JSON without STONITH parameters, which often hold passwords.
fn redacted(ha: Option<&HaCf>) -> Value {
    let mut v = serde_json::to_value(ha).unwrap_or(Value::Null);
    if let Some(hosts) = v["stonith_hosts"].as_array_mut() {
        for h in hosts {
            h["params"] = Value::String("<redacted>".into());
        }
    }
    v
}

/// The result of `wasmbeat check`.
#[derive(Debug, Clone)]
pub struct Report {
    /// The directory checked.
    pub dir: std::path::PathBuf,
    /// What was understood.
    pub loaded: Loaded,
    /// Resolved resources per group (parallel to `loaded.resources.groups`).
    pub groups: Vec<Vec<ResolvedResource>>,
    /// Each resource's effective grant (parallel to `groups`), when the
    /// caller could load the agents to compute it; empty otherwise.
    pub grants: Vec<Vec<GrantText>>,
    /// What confinement this machine can apply to what agents start,
    /// one line per item (empty when not asked).
    pub confinement: Vec<String>,
    /// The fence devices this node would use, one line each.
    pub fencing: Vec<String>,
    /// The resolved fence devices (loaded by the caller to check their
    /// parameters against the agents' meta-data).
    pub fence_devices: Vec<crate::fence::device::DevicePlan>,
}

/// One resource's effective grant, as `check` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantText {
    /// One line per granted item.
    Lines(Vec<String>),
    /// Why it could not be computed (the daemon would refuse the group).
    Error(String),
}

/// Warnings for interfaces and devices the files name but this machine lacks
/// (`net` is normally `/sys/class/net`). Warnings, not errors: the files may
/// be checked on another machine than the one they are meant for, but
/// heartbeat would refuse to start here.
pub fn host_diagnostics(ha: &HaCf, res: Option<&Haresources>, net: &Path) -> Vec<Diagnostic> {
    if !net.is_dir() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut missing = |iface: &str, file: &str, line: Option<usize>, what: String| {
        if !seen.contains(&iface.to_string()) && !net.join(iface).exists() {
            seen.push(iface.to_string());
            out.push(
                Diagnostic::warning(
                    Code::MissingDevice,
                    file,
                    line,
                    format!("interface {iface:?} ({what}) does not exist on this machine"),
                )
                .text(iface.to_string())
                .hint("fix the name if these files are meant for this machine (see `ip link`); heartbeat refuses to start when a medium's interface is missing"),
            );
        }
    };
    for m in &ha.media {
        match m {
            Medium::Bcast { iface, .. }
            | Medium::Ucast { iface, .. }
            | Medium::Mcast { iface, .. } => {
                missing(iface, super::hacf::FILE, None, "a heartbeat medium".into())
            }
            Medium::Serial { .. } => {}
        }
    }
    for g in res.map(|r| r.groups.as_slice()).unwrap_or_default() {
        for t in g.resources.iter().filter(|t| is_ipaddr(t)) {
            if let Some(iface) = t
                .args
                .first()
                .and_then(|a| AddressSpec::parse(a).ok())
                .and_then(|a| a.nic)
            {
                missing(&iface, FILE, Some(g.line), format!("nic of {}", t.text));
            }
        }
    }
    // heartbeat reads a stonith device's configuration file while it reads
    // ha.cf and refuses to start without it ("Invalid Stonith config file").
    for st in &ha.stonith {
        if !Path::new(&st.config_file).exists() {
            out.push(
                Diagnostic::warning(
                    Code::MissingDevice,
                    super::hacf::FILE,
                    None,
                    format!("stonith configuration file {} does not exist on this machine; heartbeat refuses to start without it", st.config_file),
                )
                .text(st.config_file.clone())
                .hint("fix the path, or remove the stonith line (wasmbeat does not fence yet)"),
            );
        }
    }
    // The daemon refuses to start when it cannot open the watchdog.
    if let Some(dev) = &ha.watchdog {
        if !Path::new(dev).exists() {
            out.push(
                Diagnostic::warning(
                    Code::MissingDevice,
                    super::hacf::FILE,
                    None,
                    format!("watchdog device {dev} does not exist on this machine; wasmbeat refuses to start without it"),
                )
                .text(dev.clone())
                .hint("load a watchdog driver (`modprobe softdog` for the kernel's software watchdog) or remove the watchdog line"),
            );
        }
    }
    for m in &ha.media {
        if let Medium::Serial { device, .. } = m {
            if !Path::new(device).exists() {
                out.push(
                    Diagnostic::warning(
                        Code::MissingDevice,
                        super::hacf::FILE,
                        None,
                        format!("serial device {device} does not exist on this machine"),
                    )
                    .text(device.clone())
                    .hint("fix the device path, or remove the serial line if there is no null-modem cable"),
                );
            }
        }
    }
    out
}

/// Warnings for IPv6 media (ucast6, mcast6) on interfaces whose IPv6 is
/// switched off (`conf` is normally `/proc/sys/net/ipv6/conf`): the daemon
/// would refuse to start (it finds no IPv6 address there), and heartbeat
/// would start and send nothing on that medium.
pub fn ipv6_diagnostics(ha: &HaCf, conf: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &ha.media {
        let iface = match m {
            Medium::Ucast {
                iface,
                peer: std::net::IpAddr::V6(_),
                ..
            }
            | Medium::Mcast {
                iface,
                group: std::net::IpAddr::V6(_),
                ..
            } => iface.as_str(),
            _ => continue,
        };
        if seen.contains(&iface) {
            continue;
        }
        seen.push(iface);
        let flag = std::fs::read_to_string(conf.join(iface).join("disable_ipv6"));
        if flag.is_ok_and(|f| f.trim() == "1") {
            out.push(
                Diagnostic::warning(
                    Code::MissingDevice,
                    super::hacf::FILE,
                    None,
                    format!("IPv6 is disabled on interface {iface:?}, which carries {}: it has no IPv6 address, so the daemon refuses to start", m.keyword()),
                )
                .text(iface.to_string())
                .hint(format!("enable it (sysctl -w net.ipv6.conf.{iface}.disable_ipv6=0, and in /etc/sysctl.d) or use an IPv4 medium on {iface}")),
            );
        }
    }
    out
}

/// Check a configuration directory (default, strict options).
pub fn check(dir: &Path, node_override: Option<&str>) -> Report {
    check_with(dir, node_override, super::LoadOptions::default())
}

/// Check a configuration directory with wasmbeat-only options.
pub fn check_with(dir: &Path, node_override: Option<&str>, opts: super::LoadOptions) -> Report {
    let mut loaded = Loaded::from_dir_with(dir, node_override, opts);
    if let Some(ha) = &loaded.ha {
        let host = host_diagnostics(ha, loaded.resources.as_ref(), Path::new("/sys/class/net"));
        loaded.diagnostics.extend(host);
        let v6 = ipv6_diagnostics(ha, Path::new("/proc/sys/net/ipv6/conf"));
        loaded.diagnostics.extend(v6);
    }
    let groups = loaded
        .resources
        .as_ref()
        .map(|r| resolve_groups(dir, r, &loaded.policy))
        .unwrap_or_default();
    let mut fence_devices = Vec::new();
    if let Some(ha) = &loaded.ha {
        let (plans, diags) =
            crate::fence::device::plan(ha, &loaded.policy, loaded.local_node.as_deref(), dir);
        loaded.diagnostics.extend(diags);
        fence_devices = plans;
    }
    Report {
        dir: dir.to_path_buf(),
        loaded,
        groups,
        grants: Vec::new(),
        confinement: Vec::new(),
        fencing: fence_devices.iter().map(|d| d.describe()).collect(),
        fence_devices,
    }
}

fn medium_text(m: &Medium) -> String {
    let kw = m.keyword();
    match m {
        Medium::Bcast { iface, port } => format!("{kw} {iface} (UDP port {port})"),
        Medium::Ucast { iface, peer, port } => format!("{kw} {iface} to {peer} (UDP port {port})"),
        Medium::Mcast {
            iface,
            group,
            port,
            ttl,
            loop_,
        } => format!(
            "{kw} {iface} group {group} port {port} ttl {ttl} loop {}",
            u8::from(*loop_)
        ),
        Medium::Serial { device, baud } => format!("{kw} {device} at {baud} baud"),
    }
}

fn failback_text(a: AutoFailback) -> &'static str {
    match a {
        AutoFailback::On => "on (resources move back to their preferred node)",
        AutoFailback::Off => "off (resources stay where they run)",
        AutoFailback::Legacy => "legacy (heartbeat's old ip-request protocol)",
    }
}

/// A duration for people: `1s`, `200ms`, `1.5s`.
fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.checked_rem(1000) == Some(0) {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

fn timings(ha: &HaCf) -> String {
    let d = human;
    format!(
        "keepalive {}, warntime {}, deadtime {}, initdead {}",
        d(ha.keepalive),
        d(ha.warntime),
        d(ha.deadtime),
        d(ha.initdead)
    )
}

impl Report {
    /// True when the configuration would run (no errors, and every grant
    /// that was computed could be).
    pub fn ok(&self) -> bool {
        !has_errors(&self.loaded.diagnostics)
            && !self
                .grants
                .iter()
                .flatten()
                .any(|g| matches!(g, GrantText::Error(_)))
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let l = &self.loaded;
        let _ = writeln!(s, "configuration: {}", self.dir.display());
        if let Some(ha) = &l.ha {
            let _ = writeln!(s, "nodes:         {}", ha.nodes.join(", "));
            if let Some(me) = &l.local_node {
                let _ = writeln!(s, "this node:     {me}");
            }
            let _ = writeln!(s, "timings:       {}", timings(ha));
            for (i, m) in ha.media.iter().enumerate() {
                let label = if i == 0 { "media:" } else { "" };
                let _ = writeln!(s, "{label:<15}{}", medium_text(m));
            }
            let _ = writeln!(s, "auto_failback: {}", failback_text(ha.auto_failback));
            if !ha.track_link.is_empty() {
                let how = if ha.ipfail() && ha.auto_failback != AutoFailback::Legacy {
                    "lost carrier hands the groups to the peer at once through ipfail; wasmbeat-only"
                } else {
                    "watched and logged only: ipfail is not running"
                };
                let _ = writeln!(s, "track_link:    {} ({how})", ha.track_link.join(", "));
            }
            if let Some(dev) = &ha.watchdog {
                let t = super::hacf::choose_watchdog_timeout(ha.deadtime, ha.keepalive);
                let _ = writeln!(
                    s,
                    "watchdog:      {dev}, timeout {} s (deadtime − keepalive in whole seconds, at least two keepalives), petted with each heartbeat",
                    t.secs
                );
            }
            if let Some(w) = ha.tiebreaker {
                let _ = writeln!(
                    s,
                    "tiebreaker:    {w} (witness decides which side of a partition runs the groups; wasmbeat-only)"
                );
            }
        }
        if let Some(a) = &l.auth {
            let others = a.keys.len().saturating_sub(1);
            let _ = write!(
                s,
                "auth:          key {} ({})",
                a.active_index,
                a.method.name()
            );
            if others > 0 {
                let _ = write!(s, ", {others} more key(s) accepted on receive");
            }
            let _ = writeln!(s);
        }
        if let Some(r) = &l.resources {
            let _ = writeln!(s, "resource groups: {}", r.groups.len());
            for (gi, (g, res)) in r.groups.iter().zip(&self.groups).enumerate() {
                let mine = if l.local_node.as_deref() == Some(g.preferred_node.as_str()) {
                    " = this node"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "  {} (preferred node {}{mine}, haresources:{})",
                    g.key, g.preferred_node, g.line
                );
                for (i, rr) in res.iter().enumerate() {
                    let how = rr
                        .resolution
                        .as_ref()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "NOT FOUND".to_string());
                    let params: Vec<String> =
                        rr.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = writeln!(
                        s,
                        "    {}. {} [{}] {}",
                        i + 1,
                        rr.agent,
                        how,
                        params.join(" ")
                    );
                    match self.grants.get(gi).and_then(|g| g.get(i)) {
                        Some(GrantText::Lines(lines)) => {
                            for (k, line) in lines.iter().enumerate() {
                                let head = if k == 0 { "may:" } else { "" };
                                let _ = writeln!(s, "       {head:<5}{line}");
                            }
                        }
                        Some(GrantText::Error(e)) => {
                            let _ = writeln!(s, "       grant error: {e}");
                        }
                        None => {}
                    }
                }
            }
        }
        for (k, line) in self.fencing.iter().enumerate() {
            let label = if k == 0 { "fencing:" } else { "" };
            let _ = writeln!(s, "{label:<15}{line}");
        }
        for (k, line) in self.confinement.iter().enumerate() {
            let label = if k == 0 { "confinement:" } else { "" };
            let _ = writeln!(s, "{label:<15}{line}");
        }
        let errors = l.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = l.diagnostics.len() - errors;
        for d in sorted(&l.diagnostics) {
            let _ = writeln!(s, "{d}");
        }
        if self.ok() {
            let _ = writeln!(
                s,
                "OK: this configuration would run ({warnings} warning(s))"
            );
        } else {
            let _ = writeln!(
                s,
                "FAILED: {errors} error(s), {warnings} warning(s); this configuration would not run"
            );
        }
        s
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> Value {
        let l = &self.loaded;
        let groups: Vec<Value> = l
            .resources
            .as_ref()
            .map(|r| {
                r.groups
                    .iter()
                    .zip(&self.groups)
                    .enumerate()
                    .map(|(gi, (g, res))| {
                        let resources: Vec<Value> = res
                            .iter()
                            .enumerate()
                            .map(|(i, rr)| {
                                let params: serde_json::Map<String, Value> = rr
                                    .params
                                    .iter()
                                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                                    .collect();
                                let mut v = json!({
                                    "text": rr.text,
                                    "agent": rr.agent,
                                    "resolution": rr.resolution,
                                    "params": params,
                                });
                                match self.grants.get(gi).and_then(|g| g.get(i)) {
                                    Some(GrantText::Lines(l)) => v["grant"] = json!(l),
                                    Some(GrantText::Error(e)) => v["grant_error"] = json!(e),
                                    None => {}
                                }
                                v
                            })
                            .collect();
                        json!({
                            "key": g.key,
                            "preferred_node": g.preferred_node,
                            "line": g.line,
                            "resources": resources,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut v = json!({
            "ok": self.ok(),
            "config_dir": self.dir,
            "local_node": l.local_node,
            "ha_cf": redacted(l.ha.as_ref()),
            "groups": groups,
            "auth": l.auth.as_ref().map(|a| json!({
                "active_index": a.active_index,
                "method": a.method.name(),
                "heartbeat_compatible": a.method.heartbeat_compatible(),
                "keys": a.keys.iter().map(|k| json!({"index": k.index, "method": k.method.name()})).collect::<Vec<_>>(),
            })),
            "diagnostics": l.diagnostics,
        });
        if !self.confinement.is_empty() {
            v["confinement"] = json!(self.confinement);
        }
        if !self.fencing.is_empty() {
            v["fencing"] = json!(self.fencing);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_media_on_an_interface_with_ipv6_off_are_warned_once() {
        let conf = tempfile::tempdir().unwrap();
        for (iface, flag) in [("eth0", "0\n"), ("eth1", "1\n")] {
            std::fs::create_dir(conf.path().join(iface)).unwrap();
            std::fs::write(conf.path().join(iface).join("disable_ipv6"), flag).unwrap();
        }
        // Allowed: IPv6 on (eth0), an IPv4 medium on eth1, an interface
        // this machine does not know (host_diagnostics names that one).
        let (ok, _) = HaCf::parse(
            "node a\nucast6 eth0 fe80::2\nmcast6 eth0 ff12::1:2:3:4 694 1 0\nbcast eth1\nucast6 eth9 fd77::2\nauto_failback on\n",
        );
        assert!(ipv6_diagnostics(&ok, conf.path()).is_empty());
        // Denied: both IPv6 media on eth1, where IPv6 is off: one warning.
        let (off, _) = HaCf::parse(
            "node a\nucast6 eth1 fe80::2\nmcast6 eth1 ff12::1:2:3:4 694 1 0\nauto_failback on\n",
        );
        let d = ipv6_diagnostics(&off, conf.path());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].text, "eth1");
        assert_eq!(d[0].severity, Severity::Warning);
        assert!(d[0].message.contains("IPv6 is disabled"), "{}", d[0]);
    }

    #[test]
    fn missing_interfaces_and_devices_are_warned_once() {
        let net = tempfile::tempdir().unwrap();
        std::fs::create_dir(net.path().join("eth0")).unwrap();
        let (ha, _) = HaCf::parse(
            "node a\nbcast eth0 eth1\nucast eth1 10.0.0.2\nserial /dev/nonexistent-tty\nauto_failback on\n",
        );
        let (res, _) =
            Haresources::parse("a IPaddr::10.0.0.1/24/eth0 IPaddr2::10.0.0.2/24/bond0\n");
        let d = host_diagnostics(&ha, Some(&res), net.path());
        let texts: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["eth1", "bond0", "/dev/nonexistent-tty"]);
        // A stonith line whose configuration file is missing, next to one
        // whose file exists.
        let conf = net.path().join("stonith.cfg");
        std::fs::write(&conf, "").unwrap();
        let (st, _) = HaCf::parse(&format!(
            "node a\nstonith baytech {}\nstonith baytech /nonexistent/stonith.cfg\nauto_failback on\n",
            conf.display()
        ));
        let d = host_diagnostics(&st, None, net.path());
        let texts: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["/nonexistent/stonith.cfg"]);
        assert!(d.iter().all(|d| d.severity == Severity::Warning));
        assert!(host_diagnostics(&ha, Some(&res), Path::new("/nonexistent")).is_empty());
        let (wd, _) = HaCf::parse("node a\nwatchdog /nonexistent/watchdog\nauto_failback on\n");
        let d = host_diagnostics(&wd, None, net.path());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].text, "/nonexistent/watchdog");
        assert!(
            d[0].hint
                .as_deref()
                .unwrap_or_default()
                .contains("modprobe softdog"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn ipaddr_params_by_name_and_positional_args_otherwise() {
        let t = ResourceToken::parse("135.9.216.3/28/eth0/135.9.216.12").unwrap();
        let p = named_params(&t);
        assert_eq!(
            p,
            [
                ("ip".to_string(), "135.9.216.3".to_string()),
                ("cidr_netmask".into(), "28".into()),
                ("nic".into(), "eth0".into()),
                ("broadcast".into(), "135.9.216.12".into()),
            ]
        );
        let t = ResourceToken::parse("Filesystem::/dev/sda1::/data1::ext2").unwrap();
        let p = named_params(&t);
        assert_eq!(p[2], ("arg3".to_string(), "ext2".to_string()));
    }

    #[test]
    fn ipv6_addresses_cut_by_the_double_colon_are_whole_again() {
        let ok = |text: &str| ipaddr_diagnostic(1, &ResourceToken::parse(text).unwrap());
        assert!(ok("IPaddr::fd77::100/64/eth0").is_none());
        assert!(ok("IPaddr2::2001:db8::10/64").is_none());
        let d = ok("IPaddr::10.0.0.1::24").expect("IPv4 fields joined by :: are refused");
        assert_eq!(d.code, Code::BadIpaddrArg);
        assert!(d.to_string().contains("join the fields with '/'"), "{d}");
    }
}
