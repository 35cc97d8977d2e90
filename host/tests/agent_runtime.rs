//! The agent runtime with real components built from `agents/`: the
//! compiled-component cache, limits (deadline, memory) and denials that do
//! not need a network lab.
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmbeat::config::token::AgentRef;
use wasmbeat::grant::{CommandGrant, Grant};
use wasmbeat::runtime::{
    AgentError, CacheUse, Deadlines, LoadError, Runtime, RuntimeConfig, Status,
};

fn agent_path(file: &str) -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join(file)
}

fn config(cache: Option<&support::TempDir>) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: cache.map(|c| c.0.clone()),
        deadlines: Deadlines {
            start: Duration::from_secs(1),
            ..Deadlines::default()
        },
        ..RuntimeConfig::default()
    }
}

/// A cache miss is compiled by the `wasmbeat-compile` helper in a child
/// process (the daemon has no compiler) into the file a later load maps.
#[test]
fn cache_miss_is_compiled_by_the_helper_in_a_child_process() {
    let cache = support::TempDir::new("childcache");
    let rt = Runtime::new(RuntimeConfig {
        compiler: Some(PathBuf::from(env!("CARGO_BIN_EXE_wasmbeat-compile"))),
        ..config(Some(&cache))
    })
    .unwrap();
    let a = rt.load(&AgentRef::Name("IPaddr".into()), &cache.0).unwrap();
    assert_eq!(a.cache_use(), CacheUse::Miss);
    assert_eq!(support::block_on(a.meta_data()).unwrap().name, "IPaddr");
    let written: Vec<_> = std::fs::read_dir(&cache.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    // The default helper (the one beside the binaries) gives the same key.
    let rt2 = Runtime::new(config(Some(&cache))).unwrap();
    let b = rt2
        .load(&AgentRef::Name("IPaddr".into()), &cache.0)
        .unwrap();
    assert_eq!(b.cache_use(), CacheUse::Hit);
    // Without a cache the helper's output comes through a pipe.
    let c = Runtime::new(config(None))
        .unwrap()
        .load(&AgentRef::Name("named".into()), &cache.0)
        .unwrap();
    assert_eq!(c.cache_use(), CacheUse::Disabled);
    assert_eq!(support::block_on(c.meta_data()).unwrap().name, "named");
}

/// With no helper there is no compiling at all (the daemon has no compiler
/// to fall back on); a helper anyone but root could have replaced, or one
/// whose output is not a component for this engine, is refused: its
/// output would run as machine code in the daemon.
#[test]
fn a_missing_untrusted_or_lying_helper_is_a_load_error() {
    use std::os::unix::fs::PermissionsExt;
    let load = |compiler: PathBuf, cache: Option<&support::TempDir>| {
        Runtime::new(RuntimeConfig {
            compiler: Some(compiler),
            ..config(cache)
        })
        .unwrap()
        .load(
            &AgentRef::Name("IPaddr".into()),
            std::path::Path::new("/nonexistent"),
        )
        .err()
        .expect("no usable helper, no agent")
    };
    let e = load(PathBuf::from("/nonexistent/wasmbeat-compile"), None);
    assert!(
        matches!(&e, LoadError::Compiler { reason, .. } if reason.contains("not found")),
        "{e}"
    );

    let dir = support::TempDir::new("helpers");
    let writable = dir.0.join("group-writable");
    std::fs::copy(env!("CARGO_BIN_EXE_wasmbeat-compile"), &writable).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o775)).unwrap();
    let e = load(writable, None);
    assert!(
        matches!(&e, LoadError::Untrusted(_)) && e.to_string().contains("agent compiler"),
        "{e}"
    );

    let liar = dir.0.join("liar");
    std::fs::write(
        &liar,
        "#!/bin/sh\ncat >/dev/null\necho 'not machine code'\n",
    )
    .unwrap();
    std::fs::set_permissions(&liar, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = load(liar.clone(), None);
    assert!(
        matches!(&e, LoadError::Compiler { reason, .. } if reason.contains("does not load")),
        "{e}"
    );
    // Told to fill a cache, it exits 0 and writes nothing.
    let cache = support::TempDir::new("liar-cache");
    let e = load(liar, Some(&cache));
    assert!(matches!(&e, LoadError::Compiler { .. }), "{e}");
}

