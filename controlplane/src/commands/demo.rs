//! `tapline demo`: the loop in one command. It starts a small HTTP service on loopback, records
//! real traffic to it with `tcpdump`, imports the capture and shows the pairs.
//!
//! The service and its client live in this process, so the demo needs nothing but `tcpdump`
//! and the privilege to capture on `lo`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tapline_dataplane::import::{ImportOptions, import};
use tapline_dataplane::snapshot::Snapshot;
use tapline_dataplane::view::{PairView, write_table};

use crate::cli::DemoArgs;
use crate::exit::EnvironmentError;

/// Runs `tapline demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    check_environment()?;
    let (dir, _keep) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let tmp = tempfile::Builder::new().prefix("tapline-demo-").tempdir()?;
            (tmp.path().to_path_buf(), Some(tmp.keep()))
        }
    };
    let pcap = dir.join("demo.pcap");
    let snap = dir.join("snapshot");
    if snap.exists() {
        std::fs::remove_dir_all(&snap).with_context(|| format!("removing {}", snap.display()))?;
    }

    let listener = TcpListener::bind("127.0.0.1:0").context("binding the demo service")?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || serve(listener));
    println!("1. demo service listening on 127.0.0.1:{port}");

    let mut tcpdump = start_tcpdump(&pcap, port)?;
    let exchanges = client(port).context("demo client")?;
    wait_until_settled(&pcap);
    stop_tcpdump(&mut tcpdump)?;
    println!(
        "2. client made {exchanges} requests; tcpdump wrote {}",
        pcap.display()
    );

    let summary = import(&pcap, &snap, &ImportOptions::default(), &mut |_, _| {})?;
    let c = &summary.manifest.counts;
    println!(
        "3. tapline import {} --out {}\n   {} packets, {} connections, {} request/response pairs ({} incomplete)",
        pcap.display(),
        snap.display(),
        c.packets,
        c.connections,
        c.rrpairs,
        c.incomplete_rrpairs
    );
    println!("4. tapline inspect {}\n", snap.display());
    let snapshot = Snapshot::open(&snap)?;
    let mut errors = Vec::new();
    let rows: Vec<_> = snapshot
        .pairs_sorted(&mut |e| errors.push(e))
        .into_iter()
        .map(|pair| PairView::new(pair).table_row())
        .collect();
    write_table(
        &mut std::io::stdout(),
        &rows,
        snapshot.manifest().counts.rrpairs,
    )?;
    if let Some(e) = errors.first() {
        anyhow::bail!("{e}");
    }
    println!(
        "\nTry: tapline inspect {} --filter 'status>=500' --format jsonl",
        snap.display()
    );
    Ok(0)
}

fn check_environment() -> anyhow::Result<()> {
    let tcpdump = which("tcpdump");
    if tcpdump.is_none() {
        return Err(EnvironmentError(
            "the demo records loopback traffic with tcpdump, which is not installed: apt-get install tcpdump".into(),
        )
        .into());
    }
    if !is_root() {
        return Err(EnvironmentError(
            "the demo captures on the loopback interface, which needs root (CAP_NET_RAW): run it with sudo".into(),
        )
        .into());
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn start_tcpdump(pcap: &Path, port: u16) -> anyhow::Result<std::process::Child> {
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-s", "0", "-U", "-w"])
        .arg(pcap)
        .args(["tcp", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| EnvironmentError(format!("cannot start tcpdump: {e}")))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| EnvironmentError("tcpdump has no stderr".into()))?;
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break,
            Some(Ok(_)) if Instant::now() < deadline => continue,
            other => {
                let _ = child.kill();
                let said = match other {
                    Some(Ok(line)) => line,
                    _ => "it exited".into(),
                };
                return Err(EnvironmentError(format!("tcpdump did not start: {said}")).into());
            }
        }
    }
    // Keep draining tcpdump's stderr so it never blocks on a full pipe.
    thread::spawn(move || lines.for_each(drop));
    Ok(child)
}

