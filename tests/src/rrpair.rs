//! The records of `tapline inspect --format jsonl`, parsed and checked against the contract.
//!
//! One JSON object per line, sorted by start time:
//! `{"id", "protocol", "start", "end", "duration_us", "flow": {"src", "dst"},
//!   "request": {"method", "path", "headers": [[name, value], ...], "body_len", "body_sha256"} | null,
//!   "response": {"status", "headers", "body_len", "body_sha256"} | null, "flags": [..]}`.
//! Fields beyond these are allowed (the contract may grow); missing or mistyped ones are not,
//! with one exception: a response whose status line was never seen (a pair flagged
//! `incomplete`, e.g. after a gap) may lack `status` and `headers`.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{E2eError, Result};

/// One request/response pair as `tapline inspect --format jsonl` prints it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RrPair {
    /// The pair's identifier (its type is the binary's choice).
    pub id: serde_json::Value,
    /// The protocol, `"http1"` for now.
    pub protocol: String,
    /// When the request began, RFC 3339 with nanoseconds.
    pub start: String,
    /// When the response ended, RFC 3339 with nanoseconds.
    pub end: String,
    /// `end - start` in microseconds.
    pub duration_us: u64,
    /// The connection, client first.
    pub flow: Flow,
    /// The request, when one was seen.
    pub request: Option<Request>,
    /// The response, when one was seen.
    pub response: Option<Response>,
    /// Marks such as `"incomplete"`.
    pub flags: Vec<String>,
}

/// The two ends of a pair's connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Flow {
    /// The client, `ip:port` (`[ip]:port` for IPv6).
    pub src: String,
    /// The server, `ip:port` (`[ip]:port` for IPv6).
    pub dst: String,
}

/// An HTTP request's summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Request {
    /// The method, as on the wire.
    pub method: String,
    /// The request target, exactly as on the wire.
    pub path: String,
    /// Header fields in order, as `[name, value]`.
    pub headers: Vec<(String, String)>,
    /// The body's length after transfer decoding.
    pub body_len: u64,
    /// SHA-256 of the body after transfer decoding, lowercase hex.
    pub body_sha256: String,
}

/// An HTTP response's summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Response {
    /// The status code; `None` only on an `incomplete` pair whose status line was not seen.
    #[serde(default)]
    pub status: Option<u16>,
    /// Header fields in order, as `[name, value]` (empty when the head was not seen).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body's length after transfer decoding.
    pub body_len: u64,
    /// SHA-256 of the body after transfer decoding, lowercase hex.
    pub body_sha256: String,
}

impl RrPair {
    /// Whether the pair carries `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The request's method and target, or `None` without a request.
    pub fn method_path(&self) -> Option<(&str, &str)> {
        self.request
            .as_ref()
            .map(|r| (r.method.as_str(), r.path.as_str()))
    }

    /// The response's status, or `None` without a response (or its status line).
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().and_then(|r| r.status)
    }

    /// The start time in nanoseconds since the Unix epoch.
    ///
    /// # Errors
    ///
    /// When `start` is not RFC 3339.
    pub fn start_ns(&self) -> std::result::Result<i128, String> {
        parse_time(&self.start)
    }

    /// The value of the first request header named `name` (case-insensitive).
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request.as_ref().and_then(|r| header(&r.headers, name))
    }
}

/// The value of the first header named `name` (case-insensitive).
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses an RFC 3339 timestamp that must carry nine fractional digits, into nanoseconds.
fn parse_time(text: &str) -> std::result::Result<i128, String> {
    let fraction = text
        .split_once('.')
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).count());
    if fraction != Some(9) {
        return Err(format!("{text:?} lacks nanoseconds (9 fractional digits)"));
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp_nanos)
        .map_err(|e| format!("{text:?} is not RFC 3339: {e}"))
}

