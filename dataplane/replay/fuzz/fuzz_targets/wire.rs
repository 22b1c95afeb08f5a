//! The response parser on arbitrary bytes from a target: no panic, and the same responses
//! whether the bytes come at once or in pieces (the first byte picks the piece size and
//! whether the request was HEAD).
//!
//! Run: `cargo +nightly fuzz run wire corpus/wire seeds/wire` (from `dataplane/replay/fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_replay::wire::{Response, ResponseParser, WireError};

fn feed(bytes: &[u8], step: usize, head: bool) -> (Vec<Response>, Option<WireError>) {
    let mut out = Vec::new();
    let mut parser = ResponseParser::new(head);
    let mut buf = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.advance(&buf) {
                Ok((used, done)) => {
                    assert!(used <= buf.len());
                    buf.drain(..used);
                    if !done {
                        break;
                    }
                    out.push(parser.take());
                    parser = ResponseParser::new(head);
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    if parser.started() || !buf.is_empty() {
        match parser.eof() {
            Ok(()) => out.push(parser.take()),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let head = sel & 0x80 != 0;
    let step = usize::from(sel & 0x7f) + 1;
    let whole = feed(bytes, bytes.len().max(1), head);
    let pieces = feed(bytes, step, head);
    assert_eq!(whole, pieces);
    for r in &whole.0 {
        assert!(r.body.len() <= bytes.len());
        assert!(r.head.len() <= bytes.len());
    }
});
