//! What a resource may do: the grant every capability call is checked
//! against. The default grant is nothing; built-in agents get a grant
//! derived from their own resource arguments (the addresses, programs,
//! probe targets and files the administrator wrote or the Debian defaults),
//! and the policy file (`agents.toml`) can extend or replace it per agent
//! and per resource.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::policy::GrantSpec;

/// Which interface a granted address may be configured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfaceRule {
    /// Exactly this interface (the resource named it, `IP/CIDR/eth0`).
    Named(String),
    /// An interface that already has an address whose subnet contains the
    /// granted address (the interface heartbeat's findif would select).
    OnSubnet,
}

/// One address a resource may add, remove and announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressGrant {
    /// The address itself (any prefix length).
    pub ip: IpAddr,
    /// Where it may be configured.
    pub iface: IfaceRule,
}

/// Everything one resource may do beyond computing and logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Whether the resource may list links and addresses.
    pub netlink_read: bool,
    /// Addresses it may add, remove and announce.
    pub addresses: Vec<AddressGrant>,
    /// Absolute paths of programs it may run or spawn.
    pub programs: Vec<PathBuf>,
    /// Targets it may probe.
    pub probe_targets: Vec<SocketAddr>,
    /// Pid files it may read to find its server (`process.pidfile-pid`).
    pub pidfiles: Vec<PathBuf>,
    /// Paths it may inspect (`files.inspect`): kind and emptiness only.
    pub paths: Vec<PathBuf>,
}

/// Why a default grant could not be derived from a resource's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The IPaddr argument has no parsable IP in front.
    #[error("IPaddr argument {0:?} does not start with an IPv4 or IPv6 address")]
    BadIp(String),
    /// IPaddr was given no address.
    #[error("IPaddr needs an address argument (IP[/CIDR[/IFACE[/BROADCAST]]])")]
    ArgCount(usize),
    /// A service agent parameter the grant depends on is unusable.
    #[error("{agent}: parameter {param}={value:?} {why}")]
    BadParam {
        /// Agent name.
        agent: String,
        /// Parameter name.
        param: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

impl Grant {
    /// The empty grant: no capability at all.
    pub fn none() -> Grant {
        Grant::default()
    }

    /// The address grant (if any) that covers `ip`.
    pub fn address(&self, ip: IpAddr) -> Option<&AddressGrant> {
        self.addresses.iter().find(|g| g.ip == ip)
    }

    /// The built-in default grant for a built-in agent name and its
    /// positional haresources arguments; `Ok(Grant::none())` for agents
    /// that have no built-in grant.
    pub fn builtin_default(agent: &str, args: &[String]) -> Result<Grant, GrantError> {
        match agent {
            "IPaddr" | "IPaddr2" => ipaddr_grant(args),
            "named" | "httpd" | "mysqld" => service_grant(agent, args),
            _ => Ok(Grant::none()),
        }
    }

    /// The grant of an LSB/heartbeat script the policy file granted: it
    /// may run exactly that script.
    pub fn lsb_script(script: &Path) -> Grant {
        Grant {
            programs: vec![script.to_path_buf()],
            ..Grant::none()
        }
    }

    /// Apply one policy-file section: with `replace` it becomes the grant,
    /// otherwise its entries are added.
    pub fn apply(&mut self, spec: &GrantSpec) {
        if spec.replace {
            *self = Grant::none();
        }
        self.netlink_read |= spec.netlink_read;
        for ip in &spec.addresses {
            if self.address(*ip).is_none() {
                self.addresses.push(AddressGrant {
                    ip: *ip,
                    iface: IfaceRule::OnSubnet,
                });
            }
        }
        fn add<T: Clone + PartialEq>(to: &mut Vec<T>, from: &[T]) {
            for x in from {
                if !to.contains(x) {
                    to.push(x.clone());
                }
            }
        }
        add(&mut self.programs, &spec.programs);
        add(&mut self.probe_targets, &spec.probe);
        add(&mut self.pidfiles, &spec.pidfiles);
        add(&mut self.paths, &spec.paths);
    }

    /// One line per granted item, for `wasmbeat check` and denials.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.netlink_read {
            parts.push("netlink read".to_string());
        }
        let list = |name: &str, v: Vec<String>| -> Option<String> {
            (!v.is_empty()).then(|| format!("{name} {}", v.join(", ")))
        };
        parts.extend(list(
            "addresses",
            self.addresses.iter().map(|a| a.ip.to_string()).collect(),
        ));
        parts.extend(list(
            "programs",
            self.programs
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        ));
        parts.extend(list(
            "probe",
            self.probe_targets.iter().map(|p| p.to_string()).collect(),
        ));
        parts.extend(list(
            "pidfiles",
            self.pidfiles
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        ));
        parts.extend(list(
            "paths",
            self.paths.iter().map(|p| p.display().to_string()).collect(),
        ));
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The parameters of the built-in service agents in positional order, with
/// the Debian defaults the grant is derived from. They must match the
/// agents' `meta-data` (a runtime test checks that).
pub const NAMED_PARAMS: &[&str] = &[
    "listen",
    "config",
    "pid_file",
    "user",
    "binary",
    "probe_name",
    "start_timeout",
    "stop_timeout",
];

/// See [`NAMED_PARAMS`].
pub const HTTPD_PARAMS: &[&str] = &[
    "listen",
    "server",
    "config",
    "pid_file",
    "binary",
    "user",
    "status_path",
    "start_timeout",
    "stop_timeout",
];

/// See [`NAMED_PARAMS`].
pub const MYSQLD_PARAMS: &[&str] = &[
    "listen",
    "datadir",
    "config",
    "pid_file",
    "socket",
    "user",
    "binary",
    "install_db",
    "start_timeout",
    "stop_timeout",
];

/// Bind arguments to parameter names exactly as the runtime does
/// (`name=value` for a declared name, else the next unbound parameter).
/// Arguments beyond the parameters are ignored here; the runtime rejects
/// them when it binds.
pub fn bind_params<'a>(params: &[&'a str], args: &[String]) -> HashMap<&'a str, String> {
    let mut bound: HashMap<&'a str, String> = HashMap::new();
    let mut next = 0usize;
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if let Some(p) = params.iter().find(|p| **p == k) {
                bound.entry(p).or_insert_with(|| v.to_string());
                continue;
            }
        }
        while next < params.len() && bound.contains_key(params[next]) {
            next += 1;
        }
        if let Some(p) = params.get(next) {
            bound.insert(p, a.clone());
            next += 1;
        }
    }
    bound
}

