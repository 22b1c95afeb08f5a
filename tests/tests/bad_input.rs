//! Bad input: broken captures, broken snapshots, wrong flags. Each must end with exit code 2
//! and one line on stderr naming the file or flag, never a panic; a capture cut short still
//! leaves the pairs found before the cut in the snapshot.

// Helpers of tests panic on failure, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tapline_e2e::tapline::{self, TAPLINE_TIMEOUT, check_input_error};
use tapline_e2e::{rrpair, scripts, skip};

/// Packets per connection in the `many_exchanges` capture (3 handshake, request, ACK,
/// response, ACK, FIN, FIN, ACK).
const PACKETS_PER_CONNECTION: usize = 10;

/// Crafts `case` into `dir`; `None` (after reporting a skip) without scapy.
fn crafted(test: &str, case: &str, dir: &Path) -> Option<PathBuf> {
    if let Some(reason) = scripts::scapy_missing() {
        skip(test, &reason);
        return None;
    }
    Some(scripts::craft(case, dir).unwrap())
}

/// Byte offsets where each record of a classic little-endian pcap begins.
fn pcap_record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        offsets.push(at);
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += 16 + captured as usize;
    }
    offsets
}

/// Asserts the run failed as bad input naming `mention`.
fn assert_input_error(run: &tapline_e2e::Run, mention: &str) {
    if let Err(problem) = check_input_error(run, mention) {
        panic!("{problem}");
    }
}

/// The file name of `path`, as the error line should name it.
fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn bad_input_truncated_pcap_exits_2_and_keeps_the_pairs_before_the_cut() {
    const TEST: &str = "bad_input_truncated_pcap_exits_2_and_keeps_the_pairs_before_the_cut";
    let dir = tempfile::tempdir().unwrap();
    let Some(full) = crafted(TEST, "many_exchanges", dir.path()) else {
        return;
    };
    let bytes = std::fs::read(&full).unwrap();
    let records = pcap_record_offsets(&bytes);
    assert_eq!(records.len(), 10 * PACKETS_PER_CONNECTION);
    // Cut in the middle of the second packet of connection 6 (its SYN-ACK): connections
    // 0 to 5 are complete before the cut, connection 6 never sent its request.
    let record = records[6 * PACKETS_PER_CONNECTION + 1];
    let cut = record + 16 + 20;
    let truncated = dir.path().join("truncated.pcap");
    std::fs::write(&truncated, &bytes[..cut]).unwrap();

    let snapshot = dir.path().join("snap");
    let run = tapline::import(&truncated, &snapshot, None).unwrap();
    assert_input_error(&run, &name_of(&truncated));

    let run = tapline::inspect(&snapshot)
        .unwrap()
        .checked(TAPLINE_TIMEOUT)
        .unwrap();
    let pairs = rrpair::parse_jsonl(&run.stdout).unwrap();
    let paths: Vec<_> = pairs.iter().filter_map(|p| p.method_path()).collect();
    let want: Vec<String> = (0..6).map(|n| format!("/many/{n}")).collect();
    let want: Vec<_> = want.iter().map(|p| ("GET", p.as_str())).collect();
    assert_eq!(paths, want);
    assert!(pairs.iter().all(|p| p.status() == Some(200)));
}

#[test]
fn bad_input_truncated_pcapng_exits_2() {
    const TEST: &str = "bad_input_truncated_pcapng_exits_2";
    let dir = tempfile::tempdir().unwrap();
    let Some(full) = crafted(TEST, "link_pcapng", dir.path()) else {
        return;
    };
    let bytes = std::fs::read(&full).unwrap();
    let truncated = dir.path().join("truncated.pcapng");
    std::fs::write(&truncated, &bytes[..bytes.len() - 30]).unwrap();
    let run = tapline::import(&truncated, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&truncated));
}

#[test]
fn bad_input_pcap_record_with_impossible_length_exits_2() {
    const TEST: &str = "bad_input_pcap_record_with_impossible_length_exits_2";
    let dir = tempfile::tempdir().unwrap();
    let Some(full) = crafted(TEST, "many_exchanges", dir.path()) else {
        return;
    };
    let mut bytes = std::fs::read(&full).unwrap();
    let record = pcap_record_offsets(&bytes)[5];
    // Captured and original lengths of 4 GiB - 16: far beyond the snap length and the file.
    bytes[record + 8..record + 16]
        .copy_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff]);
    let garbage = dir.path().join("garbage-record.pcap");
    std::fs::write(&garbage, &bytes).unwrap();
    let run = tapline::import(&garbage, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&garbage));
}

