//! Turning TOML text into a [`Config`] while collecting every problem instead of the first.
//!
//! serde stops at its first error, so each section is checked key by key: every key is
//! deserialized on its own into the section struct (all fields have defaults), a key that
//! fails becomes a [`Problem`] and is left out, and the section is then built from the keys
//! that passed. The derived `Deserialize` impls thus stay the only list of field names, types
//! and `deny_unknown_fields`; this module adds locations and the section name to their errors.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::{Config, ConfigError, Problem, validate};

/// The sections of the file, in schema order.
const SECTIONS: &[&str] = &[
    "import",
    "reassembly",
    "http",
    "segments",
    "serve",
    "replay",
];

/// Parses and validates `text`, attributing problems to `origin`.
pub(crate) fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    let mut loader = Loader {
        text,
        origin,
        problems: Vec::new(),
        offsets: BTreeMap::new(),
        rejected: BTreeSet::new(),
    };
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            loader.syntax(error, root.get_ref());
        }
        return Err(loader.finish());
    }

    let mut config = Config::default();
    for (key, value) in root.get_ref() {
        let name: &str = key.get_ref();
        match name {
            "import" => config.import = loader.section(name, value),
            "reassembly" => config.reassembly = loader.section(name, value),
            "http" => config.http = loader.section(name, value),
            "segments" => config.segments = loader.section(name, value),
            "serve" => config.serve = loader.section(name, value),
            // Read and validated by the command that owns it (`tapline replay --config`).
            "replay" => {}
            _ => {
                let what = if value.get_ref().is_table() {
                    "section"
                } else {
                    "top-level key"
                };
                let message = format!(
                    "unknown {what} `{name}`; expected one of the sections {}",
                    SECTIONS
                        .iter()
                        .map(|s| format!("[{s}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                loader.push(name, message, Some(key.span().start));
            }
        }
    }

    for finding in validate::findings(&config) {
        let depends_on_rejected = loader.rejected.contains(finding.field)
            || finding.related.is_some_and(|r| loader.rejected.contains(r));
        if !depends_on_rejected {
            let at = loader.offsets.get(finding.field).copied();
            loader.push(finding.field, finding.message, at);
        }
    }
    if loader.problems.is_empty() {
        Ok(config)
    } else {
        Err(loader.finish())
    }
}

/// Problems found so far and where each field was set.
struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
    /// Problems with the byte offset they point at, for sorting into file order.
    problems: Vec<(Option<usize>, Problem)>,
    /// Byte offset of each dotted field path set in the file.
    offsets: BTreeMap<String, usize>,
    /// Fields whose value was rejected, so validation does not judge their defaults.
    rejected: BTreeSet<String>,
}

impl Loader<'_> {
    /// Builds section `T` named `name` from `value`, recording a problem for each bad key.
    fn section<T: DeserializeOwned + Default>(
        &mut self,
        name: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> T {
        let DeValue::Table(table) = value.get_ref() else {
            let message = format!(
                "expected a table `[{name}]`, found {}",
                value.get_ref().type_str()
            );
            self.push(name, message, Some(value.span().start));
            return T::default();
        };
        let mut accepted = DeTable::new();
        for (key, field_value) in table {
            let key_name: &str = key.get_ref();
            let field = format!("{name}.{key_name}");
            self.offsets.insert(field.clone(), key.span().start);
            let mut single = DeTable::new();
            single.insert(key.clone(), field_value.clone());
            match deserialize::<T>(single, field_value.span()) {
                Ok(_) => {
                    accepted.insert(key.clone(), field_value.clone());
                }
                Err(error) => {
                    let message = describe(error.message(), key_name, name);
                    let at = error.span().unwrap_or(key.span()).start;
                    self.push(&field, message, Some(at));
                    self.rejected.insert(field);
                }
            }
        }
        // Each accepted key deserialized alone, and fields are independent, so this succeeds;
        // should it not, the error is still reported rather than lost.
        deserialize::<T>(accepted, value.span()).unwrap_or_else(|error| {
            self.push(
                name,
                error.message().to_owned(),
                error.span().map(|s| s.start),
            );
            T::default()
        })
    }

    /// Records a TOML syntax error, naming the key on the same line when there is one.
    fn syntax(&mut self, error: &toml::de::Error, root: &DeTable<'_>) {
        let at = error.span().map(|s| s.start);
        let field = at
            .and_then(|offset| {
                self.key_on_line(root, offset)
                    .or_else(|| key_written_on_line(self.text, offset))
            })
            .unwrap_or_default();
        let position = at
            .map(|offset| {
                let (line, column) = line_column(self.text, offset);
                format!(" (line {line}, column {column})")
            })
            .unwrap_or_default();
        let message = format!("invalid TOML: {}{position}", error.message().trim_end());
        self.problems.push((
            at,
            Problem {
                origin: self.origin.to_owned(),
                field,
                message,
            },
        ));
    }

    /// The dotted path of a key (at most two levels deep) written on the line of `offset`.
    fn key_on_line(&self, root: &DeTable<'_>, offset: usize) -> Option<String> {
        let line = line_column(self.text, offset).0;
        let on_line = |span: Range<usize>| line_column(self.text, span.start).0 == line;
        for (section, value) in root {
            let section_name: &str = section.get_ref();
            if let DeValue::Table(table) = value.get_ref() {
                for (key, _) in table {
                    if on_line(key.span()) {
                        let key_name: &str = key.get_ref();
                        return Some(format!("{section_name}.{key_name}"));
                    }
                }
            }
            if on_line(section.span()) {
                return Some(section_name.to_owned());
            }
        }
        None
    }

    /// Records a problem with `field`, adding the line of byte offset `at` when known.
    fn push(&mut self, field: &str, message: String, at: Option<usize>) {
        let message = match at {
            Some(offset) => format!("{message} (line {})", line_column(self.text, offset).0),
            None => message,
        };
        self.problems.push((
            at,
            Problem {
                origin: self.origin.to_owned(),
                field: field.to_owned(),
                message,
            },
        ));
    }

    /// All problems in file order; those without a location keep their order at the end.
    fn finish(mut self) -> ConfigError {
        self.problems
            .sort_by_key(|&(at, _)| (at.is_none(), at.unwrap_or(0)));
        ConfigError {
            problems: self.problems.into_iter().map(|(_, p)| p).collect(),
        }
    }
}

/// Deserializes `T` from `table`, treated as a value spanning `span`.
fn deserialize<T: DeserializeOwned>(
    table: DeTable<'_>,
    span: Range<usize>,
) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(Spanned::new(
        span,
        DeValue::Table(table),
    )))
}

