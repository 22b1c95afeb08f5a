//! The stored-head views and the body decoder on arbitrary bytes: no panic, and decoded
//! output within its limit.
//!
//! Run: `cargo +nightly fuzz run heads corpus/heads seeds/heads -- -dict=http1.dict`
//! (from `dataplane/http1/fuzz`; `seeds/` holds hand-written starting inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_http1::{
    decode_body, looks_like_request, looks_like_response, parse_request_head, parse_response_head,
};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_request(data);
    let _ = looks_like_response(data);
    if let Ok(h) = parse_request_head(data) {
        assert!(h.version <= 1);
        let _ = decode_body(&h.headers, data, 4096);
    }
    if let Ok(h) = parse_response_head(data) {
        assert!(h.version <= 1 && h.status <= 999);
    }
    // The first bytes choose the coding; the rest is the body.
    if let Some((&sel, body)) = data.split_first() {
        let coding: &[u8] = match sel % 6 {
            0 => b"gzip",
            1 => b"deflate",
            2 => b"identity",
            3 => b"gzip, deflate",
            4 => b"br",
            _ => b"",
        };
        let limit = 1 << 16;
        if let Ok(out) = decode_body(&[("Content-Encoding", coding)], body, limit) {
            assert!(out.len() <= limit);
        }
    }
});
