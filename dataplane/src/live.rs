//! Live capture into a snapshot: an interface through the eBPF programs
//! ([`crate::capture::ebpf`]) or a SPAN port through a promiscuous packet ring
//! ([`crate::capture::span`]), fed through the same [`Pipeline`] as a file import, so a live
//! capture yields the same RRPairs as importing a pcap of the same traffic.
//!
//! [`run`] enters the network namespace if asked (before any thread starts, so the workers
//! live there too), attaches, drains the source every few milliseconds until the stop flag is
//! raised or the duration ends, reports a status from time to time, detaches, drains what is
//! left, and seals the snapshot. A checkpoint manifest is rewritten every few seconds, so the
//! segments of a capture killed with `kill -9` stay readable with `tapline inspect`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use tapline_tls::{TlsCounters, TlsError, TlsOptions};
use tapline_xdp::{AttachError, ifindex_of};
pub use tapline_xdp::{CaptureConfig, Cidr, DEFAULT_RING_BYTES, Filter, FilterError, IngressHook};

use self::tls::TlsSource;

use crate::capture::RawPacket;
use crate::capture::ebpf::{DRAIN_BATCH, EbpfSource};
use crate::capture::span::{SpanConfig, SpanError, SpanSocket};
use crate::import::{ImportError, ImportOptions, Pipeline};
use crate::packet::{Decoded, decode};
use crate::snapshot::{Counts, Manifest, Source, TimeRange};

mod host;
mod tls;

pub use host::{enter_netns, interface_drops, link_type_of, stop_on_signals};

/// How long the loop sleeps when the source is empty.
const IDLE_SLEEP: Duration = Duration::from_millis(2);
/// How often the checkpoint manifest is rewritten.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// Distinct flows counted for the status line before the count saturates.
const MAX_COUNTED_FLOWS: usize = 1 << 20;
/// What a checkpoint manifest says while the capture runs.
pub const CHECKPOINT_NOTE: &str =
    "capture still running, or stopped before it finished: counts are those of the last checkpoint";

/// What to capture from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveSource {
    /// An interface of this host, through the XDP and TC programs.
    Interface(String),
    /// A SPAN / mirror port, through a promiscuous packet ring.
    Span(String),
    /// No interface: only the TLS plaintext of the processes [`LiveOptions::tls`] selects.
    Processes,
}

impl LiveSource {
    /// The interface's name (`None` for [`LiveSource::Processes`]).
    pub fn interface(&self) -> Option<&str> {
        match self {
            LiveSource::Interface(name) | LiveSource::Span(name) => Some(name),
            LiveSource::Processes => None,
        }
    }
}

/// Settings of one live capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Where packets come from.
    pub source: LiveSource,
    /// A named network namespace (`/run/netns/NAME`) to enter first.
    pub netns: Option<String>,
    /// Snap length, ring size and filters.
    pub capture: CaptureConfig,
    /// TLS plaintext to capture through uprobes as well (`--tls`, `--pid`, `--binary`).
    pub tls: Option<TlsOptions>,
    /// Stop after this long (`None`: at the stop flag only).
    pub duration: Option<Duration>,
    /// The snapshot directory to create.
    pub out: PathBuf,
    /// Workers and limits of the pipeline.
    pub pipeline: ImportOptions,
    /// How often to report a [`LiveStatus`].
    pub status_every: Duration,
}

/// Figures since the capture started, for the status line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStatus {
    /// Time since attaching.
    pub elapsed: Duration,
    /// Packets stored.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Distinct TCP flows seen (saturates at about a million).
    pub flows: u64,
    /// RRPairs stored.
    pub pairs: u64,
    /// Packets the kernel dropped on the interface itself (its rx and tx drop counters).
    pub kernel_drops: u64,
    /// Packets tapline lost because its ring was full (or their bytes could not be read).
    pub ring_drops: u64,
    /// TLS plaintext chunks captured (0 without TLS capture).
    pub tls_chunks: u64,
    /// TLS plaintext bytes the programs could not copy (ring full, unreadable memory).
    pub tls_lost_bytes: u64,
}

/// Hears what a live capture does.
pub trait LiveObserver {
    /// Something a person should know (the hook chosen, a fallback, a stale program removed).
    fn note(&mut self, text: &str);
    /// The figures so far, every [`LiveOptions::status_every`].
    fn status(&mut self, status: &LiveStatus);
}

/// What a finished live capture produced.
#[derive(Debug)]
pub struct LiveSummary {
    /// The snapshot's manifest as written.
    pub manifest: Manifest,
    /// The last figures.
    pub status: LiveStatus,
    /// How the ingress side was captured (eBPF), or `None` (SPAN).
    pub ingress_hook: Option<tapline_xdp::IngressHook>,
}

