//! Helpers of the privileged TLS tests: skipping, a local HTTPS server, clients, collecting
//! events.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapline_tls::{TlsCapture, TlsDirection, TlsEvent, TlsEventKind, TlsLibrary, TlsRole};

/// The variable that turns skips into failures (as in the `tests/` crate).
pub const REQUIRE_ENV: &str = "TAPLINE_REQUIRE_PRIVILEGED";

/// Reports that `test` cannot run for `reason` and returns `false`; panics instead when
/// `TAPLINE_REQUIRE_PRIVILEGED=1`.
pub fn skip(test: &str, reason: &str) -> bool {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: cannot run and {REQUIRE_ENV}=1 forbids skipping: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (set {REQUIRE_ENV}=1 to fail instead)"
    );
    false
}

/// Whether the test can run: root, and the tools present.
pub fn require(test: &str, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip(test, "needs root (eBPF uprobes); run the suite as root");
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !Path::new(t).exists())
        .collect();
    if !missing.is_empty() {
        return skip(
            test,
            &format!(
                "missing {} (run tests/setup.sh as root)",
                missing.join(", ")
            ),
        );
    }
    true
}

/// Debian's Python, which links the system libssl (pyenv shims may shadow `python3`).
pub const PYTHON: &str = "/usr/bin/python3";
/// curl, linked against OpenSSL.
pub const CURL: &str = "/usr/bin/curl";
/// GnuTLS's client.
pub const GNUTLS_CLI: &str = "/usr/bin/gnutls-cli";
/// OpenSSL's tool, for the certificate.
pub const OPENSSL: &str = "/usr/bin/openssl";

/// The server's answer to `/big`: 1 MiB of a repeating pattern.
pub fn big_body() -> Vec<u8> {
    (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect()
}

const SERVER: &str = r#"
import http.server, socket, ssl, sys
BIG = bytes(i % 251 for i in range(1 << 20))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = BIG if self.path == "/big" else b"hello from tls\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[3] else socket.AF_INET
srv = S((sys.argv[3], 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A Python HTTPS server on 127.0.0.1, killed on drop.
pub struct HttpsServer {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    /// Makes a self-signed certificate and starts the server.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts the server with more environment variables.
    pub fn start_with_env(env: &[(&str, &Path)]) -> Self {
        Self::start_on("127.0.0.1", env)
    }

    /// Starts the server on address `host` (`127.0.0.1`, `::1`) with more environment
    /// variables.
    pub fn start_on(host: &str, env: &[(&str, &Path)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let status = Command::new(OPENSSL)
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
            ])
            .args(["-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl req failed");
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let mut child = Command::new(PYTHON)
            .envs(env.iter().copied())
            .arg(&script)
            .arg(&cert)
            .arg(&key)
            .arg(host)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        HttpsServer {
            child,
            port,
            _dir: dir,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `curl -sk https://127.0.0.1:PORT/PATH`; returns its pid and output.
pub fn curl(port: u16, path: &str) -> (u32, Vec<u8>) {
    curl_url(&format!("https://127.0.0.1:{port}{path}"))
}

/// Runs `curl -sk URL`; returns its pid and output.
pub fn curl_url(url: &str) -> (u32, Vec<u8>) {
    let child = Command::new(CURL)
        .args(["-sk", "--http1.1"])
        .arg(url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "curl failed: {:?}", output.status);
    (pid, output.stdout)
}

/// Sends `request` with `gnutls-cli --insecure` and waits until the output holds `until`;
/// returns its pid.
pub fn gnutls_cli(port: u16, request: &[u8], until: &str) -> u32 {
    let mut child = Command::new(GNUTLS_CLI)
        .args(["--insecure", "-p"])
        .arg(port.to_string())
        .arg("127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // gnutls-cli reads stdin only after the handshake; it is fine to write at once.
    stdin.write_all(request).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&output).contains(until) {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        output.extend_from_slice(&buf[..n]);
    }
    // Let it end on its own (the server closes after the response; stdin ends here), so it
    // calls gnutls_deinit, which the test checks; kill it only if it hangs.
    drop(stdin);
    let exit_deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < exit_deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        String::from_utf8_lossy(&output).contains(until),
        "gnutls-cli output lacks {until:?}: {}",
        String::from_utf8_lossy(&output)
    );
    pid
}

/// An owned copy of a [`TlsEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub pid: u32,
    pub conn_id: u64,
    pub local: Option<std::net::SocketAddr>,
    pub remote: Option<std::net::SocketAddr>,
    pub role: TlsRole,
    pub library: TlsLibrary,
    pub command: String,
    /// `None` for a close.
    pub data: Option<(TlsDirection, Vec<u8>, u32, u32, u32)>,
}

impl Seen {
    fn of(event: &TlsEvent<'_>) -> Self {
        Seen {
            pid: event.pid,
            conn_id: event.conn_id,
            local: event.local,
            remote: event.remote,
            role: event.role,
            library: event.library,
            command: event.command(),
            data: match event.kind {
                TlsEventKind::Data {
                    direction,
                    data,
                    lost,
                    offset,
                    call_len,
                } => Some((direction, data.to_vec(), lost, offset, call_len)),
                TlsEventKind::Close => None,
            },
        }
    }
}

/// Drains `capture` every 5 ms until `done` holds for the events so far or `timeout` passes.
pub fn collect(
    capture: &mut TlsCapture,
    timeout: Duration,
    done: &dyn Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        capture
            .drain(&mut |event| seen.push(Seen::of(event)))
            .unwrap();
        if done(&seen) || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The bytes process `pid` moved `direction`, in order, and the lost bytes among them.
pub fn stream(seen: &[Seen], pid: u32, direction: TlsDirection) -> (Vec<u8>, u64) {
    let mut bytes = Vec::new();
    let mut lost = 0;
    for event in seen.iter().filter(|e| e.pid == pid) {
        if let Some((d, data, l, _, _)) = &event.data
            && *d == direction
        {
            bytes.extend_from_slice(data);
            lost += u64::from(*l);
        }
    }
    (bytes, lost)
}

/// Whether process `pid` closed a session.
pub fn closed(seen: &[Seen], pid: u32) -> bool {
    seen.iter().any(|e| e.pid == pid && e.data.is_none())
}

/// Compiles C `source` into an executable named `name` in `dir`.
pub fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let exe = dir.join(name);
    let status = Command::new("cc")
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success(), "cc failed on {name}");
    exe
}

/// A running process, killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
