//! TLS plaintext as a live source: the uprobes of [`tapline_tls`] drained into the same
//! [`Pipeline`](crate::import::Pipeline) as packets, each event stored as a [`TlsChunk`] frame
//! (link type [`LINKTYPE_TAPLINE_TLS`]) so the workers parse it with the packets' parsers.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use rustc_hash::FxHashMap;
use tapline_tls::{
    TlsCapture, TlsCounters, TlsDirection, TlsError, TlsEvent, TlsEventKind, TlsOptions,
};

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
}

impl TlsSource {
    /// Loads the programs and attaches to the processes and binaries `options` select.
    pub(super) fn open(options: &TlsOptions) -> Result<Self, TlsError> {
        Ok(TlsSource {
            capture: TlsCapture::open(options)?,
            scratch: Vec::with_capacity(1 << 15),
            cgroups: FxHashMap::default(),
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

    /// Hands every waiting event to `sink` as a chunk; returns how many were drained.
    pub(super) fn drain(
        &mut self,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), ImportError>,
    ) -> Result<Result<usize, ImportError>, TlsError> {
        let TlsSource {
            capture,
            scratch,
            cgroups,
        } = self;
        let mut failed: Option<ImportError> = None;
        let drained = capture.drain(&mut |event| {
            if failed.is_some() {
                return;
            }
            if cgroups.len() >= MAX_CACHED_PROCESSES {
                cgroups.clear();
            }
            let cgroup = cgroups
                .entry(event.pid)
                .or_insert_with(|| cgroup_of(event.pid));
            let command = event.command();
            let chunk = chunk_of(event, &command, cgroup);
            scratch.clear();
            chunk.encode_into(scratch);
            let packet = RawPacket {
                ts_ns: event.ts_ns,
                ifindex: 0,
                direction: PacketDirection::Unknown,
                link_type: LINKTYPE_TAPLINE_TLS,
                orig_len: u32::try_from(scratch.len()).unwrap_or(u32::MAX),
                data: scratch,
            };
            if let Err(e) = sink(&packet) {
                failed = Some(e);
            }
        })?;
        Ok(match failed {
            Some(e) => Err(e),
            None => Ok(drained),
        })
    }

    /// Removes every probe.
    pub(super) fn detach(&mut self) -> Result<(), TlsError> {
        self.capture.detach()
    }
}

/// The stored form of one event. An event whose socket the programs did not see keeps
/// unspecified addresses: its session id still keeps its stream apart.
fn chunk_of<'a>(event: &'a TlsEvent<'a>, command: &'a str, cgroup: &'a str) -> TlsChunk<'a> {
    let unspecified = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
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
        local: event.local.unwrap_or(unspecified),
        remote: event.remote.unwrap_or(unspecified),
        lost,
        cgroup_id: event.cgroup_id,
        command,
        cgroup,
        data,
    }
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