/// Why a live capture failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The named network namespace cannot be entered.
    #[error("entering network namespace {name:?} ({path}): {source}{hint}")]
    Netns {
        /// Its name.
        name: String,
        /// Its file.
        path: String,
        /// Why.
        source: std::io::Error,
        /// How to fix it.
        hint: &'static str,
    },
    /// The eBPF programs could not be attached or read.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// The SPAN socket could not be opened or read.
    #[error("{0}{hint}", hint = span_hint(.0))]
    Span(#[from] SpanError),
    /// The interface's link layer is not one tapline decodes.
    #[error(
        "interface {interface} has hardware type {hatype}, not Ethernet: live capture supports Ethernet-like interfaces (capture with tcpdump and `tapline import` instead)"
    )]
    UnsupportedLink {
        /// The interface.
        interface: String,
        /// Its `ARPHRD_*` type.
        hatype: u16,
    },
    /// The TLS uprobes could not be loaded, attached or read.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The snapshot could not be written.
    #[error(transparent)]
    Pipeline(#[from] ImportError),
}

impl LiveError {
    /// Whether the environment is at fault (privilege, kernel, interface, namespace): exit 3.
    pub fn is_environment(&self) -> bool {
        match self {
            LiveError::Pipeline(_) => false,
            LiveError::Tls(e) => e.is_environment(),
            _ => true,
        }
    }
}

fn span_hint(error: &SpanError) -> &'static str {
    if error.is_permission() {
        " (needs CAP_NET_RAW: run tapline capture as root, or `setcap cap_net_raw,cap_net_admin+ep tapline`)"
    } else {
        ""
    }
}

/// A source being drained: the eBPF ring or a SPAN socket.
enum Active {
    Ebpf(Box<EbpfSource>),
    Span(SpanSocket, Filter),
}

impl Active {
    /// Hands waiting packets to `sink`; returns how many were drained.
    fn drain(
        &mut self,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), ImportError>,
    ) -> Result<usize, LiveError> {
        Ok(match self {
            Active::Ebpf(source) => source.drain(DRAIN_BATCH, sink)?,
            Active::Span(socket, filter) => {
                if *filter == Filter::default() {
                    socket.drain(4, sink)?
                } else {
                    let filter = &*filter;
                    let mut filtered = |p: &RawPacket<'_>| {
                        if span_selects(filter, p) {
                            sink(p)
                        } else {
                            Ok(())
                        }
                    };
                    socket.drain(4, &mut filtered)?
                }
            }
        })
    }

    /// Packets lost because the ring was full (or could not be read).
    fn ring_drops(&mut self) -> Result<u64, LiveError> {
        Ok(match self {
            Active::Ebpf(source) => {
                let c = source.counters()?;
                c.ring_full() + c.copy_failed() + source.bad_records()
            }
            Active::Span(socket, _) => socket.stats()?.drops,
        })
    }
}

/// Whether a SPAN packet passes `filter` (the kernel programs' rule, applied in userspace).
fn span_selects(filter: &Filter, packet: &RawPacket<'_>) -> bool {
    match decode(packet.link_type, packet.data) {
        Decoded::Tcp(t) => filter.matches(
            Some(t.src.ip()),
            Some(t.dst.ip()),
            Some((t.src.port(), t.dst.port())),
        ),
        _ => filter.matches(None, None, None),
    }
}

