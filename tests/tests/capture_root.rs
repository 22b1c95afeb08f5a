//! Live capture (`tapline capture`) against real HTTP traffic between two network namespaces
//! joined by a veth, with the kernels losing and duplicating packets (`tl_chaos`): every
//! exchange the client saw must come out byte-exact, and the same RRPairs as `tcpdump` plus
//! `tapline import` of the same run — with offloads off (wire-size packets), with offloads on
//! (64 KiB GSO/GRO super-packets), and through a SPAN port fed by `tc ... mirred`. Also: exit 3
//! without an interface or privilege, and nothing left attached after `kill -9`.
//!
//! Privileged: each test skips with a reason when not root (fails instead with
//! `TAPLINE_REQUIRE_PRIVILEGED=1`); namespaces and everything in them are removed on drop,
//! also when a test fails.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tapline_e2e::live::{
    CaptureRun, attach_stale_xdp, compare_snapshots, differences, mirror_to_span, read_recorded,
    xdp_attached,
};
use tapline_e2e::tapline::{import_and_inspect, inspect};
use tapline_e2e::{
    Background, ChaosConfig, ChaosDirection, ChaosGuard, NetnsGuard, Side, Tcpdump, require_ebpf,
    require_root, require_tools, rrpair::parse_jsonl, run_checked, run_with_timeout, scripts,
};

/// The server's port inside namespace A.
const PORT: u16 = 8080;
/// Requests the client makes.
const REQUESTS: u32 = 300;
/// The SPAN interface the tests mirror to.
const SPAN: &str = "span0";

/// How the live capture is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// eBPF on the client's veth.
    Ebpf,
    /// A SPAN port fed by mirroring the client's veth.
    Span,
}

