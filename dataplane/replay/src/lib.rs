//! tapline replay: sends the HTTP/1.1 requests of a snapshot to a target, exactly as recorded
//! (only `Host` rewritten unless asked to keep it), over connections that follow the recorded
//! ones, and compares each response with the recorded one — status, headers and body, JSON
//! structurally — leaving out volatile headers, the noise found in the recording itself and
//! what the user's rules name. It paces load open loop from the recorded inter-arrival times
//! (or closed loop as fast as the target answers), measures latency from each request's
//! intended send time into HdrHistograms (no coordinated omission), judges assertions against
//! the snapshot's recorded figures, and writes the report as text, JSON, HTML and JUnit XML.
//!
//! The cores are deterministic and free of I/O: [`frame`] (request bytes), [`wire`] (response
//! parsing), [`compare`] and [`jsondiff`] (the diff), [`noise`] (noise detection), [`rules`],
//! [`assertion`], [`schedule`] (the rate). [`conn`] and [`engine`] do the I/O on tokio.

pub mod assertion;
pub mod compare;
pub mod config;
pub mod conn;
pub mod diff;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod frame;
pub mod jsondiff;
pub mod noise;
pub mod path;
pub mod plan;
pub mod report;
pub mod rules;
pub mod schedule;
pub mod stats;
pub mod target;
pub mod timer;
pub mod units;
pub mod wire;

#[cfg(test)]
mod testutil;

use std::sync::Arc;
use std::time::Duration;

use tapline_dataplane::filter::Filter;
use tapline_dataplane::snapshot::Snapshot;

pub use error::ReplayError;
pub use report::Report;

use crate::assertion::{Assertion, parse_assertions};
use crate::rules::IgnoreRule;
use crate::schedule::Rate;
use crate::target::Target;

/// Default wait for a connection or a response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to replay and how, as given by flags and the config file (text, checked by
/// [`Options::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `--target URL`.
    pub target: String,
    /// `--keep-host`.
    pub keep_host: bool,
    /// `--filter EXPR`.
    pub filter: Option<String>,
    /// `--ignore RULE`, repeated.
    pub ignore: Vec<String>,
    /// `--rate` (default `100%`).
    pub rate: Option<String>,
    /// `--connections` (closed loop; default 1 per recorded connection, capped at 64).
    pub connections: Option<usize>,
    /// `--duration D`.
    pub duration: Option<String>,
    /// `--timeout D`.
    pub timeout: Option<String>,
    /// `--assert EXPR`.
    pub assert: Option<String>,
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target.
    pub target: Target,
    /// Keep the recorded `Host`.
    pub keep_host: bool,
    /// The filter, with its text.
    pub filter: Option<(String, Filter)>,
    /// The user's ignore rules.
    pub ignore: Vec<IgnoreRule>,
    /// The rate.
    pub rate: Rate,
    /// Closed-loop connections (`None`: chosen from the snapshot).
    pub connections: Option<usize>,
    /// Loop the snapshot for this long.
    pub duration: Option<Duration>,
    /// Wait for a connection or response.
    pub timeout: Duration,
    /// Assertions.
    pub assertions: Vec<Assertion>,
}

impl Options {
    /// Checks every setting; the first wrong one is named.
    ///
    /// # Errors
    /// [`ReplayError`] naming the flag and the token at fault.
    pub fn parse(s: &Settings) -> Result<Self, ReplayError> {
        let setting = |flag: &'static str, value: &str, reason: String| ReplayError::Setting {
            flag,
            value: value.to_owned(),
            reason,
        };
        let target = Target::parse(&s.target)?;
        let filter = match &s.filter {
            Some(text) => Some((
                text.clone(),
                Filter::parse(text).map_err(|e| setting("--filter", text, e.to_string()))?,
            )),
            None => None,
        };
        let ignore = s
            .ignore
            .iter()
            .map(|r| IgnoreRule::parse(r))
            .collect::<Result<_, _>>()?;
        let rate_text = s.rate.as_deref().unwrap_or("100%");
        let rate = Rate::parse(rate_text).map_err(|e| setting("--rate", rate_text, e))?;
        if let Some(0) = s.connections {
            return Err(setting("--connections", "0", "expected at least 1".into()));
        }
        let duration = match &s.duration {
            Some(d) => Some(
                units::parse_duration(d)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| setting("--duration", d, units::DURATION_HINT.into()))?,
            ),
            None => None,
        };
        let timeout = match &s.timeout {
            Some(t) => units::parse_duration(t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| setting("--timeout", t, units::DURATION_HINT.into()))?,
            None => DEFAULT_TIMEOUT,
        };
        let assertions = match &s.assert {
            Some(text) => parse_assertions(text)?,
            None => Vec::new(),
        };
        Ok(Options {
            target,
            keep_host: s.keep_host,
            filter,
            ignore,
            rate,
            connections: s.connections,
            duration,
            timeout,
            assertions,
        })
    }
}

