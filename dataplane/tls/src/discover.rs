//! Finding the TLS libraries a process uses, and saying plainly when its TLS stack is one the
//! probes cannot see.
//!
//! A process is read through `/proc/PID`: `maps` lists the files it has mapped (shared
//! libraries, including ones it `dlopen`ed), `exe` is its executable, and `root` is its view of
//! the file system, so a library of a process in another mount namespace (a container) is
//! opened as `/proc/PID/root/<path>`. A file is known by its device and inode ([`FileId`]): a
//! uprobe on a file fires in every process that maps it, so each file is attached once.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::elf::library_by_name;

/// A file, by device and inode (as `stat` gives them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The id of the file at `path` (following links).
    ///
    /// # Errors
    /// When the file cannot be `stat`ed.
    pub fn of(path: &Path) -> io::Result<Self> {
        let meta = fs::metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The key of the BPF exe map for this file.
    pub fn exe_key(&self) -> tapline_bpf::tls::TlsExe {
        let major = libc::major(self.dev);
        let minor = libc::minor(self.dev);
        tapline_bpf::tls::TlsExe::new(self.ino, major, minor)
    }
}

/// The distinct files a process maps, as `/proc/PID/maps` names them (absolute paths only,
/// without a ` (deleted)` mark), in order of first appearance.
pub fn mapped_files(maps: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path: the path is what follows five fields.
        let mut rest = line;
        let mut fields = 0;
        while fields < 5 {
            rest = rest.trim_start();
            let Some(end) = rest.find(char::is_whitespace) else {
                rest = "";
                break;
            };
            rest = &rest[end..];
            fields += 1;
        }
        let path = rest.trim();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if path.starts_with('/') && seen.insert(path.to_owned()) {
            files.push(path.to_owned());
        }
    }
    files
}

/// A TLS stack the probes cannot see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unsupported {
    /// Go's `crypto/tls`.
    Go,
    /// Java's JSSE (`libjvm.so` mapped, or the command is `java`).
    Java,
    /// rustls, linked into the executable.
    Rustls,
}

impl Unsupported {
    /// The stack's name, as a person knows it.
    pub fn name(&self) -> &'static str {
        match self {
            Unsupported::Go => "Go crypto/tls",
            Unsupported::Java => "Java TLS (JSSE)",
            Unsupported::Rustls => "rustls",
        }
    }

    /// Why it is not captured, and what supporting it would take, in one sentence.
    pub fn reason(&self) -> &'static str {
        match self {
            Unsupported::Go => {
                "Go crypto/tls is not supported: Go programs do not call a shared TLS library; capturing them would need uprobes on crypto/tls.(*Conn).Write/Read reading Go's register ABI, and probes on each RET instruction instead of return probes, since Go moves goroutine stacks"
            }
            Unsupported::Java => {
                "Java TLS (JSSE) is not supported: the JVM encrypts in Java code, not in a native library; capturing it would need a JVMTI agent in the JVM or probes on the JDK's SSLSocket/SSLEngine methods"
            }
            Unsupported::Rustls => {
                "rustls is not supported: it is compiled into each program, with mangled and often inlined function names that differ per build, so there is no stable symbol to probe"
            }
        }
    }
}

/// The note for process `pid` running `command` whose TLS stack is `stack`.
pub fn unsupported_note(pid: u32, command: &str, stack: Unsupported) -> String {
    format!("pid {pid} ({command}): {}", stack.reason())
}

/// Whether a process whose maps list `files`, running `command`, is a JVM.
pub fn is_java(command: &str, files: &[String]) -> bool {
    command == "java"
        || files
            .iter()
            .any(|f| Path::new(f).file_name().is_some_and(|n| n == "libjvm.so"))
}

/// The mapped files whose names suggest a TLS library.
pub fn tls_candidates(files: &[String]) -> Vec<&str> {
    files
        .iter()
        .map(String::as_str)
        .filter(|f| {
            Path::new(f)
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(library_by_name)
                .is_some()
        })
        .collect()
}

/// `path` as seen from the root of process `pid` (`/proc/PID/root/<path>`).
pub fn in_root(pid: u32, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root")).join(path.trim_start_matches('/'))
}

/// The command name of `pid` (`/proc/PID/comm`), or `None` when it has gone.
pub fn command_of(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_owned())
}

