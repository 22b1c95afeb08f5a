//! `tapline serve`: the control plane daemon. Flags override the `[serve]` section of
//! `--config`; the API and the job scheduler live in the `tapline-server` crate.
//!
//! Exit codes: 0 after SIGINT or SIGTERM, 2 for bad settings (no authentication, unreadable
//! TLS or token files), 3 when the environment refuses (address in use, data directory).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tapline_config::{Config, format_duration, parse_duration};
use tapline_server::auth::Tokens;
use tapline_server::tls::TlsFiles;
use tapline_server::{Ready, ServeOptions, ServerError};

use crate::exit::EnvironmentError;

/// `tapline serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A tapline config file (TOML) with a [serve] section; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The address the API listens on (default 127.0.0.1:7070; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where jobs.db, each job's files (jobs/ID/) and the snapshots jobs name (snapshots/)
    /// are kept (default /var/lib/tapline).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A file of accepted bearer tokens, one per line.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The server certificate chain (PEM): serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Accept client certificates signed by these CAs (PEM) instead of a token.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Jobs running at once (default 4); the others wait in the queue.
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Stop a job (and fail it) when it runs longer, such as 30m (default 24h; 0s: no limit).
    #[arg(long, value_name = "D")]
    pub max_job_lifetime: Option<String>,
    /// Time a stopped job gets between SIGINT and SIGKILL (default 10s).
    #[arg(long, value_name = "D")]
    pub cancel_grace: Option<String>,
}

/// Runs `tapline serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let serve = &mut config.serve;
    if let Some(listen) = args.listen {
        serve.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        serve.data_dir.clone_from(dir);
    }
    if args.token_file.is_some() {
        serve.token_file.clone_from(&args.token_file);
    }
    if args.tls_cert.is_some() {
        serve.tls_cert.clone_from(&args.tls_cert);
        serve.tls_key.clone_from(&args.tls_key);
    }
    if args.client_ca.is_some() {
        serve.client_ca.clone_from(&args.client_ca);
    }
    if let Some(n) = args.max_concurrent {
        serve.max_concurrent = n;
    }
    if let Some(d) = &args.max_job_lifetime {
        serve.max_job_lifetime =
            parse_duration(d).map_err(|e| anyhow::anyhow!("--max-job-lifetime: {e}"))?;
    }
    if let Some(d) = &args.cancel_grace {
        serve.cancel_grace =
            parse_duration(d).map_err(|e| anyhow::anyhow!("--cancel-grace: {e}"))?;
    }
    config.validate("flags")?;
    let serve = config.serve;

    let tokens = match &serve.token_file {
        Some(path) => Tokens::load(path).map_err(setting)?,
        None => Tokens::default(),
    };
    let tls = match (&serve.tls_cert, &serve.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: serve.client_ca.clone(),
        }),
        _ => None,
    };
    let program = std::env::current_exe()
        .context("cannot find the tapline binary the jobs run")
        .map_err(|e| EnvironmentError(format!("{e:#}")))?;
    let lifetime = (!serve.max_job_lifetime.is_zero()).then_some(serve.max_job_lifetime);
    let auth = match (&serve.client_ca, tokens.is_empty()) {
        (Some(ca), false) => format!("bearer tokens or client certificates from {}", ca.display()),
        (Some(ca), true) => format!("client certificates from {}", ca.display()),
        (None, _) => "bearer tokens".to_owned(),
    };
    let options = ServeOptions {
        listen: serve.listen,
        data_dir: serve.data_dir.clone(),
        tokens,
        tls,
        max_concurrent: serve.max_concurrent,
        max_job_lifetime: lifetime,
        cancel_grace: serve.cancel_grace,
        max_body: usize::try_from(serve.max_body.bytes()).unwrap_or(usize::MAX),
        program,
        cleanup: Some(Box::new(stale_environments)),
    };
    let concurrency = serve.max_concurrent;
    tapline_server::serve(options, |ready| {
        announce(ready, &serve.data_dir, &auth, concurrency, lifetime);
    })
    .map_err(|e| match e {
        ServerError::Setting(_) | ServerError::File { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(EnvironmentError(other.to_string())),
    })?;
    println!("tapline serve: stopped");
    Ok(0)
}

fn setting(e: ServerError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// Removes the ephemeral environments of `tapline run`/`mirror` jobs that died with a
/// previous daemon (their processes were killed just before).
fn stale_environments() -> Vec<String> {
    let report = tapline_netns::cleanup_stale();
    let mut lines: Vec<String> = report
        .removed
        .iter()
        .map(|name| format!("removed stale environment {name}"))
        .collect();
    if report.killed > 0 {
        lines.push(format!(
            "killed {} processes left in stale environments",
            report.killed
        ));
    }
    lines.extend(
        report
            .errors
            .iter()
            .map(|e| format!("cannot remove a stale environment: {e}")),
    );
    lines
}

fn announce(
    ready: &Ready,
    data_dir: &std::path::Path,
    auth: &str,
    concurrency: usize,
    lifetime: Option<std::time::Duration>,
) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for job in &ready.recovered {
        let killed = match job.killed {
            0 => String::new(),
            n => format!("; killed {n} leftover process(es)"),
        };
        let _ = writeln!(
            out,
            "tapline serve: job {} failed: {}{killed}",
            job.id, job.reason
        );
    }
    for line in &ready.cleanup {
        let _ = writeln!(out, "tapline serve: {line}");
    }
    let lifetime = lifetime.map_or_else(|| "none".to_owned(), format_duration);
    let _ = writeln!(
        out,
        "tapline serve: listening on {} ({auth}); data in {}; {concurrency} jobs at once, \
         job lifetime limit {lifetime}; {} queued",
        ready.url,
        data_dir.display(),
        ready.queued
    );
    let _ = out.flush();
}
