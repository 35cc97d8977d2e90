//! The haresources argument of IPaddr/IPaddr2, `IP[/MASK[/NIC[/BROADCAST]]]`,
//! read by the same rules as heartbeat's wrapper scripts (`hto-mapfuncs`):
//! split on `/`; the second field is a netmask (bits or dotted quad); a third
//! field starting with a digit is the broadcast address (no nic), otherwise it
//! is the nic (optionally `nic:label`) and a fourth field is the broadcast.
//! Shared by `check` and the IPaddr agent so both read arguments identically.

use std::net::{IpAddr, Ipv4Addr};

/// The netmask field as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// A parsed IPaddr/IPaddr2 argument.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IpaddrArgs {
    /// The service address.
    pub ip: IpAddr,
    /// The prefix length heartbeat's IPaddr would use (`None`: taken from the
    /// matching route at start). For a non-contiguous dotted mask this is
    /// IPaddr's `findif` reading: 32 minus the index of the lowest set bit.
    pub prefix: Option<u8>,
    /// The netmask field as written, when present.
    pub netmask: Option<Netmask>,
    /// The interface (`eth0` of `eth0:web`), when given.
    pub iface: Option<String>,
    /// The alias label (`web` of `eth0:web`), when given.
    pub label: Option<String>,
    /// The broadcast address, when given (`+` means "compute it", i.e. `None`).
    pub broadcast: Option<Ipv4Addr>,
}

/// Why an IPaddr argument cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpaddrArgsError {
    /// Nothing given.
    #[error("the IP address argument is empty")]
    Empty,
    /// The first field is not an IP address.
    #[error("{0:?} is not an IP address")]
    BadIp(String),
    /// The second field is neither a prefix length nor a dotted netmask.
    #[error("netmask {0:?} is neither a prefix length (e.g. 24) nor a dotted netmask (e.g. 255.255.255.0)")]
    BadNetmask(String),
    /// A prefix length outside 1..=32 (IPv4) or 1..=128 (IPv6).
    #[error("prefix length {0} is out of range 1..={1}")]
    PrefixRange(u32, u8),
    /// A dotted netmask on an IPv6 address.
    #[error("a dotted netmask ({0}) cannot apply to the IPv6 address {1}")]
    DottedOnV6(String, IpAddr),
    /// The broadcast field is not an IPv4 address.
    #[error("broadcast {0:?} is not an IPv4 address")]
    BadBroadcast(String),
    /// A broadcast address for an IPv6 address (IPv6 has none).
    #[error("IPv6 has no broadcast address, but {0:?} was given")]
    BroadcastOnV6(String),
    /// The nic field is not a usable interface name.
    #[error(
        "{0:?} is not a valid interface name (1-15 characters, no '/', ':' only before a label)"
    )]
    BadIface(String),
    /// More than four `/`-separated fields.
    #[error("too many '/'-separated fields in {0:?} (at most IP/MASK/NIC/BROADCAST)")]
    TooManyFields(String),
}

/// Parse an IPaddr/IPaddr2 argument as heartbeat's wrappers split it.
pub fn parse(arg: &str) -> Result<IpaddrArgs, IpaddrArgsError> {
    if arg.is_empty() {
        return Err(IpaddrArgsError::Empty);
    }
    let fields: Vec<&str> = arg.split('/').collect();
    if fields.len() > 4 {
        return Err(IpaddrArgsError::TooManyFields(arg.to_string()));
    }
    let ip: IpAddr = fields[0]
        .parse()
        .map_err(|_| IpaddrArgsError::BadIp(fields[0].to_string()))?;
    let max_bits: u8 = if ip.is_ipv4() { 32 } else { 128 };

    let mut out = IpaddrArgs {
        ip,
        prefix: None,
        netmask: None,
        iface: None,
        label: None,
        broadcast: None,
    };

    if let Some(mask) = fields.get(1).copied().filter(|m| !m.is_empty()) {
        let nm = parse_netmask(mask, ip, max_bits)?;
        out.prefix = Some(match nm {
            Netmask::Bits(b) => b,
            Netmask::Dotted { mask, .. } => findif_prefix(mask),
        });
        out.netmask = Some(nm);
    }

    let mut rest = fields.iter().skip(2).copied();
    if let Some(third) = rest.next() {
        if third.starts_with(|c: char| c.is_ascii_digit()) {
            out.broadcast = parse_broadcast(third, ip)?;
            if let Some(extra) = rest.next() {
                // After a broadcast in third position the wrapper has no
                // slot left; the field would be silently dropped.
                return Err(IpaddrArgsError::BadIface(extra.to_string()));
            }
        } else {
            let (iface, label) = parse_iface(third)?;
            out.iface = iface;
            out.label = label;
            if let Some(b) = rest.next() {
                out.broadcast = parse_broadcast(b, ip)?;
            }
        }
    }
    Ok(out)
}

fn parse_netmask(mask: &str, ip: IpAddr, max_bits: u8) -> Result<Netmask, IpaddrArgsError> {
    if mask.chars().all(|c| c.is_ascii_digit()) {
        let bits: u32 = mask
            .parse()
            .map_err(|_| IpaddrArgsError::BadNetmask(mask.to_string()))?;
        if bits == 0 || bits > u32::from(max_bits) {
            return Err(IpaddrArgsError::PrefixRange(bits, max_bits));
        }
        return Ok(Netmask::Bits(bits as u8));
    }
    let dotted: Ipv4Addr = mask
        .parse()
        .map_err(|_| IpaddrArgsError::BadNetmask(mask.to_string()))?;
    if ip.is_ipv6() {
        return Err(IpaddrArgsError::DottedOnV6(mask.to_string(), ip));
    }
    let m = u32::from(dotted);
    if m == 0 {
        return Err(IpaddrArgsError::BadNetmask(mask.to_string()));
    }
    Ok(Netmask::Dotted {
        mask: dotted,
        contiguous: is_contiguous(m),
    })
}

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

