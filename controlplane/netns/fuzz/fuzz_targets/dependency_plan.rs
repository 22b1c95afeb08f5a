//! Recorded calls with arbitrary server addresses and `Host` values (they come off the wire)
//! split into a dependency plan, and the hosts file written from it: no panic, every call
//! counted once, named dependencies on distinct loopback addresses, and every hosts-file line
//! a comment or an address followed by valid names (no injected lines).
//!
//! Run: `cargo +nightly fuzz run dependency_plan` (from `controlplane/netns/fuzz`).
#![no_main]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use tapline_netns::DependencyPlan;
use tapline_netns::files::{hosts_text, is_host_name};

fuzz_target!(|data: &[u8]| {
    // Records: 4 address bytes, 2 port bytes, 1 length byte, then that many Host bytes
    // (length 255: no Host header).
    let mut calls = Vec::new();
    let mut rest = data;
    while let [a, b, c, d, p0, p1, len, tail @ ..] = rest {
        let server = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
            u16::from_be_bytes([*p0, *p1]),
        );
        let n = usize::from(*len).min(tail.len());
        let host = (*len != 255).then(|| String::from_utf8_lossy(&tail[..n]).into_owned());
        calls.push((server, host));
        rest = &tail[n..];
    }
    let port = calls.first().map_or(8080, |(s, _)| s.port());
    let plan = DependencyPlan::build(calls.clone(), port);
    assert_eq!(plan.inbound + plan.dependency_calls(), calls.len());
    let named: Vec<IpAddr> = plan
        .dependencies
        .iter()
        .filter(|d| d.named && d.name != "localhost")
        .map(|d| d.address)
        .collect();
    let distinct: BTreeSet<IpAddr> = named.iter().copied().collect();
    assert_eq!(distinct.len(), named.len());
    assert!(named.iter().all(IpAddr::is_loopback));
    for addr in plan.listen_addrs() {
        assert_ne!(addr.port(), port);
    }
    let text = hosts_text(&plan.hosts(), Some("host"));
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (addr, names) = line.split_once('\t').expect("address and names");
        assert!(addr.parse::<IpAddr>().is_ok(), "{line:?}");
        assert!(
            names
                .split(' ')
                .all(|n| is_host_name(n) || n == "localhost"),
            "{line:?}"
        );
    }
});
