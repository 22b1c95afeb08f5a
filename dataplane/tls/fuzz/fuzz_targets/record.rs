//! Ring-buffer bytes → `TlsEvent`: the decoder must refuse or accept any input without
//! panicking, and what it accepts must stay within the record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_tls::{Record, TlsEventKind, WallClock, decode};

fuzz_target!(|bytes: &[u8]| {
    let clock = WallClock::with_offset(1_700_000_000_000_000_000);
    match decode(bytes, &clock) {
        Ok(Record::Event(event)) => {
            let _ = event.command();
            if let TlsEventKind::Data { data, .. } = event.kind {
                assert!(data.len() + tapline_bpf::tls::HDR_SIZE <= bytes.len());
            }
        }
        Ok(Record::Exec { filename, .. }) => {
            assert!(filename.len() + tapline_bpf::tls::HDR_SIZE <= bytes.len());
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
