//! `wasmbeat agent test TOKEN`: the operation sequence every agent must
//! pass before heartbeat-style failover can rely on it, in the spirit of
//! ocf-tester (Debian `resource-agents`): meta-data, validate, monitor on
//! a stopped resource, start, monitor, start again, stop, monitor, stop
//! again, and a check that no operation came close to its deadline.
//!
//! The sequence continues after a failing step (as ocf-tester does) so one
//! run shows everything that is wrong; whatever the outcome, a resource
//! that may still be up is stopped at the end.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{
    bind_args, value_type, AgentError, AgentOp, Deadlines, Meta, ParamType, Resource, Status,
};
use crate::grant::template::Template;

/// Outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The step behaved as required.
    Pass,
    /// Worth fixing, but failover works.
    Warn,
    /// The agent breaks a rule failover relies on.
    Fail,
    /// Not run because an earlier step made it meaningless.
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One step of the sequence and what it showed.
#[derive(Debug, Clone)]
pub struct Step {
    /// What was checked, e.g. `start again`.
    pub name: &'static str,
    /// Pass, warn, fail or skip.
    pub verdict: Verdict,
    /// What happened, and for failures what the rule is.
    pub detail: String,
    /// How long the operation took, for steps that ran one.
    pub elapsed: Option<Duration>,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The steps in the order they ran.
    pub steps: Vec<Step>,
}

impl Report {
    /// True when no step failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.steps.iter().any(|s| s.verdict == Verdict::Fail)
    }

    /// The first failing step, which is the one to fix first.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.verdict == Verdict::Fail)
    }

    /// The step of that name, if it ran.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    fn push(&mut self, name: &'static str, verdict: Verdict, detail: impl Into<String>) {
        self.steps.push(Step {
            name,
            verdict,
            detail: detail.into(),
            elapsed: None,
        });
    }

    /// Human-readable report: one line per step, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            let t = s.elapsed.map(fmt_ms).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {:<17} {:>10}  {}",
                s.verdict.label(),
                s.name,
                t,
                s.detail
            );
        }
        let ran = self
            .steps
            .iter()
            .filter(|s| s.verdict != Verdict::Skip)
            .count();
        let failed = self
            .steps
            .iter()
            .filter(|s| s.verdict == Verdict::Fail)
            .count();
        match self.first_failure() {
            None => {
                let _ = writeln!(out, "PASSED: {ran} steps, no failure");
            }
            Some(first) => {
                let _ = writeln!(
                    out,
                    "FAILED: {failed} of {ran} steps failed; the first is \"{}\"",
                    first.name
                );
            }
        }
        out
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Problems with an agent's meta-data that make it unusable (errors) or
/// merely unhelpful (warnings), and the binding of the token's arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MetaCheck {
    /// Rules broken: names missing or duplicated, defaults of the wrong
    /// type, arguments that do not bind to the declared parameters.
    pub errors: Vec<String>,
    /// Things an operator would miss: empty descriptions, version.
    pub warnings: Vec<String>,
    /// The arguments bound to parameter names, when binding worked.
    pub bound: Vec<(String, String)>,
}

fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn value_fits(ty: ParamType, v: &str) -> bool {
    wasmbeat_args::value::check(value_type(ty), v).is_ok()
}

fn type_name(ty: ParamType) -> &'static str {
    value_type(ty).as_str()
}

