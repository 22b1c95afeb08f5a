//! Crafted captures (scripts/craft_evasion.py, scapy) that attack TCP reassembly and the
//! capture formats: each test imports one and asserts exactly which exchanges come out.
//!
//! Reassembly policy under test: where segments overlap with different bytes, the bytes
//! seen first (earliest in the capture) win. Crafted timestamps start at
//! 2023-11-14T22:13:20Z (1_700_000_000 s) and step by 1 ms per packet.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use tapline_e2e::tapline::import_and_inspect;
use tapline_e2e::{RrPair, scripts, sha256_hex, skip};

/// The crafted captures' first timestamp, in seconds since the epoch.
const T0_NS: i128 = 1_700_000_000 * 1_000_000_000;

/// One exchange a capture must yield.
#[derive(Debug)]
struct Want<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    request_body: &'a [u8],
    response_body: &'a [u8],
}

impl<'a> Want<'a> {
    /// A GET with an empty request body.
    fn get(path: &'a str, status: u16, response_body: &'a [u8]) -> Self {
        Self {
            method: "GET",
            path,
            status,
            request_body: b"",
            response_body,
        }
    }
}

/// Crafts `case`, imports and inspects it; `None` (after reporting a skip) without scapy.
fn pairs_of(case: &str) -> Option<Vec<RrPair>> {
    if let Some(reason) = scripts::scapy_missing() {
        skip(case, &reason);
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = scripts::craft(case, dir.path()).unwrap();
    let (_, pairs) = import_and_inspect(&capture, &dir.path().join("snap"), None)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    Some(pairs)
}

/// Asserts that `pairs` are exactly `wants`, in order, complete and byte-exact.
fn assert_exchanges(case: &str, pairs: &[RrPair], wants: &[Want<'_>]) {
    let summary: Vec<String> = pairs
        .iter()
        .map(|p| format!("{:?} {:?} {:?}", p.method_path(), p.status(), p.flags))
        .collect();
    assert_eq!(
        pairs.len(),
        wants.len(),
        "{case}: expected {wants:#?}\ngot {summary:#?}"
    );
    for (pair, want) in pairs.iter().zip(wants) {
        let context = format!("{case} {} {}", want.method, want.path);
        let request = pair
            .request
            .as_ref()
            .unwrap_or_else(|| panic!("{context}: no request"));
        let response = pair
            .response
            .as_ref()
            .unwrap_or_else(|| panic!("{context}: no response"));
        assert_eq!(request.method, want.method, "{context}");
        assert_eq!(request.path, want.path, "{context}");
        assert_eq!(response.status, Some(want.status), "{context}");
        assert_eq!(
            request.body_len,
            want.request_body.len() as u64,
            "{context}: request body length"
        );
        assert_eq!(
            request.body_sha256,
            sha256_hex(want.request_body),
            "{context}: request body is not {:?}",
            String::from_utf8_lossy(want.request_body)
        );
        assert_eq!(
            response.body_len,
            want.response_body.len() as u64,
            "{context}: response body length"
        );
        assert_eq!(
            response.body_sha256,
            sha256_hex(want.response_body),
            "{context}: response body is not {:?}",
            String::from_utf8_lossy(want.response_body)
        );
        assert!(
            !pair.has_flag("incomplete"),
            "{context}: flagged {:?}",
            pair.flags
        );
        assert_eq!(pair.protocol, "http1", "{context}");
    }
}

/// Asserts the flow of a crafted single-connection capture: client 40000 → server 80.
fn assert_flow(pair: &RrPair, client_ip: &str, server_ip: &str) {
    let src: SocketAddr = pair.flow.src.parse().expect("flow.src is ip:port");
    let dst: SocketAddr = pair.flow.dst.parse().expect("flow.dst is ip:port");
    assert_eq!(src, SocketAddr::new(client_ip.parse().unwrap(), 40000));
    assert_eq!(dst, SocketAddr::new(server_ip.parse().unwrap(), 80));
}

#[test]
fn crafted_baseline_exchange_has_its_flow_and_packet_timestamps() {
    let Some(pairs) = pairs_of("baseline") else {
        return;
    };
    assert_exchanges(
        "baseline",
        &pairs,
        &[Want::get("/baseline", 200, b"hello, baseline\n")],
    );
    let pair = &pairs[0];
    assert_flow(pair, "10.1.0.1", "10.1.0.2");
    // Packets 1-3 are the handshake; the request is packet 4, the response packet 6.
    assert_eq!(pair.start_ns().unwrap(), T0_NS + 4_000_000);
    assert_eq!(pair.duration_us, 2000);
    assert_eq!(pair.request_header("host"), Some("example.test"));
    let response = pair.response.as_ref().unwrap();
    assert_eq!(
        response.headers,
        vec![
            ("Server".to_owned(), "craft".to_owned()),
            ("Content-Length".to_owned(), "16".to_owned())
        ]
    );
}

/// The link-type cases all carry GET /link/NAME -> 200 "link NAME ok\n".
fn assert_link_case(name: &str, v6: bool) -> Option<RrPair> {
    let case = format!("link_{name}");
    let pairs = pairs_of(&case)?;
    let path = format!("/link/{name}");
    let body = format!("link {name} ok\n");
    assert_exchanges(&case, &pairs, &[Want::get(&path, 200, body.as_bytes())]);
    let (client, server) = if v6 {
        ("fd00::1", "fd00::2")
    } else {
        ("10.1.0.1", "10.1.0.2")
    };
    assert_flow(&pairs[0], client, server);
    pairs.into_iter().next()
}

#[test]
fn crafted_vlan_tagged_ethernet_is_decoded() {
    assert_link_case("vlan", false);
}

#[test]
fn crafted_qinq_double_tagged_ethernet_is_decoded() {
    assert_link_case("qinq", false);
}

#[test]
fn crafted_ipv6_is_decoded() {
    assert_link_case("ipv6", true);
}

#[test]
fn crafted_ipv6_in_vlan_is_decoded() {
    assert_link_case("ipv6_vlan", true);
}

#[test]
fn crafted_linux_cooked_sll_is_decoded() {
    assert_link_case("sll", false);
}

#[test]
fn crafted_linux_cooked_sll2_is_decoded() {
    assert_link_case("sll2", false);
}

#[test]
fn crafted_raw_ip_link_type_is_decoded() {
    assert_link_case("raw", false);
}

#[test]
fn crafted_raw_ip_link_type_with_ipv6_is_decoded() {
    assert_link_case("raw_ipv6", true);
}

#[test]
fn crafted_pcapng_is_decoded() {
    assert_link_case("pcapng", false);
}

#[test]
fn crafted_nanosecond_pcap_keeps_nanoseconds() {
    let Some(pair) = assert_link_case("nanosecond", false) else {
        return;
    };
    // The request is packet 4: T0 + 4 ms + 123 ns.
    assert_eq!(pair.start_ns().unwrap(), T0_NS + 4_000_123);
    assert!(pair.start.contains(".004000123"), "{}", pair.start);
}

#[test]
fn crafted_out_of_order_and_duplicated_segments_reassemble_exactly() {
    let Some(pairs) = pairs_of("ooo_dup") else {
        return;
    };
    let body = b"out-of-order and duplicated response body\n".repeat(3);
    assert_exchanges("ooo_dup", &pairs, &[Want::get("/ooo?x=1&y=2", 200, &body)]);
}

#[test]
fn crafted_overlaps_with_different_bytes_keep_the_bytes_seen_first() {
    let Some(pairs) = pairs_of("overlap") else {
        return;
    };
    // (arrangement, body): the first segment seen, then an overlapping one with other bytes.
    let arrangements: [(&str, &[u8]); 5] = [
        // first [4,10) "BBBBBB", then [0,6) "AAAAAA" overlapping its left part
        ("left", b"AAAABBBBBB"),
        // first [0,6) "AAAAAA", then [4,10) "BBBBBB" overlapping its right part
        ("right", b"AAAAAABBBB"),
        // first [0,10) all "A", then [3,6) "BBB" inside it
        ("contained", b"AAAAAAAAAA"),
        // first [3,6) "BBB", then [0,10) all "A" containing it
        ("containing", b"AAABBBAAAA"),
        // the same range twice: "A"s, then "B"s
        ("same", b"AAAAAAAAAA"),
    ];
    let paths: Vec<String> = ["inorder", "buffered"]
        .iter()
        .flat_map(|order| {
            arrangements
                .iter()
                .map(move |(name, _)| format!("/overlap/{name}/{order}"))
        })
        .collect();
    let mut wants: Vec<Want<'_>> = paths
        .iter()
        .zip(arrangements.iter().chain(arrangements.iter()))
        .map(|(path, (_, body))| Want {
            method: "POST",
            path,
            status: 200,
            request_body: body,
            response_body: b"ok",
        })
        .collect();
    // The same `left` arrangement in a response body.
    wants.push(Want::get("/overlap/response", 200, b"AAAABBBBBB"));
    assert_exchanges("overlap", &pairs, &wants);
}

#[test]
fn crafted_one_byte_segments_in_reverse_order_reassemble_exactly() {
    let Some(pairs) = pairs_of("tiny_reverse") else {
        return;
    };
    assert_exchanges(
        "tiny_reverse",
        &pairs,
        &[Want::get("/tiny-reverse", 200, b"reversed!")],
    );
}

#[test]
fn crafted_headers_split_across_segments_parse_exactly() {
    let Some(pairs) = pairs_of("split_header") else {
        return;
    };
    assert_exchanges(
        "split_header",
        &pairs,
        &[Want::get(
            "/split-header?q=split",
            200,
            b"split headers, chunked body",
        )],
    );
    let long = "v".repeat(50);
    assert_eq!(pairs[0].request_header("x-long"), Some(long.as_str()));
    assert_eq!(pairs[0].request_header("host"), Some("example.test"));
}

#[test]
fn crafted_gap_never_captured_flags_the_pair_incomplete() {
    let Some(pairs) = pairs_of("gap") else { return };
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    let pair = &pairs[0];
    assert_eq!(pair.method_path(), Some(("GET", "/gap")));
    assert!(pair.has_flag("incomplete"), "flags {:?}", pair.flags);
    // What was seen of the response is kept: its status line and headers came before the gap.
    assert_eq!(pair.status(), Some(200));
}

#[test]
fn crafted_sequence_numbers_wrapping_past_two_to_the_32_reassemble_exactly() {
    let Some(pairs) = pairs_of("seq_wrap") else {
        return;
    };
    let request_body = b"wrapped request body ".repeat(4);
    let response_body: Vec<u8> = (0..=255u8).collect::<Vec<u8>>().repeat(8);
    assert_exchanges(
        "seq_wrap",
        &pairs,
        &[Want {
            method: "POST",
            path: "/seq-wrap",
            status: 200,
            request_body: &request_body,
            response_body: &response_body,
        }],
    );
}

#[test]
fn crafted_data_after_rst_is_ignored() {
    let Some(pairs) = pairs_of("after_rst") else {
        return;
    };
    assert_exchanges(
        "after_rst",
        &pairs,
        &[Want::get("/before-rst", 200, b"fine")],
    );
}

#[test]
fn crafted_data_after_fin_is_ignored() {
    let Some(pairs) = pairs_of("after_fin") else {
        return;
    };
    assert_exchanges(
        "after_fin",
        &pairs,
        &[Want::get("/before-fin", 200, b"fine")],
    );
}

#[test]
fn crafted_reused_four_tuple_with_a_new_isn_is_two_exchanges() {
    let Some(pairs) = pairs_of("reused_tuple") else {
        return;
    };
    assert_exchanges(
        "reused_tuple",
        &pairs,
        &[
            Want::get("/first", 200, b"one"),
            Want::get("/second", 200, b"two"),
        ],
    );
    assert_eq!(pairs[0].flow, pairs[1].flow);
}

#[test]
fn crafted_connection_seen_mid_stream_yields_its_exchanges() {
    let Some(pairs) = pairs_of("midstream") else {
        return;
    };
    // Flags are not asserted: a reader may mark a connection without a handshake.
    let got: Vec<_> = pairs
        .iter()
        .map(|p| {
            let response = p.response.as_ref();
            (
                p.method_path().map(|(m, t)| (m.to_owned(), t.to_owned())),
                p.status(),
                response.map(|r| r.body_sha256.clone()),
            )
        })
        .collect();
    let want = vec![
        (
            Some(("GET".to_owned(), "/midstream/1".to_owned())),
            Some(200),
            Some(sha256_hex(b"first")),
        ),
        (
            Some(("GET".to_owned(), "/midstream/2".to_owned())),
            Some(404),
            Some(sha256_hex(b"second")),
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn crafted_keepalive_connection_yields_length_chunked_and_head_exchanges() {
    let Some(pairs) = pairs_of("keepalive") else {
        return;
    };
    let posted = vec![b'x'; 1000];
    assert_exchanges(
        "keepalive",
        &pairs,
        &[
            Want::get("/ka/1", 200, b"first body"),
            Want {
                method: "POST",
                path: "/ka/2",
                status: 201,
                request_body: &posted,
                response_body: b"chunked reply body",
            },
            // HEAD: Content-Length 1234 announced, no body follows.
            Want {
                method: "HEAD",
                path: "/ka/3",
                status: 200,
                request_body: b"",
                response_body: b"",
            },
        ],
    );
}

#[test]
fn crafted_non_tcp_and_malformed_frames_are_skipped() {
    let Some(pairs) = pairs_of("noise") else {
        return;
    };
    assert_exchanges("noise", &pairs, &[Want::get("/noise", 200, b"signal\n")]);
}

#[test]
fn crafted_ten_sequential_connections_yield_ten_exchanges_in_order() {
    let Some(pairs) = pairs_of("many_exchanges") else {
        return;
    };
    let paths: Vec<String> = (0..10).map(|n| format!("/many/{n}")).collect();
    let bodies: Vec<String> = (0..10).map(|n| format!("body {n}\n")).collect();
    let wants: Vec<Want<'_>> = paths
        .iter()
        .zip(&bodies)
        .map(|(p, b)| Want::get(p, 200, b.as_bytes()))
        .collect();
    assert_exchanges("many_exchanges", &pairs, &wants);
}
