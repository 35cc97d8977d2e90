//! Fuzz the wire decoder and both signature checks: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::wire::auth::{AuthKey, AuthMethod, Keyring};
use wasmbeat::wire::codec::{self, Limits};
use wasmbeat::wire::fields::Header;

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::single(AuthKey {
        index: 1,
        method: AuthMethod::Sha1(b"fuzz".to_vec()),
    });
    if let Ok(frame) = codec::decode(data, &Limits::default()) {
        let _ = ring.verify(&frame, data);
        let _ = Header::parse(&frame.message);
        // Whatever decodes must re-encode and decode to the same fields.
        let again = codec::encode_netstring_body(&frame.message);
        let back = codec::decode(&again, &Limits::default()).expect("re-encoded message decodes");
        assert_eq!(back.message, frame.message);
    }
});
