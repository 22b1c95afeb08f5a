//! Loading the exchanges a mock answers from out of a snapshot, and choosing which:
//! `--service` keeps the pairs whose client is the service (its outbound calls),
//! `--dependency` those whose server is one of the named dependencies.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_dataplane::snapshot::Snapshot;

use crate::error::MockError;
use crate::recorded::{Recorded, WireExchange};

/// Addresses named in a no-pairs message.
const ADDRESSES_NAMED: usize = 8;

/// An address a flag selects pairs by: an IP address, or `ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSelector {
    /// The IP address.
    pub ip: IpAddr,
    /// The port, when given.
    pub port: Option<u16>,
}

impl AddrSelector {
    /// Whether `addr` is this address (any port when none was given; an IPv4 address equals
    /// its IPv6-mapped form).
    pub fn matches(&self, addr: SocketAddr) -> bool {
        canonical(addr.ip()) == canonical(self.ip) && self.port.is_none_or(|p| p == addr.port())
    }
}

impl FromStr for AddrSelector {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(AddrSelector {
                ip: addr.ip(),
                port: Some(addr.port()),
            });
        }
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        bare.parse::<IpAddr>()
            .map(|ip| AddrSelector { ip, port: None })
            .map_err(|_| MockError::BadAddress {
                value: s.to_owned(),
            })
    }
}

impl std::fmt::Display for AddrSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}", SocketAddr::new(self.ip, port)),
            None => write!(f, "{}", self.ip),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Which pairs of a snapshot a mock answers from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only pairs whose client is this service (`--service`).
    pub service: Option<AddrSelector>,
    /// Only pairs whose server is one of these (`--dependency`); all when empty.
    pub dependencies: Vec<AddrSelector>,
}

/// Pairs of a snapshot that were not loaded, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Pairs whose client is not the `--service`.
    pub other_client: u64,
    /// Pairs whose server is none of the `--dependency` addresses.
    pub other_server: u64,
    /// Pairs without a request or without a response.
    pub one_sided: u64,
    /// Pairs flagged incomplete, with a gap, a truncated body or a parse error.
    pub damaged: u64,
    /// Pairs that switched protocols (101, CONNECT).
    pub upgrade: u64,
    /// Pairs whose heads do not parse.
    pub unparsable: u64,
    /// Corrupt records in the snapshot's segments.
    pub corrupt: u64,
}

