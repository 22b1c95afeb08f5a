//! Segment directories: roll-over, continuing a sequence, listing, and retention with pins.

// Helpers outside #[test] fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tapline_segment::{
    Durability, FrameRef, Retention, Segment, SegmentDirWriter, SegmentError, SegmentKind,
    dir_segments, max_payload, pin_path, read_dir_segments, segment_path,
};

const CAP: u64 = 4096;

fn payload(i: u32) -> Vec<u8> {
    let mut p = vec![(i % 251) as u8 | 1; 200];
    p[..4].copy_from_slice(&i.to_le_bytes());
    p
}

/// Reads every frame of every segment of `kind` in `dir`, in order.
fn read_all(dir: &Path, kind: SegmentKind) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in read_dir_segments(dir, kind).unwrap() {
        let seg = Segment::open_kind(&p, kind).unwrap();
        for f in seg.frames() {
            out.push(f.unwrap().payload.to_vec());
        }
    }
    out
}

#[test]
fn rolls_over_and_reads_back_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cap");
    let mut w =
        SegmentDirWriter::create(&dir, SegmentKind::Packets, CAP, Retention::default()).unwrap();
    let mut refs = Vec::new();
    for i in 0..100 {
        let r = w.append(&payload(i)).unwrap();
        if i == 18 {
            // The roll-over published the full segment.
            let prev: &FrameRef = &refs[17];
            assert_eq!(prev.payload().unwrap(), payload(17).as_slice());
        }
        assert!(
            matches!(r.payload(), Err(SegmentError::BadOffset { .. })),
            "readable only once published"
        );
        w.publish().unwrap();
        assert_eq!(r.payload().unwrap(), payload(i).as_slice());
        assert_eq!(r.offset % 16, 0);
        assert_eq!(w.current().sequence(), r.sequence);
        refs.push(r);
    }
    // 4096 − 64 = 4032 bytes hold 18 frames of 16 + 208.
    assert_eq!(refs[17].sequence, 0);
    assert_eq!(refs[18].sequence, 1);
    assert!(refs.windows(2).all(|w| w[0].sequence <= w[1].sequence));
    // Handles to earlier, sealed segments still read.
    assert_eq!(refs[0].payload().unwrap(), payload(0).as_slice());

    let summary = w.finish().unwrap();
    assert_eq!(summary.frames, 100);
    assert_eq!(summary.bytes, 100 * 200);
    assert_eq!(summary.segments, 6);
    assert_eq!(summary.recycled, 0);

    let listed = read_dir_segments(&dir, SegmentKind::Packets).unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(listed[0], segment_path(&dir, SegmentKind::Packets, 0));
    assert_eq!(listed[0].file_name().unwrap(), "packets-000000.seg");
    let all = read_all(&dir, SegmentKind::Packets);
    assert_eq!(all, (0..100).map(payload).collect::<Vec<_>>());
}

#[test]
fn continues_after_the_highest_sequence_and_lists_only_its_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w =
        SegmentDirWriter::create(dir, SegmentKind::RRPairs, CAP, Retention::default()).unwrap();
    for i in 0..40 {
        w.append(&payload(i)).unwrap();
    }
    w.finish().unwrap();
    // Noise the listing must ignore.
    std::fs::write(dir.join("rrpairs-000001.seg.pin"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), b"").unwrap();
    let other =
        SegmentDirWriter::create(dir, SegmentKind::Packets, CAP, Retention::default()).unwrap();
    assert_eq!(other.current().sequence(), 0, "sequences are per kind");
    drop(other);

    let before = dir_segments(dir, SegmentKind::RRPairs).unwrap();
    let last = before.last().unwrap().0;
    assert_eq!(
        before.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (0..=last).collect::<Vec<_>>()
    );
    let mut w =
        SegmentDirWriter::create(dir, SegmentKind::RRPairs, CAP, Retention::default()).unwrap();
    assert_eq!(w.current().sequence(), last + 1);
    let r = w.append(&payload(40)).unwrap();
    assert_eq!(r.sequence, last + 1);
    w.finish().unwrap();
    assert_eq!(
        read_all(dir, SegmentKind::RRPairs),
        (0..41).map(payload).collect::<Vec<_>>()
    );
}

#[test]
fn too_large_and_empty_payloads_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w =
        SegmentDirWriter::create(tmp.path(), SegmentKind::Packets, CAP, Retention::default())
            .unwrap();
    let max = max_payload(CAP);
    assert_eq!(max, CAP - 64 - 16);
    let e = w.append(&vec![0u8; max as usize + 1]).unwrap_err();
    assert!(
        matches!(e, SegmentError::PayloadTooLarge { len, .. } if len == max + 1),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("payload of {} bytes", max + 1)),
        "{e}"
    );
    assert!(matches!(
        w.append(b""),
        Err(SegmentError::EmptyPayload { .. })
    ));
    // The largest payload fits, in a segment of its own.
    w.append(b"small").unwrap();
    let r = w.append(&vec![1u8; max as usize]).unwrap();
    assert_eq!(r.sequence, 1);
    let s = w.finish().unwrap();
    assert_eq!((s.segments, s.frames), (2, 2));
}

