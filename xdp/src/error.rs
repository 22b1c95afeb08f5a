//! Why attaching a live capture failed, with the capability or kernel feature that is missing
//! and how to get it.

use std::io;

/// How to run a capture with enough privilege, appended to privilege errors.
pub const PRIVILEGE_HINT: &str = "run `tapline capture` as root, or give the binary the \
     capabilities with `setcap cap_bpf,cap_net_admin,cap_perfmon,cap_sys_admin+ep tapline`";

/// Why a live capture could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The interface does not exist in this network namespace.
    #[error(
        "interface {0:?} does not exist in this network namespace (see `ip link`; use --netns NAME for one in a named namespace)"
    )]
    NoInterface(String),
    /// A system call was refused for lack of privilege.
    #[error(
        "{action} needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN): {source}; {PRIVILEGE_HINT}"
    )]
    Privilege {
        /// What was being done.
        action: String,
        /// The refusal.
        source: io::Error,
    },
    /// The kernel lacks something the capture needs.
    #[error(
        "{action}: this kernel lacks {feature} ({source}); tapline capture needs Linux 5.8 or later with CONFIG_BPF_SYSCALL, BPF ring buffers and XDP or TCX; use `tapline capture --span` or a pcap import instead"
    )]
    Kernel {
        /// What was being done.
        action: String,
        /// The missing feature.
        feature: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Another live tapline capture holds the interface.
    #[error(
        "interface {interface} is already being captured by another running tapline (XDP program id {id}); stop it first"
    )]
    InUse {
        /// The interface.
        interface: String,
        /// The id of the program that process attached.
        id: u32,
    },
    /// Loading, attaching or reading the eBPF object failed otherwise.
    #[error("{action}: {message}")]
    Ebpf {
        /// What was being done.
        action: String,
        /// The error and its causes.
        message: String,
    },
}

impl AttachError {
    /// Classifies an error from aya (or netlink) met while doing `action`: a refusal for lack of
    /// privilege, a missing kernel feature, or anything else.
    pub fn classify(action: impl Into<String>, error: &(dyn std::error::Error + 'static)) -> Self {
        let action = action.into();
        if let Some(os) = os_error(error) {
            match os.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => {
                    return AttachError::Privilege {
                        action,
                        source: io::Error::from_raw_os_error(os.raw_os_error().unwrap_or(0)),
                    };
                }
                Some(libc::ENOSYS) => {
                    return AttachError::Kernel {
                        action,
                        feature: "the bpf() system call",
                        source: io::Error::from_raw_os_error(libc::ENOSYS),
                    };
                }
                _ => {}
            }
        }
        AttachError::Ebpf {
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
    fn permission_errors_are_found_in_the_chain() {
        let error = Outer(io::Error::from_raw_os_error(libc::EPERM));
        let classified = AttachError::classify("loading", &error);
        assert!(matches!(classified, AttachError::Privilege { .. }));
        let text = classified.to_string();
        assert!(
            text.contains("CAP_BPF") && text.contains("setcap"),
            "{text}"
        );
    }

    #[test]
    fn other_errors_keep_their_causes() {
        let error = Outer(io::Error::from_raw_os_error(libc::E2BIG));
        let classified = AttachError::classify("loading", &error);
        let AttachError::Ebpf { message, .. } = classified else {
            panic!("not Ebpf");
        };
        assert!(message.starts_with("outer: "), "{message}");
    }
}