/// Parses `tapline inspect --format jsonl` output and checks each record's invariants:
/// timestamps are RFC 3339 with nanoseconds, `start <= end`, hashes are 64 hex digits,
/// a response lacks its status only on an `incomplete` pair, and records are sorted by
/// start time.
///
/// # Errors
///
/// [`E2eError::Jsonl`] naming the first line that breaks the contract.
pub fn parse_jsonl(output: &[u8]) -> Result<Vec<RrPair>> {
    let text = std::str::from_utf8(output).map_err(|e| E2eError::Jsonl {
        line: 0,
        reason: format!("not UTF-8: {e}"),
    })?;
    let mut pairs: Vec<RrPair> = Vec::new();
    let mut previous_start = i128::MIN;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let bad = |reason: String| E2eError::Jsonl {
            line: line_no,
            reason,
        };
        if line.trim().is_empty() {
            return Err(bad("empty line".to_owned()));
        }
        let pair: RrPair = serde_json::from_str(line).map_err(|e| bad(format!("{e}: {line}")))?;
        let start = parse_time(&pair.start).map_err(&bad)?;
        let end = parse_time(&pair.end).map_err(&bad)?;
        if end < start {
            return Err(bad(format!("end {} before start {}", pair.end, pair.start)));
        }
        if start < previous_start {
            return Err(bad(format!("not sorted by start time at {}", pair.start)));
        }
        previous_start = start;
        let headless = pair.response.as_ref().is_some_and(|r| r.status.is_none());
        if headless && !pair.has_flag("incomplete") {
            return Err(bad(
                "response without status on a pair not flagged incomplete".to_owned(),
            ));
        }
        let hashes = pair
            .request
            .iter()
            .map(|r| &r.body_sha256)
            .chain(pair.response.iter().map(|r| &r.body_sha256));
        for hash in hashes {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("body_sha256 {hash:?} is not 64 hex digits")));
            }
        }
        pairs.push(pair);
    }
    Ok(pairs)
}

/// SHA-256 of `bytes`, lowercase hex (as `body_sha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"id":"1","protocol":"http1","start":"2024-01-02T03:04:05.000000001Z","end":"2024-01-02T03:04:05.000001001Z","duration_us":1,"flow":{"src":"10.0.0.1:40000","dst":"10.0.0.2:80"},"request":{"method":"GET","path":"/a?b","headers":[["Host","x"]],"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"response":null,"flags":["incomplete"],"extra":true}"#;

    #[test]
    fn a_contract_line_parses_and_extra_fields_are_allowed() {
        let pairs = parse_jsonl(format!("{LINE}\n").as_bytes()).unwrap();
        assert_eq!(pairs.len(), 1);
        let pair = &pairs[0];
        assert_eq!(pair.method_path(), Some(("GET", "/a?b")));
        assert_eq!(pair.status(), None);
        assert!(pair.has_flag("incomplete"));
        assert_eq!(pair.request_header("host"), Some("x"));
        assert_eq!(pair.start_ns().unwrap() % 1_000_000_000, 1);
    }

    #[test]
    fn a_response_without_status_is_accepted_only_on_an_incomplete_pair() {
        let headless = r#""response":{"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#;
        let line = LINE.replace(r#""response":null"#, headless);
        let pairs = parse_jsonl(line.as_bytes()).unwrap();
        assert_eq!(pairs[0].status(), None);
        let complete = line.replace(r#"["incomplete"]"#, "[]");
        assert!(parse_jsonl(complete.as_bytes()).is_err());
    }

    #[test]
    fn timestamps_without_nanoseconds_are_refused() {
        let line = LINE.replace("05.000000001Z", "05Z");
        assert!(parse_jsonl(line.as_bytes()).is_err());
    }

    #[test]
    fn records_out_of_start_order_are_refused() {
        let later = LINE
            .replace("05.000000001Z", "06.000000001Z")
            .replace("05.000001001Z", "06.000001001Z");
        let text = format!("{later}\n{LINE}\n");
        let error = parse_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
