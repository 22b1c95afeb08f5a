//! A small blocking client of the API (ureq with rustls): what `tapline job ...` uses, and
//! what `tapline run --server`/`replay --server` can use to hand their work to a daemon.
//!
//! ```no_run
//! use tapline_server::client::{Client, ClientOptions};
//! use tapline_server::spec::{JobSpec, LoadSpec};
//! # fn main() -> Result<(), tapline_server::ClientError> {
//! let client = Client::new(&ClientOptions {
//!     server: "https://ci-tapline:7070".into(),
//!     token: Some("the-token-from-the-token-file".into()),
//!     ca: Some("ca.pem".into()),
//!     ..ClientOptions::default()
//! })?;
//! let job = client.submit(&JobSpec::Load(LoadSpec {
//!     snapshot: "shop".into(),
//!     target: "http://10.0.0.5:8080".into(),
//!     ..LoadSpec::default()
//! }))?;
//! let done = client.watch(job.id, |event| println!("{event:?}"))?;
//! println!("job {} {}", done.id, done.state);
//! # Ok(()) }
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::ClientError;
use crate::job::{Job, JobEvent, JobState};
use crate::report::ReportFormat;
use crate::spec::JobSpec;

/// Largest answer read (reports included).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// How to reach and authenticate to the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The base URL, such as `https://host:7070`.
    pub server: String,
    /// A bearer token.
    pub token: Option<String>,
    /// A client certificate chain (PEM), with `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) the server's certificate must chain to; otherwise the public
    /// web roots.
    pub ca: Option<PathBuf>,
    /// Longest wait for one answer (default 30 s); watching has no limit.
    pub timeout: Option<Duration>,
}

