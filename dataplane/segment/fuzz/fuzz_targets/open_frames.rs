//! Fuzz the segment reader and `recover` on arbitrary files.
//!
//! The first input byte picks a mode: 0 the raw bytes are the whole file; 1 a valid header
//! followed by the raw bytes (so frame parsing is reached past the header crc); 2 frames written
//! by `SegmentWriter` from the input, then damaged (truncated, a byte changed, bytes appended)
//! as the input says, checked against what was written. In every mode: no panic, payloads
//! aligned, at most one error and it ends the scan, and `recover` leaves a file that re-opens
//! to exactly the good frames.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use tapline_segment::{Segment, SegmentHeader, SegmentKind, SegmentWriter, recover};

fn scratch(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("tapline-seg-fuzz-{}-{name}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(rest, None),
        1 => {
            let header = SegmentHeader {
                kind: SegmentKind::Packets,
                sequence: 1,
                created_ns: 2,
                capacity: 1 << 20,
            };
            let mut file = header.encode().to_vec();
            file.extend_from_slice(rest);
            check(&file, None);
        }
        _ => structured(rest),
    }
});

/// Writes frames from the input with `SegmentWriter`, damages the file, and checks the reader
/// returns a prefix of what was written (all of it when undamaged).
fn structured(data: &[u8]) {
    let [cap, op, a, b, body @ ..] = data else {
        return;
    };
    let capacity = 96 + 16 * u64::from(*cap) * 4;
    let path = scratch("w");
    let _ = std::fs::remove_file(&path);
    let mut w = SegmentWriter::create(&path, SegmentKind::RRPairs, 0, capacity).expect("create");
    let mut written = Vec::new();
    let mut chunks = body;
    // Publish after every frame, or only once at the end.
    let publish_each = *op & 0x40 != 0;
    let shared = w.shared();
    while let [len, tail @ ..] = chunks {
        let n = (*len as usize).min(tail.len()).max(1);
        let payload = tail.get(..n).unwrap_or(&[1]);
        match w.append(payload).expect("append") {
            Some(off) => {
                assert_eq!(off % 16, 0);
                assert!(shared.payload(off).is_err(), "readable before publish");
                if publish_each {
                    w.publish().expect("publish");
                    assert_eq!(shared.payload(off).expect("shared read"), payload);
                }
                written.push(payload.to_vec());
            }
            None => assert!(!w.fits(payload.len())),
        }
        chunks = tail.get(n..).unwrap_or_default();
    }
    w.publish().expect("publish");
    let visible: Vec<Vec<u8>> = shared
        .frames()
        .map(|f| f.expect("published frame").payload.to_vec())
        .collect();
    assert_eq!(visible, written);
    let sealed = *op & 0x80 == 0;
    let mut file = if sealed {
        w.seal().expect("seal");
        std::fs::read(&path).expect("read")
    } else {
        drop(w);
        std::fs::read(&path).expect("read")
    };
    let _ = std::fs::remove_file(&path);
    let at = u16::from_le_bytes([*a, *b]) as usize;
    let damaged = match op & 3 {
        0 => false,
        1 => {
            let keep = at % (file.len() + 1);
            let changed = keep < file.len();
            file.truncate(keep);
            changed
        }
        2 => match file.get_mut(at) {
            Some(byte) => {
                *byte ^= (op >> 2) | 1;
                true
            }
            None => false,
        },
        _ => {
            file.extend(std::iter::repeat_n(*a | 1, usize::from(*b) + 1));
            true
        }
    };
    check(&file, (!damaged).then_some(&written[..]));
}

/// Reads `file` in memory and from disk, runs `recover`, and checks the invariants; when
/// `expected` is given, the frames must be exactly those.
fn check(file: &[u8], expected: Option<&[Vec<u8>]>) {
    let _ = SegmentHeader::decode(file, Path::new("x"));
    let good = match Segment::from_bytes(file) {
        Ok(seg) => scan(&seg),
        Err(_) => {
            assert!(expected.is_none(), "writer output refused");
            None
        }
    };
    if let Some(exp) = expected {
        let (frames, err) = good.as_ref().expect("scanned");
        assert!(err.is_none(), "undamaged file reported damage");
        assert_eq!(frames, exp);
    }

    let path = scratch("r");
    std::fs::write(&path, file).expect("write scratch");
    match (Segment::open(&path), &good) {
        (Ok(seg), Some(g)) => assert_eq!(scan(&seg).as_ref(), Some(g), "file and memory agree"),
        (Err(_), None) => {}
        (a, b) => panic!(
            "open and from_bytes disagree: {:?} vs {:?}",
            a.is_ok(),
            b.is_some()
        ),
    }
    match recover(&path) {
        Ok(r) => {
            let (frames, err) = good.as_ref().expect("recover accepted a refused header");
            assert_eq!(r.good_frames, frames.len() as u64);
            assert_eq!(r.damage.is_some(), err.is_some());
            assert_eq!(r.good_bytes + r.truncated_bytes, file.len() as u64);
            let seg = Segment::open(&path).expect("re-open recovered");
            assert_eq!(seg.len(), r.good_bytes);
            let (after, none) = scan(&seg).expect("scan");
            assert!(none.is_none(), "recovered file still damaged");
            assert_eq!(&after, frames);
        }
        Err(_) => assert!(good.is_none(), "recover refused a readable file"),
    }
    let _ = std::fs::remove_file(&path);
}

/// The good payloads and the error (with its offset) of a full scan.
fn scan(seg: &Segment) -> Option<(Vec<Vec<u8>>, Option<u64>)> {
    let mut frames = Vec::new();
    let mut it = seg.frames();
    let mut err = None;
    while let Some(item) = it.next() {
        assert!(err.is_none(), "an item after an error");
        match item {
            Ok(f) => {
                assert_eq!(f.offset % 16, 0);
                assert_eq!(f.payload.as_ptr() as usize % 16, 0);
                assert!(!f.payload.is_empty());
                assert_eq!(seg.payload(f.offset).expect("payload by offset"), f.payload);
                frames.push(f.payload.to_vec());
            }
            Err(e) => {
                let off = e.frame_offset().expect("frame errors carry an offset");
                assert_eq!(off, it.position());
                err = Some(off);
            }
        }
    }
    assert!(it.next().is_none());
    // Offsets that are not payload starts never panic.
    for off in [
        0,
        16,
        64,
        80,
        seg.len(),
        seg.len().saturating_sub(16),
        u64::MAX,
    ] {
        let _ = seg.payload(off);
    }
    Some((frames, err))
}
