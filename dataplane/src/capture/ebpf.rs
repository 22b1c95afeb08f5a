//! Live capture through eBPF: the XDP ingress and TC egress programs of `tapline-xdp` push
//! each packet into a BPF ring buffer; this source drains it memory-mapped and hands the
//! packets over as [`RawPacket`]s, borrowed straight from the ring (no copy before the
//! pipeline's own).
//!
//! The programs stamp packets with `bpf_ktime_get_ns()` (`CLOCK_MONOTONIC`); [`WallClock`]
//! turns that into nanoseconds since the Unix epoch with an offset measured once at start, so
//! timestamps never run backwards even if the wall clock is stepped during a capture.

use tapline_bpf::capture::{CaptureHdr, DIR_EGRESS, DIR_INGRESS};
use tapline_xdp::{AttachError, CaptureConfig, Counters, IngressHook, LiveCapture};

pub use tapline_bpf::clock::WallClock;

use crate::capture::RawPacket;
use crate::record::PacketDirection;

/// Records drained before the caller gets a chance to look at the clock and signals.
pub const DRAIN_BATCH: usize = 8192;

/// The packet a ring record holds, or why it was refused.
///
/// # Errors
/// When the record breaks the ABI (see [`CaptureHdr::parse`]).
pub fn record_packet<'a>(
    record: &'a [u8],
    clock: &WallClock,
    link_type: u16,
) -> Result<RawPacket<'a>, tapline_bpf::capture::RecordError> {
    let (hdr, data) = CaptureHdr::parse(record)?;
    let direction = match hdr.direction {
        DIR_INGRESS => PacketDirection::Ingress,
        DIR_EGRESS => PacketDirection::Egress,
        _ => PacketDirection::Unknown,
    };
    Ok(RawPacket {
        ts_ns: clock.wall(hdr.ts_ns),
        ifindex: hdr.ifindex,
        direction,
        link_type,
        orig_len: hdr.orig_len.max(hdr.cap_len),
        data,
    })
}

/// An interface captured with the eBPF programs.
#[derive(Debug)]
pub struct EbpfSource {
    capture: LiveCapture,
    clock: WallClock,
    link_type: u16,
    bad_records: u64,
}

impl EbpfSource {
    /// Attaches the capture programs to `interface` (in the calling thread's network
    /// namespace) with `config`; packets are of pcap link type `link_type`.
    ///
    /// # Errors
    /// As [`LiveCapture::attach`].
    pub fn open(
        interface: &str,
        config: &CaptureConfig,
        link_type: u16,
    ) -> Result<Self, AttachError> {
        let capture = LiveCapture::attach(interface, config)?;
        Ok(EbpfSource {
            capture,
            clock: WallClock::measure(),
            link_type,
            bad_records: 0,
        })
    }

    /// Where the ingress program runs.
    pub fn ingress_hook(&self) -> IngressHook {
        self.capture.ingress_hook()
    }

    /// What happened while attaching that a person should know.
    pub fn notes(&self) -> &[String] {
        self.capture.notes()
    }

    /// Hands up to `max` records waiting in the ring to `sink`, oldest first, and returns how
    /// many were drained. Records that break the ABI are counted ([`Self::bad_records`]) and
    /// skipped.
    ///
    /// # Errors
    /// The first error `sink` returns; the record it refused is consumed.
    pub fn drain<E>(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let (clock, link_type) = (self.clock, self.link_type);
        let mut drained = 0;
        let ring = self.capture.ring();
        while drained < max {
            let Some(item) = ring.next() else { break };
            drained += 1;
            match record_packet(&item, &clock, link_type) {
                Ok(packet) => sink(&packet)?,
                Err(_) => self.bad_records += 1,
            }
        }
        Ok(drained)
    }

    /// Records refused because they broke the ABI (zero unless something is very wrong).
    pub fn bad_records(&self) -> u64 {
        self.bad_records
    }

    /// The programs' counters.
    ///
    /// # Errors
    /// When the counter map cannot be read.
    pub fn counters(&self) -> Result<Counters, AttachError> {
        self.capture.counters()
    }

    /// Detaches the programs; the ring can still be drained of what it holds.
    ///
    /// # Errors
    /// When the kernel refuses to detach a program.
    pub fn detach(&mut self) -> Result<(), AttachError> {
        self.capture.detach()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_bpf::capture::{MAGIC, VERSION};

    #[test]
    fn records_become_packets_with_wall_time_and_direction() {
        let hdr = CaptureHdr {
            magic: MAGIC,
            version: VERSION,
            direction: DIR_EGRESS,
            flags: 0,
            ts_ns: 1_000,
            ifindex: 4,
            orig_len: 100,
            cap_len: 3,
            pad: 0,
        };
        let mut record = hdr.to_bytes().to_vec();
        record.extend_from_slice(&[1, 2, 3, 0, 0, 0, 0, 0]);
        let clock = WallClock::with_offset(1_700_000_000_000_000_000);
        let packet = record_packet(&record, &clock, 1).unwrap();
        assert_eq!(packet.ts_ns, 1_700_000_000_000_001_000);
        assert_eq!(packet.direction, PacketDirection::Egress);
        assert_eq!(
            (packet.ifindex, packet.orig_len, packet.link_type),
            (4, 100, 1)
        );
        assert_eq!(packet.data, &[1, 2, 3]);
        assert!(record_packet(&record[..20], &clock, 1).is_err());
    }
}
