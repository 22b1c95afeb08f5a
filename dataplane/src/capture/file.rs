//! Reading pcap and pcapng files, memory-mapped, with the `pcap-file` crate's parsers.
//!
//! The raw record API is used for pcap so that captures cut at a snap length (original length
//! larger than the file's snap length) are accepted, and pcapng timestamps are scaled by each
//! interface's `if_tsresol`. A truncated or corrupt record ends the iteration with an error that
//! names the file and the byte offset; every packet before it has been yielded.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{PcapError, TsResolution};

use super::RawPacket;

/// Largest packet a capture record may claim; beyond it the record is treated as garbage.
pub const MAX_RECORD_LEN: u32 = 256 * 1024;

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or mapped.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: empty file, expected a pcap or pcapng capture")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file does not start with a pcap or pcapng magic number.
    #[error("{path}: not a pcap or pcapng file (starts with {magic})")]
    NotCapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, in hex.
        magic: String,
    },
    /// The file header is unreadable.
    #[error("{path}: bad capture file header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file ends in the middle of a record.
    #[error("{path}: truncated record at byte offset {offset} (file ends inside it)")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset of the record.
        offset: u64,
    },
    /// A record's fields make no sense.
    #[error("{path}: corrupt record at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// A capture file mapped into memory.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    map: Bytes,
}

/// Where a capture's bytes live: a read-only mapping of a file, or memory (tests, fuzzing).
#[derive(Debug)]
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(map) => map,
            Bytes::Owned(bytes) => bytes,
        }
    }
}

impl CaptureFile {
    /// Opens and maps a capture file.
    ///
    /// # Errors
    /// When the file cannot be read, is empty, or is neither pcap nor pcapng.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let io = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(CaptureError::Empty {
                path: path.to_path_buf(),
            });
        }
        // SAFETY: the map is read-only; a capture file changed underneath us while importing
        // can yield odd packets (which are parsed as untrusted bytes anyway), not unsoundness
        // in safe code that only ever copies or parses the bytes.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        // The file is read once from start to end: let the kernel read ahead aggressively.
        let _ = map.advise(memmap2::Advice::Sequential);
        let capture = CaptureFile {
            path: path.to_path_buf(),
            map: Bytes::Map(map),
        };
        capture.kind()?;
        Ok(capture)
    }

    /// A capture held in memory; `name` stands for the path in error messages.
    ///
    /// # Errors
    /// When the bytes are empty or neither pcap nor pcapng.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CaptureError> {
        if bytes.is_empty() {
            return Err(CaptureError::Empty { path: name.into() });
        }
        let capture = CaptureFile {
            path: name.into(),
            map: Bytes::Owned(bytes),
        };
        capture.kind()?;
        Ok(capture)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether the file is empty (never true for an opened file).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn kind(&self) -> Result<Kind, CaptureError> {
        let magic: [u8; 4] = self
            .map
            .get(..4)
            .and_then(|m| m.try_into().ok())
            .ok_or_else(|| CaptureError::Truncated {
                path: self.path.clone(),
                offset: 0,
            })?;
        match magic {
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1] => Ok(Kind::Pcap),
            [0x0a, 0x0d, 0x0d, 0x0a] => Ok(Kind::PcapNg),
            _ => Err(CaptureError::NotCapture {
                path: self.path.clone(),
                magic: magic.iter().map(|b| format!("{b:02x}")).collect(),
            }),
        }
    }

    /// Iterates over the packets of the file.
    ///
    /// # Errors
    /// When the file header cannot be parsed.
    pub fn packets(&self) -> Result<PacketIter<'_>, CaptureError> {
        let data: &[u8] = &self.map;
        let inner = match self.kind()? {
            Kind::Pcap => {
                let (rest, parser) = PcapParser::new(data).map_err(|e| self.header_error(e))?;
                Inner::Pcap { parser, rest }
            }
            Kind::PcapNg => {
                let (rest, parser) = PcapNgParser::new(data).map_err(|e| self.header_error(e))?;
                Inner::PcapNg {
                    parser,
                    rest,
                    interfaces: Vec::new(),
                }
            }
        };
        Ok(PacketIter {
            file: self,
            inner,
            done: false,
        })
    }

    fn header_error(&self, e: PcapError) -> CaptureError {
        match e {
            PcapError::IncompleteBuffer => CaptureError::Truncated {
                path: self.path.clone(),
                offset: 0,
            },
            other => CaptureError::BadHeader {
                path: self.path.clone(),
                reason: other.to_string(),
            },
        }
    }
}

enum Kind {
    Pcap,
    PcapNg,
}

/// Link type and timestamp scale of one pcapng interface.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u16,
    /// Timestamp units per second.
    units_per_sec: u64,
}

enum Inner<'a> {
    Pcap {
        parser: PcapParser,
        rest: &'a [u8],
    },
    PcapNg {
        parser: PcapNgParser,
        rest: &'a [u8],
        interfaces: Vec<Interface>,
    },
}

/// Iterator over the packets of a [`CaptureFile`]; stops after the first error.
pub struct PacketIter<'a> {
    file: &'a CaptureFile,
    inner: Inner<'a>,
    done: bool,
}

