//! Which recorded traffic is the service's and which its dependencies', and where each
//! dependency answers inside an environment. A deterministic core: it reads server addresses
//! and `Host` headers, nothing else.
//!
//! Pairs whose server port is the service's port are inbound (what a replay sends); every
//! other server is a dependency. A dependency named by a host name (its `Host` header) gets a
//! loopback address of its own, `127.0.1.N` in name order, which the environment's hosts file
//! gives the name; `localhost` stays on 127.0.0.1; one known only by an address (an IP in
//! `Host`, or no `Host`) listens on that address, put on the environment's loopback. Each
//! listens on every port it was called on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tapline_dataplane::snapshot::Snapshot;
use tapline_dataplane::view::PairView;

use crate::files::is_host_name;

/// A recorded dependency, as the environment serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Its host name, or its address when it had none.
    pub name: String,
    /// The address its mock listens on inside the environment.
    pub address: IpAddr,
    /// The ports it was called on.
    pub ports: Vec<u16>,
    /// The recorded server addresses of its calls (the mock answers from these pairs).
    pub servers: Vec<SocketAddr>,
    /// Recorded calls.
    pub calls: usize,
    /// Whether it is known by name (and so has a hosts-file line).
    pub named: bool,
}

/// The service's recorded traffic split into inbound requests and dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyPlan {
    /// The service's port.
    pub port: u16,
    /// Recorded requests to the service's port.
    pub inbound: usize,
    /// The dependencies, by name.
    pub dependencies: Vec<Dependency>,
    /// Every server address seen with its request count (for messages).
    pub servers_seen: BTreeMap<SocketAddr, usize>,
}

impl DependencyPlan {
    /// Splits the pairs of `snapshot` (those with a request) for a service on `port`; corrupt
    /// records are skipped (replay and the mocks report them).
    pub fn from_snapshot(snapshot: &Snapshot, port: u16) -> Self {
        let pairs = snapshot.pairs_sorted(&mut |_| {});
        let calls = pairs.iter().filter_map(|pair| {
            let view = PairView::new(pair);
            view.request.as_ref()?;
            Some((pair.flow.dst(), view.host()))
        });
        Self::build(calls, port)
    }

    /// Splits `calls` (server address, `Host` header) for a service on `port`.
    pub fn build(calls: impl IntoIterator<Item = (SocketAddr, Option<String>)>, port: u16) -> Self {
        let mut plan = DependencyPlan {
            port,
            ..DependencyPlan::default()
        };
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        for (server, host) in calls {
            *plan.servers_seen.entry(server).or_default() += 1;
            if server.port() == port {
                plan.inbound += 1;
                continue;
            }
            let (name, named, address) = match host.as_deref().and_then(host_part) {
                Some(HostPart::Name(name)) => (name, true, server.ip()),
                Some(HostPart::Address(ip)) => (ip.to_string(), false, ip),
                None => (server.ip().to_string(), false, server.ip()),
            };
            let entry = found.entry(name).or_insert_with(|| Found {
                named,
                address,
                ports: BTreeSet::new(),
                servers: BTreeSet::new(),
                calls: 0,
            });
            entry.ports.insert(server.port());
            entry.servers.insert(server);
            entry.calls += 1;
        }
        let mut next: u32 = 1;
        for (name, found) in found {
            let Found {
                named,
                address,
                ports,
                servers,
                calls,
            } = found;
            let address = if !named {
                address
            } else if name == "localhost" {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                let assigned = loopback_address(next);
                next += 1;
                assigned
            };
            plan.dependencies.push(Dependency {
                name,
                address,
                ports: ports.into_iter().collect(),
                servers: servers.into_iter().collect(),
                calls,
                named,
            });
        }
        plan
    }

    /// The hosts-file lines of the named dependencies.
    pub fn hosts(&self) -> Vec<(IpAddr, Vec<String>)> {
        self.dependencies
            .iter()
            .filter(|d| d.named && d.name != "localhost")
            .map(|d| (d.address, vec![d.name.clone()]))
            .collect()
    }

    /// Addresses to put on the environment's loopback: those of dependencies known only by a
    /// non-loopback address.
    pub fn loopback_addresses(&self) -> Vec<IpAddr> {
        let set: BTreeSet<IpAddr> = self
            .dependencies
            .iter()
            .map(|d| d.address)
            .filter(|a| !a.is_loopback() && !a.is_unspecified())
            .collect();
        set.into_iter().collect()
    }

