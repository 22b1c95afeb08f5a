//! `tapline mirror` against live traffic: production is a small Python service in namespace
//! A, its clients (`curl`, `wrk`) in namespace B, and the mirror captures on B's veth and
//! shadows every request to a second build in an ephemeral namespace of its own. Checked:
//! every exchange the clients completed is counted as mirrored or dropped; the same build
//! matches everything; a build that differs on some paths differs on exactly those; a slow or
//! killed shadow costs dropped or failed mirror requests only, while production's clients see
//! no error and about the same latency; the report is written on SIGINT.
//!
//! Privileged: each test skips with a reason when not root (fails instead with
//! `TAPLINE_REQUIRE_PRIVILEGED=1`); namespaces and everything in them are removed on drop,
//! also when a test fails.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tapline_e2e::mirror_support::{MirrorRun, curl, read_report, write_app, wrk};
use tapline_e2e::{Background, NetnsGuard, Side, require_ebpf, require_tools, scripts};

/// The service's port in both namespaces.
const PORT: u16 = 8080;
/// Connections wrk keeps open (requests it may leave unfinished at its end).
const WRK_CONNECTIONS: u32 = 4;

/// Production and its network: the guard, the service in A, the app's path.
struct Production {
    guard: NetnsGuard,
    _service: Background,
    app: std::path::PathBuf,
}

fn production(test: &str, dir: &Path) -> Option<Production> {
    if !require_ebpf(test) || !require_tools(test, &["ip", "ping", "curl", "wrk"]) {
        return None;
    }
    let app = write_app(dir).unwrap();
    let guard = NetnsGuard::new(test).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let service = Background::spawn_until(
        guard
            .a
            .command(scripts::python())
            .arg(&app)
            .args(["--port", &PORT.to_string()]),
        "READY",
        Duration::from_secs(30),
    )
    .unwrap();
    Some(Production {
        guard,
        _service: service,
        app,
    })
}

fn url(path: &str) -> String {
    format!("http://{}:{PORT}{path}", Side::A.ipv4())
}

/// Starts the mirror of B's veth to `build` (app arguments) with `extra` flags.
fn start_mirror(p: &Production, report: &Path, build: &str, extra: &[&str]) -> MirrorRun {
    let cmd = format!(
        "{} {} --port {PORT} {build}",
        scripts::python().display(),
        p.app.display()
    );
    let report = report.to_string_lossy().into_owned();
    let port = PORT.to_string();
    let mut args = vec![
        "--netns",
        p.guard.b.name(),
        "--iface",
        Side::B.interface(),
        "--port",
        &port,
        "--cmd",
        &cmd,
        "--report",
        &report,
    ];
    args.extend_from_slice(extra);
    MirrorRun::start(&args).unwrap()
}

/// Sends `/users/1..=n` and `/orders/1..=n` with curl; every answer must be 200.
fn curls(p: &Production, n: u32) -> u64 {
    for i in 1..=n {
        for kind in ["users", "orders"] {
            let status = curl(&p.guard.b, &url(&format!("/{kind}/{i}"))).unwrap();
            assert_eq!(status, 200, "/{kind}/{i}");
        }
    }
    u64::from(2 * n)
}

fn count(report: &Value, path: &str) -> u64 {
    report
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {report}"))
}

