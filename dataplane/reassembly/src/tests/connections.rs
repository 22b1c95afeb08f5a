//! Connection identity: who is the client, flow keys, ids, reuse, idle timeout, eviction.

use super::*;
use crate::table::LRU_GRANULARITY_NS;

#[test]
fn syn_sender_is_client_and_both_directions_share_a_flow() {
    let (mut r, mut sink, conn, id) = open();
    let info = sink.opened()[0];
    assert_eq!((info.client, info.server), (conn.client, conn.server));
    assert!(info.saw_syn);
    assert_eq!(info.first_ts_ns, conn.ts);
    r.segment(&conn.c(0, b"GET"), &mut sink);
    r.segment(&conn.s(0, b"200"), &mut sink);
    assert_eq!(r.flow_count(), 1);
    assert_eq!(sink.text(id, C), "GET");
    assert_eq!(sink.text(id, S), "200");
    assert_eq!(r.stats().flows_opened, 1);
    assert_eq!(r.stats().midstream_pickups, 0);
}

#[test]
fn syn_ack_seen_first_makes_its_destination_the_client() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    r.segment(&conn.seg(S, SISN, CISN + 1, SYN | ACK, b""), &mut sink);
    r.segment(&conn.c(0, b"hello"), &mut sink);
    r.segment(&conn.s(0, b"world"), &mut sink);
    let info = sink.opened()[0];
    assert_eq!((info.client, info.server), (conn.client, conn.server));
    assert!(info.saw_syn);
    // Both directions start at their true first byte.
    assert_eq!(sink.text(info.id, C), "hello");
    assert_eq!(sink.text(info.id, S), "world");
}

#[test]
fn midstream_pickup_takes_the_higher_port_as_client() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    // The server speaks first; its segment's seq starts that direction.
    r.segment(&conn.seg(S, 777, 0, ACK, b"late"), &mut sink);
    r.segment(&conn.seg(C, 999, 781, ACK, b"more"), &mut sink);
    r.segment(&conn.seg(S, 781, 1003, ACK, b"!"), &mut sink);
    let info = sink.opened()[0];
    assert_eq!((info.client, info.server), (conn.client, conn.server));
    assert!(!info.saw_syn);
    assert_eq!(sink.text(info.id, S), "late!");
    assert_eq!(sink.text(info.id, C), "more");
    assert_eq!(r.stats().midstream_pickups, 1);
}

#[test]
fn midstream_pickup_with_equal_ports_takes_the_first_sender_as_client() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let a = SocketAddr::from(([10, 0, 0, 9], 5000));
    let b = SocketAddr::from(([10, 0, 0, 1], 5000));
    let conn = Conn {
        client: a,
        server: b,
        ts: 1,
    };
    r.segment(&conn.seg(C, 1, 0, ACK, b"x"), &mut sink);
    let info = sink.opened()[0];
    assert_eq!((info.client, info.server), (a, b));
}

#[test]
fn segments_that_cannot_start_a_connection_are_untracked() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    r.segment(&conn.seg(C, 1, 1, ACK, b""), &mut sink);
    r.segment(&conn.seg(C, 1, 1, RST, b""), &mut sink);
    r.segment(&conn.seg(C, 1, 1, FIN | ACK, b""), &mut sink);
    r.segment(&conn.seg(C, 1, 1, RST, b"data"), &mut sink);
    assert!(sink.events.is_empty());
    assert_eq!(r.stats().untracked, 4);
    assert_eq!(r.flow_count(), 0);
}

#[test]
fn connection_ids_are_unique_across_flows() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    for port in 40000..40010 {
        Conn::new(port).handshake(&mut r, &mut sink);
    }
    let mut ids: Vec<ConnId> = sink.opened().iter().map(|i| i.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(r.flow_count(), 10);
}

#[test]
fn ipv6_flows_work() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn {
        client: "[2001:db8::1]:50000".parse().unwrap(),
        server: "[2001:db8::2]:443".parse().unwrap(),
        ts: 5,
    };
    conn.handshake(&mut r, &mut sink);
    r.segment(&conn.c(0, b"v6"), &mut sink);
    let id = sink.opened()[0].id;
    assert_eq!(sink.text(id, C), "v6");
}

