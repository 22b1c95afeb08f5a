//! The network namespace itself: made by `unshare(CLONE_NEWNET)` on a short-lived thread whose
//! `/proc/thread-self/ns/net` is bind-mounted onto a file (so it outlives the thread), entered
//! with `setns` by threads and processes, and removed by unmounting and deleting that file.
//!
//! A thread's network namespace decides where the sockets it creates live, and threads it
//! starts inherit it: [`InsideThread`] enters the namespace before running its closure, so a
//! tokio runtime built there has every worker inside too.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::error::NetnsError;
use crate::paths::NETNS_DIR;

/// A namespace's identity: the device and inode of its nsfs file, as `stat` of
/// `/proc/PID/ns/net` shows them for every process inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NsId {
    /// Device of the nsfs file.
    pub dev: u64,
    /// Inode of the nsfs file.
    pub ino: u64,
}

impl NsId {
    /// The identity of the namespace `path` (a namespace file, or `/proc/PID/ns/net`) names.
    ///
    /// # Errors
    /// When `path` cannot be read.
    pub fn of_path(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(NsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The identity of an open namespace file.
    ///
    /// # Errors
    /// When `fstat` fails.
    pub fn of_file(file: &File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        Ok(NsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// Makes [`NETNS_DIR`] and, as `ip netns` does for `/run/netns`, a shared mount point, so
/// unmounting a namespace file also unmounts the copies that processes' private mount
/// namespaces took (best effort: without it namespaces still go once their processes do).
fn prepare_dir() -> Result<(), NetnsError> {
    std::fs::create_dir_all(NETNS_DIR)
        .map_err(|e| NetnsError::io("creating the folder of namespaces", NETNS_DIR, e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>) {
        Ok(()) => {}
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
            if mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, bind, None::<&str>).is_ok() {
                let _ = mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>);
            }
        }
        Err(e) if matches!(e, nix::Error::EPERM | nix::Error::EACCES) => {
            return Err(NetnsError::sys(
                format!("making {NETNS_DIR} a shared mount point"),
                e,
            ));
        }
        Err(e) => tracing::debug!(error = %e, "{NETNS_DIR} stays as it is"),
    }
    Ok(())
}

/// Creates a new network namespace kept by the file `path` (which must not exist) and returns
/// the open file.
///
/// # Errors
/// [`NetnsError::Sys`] when the kernel refuses (EPERM without CAP_SYS_ADMIN), or
/// [`NetnsError::Io`] for the file; nothing is left behind on error.
pub fn create(path: &Path) -> Result<File, NetnsError> {
    prepare_dir()?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| NetnsError::io("creating the namespace file", path, e))?;
    let target = path.to_owned();
    let made = std::thread::Builder::new()
        .name("tapline-unshare".into())
        .spawn(move || -> Result<(), NetnsError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetnsError::sys("unshare(CLONE_NEWNET)", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                NetnsError::sys(
                    format!("bind-mounting the namespace on {}", target.display()),
                    e,
                )
            })
        })
        .map_err(|e| NetnsError::Thread {
            name: "tapline-unshare".into(),
            reason: e.to_string(),
        })?
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsError::Thread {
                name: "tapline-unshare".into(),
                reason: "panicked".into(),
            })
        });
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    match File::open(path) {
        Ok(file) => Ok(file),
        Err(e) => {
            remove(path);
            Err(NetnsError::io("opening the namespace file", path, e))
        }
    }
}

/// Unmounts and deletes a namespace file (each step skipped when already done). The namespace
/// itself goes once no process, thread or socket holds it any more.
pub fn remove(path: &Path) -> bool {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "unmounting the namespace"),
    }
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "deleting the namespace file");
            false
        }
    }
}

/// Moves the calling thread into the namespace `ns`.
///
/// # Errors
/// [`NetnsError::Sys`] when `setns` fails.
pub fn enter(ns: &File) -> Result<(), NetnsError> {
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::sys("setns(CLONE_NEWNET)", e))
}

/// A thread running inside a namespace: it entered it before running its closure.
#[derive(Debug)]
pub struct InsideThread<T> {
    handle: JoinHandle<Option<T>>,
    name: String,
}

impl<T: Send + 'static> InsideThread<T> {
    /// Starts thread `name`, enters `ns` on it, then runs `f`; returns once the thread is
    /// inside.
    ///
    /// # Errors
    /// [`NetnsError::Thread`] when the thread cannot start, [`NetnsError::Sys`] when it cannot
    /// enter the namespace.
    pub fn spawn(
        ns: &File,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Self, NetnsError> {
        let thread_error = |reason: String| NetnsError::Thread {
            name: name.to_owned(),
            reason,
        };
        let fd = ns
            .try_clone()
            .map_err(|e| thread_error(format!("duplicating the namespace file: {e}")))?;
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let entered = enter(&fd);
                drop(fd);
                let ok = entered.is_ok();
                let _ = entered_tx.send(entered);
                ok.then(f)
            })
            .map_err(|e| thread_error(e.to_string()))?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(InsideThread {
                handle,
                name: name.to_owned(),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(thread_error("ended before entering the namespace".into()))
            }
        }
    }

    /// Whether the closure has returned.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the closure's result.
    ///
    /// # Errors
    /// [`NetnsError::Thread`] when the closure panicked.
    pub fn join(self) -> Result<T, NetnsError> {
        match self.handle.join() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(NetnsError::Thread {
                name: self.name,
                reason: "did not enter the namespace".into(),
            }),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".into());
                Err(NetnsError::Thread {
                    name: self.name,
                    reason: format!("panicked: {reason}"),
                })
            }
        }
    }
}
