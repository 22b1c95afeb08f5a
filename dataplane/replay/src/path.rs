//! Paths into JSON documents: the concrete path of a difference (`$.user.email`,
//! `$.items[3].id`) and the patterns of ignore rules (`$.meta.ts`, `$.items[*].id`, `$..ts`).
//!
//! A pattern ignores the whole subtree below what it matches.

use std::fmt;

/// One step of a concrete path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Writes a concrete path as `$.a.b[2]["odd key"]`.
pub fn show(path: &[Step]) -> String {
    let mut out = String::from("$");
    for step in path {
        match step {
            Step::Key(k) => push_key(&mut out, k),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@')
}

fn push_key(out: &mut String, key: &str) {
    if plain(key) {
        out.push('.');
        out.push_str(key);
    } else {
        out.push('[');
        out.push_str(&serde_json::Value::String(key.to_owned()).to_string());
        out.push(']');
    }
}

/// One step of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternStep {
    /// This member.
    Key(String),
    /// This element.
    Index(usize),
    /// Any member (`.*`).
    AnyKey,
    /// Any element (`[*]`).
    AnyIndex,
    /// Zero or more steps of any kind (`..`), followed by the next step.
    Descend,
}

/// A pattern over JSON paths, as written after `json:` in an ignore rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    steps: Vec<PatternStep>,
}

/// Why a pattern does not parse: the reason and the character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// What was expected.
    pub reason: String,
    /// Where, in characters from 0.
    pub position: usize,
}

impl Pattern {
    /// Parses `$` followed by `.name`, `["name"]`, `[N]`, `[*]`, `.*` or `..name` steps.
    ///
    /// # Errors
    /// [`PatternError`] with the position of the first character that does not fit.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = text.chars().collect();
        let err = |position: usize, reason: &str| PatternError {
            reason: reason.to_owned(),
            position,
        };
        if chars.first() != Some(&'$') {
            return Err(err(0, "a JSON path starts with $"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while let Some(&c) = chars.get(i) {
            match c {
                '.' => {
                    i += 1;
                    if chars.get(i) == Some(&'.') {
                        steps.push(PatternStep::Descend);
                        i += 1;
                        if chars.get(i) == Some(&'[') {
                            continue;
                        }
                    }
                    if chars.get(i) == Some(&'*') {
                        steps.push(PatternStep::AnyKey);
                        i += 1;
                        continue;
                    }
                    let start = i;
                    while chars.get(i).is_some_and(|&c| !matches!(c, '.' | '[' | ']')) {
                        i += 1;
                    }
                    if i == start {
                        return Err(err(i, "expected a member name after ."));
                    }
                    steps.push(PatternStep::Key(chars[start..i].iter().collect()));
                }
                '[' => {
                    let (step, next) = bracket(&chars, i)?;
                    steps.push(step);
                    i = next;
                }
                _ => return Err(err(i, "expected . or [")),
            }
        }
        Ok(Pattern { steps })
    }

    /// The pattern matching exactly `path`, with array indices widened to `[*]`: how noise
    /// found at one element is applied to every element.
    pub fn widened(path: &[Step]) -> Self {
        Pattern {
            steps: path
                .iter()
                .map(|s| match s {
                    Step::Key(k) => PatternStep::Key(k.clone()),
                    Step::Index(_) => PatternStep::AnyIndex,
                })
                .collect(),
        }
    }

    /// Whether the pattern matches `path` or an ancestor of it.
    pub fn covers(&self, path: &[Step]) -> bool {
        covers(&self.steps, path)
    }
}

fn covers(pattern: &[PatternStep], path: &[Step]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return true;
    };
    if *first == PatternStep::Descend {
        return (0..=path.len()).any(|skip| covers(rest, path.get(skip..).unwrap_or(&[])));
    }
    let Some((step, path_rest)) = path.split_first() else {
        return false;
    };
    let fits = match (first, step) {
        (PatternStep::Key(a), Step::Key(b)) => a == b,
        (PatternStep::Index(a), Step::Index(b)) => a == b,
        (PatternStep::AnyKey, Step::Key(_)) | (PatternStep::AnyIndex, Step::Index(_)) => true,
        _ => false,
    };
    fits && covers(rest, path_rest)
}

/// Parses `[N]`, `[*]`, `["name"]` or `['name']` starting at `chars[i] == '['`.
fn bracket(chars: &[char], i: usize) -> Result<(PatternStep, usize), PatternError> {
    let err = |position: usize, reason: &str| PatternError {
        reason: reason.to_owned(),
        position,
    };
    let mut j = i + 1;
    match chars.get(j) {
        Some('*') => {
            if chars.get(j + 1) != Some(&']') {
                return Err(err(j + 1, "expected ] after *"));
            }
            Ok((PatternStep::AnyIndex, j + 2))
        }
        Some(&q) if q == '"' || q == '\'' => {
            let open = j;
            j += 1;
            loop {
                match chars.get(j) {
                    None => return Err(err(j, "unterminated quoted name")),
                    Some('\\') => j += 2,
                    Some(&c) if c == q => break,
                    Some(_) => j += 1,
                }
            }
            let inner: String = chars.get(open + 1..j).unwrap_or(&[]).iter().collect();
            let name = if q == '"' {
                serde_json::from_str::<String>(&format!("\"{inner}\""))
                    .map_err(|_| err(open, "bad escape in the quoted name (JSON string rules)"))?
            } else {
                inner.replace("\\'", "'").replace("\\\\", "\\")
            };
            if chars.get(j + 1) != Some(&']') {
                return Err(err(j + 1, "expected ] after the quoted name"));
            }
            Ok((PatternStep::Key(name), j + 2))
        }
        Some(c) if c.is_ascii_digit() => {
            let start = j;
            while chars.get(j).is_some_and(char::is_ascii_digit) {
                j += 1;
            }
            let digits: String = chars[start..j].iter().collect();
            let index = digits.parse().map_err(|_| err(start, "index too large"))?;
            if chars.get(j) != Some(&']') {
                return Err(err(j, "expected ] after the index"));
            }
            Ok((PatternStep::Index(index), j + 1))
        }
        _ => Err(err(j, "expected an index, * or a quoted name after [")),
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("$");
        let mut after_descend = false;
        for step in &self.steps {
            match step {
                PatternStep::Descend => {
                    // `..` then the next step without its own leading dot.
                    out.push_str("..");
                    after_descend = true;
                    continue;
                }
                PatternStep::Key(k) if after_descend && plain(k) => out.push_str(k),
                PatternStep::Key(k) => push_key(&mut out, k),
                PatternStep::AnyKey if after_descend => out.push('*'),
                PatternStep::AnyKey => out.push_str(".*"),
                PatternStep::Index(i) => out.push_str(&format!("[{i}]")),
                PatternStep::AnyIndex => out.push_str("[*]"),
            }
            after_descend = false;
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &[&str]) -> Vec<Step> {
        text.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Key((*s).to_owned()),
            })
            .collect()
    }

