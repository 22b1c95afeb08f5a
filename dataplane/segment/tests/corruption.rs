//! Damaged files: each kind of damage is reported once, at the right offset, never returned as
//! data, and `recover` cuts the file back so that a re-open reads exactly the good frames.

// Helpers outside #[test] fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tapline_segment::{
    FORMAT_VERSION, Frame, Segment, SegmentError, SegmentKind, SegmentWriter, recover,
};

const SIZES: [usize; 5] = [10, 200, 16, 1000, 33];

/// A sealed segment of five frames; returns its path and each frame's (payload offset, payload).
fn sealed(dir: &Path) -> (PathBuf, Vec<(u64, Vec<u8>)>) {
    let path = dir.join("packets-000000.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::Packets, 0, 1 << 16).unwrap();
    let frames = SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p: Vec<u8> = (0..n).map(|j| (i * 40 + j) as u8 | 1).collect();
            (w.append(&p).unwrap().unwrap(), p)
        })
        .collect();
    w.seal().unwrap();
    (path, frames)
}

/// Frame header offset of frame `i`.
fn header_at(frames: &[(u64, Vec<u8>)], i: usize) -> u64 {
    frames[i].0 - 16
}

/// Reads every item of the frame iterator: the good frames, then the error, if any.
fn scan(path: &Path) -> (Vec<Vec<u8>>, Option<SegmentError>) {
    let seg = Segment::open(path).unwrap();
    let mut good = Vec::new();
    let mut it = seg.frames();
    let mut err = None;
    for item in it.by_ref() {
        match item {
            Ok(Frame { payload, .. }) => {
                assert!(err.is_none(), "no data after an error");
                good.push(payload.to_vec());
            }
            Err(e) => {
                assert!(err.is_none(), "one error, then the iterator stops");
                err = Some(e);
            }
        }
    }
    assert!(it.next().is_none());
    (good, err)
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Checks: the scan keeps `keep` frames and reports an error at `offset` that names the path;
/// `recover` cuts the file at that offset; the re-opened file reads exactly those frames.
fn check_detect_and_recover(
    path: &Path,
    frames: &[(u64, Vec<u8>)],
    keep: usize,
    offset: u64,
) -> SegmentError {
    let (good, err) = scan(path);
    let err = err.expect("damage detected");
    assert_eq!(err.frame_offset(), Some(offset), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(good.len(), keep);
    for (g, (_, p)) in good.iter().zip(frames) {
        assert_eq!(g, p);
    }
    let len_before = std::fs::metadata(path).unwrap().len();
    let r = recover(path).unwrap();
    assert_eq!(r.good_frames, keep as u64);
    assert_eq!(r.good_bytes, offset);
    assert_eq!(r.truncated_bytes, len_before - offset);
    assert_eq!(
        r.damage.as_ref().and_then(SegmentError::frame_offset),
        Some(offset)
    );
    assert_eq!(std::fs::metadata(path).unwrap().len(), offset);
    let (after, none) = scan(path);
    assert!(none.is_none(), "{none:?}");
    assert_eq!(after, good);
    // Recovering a clean file cuts nothing.
    let again = recover(path).unwrap();
    assert_eq!((again.good_frames, again.truncated_bytes), (keep as u64, 0));
    assert!(again.damage.is_none());
    err
}

#[test]
fn truncated_mid_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    let last = header_at(&frames, 4);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(last + 16 + 20)
        .unwrap();
    let e = check_detect_and_recover(&path, &frames, 4, last);
    assert!(matches!(e, SegmentError::TornFrame { len: 33, .. }), "{e}");
}

#[test]
fn truncated_mid_frame_header() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    let last = header_at(&frames, 4);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(last + 7)
        .unwrap();
    let e = check_detect_and_recover(&path, &frames, 4, last);
    assert!(
        matches!(e, SegmentError::TornFrameHeader { available: 7, .. }),
        "{e}"
    );
}

#[test]
fn flipped_bit_in_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    let (off, p) = &frames[2];
    patch(&path, off + 5, &[p[5] ^ 0x10]);
    let seg = Segment::open(&path).unwrap();
    let e = seg.payload(*off).unwrap_err();
    assert!(matches!(e, SegmentError::FrameCrc { .. }), "{e}");
    assert_eq!(
        seg.payload(frames[1].0).unwrap(),
        frames[1].1.as_slice(),
        "other frames still read"
    );
    drop(seg);
    let e = check_detect_and_recover(&path, &frames, 2, header_at(&frames, 2));
    assert!(e.to_string().contains("crc32c mismatch"), "{e}");
}

#[test]
fn torn_frame_header_length() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    let at = header_at(&frames, 3);
    patch(&path, at, &0x00ff_ffffu32.to_le_bytes());
    let e = check_detect_and_recover(&path, &frames, 3, at);
    assert!(matches!(e, SegmentError::TornFrame { .. }), "{e}");
}

#[test]
fn corrupt_reserved_bytes_and_padding() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    patch(&path, header_at(&frames, 1) + 12, &[1]);
    let e = check_detect_and_recover(&path, &frames, 1, header_at(&frames, 1));
    assert!(e.to_string().contains("reserved bytes not zero"), "{e}");

    let (path, frames) = {
        let d = dir.path().join("b");
        std::fs::create_dir(&d).unwrap();
        sealed(&d)
    };
    // Frame 0 has 10 payload bytes, so 6 bytes of padding follow.
    patch(&path, frames[0].0 + 12, &[9]);
    let e = check_detect_and_recover(&path, &frames, 0, header_at(&frames, 0));
    assert!(e.to_string().contains("padding"), "{e}");
}

