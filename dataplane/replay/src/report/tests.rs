use super::*;
use crate::assertion::parse_assertions;
use crate::diff::{Kind, Location};
use crate::path::Step;
use crate::stats::{Outcome, Sample};
use crate::testutil::{json_response, plan_of, rec};

fn report(asserts: &str, mismatch: bool) -> Report {
    let recs = [
        rec(
            1,
            0,
            "GET /u/1 HTTP/1.1\r\nHost: h\r\n\r\n",
            &json_response(r#"{"a":"<b>"}"#),
            0,
            2,
        ),
        rec(
            1,
            1,
            "GET /u/2 HTTP/1.1\r\nHost: h\r\n\r\n",
            &json_response("{}"),
            10,
            13,
        ),
        rec(
            2,
            0,
            "POST /o HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            &json_response("{}"),
            20,
            24,
        ),
    ];
    let plan = plan_of(&recs, None, &["header:x-id"]).unwrap();
    let mut tally = Tally::default();
    for (i, r) in plan.requests.iter().enumerate() {
        let outcome = if i == 0 && mismatch {
            Outcome::Mismatched {
                status: 200,
                diffs: vec![Difference {
                    location: Location::Json(vec![Step::Key("a".into())]),
                    kind: Kind::Changed,
                    expected: Some("<b>".into()),
                    actual: Some("&".into()),
                    detail: None,
                }],
                total: 1,
            }
        } else if i == 2 {
            Outcome::Error("connection reset".into())
        } else {
            Outcome::Matched { status: 200 }
        };
        tally.add(Sample {
            request: i as u32,
            endpoint: r.endpoint,
            recorded_ns: r.recorded_ns,
            intended_ns: r.offset_ns,
            sent_ns: r.offset_ns + 1000,
            latency_ns: r.recorded_ns * 2,
            outcome,
        });
    }
    let assertions = if asserts.is_empty() {
        Vec::new()
    } else {
        parse_assertions(asserts).unwrap()
    };
    let rules = [IgnoreRule::parse("header:x-id").unwrap()];
    Report::build(
        &plan,
        &tally,
        &RunFacts {
            snapshot: "snap<1>",
            target: "http://127.0.0.1:9",
            started: "2026-01-01T00:00:00.000000000Z".into(),
            duration_s: 0.5,
            rate: Rate::Factor(1.0),
            connections: 2,
            rules: &rules,
            assertions: &assertions,
        },
    )
}

#[test]
fn json_holds_the_figures_the_issue_asks_for() {
    let r = report("p99<=1.1x,match>=50%", true);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for key in [
        "total",
        "matched",
        "mismatched",
        "errors",
        "endpoints",
        "latency",
        "mismatches",
        "assertions",
    ] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
    assert_eq!(
        (
            v["total"].as_u64(),
            v["matched"].as_u64(),
            v["mismatched"].as_u64(),
            v["errors"].as_u64()
        ),
        (Some(3), Some(1), Some(1), Some(1))
    );
    assert_eq!(v["mismatches"][0]["diffs"][0]["path"], "$.a");
    assert_eq!(v["mismatches"][0]["target"], "/u/1");
    assert_eq!(v["endpoints"][0]["endpoint"], "GET /u/{id}");
    assert_eq!(v["endpoints"][0]["total"], 2);
    assert_eq!(v["latency"]["recorded"]["max_ms"], 4.0);
    assert_eq!(v["latency"]["replay"]["max_ms"], 8.0);
    let p99 = &v["assertions"][0];
    assert_eq!(
        (
            p99["pass"].as_bool(),
            p99["baseline"].as_f64(),
            p99["measured"].as_f64()
        ),
        (Some(false), Some(4.0), Some(8.0))
    );
    assert_eq!(v["assertions"][1]["pass"], false);
    assert_eq!(v["noise"]["rules"][0], "header:x-id");
    assert_eq!(v["error_details"][0]["error"], "connection reset");
    assert_eq!(v["rate"]["asked_rps"], 100.0);
    assert!(!r.passed);
    assert_eq!(
        r.failure().unwrap(),
        "1 mismatched; 1 errors; assertion failed: p99<=1.1x, match>=50%"
    );
}

#[test]
fn match_assertions_judge_mismatches_instead_of_all_or_nothing() {
    let r = report("match>=33%", true);
    assert!(r.passed, "{:?}", r.failure());
    let r = report("p99<=3x", true);
    assert!(!r.passed);
    let r = report("", false).assertions.len();
    assert_eq!(r, 0);
}

#[test]
fn text_html_and_junit_say_the_same() {
    let r = report("p99<=1.1x", true);
    let text = text::render(&r);
    assert!(
        text.contains("total 3  matched 1  mismatched 1  errors 1"),
        "{text}"
    );
    assert!(text.contains("GET /u/1 (pair "), "{text}");
    assert!(text.contains(r#"$.a: "<b>" → "&""#), "{text}");
    assert!(
        text.contains("FAIL p99<=1.1x: measured 8 ms, baseline 4 ms"),
        "{text}"
    );
    assert!(text.contains("result: FAIL"), "{text}");
    let page = html::render(&r);
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("snap&lt;1&gt;") && !page.contains("snap<1>"));
    assert!(page.contains("&quot;&lt;b&gt;&quot;"), "escaped value");
    assert!(!page.contains("<script") && !page.contains("http://127.0.0.1:9\""));
    let xml = junit::render(&r);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert!(
        xml.contains("tests=\"3\" failures=\"2\" errors=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("name=\"p99&lt;=1.1x\""), "{xml}");
    assert!(
        xml.contains("$.a: &quot;&lt;b&gt;&quot; → &quot;&amp;&quot;"),
        "{xml}"
    );
    assert!(xml.contains("connection reset"), "{xml}");
    assert_eq!(
        xml.matches("<testcase").count(),
        xml.matches("</testcase>").count()
    );
    assert_eq!(junit::escape("a\u{1}b"), "a\u{fffd}b");
}
