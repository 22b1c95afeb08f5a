//! Arbitrary bytes, cut into interleaved request and response chunks with occasional gaps and
//! ends, fed to one connection parser: it must not panic, and what it hands out must respect
//! its bounds.
//!
//! Run: `cargo +nightly fuzz run stream corpus/stream seeds/stream -- -dict=http1.dict`
//! (from `dataplane/http1/fuzz`; `seeds/` holds hand-written starting inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_http1::{Exchange, Http1Config, Http1Conn};
use tapline_reassembly::Direction;

fuzz_target!(|data: &[u8]| {
    let cfg = Http1Config {
        max_head_bytes: 512,
        max_body_bytes: 256,
        max_pipelined: 8,
        max_unpaired_bytes: 1024,
        max_detect_bytes: 4096,
    };
    let mut conn = Http1Conn::new(cfg.clone());
    let mut out: Vec<Exchange> = Vec::new();
    let mut ts = 0u64;
    let mut rest = data;
    // Each chunk: a control byte, then up to 63 bytes of payload.
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = usize::from(ctl & 0x3f).min(tail.len());
        ts += u64::from(ctl & 0x03);
        match ctl & 0x40 {
            0 => {
                let (chunk, next) = tail.split_at(len);
                conn.data(dir, ts, chunk, &mut out);
                rest = next;
            }
            _ => {
                // Control events: a gap of `len` bytes, or an end when `len` is zero.
                if len == 0 {
                    conn.end(dir, ts, &mut out);
                } else {
                    conn.gap(dir, ts, len as u64, &mut out);
                }
                rest = tail;
            }
        }
    }
    conn.close(ts, &mut out);
    for x in &out {
        for m in x.request.iter().chain(x.response.iter()) {
            assert!(m.head.len() <= cfg.max_head_bytes, "head over the limit");
            assert!(m.body.len() <= cfg.max_body_bytes, "body over the limit");
            assert!(
                m.body.len() as u64 <= m.body_wire_len,
                "body longer than on the wire"
            );
            assert!(m.start_ns <= m.end_ns, "time runs backwards");
        }
        assert!(x.interim.len() <= 16);
    }
    let _ = conn.stats();
    let _ = conn.state();
});
