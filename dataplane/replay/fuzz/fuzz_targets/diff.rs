//! The comparer on arbitrary recorded and live bodies (split at the first 0xff byte), as JSON
//! when they parse: no panic, a body equals itself, differences are capped.
//!
//! Run: `cargo +nightly fuzz run diff` (from `dataplane/replay/fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_replay::compare::{Expected, MAX_DIFFERENCES, Observed, compare};
use tapline_replay::rules::{IgnoreRule, IgnoreSet};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&x| x == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let Some(expected) = Expected::new(HEAD, a) else {
        return;
    };
    let mut ignore = IgnoreSet::defaults();
    if let Ok(rule) = IgnoreRule::parse("json:$..id") {
        ignore.add(&rule);
    }
    let headers: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
    let (diffs, total) = compare(
        &expected,
        &Observed {
            status: 200,
            headers,
            body: b,
        },
        &ignore,
    );
    assert!(diffs.len() <= MAX_DIFFERENCES && diffs.len() <= total);
    let (same, n) = compare(
        &expected,
        &Observed {
            status: 200,
            headers,
            body: a,
        },
        &ignore,
    );
    assert!(same.is_empty() && n == 0);
    for d in &diffs {
        let _ = d.line();
        let _ = serde_json::to_string(d);
    }
});
