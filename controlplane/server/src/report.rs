//! A job's reports: `report.json`, `report.html` and `junit.xml` in its directory, and the
//! summary the API shows (the top-level numbers, flags and strings of `report.json`).

use std::path::{Path, PathBuf};

/// A report format the API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// `report.json`.
    Json,
    /// `report.html`.
    Html,
    /// `junit.xml`.
    Junit,
}

impl ReportFormat {
    /// Every format, in the order the API lists them.
    pub const ALL: [ReportFormat; 3] =
        [ReportFormat::Json, ReportFormat::Html, ReportFormat::Junit];

    /// The format's name (`json`, `html`, `junit`).
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
            ReportFormat::Junit => "junit",
        }
    }

    /// The file it is written to in a job's directory.
    pub fn file(self) -> &'static str {
        match self {
            ReportFormat::Json => "report.json",
            ReportFormat::Html => "report.html",
            ReportFormat::Junit => "junit.xml",
        }
    }

    /// Its HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Junit => "application/xml",
        }
    }

    /// Parses `json`, `html` or `junit`.
    ///
    /// # Errors
    /// A message listing the formats.
    pub fn parse(name: &str) -> Result<ReportFormat, String> {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("unknown report format {name:?}: expected json, html or junit"))
    }

    /// The report's path in job directory `dir`.
    pub fn path(self, dir: &Path) -> PathBuf {
        dir.join(self.file())
    }
}

/// The formats whose files exist in `dir`.
pub fn available(dir: &Path) -> Vec<String> {
    ReportFormat::ALL
        .into_iter()
        .filter(|f| f.path(dir).is_file())
        .map(|f| f.name().to_owned())
        .collect()
}

/// The summary of `dir/report.json`: its top-level scalar fields, `None` without a report.
pub fn summary(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(ReportFormat::Json.path(dir)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let object = value.as_object()?;
    let scalars: serde_json::Map<String, serde_json::Value> = object
        .iter()
        .filter(|(_, v)| v.is_number() || v.is_boolean() || v.is_string())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(serde_json::Value::Object(scalars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_the_scalars_and_formats_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(summary(dir.path()), None);
        assert!(available(dir.path()).is_empty());
        std::fs::write(
            dir.path().join("report.json"),
            r#"{"passed":true,"total":5,"target":"http://x","endpoints":[1,2],"latency":{"p99":1}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("junit.xml"), "<testsuites/>").unwrap();
        assert_eq!(
            summary(dir.path()),
            Some(serde_json::json!({"passed":true,"total":5,"target":"http://x"}))
        );
        assert_eq!(available(dir.path()), ["json", "junit"]);
        assert_eq!(ReportFormat::parse("html"), Ok(ReportFormat::Html));
        assert!(ReportFormat::parse("pdf").unwrap_err().contains("junit"));
    }
}
