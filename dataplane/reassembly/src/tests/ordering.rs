//! Out-of-order delivery, duplicates, overlaps, sequence wrap-around, gaps and buffer bounds.

use super::*;
use crate::{CHUNK_OVERHEAD, OverlapPolicy};

#[test]
fn out_of_order_segments_are_delivered_when_contiguous() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(6, b"ghi"), &mut sink);
    r.segment(&conn.c(3, b"def"), &mut sink);
    assert_eq!(sink.text(id, C), "");
    r.segment(&conn.c(0, b"abc"), &mut sink);
    assert_eq!(sink.text(id, C), "abcdefghi");
    assert_eq!(r.stats().out_of_order, 2);
    assert_eq!(r.stats().delivered_bytes, 9);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn in_order_data_is_the_segment_slice_itself() {
    struct PtrSink(Vec<*const u8>);
    impl StreamSink for PtrSink {
        fn open(&mut self, _: &ConnInfo) {}
        fn data(&mut self, _: ConnId, _: Direction, _: u64, bytes: &[u8]) {
            self.0.push(bytes.as_ptr());
        }
        fn gap(&mut self, _: ConnId, _: Direction, _: u64, _: u64) {}
        fn end(&mut self, _: ConnId, _: Direction, _: u64) {}
        fn close(&mut self, _: ConnId, _: u64, _: CloseReason) {}
    }
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = PtrSink(Vec::new());
    let conn = Conn::new(40000);
    let payload = b"zero copy".to_vec();
    r.segment(&conn.seg(C, CISN, 0, SYN, b""), &mut sink);
    r.segment(&conn.c(0, &payload), &mut sink);
    assert_eq!(sink.0, vec![payload.as_ptr()]);
}

#[test]
fn exact_retransmissions_are_dropped_and_counted() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(6, b"ghi"), &mut sink);
    r.segment(&conn.c(6, b"ghi"), &mut sink);
    r.segment(&conn.c(3, b"def"), &mut sink);
    assert_eq!(sink.text(id, C), "abcdefghi");
    assert_eq!(r.stats().retransmitted, 2);
    assert_eq!(r.stats().partial_duplicates, 0);
    assert_eq!(r.stats().conflicting_overlaps, 0);
}

#[test]
fn partial_duplicates_are_trimmed() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"abcd"), &mut sink);
    r.segment(&conn.c(2, b"cdef"), &mut sink);
    r.segment(&conn.c(8, b"ij"), &mut sink);
    r.segment(&conn.c(7, b"hijk"), &mut sink);
    r.segment(&conn.c(5, b"fgh"), &mut sink);
    assert_eq!(sink.text(id, C), "abcdefghijk");
    assert_eq!(r.stats().partial_duplicates, 3);
    assert_eq!(r.stats().retransmitted, 0);
}

/// Sends `old` (correct bytes at 5..10 of "abcdefghijklmnop") ahead of a hole, then `new` at
/// `new_off`, then the correct bytes before both, and returns the client text and stats.
fn arrange(policy: OverlapPolicy, new_off: u32, new: &[u8]) -> (String, crate::ReassemblyStats) {
    const STREAM: &[u8] = b"abcdefghijklmnop";
    let (mut r, mut sink, conn, id) = open_with(ReassemblyConfig {
        overlap: policy,
        ..ReassemblyConfig::default()
    });
    r.segment(&conn.c(5, &STREAM[5..10]), &mut sink);
    r.segment(&conn.c(new_off, new), &mut sink);
    let fill = new_off.min(5) as usize;
    r.segment(&conn.c(0, &STREAM[..fill]), &mut sink);
    r.finish(&mut sink);
    (sink.text(id, C), r.stats().clone())
}

#[test]
fn overlap_on_the_left_end_of_a_buffered_segment() {
    assert_eq!(arrange(OverlapPolicy::First, 3, b"DEFG").0, "abcDEfghij");
    assert_eq!(arrange(OverlapPolicy::Last, 3, b"DEFG").0, "abcDEFGhij");
    let (text, stats) = arrange(OverlapPolicy::First, 3, b"defg");
    assert_eq!(text, "abcdefghij");
    assert_eq!(
        (stats.partial_duplicates, stats.conflicting_overlaps),
        (1, 0)
    );
}

