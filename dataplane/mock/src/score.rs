//! How close a request is to a recorded one: the score behind "closest" matches.
//!
//! ```text
//! score = 0.45·path + 0.20·query + 0.10·headers + 0.25·body        (each part in 0..=1)
//! ```
//!
//! - **path**: the path (before `?`, scheme and authority of an absolute target removed) is
//!   split on `/`; position by position a segment scores 1 when equal, 0.75 when both differ
//!   but look like identifiers (all digits, hex of 8+ characters with a digit, or a UUID), else
//!   0; the sum is divided by the longer segment count.
//! - **query**: over the union of parameter names, a name scores 1 when both have it with the
//!   same values, 0.5 when both have it with other values, else 0; divided by the union's size
//!   (1 when neither has a query). Names and values are compared raw, without percent-decoding.
//! - **headers**: Jaccard similarity (|A∩B| / |A∪B|) of the `(lowercase name, value)` pairs,
//!   leaving out [`IGNORED_HEADERS`] (1 when both are empty).
//! - **body**: 1 when equal; when both are JSON, the Jaccard similarity of their leaves
//!   (`(JSON path, value)` pairs); otherwise (common prefix + common suffix) / longer length.
//!
//! A candidate is eligible only with the same method and `path >= MIN_PATH` (0.6): a request
//! for `/v1/orders` is never answered with `/v1/users`, but `/users/13` may be answered with
//! `/users/7`'s response.

use std::cmp::Ordering;

/// Weight of the path part of the score.
pub const PATH_WEIGHT: f64 = 0.45;
/// Weight of the query part.
pub const QUERY_WEIGHT: f64 = 0.20;
/// Weight of the headers part.
pub const HEADERS_WEIGHT: f64 = 0.10;
/// Weight of the body part.
pub const BODY_WEIGHT: f64 = 0.25;
/// The least path similarity a closest match needs.
pub const MIN_PATH: f64 = 0.6;
/// Credit for two differing segments that both look like identifiers.
const ID_SEGMENT_CREDIT: f64 = 0.75;
/// JSON bodies larger than this are compared as bytes.
const MAX_JSON_BYTES: usize = 1 << 20;
/// Leaves kept of one JSON body.
const MAX_JSON_LEAVES: usize = 4096;

/// Headers the score leaves out: framing and connection management, the address, and values
/// that change on every call.
pub const IGNORED_HEADERS: [&str; 16] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "date",
    "traceparent",
    "tracestate",
    "x-request-id",
    "x-amzn-trace-id",
    "x-b3-traceid",
];

/// The parts of a request the score compares, extracted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    segments: Vec<Vec<u8>>,
    query: Vec<(Vec<u8>, Vec<u8>)>,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Json(Vec<(String, String)>),
    Bytes(Vec<u8>),
}

/// A score and its parts, each in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The weighted total.
    pub total: f64,
    /// Path similarity.
    pub path: f64,
    /// Query similarity.
    pub query: f64,
    /// Header similarity.
    pub headers: f64,
    /// Body similarity.
    pub body: f64,
}

impl Score {
    /// Whether this score may answer a request at `min_score` (method equality is the
    /// caller's check).
    pub fn eligible(&self, min_score: f64) -> bool {
        self.path >= MIN_PATH && self.total >= min_score
    }

    /// Orders scores best first (a total order; NaN never occurs).
    pub fn better(&self, other: &Score) -> Ordering {
        other.total.total_cmp(&self.total)
    }
}

