//! `tapline serve` and `tapline job` end to end, without root: the daemon on loopback, driven
//! with curl and with the `tapline job` client.
//! - authentication: no credentials 401 (with `WWW-Authenticate: Bearer`), a wrong token 403,
//!   the right token 200; over HTTPS a client certificate from the configured CA is enough, one
//!   from another CA fails the TLS handshake; no authentication configured: refused to start;
//! - bad job specs: 400 naming the field;
//! - 50 `load` jobs (replays of a small snapshot against `tapline mock`) submitted at once with
//!   `--max-concurrent 4`: never more than 4 run, all succeed, each report is served;
//! - jobs survive a graceful restart; queued and running jobs are cancelled; the lifetime
//!   limit fails a job that runs too long.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tapline_e2e::serve_support::{
    Api, Daemon, TOKEN, body_json, curl_exit, group_alive, make_certs, mock_target, small_snapshot,
    wait_final, wait_state,
};
use tapline_e2e::tapline::{self, check_input_error, check_no_crash};
use tapline_e2e::{Run, require_tools};

/// A data directory with a token file and the snapshot `shop` in it.
struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    tokens: PathBuf,
}

impl Setup {
    fn new(snapshot: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        std::fs::create_dir_all(data.join("snapshots")).unwrap();
        let tokens = root.join("tokens");
        std::fs::write(&tokens, format!("# the tests' token\n{TOKEN}\n")).unwrap();
        if snapshot {
            small_snapshot(&data.join("snapshots"), "shop").unwrap();
        }
        Setup {
            _dir: dir,
            root,
            data,
            tokens,
        }
    }

    fn start(&self, args: &[&str]) -> Daemon {
        let mut all = vec!["--token-file", self.tokens.to_str().unwrap()];
        all.extend_from_slice(args);
        Daemon::start(&self.data, &all).unwrap()
    }

    fn api(&self, daemon: &Daemon) -> Api {
        Api::new(&daemon.url, &self.root, Some(TOKEN))
    }
}

fn submit(api: &Api, json: &str) -> u64 {
    let answer = api.post("/api/v1/jobs", json).unwrap();
    let job = body_json(&answer).unwrap();
    assert_eq!(answer.status, 201, "{job}");
    assert_eq!(
        answer.header("Location"),
        Some(format!("/api/v1/jobs/{}", job["id"]))
    );
    assert_eq!(job["state"], "queued", "{job}");
    job["id"].as_u64().unwrap()
}

fn load_job(target: &str, duration: &str) -> String {
    format!(
        r#"{{"kind":"load","snapshot":"shop","target":"{target}","rate":"1%","duration":"{duration}"}}"#
    )
}

fn tapline_job(args: &[&str]) -> Run {
    let run = tapline::run(args, Duration::from_secs(120)).unwrap();
    if let Err(problem) = check_no_crash(&run) {
        panic!("{problem}");
    }
    run
}

#[test]
fn serve_refuses_to_start_without_authentication() {
    let setup = Setup::new(false);
    let data = setup.data.to_str().unwrap();
    let run = tapline_job(&["serve", "--data-dir", data, "--listen", "127.0.0.1:0"]);
    check_input_error(&run, "no authentication configured").unwrap();
    let short = setup.root.join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let run = tapline_job(&[
        "serve",
        "--data-dir",
        data,
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        short.to_str().unwrap(),
    ]);
    check_input_error(&run, "at least 16 characters").unwrap();
}

#[test]
fn serve_answers_401_without_a_token_403_with_a_wrong_one_and_200_with_the_right_one() {
    if !require_tools("serve_tokens", &["curl"]) {
        return;
    }
    let setup = Setup::new(false);
    let daemon = setup.start(&[]);
    assert!(
        daemon.url.starts_with("http://127.0.0.1:"),
        "{}",
        daemon.url
    );
    let anonymous = Api::new(&daemon.url, &setup.root, None);
    let answer = anonymous.get("/api/v1/jobs").unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("WWW-Authenticate").as_deref(),
        Some("Bearer realm=\"tapline\"")
    );
    assert!(body_json(&answer).unwrap()["error"].is_string());
    let wrong = Api::new(&daemon.url, &setup.root, Some("wrong-token-0123456789abc"));
    assert_eq!(wrong.get("/api/v1/jobs").unwrap().status, 403);
    let basic = anonymous.clone().with(&["-u", "user:pass"]);
    assert_eq!(basic.get("/api/v1/jobs").unwrap().status, 401);
    let api = setup.api(&daemon);
    let answer = api.get("/api/v1/jobs").unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(body_json(&answer).unwrap(), serde_json::json!({"jobs": []}));
    // Health is the only endpoint open to all.
    let health = anonymous.get("/api/v1/health").unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(body_json(&health).unwrap()["status"], "ok");
    // Every endpoint is behind authentication, unknown ones too.
    for path in ["/api/v1/snapshots", "/api/v1/jobs/1", "/api/v1/nothing"] {
        assert_eq!(anonymous.get(path).unwrap().status, 401, "{path}");
    }
    assert_eq!(api.get("/api/v1/nothing").unwrap().status, 404);
}

