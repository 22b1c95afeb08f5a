//! pnet-probe IF [SECONDS]: counts the packets pnet's datalink channel (promiscuous, one
//! `recvfrom` per packet) receives on IF, stopping 2 s after the traffic stops.

// Counts packets received on an interface through pnet's datalink channel (recvfrom per packet,
// promiscuous) for N seconds, or until idle for 2 s after the first packet.
use std::time::{Duration, Instant};
fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("IF");
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .expect("no such interface");
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(100)),
        promiscuous: true,
        ..Default::default()
    };
    let (_tx, mut rx) = match pnet_datalink::channel(&iface, config).expect("channel") {
        pnet_datalink::Channel::Ethernet(tx, rx) => (tx, rx),
        _ => panic!("unknown channel"),
    };
    eprintln!("listening");
    let start = Instant::now();
    let (mut n, mut bytes, mut last) = (0u64, 0u64, None::<Instant>);
    while start.elapsed() < Duration::from_secs(secs) {
        match rx.next() {
            Ok(p) => {
                n += 1;
                bytes += p.len() as u64;
                last = Some(Instant::now());
            }
            Err(_) => {
                if last.is_some_and(|l| l.elapsed() > Duration::from_secs(2)) {
                    break;
                }
            }
        }
    }
    println!("{n} packets {bytes} bytes");
}
