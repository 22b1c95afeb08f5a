//! Opens a TLS capture of every process, prints its notes and how long opening took, then
//! prints the plaintext events it sees for `TLS_HOLD_SECS` seconds (default 0): a manual check.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let mut capture = tapline_tls::TlsCapture::open(&tapline_tls::TlsOptions {
        all_processes: true,
        ..Default::default()
    })
    .unwrap();
    println!("open took {:?}", start.elapsed());
    for note in capture.notes() {
        println!("{note}");
    }
    let hold: u64 = std::env::var("TLS_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(hold);
    while Instant::now() < deadline {
        capture
            .drain(&mut |event| {
                println!(
                    "{} pid {} ({}) {:?} -> {:?} {:?}",
                    event.ts_ns,
                    event.pid,
                    event.command(),
                    event.local,
                    event.remote,
                    match event.kind {
                        tapline_tls::TlsEventKind::Data {
                            direction, data, ..
                        } => format!("{direction:?} {} bytes", data.len()),
                        tapline_tls::TlsEventKind::Close => "close".to_owned(),
                    }
                );
            })
            .unwrap();
        for note in capture.notes() {
            println!("{note}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{:?}", capture.counters().unwrap());
}
