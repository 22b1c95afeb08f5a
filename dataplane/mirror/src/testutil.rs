//! Helpers of the unit tests: RRPairs written as text, archived as the capture pipeline
//! archives them, and put in the batches the pipeline's tap hands over.

use rkyv::util::AlignedVec;
use tapline_dataplane::record::{Flow, Message, Protocol, RRPair};
use tapline_dataplane::worker::PairBatch;

/// A complete exchange from 10.0.0.1 to 10.0.0.2:`port`, 2 ms long, started at `n` ms.
pub fn pair(n: u64, port: u16, request: &str, body: &str, status: u16, response: &str) -> RRPair {
    let ms = 1_000_000;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        response.len()
    );
    RRPair {
        id: n,
        protocol: Protocol::Http1,
        start_ns: n * ms,
        end_ns: n * ms + 2 * ms,
        flow: Flow::new(
            format!("10.0.0.1:{}", 40_000 + n % 1000).parse().unwrap(),
            format!("10.0.0.2:{port}").parse().unwrap(),
        ),
        conn_start_ns: n * ms,
        index_in_conn: 0,
        request: Some(Message {
            start_ns: n * ms,
            end_ns: n * ms,
            head: request.as_bytes().to_vec(),
            body: body.as_bytes().to_vec(),
            trailers: vec![],
            body_wire_len: body.len() as u64,
        }),
        response: Some(Message {
            start_ns: n * ms + ms,
            end_ns: n * ms + 2 * ms,
            head: head.into_bytes(),
            body: response.as_bytes().to_vec(),
            trailers: vec![],
            body_wire_len: response.len() as u64,
        }),
        interim: vec![],
        flags: 0,
        process: None,
    }
}

/// The archived bytes of a pair.
pub fn archived(pair: &RRPair) -> AlignedVec {
    rkyv::to_bytes::<rkyv::rancor::Error>(pair).unwrap()
}

/// A batch holding `pairs`, as the pipeline's tap sends it.
pub fn batch(pairs: &[RRPair]) -> PairBatch {
    let mut batch = PairBatch::default();
    for p in pairs {
        batch.push(&archived(p));
    }
    batch
}