#[test]
fn new_syn_after_fin_close_opens_a_new_connection() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.seg(C, CISN + 1, SISN + 1, FIN | ACK, b""), &mut sink);
    r.segment(&conn.seg(S, SISN + 1, CISN + 2, FIN | ACK, b""), &mut sink);
    r.segment(&conn.seg(C, CISN + 2, SISN + 2, ACK, b""), &mut sink);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Fin)]);
    assert_eq!(r.flow_count(), 0);
    // A retransmitted FIN or the old SYN do not reopen it.
    r.segment(&conn.seg(C, CISN, 0, SYN, b""), &mut sink);
    r.segment(&conn.seg(C, CISN + 1, SISN + 2, FIN | ACK, b""), &mut sink);
    assert_eq!(sink.opened().len(), 1);
    // A SYN with a new ISN does.
    r.segment(&conn.seg(C, 90_000, 0, SYN, b""), &mut sink);
    r.segment(&conn.seg(C, 90_001, 0, PSH, b"again"), &mut sink);
    let opened = sink.opened();
    assert_eq!(opened.len(), 2);
    assert_ne!(opened[1].id, id);
    assert_eq!(sink.text(opened[1].id, C), "again");
    assert_eq!(
        sink.closes().len(),
        1,
        "the old connection was already closed"
    );
}

#[test]
fn new_syn_on_a_half_closed_connection_closes_it_as_reused() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"req"), &mut sink);
    r.segment(&conn.seg(C, CISN + 4, SISN + 1, FIN | ACK, b""), &mut sink);
    r.segment(&conn.seg(C, CISN + 7, 0, SYN, b""), &mut sink);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Reused)]);
    assert_eq!(sink.opened().len(), 2);
    assert_eq!(r.stats().reused, 1);
    assert_eq!(r.flow_count(), 1);
}

#[test]
fn new_syn_far_outside_the_window_closes_an_open_connection() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"req"), &mut sink);
    // In the window: ignored like a receiver would (challenge ACK).
    r.segment(&conn.seg(C, CISN + 100, 0, SYN, b""), &mut sink);
    assert_eq!(sink.opened().len(), 1);
    assert_eq!(r.stats().ignored_syns, 1);
    // A retransmission of the original SYN: nothing.
    r.segment(&conn.seg(C, CISN, 0, SYN, b""), &mut sink);
    assert_eq!(sink.opened().len(), 1);
    // Far outside: a new connection.
    r.segment(
        &conn.seg(C, CISN.wrapping_add(1 << 31), 0, SYN, b""),
        &mut sink,
    );
    assert_eq!(sink.closes(), vec![(id, CloseReason::Reused)]);
    let opened = sink.opened();
    assert_eq!(opened.len(), 2);
    assert!(opened[1].saw_syn);
    assert_eq!(sink.text(id, C), "req");
}

#[test]
fn syn_after_rst_opens_a_new_connection_and_late_data_is_ignored() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.seg(S, SISN + 1, CISN + 1, RST | ACK, b""), &mut sink);
    r.segment(&conn.c(0, b"late"), &mut sink);
    assert_eq!(r.stats().after_close, 1);
    assert_eq!(sink.opened().len(), 1);
    r.segment(&conn.seg(C, 7, 0, SYN, b""), &mut sink);
    assert_eq!(sink.opened().len(), 2);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Rst)]);
}

#[test]
fn idle_timeout_is_checked_on_the_next_segment() {
    let config = ReassemblyConfig {
        idle_timeout_ns: 1_000,
        ..ReassemblyConfig::default()
    };
    let (mut r, mut sink, mut conn, id) = open_with(config);
    r.segment(&conn.c(0, b"a"), &mut sink);
    conn.ts += 1_000;
    r.segment(&conn.c(1, b"b"), &mut sink);
    assert!(sink.closes().is_empty(), "exactly the timeout is not idle");
    conn.ts += 1_001;
    r.segment(&conn.c(2, b"c"), &mut sink);
    assert_eq!(sink.closes(), vec![(id, CloseReason::IdleTimeout)]);
    // The close is stamped when the timeout ran out, not when it was noticed.
    assert!(
        sink.events
            .contains(&Event::Close(id, conn.ts - 1, CloseReason::IdleTimeout))
    );
    // The data segment picks the connection up again, mid-stream.
    let opened = sink.opened();
    assert_eq!(opened.len(), 2);
    assert!(!opened[1].saw_syn);
    assert_eq!(sink.text(opened[1].id, C), "c");
    assert_eq!(r.stats().idle_timeouts, 1);
}

#[test]
fn expire_and_lazy_timeout_give_each_connection_the_same_events() {
    let config = ReassemblyConfig {
        idle_timeout_ns: 1_000,
        ..ReassemblyConfig::default()
    };
    let run = |expire_every: Option<u64>| {
        let mut r = Reassembler::new(config);
        let mut sink = Recorder::default();
        let mut conns: Vec<Conn> = (0..4).map(|i| Conn::new(40000 + i)).collect();
        for c in &conns {
            c.handshake(&mut r, &mut sink);
        }
        for step in 0..40u32 {
            let i = (step * 7 % 4) as usize;
            let c = &mut conns[i];
            c.ts = 1_000 + u64::from(step) * 300;
            r.segment(&c.c(step, &[b'a' + (step % 26) as u8]), &mut sink);
            if let Some(every) = expire_every
                && u64::from(step) % every == 0
            {
                r.expire(c.ts, &mut sink);
            }
        }
        r.finish(&mut sink);
        sink.per_conn()
    };
    let lazy = run(None);
    assert_eq!(lazy, run(Some(1)));
    assert_eq!(lazy, run(Some(5)));
}