/// A service agent may run its server binary (and, for mysqld, the
/// datadir initialiser), probe its listen address, read its pid file and
/// inspect its configuration file (and data directory): exactly what its
/// arguments, or the Debian defaults, name.
/// Debian defaults of one service agent's grant-relevant parameters:
/// (parameter, default) pairs.
struct ServiceDefaults {
    params: &'static [&'static str],
    listen: &'static str,
    programs: &'static [(&'static str, &'static str)],
    pidfile: &'static str,
    paths: &'static [(&'static str, &'static str)],
}

fn service_defaults(agent: &str, args: &[String]) -> ServiceDefaults {
    match agent {
        "named" => ServiceDefaults {
            params: NAMED_PARAMS,
            listen: "127.0.0.1:53",
            programs: &[("binary", "/usr/sbin/named")],
            pidfile: "/run/named/named.pid",
            paths: &[("config", "/etc/bind/named.conf")],
        },
        "httpd" => {
            let nginx = bind_params(HTTPD_PARAMS, args)
                .get("server")
                .map(String::as_str)
                == Some("nginx");
            if nginx {
                ServiceDefaults {
                    params: HTTPD_PARAMS,
                    listen: "127.0.0.1:80",
                    programs: &[("binary", "/usr/sbin/nginx")],
                    pidfile: "/run/nginx.pid",
                    paths: &[("config", "/etc/nginx/nginx.conf")],
                }
            } else {
                ServiceDefaults {
                    params: HTTPD_PARAMS,
                    listen: "127.0.0.1:80",
                    programs: &[("binary", "/usr/sbin/apache2")],
                    pidfile: "/run/apache2/apache2.pid",
                    paths: &[("config", "/etc/apache2/apache2.conf")],
                }
            }
        }
        _ => ServiceDefaults {
            params: MYSQLD_PARAMS,
            listen: "127.0.0.1:3306",
            programs: &[
                ("binary", "/usr/sbin/mariadbd"),
                ("install_db", "/usr/bin/mariadb-install-db"),
            ],
            pidfile: "/run/mysqld/mysqld.pid",
            paths: &[
                ("config", "/etc/mysql/my.cnf"),
                ("datadir", "/var/lib/mysql"),
            ],
        },
    }
}

