//! The `tapline` binary's contract: exit codes and one-line errors for bad input, and the demo.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn tapline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapline"))
        .args(args)
        .output()
        .expect("run tapline")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_usage_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = tapline(&["import", "x.pcap", "--out", "s", "--frobnicate"]);
    assert_usage_error(&out, "--frobnicate");
}

#[test]
fn missing_capture_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s");
    let out = tapline(&[
        "import",
        "/nonexistent/x.pcap",
        "--out",
        snap.to_str().unwrap(),
    ]);
    assert_usage_error(&out, "/nonexistent/x.pcap");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn non_pcap_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello, this is not a capture").unwrap();
    let snap = dir.path().join("s");
    let out = tapline(&[
        "import",
        file.to_str().unwrap(),
        "--out",
        snap.to_str().unwrap(),
    ]);
    assert_usage_error(&out, "not a pcap or pcapng file");
}

#[test]
fn missing_snapshot_is_refused() {
    let out = tapline(&["inspect", "/nonexistent/snapshot"]);
    assert_usage_error(&out, "/nonexistent/snapshot");
}

#[test]
fn bad_filter_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = tapline(&[
        "inspect",
        dir.path().to_str().unwrap(),
        "--filter",
        "colour=red",
    ]);
    assert_usage_error(&out, "unknown field \"colour\"");
}

#[test]
fn bad_config_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tapline.toml");
    std::fs::write(&config, "[reassembly]\nidle_timeout = \"soon\"\n").unwrap();
    let out = tapline(&[
        "import",
        "x.pcap",
        "--out",
        "s",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_usage_error(&out, "reassembly.idle_timeout");
}

#[test]
fn zero_workers_is_refused() {
    let out = tapline(&["import", "x.pcap", "--out", "s", "--workers", "0"]);
    assert_usage_error(&out, "--workers");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// `tapline demo` captures real loopback traffic with tcpdump: every request the demo client
/// made comes back as a complete pair.
#[test]
fn demo_root_captures_imports_and_shows_every_exchange() {
    let have_tcpdump = Command::new("tcpdump").arg("--version").output().is_ok();
    if !is_root() || !have_tcpdump {
        let why = if is_root() {
            "tcpdump is not installed"
        } else {
            "not root"
        };
        assert!(
            std::env::var("TAPLINE_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "demo test needs root and tcpdump, and TAPLINE_REQUIRE_PRIVILEGED=1: {why}"
        );
        eprintln!("skipping demo_root test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = tapline(&["demo", "--dir", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(
        stdout.contains("10 request/response pairs (0 incomplete)"),
        "{stdout}"
    );
    assert!(stdout.contains("/api/users/13"), "{stdout}");
    assert!(stdout.contains("500"), "{stdout}");
}
