//! A job as the API shows it: its state, timestamps, exit code, failure reason and report
//! summary. These wire types are shared by the daemon and [`crate::client::Client`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::spec::JobSpec;

/// Where a job is in its life. `queued` and `running` are live; the others are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a free slot (`--max-concurrent`).
    Queued,
    /// Its process runs.
    Running,
    /// Its process exited with code 0.
    Succeeded,
    /// Its process exited otherwise, was killed, or could not start (see `reason`).
    Failed,
    /// Cancelled by a user, queued or running.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (nothing about it changes any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown job state {s:?}: expected one of queued, running, succeeded, failed, cancelled"
                )
            })
    }
}

/// A job: what was asked and what became of it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Job {
    /// The job's number, unique in its data directory.
    pub id: u64,
    /// `run`, `mirror` or `load`.
    pub kind: String,
    /// The submitted spec.
    pub spec: JobSpec,
    /// Where the job is.
    pub state: JobState,
    /// When it was submitted (RFC 3339, UTC).
    pub created: String,
    /// When its process started.
    pub started: Option<String>,
    /// When it ended.
    pub finished: Option<String>,
    /// Its process's exit code (absent when killed by a signal or never started).
    pub exit_code: Option<i32>,
    /// Why it failed or was cancelled, in one line.
    pub reason: Option<String>,
    /// The process id while (or when last) running.
    pub pid: Option<i32>,
    /// The command line of its process.
    pub argv: Vec<String>,
    /// The headline figures of its `report.json` (its top-level numbers, flags and strings).
    pub summary: Option<serde_json::Value>,
    /// Which report formats can be fetched (`json`, `html`, `junit`).
    pub reports: Vec<String>,
}

/// One message of a job's event stream (`GET /api/v1/jobs/{id}/events`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum JobEvent {
    /// The job as it is now: sent first, then on every state change.
    State {
        /// The job.
        job: Box<Job>,
    },
    /// A line its process wrote.
    Output {
        /// `stdout` or `stderr`.
        stream: String,
        /// The line, without its end.
        line: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{state}\"")
            );
        }
        assert!("done".parse::<JobState>().unwrap_err().contains("queued"));
        assert!(JobState::Cancelled.is_final() && !JobState::Running.is_final());
    }
}
