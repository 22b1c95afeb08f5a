//! tapline's kernel-side eBPF programs, compiled from C by `build.rs` and embedded here.
//!
//! Each `src/NAME.bpf.c` becomes one object, exposed as a `pub static` byte slice aligned for
//! the ELF parser, ready for `aya::EbpfLoader::load`. The objects are built with Debian's
//! `clang-19` (`-target bpf -O2 -g -mcpu=v3`), so the crate needs `clang-19` and `libbpf-dev`
//! at build time (see `tests/setup.sh`).

/// Wraps bytes so that `include_bytes!` data starts on an 8-byte boundary, as ELF parsing needs.
#[repr(C, align(8))]
struct Aligned<Bytes: ?Sized> {
    bytes: Bytes,
}

/// Includes a file's bytes with 8-byte alignment.
macro_rules! include_bytes_aligned {
    ($path:expr) => {{
        static ALIGNED: &Aligned<[u8]> = &Aligned {
            bytes: *include_bytes!($path),
        };
        &ALIGNED.bytes
    }};
}

/// The `tl_chaos` TC classifier (`src/chaos.bpf.c`): a test tool that drops and duplicates
/// a configurable share of the packets leaving an interface.
///
/// Attach the program `tl_chaos` (section `classifier`) to an interface's ingress or egress.
/// Before loading, set the globals `tl_drop_threshold` and `tl_dup_threshold` (`u32`, the
/// share of packets out of 2^32; their sum must stay below 2^32) and `tl_ingress` (`u32`,
/// nonzero for ingress). The per-CPU array `tl_chaos_counters` counts packets at the indexes
/// in [`chaos`].
///
/// A drop at egress is reported to the sending socket, so TCP re-sends without a real
/// retransmission on the wire; attach to the receiver's ingress for real losses.
pub static CHAOS: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/chaos.bpf.o"));

/// The live-capture TC classifiers `tl_tc_egress` and `tl_tc_ingress`
/// (`src/tc_capture.bpf.c`), built alone: each copies the packets of its direction, as the
/// filters select them, into the ring buffer `tl_cap_ring` (see [`capture`] for the ABI).
///
/// `tapline capture` loads them from `tapline-xdp`'s combined object, where they share the
/// ring with the XDP ingress program; this object serves hosts that capture with TC alone.
pub static TC_CAPTURE: &[u8] =
    include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tc_capture.bpf.o"));

/// The TLS plaintext programs (`src/tls.bpf.c`): uprobes on OpenSSL-compatible and GnuTLS
/// read/write calls that copy the plaintext into the ring buffer `tl_tls_ring`, syscall
/// tracepoints that tie each session to its TCP 4-tuple, and an exec tracepoint (see [`tls`]
/// for the ABI and the names). Loaded by `tapline-tls`.
pub static TLS: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tls.bpf.o"));

pub mod capture;
pub mod clock;
pub mod error_chain;
pub mod tls;

/// Names and counter slots of the [`CHAOS`] object, kept in step with `src/chaos.bpf.c`.
pub mod chaos {
    /// The program's name (its C function) in the object.
    pub const PROGRAM: &str = "tl_chaos";
    /// The per-CPU array of `u64` counters.
    pub const COUNTERS_MAP: &str = "tl_chaos_counters";
    /// The global holding the drop share, out of 2^32.
    pub const DROP_THRESHOLD: &str = "tl_drop_threshold";
    /// The global holding the duplicate share, out of 2^32.
    pub const DUP_THRESHOLD: &str = "tl_dup_threshold";
    /// The global telling the program it is attached to ingress (`u32`, nonzero).
    pub const INGRESS: &str = "tl_ingress";
    /// Counter slot: packets the program judged (its own clones excluded).
    pub const SEEN: u32 = 0;
    /// Counter slot: packets dropped.
    pub const DROPPED: u32 = 1;
    /// Counter slot: packets duplicated.
    pub const DUPLICATED: u32 = 2;
    /// Counter slot: duplications that `bpf_clone_redirect` refused.
    pub const DUP_FAILED: u32 = 3;
    /// Number of counter slots.
    pub const COUNTERS: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_capture_object_names_its_programs_and_maps() {
        assert_eq!(TC_CAPTURE.as_ptr() as usize % 8, 0);
        assert_eq!(&TC_CAPTURE[..4], b"\x7fELF");
        let contains = |needle: &str| {
            TC_CAPTURE
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        };
        use capture::names;
        for name in [
            names::TC_EGRESS_PROGRAM,
            names::TC_INGRESS_PROGRAM,
            names::RING,
            names::SCRATCH,
            names::FILTER,
            names::PORTS,
            names::V4,
            names::V6,
            names::COUNTERS,
            names::SNAPLEN,
        ] {
            assert!(contains(name), "{name} missing from the tc_capture object");
        }
    }

    #[test]
    fn tls_object_names_its_programs_and_maps() {
        assert_eq!(TLS.as_ptr() as usize % 8, 0);
        assert_eq!(&TLS[..4], b"\x7fELF");
        let contains = |needle: &str| TLS.windows(needle.len()).any(|w| w == needle.as_bytes());
        use tls::names;
        for name in [
            names::RING,
            names::SCRATCH,
            names::COUNTERS,
            names::PIDS,
            names::EXES,
            names::CONNS,
            names::FILTER,
            names::EXEC_EVENTS,
            names::ENTER_PROGRAM,
            names::EXIT_PROGRAM,
            names::CLOSE_PROGRAM,
            names::SYS_ENTER_PROGRAM,
            names::ACCEPT_EXIT_PROGRAM,
            names::CONNECT_ENTER_PROGRAM,
            names::CONNECT_EXIT_PROGRAM,
            names::EXEC_PROGRAM,
        ] {
            assert!(contains(name), "{name} missing from the tls object");
        }
    }

    #[test]
    fn chaos_object_is_an_aligned_bpf_elf() {
        assert_eq!(CHAOS.as_ptr() as usize % 8, 0);
        assert!(CHAOS.len() > 64);
        assert_eq!(&CHAOS[..4], b"\x7fELF");
        // e_machine at offset 18, little-endian: EM_BPF = 247.
        assert_eq!(u16::from_le_bytes([CHAOS[18], CHAOS[19]]), 247);
    }

    #[test]
    fn chaos_object_names_its_program_and_maps() {
        let contains = |needle: &str| {
            CHAOS
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        };
        for name in [
            chaos::PROGRAM,
            chaos::COUNTERS_MAP,
            chaos::DROP_THRESHOLD,
            chaos::DUP_THRESHOLD,
            chaos::INGRESS,
            "classifier",
        ] {
            assert!(contains(name), "{name} missing from the chaos object");
        }
    }
}
