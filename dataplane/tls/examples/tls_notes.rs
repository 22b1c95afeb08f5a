//! Prints the notes and timing of opening a TLS capture of every process (a manual check).
#![allow(clippy::unwrap_used)]
fn main() {
    let start = std::time::Instant::now();
    let mut capture = tapline_tls::TlsCapture::open(&tapline_tls::TlsOptions {
        all_processes: true,
        ..Default::default()
    })
    .unwrap();
    println!("open took {:?}", start.elapsed());
    for note in capture.notes() {
        println!("{note}");
    }
}
