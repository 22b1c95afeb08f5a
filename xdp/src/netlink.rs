//! The two rtnetlink requests the loader needs that aya does not offer: which XDP program an
//! interface runs (and in which mode), and detaching a program that a killed run attached
//! through netlink (such an attachment, unlike a bpf link, outlives its process).
//!
//! Messages are built and parsed by hand over a `NETLINK_ROUTE` socket; every length read from
//! the kernel is checked before it is used.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `RTM_NEWLINK`, the answer to `RTM_GETLINK`.
const RTM_NEWLINK: u16 = 16;
/// Ask for one link.
const RTM_GETLINK: u16 = 18;
/// Change a link.
const RTM_SETLINK: u16 = 19;
/// `NLMSG_ERROR`: an error or an acknowledgement.
const NLMSG_ERROR: u16 = 2;
/// A request.
const NLM_F_REQUEST: u16 = 1;
/// Ask for an acknowledgement.
const NLM_F_ACK: u16 = 4;
/// `IFLA_XDP`: the nested XDP attributes of a link.
const IFLA_XDP: u16 = 43;
/// Nested attribute flag.
const NLA_F_NESTED: u16 = 0x8000;
/// `IFLA_XDP_FD` (s32): the program to attach, -1 to detach.
const IFLA_XDP_FD: u16 = 1;
/// `IFLA_XDP_ATTACHED` (u8): `XDP_ATTACHED_*`.
const IFLA_XDP_ATTACHED: u16 = 2;
/// `IFLA_XDP_FLAGS` (u32): `XDP_FLAGS_*`.
const IFLA_XDP_FLAGS: u16 = 3;
/// `IFLA_XDP_PROG_ID` (u32).
const IFLA_XDP_PROG_ID: u16 = 4;
/// `XDP_FLAGS_SKB_MODE`.
const XDP_FLAGS_SKB_MODE: u32 = 2;
/// `XDP_FLAGS_DRV_MODE`.
const XDP_FLAGS_DRV_MODE: u32 = 4;
/// `XDP_FLAGS_HW_MODE`.
const XDP_FLAGS_HW_MODE: u32 = 8;
/// Size of `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// Size of `struct ifinfomsg`.
const IFINFO: usize = 16;

/// How an XDP program is attached to an interface (`XDP_ATTACHED_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttached {
    /// In the driver (native).
    Driver,
    /// Generic (SKB) mode.
    Generic,
    /// Offloaded to the device.
    Hardware,
    /// Several modes at once.
    Multi,
}

impl XdpAttached {
    fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(XdpAttached::Driver),
            2 => Some(XdpAttached::Generic),
            3 => Some(XdpAttached::Hardware),
            4 => Some(XdpAttached::Multi),
            _ => None,
        }
    }

    /// The `XDP_FLAGS_*` that address this mode when detaching.
    fn flags(self) -> u32 {
        match self {
            XdpAttached::Driver | XdpAttached::Multi => XDP_FLAGS_DRV_MODE,
            XdpAttached::Generic => XDP_FLAGS_SKB_MODE,
            XdpAttached::Hardware => XDP_FLAGS_HW_MODE,
        }
    }
}

/// The XDP program an interface runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpProgram {
    /// The program's id.
    pub id: u32,
    /// How it is attached.
    pub attached: XdpAttached,
}

/// The XDP program attached to interface `ifindex`, if any.
///
/// # Errors
/// When the netlink socket fails or the kernel refuses the request.
pub fn xdp_program(ifindex: u32) -> io::Result<Option<XdpProgram>> {
    let socket = Socket::open()?;
    let mut request = message(RTM_GETLINK, NLM_F_REQUEST, ifindex);
    finish(&mut request);
    socket.send(&request)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let n = socket.recv(&mut buffer)?;
    let reply = buffer.get(..n).unwrap_or_default();
    let (kind, body) = first_message(reply)?;
    if kind == NLMSG_ERROR {
        return Err(error_of(body).unwrap_or_else(|| io::Error::other("netlink: empty error")));
    }
    if kind != RTM_NEWLINK {
        return Err(io::Error::other(format!(
            "netlink: unexpected message type {kind}"
        )));
    }
    let attributes = body.get(IFINFO..).unwrap_or_default();
    let Some(xdp) = attribute(attributes, IFLA_XDP) else {
        return Ok(None);
    };
    let attached = attribute(xdp, IFLA_XDP_ATTACHED)
        .and_then(|v| v.first().copied())
        .and_then(XdpAttached::from_raw);
    let id = attribute(xdp, IFLA_XDP_PROG_ID).and_then(u32_of);
    Ok(match (attached, id) {
        (Some(attached), Some(id)) if id != 0 => Some(XdpProgram { id, attached }),
        _ => None,
    })
}