impl std::fmt::Debug for PacketIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketIter")
            .field("path", &self.file.path)
            .field("offset", &self.offset())
            .finish()
    }
}

impl<'a> PacketIter<'a> {
    /// Bytes of the file consumed so far (for progress reporting).
    pub fn offset(&self) -> u64 {
        let rest = match &self.inner {
            Inner::Pcap { rest, .. } | Inner::PcapNg { rest, .. } => rest.len(),
        };
        self.file.len() - rest as u64
    }

    /// The link type of a classic pcap file (pcapng has one per interface).
    pub fn pcap_link_type(&self) -> Option<u16> {
        match &self.inner {
            Inner::Pcap { parser, .. } => Some(link_type_u16(parser.header().datalink.into())),
            Inner::PcapNg { .. } => None,
        }
    }

    fn error(&self, e: PcapError, offset: u64) -> CaptureError {
        match e {
            PcapError::IncompleteBuffer => CaptureError::Truncated {
                path: self.file.path.clone(),
                offset,
            },
            other => CaptureError::Corrupt {
                path: self.file.path.clone(),
                offset,
                reason: other.to_string(),
            },
        }
    }

    fn corrupt(&self, offset: u64, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.file.path.clone(),
            offset,
            reason,
        }
    }

    fn next_pcap(&mut self) -> Option<Result<RawPacket<'a>, CaptureError>> {
        let offset = self.offset();
        let Inner::Pcap { parser, rest } = &mut self.inner else {
            return None;
        };
        if rest.is_empty() {
            return None;
        }
        let link_type = link_type_u16(parser.header().datalink.into());
        let nanos = parser.header().ts_resolution == TsResolution::NanoSecond;
        if let Some(len_bytes) = rest.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
            let incl_len = match parser.header().endianness {
                pcap_file::Endianness::Big => u32::from_be_bytes(len_bytes),
                pcap_file::Endianness::Little => u32::from_le_bytes(len_bytes),
            };
            if incl_len > MAX_RECORD_LEN {
                return Some(Err(self.corrupt(
                    offset,
                    format!(
                        "record claims a captured length of {incl_len} bytes (limit {MAX_RECORD_LEN})"
                    ),
                )));
            }
        }
        let (next, raw) = match parser.next_raw_packet(rest) {
            Ok(ok) => ok,
            Err(e) => return Some(Err(self.error(e, offset))),
        };
        *rest = next;
        // A sub-second part of a second or more is out of spec, but libpcap reads such files
        // by simple addition, and so does tapline (the time is still monotonic-ish).
        let frac_ns = if nanos {
            u64::from(raw.ts_frac)
        } else {
            u64::from(raw.ts_frac) * 1000
        };
        let data = match raw.data {
            std::borrow::Cow::Borrowed(d) => d,
            std::borrow::Cow::Owned(_) => {
                return Some(Err(self.corrupt(offset, "unexpected copy".into())));
            }
        };
        Some(Ok(RawPacket {
            ts_ns: u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns,
            ifindex: 0,
            direction: crate::record::PacketDirection::Unknown,
            link_type,
            orig_len: raw.orig_len.max(raw.incl_len),
            data,
        }))
    }

    fn next_pcapng(&mut self) -> Option<Result<RawPacket<'a>, CaptureError>> {
        loop {
            let offset = self.offset();
            let Inner::PcapNg {
                parser,
                rest,
                interfaces,
            } = &mut self.inner
            else {
                return None;
            };
            if rest.is_empty() {
                return None;
            }
            let (next, block) = match parser.next_block(rest) {
                Ok(ok) => ok,
                Err(PcapError::Utf8Error(_) | PcapError::FromUtf8Error(_)) => {
                    // An option that is not valid UTF-8 (a comment, a name) does not make the
                    // packet unreadable: take the block raw and decode a packet block by hand.
                    let endianness = parser.section().endianness;
                    let (next, raw) = match parser.next_raw_block(rest) {
                        Ok(ok) => ok,
                        Err(e) => return Some(Err(self.error(e, offset))),
                    };
                    match raw_enhanced_packet(raw, endianness) {
                        Some(block) => (next, block),
                        None => {
                            *rest = next;
                            continue;
                        }
                    }
                }
                Err(e) => return Some(Err(self.error(e, offset))),
            };
            *rest = next;
            // Section headers reset the interface list inside the parser; mirror it.
            if parser.interfaces().len() != interfaces.len() {
                *interfaces = parser.interfaces().iter().map(interface_of).collect();
            }
            let (if_id, raw_ts, orig_len, data) = match block {
                Block::EnhancedPacket(epb) => {
                    // pcap-file stores the raw 64-bit timestamp as if it were nanoseconds.
                    let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    (epb.interface_id, Some(raw), epb.original_len, epb.data)
                }
                Block::SimplePacket(spb) => (0, None, spb.original_len, spb.data),
                Block::Packet(pb) => (
                    u32::from(pb.interface_id),
                    Some(pb.timestamp),
                    pb.original_len,
                    pb.data,
                ),
                _ => continue,
            };
            let Some(iface) = interfaces.get(if_id as usize).copied() else {
                return Some(Err(self.corrupt(
                    offset,
                    format!("packet names interface {if_id}, which was never described"),
                )));
            };
            let data = match data {
                std::borrow::Cow::Borrowed(d) => d,
                std::borrow::Cow::Owned(_) => {
                    return Some(Err(self.corrupt(offset, "unexpected copy".into())));
                }
            };
            if data.len() > MAX_RECORD_LEN as usize {
                return Some(Err(self.corrupt(
                    offset,
                    format!(
                        "captured length {} exceeds the {MAX_RECORD_LEN}-byte limit",
                        data.len()
                    ),
                )));
            }
            let ts_ns = raw_ts.map_or(0, |raw| scale_to_ns(raw, iface.units_per_sec));
            return Some(Ok(RawPacket {
                ts_ns,
                ifindex: if_id,
                direction: crate::record::PacketDirection::Unknown,
                link_type: iface.link_type,
                orig_len: orig_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX)),
                data,
            }));
        }
    }
}

