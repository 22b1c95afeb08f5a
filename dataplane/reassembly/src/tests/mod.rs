//! Scenario tests driven by hand-built segments, and seeded randomized tests.

mod close;
mod connections;
mod fuzz_input;
mod fuzz_regressions;
mod ordering;
mod random;

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::{
    CloseReason, ConnId, ConnInfo, Direction, Reassembler, ReassemblyConfig, StreamSink, TcpFlags,
    TcpSegment,
};

/// One sink event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Open(ConnInfo),
    Data(ConnId, Direction, u64, Vec<u8>),
    Gap(ConnId, Direction, u64, u64),
    End(ConnId, Direction, u64),
    Close(ConnId, u64, CloseReason),
}

/// Records every event.
#[derive(Default, Debug)]
pub(crate) struct Recorder {
    pub events: Vec<Event>,
}

impl StreamSink for Recorder {
    fn open(&mut self, conn: &ConnInfo) {
        self.events.push(Event::Open(*conn));
    }
    fn data(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, bytes: &[u8]) {
        assert!(!bytes.is_empty(), "empty data event");
        self.events
            .push(Event::Data(conn, dir, ts_ns, bytes.to_vec()));
    }
    fn gap(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, len: u64) {
        assert!(len > 0, "empty gap event");
        self.events.push(Event::Gap(conn, dir, ts_ns, len));
    }
    fn end(&mut self, conn: ConnId, dir: Direction, ts_ns: u64) {
        self.events.push(Event::End(conn, dir, ts_ns));
    }
    fn close(&mut self, conn: ConnId, ts_ns: u64, reason: CloseReason) {
        self.events.push(Event::Close(conn, ts_ns, reason));
    }
}

impl Recorder {
    /// Connections opened, in order.
    pub fn opened(&self) -> Vec<ConnInfo> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Open(info) => Some(*info),
                _ => None,
            })
            .collect()
    }

    /// Close events, in order.
    pub fn closes(&self) -> Vec<(ConnId, CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Close(id, _, reason) => Some((*id, *reason)),
                _ => None,
            })
            .collect()
    }

    /// Whether `end` was emitted for a direction.
    pub fn ended(&self, conn: ConnId, dir: Direction) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::End(c, d, _) if *c == conn && *d == dir))
    }

    /// One direction as text: data bytes (lossy UTF-8) with gaps shown as `<len>`.
    pub fn text(&self, conn: ConnId, dir: Direction) -> String {
        let mut out = String::new();
        for e in &self.events {
            match e {
                Event::Data(c, d, _, bytes) if *c == conn && *d == dir => {
                    out.push_str(&String::from_utf8_lossy(bytes));
                }
                Event::Gap(c, d, _, len) if *c == conn && *d == dir => {
                    out.push_str(&format!("<{len}>"));
                }
                _ => {}
            }
        }
        out
    }

    /// One direction's data bytes, with gaps filled by `fill`.
    pub fn bytes(&self, conn: ConnId, dir: Direction, fill: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            match e {
                Event::Data(c, d, _, bytes) if *c == conn && *d == dir => {
                    out.extend_from_slice(bytes);
                }
                Event::Gap(c, d, _, len) if *c == conn && *d == dir => {
                    out.resize(out.len() + *len as usize, fill);
                }
                _ => {}
            }
        }
        out
    }

    /// Number of events of a kind for a connection, by a predicate.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    /// Events per connection, in order (to compare runs independently of interleaving).
    pub fn per_conn(&self) -> HashMap<ConnId, Vec<Event>> {
        let mut map: HashMap<ConnId, Vec<Event>> = HashMap::new();
        for e in &self.events {
            let id = match e {
                Event::Open(info) => info.id,
                Event::Data(c, ..)
                | Event::Gap(c, ..)
                | Event::End(c, ..)
                | Event::Close(c, ..) => *c,
            };
            map.entry(id).or_default().push(e.clone());
        }
        map
    }
}