/// Detaches the XDP program attached to `ifindex` in mode `attached` through netlink.
///
/// # Errors
/// When the netlink socket fails or the kernel refuses (for example because a bpf link holds
/// the program: then only its owner can detach it).
pub fn detach_xdp(ifindex: u32, attached: XdpAttached) -> io::Result<()> {
    let socket = Socket::open()?;
    let mut request = message(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
    let nest = request.len();
    push_attribute(&mut request, IFLA_XDP | NLA_F_NESTED, &[]);
    push_attribute(&mut request, IFLA_XDP_FD, &(-1i32).to_ne_bytes());
    push_attribute(
        &mut request,
        IFLA_XDP_FLAGS,
        &attached.flags().to_ne_bytes(),
    );
    let nest_len = u16::try_from(request.len() - nest).unwrap_or(u16::MAX);
    request[nest..nest + 2].copy_from_slice(&nest_len.to_ne_bytes());
    finish(&mut request);
    socket.send(&request)?;
    let mut buffer = vec![0u8; 8192];
    let n = socket.recv(&mut buffer)?;
    let (kind, body) = first_message(buffer.get(..n).unwrap_or_default())?;
    if kind != NLMSG_ERROR {
        return Err(io::Error::other(format!(
            "netlink: unexpected answer type {kind}"
        )));
    }
    match error_of(body) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// A `NETLINK_ROUTE` socket, closed on drop.
struct Socket(OwnedFd);

impl Socket {
    fn open() -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: a valid socket and a timeval of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket(fd))
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: `bytes` is valid for its length; the kernel address is zeroed (pid 0).
        let rc = unsafe {
            let mut address: libc::sockaddr_nl = std::mem::zeroed();
            address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.0.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const address).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buffer` is valid and writable for its length.
        let rc = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        usize::try_from(rc).map_err(|_| io::Error::last_os_error())
    }
}

/// A message header (length filled in by [`finish`]) and an `ifinfomsg` for `ifindex`.
fn message(kind: u16, flags: u16, ifindex: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    bytes.push(libc::AF_UNSPEC as u8); // ifi_family
    bytes.push(0); // padding
    bytes.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    bytes.extend_from_slice(&ifindex.to_ne_bytes()); // ifi_index (int)
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // ifi_flags
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
    bytes
}

/// Writes the message's total length into its header.
fn finish(bytes: &mut [u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&len.to_ne_bytes());
}

/// Appends one attribute, padded to 4 bytes.
fn push_attribute(bytes: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    bytes.extend_from_slice(&len.to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(value);
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

/// The type and body of the first message in `reply`.
fn first_message(reply: &[u8]) -> io::Result<(u16, &[u8])> {
    let short = || io::Error::other("netlink: short reply");
    let head = reply.get(..NLMSG_HDR).ok_or_else(short)?;
    let len = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let kind = u16::from_ne_bytes([head[4], head[5]]);
    let body = reply.get(NLMSG_HDR..len.max(NLMSG_HDR)).ok_or_else(short)?;
    Ok((kind, body))
}

/// The error carried by an `NLMSG_ERROR` body, `None` for an acknowledgement.
fn error_of(body: &[u8]) -> Option<io::Error> {
    let code = body.get(..4)?;
    let code = i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
    (code != 0).then(|| io::Error::from_raw_os_error(-code))
}

/// The value of the first attribute of type `kind` (nested flag ignored) in `attributes`.
fn attribute(mut attributes: &[u8], kind: u16) -> Option<&[u8]> {
    while attributes.len() >= 4 {
        let len = u16::from_ne_bytes([attributes[0], attributes[1]]) as usize;
        let this = u16::from_ne_bytes([attributes[2], attributes[3]]) & !NLA_F_NESTED;
        if len < 4 || len > attributes.len() {
            return None;
        }
        if this == kind {
            return attributes.get(4..len);
        }
        let padded = (len + 3) & !3;
        attributes = attributes.get(padded..).unwrap_or_default();
    }
    None
}

/// A native-endian `u32` attribute value.
fn u32_of(value: &[u8]) -> Option<u32> {
    let bytes = value.get(..4)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_found_and_bounded() {
        let mut bytes = Vec::new();
        push_attribute(&mut bytes, 3, &[1, 2, 3]);
        push_attribute(&mut bytes, IFLA_XDP_PROG_ID, &77u32.to_ne_bytes());
        assert_eq!(attribute(&bytes, 3), Some(&[1, 2, 3][..]));
        assert_eq!(
            attribute(&bytes, IFLA_XDP_PROG_ID).and_then(u32_of),
            Some(77)
        );
        assert_eq!(attribute(&bytes, 9), None);
        // A length past the end stops the walk instead of reading out of bounds.
        let mut broken = bytes.clone();
        broken[0] = 200;
        assert_eq!(attribute(&broken, IFLA_XDP_PROG_ID), None);
        assert_eq!(attribute(&[1, 0], 1), None);
    }

    #[test]
    fn messages_carry_their_length_and_errors_are_read() {
        let mut request = message(RTM_GETLINK, NLM_F_REQUEST, 5);
        finish(&mut request);
        assert_eq!(request.len(), NLMSG_HDR + IFINFO);
        let (kind, body) = first_message(&request).unwrap();
        assert_eq!(kind, RTM_GETLINK);
        assert_eq!(&body[4..8], &5u32.to_ne_bytes());
        assert!(first_message(&request[..8]).is_err());
        assert!(error_of(&0i32.to_ne_bytes()).is_none());
        let e = error_of(&(-libc::EPERM).to_ne_bytes()).unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn detach_flags_follow_the_mode() {
        assert_eq!(
            XdpAttached::from_raw(2).map(XdpAttached::flags),
            Some(XDP_FLAGS_SKB_MODE)
        );
        assert_eq!(
            XdpAttached::from_raw(1).map(XdpAttached::flags),
            Some(XDP_FLAGS_DRV_MODE)
        );
        assert_eq!(XdpAttached::from_raw(0), None);
    }
}
