//! Job specs: what `POST /api/v1/jobs` accepts (`{"kind":"run"|"mirror"|"load", ...}`), how a
//! spec is checked before it is queued — every problem named by its field — and the command
//! line of `tapline` that runs it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A job to run: one `tapline` command.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobSpec {
    /// `tapline run`: the system under test in an ephemeral namespace, replayed and judged.
    Run(RunSpec),
    /// `tapline mirror`: live traffic mirrored into an ephemeral namespace.
    Mirror(MirrorSpec),
    /// `tapline replay`: a snapshot replayed against a target at a rate, judged by assertions.
    Load(LoadSpec),
}

/// `{"kind":"run"}`: `tapline run SNAPSHOT --cmd CMD --port P`, the system under test in an
/// ephemeral namespace with its dependencies mocked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// A snapshot name under the data directory's `snapshots/`, or an absolute path.
    pub snapshot: String,
    /// The command that starts the system under test (run by `/bin/sh -c`).
    pub cmd: String,
    /// The port it listens on.
    pub port: u16,
    /// `NAME=VALUE` environment entries of the system under test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Its working directory on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Longest wait for it to accept connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// Longest the whole run may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Only the requests matching this expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Comparison ignore rules (`header:NAME`, `json:$.PATH`, `body`, `status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// The replay rate: `100%`, `1000%`, `2x` or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Connections for rate `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Keep the recorded `Host` header.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_host: bool,
    /// Longest wait for a connection or a response during the replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// Assertions such as `p99<=1.1x,errors<=0.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assert: Option<String>,
    /// Whether the mocks wait the recorded response time: `none` or `recorded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_latency: Option<String>,
}

/// `{"kind":"mirror"}`: `tapline mirror --iface IF --port P --cmd CMD`, live traffic mirrored
/// into a build in an ephemeral namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// The interface whose traffic is mirrored.
    pub iface: String,
    /// The named network namespace (`ip netns`) to capture in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The service port mirrored.
    pub port: u16,
    /// The command that starts the shadow build.
    pub cmd: String,
    /// `NAME=VALUE` environment entries of the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The build's working directory on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Longest wait for the build to accept connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// Stop after this long (otherwise at cancel, which still writes the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A snapshot (name or absolute path) whose recorded dependency answers serve the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mocks: Option<String>,
    /// Do not learn dependency answers from production's live calls.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_learn: bool,
    /// Comparison ignore rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Keep production's `Host` header.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_host: bool,
    /// Requests waiting for the build, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
    /// Requests in flight to the build, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Longest wait for the build's answer to one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// Assertions against production's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assert: Option<String>,
}

/// `{"kind":"load"}`: `tapline replay SNAPSHOT --target URL --rate R`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// A snapshot name under the data directory's `snapshots/`, or an absolute path.
    pub snapshot: String,
    /// `http://HOST[:PORT]`.
    pub target: String,
    /// `100%`, `1000%`, `2x` or `max` (default `100%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Loop the snapshot for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Connections for rate `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Assertions such as `p99<=1.1x,errors<=0.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assert: Option<String>,
    /// Only pairs matching this expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Comparison ignore rules (`header:NAME`, `json:$.PATH`, `body`, `status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Longest wait for a connection or a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Keep the recorded `Host` header.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_host: bool,
}

/// Why a spec was refused: the field at fault and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct SpecError {
    /// The field (`kind`, `cmd`, `port`, ...), absent when the body as a whole is wrong.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl SpecError {
    pub(crate) fn at(field: &str, message: impl Into<String>) -> Self {
        SpecError {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

/// The kinds a spec may name.
const KINDS: &str = "expected one of \"run\", \"mirror\", \"load\"";

impl JobSpec {
    /// Parses a JSON spec, naming the field of the first problem.
    ///
    /// # Errors
    /// [`SpecError`] for a body that is not a JSON object, a missing or unknown `kind`, an
    /// unknown field, a missing field or a value of the wrong type.
    pub fn from_json(body: &[u8]) -> Result<JobSpec, SpecError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| SpecError {
            field: None,
            message: format!("the body is not JSON: {e}"),
        })?;
        let Some(object) = value.as_object() else {
            return Err(SpecError {
                field: None,
                message: "expected a JSON object such as {\"kind\":\"load\", ...}".into(),
            });
        };
        let kind = match object.get("kind") {
            None => return Err(SpecError::at("kind", format!("missing: {KINDS}"))),
            Some(serde_json::Value::String(kind)) => kind.as_str(),
            Some(other) => {
                return Err(SpecError::at(
                    "kind",
                    format!("expected a string, found {other}: {KINDS}"),
                ));
            }
        };
        // Each kind's struct is read on its own so that errors keep their field path (an
        // internally tagged enum buffers its content and loses it).
        let mut fields = object.clone();
        fields.remove("kind");
        let fields = serde_json::Value::Object(fields);
        match kind {
            "run" => typed(&fields).map(JobSpec::Run),
            "mirror" => typed(&fields).map(JobSpec::Mirror),
            "load" => typed(&fields).map(JobSpec::Load),
            other => Err(SpecError::at(
                "kind",
                format!("unknown kind {other:?}: {KINDS}"),
            )),
        }
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Run(_) => "run",
            JobSpec::Mirror(_) => "mirror",
            JobSpec::Load(_) => "load",
        }
    }

    /// The snapshot a spec names, if its kind takes one.
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            JobSpec::Run(s) => Some(&s.snapshot),
            JobSpec::Load(s) => Some(&s.snapshot),
            JobSpec::Mirror(_) => None,
        }
    }
}

/// The directory of snapshot `name`: a plain name under `snapshots`, or an absolute path.
///
/// # Errors
/// [`SpecError`] on `snapshot` for an empty name, a relative path or `..`.
pub fn resolve_snapshot(snapshots: &Path, name: &str) -> Result<PathBuf, SpecError> {
    let path = Path::new(name);
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0');
    if plain {
        Ok(snapshots.join(name))
    } else {
        Err(SpecError::at(
            "snapshot",
            format!(
                "{name:?} is neither a snapshot name under {} nor an absolute path",
                snapshots.display()
            ),
        ))
    }
}

/// Reads one kind's struct, naming the field of the first problem.
fn typed<T: serde::de::DeserializeOwned>(fields: &serde_json::Value) -> Result<T, SpecError> {
    serde_path_to_error::deserialize::<_, T>(fields).map_err(|e| {
        let mut message = e.inner().to_string();
        let path = e.path().to_string();
        // serde says "expected u16" of a port out of range: say the range.
        if let Some(number) = message
            .strip_prefix("invalid value: integer `")
            .and_then(|rest| rest.strip_suffix("`, expected u16"))
        {
            message = format!("out of range: expected 1 to 65535, found {number}");
        }
        // Unknown and missing fields are reported at the object holding them: name the
        // field itself.
        let field = if path == "." {
            unknown_field(&message)
                .or_else(|| missing_field(&message))
                .unwrap_or(path)
        } else {
            path
        };
        SpecError {
            field: Some(field),
            message,
        }
    })
}

/// The field named by serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    quoted_after(message, "unknown field `")
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    quoted_after(message, "missing field `")
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

mod argv;
mod check;

#[cfg(test)]
mod tests;
