//! Arbitrary bytes as the first instructions of a library function: the call, entry and
//! null-check decoders never panic and never point outside the bytes they were given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_tls::x86;

fuzz_target!(|code: &[u8]| {
    let _ = x86::forwarded_call(code);
    let _ = x86::calls(code, i64::from(code.first().copied().unwrap_or(0)));
    if let Some(at) = x86::cheap_entry(code) {
        assert!(at <= code.len());
    }
    if let Some(at) = x86::cheap_entry_past_null_check(code) {
        assert!(at <= code.len());
    }
    let _ = x86::zeroes_then_jumps(code);
});
