//! Starting a process inside an environment, and the handle that stops it.
//!
//! Between `fork` and `exec` the child enters the environment's network namespace, takes a
//! mount namespace of its own (with `/` made a recursive slave, so nothing it mounts reaches
//! the host), bind-mounts the environment's `hosts` and `resolv.conf` over `/etc`'s and
//! mounts a sysfs of the namespace on `/sys`, as `ip netns exec` does. It leads a process
//! group of its own, so stopping it stops what it started; its stdout and stderr go to files.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;

use crate::error::NetnsError;
use crate::procs;

/// Bytes read from the end of a log for [`Process::stderr_tail`].
const TAIL_BYTES: u64 = 4096;

/// A command to start inside an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnSpec {
    /// The command line, run by `/bin/sh -c`.
    pub command: String,
    /// Variables set on top of the caller's environment.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the caller's).
    pub workdir: Option<PathBuf>,
    /// Where `LABEL.stdout` and `LABEL.stderr` are written (default: the environment's
    /// folder, removed at teardown).
    pub log_dir: Option<PathBuf>,
    /// The logs' name (default `process`).
    pub label: String,
}

impl SpawnSpec {
    /// `command`, run by `/bin/sh -c`, with everything else by default.
    pub fn shell(command: impl Into<String>) -> Self {
        SpawnSpec {
            command: command.into(),
            ..SpawnSpec::default()
        }
    }
}

/// What the child needs between `fork` and `exec`, prepared beforehand (no allocation there).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The namespace file, duplicated for the child.
    pub ns: OwnedFd,
    /// The environment's hosts file.
    pub hosts: CString,
    /// The environment's resolv.conf, when the host has one to cover.
    pub resolv: Option<CString>,
}

impl Entry {
    /// Prepares entering the namespace `ns` with the files in `dir`.
    pub(crate) fn new(ns: &File, hosts: &Path, resolv: &Path) -> std::io::Result<Self> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|e| std::io::Error::other(e.to_string()))
        };
        Ok(Entry {
            ns: ns.try_clone()?.into(),
            hosts: c(hosts)?,
            // Following a symlink: a dangling /etc/resolv.conf cannot be covered (and glibc
            // then asks 127.0.0.1, where nothing answers, as wanted).
            resolv: if Path::new("/etc/resolv.conf").exists() {
                Some(c(resolv)?)
            } else {
                None
            },
        })
    }

    /// Runs in the child: enter the namespace, take a mount namespace, cover the files.
    fn apply(&self) -> std::io::Result<()> {
        setns(&self.ns, CloneFlags::CLONE_NEWNET)?;
        unshare(CloneFlags::CLONE_NEWNS)?;
        mount(
            None::<&std::ffi::CStr>,
            c"/",
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(self.hosts.as_c_str()),
            c"/etc/hosts",
            None::<&std::ffi::CStr>,
            MsFlags::MS_BIND,
            None::<&std::ffi::CStr>,
        )?;
        // As `ip netns exec` does: a sysfs of the namespace over the host's, so /sys/class/net
        // lists the environment's links (best effort: the host's stays if it cannot be made).
        let _ = mount(
            Some(c"sysfs"),
            c"/sys",
            Some(c"sysfs"),
            MsFlags::empty(),
            None::<&std::ffi::CStr>,
        );
        if let Some(resolv) = &self.resolv {
            mount(
                Some(resolv.as_c_str()),
                c"/etc/resolv.conf",
                None::<&std::ffi::CStr>,
                MsFlags::MS_BIND,
                None::<&std::ffi::CStr>,
            )?;
        }
        Ok(())
    }
}

/// Starts `spec` with `entry`, its logs in `default_logs` unless the spec says where.
pub(crate) fn start(
    spec: &SpawnSpec,
    entry: Entry,
    default_logs: &Path,
) -> Result<Process, NetnsError> {
    let dir = spec.log_dir.as_deref().unwrap_or(default_logs);
    std::fs::create_dir_all(dir).map_err(|e| NetnsError::io("creating the log folder", dir, e))?;
    let label = if spec.label.is_empty() {
        "process"
    } else {
        spec.label.as_str()
    };
    let stdout_path = dir.join(format!("{label}.stdout"));
    let stderr_path = dir.join(format!("{label}.stderr"));
    let open = |path: &Path| {
        File::create(path).map_err(|e| NetnsError::io("creating a log file", path, e))
    };
    let (stdout, stderr) = (open(&stdout_path)?, open(&stderr_path)?);
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&spec.command)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    if let Some(dir) = &spec.workdir {
        command.current_dir(dir);
    }
    // SAFETY: `apply` only makes system calls (setns, unshare, mount) on data prepared
    // before the fork; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || entry.apply());
    }
    let child = command.spawn().map_err(|source| NetnsError::Spawn {
        command: spec.command.clone(),
        source,
    })?;
    Ok(Process {
        pid: child.id(),
        child,
        command: spec.command.clone(),
        stdout: stdout_path,
        stderr: stderr_path,
        status: None,
    })
}

/// A process started inside an environment, leading its own process group. Dropping it kills
/// the group (SIGKILL) and reaps the process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    pid: u32,
    command: String,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Process {
    /// Its process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line it runs.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The file its stdout goes to.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    /// The file its stderr goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// How it ended, or `None` while it runs.
    pub fn status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.status = Some(status);
            // Whatever it left in its group goes with it.
            procs::signal_group(self.pid, Signal::SIGKILL);
        }
        self.status
    }

    /// The last `lines` lines of its stderr, joined with ` | ` (empty when it wrote none).
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail_lines(&self.stderr, lines)
    }

    /// Stops its process group: SIGTERM, up to `grace` for it to exit, then SIGKILL; returns
    /// how the process ended.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status() {
            return Some(status);
        }
        if !grace.is_zero() {
            procs::signal_group(self.pid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Some(status) = self.status() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        procs::signal_group(self.pid, Signal::SIGKILL);
        match self.child.wait() {
            Ok(status) => {
                self.status = Some(status);
                procs::signal_group(self.pid, Signal::SIGKILL);
                Some(status)
            }
            Err(_) => None,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

/// The last `lines` lines of the file at `path`, joined with ` | `.
pub(crate) fn tail_lines(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.take(TAIL_BYTES).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    kept.get(kept.len().saturating_sub(lines)..)
        .unwrap_or_default()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err");
        std::fs::write(&path, "one\ntwo\n\nthree\nfour\n").unwrap();
        assert_eq!(tail_lines(&path, 2), "three | four");
        assert_eq!(tail_lines(&path, 10), "one | two | three | four");
        assert_eq!(tail_lines(&dir.path().join("none"), 3), "");
        std::fs::write(&path, format!("{}\nlast\n", "x".repeat(10_000))).unwrap();
        assert!(tail_lines(&path, 1).ends_with("last"));
    }
}
