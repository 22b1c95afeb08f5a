//! `tapline replay` end to end. A small shop service (Python) with a bug for some inputs calls
//! a dependency over HTTP; a client's traffic to it is captured on a namespace's loopback with
//! tcpdump (writing in blocks, as users run it) and imported. Then:
//! - replayed against the same build, with the dependency answered by `tapline mock`, every
//!   request matches — the failing ones included — although every answer carries noise (Date,
//!   a timestamp field, generated ids);
//! - replayed against the fixed build, exactly the requests the fix changed are reported, exit
//!   1, with JUnit and HTML written;
//! - a slower build breaches `p99<=1.1x`; `--rate` is met on loopback;
//! - bad input (an unreachable target, a snapshot without HTTP, a malformed `--assert`) is
//!   refused with exit 2 and one line naming it.
//!
//! Tests without root use captures made by hand and a dependency process as the target.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tapline_e2e::replay_support::ports::{DEPENDENCY, MOCK, TARGET};
use tapline_e2e::replay_support::{
    CraftedConnection, REPLAY_TIMEOUT, Shop, free_port, python, report_json, write_pcap,
};
use tapline_e2e::tapline::{self, TAPLINE_TIMEOUT, check_input_error, check_no_crash};
use tapline_e2e::{Run, require_root, require_tools};

/// Records the shop in a fresh namespace, or reports why the test cannot run here.
fn record(test: &str, client_args: &[&str]) -> Option<Shop> {
    if !require_root(test) || !require_tools(test, &["tcpdump", "ip"]) {
        return None;
    }
    Some(Shop::record(test, client_args).unwrap())
}

/// A run of `tapline` in the shop's namespace that did not crash.
fn checked(run: tapline_e2e::Result<Run>) -> Run {
    let run = run.unwrap();
    if let Err(problem) = check_no_crash(&run) {
        panic!("{problem}");
    }
    run
}

fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report:#}"))
}

