//! The replay plan: the snapshot's HTTP requests, chosen by `--filter`, turned into the bytes
//! to send, grouped into the recorded connections, with their recorded responses prepared for
//! comparison and each endpoint's ignore rules (defaults, the user's, and the noise found in
//! the recording).
//!
//! Pairs that cannot be replayed faithfully are skipped and counted by reason: no request seen,
//! an incomplete exchange, a protocol upgrade, no recorded response.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use sha2::{Digest, Sha256};
use tapline_dataplane::filter::Filter;
use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_dataplane::view::PairView;

use crate::compare::Expected;
use crate::endpoint::endpoint_key;
use crate::error::ReplayError;
use crate::frame::request_bytes;
use crate::noise::{self, Sample};
use crate::rules::{IgnoreRule, IgnoreSet};

/// One request to replay.
#[derive(Debug)]
pub struct Request {
    /// The pair's id.
    pub id: u64,
    /// Method.
    pub method: String,
    /// Request target as recorded (lossy text).
    pub target: String,
    /// Index into [`Plan::endpoints`].
    pub endpoint: u32,
    /// Recorded start, ns after the first replayed request.
    pub offset_ns: u64,
    /// Bytes to send.
    pub bytes: Vec<u8>,
    /// Whether the method is HEAD (the response has no body).
    pub head_request: bool,
    /// Whether it was sent before the previous response of its connection ended.
    pub pipelined: bool,
    /// The recorded response.
    pub expected: Expected,
    /// Recorded latency (first request byte to last response byte), ns.
    pub recorded_ns: u64,
}

/// A recorded connection: requests sent one after another on one TCP connection.
#[derive(Debug)]
pub struct Connection {
    /// Indices into [`Plan::requests`], in order.
    pub requests: Vec<usize>,
}

/// An endpoint and the ignore rules that apply to it.
#[derive(Debug)]
pub struct Endpoint {
    /// Its key, `GET /api/users/{id}`.
    pub key: String,
    /// What its comparisons leave out.
    pub ignore: IgnoreSet,
    /// The noise found in the recording for it.
    pub noise: Vec<IgnoreRule>,
}

/// Everything to replay.
#[derive(Debug)]
pub struct Plan {
    /// Requests, by recorded start.
    pub requests: Vec<Request>,
    /// Connections, by their first request.
    pub connections: Vec<Connection>,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Pairs left out, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// HTTP requests the filter chose (replayed or skipped).
    pub chosen: u64,
    /// Of those, how many were recorded without a response.
    pub recorded_without_response: u64,
}

/// How to build a plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// The snapshot directory, for messages.
    pub snapshot: &'a Path,
    /// The `Host` value to put in requests (`None`: keep the recorded one).
    pub host: Option<&'a str>,
    /// Which pairs to replay.
    pub filter: Option<&'a Filter>,
    /// The user's ignore rules.
    pub ignore: &'a [IgnoreRule],
}

/// A pair that can be replayed, before grouping.
struct Candidate<'p> {
    pair: &'p ArchivedRRPair,
    request: Request,
    server: String,
}

/// Builds the plan from the snapshot's pairs (in `pairs_sorted` order).
///
/// # Errors
/// [`ReplayError::NothingToReplay`] when nothing can be replayed (saying why), and
/// [`ReplayError::SeveralServers`] when the requests go to several servers and no filter chose.
pub fn build(pairs: &[&ArchivedRRPair], opts: &PlanOptions<'_>) -> Result<Plan, ReplayError> {
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut chosen = 0u64;
    let mut without_response = 0u64;
    let mut http = 0u64;
    let mut candidates = Vec::new();
    for &pair in pairs {
        let view = PairView::new(pair);
        if view.request.is_some() {
            http += 1;
        }
        if opts.filter.is_some_and(|f| !f.matches(&view)) {
            continue;
        }
        let reason = match candidate(&view, opts.host) {
            Ok(c) => {
                chosen += 1;
                candidates.push(c);
                continue;
            }
            Err(reason) => reason,
        };
        if reason != "no request (the capture began mid-connection)" {
            chosen += 1;
        }
        if reason == "no recorded response" {
            without_response += 1;
        }
        *skipped.entry(reason).or_default() += 1;
    }
    let nothing = |reason: String| ReplayError::NothingToReplay {
        snapshot: opts.snapshot.to_path_buf(),
        reason,
    };
    if http == 0 {
        return Err(nothing(format!(
            "holds no HTTP/1 requests ({} request/response pairs); nothing to replay",
            pairs.len()
        )));
    }
    if chosen == 0 {
        return Err(nothing(format!(
            "none of its {http} HTTP requests matches --filter"
        )));
    }
    if candidates.is_empty() {
        let reasons: Vec<String> = skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
        return Err(nothing(format!(
            "none of the {chosen} chosen requests can be replayed: {}",
            reasons.join(", ")
        )));
    }
    check_servers(&candidates, opts)?;
    let servers: Vec<&str> = candidates.iter().map(|c| c.server.as_str()).collect();
    let noise = detect_noise(pairs, &servers);
    Ok(assemble(
        candidates,
        &noise,
        opts.ignore,
        skipped,
        chosen,
        without_response,
    ))
}

