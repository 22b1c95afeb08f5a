//! Finding, building and running the `tapline` binary, and judging how it ended.
//!
//! The binary is `TAPLINE_BIN` when set; otherwise this module runs `cargo build -p tapline`
//! once per test process (a no-op when up to date) and uses `target/debug/tapline`.
//! `CARGO_BIN_EXE_*` cannot be used: the binary lives in another crate.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{run_with_timeout, tail};
use crate::rrpair::parse_jsonl;
use crate::{E2eError, Result, RrPair, Run};

/// Time allowed for one `tapline import` or `inspect` of a test capture.
pub const TAPLINE_TIMEOUT: Duration = Duration::from_secs(120);

/// Time allowed for building the binary.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// The exit code for usage and input errors.
pub const EXIT_INPUT: i32 = 2;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// The path of the `tapline` binary, built when needed.
///
/// # Errors
///
/// [`E2eError::Binary`] when `TAPLINE_BIN` names no file, or the build fails.
pub fn binary() -> Result<PathBuf> {
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(locate).clone().map_err(E2eError::Binary)
}

/// Finds or builds the binary (see [`binary`]).
fn locate() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TAPLINE_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("TAPLINE_BIN={} is not a file", path.display()))
        };
    }
    let root = workspace_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet", "-p", "tapline", "--manifest-path"])
        .arg(root.join("Cargo.toml"));
    match run_with_timeout(&mut build, BUILD_TIMEOUT) {
        Ok(run) if run.success() => {
            let path = target.join("debug").join("tapline");
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("built, but {} is missing", path.display()))
            }
        }
        Ok(run) => Err(format!(
            "`cargo build -p tapline` failed: {}",
            tail(&run.stderr, 3000)
        )),
        // No cargo here (a copied test binary): use what was built before.
        Err(_) => ["debug", "release"]
            .iter()
            .map(|profile| target.join(profile).join("tapline"))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no cargo to build it and none in {}", target.display())),
    }
}

/// Runs `tapline ARGS...` with a time limit.
///
/// # Errors
///
/// When the binary cannot be found, built or started.
pub fn run<I, S>(args: I, timeout: Duration) -> Result<Run>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(binary()?);
    command.args(args).env("TAPLINE_LOG", "warn");
    run_with_timeout(&mut command, timeout)
}

/// Runs `tapline import CAPTURE --out SNAPSHOT [--workers N]` with the default time limit.
///
/// # Errors
///
/// As [`run`].
pub fn import(capture: &Path, snapshot: &Path, workers: Option<u32>) -> Result<Run> {
    import_within(capture, snapshot, workers, TAPLINE_TIMEOUT)
}

/// Runs `tapline import CAPTURE --out SNAPSHOT [--workers N]`, killing it after `timeout`.
///
/// # Errors
///
/// As [`run`].
pub fn import_within(
    capture: &Path,
    snapshot: &Path,
    workers: Option<u32>,
    timeout: Duration,
) -> Result<Run> {
    let mut args = vec![
        "import".into(),
        capture.as_os_str().to_owned(),
        "--out".into(),
        snapshot.as_os_str().to_owned(),
    ];
    if let Some(workers) = workers {
        args.push("--workers".into());
        args.push(workers.to_string().into());
    }
    run(args, timeout)
}

/// Runs `tapline inspect SNAPSHOT --format jsonl`.
///
/// # Errors
///
/// As [`run`].
pub fn inspect(snapshot: &Path) -> Result<Run> {
    run(
        [
            OsStr::new("inspect"),
            snapshot.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("jsonl"),
        ],
        TAPLINE_TIMEOUT,
    )
}

/// Imports `capture` into `snapshot`, inspects it, and returns the raw jsonl and its pairs.
///
/// # Errors
///
/// When either command fails (the error carries its stderr), or the output breaks the
/// jsonl contract.
pub fn import_and_inspect(
    capture: &Path,
    snapshot: &Path,
    workers: Option<u32>,
) -> Result<(Vec<u8>, Vec<RrPair>)> {
    import(capture, snapshot, workers)?.checked(TAPLINE_TIMEOUT)?;
    let run = inspect(snapshot)?.checked(TAPLINE_TIMEOUT)?;
    let pairs = parse_jsonl(&run.stdout)?;
    Ok((run.stdout, pairs))
}

/// Checks that a run failed the way the contract asks for bad input: exit code 2 in time,
/// exactly one non-empty line on stderr that mentions `mention`, and no panic.
///
/// # Errors
///
/// A description of what was wrong, with the run's stderr.
pub fn check_input_error(run: &Run, mention: &str) -> std::result::Result<(), String> {
    check_no_crash(run)?;
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let problem = if run.code() != Some(EXIT_INPUT) {
        format!("exit code {:?}, expected {EXIT_INPUT}", run.code())
    } else if lines.len() != 1 {
        format!("{} stderr lines, expected exactly one", lines.len())
    } else if !run.stderr.contains(mention) {
        format!("stderr does not mention {mention:?}")
    } else {
        return Ok(());
    };
    Err(format!(
        "`{}`: {problem}; stderr:\n{}",
        run.command,
        tail(&run.stderr, 2000)
    ))
}

/// Checks that a run neither hung, panicked, nor died of a signal.
///
/// # Errors
///
/// A description of what was wrong, with the run's stderr.
pub fn check_no_crash(run: &Run) -> std::result::Result<(), String> {
    let problem = if run.timed_out {
        format!("hung: killed after {:?}", run.elapsed)
    } else if run.stderr.contains("panicked") {
        "panicked".to_owned()
    } else if run.code() == Some(101) {
        "exit code 101 (a panic)".to_owned()
    } else if run.code().is_none() {
        format!("killed by a signal ({})", run.status)
    } else {
        return Ok(());
    };
    Err(format!(
        "`{}`: {problem}; stderr:\n{}",
        run.command,
        tail(&run.stderr, 2000)
    ))
}
