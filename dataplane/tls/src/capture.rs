//! [`TlsCapture`]: the loaded TLS programs, their attachments and the ring they fill.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::{Ebpf, EbpfLoader, Pod};
use tapline_bpf::tls::{FILTER_EXES, FILTER_PIDS, MAX_EXES, MAX_PIDS, TlsExe, counter, names};

use crate::attach;
use crate::discover::{self, FileId};
use crate::elf::ElfInfo;
use crate::error::TlsError;
use crate::event::{Record, TlsEvent, decode};
use crate::reported::Reported;
use tapline_bpf::clock::WallClock;

/// Default size of the ring buffer: 32 MiB.
pub const DEFAULT_RING_BYTES: u32 = 32 << 20;

/// Records drained in one [`TlsCapture::drain`] call at most.
pub const DRAIN_BATCH: usize = 8192;

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Capture these processes (`--pid`): the libraries they map are probed and only their
    /// calls are kept.
    pub pids: Vec<u32>,
    /// Capture the processes running these executables (`--binary`): the TLS library linked
    /// into each, or the ones it links against, are probed.
    pub binaries: Vec<PathBuf>,
    /// Capture every process (`--tls`): the system's TLS libraries and every library a
    /// process maps are probed, and new processes are looked at as they start.
    pub all_processes: bool,
    /// Size of the ring buffer: a power of two, at least one page.
    pub ring_bytes: u32,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            pids: Vec::new(),
            binaries: Vec::new(),
            all_processes: false,
            ring_bytes: DEFAULT_RING_BYTES,
        }
    }
}

/// Counters of the TLS programs (summed over CPUs) and of the reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    /// Library calls that returned plaintext.
    pub calls: u64,
    /// Data records pushed into the ring.
    pub chunks: u64,
    /// Plaintext bytes pushed into the ring.
    pub bytes: u64,
    /// Plaintext bytes that could not be delivered, all causes.
    pub lost_bytes: u64,
    /// Records lost because the ring was full.
    pub ring_full: u64,
    /// Chunks lost because the process's memory could not be read.
    pub read_faults: u64,
    /// Bytes lost because one call moved more than the programs copy (64 MiB).
    pub too_long_bytes: u64,
    /// Calls on sessions whose TCP 4-tuple was not known.
    pub no_tuple: u64,
    /// Calls lost because every scratch buffer of the CPU was busy.
    pub nested: u64,
    /// Session ends reported.
    pub closes: u64,
    /// Process starts reported.
    pub execs: u64,
    /// Close, exec and end-of-call records lost because the ring was full.
    pub events_lost: u64,
    /// Records the reader refused as malformed.
    pub bad_records: u64,
}

/// A process the capture has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`, or the records' when it had already exited).
    pub command: String,
    /// Its cgroup path (`/proc/PID/cgroup`), when it could be read.
    pub cgroup: Option<String>,
}

/// Most processes kept in the [`ProcessInfo`] cache before it is cleared.
const MAX_PROCESSES: usize = 8192;

/// The loaded TLS programs with their attachments. Dropping it detaches everything.
pub struct TlsCapture {
    pub(crate) ebpf: Ebpf,
    ring: RingBuf<MapData>,
    clock: WallClock,
    pub(crate) options: TlsOptions,
    /// Library files attached, with the path shown for them; with the process when the probes
    /// are set for that process alone (a `--pid`-only capture).
    pub(crate) attached: HashMap<(FileId, Option<u32>), String>,
    /// Files that could not be attached (not retried).
    pub(crate) refused: HashSet<FileId>,
    /// ELF files already read.
    pub(crate) elf_cache: HashMap<FileId, ElfInfo>,
    /// The executables of `--binary`.
    pub(crate) target_exes: HashSet<FileId>,
    /// Notes already given per process (pid, kind), so rescans do not repeat them.
    pub(crate) noted: HashSet<(u32, &'static str)>,
    /// Executables already reported as carrying a TLS stack the probes cannot see.
    pub(crate) reported: Reported,
    /// Processes to look at again, and when.
    pub(crate) rescans: Vec<(Instant, u32)>,
    /// When the `--pid` processes were last looked at.
    pub(crate) last_pid_scan: Instant,
    processes: HashMap<u32, ProcessInfo>,
    pub(crate) notes: Vec<String>,
    bad_records: u64,
    detached: bool,
}

impl fmt::Debug for TlsCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCapture")
            .field("options", &self.options)
            .field("attached", &self.attached.values().collect::<Vec<_>>())
            .field("detached", &self.detached)
            .finish_non_exhaustive()
    }
}

