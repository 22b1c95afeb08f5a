//! The scheduler: a queue of jobs run oldest first, at most `max_concurrent` at a time, each
//! as a `tapline` child process (see [`crate::procs`]) with its output and reports in
//! `DATA_DIR/jobs/ID/`, stopped when it outlives the lifetime limit, cancelled on request
//! (SIGINT, then SIGKILL to its process group after a grace period), and recovered after a
//! crash of the daemon (jobs left running fail, their leftover processes are killed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::error::ServerError;
use crate::job::{Job, JobState};
use crate::procs::{self, Launch, Spawner};
use crate::spec::{JobSpec, SpecError};
use crate::store::{Ending, Store};

/// How the scheduler runs jobs.
#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    /// The data directory (`jobs.db`, `jobs/`, `snapshots/`).
    pub data_dir: PathBuf,
    /// The `tapline` binary jobs run.
    pub program: PathBuf,
    /// Jobs running at once.
    pub max_concurrent: usize,
    /// Longest a job may run.
    pub max_lifetime: Option<Duration>,
    /// Time between SIGINT and SIGKILL when a job is stopped.
    pub cancel_grace: Duration,
}

/// Why a running job is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Cancel,
    Lifetime(Duration),
    Shutdown,
}

/// Why a job could not be submitted or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec is wrong: 400.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No such job: 404.
    #[error("no job {0}")]
    NotFound(u64),
    /// The job has already ended: 409.
    #[error("job {id} has already ended ({state})")]
    Ended {
        /// The job.
        id: u64,
        /// Its final state.
        state: JobState,
    },
    /// The daemon is stopping: 503.
    #[error("the control plane is shutting down")]
    ShuttingDown,
    /// The store failed: 500.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A job that ended while the previous daemon was down, as recovery found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The job.
    pub id: u64,
    /// The reason it was given.
    pub reason: String,
    /// How many leftover processes were killed.
    pub killed: usize,
}

/// The queue and the running jobs.
#[derive(Debug)]
pub struct Scheduler {
    store: Arc<Store>,
    settings: SchedulerSettings,
    snapshots: PathBuf,
    marker_prefix: String,
    spawner: Spawner,
    running: Mutex<HashMap<u64, mpsc::UnboundedSender<Stop>>>,
    wake: Notify,
    idle: Notify,
    changes: broadcast::Sender<u64>,
    stopping: AtomicBool,
}

impl Scheduler {
    /// A scheduler over `store`.
    ///
    /// # Errors
    /// [`ServerError::Environment`] when the spawner thread cannot start.
    pub fn new(store: Arc<Store>, settings: SchedulerSettings) -> Result<Scheduler, ServerError> {
        let spawner = Spawner::start()
            .map_err(|e| ServerError::Environment(format!("cannot start a thread: {e}")))?;
        let (changes, _) = broadcast::channel(1024);
        Ok(Scheduler {
            snapshots: settings.data_dir.join("snapshots"),
            marker_prefix: settings.data_dir.display().to_string(),
            store,
            settings,
            spawner,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            idle: Notify::new(),
            changes,
            stopping: AtomicBool::new(false),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The directory snapshot names are looked up in.
    pub fn snapshots(&self) -> &Path {
        &self.snapshots
    }

    /// The directory of job `id`.
    pub fn job_dir(&self, id: u64) -> PathBuf {
        self.settings.data_dir.join("jobs").join(id.to_string())
    }

    /// Ids of jobs whose state changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self, id: u64) {
        let _ = self.changes.send(id);
    }

    fn marker(&self, id: u64) -> String {
        format!("{}#{id}", self.marker_prefix)
    }

    /// Fails the jobs a previous daemon left running and kills what is left of them.
    ///
    /// # Errors
    /// [`ServerError::Internal`] when the store fails.
    pub fn recover(&self) -> Result<Vec<Recovered>, ServerError> {
        let mut out = Vec::new();
        for id in self.store.ids_in(JobState::Running)? {
            let Some(stored) = self.store.job(id)? else {
                continue;
            };
            let (reason, killed) = match &stored.process {
                Some(process) => (
                    format!(
                        "control plane stopped while the job was running (pid {})",
                        process.pid
                    ),
                    procs::kill_leftovers(process, &self.marker(id)),
                ),
                None => (
                    "control plane stopped while the job was starting".to_owned(),
                    procs::kill_leftovers(
                        &procs::ProcessIdentity {
                            pid: 0,
                            start_ticks: 0,
                            boot_id: String::new(),
                        },
                        &self.marker(id),
                    ),
                ),
            };
            let summary = stored
                .dir
                .as_deref()
                .and_then(|d| crate::report::summary(Path::new(d)));
            let ending = Ending {
                state: JobState::Failed,
                exit_code: None,
                reason: Some(reason.clone()),
                summary,
            };
            self.store.finish(id, &ending, &crate::now())?;
            tracing::warn!(job = id, %reason, killed, "recovered a job left running");
            out.push(Recovered { id, reason, killed });
        }
        Ok(out)
    }

    /// Checks and queues a job.
    ///
    /// # Errors
    /// [`JobError::Spec`] naming the field of a bad spec, [`JobError::ShuttingDown`],
    /// [`JobError::Server`] when the store fails.
    pub fn submit(&self, spec: &JobSpec) -> Result<Job, JobError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(JobError::ShuttingDown);
        }
        spec.validate(&self.snapshots)?;
        let job = self.store.insert(spec, &crate::now())?;
        tracing::info!(job = job.id, kind = job.kind, "queued");
        self.changed(job.id);
        self.wake.notify_one();
        Ok(job)
    }

