//! Why a mirror cannot run: its settings, the runtime, or the report files.

use std::path::PathBuf;

/// Errors of the mirroring engine.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A setting is out of range (the flag is named).
    #[error("{flag} {value}: {reason}")]
    Setting {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// An `--ignore` rule does not parse.
    #[error(transparent)]
    Rule(#[from] tapline_replay::rules::RuleError),
    /// An `--assert` expression does not parse.
    #[error(transparent)]
    Assertion(#[from] tapline_replay::assertion::AssertionError),
    /// The async runtime or a thread could not be started.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being started.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