fn rules_of(report: &Value, endpoint: &str) -> Vec<String> {
    report["noise"]["detected"][endpoint]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn replay_root_reproduces_the_bug_with_the_dependency_mocked() {
    const TEST: &str = "replay_root_reproduces_the_bug_with_the_dependency_mocked";
    let Some(shop) = record(TEST, &[]) else {
        return;
    };
    let failing = shop
        .seen
        .iter()
        .filter(|(_, _, status)| *status == 500)
        .count() as u64;
    assert_eq!(failing, 8, "the recording holds the bug: {:?}", shop.seen);
    let _mock = shop.mock().unwrap();
    let _service = shop.service(TARGET, MOCK, &[]).unwrap();
    let dir = shop.path("report");
    let junit = shop.path("junit.xml");
    let run = checked(shop.replay(
        TARGET,
        &[
            "--report",
            dir.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    ));
    let summary = run.stdout_text();
    assert_eq!(run.code(), Some(0), "{summary}\n{}", run.stderr);
    let report = report_json(&dir).unwrap();
    let total = shop.seen.len() as u64;
    assert_eq!(
        (count(&report, "total"), count(&report, "matched")),
        (total, total),
        "{summary}"
    );
    assert_eq!(
        (count(&report, "mismatched"), count(&report, "errors")),
        (0, 0)
    );
    // The failing requests fail again, and that matches the recording.
    assert_eq!(
        report["statuses"]["500"].as_u64(),
        Some(failing),
        "{summary}"
    );
    // Each answer carried noise; it was found in the recording and left out.
    let users = rules_of(&report, "GET /api/users/{id}");
    for rule in [
        "header:x-request-id",
        "json:$.request_id",
        "json:$.served_at",
    ] {
        assert!(users.contains(&rule.to_owned()), "{users:?}");
    }
    let orders = rules_of(&report, "POST /api/orders");
    for rule in ["json:$.order_id", "json:$.created_at"] {
        assert!(orders.contains(&rule.to_owned()), "{orders:?}");
    }
    assert!(summary.contains("result: PASS"), "{summary}");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("failures=\"0\"")
    );

    // Without --filter, the recording's two servers (service and dependency) are refused.
    let snapshot = shop.snapshot.to_string_lossy().into_owned();
    let run = checked(shop.tapline(&[
        "replay",
        &snapshot,
        "--target",
        &format!("http://127.0.0.1:{TARGET}"),
    ]));
    if let Err(problem) = check_input_error(&run, "requests to 2 servers") {
        panic!("{problem}");
    }
}

#[test]
fn replay_root_reports_exactly_the_requests_the_fix_changed() {
    const TEST: &str = "replay_root_reports_exactly_the_requests_the_fix_changed";
    let Some(shop) = record(TEST, &[]) else {
        return;
    };
    let _mock = shop.mock().unwrap();
    let _fixed = shop.service(TARGET, MOCK, &["--fixed"]).unwrap();
    let dir = shop.path("report");
    let junit = shop.path("junit.xml");
    let run = checked(shop.replay(
        TARGET,
        &[
            "--report",
            dir.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    ));
    let summary = run.stdout_text();
    assert_eq!(run.code(), Some(1), "{summary}\n{}", run.stderr);
    let report = report_json(&dir).unwrap();
    let changed: Vec<&str> = shop
        .seen
        .iter()
        .filter(|(_, _, status)| *status == 500)
        .map(|(_, path, _)| path.as_str())
        .collect();
    let mut reported: Vec<&str> = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    let mut expected = changed.clone();
    reported.sort_unstable();
    expected.sort_unstable();
    assert_eq!(reported, expected, "{summary}");
    assert_eq!(count(&report, "mismatched"), changed.len() as u64);
    assert_eq!(
        count(&report, "matched"),
        (shop.seen.len() - changed.len()) as u64
    );
    for m in report["mismatches"].as_array().unwrap() {
        assert_eq!(
            (m["expected_status"].as_u64(), m["actual_status"].as_u64()),
            (Some(500), Some(200))
        );
        let paths: Vec<&str> = m["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths.first(), Some(&"status"), "{paths:?}");
        assert!(paths.contains(&"$.email_domain"), "{paths:?}");
        // Noise stays out even of a changed response.
        assert!(
            !paths
                .iter()
                .any(|p| p.contains("served_at") || p.contains("request_id")),
            "{paths:?}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("failures=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("GET /api/users/5 (pair "), "{xml}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("/api/users/5"));
    assert!(summary.contains("result: FAIL (8 mismatched)"), "{summary}");
}

#[test]
fn replay_root_a_slower_build_breaches_p99() {
    const TEST: &str = "replay_root_a_slower_build_breaches_p99";
    let Some(shop) = record(TEST, &[]) else {
        return;
    };
    let _mock = shop.mock().unwrap();
    let _slow = shop.service(TARGET, MOCK, &["--delay-ms", "150"]).unwrap();
    let _normal = shop.service(TARGET + 1, MOCK, &[]).unwrap();
    let dir = shop.path("slow");
    let run = checked(shop.replay(
        TARGET,
        &[
            "--assert",
            "p99<=1.1x,match>=100%",
            "--report",
            dir.to_str().unwrap(),
        ],
    ));
    assert_eq!(run.code(), Some(1), "{}", run.stdout_text());
    let report = report_json(&dir).unwrap();
    let p99 = &report["assertions"][0];
    assert_eq!(p99["assertion"], "p99<=1.1x");
    assert_eq!(p99["pass"], false, "{p99}");
    assert!(p99["measured"].as_f64().unwrap() >= 150.0, "{p99}");
    assert!(p99["baseline"].as_f64().unwrap() < 150.0, "{p99}");
    assert_eq!(report["assertions"][1]["pass"], true);
    assert!(run.stdout_text().contains("FAIL p99<=1.1x"));
    // The build as recorded holds generous bounds.
    let run = checked(shop.replay(
        TARGET + 1,
        &["--assert", "errors<=0.5%,match>=99%,p99<=500ms"],
    ));
    assert_eq!(run.code(), Some(0), "{}", run.stdout_text());
}

#[test]
fn replay_root_rate_is_met_on_loopback() {
    const TEST: &str = "replay_root_rate_is_met_on_loopback";
    // 300 requests 10 ms apart on 4 connections: 100 req/s for 3 s.
    let Some(shop) = record(
        TEST,
        &["--mix", "health", "--count", "300", "--gap-ms", "10"],
    ) else {
        return;
    };
    let _service = shop.service(TARGET, DEPENDENCY, &[]).unwrap();
    for (rate, duration, asked) in [("100%", None, 100.0), ("1000%", Some("3s"), 1000.0)] {
        let dir = shop.path(&format!("rate-{rate}"));
        let mut extra = vec!["--rate", rate, "--report", dir.to_str().unwrap()];
        if let Some(d) = duration {
            extra.extend(["--duration", d]);
        }
        let run = checked(shop.replay(TARGET, &extra));
        assert_eq!(run.code(), Some(0), "{}", run.stdout_text());
        let report = report_json(&dir).unwrap();
        let asked_rps = report["rate"]["asked_rps"].as_f64().unwrap();
        let achieved = report["rate"]["achieved_rps"].as_f64().unwrap();
        eprintln!("--rate {rate}: asked {asked_rps:.1} req/s, achieved {achieved:.1} req/s");
        // The recording's own pace is the client's, within a few percent of its 100 req/s.
        assert!(
            (asked_rps / asked - 1.0).abs() < 0.05,
            "{rate}: asked {asked_rps}"
        );
        // A few percent on loopback; bench/replay.sh measures the accuracy itself.
        assert!(
            (achieved / asked_rps - 1.0).abs() < 0.05,
            "{rate}: asked {asked_rps}, achieved {achieved}"
        );
        if duration.is_some() {
            let total = count(&report, "total") as f64;
            assert!(
                (total / (3.0 * asked_rps) - 1.0).abs() < 0.05,
                "{total} requests in 3 s at {asked_rps}"
            );
        }
    }
}

// ------------------------------------------------------------------ without root

/// What `replay_dependency.py` answers, with a recorded `Date` (which differs now).
fn dependency_answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nServer: profiles\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: profiles.internal\r\nAccept: application/json\r\n\r\n")
        .into_bytes()
}

/// A capture of calls to the dependency made by hand; one recorded answer is out of date.
fn crafted_snapshot(dir: &Path) -> PathBuf {
    let connections = [
        CraftedConnection {
            client_port: 40001,
            exchanges: vec![
                (
                    get("/profiles/1"),
                    dependency_answer(
                        "200 OK",
                        r#"{"id": 1, "name": "user 1", "email": "user1@example.com"}"#,
                    ),
                ),
                (
                    get("/profiles/5"),
                    dependency_answer("200 OK", r#"{"id": 5, "name": "user 5", "email": null}"#),
                ),
                (
                    get("/prices/book"),
                    dependency_answer("200 OK", r#"{"item": "book", "price": 13.5}"#),
                ),
            ],
        },
        CraftedConnection {
            client_port: 40002,
            exchanges: vec![
                (
                    get("/profiles/7"),
                    dependency_answer(
                        "200 OK",
                        r#"{"id": 7, "name": "user 7", "email": "old7@example.com"}"#,
                    ),
                ),
                (
                    get("/profiles/2000"),
                    dependency_answer("404 Not Found", r#"{"error": "no such profile"}"#),
                ),
            ],
        },
    ];
    let pcap = dir.join("crafted.pcap");
    write_pcap(&pcap, &connections).unwrap();
    let snapshot = dir.join("snapshot");
    tapline::import(&pcap, &snapshot, None)
        .unwrap()
        .checked(TAPLINE_TIMEOUT)
        .unwrap();
    snapshot
}

fn replay(args: &[&str]) -> Run {
    let run = tapline::run(args, REPLAY_TIMEOUT).unwrap();
    if let Err(problem) = check_no_crash(&run) {
        panic!("{problem}");
    }
    run
}

#[test]
fn replay_diffs_a_crafted_capture_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = crafted_snapshot(dir.path());
    let port = free_port().unwrap();
    let _dependency = python(None, "replay_dependency.py", &["--port", &port.to_string()]).unwrap();
    let target = format!("http://127.0.0.1:{port}");
    let snap = snapshot.to_str().unwrap();
    let out = dir.path().join("report");
    let junit = dir.path().join("junit.xml");
    let run = replay(&[
        "replay",
        snap,
        "--target",
        &target,
        "--report",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), Some(1), "{}\n{}", run.stdout_text(), run.stderr);
    let report = report_json(&out).unwrap();
    assert_eq!(
        [
            count(&report, "total"),
            count(&report, "matched"),
            count(&report, "mismatched"),
            count(&report, "errors")
        ],
        [5, 4, 1, 0]
    );
    let mismatch = &report["mismatches"][0];
    assert_eq!(mismatch["target"], "/profiles/7");
    assert_eq!(mismatch["diffs"].as_array().unwrap().len(), 1, "{mismatch}");
    let diff = &mismatch["diffs"][0];
    assert_eq!(
        (diff["path"].as_str(), diff["kind"].as_str()),
        (Some("$.email"), Some("changed"))
    );
    assert_eq!(
        (diff["expected"].as_str(), diff["actual"].as_str()),
        (Some("old7@example.com"), Some("user7@example.com"))
    );
    let endpoints: BTreeMap<&str, u64> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap(),
                e["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        BTreeMap::from([("GET /profiles/{id}", 4), ("GET /prices/book", 1)])
    );
    assert!(
        run.stdout_text()
            .contains(r#"$.email: "old7@example.com" → "user7@example.com""#)
    );
    assert!(junit.is_file() && out.join("report.html").is_file());

    // A rule takes the field out; the rest matched already.
    let run = replay(&[
        "replay",
        snap,
        "--target",
        &target,
        "--ignore",
        "json:$.email",
        "--keep-host",
        "--rate",
        "max",
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.stdout_text());
    // The same rule from a config file.
    let config = dir.path().join("tapline.toml");
    std::fs::write(&config, format!("[replay]\ntarget = \"{target}\"\nignore = [\"json:$.email\"]\nassert = \"match>=100%\"\n")).unwrap();
    let run = replay(&["replay", snap, "--config", config.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stdout_text());
}

fn assert_input_error(run: &Run, mention: &str) {
    if let Err(problem) = check_input_error(run, mention) {
        panic!("{problem}");
    }
}

#[test]
fn replay_bad_input_is_refused_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = crafted_snapshot(dir.path());
    let snap = snapshot.to_str().unwrap();

    // An unreachable target: the message names the URL.
    let url = format!("http://127.0.0.1:{}", free_port().unwrap());
    let run = replay(&["replay", snap, "--target", &url]);
    assert_input_error(&run, &format!("target {url} is unreachable"));

    // A malformed assertion names the token.
    let run = replay(&[
        "replay",
        snap,
        "--target",
        &url,
        "--assert",
        "p99<=1.1x,errors<=0.5y",
    ]);
    assert_input_error(&run, "\"0.5y\"");
    let run = replay(&["replay", snap, "--target", &url, "--assert", "p98<=1.1x"]);
    assert_input_error(&run, "unknown metric");

    // Other flags.
    for (flag, value, mention) in [
        ("--ignore", "cookie:x", "--ignore \"cookie:x\""),
        ("--rate", "fast", "--rate \"fast\""),
        ("--duration", "forever", "--duration \"forever\""),
        ("--filter", "status>>1", "--filter"),
    ] {
        let run = replay(&["replay", snap, "--target", &url, flag, value]);
        assert_input_error(&run, mention);
    }
    let run = replay(&["replay", snap, "--target", "https://example.invalid"]);
    assert_input_error(&run, "https targets are not supported");
    let run = replay(&["replay", snap]);
    assert_input_error(&run, "--target URL is required");

    // A snapshot without HTTP: TCP that is not HTTP, and a capture with no packets.
    let ssh = CraftedConnection {
        client_port: 40100,
        exchanges: vec![(
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            b"SSH-2.0-OpenSSH_9.2p1\r\n\x00\x00\x01\x14".to_vec(),
        )],
    };
    for (name, connections) in [("ssh", vec![ssh]), ("empty", vec![])] {
        let pcap = dir.path().join(format!("{name}.pcap"));
        write_pcap(&pcap, &connections).unwrap();
        let out = dir.path().join(name);
        tapline::import(&pcap, &out, None)
            .unwrap()
            .checked(TAPLINE_TIMEOUT)
            .unwrap();
        let run = replay(&["replay", out.to_str().unwrap(), "--target", &url]);
        assert_input_error(&run, "holds no HTTP/1 requests to replay");
    }
    // Not a snapshot at all.
    let run = replay(&["replay", dir.path().to_str().unwrap(), "--target", &url]);
    assert_input_error(&run, "not a tapline snapshot");
}
