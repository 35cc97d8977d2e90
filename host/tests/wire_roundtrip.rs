//! Property tests: encode -> decode round-trips for both framings, and the
//! decoder never panics on arbitrary or mutated input.

use proptest::prelude::*;
use wasmbeat::config::{AuthMethod, Secret};
use wasmbeat::wire::auth::Keyring;
use wasmbeat::wire::codec::{self, Limits};
use wasmbeat::wire::{Field, Message, Value};

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,15}"
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        (
            name(),
            proptest::collection::vec(
                any::<u8>().prop_filter("no NUL/0x13/newline in classic strings", |b| *b != b'\n'
                    && *b != 0x13),
                0..64
            )
        )
            .prop_map(|(n, v)| Field {
                name: n.into(),
                value: Value::Str(v)
            }),
        (name(), proptest::collection::vec(any::<u8>(), 0..32)).prop_map(|(n, v)| Field {
            name: n.into(),
            value: Value::Bin(v)
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    proptest::collection::vec(field(), 0..20).prop_map(|fields| Message { fields })
}

fn ring() -> Keyring {
    Keyring::single(3, AuthMethod::HmacSha256(Secret::new("k")))
}

proptest! {
    #[test]
    fn netstring_round_trips(m in message()) {
        let mut bytes = codec::encode_netstring_body(&m);
        let tok = ring().sign(&bytes);
        codec::append_trailer(&mut bytes, &tok);
        let f = codec::decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&f.message, &m);
        ring().verify(&f, &bytes).unwrap();
    }

    #[test]
    fn classic_round_trips(m in message()) {
        let mut m = m;
        ring().add_classic_auth(&mut m);
        let bytes = codec::encode_classic(&m);
        let f = codec::decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&f.message, &m);
        ring().verify(&f, &bytes).unwrap();
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes, &Limits::default());
    }

    #[test]
    fn mutations_are_rejected_or_unauthentic(m in message(), at in any::<usize>(), bit in 0u8..8) {
        let mut bytes = codec::encode_netstring_body(&m);
        let tok = ring().sign(&bytes);
        codec::append_trailer(&mut bytes, &tok);
        let i = at % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(f) = codec::decode(&bytes, &Limits::default()) {
            prop_assert!(ring().verify(&f, &bytes).is_err());
        }
    }
}
