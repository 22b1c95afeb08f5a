//! Real HTTP/1.1 traffic between kernels that lose and duplicate packets, captured with
//! tcpdump, imported by tapline: every exchange the client saw must come out byte-exact,
//! and the result must not depend on the number of workers.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tapline_e2e::live::{Recorded, differences, read_recorded};
use tapline_e2e::tapline::import_and_inspect;
use tapline_e2e::{
    Background, ChaosConfig, ChaosDirection, ChaosGuard, NetnsGuard, Side, Tcpdump, require_ebpf,
    require_tools, run_checked, scripts, sha256_hex, tshark,
};

/// The server's port inside namespace A.
const PORT: u16 = 8080;
/// Requests the client makes.
const REQUESTS: u32 = 300;

/// Runs server, capture and client across a lossy veth; returns the pcap's path.
fn capture_lossy_traffic(test: &str, dir: &Path) -> (std::path::PathBuf, Vec<Recorded>) {
    let guard = NetnsGuard::new(test).unwrap();
    guard.disable_offloads().unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let config = ChaosConfig {
        drop: 0.03,
        duplicate: 0.03,
    };
    // Ingress on both ends: real losses in both directions, and B's capture (taps run
    // before TC ingress) still holds every packet that crossed the wire, lost or not.
    let chaos = [Side::A, Side::B].map(|side| {
        ChaosGuard::attach(
            guard.netns(side),
            side.interface(),
            ChaosDirection::Ingress,
            config,
        )
        .unwrap()
    });
    let server = Background::spawn_until(
        guard
            .a
            .command(scripts::python())
            .arg(scripts::path("http_server.py"))
            .args(["--bind", "::", "--port", &PORT.to_string()]),
        "READY",
        Duration::from_secs(30),
    )
    .unwrap();
    let pcap = dir.join("lossy.pcap");
    let records = dir.join("client.json");
    let filter = ["tcp", "port", &PORT.to_string()];
    let capture = Tcpdump::start(&guard.b, Side::B.interface(), &pcap, &filter).unwrap();
    let client = run_checked(
        guard
            .b
            .command(scripts::python())
            .arg(scripts::path("http_client.py"))
            .args(["--host4", Side::A.ipv4(), "--host6", Side::A.ipv6()])
            .args(["--port", &PORT.to_string(), "--seed", "7"])
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
    // Let the last FINs and ACKs cross before stopping the capture.
    std::thread::sleep(Duration::from_millis(500));
    let summary = capture.stop().unwrap();
    drop(server);
    assert_eq!(
        summary.dropped_by_kernel, 0,
        "tcpdump lost packets: {summary:?}"
    );

    let counters: Vec<_> = chaos.iter().map(|c| c.counters().unwrap()).collect();
    eprintln!("chaos: {counters:?}; tcpdump: {summary:?}");
    for c in &counters {
        assert!(c.dropped > 0 && c.duplicated > 0, "chaos idle: {c:?}");
        assert_eq!(c.dup_failed, 0, "{c:?}");
    }
    let recorded = read_recorded(&records).unwrap();
    assert_eq!(recorded.len(), REQUESTS as usize);
    (pcap, recorded)
}

#[test]
fn import_root_real_http_with_loss() {
    const TEST: &str = "import_root_real_http_with_loss";
    let tools = ["ip", "ping", "ethtool", "tcpdump", "tshark"];
    if !require_ebpf(TEST) || !require_tools(TEST, &tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, recorded) = capture_lossy_traffic(TEST, dir.path());

    let retransmissions = tshark::count(&pcap, "tcp.analysis.retransmission").unwrap();
    let duplicates = tshark::count(&pcap, "tcp.analysis.duplicate_ack").unwrap();
    eprintln!("capture: {retransmissions} retransmissions, {duplicates} duplicate ACKs");
    assert!(retransmissions > 0, "the capture holds no retransmission");

    // The body hashes the client recorded are plain SHA-256: check one known value.
    assert!(
        recorded
            .iter()
            .any(|r| r.request_body_sha256 == sha256_hex(b""))
    );

    // The capture is complete: tshark finds every exchange the client saw, so a difference
    // below is tapline's.
    let seen: Vec<(String, String, Option<u16>)> = tshark::http_requests(&pcap)
        .unwrap()
        .into_iter()
        .map(|r| (r.method, r.target, r.status))
        .collect();
    for want in &recorded {
        let key = (want.method.clone(), want.target.clone(), Some(want.status));
        assert!(
            seen.contains(&key),
            "tshark does not see {key:?} in the capture"
        );
    }

    let (one_worker, pairs) = import_and_inspect(&pcap, &dir.path().join("snap1"), Some(1))
        .unwrap_or_else(|e| panic!("{e}"));
    let (three_workers, _) = import_and_inspect(&pcap, &dir.path().join("snap3"), Some(3))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        one_worker == three_workers,
        "inspect output differs between --workers 1 and --workers 3"
    );
    let problems = differences(&recorded, &pairs);
    assert!(
        problems.is_empty(),
        "{} differences (first 30):\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