#[test]
fn second_load_uses_the_compiled_component_cache() {
    let cache = support::TempDir::new("cache");
    let rt = Runtime::new(config(Some(&cache))).unwrap();
    let t0 = Instant::now();
    let first = rt.load(&AgentRef::Name("IPaddr".into()), &cache.0).unwrap();
    let compile = t0.elapsed();
    assert_eq!(first.cache_use(), CacheUse::Miss);
    let files: Vec<_> = std::fs::read_dir(&cache.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one cache file expected, got {files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"));
    let mtime = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A new runtime (as a new process would) finds and maps the cached code.
    let rt2 = Runtime::new(config(Some(&cache))).unwrap();
    let t1 = Instant::now();
    let second = rt2
        .load(&AgentRef::Name("IPaddr2".into()), &cache.0)
        .unwrap();
    let cached = t1.elapsed();
    assert_eq!(second.cache_use(), CacheUse::Hit);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        mtime,
        "cache file rewritten"
    );
    assert!(
        cached < compile,
        "cached load {cached:?} not faster than compile {compile:?}"
    );
    // And the cached component works.
    let meta = support::block_on(second.meta_data()).unwrap();
    assert_eq!(meta.name, "IPaddr");
    assert_eq!(meta.params[0].name, "ip");
}

#[test]
fn corrupt_cache_file_is_replaced_not_fatal() {
    let cache = support::TempDir::new("cache-bad");
    let rt = Runtime::new(config(Some(&cache))).unwrap();
    rt.load(&AgentRef::Name("IPaddr".into()), &cache.0).unwrap();
    let file = std::fs::read_dir(&cache.0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"garbage").unwrap();
    let again = rt.load(&AgentRef::Name("IPaddr".into()), &cache.0).unwrap();
    assert_eq!(again.cache_use(), CacheUse::Miss);
    assert_eq!(support::block_on(again.meta_data()).unwrap().name, "IPaddr");
}

/// The looping agent (its start never returns) as one resource.
async fn looper(rt: &Runtime) -> wasmbeat::runtime::Resource {
    let agent = rt.load_file(&agent_path("hostile_looper.wasm")).unwrap();
    agent
        .instance_for("looper", &[], Grant::none())
        .await
        .unwrap()
}

#[test]
fn infinite_loop_times_out_within_twice_its_deadline() {
    let rt = Runtime::new(config(None)).unwrap();
    support::block_on(async {
        let res = looper(&rt).await;
        let t0 = Instant::now();
        let err = res.start().await.unwrap_err();
        let took = t0.elapsed();
        assert!(matches!(err, AgentError::Timeout(_)), "{err:?}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(2),
            "took {took:?}"
        );
        // The instance is discarded; the agent still answers other operations.
        assert_eq!(res.monitor().await.unwrap(), Status::NotRunning);
        // A panic is a typed crash error carrying the agent's message.
        match res.stop().await {
            Err(AgentError::Trap(m)) => assert!(m.contains("looper refuses to stop"), "{m}"),
            other => panic!("expected a trap, got {other:?}"),
        }
    });
}

#[test]
fn one_gib_allocation_hits_the_memory_limit() {
    let rt = Runtime::new(config(None)).unwrap();
    let agent = rt.load_file(&agent_path("hostile_hog.wasm")).unwrap();
    support::block_on(async {
        let res = agent.instance_for("hog", &[], Grant::none()).await.unwrap();
        let err = res.start().await.unwrap_err();
        assert_eq!(err, AgentError::MemoryLimit { limit: 64 << 20 });
        assert_eq!(res.monitor().await.unwrap(), Status::NotRunning);
    });
}

/// Operations run on fiber stacks the instance pool keeps and reuses
/// (runtime/slots.rs): an agent that recurses without end is trapped at
/// the wasm stack limit, the host lives on, and deep but bounded calls
/// keep working on the stacks kept after that trap.
#[test]
fn endless_recursion_traps_and_the_reused_stacks_still_run_deep_calls() {
    let rt = Runtime::new(config(None)).unwrap();
    let agent = rt.load_file(&agent_path("hostile_deep.wasm")).unwrap();
    support::block_on(async {
        let res = agent
            .instance_for("deep", &[], Grant::none())
            .await
            .unwrap();
        // The control: deep calls on stacks no trap has used.
        assert_eq!(res.monitor().await.unwrap(), Status::Running, "fresh");
        for round in 0..3 {
            match res.start().await {
                Err(AgentError::Trap(m)) => {
                    assert!(m.contains("stack"), "round {round}: {m}")
                }
                other => panic!("round {round}: expected a stack trap, got {other:?}"),
            }
            // Several, on stacks kept from the trapped start and before.
            let (a, b, c) = tokio::join!(res.monitor(), res.monitor(), res.monitor());
            for r in [a, b, c] {
                assert_eq!(r.unwrap(), Status::Running, "round {round}");
            }
        }
    });
}

/// The pool has a fixed number of instance slots and an instantiation
/// beyond them fails. The runtime's gate makes an operation past that wait
/// for a slot within its deadline instead: with every slot held by a
/// looping start, monitors end in a timeout that says no slot was free
/// (without the gate they fail to instantiate), and once the loops are cut
/// off at their deadline the agent answers again.
#[test]
fn operations_past_the_instance_slots_wait_for_one_within_their_deadline() {
    let rt = Runtime::new(RuntimeConfig {
        deadlines: Deadlines {
            start: Duration::from_secs(3),
            monitor: Duration::from_millis(500),
            ..Deadlines::default()
        },
        ..config(None)
    })
    .unwrap();
    support::block_on(async {
        let res = looper(&rt).await;
        let slots = wasmbeat::runtime::slots::SLOTS as usize;
        let holders = futures::future::join_all((0..slots).map(|_| res.start()));
        let late = async {
            // Every slot is taken by now: each start loops for 3 s, and
            // on this one thread each runs up to an epoch tick (10 ms)
            // before the next is first polled.
            tokio::time::sleep(Duration::from_secs(1)).await;
            futures::future::join_all((0..4).map(|_| res.monitor())).await
        };
        let (held, late) = tokio::join!(holders, late);
        for r in held {
            match r {
                Err(AgentError::Timeout(m)) => assert!(m.contains("exceeded its deadline"), "{m}"),
                other => panic!("a looping start: expected a timeout, got {other:?}"),
            }
        }
        for r in late {
            match r {
                Err(AgentError::Timeout(m)) => {
                    assert!(m.contains("no free agent instance slot"), "{m}")
                }
                other => {
                    panic!("a monitor with every slot taken: expected a timeout, got {other:?}")
                }
            }
        }
        assert_eq!(res.monitor().await.unwrap(), Status::NotRunning);
    });
}

#[test]
fn spawning_without_a_grant_is_denied_and_with_one_works() {
    let rt = Runtime::new(config(None)).unwrap();
    let agent = rt.load_file(&agent_path("hostile_spawner.wasm")).unwrap();
    support::block_on(async {
        let args = ["check".to_string()];
        let res = agent
            .instance_for("spawner", &args, Grant::none())
            .await
            .unwrap();
        let e = res.start().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::Denied(m) if m.contains("commands.check = [")),
            "{e}"
        );
        assert!(matches!(res.monitor().await, Err(AgentError::Denied(_))));

        let granted = Grant {
            commands: vec![CommandGrant::direct("check", &["/bin/true"])],
            ..Grant::none()
        };
        let res = agent.instance_for("spawner", &args, granted).await.unwrap();
        assert_eq!(
            res.monitor().await.unwrap(),
            Status::Running,
            "the granted command /bin/true runs and exits 0"
        );
        // Granting one command does not grant another.
        let other = agent
            .instance_for(
                "spawner",
                &["shell".to_string()],
                Grant {
                    commands: vec![CommandGrant::direct("check", &["/bin/true"])],
                    ..Grant::none()
                },
            )
            .await
            .unwrap();
        assert!(matches!(other.monitor().await, Err(AgentError::Denied(_))));
    });
}

