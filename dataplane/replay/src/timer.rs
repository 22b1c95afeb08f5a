//! A precise sleep for the open-loop schedule. Tokio's timer has millisecond ticks, which would
//! bunch requests meant to be sub-millisecond apart; here one thread keeps the pending wake-ups
//! in a heap and sleeps on a futex with a timeout (tens of microseconds of slack), then wakes
//! each waiting task at its time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Waits shorter than this are not worth a wake-up: the caller goes on at once.
const SPIN: Duration = Duration::from_micros(20);
/// Waits longer than this are done with tokio's coarse timer first.
const COARSE: Duration = Duration::from_millis(5);

/// A pending wake-up, ordered by its time (earliest first in the max-heap) then arrival.
#[derive(Debug)]
struct Wake {
    key: Reverse<(Instant, u64)>,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Wake {}

impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wake {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The precise timer; dropping it ends its thread.
#[derive(Debug)]
pub struct Pacer {
    tx: Option<mpsc::Sender<(Instant, oneshot::Sender<()>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts the timer thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<(Instant, oneshot::Sender<()>)>();
        let thread = std::thread::Builder::new()
            .name("tapline-pacer".into())
            .spawn(move || run(&rx))?;
        Ok(Pacer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Returns at `at` (within tens of microseconds), or at once when it is past.
    pub async fn sleep_until(&self, at: Instant) {
        let now = Instant::now();
        if at <= now + SPIN {
            return;
        }
        if at - now > COARSE {
            tokio::time::sleep_until((at - COARSE / 2).into()).await;
        }
        let (wake_tx, wake_rx) = oneshot::channel();
        if let Some(tx) = &self.tx
            && tx.send((at, wake_tx)).is_ok()
        {
            let _ = wake_rx.await;
            return;
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(rx: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut heap: BinaryHeap<Wake> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<Wake>, (at, tx): (Instant, oneshot::Sender<()>)| {
        seq += 1;
        heap.push(Wake {
            key: Reverse((at, seq)),
            tx,
        });
    };
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|w| w.key.0.0 <= now) {
            if let Some(w) = heap.pop() {
                let _ = w.tx.send(());
            }
        }
        let next = match heap.peek() {
            Some(w) => rx.recv_timeout(w.key.0.0.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(wake) => {
                push(&mut heap, wake);
                while let Ok(more) = rx.try_recv() {
                    push(&mut heap, more);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Wake whoever still waits, then end.
                for w in heap.drain() {
                    let _ = w.tx.send(());
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_near_the_time_asked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let pacer = Pacer::start().unwrap();
        rt.block_on(async {
            let mut late = Vec::new();
            for step in [300u64, 700, 1500, 8000] {
                let at = Instant::now() + Duration::from_micros(step);
                pacer.sleep_until(at).await;
                let now = Instant::now();
                assert!(now >= at, "woke early");
                late.push(now - at);
            }
            // Generous: a loaded machine can be late, but never by a tokio tick every time.
            late.sort();
            assert!(late[1] < Duration::from_millis(2), "{late:?}");
            pacer.sleep_until(Instant::now()).await;
        });
    }
}
