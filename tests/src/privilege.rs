//! Deciding whether a test can run here: root, eBPF, installed tools.
//!
//! A test that cannot run prints why and returns early (it then counts as passed), unless
//! `TAPLINE_REQUIRE_PRIVILEGED=1` is set: then it fails, so that CI on a prepared machine
//! never passes by skipping.

use std::io::Write;
use std::sync::OnceLock;

use crate::process::on_path;

/// The variable that turns skips into failures.
pub const REQUIRE_ENV: &str = "TAPLINE_REQUIRE_PRIVILEGED";

/// Whether skipping is forbidden (`TAPLINE_REQUIRE_PRIVILEGED=1`).
pub fn skipping_forbidden() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Reports that `test` cannot run for `reason`, and returns `false` so callers can
/// `if !require_x(..) { return; }`.
///
/// The message goes straight to the process's stderr (not through the test harness's
/// capture), so it shows in `cargo test` output.
///
/// # Panics
///
/// When `TAPLINE_REQUIRE_PRIVILEGED=1`: the test then fails with the reason.
pub fn skip(test: &str, reason: &str) -> bool {
    if skipping_forbidden() {
        panic!("{test}: cannot run and {REQUIRE_ENV}=1 forbids skipping: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (set {REQUIRE_ENV}=1 to fail instead)"
    );
    false
}

/// Whether the process runs as root; otherwise skips `test` (see [`skip`]).
///
/// # Panics
///
/// When not root and `TAPLINE_REQUIRE_PRIVILEGED=1`.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        skip(
            test,
            "needs root (network namespaces, tcpdump, eBPF); run the suite as root",
        )
    }
}

/// Whether root and a loadable eBPF TC program are available; otherwise skips `test`.
///
/// Loads (without attaching) the `tl_chaos` program once per process to find out.
///
/// # Panics
///
/// When eBPF is unavailable and `TAPLINE_REQUIRE_PRIVILEGED=1`.
pub fn require_ebpf(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(crate::chaos::probe) {
        Ok(()) => true,
        Err(reason) => skip(
            test,
            &format!("eBPF TC programs cannot be loaded: {reason}"),
        ),
    }
}

/// Whether every program in `tools` is on `PATH`; otherwise skips `test`, naming the missing
/// ones and the script that installs them.
///
/// # Panics
///
/// When a tool is missing and `TAPLINE_REQUIRE_PRIVILEGED=1`.
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        true
    } else {
        skip(
            test,
            &format!(
                "missing tools: {} (run tests/setup.sh as root)",
                missing.join(", ")
            ),
        )
    }
}