impl<'a> Iterator for PacketIter<'a> {
    type Item = Result<RawPacket<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.inner {
            Inner::Pcap { .. } => self.next_pcap(),
            Inner::PcapNg { .. } => self.next_pcapng(),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Decodes an enhanced packet block by hand, ignoring its options (used when `pcap-file`
/// refuses the block for an option that is not UTF-8). Other blocks give `None`.
fn raw_enhanced_packet(
    raw: pcap_file::pcapng::RawBlock<'_>,
    endianness: pcap_file::Endianness,
) -> Option<Block<'_>> {
    const ENHANCED_PACKET_BLOCK: u32 = 6;
    if raw.type_ != ENHANCED_PACKET_BLOCK {
        return None;
    }
    let std::borrow::Cow::Borrowed(body) = raw.body else {
        return None;
    };
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(match endianness {
            pcap_file::Endianness::Big => u32::from_be_bytes(bytes),
            pcap_file::Endianness::Little => u32::from_le_bytes(bytes),
        })
    };
    let captured = word(12)? as usize;
    let data = body.get(20..20usize.checked_add(captured)?)?;
    let raw_ts = (u64::from(word(4)?) << 32) | u64::from(word(8)?);
    Some(Block::EnhancedPacket(
        pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock {
            interface_id: word(0)?,
            timestamp: std::time::Duration::from_nanos(raw_ts),
            original_len: word(16)?,
            data: std::borrow::Cow::Borrowed(data),
            options: Vec::new(),
        },
    ))
}

fn link_type_u16(link: u32) -> u16 {
    u16::try_from(link).unwrap_or(u16::MAX)
}

fn interface_of(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock,
) -> Interface {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    let mut units_per_sec = 1_000_000u64;
    for opt in &idb.options {
        if let InterfaceDescriptionOption::IfTsResol(r) = opt {
            units_per_sec = if r & 0x80 == 0 {
                10u64.checked_pow(u32::from(*r)).unwrap_or(u64::MAX)
            } else {
                1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(u64::MAX)
            };
        }
    }
    Interface {
        link_type: link_type_u16(idb.linktype.into()),
        units_per_sec: units_per_sec.max(1),
    }
}

fn scale_to_ns(raw: u64, units_per_sec: u64) -> u64 {
    let ns = u128::from(raw) * 1_000_000_000 / u128::from(units_per_sec);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_pcapng_timestamps() {
        assert_eq!(scale_to_ns(1_500_000, 1_000_000), 1_500_000_000);
        assert_eq!(scale_to_ns(7, 1_000_000_000), 7);
        assert_eq!(scale_to_ns(1024, 1024), 1_000_000_000);
    }

    #[test]
    fn refuses_non_capture_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"hello world").unwrap();
        let err = CaptureFile::open(&text).unwrap_err().to_string();
        assert!(err.contains("not a pcap or pcapng file"), "{err}");
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").unwrap();
        let err = CaptureFile::open(&empty).unwrap_err().to_string();
        assert!(err.contains("empty file"), "{err}");
    }

    fn pcap_bytes(records: &[(&[u8], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&96u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&1u32.to_le_bytes()); // ethernet
        for (i, (data, orig)) in records.iter().enumerate() {
            out.extend_from_slice(&(10 + i as u32).to_le_bytes());
            out.extend_from_slice(&5u32.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&orig.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn reads_snapped_records_and_reports_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pcap");
        let mut bytes = pcap_bytes(&[(&[1, 2, 3], 1514), (&[4, 5], 2)]);
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&path, &bytes).unwrap();
        let file = CaptureFile::open(&path).unwrap();
        let mut iter = file.packets().unwrap();
        let first = iter.next().unwrap().unwrap();
        assert_eq!(first.ts_ns, 10_000_005_000);
        assert_eq!(first.orig_len, 1514);
        assert_eq!(first.data, &[1, 2, 3]);
        let err = iter.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("truncated record at byte offset 43"), "{err}");
        assert!(iter.next().is_none());
    }
}
