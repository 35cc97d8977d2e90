//! HTTP endpoint grants of fence devices and the URL check every request
//! of a fence agent passes before a connection is made.
//!
//! A grant is `scheme://host[:port][/path]`. A request URL matches it when
//! its scheme, host and port are equal (hosts compared as addresses, names
//! case-insensitively, default ports filled in) and its path, split into
//! segments and percent-decoded, starts with the grant's segments. URLs
//! that different parsers could read differently are refused outright: a
//! user name (`http://good@evil/`), `.`/`..` segments, encoded `/` or `\`,
//! empty segments, fragments, non-ASCII or control characters, hosts that
//! only look like IPv4 addresses (`127.1`, `0x7f.0.0.1`), IPv6 zones.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 4096;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS (not implemented by the client yet).
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower case.
    Name(String),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A URL as the host reads it (and will send it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Scheme.
    pub scheme: Scheme,
    /// Host.
    pub host: Host,
    /// Port (the scheme's default filled in).
    pub port: u16,
    /// Decoded path segments (a trailing `/` dropped).
    pub segments: Vec<String>,
    /// Path and query as written (the request target), `/` at least.
    pub target: String,
}

impl Url {
    /// `host[:port]` for the `Host` header (the port only if not the default).
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://host:port` (always with the port).
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, UrlError> {
    Err(UrlError(m.into()))
}

/// Parse a URL strictly (see the module documentation).
pub fn parse(text: &str) -> Result<Url, UrlError> {
    if text.len() > MAX_URL_BYTES {
        return err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return err(format!(
            "the URL holds {c:?}: only printable ASCII without spaces (percent-encode the rest)"
        ));
    }
    if text.contains('\\') {
        return err("the URL holds a backslash");
    }
    if text.contains('#') {
        return err("the URL holds a fragment ('#')");
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return err("not an absolute URL (write http://HOST[:PORT]/PATH)");
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return err(format!("scheme {other:?}: only http:// and https:// URLs")),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return err(format!(
            "a user name in the URL ({authority:?}) is not allowed: credentials go in a header"
        ));
    }
    let (host, port) = parse_authority(authority)?;
    let port = port.unwrap_or(scheme.default_port());
    let (path, query) = match tail.find('?') {
        Some(i) => (&tail[..i], Some(&tail[i..])),
        None => (tail, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let segments = segments(path)?;
    let target = format!("{path}{}", query.unwrap_or(""));
    Ok(Url {
        scheme,
        host,
        port,
        segments,
        target,
    })
}

fn parse_authority(a: &str) -> Result<(Host, Option<u16>), UrlError> {
    if a.is_empty() {
        return err("the URL has no host");
    }
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let Some((inside, after)) = v6.split_once(']') else {
            return err(format!("unclosed IPv6 address in {a:?}"));
        };
        if inside.contains('%') {
            return err("IPv6 zones ('%eth0') are not allowed in URLs here");
        }
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| UrlError(format!("{inside:?} is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError(format!("unexpected {p:?} after the IPv6 address")))?,
            ),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, p) = match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        };
        (parse_host(h)?, p)
    };
    let port = match port {
        None => None,
        Some(p) => {
            let n: u16 = p
                .parse()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| UrlError(format!("port {p:?} is not a number from 1 to 65535")))?;
            Some(n)
        }
    };
    Ok((host, port))
}

fn parse_host(h: &str) -> Result<Host, UrlError> {
    if h.is_empty() {
        return err("the URL has no host");
    }
    if let Ok(ip) = h.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let lower = h.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !labels.iter().all(label_ok) {
        return err(format!("{h:?} is not a host name or IP address"));
    }
    // `127.1`, `2130706433`, `0x7f.1`: resolvers read these as IPv4
    // addresses in forms no grant is written in.
    let last = labels.last().copied().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return err(format!(
            "{h:?} looks like an IPv4 address but is not one in dotted-quad form"
        ));
    }
    Ok(Host::Name(name.to_string()))
}

