//! Helpers of the `tapline serve` end-to-end tests: certificates made with `openssl` (a CA,
//! the server's, a client's signed by the CA and one signed by another CA), a running daemon
//! stopped with SIGTERM or killed with SIGKILL, the API driven with `curl`, and a small
//! snapshot with a `tapline mock` of it as the target of `load` jobs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::mock_support::{CurlAnswer, MockProcess, curl, write_http_pcap};
use crate::process::{run_checked, run_with_timeout};
use crate::{E2eError, Result, tapline};

/// The token the tests' daemons accept.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Time allowed for a daemon to start listening.
pub const START: Duration = Duration::from_secs(30);

/// PEM files of the tests' TLS.
#[derive(Debug, Clone)]
pub struct Certs {
    /// The CA that signs the server's and the accepted client's certificates.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1) and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate signed by the CA, and its key.
    pub client: (PathBuf, PathBuf),
    /// A client certificate signed by another CA, and its key.
    pub stranger: (PathBuf, PathBuf),
}

/// Makes the certificates in `dir` with `openssl`.
///
/// # Errors
/// When `openssl` fails.
pub fn make_certs(dir: &Path) -> Result<Certs> {
    let openssl = |args: &[&str]| -> Result<()> {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(dir);
        run_checked(&mut command, Duration::from_secs(60)).map(|_| ())
    };
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=tapline test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
    }
    let leaf = |name: &str, ca: &str, ext: &str| -> Result<(PathBuf, PathBuf)> {
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ])?;
        std::fs::write(dir.join(format!("{name}.ext")), ext)
            .map_err(|e| E2eError::io(dir.join(name), e))?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ])?;
        Ok((
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        ))
    };
    let server = leaf(
        "server",
        "ca",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )?;
    let client = leaf("client", "ca", "extendedKeyUsage=clientAuth\n")?;
    let stranger = leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth\n")?;
    Ok(Certs {
        ca: dir.join("ca.pem"),
        server,
        client,
        stranger,
    })
}

