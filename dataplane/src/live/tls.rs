//! TLS plaintext as a live source: the uprobes of [`tapline_tls`] drained into the same
//! [`Pipeline`](crate::import::Pipeline) as packets, each event stored as a [`TlsChunk`] frame
//! (link type [`LINKTYPE_TAPLINE_TLS`]) so the workers parse it with the packets' parsers.
//!
//! A stream's first chunks can come before its socket's addresses are known: a read served
//! from bytes the library took in during the handshake makes no system call, and the programs
//! learn the 4-tuple from system calls. Such chunks are held back (see [`held`]) until the
//! stream's addresses arrive, so every chunk of a stream is stored with them and lands on the
//! same worker.

mod held;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use rustc_hash::FxHashMap;
use tapline_tls::{
    TlsCapture, TlsCounters, TlsDirection, TlsError, TlsEvent, TlsEventKind, TlsOptions,
};

use self::held::{Held, OwnedChunk};
use crate::capture::RawPacket;
use crate::import::ImportError;
use crate::record::PacketDirection;
use crate::tls_chunk::{ChunkDirection, ChunkKind, LINKTYPE_TAPLINE_TLS, TlsChunk};

/// Distinct processes whose cgroup path is remembered before the cache is emptied.
const MAX_CACHED_PROCESSES: usize = 1 << 14;

/// The uprobes being drained, with what turns their events into stored chunks.
#[derive(Debug)]
pub(super) struct TlsSource {
    capture: TlsCapture,
    /// Reused encoding buffer of one chunk.
    scratch: Vec<u8>,
    /// Cgroup path of each process seen, read once from `/proc/PID/cgroup`.
    cgroups: FxHashMap<u32, String>,
    /// Chunks waiting for their stream's addresses, and the addresses streams have shown.
    held: Held,
}

impl TlsSource {
    /// Loads the programs and attaches to the processes and binaries `options` select.
    pub(super) fn open(options: &TlsOptions) -> Result<Self, TlsError> {
        Ok(TlsSource {
            capture: TlsCapture::open(options)?,
            scratch: Vec::with_capacity(1 << 15),
            cgroups: FxHashMap::default(),
            held: Held::default(),
        })
    }

    /// What a person should know since the last call (libraries probed, stacks not supported).
    pub(super) fn notes(&mut self) -> Vec<String> {
        self.capture.notes()
    }

    /// The programs' counters.
    pub(super) fn counters(&self) -> Option<TlsCounters> {
        self.capture.counters().ok()
    }

    /// Hands every waiting event to `sink` as a chunk (or holds it back until its stream's
    /// addresses are known); returns how many events were drained.
    pub(super) fn drain(
        &mut self,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), ImportError>,
    ) -> Result<Result<usize, ImportError>, TlsError> {
        let TlsSource {
            capture,
            scratch,
            cgroups,
            held,
        } = self;
        let mut failed: Option<ImportError> = None;
        let mut emit = |chunk: &TlsChunk<'_>| {
            if failed.is_some() {
                return;
            }
            if let Err(e) = store(chunk, scratch, sink) {
                failed = Some(e);
            }
        };
        let drained = capture.drain(&mut |event| {
            if cgroups.len() >= MAX_CACHED_PROCESSES {
                cgroups.clear();
            }
            let cgroup = cgroups
                .entry(event.pid)
                .or_insert_with(|| cgroup_of(event.pid));
            let command = command_of(&event.comm);
            let chunk = chunk_of(event, &command, cgroup);
            held.chunk(&chunk, event.local.zip(event.remote), &mut emit);
        })?;
        held.expire(Instant::now(), &mut emit);
        Ok(match failed {
            Some(e) => Err(e),
            None => Ok(drained),
        })
    }

    /// Hands on every chunk still held back, with the addresses it has (the capture ends).
    pub(super) fn flush(
        &mut self,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let scratch = &mut self.scratch;
        let mut result = Ok(());
        self.held.flush_all(&mut |chunk| {
            if result.is_ok() {
                result = store(chunk, scratch, sink);
            }
        });
        result
    }

    /// Removes every probe.
    pub(super) fn detach(&mut self) -> Result<(), TlsError> {
        self.capture.detach()
    }
}

