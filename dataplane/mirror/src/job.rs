//! Turning a captured pair into work: an exchange with production's service (its port is the
//! mirrored port) becomes a [`Job`] for the shadow, with the request bytes to send and
//! production's answer prepared for the comparison; any other exchange is one of the
//! service's outbound calls (a dependency), which the shadow's mocks can learn.
//!
//! The rules are those of `tapline replay` (a pair is mirrored when it would be replayed):
//! the request as recorded, `Host` rewritten unless kept, incomplete or upgraded exchanges and
//! those without a response left out, each with its reason.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_dataplane::view::PairView;
use tapline_replay::compare::Expected;
use tapline_replay::endpoint::endpoint_key;
use tapline_replay::frame::request_bytes;
use tapline_replay::plan::Request;

/// Which way a captured exchange went, seen from the mirrored service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A client called the service (the server port is the mirrored port): mirrored.
    Inbound,
    /// Anything else: the service calling a dependency (or traffic it does not take part in).
    Outbound,
}

/// The direction of a pair for the service listening on `port`.
pub fn direction(pair: &ArchivedRRPair, port: u16) -> Direction {
    if pair.flow.dst_port.to_native() == port {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// One production exchange to send to the shadow.
#[derive(Debug)]
pub struct Job {
    /// The request (bytes to send, production's response prepared for comparison, production's
    /// latency); its `endpoint` indexes the mirror's endpoint table.
    pub request: Request,
    /// What makes two requests the same (method, target, body): mismatches and errors of the
    /// same request are reported once, with a count.
    pub identity: u64,
    /// What the comparison leaves out for the request's endpoint.
    pub ignore: std::sync::Arc<tapline_replay::rules::IgnoreSet>,
    /// When the job was queued.
    pub queued: Instant,
}

/// Turns an inbound pair into a request for the shadow (endpoint 0, offset its recorded start),
/// or names why it cannot be mirrored faithfully (the reasons of `tapline replay`).
///
/// `host` replaces the recorded `Host` value when given.
///
/// # Errors
/// A static reason, counted by the caller as a skipped pair.
pub fn request_of(pair: &ArchivedRRPair, host: Option<&str>) -> Result<Request, &'static str> {
    let view = PairView::new(pair);
    let flags = pair.flags.to_native();
    let (Some(req_msg), Some(head)) = (pair.request.as_ref(), view.request.as_ref()) else {
        return Err("no request (the capture began mid-connection)");
    };
    let bad =
        PairFlags::INCOMPLETE | PairFlags::GAP | PairFlags::BODY_TRUNCATED | PairFlags::PARSE_ERROR;
    if flags & bad != 0 {
        return Err("incomplete in the capture");
    }
    if flags & PairFlags::UPGRADE != 0 {
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
    Ok(Request {
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
    })
}

/// The endpoint key of a request (`GET /api/users/{id}`).
pub fn endpoint_of(request: &Request) -> String {
    endpoint_key(&request.method, request.target.as_bytes())
}

/// What makes two requests the same for reporting: method, target and body.
pub fn identity_of(pair: &ArchivedRRPair, request: &Request) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    request.method.hash(&mut h);
    request.target.hash(&mut h);
    if let Some(m) = pair.request.as_ref() {
        m.body.as_slice().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{archived, pair};

    #[test]
    fn inbound_pairs_become_requests_with_the_shadow_host() {
        let p = pair(
            1,
            8080,
            "GET /users/7 HTTP/1.1\r\nHost: prod\r\n\r\n",
            "",
            200,
            "{}",
        );
        let bytes = archived(&p);
        let a = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(direction(a, 8080), Direction::Inbound);
        assert_eq!(direction(a, 9090), Direction::Outbound);
        let r = request_of(a, Some("127.0.0.1:8080")).unwrap();
        assert_eq!(
            r.bytes,
            b"GET /users/7 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".to_vec()
        );
        assert_eq!(r.expected.status, 200);
        assert_eq!(r.recorded_ns, 2_000_000);
        assert_eq!(endpoint_of(&r), "GET /users/{id}");
        let kept = request_of(a, None).unwrap();
        assert_eq!(
            kept.bytes,
            b"GET /users/7 HTTP/1.1\r\nHost: prod\r\n\r\n".to_vec()
        );
        assert_eq!(identity_of(a, &r), identity_of(a, &kept));
    }

    #[test]
    fn unusable_pairs_say_why() {
        let mut p = pair(1, 8080, "GET / HTTP/1.1\r\n\r\n", "", 200, "");
        p.response = None;
        let bytes = archived(&p);
        let a = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(request_of(a, None).unwrap_err(), "no recorded response");
        let mut p = pair(1, 8080, "GET / HTTP/1.1\r\n\r\n", "", 200, "");
        p.flags = PairFlags::GAP;
        let bytes = archived(&p);
        let a = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(
            request_of(a, None).unwrap_err(),
            "incomplete in the capture"
        );
        let mut p = pair(1, 8080, "GET / HTTP/1.1\r\n\r\n", "", 200, "");
        p.request = None;
        let bytes = archived(&p);
        let a = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
        assert!(request_of(a, None).unwrap_err().starts_with("no request"));
    }
}
