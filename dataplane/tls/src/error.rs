//! Why a TLS capture could not be set up or read, with the capability or kernel feature that is
//! missing and how to get it.

use std::io;
use std::path::PathBuf;

/// How to run a TLS capture with enough privilege, appended to privilege errors.
pub const PRIVILEGE_HINT: &str = "run `tapline capture --tls` as root, or give the binary the \
     capabilities with `setcap cap_bpf,cap_perfmon,cap_sys_admin+ep tapline`";

/// Why a TLS capture could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A system call was refused for lack of privilege.
    #[error(
        "{action} needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): {source}; {PRIVILEGE_HINT}"
    )]
    Privilege {
        /// What was being done.
        action: String,
        /// The refusal.
        source: io::Error,
    },
    /// The kernel lacks something the capture needs.
    #[error(
        "{action}: this kernel lacks {feature} ({source}); TLS capture needs Linux 5.17 or later with CONFIG_BPF_SYSCALL, CONFIG_UPROBES, CONFIG_FTRACE_SYSCALLS and BTF (/sys/kernel/btf/vmlinux)"
    )]
    Kernel {
        /// What was being done.
        action: String,
        /// The missing feature.
        feature: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A process named with `--pid` does not exist.
    #[error("no process with pid {0} (see `ps`; it may have exited)")]
    NoProcess(u32),
    /// A file named with `--binary` cannot be read.
    #[error("cannot read the binary {path}: {source}")]
    Binary {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The options ask for something impossible.
    #[error("{0}")]
    Options(String),
    /// Loading, attaching or reading the eBPF object failed otherwise.
    #[error("{action}: {message}")]
    Ebpf {
        /// What was being done.
        action: String,
        /// The error and its causes.
        message: String,
    },
}

impl TlsError {
    /// Whether the environment is at fault (privilege, kernel): the caller's exit code 3.
    /// Otherwise the input is (a pid, a binary, the options): exit code 2, except
    /// [`TlsError::Ebpf`], which is neither and counts as the environment too.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            TlsError::Privilege { .. } | TlsError::Kernel { .. } | TlsError::Ebpf { .. }
        )
    }

    /// Classifies an error from aya met while doing `action`: a refusal for lack of privilege,
    /// a missing kernel feature, or anything else.
    pub fn classify(action: impl Into<String>, error: &(dyn std::error::Error + 'static)) -> Self {
        let action = action.into();
        if let Some(os) = os_error(error) {
            match os.raw_os_error() {
                Some(code @ (libc::EPERM | libc::EACCES)) => {
                    return TlsError::Privilege {
                        action,
                        source: io::Error::from_raw_os_error(code),
                    };
                }
                Some(libc::ENOSYS) => {
                    return TlsError::Kernel {
                        action,
                        feature: "the bpf() system call",
                        source: io::Error::from_raw_os_error(libc::ENOSYS),
                    };
                }
                _ => {}
            }
        }
        TlsError::Ebpf {
            action,
            message: chain(error),
        }
    }
}

pub use tapline_bpf::error_chain::{chain, os_error};

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn permission_errors_name_the_capabilities() {
        let error = Outer(io::Error::from_raw_os_error(libc::EPERM));
        let classified = TlsError::classify("loading", &error);
        assert!(classified.is_environment());
        let text = classified.to_string();
        for needle in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "setcap"] {
            assert!(text.contains(needle), "{text}");
        }
    }

    #[test]
    fn input_errors_are_not_environment_errors() {
        assert!(!TlsError::NoProcess(4).is_environment());
        assert!(TlsError::NoProcess(4).to_string().contains("pid 4"));
        let error = Outer(io::Error::from_raw_os_error(libc::E2BIG));
        let TlsError::Ebpf { message, .. } = TlsError::classify("loading", &error) else {
            panic!("not Ebpf");
        };
        assert!(message.starts_with("outer: "), "{message}");
    }
}
