use super::*;

fn figures() -> Figures {
    Figures {
        total: 200,
        matched: 198,
        mismatched: 1,
        errors: 1,
        server_errors: 4,
        replay_ms: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.5],
        recorded_ms: [1.0, 1.5, 2.5, 3.0, 4.0, 5.0, 1.2],
        recorded_server_errors_pct: 2.0,
        recorded_errors_pct: 0.0,
        achieved_rps: 990.0,
        asked_rps: 1000.0,
    }
}

fn judge(expr: &str) -> Vec<Verdict> {
    parse_assertions(expr)
        .unwrap()
        .iter()
        .map(|a| evaluate(a, &figures()))
        .collect()
}

#[test]
fn the_issue_examples_parse() {
    let list = parse_assertions("p99<=1.1x, p99<=150ms,errors<=0.5%,match>=99%").unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0].metric, Metric::Latency(Latency::Quantile(990)));
    assert_eq!(list[0].value, Value::Relative(1.1));
    assert_eq!(list[1].value, Value::Millis(150.0));
    assert_eq!(list[2].metric, Metric::Errors);
    assert_eq!(list[2].value, Value::Percent(0.5));
    assert_eq!((list[3].metric, list[3].op), (Metric::Match, Op::Ge));
    assert_eq!(list[1].text, "p99<=150ms");
}

#[test]
fn relative_latency_uses_the_recorded_baseline() {
    let v = &judge("p99<=1.1x")[0];
    assert_eq!((v.measured, v.baseline, v.unit), (4.0, 3.0, "ms"));
    assert!((v.threshold - 3.3).abs() < 1e-9);
    assert!(!v.pass);
    assert!(judge("p99<=1.5x")[0].pass);
    assert!(judge("p50<=1x")[0].pass);
    assert!(judge("max<7ms")[0].pass);
    assert!(!judge("mean<1.5ms")[0].pass);
    assert!(judge("p999<=1.25x")[0].pass);
}

#[test]
fn shares_counts_and_rates() {
    let v = &judge("errors<=0.5%")[0];
    assert_eq!((v.measured, v.unit, v.pass), (0.5, "%", true));
    assert!(!judge("errors<0.5%")[0].pass);
    assert!(judge("errors<=1")[0].pass);
    let v = &judge("match>=99%")[0];
    assert_eq!((v.measured, v.baseline, v.pass), (99.0, 100.0, true));
    assert!(!judge("match>=0.995x")[0].pass);
    let v = &judge("5xx<=1.5x")[0];
    assert_eq!((v.measured, v.baseline, v.threshold), (2.0, 2.0, 3.0));
    assert!(v.pass);
    assert!(judge("mismatch==1")[0].pass);
    let v = &judge("rate>=98%")[0];
    assert_eq!((v.measured, v.unit, v.pass), (99.0, "%", true));
    assert!(judge("rate>=0.98x")[0].pass);
    assert!(!judge("rate>=995")[0].pass);
}

#[test]
fn malformed_assertions_name_the_token() {
    let cases = [
        ("p99<=1.1y", "1.1y"),
        ("p98<=1.1x", "p98"),
        ("p99=<1.1x", "=<"),
        ("p99", "p99"),
        ("p99<=", ""),
        ("p99<=150", "150"),
        ("errors<=5ms", "5ms"),
        ("match>=101%", "101%"),
        ("p99<=1.1x,,match>=99%", ""),
        ("p99<=abcx", "abcx"),
        ("p99<=1..1x", "1..1x"),
    ];
    for (expr, token) in cases {
        let e = parse_assertions(expr).unwrap_err();
        assert_eq!(e.token, token, "{expr}: {e}");
        assert!(e.to_string().contains(&format!("{token:?}")), "{e}");
        assert!(e.to_string().contains(expr), "{e}");
    }
}

#[test]
fn empty_figures_do_not_divide_by_zero() {
    let a = parse_assertions("errors<=0.5%,rate>=90%,match>=99%").unwrap();
    let v: Vec<_> = a.iter().map(|a| evaluate(a, &Figures::default())).collect();
    assert!(v[0].pass);
    assert!(!v[1].pass);
    assert!(!v[2].pass);
}