#[test]
fn overlap_on_the_right_end_of_a_buffered_segment() {
    let (text, stats) = arrange(OverlapPolicy::First, 8, b"IJKL");
    assert_eq!(text, "abcdefghijKL");
    assert_eq!(
        (stats.partial_duplicates, stats.conflicting_overlaps),
        (1, 1)
    );
    assert_eq!(arrange(OverlapPolicy::Last, 8, b"IJKL").0, "abcdefghIJKL");
}

#[test]
fn new_segment_contained_in_a_buffered_one() {
    let (text, stats) = arrange(OverlapPolicy::First, 6, b"GH");
    assert_eq!(text, "abcdefghij");
    assert_eq!((stats.retransmitted, stats.conflicting_overlaps), (0, 1));
    assert_eq!(arrange(OverlapPolicy::Last, 6, b"GH").0, "abcdefGHij");
    let (_, stats) = arrange(OverlapPolicy::Last, 6, b"gh");
    assert_eq!((stats.retransmitted, stats.conflicting_overlaps), (1, 0));
}

#[test]
fn new_segment_containing_a_buffered_one() {
    assert_eq!(
        arrange(OverlapPolicy::First, 4, b"EFGHIJKL").0,
        "abcdEfghijKL"
    );
    assert_eq!(
        arrange(OverlapPolicy::Last, 4, b"EFGHIJKL").0,
        "abcdEFGHIJKL"
    );
}

#[test]
fn in_order_segment_overlapping_a_buffered_one() {
    // The new segment starts at the next expected byte (offset 0) and runs into the buffer.
    assert_eq!(arrange(OverlapPolicy::First, 0, b"ABCDEFG").0, "ABCDEfghij");
    assert_eq!(arrange(OverlapPolicy::Last, 0, b"ABCDEFG").0, "ABCDEFGhij");
    assert_eq!(
        arrange(OverlapPolicy::Last, 0, b"ABCDEFGHIJKLM").0,
        "ABCDEFGHIJKLM"
    );
}

#[test]
fn new_segment_bridging_two_buffered_ones() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(2, b"cd"), &mut sink);
    r.segment(&conn.c(6, b"gh"), &mut sink);
    r.segment(&conn.c(1, b"bcdefghi"), &mut sink);
    r.segment(&conn.c(0, b"a"), &mut sink);
    assert_eq!(sink.text(id, C), "abcdefghi");
    assert_eq!(r.stats().partial_duplicates, 1);
}

#[test]
fn one_byte_segments_in_reverse_order() {
    let (mut r, mut sink, conn, id) = open();
    let text = b"reverse me, one byte at a time";
    for (i, b) in text.iter().enumerate().rev() {
        r.segment(&conn.c(i as u32, std::slice::from_ref(b)), &mut sink);
    }
    assert_eq!(sink.bytes(id, C, 0), text);
    assert_eq!(r.stats().out_of_order, text.len() as u64 - 1);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn header_split_across_segments() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
    for cut in [1, 3, 14, 25, 26, 40, req.len() - 1] {
        let (mut r, mut sink, conn, id) = open();
        r.segment(&conn.c(cut as u32, &req[cut..]), &mut sink);
        r.segment(&conn.c(0, &req[..cut]), &mut sink);
        assert_eq!(sink.bytes(id, C, 0), req, "cut at {cut}");
        let data_events = sink.count(|e| matches!(e, Event::Data(..)));
        assert_eq!(data_events, 2);
    }
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    let isn = u32::MAX - 4;
    r.segment(&conn.seg(C, isn, 0, SYN, b""), &mut sink);
    // Bytes at sequence numbers 2^32-3 .. 2^32+7: the second segment crosses the wrap and is
    // buffered before the first arrives; the third lies wholly past it.
    r.segment(
        &conn.seg(C, isn.wrapping_add(4), 0, PSH, b"defgh"),
        &mut sink,
    );
    r.segment(&conn.seg(C, isn.wrapping_add(9), 0, PSH, b"ijk"), &mut sink);
    r.segment(&conn.seg(C, isn.wrapping_add(1), 0, PSH, b"abc"), &mut sink);
    r.segment(&conn.seg(C, isn.wrapping_add(12), 0, FIN, b""), &mut sink);
    let id = sink.opened()[0].id;
    assert_eq!(sink.text(id, C), "abcdefghijk");
    assert!(sink.ended(id, C));
}

