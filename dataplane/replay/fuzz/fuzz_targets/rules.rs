//! The parsers of user text: `--assert` lists, `--ignore` rules (with their JSON paths),
//! `--rate` and durations. No panic; every rule and path prints back to text that parses to
//! the same thing; every assertion can be judged.
//!
//! Run: `cargo +nightly fuzz run rules corpus/rules seeds/rules -- -dict=replay.dict`
//! (from `dataplane/replay/fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_replay::assertion::{Figures, evaluate, parse_assertions};
use tapline_replay::path::{Pattern, Step};
use tapline_replay::rules::IgnoreRule;
use tapline_replay::schedule::Rate;
use tapline_replay::units::parse_duration;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = parse_assertions(&text) {
        let figures = Figures {
            total: data.len() as u64,
            matched: data.len() as u64 / 2,
            replay_ms: [1.0; 7],
            ..Figures::default()
        };
        for a in &list {
            let v = evaluate(a, &figures);
            assert!(!v.assertion.is_empty());
        }
    }
    if let Ok(rule) = IgnoreRule::parse(&text) {
        let again = IgnoreRule::parse(&rule.to_string()).expect("a printed rule parses");
        assert_eq!(again, rule);
    }
    if let Ok(pattern) = Pattern::parse(&text) {
        let again = Pattern::parse(&pattern.to_string()).expect("a printed path parses");
        assert_eq!(again, pattern);
        let path: Vec<Step> = data
            .iter()
            .map(|&b| {
                if b % 2 == 0 {
                    Step::Index(usize::from(b))
                } else {
                    Step::Key((b as char).to_string())
                }
            })
            .collect();
        let _ = pattern.covers(&path);
    }
    let _ = Rate::parse(&text).map(Rate::label);
    let _ = parse_duration(&text);
});
