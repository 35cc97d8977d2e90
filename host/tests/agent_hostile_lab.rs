//! Hostile agents against one runtime instance in a network namespace: a
//! netlink call outside the grant is denied and changes nothing, and after
//! a looping, a memory-hungry, a thieving and a spawning agent the same
//! runtime still runs the IPaddr agent correctly.
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{block_on_in, Lab};
use wasmbeat::config::token::ResourceToken;
use wasmbeat::grant::{AddressGrant, Grant, Policy};
use wasmbeat::runtime::bind::bind_resource;
use wasmbeat::runtime::{AgentError, Deadlines, Runtime, RuntimeConfig, Status};

fn agent_path(file: &str) -> PathBuf {
    PathBuf::from(env!("WASMBEAT_AGENTS_DIR")).join(file)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn hostile_agents_are_contained_and_the_host_keeps_working() {
    if !support::lab_available("hostile_agents_are_contained_and_the_host_keeps_working") {
        return;
    }
    let lab = Lab::new("hos", &["10.77.66.1/24", "10.77.66.2/24"]);
    let a = &lab.nodes[0];
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: None,
        deadlines: Deadlines {
            start: Duration::from_millis(800),
            ..Deadlines::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    let looper = rt.load_file(&agent_path("hostile_looper.wasm")).unwrap();
    let hog = rt.load_file(&agent_path("hostile_hog.wasm")).unwrap();
    let thief = rt.load_file(&agent_path("hostile_thief.wasm")).unwrap();
    let spawner = rt.load_file(&agent_path("hostile_spawner.wasm")).unwrap();

    block_on_in(a, || async {
        // Granted 10.77.66.10 on eth0, tries to add 10.77.66.99.
        let grant = Grant {
            netlink_read: true,
            addresses: vec![AddressGrant::parse("10.77.66.10/24/eth0").unwrap()],
            ..Grant::none()
        };
        let r = thief
            .instance_for(
                "thief::10.77.66.10",
                &s(&["10.77.66.10", "10.77.66.99", "eth0"]),
                grant.clone(),
            )
            .await
            .unwrap();
        match r.start().await {
            Err(AgentError::Denied(m)) => assert!(m.contains("10.77.66.99"), "{m}"),
            other => panic!("expected denied, got {other:?}"),
        }
        // Positive control: its own address works, and goes where the
        // grant says (eth0), whatever the agent names.
        let r = thief
            .instance_for(
                "thief::10.77.66.10",
                &s(&["10.77.66.10", "10.77.66.10", "lo"]),
                grant,
            )
            .await
            .unwrap();
        r.start().await.unwrap();
        r.stop().await.ok();

        let t0 = Instant::now();
        let r = looper
            .instance_for("looper", &[], Grant::none())
            .await
            .unwrap();
        assert!(matches!(r.start().await, Err(AgentError::Timeout(_))));
        assert!(
            t0.elapsed() < Duration::from_millis(1600),
            "{:?}",
            t0.elapsed()
        );

        let r = hog.instance_for("hog", &[], Grant::none()).await.unwrap();
        assert!(matches!(
            r.start().await,
            Err(AgentError::MemoryLimit { .. })
        ));

        let r = spawner
            .instance_for("spawner", &s(&["sleep"]), Grant::none())
            .await
            .unwrap();
        assert!(matches!(r.start().await, Err(AgentError::Denied(_))));

        // The same runtime still runs IPaddr correctly.
        let t = ResourceToken::parse("IPaddr::10.77.66.10/24/eth0").unwrap();
        let r = bind_resource(&rt, &t, std::path::Path::new("/x"), &Policy::default())
            .await
            .unwrap();
        r.start().await.unwrap();
        assert_eq!(r.monitor().await.unwrap(), Status::Running);
        rt.wait_background().await;
    });
    let addrs = a.addrs("eth0");
    assert!(
        !addrs.contains("10.77.66.99"),
        "denied address was added: {addrs}"
    );
    assert!(addrs.contains("10.77.66.10/24"), "{addrs}");
    assert!(!a.addrs("lo").contains("10.77.66.10"));
}
