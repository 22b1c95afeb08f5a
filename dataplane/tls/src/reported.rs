//! Which executables were reported as carrying a TLS stack the probes cannot see, so that a
//! capture of all processes names each executable once, not once per process running it (a
//! build host starts dozens of processes of one rustls program), and never names tapline
//! itself.

use std::collections::{HashMap, HashSet};

use crate::discover::{FileId, Unsupported};

/// Most distinct processes counted per executable; past it the count says "or more".
const MAX_COUNTED: usize = 4096;

/// An executable reported once, with the processes seen running it.
#[derive(Debug)]
struct Seen {
    /// Its path, as shown in the note.
    shown: String,
    /// The process it was reported for.
    first_pid: u32,
    /// The processes seen running it (at most [`MAX_COUNTED`]).
    pids: HashSet<u32>,
}

/// The unsupported executables reported so far, by file identity.
#[derive(Debug, Default)]
pub(crate) struct Reported {
    /// The executable of this process (tapline), never reported.
    own_exe: Option<FileId>,
    seen: HashMap<(FileId, Unsupported), Seen>,
}

impl Reported {
    /// An empty record for a process whose own executable is `own_exe`.
    pub(crate) fn new(own_exe: Option<FileId>) -> Self {
        Reported {
            own_exe,
            seen: HashMap::new(),
        }
    }

    /// Whether process `pid` running `exe` is this process or runs this process's executable
    /// (another tapline): those are never reported.
    pub(crate) fn is_own(&self, pid: u32, exe: Option<FileId>) -> bool {
        pid == std::process::id() || (exe.is_some() && exe == self.own_exe)
    }

    /// Records that process `pid` runs `exe` (shown as `shown`), which carries `stack`;
    /// returns whether `exe` had not been seen with `stack` before (so the note is due now).
    pub(crate) fn record(
        &mut self,
        exe: FileId,
        shown: &str,
        pid: u32,
        stack: Unsupported,
    ) -> bool {
        let mut first = false;
        let seen = self.seen.entry((exe, stack)).or_insert_with(|| {
            first = true;
            Seen {
                shown: shown.to_owned(),
                first_pid: pid,
                pids: HashSet::new(),
            }
        });
        if seen.pids.len() < MAX_COUNTED {
            seen.pids.insert(pid);
        }
        first
    }

    /// One note per executable that more than one process ran, with their count, sorted.
    pub(crate) fn summary(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, seen)| seen.pids.len() > 1)
            .map(|((_, stack), seen)| {
                let more = if seen.pids.len() >= MAX_COUNTED {
                    " or more"
                } else {
                    ""
                };
                format!(
                    "{} ({} not supported): {}{more} processes ran it during the capture; it was noted once, for pid {}",
                    seen.shown,
                    stack.name(),
                    seen.pids.len(),
                    seen.first_pid
                )
            })
            .collect();
        notes.sort_unstable();
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUST_PROGRAM: FileId = FileId { dev: 1, ino: 10 };
    const GO_PROGRAM: FileId = FileId { dev: 1, ino: 11 };
    const TAPLINE: FileId = FileId { dev: 1, ino: 12 };

    #[test]
    fn each_executable_is_reported_once_and_counted() {
        let mut reported = Reported::new(Some(TAPLINE));
        assert!(reported.record(RUST_PROGRAM, "/usr/bin/app", 100, Unsupported::Rustls));
        for pid in [101, 102, 100, 101] {
            assert!(!reported.record(RUST_PROGRAM, "/usr/bin/app", pid, Unsupported::Rustls));
        }
        assert!(reported.record(GO_PROGRAM, "/usr/bin/goapp", 200, Unsupported::Go));
        // The same file with another stack is another note.
        assert!(reported.record(RUST_PROGRAM, "/usr/bin/app", 100, Unsupported::Java));
        assert_eq!(
            reported.summary(),
            [
                "/usr/bin/app (rustls not supported): 3 processes ran it during the capture; it was noted once, for pid 100"
            ]
        );
    }

    #[test]
    fn counts_are_capped() {
        let mut reported = Reported::new(None);
        for pid in 0..(MAX_COUNTED as u32 + 10) {
            reported.record(RUST_PROGRAM, "/a", pid, Unsupported::Rustls);
        }
        let summary = reported.summary();
        assert_eq!(summary.len(), 1);
        assert!(
            summary[0].contains(&format!("{MAX_COUNTED} or more processes")),
            "{summary:?}"
        );
    }

    #[test]
    fn tapline_itself_is_recognized() {
        let reported = Reported::new(Some(TAPLINE));
        assert!(reported.is_own(std::process::id(), None));
        assert!(reported.is_own(1, Some(TAPLINE)));
        assert!(!reported.is_own(1, Some(RUST_PROGRAM)));
        assert!(!reported.is_own(1, None));
        assert!(!Reported::new(None).is_own(1, None));
    }
}
