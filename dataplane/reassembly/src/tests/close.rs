//! SYN, FIN and RST handling, and the end of input.

use super::*;

#[test]
fn fin_consumes_one_sequence_number_and_both_fins_close() {
    let (mut r, mut sink, mut conn, id) = open();
    r.segment(&conn.c(0, b"abc"), &mut sink);
    conn.ts = 2_000;
    r.segment(&conn.seg(C, CISN + 4, SISN + 1, FIN | ACK, b""), &mut sink);
    assert!(sink.ended(id, C));
    assert!(sink.events.contains(&Event::End(id, C, 2_000)));
    // The server's data starts right after its SYN; its ACK covers the client's FIN.
    r.segment(&conn.seg(S, SISN + 1, CISN + 5, ACK, b"xyz"), &mut sink);
    assert!(sink.closes().is_empty());
    conn.ts = 3_000;
    r.segment(&conn.seg(S, SISN + 4, CISN + 5, FIN | ACK, b""), &mut sink);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Fin)]);
    assert!(
        sink.events
            .contains(&Event::Close(id, 3_000, CloseReason::Fin))
    );
    assert_eq!(sink.text(id, S), "xyz");
    // The final ACK and a retransmitted FIN hit the closed entry quietly.
    r.segment(&conn.seg(C, CISN + 5, SISN + 5, ACK, b""), &mut sink);
    r.segment(&conn.seg(S, SISN + 4, CISN + 5, FIN | ACK, b""), &mut sink);
    assert_eq!(sink.closes().len(), 1);
    assert_eq!(r.stats().fin_closes, 1);
    assert_eq!(r.flow_count(), 0);
}

#[test]
fn fin_with_data_in_the_same_segment() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.seg(C, CISN + 1, 0, FIN | PSH, b"bye"), &mut sink);
    assert_eq!(sink.text(id, C), "bye");
    assert!(sink.ended(id, C));
}

#[test]
fn end_waits_until_bytes_before_a_reordered_fin_arrive() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.seg(C, CISN + 8, 0, FIN, b""), &mut sink);
    r.segment(&conn.c(3, b"defg"), &mut sink);
    assert!(!sink.ended(id, C));
    r.segment(&conn.c(0, b"abc"), &mut sink);
    assert!(sink.ended(id, C));
    assert_eq!(sink.text(id, C), "abcdefg");
    let end_at = sink.events.iter().position(|e| matches!(e, Event::End(..)));
    let last_data = sink
        .events
        .iter()
        .rposition(|e| matches!(e, Event::Data(..)));
    assert!(end_at > last_data);
}

#[test]
fn acknowledged_fin_gaps_the_hole_before_it() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"ab"), &mut sink);
    r.segment(&conn.seg(C, CISN + 5, 0, FIN | PSH, b"fg"), &mut sink);
    assert!(!sink.ended(id, C));
    // The server got everything, FIN included.
    r.segment(&conn.seg(S, SISN + 1, CISN + 8, ACK, b""), &mut sink);
    assert_eq!(sink.text(id, C), "ab<2>fg");
    assert!(sink.ended(id, C));
}

#[test]
fn data_beyond_fin_is_ignored_and_counted() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(5, b"buffered-past-fin"), &mut sink);
    r.segment(&conn.seg(C, CISN + 1, 0, FIN | PSH, b"abc"), &mut sink);
    r.segment(&conn.c(3, b"zz"), &mut sink);
    r.segment(&conn.c(2, b"cQ"), &mut sink);
    assert_eq!(sink.text(id, C), "abc");
    assert!(sink.ended(id, C));
    // The buffered run, the segment wholly beyond and the one straddling the FIN.
    assert_eq!(r.stats().after_close, 3);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn rst_delivers_buffered_bytes_with_gaps_and_closes_at_once() {
    let (mut r, mut sink, mut conn, id) = open();
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(5, b"fg"), &mut sink);
    r.segment(&conn.s(2, b"late"), &mut sink);
    conn.ts = 7_000;
    r.segment(&conn.seg(S, SISN + 1, 0, RST, b"rst payload"), &mut sink);
    assert_eq!(sink.text(id, C), "abc<2>fg");
    assert_eq!(sink.text(id, S), "<2>late");
    assert_eq!(sink.closes(), vec![(id, CloseReason::Rst)]);
    assert!(
        sink.events
            .contains(&Event::Close(id, 7_000, CloseReason::Rst))
    );
    assert!(!sink.ended(id, C));
    assert_eq!(r.flow_count(), 0);
    assert_eq!(r.buffered_bytes(), 0);
    // The RST's payload and data after it are not delivered.
    r.segment(&conn.c(3, b"de"), &mut sink);
    assert_eq!(r.stats().after_close, 2);
    assert_eq!(r.stats().rst_closes, 1);
    assert_eq!(sink.text(id, C), "abc<2>fg");
}

#[test]
fn syn_payload_starts_at_offset_zero() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    r.segment(&conn.seg(C, CISN, 0, SYN, b"fast"), &mut sink);
    r.segment(&conn.c(4, b"open"), &mut sink);
    let id = sink.opened()[0].id;
    assert_eq!(sink.text(id, C), "fastopen");
}

#[test]
fn finish_delivers_buffered_bytes_with_gaps_ends_and_closes_every_flow() {
    let (mut r, mut sink, mut conn, id) = open();
    let other = Conn::new(40001);
    other.handshake(&mut r, &mut sink);
    conn.ts += crate::table::LRU_GRANULARITY_NS;
    r.segment(&conn.c(2, b"cd"), &mut sink);
    r.segment(&conn.c(6, b"gh"), &mut sink);
    r.segment(&conn.seg(S, SISN + 3, 0, FIN | PSH, b"z"), &mut sink);
    r.finish(&mut sink);
    assert_eq!(sink.text(id, C), "<2>cd<2>gh");
    assert_eq!(sink.text(id, S), "<2>z");
    assert!(sink.ended(id, S));
    assert!(!sink.ended(id, C));
    let ids: Vec<ConnId> = sink.opened().iter().map(|i| i.id).collect();
    // Least recently active first.
    assert_eq!(
        sink.closes(),
        vec![
            (ids[1], CloseReason::EndOfInput),
            (ids[0], CloseReason::EndOfInput)
        ]
    );
    assert_eq!(r.flow_count(), 0);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().gaps, 3);
    assert_eq!(r.stats().gap_bytes, 6);
}

#[test]
fn nothing_follows_close() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.seg(C, CISN + 1, 0, RST, b""), &mut sink);
    let n = sink.events.len();
    r.segment(&conn.c(0, b"x"), &mut sink);
    r.segment(&conn.seg(S, SISN + 1, CISN + 1, ACK | FIN, b"y"), &mut sink);
    r.finish(&mut sink);
    assert_eq!(sink.events.len(), n);
    assert_eq!(sink.closes(), vec![(id, CloseReason::Rst)]);
}
