//! Fuzz the wire decoder and both signature checks: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::config::{AuthMethod, Secret};
use wasmbeat::wire::auth::Keyring;
use wasmbeat::wire::codec::{self, Limits};
use wasmbeat::wire::fields::Header;

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::single(1, AuthMethod::Sha1(Secret::new("fuzz")));
    if let Ok(frame) = codec::decode(data, &Limits::default()) {
        let _ = ring.verify(&frame, data);
        let _ = Header::parse(&frame.message);
        // Whatever decodes must re-encode and decode to the same fields.
        let again = codec::encode_netstring_body(&frame.message);
        let back = codec::decode(&again, &Limits::default()).expect("re-encoded message decodes");
        assert_eq!(back.message, frame.message);
    }
});
