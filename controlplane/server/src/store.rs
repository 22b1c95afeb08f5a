//! The job store: one SQLite database (`DATA_DIR/jobs.db`, WAL) holding every job, its spec,
//! state, timestamps, exit code, reason, process identity and report, so that jobs and their
//! states survive restarts of the daemon.
//!
//! Calls are short single-row statements behind one mutex; the daemon makes them from its
//! async tasks directly.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::ServerError;
use crate::job::{Job, JobState};
use crate::procs::ProcessIdentity;
use crate::spec::JobSpec;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    state      TEXT NOT NULL,
    created    TEXT NOT NULL,
    started    TEXT,
    finished   TEXT,
    exit_code  INTEGER,
    reason     TEXT,
    pid        INTEGER,
    pid_start  INTEGER,
    boot_id    TEXT,
    argv       TEXT NOT NULL DEFAULT '[]',
    report_dir TEXT,
    summary    TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
";

/// A stored job with the facts the API does not show.
#[derive(Clone, Debug)]
pub struct StoredJob {
    /// The job as the API shows it.
    pub job: Job,
    /// Its process, while running.
    pub process: Option<ProcessIdentity>,
    /// Its directory (output, reports).
    pub dir: Option<String>,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub struct Ending {
    /// The final state.
    pub state: JobState,
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// The report summary.
    pub summary: Option<serde_json::Value>,
}

/// The job database.
#[derive(Debug)]
pub struct Store {
    db: Mutex<Connection>,
}

impl Store {
    /// Opens (creating when needed) `path`.
    ///
    /// # Errors
    /// [`ServerError::Store`] when the file cannot be opened or is of another schema version.
    pub fn open(path: &Path) -> Result<Store, ServerError> {
        let fail = |e: rusqlite::Error| ServerError::Store {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let db = Connection::open(path).map_err(fail)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(fail)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(ServerError::Store {
                path: path.to_path_buf(),
                reason: format!(
                    "job database schema version {version}, this build knows up to {SCHEMA_VERSION}"
                ),
            });
        }
        db.execute_batch(SCHEMA).map_err(fail)?;
        db.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        Ok(Store { db: Mutex::new(db) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ServerError> {
        let db = self
            .db
            .lock()
            .map_err(|_| ServerError::Internal("the job store lock is poisoned".into()))?;
        f(&db).map_err(|e| ServerError::Internal(format!("job store: {e}")))
    }

    /// Adds a queued job and returns it.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn insert(&self, spec: &JobSpec, now: &str) -> Result<Job, ServerError> {
        let text =
            serde_json::to_string(spec).map_err(|e| ServerError::Internal(format!("spec: {e}")))?;
        let id = self.with(|db| {
            db.execute(
                "INSERT INTO jobs (kind, spec, state, created) VALUES (?1, ?2, 'queued', ?3)",
                params![spec.kind(), text, now],
            )?;
            Ok(db.last_insert_rowid())
        })?;
        self.job(id_u64(id))?
            .map(|s| s.job)
            .ok_or_else(|| ServerError::Internal("a job vanished after its insert".into()))
    }

    /// The job `id`, if it exists.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn job(&self, id: u64) -> Result<Option<StoredJob>, ServerError> {
        self.with(|db| {
            db.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                params![id_i64(id)],
                row,
            )
            .optional()
        })
    }

    /// Jobs, newest first, optionally only those in `state`, at most `limit`.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn list(&self, state: Option<JobState>, limit: usize) -> Result<Vec<Job>, ServerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|db| {
            let mut out = Vec::new();
            match state {
                Some(state) => {
                    let mut stmt = db.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM jobs WHERE state = ?1 ORDER BY id DESC LIMIT ?2"
                    ))?;
                    for job in stmt.query_map(params![state.as_str(), limit], row)? {
                        out.push(job?.job);
                    }
                }
                None => {
                    let mut stmt = db.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
                    ))?;
                    for job in stmt.query_map(params![limit], row)? {
                        out.push(job?.job);
                    }
                }
            }
            Ok(out)
        })
    }

    /// The ids of jobs in `state`, oldest first.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn ids_in(&self, state: JobState) -> Result<Vec<u64>, ServerError> {
        self.with(|db| {
            let mut stmt = db.prepare_cached("SELECT id FROM jobs WHERE state = ?1 ORDER BY id")?;
            let ids = stmt
                .query_map(params![state.as_str()], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(ids.into_iter().map(id_u64).collect())
        })
    }

    /// Moves job `id` from queued to running; `false` when it was no longer queued.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn claim(
        &self,
        id: u64,
        argv: &[String],
        dir: &str,
        now: &str,
    ) -> Result<bool, ServerError> {
        let argv = serde_json::to_string(argv).unwrap_or_else(|_| "[]".into());
        self.with(|db| {
            let n = db.execute(
                "UPDATE jobs SET state = 'running', started = ?2, argv = ?3, report_dir = ?4
                 WHERE id = ?1 AND state = 'queued'",
                params![id_i64(id), now, argv, dir],
            )?;
            Ok(n == 1)
        })
    }

    /// Records the process of running job `id`.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn set_process(&self, id: u64, process: &ProcessIdentity) -> Result<(), ServerError> {
        self.with(|db| {
            db.execute(
                "UPDATE jobs SET pid = ?2, pid_start = ?3, boot_id = ?4 WHERE id = ?1",
                params![
                    id_i64(id),
                    process.pid,
                    i64::try_from(process.start_ticks).unwrap_or(i64::MAX),
                    process.boot_id
                ],
            )?;
            Ok(())
        })
    }

    /// Ends job `id` when it is still live (queued or running); `false` when it had ended.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the database fails.
    pub fn finish(&self, id: u64, ending: &Ending, now: &str) -> Result<bool, ServerError> {
        let summary = ending.summary.as_ref().map(serde_json::Value::to_string);
        self.with(|db| {
            let n = db.execute(
                "UPDATE jobs SET state = ?2, exit_code = ?3, reason = ?4, summary = ?5, finished = ?6
                 WHERE id = ?1 AND state IN ('queued', 'running')",
                params![
                    id_i64(id),
                    ending.state.as_str(),
                    ending.exit_code,
                    ending.reason,
                    summary,
                    now
                ],
            )?;
            Ok(n == 1)
        })
    }
}

