//! SPAN / mirror-port capture: a promiscuous `AF_PACKET` socket with a memory-mapped
//! `TPACKET_V3` ring, for traffic that is not addressed to this host.
//!
//! The kernel fills blocks of the ring with packets and hands a block over when it is full or
//! after a short timeout; [`SpanSocket::drain`] walks the blocks userspace owns, hands each
//! packet over as a [`RawPacket`] borrowed from the ring, and gives the block back. One system
//! call per block instead of one per packet is what lets it keep up where a plain `recvfrom`
//! loop (as `pnet`'s datalink channel does) cannot: see `bench/RESULTS.md`.
//!
//! Both directions are captured: a mirror to a dummy device shows up as packets *sent* on it.
//! Every offset read from the ring is checked against its block before it is used.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::capture::RawPacket;
use crate::record::PacketDirection;

/// `ETH_P_ALL`, in network byte order as `socket(2)` and `bind(2)` want it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// `TPACKET_V3`.
const TPACKET_V3: libc::c_int = 2;
/// The block belongs to userspace.
const TP_STATUS_USER: u32 = 1;
/// The block belongs to the kernel.
const TP_STATUS_KERNEL: u32 = 0;
/// `PACKET_OUTGOING`: a packet this host sent.
const PACKET_OUTGOING: u8 = 4;
/// Offsets in `struct tpacket_block_desc` (version 1 header).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
const BLOCK_LEN: usize = 20;
/// Offsets in `struct tpacket3_hdr`, then the `sockaddr_ll` after it (at `TPACKET_ALIGN(48)`).
const PKT_NEXT: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_MAC: usize = 24;
const SLL_PKTTYPE: usize = 48 + 10;

/// Settings of a SPAN capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanConfig {
    /// Size of one ring block (a power of two, at least 128 KiB so a 64 KiB packet fits).
    pub block_bytes: u32,
    /// Number of blocks.
    pub blocks: u32,
    /// How long the kernel waits before handing over a block that is not full, ms.
    pub block_timeout_ms: u32,
    /// Bytes kept of each packet.
    pub snaplen: u32,
}

impl Default for SpanConfig {
    fn default() -> Self {
        SpanConfig {
            block_bytes: 4 << 20,
            blocks: 16,
            block_timeout_ms: 10,
            snaplen: 65536,
        }
    }
}

/// Why a SPAN capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    /// A socket call failed while doing `action`.
    #[error("{action} on {interface}: {source}")]
    Socket {
        /// What was being done.
        action: &'static str,
        /// The interface.
        interface: String,
        /// The system's answer.
        source: io::Error,
    },
}

impl SpanError {
    /// Whether the system refused for lack of privilege (`CAP_NET_RAW`).
    pub fn is_permission(&self) -> bool {
        let SpanError::Socket { source, .. } = self;
        matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES))
    }
}

/// Counters of the socket since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanStats {
    /// Packets the kernel passed to the socket.
    pub packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub drops: u64,
}

/// A promiscuous `TPACKET_V3` socket on one interface. Closing it (drop) leaves promiscuous
/// mode.
#[derive(Debug)]
pub struct SpanSocket {
    fd: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    config: SpanConfig,
    next_block: u32,
    interface: String,
    link_type: u16,
    stats: SpanStats,
}

// SAFETY: the ring mapping is owned by this value alone and only touched through `&mut self`.
unsafe impl Send for SpanSocket {}

