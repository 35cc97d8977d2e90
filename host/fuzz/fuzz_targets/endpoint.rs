//! Fuzz the whole receive path of a session (decode, verify, header,
//! replay, session handling) with a crc keyring, so the fuzzer can forge
//! valid signatures and reach the deeper states.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::config::AuthMethod;
use wasmbeat::wire::auth::Keyring;
use wasmbeat::wire::{Endpoint, EndpointConfig, Identity};
use wasmbeat::Millis;

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::single(1, AuthMethod::Crc);
    let cfg = EndpointConfig::new("a", &["a", "b"], ring);
    let mut ep = Endpoint::new(
        cfg,
        Identity {
            uuid: [1; 16],
            generation: 5,
        },
    );
    // Only this node counts as alive to the caller: b's silence is its own.
    let alive = |n: &str| n == "a";
    // Several packets separated by a 0xff byte, 100 ms apart.
    for (i, p) in data.split(|b| *b == 0xff).enumerate() {
        let t = 1_000 + i as u64 * 100;
        let _ = ep.receive(p, 0, Millis(t));
        let _ = ep.handle_timeout(Millis(t + 50), &alive);
        while ep.poll_transmit().is_some() {}
    }
});
