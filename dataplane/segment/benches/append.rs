//! Append throughput: 200-byte frames (the import path's packets and small records) and 64 KiB
//! frames, into one fresh segment (`SegmentWriter`: the copy into the staging buffer, the
//! checksum, and the `pwrite`s of full buffers into the page cache), the same with a `publish`
//! every 512 frames (as the import dispatcher does before handing a batch to a worker), and
//! through a rolling directory (`SegmentDirWriter`, roll-over and sealing included).
//!
//! Wall-clock times; on a shared machine, `examples/append_cpu.rs` measures CPU time instead.
//!
//! Run: `cargo bench -p tapline-segment --bench append`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tapline_segment::{Retention, SegmentDirWriter, SegmentKind, SegmentWriter};

/// Payload bytes appended per measured batch.
const BYTES_PER_BATCH: usize = 4 << 20;

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("append");
    for size in [200usize, 64 << 10] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let frames = (BYTES_PER_BATCH / size) as u64;
        let capacity = (64 + frames * (16 + (size as u64).div_ceil(16) * 16)).div_ceil(4096) * 4096;
        group.throughput(Throughput::Bytes(size as u64 * frames));

        let mut n = 0u64;
        for publish_every in [0u64, 512] {
            let name = if publish_every == 0 {
                format!("segment_writer/{size}B")
            } else {
                format!("segment_writer_publish_{publish_every}/{size}B")
            };
            let mut last: Option<PathBuf> = None;
            group.bench_function(name, |b| {
                b.iter_batched_ref(
                    || {
                        if let Some(p) = last.take() {
                            let _ = std::fs::remove_file(p);
                        }
                        n += 1;
                        let p = dir.path().join(format!("w-{size}-{n}.seg"));
                        last = Some(p.clone());
                        SegmentWriter::create(&p, SegmentKind::Packets, n, capacity)
                            .expect("create")
                    },
                    |w| {
                        for i in 1..=frames {
                            black_box(w.append(black_box(&payload)).expect("append"));
                            if publish_every != 0 && i % publish_every == 0 {
                                w.publish().expect("publish");
                            }
                        }
                        w.publish().expect("publish");
                    },
                    BatchSize::PerIteration,
                );
            });
        }

        let ring_dir = dir.path().join(format!("ring-{size}"));
        let retention = Retention {
            max_bytes: Some(256 << 20),
            max_age: None,
        };
        let mut ring =
            SegmentDirWriter::create(&ring_dir, SegmentKind::Packets, 64 << 20, retention)
                .expect("dir writer");
        group.bench_function(format!("dir_writer/{size}B"), |b| {
            b.iter(|| {
                for _ in 0..frames {
                    black_box(ring.append(black_box(&payload)).expect("append"));
                }
            });
        });
        let summary = ring.finish().expect("finish");
        eprintln!("dir_writer/{size}B: {summary:?}");
    }
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
