//! The recorded exchanges a mock answers from: owned copies of the request/response pairs of a
//! snapshot, with their heads parsed once.
//!
//! [`Recorded::from_wire`] builds one from the bytes as they were on the wire, so the matcher
//! can be tested without a snapshot; [`load`] reads every usable pair of a snapshot, optionally
//! only those whose client is one service ([`ServiceSelector`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_dataplane::snapshot::Snapshot;
use tapline_http1::{parse_request_head, parse_response_head};

use crate::error::{MockError, RecordError};

/// A request/response pair a mock can answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The pair's id in the snapshot.
    pub id: u64,
    /// Capture time of the request's first byte (ns since the Unix epoch): the order of answers.
    pub start_ns: u64,
    /// The client (the service whose outbound call this was).
    pub client: SocketAddr,
    /// The server (the dependency).
    pub server: SocketAddr,
    /// The request method, such as `GET`.
    pub method: String,
    /// The request target exactly as on the wire.
    pub target: Vec<u8>,
    /// The request's headers in order, names as on the wire.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body, transfer coding removed.
    pub body: Vec<u8>,
    /// The recorded answer.
    pub response: RecordedResponse,
    /// From the request's last byte to the response's last byte: what `--latency recorded`
    /// waits before answering.
    pub latency: Duration,
}

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase as on the wire (may be empty).
    pub reason: Vec<u8>,
    /// The headers in order, names as on the wire, framing headers included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, transfer coding removed, content coding kept.
    pub body: Vec<u8>,
    /// Raw trailer lines of a chunked body (without the final blank line).
    pub trailers: Vec<u8>,
    /// Whether it was sent with `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

/// The bytes of one recorded exchange as they were on the wire (heads verbatim, bodies with
/// transfer coding removed), the input of [`Recorded::from_wire`].
#[derive(Debug, Clone, Copy)]
pub struct WireExchange<'a> {
    /// The pair's id.
    pub id: u64,
    /// Capture time of the request's first byte.
    pub start_ns: u64,
    /// The client.
    pub client: SocketAddr,
    /// The server.
    pub server: SocketAddr,
    /// The request head: request line, header lines and the blank line.
    pub request_head: &'a [u8],
    /// The request body.
    pub request_body: &'a [u8],
    /// The response head: status line, header lines and the blank line.
    pub response_head: &'a [u8],
    /// The response body.
    pub response_body: &'a [u8],
    /// The response's chunked trailer lines.
    pub response_trailers: &'a [u8],
    /// From the request's last byte to the response's last byte.
    pub latency: Duration,
}

impl Recorded {
    /// Parses the heads of a recorded exchange and keeps owned copies of it.
    ///
    /// # Errors
    /// [`RecordError`] when either head does not parse.
    pub fn from_wire(x: &WireExchange<'_>) -> Result<Self, RecordError> {
        let request = parse_request_head(x.request_head)
            .map_err(|e| RecordError::RequestHead(e.to_string()))?;
        let response = parse_response_head(x.response_head)
            .map_err(|e| RecordError::ResponseHead(e.to_string()))?;
        let owned = |headers: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
                .collect()
        };
        let chunked = response.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && String::from_utf8_lossy(v)
                    .to_ascii_lowercase()
                    .contains("chunked")
        });
        Ok(Recorded {
            id: x.id,
            start_ns: x.start_ns,
            client: x.client,
            server: x.server,
            method: request.method.to_owned(),
            target: request.target.to_vec(),
            headers: owned(&request.headers),
            body: x.request_body.to_vec(),
            response: RecordedResponse {
                status: response.status,
                reason: response.reason.to_vec(),
                headers: owned(&response.headers),
                body: x.response_body.to_vec(),
                trailers: x.response_trailers.to_vec(),
                chunked,
            },
            latency: x.latency,
        })
    }

    /// The request's `Host` header, when it has one.
    pub fn host(&self) -> Option<&[u8]> {
        header(&self.headers, "host")
    }

    /// The dependency this exchange belongs to: its normalised `Host`, or the server's address
    /// when the request had none.
    pub fn dependency(&self) -> String {
        self.host()
            .map(normalize_host)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| address_alias(self.server))
    }

    /// The pair's id as 16 hex digits, as `inspect` shows it.
    pub fn id_hex(&self) -> String {
        format!("{:016x}", self.id)
    }
}

/// The value of the first header named `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// A `Host` value as the matcher compares it: trimmed, lowercase, without a `:80` port.
pub fn normalize_host(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value).trim().to_ascii_lowercase();
    match text.strip_suffix(":80") {
        Some(bare) if !bare.is_empty() => bare.to_owned(),
        _ => text,
    }
}

/// A server address in the form a `Host` header would name it (`ip:port`, `[v6]:port`, the
/// port left out when it is 80), normalised like [`normalize_host`].
pub fn address_alias(addr: SocketAddr) -> String {
    normalize_host(addr.to_string().as_bytes())
}

/// `--service`: the service whose outbound calls are mocked, by its address (`ip` or
/// `ip:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSelector {
    /// The service's IP address.
    pub ip: IpAddr,
    /// Its port, when given (a client's port is usually ephemeral, so rarely useful).
    pub port: Option<u16>,
}

impl ServiceSelector {
    /// Whether `client` is this service.
    pub fn matches(&self, client: SocketAddr) -> bool {
        canonical(client.ip()) == canonical(self.ip) && self.port.is_none_or(|p| p == client.port())
    }
}