impl Skipped {
    /// Each non-zero count with what it counts, in a fixed order.
    pub fn reasons(&self) -> Vec<(u64, &'static str)> {
        [
            (self.other_client, "of other clients"),
            (self.other_server, "to other servers"),
            (self.one_sided, "without a request or a response"),
            (self.damaged, "incomplete or damaged"),
            (self.upgrade, "protocol upgrades"),
            (self.unparsable, "with heads that do not parse"),
            (self.corrupt, "corrupt records"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .collect()
    }

    /// The total of every reason.
    pub fn total(&self) -> u64 {
        self.reasons().iter().map(|(n, _)| n).sum()
    }
}

/// What [`load`] read from a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The usable exchanges, in capture order.
    pub recorded: Vec<Recorded>,
    /// What was left out, and why.
    pub skipped: Skipped,
}

/// Reads the usable request/response pairs of the snapshot in `dir` that `selection` admits,
/// in capture order.
///
/// # Errors
/// [`MockError::Snapshot`] when the snapshot cannot be opened, [`MockError::NoPairs`] when no
/// pair is usable (the message says what was found instead).
pub fn load(dir: &Path, selection: &Selection) -> Result<Loaded, MockError> {
    let snapshot = Snapshot::open(dir)?;
    let mut loaded = Loaded::default();
    let mut clients: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut servers: BTreeMap<SocketAddr, u64> = BTreeMap::new();
    let mut corrupt = 0u64;
    let pairs = snapshot.pairs_sorted(&mut |e| {
        corrupt += 1;
        tracing::warn!(error = %e, "skipping a corrupt record");
    });
    for pair in pairs {
        let (client, server) = (pair.flow.src(), pair.flow.dst());
        *clients.entry(canonical(client.ip())).or_default() += 1;
        *servers.entry(server).or_default() += 1;
        if selection.service.is_some_and(|s| !s.matches(client)) {
            loaded.skipped.other_client += 1;
            continue;
        }
        if !selection.dependencies.is_empty()
            && !selection.dependencies.iter().any(|d| d.matches(server))
        {
            loaded.skipped.other_server += 1;
            continue;
        }
        match convert(pair) {
            Ok(recorded) => loaded.recorded.push(recorded),
            Err(reason) => reason.count(&mut loaded.skipped),
        }
    }
    loaded.skipped.corrupt = corrupt;
    if !loaded.recorded.is_empty() {
        return Ok(loaded);
    }
    let named = |addrs: Vec<String>| {
        if addrs.is_empty() {
            "none".to_owned()
        } else {
            addrs.join(", ")
        }
    };
    let mut detail = format!(
        " ({} pairs in the snapshot",
        snapshot.manifest().counts.rrpairs
    );
    for (n, what) in loaded.skipped.reasons() {
        detail.push_str(&format!("; {n} {what}"));
    }
    if selection.service.is_some() {
        let seen = clients
            .keys()
            .take(ADDRESSES_NAMED)
            .map(ToString::to_string);
        detail.push_str(&format!("; clients seen: {}", named(seen.collect())));
    }
    if !selection.dependencies.is_empty() {
        let seen = servers
            .keys()
            .take(ADDRESSES_NAMED)
            .map(ToString::to_string);
        detail.push_str(&format!("; servers seen: {}", named(seen.collect())));
    }
    detail.push(')');
    Err(MockError::NoPairs {
        path: dir.to_path_buf(),
        detail,
    })
}

enum SkipReason {
    OneSided,
    Damaged,
    Upgrade,
    Unparsable,
}

impl SkipReason {
    fn count(self, skipped: &mut Skipped) {
        match self {
            SkipReason::OneSided => skipped.one_sided += 1,
            SkipReason::Damaged => skipped.damaged += 1,
            SkipReason::Upgrade => skipped.upgrade += 1,
            SkipReason::Unparsable => skipped.unparsable += 1,
        }
    }
}

fn convert(pair: &ArchivedRRPair) -> Result<Recorded, SkipReason> {
    let (Some(request), Some(response)) = (pair.request.as_ref(), pair.response.as_ref()) else {
        return Err(SkipReason::OneSided);
    };
    let flags = pair.flags.to_native();
    let damaged = PairFlags::INCOMPLETE
        | PairFlags::GAP
        | PairFlags::BODY_TRUNCATED
        | PairFlags::PARSE_ERROR
        | PairFlags::NO_RESPONSE
        | PairFlags::NO_REQUEST;
    if flags & PairFlags::UPGRADE != 0 {
        return Err(SkipReason::Upgrade);
    }
    if flags & damaged != 0 {
        return Err(SkipReason::Damaged);
    }
    let latency_ns = response
        .end_ns
        .to_native()
        .saturating_sub(request.end_ns.to_native());
    Recorded::from_wire(&WireExchange {
        id: pair.id.to_native(),
        start_ns: pair.start_ns.to_native(),
        client: pair.flow.src(),
        server: pair.flow.dst(),
        request_head: request.head.as_slice(),
        request_body: request.body.as_slice(),
        response_head: response.head.as_slice(),
        response_body: response.body.as_slice(),
        response_trailers: response.trailers.as_slice(),
        latency: Duration::from_nanos(latency_ns),
    })
    .map_err(|_| SkipReason::Unparsable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_selectors_parse_and_match() {
        let ip: AddrSelector = "10.0.0.5".parse().unwrap();
        assert!(ip.matches("10.0.0.5:41000".parse().unwrap()));
        assert!(ip.matches("[::ffff:10.0.0.5]:41000".parse().unwrap()));
        assert!(!ip.matches("10.0.0.6:41000".parse().unwrap()));
        let with_port: AddrSelector = "10.0.0.5:41000".parse().unwrap();
        assert!(with_port.matches("10.0.0.5:41000".parse().unwrap()));
        assert!(!with_port.matches("10.0.0.5:41001".parse().unwrap()));
        let v6: AddrSelector = "[fd00::1]".parse().unwrap();
        assert!(v6.matches("[fd00::1]:5".parse().unwrap()));
        assert_eq!("fd00::1".parse::<AddrSelector>().unwrap(), v6);
        assert!(matches!(
            "api.internal".parse::<AddrSelector>(),
            Err(MockError::BadAddress { .. })
        ));
        assert_eq!(with_port.to_string(), "10.0.0.5:41000");
    }

    #[test]
    fn skipped_reasons_are_named_and_summed() {
        let s = Skipped {
            other_client: 2,
            damaged: 1,
            ..Skipped::default()
        };
        assert_eq!(
            s.reasons(),
            [(2, "of other clients"), (1, "incomplete or damaged")]
        );
        assert_eq!(s.total(), 3);
    }

    #[test]
    fn a_missing_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("nope"), &Selection::default()).unwrap_err();
        assert!(matches!(err, MockError::Snapshot(_)), "{err}");
    }
}
