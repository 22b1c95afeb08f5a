//! The comparer: a recorded response against the target's, status, headers and body, with the
//! ignore rules of the request's endpoint.
//!
//! Headers are compared as a multimap by name (order between names does not count; the order
//! of one name's values does). Bodies are compared after their content coding (gzip, deflate)
//! is undone; equal bytes match at once, JSON on both sides is diffed structurally, anything
//! else is reported as one `body` difference with where the bytes first part.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;
use tapline_http1::{decode_body, parse_response_head};

use crate::diff::{Difference, Kind, Location};
use crate::jsondiff::diff_json;
use crate::rules::IgnoreSet;

/// Most differences kept per response (all are counted).
pub const MAX_DIFFERENCES: usize = 50;
/// Largest body decoded for comparison.
const MAX_DECODED: usize = 64 * 1024 * 1024;

/// A recorded response, prepared once for many comparisons.
#[derive(Debug)]
pub struct Expected {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body with its content coding undone (or as recorded when that fails).
    pub body: Vec<u8>,
    json: OnceLock<Option<Value>>,
}

impl Expected {
    /// Prepares a recorded response from its head and body; `None` when the head does not
    /// parse.
    pub fn new(head: &[u8], body: &[u8]) -> Option<Self> {
        let parsed = parse_response_head(head).ok()?;
        let body = decode_body(&parsed.headers, body, MAX_DECODED)
            .map_or_else(|_| body.to_vec(), Cow::into_owned);
        Some(Expected {
            status: parsed.status,
            headers: parsed
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
                .collect(),
            body,
            json: OnceLock::new(),
        })
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.body).ok())
            .as_ref()
    }

    fn json_typed(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n == "content-type" && is_json_type(v))
    }
}

/// The target's response, borrowed from the connection's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body (transfer coding removed, content coding kept).
    pub body: &'a [u8],
}

/// Compares; returns the differences kept (at most [`MAX_DIFFERENCES`]) and how many there
/// were.
pub fn compare(
    expected: &Expected,
    observed: &Observed<'_>,
    ignore: &IgnoreSet,
) -> (Vec<Difference>, usize) {
    let mut out = Vec::new();
    let mut found = 0;
    if !ignore.status() && expected.status != observed.status {
        found += 1;
        out.push(Difference {
            location: Location::Status,
            kind: Kind::Changed,
            expected: Some(expected.status.into()),
            actual: Some(observed.status.into()),
            detail: None,
        });
    }
    if !same_headers(expected, observed, ignore) {
        found += header_differences(expected, observed, ignore, &mut out);
    }
    if !ignore.body() {
        found += body_differences(expected, observed, ignore, &mut out);
    }
    out.truncate(MAX_DIFFERENCES);
    (out, found)
}

/// The fast path: the compared headers are equal in the same order.
fn same_headers(expected: &Expected, observed: &Observed<'_>, ignore: &IgnoreSet) -> bool {
    let mut e = expected.headers.iter().filter(|(n, _)| !ignore.header(n));
    let mut a = observed.headers.iter().filter(|(n, _)| !ignore.header(n));
    loop {
        match (e.next(), a.next()) {
            (None, None) => return true,
            (Some((en, ev)), Some((an, av))) if en.eq_ignore_ascii_case(an) && ev == av => {}
            _ => return false,
        }
    }
}

fn header_differences(
    expected: &Expected,
    observed: &Observed<'_>,
    ignore: &IgnoreSet,
    out: &mut Vec<Difference>,
) -> usize {
    // Per lowercase name: the recorded values and the target's, in order.
    type Values<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);
    let mut by_name: BTreeMap<String, Values<'_>> = BTreeMap::new();
    for (n, v) in &expected.headers {
        if !ignore.header(n) {
            by_name.entry(n.clone()).or_default().0.push(v);
        }
    }
    for (n, v) in observed.headers {
        if !ignore.header(n) {
            by_name.entry(n.to_ascii_lowercase()).or_default().1.push(v);
        }
    }
    let join = |values: &[&[u8]]| {
        let parts: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        Value::String(parts.join(", "))
    };
    let mut found = 0;
    for (name, (e, a)) in by_name {
        if e == a {
            continue;
        }
        let kind = match (e.is_empty(), a.is_empty()) {
            (false, true) => Kind::Missing,
            (true, false) => Kind::Added,
            _ => Kind::Changed,
        };
        found += 1;
        out.push(Difference {
            location: Location::Header(name),
            kind,
            expected: (!e.is_empty()).then(|| join(&e)),
            actual: (!a.is_empty()).then(|| join(&a)),
            detail: None,
        });
    }
    found
}

fn body_differences(
    expected: &Expected,
    observed: &Observed<'_>,
    ignore: &IgnoreSet,
    out: &mut Vec<Difference>,
) -> usize {
    let actual = decode_body(observed.headers, observed.body, MAX_DECODED)
        .unwrap_or(Cow::Borrowed(observed.body));
    if expected.body == *actual {
        return 0;
    }
    let json_typed = expected.json_typed()
        || observed
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && is_json_type(v));
    if (json_typed || looks_like_json(&expected.body) || looks_like_json(&actual))
        && let (Some(e), Ok(a)) = (expected.json(), serde_json::from_slice::<Value>(&actual))
    {
        return diff_json(e, &a, ignore, out, MAX_DIFFERENCES);
    }
    out.push(bytes_difference(&expected.body, &actual));
    1
}

/// One `body` difference with excerpts around the first differing byte.
fn bytes_difference(e: &[u8], a: &[u8]) -> Difference {
    let at = e.iter().zip(a).take_while(|(x, y)| x == y).count();
    let from = at.saturating_sub(40);
    let excerpt = |b: &[u8]| {
        let part = b.get(from..b.len().min(from + 160)).unwrap_or(&[]);
        let mut text = String::from_utf8_lossy(part).into_owned();
        if from > 0 {
            text.insert(0, '…');
        }
        if from + 160 < b.len() {
            text.push('…');
        }
        Value::String(text)
    };
    Difference {
        location: Location::Body,
        kind: Kind::Changed,
        expected: Some(excerpt(e)),
        actual: Some(excerpt(a)),
        detail: Some(format!(
            "{} bytes recorded, {} bytes now, first difference at byte {at}",
            e.len(),
            a.len()
        )),
    }
}

fn is_json_type(value: &[u8]) -> bool {
    let v = String::from_utf8_lossy(value).to_ascii_lowercase();
    let mime = v.split(';').next().unwrap_or("").trim();
    mime == "application/json" || mime.ends_with("+json") || mime == "text/json"
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

#[cfg(test)]
mod tests;
