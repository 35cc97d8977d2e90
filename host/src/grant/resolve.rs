//! One resource's grant: the agent's own needs (built-in agents only),
//! then agents.toml's `[agent.NAME]` and `[resource."TOKEN"]` sections,
//! every template filled from the resource's parameters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use wasmbeat_args::address::{AddressError, AddressSpec, MaskRule};
use wasmbeat_args::value::{self, ValueType};

use super::capability::{self, Capability, UnknownCapability};
use super::launchers;
use super::needs::{AddressParams, AgentDecl, CommandDecl, Needs};
use super::policy::{CommandSpec, LsbGrant, Policy, Section};
use super::template::{FillError, SyntaxError, Template, Values};
use super::{AddressGrant, CommandGrant, Grant, Origin};

/// What to resolve a grant for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The agent's declaration (meta-data).
    pub agent: &'a AgentDecl,
    /// Whether the agent's own needs are its default grant (built-in
    /// agents, which ship with wasmbeat; any other agent starts from nothing).
    pub builtin: bool,
    /// The `[agent.NAME]` section name that applies.
    pub agent_key: &'a str,
    /// The haresources token (`[resource."TOKEN"]`).
    pub resource: &'a str,
    /// The resource's arguments bound to parameter names.
    pub bound: &'a [(String, String)],
    /// How a non-contiguous netmask reads (IPaddr: findif; else strict).
    pub mask_rule: MaskRule,
    /// For a heartbeat/LSB script: its `[lsb.NAME]` grant.
    pub lsb: Option<(&'a str, &'a LsbGrant)>,
}

/// What is wrong with one granted item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A template does not parse.
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// A template cannot be filled from this resource's parameters.
    #[error("{0}")]
    Fill(#[from] FillError),
    /// A pid file, path or program that is not an absolute path.
    #[error("{what} {value:?}: {error}")]
    Path {
        /// pid file, path or program.
        what: &'static str,
        /// The filled text.
        value: String,
        /// Why.
        error: value::ValueError,
    },
    /// A probe target that is not `ip:port`.
    #[error("probe {0:?} is not ip:port")]
    Probe(String),
    /// An address that does not parse.
    #[error("address {value:?}: {error}")]
    Address {
        /// The filled text.
        value: String,
        /// Why.
        error: AddressError,
    },
    /// A shell, interpreter or launcher with arguments not fixed by the
    /// administrator.
    #[error(
        "command {command}: {program} runs other programs (a shell, interpreter or launcher); \
         wasmbeat grants such a program only with a command line the administrator wrote out \
         in full in agents.toml"
    )]
    Launcher {
        /// Command name.
        command: String,
        /// The program.
        program: String,
    },
    /// A command without a program.
    #[error("command {0} has no argv")]
    NoArgv(String),
    /// An unknown capability name in an agent's declaration.
    #[error("{0}")]
    Capability(#[from] UnknownCapability),
}

/// A grant that cannot be computed, naming where the bad item is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: grant {}: {problem}", origin_text(.origin))]
pub struct GrantError {
    /// The resource.
    pub resource: String,
    /// Where the item comes from.
    pub origin: Origin,
    /// What is wrong.
    pub problem: Box<Problem>,
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Declared => "declared by the agent".to_string(),
        Origin::Policy { section, line } => format!("from agents.toml:{line} {section}"),
        Origin::Direct => "given directly".to_string(),
    }
}

/// Parameter values as templates see them: the bound value, else the
/// declared default.
struct Params<'a> {
    agent: &'a AgentDecl,
    bound: &'a [(String, String)],
}

impl Values for Params<'_> {
    fn declared(&self, name: &str) -> Option<ValueType> {
        self.agent.param(name).map(|p| p.ty)
    }
    fn value(&self, name: &str) -> Option<&str> {
        self.bound
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.agent.param(name)?.default.as_deref())
    }
}

