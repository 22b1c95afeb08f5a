//! The one error type of this crate: every problem found in a config file, reported together.

use std::fmt;

/// One thing wrong with a configuration: where it is and what was expected instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (or other source) the configuration came from.
    pub origin: String,
    /// Dotted path of the field, e.g. `reassembly.idle_timeout`; empty when the problem is not
    /// about one field (a missing file, a TOML syntax error).
    pub field: String,
    /// What is wrong and what was expected, with the line number when it is known.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.field, self.message)
        }
    }
}

/// Every problem found while reading or validating a configuration (never empty).
///
/// Displays one line per problem, `FILE: FIELD: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ConfigError {
    /// The problems, in the order they appear in the file, validation problems last.
    pub problems: Vec<Problem>,
}

/// Joins problems one per line.
fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_per_problem() {
        let err = ConfigError {
            problems: vec![
                Problem {
                    origin: "a.toml".into(),
                    field: "http.max_pipelined".into(),
                    message: "must be at least 1 (line 3)".into(),
                },
                Problem {
                    origin: "a.toml".into(),
                    field: String::new(),
                    message: "cannot read: not found".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "a.toml: http.max_pipelined: must be at least 1 (line 3)\n\
             a.toml: cannot read: not found"
        );
    }
}