/// Rewrites serde's message for `key` in `section`: an unknown field gets the section named.
fn describe(message: &str, key: &str, section: &str) -> String {
    let prefix = format!("unknown field `{key}`");
    match message.strip_prefix(&prefix) {
        Some(rest) => format!("unknown field `{key}` in [{section}]{rest}"),
        None => message.trim_end().to_owned(),
    }
}

/// The dotted key written on the line of byte `offset`, read from the text itself: the key
/// before `=` under the nearest `[section]` header above, or that header. For syntax errors
/// whose key the parser dropped (a duplicate key, say).
fn key_written_on_line(text: &str, offset: usize) -> Option<String> {
    let line = line_column(text, offset).0;
    let lines: Vec<&str> = text.lines().take(line).collect();
    if lines.len() < line {
        return None;
    }
    let (current, above) = lines.split_last()?;
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[["))
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    if let Some(section) = header(current) {
        return Some(section);
    }
    let (key, _) = current.split_once('=')?;
    let key = key.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(plain) {
        return None;
    }
    Some(match above.iter().rev().find_map(|l| header(l)) {
        Some(section) => format!("{section}.{key}"),
        None => key.to_owned(),
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn keys_are_read_from_the_text_of_a_line() {
        let text = "top = 1\n[http]\n# c\nmax_pipelined = 1\n\"quoted\" = 2\n[ segments ]\n";
        let at_line = |n: usize| text.lines().take(n - 1).map(|l| l.len() + 1).sum::<usize>();
        assert_eq!(
            key_written_on_line(text, at_line(1)).as_deref(),
            Some("top")
        );
        assert_eq!(
            key_written_on_line(text, at_line(2)).as_deref(),
            Some("http")
        );
        assert_eq!(key_written_on_line(text, at_line(3)), None);
        assert_eq!(
            key_written_on_line(text, at_line(4)).as_deref(),
            Some("http.max_pipelined")
        );
        assert_eq!(key_written_on_line(text, at_line(5)), None);
        assert_eq!(
            key_written_on_line(text, at_line(6)).as_deref(),
            Some("segments")
        );
    }

    #[test]
    fn describe_names_the_section_of_an_unknown_field() {
        assert_eq!(
            describe("unknown field `x`, expected `capacity`", "x", "segments"),
            "unknown field `x` in [segments], expected `capacity`"
        );
        assert_eq!(describe("invalid type\n", "x", "segments"), "invalid type");
    }
}
