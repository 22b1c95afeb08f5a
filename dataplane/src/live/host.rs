//! What a live capture asks of the host: the stop signals, entering a named network
//! namespace, an interface's link type, and the drops the kernel counts on it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::LiveError;
use crate::packet::link as linktype;

/// Returns a flag that the first SIGINT or SIGTERM raises; a second one ends the process at
/// once (exit 130), leaving the snapshot as its last checkpoint.
///
/// # Errors
/// When the handlers cannot be installed.
pub fn stop_on_signals() -> std::io::Result<&'static AtomicBool> {
    static STOP: AtomicBool = AtomicBool::new(false);
    extern "C" fn raise(_signal: libc::c_int) {
        if STOP.swap(true, Ordering::SeqCst) {
            // SAFETY: _exit is async-signal-safe; the kernel detaches the programs.
            unsafe { libc::_exit(130) };
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous = unsafe { libc::signal(signal, raise as *const () as libc::sighandler_t) };
        if previous == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}

/// Moves the calling thread into the network namespace `name` (`/run/netns/NAME`, or a path
/// such as `/proc/PID/ns/net` when `name` holds a `/`). Threads it starts afterwards are born
/// there.
///
/// # Errors
/// [`LiveError::Netns`] when there is no such namespace or no privilege to enter it.
pub fn enter_netns(name: &str) -> Result<(), LiveError> {
    let path = if name.contains('/') {
        name.to_owned()
    } else {
        format!("/run/netns/{name}")
    };
    let fail = |source: std::io::Error| {
        let hint = match source.raw_os_error() {
            Some(libc::ENOENT) => " (no such namespace: see `ip netns list`)",
            Some(libc::EPERM | libc::EACCES) => " (needs CAP_SYS_ADMIN: run as root)",
            _ => "",
        };
        LiveError::Netns {
            name: name.to_owned(),
            path: path.clone(),
            source,
            hint,
        }
    };
    let file = File::open(&path).map_err(fail)?;
    // SAFETY: setns on a valid namespace descriptor; it only changes this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(fail(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The pcap link type of `interface`'s packets.
///
/// # Errors
/// [`LiveError::UnsupportedLink`] for interfaces that are not Ethernet-like.
pub fn link_type_of(interface: &str) -> Result<u16, LiveError> {
    let hatype = hardware_type(interface).unwrap_or(libc::ARPHRD_ETHER);
    match hatype {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(linktype::ETHERNET),
        other => Err(LiveError::UnsupportedLink {
            interface: interface.to_owned(),
            hatype: other,
        }),
    }
}

/// The `ARPHRD_*` type of `interface`, from `SIOCGIFHWADDR`.
fn hardware_type(interface: &str) -> Option<u16> {
    // SAFETY: a throw-away datagram socket for the ioctl; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(interface.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: a valid socket and ifreq for SIOCGIFHWADDR.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &raw mut request) };
    // SAFETY: reading the union member SIOCGIFHWADDR fills.
    let family = unsafe { request.ifr_ifru.ifru_hwaddr.sa_family };
    // SAFETY: closing the socket made above.
    unsafe { libc::close(fd) };
    (rc == 0).then_some(family)
}

/// Drops on `interface` as the kernel counts them (rx + tx), from `/proc/thread-self/net/dev`.
pub fn interface_drops(interface: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev").ok()?;
    parse_dev_drops(&text, interface)
}

/// The rx + tx drop counters of `interface` in the text of `/proc/net/dev`.
fn parse_dev_drops(text: &str, interface: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != interface {
            return None;
        }
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        Some(fields.get(3).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev_drops_are_read_per_interface() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
tl-b: 5000      40    0    3    0     0          0         0     6000      50    0    4    0     0       0          0\n";
        assert_eq!(parse_dev_drops(text, "tl-b"), Some(7));
        assert_eq!(parse_dev_drops(text, "lo"), Some(0));
        assert_eq!(parse_dev_drops(text, "eth0"), None);
    }
}
