//! Privileged: loads the capture object into this kernel (the verifier's verdict), attaches it
//! to a veth in a fresh network namespace, checks records arrive in order with a sane header,
//! that filters change without reloading, and that dropping the capture detaches everything.
//! Skips with a reason when not root, unless `TAPLINE_REQUIRE_PRIVILEGED=1`.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

use tapline_bpf::capture::{CaptureHdr, DIR_EGRESS, DIR_INGRESS};
use tapline_xdp::{CaptureConfig, Filter, IngressHook, LiveCapture};

/// Runs a command, panicking with its stderr on failure.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with a veth pair `tlx0` (inside) / `tlx1` (peer also inside), removed on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Self {
        let name = format!("tlxdp-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        let ns = Ns(name);
        let ip = |args: &[&str]| {
            let mut all = vec!["ip", "-n", &ns.0];
            all.extend_from_slice(args);
            sh(&all);
        };
        ip(&[
            "link", "add", "tlx0", "type", "veth", "peer", "name", "tlx1",
        ]);
        ip(&["addr", "add", "10.77.0.1/24", "dev", "tlx0"]);
        ip(&["link", "set", "tlx0", "up"]);
        ip(&["link", "set", "tlx1", "up"]);
        // tlx1 answers from a second namespace-less address: move it to a child netns.
        let peer = format!("{}-p", ns.0);
        let _ = Command::new("ip").args(["netns", "del", &peer]).output();
        sh(&["ip", "netns", "add", &peer]);
        ip(&["link", "set", "tlx1", "netns", &peer]);
        sh(&[
            "ip",
            "-n",
            &peer,
            "addr",
            "add",
            "10.77.0.2/24",
            "dev",
            "tlx1",
        ]);
        sh(&["ip", "-n", &peer, "link", "set", "tlx1", "up"]);
        sh(&["ip", "-n", &peer, "link", "set", "lo", "up"]);
        ns
    }

    fn peer(&self) -> String {
        format!("{}-p", self.0)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.peer()])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn privileged(test: &str) -> bool {
    if nix_is_root() {
        return true;
    }
    if std::env::var("TAPLINE_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1") {
        panic!("{test}: needs root and TAPLINE_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root (eBPF, network namespaces)");
    false
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Drains the ring for up to `wait`, returning (direction, ts, bytes) of each record.
fn drain(capture: &mut LiveCapture, wait: Duration) -> Vec<(u8, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        while let Some(item) = capture.ring().next() {
            let (hdr, data) = CaptureHdr::parse(&item).unwrap();
            assert_eq!(hdr.cap_len as usize, data.len());
            assert!(hdr.orig_len >= hdr.cap_len);
            out.push((hdr.direction, hdr.ts_ns, data.to_vec()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

#[test]
fn attach_root_captures_both_directions_and_detaches() {
    const TEST: &str = "attach_root_captures_both_directions_and_detaches";
    if !privileged(TEST) {
        return;
    }
    let ns = Ns::new("both");
    let netns = File::open(format!("/run/netns/{}", ns.0)).unwrap();
    let (records, counters, hook, second_round, third_round) = std::thread::scope(|s| {
        s.spawn(|| {
            // This thread alone enters the namespace.
            // SAFETY: setns on a valid namespace fd for this thread.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0);
            let mut capture = LiveCapture::attach("tlx0", &CaptureConfig::default()).unwrap();
            for note in capture.notes() {
                eprintln!("note: {note}");
            }
            let hook = capture.ingress_hook();
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns.0,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "10.77.0.2",
            ]);
            let records = drain(&mut capture, Duration::from_millis(300));
            let counters = capture.counters().unwrap();
            // A port filter selects no ICMP: nothing more arrives.
            capture
                .set_filter(&Filter {
                    ports: vec![9],
                    hosts: vec![],
                })
                .unwrap();
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns.0,
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "10.77.0.2",
            ]);
            let second = drain(&mut capture, Duration::from_millis(300));
            // A host filter on the peer selects them again, without reloading.
            capture
                .set_filter(&Filter {
                    ports: vec![],
                    hosts: vec!["10.77.0.2/32".parse().unwrap()],
                })
                .unwrap();
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns.0,
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "10.77.0.2",
            ]);
            let third = drain(&mut capture, Duration::from_millis(300));
            (records, counters, hook, second, third)
        })
        .join()
        .unwrap()
    });
    eprintln!(
        "hook {hook}; {} records; counters {counters:?}",
        records.len()
    );
    assert_eq!(hook, IngressHook::XdpNative);
    let requests = records
        .iter()
        .filter(|r| r.0 == DIR_EGRESS && r.2.len() >= 98)
        .count();
    let replies = records
        .iter()
        .filter(|r| r.0 == DIR_INGRESS && r.2.len() >= 98)
        .count();
    assert!(
        requests >= 3 && replies >= 3,
        "{requests} requests, {replies} replies"
    );
    assert_eq!(counters.ring_full(), 0);
    assert_eq!(counters.copy_failed(), 0);
    // Records come in reservation order: each echo reply follows its request.
    let icmp: Vec<u8> = records
        .iter()
        .filter(|r| r.2.len() >= 98 && r.2.get(23) == Some(&1))
        .map(|r| r.0)
        .collect();
    for pair in icmp.chunks(2) {
        assert_eq!(pair, [DIR_EGRESS, DIR_INGRESS], "order: {icmp:?}");
    }
    assert!(
        second_round.iter().all(|r| r.2.get(23) != Some(&1)),
        "ICMP captured under a port filter"
    );
    let icmp_third = third_round
        .iter()
        .filter(|r| r.2.get(23) == Some(&1))
        .count();
    assert_eq!(icmp_third, 4, "host filter: {icmp_third} ICMP records");
    // Dropped: nothing stays attached.
    let link = sh(&["ip", "-n", &ns.0, "-d", "link", "show", "tlx0"]);
    assert!(!link.contains("prog/xdp"), "XDP still attached: {link}");
}
