//! Feeds arbitrary bytes, decoded into segments over a few flows, to a reassembler whose sink
//! checks the event invariants (see `src/tests/fuzz_input.rs`, shared with the regression tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/tests/fuzz_input.rs"]
#[allow(dead_code)]
mod fuzz_input;

fuzz_target!(|data: &[u8]| fuzz_input::run(data));
