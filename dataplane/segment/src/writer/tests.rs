//! Unit tests of the writer: publication, buffering, direct writes, sealing.

use super::*;
use crate::buffer::{DIRECT_MIN, STAGE_LEN};

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
fn large_payloads_go_straight_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 8 << 20);
    let s = w.shared();
    let small = w.append(b"small").unwrap().unwrap();
    let big: Vec<u8> = (0..DIRECT_MIN + 3).map(|i| (i % 253) as u8).collect();
    let at = w.append(&big).unwrap().unwrap();
    // Writing the large frame wrote the buffered one before it.
    assert_eq!(w.pending(), 0);
    assert_eq!(s.payload(small).unwrap(), b"small");
    assert_eq!(s.payload(at).unwrap(), big.as_slice());
    assert_eq!(at % 16, 0);
    assert_eq!(w.used(), at + pad16(big.len() as u64));
    let after = w.append(b"after").unwrap().unwrap();
    assert_eq!(after, at + pad16(big.len() as u64) + FRAME_HEADER_LEN);
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
