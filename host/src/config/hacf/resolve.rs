//! Host names in ha.cf (`ucast eth0 peer-host`) are looked up after the
//! whole file is read, in this one step, so reading stays free of network
//! IO and a test can hand in its own resolver. heartbeat looks them up with
//! gethostbyname as it reads the line; the outcome is the same.

use std::net::{IpAddr, ToSocketAddrs};

use super::super::diag::{Code, Diagnostic};
use super::reader::{diagnostic, At, MediumLine, Reader};
use super::Medium;

/// Turns host names into addresses.
pub trait Resolve {
    /// Every address of `host`, in the resolver's order; empty when the
    /// name does not resolve.
    fn lookup(&self, host: &str) -> Vec<IpAddr>;
}

/// The system's resolver (getaddrinfo: /etc/hosts, then DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup(&self, host: &str) -> Vec<IpAddr> {
        match (host, 0).to_socket_addrs() {
            Ok(addrs) => addrs.map(|sa| sa.ip()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Look up every peer given by name. A name that resolves to no address of
/// the wanted family drops its medium with an error. The returned
/// diagnostics belong to the media lines (merged in by line later).
pub(super) fn resolve_names(r: &mut Reader, resolver: &dyn Resolve) -> Vec<Diagnostic> {
    let mut late = Vec::new();
    let mut dropped = Vec::new();
    for (medium, line) in std::mem::take(&mut r.media) {
        let MediumLine::Named(p) = medium else {
            r.media.push((medium, line));
            continue;
        };
        let found = resolver
            .lookup(&p.host)
            .into_iter()
            .find(|ip| ip.is_ipv6() == p.v6);
        let Some(peer) = found else {
            late.push(unresolvable_peer(
                p.directive,
                p.example,
                p.v6,
                line,
                p.col,
                &p.host,
            ));
            dropped.push(line);
            continue;
        };
        if let Some((col, text)) = &p.extra {
            late.push(extra_peer(p.directive, line, *col, text));
        }
        let ucast = Medium::Ucast {
            iface: p.iface,
            peer,
            port: p.port,
        };
        r.media.push((MediumLine::Ready(ucast), line));
    }
    // Media dropped here no longer keep a port: revise the udpport
    // warnings that named them (last first, so removals keep indices valid).
    for mut note in std::mem::take(&mut r.port_notes).into_iter().rev() {
        if !note.media_lines.iter().any(|l| dropped.contains(l)) {
            continue;
        }
        note.media_lines.retain(|l| !dropped.contains(l));
        if note.media_lines.is_empty() {
            r.diags.remove(note.diag);
        } else {
            r.diags[note.diag].message = note.message();
        }
    }
    late
}

/// A `ucast` peer that is neither an address of the family nor a name
/// resolving to one.
pub(super) fn unresolvable_peer(
    directive: &'static str,
    example: &'static str,
    v6: bool,
    line: usize,
    col: usize,
    text: &str,
) -> Diagnostic {
    let at = At {
        line,
        col,
        name: directive,
        text,
        example,
    };
    diagnostic(
        true,
        Code::BadMedium,
        at,
        format!(
            "{directive} peer {text:?} is not an {} address or a resolvable host name",
            if v6 { "IPv6" } else { "IPv4" }
        ),
        &Reader::example_hint(at),
    )
}

/// A third value on a `ucast` line, which heartbeat ignores.
pub(super) fn extra_peer(
    directive: &'static str,
    line: usize,
    col: usize,
    text: &str,
) -> Diagnostic {
    let at = At {
        line,
        col,
        name: directive,
        text,
        example: "",
    };
    diagnostic(
        false,
        Code::BadMedium,
        at,
        format!("{directive} takes one peer per line; heartbeat ignores {text:?} and the rest"),
        "write one ucast line per peer",
    )
}
