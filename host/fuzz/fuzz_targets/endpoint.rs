//! Fuzz the whole receive path of a session (decode, verify, header,
//! replay, session handling) with a crc keyring, so the fuzzer can forge
//! valid signatures and reach the deeper states.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use wasmbeat::config::AuthMethod;
use wasmbeat::wire::auth::Keyring;
use wasmbeat::wire::identity::Identity;
use wasmbeat::wire::{Endpoint, EndpointConfig};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::single(1, AuthMethod::Crc);
    let cfg = EndpointConfig::new("a", &["a", "b"], ring, &["eth0"]);
    let mut ep = Endpoint::new(cfg, Identity { uuid: [1; 16], generation: 5 });
    let now = Instant::now();
    // Several packets separated by a 0xff byte.
    for (i, p) in data.split(|b| *b == 0xff).enumerate() {
        let _ = ep.receive(p, 0, now + Duration::from_millis(i as u64 * 100));
        let _ = ep.handle_timeout(now + Duration::from_millis(i as u64 * 100 + 50));
        while ep.poll_transmit().is_some() {}
    }
});
