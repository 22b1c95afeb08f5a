//! Real captures nobody here wrote: the test captures of Debian's wireshark and tcpdump
//! source packages, fetched by `tests/scripts/fetch-captures.sh` (run by `tests/setup.sh`)
//! into `tests/data/cache/captures/`.
//!
//! Every one must import cleanly (exit 0), or be refused as bad input (exit 2 with one line
//! naming it); never panic, never hang. Where they carry HTTP/1, tapline's requests must
//! agree with tshark's dissection.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tapline_e2e::tapline::{self, check_input_error, check_no_crash};
use tapline_e2e::{require_tools, skip, tshark};

/// The time one import may take before it counts as a hang.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// Imports running at once (the machine has two cores).
const PARALLEL: usize = 2;

/// The fetched captures, or `None` (after reporting a skip) when there are none.
fn captures(test: &str) -> Option<Vec<PathBuf>> {
    let root = tapline_e2e::scripts::captures_cache();
    let mut files = Vec::new();
    for source in ["wireshark", "tcpdump"] {
        if let Ok(entries) = std::fs::read_dir(root.join(source)) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    if files.is_empty() {
        skip(
            test,
            &format!(
                "no captures in {}: run tests/scripts/fetch-captures.sh (or tests/setup.sh)",
                root.display()
            ),
        );
        return None;
    }
    Some(files)
}

/// Runs `check` on every file, `PARALLEL` at a time; returns the problems found.
fn for_each_parallel(
    files: &[PathBuf],
    check: impl Fn(&Path, &Path) -> Option<String> + Sync,
) -> Vec<String> {
    let problems = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                let scratch = tempfile::tempdir().unwrap();
                loop {
                    let index = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(file) = files.get(index) else { break };
                    let snapshot = scratch.path().join(format!("snap-{index}"));
                    if let Some(problem) = check(file, &snapshot) {
                        problems.lock().unwrap().push(problem);
                    }
                    let _ = std::fs::remove_dir_all(&snapshot);
                }
            });
        }
    });
    let mut problems = problems.into_inner().unwrap();
    problems.sort();
    problems
}

#[test]
fn real_captures_import_cleanly_or_are_refused_without_panic_or_hang() {
    const TEST: &str = "real_captures_import_cleanly_or_are_refused_without_panic_or_hang";
    let Some(files) = captures(TEST) else { return };
    // Build once before the threads race to.
    tapline::binary().unwrap_or_else(|e| panic!("{e}"));
    let outcomes = Mutex::new(BTreeMap::<String, usize>::new());
    let problems = for_each_parallel(&files, |file, snapshot| {
        let run = match tapline::import_within(file, snapshot, None, IMPORT_TIMEOUT) {
            Ok(run) => run,
            Err(e) => return Some(format!("{}: {e}", file.display())),
        };
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let verdict = if let Err(problem) = check_no_crash(&run) {
            Err(problem)
        } else if run.code() == Some(0) {
            Ok("imported")
        } else {
            check_input_error(&run, &name).map(|()| "refused as bad input")
        };
        match verdict {
            Ok(outcome) => {
                *outcomes
                    .lock()
                    .unwrap()
                    .entry(outcome.to_owned())
                    .or_default() += 1;
                None
            }
            Err(problem) => Some(problem),
        }
    });
    eprintln!(
        "{} captures: {:?}",
        files.len(),
        outcomes.into_inner().unwrap()
    );
    assert!(
        problems.is_empty(),
        "{} of {} captures misbehaved:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}

/// Whether the file's raw bytes contain `HTTP/` (the version in every HTTP/1 request and
/// status line), a cheap filter before running tshark (half a second per file) on it.
fn may_hold_http1(file: &Path) -> bool {
    std::fs::read(file).is_ok_and(|bytes| bytes.windows(5).any(|w| w == b"HTTP/"))
}

#[test]
fn real_captures_http_requests_match_tshark() {
    const TEST: &str = "real_captures_http_requests_match_tshark";
    let Some(files) = captures(TEST) else { return };
    if !require_tools(TEST, &["tshark"]) {
        return;
    }
    // Accepted differences with tshark, and why:
    // - Only tshark's requests are checked against tapline's, not the reverse: tapline
    //   recognises HTTP/1 by content on any port, tshark only on its registered ports and
    //   heuristics, so tapline may rightly find more.
    // - HTTP/1 that tshark sees only by decrypting TLS with keys embedded in the capture
    //   (wireshark's challenge01_ooo_stream.pcapng, tls12-dsb.pcapng) has no plaintext on the
    //   wire; such files hold no `HTTP/` bytes and are filtered out by `may_hold_http1`.
    // - HTTP/2 (`http2`, including h2c) is not HTTP/1 and is excluded from tshark's side.
    // - Responses: a status is compared only where tshark paired the request with one.
    let candidates: Vec<PathBuf> = files.into_iter().filter(|f| may_hold_http1(f)).collect();
    tapline::binary().unwrap_or_else(|e| panic!("{e}"));
    let compared = Mutex::new(0usize);
    let problems = for_each_parallel(&candidates, |file, snapshot| {
        let name = file.display();
        let expected = match tshark::http_requests(file) {
            Ok(requests) if requests.is_empty() => return None,
            Ok(requests) => requests,
            Err(e) => return Some(format!("{name}: tshark: {e}")),
        };
        let pairs = match tapline::import_and_inspect(file, snapshot, None) {
            Ok((_, pairs)) => pairs,
            Err(e) => return Some(format!("{name}: tshark sees HTTP/1 but tapline: {e}")),
        };
        *compared.lock().unwrap() += 1;
        // tapline's (method, target) -> statuses, consumed as tshark's requests match.
        let mut found: BTreeMap<(String, String), Vec<Option<u16>>> = BTreeMap::new();
        for pair in &pairs {
            if let Some((method, target)) = pair.method_path() {
                found
                    .entry((method.to_owned(), target.to_owned()))
                    .or_default()
                    .push(pair.status());
            }
        }
        let mut missing = Vec::new();
        for request in &expected {
            let key = (request.method.clone(), request.target.clone());
            let statuses = found.entry(key).or_default();
            let position = statuses
                .iter()
                .position(|s| request.status.is_none() || *s == request.status);
            match position {
                Some(i) => {
                    statuses.remove(i);
                }
                None => missing.push(format!(
                    "{} {} -> {:?} (tshark frame {})",
                    request.method, request.target, request.status, request.frame
                )),
            }
        }
        (!missing.is_empty()).then(|| {
            format!(
                "{name}: {} of tshark's {} requests not found in tapline's {} pairs: {}",
                missing.len(),
                expected.len(),
                pairs.len(),
                missing.join("; ")
            )
        })
    });
    eprintln!(
        "{} captures with HTTP/1 compared with tshark",
        compared.into_inner().unwrap()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
