//! Fuzz the control socket's request decoding with whatever bytes a local
//! client can send: a request that decodes re-encodes as one line that
//! decodes to the same request; a refusal says why, and the daemon's
//! answer to it is one JSON line that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbeat::control::protocol::MAX_REQUEST_LINE;
use wasmbeat::control::{Request, Response};

fuzz_target!(|data: &[u8]| {
    // What the server reads: up to the first newline, at most MAX_REQUEST_LINE bytes.
    let data = &data[..data.len().min(MAX_REQUEST_LINE)];
    let line = match data.iter().position(|b| *b == b'\n') {
        Some(i) => &data[..=i],
        None => data,
    };
    match Request::decode(line) {
        Ok(req) => {
            let out = req.encode();
            assert_eq!(out.matches('\n').count(), 1);
            assert!(out.len() <= MAX_REQUEST_LINE);
            assert_eq!(
                Request::decode(out.as_bytes()).expect("re-encoded request decodes"),
                req
            );
        }
        Err(e) => {
            let answer = Response::Error {
                message: e.to_string(),
            };
            assert!(!e.to_string().trim().is_empty());
            let out = answer.encode();
            assert_eq!(out.matches('\n').count(), 1, "{out:?}");
            let back: Response = serde_json::from_str(&out).expect("answer reads back");
            assert_eq!(back, answer);
        }
    }
});
