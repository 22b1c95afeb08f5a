//! Mocks of a service's recorded dependencies inside an environment: one `tapline mock`
//! index over every dependency pair, served on each dependency's address and port by a tokio
//! runtime on a thread that entered the namespace before making its sockets. Requests are
//! routed by their `Host`, as `tapline mock` does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tapline_mock::{
    AddrSelector, Index, Latency, MatchConfig, Mock, Selection, ServerConfig, Summary,
};

use crate::deps::DependencyPlan;
use crate::env::Environment;
use crate::error::NetnsError;
use crate::ns::InsideThread;

/// How the mocks answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MockSettings {
    /// How calls are matched to recorded ones.
    pub matching: MatchConfig,
    /// Whether to wait the recorded latency.
    pub latency: Latency,
}

/// The running mocks of an environment.
#[derive(Debug)]
pub struct MockSet {
    mock: Arc<Mock>,
    listening: Vec<SocketAddr>,
    recorded: usize,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<InsideThread<()>>,
}

impl MockSet {
    /// Loads the dependency pairs of the snapshot in `dir` that `plan` names and serves them
    /// inside `env` on [`DependencyPlan::listen_addrs`]; `None` when the plan has no
    /// dependency.
    ///
    /// # Errors
    /// [`NetnsError::Mock`] when no dependency pair is usable or an address cannot be bound,
    /// [`NetnsError::Thread`] when the serving thread cannot start.
    pub fn start(
        env: &Environment,
        dir: &Path,
        plan: &DependencyPlan,
        settings: MockSettings,
    ) -> Result<Option<Self>, NetnsError> {
        let servers = plan.dependency_servers();
        if servers.is_empty() {
            return Ok(None);
        }
        let selection = Selection {
            service: None,
            dependencies: servers
                .iter()
                .map(|s| AddrSelector {
                    ip: s.ip(),
                    port: Some(s.port()),
                })
                .collect(),
        };
        let loaded = tapline_mock::load(dir, &selection)?;
        let recorded = loaded.recorded.len();
        let mock = Arc::new(Mock::new(
            Index::new(loaded.recorded, settings.matching),
            ServerConfig {
                latency: settings.latency,
                ..ServerConfig::default()
            },
        ));
        let addrs = plan.listen_addrs();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (bound_tx, bound_rx) = mpsc::sync_channel(1);
        let served = Arc::clone(&mock);
        let thread = env.thread("tapline-mocks", move || {
            serve(&served, &addrs, stop_rx, &bound_tx);
        })?;
        match bound_rx.recv() {
            Ok(Ok(listening)) => Ok(Some(MockSet {
                mock,
                listening,
                recorded,
                stop: Some(stop_tx),
                thread: Some(thread),
            })),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(match thread.join() {
                Err(e) => e,
                Ok(()) => NetnsError::Thread {
                    name: "tapline-mocks".into(),
                    reason: "ended before binding".into(),
                },
            }),
        }
    }

    /// The addresses served.
    pub fn listening(&self) -> &[SocketAddr] {
        &self.listening
    }

    /// Recorded responses answered from.
    pub fn recorded(&self) -> usize {
        self.recorded
    }

    /// The dependencies of the index, with their recorded responses.
    pub fn index(&self) -> &Index {
        self.mock.index()
    }

    /// The counters so far.
    pub fn summary(&self) -> Summary {
        self.mock.summary()
    }

    /// Stops serving and returns the counters.
    pub fn stop(mut self) -> Summary {
        self.shut();
        self.mock.summary()
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take()
            && let Err(e) = thread.join()
        {
            tracing::warn!("mocks: {e}");
        }
    }
}

impl Drop for MockSet {
    fn drop(&mut self) {
        self.shut();
    }
}

/// On the thread inside the namespace: binds every address (telling `bound` how that went),
/// then serves until `stop` turns true.
fn serve(
    mock: &Arc<Mock>,
    addrs: &[SocketAddr],
    stop: tokio::sync::watch::Receiver<bool>,
    bound: &mpsc::SyncSender<Result<Vec<SocketAddr>, NetnsError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            let _ = bound.send(Err(NetnsError::Mock(tapline_mock::MockError::Runtime {
                what: "starting the mocks' runtime",
                source,
            })));
            return;
        }
    };
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match tapline_mock::bind(*addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                let _ = bound.send(Err(e.into()));
                return;
            }
        }
    }
    runtime.block_on(async move {
        let mut tasks = Vec::with_capacity(listeners.len());
        let mut listening = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let local = listener.local_addr();
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(source) => {
                    let _ = bound.send(Err(NetnsError::Mock(tapline_mock::MockError::Runtime {
                        what: "registering a mock's socket",
                        source,
                    })));
                    return;
                }
            };
            if let Ok(local) = local {
                listening.push(local);
            }
            let mut stop = stop.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            tasks.push(tokio::spawn(Arc::clone(mock).serve(listener, shutdown)));
        }
        let _ = bound.send(Ok(listening));
        for task in tasks {
            let _ = task.await;
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}
