//! Helpers of the `tapline run` end-to-end tests: a quote service that calls two dependencies
//! by host name (`inventory` and `pricing`), in a buggy and a fixed build; its recording,
//! made once per test process in a namespace whose hosts file names the dependencies, with
//! tcpdump on loopback and `tapline import`; a running `tapline run` to signal; and checks
//! that an environment left nothing behind.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use apps::{APP_PY, DEPENDENCY_PY, ISOLATION_PY};

use crate::mock_support::write_script;
use crate::replay_support::LoopbackCapture;
use crate::{Background, E2eError, NetnsGuard, Result, Run, run_checked, scripts};

mod apps;

/// The quote service's port.
pub const SERVICE_PORT: u16 = 8080;
/// Time allowed for one `tapline run`.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The recorded requests: `(item, qty)`; item 999 is unknown to inventory (404).
pub const QUOTES: [(u32, u32); 29] = [
    (1, 1),
    (2, 3),
    (3, 1),
    (4, 2),
    (5, 1),
    (6, 4),
    (7, 1),
    (8, 2),
    (9, 1),
    (10, 5),
    (11, 1),
    (12, 2),
    (13, 1),
    (14, 3),
    (15, 1),
    (16, 2),
    (17, 1),
    (18, 1),
    (19, 2),
    (20, 1),
    (21, 1),
    (22, 2),
    (23, 1),
    (24, 1),
    (25, 3),
    (26, 1),
    (27, 2),
    (28, 1),
    (999, 1),
];

/// How many recorded answers the fixed build changes: the known items with a discount.
pub fn changed_by_fix() -> usize {
    QUOTES
        .iter()
        .filter(|(item, _)| *item <= 100 && item % 5 == 0)
        .count()
}

/// Requests recorded to the service: the quotes and one `/health`.
pub fn inbound_requests() -> usize {
    QUOTES.len() + 1
}

/// Calls recorded to the dependencies: inventory for every quote, pricing for known items.
pub fn dependency_calls() -> usize {
    QUOTES.len() + QUOTES.iter().filter(|(item, _)| *item <= 100).count()
}

/// The recording of the quote service (buggy build), shared by the tests of one process.
#[derive(Debug)]
pub struct QuoteRecording {
    /// A folder for the recording and the tests (kept until a later test process removes
    /// it, since statics are never dropped).
    pub dir: PathBuf,
    /// The imported snapshot.
    pub snapshot: PathBuf,
    /// The service script.
    pub app: PathBuf,
    /// The isolation checks.
    pub isolation: PathBuf,
}

impl QuoteRecording {
    /// The recording of this test process, made on first use.
    ///
    /// # Panics
    /// When it cannot be made.
    pub fn shared() -> &'static QuoteRecording {
        static RECORDING: OnceLock<std::result::Result<QuoteRecording, String>> = OnceLock::new();
        match RECORDING.get_or_init(|| record().map_err(|e| e.to_string())) {
            Ok(recording) => recording,
            Err(e) => panic!("recording the quote service: {e}"),
        }
    }

    /// The command line of a build of the service (`buggy` or `fixed`) with `extra` flags.
    pub fn app_cmd(&self, variant: &str, extra: &str) -> String {
        format!(
            "{} {} --port {SERVICE_PORT} --variant {variant} {extra}",
            scripts::python().display(),
            self.app.display()
        )
    }

    /// A fresh scratch folder for one test.
    ///
    /// # Errors
    /// When it cannot be made.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| E2eError::io(&dir, e))?;
        Ok(dir)
    }

    /// `tapline run SNAPSHOT ARGS...`.
    ///
    /// # Errors
    /// When the binary cannot be found or started.
    pub fn run(&self, args: &[&str]) -> Result<Run> {
        let mut all = vec!["run".as_ref(), self.snapshot.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        crate::tapline::run(all, RUN_TIMEOUT)
    }

    /// `tapline run SNAPSHOT ARGS...` in the background, its stdout watched.
    ///
    /// # Errors
    /// When the binary cannot be found or started.
    pub fn start(&self, args: &[&str]) -> Result<RunningJob> {
        let mut command = Command::new(crate::tapline::binary()?);
        command
            .arg("run")
            .arg(&self.snapshot)
            .args(args)
            .env("TAPLINE_LOG", "warn");
        RunningJob::start(command)
    }
}

