//! One difference between a recorded response and the one the target gave: where it is
//! (status, a header, the body, a JSON member), what kind it is, and both sides as shown in
//! reports.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::path::{self, Step};

/// Longest value kept in a report, in serialized characters; a longer one is summarised.
const MAX_SHOWN: usize = 512;

/// Where a difference is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// The status code.
    Status,
    /// A header, by lowercase name.
    Header(String),
    /// The body as a whole (not JSON, or JSON on one side only).
    Body,
    /// A member of a JSON body.
    Json(Vec<Step>),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Status => f.write_str("status"),
            Location::Header(name) => write!(f, "header:{name}"),
            Location::Body => f.write_str("body"),
            Location::Json(steps) => f.write_str(&path::show(steps)),
        }
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Both sides have it, with different values.
    Changed,
    /// The recorded response has it, the target's does not.
    Missing,
    /// The target's response has it, the recorded one does not.
    Added,
}

impl Kind {
    /// The word used in reports.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Changed => "changed",
            Kind::Missing => "missing",
            Kind::Added => "added",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Where: `status`, `header:NAME`, `body` or a JSON path such as `$.user.email`.
    #[serde(rename = "path")]
    pub location: Location,
    /// What kind.
    pub kind: Kind,
    /// The recorded value (absent when `added`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// The target's value (absent when `missing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// More about it (for a body: where the bytes first differ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Difference {
    /// One line for people: `$.user.email: "a@x" → "b@x"`.
    pub fn line(&self) -> String {
        let side = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "(none)".to_owned(), Value::to_string)
        };
        let mut text = match self.kind {
            Kind::Changed => format!(
                "{}: {} → {}",
                self.location,
                side(&self.expected),
                side(&self.actual)
            ),
            Kind::Missing => format!(
                "{}: missing (recorded {})",
                self.location,
                side(&self.expected)
            ),
            Kind::Added => format!("{}: added {}", self.location, side(&self.actual)),
        };
        if let Some(detail) = &self.detail {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        text
    }
}

/// A JSON value as kept in a report: itself when short, else a summary string.
pub fn shown(value: &Value) -> Value {
    match value {
        Value::Object(_) | Value::Array(_) | Value::String(_) => {
            let text = value.to_string();
            if text.len() <= MAX_SHOWN {
                value.clone()
            } else {
                let cut: String = text.chars().take(MAX_SHOWN).collect();
                Value::String(format!("{cut}… ({} bytes)", text.len()))
            }
        }
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn serializes_with_the_path_as_text() {
        let d = Difference {
            location: Location::Json(vec![Step::Key("user".into()), Step::Key("email".into())]),
            kind: Kind::Changed,
            expected: Some(json!("a@x")),
            actual: Some(json!("b@x")),
            detail: None,
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"path": "$.user.email", "kind": "changed", "expected": "a@x", "actual": "b@x"})
        );
        assert_eq!(d.line(), r#"$.user.email: "a@x" → "b@x""#);
        let d = Difference {
            location: Location::Header("x-a".into()),
            kind: Kind::Missing,
            expected: Some(json!("1")),
            actual: None,
            detail: Some("d".into()),
        };
        assert_eq!(d.line(), r#"header:x-a: missing (recorded "1") (d)"#);
    }

    #[test]
    fn long_values_are_summarised() {
        let long = json!("x".repeat(2000));
        let s = shown(&long);
        assert!(s.as_str().unwrap().ends_with("(2002 bytes)"));
        assert_eq!(shown(&json!(5)), json!(5));
    }
}