    /// Where the mocks listen: each dependency's address with each of its ports.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.dependencies
            .iter()
            .flat_map(|d| d.ports.iter().map(|p| SocketAddr::new(d.address, *p)))
            .collect()
    }

    /// Every recorded server address of a dependency.
    pub fn dependency_servers(&self) -> Vec<SocketAddr> {
        let set: BTreeSet<SocketAddr> = self
            .dependencies
            .iter()
            .flat_map(|d| d.servers.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// Recorded calls to dependencies.
    pub fn dependency_calls(&self) -> usize {
        self.dependencies.iter().map(|d| d.calls).sum()
    }
}

/// A dependency while the calls are read.
#[derive(Debug)]
struct Found {
    /// Known by a host name.
    named: bool,
    /// Its address when not named.
    address: IpAddr,
    /// Ports called.
    ports: BTreeSet<u16>,
    /// Recorded server addresses.
    servers: BTreeSet<SocketAddr>,
    /// Calls.
    calls: usize,
}

/// The `n`-th address of 127.0.1.1 to 127.255.255.254 (skipping .0 and .255 in the last
/// byte), for named dependencies.
fn loopback_address(n: u32) -> IpAddr {
    let n = n.saturating_sub(1);
    let last = u8::try_from(n % 254 + 1).unwrap_or(1);
    let rest = n / 254 + 1; // 127.0.1.x first
    let [_, _, b, c] = rest.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, b, c, last))
}

/// What a `Host` header names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPart {
    /// A host name, lowercase.
    Name(String),
    /// An IP address.
    Address(IpAddr),
}

/// The host of a `Host` value without its port; `None` when it is empty or not a valid name.
fn host_part(value: &str) -> Option<HostPart> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        rest.split_once(']').map(|(h, _)| h)?
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => value,
        }
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostPart::Address(ip));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    is_host_name(&name).then_some(HostPart::Name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(server: &str, host: Option<&str>) -> (SocketAddr, Option<String>) {
        (server.parse().unwrap(), host.map(str::to_owned))
    }

    #[test]
    fn inbound_and_dependencies_are_split_by_port_and_host() {
        let plan = DependencyPlan::build(
            [
                call("127.0.0.1:8080", Some("127.0.0.1:8080")),
                call("127.0.0.1:8080", Some("127.0.0.1:8080")),
                call("127.0.2.2:8082", Some("pricing:8082")),
                call("127.0.2.1:8081", Some("Inventory:8081")),
                call("127.0.2.1:8081", Some("inventory:8081")),
                call("127.0.2.1:9090", Some("inventory:9090")),
            ],
            8080,
        );
        assert_eq!(plan.inbound, 2);
        let names: Vec<&str> = plan.dependencies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["inventory", "pricing"]);
        let inventory = &plan.dependencies[0];
        assert_eq!(inventory.address.to_string(), "127.0.1.1");
        assert_eq!(inventory.ports, [8081, 9090]);
        assert_eq!(inventory.calls, 3);
        assert_eq!(plan.dependencies[1].address.to_string(), "127.0.1.2");
        assert_eq!(
            plan.hosts(),
            [
                ("127.0.1.1".parse().unwrap(), vec!["inventory".to_owned()]),
                ("127.0.1.2".parse().unwrap(), vec!["pricing".to_owned()]),
            ]
        );
        let listen: Vec<String> = plan
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listen,
            ["127.0.1.1:8081", "127.0.1.1:9090", "127.0.1.2:8082"]
        );
        assert_eq!(plan.dependency_calls(), 4);
        assert!(plan.loopback_addresses().is_empty());
    }

    #[test]
    fn dependencies_without_a_name_listen_on_their_address() {
        let plan = DependencyPlan::build(
            [
                call("10.0.0.7:5000", None),
                call("10.0.0.8:5000", Some("10.0.0.8:5000")),
                call("127.0.0.1:6000", Some("localhost:6000")),
                call("10.0.0.9:80", Some("bad name\r\nx")),
            ],
            8080,
        );
        let by_name: BTreeMap<&str, String> = plan
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.address.to_string()))
            .collect();
        assert_eq!(by_name["10.0.0.7"], "10.0.0.7");
        assert_eq!(by_name["10.0.0.8"], "10.0.0.8");
        assert_eq!(by_name["localhost"], "127.0.0.1");
        assert_eq!(by_name["10.0.0.9"], "10.0.0.9");
        assert!(plan.hosts().is_empty());
        let extra: Vec<String> = plan
            .loopback_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(extra, ["10.0.0.7", "10.0.0.8", "10.0.0.9"]);
        assert_eq!(plan.inbound, 0);
    }

    #[test]
    fn host_values_are_read_carefully() {
        assert_eq!(host_part("api:8080"), Some(HostPart::Name("api".into())));
        assert_eq!(
            host_part("API.example."),
            Some(HostPart::Name("api.example".into()))
        );
        assert_eq!(
            host_part("[fd00::1]:8080"),
            Some(HostPart::Address("fd00::1".parse().unwrap()))
        );
        assert_eq!(host_part(""), None);
        assert_eq!(host_part("[fd00::1"), None);
        assert_eq!(host_part("a/b:80"), None);
    }

    #[test]
    fn loopback_addresses_count_past_one_block() {
        assert_eq!(loopback_address(1).to_string(), "127.0.1.1");
        assert_eq!(loopback_address(254).to_string(), "127.0.1.254");
        assert_eq!(loopback_address(255).to_string(), "127.0.2.1");
    }
}
