//! A minimal wire peer: the daemon's [`Endpoint`] driven over its
//! [`Transport`], heartbeating, answering heartbeat's protocol messages
//! (ACK, retransmit, reqnodes) and keeping a view of its peers. It is what
//! `wasmbeat-lab wire-peer` runs for interop and transport tests; it makes
//! no resource decisions. Who is alive, and which links carry packets, is
//! the failover core's one liveness model: a [`Cluster`] without groups is
//! fed what arrives and asked (its actions are discarded).

use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmbeat::cluster::{
    AutoFailback, Cluster, ClusterParams, Event as CoreEvent, LinkId, NodeStatus,
};
use wasmbeat::config::{HaCf, Medium};
use wasmbeat::transport::{self, Transport};
use wasmbeat::wire::fields::T_STATUS;
use wasmbeat::wire::session::TICK;
use wasmbeat::wire::{environment, typed, Endpoint, Event};
use wasmbeat::Millis;

/// Timing of the peer (ha.cf keepalive / deadtime / initdead).
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// Status interval.
    pub keepalive: Duration,
    /// Advertised dead time.
    pub deadtime: Duration,
    /// Dead time before communication is up.
    pub initdead: Duration,
    /// Where to write the JSON view (atomically, about every 250 ms).
    pub view_file: Option<PathBuf>,
    /// Test hook: discard every Nth received packet (simulated loss, to
    /// exercise the peer's retransmission).
    pub drop_inbound_every: Option<u32>,
    /// Test hook: do not transmit every Nth sequenced message (it stays in
    /// history, so the peer must ask for it with NS_rexmit).
    pub skip_send_every: Option<u32>,
}

/// One peer as this node sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PeerStatus {
    /// Node name.
    pub name: String,
    /// `active`/`up`/`init` from its status, or `dead`, or `init` if never heard.
    pub status: String,
    /// Its generation.
    pub generation: u64,
    /// The dead time applied to it (initdead until communication is up,
    /// then its advertised `dt`), in ms.
    pub deadtime_ms: Option<u64>,
    /// Per medium: link name -> `up`/`dead`.
    pub links: BTreeMap<String, String>,
}

/// The whole view, as written to the view file.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// Local node.
    pub node: String,
    /// Local status (`up` until comm-up, then `active`).
    pub status: String,
    /// Our generation.
    pub generation: u64,
    /// Flow control still on.
    pub flow_control: bool,
    /// Peers.
    pub peers: Vec<PeerStatus>,
    /// Accepted messages.
    pub accepted: u64,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
    /// Reliable-delivery counters.
    pub session: wasmbeat::wire::SessionStats,
}

fn view(ep: &Endpoint, own: &str, liveness: &Cluster) -> View {
    let c = ep.counters();
    let generations: BTreeMap<String, u64> = ep
        .peers()
        .into_iter()
        .map(|p| (p.name, p.generation))
        .collect();
    View {
        node: ep.node().to_string(),
        status: own.to_string(),
        generation: ep.generation(),
        flow_control: ep.flow_control(),
        peers: liveness
            .status()
            .nodes
            .into_iter()
            .filter(|n| !n.local)
            .map(|n| PeerStatus {
                status: n.status.as_str().to_string(),
                generation: generations.get(&n.name).copied().unwrap_or(0),
                deadtime_ms: (n.status != NodeStatus::Init).then_some(n.deadtime_ms),
                links: n
                    .links
                    .iter()
                    .map(|l| {
                        let state = if l.up { "up" } else { "dead" };
                        (l.link.0.clone(), state.to_string())
                    })
                    .collect(),
                name: n.name,
            })
            .collect(),
        accepted: c.accepted(),
        drops: c
            .snapshot()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        session: ep.stats(),
    }
}

/// The core's liveness model for this peer's cluster: no groups, so it
/// only tracks who is heard, on which links, and who is dead.
fn liveness_model(ep: &Endpoint, nodes: &[String], opts: &PeerOptions) -> Cluster {
    Cluster::new(
        ClusterParams {
            local: ep.node().to_string(),
            nodes: nodes.to_vec(),
            keepalive: opts.keepalive,
            deadtime: opts.deadtime,
            warntime: opts.deadtime,
            initdead: opts.initdead,
            auto_failback: AutoFailback::Off,
            groups: Vec::new(),
            generation: ep.generation(),
            ping: Default::default(),
            fencing: Default::default(),
            tiebreaker: false,
        },
        Millis(0),
    )
}

fn write_view(path: &PathBuf, v: &View) {
    let tmp = path.with_extension("tmp");
    let ok = serde_json::to_vec_pretty(v)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|_| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!(path = %path.display(), "cannot write view file");
    }
}