/// Problems in the agent's declared needs: templates that do not parse or
/// name undeclared parameters, unknown capabilities, duplicate commands.
fn check_needs(meta: &Meta, errors: &mut Vec<String>) {
    let declared = |n: &str| meta.params.iter().any(|p| p.name == n);
    let template = |what: &str, t: &str, errors: &mut Vec<String>| match Template::parse(t) {
        Ok(t) => {
            for n in t.names().filter(|n| !declared(n)) {
                errors.push(format!("{what} {t}: {{{n}}} is not a declared parameter"));
            }
        }
        Err(e) => errors.push(format!("{what}: {e}")),
    };
    for needs in &meta.needs {
        for (p, _) in &needs.when {
            if !declared(p) {
                errors.push(format!(
                    "needs: condition on {p:?}, which is not a declared parameter"
                ));
            }
        }
        for (i, c) in needs.commands.iter().enumerate() {
            if needs.commands[..i].iter().any(|d| d.name == c.name) {
                errors.push(format!(
                    "command {:?} is declared twice in one needs block",
                    c.name
                ));
            }
            if c.argv.is_empty() {
                errors.push(format!("command {:?} has no argv", c.name));
            }
            for a in &c.argv {
                template(&format!("command {}:", c.name), a, errors);
            }
            if let Err(e) = crate::grant::capability::parse_list(&c.capabilities) {
                errors.push(format!("command {:?}: {e}", c.name));
            }
        }
        for (what, list) in [
            ("pid file", &needs.pidfiles),
            ("probe", &needs.probes),
            ("path", &needs.paths),
        ] {
            for t in list {
                template(what, t, errors);
            }
        }
        for a in &needs.addresses {
            for p in [
                Some(&a.ip),
                a.cidr_netmask.as_ref(),
                a.nic.as_ref(),
                a.broadcast.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                if !declared(p) {
                    errors.push(format!("address: {p:?} is not a declared parameter"));
                }
            }
        }
    }
}

/// Check meta-data on its own and against the resource's arguments.
pub fn check_meta(meta: &Meta, args: &[String]) -> MetaCheck {
    let mut c = MetaCheck::default();
    if meta.name.trim().is_empty() {
        c.errors.push("the agent's name is empty".into());
    }
    if meta.version.trim().is_empty() {
        c.warnings
            .push("no version: operators cannot tell builds apart".into());
    }
    if meta.description.trim().is_empty() {
        c.warnings.push("no description".into());
    }
    for (i, p) in meta.params.iter().enumerate() {
        if !valid_param_name(&p.name) {
            c.errors.push(format!(
                "parameter {:?} is not a usable name (lowercase letters, digits, _ or -, starting with a letter)",
                p.name
            ));
        }
        if meta.params[..i].iter().any(|q| q.name == p.name) {
            c.errors
                .push(format!("parameter {:?} is declared twice", p.name));
        }
        if p.description.trim().is_empty() {
            c.warnings
                .push(format!("parameter {:?} has no description", p.name));
        }
        if let Some(d) = &p.default {
            if !value_fits(p.type_, d) {
                c.errors.push(format!(
                    "parameter {:?}: default {d:?} is not a {}",
                    p.name,
                    type_name(p.type_)
                ));
            }
            if p.required {
                c.warnings.push(format!(
                    "parameter {:?} is required but has a default, which is never used",
                    p.name
                ));
            }
        }
    }
    check_needs(meta, &mut c.errors);
    match bind_args(meta, args) {
        Ok(bound) => c.bound = bound,
        Err(e) => c.errors.push(match meta.params.len() {
            0 if !args.is_empty() => format!(
                "{} argument(s) given but the meta-data declares no parameter to bind them to; \
                 declare every parameter the agent reads",
                args.len()
            ),
            _ => format!("the arguments do not fit the declared parameters: {e}"),
        }),
    }
    c
}

/// Fraction of an operation's deadline above which the deadline step
/// fails: on a loaded node such an operation times out and the group
/// fails over for nothing.
pub const DEADLINE_SHARE: f64 = 0.5;

/// What an expected monitor result means, to phrase failures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Running,
    Stopped,
}

/// The sequence's state: the resource, the report and the slowest run of
/// each operation.
struct Run<'a> {
    res: &'a Resource,
    report: Report,
    timings: Vec<(AgentOp, Duration)>,
}

impl Run<'_> {
    async fn unit(&mut self, op: AgentOp, name: &'static str, rule: &str) -> bool {
        let t0 = Instant::now();
        let r = match op {
            AgentOp::Validate => self.res.validate().await,
            AgentOp::Start => self.res.start().await,
            AgentOp::Stop => self.res.stop().await,
            _ => unreachable!("unit steps are validate, start and stop"),
        };
        let elapsed = t0.elapsed();
        self.timings.push((op, elapsed));
        let (verdict, detail) = match r {
            Ok(()) => (Verdict::Pass, "ok".to_string()),
            Err(e) => (Verdict::Fail, format!("{rule}: {e}")),
        };
        self.report.steps.push(Step {
            name,
            verdict,
            detail,
            elapsed: Some(elapsed),
        });
        verdict == Verdict::Pass
    }

    async fn monitor(&mut self, name: &'static str, expect: Expect) -> Option<Status> {
        let t0 = Instant::now();
        let r = self.res.monitor().await;
        let elapsed = t0.elapsed();
        self.timings.push((AgentOp::Monitor, elapsed));
        let (verdict, detail) = monitor_verdict(&r, expect);
        self.report.steps.push(Step {
            name,
            verdict,
            detail,
            elapsed: Some(elapsed),
        });
        r.ok()
    }
}

