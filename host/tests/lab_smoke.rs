//! The lab helpers themselves: two namespaces on one bridge can ping each
//! other, and everything is gone after drop.
mod support;

#[test]
fn two_nodes_on_a_bridge_reach_each_other_and_are_cleaned_up() {
    if !support::lab_available("two_nodes_on_a_bridge_reach_each_other_and_are_cleaned_up") {
        return;
    }
    let names;
    {
        let lab = support::Lab::new("smoke", &["10.77.9.1/24", "10.77.9.2/24"]);
        names = vec![
            lab.switch.name.clone(),
            lab.nodes[0].name.clone(),
            lab.nodes[1].name.clone(),
        ];
        let out = lab.nodes[0].exec("ping", &["-c", "1", "-W", "2", "10.77.9.2"]);
        assert!(
            out.status.success(),
            "ping failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(lab.nodes[1].addrs("eth0").contains("10.77.9.2/24"));
    }
    let list = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for n in names {
        assert!(!list.contains(&n), "namespace {n} left behind");
    }
}