#[test]
fn random_garbage_after_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = sealed(dir.path());
    let end = std::fs::metadata(&path).unwrap().len();
    // Deterministic pseudo-random bytes (xorshift), first byte non-zero.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..1000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect();
    patch(&path, end, &garbage);
    check_detect_and_recover(&path, &frames, 5, end);
}

#[test]
fn garbage_in_the_zero_tail_of_an_unsealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::Packets, 0, 8192).unwrap();
    let frames: Vec<_> = (0..3u8)
        .map(|i| (w.append(&[i + 1; 50]).unwrap().unwrap(), vec![i + 1; 50]))
        .collect();
    let end = w.used();
    drop(w);
    // This writer's files end at their last frame; one that allocated its capacity up front
    // (the format allows it) leaves a zero tail.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(8192)
        .unwrap();
    // An end marker with a stray checksum is not a clean end.
    patch(&path, end + 4, &[0xaa]);
    let e = check_detect_and_recover(&path, &frames, 3, end);
    assert!(e.to_string().contains("end marker"), "{e}");
}

#[test]
fn unsealed_clean_segment_recovers_to_its_used_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::Packets, 0, 8192).unwrap();
    w.append(b"one").unwrap();
    w.append(b"two").unwrap();
    let used = w.used();
    drop(w);
    // Dropping the writer wrote out its buffer: the file ends after the last frame, as if sealed.
    let r = recover(&path).unwrap();
    assert!(r.damage.is_none());
    assert_eq!(
        (r.good_frames, r.good_bytes, r.truncated_bytes),
        (2, used, 0)
    );
    // A zero tail (a file allocated up front) is cut.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let r = recover(&path).unwrap();
    assert!(r.damage.is_none());
    assert_eq!(
        (r.good_frames, r.good_bytes, r.truncated_bytes),
        (2, used, 8192 - used)
    );
    let (good, err) = scan(&path);
    assert!(err.is_none());
    assert_eq!(good, vec![b"one".to_vec(), b"two".to_vec()]);
}

fn header_file(dir: &Path, edit: impl FnOnce(&mut [u8])) -> PathBuf {
    let path = dir.join("h.seg");
    let _ = std::fs::remove_file(&path);
    let w = SegmentWriter::create(&path, SegmentKind::Packets, 0, 4096).unwrap();
    w.seal().unwrap();
    let mut b = std::fs::read(&path).unwrap();
    edit(&mut b);
    std::fs::write(&path, &b).unwrap();
    path
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c_of(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Bitwise crc32c (Castagnoli), so the test does not trust the code under test.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn wrong_magic_version_kind_and_header_crc_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shown = |p: &Path| p.display().to_string();

    let p = header_file(dir.path(), |b| b[..8].copy_from_slice(b"PCAPNG\0\0"));
    let e = Segment::open(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&shown(&p)) && e.contains("not a tapline segment"),
        "{e}"
    );
    assert!(recover(&p).is_err(), "recover refuses a foreign file");

    let p = header_file(dir.path(), |b| {
        b[8..10].copy_from_slice(&2u16.to_le_bytes());
        fix_crc(b);
    });
    let e = Segment::open(&p).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: segment format version 2, this build reads {FORMAT_VERSION}",
            shown(&p)
        )
    );

    let p = header_file(dir.path(), |b| {
        b[10..12].copy_from_slice(&77u16.to_le_bytes());
        fix_crc(b);
    });
    let e = Segment::open(&p).unwrap_err().to_string();
    assert!(e.contains("unknown segment kind 77"), "{e}");

    let p = header_file(dir.path(), |_| {});
    let e = Segment::open_kind(&p, SegmentKind::RRPairs)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{}: segment kind is packets, expected rrpairs", shown(&p))
    );
    assert!(Segment::open_kind(&p, SegmentKind::Packets).is_ok());

    let p = header_file(dir.path(), |b| b[17] ^= 4);
    let e = Segment::open(&p).unwrap_err();
    assert!(matches!(e, SegmentError::HeaderCrc { .. }), "{e}");

    let p = dir.path().join("empty.seg");
    std::fs::write(&p, b"").unwrap();
    let e = Segment::open(&p).unwrap_err().to_string();
    assert!(e.contains("not a tapline segment"), "{e}");

    let p = dir.path().join("missing.seg");
    let e = Segment::open(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&shown(&p)) && e.contains("opening segment"),
        "{e}"
    );
}

#[test]
fn header_crc_matches_reference() {
    // The writer's header checksum is standard crc32c.
    let dir = tempfile::tempdir().unwrap();
    let p = header_file(dir.path(), |_| {});
    let b = std::fs::read(&p).unwrap();
    assert_eq!(
        u32::from_le_bytes(b[60..64].try_into().unwrap()),
        crc32c_of(&b[..60])
    );
    assert_eq!(crc32c_of(b"123456789"), 0xe306_9283);
}

#[test]
fn a_writer_that_dies_keeps_what_it_published() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::Packets, 0, 8 << 20).unwrap();
    w.append(b"published").unwrap();
    w.publish().unwrap();
    w.append(b"only buffered").unwrap();
    // No destructor runs when a process dies: the buffer is lost, the file is not trimmed.
    std::mem::forget(w);
    let (good, err) = scan(&path);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(good, vec![b"published".to_vec()]);
    let r = recover(&path).unwrap();
    assert_eq!((r.good_frames, r.truncated_bytes), (1, 0));
    // Blocks allocated ahead past the end of the file were given back.
    let meta = std::fs::metadata(&path).unwrap();
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes",
        meta.blocks() * 512
    );
}