fn monitor_verdict(r: &Result<Status, AgentError>, expect: Expect) -> (Verdict, String) {
    match (r, expect) {
        (Ok(Status::Running), Expect::Running) | (Ok(Status::NotRunning), Expect::Stopped) => {
            (Verdict::Pass, status_word(r).to_string())
        }
        (Ok(Status::Running), Expect::Stopped) => (
            Verdict::Fail,
            "says running where the resource is stopped: monitor must report not-running \
             (OCF 7) for a stopped resource, or failover will think the service is up"
                .into(),
        ),
        (Ok(Status::NotRunning), Expect::Running) => (
            Verdict::Fail,
            "says not-running right after a successful start: start must not return before \
             the resource is up, and monitor must see it"
                .into(),
        ),
        (Ok(Status::Failed), Expect::Stopped) => (
            Verdict::Fail,
            "says failed for a cleanly stopped resource: report not-running (OCF 7)".into(),
        ),
        (Ok(Status::Failed), Expect::Running) => (
            Verdict::Fail,
            "says failed right after a successful start".into(),
        ),
        (Err(e), Expect::Stopped) => (
            Verdict::Fail,
            format!("monitor must not fail when the resource is simply stopped (report not-running): {e}"),
        ),
        (Err(e), Expect::Running) => (Verdict::Fail, format!("monitor failed: {e}")),
    }
}

fn status_word(r: &Result<Status, AgentError>) -> &'static str {
    match r {
        Ok(Status::Running) => "running",
        Ok(Status::NotRunning) => "not running",
        Ok(Status::Failed) => "failed",
        Err(_) => "error",
    }
}

/// The deadline step: the slowest run of each operation against its
/// deadline.
fn deadline_step(timings: &[(AgentOp, Duration)], deadlines: &Deadlines) -> Step {
    let deadline_of = |op: AgentOp| match op {
        AgentOp::MetaData => deadlines.meta_data,
        AgentOp::Validate => deadlines.validate,
        AgentOp::Start => deadlines.start,
        AgentOp::Stop => deadlines.stop,
        AgentOp::Monitor => deadlines.monitor,
    };
    let mut worst: Vec<(AgentOp, Duration)> = Vec::new();
    for &(op, d) in timings {
        match worst.iter_mut().find(|(o, _)| *o == op) {
            Some(w) => w.1 = w.1.max(d),
            None => worst.push((op, d)),
        }
    }
    let mut too_slow = Vec::new();
    let mut summary = Vec::new();
    for &(op, d) in &worst {
        let limit = deadline_of(op);
        let share = d.as_secs_f64() / limit.as_secs_f64();
        summary.push(format!(
            "{op} {} of {:.1} s",
            fmt_ms(d),
            limit.as_secs_f64()
        ));
        if share > DEADLINE_SHARE {
            too_slow.push(format!(
                "{op} took {} = {:.0}% of its {:.1} s deadline",
                fmt_ms(d),
                share * 100.0,
                limit.as_secs_f64()
            ));
        }
    }
    if too_slow.is_empty() {
        Step {
            name: "deadlines",
            verdict: Verdict::Pass,
            detail: format!("slowest: {}", summary.join(", ")),
            elapsed: None,
        }
    } else {
        Step {
            name: "deadlines",
            verdict: Verdict::Fail,
            detail: format!(
                "{}; above {:.0}% a loaded node times out and fails the group over for nothing",
                too_slow.join("; "),
                DEADLINE_SHARE * 100.0
            ),
            elapsed: None,
        }
    }
}

