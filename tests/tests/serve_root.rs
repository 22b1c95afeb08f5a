//! `tapline serve` after a crash: the daemon is killed with SIGKILL while a job runs, then
//! started again. The job shows `failed` with the reason, its process group is gone and, for
//! a `run` job, so are its ephemeral environment (namespace file, folder, veths), the build
//! and the build's detached child.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tapline_e2e::run_support::{
    QuoteRecording, SERVICE_PORT, env_gone, env_name, wait_gone, wait_pid,
};
use tapline_e2e::serve_support::{
    Api, Daemon, TOKEN, body_json, group_alive, mock_target, small_snapshot, wait_final, wait_state,
};
use tapline_e2e::{require_root, require_tools};

/// A data directory with a token file (and the snapshot `shop` when asked).
fn setup(dir: &Path, snapshot: bool) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("snapshots")).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    if snapshot {
        small_snapshot(&data.join("snapshots"), "shop").unwrap();
    }
    (data, tokens)
}

fn start(data: &Path, tokens: &Path) -> Daemon {
    Daemon::start(data, &["--token-file", tokens.to_str().unwrap()]).unwrap()
}

fn submit(api: &Api, json: &str) -> u64 {
    let answer = api.post("/api/v1/jobs", json).unwrap();
    let job = body_json(&answer).unwrap();
    assert_eq!(answer.status, 201, "{job}");
    job["id"].as_u64().unwrap()
}

/// Waits until `file` contains `marker`; returns its text.
fn wait_text(file: &Path, marker: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(marker) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {marker:?} after {limit:?}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The host's interfaces named like tapline's veths.
fn tapline_veths() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .filter(|name| name.starts_with("tlh") || name.starts_with("tle"))
        .collect()
}

#[test]
fn serve_root_fails_a_load_job_the_killed_daemon_left_running() {
    const TEST: &str = "serve_root_fails_a_load_job_the_killed_daemon_left_running";
    if !require_root(TEST) || !require_tools(TEST, &["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, tokens) = setup(dir.path(), true);
    let mock = mock_target(&data.join("snapshots/shop")).unwrap();
    let target = format!("http://{}", mock.addr().unwrap());
    let daemon = start(&data, &tokens);
    let api = Api::new(&daemon.url, dir.path(), Some(TOKEN));
    let id = submit(
        &api,
        &format!(
            r#"{{"kind":"load","snapshot":"shop","target":"{target}","rate":"1%","duration":"120s"}}"#
        ),
    );
    let job = wait_state(&api, id, "running", Duration::from_secs(30)).unwrap();
    let pid = i32::try_from(job["pid"].as_i64().unwrap()).unwrap();
    assert!(group_alive(pid));
    daemon.kill9();

    let daemon = start(&data, &tokens);
    let api = Api::new(&daemon.url, dir.path(), Some(TOKEN));
    let job = api.json(&format!("/api/v1/jobs/{id}")).unwrap();
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["reason"],
        format!("control plane stopped while the job was running (pid {pid})"),
        "{job}"
    );
    assert!(job["finished"].is_string(), "{job}");
    assert!(!group_alive(pid), "the job's process group {pid} is alive");
    let said = daemon.stdout.lock().unwrap().clone();
    assert!(
        said.contains(&format!("job {id} failed: control plane stopped")),
        "{said}"
    );
    // The restarted daemon runs jobs as before.
    let next = submit(
        &api,
        &format!(
            r#"{{"kind":"load","snapshot":"shop","target":"{target}","rate":"1%","duration":"200ms"}}"#
        ),
    );
    let done = wait_final(&api, next, Duration::from_secs(60)).unwrap();
    assert_eq!(done["state"], "succeeded", "{done}");
    drop(daemon);
    mock.stop().unwrap();
}

#[test]
fn serve_root_removes_the_environment_of_a_run_job_the_killed_daemon_left() {
    const TEST: &str = "serve_root_removes_the_environment_of_a_run_job_the_killed_daemon_left";
    if !require_root(TEST) || !require_tools(TEST, &["curl", "ip", "tcpdump", "unshare"]) {
        return;
    }
    let recording = QuoteRecording::shared();
    let dir = recording.scratch("serve-root-run").unwrap();
    let (data, tokens) = setup(&dir, false);
    // A slow build that also leaves a detached child out of its process group.
    let pid_file = dir.join("sut.pid");
    let orphan_file = dir.join("orphan.pid");
    let app = recording.app_cmd(
        "buggy",
        &format!(
            "--delay-ms 10000 --orphan-pidfile {}",
            orphan_file.display()
        ),
    );
    let cmd = format!("echo $$ > {}; exec {app}", pid_file.display());
    let veths_before = tapline_veths();

    let daemon = start(&data, &tokens);
    let api = Api::new(&daemon.url, &dir, Some(TOKEN));
    let spec = serde_json::json!({
        "kind": "run",
        "snapshot": recording.snapshot.to_str().unwrap(),
        "cmd": cmd,
        "port": SERVICE_PORT,
    });
    let id = submit(&api, &spec.to_string());
    let job = wait_state(&api, id, "running", Duration::from_secs(30)).unwrap();
    let pid = i32::try_from(job["pid"].as_i64().unwrap()).unwrap();
    let stdout = data.join(format!("jobs/{id}/stdout.log"));
    let text = wait_text(&stdout, "replaying", Duration::from_secs(90));
    let name = env_name(&text).unwrap_or_else(|| panic!("no environment in:\n{text}"));
    let sut = wait_pid(&pid_file, Duration::from_secs(10)).unwrap();
    let orphan = wait_pid(&orphan_file, Duration::from_secs(10)).unwrap();
    assert!(
        env_gone(&name).is_err(),
        "the environment {name} is not there while running"
    );
    daemon.kill9();

    let daemon = start(&data, &tokens);
    let api = Api::new(&daemon.url, &dir, Some(TOKEN));
    let job = wait_final(&api, id, Duration::from_secs(5)).unwrap();
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["reason"],
        format!("control plane stopped while the job was running (pid {pid})"),
        "{job}"
    );
    assert!(!group_alive(pid), "the job's process group {pid} is alive");
    assert!(
        wait_gone(sut, Duration::from_secs(10)),
        "the build {sut} is left"
    );
    assert!(
        wait_gone(orphan, Duration::from_secs(10)),
        "the build's detached child {orphan} is left"
    );
    if let Err(left) = env_gone(&name) {
        panic!("environment {name}: {left}");
    }
    // No veth is left (`tapline run` environments are loopback only today; a veth of a
    // later version would show here).
    let left: Vec<String> = tapline_veths().difference(&veths_before).cloned().collect();
    assert!(left.is_empty(), "veths left: {left:?}");
    let said = daemon.stdout.lock().unwrap().clone();
    eprintln!("{said}");
}