/// Runs a live capture until `stop` is raised or the duration ends.
///
/// # Errors
/// When the namespace, the interface or the source cannot be used, or the snapshot cannot
/// be written. An error after attaching still detaches.
pub fn run(
    options: &LiveOptions,
    stop: &AtomicBool,
    observer: &mut dyn LiveObserver,
) -> Result<LiveSummary, LiveError> {
    if let Some(name) = &options.netns {
        enter_netns(name)?;
    }
    let interface = options.source.interface().map(str::to_owned);
    let (mut active, hook) = match (&options.source, &interface) {
        (LiveSource::Interface(_), Some(interface)) => {
            let link_type = link_type_of(interface)?;
            let source = EbpfSource::open(interface, &options.capture, link_type)?;
            let hook = source.ingress_hook();
            for note in source.notes() {
                observer.note(note);
            }
            observer.note(&format!(
                "capturing {interface}: ingress with {hook}, egress with TC (TCX)"
            ));
            (Some(Active::Ebpf(Box::new(source))), Some(hook))
        }
        (LiveSource::Span(_), Some(interface)) => {
            let ifindex = ifindex_of(interface)?;
            let link_type = link_type_of(interface)?;
            let config = SpanConfig {
                snaplen: options.capture.snaplen,
                ..SpanConfig::default()
            };
            let socket = SpanSocket::open(interface, ifindex, link_type, config)?;
            observer.note(&format!(
                "capturing SPAN port {interface}: promiscuous AF_PACKET (TPACKET_V3 ring)"
            ));
            (
                Some(Active::Span(socket, options.capture.filter.clone())),
                None,
            )
        }
        _ => (None, None),
    };
    let mut tls = match &options.tls {
        Some(tls_options) => {
            let mut source = match TlsSource::open(tls_options) {
                Ok(source) => source,
                Err(e) => {
                    if let Some(Active::Ebpf(ebpf)) = &mut active {
                        let _ = ebpf.detach();
                    }
                    return Err(e.into());
                }
            };
            for note in source.notes() {
                observer.note(&note);
            }
            let whom = if tls_options.all_processes {
                "every process".to_owned()
            } else {
                let pids = tls_options.pids.iter().map(|p| format!("pid {p}"));
                let binaries = tls_options
                    .binaries
                    .iter()
                    .map(|b| format!("processes of {}", b.display()));
                pids.chain(binaries).collect::<Vec<_>>().join(", ")
            };
            observer.note(&format!(
                "capturing TLS plaintext of {whom} through uprobes on OpenSSL and GnuTLS"
            ));
            Some(source)
        }
        None => None,
    };
    let source_label = match (&options.netns, &interface) {
        (Some(ns), Some(interface)) => format!("{ns}/{interface}"),
        (None, Some(interface)) => interface.clone(),
        (_, None) => "tls".to_owned(),
    };
    let kind = match (&options.source, tls.is_some()) {
        (LiveSource::Interface(_), false) => "capture",
        (LiveSource::Interface(_), true) => "capture+tls",
        (LiveSource::Span(_), false) => "span",
        (LiveSource::Span(_), true) => "span+tls",
        (LiveSource::Processes, _) => "tls",
    };
    let source = Source {
        kind: kind.into(),
        path: source_label,
    };
    let mut pipeline = Pipeline::create(&options.out, &options.pipeline)?;
    let mut state = LoopState::new(interface.as_deref());
    checkpoint(&pipeline, &source, &state, options.pipeline.workers);
    let mut sources = Sources {
        packets: active,
        tls: tls.take(),
    };
    let result = capture_loop(
        options,
        stop,
        observer,
        &mut sources,
        &mut pipeline,
        &mut state,
        &source,
    );
    // Detach first, then take what the rings still hold.
    let detached = sources.detach();
    if result.is_ok() {
        detached?;
        std::thread::sleep(Duration::from_millis(20));
        loop {
            let n = sources.drain(&mut state, &mut pipeline, observer)?;
            if n == 0 {
                break;
            }
        }
        if let Some(tls) = &mut sources.tls {
            tls.flush(&mut |p| state.packet(&mut pipeline, p))?;
        }
    }
    let status = state.status(&mut sources, &pipeline);
    result?;
    drop(sources);
    let manifest = pipeline.finish(source, None)?;
    Ok(LiveSummary {
        manifest,
        status,
        ingress_hook: hook,
    })
}

/// Everything being drained: packets (eBPF or SPAN) and TLS plaintext, either or both.
struct Sources {
    packets: Option<Active>,
    tls: Option<TlsSource>,
}

impl Sources {
    /// Drains every source once; returns how many packets and chunks came.
    fn drain(
        &mut self,
        state: &mut LoopState,
        pipeline: &mut Pipeline,
        observer: &mut dyn LiveObserver,
    ) -> Result<usize, LiveError> {
        let mut drained = 0;
        if let Some(active) = &mut self.packets {
            drained += active.drain(&mut |p| state.packet(pipeline, p))?;
        }
        if let Some(tls) = &mut self.tls {
            drained += tls.drain(&mut |p| state.packet(pipeline, p))??;
            for note in tls.notes() {
                observer.note(&note);
            }
        }
        Ok(drained)
    }

    /// Detaches every program; the first failure is returned after trying them all.
    fn detach(&mut self) -> Result<(), LiveError> {
        let packets = match &mut self.packets {
            Some(Active::Ebpf(ebpf)) => ebpf.detach().map_err(LiveError::from),
            _ => Ok(()),
        };
        let tls = match &mut self.tls {
            Some(tls) => tls.detach().map_err(LiveError::from),
            None => Ok(()),
        };
        packets.and(tls)
    }
}

/// The figures the loop keeps besides the pipeline's.
struct LoopState {
    interface: Option<String>,
    started: Instant,
    range: TimeRange,
    flows: rustc_hash::FxHashSet<(SocketAddr, SocketAddr)>,
    drops_at_start: u64,
}