    /// Cancels job `id`: a queued job ends at once; a running one gets SIGINT (then SIGKILL
    /// to its group after the grace period) and ends when its process does.
    ///
    /// # Errors
    /// [`JobError::NotFound`], [`JobError::Ended`], [`JobError::Server`].
    pub fn cancel(&self, id: u64) -> Result<Job, JobError> {
        let stored = self.store.job(id)?.ok_or(JobError::NotFound(id))?;
        match stored.job.state {
            JobState::Queued => {
                let ending = Ending {
                    state: JobState::Cancelled,
                    exit_code: None,
                    reason: Some("cancelled while queued".into()),
                    summary: None,
                };
                if self.store.finish(id, &ending, &crate::now())? {
                    tracing::info!(job = id, "cancelled while queued");
                    self.changed(id);
                    return self.current(id);
                }
                // Claimed in between: it is running now.
                self.stop_running(id)
            }
            JobState::Running => self.stop_running(id),
            state => Err(JobError::Ended { id, state }),
        }
    }

    fn stop_running(&self, id: u64) -> Result<Job, JobError> {
        let sender = self.lock_running().get(&id).cloned();
        match sender {
            Some(sender) => {
                let _ = sender.send(Stop::Cancel);
                self.current(id)
            }
            None => {
                let job = self.current(id)?;
                Err(JobError::Ended {
                    id,
                    state: job.state,
                })
            }
        }
    }

    fn current(&self, id: u64) -> Result<Job, JobError> {
        Ok(self.store.job(id)?.ok_or(JobError::NotFound(id))?.job)
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Stop>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts queued jobs while slots are free, until [`Scheduler::shutdown`].
    pub async fn dispatch(self: Arc<Self>) {
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = self.fill() {
                tracing::error!(error = %e, "cannot start queued jobs");
            }
            self.wake.notified().await;
        }
    }

    fn fill(self: &Arc<Self>) -> Result<(), ServerError> {
        loop {
            if self.stopping.load(Ordering::SeqCst)
                || self.lock_running().len() >= self.settings.max_concurrent
            {
                return Ok(());
            }
            let Some(id) = self.store.ids_in(JobState::Queued)?.first().copied() else {
                return Ok(());
            };
            self.start(id)?;
        }
    }

