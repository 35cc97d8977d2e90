//! Fuzz haresources parsing: diagnostics point into the input and say
//! something; the groups parsed are printed and read back to the same
//! groups with no diagnostic at all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::config::Haresources;
use wasmbeat_fuzz::check_diagnostics;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (h, diags) = Haresources::parse(text);
    check_diagnostics(text, &diags);
    for g in &h.groups {
        assert!(!g.resources.is_empty() && g.resources.len() == g.positions.len());
        let lines = wasmbeat_fuzz::line_count(text);
        assert!((1..=lines).contains(&g.line));
        for &(line, col) in &g.positions {
            assert!((g.line..=lines).contains(&line) && col >= 1, "{g:?}");
        }
    }
    let printed = h.to_string();
    let (back, diags2) = Haresources::parse(&printed);
    assert!(
        diags2.is_empty(),
        "printed haresources has diagnostics: {diags2:?}\n--- input\n{text}\n--- printed\n{printed}"
    );
    assert_eq!(h, back, "--- input\n{text}\n--- printed\n{printed}");
    // check_nodes reports exactly the groups whose node is not listed.
    let nodes: Vec<String> = h
        .groups
        .iter()
        .take(1)
        .map(|g| g.preferred_node.clone())
        .collect();
    let unknown = h.check_nodes(&nodes);
    check_diagnostics(text, &unknown);
});
