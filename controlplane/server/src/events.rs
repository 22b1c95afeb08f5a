//! `GET /api/v1/jobs/{id}/events`: a job's life as server-sent events, until it ends.
//!
//! Each event's `event:` name is `state` or `output` and its `data:` one JSON
//! [`JobEvent`](crate::job::JobEvent). The stream opens with the job's state, sends the lines
//! its process writes (from the start of its output) and every state change, and closes after
//! the final state.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{ApiError, AppState, job_id};
use crate::job::{Job, JobEvent, JobState};
use crate::scheduler::{JobError, Scheduler};

/// How often the output files are read.
const TICK: Duration = Duration::from_millis(250);
/// Most output bytes read from one file per tick.
const CHUNK: u64 = 64 * 1024;
/// Longest output line sent; longer ones are cut.
const MAX_LINE: usize = 4096;
/// Most output bytes one stream sends in all; past it, output is left out.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// The SSE handler.
pub(crate) async fn stream(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = job_id(&id)?;
    let changes = state.scheduler.subscribe();
    let stored = state
        .scheduler
        .store()
        .job(id)?
        .ok_or(JobError::NotFound(id))?;
    let (tx, rx) = mpsc::channel(64);
    let dir = stored
        .dir
        .map_or_else(|| state.scheduler.job_dir(id), PathBuf::from);
    tokio::spawn(follow(
        Arc::clone(&state.scheduler),
        stored.job,
        dir,
        changes,
        tx,
    ));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

/// Feeds `tx` until the job ends or the client goes away.
async fn follow(
    scheduler: Arc<Scheduler>,
    mut job: Job,
    dir: PathBuf,
    mut changes: broadcast::Receiver<u64>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let id = job.id;
    let mut outputs = [Tail::new(&dir, "stdout"), Tail::new(&dir, "stderr")];
    let mut announced: Option<(JobState, Option<i32>)> = None;
    loop {
        for tail in &mut outputs {
            for event in tail.read(job.state.is_final()) {
                if !send(&tx, &event).await {
                    return;
                }
            }
        }
        if job.state.is_final() {
            let _ = send(&tx, &state_event(&job)).await;
            return;
        }
        // A job is announced running once its process is known.
        let starting = job.state == JobState::Running && job.pid.is_none();
        let now = (job.state, job.pid);
        if !starting && announced != Some(now) {
            if !send(&tx, &state_event(&job)).await {
                return;
            }
            announced = Some(now);
        }
        let wait = async {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed == id => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
        if tx.is_closed() {
            return;
        }
        job = match scheduler.store().job(id) {
            Ok(Some(stored)) => stored.job,
            _ => return,
        };
    }
}

fn state_event(job: &Job) -> JobEvent {
    JobEvent::State {
        job: Box::new(job.clone()),
    }
}

async fn send(tx: &mpsc::Sender<Result<Event, Infallible>>, event: &JobEvent) -> bool {
    let name = match event {
        JobEvent::State { .. } => "state",
        JobEvent::Output { .. } => "output",
    };
    let Ok(data) = serde_json::to_string(event) else {
        return true;
    };
    tx.send(Ok(Event::default().event(name).data(data)))
        .await
        .is_ok()
}

/// Reads new complete lines of one output file.
struct Tail {
    path: PathBuf,
    stream: &'static str,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(dir: &Path, stream: &'static str) -> Tail {
        Tail {
            path: dir.join(format!("{stream}.log")),
            stream,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The lines written since the last call; `last` also sends an unfinished last line.
    fn read(&mut self, last: bool) -> Vec<JobEvent> {
        use std::io::{Read, Seek, SeekFrom};
        if self.offset >= MAX_OUTPUT {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.path)
            && file.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let limit = if last {
                MAX_OUTPUT - self.offset
            } else {
                CHUNK
            };
            let _ = file.take(limit).read_to_end(&mut bytes);
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(end) = self
            .partial
            .get(start..)
            .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        {
            let line = self.partial.get(start..start + end).unwrap_or_default();
            events.push(self.event(line));
            start += end + 1;
        }
        self.partial.drain(..start.min(self.partial.len()));
        if (last || self.partial.len() > MAX_LINE) && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            events.push(self.event(&line));
        }
        events
    }

    fn event(&self, line: &[u8]) -> JobEvent {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let cut = line.get(..MAX_LINE).unwrap_or(line);
        JobEvent::Output {
            stream: self.stream.to_owned(),
            line: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(events: &[JobEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                JobEvent::Output { line, .. } => line.clone(),
                JobEvent::State { .. } => panic!("a state"),
            })
            .collect()
    }

    #[test]
    fn tails_send_whole_lines_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = Tail::new(dir.path(), "stdout");
        assert!(tail.read(false).is_empty());
        let path = dir.path().join("stdout.log");
        std::fs::write(&path, "one\ntw").unwrap();
        assert_eq!(lines(&tail.read(false)), ["one"]);
        std::fs::write(&path, "one\ntwo\r\nthr").unwrap();
        assert_eq!(lines(&tail.read(false)), ["two"]);
        assert_eq!(lines(&tail.read(true)), ["thr"]);
        assert!(tail.read(true).is_empty());
    }
}