    /// Claims queued job `id` and starts its task.
    fn start(self: &Arc<Self>, id: u64) -> Result<(), ServerError> {
        let Some(stored) = self.store.job(id)? else {
            return Ok(());
        };
        let dir = self.job_dir(id);
        let argv = stored
            .job
            .spec
            .argv(&self.snapshots, &dir)
            .map_err(|e| e.to_string());
        let shown = argv.clone().unwrap_or_default();
        if !self
            .store
            .claim(id, &shown, &dir.display().to_string(), &crate::now())?
        {
            return Ok(());
        }
        let (stop, stops) = mpsc::unbounded_channel();
        self.lock_running().insert(id, stop);
        self.changed(id);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let ending = match argv {
                Ok(argv) => this.run_job(id, argv, &dir, stops).await,
                Err(reason) => failed(None, reason),
            };
            this.end(id, &ending);
        });
        Ok(())
    }

    fn end(&self, id: u64, ending: &Ending) {
        if let Err(e) = self.store.finish(id, ending, &crate::now()) {
            tracing::error!(job = id, error = %e, "cannot record the end of a job");
        }
        tracing::info!(job = id, state = %ending.state, reason = ending.reason.as_deref().unwrap_or(""), "ended");
        let empty = {
            let mut running = self.lock_running();
            running.remove(&id);
            running.is_empty()
        };
        self.changed(id);
        if empty {
            self.idle.notify_waiters();
        }
        self.wake.notify_one();
    }

    /// Runs job `id` to its end and says how it ended.
    async fn run_job(
        &self,
        id: u64,
        argv: Vec<String>,
        dir: &Path,
        mut stops: mpsc::UnboundedReceiver<Stop>,
    ) -> Ending {
        let launch = match self.launch(id, argv, dir) {
            Ok(launch) => launch,
            Err(reason) => return failed(None, reason),
        };
        let spawner = self.spawner.clone();
        let child = match tokio::task::spawn_blocking(move || spawner.spawn(launch)).await {
            Ok(Ok(child)) => child,
            Ok(Err(e)) => {
                return failed(
                    None,
                    format!("cannot start {}: {e}", self.settings.program.display()),
                );
            }
            Err(e) => return failed(None, format!("cannot start the job: {e}")),
        };
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let identity = procs::identity(pid);
        if let Err(e) = self.store.set_process(id, &identity) {
            tracing::error!(job = id, error = %e, "cannot record the job's process");
        }
        self.changed(id);
        tracing::info!(job = id, pid, "started");

        let mut exited = tokio::task::spawn_blocking(move || wait_exit(pid));
        let lifetime = self.settings.max_lifetime;
        let deadline = async {
            match lifetime {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            _ = &mut exited => None,
            Some(stop) = stops.recv() => Some(stop),
            () = deadline => lifetime.map(Stop::Lifetime),
        };
        let mut killed = false;
        if let Some(stop) = stop {
            tracing::info!(job = id, pid, ?stop, "stopping");
            procs::signal_process(pid, Signal::SIGINT);
            let grace = tokio::time::sleep(self.settings.cancel_grace);
            tokio::select! {
                _ = &mut exited => {}
                () = grace => {
                    procs::kill_group(pid);
                    killed = true;
                    let _ = (&mut exited).await;
                }
            }
        }
        // The leader is a zombie until reaped, so its group id cannot be reused yet: kill
        // whatever it left behind in its group, then reap it.
        procs::kill_group(pid);
        let status = tokio::task::spawn_blocking(move || {
            let mut child = child;
            child.wait()
        })
        .await;
        let summary = crate::report::summary(dir);
        let grace = tapline_config::format_duration(self.settings.cancel_grace);
        let after = if killed {
            format!(", killed after the grace period of {grace}")
        } else {
            String::new()
        };
        let status = match status {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return failed(summary, format!("cannot wait for the job: {e}")),
            Err(e) => return failed(summary, format!("cannot wait for the job: {e}")),
        };
        let code = status.code();
        match stop {
            Some(Stop::Cancel) => Ending {
                state: JobState::Cancelled,
                exit_code: code,
                reason: Some(format!("cancelled by request{after}")),
                summary,
            },
            Some(Stop::Lifetime(limit)) => Ending {
                state: JobState::Failed,
                exit_code: code,
                reason: Some(format!(
                    "exceeded the job lifetime limit of {}{after}",
                    tapline_config::format_duration(limit)
                )),
                summary,
            },
            Some(Stop::Shutdown) => Ending {
                state: JobState::Failed,
                exit_code: code,
                reason: Some(format!(
                    "control plane stopped while the job was running (pid {pid}){after}"
                )),
                summary,
            },
            None if status.success() => Ending {
                state: JobState::Succeeded,
                exit_code: Some(0),
                reason: None,
                summary,
            },
            None => {
                let reason = exit_reason(status, &last_error_line(&dir.join("stderr.log")));
                Ending {
                    state: JobState::Failed,
                    exit_code: code,
                    reason: Some(reason),
                    summary,
                }
            }
        }
    }

    fn launch(&self, id: u64, args: Vec<String>, dir: &Path) -> Result<Launch, String> {
        // A rerun after a crash finds old files: start clean.
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = |name: &str| {
            let path = dir.join(name);
            std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        Ok(Launch {
            program: self.settings.program.clone(),
            args,
            marker: self.marker(id),
            dir: dir.to_path_buf(),
            stdout: file("stdout.log")?,
            stderr: file("stderr.log")?,
        })
    }

    /// Stops taking jobs, stops the running ones (SIGINT, then SIGKILL after the grace
    /// period) and waits until they have ended. Queued jobs stay queued for the next start.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let limit = self.settings.cancel_grace + Duration::from_secs(5);
        let wait = async {
            loop {
                let idle = self.idle.notified();
                {
                    let running = self.lock_running();
                    if running.is_empty() {
                        return;
                    }
                    for stop in running.values() {
                        let _ = stop.send(Stop::Shutdown);
                    }
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), idle).await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            tracing::warn!(
                "jobs still running at shutdown; their processes get SIGTERM as the daemon exits"
            );
        }
    }
}