impl SpanSocket {
    /// Opens a promiscuous capture of `interface` (index `ifindex`), whose packets are of pcap
    /// link type `link_type`, in the calling thread's network namespace.
    ///
    /// # Errors
    /// When a socket call fails: without `CAP_NET_RAW` the socket cannot be made.
    pub fn open(
        interface: &str,
        ifindex: u32,
        link_type: u16,
        config: SpanConfig,
    ) -> Result<Self, SpanError> {
        let fail = |action: &'static str| SpanError::Socket {
            action,
            interface: interface.to_owned(),
            source: io::Error::last_os_error(),
        };
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(ETH_P_ALL_BE),
            )
        };
        if raw < 0 {
            return Err(fail("opening an AF_PACKET socket"));
        }
        // SAFETY: a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3)
            .map_err(|_| fail("selecting TPACKET_V3"))?;
        let frame = 1u32 << 16;
        let request = libc::tpacket_req3 {
            tp_block_size: config.block_bytes,
            tp_block_nr: config.blocks,
            tp_frame_size: frame,
            tp_frame_nr: config.block_bytes / frame * config.blocks,
            tp_retire_blk_tov: config.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &request)
            .map_err(|_| fail("setting up the packet ring"))?;
        let ring_len = config.block_bytes as usize * config.blocks as usize;
        // SAFETY: mapping the ring the kernel just made for this socket, of its size.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(fail("mapping the packet ring"));
        }
        let socket = SpanSocket {
            fd,
            ring: ring.cast(),
            ring_len,
            config,
            next_block: 0,
            interface: interface.to_owned(),
            link_type,
            stats: SpanStats::default(),
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = ETH_P_ALL_BE;
        address.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
        // SAFETY: a valid socket and an address of the size passed.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&raw const address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(fail("binding to the interface"));
        }
        let membership = libc::packet_mreq {
            mr_ifindex: i32::try_from(ifindex).unwrap_or(0),
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            &socket.fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &membership,
        )
        .map_err(|_| fail("entering promiscuous mode"))?;
        Ok(socket)
    }

    /// Hands every packet of the blocks userspace owns to `sink` (at most `max_blocks`
    /// blocks), gives the blocks back, and returns the number of packets.
    ///
    /// # Errors
    /// The first error `sink` returns; the rest of that block is skipped and the block given
    /// back.
    pub fn drain<E>(
        &mut self,
        max_blocks: usize,
        sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut packets = 0;
        for _ in 0..max_blocks {
            let block_bytes = self.config.block_bytes as usize;
            let start = self.next_block as usize * block_bytes;
            // SAFETY: `start` is a block boundary inside the mapping; the status word is
            // 8-byte aligned and written by the kernel with release semantics.
            let status = unsafe { &*self.ring.add(start + BLOCK_STATUS).cast::<AtomicU32>() };
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the block is userspace's until the status is given back below.
            let block = unsafe { std::slice::from_raw_parts(self.ring.add(start), block_bytes) };
            let result = walk_block(block, self.link_type, self.config.snaplen, sink);
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.next_block = (self.next_block + 1) % self.config.blocks;
            packets += result?;
        }
        Ok(packets)
    }

    /// Packets passed and dropped by the kernel since the socket opened.
    ///
    /// # Errors
    /// When the statistics cannot be read.
    pub fn stats(&mut self) -> Result<SpanStats, SpanError> {
        let mut raw = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: a valid socket and a buffer of the size passed.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut raw).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(SpanError::Socket {
                action: "reading packet statistics",
                interface: self.interface.clone(),
                source: io::Error::last_os_error(),
            });
        }
        // The kernel resets its counters on each read: keep the totals here.
        self.stats.packets += u64::from(raw.tp_packets);
        self.stats.drops += u64::from(raw.tp_drops);
        Ok(self.stats)
    }
}

impl Drop for SpanSocket {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `open`, of its size; nothing borrows it now.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}