/// A connection to the daemon's API.
#[derive(Debug)]
pub struct Client {
    agent: Agent,
    watcher: Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    /// Checks the options and prepares the client (no request is made).
    ///
    /// # Errors
    /// [`ClientError::Setting`] for a URL that is not http(s), a key without a certificate
    /// (or the reverse), or an unreadable PEM file.
    pub fn new(options: &ClientOptions) -> Result<Client, ClientError> {
        let base = options.server.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() < 9 {
            return Err(ClientError::Setting(format!(
                "--server {:?}: expected https://HOST:PORT or http://HOST:PORT",
                options.server
            )));
        }
        let mut tls = TlsConfig::builder();
        if let Some(ca) = &options.ca {
            let roots: Vec<Certificate<'static>> = pem_items(ca)?
                .into_iter()
                .filter_map(|item| match item {
                    PemItem::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect();
            if roots.is_empty() {
                return Err(ClientError::Setting(format!(
                    "--ca {}: holds no PEM certificate",
                    ca.display()
                )));
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
        match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => {
                let chain: Vec<Certificate<'static>> = pem_items(cert)?
                    .into_iter()
                    .filter_map(|item| match item {
                        PemItem::Certificate(c) => Some(c),
                        _ => None,
                    })
                    .collect();
                let private: Option<PrivateKey<'static>> =
                    pem_items(key)?.into_iter().find_map(|item| match item {
                        PemItem::PrivateKey(k) => Some(k),
                        _ => None,
                    });
                let Some(private) = private else {
                    return Err(ClientError::Setting(format!(
                        "--key {}: holds no PEM private key",
                        key.display()
                    )));
                };
                if chain.is_empty() {
                    return Err(ClientError::Setting(format!(
                        "--cert {}: holds no PEM certificate",
                        cert.display()
                    )));
                }
                tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, private)));
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Setting("--cert and --key go together".into()));
            }
        }
        let tls = tls.build();
        let timeout = options.timeout.unwrap_or(Duration::from_secs(30));
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.clone())
            .timeout_global(Some(timeout))
            .build()
            .into();
        let watcher: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(timeout))
            .timeout_global(None)
            .timeout_recv_body(None)
            .build()
            .into();
        Ok(Client {
            agent,
            watcher,
            base,
            token: options.token.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// `GET /api/v1/health`.
    ///
    /// # Errors
    /// [`ClientError`] when the server cannot be reached or answers an error.
    pub fn health(&self) -> Result<serde_json::Value, ClientError> {
        let url = self.url("/api/v1/health");
        let answer = self.agent.get(&url).call();
        json(&url, answer)
    }

    /// Submits a job (`POST /api/v1/jobs`) and returns it, queued.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the field the server blamed for a bad spec (400), or for
    /// missing (401) or refused (403) credentials; [`ClientError::Transport`].
    pub fn submit(&self, spec: &JobSpec) -> Result<Job, ClientError> {
        let url = self.url("/api/v1/jobs");
        let body = serde_json::to_vec(spec).map_err(|e| ClientError::Setting(e.to_string()))?;
        let answer = self
            .authorized(self.agent.post(&url))
            .header("Content-Type", "application/json")
            .send(&body[..]);
        json(&url, answer)
    }

    /// Lists jobs (`GET /api/v1/jobs`), newest first, optionally only those in `state`.
    ///
    /// # Errors
    /// As [`Client::submit`].
    pub fn list(&self, state: Option<JobState>) -> Result<Vec<Job>, ClientError> {
        let mut url = self.url("/api/v1/jobs");
        if let Some(state) = state {
            url.push_str(&format!("?state={state}"));
        }
        let answer = self.authorized(self.agent.get(&url)).call();
        let mut value: serde_json::Value = json(&url, answer)?;
        serde_json::from_value(value["jobs"].take()).map_err(|e| ClientError::Protocol {
            url,
            reason: e.to_string(),
        })
    }

    /// One job (`GET /api/v1/jobs/{id}`).
    ///
    /// # Errors
    /// As [`Client::submit`]; 404 for an unknown id.
    pub fn job(&self, id: u64) -> Result<Job, ClientError> {
        let url = self.url(&format!("/api/v1/jobs/{id}"));
        let answer = self.authorized(self.agent.get(&url)).call();
        json(&url, answer)
    }

    /// Cancels a job (`POST /api/v1/jobs/{id}/cancel`) and returns it as it is now.
    ///
    /// # Errors
    /// As [`Client::submit`]; 409 when it has already ended.
    pub fn cancel(&self, id: u64) -> Result<Job, ClientError> {
        let url = self.url(&format!("/api/v1/jobs/{id}/cancel"));
        let answer = self.authorized(self.agent.post(&url)).send_empty();
        json(&url, answer)
    }

    /// A job's report file (`GET /api/v1/jobs/{id}/report?format=...`).
    ///
    /// # Errors
    /// As [`Client::submit`]; 404 when the job wrote no such report.
    pub fn report(&self, id: u64, format: ReportFormat) -> Result<Vec<u8>, ClientError> {
        let url = self.url(&format!(
            "/api/v1/jobs/{id}/report?format={}",
            format.name()
        ));
        let answer = self.authorized(self.agent.get(&url)).call();
        let mut response = checked(&url, answer)?;
        read_all(&url, &mut response)
    }

    /// The snapshots on the server (`GET /api/v1/snapshots`).
    ///
    /// # Errors
    /// As [`Client::submit`].
    pub fn snapshots(&self) -> Result<serde_json::Value, ClientError> {
        let url = self.url("/api/v1/snapshots");
        let answer = self.authorized(self.agent.get(&url)).call();
        json(&url, answer)
    }

    /// Follows a job's events (`GET /api/v1/jobs/{id}/events`) until it ends, calling
    /// `on_event` for each, and returns the job as it ended.
    ///
    /// # Errors
    /// As [`Client::submit`], and [`ClientError::Protocol`] when the stream ends before the
    /// job does or carries something else than events.
    pub fn watch(&self, id: u64, mut on_event: impl FnMut(&JobEvent)) -> Result<Job, ClientError> {
        let url = self.url(&format!("/api/v1/jobs/{id}/events"));
        let answer = self
            .authorized(self.watcher.get(&url))
            .header("Accept", "text/event-stream")
            .call();
        let response = checked(&url, answer)?;
        let reader = BufReader::new(response.into_body().into_reader());
        let mut last: Option<Job> = None;
        let mut data = String::new();
        for line in reader.lines() {
            let line = line.map_err(|e| ClientError::Transport {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            } else if line.is_empty() && !data.is_empty() {
                let event: JobEvent =
                    serde_json::from_str(&data).map_err(|e| ClientError::Protocol {
                        url: url.clone(),
                        reason: format!("an event that is not a job event: {e}"),
                    })?;
                data.clear();
                on_event(&event);
                if let JobEvent::State { job } = event {
                    let done = job.state.is_final();
                    last = Some(*job);
                    if done {
                        break;
                    }
                }
            }
        }
        match last {
            Some(job) if job.state.is_final() => Ok(job),
            _ => Err(ClientError::Protocol {
                url,
                reason: "the event stream ended before the job did".into(),
            }),
        }
    }
}

fn pem_items(path: &Path) -> Result<Vec<PemItem<'static>>, ClientError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ClientError::Setting(format!("{}: {e}", path.display())))?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Setting(format!("{}: not PEM: {e}", path.display())))
}

/// The response when its status is a success, else the server's error.
fn checked(
    url: &str,
    answer: Result<Response<ureq::Body>, ureq::Error>,
) -> Result<Response<ureq::Body>, ClientError> {
    let mut response = answer.map_err(|e| ClientError::Transport {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let status = response.status().as_u16();
    if status < 400 {
        return Ok(response);
    }
    let body = read_all(url, &mut response).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = value["field"].as_str().map(str::to_owned);
    let error = value["error"].as_str().map_or_else(
        || String::from_utf8_lossy(&body).trim().to_owned(),
        str::to_owned,
    );
    let message = match &field {
        Some(field) => format!("{field}: {error}"),
        None => error,
    };
    Err(ClientError::Api {
        status,
        message,
        field,
    })
}

fn read_all(url: &str, response: &mut Response<ureq::Body>) -> Result<Vec<u8>, ClientError> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        })
}

fn json<T: serde::de::DeserializeOwned>(
    url: &str,
    answer: Result<Response<ureq::Body>, ureq::Error>,
) -> Result<T, ClientError> {
    let mut response = checked(url, answer)?;
    let body = read_all(url, &mut response)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
