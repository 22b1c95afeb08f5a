//! The engine's [`StreamSink`]: per-connection HTTP/1 parsers for reassembled TCP streams and
//! for TLS plaintext streams alike, the serialization of their finished exchanges into RRPairs,
//! and the marking of TCP connections that carry TLS (their ciphertext is never parsed).

use std::net::SocketAddr;

use rkyv::util::AlignedVec;
use rustc_hash::FxHashMap;
use tapline_http1::{ConnState, Exchange, Http1Config, Http1Conn};
use tapline_reassembly::{CloseReason, ConnId, ConnInfo, Direction, StreamSink};

use super::{PairBatch, WorkerStats};
use crate::record::{Flow, Message, PairFlags, ProcessInfo, Protocol, RRPair};

/// A connection's endpoints in a direction-independent order, IPv4-mapped addresses as IPv4: the
/// key that relates a TLS plaintext stream to the TCP connection carrying its ciphertext.
pub(crate) type TupleKey = (SocketAddr, SocketAddr);

/// The [`TupleKey`] of two endpoints, whichever way round they are given.
pub(crate) fn tuple_key(a: SocketAddr, b: SocketAddr) -> TupleKey {
    let (a, b) = (canonical(a), canonical(b));
    if a <= b { (a, b) } else { (b, a) }
}

/// An address with an IPv4-mapped IPv6 address written as IPv4, as packets show it.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Longest TLS record body (2^14 bytes of plaintext plus the most a cipher may add).
const MAX_TLS_RECORD: u16 = (1 << 14) + 2048;

/// The first bytes of one direction, while they are checked for a TLS record header.
#[derive(Debug, Default, Clone, Copy)]
struct Probe {
    head: [u8; 5],
    len: u8,
    done: bool,
}

impl Probe {
    const DONE: Probe = Probe {
        head: [0; 5],
        len: 0,
        done: true,
    };

    /// Takes the next bytes of the direction; true once they are known to start with a TLS
    /// record header: content type 20–23, version 3.0–3.4, a length of 1 to 18,432 bytes.
    /// No HTTP/1 message starts so (a method or `HTTP/` begins with a letter).
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.done {
                break;
            }
            let ok = match self.len {
                0 => (0x14..=0x17).contains(&b),
                1 => b == 0x03,
                2 => b <= 0x04,
                _ => true,
            };
            if let Some(slot) = self.head.get_mut(usize::from(self.len)) {
                *slot = b;
            }
            self.len += 1;
            if !ok {
                self.done = true;
                return false;
            }
            if usize::from(self.len) == self.head.len() {
                self.done = true;
                let [_, _, _, hi, lo] = self.head;
                let len = u16::from_be_bytes([hi, lo]);
                return (1..=MAX_TLS_RECORD).contains(&len);
            }
        }
        false
    }
}

#[derive(Debug)]
struct Conn {
    info: ConnInfo,
    http: Http1Conn,
    next_index: u32,
    /// A TCP connection that carries TLS: its bytes are ciphertext and are not parsed.
    ciphertext: bool,
    /// Indexed by direction (to the server, to the client).
    probe: [Probe; 2],
    /// The process of a TLS plaintext stream; `None` for a TCP connection (boxed: TCP
    /// connections are the many).
    process: Option<Box<ProcessInfo>>,
}

/// Routes stream events to per-connection HTTP/1 parsers and serializes the finished exchanges.
#[derive(Debug)]
pub(crate) struct PairSink {
    http_config: Http1Config,
    conns: FxHashMap<ConnId, Conn>,
    exchanges: Vec<Exchange>,
    pub(crate) batch: PairBatch,
    /// Reused serialization buffer.
    scratch: AlignedVec<16>,
    pub(crate) stats: WorkerStats,
    /// Open TCP connections by their endpoints.
    tcp_tuples: FxHashMap<TupleKey, ConnId>,
    /// Endpoints of connections whose plaintext was captured, with the last chunk's time.
    tls_tuples: FxHashMap<TupleKey, u64>,
    max_tls_tuples: usize,
}

