//! heartbeat's IPaddr/IPaddr2 address argument, `IP[/MASK[/NIC[/BROADCAST]]]`,
//! read by the rules of its wrapper scripts (`hto-mapfuncs`): split on `/`;
//! the second field is a netmask (bits or dotted quad); a third field
//! starting with a digit is the broadcast address (no nic), otherwise it is
//! the nic (optionally `nic:label`) and a fourth field is the broadcast.
//! The same value may come as OCF-style named parameters (`ip`,
//! `cidr_netmask`, `nic`, `broadcast`), merged by [`AddressSpec::from_params`].
//!
//! [`plan`] then chooses interface, prefix length, broadcast and label the
//! way heartbeat's `findif` does, from the addresses already configured.
//! The host runs it when an agent adds a granted address, so none of these
//! come from the agent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The netmask field as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netmask {
    /// A prefix length (`/24`).
    Bits(u8),
    /// A dotted quad (`/255.255.255.0`); `contiguous` is false for values
    /// like `100.200.230.6` that are not a run of ones followed by zeros.
    Dotted {
        /// The mask as written.
        mask: Ipv4Addr,
        /// Whether it is a valid netmask.
        contiguous: bool,
    },
}

/// The broadcast field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// Absent or `+`: the interface's own, else computed (host bits set).
    Auto,
    /// `-`: no broadcast address.
    Off,
    /// Given explicitly.
    Addr(Ipv4Addr),
}

/// How a dotted netmask that is not contiguous is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskRule {
    /// heartbeat's IPaddr (C `findif`): 32 minus the index of the lowest
    /// set bit, so any dotted value "works" (`100.200.230.6` is a /31).
    Findif,
    /// heartbeat's IPaddr2 (`findif.sh`): refused ("Invalid netmask").
    Strict,
}

/// A parsed address argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSpec {
    /// The service address.
    pub ip: IpAddr,
    /// The netmask as written, if any.
    pub netmask: Option<Netmask>,
    /// The interface (`eth0` of `eth0:web`), if given.
    pub nic: Option<String>,
    /// The alias label suffix (`web` of `eth0:web`), if given.
    pub label: Option<String>,
    /// The broadcast field.
    pub broadcast: Broadcast,
}

/// Why an address argument cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// Nothing given.
    Empty,
    /// The first field is not an IP address.
    BadIp(String),
    /// The netmask is neither a prefix length nor a dotted netmask.
    BadNetmask(String),
    /// A prefix length outside 1..=32 (IPv4) or 1..=128 (IPv6): a /0
    /// would make the address a default route.
    PrefixRange(u32, u8),
    /// A dotted netmask on an IPv6 address.
    DottedOnV6(String, IpAddr),
    /// A dotted netmask that is not contiguous, where it is refused.
    NonContiguous(Ipv4Addr),
    /// The broadcast field is not an IPv4 address, `+` or `-`.
    BadBroadcast(String),
    /// A broadcast address for an IPv6 address.
    BroadcastOnV6(String),
    /// The nic field is not a usable interface name (or label).
    BadIface(String),
    /// A label on an IPv6 address (IPv6 has none).
    LabelOnV6(String),
    /// More than four `/`-separated fields.
    TooManyFields(String),
    /// A field is empty (`10.0.0.1//eth0`).
    EmptyField(String),
    /// The third field is a broadcast address, so no fourth may follow.
    FieldAfterBroadcast(String),
    /// The same setting given twice with different values.
    Conflict {
        /// Parameter name.
        param: &'static str,
        /// Value inside `ip`.
        embedded: String,
        /// Value of the named parameter.
        named: String,
    },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AddressError as E;
        match self {
            E::Empty => write!(f, "the IP address argument is empty"),
            E::BadIp(s) => write!(f, "{s:?} is not an IP address"),
            E::BadNetmask(s) => write!(
                f,
                "netmask {s:?} is neither a prefix length (e.g. 24) nor a dotted netmask (e.g. 255.255.255.0)"
            ),
            E::PrefixRange(p, max) => write!(f, "prefix length {p} is out of range 1..={max}"),
            E::DottedOnV6(m, ip) => {
                write!(f, "a dotted netmask ({m}) cannot apply to the IPv6 address {ip}")
            }
            E::NonContiguous(m) => write!(
                f,
                "{m} is not a valid netmask (its one bits are not contiguous); the second field is \
                 the netmask, not a gateway: write the subnet's prefix length (e.g. /24)"
            ),
            E::BadBroadcast(s) => write!(f, "broadcast {s:?} is not an IPv4 address, + or -"),
            E::BroadcastOnV6(s) => write!(f, "IPv6 has no broadcast address, but {s:?} was given"),
            E::BadIface(s) => write!(
                f,
                "{s:?} is not a valid interface name (1-15 characters, no '/', ':' only before a label)"
            ),
            E::LabelOnV6(s) => write!(f, "IPv6 addresses have no labels ({s})"),
            E::TooManyFields(s) => write!(
                f,
                "too many '/'-separated fields in {s:?} (at most IP/MASK/NIC/BROADCAST)"
            ),
            E::EmptyField(s) => write!(f, "{s:?} has an empty field"),
            E::FieldAfterBroadcast(s) => write!(
                f,
                "{s:?}: the third field is a broadcast address, so there can be no fourth"
            ),
            E::Conflict {
                param,
                embedded,
                named,
            } => write!(
                f,
                "{param} given twice with different values ({embedded:?} in ip, {named:?} as {param})"
            ),
        }
    }
}

