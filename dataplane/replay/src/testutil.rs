//! Helpers of the unit tests: recorded pairs written as text, archived like a snapshot's, and
//! plans built from them.

use std::path::Path;

use rkyv::util::AlignedVec;
use tapline_dataplane::filter::Filter;
use tapline_dataplane::record::{ArchivedRRPair, Flow, Message, Protocol, RRPair};

use crate::error::ReplayError;
use crate::plan::{Plan, PlanOptions, build};
use crate::rules::IgnoreRule;

pub struct Rec {
    pub server: &'static str,
    pub port: u16,
    pub index: u32,
    pub request: &'static str,
    pub response: Option<String>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub flags: u32,
}

pub fn rec(
    port: u16,
    index: u32,
    request: &'static str,
    response: &str,
    start_ms: u64,
    end_ms: u64,
) -> Rec {
    Rec {
        server: "10.0.0.2:80",
        port,
        index,
        request,
        response: Some(response.to_owned()),
        start_ms,
        end_ms,
        flags: 0,
    }
}

pub fn json_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn archive(recs: &[Rec]) -> Vec<AlignedVec> {
    recs.iter()
        .enumerate()
        .map(|(i, r)| {
            let ms = 1_000_000;
            let split = |text: &str| {
                let at = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
                (
                    text.as_bytes()[..at].to_vec(),
                    text.as_bytes()[at..].to_vec(),
                )
            };
            let (req_head, req_body) = split(r.request);
            let pair = RRPair {
                id: i as u64 + 1,
                protocol: Protocol::Http1,
                start_ns: r.start_ms * ms,
                end_ns: r.end_ms * ms,
                flow: Flow::new(
                    format!("10.0.0.1:{}", r.port).parse().unwrap(),
                    r.server.parse().unwrap(),
                ),
                conn_start_ns: u64::from(r.port),
                index_in_conn: r.index,
                request: Some(Message {
                    start_ns: r.start_ms * ms,
                    end_ns: r.start_ms * ms,
                    head: req_head,
                    body: req_body,
                    ..Message::default()
                }),
                response: r.response.as_ref().map(|text| {
                    let (head, body) = split(text);
                    Message {
                        start_ns: r.end_ms * ms,
                        end_ns: r.end_ms * ms,
                        head,
                        body,
                        ..Message::default()
                    }
                }),
                interim: vec![],
                flags: r.flags,
                process: None,
            };
            rkyv::to_bytes::<rkyv::rancor::Error>(&pair).unwrap()
        })
        .collect()
}

pub fn plan_of(recs: &[Rec], filter: Option<&str>, rules: &[&str]) -> Result<Plan, ReplayError> {
    plan_with_host(recs, filter, rules, Some("127.0.0.1:9"))
}

/// A plan of `recs` whose requests carry `host`.
pub fn plan_with_host(
    recs: &[Rec],
    filter: Option<&str>,
    rules: &[&str],
    host: Option<&str>,
) -> Result<Plan, ReplayError> {
    let bytes = archive(recs);
    let pairs: Vec<&ArchivedRRPair> = bytes
        .iter()
        .map(|b| rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(b).unwrap())
        .collect();
    let filter = filter.map(|f| Filter::parse(f).unwrap());
    let rules: Vec<IgnoreRule> = rules
        .iter()
        .map(|r| IgnoreRule::parse(r).unwrap())
        .collect();
    build(
        &pairs,
        &PlanOptions {
            snapshot: Path::new("snap"),
            host,
            filter: filter.as_ref(),
            ignore: &rules,
        },
    )
}