impl PairSink {
    pub(crate) fn new(http_config: Http1Config, max_tls_tuples: usize) -> Self {
        PairSink {
            http_config,
            conns: FxHashMap::default(),
            exchanges: Vec::new(),
            batch: PairBatch::default(),
            scratch: AlignedVec::new(),
            stats: WorkerStats::default(),
            tcp_tuples: FxHashMap::default(),
            tls_tuples: FxHashMap::default(),
            max_tls_tuples: max_tls_tuples.max(1),
        }
    }

    /// Whether the plaintext of the connection between `a` and `b` was captured (cheap when no
    /// plaintext was).
    pub(crate) fn is_tls_tuple(&self, a: SocketAddr, b: SocketAddr) -> bool {
        !self.tls_tuples.is_empty() && self.tls_tuples.contains_key(&tuple_key(a, b))
    }

    /// Plaintext was captured for `tuple` at `ts_ns`: the TCP connection with these endpoints,
    /// open now or later, carries ciphertext.
    pub(crate) fn mark_tls_tuple(&mut self, tuple: TupleKey, ts_ns: u64) {
        if let Some(last) = self.tls_tuples.get_mut(&tuple) {
            *last = (*last).max(ts_ns);
            return;
        }
        if self.tls_tuples.len() >= self.max_tls_tuples {
            self.forget_oldest_tuples();
        }
        self.tls_tuples.insert(tuple, ts_ns);
        if let Some(id) = self.tcp_tuples.get(&tuple)
            && let Some(conn) = self.conns.get_mut(id)
        {
            conn.ciphertext = true;
        }
    }

    /// Forgets endpoints whose plaintext was last seen before `deadline_ns`.
    pub(crate) fn expire_tls_tuples(&mut self, deadline_ns: u64) {
        self.tls_tuples.retain(|_, last| *last >= deadline_ns);
    }

    /// Makes room in a full tuple table: the oldest sixteenth goes.
    fn forget_oldest_tuples(&mut self) {
        let mut times: Vec<u64> = self.tls_tuples.values().copied().collect();
        let n = times.len() / 16;
        let (_, cutoff, _) = times.select_nth_unstable(n);
        let cutoff = *cutoff;
        self.tls_tuples.retain(|_, last| *last > cutoff);
    }

    /// A TLS plaintext stream opens.
    pub(crate) fn open_plaintext(&mut self, info: &ConnInfo, process: ProcessInfo) {
        self.stats.tls_streams += 1;
        self.conns.insert(
            info.id,
            Conn {
                info: *info,
                http: Http1Conn::new(self.http_config.clone()),
                next_index: 0,
                ciphertext: false,
                probe: [Probe::DONE; 2],
                process: Some(Box::new(process)),
            },
        );
    }

