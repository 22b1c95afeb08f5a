//! Noise found in the recording itself: when identical requests (same server, method, target
//! and body) got responses that differ, whatever differs between them — a timestamp field, a
//! generated id, a header — is noise, and is ignored for every request of that endpoint.
//!
//! JSON array indices are widened (`$.items[3].ts` becomes `$.items[*].ts`), so noise seen in
//! one element covers them all.

use std::collections::{BTreeMap, BTreeSet};

use crate::compare::{Expected, Observed, compare};
use crate::diff::Location;
use crate::path::Pattern;
use crate::rules::{IgnoreRule, IgnoreSet};

/// Most recorded responses of one request compared with its first.
const MAX_PER_GROUP: usize = 16;
/// Most comparisons in all.
const MAX_COMPARISONS: usize = 20_000;
/// Rounds of comparing again with what was found, to see past the per-response cap.
const MAX_ROUNDS: usize = 8;

/// One recorded response to a request, for noise detection.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// What makes two requests identical (a hash of server, method, target and body).
    pub identity: [u8; 32],
    /// The request's endpoint key.
    pub endpoint: &'a str,
    /// The recorded response.
    pub response: &'a Expected,
}

/// The noise found for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    /// What to ignore.
    pub rules: BTreeSet<IgnoreRule>,
    /// How many pairs of recorded responses were compared to find it.
    pub compared: usize,
}

/// Finds the noise of each endpoint; endpoints without noise are left out.
pub fn detect<'a>(samples: impl IntoIterator<Item = Sample<'a>>) -> BTreeMap<String, Finding> {
    let mut groups: BTreeMap<[u8; 32], Vec<Sample<'a>>> = BTreeMap::new();
    for sample in samples {
        let group = groups.entry(sample.identity).or_default();
        if group.len() < MAX_PER_GROUP {
            group.push(sample);
        }
    }
    let mut found: BTreeMap<String, Finding> = BTreeMap::new();
    let mut budget = MAX_COMPARISONS;
    for group in groups.values() {
        let Some((first, rest)) = group.split_first() else {
            continue;
        };
        for other in rest {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let finding = found.entry(first.endpoint.to_owned()).or_default();
            finding.compared += 1;
            differences(first.response, other.response, &mut finding.rules);
        }
    }
    found.retain(|_, f| !f.rules.is_empty());
    found
}

/// Adds to `rules` what differs between two recorded responses.
fn differences(a: &Expected, b: &Expected, rules: &mut BTreeSet<IgnoreRule>) {
    let headers: Vec<(&str, &[u8])> = b
        .headers
        .iter()
        .filter(|(n, _)| n != "content-encoding")
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let observed = Observed {
        status: b.status,
        headers: &headers,
        body: &b.body,
    };
    for _ in 0..MAX_ROUNDS {
        let mut set = IgnoreSet::defaults();
        set.add(&IgnoreRule::Header("content-encoding".into()));
        for rule in rules.iter() {
            set.add(rule);
        }
        let (diffs, total) = compare(a, &observed, &set);
        for d in &diffs {
            rules.insert(match &d.location {
                Location::Status => IgnoreRule::Status,
                Location::Header(name) => IgnoreRule::Header(name.clone()),
                Location::Body => IgnoreRule::Body,
                Location::Json(steps) => IgnoreRule::Json(Pattern::widened(steps)),
            });
        }
        if total <= diffs.len() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &str, ts: u32, items: &[u32]) -> Expected {
        let body = format!(
            r#"{{"name":"n","request_id":"{id}","meta":{{"ts":{ts}}},"items":[{}]}}"#,
            items
                .iter()
                .map(|t| format!(r#"{{"v":1,"at":{t}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\nDate: {ts}\r\nX-Request-Id: {id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        Expected::new(head.as_bytes(), body.as_bytes()).unwrap()
    }

    #[test]
    fn what_differs_between_identical_requests_is_noise() {
        let a = response("r1", 1, &[5, 6]);
        let b = response("r2", 2, &[5, 7]);
        let c = response("r3", 3, &[9, 9]);
        let alone = response("r4", 4, &[1]);
        let samples = [
            Sample {
                identity: [1; 32],
                endpoint: "GET /u/{id}",
                response: &a,
            },
            Sample {
                identity: [1; 32],
                endpoint: "GET /u/{id}",
                response: &b,
            },
            Sample {
                identity: [1; 32],
                endpoint: "GET /u/{id}",
                response: &c,
            },
            Sample {
                identity: [2; 32],
                endpoint: "GET /v",
                response: &alone,
            },
        ];
        let found = detect(samples);
        assert_eq!(found.len(), 1);
        let finding = &found["GET /u/{id}"];
        assert_eq!(finding.compared, 2);
        let rules: Vec<String> = finding.rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            rules,
            [
                "header:x-request-id",
                "json:$.items[*].at",
                "json:$.meta.ts",
                "json:$.request_id"
            ]
        );
    }

    #[test]
    fn identical_responses_are_not_noise() {
        let a = response("r", 1, &[1]);
        let b = response("r", 1, &[1]);
        let samples = [
            Sample {
                identity: [1; 32],
                endpoint: "GET /",
                response: &a,
            },
            Sample {
                identity: [1; 32],
                endpoint: "GET /",
                response: &b,
            },
        ];
        assert!(detect(samples).is_empty());
    }

    #[test]
    fn many_noisy_fields_are_all_found() {
        let doc = |k: u32| {
            let fields: Vec<String> = (0..120).map(|i| format!(r#""f{i}":{}"#, i * k)).collect();
            format!("{{{}}}", fields.join(","))
        };
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
        let a = Expected::new(head, doc(1).as_bytes()).unwrap();
        let b = Expected::new(head, doc(2).as_bytes()).unwrap();
        let found = detect([
            Sample {
                identity: [0; 32],
                endpoint: "GET /",
                response: &a,
            },
            Sample {
                identity: [0; 32],
                endpoint: "GET /",
                response: &b,
            },
        ]);
        // f0 is 0 in both; the other 119 differ.
        assert_eq!(found["GET /"].rules.len(), 119);
    }
}
