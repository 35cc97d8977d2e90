//! Per-instance and per-call limits of the agent runtime, with real
//! components: memory summed over every memory of an instance, caps on
//! memories and core instances, bounded host calls, and agent log lines
//! that are capped, escaped and rate-limited. Each attack sits next to the
//! same component doing something ordinary, which must keep working; the
//! real agents' own needs are measured and printed, with the caps'
//! margin asserted.
mod support;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmbeat::grant::Grant;
use wasmbeat::runtime::limiter::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};
use wasmbeat::runtime::{builtin, AgentError, Runtime, RuntimeConfig};

fn agent_path(file: &str) -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join(file)
}

fn chatty() -> Vec<u8> {
    std::fs::read(agent_path("hostile_chatty.wasm")).unwrap()
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(support::shared_agent_cache()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn leb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A core module with `memories` memories of `pages` pages each.
fn memories_module(memories: u32, pages: u32) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let mut body = Vec::new();
    leb(memories.into(), &mut body);
    for _ in 0..memories {
        body.push(0x00); // limits: min only
        leb(pages.into(), &mut body);
    }
    section(5, &body, &mut m);
    m
}

/// Core modules defined at the top level of a component (their index
/// space is where an appended module lands).
fn top_level_core_modules(component: &[u8]) -> u32 {
    use wasmparser::{Parser, Payload};
    let mut depth = 0u32;
    let mut count = 0u32;
    for payload in Parser::new(0).parse_all(component) {
        match payload.unwrap() {
            Payload::ModuleSection { .. } => {
                if depth == 0 {
                    count += 1;
                }
                depth += 1;
            }
            Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentAliasSection(s) if depth == 0 => {
                for a in s {
                    if matches!(
                        a.unwrap(),
                        wasmparser::ComponentAlias::Outer {
                            kind: wasmparser::ComponentOuterAliasKind::CoreModule,
                            ..
                        }
                    ) {
                        count += 1;
                    }
                }
            }
            _ => {}
        }
    }
    count
}

/// `component` with `copies` instances of `module` added at its top level:
/// instantiating the component instantiates them too.
fn with_extra_instances(component: &[u8], module: &[u8], copies: u32) -> Vec<u8> {
    let index = top_level_core_modules(component);
    let mut out = component.to_vec();
    section(1, module, &mut out);
    let mut body = Vec::new();
    leb(copies.into(), &mut body);
    for _ in 0..copies {
        body.push(0x00); // instantiate
        leb(index.into(), &mut body);
        body.push(0); // no arguments
    }
    section(2, &body, &mut out);
    out
}

fn start(rt: &Runtime, wasm: &[u8], mode: &str) -> Result<(), AgentError> {
    let agent = rt.load_bytes("chatty", wasm).unwrap();
    support::block_on(async {
        let r = agent
            .instance_for("chatty", &[format!("mode={mode}")], Grant::none())
            .await?;
        r.start().await
    })
}

#[test]
fn memory_is_limited_across_all_memories_of_an_instance() {
    let rt = runtime();
    let base = chatty();
    // Control: the agent with three extra small memories runs.
    start(
        &rt,
        &with_extra_instances(&base, &memories_module(3, 1), 1),
        "normal",
    )
    .expect("three small extra memories are fine");
    // Attack 10 as reported: sixteen extra memories of 62.5 MiB (1000
    // pages) each, 1 GiB together, each under the 64 MiB limit on its own.
    // The memory count cap stops it before any is allocated.
    let t0 = Instant::now();
    let e = start(
        &rt,
        &with_extra_instances(&base, &memories_module(16, 1000), 1),
        "normal",
    )
    .unwrap_err();
    eprintln!("16 x 62.5 MiB: {e} after {:?}", t0.elapsed());
    assert!(
        matches!(&e, AgentError::Trap(m) if m.contains("memory count too high")),
        "{e}"
    );
    // Within the count cap, the total stops it: eight of them.
    let t0 = Instant::now();
    let e = start(
        &rt,
        &with_extra_instances(&base, &memories_module(8, 1000), 1),
        "normal",
    )
    .unwrap_err();
    eprintln!("8 x 62.5 MiB: {e} after {:?}", t0.elapsed());
    assert_eq!(e, AgentError::MemoryLimit { limit: 64 << 20 });
    // Spread over many instances of one memory each: the same total.
    let e = start(
        &rt,
        &with_extra_instances(&base, &memories_module(1, 500), 8),
        "normal",
    )
    .unwrap_err();
    assert_eq!(e, AgentError::MemoryLimit { limit: 64 << 20 });
}

#[test]
fn memories_and_instances_are_capped_in_number() {
    let rt = runtime();
    let base = chatty();
    let e = start(
        &rt,
        &with_extra_instances(&base, &memories_module(MAX_MEMORIES as u32, 0), 1),
        "normal",
    )
    .unwrap_err();
    eprintln!("{MAX_MEMORIES} extra empty memories: {e}");
    assert!(
        matches!(&e, AgentError::Trap(m) if m.contains("memory count too high") && m.contains("at most")),
        "{e}"
    );
    let empty = b"\0asm\x01\0\0\0".to_vec();
    let e = start(
        &rt,
        &with_extra_instances(&base, &empty, MAX_INSTANCES as u32),
        "normal",
    )
    .unwrap_err();
    eprintln!("{MAX_INSTANCES} extra empty instances: {e}");
    assert!(
        matches!(&e, AgentError::Trap(m) if m.contains("instance count too high")),
        "{e}"
    );
    // Control: a few more of each stay within the caps.
    start(
        &rt,
        &with_extra_instances(&base, &memories_module(2, 0), 4),
        "normal",
    )
    .expect("4 extra instances with 2 empty memories each");
}

/// What the runtime logs, captured for one closure on this thread.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let out = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

fn agent_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("wasmbeat::agent"))
        .collect()
}

