//! Runs a plan against the target on a tokio runtime: open loop (one task per recorded
//! connection and pass, started just before its first request is due) or closed loop (`N`
//! workers as fast as the target answers), and gathers the tally.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::conn::{Shared, closed_loop, open_loop};
use crate::error::ReplayError;
use crate::plan::Plan;
use crate::schedule::{Rate, Schedule};
use crate::stats::Tally;
use crate::timer::Pacer;

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The target's address.
    pub addr: SocketAddr,
    /// How fast.
    pub rate: Rate,
    /// Closed-loop connections.
    pub connections: usize,
    /// Loop the snapshot for this long (`None`: one pass).
    pub duration: Option<Duration>,
    /// Longest wait for a connection or a response.
    pub timeout: Duration,
    /// Runtime worker threads.
    pub threads: usize,
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Outcomes and latencies.
    pub tally: Tally,
    /// Wall time from the first intended send to the last response.
    pub elapsed: Duration,
}

/// A task is started this long before its first request is due.
const LEAD: Duration = Duration::from_millis(10);
/// Time given to setting up before the first request.
const WARMUP: Duration = Duration::from_millis(20);

/// Runs the plan.
///
/// # Errors
/// [`ReplayError::Runtime`] when the runtime or the timer thread cannot start.
pub fn run(plan: Arc<Plan>, settings: &Settings) -> Result<RunResult, ReplayError> {
    // One core: every task on this thread, without hand-offs between threads.
    let runtime = if settings.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .thread_name("tapline-replay")
            .enable_all()
            .build()
    }
    .map_err(ReplayError::Runtime)?;
    let start = Instant::now() + WARMUP;
    let schedule = match settings.rate {
        Rate::Factor(f) => {
            let offsets: Vec<u64> = plan.requests.iter().map(|r| r.offset_ns).collect();
            Some(Schedule::new(&offsets, f, settings.duration))
        }
        Rate::Max => None,
    };
    let shared = Arc::new(Shared {
        plan,
        addr: settings.addr,
        pacer: Pacer::start().map_err(ReplayError::Runtime)?,
        tally: Mutex::new(Tally::default()),
        timeout: settings.timeout,
        start,
        schedule,
        deadline: settings.duration.map(|d| start + d),
    });
    runtime.block_on(async {
        match schedule {
            Some(schedule) => spawn_open_loop(&shared, schedule).await,
            None => spawn_closed_loop(&shared, settings.connections).await,
        }
    });
    let elapsed = start.elapsed();
    drop(runtime);
    let tally = match Arc::try_unwrap(shared) {
        Ok(shared) => shared.tally.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => shared.tally.lock().map(|t| t.clone()).unwrap_or_default(),
    };
    Ok(RunResult { tally, elapsed })
}

async fn spawn_open_loop(shared: &Arc<Shared>, schedule: Schedule) {
    let mut tasks = JoinSet::new();
    let plan = Arc::clone(&shared.plan);
    'passes: for pass in 0.. {
        for (c, connection) in plan.connections.iter().enumerate() {
            let Some(first) = connection
                .requests
                .first()
                .and_then(|&i| plan.requests.get(i))
            else {
                continue;
            };
            let at = schedule.at(pass, first.offset_ns);
            if !schedule.sends(pass, at) {
                // Connections are in order of their first request, and passes follow each other.
                break 'passes;
            }
            let due = shared.start + Duration::from_nanos(at);
            tokio::time::sleep_until(due.checked_sub(LEAD).unwrap_or(due).into()).await;
            tasks.spawn(open_loop(Arc::clone(shared), c, pass));
            while tasks.try_join_next().is_some() {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn spawn_closed_loop(shared: &Arc<Shared>, connections: usize) {
    tokio::time::sleep_until(shared.start.into()).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..connections.max(1) {
        tasks.spawn(closed_loop(Arc::clone(shared), Arc::clone(&next)));
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests;
