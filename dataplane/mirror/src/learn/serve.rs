//! Serving the learned answers: listeners on each dependency address as it is learned, and
//! connections whose every request is answered by the index current when it arrives (so a
//! kept-alive connection sees what was learned after it opened). Requests are read and
//! answered with `tapline mock`'s wire reader and responder.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tapline_mock::server::Responded;
use tapline_mock::wire::{Limits, Parse, parse_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{LiveMocks, REFRESH_EVERY};
use crate::error::MirrorError;

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// Serves the live mocks until `stop` is raised, on a current-thread runtime on the calling
/// thread (call it from a thread inside the shadow's namespace). `prepare` is called once per
/// new non-loopback dependency address before listening on it (to put the address on the
/// namespace's loopback); an address that cannot be listened on is logged and skipped.
///
/// # Errors
/// [`MirrorError::Runtime`] when the runtime cannot start.
pub fn serve(
    mocks: &Arc<LiveMocks>,
    stop: &AtomicBool,
    mut prepare: impl FnMut(IpAddr) -> std::io::Result<()>,
) -> Result<(), MirrorError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| MirrorError::Runtime {
            what: "starting the live mocks' async runtime",
            source,
        })?;
    runtime.block_on(async {
        let mut prepared: Vec<IpAddr> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        while !stop.load(Ordering::Relaxed) {
            for server in mocks.new_servers() {
                let ip = server.ip();
                if !ip.is_loopback() && !prepared.contains(&ip) {
                    if let Err(e) = prepare(ip) {
                        tracing::warn!(%ip, error = %e, "cannot add a dependency address");
                    }
                    prepared.push(ip);
                }
                match listen(server) {
                    Ok(listener) => {
                        tasks.spawn(accept(Arc::clone(mocks), listener));
                    }
                    Err(e) => tracing::warn!(%server, error = %e, "cannot serve a dependency"),
                }
            }
            mocks.refresh();
            tokio::time::sleep(REFRESH_EVERY).await;
        }
        tasks.abort_all();
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = tapline_mock::bind(addr).map_err(std::io::Error::other)?;
    TcpListener::from_std(listener)
}

async fn accept(mocks: Arc<LiveMocks>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let mocks = Arc::clone(&mocks);
                tokio::spawn(async move {
                    if let Err(e) = connection(&mocks, stream).await {
                        tracing::debug!(%peer, error = %e, "mock connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        }
    }
}

/// One connection: requests read in order, each answered by the current mock.
async fn connection(mocks: &LiveMocks, mut stream: TcpStream) -> std::io::Result<()> {
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut continued = false;
    loop {
        let mut start = 0usize;
        let mut close = false;
        loop {
            let rest = buf.get(start..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match parse_request(rest, limits) {
                Ok(Parse::Complete(parsed)) => {
                    let mock = mocks.current();
                    let Responded {
                        close: c, direct, ..
                    } = mock.respond(&parsed, &mut out);
                    start += parsed.consumed;
                    continued = false;
                    if let Some(direct) = direct {
                        stream.write_all(&out).await?;
                        out.clear();
                        stream.write_all(direct).await?;
                    }
                    if c {
                        close = true;
                        break;
                    }
                }
                Ok(Parse::NeedHead) => break,
                Ok(Parse::NeedBody { expect_continue }) => {
                    if expect_continue && !continued {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        continued = true;
                    }
                    break;
                }
                Err(e) => {
                    let (status, reason) = e.status();
                    let body = format!("tapline mirror: {e}\n");
                    out.extend_from_slice(&tapline_mock::render::own_response(
                        status,
                        reason,
                        "error",
                        "text/plain",
                        body.as_bytes(),
                        true,
                    ));
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            stream.shutdown().await?;
            return Ok(());
        }
        buf.drain(..start.min(buf.len()));
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