#[test]
fn agent_log_lines_are_escaped_and_capped() {
    let rt = runtime();
    let wasm = chatty();
    // Control: an ordinary line arrives intact, on one line.
    let (r, log) = capture_logs(|| start(&rt, &wasm, "normal"));
    r.unwrap();
    assert!(
        agent_lines(&log)
            .iter()
            .any(|l| l.contains("wasmbeat::agent: chatty: an ordinary line, 42 bytes long. agent=")),
        "{log}"
    );
    // Attack 7: a newline followed by a fake line of wasmbeat's own, and
    // terminal escapes.
    let (r, log) = capture_logs(|| start(&rt, &wasm, "forged"));
    r.unwrap();
    eprintln!("forged: {}", agent_lines(&log).join("\n"));
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log:?}");
    assert!(
        !log.lines().any(|l| l.starts_with("2099-01-01")),
        "a forged line start got through: {log}"
    );
    assert!(
        log.contains("ok\\n2099-01-01T00:00:00.000000Z ERROR wasmbeat::cluster: FORGED node2 is dead\\r\\x1b[2K\\x1b[31mred"),
        "{log}"
    );
    // A 100 KiB line: cut to 4 KiB with its length.
    let (r, log) = capture_logs(|| start(&rt, &wasm, "big"));
    r.unwrap();
    let line = agent_lines(&log)
        .into_iter()
        .find(|l| l.contains("bbbb"))
        .expect("the big line is logged");
    eprintln!("100 KiB line logged as {} bytes", line.len());
    assert!(line.len() < 4096 + 200, "{}", line.len());
    assert!(
        line.contains("[102400 bytes, truncated] agent="),
        "{}",
        &line[line.len() - 90..]
    );
    // Attack 8: a 30 MiB line never reaches the host: the call traps once
    // the bytes it copies exceed the per-call budget.
    let t0 = Instant::now();
    let (r, log) = capture_logs(|| start(&rt, &wasm, "huge"));
    let e = r.unwrap_err();
    eprintln!(
        "30 MiB line: {e} after {:?}; {} bytes logged",
        t0.elapsed(),
        log.len()
    );
    assert!(
        matches!(&e, AgentError::Trap(m) if m.contains("more than 1048576 bytes to the host in one call")),
        "{e}"
    );
    assert!(log.len() < 64 * 1024, "{} bytes logged", log.len());
}