#[test]
fn syn_at_the_top_of_the_sequence_space() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Recorder::default();
    let conn = Conn::new(40000);
    r.segment(&conn.seg(C, u32::MAX, 0, SYN, b""), &mut sink);
    r.segment(&conn.seg(C, 3, 0, PSH, b"def"), &mut sink);
    r.segment(&conn.seg(C, 0, 0, PSH, b"abc"), &mut sink);
    let id = sink.opened()[0].id;
    assert_eq!(sink.text(id, C), "abcdef");
}

#[test]
fn streams_longer_than_four_gib_keep_their_offsets() {
    #[derive(Default)]
    struct Count {
        bytes: u64,
        tail: Vec<u8>,
    }
    impl StreamSink for Count {
        fn open(&mut self, _: &ConnInfo) {}
        fn data(&mut self, _: ConnId, _: Direction, _: u64, bytes: &[u8]) {
            self.bytes += bytes.len() as u64;
            if self.bytes > 1 << 32 {
                self.tail.extend_from_slice(bytes);
            }
        }
        fn gap(&mut self, _: ConnId, _: Direction, _: u64, _: u64) {
            panic!("unexpected gap");
        }
        fn end(&mut self, _: ConnId, _: Direction, _: u64) {}
        fn close(&mut self, _: ConnId, _: u64, _: CloseReason) {}
    }
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Count::default();
    let conn = Conn::new(40000);
    let chunk = vec![b'.'; 65536];
    let isn = 0x7000_0000u32;
    r.segment(&conn.seg(C, isn, 0, SYN, b""), &mut sink);
    let mut seq = isn.wrapping_add(1);
    for _ in 0..65536 {
        r.segment(&conn.seg(C, seq, 0, ACK, &chunk), &mut sink);
        seq = seq.wrapping_add(65536);
    }
    assert_eq!(sink.bytes, 1 << 32);
    // Past 4 GiB, reordering still resolves.
    r.segment(&conn.seg(C, seq.wrapping_add(2), 0, ACK, b"cd"), &mut sink);
    r.segment(&conn.seg(C, seq, 0, ACK, b"ab"), &mut sink);
    assert_eq!(sink.tail, b"abcd");
}

#[test]
fn ack_beyond_a_hole_declares_the_gap() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(6, b"ghi"), &mut sink);
    // The server acknowledges up to offset 9: it got "def", which the capture missed.
    r.segment(&conn.seg(S, SISN + 1, CISN + 1 + 9, ACK, b""), &mut sink);
    assert_eq!(sink.text(id, C), "abc<3>ghi");
    // Acknowledging beyond everything seen: those bytes were missed too.
    r.segment(&conn.seg(S, SISN + 1, CISN + 1 + 12, ACK, b""), &mut sink);
    assert_eq!(sink.text(id, C), "abc<3>ghi<3>");
    r.segment(&conn.c(12, b"m"), &mut sink);
    assert_eq!(sink.text(id, C), "abc<3>ghi<3>m");
    // The bytes arriving after all are late duplicates.
    r.segment(&conn.c(3, b"def"), &mut sink);
    assert_eq!(sink.text(id, C), "abc<3>ghi<3>m");
    assert_eq!(r.stats().gaps, 2);
    assert_eq!(r.stats().gap_bytes, 6);
}

#[test]
fn ack_gap_events_come_before_the_acking_segment_data() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(2, b"cd"), &mut sink);
    r.segment(
        &conn.seg(S, SISN + 1, CISN + 5, ACK | PSH, b"resp"),
        &mut sink,
    );
    let kinds: Vec<&str> = sink
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Gap(_, d, ..) if *d == C => Some("cgap"),
            Event::Data(_, d, ..) if *d == C => Some("cdata"),
            Event::Data(_, d, ..) if *d == S => Some("sdata"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["cgap", "cdata", "sdata"]);
    assert_eq!(sink.text(id, C), "<2>cd");
}

#[test]
fn acks_behind_or_absurdly_far_ahead_are_ignored() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(6, b"ghi"), &mut sink);
    r.segment(&conn.seg(S, SISN + 1, CISN, ACK, b""), &mut sink);
    r.segment(
        &conn.seg(S, SISN + 1, CISN + (1 << 30) + 100, ACK, b""),
        &mut sink,
    );
    assert_eq!(sink.text(id, C), "abc");
    r.segment(&conn.c(3, b"def"), &mut sink);
    assert_eq!(sink.text(id, C), "abcdefghi");
}

