//! TLS plaintext capture end to end: nginx with TLS (OpenSSL) in one network namespace, real
//! clients in the other (curl on OpenSSL, Python's `ssl` with `SSL_write_ex`/`SSL_read_ex`,
//! `gnutls-cli` on GnuTLS), and `tapline capture --tls` / `--pid` / `--binary`, alone or with
//! `--iface`: every exchange must come out exactly once, byte-exact, flagged `tls`, with the
//! flow as the server sees it and the process that made it; a TLS snapshot replays against
//! the same site in plain HTTP; stacks tapline cannot see are named, each executable once,
//! never tapline itself.
//!
//! Privileged: each test skips with a reason when not root (fails instead with
//! `TAPLINE_REQUIRE_PRIVILEGED=1`); namespaces and everything in them are removed on drop,
//! also when a test fails. Targets carry a tag per test (`?t=TAG-N`), because a capture of all
//! processes also sees the tests running beside it.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tapline_e2e::live::CaptureEnd;
use tapline_e2e::tls_support::{
    BIG_LEN, CurlRequest, Exchange, Expected, GO_MARKS, Nginx, PLAIN_PORT, RUSTLS_MARKS, TLS_PORT,
    TlsCaptureRun, TlsPair, check, curl, gnutls_get, pairs, pseudo_random, python_client,
    start_waiting, tagged, waiting_program,
};
use tapline_e2e::{NetnsGuard, Side, require_ebpf, require_tools, run_with_timeout};

/// Tools every test here runs.
const TOOLS: [&str; 4] = ["ip", "nginx", "openssl", "curl"];

/// The line that follows the attachment of the probes selected at start.
const READY: &str = "probing ";

/// The server's TLS address as the flows show it.
fn tls_server() -> String {
    format!("{}:{TLS_PORT}", Side::A.ipv4())
}

/// The namespaces (server in A, clients in B) and nginx in A, with the test's folder.
fn setup(test: &str, tools: &[&str]) -> Option<(tempfile::TempDir, NetnsGuard, Nginx)> {
    let all: Vec<&str> = TOOLS.iter().chain(tools).copied().collect();
    if !require_ebpf(test) || !require_tools(test, &all) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = NetnsGuard::new(test).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let nginx = Nginx::start(&guard.a, &dir.path().join("site"), Side::A.ipv4()).unwrap();
    Some((dir, guard, nginx))
}

/// A GET of `target`.
fn get(target: String) -> CurlRequest {
    CurlRequest { target, body: None }
}

/// The curl exchanges of the tests, tagged `tag`, to `base`: four GETs on one keep-alive
/// connection, three on connections of their own, and a POST of 256 KiB.
fn curl_exchanges(
    guard: &NetnsGuard,
    nginx: &Nginx,
    dir: &Path,
    base: &str,
    tag: &str,
) -> Vec<Exchange> {
    let ca = nginx.certificate();
    let t = |n: u32, path: &str| format!("{path}?t={tag}-{n}");
    let keep_alive = [
        get(t(1, "/index.html")),
        get(t(2, "/big.bin")),
        get(t(3, "/echo")),
        get(t(4, "/echo")),
    ];
    let mut exchanges = curl(&guard.b, dir, &ca, base, &keep_alive).unwrap();
    let ports: Vec<_> = exchanges.iter().map(|e| e.client_port).collect();
    assert!(
        ports.windows(2).all(|w| w[0] == w[1]),
        "curl did not keep the connection: {ports:?}"
    );
    for (n, path) in [(5, "/echo"), (6, "/big.bin"), (7, "/index.html")] {
        exchanges.extend(curl(&guard.b, dir, &ca, base, &[get(t(n, path))]).unwrap());
    }
    let post = CurlRequest {
        target: t(8, "/echo"),
        body: Some(pseudo_random(256 * 1024, 8)),
    };
    exchanges.extend(curl(&guard.b, dir, &ca, base, &[post]).unwrap());
    let big = nginx.file("big.bin").unwrap();
    assert_eq!(big.len(), BIG_LEN);
    let got_big = exchanges
        .iter()
        .find(|e| e.recorded.target.starts_with("/big.bin"))
        .unwrap();
    assert_eq!(
        got_big.recorded.response_body_sha256,
        tapline_e2e::sha256_hex(&big)
    );
    assert!(
        exchanges.iter().all(|e| e.recorded.status == 200),
        "{exchanges:?}"
    );
    exchanges
}

