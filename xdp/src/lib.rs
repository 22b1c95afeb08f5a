//! tapline's live capture in the kernel: the XDP ingress program and its TC egress partner,
//! compiled from C into one object ([`CAPTURE`]), and the loader that attaches them to an
//! interface ([`LiveCapture`]).
//!
//! The record format and every constant are in `bpf/include/tapline_abi.h`, mirrored by
//! [`tapline_bpf::capture`]. See this crate's README for the design.

pub mod error;
pub mod filter;
pub mod loader;
pub mod netlink;

pub use error::{AttachError, PRIVILEGE_HINT};
pub use filter::{Cidr, Filter, FilterError};
pub use loader::{
    CaptureConfig, Counters, DEFAULT_RING_BYTES, DirectionCounters, IngressHook, LiveCapture,
    ifindex_of,
};

/// Wraps bytes so that `include_bytes!` data starts on an 8-byte boundary, as ELF parsing needs.
#[repr(C, align(8))]
struct Aligned<Bytes: ?Sized> {
    bytes: Bytes,
}

/// The capture object: `tl_xdp_capture` (section `xdp.frags`), `tl_tc_egress` and
/// `tl_tc_ingress` (section `classifier`), sharing the maps of `tapline_capture.bpf.h`.
pub static CAPTURE: &[u8] = {
    static ALIGNED: &Aligned<[u8]> = &Aligned {
        bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/capture.bpf.o")),
    };
    &ALIGNED.bytes
};

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_bpf::capture::names;

    #[test]
    fn the_object_holds_both_programs_and_one_set_of_maps() {
        assert_eq!(CAPTURE.as_ptr() as usize % 8, 0);
        assert_eq!(&CAPTURE[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([CAPTURE[18], CAPTURE[19]]), 247);
        let count = |needle: &str| {
            CAPTURE
                .windows(needle.len())
                .filter(|window| *window == needle.as_bytes())
                .count()
        };
        for name in [
            names::XDP_PROGRAM,
            names::TC_EGRESS_PROGRAM,
            names::TC_INGRESS_PROGRAM,
            names::RING,
            names::COUNTERS,
            names::SNAPLEN,
            "xdp.frags",
            "classifier",
        ] {
            assert!(count(name) > 0, "{name} missing from the capture object");
        }
    }
}