#[test]
fn unknown_agents_and_bad_components_are_load_errors() {
    let dir = support::TempDir::new("cfg");
    let rt = Runtime::new(config(None)).unwrap();
    let e = rt
        .load(&AgentRef::Name("nosuch".into()), &dir.0)
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("resource.d/nosuch.wasm"), "{e}");
    std::fs::create_dir_all(dir.0.join("resource.d")).unwrap();
    std::fs::write(dir.0.join("resource.d/bad.wasm"), b"\0asm junk").unwrap();
    let e = rt
        .load(&AgentRef::Name("bad".into()), &dir.0)
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::Invalid { .. }), "{e}");
    // A component found in resource.d by name loads and runs.
    std::fs::copy(
        agent_path("hostile_looper.wasm"),
        dir.0.join("resource.d/looper.wasm"),
    )
    .unwrap();
    let a = rt.load(&AgentRef::Name("looper".into()), &dir.0).unwrap();
    assert!(!a.is_builtin());
    assert_eq!(support::block_on(a.meta_data()).unwrap().name, "looper");
}

#[test]
fn ipaddr_argument_errors_are_invalid_args() {
    let rt = Runtime::new(config(None)).unwrap();
    let agent = rt
        .load(
            &AgentRef::Name("IPaddr".into()),
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
    support::block_on(async {
        // (A dotted netmask that is not contiguous is the grant's call:
        // IPaddr reads it as heartbeat's findif, IPaddr2 refuses; see grant.)
        for bad in [
            "10.0.0.1/33",
            "10.0.0.1/0",
            "nonsense",
            "10.0.0.1/24/eth0/10.0.0.255/x",
            "fd77::1/64/eth0/fd77::ff",
        ] {
            let res = agent
                .instance_for("t", &[bad.to_string()], Grant::none())
                .await
                .unwrap();
            let err = res.validate().await.unwrap_err();
            assert!(matches!(err, AgentError::InvalidArgs(_)), "{bad}: {err:?}");
        }
        let err = agent
            .instance_for("t", &[], Grant::none())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, AgentError::InvalidArgs(_)), "{err:?}");
    });
}