impl Features {
    /// Extracts the compared parts of a request.
    pub fn new<'a>(
        target: &[u8],
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
    ) -> Self {
        let (path, query) = split_target(target);
        let segments = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut query: Vec<(Vec<u8>, Vec<u8>)> = query
            .map(|q| {
                q.split(|&b| b == b'&')
                    .filter(|p| !p.is_empty())
                    .map(|p| match p.iter().position(|&b| b == b'=') {
                        Some(i) => (
                            p.get(..i).unwrap_or_default().to_vec(),
                            p.get(i + 1..).unwrap_or_default().to_vec(),
                        ),
                        None => (p.to_vec(), Vec::new()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        query.sort();
        let mut headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .filter(|(n, _)| !IGNORED_HEADERS.contains(&n.as_str()))
            .collect();
        headers.sort();
        Features {
            segments,
            query,
            headers,
            body: body_features(body),
        }
    }

    /// Scores `self` (a request) against `other` (a recorded request).
    pub fn score(&self, other: &Features) -> Score {
        let path = path_similarity(&self.segments, &other.segments);
        let query = query_similarity(&self.query, &other.query);
        let headers = jaccard(&self.headers, &other.headers);
        let body = match (&self.body, &other.body) {
            (Body::Json(a), Body::Json(b)) => jaccard(a, b),
            (Body::Bytes(a), Body::Bytes(b)) => byte_similarity(a, b),
            _ => 0.0,
        };
        Score {
            total: PATH_WEIGHT * path
                + QUERY_WEIGHT * query
                + HEADERS_WEIGHT * headers
                + BODY_WEIGHT * body,
            path,
            query,
            headers,
            body,
        }
    }
}

/// The path and the query of a request target; an absolute target loses its scheme and
/// authority, and the leading `/` is dropped.
fn split_target(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut rest = target;
    if let Some(i) = find(rest, b"://") {
        let after = rest.get(i + 3..).unwrap_or_default();
        rest = match after.iter().position(|&b| b == b'/' || b == b'?') {
            Some(j) => after.get(j..).unwrap_or_default(),
            None => b"",
        };
    }
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            Some(rest.get(i + 1..).unwrap_or_default()),
        ),
        None => (rest, None),
    };
    (path.strip_prefix(b"/").unwrap_or(path), query)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn path_similarity(a: &[Vec<u8>], b: &[Vec<u8>]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let credit: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            if x == y {
                1.0
            } else if looks_like_id(x) && looks_like_id(y) {
                ID_SEGMENT_CREDIT
            } else {
                0.0
            }
        })
        .sum();
    credit / longest as f64
}

/// Whether a path segment looks like an identifier: digits, hex of 8+ characters with a
/// digit, or a UUID.
pub fn looks_like_id(segment: &[u8]) -> bool {
    if segment.is_empty() {
        return false;
    }
    if segment.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let has_digit = segment.iter().any(u8::is_ascii_digit);
    if segment.len() >= 8 && has_digit && segment.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    segment.len() == 36
        && segment.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn query_similarity(a: &[(Vec<u8>, Vec<u8>)], b: &[(Vec<u8>, Vec<u8>)]) -> f64 {
    let mut names: Vec<&[u8]> = a.iter().chain(b).map(|(n, _)| n.as_slice()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return 1.0;
    }
    let values = |q: &'_ [(Vec<u8>, Vec<u8>)], name: &[u8]| -> Vec<Vec<u8>> {
        q.iter()
            .filter(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let credit: f64 = names
        .iter()
        .map(|name| {
            let (x, y) = (values(a, name), values(b, name));
            match (x.is_empty(), y.is_empty()) {
                (false, false) if x == y => 1.0,
                (false, false) => 0.5,
                _ => 0.0,
            }
        })
        .sum();
    credit / names.len() as f64
}

/// |A∩B| / |A∪B| of two sorted multisets; 1 when both are empty.
fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

fn byte_similarity(a: &[u8], b: &[u8]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let shortest = a.len().min(b.len());
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (prefix + suffix).min(shortest) as f64 / longest as f64
}

fn body_features(body: &[u8]) -> Body {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if body.len() <= MAX_JSON_BYTES
        && matches!(first, Some(b'{' | b'['))
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
    {
        let mut leaves = Vec::new();
        flatten(&value, &mut String::from("$"), &mut leaves);
        leaves.sort();
        return Body::Json(leaves);
    }
    Body::Bytes(body.to_vec())
}

fn flatten(value: &serde_json::Value, path: &mut String, out: &mut Vec<(String, String)>) {
    if out.len() >= MAX_JSON_LEAVES {
        return;
    }
    let len = path.len();
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                path.push('.');
                path.push_str(key);
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        leaf => out.push((path.clone(), leaf.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(target: &str, headers: &[(&'static str, &'static str)], body: &str) -> Features {
        Features::new(
            target.as_bytes(),
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
            body.as_bytes(),
        )
    }

    fn score(a: &str, b: &str) -> Score {
        features(a, &[], "").score(&features(b, &[], ""))
    }

    #[test]
    fn identical_requests_score_one() {
        let s = score("/users/1?a=1&b=2", "/users/1?b=2&a=1");
        assert!((s.total - 1.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn identifier_segments_are_close_and_words_are_not() {
        let ids = score("/users/13", "/users/7");
        assert!((ids.path - 0.875).abs() < 1e-9, "{ids:?}");
        assert!(ids.eligible(0.6));
        let words = score("/v1/orders", "/v1/users");
        assert!((words.path - 0.5).abs() < 1e-9);
        assert!(!words.eligible(0.0));
        let uuid = score(
            "/o/123e4567-e89b-12d3-a456-426614174000",
            "/o/00000000-0000-0000-0000-000000000000",
        );
        assert!(uuid.eligible(0.6));
        assert!(!looks_like_id(b"deadbeef"), "hex needs a digit");
        assert!(looks_like_id(b"deadbee5"));
    }

    #[test]
    fn query_values_that_differ_count_half() {
        let s = score("/a?x=1&ts=5", "/a?x=1&ts=6");
        assert!((s.query - 0.75).abs() < 1e-9, "{s:?}");
        let missing = score("/a?x=1", "/a");
        assert!(missing.query.abs() < 1e-9);
        assert!((score("/a", "/a").query - 1.0).abs() < 1e-9);
    }

    #[test]
    fn absolute_targets_compare_by_path() {
        let s = score("http://api:8080/users/1?q=2", "/users/1?q=2");
        assert!((s.total - 1.0).abs() < 1e-9, "{s:?}");
        assert!((score("http://api", "/").path - 1.0).abs() < 1e-9);
    }

    #[test]
    fn volatile_headers_are_ignored() {
        let a = features(
            "/",
            &[("Date", "x"), ("Accept", "a"), ("X-Request-Id", "1")],
            "",
        );
        let b = features(
            "/",
            &[("date", "y"), ("accept", "a"), ("x-request-id", "2")],
            "",
        );
        assert!((a.score(&b).headers - 1.0).abs() < 1e-9);
        let c = features("/", &[("Accept", "b")], "");
        assert!(a.score(&c).headers.abs() < 1e-9);
    }

    #[test]
    fn json_bodies_compare_by_leaves() {
        let a = features("/o", &[], r#"{"item":"book","qty":2,"ts":1}"#);
        let b = features("/o", &[], r#"{ "ts": 9, "qty": 2, "item": "book" }"#);
        let s = a.score(&b);
        assert!((s.body - 0.5).abs() < 1e-9, "2 common of 4 leaves: {s:?}");
        let c = features("/o", &[], "not json");
        assert!(a.score(&c).body.abs() < 1e-9);
    }

    #[test]
    fn byte_bodies_compare_by_prefix_and_suffix() {
        assert!((byte_similarity(b"abcXef", b"abcYef") - 5.0 / 6.0).abs() < 1e-9);
        assert!((byte_similarity(b"aaaa", b"aa") - 0.5).abs() < 1e-9);
        assert!((byte_similarity(b"", b"") - 1.0).abs() < 1e-9);
        assert!(byte_similarity(b"", b"x").abs() < 1e-9);
    }

    #[test]
    fn weights_sum_to_one() {
        let sum = PATH_WEIGHT + QUERY_WEIGHT + HEADERS_WEIGHT + BODY_WEIGHT;
        assert!((sum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn deep_json_is_bounded() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        // serde_json refuses nesting past 128: compared as bytes, no stack overflow.
        let f = features("/", &[], &deep);
        assert!((f.score(&f).body - 1.0).abs() < 1e-9);
    }
}
