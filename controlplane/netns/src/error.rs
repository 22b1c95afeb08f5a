//! Why an environment cannot be created, used or torn down.

use std::path::PathBuf;
use std::time::Duration;

/// Errors of the ephemeral environments.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The process lacks the capabilities network namespaces need.
    #[error(
        "{what} needs CAP_SYS_ADMIN and CAP_NET_ADMIN (missing: {missing}); run it as root, \
         or grant them with `setcap cap_sys_admin,cap_net_admin+ep` on the binary"
    )]
    Privilege {
        /// What was being done.
        what: String,
        /// The capabilities missing, by name.
        missing: String,
    },
    /// A file or directory of the environment could not be made, read or removed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// What was being done, such as "writing the state file".
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done, such as "unshare(CLONE_NEWNET)".
        what: String,
        /// The errno.
        source: nix::Error,
    },
    /// A netlink request was refused.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was asked, such as "bringing lo up".
        what: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// A thread could not be started, or entering the namespace on it failed.
    #[error("thread {name}: {reason}")]
    Thread {
        /// The thread's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// An environment name or a setting is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A process could not be started inside the environment.
    #[error("starting `{command}` inside the environment: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The cause (from `fork`, the namespace set-up before `exec`, or `exec`).
        source: std::io::Error,
    },
    /// The process exited before it accepted connections on its port.
    #[error("`{command}` exited ({status}) before listening on port {port}{tail}")]
    Exited {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// The port it was to listen on.
        port: u16,
        /// `; its stderr ends with: ...`, or empty.
        tail: String,
    },
    /// The process did not accept connections on its port in time.
    #[error("`{command}` did not listen on port {port} within {waited:?}{tail}")]
    NotReady {
        /// The command line.
        command: String,
        /// The port.
        port: u16,
        /// How long was waited.
        waited: Duration,
        /// `; its stderr ends with: ...`, or empty.
        tail: String,
    },
    /// The mocks of the recorded dependencies could not be loaded or bound.
    #[error("mocks: {0}")]
    Mock(#[from] tapline_mock::MockError),
    /// The snapshot could not be read.
    #[error("{0}")]
    Snapshot(#[from] tapline_dataplane::snapshot::SnapshotError),
}

impl NetnsError {
    /// A failed system call.
    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        NetnsError::Sys {
            what: what.into(),
            source,
        }
    }

    /// A failed file operation.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetnsError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Whether the cause is missing privilege (EPERM/EACCES from the kernel, or
    /// [`NetnsError::Privilege`]): callers map these to their "environment" exit code.
    pub fn is_privilege(&self) -> bool {
        match self {
            NetnsError::Privilege { .. } => true,
            NetnsError::Sys { source, .. } => {
                matches!(source, nix::Error::EPERM | nix::Error::EACCES)
            }
            NetnsError::Netlink { source, .. } | NetnsError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::PermissionDenied
            }
            _ => false,
        }
    }

    /// Whether the fault lies with the environment (privilege, kernel, a resource) rather than
    /// with the command or the snapshot given.
    pub fn is_environment(&self) -> bool {
        !matches!(
            self,
            NetnsError::Exited { .. }
                | NetnsError::NotReady { .. }
                | NetnsError::Invalid(_)
                | NetnsError::Snapshot(_)
                | NetnsError::Spawn { .. }
        ) && !matches!(
            self,
            NetnsError::Mock(
                tapline_mock::MockError::NoPairs { .. } | tapline_mock::MockError::Snapshot(_)
            )
        )
    }
}