/// Every inbound exchange seen is mirrored, dropped or skipped, and what was mirrored or
/// dropped is what the clients completed (wrk may abandon one request per connection at its
/// end, which production still answered, or which the capture saw cut).
fn check_accounting(report: &Value, completed: u64, slack: u64) {
    let seen = count(report, "/mirror/seen");
    let mirrored = count(report, "/mirror/mirrored");
    let dropped = count(report, "/mirror/dropped_total");
    let skipped: u64 = report["mirror"]["skipped"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(mirrored + dropped + skipped, seen, "{}", report["mirror"]);
    // Only a request a client abandoned at its end (wrk) can be incomplete in the capture.
    assert!(skipped <= slack, "{}", report["mirror"]);
    assert!(
        (completed..=completed + slack).contains(&(mirrored + dropped)),
        "clients completed {completed}, mirrored {mirrored} + dropped {dropped}: {}",
        report["mirror"]
    );
}

#[test]
fn mirror_root_same_build_matches_every_exchange() {
    let test = "mirror_root_same_build_matches_every_exchange";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = production(test, dir.path()) else {
        return;
    };
    let baseline = wrk(&p.guard.b, &url("/users/1"), 3, WRK_CONNECTIONS).unwrap();
    let report_dir = dir.path().join("report");
    let mirror = start_mirror(&p, &report_dir, "", &[]);
    let mut completed = curls(&p, 10);
    let loaded = wrk(&p.guard.b, &url("/users/1"), 3, WRK_CONNECTIONS).unwrap();
    completed += loaded.requests;
    mirror.wait_counted(completed, Duration::from_secs(20));
    let end = mirror.stop();
    eprintln!(
        "{test}: production's clients, wrk -c {WRK_CONNECTIONS} -d 3s: without the mirror \
         {} requests, p50 {:.2} ms, p99 {:.2} ms; with it {} requests, p50 {:.2} ms, p99 {:.2} ms",
        baseline.requests,
        baseline.p50_ms,
        baseline.p99_ms,
        loaded.requests,
        loaded.p50_ms,
        loaded.p99_ms
    );
    eprintln!("{test}: mirror output:\n{}", end.stdout);
    assert_eq!((baseline.errors, loaded.errors), (0, 0));
    let report = read_report(&report_dir).unwrap();
    assert_eq!(end.code, Some(0), "{}\n{}", end.stdout, end.stderr);
    check_accounting(&report, completed, u64::from(WRK_CONNECTIONS));
    assert_eq!(count(&report, "/mismatched"), 0, "{}", report["mismatches"]);
    assert_eq!(count(&report, "/errors"), 0, "{}", report["error_details"]);
    assert_eq!(count(&report, "/matched"), count(&report, "/total"));
    assert!(
        count(&report, "/matched") >= 20,
        "the curl requests were mirrored"
    );
    assert!((report["mirror"]["matched_pct"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert!(report_dir.join("report.html").exists());
    assert!(end.stderr.contains("matched 100.00%"), "{}", end.stderr);
    // Sanity only: the mirror must not make production's clients wait for the shadow.
    assert!(
        loaded.p99_ms < baseline.p99_ms * 5.0 + 50.0,
        "p99 {:.2} ms with the mirror, {:.2} ms without",
        loaded.p99_ms,
        baseline.p99_ms
    );
}

#[test]
fn mirror_root_a_differing_build_differs_on_exactly_those_paths() {
    let test = "mirror_root_a_differing_build_differs_on_exactly_those_paths";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = production(test, dir.path()) else {
        return;
    };
    let report_dir = dir.path().join("report");
    let junit = dir.path().join("junit.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    let mirror = start_mirror(&p, &report_dir, "--variant b", &["--junit", &junit_arg]);
    let completed = curls(&p, 10);
    mirror.wait_counted(completed, Duration::from_secs(20));
    let end = mirror.stop();
    eprintln!("{test}: mirror output:\n{}", end.stdout);
    assert_eq!(end.code, Some(1), "{}\n{}", end.stdout, end.stderr);
    let report = read_report(&report_dir).unwrap();
    check_accounting(&report, completed, 0);
    assert_eq!(count(&report, "/mirror/dropped_total"), 0);
    assert_eq!(count(&report, "/matched"), 10);
    assert_eq!(count(&report, "/mismatched"), 10);
    let mismatches = report["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 10);
    for m in mismatches {
        assert!(m["target"].as_str().unwrap().starts_with("/orders/"), "{m}");
        assert_eq!(m["diffs"][0]["path"], "$.total", "{m}");
    }
    let first = mismatches
        .iter()
        .find(|m| m["target"] == "/orders/1")
        .unwrap();
    assert_eq!(
        (&first["diffs"][0]["expected"], &first["diffs"][0]["actual"]),
        (&10.into(), &11.into())
    );
    assert!(end.stdout.contains("    $.total: "), "{}", end.stdout);
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("tapline mirror")
    );
}

#[test]
fn mirror_root_a_slow_shadow_costs_mirror_requests_only() {
    let test = "mirror_root_a_slow_shadow_costs_mirror_requests_only";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = production(test, dir.path()) else {
        return;
    };
    let baseline = wrk(&p.guard.b, &url("/users/1"), 3, WRK_CONNECTIONS).unwrap();
    let report_dir = dir.path().join("report");
    let flags = [
        "--request-timeout",
        "500ms",
        "--max-in-flight",
        "2",
        "--queue",
        "8",
    ];
    let mirror = start_mirror(&p, &report_dir, "--sleep 2", &flags);
    let loaded = wrk(&p.guard.b, &url("/users/1"), 3, WRK_CONNECTIONS).unwrap();
    mirror.wait_counted(loaded.requests, Duration::from_secs(20));
    let end = mirror.stop();
    eprintln!(
        "{test}: production's clients, wrk -c {WRK_CONNECTIONS} -d 3s: without the mirror \
         {} requests, p99 {:.2} ms; with a shadow sleeping 2 s per request {} requests, \
         p99 {:.2} ms",
        baseline.requests, baseline.p99_ms, loaded.requests, loaded.p99_ms
    );
    eprintln!("{test}: mirror output:\n{}", end.stdout);
    assert_eq!((baseline.errors, loaded.errors), (0, 0));
    let report = read_report(&report_dir).unwrap();
    assert_eq!(end.code, Some(1), "errors fail the run: {}", end.stdout);
    check_accounting(&report, loaded.requests, u64::from(WRK_CONNECTIONS));
    let errors = count(&report, "/errors");
    let dropped = count(&report, "/mirror/dropped_total");
    assert!(
        count(&report, "/mirror/dropped/queue_full") > 0,
        "{}",
        report["mirror"]
    );
    assert_eq!(
        errors,
        count(&report, "/total"),
        "every sent request timed out"
    );
    assert!(errors + dropped >= loaded.requests, "{}", report["mirror"]);
    assert!(
        loaded.p99_ms < baseline.p99_ms * 5.0 + 50.0,
        "p99 {:.2} ms with the mirror, {:.2} ms without",
        loaded.p99_ms,
        baseline.p99_ms
    );
}

#[test]
fn mirror_root_a_killed_shadow_is_counted_not_felt() {
    let test = "mirror_root_a_killed_shadow_is_counted_not_felt";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = production(test, dir.path()) else {
        return;
    };
    let report_dir = dir.path().join("report");
    let mirror = start_mirror(&p, &report_dir, "", &[]);
    let mut completed = curls(&p, 5);
    mirror.wait_counted(completed, Duration::from_secs(20));
    let pid = mirror
        .build_pid()
        .expect("the mirror names the build's pid");
    // The build leads its own process group (sh -c and python).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    completed += curls(&p, 5);
    mirror.wait_counted(completed, Duration::from_secs(20));
    let end = mirror.stop();
    eprintln!("{test}: mirror output:\n{}", end.stdout);
    assert_eq!(end.code, Some(1), "{}", end.stdout);
    let report = read_report(&report_dir).unwrap();
    check_accounting(&report, completed, 0);
    assert_eq!(count(&report, "/matched"), 10, "before the kill");
    let failed = count(&report, "/errors") + count(&report, "/mirror/dropped/shadow_down");
    assert_eq!(failed, 10, "after the kill: {}", report["mirror"]);
    assert!(count(&report, "/errors") >= 1);
}

#[test]
fn mirror_root_dependency_calls_are_learned_live() {
    let test = "mirror_root_dependency_calls_are_learned_live";
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path()).unwrap();
    if !require_ebpf(test) || !require_tools(test, &["ip", "ping", "curl"]) {
        return;
    }
    let guard = NetnsGuard::new(test).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    // The dependency lives in B, so production's calls to it cross the captured veth.
    let dep = format!("http://{}:9000", Side::B.ipv4());
    let _dependency = Background::spawn_until(
        guard
            .b
            .command(scripts::python())
            .arg(&app)
            .args(["--port", "9000"]),
        "READY",
        Duration::from_secs(30),
    )
    .unwrap();
    let service = Background::spawn_until(
        guard.a.command(scripts::python()).arg(&app).args([
            "--port",
            &PORT.to_string(),
            "--dep",
            &dep,
        ]),
        "READY",
        Duration::from_secs(30),
    )
    .unwrap();
    let p = Production {
        guard,
        _service: service,
        app,
    };
    let report_dir = dir.path().join("report");
    let mirror = start_mirror(&p, &report_dir, &format!("--dep {dep}"), &[]);
    let completed = curls(&p, 5);
    mirror.wait_counted(completed, Duration::from_secs(20));
    let end = mirror.stop();
    eprintln!("{test}: mirror output:\n{}", end.stdout);
    assert_eq!(end.code, Some(0), "{}\n{}", end.stdout, end.stderr);
    let report = read_report(&report_dir).unwrap();
    check_accounting(&report, completed, 0);
    assert_eq!(count(&report, "/matched"), 10, "{}", report["mismatches"]);
    let mocks = &report["mirror"]["mocks"];
    assert_eq!(mocks["from"], "live", "{mocks}");
    assert_eq!(count(&report, "/mirror/mocks/learned"), 5, "{mocks}");
    assert_eq!(count(&report, "/mirror/mocks/exact"), 5, "{mocks}");
    assert_eq!(count(&report, "/mirror/mocks/unmatched"), 0, "{mocks}");
}