#[test]
fn finish_without_appends_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let w = SegmentDirWriter::create(
        tmp.path(),
        SegmentKind::TlsChunks,
        CAP,
        Retention::default(),
    )
    .unwrap();
    let s = w.finish().unwrap();
    assert_eq!(s.segments, 0);
    assert!(
        read_dir_segments(tmp.path(), SegmentKind::TlsChunks)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_by_bytes_recycles_the_oldest_unpinned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Three files' worth: the current one (4096) plus two sealed ones (each 64 + 18 × 224 = 4096).
    let retention = Retention {
        max_bytes: Some(3 * CAP),
        max_age: None,
    };
    let mut w = SegmentDirWriter::create(dir, SegmentKind::Packets, CAP, retention).unwrap();
    // Pin segment 1 before it exists; it will be skipped.
    std::fs::write(pin_path(&segment_path(dir, SegmentKind::Packets, 1)), b"").unwrap();
    for i in 0..18 * 5 + 1 {
        w.append(&payload(i)).unwrap();
    }
    let s = w.finish().unwrap();
    // Segments 0..=4 are full and sealed, 5 is current (counted at its capacity). Over the
    // limit, 0 went first, then 1 was pinned so 2 and 3 went; 1, 4, 5 remain.
    let left: Vec<u64> = dir_segments(dir, SegmentKind::Packets)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![1, 4, 5]);
    assert_eq!(s.recycled, 3);
    assert_eq!(s.recycled_bytes, 3 * CAP);
    assert_eq!(s.segments, 6);
    // What is left still reads: segment 1 (frames 18..36), 4 and 5.
    let all = read_all(dir, SegmentKind::Packets);
    let expect: Vec<_> = (18..36).chain(72..91).map(payload).collect();
    assert_eq!(all, expect);
}

#[test]
fn retention_by_age_recycles_old_unpinned_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w =
        SegmentDirWriter::create(dir, SegmentKind::RRPairs, CAP, Retention::default()).unwrap();
    for i in 0..18 * 3 {
        w.append(&payload(i)).unwrap();
    }
    w.finish().unwrap();
    // Segments 0, 1, 2: make 0 and 1 two hours old, and pin 0.
    let old = SystemTime::now() - Duration::from_secs(7200);
    for seq in [0, 1] {
        let f = File::options()
            .write(true)
            .open(segment_path(dir, SegmentKind::RRPairs, seq))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    std::fs::write(pin_path(&segment_path(dir, SegmentKind::RRPairs, 0)), b"").unwrap();

    let retention = Retention {
        max_bytes: None,
        max_age: Some(Duration::from_secs(3600)),
    };
    let mut w = SegmentDirWriter::create(dir, SegmentKind::RRPairs, CAP, retention).unwrap();
    assert_eq!(w.summary().recycled, 1);
    assert_eq!(w.enforce_retention().unwrap(), 0, "nothing else is old");
    let left: Vec<u64> = dir_segments(dir, SegmentKind::RRPairs)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![0, 2, 3]);
    w.append(b"x").unwrap();
    w.finish().unwrap();
}

#[test]
fn drop_without_finish_leaves_an_unsealed_segment_with_every_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w =
        SegmentDirWriter::create(dir, SegmentKind::Packets, CAP, Retention::default()).unwrap();
    // 18 frames fill segment 0 and 10 go to segment 1.
    for i in 0..28 {
        w.append(&payload(i)).unwrap();
    }
    drop(w);
    let left = read_dir_segments(dir, SegmentKind::Packets).unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        std::fs::metadata(&left[1]).unwrap().len(),
        64 + 10 * 224,
        "the buffer was written out"
    );
    let r = tapline_segment::recover(&left[1]).unwrap();
    assert_eq!((r.good_frames, r.truncated_bytes), (10, 0));
    assert_eq!(
        read_all(dir, SegmentKind::Packets),
        (0..28).map(payload).collect::<Vec<_>>()
    );
}

#[test]
fn readers_on_other_threads_follow_publishes_across_roll_overs() {
    const N: u32 = 20_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ring");
    // 64 KiB segments: about 290 frames each, so dozens of roll-overs.
    let mut w =
        SegmentDirWriter::create(&dir, SegmentKind::Packets, 64 << 10, Retention::default())
            .unwrap()
            .with_durability(Durability::Sync);
    assert_eq!(w.durability(), Durability::Sync);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(u32, FrameRef)>>(8);
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        for batch in rx {
            for (i, r) in batch {
                assert_eq!(r.payload().unwrap(), payload(i).as_slice(), "frame {i}");
                seen += 1;
            }
        }
        seen
    });
    let mut batch = Vec::new();
    for i in 0..N {
        batch.push((i, w.append(&payload(i)).unwrap()));
        if batch.len() == 1 + (i as usize % 300) {
            w.publish().unwrap();
            tx.send(std::mem::take(&mut batch)).unwrap();
        }
    }
    w.publish().unwrap();
    tx.send(batch).unwrap();
    drop(tx);
    assert_eq!(reader.join().unwrap(), N);
    let s = w.finish().unwrap();
    assert!(s.segments > 50, "{s:?}");
    assert_eq!(
        read_all(&dir, SegmentKind::Packets),
        (0..N).map(payload).collect::<Vec<_>>()
    );
}
