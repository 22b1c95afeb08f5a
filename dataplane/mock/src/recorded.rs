//! The recorded exchanges a mock answers from: owned copies of the request/response pairs of a
//! snapshot, with their heads parsed once.
//!
//! [`Recorded::from_wire`] builds one from the bytes as they were on the wire, so the matcher
//! can be tested without a snapshot; [`crate::load`] reads them from a snapshot.

use std::net::SocketAddr;
use std::time::Duration;

use tapline_http1::{parse_request_head, parse_response_head};

use crate::error::RecordError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
