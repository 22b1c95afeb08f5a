//! The Python helper scripts in `tests/scripts/` and the interpreter that runs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Result;
use crate::process::{on_path, run_checked, run_with_timeout};

/// The folder holding the helper scripts.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// The path of the helper script `name`.
pub fn path(name: &str) -> PathBuf {
    dir().join(name)
}

/// The folder where fetched third-party captures are unpacked (git-ignored).
pub fn captures_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("cache")
        .join("captures")
}

/// The Python interpreter: `TAPLINE_PYTHON`, else Debian's `/usr/bin/python3` (which sees
/// `python3-scapy`), else `python3` on `PATH`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("TAPLINE_PYTHON") {
        return PathBuf::from(python);
    }
    let debian = Path::new("/usr/bin/python3");
    if debian.is_file() {
        debian.to_owned()
    } else {
        PathBuf::from("python3")
    }
}

/// Why scapy cannot be used, or `None` when it can (checked once per process).
pub fn scapy_missing() -> Option<String> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            let python = python();
            if !on_path(&python.to_string_lossy()) {
                return Some(format!("{} not found", python.display()));
            }
            let run = run_with_timeout(
                Command::new(&python).args(["-c", "import scapy.all"]),
                Duration::from_secs(60),
            );
            match run {
                Ok(run) if run.success() => None,
                Ok(run) => Some(format!(
                    "{} cannot import scapy (apt-get install python3-scapy): {}",
                    python.display(),
                    run.stderr.lines().last().unwrap_or_default()
                )),
                Err(e) => Some(e.to_string()),
            }
        })
        .clone()
}

/// Writes the crafted capture `case` into `out_dir` with `scripts/craft_evasion.py` and
/// returns its path.
///
/// # Errors
///
/// When the script fails.
pub fn craft(case: &str, out_dir: &Path) -> Result<PathBuf> {
    let run = run_checked(
        Command::new(python())
            .arg(path("craft_evasion.py"))
            .arg("--out")
            .arg(out_dir)
            .arg(case),
        Duration::from_secs(120),
    )?;
    let written = run.stdout_text();
    let file = written.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(file))
}
