//! Ignore rules: what the comparer leaves out, from `--ignore` flags, the config file, the
//! built-in list of volatile headers, and the noise found in the recording itself.
//!
//! ```text
//! header:NAME      a response header (any case), e.g. header:X-Request-Id
//! json:PATH        a JSON member and everything below it, e.g. json:$.meta.ts, json:$..ts
//! body             the whole body
//! status           the status code
//! ```

use std::collections::BTreeSet;
use std::fmt;

use crate::path::{Pattern, Step};

/// An `--ignore` rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--ignore {rule:?}: {reason}")]
pub struct RuleError {
    /// The rule as given.
    pub rule: String,
    /// What was expected.
    pub reason: String,
}

/// One thing the comparer does not look at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IgnoreRule {
    /// A response header, by lowercase name.
    Header(String),
    /// A JSON subtree of the body.
    Json(Pattern),
    /// The whole body.
    Body,
    /// The status code.
    Status,
}

impl IgnoreRule {
    /// Parses `header:NAME`, `json:PATH`, `body` or `status`.
    ///
    /// # Errors
    /// [`RuleError`] naming the rule and what was expected.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let rule = text.trim();
        let fail = |reason: String| RuleError {
            rule: text.to_owned(),
            reason,
        };
        if rule == "body" {
            return Ok(IgnoreRule::Body);
        }
        if rule == "status" {
            return Ok(IgnoreRule::Status);
        }
        if let Some(name) = rule.strip_prefix("header:") {
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(fail(format!(
                    "{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
                )));
            }
            return Ok(IgnoreRule::Header(name.to_ascii_lowercase()));
        }
        if let Some(path) = rule.strip_prefix("json:") {
            return Pattern::parse(path.trim())
                .map(IgnoreRule::Json)
                .map_err(|e| {
                    fail(format!(
                        "{} at character {} of the path",
                        e.reason, e.position
                    ))
                });
        }
        Err(fail(
            "expected header:NAME, json:PATH (e.g. json:$.meta.ts), body or status".into(),
        ))
    }
}

impl fmt::Display for IgnoreRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreRule::Header(name) => write!(f, "header:{name}"),
            IgnoreRule::Json(pattern) => write!(f, "json:{pattern}"),
            IgnoreRule::Body => f.write_str("body"),
            IgnoreRule::Status => f.write_str("status"),
        }
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Hop-by-hop headers and framing: never compared (the body is compared instead).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Headers whose values change from one answer to the next by nature: ignored by default.
pub const VOLATILE: &[&str] = &[
    "date",
    "age",
    "expires",
    "server",
    "server-timing",
    "x-response-time",
    "x-runtime",
];

/// The set of ignore rules that applies to one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreSet {
    headers: BTreeSet<String>,
    json: Vec<Pattern>,
    body: bool,
    status: bool,
}

impl IgnoreSet {
    /// The built-in set: hop-by-hop and volatile headers.
    pub fn defaults() -> Self {
        let mut set = IgnoreSet::default();
        for name in HOP_BY_HOP.iter().chain(VOLATILE) {
            set.headers.insert((*name).to_owned());
        }
        set
    }

    /// Adds a rule.
    pub fn add(&mut self, rule: &IgnoreRule) {
        match rule {
            IgnoreRule::Header(name) => {
                self.headers.insert(name.clone());
            }
            IgnoreRule::Json(pattern) => {
                if !self.json.contains(pattern) {
                    self.json.push(pattern.clone());
                }
            }
            IgnoreRule::Body => self.body = true,
            IgnoreRule::Status => self.status = true,
        }
    }

    /// Whether the header `name` (any case) is left out.
    pub fn header(&self, name: &str) -> bool {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.headers.contains(&name.to_ascii_lowercase())
        } else {
            self.headers.contains(name)
        }
    }

    /// Whether the JSON member at `path` is left out.
    pub fn json(&self, path: &[Step]) -> bool {
        self.json.iter().any(|p| p.covers(path))
    }

    /// Whether the body is left out.
    pub fn body(&self) -> bool {
        self.body
    }

    /// Whether the status is left out.
    pub fn status(&self) -> bool {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_print() {
        for (text, shown) in [
            ("header:X-Request-Id", "header:x-request-id"),
            ("json:$.meta.ts", "json:$.meta.ts"),
            (" json: $..id ", "json:$..id"),
            ("body", "body"),
            ("status", "status"),
        ] {
            assert_eq!(IgnoreRule::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn bad_rules_name_the_rule() {
        for bad in [
            "",
            "header:",
            "header:a b",
            "json:meta.ts",
            "json:$.a[",
            "cookie:x",
            "bodies",
        ] {
            let e = IgnoreRule::parse(bad).unwrap_err();
            assert_eq!(e.rule, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let e = IgnoreRule::parse("json:$.a[").unwrap_err();
        assert!(e.reason.contains("character 4"), "{e}");
    }

    #[test]
    fn sets_answer_by_name_and_path() {
        let mut set = IgnoreSet::defaults();
        assert!(set.header("Date") && set.header("transfer-encoding"));
        assert!(!set.header("x-request-id"));
        set.add(&IgnoreRule::parse("header:X-Request-Id").unwrap());
        set.add(&IgnoreRule::parse("json:$.meta.ts").unwrap());
        set.add(&IgnoreRule::parse("json:$.meta.ts").unwrap());
        assert!(set.header("X-REQUEST-ID"));
        assert!(set.json(&[Step::Key("meta".into()), Step::Key("ts".into())]));
        assert!(!set.json(&[Step::Key("meta".into())]));
        assert!(!set.body() && !set.status());
        set.add(&IgnoreRule::Body);
        set.add(&IgnoreRule::Status);
        assert!(set.body() && set.status());
    }
}