/// Meta-data step: check what the agent described against the token's
/// arguments; false when the rest of the sequence cannot run.
pub fn meta_step(
    report: &mut Report,
    meta: Result<Meta, AgentError>,
    elapsed: Duration,
    args: &[String],
) -> bool {
    let (verdict, detail) = match meta {
        Err(e) => (Verdict::Fail, format!("meta-data failed: {e}")),
        Ok(m) => {
            let c = check_meta(&m, args);
            let bound = c
                .bound
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            if !c.errors.is_empty() {
                (Verdict::Fail, c.errors.join("; "))
            } else {
                let head = format!(
                    "{} {}, {} parameter(s); bound: {}",
                    m.name,
                    m.version,
                    m.params.len(),
                    if bound.is_empty() { "-" } else { &bound }
                );
                if c.warnings.is_empty() {
                    (Verdict::Pass, head)
                } else {
                    (Verdict::Warn, format!("{head}; {}", c.warnings.join("; ")))
                }
            }
        }
    };
    report.steps.push(Step {
        name: "meta-data",
        verdict,
        detail,
        elapsed: Some(elapsed),
    });
    verdict != Verdict::Fail
}

/// Names of the operation steps after meta-data, in order.
pub const STEPS: &[&str] = &[
    "validate",
    "monitor stopped",
    "start",
    "monitor started",
    "start again",
    "monitor again",
    "stop",
    "monitor stopped 2",
    "stop again",
    "deadlines",
];

/// Mark the operation steps skipped (meta-data or binding failed).
pub fn skip_rest(report: &mut Report, why: &str) {
    for name in STEPS {
        report.push(name, Verdict::Skip, why);
    }
}