#[test]
fn serve_accepts_client_certificates_of_its_ca_only() {
    if !require_tools("serve_mtls", &["curl", "openssl"]) {
        return;
    }
    let setup = Setup::new(false);
    let certs = make_certs(&setup.root).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let daemon = setup.start(&[
        "--tls-cert",
        &path(&certs.server.0),
        "--tls-key",
        &path(&certs.server.1),
        "--client-ca",
        &path(&certs.ca),
    ]);
    assert!(
        daemon.url.starts_with("https://127.0.0.1:"),
        "{}",
        daemon.url
    );
    let ca = path(&certs.ca);
    let anonymous = Api::new(&daemon.url, &setup.root, None).with(&["--cacert", &ca]);
    assert_eq!(anonymous.get("/api/v1/jobs").unwrap().status, 401);
    let with_cert = anonymous.clone().with(&[
        "--cert",
        &path(&certs.client.0),
        "--key",
        &path(&certs.client.1),
    ]);
    assert_eq!(with_cert.get("/api/v1/jobs").unwrap().status, 200);
    assert_eq!(with_cert.get("/api/v1/snapshots").unwrap().status, 200);
    let with_token = Api::new(&daemon.url, &setup.root, Some(TOKEN)).with(&["--cacert", &ca]);
    assert_eq!(with_token.get("/api/v1/jobs").unwrap().status, 200);
    let wrong = Api::new(&daemon.url, &setup.root, Some("wrong-token-0123456789abc"))
        .with(&["--cacert", &ca]);
    assert_eq!(wrong.get("/api/v1/jobs").unwrap().status, 403);
    // A certificate from another CA fails the handshake: no HTTP answer at all.
    let url = format!("{}/api/v1/jobs", daemon.url);
    let (code, stderr) = curl_exit(&[
        "--cacert",
        &ca,
        "--cert",
        &path(&certs.stranger.0),
        "--key",
        &path(&certs.stranger.1),
        "-w",
        "%{http_code}",
        &url,
    ])
    .unwrap();
    assert_ne!(
        code,
        Some(0),
        "curl with a stranger's certificate: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("alert") || stderr.contains("SSL"),
        "{stderr}"
    );

    // The client of `tapline job` does the same.
    let server = daemon.url.clone();
    let cli = |cert: &(PathBuf, PathBuf)| {
        tapline_job(&[
            "job",
            "list",
            "--server",
            &server,
            "--ca",
            &ca,
            "--cert",
            &path(&cert.0),
            "--key",
            &path(&cert.1),
        ])
    };
    let ok = cli(&certs.client);
    assert_eq!(ok.code(), Some(0), "{}", ok.stderr);
    assert!(ok.stdout_text().starts_with("ID "), "{}", ok.stdout_text());
    let refused = cli(&certs.stranger);
    assert_eq!(refused.code(), Some(3), "{}", refused.stderr);
    let no_ca = tapline_job(&["job", "list", "--server", &server, "--token", TOKEN]);
    assert_eq!(
        no_ca.code(),
        Some(3),
        "the server's CA is not a public one: {}",
        no_ca.stderr
    );
}

