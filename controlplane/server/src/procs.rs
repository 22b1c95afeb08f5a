//! Job processes: started in their own process group with a parent-death signal, identified
//! by pid *and* start time (so a reused pid is never mistaken for a job), found again after a
//! restart by the `TAPLINE_JOB` marker in their environment, and killed group-wide.
//!
//! The parent-death signal fires when the *thread* that forked the child ends, so every job
//! process is forked by one [`Spawner`] thread that lives as long as the daemon.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable that marks a job's processes and their descendants.
pub const MARKER_ENV: &str = "TAPLINE_JOB";

/// A running job process as the store remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// The process id, which is also its process group id.
    pub pid: i32,
    /// Its start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// The boot it ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// What to start: the program, its arguments, its marker and where its output goes.
#[derive(Debug)]
pub struct Launch {
    /// The program (the `tapline` binary).
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The value of [`MARKER_ENV`].
    pub marker: String,
    /// The working directory (the job's directory).
    pub dir: std::path::PathBuf,
    /// Its stdout file.
    pub stdout: File,
    /// Its stderr file.
    pub stderr: File,
}

type Request = (Launch, mpsc::Sender<std::io::Result<Child>>);

/// The thread that forks every job process (see the module doc for why one thread).
#[derive(Debug, Clone)]
pub struct Spawner {
    requests: mpsc::Sender<Request>,
}

impl Spawner {
    /// Starts the spawner thread.
    ///
    /// # Errors
    /// When the thread cannot be created.
    pub fn start() -> std::io::Result<Spawner> {
        let (requests, receiver) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("tapline-spawner".into())
            .spawn(move || {
                for (launch, reply) in receiver {
                    let _ = reply.send(spawn_here(launch));
                }
            })?;
        Ok(Spawner { requests })
    }

    /// Starts `launch` on the spawner thread and returns the child.
    ///
    /// # Errors
    /// When the program cannot be started or the spawner thread is gone.
    pub fn spawn(&self, launch: Launch) -> std::io::Result<Child> {
        let (reply, answer) = mpsc::channel();
        let gone = || std::io::Error::other("the process spawner thread has stopped");
        self.requests.send((launch, reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// Forks `launch` on this thread: its own process group, SIGTERM when this thread dies.
fn spawn_here(launch: Launch) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;

    let parent = nix::unistd::getpid();
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .env(MARKER_ENV, &launch.marker)
        .current_dir(&launch.dir)
        .stdin(Stdio::null())
        .stdout(launch.stdout)
        .stderr(launch.stderr)
        .process_group(0);
    // SAFETY: between fork and exec the closure makes only async-signal-safe system calls
    // (prctl, getppid) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
            // The daemon may have died before the prctl took effect.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the control plane exited"));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// The start time of `pid` in clock ticks after boot, `None` when it does not exist.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_start_ticks(&stat)
}

/// Field 22 of a `/proc/PID/stat` line (the command name in field 2 may hold spaces and
/// parentheses, so fields are counted after its last `)`).
fn stat_start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (state); field 22 is the 20th after it.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This boot's id, empty when unknown.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The identity of a freshly started process.
pub fn identity(pid: i32) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        start_ticks: start_ticks(pid).unwrap_or(0),
        boot_id: boot_id(),
    }
}

/// Sends `signal` to process `pid` alone.
pub fn signal_process(pid: i32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid), signal);
}

/// Sends SIGKILL to process group `pgid`.
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Kills what is left of a job started by a previous daemon: its process group when its
/// leader is still the same process (same pid, start time and boot), and every process
/// carrying its `marker` in its environment; then waits (up to 3 s) until they are gone, so
/// that what they owned can be cleaned up next. Returns how many live processes (zombies do
/// not count) were killed.
pub fn kill_leftovers(identity: &ProcessIdentity, marker: &str) -> usize {
    let proc = Path::new("/proc");
    let same_boot = identity.boot_id.is_empty() || identity.boot_id == boot_id();
    let mut targets = Vec::new();
    if same_boot && identity.pid > 1 && start_ticks(identity.pid) == Some(identity.start_ticks) {
        targets.extend(
            group_members(proc, identity.pid)
                .into_iter()
                .filter(|p| alive(*p)),
        );
        kill_group(identity.pid);
    }
    for pid in marked_processes(proc, marker) {
        if alive(pid) && !targets.contains(&pid) {
            targets.push(pid);
        }
        signal_process(pid, Signal::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while targets.iter().any(|pid| alive(*pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    targets.len()
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// The processes under `proc` in process group `pgid` (field 5 of their stat line).
fn group_members(proc: &Path, pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(proc.join(pid.to_string()).join("stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// The processes under `proc` whose environment holds `TAPLINE_JOB=marker`.
fn marked_processes(proc: &Path, marker: &str) -> Vec<i32> {
    let wanted = format!("{MARKER_ENV}={marker}");
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).is_ok_and(|p| p != me))
        .filter(|pid| {
            std::fs::read(proc.join(pid.to_string()).join("environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|entry| entry == wanted.as_bytes())
            })
        })
        .collect()
}

/// Whether any process of group `pgid` is alive (zombies do not count: an init that does
/// not reap keeps them forever).
pub fn group_alive(pgid: i32) -> bool {
    pgid > 1
        && killpg(Pid::from_raw(pgid), None).is_ok()
        && group_members(Path::new("/proc"), pgid)
            .into_iter()
            .any(alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_after_the_command_name() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(stat_start_ticks(line), Some(987_654));
        assert_eq!(stat_start_ticks("garbage"), None);
        assert_eq!(stat_start_ticks("1 (x) S 1 2"), None);
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(start_ticks(me).is_some_and(|t| t > 0));
    }

    #[test]
    fn marked_processes_are_found_by_their_environment() {
        let marker = format!("test#{}", std::process::id());
        let mut child = Command::new("sleep")
            .arg("30")
            .env(MARKER_ENV, &marker)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // The environment shows once the child has executed `sleep`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while marked_processes(Path::new("/proc"), &marker).is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(marked_processes(Path::new("/proc"), &marker), [pid]);
        assert!(marked_processes(Path::new("/proc"), "no-such-marker").is_empty());
        let stale = ProcessIdentity {
            pid,
            start_ticks: 1,
            boot_id: boot_id(),
        };
        // The pid's start time does not match, but the marker finds it.
        assert_eq!(kill_leftovers(&stale, &marker), 1);
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn a_leftover_group_is_killed_whole() {
        use std::os::unix::process::CommandExt;
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(leader.id()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_members(Path::new("/proc"), pid)
            .into_iter()
            .filter(|p| alive(*p))
            .count()
            < 3
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let members: Vec<i32> = group_members(Path::new("/proc"), pid)
            .into_iter()
            .filter(|p| alive(*p))
            .collect();
        assert_eq!(members.len(), 3, "{members:?}");
        assert_eq!(kill_leftovers(&identity(pid), "no-such-marker"), 3);
        assert!(!leader.wait().unwrap().success());
        assert!(!group_alive(pid));
    }

    #[test]
    fn a_reused_pid_is_not_killed() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let other = ProcessIdentity {
            pid,
            start_ticks: start_ticks(pid).unwrap() + 1,
            boot_id: boot_id(),
        };
        assert_eq!(kill_leftovers(&other, "no-such-marker"), 0);
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