impl std::error::Error for AddressError {}

/// True for a run of one bits followed only by zero bits.
pub fn is_contiguous(mask: u32) -> bool {
    mask.leading_ones() + mask.trailing_zeros() == 32
}

/// heartbeat IPaddr's `findif` reading of a dotted mask: 32 minus the index
/// of the lowest set bit (so any value "works", even a host address).
pub fn findif_prefix(mask: Ipv4Addr) -> u8 {
    let m = u32::from(mask);
    if m == 0 {
        0
    } else {
        (32 - m.trailing_zeros()) as u8
    }
}

/// Whether `a` and `b` agree on their first `prefix` bits (false across
/// address families).
pub fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn parse_netmask(text: &str, ip: IpAddr) -> Result<Netmask, AddressError> {
    let max = max_prefix(ip);
    if let Ok(bits) = text.parse::<u32>() {
        if bits == 0 || bits > u32::from(max) {
            return Err(AddressError::PrefixRange(bits, max));
        }
        return Ok(Netmask::Bits(bits as u8));
    }
    let dotted: Ipv4Addr = text
        .parse()
        .map_err(|_| AddressError::BadNetmask(text.to_string()))?;
    if ip.is_ipv6() {
        return Err(AddressError::DottedOnV6(text.to_string(), ip));
    }
    let m = u32::from(dotted);
    if m == 0 {
        return Err(AddressError::PrefixRange(0, 32));
    }
    Ok(Netmask::Dotted {
        mask: dotted,
        contiguous: is_contiguous(m),
    })
}

fn parse_broadcast(text: &str, ip: IpAddr) -> Result<Broadcast, AddressError> {
    match text {
        "" | "+" => Ok(Broadcast::Auto),
        _ if ip.is_ipv6() => Err(AddressError::BroadcastOnV6(text.to_string())),
        "-" => Ok(Broadcast::Off),
        _ => text
            .parse()
            .map(Broadcast::Addr)
            .map_err(|_| AddressError::BadBroadcast(text.to_string())),
    }
}

/// An interface name as the kernel accepts it (IFNAMSIZ, no '/' or ':').
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

