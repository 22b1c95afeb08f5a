//! Writing and reading back: round trips, alignment, full segments, in-place fills, and reads
//! from another thread while the writer appends.

// Helpers outside #[test] fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::mpsc;

use tapline_segment::{
    FRAME_HEADER_LEN, HEADER_LEN, MIN_CAPACITY, Segment, SegmentError, SegmentKind, SegmentWriter,
};

/// Deterministic payload `i`: a length from 1 to 300 and bytes derived from `i`.
fn payload(i: u32) -> Vec<u8> {
    let len = 1 + (i.wrapping_mul(2_654_435_761) % 300) as usize;
    (0..len).map(|j| (i as usize * 7 + j * 13) as u8).collect()
}

fn write(path: &Path, n: u32, capacity: u64) -> Vec<(u64, Vec<u8>)> {
    let mut w = SegmentWriter::create(path, SegmentKind::Packets, 9, capacity).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let p = payload(i);
        let off = w.append(&p).unwrap().unwrap();
        out.push((off, p));
    }
    w.seal().unwrap();
    out
}

#[test]
fn round_trip_and_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packets-000009.seg");
    let written = write(&path, 1000, 1 << 20);

    let seg = Segment::open(&path).unwrap();
    let h = seg.header();
    assert_eq!(h.kind, SegmentKind::Packets);
    assert_eq!(h.sequence, 9);
    assert_eq!(h.capacity, 1 << 20);
    assert!(h.created_ns > 1_600_000_000_000_000_000);

    let frames: Vec<_> = seg.frames().collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), written.len());
    for (f, (off, p)) in frames.iter().zip(&written) {
        assert_eq!(f.offset, *off);
        assert_eq!(f.payload, p.as_slice());
        assert_eq!(f.offset % 16, 0);
        assert_eq!(
            f.payload.as_ptr() as usize % 16,
            0,
            "payload address aligned"
        );
        assert_eq!(seg.payload(*off).unwrap(), p.as_slice());
    }
    // The sealed file ends right after the last frame.
    let last = frames.last().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last.end());

    // The in-memory constructor reads the same and aligns the same.
    let mem = Segment::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let again: Vec<_> = mem.frames().collect::<Result<_, _>>().unwrap();
    assert_eq!(again, frames);
    assert!(
        again
            .iter()
            .all(|f| (f.payload.as_ptr() as usize).is_multiple_of(16))
    );
}

#[test]
fn unsealed_segment_reads_up_to_end_marker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::TlsChunks, 0, 64 << 10).unwrap();
    for i in 0..10 {
        w.append(&payload(i)).unwrap().unwrap();
    }
    let used = w.used();
    drop(w); // no seal: the buffer is written out, the file ends after the last frame
    assert_eq!(std::fs::metadata(&path).unwrap().len(), used);
    // A file allocated to its capacity up front has zeros after the last frame.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(64 << 10)
        .unwrap();
    let seg = Segment::open(&path).unwrap();
    let frames: Vec<_> = seg.frames().collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 10);
    assert_eq!(frames[3].payload, payload(3).as_slice());
}

#[test]
fn full_segment_returns_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    // Header 64 + three frames of 16 + 32 bytes.
    let mut w = SegmentWriter::create(&path, SegmentKind::RRPairs, 0, 64 + 3 * 48).unwrap();
    assert_eq!(w.remaining(), 144);
    for _ in 0..3 {
        assert!(w.append(&[7u8; 20]).unwrap().is_some());
    }
    assert_eq!(w.used(), 64 + 144);
    assert_eq!(w.remaining(), 0);
    assert_eq!(w.append(&[1]).unwrap(), None);
    let mut called = false;
    assert_eq!(w.append_with(1, |_| called = true).unwrap(), None);
    assert!(!called, "fill is not called when the frame does not fit");
    assert_eq!(w.frame_count(), 3);
    w.seal().unwrap();
    assert_eq!(Segment::open(&path).unwrap().frames().count(), 3);

    // A smaller frame can still fit after a larger one did not.
    let path = dir.path().join("b.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::RRPairs, 0, MIN_CAPACITY + 32).unwrap();
    assert_eq!(w.append(&[1u8; 64]).unwrap(), None);
    assert_eq!(
        w.append(&[1u8; 40]).unwrap(),
        Some(HEADER_LEN + FRAME_HEADER_LEN)
    );
    assert_eq!(w.append(&[1u8; 1]).unwrap(), None);
}

