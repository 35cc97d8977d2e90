//! Fuzz ha.cf reading, with a fixed resolver (no network): diagnostics point
//! into the input and say something; a file without errors is printed and
//! read back to the same configuration with no errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use wasmbeat::config::hacf::Resolve;
use wasmbeat::config::{Diagnostic, HaCf};
use wasmbeat_fuzz::check_diagnostics;

/// Names starting with `x` do not resolve; others resolve to one IPv4 and
/// one IPv6 address, so both `ucast` and `ucast6` can succeed.
struct Fixed;

impl Resolve for Fixed {
    fn lookup(&self, host: &str) -> Vec<IpAddr> {
        if host.starts_with('x') {
            return Vec::new();
        }
        vec![
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 2]),
        ]
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cf, diags) = HaCf::read(text).resolve(&Fixed);
    check_diagnostics(text, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return;
    }
    let printed = cf.to_string();
    let (back, diags2) = HaCf::read(&printed).resolve(&Fixed);
    let errors: Vec<_> = diags2.iter().filter(|d| d.is_error()).collect();
    assert!(
        errors.is_empty(),
        "printed ha.cf has errors: {errors:?}\n--- input\n{text}\n--- printed\n{printed}"
    );
    // How a value was spelled is not a setting (see HaCf::written).
    let (mut a, mut b) = (cf, back);
    a.written.clear();
    b.written.clear();
    assert_eq!(a, b, "--- input\n{text}\n--- printed\n{printed}");
});
