//! Which files a capture probes: the processes and executables it was given, every process
//! (`--tls`), and processes as they start; and the notes that say what was found.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::attach;
use crate::capture::TlsCapture;
use crate::discover::{
    FileId, SYSTEM_LIBRARIES, Unsupported, all_pids, command_of, find_library, in_root, is_java,
    mapped_files, tls_candidates, unsupported_note,
};
use crate::elf::{self, ElfInfo, library_by_name};
use crate::error::TlsError;

/// When a new process is looked at again after it started: the libraries it loads late
/// (`dlopen`, as Python loads libssl) show in its maps only then.
const RESCAN_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// How often the `--pid` processes are looked at again.
const PID_RESCAN: Duration = Duration::from_secs(2);

/// Most rescans waiting; older ones are dropped past it.
const MAX_RESCANS: usize = 4096;

/// Most libraries followed through `DT_NEEDED` from one executable.
const MAX_NEEDED: usize = 128;

/// Most ELF files remembered before the cache is cleared.
const MAX_ELF_CACHE: usize = 4096;

impl TlsCapture {
    /// Probes what the options select (at start).
    pub(crate) fn attach_selected(&mut self) -> Result<(), TlsError> {
        if self.options.all_processes {
            for name in SYSTEM_LIBRARIES {
                if let Some(path) = find_library(Path::new("/"), name, &[], Path::new("/")) {
                    let shown = path.display().to_string();
                    self.attach_path(&path, &shown, None)?;
                }
            }
            for pid in all_pids() {
                if pid != std::process::id() {
                    self.scan_process(pid, false)?;
                }
            }
        }
        for pid in self.options.pids.clone() {
            self.scan_process(pid, true)?;
        }
        for binary in self.options.binaries.clone() {
            self.scan_binary(&binary)?;
        }
        Ok(())
    }