/// Stops a capture, requires a clean end, and returns its pairs.
fn finish(capture: TlsCaptureRun, snapshot: &Path) -> (CaptureEnd, Vec<TlsPair>) {
    // The last records reach the ring before the client exits; the drain runs every few ms.
    std::thread::sleep(Duration::from_millis(300));
    let end = capture.stop();
    assert_eq!(
        end.code,
        Some(0),
        "capture failed:\n{}\n{}",
        end.stdout,
        end.stderr
    );
    assert!(!end.stderr.contains("panicked"), "{}", end.stderr);
    let found = pairs(snapshot).unwrap_or_else(|e| panic!("{e}"));
    (end, found)
}

/// Panics with the problems, if any, and the pairs seen.
fn assert_clean(what: &str, problems: &[String], found: &[&TlsPair]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problems:\n{}\npairs:\n{}",
        problems.len(),
        problems.join("\n"),
        found
            .iter()
            .map(|p| format!(
                "{:?} {} -> {} {:?} {:?}",
                p.pair.method_path(),
                p.pair.flow.src,
                p.pair.flow.dst,
                p.pair.flags,
                p.process
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn tls_root_nginx_and_curl_exact_with_tls_and_pid_then_replay() {
    const TEST: &str = "tls_root_nginx_and_curl_exact_with_tls_and_pid_then_replay";
    let Some((dir, guard, nginx)) = setup(TEST, &[]) else {
        return;
    };
    let all_snapshot = dir.path().join("all");
    let pid_snapshot = dir.path().join("pid");
    let worker = nginx.worker().to_string();
    let all =
        TlsCaptureRun::start(&["--tls", "--out", all_snapshot.to_str().unwrap()], READY).unwrap();
    let by_pid = TlsCaptureRun::start(
        &["--pid", &worker, "--out", pid_snapshot.to_str().unwrap()],
        READY,
    )
    .unwrap();
    let base = format!("https://{}", tls_server());
    let exchanges = curl_exchanges(&guard, &nginx, dir.path(), &base, "curl");
    let (_, all_pairs) = finish(all, &all_snapshot);
    let (_, pid_pairs) = finish(by_pid, &pid_snapshot);

    let server = tls_server();
    let mut expected = Expected {
        server: &server,
        client_ip: Side::B.ipv4(),
        tls: true,
        server_process: Some((nginx.worker(), "nginx")),
        client_process: true,
    };
    let problems = check(&exchanges, &all_pairs, "curl", &expected);
    assert_clean("--tls", &problems, &tagged(&all_pairs, "curl"));
    // Only nginx's worker is probed: every pair is its own.
    expected.client_process = false;
    let problems = check(&exchanges, &pid_pairs, "curl", &expected);
    assert_clean("--pid", &problems, &tagged(&pid_pairs, "curl"));
    let strangers: Vec<&TlsPair> = pid_pairs
        .iter()
        .filter(|p| p.process.as_ref().is_none_or(|p| p.pid != nginx.worker()))
        .collect();
    assert!(
        strangers.is_empty(),
        "pairs of other processes: {strangers:?}"
    );

    // The plaintext snapshot replays against the same site in plain HTTP.
    let binary = tapline_e2e::tapline::binary().unwrap();
    let target = format!("http://{}:{PLAIN_PORT}", Side::A.ipv4());
    let replay = run_with_timeout(
        guard
            .b
            .command(binary)
            .arg("replay")
            .arg(&pid_snapshot)
            .args(["--target", &target]),
        Duration::from_secs(120),
    )
    .unwrap();
    let report = replay.stdout_text();
    assert_eq!(
        replay.code(),
        Some(0),
        "replay failed:\n{report}\n{}",
        replay.stderr
    );
    let total = format!(
        "total {0}  matched {0}  mismatched 0  errors 0",
        exchanges.len()
    );
    assert!(report.contains(&total), "expected {total:?} in:\n{report}");
}

#[test]
fn tls_root_python_client_exact() {
    const TEST: &str = "tls_root_python_client_exact";
    let Some((dir, guard, nginx)) = setup(TEST, &["/usr/bin/python3"]) else {
        return;
    };
    let snapshot = dir.path().join("snap");
    let capture =
        TlsCaptureRun::start(&["--tls", "--out", snapshot.to_str().unwrap()], READY).unwrap();
    let exchanges = python_client(
        &guard.b,
        dir.path(),
        &nginx.certificate(),
        Side::A.ipv4(),
        "py",
    )
    .unwrap();
    assert_eq!(exchanges.len(), 7);
    let (_, found) = finish(capture, &snapshot);
    let server = tls_server();
    let expected = Expected {
        server: &server,
        client_ip: Side::B.ipv4(),
        tls: true,
        server_process: Some((nginx.worker(), "nginx")),
        client_process: true,
    };
    let problems = check(&exchanges, &found, "py", &expected);
    assert_clean("python client", &problems, &tagged(&found, "py"));
}

#[test]
fn tls_root_gnutls_client_exact() {
    const TEST: &str = "tls_root_gnutls_client_exact";
    let Some((dir, guard, nginx)) = setup(TEST, &["gnutls-cli"]) else {
        return;
    };
    let gnutls_cli = which("gnutls-cli");
    let all_snapshot = dir.path().join("all");
    let binary_snapshot = dir.path().join("binary");
    let all =
        TlsCaptureRun::start(&["--tls", "--out", all_snapshot.to_str().unwrap()], READY).unwrap();
    // Only gnutls-cli's side: its GnuTLS calls alone make the pairs.
    let by_binary = TlsCaptureRun::start(
        &[
            "--binary",
            &gnutls_cli,
            "--out",
            binary_snapshot.to_str().unwrap(),
        ],
        READY,
    )
    .unwrap();
    let exchanges: Vec<Exchange> = [
        "/echo?t=gnutls-1",
        "/big.bin?t=gnutls-2",
        "/index.html?t=gnutls-3",
    ]
    .into_iter()
    .map(|target| gnutls_get(&guard.b, dir.path(), Side::A.ipv4(), target).unwrap())
    .collect();
    let (_, all_pairs) = finish(all, &all_snapshot);
    let (_, binary_pairs) = finish(by_binary, &binary_snapshot);
    let server = tls_server();
    let mut expected = Expected {
        server: &server,
        client_ip: Side::B.ipv4(),
        tls: true,
        server_process: Some((nginx.worker(), "nginx")),
        client_process: true,
    };
    let problems = check(&exchanges, &all_pairs, "gnutls", &expected);
    assert_clean("--tls", &problems, &tagged(&all_pairs, "gnutls"));
    expected.server_process = None;
    let problems = check(&exchanges, &binary_pairs, "gnutls", &expected);
    assert_clean(
        "--binary gnutls-cli",
        &problems,
        &tagged(&binary_pairs, "gnutls"),
    );
}

#[test]
fn tls_root_iface_and_tls_in_one_snapshot() {
    const TEST: &str = "tls_root_iface_and_tls_in_one_snapshot";
    let Some((dir, guard, nginx)) = setup(TEST, &[]) else {
        return;
    };
    let snapshot = dir.path().join("snap");
    let capture = TlsCaptureRun::start(
        &[
            "--iface",
            Side::A.interface(),
            "--netns",
            guard.a.name(),
            "--tls",
            "--out",
            snapshot.to_str().unwrap(),
        ],
        READY,
    )
    .unwrap();
    let https = curl_exchanges(
        &guard,
        &nginx,
        dir.path(),
        &format!("https://{}", tls_server()),
        "mix",
    );
    let plain_server = format!("{}:{PLAIN_PORT}", Side::A.ipv4());
    let plain = curl_exchanges(
        &guard,
        &nginx,
        dir.path(),
        &format!("http://{plain_server}"),
        "mix",
    );
    let (end, found) = finish(capture, &snapshot);
    assert!(end.stderr.contains("capturing tl-a"), "{}", end.stderr);

    let server = tls_server();
    let expected = Expected {
        server: &server,
        client_ip: Side::B.ipv4(),
        tls: true,
        server_process: Some((nginx.worker(), "nginx")),
        client_process: true,
    };
    let mine = tagged(&found, "mix");
    let problems = check(&https, &found, "mix", &expected);
    assert_clean("TLS plaintext beside packets", &problems, &mine);
    let expected = Expected {
        server: &plain_server,
        tls: false,
        ..expected
    };
    let problems = check(&plain, &found, "mix", &expected);
    assert_clean("plain HTTP from the packets", &problems, &mine);
    // Nothing parsed from the ciphertext: every pair of the snapshot on the TLS port is
    // plaintext, and none is a parse error.
    let garbage: Vec<&TlsPair> = found
        .iter()
        .filter(|p| {
            p.pair.has_flag("parse_error")
                || (p.pair.flow.dst == server && !p.tls)
                || p.pair.request.is_none()
        })
        .collect();
    assert!(garbage.is_empty(), "{garbage:#?}");
    assert_eq!(mine.len(), https.len() + plain.len());
}

#[test]
fn tls_root_unsupported_stacks_are_named_once() {
    const TEST: &str = "tls_root_unsupported_stacks_are_named_once";
    if !require_ebpf(TEST) || !require_tools(TEST, &["cc"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let go = waiting_program(dir.path(), "fakego", GO_MARKS).unwrap();
    let rustls = waiting_program(dir.path(), "fakerustls", RUSTLS_MARKS).unwrap();
    let go_process = start_waiting(&go).unwrap();
    let mut rustls_processes: Vec<_> = (0..3).map(|_| start_waiting(&rustls).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));

    // A Go program named with --pid: the note names Go.
    let go_pid = go_process.pid().to_string();
    let go_snapshot = dir.path().join("go");
    let run = tapline_e2e::tapline::run(
        [
            "capture",
            "--pid",
            &go_pid,
            "--duration",
            "1s",
            "--out",
            go_snapshot.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .unwrap();
    let note = format!("pid {go_pid} (fakego): Go crypto/tls is not supported");
    assert!(
        run.stderr.contains(&note),
        "no {note:?} in:\n{}",
        run.stderr
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);

    // All processes: each rustls executable once, however many processes run it, and
    // tapline (this capture, and another tapline started during it) never.
    let snapshot = dir.path().join("all");
    let capture =
        TlsCaptureRun::start(&["--tls", "--out", snapshot.to_str().unwrap()], READY).unwrap();
    rustls_processes.push(start_waiting(&rustls).unwrap());
    let other_snapshot = dir.path().join("other");
    let other = TlsCaptureRun::start(
        &[
            "--pid",
            &go_pid,
            "--duration",
            "3s",
            "--out",
            other_snapshot.to_str().unwrap(),
        ],
        "not supported",
    )
    .unwrap();
    let (capture_pid, other_pid) = (capture.pid(), other.pid());
    // Rescans of new processes come 0.1 s, 1 s and 5 s after their start.
    std::thread::sleep(Duration::from_secs(6));
    let _ = other.wait(Duration::from_secs(30));
    let end = capture.stop();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    let exe = rustls.display().to_string();
    let notes: Vec<&str> = end
        .stderr
        .lines()
        .filter(|l| l.contains("rustls is not supported") && l.contains(&exe))
        .collect();
    assert_eq!(notes.len(), 1, "{}", end.stderr);
    assert!(
        rustls_processes
            .iter()
            .any(|p| notes[0].contains(&format!("pid {} (fakerustls)", p.pid()))),
        "{notes:?}"
    );
    let summary = format!("{exe} (rustls not supported): 4 processes ran it during the capture");
    assert!(
        end.stderr.contains(&summary),
        "no {summary:?} in:\n{}",
        end.stderr
    );
    // Other builds of tapline are other executables; this one, whichever process runs it, never.
    let tapline = tapline_e2e::tapline::binary()
        .unwrap()
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let mine = [format!("pid {capture_pid} "), format!("pid {other_pid} ")];
    let about_tapline: Vec<&str> = end
        .stderr
        .lines()
        .filter(|l| {
            l.contains("not supported")
                && (l.contains(&tapline) || mine.iter().any(|m| l.contains(m.as_str())))
        })
        .collect();
    assert!(
        about_tapline.is_empty(),
        "tapline noted itself: {about_tapline:?}"
    );
}

/// The full path of `program` on `PATH`.
fn which(program: &str) -> String {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}
