//! Processes seen through `/proc`: which are inside a namespace (whatever they forked or
//! however they detached, `/proc/PID/ns/net` says where they are), killing them, and a
//! process's start time, which tells a live owner from a reused process id.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::ns::NsId;

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`),
/// or `None` when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&text)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted from the last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // Fields from 3 (the state) on: the start time is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid` exists and is the one that started at `started` (ticks since boot);
/// a zombie counts as gone.
pub fn is_alive(pid: u32, started: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .and_then(|rest| rest.split_whitespace().next())
        == Some("Z");
    !zombie && parse_start_time(&text) == Some(started)
}

/// The process ids whose network namespace is `ns`, this process left out.
pub fn in_namespace(ns: NsId) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            NsId::of_path(Path::new(&format!("/proc/{pid}/ns/net"))).is_ok_and(|id| id == ns)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Sends `signal` to the process group `pgid` (errors ignored: it may be gone).
pub fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pgid)
        && raw > 1
    {
        let _ = killpg(Pid::from_raw(raw), signal);
    }
}

/// SIGKILLs every process inside `ns` until none is left or `limit` has passed (new ones may
/// be forking while the first are killed); returns how many were killed.
pub fn kill_namespace(ns: NsId, limit: Duration) -> usize {
    let started = Instant::now();
    let mut killed = std::collections::BTreeSet::new();
    loop {
        let pids = in_namespace(ns);
        if pids.is_empty() || started.elapsed() >= limit {
            return killed.len();
        }
        for pid in pids {
            if let Ok(raw) = i32::try_from(pid)
                && kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok()
            {
                killed.insert(pid);
            }
        }
        // A killed process leaves the namespace when it exits (a zombie has none).
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_counted_after_the_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000000 100 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987_654));
        assert_eq!(parse_start_time("4242 (x) S 1"), None);
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id();
        let started = start_time(me).unwrap();
        assert!(is_alive(me, started));
        assert!(!is_alive(me, started + 1));
        assert!(!is_alive(u32::MAX, started));
    }
}
