//! Durations with units as people write them in flags and assertions (`150ms`, `1.5s`,
//! `300us`), and their display in reports.

use std::time::Duration;

/// Units accepted by [`parse_duration`], longest first so `ms` is tried before `s`.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// What [`parse_duration`] accepts, for error messages.
pub const DURATION_HINT: &str = "a number with a unit: ns, us, ms, s, m or h (e.g. 150ms, 1.5s)";

/// Parses a non-negative duration with a unit: `150ms`, `1.5s`, `300us`, `2m`, `1h`, `500ns`.
///
/// # Errors
/// A message naming the text when it has no unit, an unknown one, or a bad number.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("{t:?} is not a duration: expected {DURATION_HINT}");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|(_, scale)| *scale)
        .ok_or_else(bad)?;
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ns = value * scale;
    if !ns.is_finite() || ns > u64::MAX as f64 / 2.0 {
        return Err(format!("{t:?} is too large"));
    }
    Ok(Duration::from_nanos(ns.round() as u64))
}

/// Nanoseconds as milliseconds with three decimals, the unit of every report.
pub fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// A duration in ns shown short with a unit that suits it (`850µs`, `12.3ms`, `1.20s`).
pub fn show_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{}µs", ns / 1_000),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 300us "), Ok(Duration::from_micros(300)));
        assert_eq!(parse_duration("300µs"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn bad_durations_are_named() {
        for bad in ["", "150", "ms", "1.2.3s", "5 parsecs", "-1s", "1e400s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(bad.trim()), "{e}");
        }
        assert!(parse_duration("99999999999999h").is_err());
    }

    #[test]
    fn display() {
        assert_eq!(show_ns(999), "999ns");
        assert_eq!(show_ns(850_000), "850µs");
        assert_eq!(show_ns(12_345_678), "12.35ms");
        assert_eq!(show_ns(1_200_000_000), "1.20s");
        assert!((ms(1_234_567) - 1.235).abs() < 1e-9);
    }
}