#[test]
fn agent_log_floods_are_rate_limited_and_counted() {
    let rt = runtime();
    let wasm = chatty();
    let t0 = Instant::now();
    let (r, log) = capture_logs(|| start(&rt, &wasm, "flood"));
    let took = t0.elapsed();
    r.unwrap();
    let logged = log
        .lines()
        .filter(|l| l.contains("chatty flood line"))
        .count();
    let suppressed: usize = log
        .lines()
        .filter(|l| l.contains("agent log line(s) suppressed"))
        .filter_map(|l| {
            let msg = l.split("wasmbeat::agent: ").nth(1)?;
            msg.split_whitespace().next()?.parse::<usize>().ok()
        })
        .sum();
    eprintln!("10,000 lines in {took:?}: {logged} logged, {suppressed} reported suppressed");
    // A burst of 100, then 20/s for as long as the operation took.
    let allowed = 100 + (took.as_secs_f64() * 20.0).ceil() as usize + 1;
    assert!(logged >= 100, "{logged}");
    assert!(logged <= allowed, "{logged} > {allowed}");
    assert_eq!(logged + suppressed, 10_000, "every dropped line is counted");
}

#[test]
fn real_agents_fit_the_caps_with_margin() {
    // (name, bytes): built-ins and the examples in other languages.
    let mut agents: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, bytes) in [
        ("IPaddr", builtin::IPADDR),
        ("named", builtin::NAMED),
        ("httpd", builtin::HTTPD),
        ("mysqld", builtin::MYSQLD),
        ("lsb", builtin::LSB),
    ] {
        agents.push((name.to_string(), bytes.to_vec()));
    }
    agents.push(("chatty".into(), chatty()));
    for f in ["python-tcpservice.wasm", "c-nginx.wasm"] {
        if let Some(p) = support::example_agent(f) {
            agents.push((f.to_string(), std::fs::read(p).unwrap()));
        }
    }
    let rt = runtime();
    for (name, wasm) in &agents {
        let instances = core_instances(wasm);
        let agent = rt.load_bytes(name, wasm).unwrap();
        let (r, log) = capture_logs(|| support::block_on(agent.meta_data()));
        r.unwrap_or_else(|e| panic!("{name}: meta-data under the caps: {e}"));
        let footprint = log
            .lines()
            .find(|l| l.contains("instance footprint"))
            .unwrap_or("(no footprint line)");
        let field = |k: &str| -> usize {
            footprint
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (peak, memories, tables) = (field("memory_peak"), field("memories"), field("tables"));
        eprintln!(
            "{name}: {instances} core instances (cap {MAX_INSTANCES}), {memories} memories (cap {MAX_MEMORIES}), \
             {tables} tables (cap {MAX_TABLES}), {:.1} MiB linear memory at meta-data",
            peak as f64 / 1048576.0
        );
        assert!(memories >= 1, "{name}: footprint not measured: {footprint}");
        assert!(
            instances * 2 <= MAX_INSTANCES,
            "{name}: {instances} instances"
        );
        assert!(memories * 2 <= MAX_MEMORIES, "{name}: {memories} memories");
        assert!(tables * 2 <= MAX_TABLES, "{name}: {tables} tables");
    }
}

/// Core module instantiations anywhere in a component.
fn core_instances(component: &[u8]) -> usize {
    use wasmparser::{Instance, Parser, Payload};
    let mut n = 0;
    for payload in Parser::new(0).parse_all(component) {
        if let Ok(Payload::InstanceSection(s)) = payload {
            n += s
                .into_iter()
                .filter(|i| matches!(i, Ok(Instance::Instantiate { .. })))
                .count();
        }
    }
    n
}

#[test]
fn the_default_agents_still_run_after_the_attacks() {
    // One runtime, attacks first, then the ordinary operation.
    let rt = runtime();
    let base = chatty();
    let _ = start(
        &rt,
        &with_extra_instances(&base, &memories_module(16, 1000), 1),
        "normal",
    );
    let _ = start(&rt, &base, "huge");
    let _ = start(&rt, &base, "flood");
    let t0 = Instant::now();
    start(&rt, &base, "normal").unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
