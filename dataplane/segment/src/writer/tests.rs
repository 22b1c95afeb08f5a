//! Unit tests of the writer: publication, buffering, sealing.

use super::*;
use crate::buffer::STAGE_LEN;
use crate::format::pad16;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<SharedSegment>();
    fn assert_send<T: Send>() {}
    assert_send::<SegmentWriter>();
}

#[test]
fn create_refuses_existing_file_and_bad_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.seg");
    std::fs::write(&p, b"x").unwrap();
    let e = SegmentWriter::create(&p, SegmentKind::Packets, 0, 4096).unwrap_err();
    assert!(e.to_string().contains("creating segment"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), b"x", "existing file untouched");
    let q = dir.path().join("b.seg");
    let e = SegmentWriter::create(&q, SegmentKind::Packets, 0, 1000).unwrap_err();
    assert!(e.to_string().contains("multiple of 16"), "{e}");
    assert!(!q.exists());
}

#[test]
fn empty_and_unpublished_offsets_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        SegmentWriter::create(&dir.path().join("a.seg"), SegmentKind::Packets, 0, 4096).unwrap();
    assert!(matches!(
        w.append(b""),
        Err(SegmentError::EmptyPayload { .. })
    ));
    let s = w.shared();
    assert!(matches!(s.payload(80), Err(SegmentError::BadOffset { .. })));
    let off = w.append(b"hello").unwrap().unwrap();
    assert_eq!(off, 80);
    assert_eq!(w.pending(), 32);
    assert!(
        matches!(s.payload(off), Err(SegmentError::BadOffset { .. })),
        "unpublished"
    );
    assert_eq!(s.committed(), 64);
    assert_eq!(s.frames().count(), 0);
    w.publish().unwrap();
    assert_eq!(w.pending(), 0);
    assert_eq!(s.committed(), 96);
    assert_eq!(s.payload(off).unwrap(), b"hello");
    w.publish().unwrap(); // nothing pending: no write
    assert!(matches!(s.payload(96), Err(SegmentError::BadOffset { .. })));
    assert!(matches!(s.payload(81), Err(SegmentError::BadOffset { .. })));
    assert!(matches!(s.payload(64), Err(SegmentError::BadOffset { .. })));
}

fn writer(dir: &Path, capacity: u64) -> SegmentWriter {
    SegmentWriter::create(&dir.join("a.seg"), SegmentKind::Packets, 0, capacity).unwrap()
}

#[test]
fn file_grows_as_written_and_holds_the_header_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 1 << 20);
    let p = w.path().to_path_buf();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN);
    w.append(&[1; 20]).unwrap().unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN);
    w.publish().unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN + 48);
    w.seal().unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN + 48);
}

#[test]
fn a_full_buffer_is_written_out_without_publish() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 8 << 20);
    let s = w.shared();
    let payload = [9u8; 1000]; // 1024-byte frames
    let per_buffer = STAGE_LEN / 1024;
    let first = w.append(&payload).unwrap().unwrap();
    for _ in 1..per_buffer {
        w.append(&payload).unwrap().unwrap();
    }
    assert_eq!(
        s.committed(),
        HEADER_LEN,
        "buffer exactly full, not yet written"
    );
    let next = w.append(&payload).unwrap().unwrap();
    assert_eq!(s.committed(), HEADER_LEN + STAGE_LEN as u64);
    assert_eq!(s.payload(first).unwrap(), payload);
    assert!(s.payload(next).is_err());
    assert_eq!(w.pending(), 1024);
}

#[test]
fn large_payloads_are_staged_like_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 8 << 20);
    let s = w.shared();
    let small = w.append(b"small").unwrap().unwrap();
    let big: Vec<u8> = (0..100_003).map(|i| (i % 253) as u8).collect();
    let at = w.append(&big).unwrap().unwrap();
    assert_eq!(at % 16, 0);
    assert_eq!(w.used(), at + pad16(big.len() as u64));
    let after = w.append(b"after").unwrap().unwrap();
    assert_eq!(after, at + pad16(big.len() as u64) + FRAME_HEADER_LEN);
    assert!(s.payload(at).is_err(), "not published yet");
    w.publish().unwrap();
    assert_eq!(s.payload(small).unwrap(), b"small");
    assert_eq!(s.payload(at).unwrap(), big.as_slice());
    let path = w.seal().unwrap();
    let seg = crate::Segment::open(&path).unwrap();
    let all: Vec<_> = seg.frames().map(|f| f.unwrap().payload.to_vec()).collect();
    assert_eq!(all, vec![b"small".to_vec(), big, b"after".to_vec()]);
}

#[test]
fn frames_larger_than_the_buffer_are_staged_in_a_larger_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 8 << 20);
    let s = w.shared();
    let len = STAGE_LEN * 2 + 5;
    let at = w
        .append_with(len, |dst| {
            assert_eq!(dst.as_ptr() as usize % 16, 0);
            dst.fill(0xab);
        })
        .unwrap()
        .unwrap();
    let small = w.append_with(3, |dst| dst.copy_from_slice(b"abc")).unwrap();
    w.publish().unwrap();
    assert_eq!(s.payload(at).unwrap().len(), len);
    assert!(s.payload(at).unwrap().iter().all(|&b| b == 0xab));
    assert_eq!(s.payload(small.unwrap()).unwrap(), b"abc");
    // The buffer went back to its usual size once written out.
    w.append_with(STAGE_LEN - 16, |dst| dst.fill(1))
        .unwrap()
        .unwrap();
    assert_eq!(w.buf.len(), STAGE_LEN);
}

#[test]
fn drop_writes_out_the_buffer_and_sync_seals() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 1 << 20);
    let s = w.shared();
    let off = w.append(b"kept").unwrap().unwrap();
    drop(w);
    assert_eq!(s.payload(off).unwrap(), b"kept");

    let mut w =
        SegmentWriter::create(&dir.path().join("b.seg"), SegmentKind::RRPairs, 1, 4096).unwrap();
    assert_eq!(w.durability(), Durability::Flush);
    w.set_durability(Durability::Sync);
    w.append(b"synced").unwrap().unwrap();
    let p = w.seal().unwrap();
    let seg = crate::Segment::open(&p).unwrap();
    assert_eq!(seg.frames().next().unwrap().unwrap().payload, b"synced");
}

/// Bytes of disk the file occupies.
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn blocks_allocated_ahead_are_given_back_at_seal_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 8 << 20;
    let mut w = writer(dir.path(), cap);
    let p = w.path().to_path_buf();
    // On a file system with fallocate, the capacity is allocated but the length is the header.
    let ahead = allocated(&p) >= cap;
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN);
    w.append(&[5; 1000]).unwrap().unwrap();
    w.seal().unwrap();
    assert!(allocated(&p) < 1 << 20, "sealed: {} bytes", allocated(&p));

    let q = dir.path().join("b.seg");
    let mut w = SegmentWriter::create(&q, SegmentKind::Packets, 1, cap).unwrap();
    assert_eq!(allocated(&q) >= cap, ahead);
    w.append(&[5; 1000]).unwrap().unwrap();
    drop(w);
    assert!(allocated(&q) < 1 << 20, "dropped: {} bytes", allocated(&q));
    assert_eq!(std::fs::metadata(&q).unwrap().len(), HEADER_LEN + 1024);
}