/// Run validate .. stop again and the deadline check on a bound resource.
pub async fn run_sequence(report: Report, res: &Resource, deadlines: &Deadlines) -> Report {
    let mut run = Run {
        res,
        report,
        timings: Vec::new(),
    };
    run.unit(
        AgentOp::Validate,
        "validate",
        "validate must accept arguments that work",
    )
    .await;
    let before = run.monitor("monitor stopped", Expect::Stopped).await;
    if before == Some(Status::Running) {
        // ocf-tester's rule: test from a stopped resource. Stopping a
        // resource someone else runs would be worse than reporting it.
        for name in &STEPS[2..STEPS.len() - 1] {
            run.report.push(
                name,
                Verdict::Skip,
                "the resource was running before the test (or monitor lies); stop it and run again",
            );
        }
    } else {
        let started = run
            .unit(AgentOp::Start, "start", "start must bring the resource up")
            .await;
        if started {
            run.monitor("monitor started", Expect::Running).await;
        } else {
            run.report
                .push("monitor started", Verdict::Skip, "start failed");
        }
        run.unit(
            AgentOp::Start,
            "start again",
            "start on a started resource must succeed (idempotent), as heartbeat restarts groups that are partly up",
        )
        .await;
        if started {
            run.monitor("monitor again", Expect::Running).await;
        } else {
            run.report
                .push("monitor again", Verdict::Skip, "start failed");
        }
        run.unit(AgentOp::Stop, "stop", "stop must take the resource down")
            .await;
        run.monitor("monitor stopped 2", Expect::Stopped).await;
        run.unit(
            AgentOp::Stop,
            "stop again",
            "stop on a stopped resource must succeed (idempotent), or a failover after a partial stop never completes",
        )
        .await;
        // Leave nothing behind, whatever failed above.
        if !matches!(res.monitor().await, Ok(Status::NotRunning)) {
            let _ = res.stop().await;
        }
    }
    run.report
        .steps
        .push(deadline_step(&run.timings, deadlines));
    run.report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Param;

    fn param(name: &str, ty: ParamType, default: Option<&str>, required: bool) -> Param {
        Param {
            name: name.into(),
            description: format!("the {name}"),
            type_: ty,
            default: default.map(str::to_string),
            required,
        }
    }

    fn meta(params: Vec<Param>) -> Meta {
        Meta {
            name: "X".into(),
            version: "1.0.0".into(),
            description: "x".into(),
            params,
            needs: Vec::new(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn good_meta_binds_and_passes() {
        let m = meta(vec![
            param("ip", ParamType::String, None, true),
            param("count", ParamType::Integer, Some("5"), false),
        ]);
        let c = check_meta(&m, &s(&["10.0.0.1", "count=3"]));
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.bound.len(), 2);
    }

    #[test]
    fn arguments_without_declared_parameters_are_named() {
        let c = check_meta(&meta(vec![]), &s(&["10.0.0.1"]));
        assert_eq!(c.errors.len(), 1);
        assert!(
            c.errors[0].contains("declares no parameter"),
            "{:?}",
            c.errors
        );
    }

    #[test]
    fn bad_declarations_are_errors() {
        let m = meta(vec![
            param("ip", ParamType::String, None, false),
            param("ip", ParamType::String, None, false),
            param("Count", ParamType::Integer, Some("five"), false),
            param("on", ParamType::Boolean, Some("maybe"), false),
        ]);
        let c = check_meta(&m, &[]);
        assert_eq!(c.errors.len(), 4, "{:?}", c.errors);
        let c = check_meta(
            &meta(vec![param("n", ParamType::Integer, None, false)]),
            &s(&["x"]),
        );
        assert!(
            c.errors[0].contains("not a valid integer"),
            "{:?}",
            c.errors
        );
    }

    #[test]
    fn bad_needs_are_errors() {
        use crate::runtime::host::wasmbeat::agent::types::{Command, Needs};
        let mut m = meta(vec![param("config", ParamType::Path, None, false)]);
        let cmd = |name: &str, argv: &[&str], caps: &[&str]| Command {
            name: name.into(),
            description: String::new(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            capabilities: caps.iter().map(|a| a.to_string()).collect(),
        };
        m.needs.push(Needs {
            when: vec![("server".into(), vec!["x".into()])],
            netlink_read: false,
            addresses: Vec::new(),
            commands: vec![
                cmd(
                    "a",
                    &["/usr/sbin/x", "-c", "{config}"],
                    &["net-bind-service"],
                ),
                cmd("a", &["/usr/sbin/x", "{nope}"], &["root"]),
                cmd("b", &[], &[]),
            ],
            pidfiles: vec!["{config".into()],
            probes: Vec::new(),
            paths: Vec::new(),
        });
        let c = check_meta(&m, &[]);
        let e = c.errors.join("\n");
        assert_eq!(c.errors.len(), 6, "{e}");
        for want in [
            "condition on \"server\"",
            "declared twice",
            "{nope}",
            "not a Linux capability",
            "no argv",
            "without a closing",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn missing_descriptions_and_required_defaults_warn() {
        let mut m = meta(vec![param("ip", ParamType::String, Some("1"), true)]);
        m.params[0].description.clear();
        m.version.clear();
        let c = check_meta(&m, &s(&["10.0.0.1"]));
        assert!(c.errors.is_empty());
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    }

    #[test]
    fn monitor_verdicts_name_the_rule() {
        let (v, d) = monitor_verdict(&Ok(Status::Running), Expect::Stopped);
        assert_eq!(v, Verdict::Fail);
        assert!(d.contains("not-running"));
        assert_eq!(
            monitor_verdict(&Ok(Status::NotRunning), Expect::Stopped).0,
            Verdict::Pass
        );
        assert_eq!(
            monitor_verdict(&Err(AgentError::Failed("x".into())), Expect::Stopped).0,
            Verdict::Fail
        );
        assert_eq!(
            monitor_verdict(&Ok(Status::Running), Expect::Running).0,
            Verdict::Pass
        );
    }

    #[test]
    fn deadline_step_fails_above_half_the_deadline() {
        let d = Deadlines {
            start: Duration::from_secs(1),
            ..Deadlines::default()
        };
        let ok = deadline_step(
            &[
                (AgentOp::Start, Duration::from_millis(400)),
                (AgentOp::Monitor, Duration::from_millis(3)),
            ],
            &d,
        );
        assert_eq!(ok.verdict, Verdict::Pass, "{}", ok.detail);
        let slow = deadline_step(
            &[
                (AgentOp::Start, Duration::from_millis(100)),
                (AgentOp::Start, Duration::from_millis(600)),
            ],
            &d,
        );
        assert_eq!(slow.verdict, Verdict::Fail);
        assert!(
            slow.detail.contains("start took 600.0 ms = 60%"),
            "{}",
            slow.detail
        );
    }

    #[test]
    fn report_names_the_first_failure() {
        let mut r = Report::default();
        r.push("validate", Verdict::Pass, "ok");
        r.push("start again", Verdict::Fail, "x");
        r.push("stop again", Verdict::Fail, "y");
        assert!(!r.passed());
        assert_eq!(r.first_failure().unwrap().name, "start again");
        assert!(r
            .render()
            .contains("FAILED: 2 of 3 steps failed; the first is \"start again\""));
    }
}
