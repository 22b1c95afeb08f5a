//! `tapline run` end to end: a real quote service that calls two dependencies by host name,
//! recorded with tcpdump in a namespace and imported, then run in tapline's ephemeral
//! environment against mocks of those dependencies: the recorded build reproduces every
//! response, the fixed build shows exactly the responses it changed; the environment reaches
//! neither the host nor the outside; nothing is left after success, failure, --timeout,
//! SIGTERM, or a SIGKILL followed by the next run; bad input gets one-line errors.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use nix::sys::signal::Signal;
use tapline_e2e::replay_support::report_json;
use tapline_e2e::run_support::{
    QuoteRecording, RUN_TIMEOUT, SERVICE_PORT, changed_by_fix, dependency_calls, env_gone,
    env_name, inbound_requests, process_gone, wait_gone, wait_pid,
};
use tapline_e2e::tapline::{check_input_error, check_no_crash};
use tapline_e2e::{Run, require_root, require_tools, scripts};

const TOOLS: [&str; 4] = ["ip", "tcpdump", "curl", "unshare"];

/// Root and the tools the recording needs; otherwise skips (or fails when required).
fn ready(test: &str) -> bool {
    require_root(test) && require_tools(test, &TOOLS)
}

/// The recording's port as a flag value.
fn port() -> String {
    SERVICE_PORT.to_string()
}

/// Asserts that the environment the run made is gone.
fn assert_env_gone(run_stdout: &str) -> String {
    let name = env_name(run_stdout).unwrap_or_else(|| panic!("no environment in:\n{run_stdout}"));
    if let Err(left) = env_gone(&name) {
        panic!("environment {name}: {left}");
    }
    name
}

fn stdout_and_stderr(run: &Run) -> String {
    format!("stdout:\n{}\nstderr:\n{}", run.stdout_text(), run.stderr)
}