/// A key of the exe map, as aya writes it.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
struct ExeKey(TlsExe);

// SAFETY: `TlsExe` is `#[repr(C)]`: a `u64` and two `u32`s, no padding.
unsafe impl Pod for ExeKey {}

impl TlsCapture {
    /// Loads the TLS programs, attaches the tracepoints and probes the TLS libraries that
    /// `options` select. What a person should know (libraries attached, processes whose TLS
    /// stack is not supported, fallbacks) is in [`Self::notes`].
    ///
    /// # Errors
    /// [`TlsError::NoProcess`] or [`TlsError::Binary`] for a pid or binary that does not
    /// exist, [`TlsError::Options`] when nothing is selected, [`TlsError::Privilege`] or
    /// [`TlsError::Kernel`] when the system refuses, [`TlsError::Ebpf`] otherwise.
    pub fn open(options: &TlsOptions) -> Result<Self, TlsError> {
        validate(options)?;
        let mut filter = 0;
        if !options.all_processes {
            if !options.pids.is_empty() {
                filter |= FILTER_PIDS;
            }
            if !options.binaries.is_empty() {
                filter |= FILTER_EXES;
            }
        }
        let exec_events = u32::from(options.all_processes || !options.binaries.is_empty());
        let mut notes = Vec::new();
        let mut ebpf = EbpfLoader::new()
            .override_global(names::FILTER, &filter, true)
            .override_global(names::EXEC_EVENTS, &exec_events, true)
            .map_max_entries(names::RING, options.ring_bytes)
            .load(tapline_bpf::TLS)
            .map_err(|e| TlsError::classify("loading the TLS object", &e))?;
        attach::load_programs(&mut ebpf)?;
        if let Some(note) = attach::ensure_tracefs()? {
            notes.push(note);
        }
        let map = ebpf
            .take_map(names::RING)
            .ok_or_else(|| attach::missing(names::RING))?;
        let ring = RingBuf::try_from(map)
            .map_err(|e| TlsError::classify("opening the TLS ring buffer", &e))?;
        let mut capture = TlsCapture {
            ebpf,
            ring,
            clock: WallClock::measure(),
            options: options.clone(),
            attached: HashMap::new(),
            refused: HashSet::new(),
            elf_cache: HashMap::new(),
            target_exes: HashSet::new(),
            noted: HashSet::new(),
            reported: Reported::new(FileId::of(std::path::Path::new("/proc/self/exe")).ok()),
            rescans: Vec::new(),
            last_pid_scan: Instant::now(),
            processes: HashMap::new(),
            notes,
            bad_records: 0,
            detached: false,
        };
        if !options.all_processes {
            capture.write_pid_filter()?;
        }
        attach::attach_tracepoints(&mut capture.ebpf, exec_events != 0)?;
        capture.attach_selected()?;
        Ok(capture)
    }

    /// Notes gathered since the last call: libraries attached, processes whose TLS stack is
    /// not supported or that use no TLS library, fallbacks taken.
    pub fn notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// The library files probed so far, as shown in the notes.
    pub fn attached_libraries(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.attached.values().map(String::as_str).collect();
        paths.sort_unstable();
        paths.dedup();
        paths
    }

