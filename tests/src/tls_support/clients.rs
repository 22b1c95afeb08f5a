//! The clients that are not curl: Python's `ssl` (urllib.request and http.client, through the
//! system libssl with `SSL_write_ex`/`SSL_read_ex`) and `gnutls-cli` (GnuTLS); each records
//! what it got as an [`Exchange`].

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{CLIENT_TIMEOUT, Exchange, TLS_PORT, record};
use crate::live::Recorded;
use crate::process::{describe, tail};
use crate::{E2eError, Netns, Result};

/// The Python client: `urllib.request` (a connection per request) and `http.client` over
/// `ssl` (one keep-alive connection); prints what it got as JSON.
const PYTHON_CLIENT: &str = r#"
import hashlib, http.client, json, ssl, sys, urllib.request
host, port, ca, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
out = []
def rec(method, target, status, body, got, local_port):
    out.append({"method": method, "target": target, "status": status,
                "request_body_len": len(body), "request_body_sha256": hashlib.sha256(body).hexdigest(),
                "response_body_len": len(got), "response_body_sha256": hashlib.sha256(got).hexdigest(),
                "local_port": local_port})
plan = [("GET", f"/echo?t={tag}-u1", b""), ("POST", f"/echo?t={tag}-u2", bytes(range(256)) * 80),
        ("GET", f"/big.bin?t={tag}-u3", b"")]
for method, target, body in plan:
    req = urllib.request.Request(f"https://{host}:{port}{target}", data=body or None, method=method)
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
        rec(method, target, resp.status, body, resp.read(), None)
conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
keep = [("GET", f"/echo?t={tag}-k0", b""), ("POST", f"/echo?t={tag}-k1", b"k" * 5000),
        ("GET", f"/big.bin?t={tag}-k2", b""), ("GET", f"/index.html?t={tag}-k3", b"")]
for method, target, body in keep:
    conn.request(method, target, body=body or None)
    resp = conn.getresponse()
    rec(method, target, resp.status, body, resp.read(), conn.sock.getsockname()[1])
conn.close()
print(json.dumps(out))
"#;

/// A record of the Python client.
#[derive(Debug, Deserialize)]
struct PythonRecord {
    #[serde(flatten)]
    recorded: Recorded,
    local_port: Option<u16>,
}

/// Runs the Python client (`/usr/bin/python3`, which links the system libssl) in `netns`
/// against `host`'s [`TLS_PORT`], trusting `ca`; targets carry `tag`.
///
/// # Errors
/// When the client fails or prints something unexpected.
pub fn python_client(
    netns: &Netns,
    dir: &Path,
    ca: &Path,
    host: &str,
    tag: &str,
) -> Result<Vec<Exchange>> {
    let script = dir.join("tls_client.py");
    std::fs::write(&script, PYTHON_CLIENT).map_err(|e| E2eError::io(&script, e))?;
    let mut command = netns.command("/usr/bin/python3");
    command
        .arg(&script)
        .args([host, &TLS_PORT.to_string()])
        .arg(ca)
        .arg(tag);
    let (pid, stdout) = run_owned(&mut command, None)?;
    let records: Vec<PythonRecord> =
        serde_json::from_slice(&stdout).map_err(|e| E2eError::Output {
            tool: "python3 tls_client.py".into(),
            reason: e.to_string(),
        })?;
    Ok(records
        .into_iter()
        .map(|r| Exchange {
            recorded: r.recorded,
            client_port: r.local_port,
            client_pid: pid,
            client_command: "python3",
        })
        .collect())
}

/// Sends `GET target` with `Connection: close` through `gnutls-cli --insecure` from `netns` to
/// `host`'s [`TLS_PORT`], and records the response it printed.
///
/// # Errors
/// When gnutls-cli fails, or its output is no complete HTTP response.
pub fn gnutls_get(netns: &Netns, dir: &Path, host: &str, target: &str) -> Result<Exchange> {
    let mut command = netns.command("gnutls-cli");
    command
        .args(["--insecure", "--port", &TLS_PORT.to_string(), "--logfile"])
        .arg(dir.join("gnutls-cli.log"))
        .arg(host);
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (pid, stdout) = run_owned(&mut command, Some(request.as_bytes()))?;
    let (status, body) = parse_response(&stdout).ok_or_else(|| E2eError::Output {
        tool: "gnutls-cli".into(),
        reason: format!(
            "no complete response in {:?}",
            String::from_utf8_lossy(&stdout)
        ),
    })?;
    Ok(Exchange {
        recorded: record("GET", target, status, b"", body),
        client_port: None,
        client_pid: pid,
        client_command: "gnutls-cli",
    })
}

/// The status and `Content-Length` body of the HTTP/1.1 response at the start of `bytes`.
fn parse_response(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(bytes.get(..end)?).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })?;
    Some((status, bytes.get(end + 4..end + 4 + length)?))
}

/// Runs `command` with `input` on its stdin (kept open until it exits), killing it past
/// [`CLIENT_TIMEOUT`]; requires success and returns its pid and stdout.
fn run_owned(command: &mut Command, input: Option<&[u8]>) -> Result<(u32, Vec<u8>)> {
    let description = describe(command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| E2eError::Spawn {
            command: description.clone(),
            source,
        })?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    if let (Some(pipe), Some(input)) = (&mut stdin, input) {
        let _ = pipe.write_all(input);
        let _ = pipe.flush();
    }
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    drop(stdin);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) if status.success() => Ok((pid, stdout)),
        Some(status) => Err(E2eError::Failed {
            command: description,
            status: status.to_string(),
            stderr: tail(&stderr, 2000),
        }),
        None => Err(E2eError::Timeout {
            command: description,
            timeout: CLIENT_TIMEOUT,
        }),
    }
}