fn parse_nic(field: &str, ip: IpAddr) -> Result<(String, Option<String>), AddressError> {
    let (nic, label) = match field.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (field, None),
    };
    if !valid_ifname(nic) || label.is_some_and(|l| !valid_ifname(l)) {
        return Err(AddressError::BadIface(field.to_string()));
    }
    if label.is_some() && ip.is_ipv6() {
        return Err(AddressError::LabelOnV6(field.to_string()));
    }
    if let Some(l) = label {
        // The kernel keeps `nic:label` in IFNAMSIZ.
        if nic.len() + 1 + l.len() > 15 {
            return Err(AddressError::BadIface(field.to_string()));
        }
    }
    Ok((nic.to_string(), label.map(str::to_string)))
}

fn merge<T: PartialEq + fmt::Debug>(
    param: &'static str,
    embedded: Option<T>,
    named: Option<T>,
) -> Result<Option<T>, AddressError> {
    match (embedded, named) {
        (Some(a), Some(b)) if a != b => Err(AddressError::Conflict {
            param,
            embedded: format!("{a:?}"),
            named: format!("{b:?}"),
        }),
        (a, b) => Ok(a.or(b)),
    }
}

/// The named parameters an address may be spread over, in positional order.
pub const PARAMS: [&str; 4] = ["ip", "cidr_netmask", "nic", "broadcast"];

impl AddressSpec {
    /// Parse `IP[/MASK[/NIC[/BROADCAST]]]`.
    pub fn parse(text: &str) -> Result<AddressSpec, AddressError> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        let fields: Vec<&str> = text.split('/').collect();
        if fields.len() > 4 {
            return Err(AddressError::TooManyFields(text.to_string()));
        }
        if fields.iter().skip(1).any(|f| f.is_empty()) {
            return Err(AddressError::EmptyField(text.to_string()));
        }
        let ip: IpAddr = fields[0]
            .parse()
            .map_err(|_| AddressError::BadIp(fields[0].to_string()))?;
        let netmask = fields.get(1).map(|m| parse_netmask(m, ip)).transpose()?;
        let mut spec = AddressSpec {
            ip,
            netmask,
            nic: None,
            label: None,
            broadcast: Broadcast::Auto,
        };
        match fields.get(2) {
            Some(f) if f.starts_with(|c: char| c.is_ascii_digit()) => {
                if fields.len() == 4 {
                    return Err(AddressError::FieldAfterBroadcast(text.to_string()));
                }
                spec.broadcast = parse_broadcast(f, ip)?;
            }
            Some(f) => {
                let (nic, label) = parse_nic(f, ip)?;
                spec.nic = Some(nic);
                spec.label = label;
                if let Some(b) = fields.get(3) {
                    spec.broadcast = parse_broadcast(b, ip)?;
                }
            }
            None => {}
        }
        Ok(spec)
    }

    /// The address from named parameters (`get("ip")`, ...), as an agent
    /// receives them after binding: `ip` may carry the other fields, and a
    /// named value must agree with an embedded one. haresources splits
    /// arguments on `::`, so `IPaddr::fd77::10/64` arrives as `ip=fd77`,
    /// `cidr_netmask=10/64`; such pieces are joined back when that yields
    /// a valid address (wasmbeat's convenience; heartbeat cannot do IPv6
    /// there at all).
    pub fn from_params<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<AddressSpec, AddressError> {
        let raw = get("ip").ok_or(AddressError::Empty)?;
        let pieces: Vec<&str> = PARAMS.iter().map_while(|n| get(n)).collect();
        let head_is_ip = raw
            .split('/')
            .next()
            .is_some_and(|h| h.parse::<IpAddr>().is_ok());
        if !head_is_ip {
            // The longest run of leading pieces that joins into an address.
            for k in (2..=pieces.len()).rev() {
                if let Ok(spec) = AddressSpec::parse(&pieces[..k].join("::")) {
                    if spec.ip.is_ipv6() {
                        return spec.merge_named(&get, k);
                    }
                }
            }
        }
        AddressSpec::parse(raw)?.merge_named(&get, 1)
    }

    /// Merge the named parameters from position `from` on into the spec.
    fn merge_named<'a>(
        mut self,
        get: &impl Fn(&str) -> Option<&'a str>,
        from: usize,
    ) -> Result<AddressSpec, AddressError> {
        let named = |name: &str| {
            let pos = PARAMS.iter().position(|p| *p == name).unwrap_or(0);
            if pos >= from {
                get(name)
            } else {
                None
            }
        };
        if let Some(m) = named("cidr_netmask") {
            let given = parse_netmask(m, self.ip)?;
            // `/24` and `/255.255.255.0` say the same thing.
            let bits = |n: Netmask| match n {
                Netmask::Bits(b) => b,
                Netmask::Dotted { mask, .. } => findif_prefix(mask),
            };
            match self.netmask {
                Some(embedded) if bits(embedded) != bits(given) => {
                    return Err(AddressError::Conflict {
                        param: "cidr_netmask",
                        embedded: format!("/{}", bits(embedded)),
                        named: m.to_string(),
                    })
                }
                Some(_) => {}
                None => self.netmask = Some(given),
            }
        }
        if let Some(n) = named("nic") {
            let (nic, label) = parse_nic(n, self.ip)?;
            self.nic = merge("nic", self.nic, Some(nic))?;
            self.label = merge("nic label", self.label, label)?;
        }
        if let Some(b) = named("broadcast") {
            let b = parse_broadcast(b, self.ip)?;
            let embedded = (self.broadcast != Broadcast::Auto).then_some(self.broadcast);
            self.broadcast = merge("broadcast", embedded, Some(b))?.unwrap_or(Broadcast::Auto);
        }
        Ok(self)
    }

    /// The prefix length the netmask field gives (None: not written).
    pub fn prefix(&self, rule: MaskRule) -> Result<Option<u8>, AddressError> {
        Ok(match self.netmask {
            None => None,
            Some(Netmask::Bits(b)) => Some(b),
            Some(Netmask::Dotted {
                mask,
                contiguous: true,
            }) => Some(u32::from(mask).leading_ones() as u8),
            Some(Netmask::Dotted { mask, .. }) => match rule {
                MaskRule::Findif => Some(findif_prefix(mask)),
                MaskRule::Strict => return Err(AddressError::NonContiguous(mask)),
            },
        })
    }

    /// The dotted mask as written when it is not a valid netmask (the
    /// recipe's `100.200.230.1/100.200.230.6` case).
    pub fn noncontiguous_mask(&self) -> Option<Ipv4Addr> {
        match self.netmask {
            Some(Netmask::Dotted {
                mask,
                contiguous: false,
            }) => Some(mask),
            _ => None,
        }
    }
}

