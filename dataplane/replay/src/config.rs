//! The `[replay]` section of a tapline config file (`--config FILE`): the same settings as the
//! flags, which override it (ignore rules add up).
//!
//! ```toml
//! [replay]
//! target = "http://127.0.0.1:8080"
//! keep_host = false
//! filter = "port=8080"
//! ignore = ["header:X-Request-Id", "json:$.meta.ts"]
//! rate = "100%"             # or "1000%", "max"
//! connections = 8           # closed loop (rate = "max")
//! duration = "30s"          # loop the snapshot
//! timeout = "10s"           # per connection attempt and response
//! assert = "p99<=1.1x,errors<=0.5%"   # or a list
//! report = "replay-report"  # directory for report.json and report.html
//! junit = "replay.xml"
//! ```
//! Other sections of the file belong to other commands and are not read here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ReplayError;

/// `assert` as one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Asserts {
    /// `"p99<=1.1x,errors<=0.5%"`.
    One(String),
    /// `["p99<=1.1x", "errors<=0.5%"]`.
    Many(Vec<String>),
}

impl Asserts {
    /// The comma-joined expression.
    pub fn joined(&self) -> String {
        match self {
            Asserts::One(s) => s.clone(),
            Asserts::Many(list) => list.join(","),
        }
    }
}

/// The `[replay]` section; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySection {
    /// `--target`.
    pub target: Option<String>,
    /// `--keep-host`.
    pub keep_host: Option<bool>,
    /// `--filter`.
    pub filter: Option<String>,
    /// `--ignore`, added to the flags'.
    pub ignore: Vec<String>,
    /// `--rate`.
    pub rate: Option<String>,
    /// `--connections`.
    pub connections: Option<usize>,
    /// `--duration`.
    pub duration: Option<String>,
    /// `--timeout`.
    pub timeout: Option<String>,
    /// `--assert`.
    pub assert: Option<Asserts>,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--junit`.
    pub junit: Option<PathBuf>,
}

/// Reads the `[replay]` section of `path` (an empty section when there is none).
///
/// # Errors
/// [`ReplayError::Config`] naming the file and the field when it cannot be read or a field is
/// unknown or of the wrong type.
pub fn load(path: &Path) -> Result<ReplaySection, ReplayError> {
    let fail = |reason: String| ReplayError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse(&text).map_err(fail)
}

/// Parses the `[replay]` section of a config file's text.
///
/// # Errors
/// A message naming the field.
pub fn parse(text: &str) -> Result<ReplaySection, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    match table.remove("replay") {
        None => Ok(ReplaySection::default()),
        Some(section @ toml::Value::Table(_)) => section
            .try_into::<ReplaySection>()
            .map_err(|e| format!("[replay]: {}", e.message())),
        Some(_) => Err("replay: expected a [replay] table".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_read_and_others_left_alone() {
        let text = r#"
[import]
workers = 2

[replay]
target = "http://127.0.0.1:8080"
ignore = ["header:X-Request-Id"]
rate = "1000%"
connections = 4
assert = ["p99<=1.1x", "errors<=0.5%"]
report = "out"
"#;
        let s = parse(text).unwrap();
        assert_eq!(s.target.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.ignore, ["header:X-Request-Id"]);
        assert_eq!(s.connections, Some(4));
        assert_eq!(s.assert.unwrap().joined(), "p99<=1.1x,errors<=0.5%");
        assert_eq!(s.report, Some(PathBuf::from("out")));
        assert_eq!(
            parse("[import]\nworkers = 1\n").unwrap(),
            ReplaySection::default()
        );
        let one = parse("[replay]\nassert = \"match>=99%\"\n").unwrap();
        assert_eq!(one.assert.unwrap().joined(), "match>=99%");
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("[replay]\nrat = \"100%\"\n").unwrap_err();
        assert!(e.contains("[replay]") && e.contains("rat"), "{e}");
        let e = parse("[replay]\nconnections = \"four\"\n").unwrap_err();
        assert!(e.contains("[replay]"), "{e}");
        let e = parse("replay = 3\n").unwrap_err();
        assert!(e.contains("[replay] table"), "{e}");
        assert!(parse("[replay\n").is_err());
        let e = load(Path::new("/nonexistent/tapline.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/tapline.toml"), "{e}");
    }
}
