//! tapline's typed configuration: one serde schema for the whole TOML file.
//!
//! Every section and field is optional and defaults to the values in `tapline.example.toml`
//! (and [`Config::default`]); unknown fields are rejected. [`Config::load`] reads a file,
//! checks it and reports *all* problems together in a [`ConfigError`], each naming the file,
//! the dotted field path and what was expected. Command-line flags override the file: set
//! the fields on the loaded [`Config`] and call [`Config::validate`] again.

mod error;
mod load;
mod serve;
mod units;
mod validate;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};
pub use serve::ServeSection;
pub use units::{ByteSize, format_duration, parse_duration};

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[import]`: reading capture files.
    pub import: ImportSection,
    /// `[reassembly]`: TCP stream reassembly limits.
    pub reassembly: ReassemblySection,
    /// `[http]`: HTTP/1.x parsing limits.
    pub http: HttpSection,
    /// `[segments]`: the ring segments RRPairs are stored in.
    pub segments: SegmentSection,
    /// `[serve]`: the control plane daemon.
    pub serve: ServeSection,
}

/// `[import]`: reading capture files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportSection {
    /// Worker threads (1 to 1024); `None` (unset) means one per core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
}

/// `[reassembly]`: TCP stream reassembly limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReassemblySection {
    /// Most connections tracked at once; the least recently active is evicted beyond it.
    pub max_flows: usize,
    /// Most out-of-order bytes held for one direction of one connection.
    pub max_buffered_per_direction: ByteSize,
    /// Most out-of-order bytes held by all connections together.
    pub max_buffered_total: ByteSize,
    /// A connection with no packet for this long (capture time) is closed.
    #[serde(with = "units::duration")]
    pub idle_timeout: Duration,
    /// Which bytes win when two segments overlap with different contents.
    pub overlap: OverlapPolicy,
}

impl Default for ReassemblySection {
    fn default() -> Self {
        Self {
            max_flows: 262_144,
            max_buffered_per_direction: ByteSize::mib(4),
            max_buffered_total: ByteSize::mib(256),
            idle_timeout: Duration::from_secs(120),
            overlap: OverlapPolicy::First,
        }
    }
}

/// How reassembly resolves overlapping bytes with different contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapPolicy {
    /// The bytes seen first win (`"first"`, the default).
    #[default]
    First,
    /// The bytes seen last win (`"last"`).
    Last,
}

/// `[http]`: HTTP/1.x parsing limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Longest message head (start line and headers) accepted.
    pub max_head_bytes: ByteSize,
    /// Body bytes kept per message (at most 1 GiB); the rest is counted, not stored.
    pub max_body_bytes: ByteSize,
    /// Requests waiting for their responses on one connection.
    pub max_pipelined: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            max_head_bytes: ByteSize::kib(64),
            max_body_bytes: ByteSize::mib(16),
            max_pipelined: 1024,
        }
    }
}

/// `[segments]`: the memory-mapped ring segments RRPairs are stored in.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentSection {
    /// Size of one segment file (1 MiB to 4 GiB, a multiple of 16 bytes).
    pub capacity: ByteSize,
}

impl Default for SegmentSection {
    fn default() -> Self {
        Self {
            capacity: ByteSize::mib(64),
        }
    }
}

impl Config {
    /// Reads, parses and validates the TOML file at `path`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `path` when the file cannot be read, or listing every
    /// syntax, unknown-field, type and range problem found in it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(&text, &origin),
            Err(err) => Err(ConfigError {
                problems: vec![Problem {
                    origin,
                    field: String::new(),
                    message: format!("cannot read the config file: {err}"),
                }],
            }),
        }
    }

    /// Parses and validates TOML `text`; `origin` names its source in error messages.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every syntax, unknown-field, type and range problem.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        load::from_toml(text, origin)
    }

    /// Checks value ranges and cross-field limits, e.g. after command-line overrides.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every value out of range, attributed to `origin`.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let problems: Vec<Problem> = validate::findings(self)
            .into_iter()
            .map(|finding| Problem {
                origin: origin.to_owned(),
                field: finding.field.to_owned(),
                message: finding.message,
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

#[cfg(test)]
mod tests;