const COLUMNS: &str = "id, kind, spec, state, created, started, finished, exit_code, reason, \
                       pid, pid_start, boot_id, argv, report_dir, summary";

fn row(r: &Row<'_>) -> rusqlite::Result<StoredJob> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(e),
        )
    };
    let id: i64 = r.get(0)?;
    let spec: String = r.get(2)?;
    let spec: JobSpec = serde_json::from_str(&spec).map_err(|e| bad(2, e.to_string()))?;
    let state: String = r.get(3)?;
    let state: JobState = state.parse().map_err(|e: String| bad(3, e))?;
    let pid: Option<i32> = r.get(9)?;
    let pid_start: Option<i64> = r.get(10)?;
    let boot_id: Option<String> = r.get(11)?;
    let argv: String = r.get(12)?;
    let dir: Option<String> = r.get(13)?;
    let summary: Option<String> = r.get(14)?;
    let process = match (pid, pid_start) {
        (Some(pid), Some(start)) => Some(ProcessIdentity {
            pid,
            start_ticks: u64::try_from(start).unwrap_or(0),
            boot_id: boot_id.unwrap_or_default(),
        }),
        _ => None,
    };
    let reports = dir
        .as_deref()
        .map(|d| crate::report::available(Path::new(d)))
        .unwrap_or_default();
    Ok(StoredJob {
        job: Job {
            id: id_u64(id),
            kind: r.get(1)?,
            spec,
            state,
            created: r.get(4)?,
            started: r.get(5)?,
            finished: r.get(6)?,
            exit_code: r.get(7)?,
            reason: r.get(8)?,
            pid,
            argv: serde_json::from_str(&argv).unwrap_or_default(),
            summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
            reports,
        },
        process,
        dir,
    })
}

fn id_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn id_u64(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LoadSpec;

    fn spec() -> JobSpec {
        JobSpec::Load(LoadSpec {
            snapshot: "shop".into(),
            target: "http://127.0.0.1:1".into(),
            rate: Some("max".into()),
            ..LoadSpec::default()
        })
    }

    #[test]
    fn jobs_move_through_their_states_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = Store::open(&path).unwrap();
        let a = store.insert(&spec(), "t0").unwrap();
        let b = store.insert(&spec(), "t1").unwrap();
        assert_eq!((a.id, b.id, a.state), (1, 2, JobState::Queued));
        assert_eq!(a.spec, spec());
        assert_eq!(store.ids_in(JobState::Queued).unwrap(), [1, 2]);
        assert!(store.claim(1, &["replay".into()], "/d/1", "t2").unwrap());
        assert!(!store.claim(1, &[], "/d/1", "t2").unwrap(), "claimed twice");
        let process = ProcessIdentity {
            pid: 77,
            start_ticks: 12345,
            boot_id: "boot".into(),
        };
        store.set_process(1, &process).unwrap();
        let ending = Ending {
            state: JobState::Cancelled,
            exit_code: None,
            reason: Some("cancelled by request".into()),
            summary: None,
        };
        assert!(store.finish(2, &ending, "t3").unwrap());
        assert!(!store.finish(2, &ending, "t4").unwrap(), "ended twice");
        drop(store);

        let store = Store::open(&path).unwrap();
        let one = store.job(1).unwrap().unwrap();
        assert_eq!(one.job.state, JobState::Running);
        assert_eq!(one.job.argv, ["replay"]);
        assert_eq!(one.process, Some(process));
        assert_eq!(one.dir.as_deref(), Some("/d/1"));
        let two = store.job(2).unwrap().unwrap().job;
        assert_eq!(
            (two.state, two.finished.as_deref(), two.reason.as_deref()),
            (
                JobState::Cancelled,
                Some("t3"),
                Some("cancelled by request")
            )
        );
        let listed: Vec<u64> = store.list(None, 10).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(listed, [2, 1]);
        let running = store.list(Some(JobState::Running), 10).unwrap();
        assert_eq!(running.len(), 1);
        assert!(store.job(3).unwrap().is_none());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 9)
            .unwrap();
        let e = Store::open(&path).unwrap_err().to_string();
        assert!(e.contains("schema version 9"), "{e}");
    }
}
