//! `tapline mock` end to end: real traffic from a Python client to two real Python HTTP
//! dependencies, captured on a namespace's loopback with tcpdump and imported, then answered
//! by `tapline mock` to curl: byte-identical bodies and statuses, the n-th identical call the
//! n-th answer, two dependencies by `Host`, the marked no-match answer, the recorded latency,
//! and the summary on SIGTERM. Tests without root use a capture made by hand.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use tapline_e2e::mock_support::{
    CLIENT_PY, CurlAnswer, DEPENDENCY_PY, MockProcess, curl, wait_until_settled, write_http_pcap,
    write_script,
};
use tapline_e2e::tapline::{self, check_input_error, check_no_crash};
use tapline_e2e::{
    Background, Netns, NetnsGuard, Tcpdump, require_root, require_tools, run_checked, scripts,
};

const ALPHA: u16 = 18081;
const BETA: u16 = 18082;
const START: Duration = Duration::from_secs(60);

/// The outbound calls of the "service": `PORT:METHOD:TARGET[:BODY]`, in order.
const CALLS: [&str; 15] = [
    "18081:GET:/v1/status",
    "18082:GET:/v1/status",
    "18081:GET:/v1/counter/a",
    "18081:GET:/v1/counter/a",
    "18082:GET:/v1/counter/a",
    "18081:GET:/v1/counter/a",
    "18081:GET:/v1/items/7",
    "18081:GET:/v1/binary/3000",
    "18082:GET:/v1/chunked/5000",
    "18081:POST:/v1/echo:hello mock",
    "18081:POST:/v1/echo:second body",
    "18081:GET:/v1/fail",
    "18081:GET:/v1/missing",
    "18081:GET:/v1/slow",
    "18081:GET:/v1/items/7?view=full",
];

/// One call as the client saw it.
#[derive(Debug, Deserialize)]
struct Seen {
    port: u16,
    method: String,
    target: String,
    status: u16,
    body_hex: String,
}

/// Records the calls of [`CALLS`] to the two dependencies in `ns` with tcpdump on its loopback;
/// returns the snapshot and what the client saw.
fn record(ns: &Netns, dir: &Path) -> (std::path::PathBuf, Vec<Seen>) {
    let dependency = write_script(dir, "dependency.py", DEPENDENCY_PY).unwrap();
    let client = write_script(dir, "client.py", CLIENT_PY).unwrap();
    let servers: Vec<Background> = [(ALPHA, "alpha"), (BETA, "beta")]
        .iter()
        .map(|(port, name)| {
            Background::spawn_until(
                ns.command(scripts::python()).arg(&dependency).args([
                    "--port",
                    &port.to_string(),
                    "--name",
                    name,
                ]),
                "READY",
                START,
            )
            .unwrap()
        })
        .collect();
    let pcap = dir.join("dependencies.pcap");
    let filter = format!("tcp port {ALPHA} or tcp port {BETA}");
    let capture = Tcpdump::start(ns, "lo", &pcap, &[filter.as_str()]).unwrap();
    let seen_file = dir.join("seen.json");
    run_checked(
        ns.command(scripts::python())
            .arg(&client)
            .arg("--out")
            .arg(&seen_file)
            .args(CALLS),
        Duration::from_secs(60),
    )
    .unwrap();
    // tcpdump writes the last block up to a second after the last packet.
    wait_until_settled(&pcap, Duration::from_millis(1500), Duration::from_secs(10));
    let summary = capture.stop().unwrap();
    drop(servers);
    assert_eq!(summary.dropped_by_kernel, 0, "{summary:?}");
    let seen: Vec<Seen> =
        serde_json::from_str(&std::fs::read_to_string(&seen_file).unwrap()).unwrap();
    assert_eq!(seen.len(), CALLS.len());

    let snap = dir.join("snap");
    tapline::import(&pcap, &snap, None)
        .unwrap()
        .checked(tapline::TAPLINE_TIMEOUT)
        .unwrap();
    let run = tapline::inspect(&snap).unwrap();
    let pairs = run.stdout_text().lines().count();
    assert_eq!(pairs, CALLS.len(), "pairs in the snapshot");
    (snap, seen)
}

