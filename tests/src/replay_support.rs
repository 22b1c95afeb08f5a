//! Helpers of the `tapline replay` end-to-end tests: the shop service with a bug and its
//! dependency (`tests/scripts/replay_*.py`) run in a namespace, a loopback tcpdump stopped only
//! once its file has settled, hand-made captures for tests without root, and reading the
//! reports replay writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use crate::capture::wait_until_settled;
use crate::pcap::{PcapBuilder, connection, frame};
use crate::process::{describe, kill_and_collect, watch_lines};
use crate::{Background, E2eError, Netns, Result, scripts};

/// Time allowed for a replay run.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts `tests/scripts/NAME` with `args` inside `netns` (or here when `None`) and waits for
/// its `READY` line.
///
/// # Errors
/// When it cannot start or does not get ready within 30 s.
pub fn python(netns: Option<&Netns>, name: &str, args: &[&str]) -> Result<Background> {
    let mut command = match netns {
        Some(ns) => ns.command(scripts::python()),
        None => Command::new(scripts::python()),
    };
    command.arg(scripts::path(name)).args(args);
    Background::spawn_until(&mut command, "READY", Duration::from_secs(30))
}

/// A free TCP port on 127.0.0.1 of this namespace (bound and released: good enough for tests).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| E2eError::io("127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| E2eError::io("127.0.0.1:0", e))?;
    Ok(addr.port())
}

/// A tcpdump on `lo` writing in blocks (no `--immediate-mode`), as a user would run it.
#[derive(Debug)]
pub struct LoopbackCapture {
    child: Child,
    file: PathBuf,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl LoopbackCapture {
    /// Starts `tcpdump -i lo -s 0 -U -n -w FILE FILTER...` inside `netns` and waits until it
    /// listens.
    ///
    /// # Errors
    /// When tcpdump cannot start or does not report listening within 15 s.
    pub fn start(netns: &Netns, file: &Path, filter: &[&str]) -> Result<Self> {
        let mut command = netns.command("tcpdump");
        command
            .args(["-i", "lo", "-s", "0", "-U", "-n", "-Z", "root", "-w"])
            .arg(file)
            .args(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let description = describe(&command);
        let mut child = command.spawn().map_err(|source| E2eError::Spawn {
            command: description.clone(),
            source,
        })?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child
            .stderr
            .take()
            .map(|pipe| watch_lines(pipe, "listening on", ready_tx));
        let mut capture = Self {
            child,
            file: file.to_owned(),
            stderr,
        };
        if ready_rx.recv_timeout(Duration::from_secs(15)).is_err() {
            let lines = capture.kill_now();
            return Err(E2eError::Failed {
                command: description,
                status: "did not report listening".to_owned(),
                stderr: lines.join("\n"),
            });
        }
        Ok(capture)
    }

    /// Waits until the file has not grown for 1.5 s (libpcap hands packets over in blocks; a
    /// SIGINT before the last block lands loses it), then stops tcpdump with SIGINT.
    ///
    /// # Errors
    /// When tcpdump does not exit within 15 s.
    pub fn stop(mut self) -> Result<PathBuf> {
        wait_until_settled(
            &self.file,
            Duration::from_millis(1500),
            Duration::from_secs(20),
        );
        let pid = Pid::from_raw(self.child.id().cast_signed());
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let lines = self.kill_now();
                return Err(E2eError::Failed {
                    command: "tcpdump".to_owned(),
                    status: "did not stop after SIGINT".to_owned(),
                    stderr: lines.join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.file.clone())
    }

    fn kill_now(&mut self) -> Vec<String> {
        kill_and_collect(&mut self.child, &mut self.stderr)
    }
}

impl Drop for LoopbackCapture {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_now();
        }
    }
}

/// One TCP connection of a hand-made capture: its client port and its exchanges (request
/// bytes, response bytes) in order.
#[derive(Debug, Clone)]
pub struct CraftedConnection {
    /// The client's port (the client is 10.9.0.1, the server 10.9.0.2:80).
    pub client_port: u16,
    /// Request and response bytes, in turn.
    pub exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes an Ethernet pcap of `connections`, one after another, each with handshake, the
/// exchanges and close; packets 1 ms apart. For tests that cannot run tcpdump.
///
/// # Errors
/// When the file cannot be written.
pub fn write_pcap(path: &Path, connections: &[CraftedConnection]) -> Result<()> {
    let mut pcap = PcapBuilder::new();
    let mut ms = 0u64;
    let server = ([10, 9, 0, 2], 80u16);
    for conn in connections {
        let client = ([10, 9, 0, 1], conn.client_port);
        let exchanges = conn
            .exchanges
            .iter()
            .map(|(request, response)| (request.as_slice(), response.as_slice()));
        connection((1000, 9000), exchanges, |segment| {
            ms += 1;
            let secs = 1_700_000_000 + u32::try_from(ms / 1000).unwrap_or(0);
            let usecs = u32::try_from(ms % 1000 * 1000).unwrap_or(0);
            pcap.record(secs, usecs, &frame(client, server, &segment));
        });
    }
    std::fs::write(path, pcap.into_bytes()).map_err(|e| E2eError::io(path, e))
}

/// Reads `DIR/report.json`.
///
/// # Errors
/// When it is missing or not JSON.
pub fn report_json(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("report.json");
    let text = std::fs::read(&path).map_err(|e| E2eError::io(&path, e))?;
    serde_json::from_slice(&text).map_err(|e| E2eError::Output {
        tool: "tapline replay".to_owned(),
        reason: format!("{}: {e}", path.display()),
    })
}

/// Ports inside a shop recording's namespace: the service, its dependency, `tapline mock` and
/// the build replays go to.
pub mod ports {
    /// The recorded service.
    pub const SERVICE: u16 = 8080;
    /// Its dependency.
    pub const DEPENDENCY: u16 = 8081;
    /// `tapline mock` of the recording.
    pub const MOCK: u16 = 8085;
    /// The build under test.
    pub const TARGET: u16 = 8090;
}

/// One request as the shop's client saw it: method, path, status.
pub type Seen = (String, String, u16);

/// A recording of the shop service (`replay_service.py` calling `replay_dependency.py`) made in
/// a fresh namespace, which is kept for the replays: the snapshot, a scratch folder, and what
/// the client saw, one entry per request.
#[derive(Debug)]
pub struct Shop {
    guard: crate::NetnsGuard,
    dir: tempfile::TempDir,
    /// The imported snapshot (both the service's and the dependency's pairs).
    pub snapshot: PathBuf,
    /// What the client saw.
    pub seen: Vec<Seen>,
}

impl Shop {
    /// Records `replay_client.py CLIENT_ARGS` against the shop with tcpdump on the namespace's
    /// loopback, and imports the capture.
    ///
    /// # Errors
    /// When the namespace, a process, the capture or the import fails.
    pub fn record(test: &str, client_args: &[&str]) -> Result<Self> {
        use ports::{DEPENDENCY, SERVICE};
        let guard = crate::NetnsGuard::new(test)?;
        let dir = tempfile::tempdir().map_err(|e| E2eError::io("tempdir", e))?;
        let ns = &guard.a;
        let dependency = python(
            Some(ns),
            "replay_dependency.py",
            &["--port", &DEPENDENCY.to_string()],
        )?;
        let dependency_url = format!("http://127.0.0.1:{DEPENDENCY}");
        let service = python(
            Some(ns),
            "replay_service.py",
            &[
                "--port",
                &SERVICE.to_string(),
                "--dependency",
                &dependency_url,
            ],
        )?;
        let pcap = dir.path().join("shop.pcap");
        let (s, d) = (SERVICE.to_string(), DEPENDENCY.to_string());
        let capture =
            LoopbackCapture::start(ns, &pcap, &["tcp", "port", &s, "or", "tcp", "port", &d])?;
        let client = crate::run_checked(
            ns.command(scripts::python())
                .arg(scripts::path("replay_client.py"))
                .args(["--port", &s])
                .args(client_args),
            Duration::from_secs(120),
        )?;
        capture.stop()?;
        drop(service);
        drop(dependency);
        let snapshot = dir.path().join("snapshot");
        crate::tapline::import(&pcap, &snapshot, None)?.checked(crate::tapline::TAPLINE_TIMEOUT)?;
        let seen = client
            .stdout_text()
            .lines()
            .map(parse_seen)
            .collect::<Result<Vec<_>>>()?;
        Ok(Shop {
            guard,
            dir,
            snapshot,
            seen,
        })
    }