fn service_grant(agent: &str, args: &[String]) -> Result<Grant, GrantError> {
    let ServiceDefaults {
        params,
        listen,
        programs,
        pidfile,
        paths,
    } = service_defaults(agent, args);
    let b = bind_params(params, args);
    let get = |p: &str, d: &str| b.get(p).cloned().unwrap_or_else(|| d.to_string());
    let bad = |param: &str, value: String, why: &str| GrantError::BadParam {
        agent: agent.to_string(),
        param: param.to_string(),
        value,
        why: why.to_string(),
    };
    let path = |p: &str, d: &str| -> Result<PathBuf, GrantError> {
        let v = get(p, d);
        if v.starts_with('/') && !v.split('/').any(|c| c == "..") {
            Ok(PathBuf::from(v))
        } else {
            Err(bad(p, v, "must be an absolute path without '..'"))
        }
    };
    let l = get("listen", listen);
    let target: SocketAddr = l
        .parse()
        .map_err(|_| bad("listen", l.clone(), "is not ip:port (e.g. 10.0.0.10:80)"))?;
    let mut g = Grant {
        probe_targets: vec![target],
        pidfiles: vec![path("pid_file", pidfile)?],
        ..Grant::none()
    };
    for (p, d) in programs {
        g.programs.push(path(p, d)?);
    }
    for (p, d) in paths {
        g.paths.push(path(p, d)?);
    }
    Ok(g)
}