#[test]
fn append_with_fills_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::RRPairs, 3, 4096).unwrap();
    let off = w
        .append_with(33, |dst| {
            assert_eq!(dst.len(), 33);
            assert_eq!(dst.as_ptr() as usize % 16, 0);
            for (i, b) in dst.iter_mut().enumerate() {
                *b = i as u8;
            }
        })
        .unwrap()
        .unwrap();
    let shared = w.shared();
    w.publish().unwrap();
    assert_eq!(
        shared.payload(off).unwrap(),
        (0..33).collect::<Vec<u8>>().as_slice()
    );
    w.seal().unwrap();
    // The handle outlives sealing (and truncation of the file).
    assert_eq!(shared.payload(off).unwrap().len(), 33);
    assert_eq!(shared.sequence(), 3);
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.payload(off).unwrap(), shared.payload(off).unwrap());
}

#[test]
fn oversized_payload_refused_by_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        SegmentWriter::create(&dir.path().join("a.seg"), SegmentKind::Packets, 0, 4096).unwrap();
    assert!(matches!(
        w.append(b""),
        Err(SegmentError::EmptyPayload { .. })
    ));
    // Too large for the u32 length field: refused without touching the buffer.
    let e = w
        .append_with(u32::MAX as usize + 1, |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(e, SegmentError::PayloadTooLarge { len, .. } if len == 1 << 32),
        "{e}"
    );
}

/// Payload `i` of a mixed stream: mostly small, every 997th a large one.
fn mixed(i: u32) -> Vec<u8> {
    if i.is_multiple_of(997) {
        let len = 40_000 + (i % 100) as usize;
        (0..len).map(|j| (j as u32 ^ i) as u8).collect()
    } else {
        payload(i)
    }
}

#[test]
fn shared_segment_read_from_another_thread_while_appending() {
    const N: u32 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.seg");
    let mut w = SegmentWriter::create(&path, SegmentKind::Packets, 1, 128 << 20).unwrap();
    let shared = w.shared();
    let (tx, rx) = mpsc::sync_channel::<Vec<(u32, u64)>>(16);

    let reader = std::thread::spawn(move || {
        let mut seen = 0u32;
        for batch in rx {
            for (i, off) in batch {
                assert_eq!(
                    shared.payload(off).unwrap(),
                    mixed(i).as_slice(),
                    "frame {i}"
                );
                seen += 1;
            }
        }
        // Everything published is visible, checksums included.
        let all = shared.frames().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(all.len(), N as usize);
        seen
    });
    // A second reader scans whatever is published while the writer runs.
    let scanner_handle = w.shared();
    let scanner = std::thread::spawn(move || {
        let mut max = 0;
        for _ in 0..50 {
            let frames = scanner_handle
                .frames()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            for f in frames.iter().step_by(101) {
                assert_eq!(f.payload.as_ptr() as usize % 16, 0);
            }
            assert!(frames.len() >= max, "published frames never shrink");
            max = frames.len();
        }
        max
    });

    // Batches of varying size, each published before it is handed over, as the import
    // dispatcher does; full buffers are written out in between on their own.
    let mut batch = Vec::new();
    let mut until = 1;
    for i in 0..N {
        let off = w.append(&mixed(i)).unwrap().unwrap();
        batch.push((i, off));
        until -= 1;
        if until == 0 {
            w.publish().unwrap();
            tx.send(std::mem::take(&mut batch)).unwrap();
            until = 1 + i % 700;
        }
    }
    w.publish().unwrap();
    tx.send(batch).unwrap();
    drop(tx);
    assert_eq!(reader.join().unwrap(), N);
    assert!(scanner.join().unwrap() <= N as usize);
    let path = w.seal().unwrap();
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.frames().count(), N as usize);
}