fn segments(path: &str) -> Result<Vec<String>, UrlError> {
    let Some(rest) = path.strip_prefix('/') else {
        return err("the path must start with '/'");
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut out = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            return err("the path has an empty segment ('//')");
        }
        let seg = decode(raw)?;
        // `..;x` is `..` to servlet containers; `%252e` is `%2e` to a
        // server that decodes twice; `．．` is `..` to one that folds
        // Unicode: none of them reaches a switch.
        let dots = seg.split(';').next().unwrap_or("");
        if dots == "." || dots == ".." {
            return err(format!("the path has a {dots:?} segment ({raw:?})"));
        }
        if seg.contains('%') {
            return err(format!("the path segment {raw:?} is encoded twice ('%25')"));
        }
        if !seg.is_ascii() {
            return err(format!(
                "the path segment {raw:?} decodes to non-ASCII text"
            ));
        }
        out.push(seg);
    }
    Ok(out)
}

fn decode(raw: &str) -> Result<String, UrlError> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError(format!("bad percent-encoding in {raw:?}")))?;
            if matches!(hex, b'/' | b'\\' | 0) || hex < 0x20 || hex == 0x7f {
                return err(format!(
                    "the path segment {raw:?} encodes '/', '\\\\' or a control character"
                ));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError(format!("{raw:?} does not decode to UTF-8")))
}

/// One granted endpoint: an origin and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    url: Url,
    /// As written by the administrator (or the `base` parameter).
    pub text: String,
}

impl HttpGrant {
    /// Parse a grant (no query).
    pub fn parse(text: &str) -> Result<HttpGrant, UrlError> {
        let url = parse(text)?;
        if url.target.contains('?') {
            return err("an endpoint grant has no query ('?')");
        }
        Ok(HttpGrant {
            url,
            text: text.to_string(),
        })
    }

    /// Whether the client can use it (`https` is not implemented yet).
    pub fn usable(&self) -> Result<(), UrlError> {
        match self.url.scheme {
            Scheme::Http => Ok(()),
            Scheme::Https => err(format!(
                "{}: https:// is not implemented yet (TLS to fence devices is not built in); use an http:// endpoint on the management network",
                self.text
            )),
        }
    }

    /// Whether `url` lies inside this grant.
    pub fn allows(&self, url: &Url) -> bool {
        let g = &self.url;
        g.scheme == url.scheme
            && g.host == url.host
            && g.port == url.port
            && url.segments.len() >= g.segments.len()
            && g.segments.iter().zip(&url.segments).all(|(a, b)| a == b)
    }
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(grant: &str, url: &str) -> bool {
        let g = HttpGrant::parse(grant).unwrap();
        match parse(url) {
            Ok(u) => g.allows(&u),
            Err(_) => false,
        }
    }

    #[test]
    fn paths_under_the_prefix_match_segment_by_segment() {
        let g = "http://10.9.0.254:8080/pdu";
        assert!(allows(g, "http://10.9.0.254:8080/pdu"));
        assert!(allows(g, "http://10.9.0.254:8080/pdu/"));
        assert!(allows(g, "http://10.9.0.254:8080/pdu/nodes/n1/off"));
        assert!(allows(g, "http://10.9.0.254:8080/pdu/nodes?x=1"));
        assert!(
            !allows(g, "http://10.9.0.254:8080/pdu2/nodes"),
            "a string prefix is not a path prefix"
        );
        assert!(!allows(g, "http://10.9.0.254:8080/"));
        assert!(!allows(g, "http://10.9.0.254:8080/other/pdu"));
        assert!(allows(
            "http://10.9.0.254:8080/pdu/",
            "http://10.9.0.254:8080/pdu/x"
        ));
        assert!(allows(
            "http://10.9.0.254:8080",
            "http://10.9.0.254:8080/anything"
        ));
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        let g = "http://h.example/pdu";
        for bad in [
            "http://h.example/pdu/../admin",
            "http://h.example/pdu/./nodes",
            "http://h.example/pdu/%2e%2e/admin",
            "http://h.example/pdu/%2E%2E/admin",
            "http://h.example/pdu/.%2e/admin",
            "http://h.example/pdu/nodes%2f..%2f..%2fadmin",
            "http://h.example/pdu/nodes%5cadmin",
            "http://h.example/pdu/nodes%00",
            "http://h.example/pdu//nodes",
            "http://h.example/pdu/nodes\\..\\admin",
            "http://h.example/pdu/nodes#frag",
            "http://h.example/pdu/n%zz",
            "http://h.example/pdu/..;/admin",
            "http://h.example/pdu/.;x/admin",
            "http://h.example/pdu/%2e%2e;jsessionid=1/admin",
            "http://h.example/pdu/%252e%252e/admin",
            "http://h.example/pdu/%ef%bc%8e%ef%bc%8e/admin",
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
            assert!(!allows(g, bad), "{bad}");
        }
        // Percent-encoding of ordinary characters compares decoded.
        assert!(allows(g, "http://h.example/%70du/nodes"));
        assert!(allows("http://h.example/p%64u", "http://h.example/pdu/x"));
        assert!(allows(g, "http://h.example/pdu/node%20one"));
    }