/// Waits until tcpdump has written everything: the file stops growing for 1.5 s (libpcap
/// hands packets over in blocks at least once a second)
/// (at most 10 s), so a busy machine does not cut the capture short.
fn wait_until_settled(pcap: &Path) {
    let size = || std::fs::metadata(pcap).map_or(0, |m| m.len());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = size();
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        let now = size();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(1500) {
            return;
        }
    }
}

fn stop_tcpdump(child: &mut std::process::Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// The demo service: a few JSON endpoints, one of which fails for one input.
fn serve(listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = serve_connection(stream);
        });
    }
}

fn serve_connection(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut head = Vec::new();
        loop {
            let n = reader.read_until(b'\n', &mut head)?;
            if n == 0 {
                return Ok(());
            }
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(&head).is_err() {
            return Ok(());
        }
        let method = req.method.unwrap_or("GET").to_string();
        let path = req.path.unwrap_or("/").to_string();
        let length = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        let close = req
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("connection") && h.value == b"close");
        let mut body = vec![0; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        respond(&mut out, &method, &path, &body)?;
        if close {
            return Ok(());
        }
    }
}

fn respond(out: &mut TcpStream, method: &str, path: &str, body: &[u8]) -> std::io::Result<()> {
    let (status, content) = match (method, path) {
        ("GET", "/api/users/13") => (
            "500 Internal Server Error",
            r#"{"error":"user 13 has no email"}"#.to_string(),
        ),
        ("GET", p) if p.starts_with("/api/users/") => {
            let id = &p["/api/users/".len()..];
            (
                "200 OK",
                format!(r#"{{"id":{id:?},"name":"user {id}","email":"u{id}@example.com"}}"#),
            )
        }
        ("POST", "/api/orders") => (
            "201 Created",
            format!(
                r#"{{"order":{},"bytes":{}}}"#,
                1000 + body.len(),
                body.len()
            ),
        ),
        ("GET", "/api/report") => {
            let chunks = ["{\"rows\":[", "1,2,3", "]}"];
            let mut text = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for c in chunks {
                text.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
            }
            text.push_str("0\r\n\r\n");
            return out.write_all(text.as_bytes());
        }
        ("HEAD", "/health") => {
            return out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
        }
        _ => ("404 Not Found", r#"{"error":"not found"}"#.to_string()),
    };
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{content}",
        content.len()
    );
    out.write_all(text.as_bytes())
}

/// The demo client: keep-alive, pipelined and one-shot requests. Returns how many it made.
fn client(port: u16) -> anyhow::Result<usize> {
    let mut made = 0;
    // One keep-alive connection with several requests in turn.
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    for id in [1, 2, 13, 4] {
        let req = format!("GET /api/users/{id} HTTP/1.1\r\nHost: demo\r\n\r\n");
        exchange(&mut conn, req.as_bytes())?;
        made += 1;
    }
    let order = br#"{"item":"book","qty":2}"#;
    let req = format!(
        "POST /api/orders HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        order.len()
    );
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(order);
    exchange(&mut conn, &bytes)?;
    made += 1;
    exchange(&mut conn, b"GET /api/report HTTP/1.1\r\nHost: demo\r\n\r\n")?;
    made += 1;
    exchange(&mut conn, b"HEAD /health HTTP/1.1\r\nHost: demo\r\n\r\n")?;
    made += 1;
    drop(conn);
    // Pipelined: three requests written at once.
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.write_all(
        b"GET /api/users/7 HTTP/1.1\r\nHost: demo\r\n\r\nGET /nope HTTP/1.1\r\nHost: demo\r\n\r\nGET /api/users/8 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    )?;
    let mut sink = Vec::new();
    conn.read_to_end(&mut sink)?;
    made += 3;
    Ok(made)
}

/// Sends one request and reads its response (which the demo service always delimits).
fn exchange(conn: &mut TcpStream, request: &[u8]) -> anyhow::Result<()> {
    conn.write_all(request)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_only = request.starts_with(b"HEAD");
    loop {
        let n = conn.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "the demo service closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = resp.parse(&buf) {
            let chunked = resp
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding") && h.value == b"chunked");
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            let done = if head_only {
                true
            } else if chunked {
                buf.ends_with(b"0\r\n\r\n")
            } else {
                buf.len() >= head_len + length
            };
            if done {
                return Ok(());
            }
        }
    }
}
