//! The `wasmbeat` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wasmbeat::control::{Request, Response, RuntimePaths, Which};
use wasmbeat::heartbeat_tools::Tool;
use wasmbeat::runtime::cli::{agent_command, agent_test_command, AgentCliOptions, CliOp};
use wasmbeat::runtime::scratch_net;
use wasmbeat::runtime::RuntimeConfig;

/// Active/passive IP failover daemon compatible with Linux-HA heartbeat.
#[derive(Parser)]
#[command(name = "wasmbeat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum FenceCommand {
    /// Check a fence agent: meta-data, arguments, validate, list, status;
    /// off/reset/on only with --action (they power a node off).
    Test {
        /// A built-in device (`http-switch`, `meatware`), a name in
        /// resource.d/ or a `.wasm` path.
        agent: String,
        /// The device's parameters as in ha.cf: `key=value` (meatware:
        /// node names).
        params: Vec<String>,
        /// The node for status and --action (default: the first listed).
        #[arg(long)]
        node: Option<String>,
        /// Also run this action on --node (status and list always run).
        #[arg(long, value_enum)]
        action: Option<wasmbeat::fence::FenceAction>,
        /// heartbeat configuration directory (agents in `resource.d/`,
        /// grants in `agents.toml`'s `[fence.NAME]`).
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// Cache of compiled agents.
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// Compile agents every time instead of using the cache.
        #[arg(long)]
        no_cache: bool,
        /// Deadline of each step in seconds.
        #[arg(long, default_value = "20")]
        timeout: f64,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (systemd style).
    Run {
        /// Directory holding ha.cf, haresources, authkeys and resource.d/.
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// This node's name (default: `uname -n`, lowercased, as heartbeat).
        #[arg(long)]
        node: Option<String>,
        /// Parent directory of the control socket and pid file.
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
        /// Where the node UUID and generation are kept.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Cache of compiled agents.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (off unless
        /// given; without a value 127.0.0.1:9694).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9694", env = "WASMBEAT_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        wire: WireOptions,
        /// After the keys are loaded (start, or a reload that changed
        /// authkeys), the other listed keys still verify for this long
        /// (seconds, or with an `ms` suffix, as times in ha.cf), then only
        /// the `auth N` key. 0: only the active key, always.
        #[arg(long, value_name = "TIME", default_value = "600", value_parser = parse_time, env = "WASMBEAT_KEY_ROTATION_WINDOW")]
        key_rotation_window: Duration,
    },
    /// Show nodes, links and who holds each resource group.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give resource groups to the peer (heartbeat's hb_standby).
    Standby {
        /// Which groups: all, local (this node's), foreign (the peer's; alias failback).
        #[arg(default_value = "all")]
        scope: Which,
        #[command(flatten)]
        target: Target,
    },
    /// Take resource groups from the peer (heartbeat's hb_takeover).
    Takeover {
        /// Which groups: all, local (this node's), foreign (the peer's; alias failback).
        #[arg(default_value = "all")]
        scope: Which,
        #[command(flatten)]
        target: Target,
    },
    /// Re-read the configuration (like SIGHUP).
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Confirm that a node waiting to be fenced is off (you powered it
    /// down or checked it): its groups may then start here. heartbeat's
    /// `meatclient -c NODE`; also the way out when a fencing device keeps
    /// failing.
    FenceAck {
        /// The node, as named in ha.cf.
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Serve the tie-break lease for a two-node cluster (run it on a third
    /// machine that both nodes reach over the LAN; ha.cf `tiebreaker
    /// ADDR:PORT` on the nodes). Keeps no cluster state and runs no
    /// resources; one process per cluster (per authkeys).
    Witness {
        /// UDP address and port to listen on, e.g. 0.0.0.0:7405.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// The cluster's authkeys file (requests and replies are signed with it).
        #[arg(long, value_name = "FILE")]
        authkeys: PathBuf,
    },
    /// Run one resource-agent operation by hand, like heartbeat's
    /// `/etc/ha.d/resource.d/IPaddr 10.0.0.1 start` (exit codes follow OCF),
    /// or check an agent with the conformance sequence (`test`).
    #[command(
        override_usage = "wasmbeat agent [OPTIONS] <TOKEN> <OP>\n       wasmbeat agent [OPTIONS] test <TOKEN>\n       wasmbeat agent new <NAME> --lang <LANG> [--dir DIR]"
    )]
    Agent {
        /// A haresources resource token, e.g. `IPaddr::10.0.0.1/24/eth0`
        /// (with `new`: the new agent's name).
        token: String,
        /// start, stop, status, monitor, meta-data, validate, or test (run
        /// the conformance sequence: meta-data, validate, monitor, start,
        /// start again, stop, stop again, deadlines); `new NAME` writes a
        /// buildable agent skeleton.
        op: String,
        /// With `new`: the language of the skeleton.
        #[arg(long, value_enum)]
        lang: Option<wasmbeat::scaffold::Lang>,
        /// With `new`: where to write it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// With `test`: run in the current network namespace instead of a
        /// throw-away one (which has lo and wbtest0 with 192.0.2.1/24 and
        /// 2001:db8::1/64).
        #[arg(long)]
        in_place: bool,
        /// heartbeat configuration directory (agents in `resource.d/`,
        /// grants in `agents.toml`).
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// Cache of compiled agents.
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// Compile agents every time instead of using the cache.
        #[arg(long)]
        no_cache: bool,
        /// Deadline for the operation in seconds (default: 20 start/stop, 10 monitor).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Run a wasmbeat agent as the OCF resource agent `ocf:wasmbeat:AGENT`
    /// (what Pacemaker runs through /usr/lib/ocf/resource.d/wasmbeat/AGENT;
    /// parameters as OCF_RESKEY_name), or `install` that provider directory.
    #[command(
        override_usage = "wasmbeat ocf [OPTIONS] <AGENT> <ACTION>\n       wasmbeat ocf install [--root DIR] [--config-dir DIR] [--bin PATH]"
    )]
    Ocf {
        /// The agent (built-in, or resource.d/AGENT.wasm), or `install`.
        agent: String,
        /// start, stop, monitor, validate-all, meta-data (others exit 3).
        action: Option<String>,
        /// heartbeat configuration directory (agents in `resource.d/`,
        /// grants in `agents.toml`).
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// Cache of compiled agents.
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// With `install`: prefix of usr/lib/ocf/resource.d/wasmbeat
        /// (default `/`; a staging directory for packages and tests).
        #[arg(long)]
        root: Option<PathBuf>,
        /// With `install`: the wasmbeat binary the scripts run (default:
        /// this one).
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Where servers the agent starts write stdout and stderr
        /// (RESOURCE.log, appended): this process exits while they run.
        #[arg(long, default_value = wasmbeat::caps::DEFAULT_SERVER_LOG_DIR)]
        server_log_dir: PathBuf,
    },
    /// Translate ha.cf + haresources (+ agents.toml) into a Pacemaker
    /// configuration (crm shell or pcs commands) for the same resources
    /// as `ocf:wasmbeat:` agents.
    Migrate {
        /// The target cluster manager (only `pacemaker`).
        target: wasmbeat::migrate::Target,
        /// Output as `crm configure` input or as `pcs` commands.
        #[arg(long, value_enum, default_value = "crm")]
        format: wasmbeat::migrate::Format,
        /// Directory holding ha.cf, haresources and agents.toml.
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// Cache of compiled agents (agents are loaded to bind the
        /// resources' arguments to parameter names).
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// Check heartbeat's ha.cf, haresources and authkeys and summarise the cluster.
    Check {
        /// Directory holding ha.cf, haresources, authkeys and resource.d/.
        #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// This node's name (default: `uname -n`, lowercased, as heartbeat).
        #[arg(long)]
        node: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Cache of compiled agents (the agents are loaded to compute each
        /// resource's effective grant).
        #[arg(long, default_value = wasmbeat::runtime::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// Skip loading the agents: no effective grants in the report.
        #[arg(long)]
        no_grants: bool,
        #[command(flatten)]
        wire: WireOptions,
    },
    /// Fence (STONITH) devices: `fence test` checks a fence agent.
    Fence {
        #[command(subcommand)]
        command: FenceCommand,
    },
    /// heartbeat's `cl_status`, `hb_standby` or `hb_takeover` (also run
    /// as symlinks of that name; see docs/heartbeat-tools.md).
    #[command(name = "cl_status", hide = true, disable_help_flag = true)]
    ClStatus {
        /// cl_status's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// heartbeat's `hb_standby [all|local|foreign|failback]`.
    #[command(name = "hb_standby", hide = true, disable_help_flag = true)]
    HbStandby {
        /// hb_standby's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// heartbeat's `hb_takeover [all|local|foreign|failback]`.
    #[command(name = "hb_takeover", hide = true, disable_help_flag = true)]
    HbTakeover {
        /// hb_takeover's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write the man pages (`OUT/man8`) and shell completions
    /// (`OUT/completions`) the Debian package ships.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        out: PathBuf,
    },
}

/// What `wasmbeat agent A B` asks for.
enum AgentInvocation {
    /// `TOKEN OP`.
    Op(String, CliOp),
    /// `test TOKEN` or `TOKEN test`.
    Test(String),
    /// `new NAME`.
    New(String),
}

/// `wasmbeat agent new NAME --lang LANG [--dir DIR]`: write the skeleton
/// and say how to build and test it.
fn agent_new(
    name: &str,
    lang: Option<wasmbeat::scaffold::Lang>,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use wasmbeat::scaffold::Lang;
    let Some(lang) = lang else {
        let all: Vec<_> = Lang::ALL.iter().map(|l| l.as_str()).collect();
        anyhow::bail!(
            "agent new {name}: say which language with --lang {}",
            all.join("|")
        );
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let files = wasmbeat::scaffold::write(name, lang, &dir)?;
    println!(
        "wrote a {} agent skeleton ({} files) in {}:",
        lang.as_str(),
        files.len(),
        dir.display()
    );
    for f in &files {
        println!("  {}", f.display());
    }
    println!(
        "next: {0}/build.sh, then (as root) wasmbeat agent --config-dir CONF test {0}/{name}.wasm::192.0.2.10 \
         with [agent.{name}] accept_declared = true in CONF/agents.toml ({0}/README.md)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `wasmbeat agent test TOKEN` reads naturally, `TOKEN OP` is heartbeat's
/// order; an agent actually named `test` still works with an operation.
fn agent_invocation(first: String, second: &str) -> anyhow::Result<AgentInvocation> {
    use clap::ValueEnum;
    let op = CliOp::from_str(second, false);
    Ok(match op {
        Ok(op) => AgentInvocation::Op(first, op),
        Err(_) if second == "test" => AgentInvocation::Test(first),
        Err(_) if first == "test" => AgentInvocation::Test(second.to_string()),
        Err(_) if first == "new" => AgentInvocation::New(second.to_string()),
        Err(_) => anyhow::bail!(
            "unknown operation {second:?}: use start, stop, status, monitor, meta-data, validate or test (or `agent new NAME --lang LANG`)"
        ),
    })
}

/// wasmbeat-only choices about the wire that heartbeat's files cannot say
/// (ha.cf must stay readable by heartbeat); `run` and `check` share them so
/// `check` judges the files as the daemon will.
#[derive(clap::Args)]
struct WireOptions {
    /// Accept an unkeyed `crc` key in authkeys although UDP media
    /// (bcast/ucast/mcast) are configured. Anyone who can reach the port
    /// can then forge takeovers; meant for a dedicated cable only.
    #[arg(long, env = "WASMBEAT_ALLOW_CRC_ON_NETWORK")]
    allow_crc_on_network: bool,
}

impl WireOptions {
    fn load_options(&self) -> wasmbeat::config::LoadOptions {
        wasmbeat::config::LoadOptions {
            allow_crc_on_network: self.allow_crc_on_network,
        }
    }
}

/// heartbeat's time syntax (seconds by default, `ms`/`us` suffixes).
fn parse_time(text: &str) -> Result<Duration, String> {
    wasmbeat::config::duration::parse_duration(text).map_err(|e| e.to_string())
}

/// Which running daemon a control command talks to.
#[derive(clap::Args)]
struct Target {
    /// The daemon's configuration directory.
    #[arg(long, default_value = wasmbeat::config::DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// Parent directory of the control socket (as given to `run`).
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
}

/// Send one control request; print the answer; map it to an exit code.
fn control(target: &Target, request: Request, json: bool) -> anyhow::Result<ExitCode> {
    let paths = RuntimePaths::for_config_dir(&target.config_dir, target.runtime_dir.as_deref());
    // A reload answers once the changed groups' agents are loaded, which on
    // a cold cache means compiling them (tens of seconds for a Python agent).
    let limit = if request == Request::Reload {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(10)
    };
    match wasmbeat::control::client::call(&paths.socket, &request, limit) {
        Ok(Response::Status { status }) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", wasmbeat::daemon::status::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Response::Ok { message }) => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Response::Error { message }) => {
            eprintln!("wasmbeat: {message}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("wasmbeat: {e}");
            // LSB: 3 = program is not running.
            Ok(ExitCode::from(3))
        }
    }
}

fn check(
    config_dir: &Path,
    node: Option<&str>,
    json: bool,
    grants_with_cache: Option<PathBuf>,
    load: wasmbeat::config::LoadOptions,
) -> anyhow::Result<ExitCode> {
    let mut report = wasmbeat::config::check::check_with(config_dir, node, load);
    report.confinement = wasmbeat::confine::support().lines();
    if let (Some(cache_dir), Some(res)) = (grants_with_cache, &report.loaded.resources) {
        let rt = wasmbeat::runtime::Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir),
            ..RuntimeConfig::default()
        })?;
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        report.grants = tokio.block_on(wasmbeat::runtime::bind::explain_grants(
            &rt,
            config_dir,
            &res.groups,
            &report.loaded.policy,
        ));
        // Fence agents: loaded, and their parameters bound to their
        // meta-data and validated (nothing is sent to a device: validate
        // changes nothing and the built-in one only checks its arguments).
        if !report.fence_devices.is_empty() {
            let loaded = wasmbeat::fence::Fencing::from_plans(report.fence_devices.clone(), &rt);
            let checked = match loaded {
                Ok(f) => tokio.block_on(f.validate(Duration::from_secs(10))),
                Err(e) => Err(e),
            };
            if let Err(e) = checked {
                report.loaded.diagnostics.extend(e.diagnostics);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Man pages for `wasmbeat` and each visible subcommand (`wasmbeat-run.8`,
/// …, as git does), and bash/zsh/fish completions, all from the clap model
/// so they never disagree with `--help`.
fn generate_docs(out: &Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let man = out.join("man8");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let cmd = Cli::command();
    let write_page = |name: &str, cmd: clap::Command| -> anyhow::Result<()> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.name(name.to_string()))
            .section("8")
            .render(&mut page)?;
        std::fs::write(man.join(format!("{name}.8")), page)?;
        Ok(())
    };
    write_page("wasmbeat", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(&format!("wasmbeat-{}", sub.get_name()), sub.clone())?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "wasmbeat"),
        (clap_complete::Shell::Zsh, "_wasmbeat"),
        (clap_complete::Shell::Fish, "wasmbeat.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "wasmbeat", &mut text);
        std::fs::write(completions.join(file), text)?;
    }
    Ok(())
}

/// `wasmbeat migrate pacemaker`: the configuration on stdout; what
/// cannot be translated on stderr with file:line, exit 1.
fn migrate(
    format: wasmbeat::migrate::Format,
    config_dir: &Path,
    cache_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    init_quiet_logging();
    let rt = wasmbeat::runtime::Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir),
        ..RuntimeConfig::default()
    })?;
    let plan = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wasmbeat::migrate::plan(config_dir, &rt));
    match plan {
        Ok(plan) => {
            print!("{}", wasmbeat::migrate::render(&plan, format));
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("wasmbeat migrate: {d}");
            }
            eprintln!(
                "wasmbeat migrate: nothing written: {} problem(s) to fix first",
                diags.0.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `wasmbeat ocf install ...` or `wasmbeat ocf AGENT ACTION`.
fn ocf(
    agent: String,
    action: Option<String>,
    config_dir: PathBuf,
    cache_dir: PathBuf,
    root: Option<PathBuf>,
    bin: Option<PathBuf>,
    server_log_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    let Some(action) = action else {
        if agent != "install" {
            anyhow::bail!("wasmbeat ocf {agent}: say which action (start, stop, monitor, validate-all, meta-data), or `wasmbeat ocf install`");
        }
        let binary = match bin {
            Some(b) => b,
            None => std::env::current_exe()?,
        };
        let opts = wasmbeat::ocf::install::InstallOptions {
            root: root.unwrap_or_else(|| PathBuf::from("/")),
            config_dir,
            binary,
            cache_dir: (cache_dir != Path::new(wasmbeat::runtime::DEFAULT_CACHE_DIR))
                .then_some(cache_dir),
            server_log_dir: (server_log_dir != Path::new(wasmbeat::caps::DEFAULT_SERVER_LOG_DIR))
                .then_some(server_log_dir),
        };
        let done = wasmbeat::ocf::install::install(&opts)?;
        for p in &done.written {
            println!("wrote {}", p.display());
        }
        for p in &done.removed {
            println!("removed {} (its agent is gone)", p.display());
        }
        for (p, why) in &done.skipped {
            eprintln!("wasmbeat ocf install: skipped {}: {why}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    };
    if root.is_some() || bin.is_some() {
        anyhow::bail!("--root and --bin go with `wasmbeat ocf install`");
    }
    init_quiet_logging();
    let opts = wasmbeat::ocf::OcfOptions {
        config_dir,
        runtime: RuntimeConfig {
            cache_dir: Some(cache_dir),
            server_output: wasmbeat::caps::ServerOutput::File(server_log_dir),
            ..RuntimeConfig::default()
        },
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let action = wasmbeat::ocf::Action::parse(&action);
    let code = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wasmbeat::ocf::ocf_command(&agent, &action, &env, &opts));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Logging for commands whose stderr someone else files (Pacemaker logs
/// every OCF action's stderr; migrate's stdout is the product): warnings
/// and errors only, unless RUST_LOG says otherwise.
fn init_quiet_logging() {
    if std::env::var_os("RUST_LOG").is_none() {
        // Single-threaded here: no runtime or thread has started yet.
        // What this machine's confinement lacks is a fact about the
        // machine, reported by `wasmbeat check` and the daemon's start;
        // repeated by every OCF action (a monitor every 10 s) it would
        // bury Pacemaker's log.
        std::env::set_var("RUST_LOG", "warn,wasmbeat::confine::support=error");
    }
    init_stderr_logging();
}

fn init_stderr_logging() {
    let _ = wasmbeat::logging::init(&wasmbeat::logging::LogTargets::default());
}

/// Run one of heartbeat's tools and exit with its code.
fn heartbeat_tool(tool: Tool, args: &[String]) -> ExitCode {
    let out = wasmbeat::heartbeat_tools::run(tool, args);
    out.emit();
    ExitCode::from(out.code)
}

fn main() -> anyhow::Result<ExitCode> {
    // Started as `cl_status`, `hb_standby` or `hb_takeover` (a symlink):
    // heartbeat's argument syntax, not wasmbeat's.
    let mut argv = std::env::args();
    if let Some(tool) = argv.next().as_deref().and_then(Tool::from_program_name) {
        let args: Vec<String> = argv.collect();
        return Ok(heartbeat_tool(tool, &args));
    }
    let cli = Cli::parse();
    match cli.command {
        Command::ClStatus { args } => Ok(heartbeat_tool(Tool::ClStatus, &args)),
        Command::HbStandby { args } => Ok(heartbeat_tool(Tool::HbStandby, &args)),
        Command::HbTakeover { args } => Ok(heartbeat_tool(Tool::HbTakeover, &args)),
        Command::Run {
            config_dir,
            node,
            runtime_dir,
            state_dir,
            cache_dir,
            metrics_listen,
            wire,
            key_rotation_window,
        } => {
            wasmbeat::daemon::run(wasmbeat::daemon::RunOptions {
                config_dir,
                node,
                runtime_dir,
                state_dir,
                cache_dir,
                metrics_listen,
                load: wire.load_options(),
                key_rotation_window,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { target, json } => control(&target, Request::Status, json),
        Command::Standby { scope, target } => control(&target, Request::Standby(scope), false),
        Command::Takeover { scope, target } => control(&target, Request::Takeover(scope), false),
        Command::FenceAck { node, target } => {
            control(&target, Request::FenceAck(node.to_lowercase()), false)
        }
        Command::Reload { target } => control(&target, Request::Reload, false),
        Command::Witness { listen, authkeys } => {
            let ring = wasmbeat::witness::keyring_from(&authkeys).map_err(anyhow::Error::msg)?;
            wasmbeat::witness::serve(listen, ring)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent {
            token,
            op,
            lang,
            dir,
            in_place,
            config_dir,
            cache_dir,
            no_cache,
            timeout,
        } => {
            let invocation = agent_invocation(token, &op)?;
            if let AgentInvocation::New(name) = &invocation {
                return agent_new(name, lang, dir);
            }
            if lang.is_some() || dir.is_some() {
                anyhow::bail!("--lang and --dir go with `wasmbeat agent new NAME`");
            }
            init_stderr_logging();
            let mut runtime = RuntimeConfig {
                cache_dir: (!no_cache).then_some(cache_dir),
                ..RuntimeConfig::default()
            };
            if let Some(t) = timeout {
                let d = Duration::try_from_secs_f64(t).map_err(|_| {
                    anyhow::anyhow!("--timeout {t}: not a positive number of seconds")
                })?;
                let dl = &mut runtime.deadlines;
                (dl.start, dl.stop, dl.monitor, dl.validate) = (d, d, d, d);
            }
            let opts = AgentCliOptions {
                config_dir,
                runtime,
            };
            let code = match invocation {
                AgentInvocation::New(_) => unreachable!("handled above"),
                AgentInvocation::Op(token, op) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(agent_command(&token, op, &opts)),
                AgentInvocation::Test(token) => {
                    // The interface the token names (its haresources line's
                    // `eth0`) exists in the throw-away namespace too.
                    let named = wasmbeat::config::token::ResourceToken::parse(&token)
                        .ok()
                        .and_then(|t| scratch_net::NamedLink::for_token(&t.args));
                    let context = if in_place {
                        "current network namespace".to_string()
                    } else {
                        // Before the runtime starts any thread: only
                        // threads started later inherit the namespace.
                        scratch_net::enter()?;
                        scratch_net::describe(named.as_ref())
                    };
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    if !in_place {
                        rt.block_on(scratch_net::populate(named.as_ref()))?;
                    }
                    rt.block_on(agent_test_command(&token, &opts, &context))
                }
            };
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Ocf {
            agent,
            action,
            config_dir,
            cache_dir,
            root,
            bin,
            server_log_dir,
        } => ocf(
            agent,
            action,
            config_dir,
            cache_dir,
            root,
            bin,
            server_log_dir,
        ),
        Command::Migrate {
            target: _,
            format,
            config_dir,
            cache_dir,
        } => migrate(format, &config_dir, cache_dir),
        Command::Check {
            config_dir,
            node,
            json,
            cache_dir,
            no_grants,
            wire,
        } => {
            init_stderr_logging();
            check(
                &config_dir,
                node.as_deref(),
                json,
                (!no_grants).then_some(cache_dir),
                wire.load_options(),
            )
        }
        Command::Fence {
            command:
                FenceCommand::Test {
                    agent,
                    params,
                    node,
                    action,
                    config_dir,
                    cache_dir,
                    no_cache,
                    timeout,
                },
        } => {
            init_stderr_logging();
            let timeout = Duration::try_from_secs_f64(timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!("--timeout {timeout}: not a positive number of seconds")
                })?;
            let opts = wasmbeat::fence::cli::FenceTestOptions {
                config_dir,
                runtime: RuntimeConfig {
                    cache_dir: (!no_cache).then_some(cache_dir),
                    ..RuntimeConfig::default()
                },
                node,
                action,
                timeout,
            };
            let code = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(wasmbeat::fence::cli::fence_test_command(
                    &agent, &params, &opts,
                ));
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::GenerateDocs { out } => {
            generate_docs(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