/// A component of a narrow world (`log-only-agent`, wit/agent.wit) imports
/// only `log` of the host's interfaces, and the host, which links every
/// interface of `resource-agent`, loads it and runs each operation: its
/// results (running, not-running, failed, invalid-args) cross the boundary.
#[test]
fn narrow_world_component_loads_and_runs() {
    let wasm = agent_path("narrow_log_only.wasm");
    let bytes = std::fs::read(&wasm).unwrap();
    // `types` carries the records the exported `agent` interface uses.
    assert_eq!(support::agent_interfaces(&bytes), ["log", "types"]);

    let rt = Runtime::new(config(None)).unwrap();
    let agent = rt.load_file(&wasm).unwrap();
    support::block_on(async {
        let meta = agent.meta_data().await.unwrap();
        assert_eq!(meta.name, "narrow");
        assert_eq!(meta.params[0].name, "mode");

        let up = agent
            .instance_for("narrow", &["up".to_string()], Grant::none())
            .await
            .unwrap();
        up.validate().await.unwrap();
        up.start().await.unwrap();
        assert_eq!(up.monitor().await.unwrap(), Status::Running);
        up.stop().await.unwrap();

        let down = agent
            .instance_for("narrow", &[], Grant::none())
            .await
            .unwrap();
        assert_eq!(down.monitor().await.unwrap(), Status::NotRunning);

        let broken = agent
            .instance_for("narrow", &["broken".to_string()], Grant::none())
            .await
            .unwrap();
        let e = broken.stop().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::Failed(m) if m.contains("mode broken")),
            "{e}"
        );

        let odd = agent
            .instance_for("narrow", &["sideways".to_string()], Grant::none())
            .await
            .unwrap();
        let e = odd.validate().await.unwrap_err();
        assert!(
            matches!(&e, AgentError::InvalidArgs(m) if m.contains("sideways")),
            "{e}"
        );
    });
}