#[test]
fn expire_closes_idle_flows_and_forgets_closed_ones() {
    let config = ReassemblyConfig {
        idle_timeout_ns: 1_000,
        ..ReassemblyConfig::default()
    };
    let (mut r, mut sink, conn, id) = open_with(config);
    let other = Conn::new(40001);
    other.handshake(&mut r, &mut sink);
    r.segment(&other.seg(C, CISN + 1, 0, RST, b""), &mut sink);
    r.segment(&conn.c(1, b"after hole"), &mut sink);
    r.expire(conn.ts + 1_000, &mut sink);
    assert_eq!(r.flow_count(), 1);
    r.expire(conn.ts + 1_001, &mut sink);
    assert_eq!(r.flow_count(), 0);
    assert_eq!(sink.text(id, C), "<1>after hole");
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn full_table_evicts_the_least_recently_active_flow() {
    let config = ReassemblyConfig {
        max_flows: 3,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let mut sink = Recorder::default();
    let mut conns: Vec<Conn> = (0..4).map(|i| Conn::new(40000 + i)).collect();
    // Recency counts to within LRU_GRANULARITY_NS of capture time: space the activity out.
    let step = LRU_GRANULARITY_NS;
    conns[0].handshake(&mut r, &mut sink);
    conns[1].handshake(&mut r, &mut sink);
    conns[1].ts += step;
    r.segment(&conns[1].c(1, b"buffered"), &mut sink);
    conns[2].ts += 2 * step;
    conns[2].handshake(&mut r, &mut sink);
    // Touch the first; the second is now the least recently active.
    conns[0].ts += 3 * step;
    r.segment(&conns[0].c(0, b"x"), &mut sink);
    conns[3].ts += 3 * step;
    conns[3].handshake(&mut r, &mut sink);
    let ids: Vec<ConnId> = sink.opened().iter().map(|i| i.id).collect();
    assert_eq!(sink.closes(), vec![(ids[1], CloseReason::Evicted)]);
    assert_eq!(sink.text(ids[1], C), "<1>buffered");
    assert_eq!(r.stats().evicted_flows, 1);
    assert_eq!(r.flow_count(), 3);
}

#[test]
fn activity_within_the_lru_granularity_does_not_reorder() {
    let config = ReassemblyConfig {
        max_flows: 2,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let mut sink = Recorder::default();
    let mut conns: Vec<Conn> = (0..3).map(|i| Conn::new(40000 + i)).collect();
    conns[0].handshake(&mut r, &mut sink);
    conns[1].handshake(&mut r, &mut sink);
    conns[0].ts += LRU_GRANULARITY_NS - 1;
    r.segment(&conns[0].c(0, b"x"), &mut sink);
    conns[2].handshake(&mut r, &mut sink);
    let ids: Vec<ConnId> = sink.opened().iter().map(|i| i.id).collect();
    assert_eq!(sink.closes(), vec![(ids[0], CloseReason::Evicted)]);
}

#[test]
fn closed_flows_are_evicted_before_open_ones() {
    let config = ReassemblyConfig {
        max_flows: 2,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let mut sink = Recorder::default();
    let a = Conn::new(40000);
    let b = Conn::new(40001);
    let c = Conn::new(40002);
    a.handshake(&mut r, &mut sink);
    b.handshake(&mut r, &mut sink);
    r.segment(&b.seg(C, CISN + 1, 0, RST, b""), &mut sink);
    c.handshake(&mut r, &mut sink);
    assert_eq!(r.stats().evicted_flows, 0);
    assert_eq!(r.flow_count(), 2);
    assert_eq!(sink.closes().len(), 1);
}

#[test]
fn simultaneous_open_is_one_connection() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    r.segment(&conn.seg(C, CISN, 0, SYN, b""), &mut sink);
    r.segment(&conn.seg(S, SISN, 0, SYN, b""), &mut sink);
    r.segment(&conn.s(0, b"hi"), &mut sink);
    assert_eq!(sink.opened().len(), 1);
    assert_eq!(sink.text(sink.opened()[0].id, S), "hi");
}

#[test]
fn syn_from_the_server_side_after_data_is_a_new_connection() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"req"), &mut sink);
    // Only the server's SYN-ACK is known for its side, with ISN SISN: a new ISN far away.
    r.segment(&conn.seg(S, SISN + (1 << 30), 0, SYN, b""), &mut sink);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Reused)]);
    let opened = sink.opened();
    assert_eq!(
        (opened[1].client, opened[1].server),
        (conn.server, conn.client)
    );
}