/// A `tapline serve` running in the background; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// The API's base URL it announced.
    pub url: String,
    /// Everything it printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `tapline serve --listen 127.0.0.1:0 --data-dir DATA ARGS...` and waits until it
    /// listens; its stderr goes to `DATA/../serve.stderr`.
    ///
    /// # Errors
    /// When it cannot start or does not listen within [`START`].
    pub fn start(data: &Path, args: &[&str]) -> Result<Daemon> {
        let log = data.with_extension("stderr");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| E2eError::io(&log, e))?;
        let mut command = Command::new(tapline::binary()?);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .env("TAPLINE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().map_err(|source| E2eError::Spawn {
            command: "tapline serve".into(),
            source,
        })?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            let text = Arc::clone(&stdout);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(url.to_owned());
                    }
                    if let Ok(mut text) = text.lock() {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            });
        }
        match rx.recv_timeout(START) {
            Ok(url) => Ok(Daemon { child, url, stdout }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(E2eError::Failed {
                    command: "tapline serve".into(),
                    status: "did not listen".into(),
                    stderr: std::fs::read_to_string(&log).unwrap_or_default(),
                })
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id().cast_signed()
    }

    /// Sends SIGTERM and waits for the exit (at most `within`).
    ///
    /// # Errors
    /// When it does not exit in time.
    pub fn stop(mut self, within: Duration) -> Result<ExitStatus> {
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(E2eError::Timeout {
                    command: "tapline serve (after SIGTERM)".into(),
                    timeout: within,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(300));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The API through `curl`, with the credentials of one client.
#[derive(Debug, Clone)]
pub struct Api {
    /// The base URL.
    pub url: String,
    /// Extra curl arguments: `-H Authorization: ...`, `--cacert`, `--cert`, `--key`.
    pub auth: Vec<String>,
    /// Where curl keeps the answer's files.
    pub dir: PathBuf,
}

impl Api {
    /// A client of `url` with the bearer token `token` (none when `None`).
    pub fn new(url: &str, dir: &Path, token: Option<&str>) -> Api {
        let auth = token
            .map(|t| vec!["-H".to_owned(), format!("Authorization: Bearer {t}")])
            .unwrap_or_default();
        Api {
            url: url.to_owned(),
            auth,
            dir: dir.to_path_buf(),
        }
    }

    /// Adds curl arguments (such as `--cacert FILE`).
    #[must_use]
    pub fn with(mut self, args: &[&str]) -> Api {
        self.auth.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Runs curl with `args` after the credentials, on `PATH` under the base URL.
    ///
    /// # Errors
    /// When curl fails (a refused TLS handshake included).
    pub fn call(&self, args: &[&str], path: &str) -> Result<CurlAnswer> {
        let url = format!("{}{path}", self.url);
        let mut all: Vec<&str> = self.auth.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all.push(&url);
        curl(Command::new("curl"), &self.dir, &all)
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub fn get(&self, path: &str) -> Result<CurlAnswer> {
        self.call(&[], path)
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub fn post(&self, path: &str, json: &str) -> Result<CurlAnswer> {
        self.call(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                json,
            ],
            path,
        )
    }

    /// `GET path` as JSON.
    ///
    /// # Errors
    /// As [`Api::call`], or when the answer is not JSON.
    pub fn json(&self, path: &str) -> Result<serde_json::Value> {
        let answer = self.get(path)?;
        body_json(&answer)
    }
}

/// The body of an answer as JSON.
///
/// # Errors
/// When it is not JSON.
pub fn body_json(answer: &CurlAnswer) -> Result<serde_json::Value> {
    serde_json::from_slice(&answer.body).map_err(|e| E2eError::Output {
        tool: "curl".into(),
        reason: format!(
            "{e}: status {}, body {:?}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ),
    })
}

/// Runs curl with `args` and returns its exit code and stderr: for handshakes that must fail.
///
/// # Errors
/// When curl cannot be started.
pub fn curl_exit(args: &[&str]) -> Result<(Option<i32>, String)> {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-S", "--max-time", "20", "-o", "/dev/null"])
        .args(args);
    let run = run_with_timeout(&mut command, Duration::from_secs(30))?;
    Ok((run.code(), run.stderr))
}

/// Makes a small snapshot `DIR/NAME` (three exchanges on one connection) with
/// `tapline import` from a capture made by hand.
///
/// # Errors
/// When the capture cannot be written or the import fails.
pub fn small_snapshot(dir: &Path, name: &str) -> Result<PathBuf> {
    let pcap = dir.join(format!("{name}.pcap"));
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: shop\r\n\r\n").into_bytes();
    let ok = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let exchanges = [
        (get("/items/1"), ok(r#"{"id":1,"price":7}"#)),
        (get("/items/2"), ok(r#"{"id":2,"price":14}"#)),
        (get("/status"), ok(r#"{"status":"ok"}"#)),
    ];
    let borrowed: Vec<(&[u8], &[u8])> = exchanges
        .iter()
        .map(|(a, b)| (a.as_slice(), b.as_slice()))
        .collect();
    write_http_pcap(
        &pcap,
        ([10, 1, 0, 1], 40000),
        ([10, 1, 0, 2], 8080),
        &borrowed,
    )
    .map_err(|e| E2eError::io(&pcap, e))?;
    let snapshot = dir.join(name);
    tapline::import(&pcap, &snapshot, Some(1))?.checked(tapline::TAPLINE_TIMEOUT)?;
    Ok(snapshot)
}

/// Starts `tapline mock SNAPSHOT --listen 127.0.0.1:0 --no-mark`: a target that answers a
/// replay of the snapshot exactly as recorded.
///
/// # Errors
/// When it does not listen in time.
pub fn mock_target(snapshot: &Path) -> Result<MockProcess> {
    let mut command = Command::new(tapline::binary()?);
    command.arg("mock").arg(snapshot).args([
        "--listen",
        "127.0.0.1:0",
        "--no-mark",
        "--threads",
        "1",
    ]);
    MockProcess::start(&mut command, START)
}

/// Polls job `id` until its state is final or `within` passes; returns the job.
///
/// # Errors
/// When the API fails or the job does not end in time.
pub fn wait_final(api: &Api, id: u64, within: Duration) -> Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let job = api.json(&format!("/api/v1/jobs/{id}"))?;
        let state = job["state"].as_str().unwrap_or_default();
        if ["succeeded", "failed", "cancelled"].contains(&state) {
            return Ok(job);
        }
        if Instant::now() >= deadline {
            return Err(E2eError::Output {
                tool: "tapline serve".into(),
                reason: format!("job {id} still {state} after {within:?}: {job}"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls job `id` until it is in `state` or `within` passes; returns the job.
///
/// # Errors
/// When the API fails or the state is not reached in time.
pub fn wait_state(api: &Api, id: u64, state: &str, within: Duration) -> Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let job = api.json(&format!("/api/v1/jobs/{id}"))?;
        if job["state"] == state && (state != "running" || job["pid"].is_i64()) {
            return Ok(job);
        }
        if Instant::now() >= deadline {
            return Err(E2eError::Output {
                tool: "tapline serve".into(),
                reason: format!("job {id} not {state} after {within:?}: {job}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether any process of group `pgid` is alive; zombies do not count (an init that does not
/// reap keeps the children of a killed daemon as zombies).
pub fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(std::result::Result::ok).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.first() != Some(&"Z")
            && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
    })
}