/// Replays a snapshot against the target and returns the report.
///
/// # Errors
/// [`ReplayError::NothingToReplay`] or [`ReplayError::SeveralServers`] for a snapshot without
/// replayable HTTP requests, [`ReplayError::Unreachable`] when the target does not accept a
/// connection, [`ReplayError::Runtime`] when the runtime cannot start.
pub fn replay(snapshot: &Snapshot, options: &Options) -> Result<Report, ReplayError> {
    let counts = &snapshot.manifest().counts;
    if counts.rrpairs == 0 {
        return Err(ReplayError::NothingToReplay {
            snapshot: snapshot.root().to_path_buf(),
            reason: format!(
                "holds no HTTP/1 requests to replay ({} packets, {} TCP connections of which {} not HTTP/1, 0 request/response pairs)",
                counts.packets, counts.connections, counts.non_http_connections
            ),
        });
    }
    let mut corrupt = 0usize;
    let pairs = snapshot.pairs_sorted(&mut |e| {
        corrupt += 1;
        tracing::warn!(error = %e, "skipping unreadable records");
    });
    let host = (!options.keep_host).then(|| options.target.authority());
    let plan = plan::build(
        &pairs,
        &plan::PlanOptions {
            snapshot: snapshot.root(),
            host: host.as_deref(),
            filter: options.filter.as_ref().map(|(_, f)| f),
            ignore: &options.ignore,
        },
    )?;
    let addr = options.target.resolve()?;
    std::net::TcpStream::connect_timeout(&addr, options.timeout.min(Duration::from_secs(5)))
        .map_err(|source| ReplayError::Unreachable {
            url: options.target.url.clone(),
            addr: addr.to_string(),
            source,
        })?;
    let connections = options
        .connections
        .unwrap_or_else(|| plan.connections.len().clamp(1, 64));
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
    let plan = Arc::new(plan);
    let result = engine::run(
        Arc::clone(&plan),
        &engine::Settings {
            addr,
            rate: options.rate,
            connections,
            duration: options.duration,
            timeout: options.timeout,
            threads,
        },
    )?;
    let snapshot_name = snapshot.root().display().to_string();
    Ok(Report::build(
        &plan,
        &result.tally,
        &report::RunFacts {
            snapshot: &snapshot_name,
            target: &options.target.url,
            started: tapline_dataplane::view::rfc3339(started),
            duration_s: result.elapsed.as_secs_f64(),
            rate: options.rate,
            connections,
            rules: &options.ignore,
            assertions: &options.assertions,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            target: "http://127.0.0.1:8080".into(),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_and_flags() {
        let o = Options::parse(&settings()).unwrap();
        assert_eq!(
            (o.rate, o.timeout, o.duration, o.connections),
            (Rate::Factor(1.0), DEFAULT_TIMEOUT, None, None)
        );
        let o = Options::parse(&Settings {
            rate: Some("max".into()),
            connections: Some(8),
            duration: Some("1.5s".into()),
            timeout: Some("250ms".into()),
            ignore: vec!["header:x-id".into()],
            filter: Some("port=8080".into()),
            assert: Some("p99<=1.1x,match>=99%".into()),
            ..settings()
        })
        .unwrap();
        assert_eq!(o.rate, Rate::Max);
        assert_eq!(o.duration, Some(Duration::from_millis(1500)));
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!((o.ignore.len(), o.assertions.len()), (1, 2));
        assert_eq!(o.filter.map(|(t, _)| t).as_deref(), Some("port=8080"));
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let bad = |s: Settings, mention: &str| {
            let e = Options::parse(&s).unwrap_err().to_string();
            assert!(e.contains(mention), "{e}");
        };
        bad(
            Settings {
                target: "ftp://x".into(),
                ..settings()
            },
            "--target \"ftp://x\"",
        );
        bad(
            Settings {
                rate: Some("fast".into()),
                ..settings()
            },
            "--rate \"fast\"",
        );
        bad(
            Settings {
                connections: Some(0),
                ..settings()
            },
            "--connections",
        );
        bad(
            Settings {
                duration: Some("0s".into()),
                ..settings()
            },
            "--duration \"0s\"",
        );
        bad(
            Settings {
                timeout: Some("soon".into()),
                ..settings()
            },
            "--timeout \"soon\"",
        );
        bad(
            Settings {
                filter: Some("status>>1".into()),
                ..settings()
            },
            "--filter",
        );
        bad(
            Settings {
                ignore: vec!["cookie:x".into()],
                ..settings()
            },
            "--ignore \"cookie:x\"",
        );
        bad(
            Settings {
                assert: Some("p99<=1.1y".into()),
                ..settings()
            },
            "\"1.1y\"",
        );
    }
}
