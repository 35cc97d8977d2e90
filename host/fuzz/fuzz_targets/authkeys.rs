//! Fuzz authkeys parsing: a refusal carries at least one error, every
//! diagnostic points into the input and says something; an accepted file
//! selects a listed key, builds a keyring, and is printed and read back to
//! the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::config::{AuthKeys, Diagnostic};
use wasmbeat_fuzz::check_diagnostics;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match AuthKeys::parse(text) {
        Err(diags) => {
            assert!(diags.iter().any(Diagnostic::is_error), "{diags:?}");
            check_diagnostics(text, &diags);
        }
        Ok((keys, diags)) => {
            assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
            check_diagnostics(text, &diags);
            assert_eq!(keys.key(keys.active_index), Some(&keys.method));
            let ring = keys.keyring().expect("an accepted file makes a keyring");
            let token = ring.sign(b"x");
            ring.verify_token(&token, b"x")
                .expect("own signature verifies");
            let printed = keys.to_string();
            let (back, _) = AuthKeys::parse(&printed).unwrap_or_else(|d| {
                panic!("printed authkeys refused: {d:?}\n--- input\n{text}\n--- printed\n{printed}")
            });
            assert_eq!(back.active_index, keys.active_index);
            assert_eq!(back.method, keys.method);
            let strip = |k: &AuthKeys| -> Vec<_> {
                k.keys.iter().map(|k| (k.index, k.method.clone())).collect()
            };
            assert_eq!(
                strip(&back),
                strip(&keys),
                "--- input\n{text}\n--- printed\n{printed}"
            );
        }
    }
});
