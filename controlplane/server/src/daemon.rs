//! The daemon: checks its settings, opens the job store, recovers from a crash of the
//! previous instance, then serves the API (HTTPS with optional client certificates, or plain
//! HTTP) and runs the scheduler until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{AppState, Peer, router};
use crate::auth::Tokens;
use crate::error::ServerError;
use crate::scheduler::{Recovered, Scheduler, SchedulerSettings};
use crate::store::Store;
use crate::tls::{TlsFiles, server_config};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Extra start-up cleanup (such as removing stale ephemeral environments): returns lines to log.
pub type Cleanup = Box<dyn FnOnce() -> Vec<String> + Send>;

/// Everything `tapline serve` needs, after flags and the `[serve]` section are merged.
pub struct ServeOptions {
    /// The address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Accepted bearer tokens.
    pub tokens: Tokens,
    /// TLS, when the API is served over HTTPS.
    pub tls: Option<TlsFiles>,
    /// Jobs running at once.
    pub max_concurrent: usize,
    /// Longest a job may run (`None`: no limit).
    pub max_job_lifetime: Option<Duration>,
    /// Time between SIGINT and SIGKILL when a job is stopped.
    pub cancel_grace: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// The `tapline` binary jobs run.
    pub program: PathBuf,
    /// Run after recovery, before serving.
    pub cleanup: Option<Cleanup>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("tokens", &self.tokens)
            .field("tls", &self.tls)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_job_lifetime", &self.max_job_lifetime)
            .field("cancel_grace", &self.cancel_grace)
            .field("max_body", &self.max_body)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// What the daemon reports once it listens.
#[derive(Clone, Debug)]
pub struct Ready {
    /// The API's base URL (`https://127.0.0.1:7070`).
    pub url: String,
    /// The address bound.
    pub addr: SocketAddr,
    /// Jobs a previous instance left running, now failed.
    pub recovered: Vec<Recovered>,
    /// Lines from the start-up cleanup.
    pub cleanup: Vec<String>,
    /// Jobs waiting in the queue.
    pub queued: usize,
}

/// Runs the daemon until SIGINT or SIGTERM; `on_ready` is called once it listens.
///
/// # Errors
/// [`ServerError::Setting`] without any authentication or with unusable settings,
/// [`ServerError::File`] for unreadable TLS files, [`ServerError::Store`] for the job
/// database, [`ServerError::Bind`] when the address is taken, [`ServerError::Environment`]
/// when the runtime or the data directory cannot be made.
pub fn serve(mut options: ServeOptions, on_ready: impl FnOnce(&Ready)) -> Result<(), ServerError> {
    let client_ca = options.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if options.tokens.is_empty() && !client_ca {
        return Err(ServerError::Setting(
            "no authentication configured: give --token-file FILE (bearer tokens) or --client-ca FILE \
             with --tls-cert and --tls-key (client certificates); the API has no anonymous access"
                .into(),
        ));
    }
    if options.max_concurrent == 0 {
        return Err(ServerError::Setting(
            "--max-concurrent must be at least 1".into(),
        ));
    }
    if options.data_dir.to_str().is_none() {
        return Err(ServerError::Setting(format!(
            "--data-dir {}: must be valid UTF-8",
            options.data_dir.display()
        )));
    }
    let tls = options.tls.as_ref().map(server_config).transpose()?;
    for sub in ["", "jobs", "snapshots"] {
        let dir = options.data_dir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| {
            ServerError::Environment(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let data_dir = std::fs::canonicalize(&options.data_dir)
        .map_err(|e| ServerError::Environment(format!("{}: {e}", options.data_dir.display())))?;
    let store = Arc::new(Store::open(&data_dir.join("jobs.db"))?);
    let listener =
        std::net::TcpListener::bind(options.listen).map_err(|source| ServerError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: options.listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServerError::Environment(format!("listener: {e}")))?;
    let scheduler = Arc::new(Scheduler::new(
        Arc::clone(&store),
        SchedulerSettings {
            data_dir,
            program: options.program.clone(),
            max_concurrent: options.max_concurrent,
            max_lifetime: options.max_job_lifetime,
            cancel_grace: options.cancel_grace,
        },
    )?);
    let recovered = scheduler.recover()?;
    let cleanup = options.cleanup.take().map(|f| f()).unwrap_or_default();
    let queued = store
        .ids_in(crate::job::JobState::Queued)
        .map(|ids| ids.len())
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tapline-serve")
        .build()
        .map_err(|e| ServerError::Environment(format!("cannot start the runtime: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ready = Ready {
        url: format!("{scheme}://{addr}"),
        addr,
        recovered,
        cleanup,
        queued,
    };
    let state = AppState {
        scheduler: Arc::clone(&scheduler),
        tokens: Arc::new(options.tokens),
    };
    let app = router(state, options.max_body);
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| ServerError::Environment(format!("listener: {e}")))?;
        tokio::spawn(Arc::clone(&scheduler).dispatch());
        on_ready(&ready);
        let acceptor = tls.map(TlsAcceptor::from);
        let stop = stop_signal()?;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _remote)) => {
                        let _ = tcp.set_nodelay(true);
                        tokio::spawn(connection(tcp, acceptor.clone(), app.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                signal = &mut stop => {
                    tracing::info!(%signal, "stopping");
                    break;
                }
            }
        }
        drop(listener);
        scheduler.shutdown().await;
        Ok::<(), ServerError>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Resolves with the name of the first SIGINT or SIGTERM.
fn stop_signal() -> Result<impl Future<Output = &'static str>, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let fail = |e: std::io::Error| ServerError::Environment(format!("cannot handle signals: {e}"));
    let mut int = signal(SignalKind::interrupt()).map_err(fail)?;
    let mut term = signal(SignalKind::terminate()).map_err(fail)?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}

/// Serves one connection: the TLS handshake (when configured), then HTTP/1.1.
async fn connection(tcp: tokio::net::TcpStream, acceptor: Option<TlsAcceptor>, app: axum::Router) {
    match acceptor {
        Some(acceptor) => {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!("TLS handshake timed out");
                    return;
                }
            };
            let client_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|certs| !certs.is_empty());
            http(stream, Peer { client_cert }, app).await;
        }
        None => http(tcp, Peer::default(), app).await,
    }
}

async fn http<IO>(io: IO, peer: Peer, app: axum::Router)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer);
        app.clone().oneshot(request)
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
