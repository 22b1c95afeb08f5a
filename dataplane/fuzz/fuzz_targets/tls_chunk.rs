//! The TLS plaintext chunk decoder on arbitrary bytes, and the TLS stream path of the flow
//! engine on arbitrary sequences of chunks: no panic; a chunk that decodes encodes back to the
//! same bytes; every pair produced is a valid record flagged `tls` with its process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_dataplane::tls_chunk::{self, TlsChunk};
use tapline_dataplane::view::PairView;
use tapline_dataplane::worker::FlowEngine;
use tapline_reassembly::ReassemblyConfig;

fuzz_target!(|data: &[u8]| {
    // The whole input as one chunk.
    check_round_trip(data);
    // The input as frames (u16 little-endian length, bytes) through one engine.
    let reassembly = ReassemblyConfig {
        max_flows: 8,
        idle_timeout_ns: 1_000_000_000,
        ..ReassemblyConfig::default()
    };
    let http = tapline_http1::Http1Config {
        max_body_bytes: 1 << 12,
        max_head_bytes: 1 << 12,
        max_unpaired_bytes: 1 << 12,
        max_detect_bytes: 1 << 12,
        ..tapline_http1::Http1Config::default()
    };
    let mut engine = FlowEngine::new(reassembly, http);
    let mut rest = data;
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    while let [lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (frame, after) = tail.split_at(len);
        rest = after;
        if let Some(chunk) = check_round_trip(frame) {
            engine.tls_chunk(&chunk);
            pairs.extend(engine.take_pairs().iter().map(<[u8]>::to_vec));
        }
    }
    let (_, last) = engine.finish();
    pairs.extend(last.iter().map(<[u8]>::to_vec));
    for bytes in &pairs {
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(bytes);
        let pair = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&aligned)
            .expect("the engine writes valid records");
        assert!(pair.flags.to_native() & PairFlags::TLS != 0);
        assert!(pair.process.is_some());
        let view = PairView::new(pair);
        let _ = view.to_json();
        let _ = view.to_markdown();
        let _ = view.table_row();
    }
});

fn check_round_trip(bytes: &[u8]) -> Option<TlsChunk<'_>> {
    let chunk = tls_chunk::decode(bytes).ok()?;
    let mut again = Vec::new();
    chunk.encode_into(&mut again);
    assert_eq!(again.len(), chunk.encoded_len());
    let back = tls_chunk::decode(&again).expect("an encoded chunk decodes");
    assert_eq!(back, chunk);
    Some(chunk)
}