/// Turns one pair into a request, or names why it cannot be replayed.
fn candidate<'p>(view: &PairView<'p>, host: Option<&str>) -> Result<Candidate<'p>, &'static str> {
    let pair = view.pair;
    let flags = PairFlags(pair.flags.to_native());
    let (Some(req_msg), Some(head)) = (pair.request.as_ref(), view.request.as_ref()) else {
        return Err("no request (the capture began mid-connection)");
    };
    let bad =
        PairFlags::INCOMPLETE | PairFlags::GAP | PairFlags::BODY_TRUNCATED | PairFlags::PARSE_ERROR;
    if flags.0 & bad != 0 {
        return Err("incomplete in the capture");
    }
    if flags.0 & PairFlags::UPGRADE != 0 {
        return Err("protocol upgrade");
    }
    let Some(resp_msg) = pair.response.as_ref() else {
        return Err("no recorded response");
    };
    let expected = Expected::new(resp_msg.head.as_slice(), resp_msg.body.as_slice())
        .ok_or("recorded response does not parse")?;
    let bytes = request_bytes(
        req_msg.head.as_slice(),
        req_msg.body.as_slice(),
        req_msg.trailers.as_slice(),
        host,
    )
    .map_err(|_| "request body incomplete in the capture")?;
    let start = req_msg.start_ns.to_native();
    Ok(Candidate {
        pair,
        server: pair.flow.dst().to_string(),
        request: Request {
            id: pair.id.to_native(),
            method: head.method.to_owned(),
            target: String::from_utf8_lossy(head.target).into_owned(),
            endpoint: 0,
            offset_ns: start,
            bytes,
            head_request: head.method.eq_ignore_ascii_case("HEAD"),
            pipelined: false,
            expected,
            recorded_ns: resp_msg.end_ns.to_native().saturating_sub(start),
        },
    })
}