fn parse_broadcast(b: &str, ip: IpAddr) -> Result<Option<Ipv4Addr>, IpaddrArgsError> {
    if b.is_empty() || b == "+" {
        return Ok(None);
    }
    if ip.is_ipv6() {
        return Err(IpaddrArgsError::BroadcastOnV6(b.to_string()));
    }
    b.parse()
        .map(Some)
        .map_err(|_| IpaddrArgsError::BadBroadcast(b.to_string()))
}

type IfaceLabel = (Option<String>, Option<String>);

fn parse_iface(field: &str) -> Result<IfaceLabel, IpaddrArgsError> {
    if field.is_empty() {
        return Ok((None, None));
    }
    let (nic, label) = match field.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (field, None),
    };
    let ok_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 15
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
    };
    if !ok_name(nic) || label.is_some_and(|l| !ok_name(l)) {
        return Err(IpaddrArgsError::BadIface(field.to_string()));
    }
    Ok((Some(nic.to_string()), label.map(str::to_string)))
}

impl IpaddrArgs {
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

    /// The OCF-style parameters by name, as the IPaddr agent declares them
    /// (`ip`, `cidr_netmask`, `nic`, `broadcast`); absent ones are omitted.
    pub fn named_params(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("ip", self.ip.to_string())];
        if let Some(p) = self.prefix {
            v.push(("cidr_netmask", p.to_string()));
        }
        if let Some(i) = &self.iface {
            let nic = match &self.label {
                Some(l) => format!("{i}:{l}"),
                None => i.clone(),
            };
            v.push(("nic", nic));
        }
        if let Some(b) = self.broadcast {
            v.push(("broadcast", b.to_string()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_forms() {
        let a = parse("135.9.8.7").unwrap();
        assert_eq!(a.ip, "135.9.8.7".parse::<IpAddr>().unwrap());
        assert_eq!((a.prefix, a.iface.clone(), a.broadcast), (None, None, None));

        let a = parse("135.9.8.7/24").unwrap();
        assert_eq!(a.prefix, Some(24));

        let a = parse("135.9.8.7/24/135.9.8.210").unwrap();
        assert_eq!(a.iface, None);
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(135, 9, 8, 210)));

        let a = parse("135.9.8.7/24/eth0").unwrap();
        assert_eq!(a.iface.as_deref(), Some("eth0"));

        let a = parse("135.9.216.3/28/eth0/135.9.216.12").unwrap();
        assert_eq!(a.prefix, Some(28));
        assert_eq!(a.iface.as_deref(), Some("eth0"));
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(135, 9, 216, 12)));

        let a = parse("10.0.0.1/255.255.255.0/eth1:web").unwrap();
        assert_eq!(a.prefix, Some(24));
        assert_eq!(a.label.as_deref(), Some("web"));
        assert_eq!(a.noncontiguous_mask(), None);

        let a = parse("fd77::10/64/eth0").unwrap();
        assert_eq!(a.prefix, Some(64));
    }

    #[test]
    fn recipe_second_field_is_read_as_a_bogus_netmask() {
        let a = parse("100.200.230.1/100.200.230.6").unwrap();
        assert_eq!(
            a.noncontiguous_mask(),
            Some(Ipv4Addr::new(100, 200, 230, 6))
        );
        // IPaddr's findif: lowest set bit of ...0110 is bit 1 -> /31.
        assert_eq!(a.prefix, Some(31));
        assert_eq!(a.broadcast, None);
    }

    #[test]
    fn rejects_what_cannot_work() {
        assert_eq!(parse(""), Err(IpaddrArgsError::Empty));
        assert!(matches!(parse("1.2.3.4x"), Err(IpaddrArgsError::BadIp(_))));
        assert!(matches!(
            parse("1.2.3.4/33"),
            Err(IpaddrArgsError::PrefixRange(33, 32))
        ));
        assert!(matches!(
            parse("1.2.3.4/0"),
            Err(IpaddrArgsError::PrefixRange(0, 32))
        ));
        assert!(matches!(
            parse("1.2.3.4/abc"),
            Err(IpaddrArgsError::BadNetmask(_))
        ));
        assert!(matches!(
            parse("1.2.3.4/24/eth0/x"),
            Err(IpaddrArgsError::BadBroadcast(_))
        ));
        assert!(matches!(
            parse("1.2.3.4/24/eth0/1.2.3.255/x"),
            Err(IpaddrArgsError::TooManyFields(_))
        ));
        assert!(matches!(
            parse("1.2.3.4/24/averyveryverylongname"),
            Err(IpaddrArgsError::BadIface(_))
        ));
        assert!(matches!(
            parse("fd77::1/255.255.255.0"),
            Err(IpaddrArgsError::DottedOnV6(_, _))
        ));
    }

    #[test]
    fn contiguity() {
        assert!(is_contiguous(0xffff_ff00));
        assert!(is_contiguous(0xffff_ffff));
        assert!(!is_contiguous(0x64c8_e606));
        assert!(!is_contiguous(0x0000_00ff));
    }
}