#[test]
fn serve_refuses_bad_specs_naming_the_field() {
    if !require_tools("serve_bad_specs", &["curl"]) {
        return;
    }
    let setup = Setup::new(true);
    let daemon = setup.start(&[]);
    let api = setup.api(&daemon);
    let cases = [
        (r#"{"kind":"deploy","snapshot":"shop"}"#, "kind"),
        (r#"{"snapshot":"shop"}"#, "kind"),
        (
            r#"{"kind":"load","snapshot":"nope","target":"http://127.0.0.1:9"}"#,
            "snapshot",
        ),
        (
            r#"{"kind":"load","snapshot":"../shop","target":"http://127.0.0.1:9"}"#,
            "snapshot",
        ),
        (
            r#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","colour":"red"}"#,
            "colour",
        ),
        (
            r#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","rate":"fast"}"#,
            "rate",
        ),
        (
            r#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","assert":"p99<<2"}"#,
            "assert",
        ),
        (
            r#"{"kind":"load","snapshot":"shop","target":"ftp://x"}"#,
            "target",
        ),
        (
            r#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","duration":"soon"}"#,
            "duration",
        ),
        (r#"{"kind":"run","snapshot":"shop","port":8080}"#, "cmd"),
        (
            r#"{"kind":"run","snapshot":"shop","cmd":"./app","port":70000}"#,
            "port",
        ),
        (
            r#"{"kind":"run","snapshot":"shop","cmd":"./app","port":0}"#,
            "port",
        ),
        (
            r#"{"kind":"run","snapshot":"shop","cmd":"./app","port":80,"env":["1X=y"]}"#,
            "env",
        ),
        (
            r#"{"kind":"mirror","iface":"eth0","port":"eighty","cmd":"./app"}"#,
            "port",
        ),
    ];
    for (spec, field) in cases {
        let answer = api.post("/api/v1/jobs", spec).unwrap();
        let body = body_json(&answer).unwrap();
        assert_eq!(answer.status, 400, "{spec}: {body}");
        assert_eq!(body["field"], field, "{spec}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let not_json = api.post("/api/v1/jobs", "{nope").unwrap();
    assert_eq!(not_json.status, 400);
    assert!(
        body_json(&not_json).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    let huge = format!(
        r#"{{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","filter":"{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(api.post("/api/v1/jobs", &huge).unwrap().status, 413);
    let answer = api.get("/api/v1/jobs?state=done").unwrap();
    assert_eq!(
        (answer.status, &body_json(&answer).unwrap()["field"]),
        (400, &Value::from("state"))
    );
    assert_eq!(api.get("/api/v1/jobs/x").unwrap().status, 400);
    assert_eq!(api.get("/api/v1/jobs/99").unwrap().status, 404);
    // Nothing was queued.
    assert_eq!(
        api.json("/api/v1/jobs").unwrap()["jobs"],
        serde_json::json!([])
    );
    // The snapshot is listed with its manifest.
    let snapshots = api.json("/api/v1/snapshots").unwrap();
    assert_eq!(snapshots["snapshots"][0]["name"], "shop", "{snapshots}");
    assert_eq!(
        snapshots["snapshots"][0]["manifest"]["rrpairs"], 3,
        "{snapshots}"
    );
}

/// The most intervals `[started, finished)` open at one time.
fn most_at_once(jobs: &[Value]) -> usize {
    let mut edges: Vec<(String, i32)> = Vec::new();
    for job in jobs {
        edges.push((job["started"].as_str().unwrap().to_owned(), 1));
        edges.push((job["finished"].as_str().unwrap().to_owned(), -1));
    }
    // At equal times an end comes before a start.
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    usize::try_from(most).unwrap()
}

#[test]
fn serve_runs_fifty_load_jobs_four_at_a_time() {
    if !require_tools("serve_fifty", &["curl"]) {
        return;
    }
    let setup = Setup::new(true);
    let mock = mock_target(&setup.data.join("snapshots/shop")).unwrap();
    let target = format!("http://{}", mock.addr().unwrap());
    let daemon = setup.start(&["--max-concurrent", "4"]);
    let api = setup.api(&daemon);
    let started = Instant::now();
    let ids: Vec<u64> = (0..50)
        .map(|_| submit(&api, &load_job(&target, "1s")))
        .collect();
    let mut most_running = 0;
    loop {
        let running = api.json("/api/v1/jobs?state=running").unwrap()["jobs"]
            .as_array()
            .unwrap()
            .len();
        assert!(running <= 4, "{running} jobs running at once");
        most_running = most_running.max(running);
        let live = ["queued", "running"]
            .iter()
            .map(|s| {
                api.json(&format!("/api/v1/jobs?state={s}")).unwrap()["jobs"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum::<usize>();
        if live == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "50 jobs took too long"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    assert_eq!(most_running, 4, "the queue never filled the 4 slots");
    let jobs = api.json("/api/v1/jobs").unwrap()["jobs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(jobs.len(), 50);
    for job in &jobs {
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["exit_code"], 0, "{job}");
        assert_eq!(job["summary"]["passed"], true, "{job}");
        assert_eq!(
            job["reports"],
            serde_json::json!(["json", "html", "junit"]),
            "{job}"
        );
    }
    assert_eq!(most_at_once(&jobs), 4, "by the recorded times");
    for id in &ids {
        let answer = api.get(&format!("/api/v1/jobs/{id}/report")).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("Content-Type").as_deref(),
            Some("application/json")
        );
        let report = body_json(&answer).unwrap();
        assert_eq!(report["passed"], true, "{report}");
        assert!(report["total"].as_u64().unwrap() >= 3, "{report}");
        assert_eq!(report["total"], report["matched"], "{report}");
    }
    let junit = api
        .get(&format!("/api/v1/jobs/{}/report?format=junit", ids[0]))
        .unwrap();
    assert!(String::from_utf8_lossy(&junit.body).contains("<testsuite"));
    let html = api
        .get(&format!("/api/v1/jobs/{}/report?format=html", ids[0]))
        .unwrap();
    assert_eq!(
        html.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    eprintln!("50 load jobs of 1s, 4 at a time: {elapsed:.1?}");
    drop(daemon);
    mock.stop().unwrap();
}

#[test]
fn serve_keeps_jobs_across_a_graceful_restart() {
    if !require_tools("serve_restart", &["curl"]) {
        return;
    }
    let setup = Setup::new(true);
    let mock = mock_target(&setup.data.join("snapshots/shop")).unwrap();
    let target = format!("http://{}", mock.addr().unwrap());
    let daemon = setup.start(&["--max-concurrent", "1", "--cancel-grace", "2s"]);
    let api = setup.api(&daemon);
    let done = submit(&api, &load_job(&target, "200ms"));
    let done_job = wait_final(&api, done, Duration::from_secs(60)).unwrap();
    assert_eq!(done_job["state"], "succeeded", "{done_job}");
    let long = submit(&api, &load_job(&target, "60s"));
    let waiting = submit(&api, &load_job(&target, "200ms"));
    let running = wait_state(&api, long, "running", Duration::from_secs(30)).unwrap();
    let pid = i32::try_from(running["pid"].as_i64().unwrap()).unwrap();
    let status = daemon.stop(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !group_alive(pid),
        "the running job's process group outlived the daemon"
    );

    let daemon = setup.start(&["--max-concurrent", "1"]);
    let api = setup.api(&daemon);
    let after = api.json(&format!("/api/v1/jobs/{done}")).unwrap();
    assert_eq!(after, done_job, "a finished job is kept as it was");
    assert_eq!(
        api.get(&format!("/api/v1/jobs/{done}/report"))
            .unwrap()
            .status,
        200
    );
    let stopped = api.json(&format!("/api/v1/jobs/{long}")).unwrap();
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert_eq!(
        stopped["reason"],
        format!("control plane stopped while the job was running (pid {pid})"),
        "{stopped}"
    );
    // The queued job waited for the next start and runs now.
    let ran = wait_final(&api, waiting, Duration::from_secs(60)).unwrap();
    assert_eq!(ran["state"], "succeeded", "{ran}");
    drop(daemon);
    mock.stop().unwrap();
}

#[test]
fn serve_cancels_queued_and_running_jobs_and_limits_their_lifetime() {
    if !require_tools("serve_cancel", &["curl"]) {
        return;
    }
    let setup = Setup::new(true);
    let mock = mock_target(&setup.data.join("snapshots/shop")).unwrap();
    let target = format!("http://{}", mock.addr().unwrap());
    let daemon = setup.start(&[
        "--max-concurrent",
        "1",
        "--cancel-grace",
        "2s",
        "--max-job-lifetime",
        "3s",
    ]);
    let api = setup.api(&daemon);
    let running = submit(&api, &load_job(&target, "60s"));
    let queued = submit(&api, &load_job(&target, "60s"));
    let job = wait_state(&api, running, "running", Duration::from_secs(30)).unwrap();
    let pid = i32::try_from(job["pid"].as_i64().unwrap()).unwrap();

    let answer = api
        .call(&["-X", "DELETE"], &format!("/api/v1/jobs/{queued}"))
        .unwrap();
    assert_eq!(answer.status, 202);
    let cancelled = body_json(&answer).unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["reason"], "cancelled while queued");
    assert_eq!(cancelled["started"], Value::Null);

    let answer = api
        .post(&format!("/api/v1/jobs/{running}/cancel"), "")
        .unwrap();
    assert_eq!(
        answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let ended = wait_final(&api, running, Duration::from_secs(10)).unwrap();
    assert_eq!(ended["state"], "cancelled", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by request"),
        "{ended}"
    );
    assert!(
        !group_alive(pid),
        "the cancelled job's process group is alive"
    );
    // An ended job cannot be cancelled again.
    let again = api
        .post(&format!("/api/v1/jobs/{running}/cancel"), "")
        .unwrap();
    assert_eq!(again.status, 409);

    // A job running past the lifetime limit is stopped and fails.
    let long = submit(&api, &load_job(&target, "60s"));
    let started = Instant::now();
    let ended = wait_final(&api, long, Duration::from_secs(30)).unwrap();
    assert_eq!(ended["state"], "failed", "{ended}");
    assert_eq!(
        ended["reason"], "exceeded the job lifetime limit of 3s",
        "{ended}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(daemon);
    mock.stop().unwrap();
}

#[test]
fn job_cli_submits_watches_and_fetches_reports() {
    if !require_tools("job_cli", &["curl"]) {
        return;
    }
    let setup = Setup::new(true);
    let mock = mock_target(&setup.data.join("snapshots/shop")).unwrap();
    let target = format!("http://{}", mock.addr().unwrap());
    let daemon = setup.start(&[]);
    let server = daemon.url.clone();
    let tokens = setup.tokens.to_str().unwrap();
    let base = ["job", "--server", &server, "--token-file", tokens];
    let with = |extra: &[&str]| {
        let mut all: Vec<&str> = base.to_vec();
        all.extend_from_slice(extra);
        tapline_job(&all)
    };
    let run = with(&[
        "submit",
        "--watch",
        "--",
        "load",
        "shop",
        "--target",
        &target,
        "--rate",
        "1%",
        "--duration",
        "500ms",
    ]);
    let out = run.stdout_text();
    assert_eq!(run.code(), Some(0), "{out}\n{}", run.stderr);
    assert!(out.starts_with("job 1 queued (load)\n"), "{out}");
    assert!(out.contains("job 1 running (pid "), "{out}");
    assert!(out.contains("  | result: PASS"), "{out}");
    assert!(
        out.trim_end()
            .ends_with("job 1 succeeded (reports: json, html, junit)"),
        "{out}"
    );
    let list = with(&["list"]).stdout_text();
    assert!(
        list.lines()
            .nth(1)
            .unwrap()
            .starts_with("1      load    succeeded"),
        "{list}"
    );
    let show: Value = serde_json::from_slice(&with(&["show", "1"]).stdout).unwrap();
    assert_eq!(show["argv"][0], "replay", "{show}");
    let junit = setup.root.join("junit.xml");
    let report = with(&[
        "report",
        "1",
        "--format",
        "junit",
        "--out",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(report.code(), Some(0), "{}", report.stderr);
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite")
    );
    // A failing job: the target is gone, replay exits 2 and watch passes that on.
    let run = with(&[
        "submit",
        "--watch",
        "--",
        "load",
        "shop",
        "--target",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(run.code(), Some(2), "{}", run.stdout_text());
    assert!(
        run.stdout_text().contains(
            "job 2 failed: exit code 2: bad input: target http://127.0.0.1:9 is unreachable"
        ),
        "{}",
        run.stdout_text()
    );
    // Bad input to the client itself: exit 2 and one line.
    let bad = with(&[
        "submit", "--", "load", "shop", "--target", &target, "--rate", "fast",
    ]);
    check_input_error(&bad, "rate").unwrap();
    let bad = with(&["submit", "--", "deploy"]);
    check_input_error(&bad, "deploy").unwrap();
    let spec = setup.root.join("spec.json");
    std::fs::write(
        &spec,
        r#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:9","retries":3}"#,
    )
    .unwrap();
    let bad = with(&["submit", "--spec", spec.to_str().unwrap()]);
    check_input_error(&bad, "retries").unwrap();
    drop(daemon);
    mock.stop().unwrap();
}
