//! Checking a spec's values before it is queued, so that a bad spec is refused with 400 and
//! the field at fault instead of failing later as a job. The rules are those of the commands
//! the jobs run (rates, durations, assertions, filters and ignore rules are parsed by the same
//! code as `tapline replay`).

use std::path::Path;

use tapline_dataplane::filter::Filter;
use tapline_dataplane::snapshot::Snapshot;
use tapline_replay::assertion::parse_assertions;
use tapline_replay::rules::IgnoreRule;
use tapline_replay::schedule::Rate;
use tapline_replay::target::Target;

use super::{JobSpec, SpecError, resolve_snapshot};

impl JobSpec {
    /// Checks every value of the spec; `snapshots` is the data directory's `snapshots/`.
    ///
    /// # Errors
    /// [`SpecError`] naming the first field with a bad value: a snapshot that does not
    /// exist, an empty command, port 0, a rate, duration, assertion, target, filter, ignore
    /// rule or environment entry that does not parse.
    pub fn validate(&self, snapshots: &Path) -> Result<(), SpecError> {
        match self {
            JobSpec::Run(s) => {
                snapshot("snapshot", snapshots, &s.snapshot)?;
                command("cmd", &s.cmd)?;
                port(s.port)?;
                env_entries(&s.env)?;
                text("workdir", s.workdir.as_deref())?;
                duration("ready_timeout", s.ready_timeout.as_deref())?;
                duration("timeout", s.timeout.as_deref())?;
                filter(s.filter.as_deref())?;
                ignore(&s.ignore)?;
                rate(s.rate.as_deref())?;
                at_least_one("connections", s.connections)?;
                duration("request_timeout", s.request_timeout.as_deref())?;
                assertions(s.assert.as_deref())?;
                if let Some(latency) = &s.mock_latency
                    && !["none", "recorded"].contains(&latency.as_str())
                {
                    return Err(SpecError::at(
                        "mock_latency",
                        format!("{latency:?}: expected \"none\" or \"recorded\""),
                    ));
                }
            }
            JobSpec::Mirror(s) => {
                interface(&s.iface)?;
                text("netns", s.netns.as_deref())?;
                port(s.port)?;
                command("cmd", &s.cmd)?;
                env_entries(&s.env)?;
                text("workdir", s.workdir.as_deref())?;
                duration("ready_timeout", s.ready_timeout.as_deref())?;
                duration("duration", s.duration.as_deref())?;
                if let Some(mocks) = &s.mocks {
                    snapshot("mocks", snapshots, mocks)?;
                }
                ignore(&s.ignore)?;
                at_least_one("queue", s.queue)?;
                at_least_one("max_in_flight", s.max_in_flight)?;
                duration("request_timeout", s.request_timeout.as_deref())?;
                assertions(s.assert.as_deref())?;
            }
            JobSpec::Load(s) => {
                snapshot("snapshot", snapshots, &s.snapshot)?;
                Target::parse(&s.target).map_err(|e| SpecError::at("target", e.to_string()))?;
                rate(s.rate.as_deref())?;
                duration("duration", s.duration.as_deref())?;
                duration("timeout", s.timeout.as_deref())?;
                at_least_one("connections", s.connections)?;
                assertions(s.assert.as_deref())?;
                filter(s.filter.as_deref())?;
                ignore(&s.ignore)?;
            }
        }
        Ok(())
    }
}

fn snapshot(field: &str, snapshots: &Path, name: &str) -> Result<(), SpecError> {
    let path = resolve_snapshot(snapshots, name).map_err(|e| SpecError::at(field, e.message))?;
    Snapshot::open(&path)
        .map(|_| ())
        .map_err(|e| SpecError::at(field, e.to_string()))
}

fn command(field: &str, cmd: &str) -> Result<(), SpecError> {
    if cmd.trim().is_empty() {
        Err(SpecError::at(field, "must not be empty"))
    } else {
        text(field, Some(cmd))
    }
}

fn text(field: &str, value: Option<&str>) -> Result<(), SpecError> {
    match value {
        Some(v) if v.contains('\0') => Err(SpecError::at(field, "must not contain a NUL byte")),
        Some("") => Err(SpecError::at(field, "must not be empty")),
        _ => Ok(()),
    }
}

fn port(port: u16) -> Result<(), SpecError> {
    if port == 0 {
        Err(SpecError::at(
            "port",
            "out of range: expected 1 to 65535, found 0",
        ))
    } else {
        Ok(())
    }
}

fn at_least_one(field: &str, value: Option<usize>) -> Result<(), SpecError> {
    if value == Some(0) {
        Err(SpecError::at(field, "expected at least 1"))
    } else {
        Ok(())
    }
}

fn rate(text: Option<&str>) -> Result<(), SpecError> {
    match text {
        Some(text) => Rate::parse(text)
            .map(|_| ())
            .map_err(|e| SpecError::at("rate", format!("{text:?}: {e}"))),
        None => Ok(()),
    }
}

fn assertions(text: Option<&str>) -> Result<(), SpecError> {
    match text {
        Some(text) => parse_assertions(text)
            .map(|_| ())
            .map_err(|e| SpecError::at("assert", e.to_string())),
        None => Ok(()),
    }
}

fn filter(text: Option<&str>) -> Result<(), SpecError> {
    match text {
        Some(text) => Filter::parse(text)
            .map(|_| ())
            .map_err(|e| SpecError::at("filter", e.to_string())),
        None => Ok(()),
    }
}

fn ignore(rules: &[String]) -> Result<(), SpecError> {
    for rule in rules {
        IgnoreRule::parse(rule).map_err(|e| SpecError::at("ignore", e.to_string()))?;
    }
    Ok(())
}

fn duration(field: &str, text: Option<&str>) -> Result<(), SpecError> {
    let Some(text) = text else {
        return Ok(());
    };
    match tapline_replay::units::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(()),
        Ok(_) => Err(SpecError::at(field, "must be longer than 0")),
        Err(e) => Err(SpecError::at(field, e)),
    }
}

fn env_entries(entries: &[String]) -> Result<(), SpecError> {
    let valid_name = |name: &str| {
        name.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    for entry in entries {
        match entry.split_once('=') {
            Some((name, value)) if valid_name(name) && !value.contains('\0') => {}
            _ => {
                return Err(SpecError::at(
                    "env",
                    format!("{entry:?}: expected NAME=VALUE with NAME of letters, digits and _"),
                ));
            }
        }
    }
    Ok(())
}

fn interface(name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && !name.contains(['/', ':', '\0'])
        && !name.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(SpecError::at(
            "iface",
            format!(
                "{name:?} is not an interface name (1 to 15 characters, no '/', ':' or spaces)"
            ),
        ))
    }
}