#[test]
fn serve_root_runs_a_tapline_run_submitted_with_server() {
    const TEST: &str = "serve_root_runs_a_tapline_run_submitted_with_server";
    if !require_root(TEST) || !require_tools(TEST, &["curl", "ip", "tcpdump", "unshare"]) {
        return;
    }
    let recording = QuoteRecording::shared();
    let dir = recording.scratch("serve-root-run-server").unwrap();
    let (data, tokens) = setup(&dir, false);
    let daemon = start(&data, &tokens);
    let report = dir.join("report");
    let junit = dir.join("junit.xml");
    let out = Command::new(tapline_e2e::tapline::binary().unwrap())
        .arg("run")
        .arg(&recording.snapshot)
        .args(["--cmd", &recording.app_cmd("buggy", "")])
        .args(["--port", &SERVICE_PORT.to_string()])
        .args(["--server", &daemon.url, "--token-file"])
        .arg(&tokens)
        .arg("--report")
        .arg(&report)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("job 1 queued (run)"), "{stdout}");
    assert!(stdout.contains("job 1 succeeded"), "{stdout}");
    assert!(stdout.contains("result: PASS"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert!(json.is_object(), "{json}");
    assert!(report.join("report.html").is_file());
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(junit_text.contains("<testsuite"), "{junit_text}");

    // The same run with a wrong token is refused before anything runs.
    let wrong = dir.join("wrong-token");
    std::fs::write(&wrong, "not-the-token-0123456789\n").unwrap();
    let out = Command::new(tapline_e2e::tapline::binary().unwrap())
        .arg("run")
        .arg(&recording.snapshot)
        .args(["--cmd", "true", "--port", &SERVICE_PORT.to_string()])
        .args(["--server", &daemon.url, "--token-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token"), "{stderr}");
}