    /// Probes the TLS libraries process `pid` maps and notes a TLS stack it cannot see;
    /// `targeted` when the process was named (`--pid`): then having no TLS at all is noted too.
    pub(crate) fn scan_process(&mut self, pid: u32, targeted: bool) -> Result<(), TlsError> {
        let Some(command) = command_of(pid) else {
            if targeted {
                self.note_once(pid, "gone", format!("pid {pid} has exited"));
            }
            return Ok(());
        };
        let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return Ok(());
        };
        let files = mapped_files(&maps);
        if files.is_empty() {
            return Ok(()); // a kernel thread
        }
        let mut found = false;
        let mut unsupported = false;
        let exe_open = PathBuf::from(format!("/proc/{pid}/exe"));
        let exe_shown = fs::read_link(&exe_open)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| command.clone());
        let mut stacks = Vec::new();
        let exe_id = FileId::of(&exe_open).ok();
        if let Some(id) = exe_id {
            let info = self.elf_info(id, &exe_open, true);
            if !info.libraries.is_empty() {
                found |= self.attach_path(&exe_open, &exe_shown, Some((pid, &command)))?;
            }
            stacks = unsupported_stacks(&info);
        }
        if is_java(&command, &files) {
            stacks.push(Unsupported::Java);
        }
        for lib in tls_candidates(&files) {
            found |= self.attach_path(&in_root(pid, lib), lib, Some((pid, &command)))?;
        }
        if self.reported.is_own(pid, exe_id) {
            stacks.clear();
        }
        for stack in stacks {
            unsupported = true;
            let exe = exe_id.map(|id| (id, exe_shown.as_str()));
            self.note_unsupported((pid, &command), exe, stack, targeted, found);
        }
        if targeted && !found && !unsupported {
            self.note_once(
                pid,
                "none",
                format!(
                    "pid {pid} ({command}): no TLS library found: it maps no libssl or libgnutls and {exe_shown} defines no SSL_write or gnutls_record_send; nothing to capture unless it loads one later"
                ),
            );
        }
        Ok(())
    }

    /// Probes the TLS library linked into `binary` or the ones it links against, and the
    /// libraries mapped by processes running it.
    fn scan_binary(&mut self, binary: &Path) -> Result<(), TlsError> {
        let shown = binary.display().to_string();
        let id = FileId::of(binary).map_err(|source| TlsError::Binary {
            path: binary.to_owned(),
            source,
        })?;
        let before = self.attached.len();
        let info = self.elf_info(id, binary, true);
        if !info.libraries.is_empty() {
            self.attach_path(binary, &shown, None)?;
        }
        let mut unsupported = false;
        let stacks = if self.reported.is_own(0, Some(id)) {
            Vec::new()
        } else {
            unsupported_stacks(&info)
        };
        for stack in stacks {
            unsupported = true;
            self.notes
                .push(format!("binary {shown}: {}", stack.reason()));
        }
        let absolute = fs::canonicalize(binary).unwrap_or_else(|_| binary.to_owned());
        for lib in self.needed_libraries(Path::new("/"), &absolute, &info, &[]) {
            let lib_shown = lib.display().to_string();
            self.attach_path(&lib, &lib_shown, None)?;
        }
        for pid in all_pids() {
            if FileId::of(Path::new(&format!("/proc/{pid}/exe"))).is_ok_and(|p| p == id) {
                self.scan_process(pid, false)?;
            }
        }
        if self.attached.len() == before && !unsupported && !self.attached_has(binary) {
            self.notes.push(format!(
                "binary {shown}: no TLS library found: it defines no SSL_write or gnutls_record_send and links against no libssl or libgnutls; a library it loads at run time (dlopen) is probed when a process running it maps it"
            ));
        }
        Ok(())
    }

    /// Whether the file at `path` is probed.
    fn attached_has(&self, path: &Path) -> bool {
        FileId::of(path).is_ok_and(|id| self.attached.contains_key(&(id, None)))
    }

    /// A process called `execve()`: look at its executable and what it links against now,
    /// and at its maps again a little later.
    pub(crate) fn on_exec(&mut self, pid: u32) -> Result<(), TlsError> {
        if pid == std::process::id() {
            return Ok(());
        }
        self.noted.retain(|(p, _)| *p != pid);
        let exe_open = PathBuf::from(format!("/proc/{pid}/exe"));
        let Ok(id) = FileId::of(&exe_open) else {
            return Ok(()); // already gone
        };
        if !self.options.all_processes && !self.target_exes.contains(&id) {
            return Ok(());
        }
        self.scan_process(pid, false)?;
        if let (Ok(target), Some(command)) = (fs::read_link(&exe_open), command_of(pid)) {
            let info = self.elf_info(id, &exe_open, true);
            let root = PathBuf::from(format!("/proc/{pid}/root"));
            let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let dirs = library_path(&environ);
            for lib in self.needed_libraries(&root, &target, &info, &dirs) {
                let shown = lib.display().to_string();
                self.attach_path(&in_root(pid, &shown), &shown, Some((pid, &command)))?;
            }
        }
        let now = Instant::now();
        for delay in RESCAN_DELAYS {
            self.rescans.push((now + delay, pid));
        }
        if self.rescans.len() > MAX_RESCANS {
            let excess = self.rescans.len() - MAX_RESCANS;
            self.rescans.drain(..excess);
        }
        Ok(())
    }

    /// Looks again at the processes whose time has come.
    pub(crate) fn run_rescans(&mut self) -> Result<(), TlsError> {
        let now = Instant::now();
        let mut due = Vec::new();
        self.rescans.retain(|(at, pid)| {
            if *at <= now {
                due.push(*pid);
                false
            } else {
                true
            }
        });
        if !self.options.pids.is_empty() && now.duration_since(self.last_pid_scan) >= PID_RESCAN {
            self.last_pid_scan = now;
            due.extend(self.options.pids.iter().copied());
        }
        for pid in due {
            self.scan_process(pid, false)?;
        }
        Ok(())
    }

    /// Probes the file at `open` (shown as `shown`) when it defines TLS library functions and
    /// is not probed yet; `who` is the process it was found in. Returns whether the file is
    /// probed now.
    fn attach_path(
        &mut self,
        open: &Path,
        shown: &str,
        who: Option<(u32, &str)>,
    ) -> Result<bool, TlsError> {
        let Ok(id) = FileId::of(open) else {
            return Ok(false);
        };
        // When only named processes are captured, the probes are set for each of them alone:
        // the kernel then writes the breakpoints into their memory only, and other processes
        // using the same library (a local client, other services) do not trap at all.
        let only_pids = !self.options.all_processes && self.options.binaries.is_empty();
        let scope = who.map(|(pid, _)| pid).filter(|_| only_pids);
        if self.attached.contains_key(&(id, scope)) {
            return Ok(true);
        }
        if self.refused.contains(&id) {
            return Ok(false);
        }
        let info = self.elf_info(id, open, false);
        if info.libraries.is_empty() {
            self.refused.insert(id);
            return Ok(false);
        }
        let mut done = Vec::new();
        for found in &info.libraries {
            match attach::attach_library(&mut self.ebpf, open, found, scope) {
                Ok(symbols) => done.push(format!("{}: {}", found.library, symbols.join(", "))),
                Err(e @ TlsError::Privilege { .. }) => return Err(e),
                Err(e) => {
                    self.notes.push(format!(
                        "{shown}: cannot probe its {} functions: {e}",
                        found.library
                    ));
                    self.refused.insert(id);
                    return Ok(false);
                }
            }
        }
        let whose = who
            .map(|(pid, command)| format!(", found in pid {pid} ({command})"))
            .unwrap_or_default();
        self.notes
            .push(format!("probing {shown} ({}){whose}", done.join("; ")));
        self.attached.insert((id, scope), shown.to_owned());
        Ok(true)
    }

    /// The TLS libraries an object links against, directly or through other libraries, found
    /// under `root`; `object` is its path in that view, `dirs` folders searched first
    /// (`LD_LIBRARY_PATH`).
    fn needed_libraries(
        &mut self,
        root: &Path,
        object: &Path,
        info: &ElfInfo,
        dirs: &[String],
    ) -> Vec<PathBuf> {
        let origin = |path: &Path| path.parent().map(Path::to_owned).unwrap_or_default();
        let search =
            |runpath: &[String]| -> Vec<String> { dirs.iter().chain(runpath).cloned().collect() };
        let mut queue =
            VecDeque::from([(origin(object), info.needed.clone(), search(&info.runpath))]);
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        while let Some((dir, needed, runpath)) = queue.pop_front() {
            for name in needed {
                if seen.len() >= MAX_NEEDED || !seen.insert(name.clone()) {
                    continue;
                }
                let Some(path) = find_library(root, &name, &runpath, &dir) else {
                    continue;
                };
                let real = root.join(path.strip_prefix("/").unwrap_or(&path));
                if library_by_name(&name).is_some() {
                    found.push(real);
                    continue;
                }
                let Ok(id) = FileId::of(&real) else { continue };
                let lib = self.elf_info(id, &real, false);
                if !lib.libraries.is_empty() {
                    found.push(real.clone());
                }
                queue.push_back((origin(&path), lib.needed, search(&lib.runpath)));
            }
        }
        found
    }

    /// What the ELF file `id` at `path` tells (read once; `deep` for executables).
    fn elf_info(&mut self, id: FileId, path: &Path, deep: bool) -> ElfInfo {
        if let Some(info) = self.elf_cache.get(&id) {
            return info.clone();
        }
        let info = elf::inspect(path, deep).unwrap_or_default();
        if self.elf_cache.len() >= MAX_ELF_CACHE {
            self.elf_cache.clear();
        }
        self.elf_cache.insert(id, info.clone());
        info
    }

    /// Notes that process `who` (pid, command) running `exe` (its id and path) carries
    /// `stack`: once per named (`targeted`) process, otherwise once per executable, however
    /// many processes run it; `found` when its OpenSSL/GnuTLS calls are probed all the same.
    fn note_unsupported(
        &mut self,
        (pid, command): (u32, &str),
        exe: Option<(FileId, &str)>,
        stack: Unsupported,
        targeted: bool,
        found: bool,
    ) {
        let first_for_exe =
            exe.is_none_or(|(id, shown)| self.reported.record(id, shown, pid, stack));
        let first_for_pid = self.noted.insert((pid, stack.reason()));
        if !(first_for_pid && (first_for_exe || targeted)) {
            return;
        }
        let mut note = unsupported_note(pid, command, stack);
        if found {
            note.push_str(" (its calls to the probed OpenSSL/GnuTLS functions are captured)");
        }
        if let (Some((_, shown)), false) = (exe, targeted) {
            note.push_str(&format!(
                "; executable {shown}: other processes running it are not noted again"
            ));
        }
        self.notes.push(note);
    }

    /// Adds `text` to the notes unless a note of `kind` was given for `pid` already.
    fn note_once(&mut self, pid: u32, kind: &'static str, text: String) {
        if self.noted.insert((pid, kind)) {
            self.notes.push(text);
        }
    }
}