/// Waits until process `pid` has exited, without reaping it.
fn wait_exit(pid: i32) {
    loop {
        match waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Err(nix::errno::Errno::EINTR) => {}
            _ => return,
        }
    }
}

fn failed(summary: Option<serde_json::Value>, reason: String) -> Ending {
    Ending {
        state: JobState::Failed,
        exit_code: None,
        reason: Some(reason),
        summary,
    }
}

/// One line saying why a process that exited unsuccessfully failed.
fn exit_reason(status: std::process::ExitStatus, last_line: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let detail = if last_line.is_empty() {
        String::new()
    } else {
        format!(": {last_line}")
    };
    match (status.code(), status.signal()) {
        (Some(1), _) => format!("exit code 1: differences found or an assertion failed{detail}"),
        (Some(2), _) => format!("exit code 2: bad input{detail}"),
        (Some(3), _) => format!("exit code 3: environment problem{detail}"),
        (Some(code), _) => format!("exit code {code}{detail}"),
        (None, Some(signal)) => {
            let name =
                Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
            format!("killed by signal {name}{detail}")
        }
        (None, None) => format!("ended without an exit code{detail}"),
    }
}

/// The last error line of a job's stderr (without the `tapline: error: ` prefix), at most
/// 300 characters; empty when there is none.
fn last_error_line(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = Vec::new();
    let _ = file.read_to_end(&mut tail);
    let text = String::from_utf8_lossy(&tail);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let line = line.strip_prefix("tapline: error: ").unwrap_or(line);
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_reasons_name_the_code_and_the_last_error() {
        let status = |raw| std::process::ExitStatus::from_raw(raw);
        assert_eq!(
            exit_reason(status(2 << 8), "--rate \"fast\": expected ..."),
            "exit code 2: bad input: --rate \"fast\": expected ..."
        );
        assert_eq!(
            exit_reason(status(1 << 8), ""),
            "exit code 1: differences found or an assertion failed"
        );
        assert_eq!(exit_reason(status(9), ""), "killed by signal SIGKILL");
        assert_eq!(exit_reason(status(7 << 8), "x"), "exit code 7: x");
    }

    #[test]
    fn the_last_error_line_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stderr.log");
        assert_eq!(last_error_line(&path), "");
        std::fs::write(&path, "warning\ntapline: error: target is unreachable\n\n").unwrap();
        assert_eq!(last_error_line(&path), "target is unreachable");
    }
}