/// Sets a socket option of type `T`.
fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: a valid socket and a value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a native-endian `u32` at `at`, if inside `bytes`.
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Hands the packets of one block to `sink`; returns how many. Stops at the first offset that
/// leaves the block.
fn walk_block<E>(
    block: &[u8],
    link_type: u16,
    snaplen: u32,
    sink: &mut dyn FnMut(&RawPacket<'_>) -> Result<(), E>,
) -> Result<usize, E> {
    let count = u32_at(block, BLOCK_NUM_PKTS).unwrap_or(0);
    let used = u32_at(block, BLOCK_LEN)
        .map_or(0, |n| n as usize)
        .min(block.len());
    let mut at = u32_at(block, BLOCK_FIRST).map_or(usize::MAX, |n| n as usize);
    let mut handed = 0;
    for _ in 0..count {
        let Some(header) = block.get(at..).filter(|h| h.len() > SLL_PKTTYPE) else {
            break;
        };
        let field = |offset| u32_at(header, offset).unwrap_or(0);
        let mac = u16::from_ne_bytes([header[PKT_MAC], header[PKT_MAC + 1]]) as usize;
        let captured = field(PKT_SNAPLEN) as usize;
        let Some(data) = header.get(mac..mac.saturating_add(captured)) else {
            break;
        };
        let keep = data.len().min(snaplen as usize);
        let direction = if header[SLL_PKTTYPE] == PACKET_OUTGOING {
            PacketDirection::Egress
        } else {
            PacketDirection::Ingress
        };
        let packet = RawPacket {
            ts_ns: u64::from(field(PKT_SEC)) * 1_000_000_000 + u64::from(field(PKT_NSEC)),
            ifindex: 0,
            direction,
            link_type,
            orig_len: field(PKT_LEN).max(u32::try_from(keep).unwrap_or(u32::MAX)),
            data: &data[..keep],
        };
        sink(&packet)?;
        handed += 1;
        let next = field(PKT_NEXT) as usize;
        if next == 0 {
            break;
        }
        at = match at.checked_add(next) {
            Some(n) if n < used => n,
            _ => break,
        };
    }
    Ok(handed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a block holding `packets` the way the kernel lays them out.
    fn block(packets: &[(&[u8], u8)]) -> Vec<u8> {
        let mut block = vec![0u8; 4096];
        let first = 48usize;
        block[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4]
            .copy_from_slice(&(packets.len() as u32).to_ne_bytes());
        block[BLOCK_FIRST..BLOCK_FIRST + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        let mut at = first;
        for (i, (data, pkttype)) in packets.iter().enumerate() {
            let mac = 80usize;
            let next = if i + 1 == packets.len() {
                0
            } else {
                (mac + data.len() + 15) & !15
            };
            let put = |block: &mut Vec<u8>, off: usize, v: u32| {
                block[at + off..at + off + 4].copy_from_slice(&v.to_ne_bytes());
            };
            put(&mut block, PKT_NEXT, next as u32);
            put(&mut block, PKT_SEC, 10 + i as u32);
            put(&mut block, PKT_NSEC, 5);
            put(&mut block, PKT_SNAPLEN, data.len() as u32);
            put(&mut block, PKT_LEN, data.len() as u32 + 100);
            block[at + PKT_MAC..at + PKT_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            block[at + SLL_PKTTYPE] = *pkttype;
            block[at + mac..at + mac + data.len()].copy_from_slice(data);
            at += next;
        }
        let used = at + 200;
        block[BLOCK_LEN..BLOCK_LEN + 4].copy_from_slice(&(used as u32).to_ne_bytes());
        block
    }

    fn collect(block: &[u8], snaplen: u32) -> Vec<(u64, PacketDirection, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut sink = |p: &RawPacket<'_>| -> Result<(), ()> {
            out.push((p.ts_ns, p.direction, p.orig_len, p.data.to_vec()));
            Ok(())
        };
        walk_block(block, 1, snaplen, &mut sink).unwrap();
        out
    }

    #[test]
    fn packets_are_walked_in_order_with_time_and_direction() {
        let block = block(&[(b"first", 0), (b"second!", PACKET_OUTGOING)]);
        let got = collect(&block, 65536);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (
                10_000_000_005,
                PacketDirection::Ingress,
                105,
                b"first".to_vec()
            )
        );
        assert_eq!(got[1].1, PacketDirection::Egress);
        assert_eq!(got[1].3, b"second!");
        let cut = collect(&block, 3);
        assert_eq!(cut[0].3, b"fir");
        assert_eq!(cut[0].2, 105);
    }

    #[test]
    fn offsets_outside_the_block_stop_the_walk() {
        let mut bad = block(&[(b"first", 0), (b"second", 0)]);
        // The second packet's data offset points past the block.
        let second = 48 + ((80 + 5 + 15) & !15);
        bad[second + PKT_MAC..second + PKT_MAC + 2].copy_from_slice(&u16::MAX.to_ne_bytes());
        bad[second + PKT_SNAPLEN..second + PKT_SNAPLEN + 4]
            .copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(collect(&bad, 65536).len(), 1);
        let mut wild = block(&[(b"x", 0)]);
        wild[BLOCK_FIRST..BLOCK_FIRST + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        wild[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(collect(&wild, 65536).is_empty());
        assert!(collect(&[0u8; 8], 65536).is_empty());
    }
}
