//! Two fresh network namespaces joined by a veth pair, removed on drop.
//!
//! Addresses live only inside the namespaces (10.231.0.0/24 and fd00:7a1::/64), so tests
//! never touch the host's network. Names carry the test's name and the process id, so
//! parallel tests and parallel runs never collide; namespaces left by a killed run (whose
//! process id no longer exists) are removed by the next guard.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::{run_checked, run_with_timeout};
use crate::{E2eError, Result, Run};

/// Prefix of every namespace this crate creates.
const PREFIX: &str = "tle2e-";

/// Time allowed for one `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(30);

/// One side of the veth pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Namespace A, usually the server.
    A,
    /// Namespace B, usually the client and the capture point.
    B,
}

impl Side {
    /// The veth interface's name on this side (inside its namespace).
    pub fn interface(self) -> &'static str {
        match self {
            Side::A => "tl-a",
            Side::B => "tl-b",
        }
    }

    /// The IPv4 address on this side's veth.
    pub fn ipv4(self) -> &'static str {
        match self {
            Side::A => "10.231.0.1",
            Side::B => "10.231.0.2",
        }
    }

    /// The IPv6 address on this side's veth.
    pub fn ipv6(self) -> &'static str {
        match self {
            Side::A => "fd00:7a1::1",
            Side::B => "fd00:7a1::2",
        }
    }
}

/// A named network namespace (a file under `/run/netns`).
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's file, for `setns`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command that runs `program` inside this namespace (`ip netns exec`, which execs the
    /// program in place, so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `args` (program first) inside this namespace and requires success.
    ///
    /// # Errors
    ///
    /// As [`run_checked`].
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<Run> {
        let (program, rest) = args.split_first().ok_or_else(|| E2eError::Netns {
            name: self.name.clone(),
            reason: "empty command".to_owned(),
        })?;
        run_checked(self.command(program).args(rest), timeout)
    }

    /// Runs `ip -n NAME ARGS...` and requires success.
    fn ip(&self, args: &[&str]) -> Result<Run> {
        run_checked(
            Command::new("ip").args(["-n", &self.name]).args(args),
            IP_TIMEOUT,
        )
    }
}

/// Two network namespaces `a` and `b` joined by a veth pair (`tl-a` in A, `tl-b` in B), up,
/// with IPv4 and IPv6 addresses and loopback up. Dropping the guard (also while a test
/// panics) kills the processes left inside and deletes both namespaces.
#[derive(Debug)]
pub struct NetnsGuard {
    /// Namespace A (server side by convention).
    pub a: Netns,
    /// Namespace B (client side by convention).
    pub b: Netns,
}

impl NetnsGuard {
    /// Creates the namespaces and the veth pair for the test `test`.
    ///
    /// # Errors
    ///
    /// When an `ip` command fails (not root, or no netns support); whatever was created is
    /// removed again.
    pub fn new(test: &str) -> Result<Self> {
        remove_stale();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let label: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let guard = Self {
            a: Netns {
                name: format!("{PREFIX}{label}-{pid}-{n}-a"),
            },
            b: Netns {
                name: format!("{PREFIX}{label}-{pid}-{n}-b"),
            },
        };
        // From here on, a failure drops `guard`, which removes what exists.
        for ns in [&guard.a, &guard.b] {
            run_checked(
                Command::new("ip").args(["netns", "add", &ns.name]),
                IP_TIMEOUT,
            )?;
        }
        guard.a.ip(&[
            "link",
            "add",
            Side::A.interface(),
            "type",
            "veth",
            "peer",
            "name",
            Side::B.interface(),
            "netns",
            &guard.b.name,
        ])?;
        for side in [Side::A, Side::B] {
            let ns = guard.netns(side);
            let v4 = format!("{}/24", side.ipv4());
            let v6 = format!("{}/64", side.ipv6());
            ns.ip(&["link", "set", "lo", "up"])?;
            ns.ip(&["addr", "add", &v4, "dev", side.interface()])?;
            ns.ip(&["-6", "addr", "add", &v6, "dev", side.interface(), "nodad"])?;
            ns.ip(&["link", "set", side.interface(), "up"])?;
        }
        Ok(guard)
    }

    /// The namespace on `side`.
    pub fn netns(&self, side: Side) -> &Netns {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// Turns off checksum, segmentation and receive offloads on both veth ends, so that a
    /// capture holds wire-size packets.
    ///
    /// # Errors
    ///
    /// When segmentation or receive aggregation offloads cannot be turned off.
    pub fn disable_offloads(&self) -> Result<()> {
        for side in [Side::A, Side::B] {
            let ns = self.netns(side);
            for feature in ["tso", "gso", "gro", "tx", "rx"] {
                let run = run_with_timeout(
                    ns.command("ethtool")
                        .args(["-K", side.interface(), feature, "off"]),
                    IP_TIMEOUT,
                )?;
                // Checksum offloads are best effort; sizes must be the wire's.
                if !run.success() && matches!(feature, "tso" | "gso" | "gro") {
                    return Err(E2eError::Netns {
                        name: ns.name.clone(),
                        reason: format!("ethtool -K {feature} off failed: {}", run.stderr.trim()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Waits until `side` can reach the other side's IPv4 and IPv6 addresses (ping).
    ///
    /// # Errors
    ///
    /// When no ping succeeds within ten seconds.
    pub fn wait_reachable(&self, side: Side) -> Result<()> {
        let other = match side {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        for address in [other.ipv4(), other.ipv6()] {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let run = run_with_timeout(
                    self.netns(side)
                        .command("ping")
                        .args(["-c", "1", "-W", "1", address]),
                    Duration::from_secs(5),
                )?;
                if run.success() {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(E2eError::Netns {
                        name: self.netns(side).name.clone(),
                        reason: format!("{address} unreachable: {}", run.stderr.trim()),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            remove(&ns.name);
        }
    }
}

/// Kills the processes inside namespace `name` (all started by this crate's tests) and
/// deletes it; errors are ignored, as there is nothing better to do in a drop.
fn remove(name: &str) {
    if !std::path::Path::new("/run/netns").join(name).exists() {
        return;
    }
    if let Ok(run) = run_with_timeout(Command::new("ip").args(["netns", "pids", name]), IP_TIMEOUT)
    {
        for pid in run.stdout_text().split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    let _ = run_with_timeout(Command::new("ip").args(["netns", "del", name]), IP_TIMEOUT);
}

/// Removes namespaces this crate made in runs whose process no longer exists.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner_pid(&name)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            remove(&name);
        }
    }
}

/// The process id in a name made by [`NetnsGuard::new`] (`tle2e-LABEL-PID-N-SIDE`).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplit('-');
    let _side = parts.next()?;
    let _n = parts.next()?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_names_made_by_the_guard() {
        assert_eq!(owner_pid("tle2e-some-test-1234-0-a"), Some(1234));
        assert_eq!(owner_pid("tle2e-x-77-12-b"), Some(77));
        assert_eq!(owner_pid("other-1234-0-a"), None);
        assert_eq!(owner_pid("tle2e-a"), None);
    }

    #[test]
    fn sides_have_distinct_names_and_addresses() {
        assert_ne!(Side::A.interface(), Side::B.interface());
        assert_ne!(Side::A.ipv4(), Side::B.ipv4());
        assert_ne!(Side::A.ipv6(), Side::B.ipv6());
        assert!(Side::A.interface().len() < 16);
    }
}
