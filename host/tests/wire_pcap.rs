//! The wire codec and authentication against real heartbeat 3.0.6 packets
//! (spec §5.9: the lab capture, key `wasmbeat-test-key`, `auth 1 / 1 sha1`).

use wasmbeat::config::{AuthMethod, Secret};
use wasmbeat::wire::auth::{classic_auth_data, Keyring};
use wasmbeat::wire::codec::{self, Format, Limits};
use wasmbeat::wire::fields::{Header, F_AUTH};

const PCAP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/heartbeat-3.0.6-lab-capture.pcap"
);

/// UDP payloads to/from port 694 in a classic little/big-endian pcap with
/// Ethernet link type, parsed by hand (no IP options beyond IHL, no frags).
fn udp_payloads(data: &[u8]) -> Vec<Vec<u8>> {
    assert!(data.len() >= 24, "pcap too short");
    let le = match &data[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        m => panic!("not a pcap file: magic {m:02x?}"),
    };
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    assert_eq!(u32_at(data, 20), 1, "expected Ethernet link type");
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let incl = u32_at(data, pos + 8) as usize;
        let frame = &data[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        if ip[9] != 17 {
            continue;
        }
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let udp = &ip[ihl..total];
        let (sport, dport) = (
            u16::from_be_bytes([udp[0], udp[1]]),
            u16::from_be_bytes([udp[2], udp[3]]),
        );
        if sport == 694 || dport == 694 {
            let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
            out.push(udp[8..ulen].to_vec());
        }
    }
    out
}

fn keyring(secret: &[u8]) -> Keyring {
    Keyring::single(1, AuthMethod::Sha1(Secret::new(secret)))
}

#[test]
fn every_captured_packet_decodes_verifies_and_reencodes() {
    let data = std::fs::read(PCAP).unwrap_or_else(|e| panic!("{PCAP}: {e}"));
    let packets = udp_payloads(&data);
    let ring = keyring(b"wasmbeat-test-key");
    let wrong = keyring(b"wasmbeat-test-kez");
    let limits = Limits::default();
    let (mut netstring, mut classic, mut inner_auth) = (0, 0, 0);
    let mut types = std::collections::BTreeMap::<String, usize>::new();
    for (i, p) in packets.iter().enumerate() {
        let frame = codec::decode(p, &limits).unwrap_or_else(|e| panic!("packet {i}: {e}"));
        ring.verify(&frame, p)
            .unwrap_or_else(|e| panic!("packet {i}: {e}: {}", String::from_utf8_lossy(p)));
        assert!(
            wrong.verify(&frame, p).is_err(),
            "packet {i} verified with a wrong key"
        );
        let header = Header::parse(&frame.message).unwrap_or_else(|e| panic!("packet {i}: {e}"));
        *types.entry(header.msg_type.clone()).or_default() += 1;
        match frame.format {
            Format::Netstring => {
                netstring += 1;
                let mut again = codec::encode_netstring_body(&frame.message);
                assert_eq!(
                    &again[..],
                    &p[..frame.signed_len],
                    "packet {i} body re-encoding"
                );
                codec::append_trailer(&mut again, &ring.sign(&p[..frame.signed_len]));
                assert_eq!(
                    &again[..],
                    &p[..],
                    "packet {i} full re-encoding (with our signature)"
                );
                // Stock nodes also carry the classic signature inside.
                if let Some(tok) = frame.message.get_str(F_AUTH) {
                    inner_auth += 1;
                    ring.verify_token(tok, &classic_auth_data(&frame.message))
                        .unwrap_or_else(|e| panic!("packet {i} inner auth: {e}"));
                    let mut resigned = frame.message.clone();
                    ring.add_classic_auth(&mut resigned);
                    assert_eq!(resigned, frame.message, "packet {i} inner auth re-signing");
                }
            }
            Format::Classic => {
                classic += 1;
                // Classic re-encoding: we always append the NUL like heartbeat.
                let again = codec::encode_classic(&frame.message);
                let trimmed = p.strip_suffix(b"\0").unwrap_or(p);
                assert_eq!(
                    &again[..again.len() - 1],
                    trimmed,
                    "packet {i} classic re-encoding"
                );
            }
        }
        // Any single flipped byte in the signed part must be caught.
        let mut t = p.clone();
        let at = 5 + (i * 7) % (p.len() / 2);
        t[at] ^= 0x01;
        if let Ok(f) = codec::decode(&t, &limits) {
            assert!(
                ring.verify(&f, &t).is_err(),
                "packet {i}: tampered byte {at} verified"
            );
        }
    }
    eprintln!(
        "capture: {} heartbeat packets, {netstring} netstring ({inner_auth} with inner auth), {classic} classic; types {types:?}",
        packets.len()
    );
    assert!(
        packets.len() >= 800,
        "expected the full capture, got {}",
        packets.len()
    );
    assert!(
        netstring >= 800 && inner_auth >= 700,
        "netstring {netstring}, inner auth {inner_auth}"
    );
    assert!(
        classic > 0,
        "the capture holds the classic test peer's packets"
    );
    assert!(types.contains_key("NS_ackmsg") && types.contains_key("repnodes"));
}

#[test]
fn spec_test_vector_status_and_classic() {
    // §5.9 classic form sent by the test peer and accepted by the real node.
    let classic: &[u8] = b">>>\nt=status\nst=active\ndt=1770\nprotocol=1\nsrc=node2\n(1)srcuuid=uyYUWrG2R16+WGK47thzUg==\nseq=4\nhg=6b05fe94\nts=6b05fe94\nld=0.00 0.00 0.00 1/1 1\nttl=3\nauth=1 d130915c622f8c3f0fb4f9ceae7c552c3ed3f88a\n<<<\n\x00";
    assert_eq!(classic.len(), 201);
    let f = codec::decode(classic, &Limits::default()).unwrap();
    keyring(b"wasmbeat-test-key").verify(&f, classic).unwrap();
    assert!(keyring(b"other").verify(&f, classic).is_err());
    let h = Header::parse(&f.message).unwrap();
    assert_eq!(
        (h.src.as_str(), h.seq, h.generation),
        ("node2", Some(4), 0x6b05fe94)
    );
    assert_eq!(codec::encode_classic(&f.message), classic);
}