impl LoopState {
    fn new(interface: Option<&str>) -> Self {
        LoopState {
            interface: interface.map(str::to_owned),
            started: Instant::now(),
            range: TimeRange::default(),
            flows: rustc_hash::FxHashSet::default(),
            drops_at_start: interface.and_then(interface_drops).unwrap_or(0),
        }
    }

    fn packet(
        &mut self,
        pipeline: &mut Pipeline,
        packet: &RawPacket<'_>,
    ) -> Result<(), ImportError> {
        self.range.include(packet.ts_ns);
        if self.flows.len() < MAX_COUNTED_FLOWS
            && let Decoded::Tcp(t) = decode(packet.link_type, packet.data)
        {
            let key = if t.src <= t.dst {
                (t.src, t.dst)
            } else {
                (t.dst, t.src)
            };
            self.flows.insert(key);
        }
        pipeline.packet(packet)
    }

    fn status(&self, sources: &mut Sources, pipeline: &Pipeline) -> LiveStatus {
        let counts: &Counts = pipeline.counts();
        let tls = sources.tls.as_ref().and_then(TlsSource::counters);
        LiveStatus {
            elapsed: self.started.elapsed(),
            packets: counts.packets,
            bytes: counts.bytes,
            flows: self.flows.len() as u64,
            pairs: pipeline.pairs_written(),
            kernel_drops: self
                .interface
                .as_deref()
                .and_then(interface_drops)
                .unwrap_or(0)
                .saturating_sub(self.drops_at_start),
            ring_drops: sources
                .packets
                .as_mut()
                .and_then(|a| a.ring_drops().ok())
                .unwrap_or(0),
            tls_chunks: tls.as_ref().map_or(0, |c| c.chunks),
            tls_lost_bytes: tls.as_ref().map_or(0, |c| c.lost_bytes),
        }
    }
}

/// Drains until stopped; reports status and writes checkpoints on the way.
fn capture_loop(
    options: &LiveOptions,
    stop: &AtomicBool,
    observer: &mut dyn LiveObserver,
    sources: &mut Sources,
    pipeline: &mut Pipeline,
    state: &mut LoopState,
    source: &Source,
) -> Result<(), LiveError> {
    let deadline = options.duration.map(|d| state.started + d);
    let mut next_status = Instant::now() + options.status_every;
    let mut next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let drained = sources.drain(state, pipeline, observer)?;
        let now = Instant::now();
        if now >= next_status {
            observer.status(&state.status(sources, pipeline));
            next_status = now + options.status_every;
        }
        if now >= next_checkpoint {
            checkpoint(pipeline, source, state, options.pipeline.workers);
            next_checkpoint = now + CHECKPOINT_EVERY;
        }
        if drained == 0 {
            // Quiet moment: let the workers see what is waiting in part-filled batches.
            pipeline.flush()?;
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    Ok(())
}

/// Writes a manifest of the figures so far, so a killed capture's snapshot opens.
fn checkpoint(pipeline: &Pipeline, source: &Source, state: &LoopState, workers: usize) {
    let mut counts = pipeline.counts().clone();
    counts.rrpairs = pipeline.pairs_written();
    let manifest = Manifest::new(
        source.clone(),
        state.range,
        counts,
        workers,
        Some(CHECKPOINT_NOTE.into()),
    );
    // A checkpoint is best effort: the final manifest is written by `finish`.
    let _ = pipeline.layout().write_manifest(&manifest);
}

/// The path of the snapshot's manifest (for tests and tools).
pub fn manifest_path(snapshot: &Path) -> PathBuf {
    snapshot.join("manifest.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::link as linktype;

    #[test]
    fn span_filters_follow_the_kernel_rule() {
        // Ethernet + IPv4 + TCP 10.0.0.1:40000 -> 10.0.0.2:80, no payload.
        let mut frame = vec![0u8; 14 + 20 + 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut frame[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut frame[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        let packet = RawPacket {
            ts_ns: 1,
            ifindex: 0,
            direction: crate::record::PacketDirection::Ingress,
            link_type: linktype::ETHERNET,
            orig_len: 54,
            data: &frame,
        };
        let port = |p: u16| Filter {
            ports: vec![p],
            hosts: vec![],
        };
        assert!(span_selects(&port(80), &packet));
        assert!(!span_selects(&port(81), &packet));
        assert!(span_selects(&Filter::default(), &packet));
    }

    #[test]
    fn environment_errors_are_told_apart_from_snapshot_errors() {
        let netns = LiveError::Netns {
            name: "x".into(),
            path: "/run/netns/x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
            hint: "",
        };
        assert!(netns.is_environment());
        assert!(!LiveError::Pipeline(ImportError::Pipeline("x".into())).is_environment());
        assert!(enter_netns("tapline-no-such-namespace").is_err());
    }
}
