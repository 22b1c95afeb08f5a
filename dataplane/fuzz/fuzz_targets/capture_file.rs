//! The pcap/pcapng reader and the packet decoder on arbitrary bytes: no panic, no hang, every
//! packet slice within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_dataplane::capture::CaptureFile;
use tapline_dataplane::packet::{Decoded, decode};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = CaptureFile::from_bytes("fuzz.pcap", data.to_vec()) else {
        return;
    };
    let Ok(packets) = file.packets() else {
        return;
    };
    for packet in packets.take(100_000) {
        let Ok(packet) = packet else { break };
        assert!(packet.data.len() <= data.len());
        if let Decoded::Tcp(tcp) = decode(packet.link_type, packet.data) {
            assert!(tcp.payload_offset + tcp.payload.len() <= packet.data.len());
        }
    }
});
