//! Fuzz agents.toml parsing: every diagnostic points into the input and
//! says something; what is granted is well formed (commands name an
//! absolute program, notify hooks too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::config::Policy;
use wasmbeat_fuzz::check_diagnostics;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (policy, diags) = Policy::parse(text);
    check_diagnostics(text, &diags);
    for section in policy.agents.values().chain(policy.resources.values()) {
        for c in &section.commands {
            let first = c.argv.first().expect("a granted command has an argv");
            if !first.has_holes() {
                assert!(first.source().starts_with('/'), "{c:?}");
            }
            assert!(!c.name.is_empty());
        }
        if let Some(m) = section.monitor {
            assert!(!m.is_zero());
        }
    }
    for hook in &policy.notify {
        assert!(
            hook.argv.first().is_some_and(|p| p.starts_with('/')),
            "{hook:?}"
        );
        assert!(!hook.timeout.is_zero());
    }
    for name in policy.lsb.keys() {
        assert!(!name.is_empty() && !name.contains('/'));
    }
});
