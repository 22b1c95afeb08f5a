//! tapline's control plane daemon (`tapline serve`) and its client.
//!
//! The daemon serves a JSON API under `/api/v1` ([`api`]) over HTTPS (rustls, optional client
//! certificates, [`tls`]) or plain HTTP, authenticated by bearer tokens or client
//! certificates ([`auth`]). Jobs (`run`, `mirror`, `load`, [`spec`]) are kept in SQLite
//! ([`store`]) so they survive restarts, and run by the [`scheduler`] as child processes of
//! the same `tapline` binary ([`procs`]), at most `max_concurrent` at a time. A crash of the
//! daemon is recovered on the next start: jobs left running fail with the reason and their
//! leftover processes are killed. [`client::Client`] is the blocking client `tapline job`
//! uses. API.md beside this crate documents the API.

pub mod api;
pub mod auth;
pub mod client;
pub mod daemon;
pub mod error;
pub mod events;
pub mod job;
pub mod procs;
pub mod report;
pub mod scheduler;
pub mod snapshots;
pub mod spec;
pub mod store;
pub mod tls;

pub use client::{Client, ClientOptions};
pub use daemon::{Ready, ServeOptions, serve};
pub use error::{ClientError, ServerError};
pub use job::{Job, JobEvent, JobState};
pub use spec::{JobSpec, LoadSpec, MirrorSpec, RunSpec, SpecError};

/// The current time as RFC 3339 in UTC with milliseconds, as the API shows timestamps.
pub fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}
