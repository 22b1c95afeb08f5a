//! Arbitrary bytes as an ELF file: reading symbols, offsets and dynamic entries never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let info = tapline_tls::inspect_elf_bytes(bytes, true);
    for library in &info.libraries {
        for (_, offset) in &library.symbols {
            assert!(*offset < bytes.len() as u64);
        }
    }
});