#[test]
fn per_direction_overflow_gives_up_the_oldest_hole() {
    let limit = 2 * CHUNK_OVERHEAD + 20;
    let (mut r, mut sink, conn, id) = open_with(ReassemblyConfig {
        max_buffered_per_direction: limit,
        ..ReassemblyConfig::default()
    });
    let stream: Vec<u8> = (b'a'..=b'z').chain(b'A'..=b'Z').collect();
    r.segment(&conn.c(1, &stream[1..11]), &mut sink);
    r.segment(&conn.c(20, &stream[20..30]), &mut sink);
    assert!(r.buffered_bytes() <= limit);
    r.segment(&conn.c(40, &stream[40..50]), &mut sink);
    assert!(r.buffered_bytes() <= limit);
    assert_eq!(r.stats().buffer_overflows, 1);
    assert_eq!(sink.text(id, C), "<1>bcdefghijk");
    // The hole at 11..20 can still be filled.
    r.segment(&conn.c(11, &stream[11..20]), &mut sink);
    assert_eq!(sink.text(id, C), "<1>bcdefghijklmnopqrstuvwxyzABCD");
    r.finish(&mut sink);
    assert_eq!(
        sink.text(id, C),
        "<1>bcdefghijklmnopqrstuvwxyzABCD<10>OPQRSTUVWX"
    );
}

#[test]
fn overflow_of_a_segment_ahead_of_everything_held() {
    let (mut r, mut sink, conn, id) = open_with(ReassemblyConfig {
        max_buffered_per_direction: CHUNK_OVERHEAD + 4,
        ..ReassemblyConfig::default()
    });
    r.segment(&conn.c(10, b"klmn"), &mut sink);
    // Lies before the held run: it becomes in order after a gap and runs into the held bytes.
    r.segment(&conn.c(5, b"fghijK"), &mut sink);
    assert_eq!(sink.text(id, C), "<5>fghijklmn");
    // Larger than the whole limit: skipped to and delivered directly.
    r.segment(&conn.c(20, &[b'x'; 200]), &mut sink);
    assert_eq!(sink.bytes(id, C, b'_').len(), 220);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn total_limit_bounds_all_flows_together() {
    let limit = 3 * (CHUNK_OVERHEAD + 10);
    let mut r = Reassembler::new(ReassemblyConfig {
        max_buffered_total: limit,
        ..ReassemblyConfig::default()
    });
    let mut sink = Recorder::default();
    let conns: Vec<Conn> = (0..4).map(|i| Conn::new(40000 + i)).collect();
    for c in &conns {
        c.handshake(&mut r, &mut sink);
    }
    for c in &conns {
        r.segment(&c.c(5, b"0123456789"), &mut sink);
        assert!(r.buffered_bytes() <= limit);
    }
    assert_eq!(r.stats().buffer_overflows, 1);
    let last = sink.opened()[3].id;
    assert_eq!(sink.text(last, C), "<5>0123456789");
    r.finish(&mut sink);
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn zero_buffer_limit_gaps_every_hole_at_once() {
    let (mut r, mut sink, conn, id) = open_with(ReassemblyConfig {
        max_buffered_per_direction: 0,
        ..ReassemblyConfig::default()
    });
    r.segment(&conn.c(3, b"def"), &mut sink);
    r.segment(&conn.c(0, b"abc"), &mut sink);
    r.segment(&conn.c(8, b"ij"), &mut sink);
    assert_eq!(sink.text(id, C), "<3>def<2>ij");
    assert_eq!(r.stats().buffer_overflows, 2);
    assert_eq!(r.stats().retransmitted, 1);
}

#[test]
fn segments_beyond_the_largest_window_are_ignored() {
    let (mut r, mut sink, conn, id) = open();
    r.segment(&conn.c((1 << 30) + 1, b"far"), &mut sink);
    r.segment(
        &conn.seg(C, CISN + 1 + (1 << 30) + 10, 0, FIN, b""),
        &mut sink,
    );
    assert_eq!(r.stats().out_of_window, 2);
    assert_eq!(r.buffered_bytes(), 0);
    r.segment(&conn.c(0, b"near"), &mut sink);
    r.finish(&mut sink);
    assert_eq!(sink.text(id, C), "near");
    assert!(!sink.ended(id, C));
}
