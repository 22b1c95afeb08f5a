//! CPU cost of appending: user + system time per frame (getrusage of the whole process, so the
//! background threads count), for a machine too loaded for wall-clock benchmarks.
//!
//! Run: `cargo run --release -p tapline-segment --example append_cpu -- SIZE MIB [flush|sync]
//! [PUBLISH_EVERY] [DIR]`: appends MIB mebibytes of SIZE-byte payloads through a
//! `SegmentDirWriter` of 64 MiB segments, publishing every PUBLISH_EVERY frames (0: never, as
//! when nothing reads concurrently), and sealing with the given durability.

use std::time::Instant;

use tapline_segment::{Durability, Retention, SegmentDirWriter, SegmentKind};

fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let mib: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(512);
    let durability = match args.get(3).map(String::as_str) {
        Some("sync") => Durability::Sync,
        _ => Durability::Flush,
    };
    let publish_every: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let base = args.get(5).map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!("append-cpu-{}", std::process::id()));
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let frames = (mib << 20) / size as u64;
    let (u0, s0) = cpu_seconds();
    let start = Instant::now();
    let mut w =
        SegmentDirWriter::create(&dir, SegmentKind::Packets, 64 << 20, Retention::default())
            .expect("dir writer")
            .with_durability(durability);
    for i in 1..=frames {
        std::hint::black_box(w.append(&payload).expect("append"));
        if publish_every != 0 && i % publish_every == 0 {
            w.publish().expect("publish");
        }
    }
    let summary = w.finish().expect("finish");
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1) = cpu_seconds();
    let _ = std::fs::remove_dir_all(&dir);
    let (user, sys) = (u1 - u0, s1 - s0);
    println!(
        "{size} B x {frames} ({durability:?}, publish every {publish_every}): user {user:.3} s sys {sys:.3} s wall {wall:.3} s | {:.1} ns/frame CPU ({:.1} user {:.1} sys) | {:.2} GB/s per CPU-second | {} segments",
        (user + sys) * 1e9 / frames as f64,
        user * 1e9 / frames as f64,
        sys * 1e9 / frames as f64,
        (mib << 20) as f64 / (user + sys) / 1e9,
        summary.segments
    );
}