    #[test]
    fn userinfo_is_refused_whatever_it_hides() {
        let g = "http://good.example/pdu";
        for bad in [
            "http://good.example@evil.example/pdu",
            "http://good.example:80@evil.example/pdu",
            "http://user:pw@good.example/pdu",
            "http://@good.example/pdu",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.0.contains("user name"), "{bad}: {e}");
            assert!(!allows(g, bad));
        }
    }

    #[test]
    fn hosts_and_ports_must_be_equal_with_defaults_filled_in() {
        assert!(allows("http://h.example/pdu", "http://h.example:80/pdu/x"));
        assert!(allows("http://h.example:80/pdu", "http://H.EXAMPLE/pdu/x"));
        assert!(allows("HTTP://h.example./pdu", "http://h.example/pdu"));
        assert!(!allows("http://h.example/pdu", "http://h.example:8080/pdu"));
        assert!(!allows("http://h.example/pdu", "https://h.example/pdu"));
        assert!(!allows("http://h.example/pdu", "http://h.example.evil/pdu"));
        assert!(!allows("http://h.example/pdu", "http://evil-h.example/pdu"));
        assert!(!allows(
            "http://127.0.0.1:8080/pdu",
            "http://127.0.0.2:8080/pdu"
        ));
        assert!(!allows(
            "http://127.0.0.1:8080/pdu",
            "http://127.0.0.1:8081/pdu"
        ));
        assert!(allows("https://h.example/pdu", "https://h.example:443/pdu"));
        for bad in [
            "http://h.example:0/",
            "http://h.example:65536/",
            "http://h.example:/",
            "http://h.example:+80/",
            "http:///pdu",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_hosts_compare_as_addresses() {
        let g = "http://[2001:db8::1]:8080/pdu";
        assert!(allows(g, "http://[2001:db8::1]:8080/pdu/nodes"));
        assert!(allows(g, "http://[2001:DB8:0::0:1]:8080/pdu/nodes"));
        assert!(!allows(g, "http://[2001:db8::2]:8080/pdu/nodes"));
        assert!(
            !allows(g, "http://[2001:db8::1]/pdu/nodes"),
            "default port 80 is not 8080"
        );
        assert!(parse("http://[fe80::1%25eth0]/").is_err());
        assert!(parse("http://[fe80::1/").is_err());
        assert!(parse("http://[::ffff:127.0.0.1]:80x/").is_err());
        let u = parse("http://[::1]/x").unwrap();
        assert_eq!(u.authority(), "[::1]");
        assert_eq!(u.port, 80);
    }

    #[test]
    fn numeric_hosts_in_other_forms_are_refused() {
        for bad in [
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://a..b/",
            "http://-a.example/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("http://10.9.0.254/").is_ok());
    }

    #[test]
    fn https_grants_are_refused_as_not_implemented() {
        let g = HttpGrant::parse("https://h.example/pdu").unwrap();
        let e = g.usable().unwrap_err();
        assert!(e.0.contains("not implemented yet"), "{e}");
        assert!(HttpGrant::parse("http://h.example/pdu")
            .unwrap()
            .usable()
            .is_ok());
        assert!(HttpGrant::parse("http://h.example/pdu?x=1").is_err());
    }
}