/// An address already configured on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// Interface carrying it.
    pub link: String,
    /// The address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// Its IPv4 broadcast address.
    pub broadcast: Option<Ipv4Addr>,
    /// Its IPv4 label.
    pub label: Option<String>,
}

/// Where and how an address goes: everything `ip addr add` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The address.
    pub ip: IpAddr,
    /// The interface.
    pub nic: String,
    /// The prefix length.
    pub prefix: u8,
    /// The IPv4 broadcast address, if any.
    pub broadcast: Option<Ipv4Addr>,
    /// The IPv4 label (`eth0:0`, `eth0:web`), if any.
    pub label: Option<String>,
}

/// Why no plan can be made on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The argument itself is unusable here.
    Address(AddressError),
    /// The named interface does not exist.
    NoSuchInterface(String),
    /// No interface has a subnet containing the address, and none was named.
    NoSubnet(IpAddr),
    /// An interface was named, but no netmask given and none found there.
    NoNetmask(IpAddr, String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Address(e) => e.fmt(f),
            PlanError::NoSuchInterface(n) => write!(f, "interface {n} does not exist"),
            PlanError::NoSubnet(ip) => write!(
                f,
                "no local interface has a subnet containing {ip}; name the interface \
                 ({ip}/CIDR/IFACE) or check the address"
            ),
            PlanError::NoNetmask(ip, nic) => write!(
                f,
                "cannot choose a netmask: no address on {nic} has a subnet containing {ip}; \
                 give it explicitly ({ip}/CIDR/{nic})"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Choose interface, prefix, broadcast and label for `spec` the way
/// heartbeat's findif does: the configured address (other than the
/// service address itself) whose subnet contains it, longest prefix first,
/// restricted to the named interface if there is one. `links` are the
/// interface names present.
pub fn plan(
    spec: &AddressSpec,
    rule: MaskRule,
    links: &[String],
    configured: &[Configured],
) -> Result<Plan, PlanError> {
    let ip = spec.ip;
    let prefix = spec.prefix(rule).map_err(PlanError::Address)?;
    if let Some(nic) = &spec.nic {
        if !links.iter().any(|l| l == nic) {
            return Err(PlanError::NoSuchInterface(nic.clone()));
        }
    }
    let best = configured
        .iter()
        .filter(|a| a.ip != ip && same_subnet(a.ip, ip, a.prefix))
        .filter(|a| spec.nic.as_ref().is_none_or(|n| &a.link == n))
        .max_by_key(|a| a.prefix);
    let nic = match (&spec.nic, best) {
        (Some(n), _) => n.clone(),
        (None, Some(a)) => a.link.clone(),
        (None, None) => return Err(PlanError::NoSubnet(ip)),
    };
    let prefix = match (prefix, best) {
        (Some(p), _) => p,
        (None, Some(a)) => a.prefix,
        (None, None) => return Err(PlanError::NoNetmask(ip, nic)),
    };
    let broadcast = match (ip, spec.broadcast) {
        (IpAddr::V6(_), _) | (_, Broadcast::Off) => None,
        (_, Broadcast::Addr(b)) => Some(b),
        (IpAddr::V4(v4), Broadcast::Auto) => match best {
            Some(a) if a.prefix == prefix && a.broadcast.is_some() => a.broadcast,
            _ if prefix < 31 => Some(Ipv4Addr::from(u32::from(v4) | (u32::MAX >> prefix))),
            _ => None,
        },
    };
    let label = match (ip, &spec.label) {
        (IpAddr::V6(_), _) => None,
        (_, Some(l)) => Some(format!("{nic}:{l}")),
        (_, None) => free_label(&nic, configured),
    };
    Ok(Plan {
        ip,
        nic,
        prefix,
        broadcast,
        label,
    })
}

/// Alias numbers heartbeat's IPaddr tries (`nic:0` .. `nic:99`).
const ALIASES: usize = 100;

/// An unused `nic:N` alias label, as heartbeat's IPaddr picks one. One pass
/// over the configured addresses: a group of 256 addresses plans 256
/// times against up to 256 labels, and trying each of the 100 numbers
/// against every label was quadratic in the group's size.
pub fn free_label(nic: &str, configured: &[Configured]) -> Option<String> {
    let mut used = [false; ALIASES];
    for a in configured {
        let number = a
            .label
            .as_deref()
            .and_then(|l| l.strip_prefix(nic)?.strip_prefix(':'))
            // Exactly the spelling `format!("{nic}:{n}")` gives: "01" or
            // "+1" is another label, not alias 1.
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = number.filter(|n| *n < ALIASES) {
            used[n] = true;
        }
    }
    let n = used.iter().position(|u| !u)?;
    Some(format!("{nic}:{n}")).filter(|l| l.len() <= 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AddressSpec {
        AddressSpec::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn heartbeat_documented_forms() {
        let a = p("135.9.8.7");
        assert_eq!(
            (a.ip, a.netmask, a.nic.clone()),
            (ip("135.9.8.7"), None, None)
        );
        assert_eq!(p("135.9.8.7/24").prefix(MaskRule::Strict), Ok(Some(24)));
        let a = p("135.9.8.7/24/135.9.8.210");
        assert_eq!(a.nic, None);
        assert_eq!(a.broadcast, Broadcast::Addr("135.9.8.210".parse().unwrap()));
        let a = p("135.9.216.3/28/eth0/135.9.216.12");
        assert_eq!(a.nic.as_deref(), Some("eth0"));
        assert_eq!(
            a.broadcast,
            Broadcast::Addr("135.9.216.12".parse().unwrap())
        );
        let a = p("10.0.0.1/255.255.255.0/eth1:web");
        assert_eq!(a.prefix(MaskRule::Strict), Ok(Some(24)));
        assert_eq!(
            (a.nic.as_deref(), a.label.as_deref()),
            (Some("eth1"), Some("web"))
        );
        assert_eq!(p("fd77::10/64/eth0").prefix(MaskRule::Strict), Ok(Some(64)));
        assert_eq!(p("10.0.0.1/24/eth0/-").broadcast, Broadcast::Off);
        assert_eq!(p("10.0.0.1/24/eth0/+").broadcast, Broadcast::Auto);
    }

    #[test]
    fn the_recipe_gateway_is_a_bogus_netmask() {
        let a = p("100.200.230.1/100.200.230.6");
        assert_eq!(
            a.noncontiguous_mask(),
            Some(Ipv4Addr::new(100, 200, 230, 6))
        );
        // IPaddr's findif: lowest set bit of ...0110 is bit 1 -> /31.
        assert_eq!(a.prefix(MaskRule::Findif), Ok(Some(31)));
        assert!(matches!(
            a.prefix(MaskRule::Strict),
            Err(AddressError::NonContiguous(_))
        ));
    }

    #[test]
    fn rejects_what_cannot_work() {
        let e = |s: &str| AddressSpec::parse(s).unwrap_err();
        assert_eq!(e(""), AddressError::Empty);
        assert!(matches!(e("1.2.3.4x"), AddressError::BadIp(_)));
        assert!(matches!(e("1.2.3.4/33"), AddressError::PrefixRange(33, 32)));
        // A /0 would install a default route (and ::/0 on IPv6).
        assert!(matches!(e("1.2.3.4/0"), AddressError::PrefixRange(0, 32)));
        assert!(matches!(
            e("1.2.3.4/0.0.0.0"),
            AddressError::PrefixRange(0, 32)
        ));
        assert!(matches!(e("fd77::1/0"), AddressError::PrefixRange(0, 128)));
        assert!(matches!(
            e("fd77::1/129"),
            AddressError::PrefixRange(129, 128)
        ));
        assert!(matches!(e("1.2.3.4/abc"), AddressError::BadNetmask(_)));
        assert!(matches!(
            e("1.2.3.4/24/eth0/x"),
            AddressError::BadBroadcast(_)
        ));
        assert!(matches!(
            e("1.2.3.4/24/eth0/1.2.3.255/x"),
            AddressError::TooManyFields(_)
        ));
        assert!(matches!(
            e("1.2.3.4/24/averyveryverylongname"),
            AddressError::BadIface(_)
        ));
        assert!(matches!(
            e("1.2.3.4/24/eth0:averylonglabel"),
            AddressError::BadIface(_)
        ));
        assert!(matches!(
            e("fd77::1/255.255.255.0"),
            AddressError::DottedOnV6(_, _)
        ));
        assert!(matches!(
            e("fd77::1/64/eth0/+x"),
            AddressError::BroadcastOnV6(_)
        ));
        assert!(matches!(e("fd77::1/64/eth0:a"), AddressError::LabelOnV6(_)));
        assert!(matches!(e("10.0.0.1//eth0"), AddressError::EmptyField(_)));
        assert!(matches!(
            e("10.0.0.1/24/10.0.0.255/10.0.0.1"),
            AddressError::FieldAfterBroadcast(_)
        ));
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
    }

    #[test]
    fn named_parameters_merge_and_must_agree() {
        let s = AddressSpec::from_params(params(&[("ip", "10.0.0.1"), ("nic", "eth2")])).unwrap();
        assert_eq!(s.nic.as_deref(), Some("eth2"));
        let s = AddressSpec::from_params(params(&[
            ("ip", "10.0.0.1/24"),
            ("cidr_netmask", "255.255.255.0"),
        ]))
        .unwrap();
        assert_eq!(s.prefix(MaskRule::Strict), Ok(Some(24)));
        let e = AddressSpec::from_params(params(&[("ip", "10.0.0.1/24"), ("cidr_netmask", "16")]))
            .unwrap_err();
        assert!(
            matches!(
                e,
                AddressError::Conflict {
                    param: "cidr_netmask",
                    ..
                }
            ),
            "{e}"
        );
        let e = AddressSpec::from_params(params(&[("ip", "10.0.0.1/24/eth0"), ("nic", "eth1")]))
            .unwrap_err();
        assert!(
            matches!(e, AddressError::Conflict { param: "nic", .. }),
            "{e}"
        );
        assert_eq!(
            AddressSpec::from_params(params(&[("nic", "eth0")])),
            Err(AddressError::Empty)
        );
    }

    #[test]
    fn ipv6_split_by_haresources_is_joined_back() {
        let s = AddressSpec::from_params(params(&[("ip", "fd77"), ("cidr_netmask", "10/64/eth1")]))
            .unwrap();
        assert_eq!(s.ip, ip("fd77::10"));
        assert_eq!(s.prefix(MaskRule::Strict), Ok(Some(64)));
        assert_eq!(s.nic.as_deref(), Some("eth1"));
        // An IPv6 address holds one `::`, so it splits in two; a nic after
        // the pieces still merges.
        let s = AddressSpec::from_params(params(&[
            ("ip", "fd77"),
            ("cidr_netmask", "1:2/64"),
            ("nic", "eth0"),
        ]))
        .unwrap();
        assert_eq!(s.ip, ip("fd77::1:2"));
        assert_eq!(s.nic.as_deref(), Some("eth0"));
        // Not an address either way: the error names the original piece.
        assert!(matches!(
            AddressSpec::from_params(params(&[("ip", "eth0")])),
            Err(AddressError::BadIp(_))
        ));
    }

    fn conf(link: &str, a: &str, prefix: u8, brd: Option<&str>, label: Option<&str>) -> Configured {
        Configured {
            link: link.into(),
            ip: ip(a),
            prefix,
            broadcast: brd.map(|b| b.parse().unwrap()),
            label: label.map(String::from),
        }
    }

    #[test]
    fn free_label_takes_the_lowest_unused_alias_spelled_exactly() {
        let labelled = |labels: &[&str]| -> Vec<Configured> {
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let addr = format!("10.0.{}.{}", i / 200, i % 200 + 1);
                    conf("eth0", &addr, 16, None, Some(l))
                })
                .collect()
        };
        assert_eq!(free_label("eth0", &[]).as_deref(), Some("eth0:0"));
        // Other spellings and other links' aliases do not take alias 1.
        let have = labelled(&["eth0:0", "eth0:01", "eth0:+1", "eth1:1", "eth0:1x", "eth0"]);
        assert_eq!(free_label("eth0", &have).as_deref(), Some("eth0:1"));
        assert_eq!(free_label("eth1", &have).as_deref(), Some("eth1:0"));
        // 0..=99 taken but 57: 57; all 100 taken (more beyond): none.
        let mut names: Vec<String> = (0..150).map(|n| format!("eth0:{n}")).collect();
        names.remove(57);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            free_label("eth0", &labelled(&refs)).as_deref(),
            Some("eth0:57")
        );
        let all: Vec<String> = (0..150).map(|n| format!("eth0:{n}")).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(free_label("eth0", &labelled(&refs)), None);
        // A label longer than the kernel's 15 bytes is not offered.
        assert_eq!(free_label("averylongnic012", &[]), None);
    }

    #[test]
    fn plan_follows_findif() {
        let links = vec!["lo".to_string(), "eth0".to_string(), "eth1".to_string()];
        let have = vec![
            conf("eth0", "10.77.0.1", 16, Some("10.77.255.255"), Some("eth0")),
            conf("eth1", "10.77.1.1", 24, Some("10.77.1.255"), Some("eth1")),
            conf("eth1", "10.77.1.50", 24, None, Some("eth1:0")),
        ];
        // Longest prefix wins; broadcast inherited from the same-prefix address; next free label.
        let pl = plan(&p("10.77.1.10"), MaskRule::Strict, &links, &have).unwrap();
        assert_eq!(
            pl,
            Plan {
                ip: ip("10.77.1.10"),
                nic: "eth1".into(),
                prefix: 24,
                broadcast: Some("10.77.1.255".parse().unwrap()),
                label: Some("eth1:1".into()),
            }
        );
        // An explicit prefix computes the broadcast.
        let pl = plan(&p("10.77.1.10/25/eth0"), MaskRule::Strict, &links, &have).unwrap();
        assert_eq!((pl.nic.as_str(), pl.prefix), ("eth0", 25));
        assert_eq!(pl.broadcast, Some("10.77.1.127".parse().unwrap()));
        assert_eq!(
            plan(
                &p("10.77.1.10/24/eth0:web/-"),
                MaskRule::Strict,
                &links,
                &have
            )
            .unwrap()
            .label
            .as_deref(),
            Some("eth0:web")
        );
        assert_eq!(
            plan(&p("10.77.1.10/24/eth0/-"), MaskRule::Strict, &links, &have)
                .unwrap()
                .broadcast,
            None
        );
        assert_eq!(
            plan(&p("192.0.2.1"), MaskRule::Strict, &links, &have),
            Err(PlanError::NoSubnet(ip("192.0.2.1")))
        );
        assert_eq!(
            plan(&p("192.0.2.1/24/eth9"), MaskRule::Strict, &links, &have),
            Err(PlanError::NoSuchInterface("eth9".into()))
        );
        assert!(matches!(
            plan(&p("192.0.2.1/24/eth0"), MaskRule::Strict, &links, &[]),
            Ok(Plan { prefix: 24, .. })
        ));
        assert_eq!(
            plan(
                &p("100.200.230.1/100.200.230.6/eth0"),
                MaskRule::Strict,
                &links,
                &have
            ),
            Err(PlanError::Address(AddressError::NonContiguous(
                Ipv4Addr::new(100, 200, 230, 6)
            )))
        );
        let mut no_mask = p("192.0.2.1");
        no_mask.nic = Some("eth0".into());
        assert_eq!(
            plan(&no_mask, MaskRule::Strict, &links, &have),
            Err(PlanError::NoNetmask(ip("192.0.2.1"), "eth0".into()))
        );
        // The service address never vouches for its own subnet.
        let own = vec![conf("eth0", "192.0.2.1", 24, None, None)];
        assert_eq!(
            plan(&p("192.0.2.1"), MaskRule::Strict, &links, &own),
            Err(PlanError::NoSubnet(ip("192.0.2.1")))
        );
    }

    #[test]
    fn subnets() {
        assert!(same_subnet(ip("10.0.0.1"), ip("10.0.0.200"), 24));
        assert!(!same_subnet(ip("10.0.0.1"), ip("10.0.1.1"), 24));
        assert!(same_subnet(ip("fd77::1"), ip("fd77::ffff"), 64));
        assert!(!same_subnet(ip("fd77::1"), ip("10.0.0.1"), 0));
        assert!(same_subnet(ip("1.2.3.4"), ip("9.9.9.9"), 0));
        assert!(is_contiguous(0xffff_ff00) && !is_contiguous(0x64c8_e606));
        assert_eq!(findif_prefix(Ipv4Addr::new(255, 255, 255, 0)), 24);
    }
}