/// Asks the mock at `mock` for `target` as the dependency on `port` (curl connects to the mock
/// but sends the dependency's Host), with `body` as a POST body.
fn ask(
    ns: &Netns,
    dir: &Path,
    mock: std::net::SocketAddr,
    port: u16,
    method: &str,
    target: &str,
    body: Option<&str>,
) -> CurlAnswer {
    let connect_to = format!("127.0.0.1:{port}:{}:{}", mock.ip(), mock.port());
    let url = format!("http://127.0.0.1:{port}{target}");
    let mut args = vec!["--connect-to", &connect_to, "-X", method];
    let body_file = dir.join("request.body");
    let data_arg;
    if let Some(body) = body {
        std::fs::write(&body_file, body).unwrap();
        data_arg = format!("@{}", body_file.display());
        args.push("--data-binary");
        args.push(&data_arg);
    }
    args.push(&url);
    curl(ns.command("curl"), dir, &args).unwrap()
}

fn start_mock(ns: &Netns, snap: &Path, extra: &[&str]) -> MockProcess {
    let mut command = ns.command(tapline::binary().unwrap());
    command
        .arg("mock")
        .arg(snap)
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(extra);
    MockProcess::start(&mut command, START).unwrap()
}

#[test]
fn mock_root_answers_recorded_dependencies() {
    const TEST: &str = "mock_root_answers_recorded_dependencies";
    if !require_root(TEST) || !require_tools(TEST, &["ip", "tcpdump", "curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let guard = NetnsGuard::new(TEST).unwrap();
    let ns = &guard.a;
    let (snap, seen) = record(ns, dir);

    let mock = start_mock(ns, &snap, &["--service", "127.0.0.1"]);
    let addr = mock.addr().unwrap();
    // The calls again, in the same order: the same statuses and bodies, byte for byte; the
    // counter's identical calls get their answers in the recorded order.
    let mut slow_seconds = None;
    for (call, want) in CALLS.iter().zip(&seen) {
        let body = call.splitn(4, ':').nth(3);
        let got = ask(ns, dir, addr, want.port, &want.method, &want.target, body);
        assert_eq!(got.status, want.status, "{call}: status");
        assert!(
            got.body == hex::decode(&want.body_hex).unwrap(),
            "{call}: body differs:\n{}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(
            got.header("X-Tapline-Mock").as_deref(),
            Some("matched"),
            "{call}"
        );
        if want.target == "/v1/slow" {
            slow_seconds = Some(got.seconds);
        }
    }
    let counter: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.target == "/v1/counter/a" && s.port == ALPHA)
        .collect();
    assert_eq!(counter.len(), 3);
    assert_ne!(
        counter[0].body_hex, counter[1].body_hex,
        "the dependency answered identical calls alike"
    );
    // Past the last recorded answer, the last one again.
    let fourth = ask(ns, dir, addr, ALPHA, "GET", "/v1/counter/a", None);
    assert_eq!(hex::encode(&fourth.body), counter[2].body_hex);
    // Two dependencies, one listener: Host decides.
    let alpha = ask(ns, dir, addr, ALPHA, "GET", "/v1/status", None);
    let beta = ask(ns, dir, addr, BETA, "GET", "/v1/status", None);
    assert!(String::from_utf8_lossy(&alpha.body).contains("alpha"));
    assert!(String::from_utf8_lossy(&beta.body).contains("beta"));
    // A near request gets the closest recorded answer.
    let near = ask(ns, dir, addr, ALPHA, "GET", "/v1/items/99", None);
    assert_eq!(near.status, 200);
    assert!(
        String::from_utf8_lossy(&near.body).contains("\"item\": \"7\""),
        "{near:?}"
    );
    // Nothing near: the marked no-match answer.
    let none = ask(ns, dir, addr, ALPHA, "GET", "/v2/nothing/here", None);
    assert_eq!(none.status, 599);
    assert_eq!(none.header("X-Tapline-Mock").as_deref(), Some("no-match"));
    let json: serde_json::Value = serde_json::from_slice(&none.body).unwrap();
    assert_eq!(json["request"]["target"], "/v2/nothing/here");
    assert_eq!(json["scope"], format!("127.0.0.1:{ALPHA}"));
    assert!(!json["closest"].as_array().unwrap().is_empty());

    let stopped = mock.stop().unwrap();
    eprintln!("{}", stopped.stdout);
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let n = CALLS.len() as u64;
    assert_eq!(stopped.count("requests"), Some(n + 5));
    assert_eq!(stopped.count("matched exactly"), Some(n + 3));
    assert_eq!(stopped.count("matched closest"), Some(1));
    assert_eq!(stopped.count("unmatched"), Some(1));
    assert!(
        stopped.stderr.contains("/v2/nothing/here"),
        "the no-match is logged: {}",
        stopped.stderr
    );

    // The recorded latency: /v1/slow took 300 ms; without --latency the mock answers at once.
    let fast = slow_seconds.unwrap();
    assert!(fast < 0.2, "/v1/slow took {fast}s without --latency");
    let alpha_only = format!("127.0.0.1:{ALPHA}");
    let mock = start_mock(
        ns,
        &snap,
        &["--latency", "recorded", "--dependency", &alpha_only],
    );
    let addr = mock.addr().unwrap();
    let slow = ask(ns, dir, addr, ALPHA, "GET", "/v1/slow", None);
    let quick = ask(ns, dir, addr, ALPHA, "GET", "/v1/items/7", None);
    assert!(
        slow.seconds >= 0.28 && slow.seconds < 2.0,
        "/v1/slow took {}s with --latency recorded",
        slow.seconds
    );
    assert!(quick.seconds < 0.2, "/v1/items/7 took {}s", quick.seconds);
    // --dependency left beta out.
    let beta = ask(ns, dir, addr, BETA, "GET", "/v1/status", None);
    assert!(
        String::from_utf8_lossy(&beta.body).contains("alpha"),
        "{beta:?}"
    );
    let stopped = mock.stop().unwrap();
    assert_eq!(stopped.status.code(), Some(0));
    assert!(
        stopped.stdout.contains("skipped 3 to other servers"),
        "{}",
        stopped.stdout
    );
}

/// A capture made by hand: one connection to 10.1.0.2:8080 with a GET, a chunked answer, a
/// HEAD and a POST.
fn crafted_snapshot(dir: &Path) -> std::path::PathBuf {
    let pcap = dir.join("crafted.pcap");
    let exchanges: [(&[u8], &[u8]); 4] = [
        (
            b"GET /users/1 HTTP/1.1\r\nHost: users\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"name\":\"ann\"}",
        ),
        (
            b"GET /feed HTTP/1.1\r\nHost: users\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        ),
        (
            b"HEAD /users/1 HTTP/1.1\r\nHost: users\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n",
        ),
        (
            b"POST /users HTTP/1.1\r\nHost: users\r\nContent-Length: 12\r\n\r\n{\"name\":\"b\"}",
            b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated",
        ),
    ];
    write_http_pcap(
        &pcap,
        ([10, 1, 0, 1], 40000),
        ([10, 1, 0, 2], 8080),
        &exchanges,
    )
    .unwrap();
    let snap = dir.join("crafted-snap");
    tapline::import(&pcap, &snap, Some(1))
        .unwrap()
        .checked(tapline::TAPLINE_TIMEOUT)
        .unwrap();
    snap
}

fn host_curl() -> Command {
    Command::new("curl")
}

#[test]
fn mock_serves_a_crafted_capture() {
    const TEST: &str = "mock_serves_a_crafted_capture";
    if !require_tools(TEST, &["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let snap = crafted_snapshot(dir);
    let mut command = Command::new(tapline::binary().unwrap());
    command
        .arg("mock")
        .arg(&snap)
        .args(["--listen", "127.0.0.1:0", "--service", "10.1.0.1"]);
    let mock = MockProcess::start(&mut command, START).unwrap();
    let url = |path: &str| format!("http://{}{path}", mock.addr().unwrap());
    let users = url("/users/1");
    let get = curl(host_curl(), dir, &["-H", "Host: users", &users]).unwrap();
    assert_eq!(
        (get.status, get.body.as_slice()),
        (200, &b"{\"name\":\"ann\"}"[..])
    );
    assert_eq!(get.header("Content-Length").as_deref(), Some("14"));
    let feed = url("/feed");
    let chunked = curl(host_curl(), dir, &["-H", "Host: users", &feed]).unwrap();
    assert_eq!(chunked.body, b"abcdefg");
    assert_eq!(
        chunked.header("Transfer-Encoding").as_deref(),
        Some("chunked")
    );
    let head = curl(host_curl(), dir, &["-I", "-H", "Host: users", &users]).unwrap();
    assert_eq!(
        (head.status, head.header("Content-Length").as_deref()),
        (200, Some("14"))
    );
    // No Host: every dependency is a candidate; the server address names this one too.
    let post = curl(
        host_curl(),
        dir,
        &[
            "-H",
            "Host: 10.1.0.2:8080",
            "--data-binary",
            "{\"name\":\"c\"}",
            &url("/users"),
        ],
    )
    .unwrap();
    assert_eq!((post.status, post.body.as_slice()), (201, &b"created"[..]));
    let stopped = mock.stop().unwrap();
    assert_eq!(stopped.status.code(), Some(0));
    assert_eq!(stopped.count("matched exactly"), Some(3));
    assert_eq!(stopped.count("matched closest"), Some(1));
}

#[test]
fn mock_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let run = |args: &[&str]| tapline::run(args, Duration::from_secs(60)).unwrap();

    let missing = dir.join("missing");
    let r = run(&["mock", missing.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    check_input_error(&r, "missing").unwrap();

    // A capture with a connection but no HTTP on it.
    let pcap = dir.join("silent.pcap");
    write_http_pcap(
        &pcap,
        ([10, 1, 0, 1], 40000),
        ([10, 1, 0, 2], 8080),
        &[(b"\x16\x03\x01 not http", b"")],
    )
    .unwrap();
    let silent = dir.join("silent-snap");
    tapline::import(&pcap, &silent, Some(1))
        .unwrap()
        .checked(tapline::TAPLINE_TIMEOUT)
        .unwrap();
    let r = run(&["mock", silent.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    check_input_error(&r, "no HTTP request/response pairs").unwrap();

    let snap = crafted_snapshot(dir);
    let snap = snap.to_str().unwrap();
    let r = run(&["mock", snap, "--listen", "127.0.0.1:0", "--service", "nope"]);
    check_input_error(&r, "--service").unwrap();
    let r = run(&[
        "mock",
        snap,
        "--listen",
        "127.0.0.1:0",
        "--service",
        "10.9.9.9",
    ]);
    check_input_error(&r, "10.1.0.1").unwrap();
    let r = run(&[
        "mock",
        snap,
        "--listen",
        "127.0.0.1:0",
        "--dependency",
        "10.1.0.9",
    ]);
    check_input_error(&r, "servers seen: 10.1.0.2:8080").unwrap();
    let r = run(&["mock", snap, "--listen", "nowhere"]);
    check_input_error(&r, "--listen").unwrap();
    let r = run(&["mock", snap, "--listen", "127.0.0.1:0", "--min-score", "2"]);
    check_input_error(&r, "--min-score").unwrap();

    // An address in use: exit 3, naming it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(&["mock", snap, "--listen", &addr]);
    check_no_crash(&r).unwrap();
    assert_eq!(r.code(), Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("cannot listen on {addr}")),
        "{}",
        r.stderr
    );
}