/// Run until `shutdown` resolves.
pub async fn run(
    mut ep: Endpoint,
    mut tr: Transport,
    nodes: Vec<String>,
    links: Vec<String>,
    opts: PeerOptions,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let start = Instant::now();
    let ms = |t: Instant| Millis(t.duration_since(start).as_millis() as u64);
    let mut liveness = liveness_model(&ep, &nodes, &opts);
    let mut load = environment::LoadAvg::default();
    let mut own = "init";
    let mut sent_status = 0u32;
    let mut asked_nodes = false;
    let mut keepalive = tokio::time::interval(opts.keepalive);
    let mut tick = tokio::time::interval(TICK);
    let mut last_view = start;
    let mut last_seen: BTreeMap<String, String> = BTreeMap::new();
    let deadtime_ms = opts.deadtime.as_millis() as u64;
    let mut inbound = 0u64;
    loop {
        let now;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = keepalive.tick() => {
                now = Instant::now();
                ep.set_environment(ms(now), environment::wall_secs(), load.refresh());
                // Like heartbeat: init once, then up, and advertise
                // deadtime + 2 s during the first 5 s after start.
                let dt = if now.duration_since(start) < Duration::from_secs(5) { deadtime_ms + 2000 } else { deadtime_ms };
                ep.send(Endpoint::status_message(own, dt), ms(now));
                sent_status += 1;
                if own == "init" {
                    own = "up";
                }
            }
            _ = tick.tick() => {
                now = Instant::now();
                liveness.handle(ms(now), CoreEvent::Tick);
                let events = ep.handle_timeout(ms(now), &|n: &str| liveness.peer_alive(n));
                for e in events {
                    observe(&mut liveness, &links, ms(now), &e);
                }
            }
            Some(inb) = tr.recv() => {
                now = Instant::now();
                inbound += 1;
                if opts.drop_inbound_every.is_some_and(|n| nth(inbound, n)) {
                    continue;
                }
                match ep.receive(&inb.data, inb.link, ms(now)) {
                    Ok(events) => for e in &events { observe(&mut liveness, &links, ms(now), e) },
                    Err(reason) => tracing::trace!(?reason, from = ?inb.from, "packet dropped"),
                }
            }
        }
        // Comm-up: every peer heard (or initdead passed), then the node
        // list exchange (flow control only), then we are active.
        if own == "up" && sent_status >= 2 {
            let all_heard = nodes
                .iter()
                .filter(|n| **n != ep.node())
                .all(|n| liveness.peer_alive(n));
            if !asked_nodes && (all_heard || now.duration_since(start) >= opts.initdead) {
                asked_nodes = true;
                ep.request_nodes(ms(now), &|n: &str| liveness.peer_alive(n));
            }
            if asked_nodes && ep.nodes_exchanged() {
                own = "active";
                tracing::info!("communication up: local status active");
                ep.send(Endpoint::status_message(own, deadtime_ms), ms(now));
            }
        }
        while let Some(p) = ep.poll_transmit() {
            if p.msg_type != T_STATUS {
                tracing::debug!(t = %p.msg_type, seq = ?p.seq, "sending");
            }
            // Never skip the first messages: a (re)started node's first
            // status must arrive for the peer to adopt its generation.
            if let (Some(n), Some(seq)) = (opts.skip_send_every, p.seq) {
                if seq > n as u64 && nth(seq, n) && !p.resend {
                    tracing::info!(seq, "test hook: not transmitting");
                    continue;
                }
            }
            tr.send(&p).await;
        }
        if now.duration_since(last_view) >= Duration::from_millis(250) {
            last_view = now;
            let v = view(&ep, own, &liveness);
            for p in &v.peers {
                if last_seen.get(&p.name) != Some(&p.status) {
                    tracing::info!(node = %p.name, status = %p.status, "peer status");
                    last_seen.insert(p.name.clone(), p.status.clone());
                }
            }
            if let Some(path) = &opts.view_file {
                write_view(path, &v);
            }
        }
    }
}

/// True for every `n`th `k` (test hooks).
#[allow(clippy::manual_is_multiple_of)] // u64::is_multiple_of is newer than our MSRV (1.85)
fn nth(k: u64, n: u32) -> bool {
    n > 0 && k % n as u64 == 0
}

/// Feed what the session delivered to the liveness model, and log it.
fn observe(liveness: &mut Cluster, links: &[String], now: Millis, e: &Event) {
    let link = |i: usize| LinkId(links.get(i).cloned().unwrap_or_default());
    match e {
        Event::Message {
            header,
            message,
            link: l,
        } => {
            if header.msg_type != T_STATUS {
                tracing::info!(t = %header.msg_type, src = %header.src, "message for the core (not handled by wire-peer)");
            }
            if let Some(msg) = typed::from_wire(message) {
                liveness.handle(
                    now,
                    CoreEvent::Heard {
                        from: header.src.clone(),
                        link: link(*l),
                        generation: header.generation,
                        msg,
                    },
                );
            }
        }
        Event::Duplicate { node, link: l } => {
            liveness.handle(
                now,
                CoreEvent::HeardDuplicate {
                    from: node.clone(),
                    link: link(*l),
                },
            );
        }
        other => tracing::info!(event = ?other, "wire event"),
    }
}