/// Encodes one chunk into `scratch` and hands it to the pipeline.
fn store(
    chunk: &TlsChunk<'_>,
    scratch: &mut Vec<u8>,
    sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    scratch.clear();
    chunk.encode_into(scratch);
    sink(&RawPacket {
        ts_ns: chunk.ts_ns,
        ifindex: 0,
        direction: PacketDirection::Unknown,
        link_type: LINKTYPE_TAPLINE_TLS,
        orig_len: u32::try_from(scratch.len()).unwrap_or(u32::MAX),
        data: scratch,
    })
}

/// The address a chunk carries when the programs never saw its socket.
fn unspecified() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
}

/// The stored form of one event, with unspecified addresses when its socket was not seen.
fn chunk_of<'a>(event: &'a TlsEvent<'a>, command: &'a str, cgroup: &'a str) -> TlsChunk<'a> {
    let (direction, kind, data, lost) = match event.kind {
        TlsEventKind::Data {
            direction,
            data,
            lost,
            ..
        } => (
            match direction {
                TlsDirection::Sent => ChunkDirection::Sent,
                TlsDirection::Received => ChunkDirection::Received,
            },
            ChunkKind::Data,
            data,
            lost,
        ),
        TlsEventKind::Close => (ChunkDirection::Sent, ChunkKind::Close, &[][..], 0),
    };
    TlsChunk {
        ts_ns: event.ts_ns,
        pid: event.pid,
        tid: event.tid,
        conn_id: event.conn_id,
        direction,
        kind,
        local: event.local.unwrap_or_else(unspecified),
        remote: event.remote.unwrap_or_else(unspecified),
        lost,
        cgroup_id: event.cgroup_id,
        command,
        cgroup,
        data,
    }
}

/// The command name up to its first NUL, borrowed unless it is not UTF-8 (no allocation per
/// chunk on the usual path).
fn command_of(comm: &[u8; 16]) -> std::borrow::Cow<'_, str> {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(comm.get(..end).unwrap_or_default())
}

/// The process's cgroup (v2 path, or the first v1 line's), empty when unreadable.
fn cgroup_of(pid: u32) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let unified = lines.iter().find_map(|l| l.strip_prefix("0::"));
    unified
        .or_else(|| lines.first().and_then(|l| l.splitn(3, ':').nth(2)))
        .unwrap_or("")
        .to_owned()
}

impl OwnedChunk {
    /// Copies a chunk that has to wait.
    fn of(chunk: &TlsChunk<'_>) -> Self {
        OwnedChunk {
            ts_ns: chunk.ts_ns,
            pid: chunk.pid,
            tid: chunk.tid,
            conn_id: chunk.conn_id,
            direction: chunk.direction,
            kind: chunk.kind,
            lost: chunk.lost,
            cgroup_id: chunk.cgroup_id,
            command: chunk.command.to_owned(),
            cgroup: chunk.cgroup.to_owned(),
            data: chunk.data.to_vec(),
        }
    }

    /// The chunk again, with the stream's addresses (or unspecified ones).
    fn with(&self, addresses: Option<(SocketAddr, SocketAddr)>) -> TlsChunk<'_> {
        let (local, remote) = addresses.unwrap_or_else(|| (unspecified(), unspecified()));
        TlsChunk {
            ts_ns: self.ts_ns,
            pid: self.pid,
            tid: self.tid,
            conn_id: self.conn_id,
            direction: self.direction,
            kind: self.kind,
            local,
            remote,
            lost: self.lost,
            cgroup_id: self.cgroup_id,
            command: &self.command,
            cgroup: &self.cgroup,
            data: &self.data,
        }
    }
}