#[test]
fn run_root_reproduces_the_recorded_build_against_mocked_dependencies() {
    if !ready("run_root_reproduces_the_recorded_build_against_mocked_dependencies") {
        return;
    }
    let recording = QuoteRecording::shared();
    let report = recording.scratch("reproduce").unwrap();
    let junit = report.join("junit.xml");
    let cmd = recording.app_cmd("buggy", "");
    let run = recording
        .run(&[
            "--cmd",
            &cmd,
            "--port",
            &port(),
            "--report",
            report.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .unwrap();
    check_no_crash(&run).unwrap();
    let out = run.stdout_text();
    assert_eq!(run.code(), Some(0), "{}", stdout_and_stderr(&run));
    let json = report_json(&report).unwrap();
    let total = u64::try_from(inbound_requests()).unwrap();
    assert_eq!(json["total"], total, "{json}");
    assert_eq!(json["matched"], total, "{json}");
    // Dependencies answered by the mocks, under the recorded names, every call exact.
    assert!(
        out.contains("mocks: 2 dependencies")
            && out.contains("inventory → 127.0.1.1:8081")
            && out.contains("pricing → 127.0.1.2:8082"),
        "{out}"
    );
    let calls = dependency_calls();
    assert!(
        out.contains(&format!(
            "mocks answered {calls} calls: {calls} exact, 0 closest, 0 unmatched"
        )),
        "{out}"
    );
    assert!(out.contains("build ready on port 8080"), "{out}");
    assert!(report.join("sut.stderr").exists() && junit.exists());
    assert_env_gone(&out);
}

#[test]
fn run_root_shows_exactly_the_responses_the_fix_changed() {
    if !ready("run_root_shows_exactly_the_responses_the_fix_changed") {
        return;
    }
    let recording = QuoteRecording::shared();
    let report = recording.scratch("fixed").unwrap();
    let cmd = recording.app_cmd("fixed", "");
    let run = recording
        .run(&[
            "--cmd",
            &cmd,
            "--port",
            &port(),
            "--report",
            report.to_str().unwrap(),
        ])
        .unwrap();
    check_no_crash(&run).unwrap();
    assert_eq!(run.code(), Some(1), "{}", stdout_and_stderr(&run));
    let json = report_json(&report).unwrap();
    let changed = u64::try_from(changed_by_fix()).unwrap();
    let total = u64::try_from(inbound_requests()).unwrap();
    assert_eq!(json["mismatched"], changed, "{json}");
    assert_eq!(json["matched"], total - changed, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    let out = run.stdout_text();
    assert!(
        out.contains(&format!("FAIL ({changed} mismatched)")),
        "{out}"
    );
    assert!(out.contains("$.total_cents"), "{out}");
    assert_env_gone(&out);
}

#[test]
fn run_root_environment_reaches_neither_the_host_nor_the_outside() {
    if !ready("run_root_environment_reaches_neither_the_host_nor_the_outside") {
        return;
    }
    let recording = QuoteRecording::shared();
    let dir = recording.scratch("isolation").unwrap();
    let results = dir.join("isolation.json");
    // Listeners of the host: on its loopback, and on every address.
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let everywhere = TcpListener::bind("0.0.0.0:0").unwrap();
    loopback.set_nonblocking(true).unwrap();
    everywhere.set_nonblocking(true).unwrap();
    // The host's own address, when it has a route to find it with.
    let host_address = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()))
        .ok()
        .map(|a| SocketAddr::new(a.ip(), everywhere.local_addr().unwrap().port()));
    let mut checks = format!(
        "{} {} --out {} --host-loopback-port {}",
        scripts::python().display(),
        recording.isolation.display(),
        results.display(),
        loopback.local_addr().unwrap().port()
    );
    if let Some(addr) = host_address {
        checks.push_str(&format!(" --host-addr {addr}"));
    }
    let cmd = format!("{checks} && exec {}", recording.app_cmd("buggy", ""));
    let run = recording.run(&["--cmd", &cmd, "--port", &port()]).unwrap();
    check_no_crash(&run).unwrap();
    assert_eq!(run.code(), Some(0), "{}", stdout_and_stderr(&run));
    let seen: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    // The environment's loopback is its own: the host's listener is not there.
    assert_eq!(seen["host_loopback"], "ECONNREFUSED", "{seen}");
    assert_eq!(seen["outside"], "ENETUNREACH", "{seen}");
    if host_address.is_some() {
        assert_eq!(seen["host_address"], "ENETUNREACH", "{seen}");
    }
    assert_eq!(seen["mock_status"], 200, "{seen}");
    assert_eq!(seen["mock_mark"], "matched", "{seen}");
    assert_eq!(seen["dns"], "failed", "{seen}");
    assert!(seen["dns_seconds"].as_f64().unwrap() < 2.0, "{seen}");
    assert_eq!(seen["interfaces"], serde_json::json!(["lo"]), "{seen}");
    for listener in [&loopback, &everywhere] {
        assert!(listener.accept().is_err(), "a connection reached the host");
    }
    assert_env_gone(&run.stdout_text());
}

/// A run of the slow build that writes its pid and an orphan's (out of its process group).
struct Slow {
    cmd: String,
    pid_file: std::path::PathBuf,
    orphan_file: std::path::PathBuf,
}

impl Slow {
    fn new(recording: &QuoteRecording, name: &str, delay_ms: u32) -> Self {
        let dir = recording.scratch(name).unwrap();
        let pid_file = dir.join("sut.pid");
        let orphan_file = dir.join("orphan.pid");
        let app = recording.app_cmd(
            "buggy",
            &format!(
                "--delay-ms {delay_ms} --orphan-pidfile {}",
                orphan_file.display()
            ),
        );
        let cmd = format!("echo $$ > {}; exec {app}", pid_file.display());
        Slow {
            cmd,
            pid_file,
            orphan_file,
        }
    }

    /// The build's and the orphan's process ids.
    fn pids(&self) -> (u32, u32) {
        (
            wait_pid(&self.pid_file, Duration::from_secs(10)).unwrap(),
            wait_pid(&self.orphan_file, Duration::from_secs(10)).unwrap(),
        )
    }

    fn assert_gone(&self) {
        let (sut, orphan) = self.pids();
        assert!(
            wait_gone(sut, Duration::from_secs(5)),
            "the build {sut} is left"
        );
        assert!(
            wait_gone(orphan, Duration::from_secs(5)),
            "the build's detached child {orphan} is left"
        );
    }
}

#[test]
fn run_root_tears_down_after_success_failure_and_timeout() {
    if !ready("run_root_tears_down_after_success_failure_and_timeout") {
        return;
    }
    let recording = QuoteRecording::shared();
    // Success (and a detached child of the build that must go too).
    let slow = Slow::new(recording, "teardown-success", 0);
    let run = recording
        .run(&["--cmd", &slow.cmd, "--port", &port()])
        .unwrap();
    assert_eq!(run.code(), Some(0), "{}", stdout_and_stderr(&run));
    assert_env_gone(&run.stdout_text());
    slow.assert_gone();
    // Failure.
    let fixed = recording.app_cmd("fixed", "");
    let run = recording
        .run(&["--cmd", &fixed, "--port", &port()])
        .unwrap();
    assert_eq!(run.code(), Some(1), "{}", stdout_and_stderr(&run));
    assert_env_gone(&run.stdout_text());
    // --timeout: every answer takes 10 s, the job may take 2 s.
    let slow = Slow::new(recording, "teardown-timeout", 10_000);
    let run = recording
        .run(&["--cmd", &slow.cmd, "--port", &port(), "--timeout", "2s"])
        .unwrap();
    check_no_crash(&run).unwrap();
    assert_eq!(run.code(), Some(1), "{}", stdout_and_stderr(&run));
    assert!(run.stderr.contains("--timeout 2s"), "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}",
        run.elapsed
    );
    assert_env_gone(&run.stdout_text());
    slow.assert_gone();
}

#[test]
fn run_root_tears_down_on_sigterm() {
    if !ready("run_root_tears_down_on_sigterm") {
        return;
    }
    let recording = QuoteRecording::shared();
    let slow = Slow::new(recording, "teardown-sigterm", 10_000);
    let mut job = recording
        .start(&["--cmd", &slow.cmd, "--port", &port()])
        .unwrap();
    job.wait_for("replaying", Duration::from_secs(60)).unwrap();
    job.signal(Signal::SIGTERM);
    let (status, lines, stderr) = job.finish(Duration::from_secs(30)).unwrap();
    let out = lines.join("\n");
    assert_eq!(status.code(), Some(143), "{out}\n{stderr}");
    assert!(out.contains("teardown done"), "{out}");
    assert_env_gone(&out);
    slow.assert_gone();
}

#[test]
fn run_root_after_sigkill_the_next_run_removes_what_was_left() {
    if !ready("run_root_after_sigkill_the_next_run_removes_what_was_left") {
        return;
    }
    let recording = QuoteRecording::shared();
    let slow = Slow::new(recording, "teardown-sigkill", 10_000);
    let mut job = recording
        .start(&["--cmd", &slow.cmd, "--port", &port()])
        .unwrap();
    job.wait_for("replaying", Duration::from_secs(60)).unwrap();
    let name = env_name(&job.lines().join("\n")).unwrap();
    job.signal(Signal::SIGKILL);
    let (status, _, _) = job.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(status.code(), None, "not killed");
    // Nothing tore it down; the next run removes it (or another test's run already did).
    let (sut, orphan) = slow.pids();
    if env_gone(&name).is_err() && !process_gone(sut) && !process_gone(orphan) {
        eprintln!("{name} and the build ({sut}, {orphan}) were left, as expected");
    }
    let cmd = recording.app_cmd("buggy", "");
    let run = recording.run(&["--cmd", &cmd, "--port", &port()]).unwrap();
    assert_eq!(run.code(), Some(0), "{}", stdout_and_stderr(&run));
    if let Err(left) = env_gone(&name) {
        panic!("stale environment {name}: {left}");
    }
    slow.assert_gone();
    assert_env_gone(&run.stdout_text());
}

#[test]
fn run_root_bad_input_gets_one_line_errors() {
    if !ready("run_root_bad_input_gets_one_line_errors") {
        return;
    }
    let recording = QuoteRecording::shared();
    let dir = recording.scratch("bad-input").unwrap();
    let app = recording.app_cmd("buggy", "");
    // A missing snapshot.
    let missing = dir.join("no-such-snapshot");
    let run = tapline_e2e::tapline::run(
        [
            "run",
            missing.to_str().unwrap(),
            "--cmd",
            &app,
            "--port",
            &port(),
        ],
        RUN_TIMEOUT,
    )
    .unwrap();
    check_input_error(&run, "no-such-snapshot").unwrap();
    // No recorded request to the port.
    let run = recording.run(&["--cmd", &app, "--port", "9999"]).unwrap();
    check_input_error(&run, "no recorded request to port 9999").unwrap();
    assert!(run.stderr.contains("127.0.0.1:8080"), "{}", run.stderr);
    // A build that exits at once: its stderr is quoted.
    let run = recording
        .run(&["--cmd", "echo boom-at-start >&2; exit 7", "--port", &port()])
        .unwrap();
    check_input_error(&run, "boom-at-start").unwrap();
    assert!(run.stderr.contains("exit status: 7"), "{}", run.stderr);
    assert_env_gone(&run.stdout_text());
    // A build that never listens.
    let run = recording
        .run(&[
            "--cmd",
            "echo still-starting >&2; exec sleep 30",
            "--port",
            &port(),
            "--ready-timeout",
            "1s",
        ])
        .unwrap();
    check_input_error(&run, "did not listen on port 8080 within 1s").unwrap();
    assert!(run.stderr.contains("still-starting"), "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_env_gone(&run.stdout_text());
    // Bad flags.
    let run = recording
        .run(&["--cmd", &app, "--port", &port(), "--env", "NOVALUE"])
        .unwrap();
    check_input_error(&run, "--env \"NOVALUE\"").unwrap();
    let run = recording
        .run(&["--cmd", &app, "--port", &port(), "--timeout", "soon"])
        .unwrap();
    check_input_error(&run, "--timeout \"soon\"").unwrap();
}

#[test]
fn run_root_without_privileges_names_the_capabilities() {
    if !ready("run_root_without_privileges_names_the_capabilities")
        || !require_tools(
            "run_root_without_privileges_names_the_capabilities",
            &["setpriv"],
        )
    {
        return;
    }
    let recording = QuoteRecording::shared();
    let binary = tapline_e2e::tapline::binary().unwrap();
    let app = recording.app_cmd("buggy", "");
    let mut command = std::process::Command::new("setpriv");
    command
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&binary)
        .arg("run")
        .arg(&recording.snapshot)
        .args(["--cmd", &app, "--port", &port()]);
    let run = tapline_e2e::run_with_timeout(&mut command, RUN_TIMEOUT).unwrap();
    check_no_crash(&run).unwrap();
    assert_eq!(run.code(), Some(3), "{}", stdout_and_stderr(&run));
    assert!(
        run.stderr.contains("CAP_SYS_ADMIN") && run.stderr.contains("CAP_NET_ADMIN"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}