    /// Hands the records waiting in the ring (at most [`DRAIN_BATCH`]) to `sink`, oldest
    /// first, and returns how many were read. Process starts are handled here (their
    /// libraries are probed), not handed on; malformed records are counted
    /// ([`TlsCounters::bad_records`]) and skipped. Call it every few milliseconds: the programs
    /// do not wake readers.
    ///
    /// # Errors
    /// When probing a new process's library is refused for lack of privilege.
    pub fn drain(&mut self, sink: &mut dyn FnMut(&TlsEvent<'_>)) -> Result<usize, TlsError> {
        let mut drained = 0;
        let mut execs = Vec::new();
        let clock = self.clock;
        let TlsCapture {
            ring,
            processes,
            bad_records,
            ..
        } = self;
        while drained < DRAIN_BATCH {
            let Some(item) = ring.next() else { break };
            drained += 1;
            match decode(&item, &clock) {
                Ok(Record::Event(event)) => {
                    if !processes.contains_key(&event.pid) {
                        let info = process_info(event.pid, &event.command());
                        if processes.len() >= MAX_PROCESSES {
                            processes.clear();
                        }
                        processes.insert(event.pid, info);
                    }
                    sink(&event);
                }
                Ok(Record::Exec { pid, .. }) => {
                    // What was known of the pid is of the program it ran before.
                    processes.remove(&pid);
                    execs.push(pid);
                }
                Err(_) => *bad_records += 1,
            }
        }
        if !self.detached {
            for pid in execs {
                self.on_exec(pid)?;
            }
            self.run_rescans()?;
        }
        Ok(drained)
    }

    /// Reads the programs' counters.
    ///
    /// # Errors
    /// When the counter map cannot be read.
    pub fn counters(&self) -> Result<TlsCounters, TlsError> {
        let map = self
            .ebpf
            .map(names::COUNTERS)
            .ok_or_else(|| attach::missing(names::COUNTERS))?;
        let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map)
            .map_err(|e| TlsError::classify("reading the TLS counters", &e))?;
        let sum = |slot: u32| -> Result<u64, TlsError> {
            let values = array
                .get(&slot, 0)
                .map_err(|e| TlsError::classify("reading the TLS counters", &e))?;
            Ok(values.iter().sum())
        };
        Ok(TlsCounters {
            calls: sum(counter::CALLS)?,
            chunks: sum(counter::CHUNKS)?,
            bytes: sum(counter::BYTES)?,
            lost_bytes: sum(counter::LOST_BYTES)?,
            ring_full: sum(counter::RING_FULL)?,
            read_faults: sum(counter::READ_FAULT)?,
            too_long_bytes: sum(counter::TOO_LONG)?,
            no_tuple: sum(counter::NO_TUPLE)?,
            nested: sum(counter::NESTED)?,
            closes: sum(counter::CLOSES)?,
            execs: sum(counter::EXECS)?,
            events_lost: sum(counter::EVENTS_LOST)?,
            bad_records: self.bad_records,
        })
    }

    /// What the capture knows of process `pid`: read from `/proc` the first time (kept for
    /// later, also after the process exits), `None` when it never could be.
    pub fn process(&mut self, pid: u32) -> Option<&ProcessInfo> {
        if !self.processes.contains_key(&pid) {
            let command = discover::command_of(pid)?;
            if self.processes.len() >= MAX_PROCESSES {
                self.processes.clear();
            }
            self.processes.insert(pid, process_info(pid, &command));
        }
        self.processes.get(&pid)
    }

    /// Detaches and unloads the programs, keeping the ring: records already in it can still
    /// be drained and the counters read. Dropping the capture does this too. The notes get,
    /// for each unsupported executable that several processes ran, how many did.
    ///
    /// # Errors
    /// When the kernel refuses to detach a program.
    pub fn detach(&mut self) -> Result<(), TlsError> {
        if !self.detached {
            self.notes.extend(self.reported.summary());
        }
        self.detached = true;
        attach::unload_programs(&mut self.ebpf)
    }

