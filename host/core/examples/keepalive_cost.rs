//! What one keepalive costs the engine, without the kernel: two [`Node`]s
//! wired back to back on a simulated clock exchange heartbeats for a while
//! (keepalive 50 ms, one group running on node1), and this prints the CPU
//! time and heap allocations per node per keepalive of the work the daemon
//! does each time it wakes: `handle`, `next_timeout` and `peer_state`.
//!
//! `cargo run --release -p wasmbeat-core --example keepalive_cost [SECONDS]`
//!
//! The idle-CPU row of `xtask bench` measures the whole daemon in a lab;
//! this isolates the engine's share of it (message building, signing,
//! framing, decoding, the core), so a change to that path shows here
//! without the noise of scheduling and the network stack.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmbeat_core::cluster::{AutoFailback, ClusterParams, GroupSpec, LinkId};
use wasmbeat_core::wire::keys::{AuthMethod, Secret};
use wasmbeat_core::wire::{EndpointConfig, Identity, Keyring};
use wasmbeat_core::{Input, Millis, Node, NodeConfig, Output};

/// Counts heap allocations, so the figure does not depend on the machine.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed through to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEEPALIVE_MS: u64 = 50;
const NAMES: [&str; 2] = ["node1", "node2"];
/// Simulated time before measuring: past initdead, the group started.
const WARM_UP: Millis = Millis(10_000);

fn config(i: usize) -> NodeConfig {
    let ms = Duration::from_millis;
    let mut endpoint = EndpointConfig::new(
        NAMES[i],
        &NAMES,
        Keyring::single(1, AuthMethod::Sha1(Secret::new("wasmbeat-bench"))),
    );
    endpoint.seed = i as u64 + 1;
    NodeConfig {
        cluster: ClusterParams {
            local: NAMES[i].into(),
            nodes: NAMES.iter().map(|n| n.to_string()).collect(),
            keepalive: ms(KEEPALIVE_MS),
            deadtime: ms(200),
            warntime: ms(100),
            initdead: ms(2_000),
            auto_failback: AutoFailback::On,
            groups: vec![GroupSpec {
                key: "IPaddr::10.79.0.100/24/eth0".into(),
                preferred: "node1".into(),
            }],
            generation: 1,
            ping: Default::default(),
            fencing: Default::default(),
            tiebreaker: false,
        },
        endpoint,
        identity: Identity {
            uuid: [i as u8 + 1; 16],
            generation: 1,
        },
        links: vec![LinkId("eth0".into())],
        monitors: Default::default(),
    }
}

/// The two nodes, the packets in flight, and what was measured.
struct Pair {
    nodes: [Node; 2],
    in_flight: VecDeque<(usize, Vec<u8>)>,
    measuring: bool,
    busy: Duration,
    wakes: u64,
    allocations: u64,
}

impl Pair {
    /// One wake-up of node `i`, as the daemon's loop does it.
    fn wake(&mut self, i: usize, now: Millis, input: Input) {
        let a0 = ALLOCATIONS.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let outputs = self.nodes[i].handle(now, input);
        let next = self.nodes[i].next_timeout(now);
        let peers = self.nodes[i].peer_state();
        let took = t0.elapsed();
        let allocated = ALLOCATIONS.load(Ordering::Relaxed) - a0;
        std::hint::black_box((next, peers));
        if self.measuring {
            self.busy += took;
            self.wakes += 1;
            self.allocations += allocated;
        }
        for out in outputs {
            match out {
                Output::Transmit(p) => self.in_flight.push_back((1 - i, p.netstring.to_vec())),
                Output::RunGroup { group, op } => {
                    let done = Input::GroupDone {
                        group,
                        op,
                        ok: true,
                        detail: "done".into(),
                    };
                    self.wake(i, now, done);
                }
                _ => {}
            }
        }
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS: a whole number"))
        .unwrap_or(600);
    let end = WARM_UP.plus(Duration::from_secs(seconds));
    let mut pair = Pair {
        nodes: [
            Node::new(config(0), Millis(0)),
            Node::new(config(1), Millis(0)),
        ],
        in_flight: VecDeque::new(),
        measuring: false,
        busy: Duration::ZERO,
        wakes: 0,
        allocations: 0,
    };
    let mut now = Millis(0);
    while now < end {
        pair.measuring = now >= WARM_UP;
        let due = [0, 1].map(|i| pair.nodes[i].next_timeout(now).unwrap_or(end));
        now = due[0].min(due[1]).max(now);
        for (i, d) in due.iter().enumerate() {
            if *d <= now {
                let tick = Input::Tick {
                    wall_secs: 1_700_000_000 + now.0 / 1000,
                    loadavg: None,
                };
                pair.wake(i, now, tick);
            }
        }
        // Zero latency: the peer answers within the same instant, as on a
        // veth pair.
        while let Some((to, bytes)) = pair.in_flight.pop_front() {
            pair.wake(to, now, Input::Packet { link: 0, bytes });
        }
    }
    let held = pair.nodes[0].cluster_status();
    assert!(
        held.groups
            .iter()
            .all(|g| g.owner.as_deref() == Some("node1")),
        "the pair did not settle with node1 holding the group: {held:?}"
    );
    let keepalives = (seconds * 1000 / KEEPALIVE_MS) as f64;
    let per_node = |x: f64| x / 2.0 / keepalives;
    println!(
        "engine work per node per keepalive ({seconds} s simulated, keepalive {KEEPALIVE_MS} ms): {:.1} us CPU, {:.1} heap allocations, {:.2} wake-ups",
        per_node(pair.busy.as_secs_f64() * 1e6),
        per_node(pair.allocations as f64),
        per_node(pair.wakes as f64),
    );
}