    /// A TLS plaintext stream learnt its endpoints after it began.
    pub(crate) fn set_endpoints(&mut self, id: ConnId, client: SocketAddr, server: SocketAddr) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.info.client = client;
            c.info.server = server;
        }
    }

    /// A TLS plaintext stream ends: `ended` when its process closed it (so a body delimited by
    /// the close is complete), otherwise it went idle or the input ended.
    pub(crate) fn close_plaintext(&mut self, id: ConnId, ts_ns: u64, ended: bool) {
        if let Some(c) = self.conns.get_mut(&id) {
            if ended {
                let responses = c.http.request_direction().reverse();
                c.http.end(responses, ts_ns, &mut self.exchanges);
                c.http.end(responses.reverse(), ts_ns, &mut self.exchanges);
            }
            c.http.close(ts_ns, &mut self.exchanges);
            self.emit(id);
        }
        if let Some(c) = self.conns.remove(&id)
            && c.http.state() == ConnState::NotHttp
        {
            self.stats.tls_non_http_streams += 1;
        }
    }

    fn emit(&mut self, id: ConnId) {
        if self.exchanges.is_empty() {
            return;
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            self.exchanges.clear();
            return;
        };
        for exchange in self.exchanges.drain(..) {
            let mut pair = to_pair(
                &conn.info,
                conn.http.request_direction() == Direction::ToClient,
                conn.next_index,
                exchange,
            );
            if let Some(process) = &conn.process {
                pair.flags |= PairFlags::TLS;
                pair.process = Some(ProcessInfo::clone(process));
            }
            conn.next_index = conn.next_index.saturating_add(1);
            self.stats.pairs += 1;
            if pair.flags & PairFlags::INCOMPLETE != 0 {
                self.stats.incomplete_pairs += 1;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            match rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&pair, scratch) {
                Ok(bytes) => {
                    self.batch.push(&bytes);
                    self.scratch = bytes;
                }
                Err(e) => tracing::error!(error = %e, "cannot serialize an RRPair"),
            }
        }
    }
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl StreamSink for PairSink {
    fn open(&mut self, conn: &ConnInfo) {
        self.stats.connections += 1;
        let tuple = tuple_key(conn.client, conn.server);
        self.tcp_tuples.insert(tuple, conn.id);
        // A connection picked up mid-stream is probed as well: its first captured bytes
        // start a TLS record more often than not, and 5 bytes of a record header are very
        // unlikely to begin a packet of plain HTTP.
        let probe = Probe::default();
        self.conns.insert(
            conn.id,
            Conn {
                info: *conn,
                http: Http1Conn::new(self.http_config.clone()),
                next_index: 0,
                ciphertext: self.tls_tuples.contains_key(&tuple),
                probe: [probe; 2],
                process: None,
            },
        );
    }

    fn data(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.ciphertext {
            return;
        }
        if let Some(probe) = c.probe.get_mut(dir_index(dir))
            && !probe.done
            && probe.feed(bytes)
        {
            // A TLS handshake (or record): nothing of it is HTTP, and whatever the parser
            // holds of its first bytes is dropped with it.
            c.ciphertext = true;
            return;
        }
        c.http.data(dir, ts_ns, bytes, &mut self.exchanges);
        self.emit(conn);
    }

    fn gap(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, len: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.ciphertext {
            return;
        }
        if let Some(probe) = c.probe.get_mut(dir_index(dir)) {
            probe.done = true;
        }
        c.http.gap(dir, ts_ns, len, &mut self.exchanges);
        self.emit(conn);
    }

    fn end(&mut self, conn: ConnId, dir: Direction, ts_ns: u64) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.ciphertext
        {
            c.http.end(dir, ts_ns, &mut self.exchanges);
            self.emit(conn);
        }
    }

    fn close(&mut self, conn: ConnId, ts_ns: u64, _reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.ciphertext
        {
            c.http.close(ts_ns, &mut self.exchanges);
            self.emit(conn);
        }
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let tuple = tuple_key(c.info.client, c.info.server);
        if self.tcp_tuples.get(&tuple) == Some(&conn) {
            self.tcp_tuples.remove(&tuple);
        }
        if c.ciphertext {
            self.stats.tls_connections += 1;
        } else if c.http.state() == ConnState::NotHttp {
            self.stats.non_http_connections += 1;
        }
    }
}

/// Builds the stored record of one exchange.
fn to_pair(info: &ConnInfo, swapped: bool, index: u32, exchange: Exchange) -> RRPair {
    let (client, server) = if swapped {
        (info.server, info.client)
    } else {
        (info.client, info.server)
    };
    let request = exchange.request.map(message);
    let response = exchange.response.map(message);
    let start_ns = match (&request, &response) {
        (Some(r), _) | (None, Some(r)) => r.start_ns,
        (None, None) => info.first_ts_ns,
    };
    let end_ns = [&request, &response]
        .into_iter()
        .flatten()
        .map(|m| m.end_ns)
        .max()
        .unwrap_or(start_ns)
        // A capture whose clock stepped back must not show an exchange ending before it began.
        .max(start_ns);
    RRPair {
        id: pair_id(client, server, info.first_ts_ns, index),
        protocol: Protocol::Http1,
        start_ns,
        end_ns,
        flow: Flow::new(client, server),
        conn_start_ns: info.first_ts_ns,
        index_in_conn: index,
        request,
        response,
        interim: exchange.interim.into_iter().map(message).collect(),
        flags: pair_flags(exchange.flags),
        process: None,
    }
}