/// IPaddr may touch exactly the address of its own argument, on the
/// interface the argument names or else the one whose subnet contains it.
///
/// Only the IP and IFACE matter for the grant; the full
/// `IP/CIDR/IFACE/BROADCAST` parse (netmask forms, broadcast) happens in
/// the agent, which reports bad input to the user. Arguments bind as the
/// runtime binds them to IPaddr's parameters (`ip`, `cidr_netmask`, `nic`,
/// ...: positional in that order, or `name=value`), and a third `/` field
/// starting with a digit is a broadcast address, not an interface, as in
/// heartbeat's wrapper.
fn ipaddr_grant(args: &[String]) -> Result<Grant, GrantError> {
    const PARAMS: [&str; 6] = [
        "ip",
        "cidr_netmask",
        "nic",
        "broadcast",
        "arp_count",
        "arp_interval",
    ];
    let mut named: Vec<(&str, &str)> = Vec::new();
    let mut positional: Vec<&str> = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if PARAMS.contains(&k) => named.push((k, v)),
            _ => positional.push(a),
        }
    }
    let get = |name: &str| -> Option<&str> {
        named
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .or_else(|| {
                // Positional values fill the parameters not given by name, in order.
                let free: Vec<&str> = PARAMS
                    .iter()
                    .copied()
                    .filter(|p| !named.iter().any(|(k, _)| k == p))
                    .collect();
                free.iter()
                    .position(|p| *p == name)
                    .and_then(|i| positional.get(i).copied())
            })
    };
    let Some(ip_arg) = get("ip") else {
        return Err(GrantError::ArgCount(0));
    };
    // haresources splits on `::`, so `IPaddr::fd77::10/64` arrives as
    // `fd77`, `10/64`; the agent reassembles it the same way.
    let head = |t: &str| t.split('/').next().unwrap_or_default().to_string();
    let joined = positional.join("::");
    let rejoined = head(ip_arg).parse::<IpAddr>().is_err()
        && positional.len() > 1
        && head(&joined).parse::<std::net::Ipv6Addr>().is_ok();
    let ip_arg: &str = if rejoined { &joined } else { ip_arg };
    // The same IP/CIDR/IFACE/BROADCAST rules `wasmbeat check` applies.
    let parsed = crate::config::ipaddr_args::parse(ip_arg)
        .map_err(|_| GrantError::BadIp(ip_arg.to_string()))?;
    let ip = parsed.ip;
    let nic = match parsed.iface {
        Some(n) => Some(n),
        None if rejoined => None,
        // heartbeat also accepts `nic:label`; the label is not an interface.
        None => get("nic").map(|n| n.split(':').next().unwrap_or(n).to_string()),
    };
    let iface = match nic {
        Some(n) => IfaceRule::Named(n),
        None => IfaceRule::OnSubnet,
    };
    Ok(Grant {
        netlink_read: true,
        addresses: vec![AddressGrant { ip, iface }],
        ..Grant::none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(arg: &str) -> Result<Grant, GrantError> {
        Grant::builtin_default("IPaddr", &[arg.to_string()])
    }

    #[test]
    fn ipaddr_grant_covers_only_its_own_address() {
        let gr = g("10.77.0.10/24/eth0/10.77.0.255").unwrap();
        assert_eq!(
            gr.addresses,
            vec![AddressGrant {
                ip: "10.77.0.10".parse().unwrap(),
                iface: IfaceRule::Named("eth0".into())
            }]
        );
        assert!(gr.programs.is_empty() && gr.probe_targets.is_empty());
        assert!(gr.address("10.77.0.11".parse().unwrap()).is_none());
    }

    #[test]
    fn ipaddr_grant_interface_rules() {
        assert_eq!(
            g("10.77.0.10").unwrap().addresses[0].iface,
            IfaceRule::OnSubnet
        );
        assert_eq!(
            g("10.77.0.10/24/10.77.0.255").unwrap().addresses[0].iface,
            IfaceRule::OnSubnet
        );
        assert_eq!(
            g("10.77.0.10/24/eth1:web").unwrap().addresses[0].iface,
            IfaceRule::Named("eth1".into())
        );
        assert_eq!(
            g("fd77::10/64/eth0").unwrap().addresses[0].ip,
            "fd77::10".parse::<IpAddr>().unwrap()
        );
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let gr = Grant::builtin_default("IPaddr", &s(&["10.77.0.10/24", "arp_count=3"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::OnSubnet);
        let gr = Grant::builtin_default("IPaddr", &s(&["nic=eth2", "10.77.0.10"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth2".into()));
        let gr = Grant::builtin_default("IPaddr", &s(&["fd77", "10/64/eth1"])).unwrap();
        assert_eq!(gr.addresses[0].ip, "fd77::10".parse::<IpAddr>().unwrap());
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth1".into()));
        let gr = Grant::builtin_default("IPaddr", &s(&["10.77.0.10", "24", "eth3"])).unwrap();
        assert_eq!(gr.addresses[0].iface, IfaceRule::Named("eth3".into()));
    }

    #[test]
    fn bad_ipaddr_arguments_have_no_grant() {
        assert!(matches!(g("eth0"), Err(GrantError::BadIp(_))));
        assert!(matches!(
            Grant::builtin_default("IPaddr2", &[]),
            Err(GrantError::ArgCount(0))
        ));
        assert_eq!(Grant::builtin_default("lsb", &[]).unwrap(), Grant::none());
        assert_eq!(Grant::builtin_default("other", &[]).unwrap(), Grant::none());
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn service_defaults_are_debian_paths() {
        let g = Grant::builtin_default("httpd", &[]).unwrap();
        assert_eq!(g.programs, vec![PathBuf::from("/usr/sbin/apache2")]);
        assert_eq!(g.probe_targets, vec!["127.0.0.1:80".parse().unwrap()]);
        assert_eq!(g.pidfiles, vec![PathBuf::from("/run/apache2/apache2.pid")]);
        assert!(!g.netlink_read && g.addresses.is_empty());
        let g = Grant::builtin_default("httpd", &s(&["10.77.0.10:8080", "nginx"])).unwrap();
        assert_eq!(g.programs, vec![PathBuf::from("/usr/sbin/nginx")]);
        assert_eq!(g.probe_targets, vec!["10.77.0.10:8080".parse().unwrap()]);
        let g = Grant::builtin_default("mysqld", &s(&["datadir=/srv/db"])).unwrap();
        assert_eq!(
            g.programs,
            vec![
                PathBuf::from("/usr/sbin/mariadbd"),
                PathBuf::from("/usr/bin/mariadb-install-db")
            ]
        );
        assert!(g.paths.contains(&PathBuf::from("/srv/db")));
        let g = Grant::builtin_default("named", &s(&["binary=/opt/bind/sbin/named"])).unwrap();
        assert_eq!(g.programs, vec![PathBuf::from("/opt/bind/sbin/named")]);
    }

    #[test]
    fn service_grant_rejects_unusable_parameters() {
        for args in [
            &["listen=localhost"][..],
            &["binary=named"],
            &["pid_file=/run/../etc/shadow"],
        ] {
            let e = Grant::builtin_default("named", &s(args)).unwrap_err();
            assert!(matches!(e, GrantError::BadParam { .. }), "{args:?}: {e}");
        }
    }

    #[test]
    fn policy_sections_extend_or_replace() {
        let mut g = Grant::builtin_default("httpd", &[]).unwrap();
        g.apply(&GrantSpec {
            programs: vec!["/usr/sbin/apache2ctl".into()],
            ..GrantSpec::default()
        });
        assert_eq!(g.programs.len(), 2);
        g.apply(&GrantSpec {
            replace: true,
            probe: vec!["10.0.0.1:80".parse().unwrap()],
            ..GrantSpec::default()
        });
        assert!(g.programs.is_empty() && g.pidfiles.is_empty());
        assert_eq!(g.describe(), "probe 10.0.0.1:80");
        assert_eq!(Grant::none().describe(), "nothing");
    }
}