fn check_servers(candidates: &[Candidate<'_>], opts: &PlanOptions<'_>) -> Result<(), ReplayError> {
    if opts.filter.is_some() {
        return Ok(());
    }
    let mut servers: BTreeMap<&str, u64> = BTreeMap::new();
    for c in candidates {
        *servers.entry(&c.server).or_default() += 1;
    }
    if servers.len() < 2 {
        return Ok(());
    }
    let mut busiest: Vec<(&str, u64)> = servers.into_iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = busiest
        .iter()
        .take(5)
        .map(|(s, n)| format!("{s} ×{n}"))
        .collect();
    Err(ReplayError::SeveralServers {
        snapshot: opts.snapshot.to_path_buf(),
        count: busiest.len(),
        servers: shown.join(", "),
        first: busiest
            .first()
            .map_or_else(String::new, |(s, _)| (*s).to_owned()),
    })
}

/// What makes two requests identical for noise detection.
fn identity(server: &str, head: &tapline_http1::RequestHead<'_>, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [server.as_bytes(), head.method.as_bytes(), head.target, body] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The noise of each endpoint, from every complete pair of the snapshot to the replayed servers.
fn detect_noise(pairs: &[&ArchivedRRPair], servers: &[&str]) -> BTreeMap<String, noise::Finding> {
    let servers: std::collections::BTreeSet<&str> = servers.iter().copied().collect();
    let mut keyed = Vec::new();
    let mut counts: HashMap<[u8; 32], u32> = HashMap::new();
    for &pair in pairs {
        let view = PairView::new(pair);
        let (Some(head), Some(req), Some(_)) =
            (&view.request, pair.request.as_ref(), pair.response.as_ref())
        else {
            continue;
        };
        let server = pair.flow.dst().to_string();
        if !servers.contains(server.as_str()) || pair.flags.to_native() != 0 {
            continue;
        }
        let id = identity(&server, head, req.body.as_slice());
        *counts.entry(id).or_default() += 1;
        keyed.push((id, endpoint_key(head.method, head.target), pair));
    }
    let prepared: Vec<([u8; 32], String, Expected)> = keyed
        .into_iter()
        .filter(|(id, _, _)| counts.get(id).is_some_and(|&n| n > 1))
        .filter_map(|(id, key, pair)| {
            let resp = pair.response.as_ref()?;
            Some((
                id,
                key,
                Expected::new(resp.head.as_slice(), resp.body.as_slice())?,
            ))
        })
        .collect();
    noise::detect(
        prepared
            .iter()
            .map(|(identity, endpoint, response)| Sample {
                identity: *identity,
                endpoint,
                response,
            }),
    )
}

fn assemble(
    candidates: Vec<Candidate<'_>>,
    noise: &BTreeMap<String, noise::Finding>,
    user: &[IgnoreRule],
    skipped: BTreeMap<&'static str, u64>,
    chosen: u64,
    recorded_without_response: u64,
) -> Plan {
    let first = candidates
        .iter()
        .map(|c| c.request.offset_ns)
        .min()
        .unwrap_or(0);
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut endpoint_index: HashMap<String, u32> = HashMap::new();
    // Per recorded connection (client, server, start): (index in it, request, its start, the
    // end of its response).
    type Entry = (u32, usize, u64, u64);
    let mut by_conn: BTreeMap<(String, String, u64), Vec<Entry>> = BTreeMap::new();
    let mut requests = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.into_iter().enumerate() {
        let mut request = c.request;
        let key = endpoint_key(&request.method, request.target.as_bytes());
        let index = *endpoint_index.entry(key.clone()).or_insert_with(|| {
            let found: Vec<IgnoreRule> = noise
                .get(&key)
                .map(|f| f.rules.iter().cloned().collect())
                .unwrap_or_default();
            let mut ignore = IgnoreSet::defaults();
            for rule in user.iter().chain(&found) {
                ignore.add(rule);
            }
            endpoints.push(Endpoint {
                key,
                ignore,
                noise: found,
            });
            u32::try_from(endpoints.len() - 1).unwrap_or(u32::MAX)
        });
        request.endpoint = index;
        request.offset_ns -= first;
        let pair = c.pair;
        let conn = (
            pair.flow.src().to_string(),
            c.server,
            pair.conn_start_ns.to_native(),
        );
        let response_end = pair.response.as_ref().map_or(0, |m| m.end_ns.to_native());
        let request_start = request.offset_ns + first;
        by_conn.entry(conn).or_default().push((
            pair.index_in_conn.to_native(),
            i,
            request_start,
            response_end,
        ));
        requests.push(request);
    }
    let mut connections: Vec<Connection> = by_conn
        .into_values()
        .map(|mut list| {
            list.sort_unstable();
            let mut previous_end = None;
            for &(_, i, start, end) in &list {
                if let (Some(prev), Some(r)) = (previous_end, requests.get_mut(i)) {
                    r.pipelined = start < prev;
                }
                previous_end = Some(end);
            }
            Connection {
                requests: list.into_iter().map(|(_, i, _, _)| i).collect(),
            }
        })
        .collect();
    connections.sort_by_key(|c| {
        c.requests
            .first()
            .and_then(|&i| requests.get(i))
            .map(|r| r.offset_ns)
    });
    Plan {
        requests,
        connections,
        endpoints,
        skipped,
        chosen,
        recorded_without_response,
    }
}

#[cfg(test)]
mod tests;