/// Maps the parser's flags onto the stored record's.
fn pair_flags(flags: tapline_http1::Flags) -> u32 {
    use tapline_http1::Flags as F;
    [
        (F::INCOMPLETE, PairFlags::INCOMPLETE),
        (F::GAP, PairFlags::GAP),
        (F::BODY_TRUNCATED, PairFlags::BODY_TRUNCATED),
        (F::NO_RESPONSE, PairFlags::NO_RESPONSE),
        (F::NO_REQUEST, PairFlags::NO_REQUEST),
        (F::PARSE_ERROR, PairFlags::PARSE_ERROR),
        (F::UPGRADE, PairFlags::UPGRADE),
        (F::CLOSE_DELIMITED, PairFlags::CLOSE_DELIMITED),
    ]
    .into_iter()
    .filter(|(from, _)| flags.contains(*from))
    .fold(0, |acc, (_, to)| acc | to)
}

fn message(m: tapline_http1::Message) -> Message {
    Message {
        start_ns: m.start_ns,
        end_ns: m.end_ns,
        head: m.head,
        body: m.body,
        trailers: m.trailers,
        body_wire_len: m.body_wire_len,
    }
}

/// A stable 64-bit id of a connection's pair: independent of worker count and order. Words of
/// the endpoints, the connection's start and the index are folded with odd multipliers and
/// finished with splitmix64's mixer, so ids of neighbouring pairs do not look alike.
pub fn pair_id(client: SocketAddr, server: SocketAddr, conn_start_ns: u64, index: u32) -> u64 {
    fn ip_word(addr: SocketAddr) -> u128 {
        match addr.ip() {
            std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => u128::from(v6),
        }
    }
    let words = [
        ip_word(client) as u64,
        (ip_word(client) >> 64) as u64,
        u64::from(client.port()) << 16 | u64::from(server.port()),
        ip_word(server) as u64,
        (ip_word(server) >> 64) as u64,
        conn_start_ns,
        u64::from(index),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = h.rotate_left(29);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_ids_are_stable_and_distinct() {
        let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let s: SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert_eq!(pair_id(c, s, 7, 0), pair_id(c, s, 7, 0));
        let mut ids: Vec<u64> = (1..1000).map(|i| pair_id(c, s, 7, i)).collect();
        ids.extend((0..1000).map(|t| pair_id(c, s, t, 0)));
        ids.push(pair_id(s, c, 7, 0));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }

    #[test]
    fn probe_spots_tls_record_headers_only() {
        let mut p = Probe::default();
        assert!(!p.feed(&[0x16]));
        assert!(!p.feed(&[0x03]));
        assert!(!p.feed(&[0x01, 0x02]));
        assert!(p.feed(&[0x00, 0x01]));
        assert!(p.done);
        for start in [
            &b"GET / HTTP/1.1"[..],
            b"HTTP/1.1 200 OK",
            b"\x16\x04\x01\x00\x10",
            b"\x17\x03\x09\x00\x10",
            b"\x13\x03\x01\x00\x10",
            b"\x17\x03\x03\x00\x00",
            b"\x17\x03\x03\x48\x01",
        ] {
            let mut p = Probe::default();
            assert!(!p.feed(start), "{start:?}");
            assert!(p.done);
        }
        let mut p = Probe::default();
        assert!(p.feed(b"\x17\x03\x03\x00\x20more"));
        assert!(
            !p.feed(b"\x16\x03\x01\x00\x20"),
            "only the first bytes count"
        );
    }

    #[test]
    fn tuple_keys_ignore_order_and_mapping() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:443".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:40000".parse().unwrap();
        assert_eq!(tuple_key(a, b), tuple_key(b, a));
        assert_eq!(tuple_key(mapped, b), tuple_key(a, b));
    }
}