impl Params<'_> {
    fn bound(&self, name: &str) -> Option<&str> {
        self.bound
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn path(what: &'static str, text: String) -> Result<PathBuf, Problem> {
    value::check(ValueType::Path, &text).map_err(|error| Problem::Path {
        what,
        value: text.clone(),
        error,
    })?;
    Ok(PathBuf::from(text))
}

fn probe(text: String) -> Result<SocketAddr, Problem> {
    text.parse().map_err(|_| Problem::Probe(text))
}

fn address(text: String, rule: MaskRule) -> Result<AddressGrant, Problem> {
    AddressSpec::parse(&text)
        .map(|spec| AddressGrant { spec, rule })
        .map_err(|error| Problem::Address { value: text, error })
}

/// Fill an argv; `fixed_by_admin` is false for an agent's declaration.
fn command(
    name: &str,
    argv: &[Template],
    capabilities: Vec<Capability>,
    user: Option<String>,
    origin: Origin,
    values: &Params<'_>,
) -> Result<CommandGrant, Problem> {
    let mut filled = Vec::new();
    for t in argv {
        filled.extend(t.fill(values)?);
    }
    let Some(program) = filled.first() else {
        return Err(Problem::NoArgv(name.to_string()));
    };
    let program = path("program", program.clone())?;
    let fixed_by_admin =
        !matches!(origin, Origin::Declared) && !argv.iter().any(Template::has_holes);
    if launchers::is_launcher(&program) && !fixed_by_admin {
        return Err(Problem::Launcher {
            command: name.to_string(),
            program: program.display().to_string(),
        });
    }
    Ok(CommandGrant {
        name: name.to_string(),
        argv: filled,
        capabilities,
        user,
        origin,
    })
}

fn declared_command(c: &CommandDecl, values: &Params<'_>) -> Result<CommandGrant, Problem> {
    let argv = c
        .argv
        .iter()
        .map(|a| Template::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let caps = capability::parse_list(&c.capabilities)?;
    command(&c.name, &argv, caps, None, Origin::Declared, values)
}

fn declared_address(
    a: &AddressParams,
    values: &Params<'_>,
    rule: MaskRule,
) -> Result<AddressGrant, Problem> {
    // The canonical names the grammar asks for, mapped to what this agent calls them.
    let map = |canonical: &str| -> Option<&str> {
        match canonical {
            "ip" => Some(a.ip.as_str()),
            "cidr_netmask" => a.cidr_netmask.as_deref(),
            "nic" => a.nic.as_deref(),
            "broadcast" => a.broadcast.as_deref(),
            _ => None,
        }
    };
    let spec =
        AddressSpec::from_params(|n| map(n).and_then(|p| values.bound(p))).map_err(|error| {
            Problem::Address {
                value: values.bound(&a.ip).unwrap_or_default().to_string(),
                error,
            }
        })?;
    // The named rule decides; a strict agent refuses what findif would guess.
    spec.prefix(rule).map_err(|error| Problem::Address {
        value: values.bound(&a.ip).unwrap_or_default().to_string(),
        error,
    })?;
    Ok(AddressGrant { spec, rule })
}

/// Whether a needs block applies to these values.
fn applies(n: &Needs, values: &Params<'_>) -> bool {
    n.when.iter().all(|(param, accepted)| {
        let v = values.value(param).unwrap_or_default();
        accepted.iter().any(|a| a == v)
    })
}

fn apply_declared(
    g: &mut Grant,
    n: &Needs,
    values: &Params<'_>,
    rule: MaskRule,
) -> Result<(), Problem> {
    g.netlink_read |= n.netlink_read;
    for a in &n.addresses {
        g.set_address(declared_address(a, values, rule)?);
    }
    for c in &n.commands {
        g.set_command(declared_command(c, values)?);
    }
    let fill =
        |t: &String| -> Result<String, Problem> { Ok(Template::parse(t)?.fill_required(values)?) };
    for t in &n.pidfiles {
        g.pidfiles.push(path("pid file", fill(t)?)?);
    }
    for t in &n.probes {
        g.probes.push(probe(fill(t)?)?);
    }
    for t in &n.paths {
        g.paths.push(path("path", fill(t)?)?);
    }
    Ok(())
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn apply_section(
    g: &mut Grant,
    s: &Section,
    section: &str,
    values: &Params<'_>,
    rule: MaskRule,
) -> Result<(), Box<(Origin, Problem)>> {
    let at = |line: usize| Origin::Policy {
        section: section.to_string(),
        line,
    };
    let here = at(s.line);
    if s.replace {
        *g = Grant::none();
    }
    g.netlink_read |= s.netlink_read;
    let fill = |t: &Template| t.fill_required(values).map_err(Problem::from);
    for t in &s.addresses {
        let a = fill(t).and_then(|text| address(text, rule));
        g.set_address(a.map_err(|p| Box::new((here.clone(), p)))?);
    }
    for t in &s.probe {
        let p = fill(t)
            .and_then(probe)
            .map_err(|p| Box::new((here.clone(), p)))?;
        push_unique(&mut g.probes, p);
    }
    for t in &s.pidfiles {
        let p = fill(t)
            .and_then(|x| path("pid file", x))
            .map_err(|p| Box::new((here.clone(), p)))?;
        push_unique(&mut g.pidfiles, p);
    }
    for t in &s.paths {
        let p = fill(t)
            .and_then(|x| path("path", x))
            .map_err(|p| Box::new((here.clone(), p)))?;
        push_unique(&mut g.paths, p);
    }
    for CommandSpec {
        name,
        argv,
        capabilities,
        user,
        line,
    } in &s.commands
    {
        // Without its own list, an override keeps the capabilities of the
        // command it replaces; a new command gets none.
        let caps = capabilities.clone().unwrap_or_else(|| {
            g.command(name)
                .map(|c| c.capabilities.clone())
                .unwrap_or_default()
        });
        let c = command(name, argv, caps, user.clone(), at(*line), values)
            .map_err(|p| Box::new((at(*line), p)))?;
        g.set_command(c);
    }
    if s.limits.pids_max.is_some() {
        g.limits.pids_max = s.limits.pids_max;
    }
    if s.limits.memory_max.is_some() {
        g.limits.memory_max = s.limits.memory_max;
    }
    Ok(())
}

/// The grant `subject` runs under.
pub fn resolve(subject: Subject<'_>, policy: &Policy) -> Result<Grant, GrantError> {
    let values = Params {
        agent: subject.agent,
        bound: subject.bound,
    };
    let err = |origin: Origin, problem: Problem| GrantError {
        resource: subject.resource.to_string(),
        origin,
        problem: Box::new(problem),
    };
    let sections = policy.named_sections_for(subject.agent_key, subject.resource);
    let accepted = sections.iter().any(|(_, s)| s.accept_declared);
    let mut g = Grant::none();
    if subject.builtin || accepted {
        for n in subject.agent.needs.iter().filter(|n| applies(n, &values)) {
            apply_declared(&mut g, n, &values, subject.mask_rule)
                .map_err(|p| err(Origin::Declared, p))?;
        }
    }
    if let Some((name, lsb)) = subject.lsb {
        // The administrator's [lsb.NAME] narrows the script's commands.
        for c in &mut g.commands {
            if let Some(caps) = &lsb.capabilities {
                c.capabilities = caps.clone();
            }
            if lsb.user.is_some() {
                c.user = lsb.user.clone();
            }
            c.origin = Origin::Policy {
                section: format!("[lsb.{name}]"),
                line: lsb.line,
            };
        }
    }
    for (section, s) in sections {
        apply_section(&mut g, s, &section.to_string(), &values, subject.mask_rule).map_err(
            |b| {
                let (o, p) = *b;
                err(o, p)
            },
        )?;
    }
    Ok(g)
}

/// The grant of a fence device: only what agents.toml's `[fence.NAME]`
/// section gives (commands, limits; holes filled from the device's
/// parameters). Fence agents declare no needs.
pub fn fence(
    device: &str,
    section: &str,
    s: &super::policy::Section,
    agent: &AgentDecl,
    bound: &[(String, String)],
) -> Result<Grant, GrantError> {
    let values = Params { agent, bound };
    let mut g = Grant::none();
    apply_section(&mut g, s, section, &values, MaskRule::Strict).map_err(|b| {
        let (origin, problem) = *b;
        GrantError {
            resource: device.to_string(),
            origin,
            problem: Box::new(problem),
        }
    })?;
    Ok(g)
}

/// Whether `program` exists as an executable file (for `check`'s notes).
pub fn program_installed(program: &Path) -> bool {
    super::policy::is_executable_file(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::needs::ParamDecl;

    fn param(name: &str, ty: ValueType, default: Option<&str>) -> ParamDecl {
        ParamDecl {
            name: name.into(),
            description: name.into(),
            ty,
            default: default.map(String::from),
            required: false,
        }
    }

    /// An httpd-like agent: apache by default, nginx when server=nginx.
    fn web() -> AgentDecl {
        let cmd = |argv: &[&str], caps: &[&str]| CommandDecl {
            name: "server".into(),
            description: "the server".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
        };
        AgentDecl {
            name: "httpd".into(),
            params: vec![
                param("listen", ValueType::Endpoint, Some("127.0.0.1:80")),
                param("server", ValueType::Name, Some("apache")),
                param("config", ValueType::Path, None),
                param("user", ValueType::Name, Some("www-data")),
            ],
            needs: vec![
                Needs {
                    when: vec![("server".into(), vec!["apache".into()])],
                    commands: vec![cmd(
                        &[
                            "/usr/sbin/apache2",
                            "-C",
                            "Define APACHE_RUN_USER {user}",
                            "-f",
                            "{config|/etc/apache2/apache2.conf}",
                        ],
                        &["net-bind-service", "setuid", "setgid"],
                    )],
                    probes: vec!["{listen}".into()],
                    pidfiles: vec!["/run/apache2/apache2.pid".into()],
                    ..Needs::default()
                },
                Needs {
                    when: vec![("server".into(), vec!["nginx".into()])],
                    commands: vec![cmd(
                        &["/usr/sbin/nginx", "-c", "{config|/etc/nginx/nginx.conf}"],
                        &["net-bind-service"],
                    )],
                    probes: vec!["{listen}".into()],
                    ..Needs::default()
                },
            ],
        }
    }

    fn bound(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn subject<'a>(agent: &'a AgentDecl, builtin: bool, b: &'a [(String, String)]) -> Subject<'a> {
        Subject {
            agent,
            builtin,
            agent_key: &agent.name,
            resource: "res",
            bound: b,
            mask_rule: MaskRule::Strict,
            lsb: None,
        }
    }

    #[test]
    fn a_builtin_agent_gets_its_declared_needs_bound_to_its_parameters() {
        let a = web();
        let b = bound(&[("listen", "10.0.0.10:80"), ("user", "web")]);
        let g = resolve(subject(&a, true, &b), &Policy::default()).unwrap();
        let c = g.command("server").unwrap();
        assert_eq!(
            c.argv,
            [
                "/usr/sbin/apache2",
                "-C",
                "Define APACHE_RUN_USER web",
                "-f",
                "/etc/apache2/apache2.conf"
            ]
        );
        assert_eq!(c.capabilities.len(), 3);
        assert_eq!(g.probes, vec!["10.0.0.10:80".parse().unwrap()]);
        let b = bound(&[("server", "nginx"), ("config", "/srv/nginx.conf")]);
        let g = resolve(subject(&a, true, &b), &Policy::default()).unwrap();
        assert_eq!(
            g.command("server").unwrap().argv,
            ["/usr/sbin/nginx", "-c", "/srv/nginx.conf"]
        );
        assert!(g.pidfiles.is_empty());
    }

    #[test]
    fn other_agents_start_from_nothing_until_the_admin_accepts_their_needs() {
        let a = web();
        let g = resolve(subject(&a, false, &[]), &Policy::default()).unwrap();
        assert_eq!(g, Grant::none());
        let (p, d) = Policy::parse("[agent.httpd]\naccept_declared = true\n");
        assert!(d.is_empty(), "{d:?}");
        let g = resolve(subject(&a, false, &[]), &p).unwrap();
        assert_eq!(g.command("server").unwrap().argv[0], "/usr/sbin/apache2");
        assert_eq!(g.command("server").unwrap().origin, Origin::Declared);
    }

    #[test]
    fn parameters_cannot_smuggle_arguments() {
        let a = web();
        for (k, v) in [
            ("user", "x\nErrorLog \"|/bin/sh\""),
            ("user", "-X"),
            ("config", "/etc/a b"),
            ("config", "relative"),
        ] {
            let b = bound(&[(k, v)]);
            let e = resolve(subject(&a, true, &b), &Policy::default()).unwrap_err();
            assert!(matches!(*e.problem, Problem::Fill(_)), "{k}={v:?}: {e}");
            assert_eq!(e.origin, Origin::Declared);
        }
    }

    #[test]
    fn sections_extend_replace_and_override_by_name() {
        let a = web();
        let (p, d) = Policy::parse(
            "[agent.httpd]\npids_max = 10\ncommands.reload = [\"/usr/sbin/apache2ctl\", \"graceful\"]\n\
             [resource.res]\ncommands.server = [\"/usr/sbin/apache2\", \"-f\", \"{config|/etc/x.conf}\"]\nprobe = [\"127.0.0.1:8080\"]\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let g = resolve(subject(&a, true, &[]), &p).unwrap();
        let server = g.command("server").unwrap();
        assert_eq!(server.argv, ["/usr/sbin/apache2", "-f", "/etc/x.conf"]);
        // The override kept the declared capabilities.
        assert_eq!(server.capabilities.len(), 3);
        assert!(matches!(server.origin, Origin::Policy { line: 5, .. }));
        let reload = g.command("reload").unwrap();
        assert!(reload.capabilities.is_empty());
        assert_eq!(g.probes.len(), 2);
        assert_eq!(g.limits.pids_max, Some(10));
        let (p, _) = Policy::parse("[resource.res]\nreplace = true\nnetlink_read = true\n");
        let g = resolve(subject(&a, true, &[]), &p).unwrap();
        assert_eq!(
            g,
            Grant {
                netlink_read: true,
                ..Grant::none()
            }
        );
    }

    #[test]
    fn launchers_need_a_command_line_written_out_by_the_admin() {
        let mut a = web();
        a.needs[0].commands[0].argv = vec!["/bin/sh".into(), "-c".into(), "true".into()];
        let e = resolve(subject(&a, true, &[]), &Policy::default()).unwrap_err();
        assert!(matches!(*e.problem, Problem::Launcher { .. }), "{e}");
        // The admin fills argv[0] from a parameter: a shell there is refused too.
        let b = bound(&[("config", "/bin/bash")]);
        let (p, _) = Policy::parse("[agent.httpd]\ncommands.x = [\"{config}\", \"-c\", \"id\"]\n");
        let e = resolve(subject(&web(), false, &b), &p).unwrap_err();
        assert!(matches!(*e.problem, Problem::Launcher { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("res: grant from agents.toml:2 [agent.httpd]"),
            "{e}"
        );
        let (p, _) = Policy::parse("[agent.httpd]\ncommands.x = [\"/bin/sh\", \"-c\", \"id\"]\n");
        let g = resolve(subject(&web(), false, &[]), &p).unwrap();
        assert_eq!(g.command("x").unwrap().argv, ["/bin/sh", "-c", "id"]);
    }

    #[test]
    fn addresses_come_from_the_ipaddr_grammar() {
        let a = AgentDecl {
            name: "IPaddr".into(),
            params: ["ip", "cidr_netmask", "nic", "broadcast"]
                .iter()
                .map(|n| param(n, ValueType::String, None))
                .collect(),
            needs: vec![Needs {
                netlink_read: true,
                addresses: vec![AddressParams {
                    ip: "ip".into(),
                    cidr_netmask: Some("cidr_netmask".into()),
                    nic: Some("nic".into()),
                    broadcast: Some("broadcast".into()),
                }],
                ..Needs::default()
            }],
        };
        let b = bound(&[("ip", "10.0.0.10/24"), ("nic", "eth1")]);
        let g = resolve(subject(&a, true, &b), &Policy::default()).unwrap();
        let ag = g.address("10.0.0.10".parse().unwrap()).unwrap();
        assert_eq!(ag.spec.nic.as_deref(), Some("eth1"));
        assert!(ag.allows_link("eth1") && !ag.allows_link("eth0"));
        let b = bound(&[("ip", "100.200.230.1/100.200.230.6")]);
        let e = resolve(subject(&a, true, &b), &Policy::default()).unwrap_err();
        assert!(matches!(*e.problem, Problem::Address { .. }), "{e}");
        let mut s = subject(&a, true, &b);
        s.mask_rule = MaskRule::Findif;
        assert!(resolve(s, &Policy::default()).is_ok());
    }
}