/// Removes recording folders of test processes that are gone.
fn remove_stale_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("tapline-run-e2e-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Records the buggy build answering [`QUOTES`] and `/health`, called with curl, in a fresh
/// namespace where `inventory` and `pricing` are 127.0.2.1 and 127.0.2.2 (other addresses
/// than `tapline run` gives them), and imports the capture.
fn record() -> Result<QuoteRecording> {
    remove_stale_folders();
    let dir = std::env::temp_dir().join(format!("tapline-run-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| E2eError::io(&dir, e))?;
    // Readable by anyone: one test runs tapline as an unprivileged user.
    let open = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&dir, open).map_err(|e| E2eError::io(&dir, e))?;
    let app = write_script(&dir, "quote_app.py", APP_PY)?;
    let dependency = write_script(&dir, "quote_dependency.py", DEPENDENCY_PY)?;
    let isolation = write_script(&dir, "isolation.py", ISOLATION_PY)?;
    let hosts = dir.join("recording-hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1\tlocalhost\n127.0.2.1\tinventory\n127.0.2.2\tpricing\n",
    )
    .map_err(|e| E2eError::io(&hosts, e))?;

    let guard = NetnsGuard::new("run-record")?;
    let ns = &guard.a;
    let start_dependency = |name: &str, host: &str, port: &str| {
        let mut command = ns.command(scripts::python());
        command
            .arg(&dependency)
            .args(["--name", name, "--host", host, "--port", port]);
        Background::spawn_until(&mut command, "READY", Duration::from_secs(30))
    };
    let _inventory = start_dependency("inventory", "127.0.2.1", "8081")?;
    let _pricing = start_dependency("pricing", "127.0.2.2", "8082")?;
    let pcap = dir.join("quote.pcap");
    let capture = LoopbackCapture::start(
        ns,
        &pcap,
        &[
            "tcp", "port", "8080", "or", "tcp", "port", "8081", "or", "tcp", "port", "8082",
        ],
    )?;
    // The service sees the recording's hosts file through a mount namespace of its own.
    let mut command = ns.command("unshare");
    command
        .args([
            "--mount",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
        ])
        .arg(&hosts)
        .arg(scripts::python())
        .arg(&app)
        .args(["--port", &SERVICE_PORT.to_string(), "--variant", "buggy"]);
    let service = Background::spawn_until(&mut command, "READY", Duration::from_secs(30))?;
    let base = format!("http://127.0.0.1:{SERVICE_PORT}");
    let mut urls = vec![format!("{base}/health")];
    urls.extend(
        QUOTES
            .iter()
            .map(|(item, qty)| format!("{base}/quote/{item}?qty={qty}")),
    );
    for url in &urls {
        run_checked(
            ns.command("curl")
                .args(["-s", "-o", "/dev/null", "--noproxy", "*", url]),
            Duration::from_secs(30),
        )?;
    }
    capture.stop()?;
    drop(service);
    let snapshot = dir.join("snapshot");
    crate::tapline::import(&pcap, &snapshot, None)?.checked(crate::tapline::TAPLINE_TIMEOUT)?;
    Ok(QuoteRecording {
        dir,
        snapshot,
        app,
        isolation,
    })
}

/// A `tapline run` in the background: its stdout lines collected as they come.
#[derive(Debug)]
pub struct RunningJob {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl RunningJob {
    /// Starts `command` with stdout and stderr piped.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn start(mut command: Command) -> Result<Self> {
        let description = crate::process::describe(&command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| E2eError::Spawn {
                command: description,
                source,
            })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().map(|pipe| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            })
        });
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        });
        Ok(RunningJob {
            child,
            lines,
            stdout,
            stderr,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a stdout line contains `marker`.
    ///
    /// # Errors
    /// When it exits first or `timeout` passes.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| l.contains(marker)) {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                return Err(E2eError::Failed {
                    command: "tapline run".into(),
                    status: format!("printed no {marker:?} (exited: {exited})"),
                    stderr: self.lines().join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to it.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// Waits for it to end; returns its status, stdout lines and stderr.
    ///
    /// # Errors
    /// When it does not end within `timeout` (it is then killed).
    pub fn finish(mut self, timeout: Duration) -> Result<(ExitStatus, Vec<String>, String)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(E2eError::Timeout {
                    command: "tapline run".into(),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok((status, self.lines(), stderr))
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The environment name in `tapline run`'s "environment NAME created" line.
pub fn env_name(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let rest = l.strip_prefix("tapline run: environment ")?;
        let (name, _) = rest.split_once(' ')?;
        Some(name.to_owned())
    })
}

/// Why environment `name` is not fully gone, or `Ok`.
///
/// # Errors
/// What is left: its namespace file or its folder.
pub fn env_gone(name: &str) -> std::result::Result<(), String> {
    for path in [
        format!("/run/tapline/netns/{name}"),
        format!("/run/tapline/env/{name}"),
    ] {
        if Path::new(&path).exists() {
            return Err(format!("{path} is left"));
        }
    }
    Ok(())
}

/// Whether process `pid` is gone (or a zombie waiting for a parent that is not ours).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            stat.rfind(')')
                .and_then(|i| stat.get(i + 1..))
                .and_then(|rest| rest.split_whitespace().next())
                == Some("Z")
        }
    }
}

/// Waits up to `limit` for process `pid` to be gone.
pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if process_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    process_gone(pid)
}

/// The process id written in `path`.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits up to `limit` for `path` to hold a process id.
pub fn wait_pid(path: &Path, limit: Duration) -> Option<u32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(pid) = read_pid(path) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
