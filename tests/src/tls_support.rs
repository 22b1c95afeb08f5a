//! Helpers of the TLS plaintext tests: nginx with TLS (OpenSSL) and the same site in plain HTTP,
//! inside a test namespace; clients that record what they got (curl, Python's `ssl`, and
//! `gnutls-cli`); a running `tapline capture` of TLS plaintext; and the check of a snapshot's
//! pairs against the clients' records, their flows and their processes.
//!
//! Every request target carries a tag (`?t=TAG-N`), so a capture of all processes, which also
//! sees the TLS traffic of tests running beside it, is judged on its own test's pairs only.

mod capture;
mod clients;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use capture::{
    Expected, GO_MARKS, PairProcess, RUSTLS_MARKS, TlsCaptureRun, TlsPair, Waiting, check, pairs,
    start_waiting, tagged, waiting_program,
};
pub use clients::{gnutls_get, python_client};

use crate::live::Recorded;
use crate::process::{describe, tail};
use crate::{E2eError, Netns, Result, sha256_hex};

/// nginx's TLS port.
pub const TLS_PORT: u16 = 8443;
/// nginx's plain HTTP port: the same site.
pub const PLAIN_PORT: u16 = 8080;
/// Size of the large static file, `/big.bin`.
pub const BIG_LEN: usize = 256 * 1024;
/// Time allowed for a client run or an nginx start.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The site's nginx configuration: one worker, TLS and plain HTTP, static files and `/echo`.
const NGINX_CONF: &str = r#"user root root;
worker_processes 1;
daemon off;
master_process on;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path DIR/tmp/body;
    proxy_temp_path DIR/tmp/proxy;
    fastcgi_temp_path DIR/tmp/fastcgi;
    uwsgi_temp_path DIR/tmp/uwsgi;
    scgi_temp_path DIR/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 100000;
    server {
        listen TLS_PORT ssl;
        listen PLAIN_PORT;
        ssl_certificate DIR/cert.pem;
        ssl_certificate_key DIR/key.pem;
        root DIR/www;
        location = /echo { return 200 "echo $request_method $request_uri\n"; }
    }
}
"#;

/// nginx serving the test site in a namespace; stopped (master and worker) on drop.
#[derive(Debug)]
pub struct Nginx {
    master: Child,
    worker: u32,
    dir: PathBuf,
}