/// Runs server, tcpdump, `tapline capture` and client across a lossy veth and checks the
/// live snapshot against the client's records and against tcpdump + import.
fn lossy_run(test: &str, offloads: bool, mode: Mode) {
    let tools = ["ip", "ping", "ethtool", "tcpdump", "tc"];
    if !require_ebpf(test) || !require_tools(test, &tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = NetnsGuard::new(test).unwrap();
    if !offloads {
        guard.disable_offloads().unwrap();
    }
    guard.wait_reachable(Side::B).unwrap();
    let config = ChaosConfig {
        drop: 0.03,
        duplicate: 0.03,
    };
    // tl_chaos returns TC_ACT_OK, which under TCX ends the ingress chain: a legacy `tc`
    // mirror on the same hook would never run. With a SPAN port, losses happen at the
    // server's ingress only (the client still retransmits for real).
    let lossy: &[Side] = match mode {
        Mode::Ebpf => &[Side::A, Side::B],
        Mode::Span => &[Side::A],
    };
    let chaos: Vec<ChaosGuard> = lossy
        .iter()
        .map(|&side| {
            ChaosGuard::attach(
                guard.netns(side),
                side.interface(),
                ChaosDirection::Ingress,
                config,
            )
            .unwrap()
        })
        .collect();
    if mode == Mode::Span {
        mirror_to_span(&guard.b, Side::B.interface(), SPAN).unwrap();
    }
    let _server = Background::spawn_until(
        guard
            .a
            .command(scripts::python())
            .arg(scripts::path("http_server.py"))
            .args(["--bind", "::", "--port", &PORT.to_string()]),
        "READY",
        Duration::from_secs(30),
    )
    .unwrap();

    let pcap = dir.path().join("tcpdump.pcap");
    let live = dir.path().join("live");
    let port = PORT.to_string();
    // The helper's 16 MiB buffer overflows with 64 KiB super-packets on this 2-core machine;
    // glibc's getopt takes options after the filter's start too, and the last -B wins.
    let filter = ["-B", "262144", "tcp", "port", &port];
    let tcpdump = Tcpdump::start(&guard.b, Side::B.interface(), &pcap, &filter).unwrap();
    let live_str = live.to_string_lossy().into_owned();
    let mut args = vec![
        "--netns",
        guard.b.name(),
        "--port",
        &port,
        "--out",
        &live_str,
    ];
    match mode {
        Mode::Ebpf => args.extend(["--iface", Side::B.interface()]),
        Mode::Span => args.extend(["--span", SPAN]),
    }
    let capture = CaptureRun::start(&args).unwrap();
    let records = dir.path().join("client.json");
    let client = run_checked(
        guard
            .b
            .command(scripts::python())
            .arg(scripts::path("http_client.py"))
            .args(["--host4", Side::A.ipv4(), "--host6", Side::A.ipv6()])
            .args(["--port", &port, "--seed", "7"])
            .args(["--count", &REQUESTS.to_string(), "--out"])
            .arg(&records),
        Duration::from_secs(240),
    )
    .unwrap();
    eprintln!(
        "client: {} in {:?}",
        client.stdout_text().trim(),
        client.elapsed
    );
    // Let the last FINs and ACKs cross before stopping the captures.
    std::thread::sleep(Duration::from_millis(500));
    let summary = tcpdump.stop().unwrap();
    let end = capture.stop();
    eprintln!("tapline capture:\n{}\n{}", end.stdout, end.stderr);
    assert_eq!(end.code, Some(0), "tapline capture failed: {}", end.stderr);
    assert!(
        end.stdout.contains("request/response pairs"),
        "{}",
        end.stdout
    );
    assert!(
        end.stdout.contains("0 lost by tapline"),
        "tapline lost packets: {}",
        end.stdout
    );
    assert_eq!(
        summary.dropped_by_kernel, 0,
        "tcpdump lost packets: {summary:?}"
    );
    for c in chaos.iter().map(|c| c.counters().unwrap()) {
        assert!(c.dropped > 0, "chaos idle: {c:?}");
    }
    if mode == Mode::Ebpf {
        assert!(
            !xdp_attached(&guard.b, Side::B.interface()).unwrap(),
            "XDP left attached"
        );
    }

    let recorded = read_recorded(&records).unwrap();
    assert_eq!(recorded.len(), REQUESTS as usize);
    let run = inspect(&live).unwrap();
    assert!(
        run.success(),
        "inspect of the live snapshot failed: {}",
        run.stderr
    );
    let live_pairs = parse_jsonl(&run.stdout).unwrap();
    let problems = differences(&recorded, &live_pairs);
    assert!(
        problems.is_empty(),
        "live capture: {} differences with the client (first 30):\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (_, pcap_pairs) = import_and_inspect(&pcap, &dir.path().join("imported"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mismatches = compare_snapshots(&live_pairs, &pcap_pairs);
    assert!(
        mismatches.is_empty(),
        "live capture and tcpdump + import differ ({} lines, first 20):\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn capture_root_ebpf_real_http_offloads_off() {
    lossy_run(
        "capture_root_ebpf_real_http_offloads_off",
        false,
        Mode::Ebpf,
    );
}

#[test]
fn capture_root_ebpf_real_http_offloads_on() {
    lossy_run("capture_root_ebpf_real_http_offloads_on", true, Mode::Ebpf);
}

#[test]
fn capture_root_span_mirror_real_http() {
    lossy_run("capture_root_span_mirror_real_http", false, Mode::Span);
}

/// Runs `tapline capture ARGS` to its end (it must not start capturing).
fn capture_fails(args: &[&str], as_nobody: bool) -> tapline_e2e::Run {
    let binary = tapline_e2e::tapline::binary().unwrap();
    let mut command = if as_nobody {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(&binary);
        c
    } else {
        std::process::Command::new(&binary)
    };
    command.arg("capture").args(args).env("TAPLINE_LOG", "warn");
    run_with_timeout(&mut command, Duration::from_secs(60)).unwrap()
}

#[test]
fn capture_root_missing_interface_or_namespace_exits_3() {
    const TEST: &str = "capture_root_missing_interface_or_namespace_exits_3";
    if !require_root(TEST) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap");
    let out = out.to_string_lossy();
    let run = capture_fails(&["--iface", "tlnosuch0", "--out", &out], false);
    assert_eq!(run.code(), Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains("tlnosuch0") && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    assert!(
        !Path::new(&*out).exists(),
        "a snapshot was created for a failed capture"
    );
    let run = capture_fails(
        &["--iface", "lo", "--netns", "tlnosuch-ns", "--out", &out],
        false,
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("ip netns list"), "{}", run.stderr);
    let run = capture_fails(&["--span", "tlnosuch0", "--out", &out], false);
    assert_eq!(run.code(), Some(3), "{}", run.stderr);
    // Usage errors stay exit 2.
    let run = capture_fails(&["--iface", "lo", "--snaplen", "0", "--out", &out], false);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    let run = capture_fails(
        &["--iface", "lo", "--host", "10.0.0.0/40", "--out", &out],
        false,
    );
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
}

#[test]
fn capture_root_without_privilege_exits_3_naming_the_capability() {
    const TEST: &str = "capture_root_without_privilege_exits_3_naming_the_capability";
    if !require_root(TEST) || !require_tools(TEST, &["setpriv"]) {
        return;
    }
    // nobody must be able to reach the binary and write the output folder.
    let dir = tempfile::Builder::new()
        .prefix("tl-nobody-")
        .tempdir_in("/tmp")
        .unwrap();
    let _ = std::process::Command::new("chmod")
        .arg("777")
        .arg(dir.path())
        .status();
    let out = dir.path().join("snap");
    let out = out.to_string_lossy();
    let run = capture_fails(&["--iface", "lo", "--out", &out], true);
    if run.stderr.contains("Permission denied")
        && run.stderr.contains("tapline")
        && run.code() == Some(126)
    {
        tapline_e2e::skip(TEST, "nobody cannot execute the tapline binary here");
        return;
    }
    assert_eq!(run.code(), Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains("CAP_BPF") && run.stderr.contains("setcap"),
        "{}",
        run.stderr
    );
    let run = capture_fails(&["--span", "lo", "--out", &out], true);
    assert_eq!(run.code(), Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("CAP_NET_RAW"), "{}", run.stderr);
}

#[test]
fn capture_root_kill_9_leaves_nothing_attached_and_a_readable_snapshot() {
    const TEST: &str = "capture_root_kill_9_leaves_nothing_attached_and_a_readable_snapshot";
    if !require_ebpf(TEST) || !require_tools(TEST, &["ip", "ping", "clang-19"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = NetnsGuard::new(TEST).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let iface = Side::B.interface();
    let first = dir.path().join("first").to_string_lossy().into_owned();
    let capture =
        CaptureRun::start(&["--iface", iface, "--netns", guard.b.name(), "--out", &first]).unwrap();
    assert!(xdp_attached(&guard.b, iface).unwrap());
    guard.wait_reachable(Side::B).unwrap();
    // Past the first checkpoint (written at start), then a crash.
    let end = capture.kill9();
    assert_eq!(end.code, None, "not killed: {}", end.stderr);
    assert!(
        !xdp_attached(&guard.b, iface).unwrap(),
        "XDP left attached after kill -9"
    );
    let tc = guard.b.run(
        &["tc", "filter", "show", "dev", iface, "egress"],
        Duration::from_secs(30),
    );
    if let Ok(tc) = tc {
        assert!(
            !tc.stdout_text().contains("tl_tc"),
            "TC filter left: {}",
            tc.stdout_text()
        );
    }
    let run = inspect(Path::new(&first)).unwrap();
    assert!(
        run.success(),
        "the killed capture's snapshot does not open: {}",
        run.stderr
    );

    // A program a killed run attached through netlink is detached by the next start.
    attach_stale_xdp(&guard.b, iface, dir.path()).unwrap();
    assert!(xdp_attached(&guard.b, iface).unwrap());
    let second = dir.path().join("second").to_string_lossy().into_owned();
    let capture = CaptureRun::start(&[
        "--iface",
        iface,
        "--netns",
        guard.b.name(),
        "--out",
        &second,
        "--duration",
        "2s",
    ])
    .unwrap();
    let end = capture.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(
        end.stderr.contains("detached a stale tl_xdp_capture"),
        "{}",
        end.stderr
    );
    assert!(!xdp_attached(&guard.b, iface).unwrap());
}
