//! A structural diff of two JSON documents that names each difference by its path
//! (`$.user.email`): member order and number spelling (`1` and `1.0`) do not count, ignored
//! subtrees are skipped, arrays are compared element by element.

use serde_json::Value;

use crate::diff::{Difference, Kind, Location, shown};
use crate::path::Step;
use crate::rules::IgnoreSet;

/// Appends the differences between `expected` and `actual` to `out` while it holds fewer than
/// `limit`; returns how many there were in all.
pub fn diff_json(
    expected: &Value,
    actual: &Value,
    ignore: &IgnoreSet,
    out: &mut Vec<Difference>,
    limit: usize,
) -> usize {
    let mut walk = Walk {
        ignore,
        out,
        limit,
        found: 0,
        path: Vec::new(),
    };
    walk.value(expected, actual);
    walk.found
}

struct Walk<'a> {
    ignore: &'a IgnoreSet,
    out: &'a mut Vec<Difference>,
    limit: usize,
    found: usize,
    path: Vec<Step>,
}

impl Walk<'_> {
    fn value(&mut self, e: &Value, a: &Value) {
        if self.ignore.json(&self.path) {
            return;
        }
        match (e, a) {
            (Value::Object(eo), Value::Object(ao)) => {
                for (k, ev) in eo {
                    self.path.push(Step::Key(k.clone()));
                    match ao.get(k) {
                        Some(av) => self.value(ev, av),
                        None => self.report(Kind::Missing, Some(ev), None),
                    }
                    self.path.pop();
                }
                for (k, av) in ao {
                    if !eo.contains_key(k) {
                        self.path.push(Step::Key(k.clone()));
                        self.report(Kind::Added, None, Some(av));
                        self.path.pop();
                    }
                }
            }
            (Value::Array(ea), Value::Array(aa)) => {
                for i in 0..ea.len().max(aa.len()) {
                    self.path.push(Step::Index(i));
                    match (ea.get(i), aa.get(i)) {
                        (Some(ev), Some(av)) => self.value(ev, av),
                        (Some(ev), None) => self.report(Kind::Missing, Some(ev), None),
                        (None, Some(av)) => self.report(Kind::Added, None, Some(av)),
                        (None, None) => {}
                    }
                    self.path.pop();
                }
            }
            (Value::Number(en), Value::Number(an)) => {
                let same =
                    en == an || matches!((en.as_f64(), an.as_f64()), (Some(x), Some(y)) if x == y);
                if !same {
                    self.report(Kind::Changed, Some(e), Some(a));
                }
            }
            _ if e == a => {}
            _ => self.report(Kind::Changed, Some(e), Some(a)),
        }
    }

    fn report(&mut self, kind: Kind, expected: Option<&Value>, actual: Option<&Value>) {
        if self.ignore.json(&self.path) {
            return;
        }
        self.found += 1;
        if self.out.len() < self.limit {
            self.out.push(Difference {
                location: Location::Json(self.path.clone()),
                kind,
                expected: expected.map(shown),
                actual: actual.map(shown),
                detail: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::IgnoreRule;

    fn diff(e: Value, a: Value, rules: &[&str]) -> Vec<(String, Kind)> {
        let mut set = IgnoreSet::defaults();
        for r in rules {
            set.add(&IgnoreRule::parse(r).unwrap());
        }
        let mut out = Vec::new();
        let n = diff_json(&e, &a, &set, &mut out, 100);
        assert_eq!(n, out.len());
        out.into_iter()
            .map(|d| (d.location.to_string(), d.kind))
            .collect()
    }

    #[test]
    fn names_the_field() {
        let e = json!({"user": {"id": 1, "email": "a@x"}, "tags": ["a", "b"]});
        let a = json!({"tags": ["a", "c", "d"], "user": {"email": "b@x", "id": 1.0}, "new": true});
        assert_eq!(
            diff(e, a, &[]),
            [
                ("$.user.email".to_owned(), Kind::Changed),
                ("$.tags[1]".to_owned(), Kind::Changed),
                ("$.tags[2]".to_owned(), Kind::Added),
                ("$.new".to_owned(), Kind::Added),
            ]
        );
    }

    #[test]
    fn missing_and_type_changes() {
        let e = json!({"a": {"b": 1}, "c": [1], "d": null});
        let a = json!({"a": [1], "d": 0});
        assert_eq!(
            diff(e, a, &[]),
            [
                ("$.a".to_owned(), Kind::Changed),
                ("$.c".to_owned(), Kind::Missing),
                ("$.d".to_owned(), Kind::Changed),
            ]
        );
    }

    #[test]
    fn ignored_subtrees_are_skipped() {
        let e =
            json!({"meta": {"ts": 1, "id": "x"}, "items": [{"id": 1, "v": 1}, {"id": 2, "v": 2}]});
        let a =
            json!({"meta": {"ts": 2, "id": "y"}, "items": [{"id": 7, "v": 1}, {"id": 8, "v": 3}]});
        assert_eq!(
            diff(e.clone(), a.clone(), &["json:$.meta", "json:$.items[*].id"]),
            [("$.items[1].v".to_owned(), Kind::Changed)]
        );
        assert_eq!(
            diff(e, a, &["json:$..id", "json:$..v", "json:$.meta.ts"]),
            []
        );
        assert_eq!(
            diff(json!({"a": 1}), json!({"a": 1, "ts": 5}), &["json:$.ts"]),
            []
        );
    }

    #[test]
    fn equal_documents_have_no_differences() {
        let v = json!({"a": [1, {"b": null}], "c": "d"});
        assert_eq!(diff(v.clone(), v, &[]), []);
        assert_eq!(diff(json!(1), json!(1.0), &[]), []);
    }

    #[test]
    fn the_limit_counts_all_but_keeps_some() {
        let e = json!((0..50).collect::<Vec<_>>());
        let a = json!((100..150).collect::<Vec<_>>());
        let mut out = Vec::new();
        let n = diff_json(&e, &a, &IgnoreSet::defaults(), &mut out, 10);
        assert_eq!((n, out.len()), (50, 10));
    }
}