/// The folders of `LD_LIBRARY_PATH` in a process's environment (`/proc/PID/environ`).
fn library_path(environ: &[u8]) -> Vec<String> {
    environ
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"LD_LIBRARY_PATH="))
        .map(|value| {
            String::from_utf8_lossy(value)
                .split(':')
                .filter(|d| d.starts_with('/'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The TLS stacks the probes cannot see that an executable carries.
fn unsupported_stacks(info: &ElfInfo) -> Vec<Unsupported> {
    let mut stacks = Vec::new();
    if info.go && info.go_tls {
        stacks.push(Unsupported::Go);
    }
    if info.rustls && !info.go {
        stacks.push(Unsupported::Rustls);
    }
    stacks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_path_comes_from_the_environment() {
        let environ = b"HOME=/root\0LD_LIBRARY_PATH=/opt/a:relative::/opt/b\0X=1\0";
        assert_eq!(library_path(environ), ["/opt/a", "/opt/b"]);
        assert!(library_path(b"HOME=/root\0").is_empty());
        assert!(library_path(b"").is_empty());
    }

    #[test]
    fn unsupported_stacks_of_an_executable() {
        let go = ElfInfo {
            go: true,
            go_tls: true,
            rustls: true,
            ..ElfInfo::default()
        };
        assert_eq!(unsupported_stacks(&go), [Unsupported::Go]);
        let rust = ElfInfo {
            rustls: true,
            ..ElfInfo::default()
        };
        assert_eq!(unsupported_stacks(&rust), [Unsupported::Rustls]);
        let go_without_tls = ElfInfo {
            go: true,
            ..ElfInfo::default()
        };
        assert!(unsupported_stacks(&go_without_tls).is_empty());
    }
}