    /// Writes the `--pid` and `--binary` filters into their maps.
    fn write_pid_filter(&mut self) -> Result<(), TlsError> {
        let map_error = |e: aya::maps::MapError| TlsError::classify("setting the pid filter", &e);
        let map = self
            .ebpf
            .map_mut(names::PIDS)
            .ok_or_else(|| attach::missing(names::PIDS))?;
        let mut pids: BpfHashMap<_, u32, u8> = BpfHashMap::try_from(map).map_err(map_error)?;
        for pid in &self.options.pids {
            pids.insert(pid, 1, 0).map_err(map_error)?;
        }
        let mut exes = Vec::new();
        for binary in &self.options.binaries {
            let id = FileId::of(binary).map_err(|source| TlsError::Binary {
                path: binary.clone(),
                source,
            })?;
            self.target_exes.insert(id);
            exes.push(ExeKey(id.exe_key()));
        }
        let map = self
            .ebpf
            .map_mut(names::EXES)
            .ok_or_else(|| attach::missing(names::EXES))?;
        let mut table: BpfHashMap<_, ExeKey, u8> = BpfHashMap::try_from(map).map_err(map_error)?;
        for key in exes {
            table.insert(key, 1, 0).map_err(map_error)?;
        }
        Ok(())
    }
}

impl Drop for TlsCapture {
    fn drop(&mut self) {
        if !self.detached {
            let _ = attach::unload_programs(&mut self.ebpf);
        }
    }
}

/// Checks `options` before anything is loaded, so that input errors come first.
fn validate(options: &TlsOptions) -> Result<(), TlsError> {
    if !options.all_processes && options.pids.is_empty() && options.binaries.is_empty() {
        return Err(TlsError::Options(
            "nothing to capture: name processes (--pid), executables (--binary) or all processes (--tls)".into(),
        ));
    }
    if options.pids.len() > MAX_PIDS as usize {
        return Err(TlsError::Options(format!(
            "{} processes named; at most {MAX_PIDS}",
            options.pids.len()
        )));
    }
    if options.binaries.len() > MAX_EXES as usize {
        return Err(TlsError::Options(format!(
            "{} binaries named; at most {MAX_EXES}",
            options.binaries.len()
        )));
    }
    let page = 4096;
    if options.ring_bytes < page || !options.ring_bytes.is_power_of_two() {
        return Err(TlsError::Options(format!(
            "TLS ring size {} is not a power of two of at least {page} bytes",
            options.ring_bytes
        )));
    }
    for &pid in &options.pids {
        if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).is_dir() {
            return Err(TlsError::NoProcess(pid));
        }
    }
    for binary in &options.binaries {
        std::fs::File::open(binary).map_err(|source| TlsError::Binary {
            path: binary.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The [`ProcessInfo`] of `pid`, read from `/proc`, with `fallback` as its command when it has
/// exited.
fn process_info(pid: u32, fallback: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        command: discover::command_of(pid).unwrap_or_else(|| fallback.to_owned()),
        cgroup: discover::cgroup_of(pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_before_loading() {
        let none = TlsOptions::default();
        assert!(matches!(validate(&none), Err(TlsError::Options(_))));
        let bad_pid = TlsOptions {
            pids: vec![u32::MAX - 1],
            ..TlsOptions::default()
        };
        assert!(matches!(validate(&bad_pid), Err(TlsError::NoProcess(_))));
        let bad_binary = TlsOptions {
            binaries: vec!["/nonexistent/tapline-test".into()],
            ..TlsOptions::default()
        };
        let error = validate(&bad_binary).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/tapline-test"),
            "{error}"
        );
        assert!(!error.is_environment());
        let bad_ring = TlsOptions {
            all_processes: true,
            ring_bytes: 5000,
            ..TlsOptions::default()
        };
        assert!(matches!(validate(&bad_ring), Err(TlsError::Options(_))));
        let me = TlsOptions {
            pids: vec![std::process::id()],
            ..TlsOptions::default()
        };
        assert!(validate(&me).is_ok());
    }

    #[test]
    fn process_info_falls_back_to_the_record() {
        let me = process_info(std::process::id(), "x");
        assert!(!me.command.is_empty());
        let gone = process_info(u32::MAX - 1, "curl");
        assert_eq!(gone.command, "curl");
        assert_eq!(gone.cgroup, None);
    }
}