/// The cgroup (v2) path of `pid` (`/proc/PID/cgroup`, the `0::` line; else the first line's
/// path).
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup_path(&text)
}

/// The cgroup path in the text of `/proc/PID/cgroup`.
pub fn cgroup_path(text: &str) -> Option<String> {
    let path_of = |line: &str| line.splitn(3, ':').nth(2).map(str::to_owned);
    text.lines()
        .find(|l| l.starts_with("0::"))
        .and_then(path_of)
        .or_else(|| text.lines().next().and_then(path_of))
}

/// The ids of every process (`/proc/[0-9]*`).
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    pids
}

/// Folders searched for a library named by `DT_NEEDED`, after the object's own run path.
pub const LIBRARY_DIRS: [&str; 8] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/local/lib64",
];

/// The TLS libraries installed system-wide, probed up front by a capture of all processes so
/// that processes started later are seen from their first call.
pub const SYSTEM_LIBRARIES: [&str; 4] = [
    "libssl.so.3",
    "libssl.so.1.1",
    "libgnutls.so.30",
    "libgnutls.so.28",
];

/// Finds the library `name` (a `DT_NEEDED` entry) of an object in folder `origin`: in its run
/// path (`$ORIGIN` expanded), then in [`LIBRARY_DIRS`]. Paths are those of the process's own
/// view (`origin` too); each is looked for under `root` (`/`, or `/proc/PID/root` for a
/// process in another mount namespace). Returns the path in the process's view.
pub fn find_library(root: &Path, name: &str, runpath: &[String], origin: &Path) -> Option<PathBuf> {
    let exists = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path)).is_file();
    if name.contains('/') {
        let path = PathBuf::from(name);
        return (path.is_absolute() && exists(&path)).then_some(path);
    }
    let origin = origin.to_string_lossy();
    let mut dirs: Vec<String> = runpath
        .iter()
        .map(|d| d.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        .collect();
    dirs.extend(LIBRARY_DIRS.iter().map(|d| (*d).to_owned()));
    dirs.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_absolute() && exists(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234  /usr/bin/python3.11
7f0000000000-7f0000001000 r-xp 00001000 fd:01 99    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000001000-7f0000002000 r--p 00002000 fd:01 99    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
7f0000003000-7f0000004000 r-xp 00000000 fd:01 100   /opt/my app/libgnutls.so.30 (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
";

    #[test]
    fn maps_give_distinct_files() {
        assert_eq!(
            mapped_files(MAPS),
            [
                "/usr/bin/python3.11",
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/my app/libgnutls.so.30"
            ]
        );
        assert!(mapped_files("garbage\n\n1 2 3 4 5\n").is_empty());
    }

    #[test]
    fn candidates_and_java() {
        let files = mapped_files(MAPS);
        assert_eq!(
            tls_candidates(&files),
            [
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/my app/libgnutls.so.30"
            ]
        );
        assert!(!is_java("python3", &files));
        assert!(is_java("java", &[]));
        assert!(is_java(
            "app",
            &["/usr/lib/jvm/java-17/lib/server/libjvm.so".to_owned()]
        ));
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(
            cgroup_path("0::/system.slice/nginx.service\n").as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(cgroup_path("12:pids:/a\n0::/b\n").as_deref(), Some("/b"));
        assert_eq!(cgroup_path("1:name=x:/c\n").as_deref(), Some("/c"));
        assert_eq!(cgroup_path(""), None);
    }

    #[test]
    fn roots_and_notes() {
        assert_eq!(
            in_root(7, "/usr/lib/libssl.so.3"),
            PathBuf::from("/proc/7/root/usr/lib/libssl.so.3")
        );
        let note = unsupported_note(4242, "server", Unsupported::Go);
        assert!(note.starts_with("pid 4242 (server): Go crypto/tls is not supported"));
    }

    #[test]
    fn libraries_are_found_in_the_run_path_first() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        fs::create_dir(&lib).unwrap();
        fs::write(lib.join("libssl.so.3"), b"x").unwrap();
        let found = find_library(
            Path::new("/"),
            "libssl.so.3",
            &["$ORIGIN/lib".to_owned()],
            dir.path(),
        );
        assert_eq!(found, Some(lib.join("libssl.so.3")));
        assert_eq!(
            find_library(Path::new("/"), "libnothing-here.so.9", &[], dir.path()),
            None
        );
    }
}