pub(crate) const C: Direction = Direction::ToServer;
pub(crate) const S: Direction = Direction::ToClient;

pub(crate) const SYN: u8 = TcpFlags::SYN;
pub(crate) const ACK: u8 = TcpFlags::ACK;
pub(crate) const FIN: u8 = TcpFlags::FIN;
pub(crate) const RST: u8 = TcpFlags::RST;
pub(crate) const PSH: u8 = TcpFlags::PSH;

/// Client and server ISNs used by [`Conn`].
pub(crate) const CISN: u32 = 1000;
pub(crate) const SISN: u32 = 5000;

/// Builds segments of one connection between a client and a server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub ts: u64,
}

impl Conn {
    pub fn new(client_port: u16) -> Self {
        Self {
            client: SocketAddr::from(([10, 0, 0, 1], client_port)),
            server: SocketAddr::from(([10, 0, 0, 2], 80)),
            ts: 1_000,
        }
    }

    /// A segment in direction `dir` at the current time.
    pub fn seg<'a>(
        &self,
        dir: Direction,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    ) -> TcpSegment<'a> {
        let (src, dst) = match dir {
            Direction::ToServer => (self.client, self.server),
            Direction::ToClient => (self.server, self.client),
        };
        TcpSegment {
            ts_ns: self.ts,
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload,
        }
    }

    /// Client data at stream offset `off` (ISN [`CISN`]), no ACK.
    pub fn c<'a>(&self, off: u32, payload: &'a [u8]) -> TcpSegment<'a> {
        self.seg(C, CISN + 1 + off, 0, PSH, payload)
    }

    /// Server data at stream offset `off` (ISN [`SISN`]), no ACK.
    pub fn s<'a>(&self, off: u32, payload: &'a [u8]) -> TcpSegment<'a> {
        self.seg(S, SISN + 1 + off, 0, PSH, payload)
    }

    /// Runs the three-way handshake.
    pub fn handshake(&self, r: &mut Reassembler, sink: &mut Recorder) {
        r.segment(&self.seg(C, CISN, 0, SYN, b""), sink);
        r.segment(&self.seg(S, SISN, CISN + 1, SYN | ACK, b""), sink);
        r.segment(&self.seg(C, CISN + 1, SISN + 1, ACK, b""), sink);
    }
}

/// A reassembler with default config and a connection after its handshake.
pub(crate) fn open() -> (Reassembler, Recorder, Conn, ConnId) {
    open_with(ReassemblyConfig::default())
}

/// As [`open`], with `config`.
pub(crate) fn open_with(config: ReassemblyConfig) -> (Reassembler, Recorder, Conn, ConnId) {
    let mut r = Reassembler::new(config);
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    conn.handshake(&mut r, &mut sink);
    let id = sink.opened()[0].id;
    (r, sink, conn, id)
}

#[test]
fn flags_and_directions() {
    let f = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    assert!(f.syn() && f.ack() && !f.fin() && !f.rst());
    assert!(TcpFlags(TcpFlags::FIN | TcpFlags::RST).fin());
    assert_eq!(format!("{f:?}"), "SYN|ACK");
    assert_eq!(format!("{:?}", TcpFlags(0)), "-");
    assert_eq!(
        format!("{:?}", TcpFlags(0xff)),
        "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
    );
    assert_eq!(C.reverse(), S);
    assert_eq!(S.reverse(), C);
}

#[test]
fn default_config() {
    let c = ReassemblyConfig::default();
    assert_eq!(c.max_flows, 262_144);
    assert_eq!(c.max_buffered_per_direction, 4 << 20);
    assert_eq!(c.max_buffered_total, 256 << 20);
    assert_eq!(c.idle_timeout_ns, 120_000_000_000);
    assert_eq!(c.overlap, crate::OverlapPolicy::First);
    let r = Reassembler::new(ReassemblyConfig { max_flows: 0, ..c });
    assert_eq!(r.config().max_flows, 1);
}