#[test]
fn bad_input_pcap_header_followed_by_random_bytes_exits_2() {
    const TEST: &str = "bad_input_pcap_header_followed_by_random_bytes_exits_2";
    let dir = tempfile::tempdir().unwrap();
    let Some(full) = crafted(TEST, "baseline", dir.path()) else {
        return;
    };
    let mut bytes = std::fs::read(&full).unwrap()[..24].to_vec();
    // Deterministic noise (an LCG): records whose lengths are nonsense.
    let mut state: u32 = 0x1234_5678;
    for _ in 0..4096 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.push((state >> 24) as u8);
    }
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, &bytes).unwrap();
    let run = tapline::import(&garbage, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&garbage));
}

#[test]
fn bad_input_file_that_is_not_a_capture_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, "this is not a capture\n".repeat(100)).unwrap();
    let run = tapline::import(&text, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&text));
}

#[test]
fn bad_input_empty_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let run = tapline::import(&empty, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&empty));
}

#[test]
fn bad_input_missing_capture_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-capture.pcap");
    let run = tapline::import(&missing, &dir.path().join("snap"), None).unwrap();
    assert_input_error(&run, &name_of(&missing));
}

#[test]
fn bad_input_corrupt_rrpair_segment_makes_inspect_exit_2_naming_it() {
    const TEST: &str = "bad_input_corrupt_rrpair_segment_makes_inspect_exit_2_naming_it";
    let dir = tempfile::tempdir().unwrap();
    let Some(capture) = crafted(TEST, "many_exchanges", dir.path()) else {
        return;
    };
    let snapshot = dir.path().join("snap");
    tapline::import(&capture, &snapshot, None)
        .unwrap()
        .checked(TAPLINE_TIMEOUT)
        .unwrap();
    // The largest file under rrpairs/ holds the frames; corrupt the bytes two fifths into
    // its written part, so that intact frames follow the damage (not a torn tail).
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(snapshot.join("rrpairs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    segments.sort();
    let (_, segment) = segments.last().expect("no file under SNAP/rrpairs/");
    let mut bytes = std::fs::read(segment).unwrap();
    let written = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let at = written * 2 / 5;
    for byte in &mut bytes[at..(at + 8).min(written)] {
        *byte ^= 0xa5;
    }
    std::fs::write(segment, &bytes).unwrap();

    let run = tapline::inspect(&snapshot).unwrap();
    assert_input_error(&run, &name_of(segment));
}

#[test]
fn bad_input_missing_snapshot_makes_inspect_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-snapshot");
    let run = tapline::inspect(&missing).unwrap();
    assert_input_error(&run, &name_of(&missing));
}

#[test]
fn bad_input_unknown_flag_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("any.pcap");
    let run = tapline::run(
        [
            "import".as_ref(),
            capture.as_os_str(),
            "--no-such-flag".as_ref(),
        ],
        TAPLINE_TIMEOUT,
    )
    .unwrap();
    assert_input_error(&run, "--no-such-flag");
    let run = tapline::run(["inspect", "x", "--frobnicate"], TAPLINE_TIMEOUT).unwrap();
    assert_input_error(&run, "--frobnicate");
}

#[test]
fn bad_input_unknown_inspect_format_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = tapline::run(
        [
            "inspect".as_ref(),
            dir.path().as_os_str(),
            "--format".as_ref(),
            "yaml".as_ref(),
        ],
        TAPLINE_TIMEOUT,
    )
    .unwrap();
    assert_input_error(&run, "yaml");
}

#[test]
fn bad_input_mirror_of_a_missing_interface_exits_3_before_starting_anything() {
    let run = tapline::run(
        [
            "mirror",
            "--iface",
            "tl-no-such-if0",
            "--port",
            "8080",
            "--cmd",
            "true",
        ],
        TAPLINE_TIMEOUT,
    )
    .unwrap();
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert!(run.stderr.contains("--iface tl-no-such-if0"), "{run:?}");
    assert!(
        !run.stderr.contains("created"),
        "nothing was created: {run:?}"
    );
    let run = tapline::run(
        [
            "mirror",
            "--netns",
            "tl-no-such-ns",
            "--iface",
            "eth0",
            "--port",
            "8080",
            "--cmd",
            "true",
        ],
        TAPLINE_TIMEOUT,
    )
    .unwrap();
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert!(run.stderr.contains("--netns tl-no-such-ns"), "{run:?}");
}
