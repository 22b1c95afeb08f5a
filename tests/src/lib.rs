//! End-to-end test infrastructure for tapline: the real `tapline` binary against real servers,
//! real kernels and real captures.
//!
//! The integration tests in `tests/tests/` use this library to:
//! - build network namespaces joined by a veth pair ([`NetnsGuard`]) and run programs inside
//!   them ([`Netns::command`]);
//! - make the kernels lose and duplicate packets with the `tl_chaos` eBPF program
//!   ([`ChaosGuard`]), since this kernel has no netem;
//! - capture with tcpdump ([`Tcpdump`]) and read captures with tshark ([`tshark`]);
//! - run `tapline import`/`inspect` and parse the JSON lines ([`tapline`], [`RrPair`]);
//! - craft evasion pcaps with scapy and run the helper scripts ([`scripts`]).
//!
//! Tests needing root (or eBPF, or an installed tool) ask [`require_root`], [`require_ebpf`]
//! or [`require_tools`] first: these print why a test is skipped, or fail it instead when
//! `TAPLINE_REQUIRE_PRIVILEGED=1` (as CI sets after `tests/setup.sh`).

pub mod capture;
pub mod chaos;
pub mod error;
pub mod live;
pub mod mirror_support;
pub mod mock_support;
pub mod netns;
pub mod pcap;
pub mod privilege;
pub mod process;
pub mod replay_support;
pub mod rrpair;
pub mod run_support;
pub mod scripts;
pub mod serve_support;
pub mod tapline;
pub mod tls_support;
pub mod tshark;

pub use capture::{Tcpdump, TcpdumpSummary};
pub use chaos::{ChaosConfig, ChaosCounters, ChaosDirection, ChaosGuard};
pub use error::E2eError;
pub use netns::{Netns, NetnsGuard, Side};
pub use privilege::{require_ebpf, require_root, require_tools, skip};
pub use process::{Background, Run, run_checked, run_with_timeout};
pub use rrpair::{RrPair, sha256_hex};

/// The result type of this crate.
pub type Result<T, E = E2eError> = std::result::Result<T, E>;