    /// The namespace everything runs in.
    pub fn ns(&self) -> &Netns {
        &self.guard.a
    }

    /// A path in the recording's scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `tapline ARGS` inside the namespace.
    ///
    /// # Errors
    /// When the binary cannot be found, built or started.
    pub fn tapline(&self, args: &[&str]) -> Result<crate::Run> {
        let mut command = self.ns().command(crate::tapline::binary()?);
        command.args(args).env("TAPLINE_LOG", "warn");
        crate::run_with_timeout(&mut command, REPLAY_TIMEOUT)
    }

    /// `tapline replay SNAPSHOT --target http://127.0.0.1:PORT --filter port=8080 EXTRA...`.
    ///
    /// # Errors
    /// As [`Shop::tapline`].
    pub fn replay(&self, port: u16, extra: &[&str]) -> Result<crate::Run> {
        let snapshot = self.snapshot.to_string_lossy().into_owned();
        let target = format!("http://127.0.0.1:{port}");
        let filter = format!("port={}", ports::SERVICE);
        let mut args = vec![
            "replay", &snapshot, "--target", &target, "--filter", &filter,
        ];
        args.extend_from_slice(extra);
        self.tapline(&args)
    }

    /// Starts a build of the shop service on `port` calling the dependency on `dependency`,
    /// with extra flags (`--fixed`, `--delay-ms N`).
    ///
    /// # Errors
    /// When it does not start.
    pub fn service(&self, port: u16, dependency: u16, extra: &[&str]) -> Result<Background> {
        let port = port.to_string();
        let dependency = format!("http://127.0.0.1:{dependency}");
        let mut args = vec!["--port", &port, "--dependency", &dependency];
        args.extend_from_slice(extra);
        python(Some(self.ns()), "replay_service.py", &args)
    }

    /// Starts `tapline mock` of the recording on [`ports::MOCK`].
    ///
    /// # Errors
    /// When it does not start listening within 60 s.
    pub fn mock(&self) -> Result<Background> {
        let mut command = self.ns().command(crate::tapline::binary()?);
        command
            .arg("mock")
            .arg(&self.snapshot)
            .args(["--listen", &format!("127.0.0.1:{}", ports::MOCK)])
            .env("TAPLINE_LOG", "warn");
        Background::spawn_until(&mut command, "listening on", Duration::from_secs(60))
    }
}

/// Reads one line of `replay_client.py`'s output.
fn parse_seen(line: &str) -> Result<Seen> {
    let bad = |reason: &str| E2eError::Output {
        tool: "replay_client.py".to_owned(),
        reason: format!("{reason}: {line}"),
    };
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
    let text = |key: &str| v[key].as_str().map(str::to_owned).ok_or_else(|| bad(key));
    let status = v["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("status"))?;
    Ok((text("method")?, text("path")?, status))
}