    #[test]
    fn concrete_paths_show_like_jsonpath() {
        assert_eq!(show(&path(&["user", "email"])), "$.user.email");
        assert_eq!(show(&path(&["items", "3", "id"])), "$.items[3].id");
        assert_eq!(show(&path(&["a b"])), "$[\"a b\"]");
        assert_eq!(show(&[]), "$");
    }

    #[test]
    fn patterns_match_paths_and_subtrees() {
        let p = Pattern::parse("$.meta.ts").unwrap();
        assert!(p.covers(&path(&["meta", "ts"])));
        assert!(p.covers(&path(&["meta", "ts", "nanos"])));
        assert!(!p.covers(&path(&["meta"])));
        assert!(!p.covers(&path(&["meta", "tz"])));
        let p = Pattern::parse("$.items[*].id").unwrap();
        assert!(p.covers(&path(&["items", "7", "id"])));
        assert!(!p.covers(&path(&["items", "x", "id"])));
        let p = Pattern::parse("$..ts").unwrap();
        assert!(p.covers(&path(&["ts"])));
        assert!(p.covers(&path(&["a", "0", "b", "ts"])));
        assert!(!p.covers(&path(&["a", "tss"])));
        let p = Pattern::parse("$.*.id").unwrap();
        assert!(p.covers(&path(&["x", "id"])));
        assert!(!p.covers(&path(&["0", "id"])));
        let p = Pattern::parse("$[\"a.b\"][2]").unwrap();
        assert!(p.covers(&path(&["a.b", "2"])));
        assert!(Pattern::parse("$").unwrap().covers(&path(&["anything"])));
    }

    #[test]
    fn patterns_print_as_written() {
        for text in [
            "$.meta.ts",
            "$.items[*].id",
            "$..ts",
            "$.*.id",
            "$[\"a b\"][2]",
            "$",
            "$..[\"a b\"]",
            "$..*",
            "$..[3]",
            "$[\"\\u0000\\\"\"]",
        ] {
            assert_eq!(Pattern::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Pattern::parse("$['q']").unwrap().to_string(), "$.q");
        assert_eq!(
            Pattern::widened(&path(&["items", "3", "ts"])).to_string(),
            "$.items[*].ts"
        );
    }

    #[test]
    fn printed_patterns_parse_back() {
        // Found by the fuzzer: control characters in a member name printed as JSON escapes.
        let rule = "$.ivem\0\0[*][\"a b\"]..ts";
        let p = Pattern::parse(rule).unwrap();
        assert_eq!(Pattern::parse(&p.to_string()).unwrap(), p);
        assert_eq!(p.to_string(), "$[\"ivem\\u0000\\u0000\"][*][\"a b\"]..ts");
        let p = Pattern::parse("$['it\\'s']").unwrap();
        assert!(p.covers(&[Step::Key("it's".into())]));
        assert_eq!(Pattern::parse(&p.to_string()).unwrap(), p);
        assert!(Pattern::parse("$[\"\\q\"]").is_err());
    }

    #[test]
    fn bad_patterns_say_where() {
        let cases = [
            ("meta.ts", 0),
            ("$meta", 1),
            ("$.", 2),
            ("$..", 3),
            ("$[", 2),
            ("$[1", 3),
            ("$[*", 3),
            ("$[\"x", 4),
            ("$[\"x\"", 5),
            ("$[99999999999999999999999]", 2),
            ("$.a]", 3),
        ];
        for (text, position) in cases {
            let e = Pattern::parse(text).unwrap_err();
            assert_eq!(e.position, position, "{text}: {e:?}");
        }
    }
}
