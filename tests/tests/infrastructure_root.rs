//! Checks of the test infrastructure itself (namespaces, the chaos program, tcpdump), which
//! the tapline tests rely on and which run without the tapline binary.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tapline_e2e::{
    ChaosConfig, ChaosDirection, ChaosGuard, NetnsGuard, Side, Tcpdump, require_ebpf, require_root,
    require_tools, tshark,
};

/// Whether the namespace file of `name` exists.
fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Pings `address` from `side` `count` times quickly; returns (received, duplicates).
fn ping(guard: &NetnsGuard, side: Side, address: &str, count: u32) -> (u32, u32) {
    let run = tapline_e2e::run_with_timeout(
        guard
            .netns(side)
            .command("ping")
            .args(["-n", "-q", "-i", "0.005", "-W", "1", "-c"])
            .arg(count.to_string())
            .arg(address),
        Duration::from_secs(60),
    )
    .unwrap();
    // "200 packets transmitted, 141 received, +55 duplicates, 29.5% packet loss, time 1020ms"
    let text = run.stdout_text();
    let stats = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping statistics in {text}"));
    let number_before = |word: &str| -> u32 {
        stats
            .split(',')
            .find(|part| part.contains(word))
            .and_then(|part| {
                part.split_whitespace()
                    .next()
                    .map(|n| n.trim_start_matches('+'))
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (number_before("received"), number_before("duplicates"))
}

#[test]
fn netns_root_guard_joins_two_namespaces_and_removes_them_on_drop() {
    const TEST: &str = "netns_root_guard_joins_two_namespaces_and_removes_them_on_drop";
    if !require_root(TEST) || !require_tools(TEST, &["ip", "ping"]) {
        return;
    }
    let guard = NetnsGuard::new(TEST).unwrap();
    let names = [guard.a.name().to_owned(), guard.b.name().to_owned()];
    assert!(names.iter().all(|n| netns_exists(n)));
    guard.wait_reachable(Side::B).unwrap();
    guard.wait_reachable(Side::A).unwrap();
    // The addresses exist only inside the namespaces, not on the host.
    let host = tapline_e2e::run_checked(
        std::process::Command::new("ip").args(["-o", "addr"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!host.stdout_text().contains(Side::A.ipv4()));
    drop(guard);
    assert!(
        names.iter().all(|n| !netns_exists(n)),
        "{names:?} left behind"
    );
}

#[test]
fn netns_root_guard_removes_namespaces_when_the_test_panics() {
    const TEST: &str = "netns_root_guard_removes_namespaces_when_the_test_panics";
    if !require_root(TEST) || !require_tools(TEST, &["ip"]) {
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let guard = NetnsGuard::new(TEST).unwrap();
        names
            .lock()
            .unwrap()
            .extend([guard.a.name().to_owned(), guard.b.name().to_owned()]);
        // A server left running inside must not keep the namespace alive: the guard kills
        // it (and this test process reaps it at exit).
        #[allow(clippy::zombie_processes)]
        let _sleeper = guard.a.command("sleep").arg("600").spawn().unwrap();
        panic!("deliberate panic inside the guard's scope");
    });
    assert!(outcome.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().all(|n| !netns_exists(n)),
        "{names:?} left behind"
    );
}

#[test]
fn chaos_root_loses_and_duplicates_at_veth_ingress_until_detached() {
    const TEST: &str = "chaos_root_loses_and_duplicates_at_veth_ingress_until_detached";
    if !require_ebpf(TEST) || !require_tools(TEST, &["ip", "ping"]) {
        return;
    }
    let guard = NetnsGuard::new(TEST).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    // At A's ingress: B's echo requests are lost or arrive twice (A then answers twice).
    let chaos = ChaosGuard::attach(
        &guard.a,
        Side::A.interface(),
        ChaosDirection::Ingress,
        ChaosConfig {
            drop: 0.3,
            duplicate: 0.3,
        },
    )
    .unwrap();
    let (received, duplicates) = ping(&guard, Side::B, Side::A.ipv4(), 300);
    let counters = chaos.counters().unwrap();

    assert!(counters.seen >= 300, "{counters:?}");
    assert!(counters.dropped > 30, "{counters:?}");
    assert!(counters.duplicated > 30, "{counters:?}");
    assert_eq!(counters.dup_failed, 0, "{counters:?}");
    assert!(received < 270, "received {received} of 300 with 30% loss");
    assert!(
        duplicates > 30,
        "{duplicates} duplicate replies with 30% duplication"
    );

    drop(chaos);
    let (received, duplicates) = ping(&guard, Side::B, Side::A.ipv4(), 100);
    assert_eq!(
        (received, duplicates),
        (100, 0),
        "chaos still active after drop"
    );
}

#[test]
fn chaos_root_egress_drops_are_reported_to_the_sender_and_duplicates_reach_the_peer() {
    const TEST: &str =
        "chaos_root_egress_drops_are_reported_to_the_sender_and_duplicates_reach_the_peer";
    if !require_ebpf(TEST) || !require_tools(TEST, &["ip", "ping"]) {
        return;
    }
    let guard = NetnsGuard::new(TEST).unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let chaos = ChaosGuard::attach(
        &guard.b,
        Side::B.interface(),
        ChaosDirection::Egress,
        ChaosConfig {
            drop: 0.3,
            duplicate: 0.3,
        },
    )
    .unwrap();
    let (received, duplicates) = ping(&guard, Side::B, Side::A.ipv4(), 200);
    let counters = chaos.counters().unwrap();
    // ping re-sends what the local device refused (ENOBUFS): every request gets through.
    assert_eq!(received, 200, "{counters:?}");
    assert!(counters.dropped > 20, "{counters:?}");
    assert!(duplicates > 20, "{duplicates} duplicates; {counters:?}");
}

#[test]
fn capture_root_tcpdump_records_wire_size_packets_across_the_veth() {
    const TEST: &str = "capture_root_tcpdump_records_wire_size_packets_across_the_veth";
    if !require_root(TEST) || !require_tools(TEST, &["ip", "ping", "tcpdump", "tshark", "ethtool"])
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("ping.pcap");
    let guard = NetnsGuard::new(TEST).unwrap();
    guard.disable_offloads().unwrap();
    guard.wait_reachable(Side::B).unwrap();
    let capture = Tcpdump::start(&guard.b, Side::B.interface(), &pcap, &["icmp"]).unwrap();
    let run = tapline_e2e::run_checked(
        guard
            .b
            .command("ping")
            .args(["-n", "-q", "-c", "20", "-i", "0.01", "-s", "3000"])
            .arg(Side::A.ipv4()),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(run.success());
    let summary = capture.stop().unwrap();
    assert_eq!(summary.dropped_by_kernel, 0);
    // 3028-byte pings fragment into wire-size (≤ 1514-byte) frames in both directions.
    assert!(summary.captured >= 80, "{summary:?}");
    let largest = tshark::fields(
        &pcap,
        "icmp || ip.flags.mf == 1 || ip.frag_offset > 0",
        &["frame.len"],
    )
    .unwrap()
    .iter()
    .filter_map(|row| row.first()?.parse::<u32>().ok())
    .max()
    .unwrap();
    assert!(largest <= 1514, "largest frame {largest} bytes");
}