/// Arguments of `wasmbeat-lab wire-peer` (interop testing: heartbeats and
/// protocol answers only, no resources).
#[derive(Debug, Clone, clap::Args)]
pub struct WirePeerArgs {
    /// Local node name.
    #[arg(long)]
    pub node: String,
    /// Every cluster node (including this one), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Signing key as `N:method[:secret]` (method crc, md5, sha1, hmac-sha256).
    #[arg(long)]
    pub auth: String,
    /// A medium line as in ha.cf (`bcast eth0`, `ucast eth0 10.0.0.2`, ...); repeatable.
    #[arg(long = "medium", required = true)]
    pub media: Vec<String>,
    /// ha.cf udpport.
    #[arg(long, default_value_t = wasmbeat::config::hacf::DEFAULT_UDPPORT)]
    pub udpport: u16,
    /// keepalive in ms.
    #[arg(long, default_value_t = 1000)]
    pub keepalive_ms: u64,
    /// deadtime in ms.
    #[arg(long, default_value_t = 6000)]
    pub deadtime_ms: u64,
    /// initdead in ms.
    #[arg(long, default_value_t = 12000)]
    pub initdead_ms: u64,
    /// Directory for hb_uuid / hb_generation.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Write the peer view as JSON here.
    #[arg(long)]
    pub view: Option<PathBuf>,
    /// Do not advertise protocol=1 (heartbeat then disables flow control).
    #[arg(long)]
    pub no_flow_control: bool,
    /// Send the classic text form on UDP media (as pre-1.0.10 glue did).
    #[arg(long)]
    pub udp_classic: bool,
    /// Omit the inner classic auth field (msgfmt netstring).
    #[arg(long)]
    pub netstring_only: bool,
    /// Run the heartbeat path SCHED_RR with memory locked.
    #[arg(long)]
    pub realtime: bool,
    /// Test hook: discard every Nth received packet.
    #[arg(long, hide = true)]
    pub drop_inbound_every: Option<u32>,
    /// Test hook: withhold every Nth sequenced message (peer must ask again).
    #[arg(long, hide = true)]
    pub skip_send_every: Option<u32>,
    /// Largest accepted packet in bytes (default heartbeat's MAXMSG).
    #[arg(long, default_value_t = wasmbeat::wire::codec::MAXMSG)]
    pub max_message: usize,
}

