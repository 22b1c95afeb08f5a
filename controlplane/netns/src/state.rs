//! The state file of an environment, and the removal of environments whose owner died.
//!
//! Each environment's folder holds `state.json`: its owner (process id and start time, so a
//! reused id is not mistaken for the owner) and the host-side veth names it made or is about
//! to make. An environment whose owner is gone (killed with SIGKILL, crashed) is dismantled by
//! [`cleanup_stale`]: processes inside killed, veths deleted, namespace unmounted, folder
//! removed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::ns::{self, NsId};
use crate::paths::{self, ENV_DIR, MAKING_PREFIX, NETNS_DIR, STATE_FILE};
use crate::procs;
use crate::rtnl::Rtnl;

/// The state file's format version.
pub const STATE_VERSION: u32 = 1;
/// How long killing the processes of a namespace may take.
pub(crate) const KILL_LIMIT: Duration = Duration::from_secs(5);
/// A folder still being made is left alone for this long when its state cannot be read.
const MAKING_GRACE: Duration = Duration::from_secs(60);

/// What `state.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The environment's name.
    pub name: String,
    /// The owning process.
    pub owner_pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub owner_start: u64,
    /// When the environment was made, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Host-side veth names, recorded before each is created.
    #[serde(default)]
    pub veths: Vec<String>,
}

impl State {
    /// The state of a new environment `name` owned by this process.
    pub fn new(name: &str) -> Self {
        let owner_pid = std::process::id();
        State {
            version: STATE_VERSION,
            name: name.to_owned(),
            owner_pid,
            owner_start: procs::start_time(owner_pid).unwrap_or(0),
            created_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            veths: Vec::new(),
        }
    }

    /// Reads `DIR/state.json`.
    ///
    /// # Errors
    /// A message when it is missing, not JSON, or of another version.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let state: State =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if state.version != STATE_VERSION {
            return Err(format!(
                "{}: state version {} (this build knows {STATE_VERSION})",
                path.display(),
                state.version
            ));
        }
        Ok(state)
    }

    /// Writes `DIR/state.json` atomically (a temporary file renamed over it).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let temporary = dir.join(".state.json.new");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, dir.join(STATE_FILE))
    }

    /// Whether the owner still runs.
    pub fn owner_alive(&self) -> bool {
        procs::is_alive(self.owner_pid, self.owner_start)
    }
}

/// What [`cleanup_stale`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Names of the environments removed (and of orphaned namespace files).
    pub removed: Vec<String>,
    /// Processes killed inside their namespaces.
    pub killed: usize,
    /// What could not be removed, one line each.
    pub errors: Vec<String>,
}

/// What dismantling one environment did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dismantled {
    /// Processes killed inside the namespace.
    pub killed: usize,
    /// Failures, one line each.
    pub errors: Vec<String>,
}

/// Kills what runs in environment `name`'s namespace, deletes its host-side `veths`, unmounts
/// and deletes its namespace file, and removes its folder. Must run on a thread in the host's
/// network namespace (the veths are deleted there).
pub(crate) fn dismantle(name: &str, ns: Option<NsId>, veths: &[String]) -> Dismantled {
    let mut done = Dismantled::default();
    let netns = paths::netns_file(name);
    let ns = ns.or_else(|| NsId::of_path(&netns).ok());
    if let Some(ns) = ns {
        done.killed = procs::kill_namespace(ns, KILL_LIMIT);
    }
    if !veths.is_empty() {
        match Rtnl::open() {
            Ok(mut rtnl) => {
                for veth in veths {
                    if let Err(e) = rtnl.delete_link(veth) {
                        done.errors.push(format!("deleting veth {veth}: {e}"));
                    }
                }
            }
            Err(e) => done.errors.push(format!("netlink: {e}")),
        }
    }
    ns::remove(&netns);
    let dir = paths::env_dir(name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => done.errors.push(format!("{}: {e}", dir.display())),
    }
    done
}

/// Removes the environments whose owner process is gone: it kills the processes inside
/// their namespaces, deletes their host-side veths, unmounts and deletes their namespace
/// files and removes their folders under `/run/tapline/env`; namespace files under
/// `/run/tapline/netns` without a folder go too. Environments of live owners are left alone,
/// so any number of tapline processes may call it at any time.
///
/// Call it from a thread in the host's network namespace (such as the main thread), as root.
/// It never fails: what could not be removed is listed in [`CleanupReport::errors`].
pub fn cleanup_stale() -> CleanupReport {
    let mut report = CleanupReport::default();
    if let Ok(entries) = std::fs::read_dir(ENV_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if let Some(rest) = name.strip_prefix(MAKING_PREFIX) {
                let stale = match State::read(&dir) {
                    Ok(state) => !state.owner_alive(),
                    Err(_) => older_than(&dir, MAKING_GRACE),
                };
                if stale {
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => report.removed.push(rest.to_owned()),
                        Err(e) => report.errors.push(format!("{}: {e}", dir.display())),
                    }
                }
                continue;
            }
            if !paths::is_env_name(&name) {
                continue;
            }
            let veths = match State::read(&dir) {
                Ok(state) if state.owner_alive() => continue,
                Ok(state) => state.veths,
                Err(e) => {
                    tracing::warn!("removing environment {name}: unreadable state ({e})");
                    Vec::new()
                }
            };
            let done = dismantle(&name, None, &veths);
            report.killed += done.killed;
            report.errors.extend(done.errors);
            report.removed.push(name);
        }
    }
    // Namespace files whose environment folder is gone (it is made before the namespace and
    // removed after it, so only a crash or a hand leaves these).
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !paths::is_env_name(&name) || paths::env_dir(&name).exists() {
                continue;
            }
            let done = dismantle(&name, None, &[]);
            report.killed += done.killed;
            report.errors.extend(done.errors);
            report.removed.push(name);
        }
    }
    report
}

/// Whether `path` was last modified more than `age` ago (unknown counts as old).
fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|elapsed| elapsed > age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_knows_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::new("run-1-0");
        state.veths.push("tlh0011aabb".into());
        state.write(dir.path()).unwrap();
        let read = State::read(dir.path()).unwrap();
        assert_eq!(read, state);
        assert!(read.owner_alive());
        let mut dead = read.clone();
        dead.owner_start += 1;
        assert!(!dead.owner_alive());
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::new("run-1-0");
        state.version = 99;
        state.write(dir.path()).unwrap();
        assert!(State::read(dir.path()).unwrap_err().contains("version 99"));
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        assert!(State::read(dir.path()).is_err());
    }
}