impl Nginx {
    /// Writes a self-signed certificate for `address`, the site and its configuration into
    /// `dir`, and starts nginx in `netns`, listening on `address`'s [`TLS_PORT`] and
    /// [`PLAIN_PORT`] once this returns.
    ///
    /// # Errors
    /// When `openssl` or nginx fails, or nginx does not listen within a minute.
    pub fn start(netns: &Netns, dir: &Path, address: &str) -> Result<Self> {
        let io = |path: &Path, e| E2eError::io(path, e);
        for sub in ["www", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(dir, e))?;
        }
        crate::run_checked(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                .args(["-subj", "/CN=tapline-e2e", "-addext"])
                .arg(format!("subjectAltName=IP:{address}"))
                .arg("-keyout")
                .arg(dir.join("key.pem"))
                .arg("-out")
                .arg(dir.join("cert.pem")),
            CLIENT_TIMEOUT,
        )?;
        let www = dir.join("www");
        let files: [(&str, Vec<u8>); 2] = [
            (
                "index.html",
                b"<html><body>tapline TLS test</body></html>\n".to_vec(),
            ),
            ("big.bin", pseudo_random(BIG_LEN, 7)),
        ];
        for (name, bytes) in files {
            std::fs::write(www.join(name), bytes).map_err(|e| io(&www, e))?;
        }
        let conf = dir.join("nginx.conf");
        let text = NGINX_CONF
            .replace("DIR", &dir.display().to_string())
            .replace("TLS_PORT", &TLS_PORT.to_string())
            .replace("PLAIN_PORT", &PLAIN_PORT.to_string());
        std::fs::write(&conf, text).map_err(|e| io(&conf, e))?;
        let mut command = netns.command("nginx");
        command
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let master = command.spawn().map_err(|source| E2eError::Spawn {
            command: describe(&command),
            source,
        })?;
        let mut nginx = Nginx {
            master,
            worker: 0,
            dir: dir.to_owned(),
        };
        nginx.worker = nginx.wait_ready()?;
        Ok(nginx)
    }

    /// Waits until the master has a worker and the worker's namespace has both ports
    /// listening; returns the worker's pid.
    fn wait_ready(&mut self) -> Result<u32> {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let master = self.master.id();
        let ports = [TLS_PORT, PLAIN_PORT].map(|p| format!(":{p:04X} 00000000:0000 0A"));
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
                    .unwrap_or_default();
            if let Some(worker) = children.split_whitespace().find_map(|p| p.parse().ok()) {
                let tcp =
                    std::fs::read_to_string(format!("/proc/{worker}/net/tcp")).unwrap_or_default();
                if ports.iter().all(|p| tcp.contains(p.as_str())) {
                    return Ok(worker);
                }
            }
            if !matches!(self.master.try_wait(), Ok(None)) || Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(E2eError::Failed {
                    command: format!("nginx -c {}/nginx.conf", self.dir.display()),
                    status: "not listening on both ports".into(),
                    stderr: tail(&log, 2000),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The worker process (the one that reads and writes TLS).
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// The certificate clients trust.
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The bytes of the site's file `name`.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn file(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join("www").join(name);
        std::fs::read(&path).map_err(|e| E2eError::io(path, e))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Our own child: a fast shutdown (SIGTERM) takes the worker down with it.
        let _ = kill(
            Pid::from_raw(self.master.id().cast_signed()),
            Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.master.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64* from `seed`).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// One exchange as a client saw it, with who made it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Method, target, status and both bodies' lengths and hashes.
    pub recorded: Recorded,
    /// The client's local port, when the client tells it.
    pub client_port: Option<u16>,
    /// The client's process.
    pub client_pid: u32,
    /// The client's command name (`/proc/PID/comm`).
    pub client_command: &'static str,
}

/// A request for [`curl`]: a target, and a body to POST.
#[derive(Debug, Clone)]
pub struct CurlRequest {
    /// The path and query.
    pub target: String,
    /// `Some` for a POST with this body.
    pub body: Option<Vec<u8>>,
}

/// Runs one `curl` in `netns` for `requests` to `base` (`https://IP:PORT` or `http://..`),
/// trusting `ca`: the GETs of one run share a keep-alive connection (curl reuses it). A POST
/// goes alone (curl would send its body with every URL). `dir` holds the bodies.
///
/// # Errors
/// When curl fails or prints something unexpected.
pub fn curl(
    netns: &Netns,
    dir: &Path,
    ca: &Path,
    base: &str,
    requests: &[CurlRequest],
) -> Result<Vec<Exchange>> {
    let mut command = netns.command("curl");
    command
        .args(["-sS", "--http1.1", "--max-time", "60", "-H", "Expect:"])
        .arg("--cacert")
        .arg(ca)
        .args(["-w", "%{local_port} %{http_code}\\n"]);
    let mut outputs = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        if let Some(body) = &request.body {
            let file = dir.join(format!("curl-body-{}", std::process::id()));
            std::fs::write(&file, body).map_err(|e| E2eError::io(&file, e))?;
            command
                .arg("--data-binary")
                .arg(format!("@{}", file.display()));
            command.args(["-H", "Content-Type: application/octet-stream"]);
        }
        let out = dir.join(format!("curl-out-{n}"));
        command
            .arg("-o")
            .arg(&out)
            .arg(format!("{base}{}", request.target));
        outputs.push(out);
    }
    let description = describe(&command);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| E2eError::Spawn {
            command: description.clone(),
            source,
        })?;
    let pid = child.id();
    // curl's --max-time bounds the wait.
    let output = child.wait_with_output().map_err(|source| E2eError::Spawn {
        command: description.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(E2eError::Failed {
            command: description,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let unexpected = |reason: String| E2eError::Output {
        tool: "curl".into(),
        reason,
    };
    if lines.len() != requests.len() {
        return Err(unexpected(format!(
            "{} lines for {} requests",
            lines.len(),
            requests.len()
        )));
    }
    let mut exchanges = Vec::new();
    for ((request, line), out) in requests.iter().zip(lines).zip(outputs) {
        let mut fields = line.split_whitespace().map(str::parse::<u16>);
        let (Some(Ok(port)), Some(Ok(status))) = (fields.next(), fields.next()) else {
            return Err(unexpected(format!("{line:?}")));
        };
        let response = std::fs::read(&out).map_err(|e| E2eError::io(&out, e))?;
        let body = request.body.as_deref().unwrap_or_default();
        let method = if request.body.is_some() {
            "POST"
        } else {
            "GET"
        };
        exchanges.push(Exchange {
            recorded: record(method, &request.target, status, body, &response),
            client_port: Some(port),
            client_pid: pid,
            client_command: "curl",
        });
    }
    Ok(exchanges)
}

/// A [`Recorded`] exchange from its parts.
pub fn record(
    method: &str,
    target: &str,
    status: u16,
    request: &[u8],
    response: &[u8],
) -> Recorded {
    Recorded {
        method: method.to_owned(),
        target: target.to_owned(),
        status,
        request_body_len: request.len() as u64,
        request_body_sha256: sha256_hex(request),
        response_body_len: response.len() as u64,
        response_body_sha256: sha256_hex(response),
    }
}
