//! The whole per-flow stack on arbitrary captures: packet decoding, TCP reassembly, TLS
//! plaintext chunks (frames of tapline's TLS link type), HTTP/1 parsing, record serialization
//! and the inspect view of every pair produced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_dataplane::capture::CaptureFile;
use tapline_dataplane::packet::{Decoded, decode};
use tapline_dataplane::record::ArchivedRRPair;
use tapline_dataplane::view::PairView;
use tapline_dataplane::worker::FlowEngine;
use tapline_reassembly::{ReassemblyConfig, TcpFlags, TcpSegment};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = CaptureFile::from_bytes("fuzz.pcap", data.to_vec()) else {
        return;
    };
    let Ok(packets) = file.packets() else {
        return;
    };
    let reassembly = ReassemblyConfig {
        max_flows: 64,
        max_buffered_per_direction: 1 << 16,
        max_buffered_total: 1 << 20,
        ..ReassemblyConfig::default()
    };
    let http = tapline_http1::Http1Config {
        max_body_bytes: 1 << 16,
        ..tapline_http1::Http1Config::default()
    };
    let mut engine = FlowEngine::new(reassembly, http);
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    for packet in packets.take(20_000) {
        let Ok(packet) = packet else { break };
        match decode(packet.link_type, packet.data) {
            Decoded::Tcp(tcp) => engine.segment(&TcpSegment {
                ts_ns: packet.ts_ns,
                src: tcp.src,
                dst: tcp.dst,
                seq: tcp.seq,
                ack: tcp.ack,
                flags: TcpFlags(tcp.flags),
                payload: tcp.payload,
            }),
            Decoded::TlsChunk(chunk) => engine.tls_chunk(&chunk),
            _ => continue,
        }
        pairs.extend(engine.take_pairs().iter().map(<[u8]>::to_vec));
    }
    let (_, rest) = engine.finish();
    pairs.extend(rest.iter().map(<[u8]>::to_vec));
    for bytes in &pairs {
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(bytes);
        let pair = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&aligned)
            .expect("the engine writes valid records");
        let view = PairView::new(pair);
        let _ = view.to_json();
        let _ = view.to_markdown();
        let _ = view.table_row();
    }
});