impl FromStr for ServiceSelector {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ServiceSelector {
                ip: addr.ip(),
                port: Some(addr.port()),
            });
        }
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        bare.parse::<IpAddr>()
            .map(|ip| ServiceSelector { ip, port: None })
            .map_err(|_| MockError::BadService {
                value: s.to_owned(),
            })
    }
}

impl std::fmt::Display for ServiceSelector {
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

/// Pairs of a snapshot that were not loaded, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Pairs whose client is not the `--service`.
    pub other_client: u64,
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
    /// The total of every reason.
    pub fn total(&self) -> u64 {
        self.other_client
            + self.one_sided
            + self.damaged
            + self.upgrade
            + self.unparsable
            + self.corrupt
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

/// Reads the usable request/response pairs of the snapshot in `dir`, in capture order; with a
/// `service`, only those whose client is that service.
///
/// # Errors
/// [`MockError::Snapshot`] when the snapshot cannot be opened, [`MockError::NoPairs`] when no
/// pair is usable (the message says what was found instead).
pub fn load(dir: &Path, service: Option<&ServiceSelector>) -> Result<Loaded, MockError> {
    let snapshot = Snapshot::open(dir)?;
    let mut loaded = Loaded::default();
    let mut clients: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut corrupt = 0u64;
    let pairs = snapshot.pairs_sorted(&mut |e| {
        corrupt += 1;
        tracing::warn!(error = %e, "skipping a corrupt record");
    });
    for pair in pairs {
        let client = pair.flow.src();
        *clients.entry(canonical(client.ip())).or_default() += 1;
        if service.is_some_and(|s| !s.matches(client)) {
            loaded.skipped.other_client += 1;
            continue;
        }
        match convert(pair) {
            Ok(recorded) => loaded.recorded.push(recorded),
            Err(reason) => reason.count(&mut loaded.skipped),
        }
    }
    loaded.skipped.corrupt = corrupt;
    if loaded.recorded.is_empty() {
        let mut detail = format!(
            " ({} pairs in the snapshot",
            snapshot.manifest().counts.rrpairs
        );
        let s = &loaded.skipped;
        if let Some(service) = service {
            let seen: Vec<String> = clients.keys().take(8).map(ToString::to_string).collect();
            detail.push_str(&format!(
                "; {} from clients other than --service {service} (clients: {})",
                s.other_client,
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ));
        }
        for (n, what) in [
            (s.one_sided, "without a request or a response"),
            (s.damaged, "incomplete or damaged"),
            (s.upgrade, "protocol upgrades"),
            (s.unparsable, "with heads that do not parse"),
            (s.corrupt, "corrupt records"),
        ] {
            if n > 0 {
                detail.push_str(&format!("; {n} {what}"));
            }
        }
        detail.push(')');
        return Err(MockError::NoPairs {
            path: dir.to_path_buf(),
            detail,
        });
    }
    Ok(loaded)
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
    fn service_selectors_parse_and_match() {
        let ip: ServiceSelector = "10.0.0.5".parse().unwrap();
        assert!(ip.matches("10.0.0.5:41000".parse().unwrap()));
        assert!(ip.matches("[::ffff:10.0.0.5]:41000".parse().unwrap()));
        assert!(!ip.matches("10.0.0.6:41000".parse().unwrap()));
        let with_port: ServiceSelector = "10.0.0.5:41000".parse().unwrap();
        assert!(with_port.matches("10.0.0.5:41000".parse().unwrap()));
        assert!(!with_port.matches("10.0.0.5:41001".parse().unwrap()));
        let v6: ServiceSelector = "[fd00::1]".parse().unwrap();
        assert!(v6.matches("[fd00::1]:5".parse().unwrap()));
        assert_eq!("fd00::1".parse::<ServiceSelector>().unwrap(), v6);
        assert!(matches!(
            "api.internal".parse::<ServiceSelector>(),
            Err(MockError::BadService { .. })
        ));
        assert_eq!(with_port.to_string(), "10.0.0.5:41000");
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(normalize_host(b" API.Example:80 "), "api.example");
        assert_eq!(normalize_host(b"api:8080"), "api:8080");
        assert_eq!(address_alias("10.0.0.1:80".parse().unwrap()), "10.0.0.1");
        assert_eq!(
            address_alias("[fd00::1]:8080".parse().unwrap()),
            "[fd00::1]:8080"
        );
    }

    #[test]
    fn dependency_is_the_host_or_the_server_address() {
        let mut x = WireExchange {
            id: 1,
            start_ns: 1,
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.0.2:8080".parse().unwrap(),
            request_head: b"GET / HTTP/1.1\r\nHost: Users:80\r\n\r\n",
            request_body: b"",
            response_head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            response_body: b"hi",
            response_trailers: b"",
            latency: Duration::ZERO,
        };
        let r = Recorded::from_wire(&x).unwrap();
        assert_eq!(r.dependency(), "users");
        assert!(r.response.chunked);
        x.request_head = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            Recorded::from_wire(&x).unwrap().dependency(),
            "10.0.0.2:8080"
        );
        x.response_head = b"garbage\r\n\r\n";
        assert!(matches!(
            Recorded::from_wire(&x),
            Err(RecordError::ResponseHead(_))
        ));
    }
}
