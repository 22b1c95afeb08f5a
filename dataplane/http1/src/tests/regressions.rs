//! Inputs found by the fuzz targets, replayed through the same harness as `fuzz/stream`.

use tapline_reassembly::Direction;

use crate::{Exchange, Http1Config, Http1Conn};

/// The `stream` fuzz harness: control byte (bit 7 direction, bit 6 gap/end, low bits length)
/// then payload; checks the bounds the target checks.
fn replay(data: &[u8]) -> Vec<Exchange> {
    let cfg = Http1Config {
        max_head_bytes: 512,
        max_body_bytes: 256,
        max_pipelined: 8,
        max_unpaired_bytes: 1024,
        max_detect_bytes: 4096,
    };
    let mut conn = Http1Conn::new(cfg.clone());
    let mut out = Vec::new();
    let mut ts = 0u64;
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = usize::from(ctl & 0x3f).min(tail.len());
        ts += u64::from(ctl & 0x03);
        if ctl & 0x40 == 0 {
            let (chunk, next) = tail.split_at(len);
            conn.data(dir, ts, chunk, &mut out);
            rest = next;
        } else {
            if len == 0 {
                conn.end(dir, ts, &mut out);
            } else {
                conn.gap(dir, ts, len as u64, &mut out);
            }
            rest = tail;
        }
    }
    conn.close(ts, &mut out);
    for x in &out {
        for m in x.request.iter().chain(x.response.iter()) {
            assert!(
                m.head.len() <= cfg.max_head_bytes,
                "head of {} bytes",
                m.head.len()
            );
            assert!(m.body.len() <= cfg.max_body_bytes);
            assert!(m.body.len() as u64 <= m.body_wire_len);
            assert!(m.start_ns <= m.end_ns);
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A response head found in the scan window longer than the head limit.
#[test]
fn head_found_in_scan_window_stays_within_the_limit() {
    replay(&unhex(concat!(
        "2648bf485454502f312e3120323030204f4b0d0a4c25656e326774683a20203f202020202020202020502f312e",
        "3120323030204f4b0d0a4c25656e326774683a20202020202020202020202020202020202020200d0a4c25656e",
        "326774683a2020202020452020202020202020202020202020202020202020202030204f4b0d0a4c25656e3267",
        "74683a202020aaaaaaaaaaaaaa0a2020202020202020200d0a4c25656e326774683a2020202020202020202020",
        "202020202020402020202020202020202020202020202020200d0a4c25656e326774683a202020202045202020",
        "2020202020202020202020202020202020202030204f4b0d0a4c25656e326774683a202020aaaaaaaaaaaaaa0a",
        "2020202020202020200d0a4c25656e356774683a202020202020202020202020202020502f312e312032303020",
        "4f4b0d0a4c25656e326774683a20202020202020202020202020202020202020200d0a4c25656e326774683a20",
        "20202020452020202020202020202020202020202000202020202030204f4b0d0a4c25656e326774683a202020",
        "aaaaaaaaaaaaaa0a2020202020202020200d0a4c25656e326774683a2020202020202020202072202020202020",
        "20402020202020202020202020202020202020200d0a4c25656e326774683a2020202020452020202020202020",
        "20202020202020202020202020202020202020202020202020202031464854300d0a0d0a4854c0",
    )));
}