/// Errors of the wire-peer command.
#[derive(Debug, thiserror::Error)]
pub enum WirePeerError {
    /// Bad `--auth`.
    #[error("bad --auth {0:?}: expected N:method[:secret]")]
    Auth(String),
    /// A `--medium` line that is not exactly one ha.cf medium.
    #[error("bad --medium {0:?}: expected one ha.cf medium line, e.g. \"bcast eth0\"")]
    Medium(String),
    /// The key slot cannot form a keyring.
    #[error(transparent)]
    Keyring(#[from] wasmbeat::wire::auth::AuthError),
    /// Identity files.
    #[error(transparent)]
    Identity(#[from] wasmbeat::wire::identity::IdentityError),
    /// Media.
    #[error(transparent)]
    Transport(#[from] transport::OpenError),
    /// Runtime.
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// Parse `N:method[:secret]` into a one-key authkeys whose key is active.
pub fn parse_auth(s: &str) -> Result<wasmbeat::config::AuthKeys, WirePeerError> {
    use wasmbeat::config::{AuthKey, AuthKeys, AuthMethod, Secret};
    let bad = || WirePeerError::Auth(s.to_string());
    let mut it = s.splitn(3, ':');
    let index: u8 = it
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= 15)
        .ok_or_else(bad)?;
    let method = it.next().ok_or_else(bad)?;
    let secret = it.next().map(Secret::new);
    let method = match (method, secret) {
        ("crc", None) => AuthMethod::Crc,
        ("md5", Some(k)) => AuthMethod::Md5(k),
        ("sha1", Some(k)) => AuthMethod::Sha1(k),
        ("hmac-sha256", Some(k)) => AuthMethod::HmacSha256(k),
        _ => return Err(bad()),
    };
    Ok(AuthKeys {
        active_index: index,
        method: method.clone(),
        // Line 0: the key came from the command line, not an authkeys file.
        keys: vec![AuthKey {
            index,
            method,
            line: 0,
        }],
    })
}

/// Parse one `--medium` line with the ha.cf reader, so wire-peer accepts
/// exactly the medium lines ha.cf does; `udpport` is in effect for it. The
/// wire-peer shorthand `serial DEVICE BAUD` sets that line's baud.
pub fn parse_medium(line: &str, udpport: u16) -> Result<Medium, WirePeerError> {
    let bad = || WirePeerError::Medium(line.to_string());
    let text = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["serial", device, baud] => format!("baud {baud}\nserial {device}\n"),
        _ => format!("udpport {udpport}\n{line}\n"),
    };
    let (ha, diags) = HaCf::parse(&text);
    // Whole-file diagnostics (no node lines, ...) do not concern one line.
    if diags.iter().any(|d| d.is_error() && d.line.is_some()) {
        return Err(bad());
    }
    match ha.media.as_slice() {
        [medium] => Ok(medium.clone()),
        _ => Err(bad()),
    }
}

/// Run the wire peer on a current-thread runtime until SIGTERM/SIGINT.
pub fn run_blocking(args: WirePeerArgs) -> Result<(), WirePeerError> {
    use wasmbeat::wire::identity::{self, GenMethod};
    use wasmbeat::wire::EndpointConfig;
    let auth = parse_auth(&args.auth)?;
    let media = args
        .media
        .iter()
        .map(|m| parse_medium(m, args.udpport))
        .collect::<Result<Vec<_>, _>>()?;
    let identity = identity::load_or_create(&args.state_dir, GenMethod::File)?;
    let names: Vec<String> = media.iter().map(transport::link_name).collect();
    let nodes: Vec<&str> = args.nodes.iter().map(String::as_str).collect();
    let mut cfg = EndpointConfig::new(&args.node, &nodes, auth.keyring()?);
    cfg.seed = rand::random();
    cfg.flow_control = !args.no_flow_control;
    cfg.classic_auth_field = !args.netstring_only;
    cfg.limits.max_message = args.max_message;
    // The whole wire path lives on this one thread, so SCHED_RR applied
    // here covers sending and receiving heartbeats.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WirePeerError::Runtime)?;
    transport::realtime::apply_or_warn(&transport::realtime::RealtimeConfig {
        enabled: args.realtime,
        priority: None,
    });
    tracing::info!(node = %args.node, generation = identity.generation, "wire peer starting");
    rt.block_on(async move {
        let mut tr = Transport::open(&media).await?;
        tr.set_udp_classic(args.udp_classic);
        let ep = Endpoint::new(cfg, identity);
        let opts = PeerOptions {
            keepalive: Duration::from_millis(args.keepalive_ms),
            deadtime: Duration::from_millis(args.deadtime_ms),
            initdead: Duration::from_millis(args.initdead_ms),
            view_file: args.view.clone(),
            drop_inbound_every: args.drop_inbound_every.filter(|n| *n > 1),
            skip_send_every: args.skip_send_every.filter(|n| *n > 1),
        };
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let nodes = args.nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
        run(ep, tr, nodes, names, opts, shutdown).await;
        tracing::info!("wire peer stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medium_lines_parse_as_in_ha_cf() {
        assert_eq!(
            parse_medium("mcast eth0 239.0.0.1 694 1 0", 700).unwrap(),
            Medium::Mcast {
                iface: "eth0".into(),
                group: "239.0.0.1".parse().unwrap(),
                port: 694,
                ttl: 1,
                loop_: false
            }
        );
        assert_eq!(
            parse_medium("bcast eth0", 700).unwrap(),
            Medium::Bcast {
                iface: "eth0".into(),
                port: 700
            }
        );
        assert!(parse_medium("mcast eth0 10.0.0.1 694 1 0", 694).is_err());
        assert!(parse_medium("mcast eth0 239.0.0.1 694 5 0", 694).is_err());
        assert!(parse_medium("ucast eth0 nothost", 694).is_err());
        assert!(parse_medium("node alpha", 694).is_err());
        assert!(parse_medium("bcast eth0", 0).is_err());
        let serial = parse_medium("serial /dev/ttyS0", 694).unwrap();
        assert_eq!(transport::link_name(&serial), "/dev/ttyS0");
        assert_eq!(
            serial,
            Medium::Serial {
                device: "/dev/ttyS0".into(),
                baud: wasmbeat::config::hacf::DEFAULT_BAUD
            }
        );
        assert_eq!(
            parse_medium("serial /dev/ttyS1 115200", 694).unwrap(),
            Medium::Serial {
                device: "/dev/ttyS1".into(),
                baud: 115200
            }
        );
        assert!(parse_medium("serial /dev/ttyS1 fast", 694).is_err());
    }
}
