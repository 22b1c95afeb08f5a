//! Loading the TLS programs and attaching them: the tracepoints once, the uprobes once per
//! library file.

use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::path::Path;

use aya::Ebpf;
use aya::programs::uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope};
use aya::programs::{TracePoint, UProbe};
use tapline_bpf::tls::{self as abi, entry_cookie, names};

use crate::elf::{FoundLibrary, SymbolRole};
use crate::error::TlsError;
use crate::event::{TlsDirection, TlsLibrary};

/// The uprobe programs of the object.
const UPROBES: [&str; 3] = [
    names::ENTER_PROGRAM,
    names::EXIT_PROGRAM,
    names::CLOSE_PROGRAM,
];

/// The tracepoint programs and where each attaches (`category`, `name`); the exec one comes
/// last and is attached only when exec events are wanted.
const TRACEPOINTS: [(&str, &str, &str); 5] = [
    (names::ACCEPT_EXIT_PROGRAM, "syscalls", "sys_exit_accept"),
    (names::ACCEPT_EXIT_PROGRAM, "syscalls", "sys_exit_accept4"),
    (
        names::CONNECT_ENTER_PROGRAM,
        "syscalls",
        "sys_enter_connect",
    ),
    (names::CONNECT_EXIT_PROGRAM, "syscalls", "sys_exit_connect"),
    (names::EXEC_PROGRAM, "sched", "sched_process_exec"),
];

/// Loads every program of the object into the kernel (each is verified here).
///
/// # Errors
/// When the kernel refuses a program: privilege, or the verifier's reasons.
pub fn load_programs(ebpf: &mut Ebpf) -> Result<(), TlsError> {
    for name in UPROBES {
        uprobe(ebpf, name)?
            .load()
            .map_err(|e| TlsError::classify(format!("loading {name}"), &e))?;
    }
    let mut loaded = Vec::new();
    for name in std::iter::once(names::SYS_ENTER_PROGRAM)
        .chain(TRACEPOINTS.iter().map(|(program, _, _)| *program))
    {
        if loaded.contains(&name) {
            continue;
        }
        tracepoint(ebpf, name)?
            .load()
            .map_err(|e| TlsError::classify(format!("loading {name}"), &e))?;
        loaded.push(name);
    }
    Ok(())
}

/// Attaches the syscall tracepoints, and the exec one when `exec` is set.
///
/// # Errors
/// When tracefs is missing and cannot be mounted, or the kernel refuses an attachment.
pub fn attach_tracepoints(ebpf: &mut Ebpf, exec: bool) -> Result<(), TlsError> {
    let sys_enter = names::SYS_ENTER_TRACEPOINTS
        .iter()
        .map(|name| (names::SYS_ENTER_PROGRAM, "syscalls", *name));
    for (program, category, name) in sys_enter.chain(TRACEPOINTS) {
        if program == names::EXEC_PROGRAM && !exec {
            continue;
        }
        tracepoint(ebpf, program)?
            .attach(category, name)
            .map_err(|e| {
                TlsError::classify(format!("attaching {program} to {category}/{name}"), &e)
            })?;
    }
    Ok(())
}

/// Attaches the uprobes to the functions of `found` in the file at `path`, for process `scope`
/// alone when given (else for every process mapping the file), and returns the names of the
/// functions attached.
///
/// # Errors
/// When the kernel refuses an attachment (the functions attached before it stay attached
/// until the capture is dropped).
pub fn attach_library(
    ebpf: &mut Ebpf,
    path: &Path,
    found: &FoundLibrary,
    scope: Option<u32>,
) -> Result<Vec<&'static str>, TlsError> {
    let scope = || {
        scope
            .and_then(NonZeroU32::new)
            .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess)
    };
    let library = match found.library {
        TlsLibrary::OpenSsl => abi::LIB_OPENSSL,
        TlsLibrary::GnuTls => abi::LIB_GNUTLS,
    };
    let mut attached = Vec::new();
    for (symbol, offset) in &found.symbols {
        let action = || {
            format!(
                "attaching a uprobe to {} in {}",
                symbol.name,
                path.display()
            )
        };
        let location = || UProbeAttachLocation::AbsoluteOffset(*offset);
        match symbol.role {
            SymbolRole::Data { direction, ex } => {
                let direction = match direction {
                    TlsDirection::Sent => abi::DIR_SENT,
                    TlsDirection::Received => abi::DIR_RECEIVED,
                };
                let point = UProbeAttachPoint {
                    location: location(),
                    cookie: Some(entry_cookie(library, direction, ex)),
                };
                uprobe(ebpf, names::ENTER_PROGRAM)?
                    .attach(point, path, scope())
                    .map_err(|e| TlsError::classify(action(), &e))?;
                uprobe(ebpf, names::EXIT_PROGRAM)?
                    .attach(location(), path, scope())
                    .map_err(|e| TlsError::classify(action(), &e))?;
            }
            SymbolRole::Close => {
                let point = UProbeAttachPoint {
                    location: location(),
                    cookie: Some(u64::from(library)),
                };
                uprobe(ebpf, names::CLOSE_PROGRAM)?
                    .attach(point, path, scope())
                    .map_err(|e| TlsError::classify(action(), &e))?;
            }
        }
        attached.push(symbol.name);
    }
    Ok(attached)
}

/// Unloads every program (detaching it everywhere); the maps stay readable.
///
/// # Errors
/// The first refusal; the other programs are unloaded all the same.
pub fn unload_programs(ebpf: &mut Ebpf) -> Result<(), TlsError> {
    let mut first_error = None;
    let all = UPROBES
        .into_iter()
        .chain(std::iter::once(names::SYS_ENTER_PROGRAM))
        .chain(TRACEPOINTS.iter().map(|(program, _, _)| *program));
    for name in all {
        let result = match ebpf.program_mut(name) {
            Some(aya::programs::Program::UProbe(p)) if p.fd().is_ok() => p.unload(),
            Some(aya::programs::Program::TracePoint(p)) if p.fd().is_ok() => p.unload(),
            _ => Ok(()),
        };
        if let Err(e) = result {
            first_error.get_or_insert(TlsError::classify(format!("detaching {name}"), &e));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Makes sure tracefs is mounted (aya finds tracepoints through it), mounting it at
/// `/sys/kernel/tracing` when it is not; returns a note when it mounted it.
///
/// # Errors
/// When it is missing and cannot be mounted.
pub fn ensure_tracefs() -> Result<Option<String>, TlsError> {
    // A folder this process may not read is taken as mounted: aya will tell if it is not.
    let mounted = |dir: &str| match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
    };
    if mounted("/sys/kernel/tracing") || mounted("/sys/kernel/debug/tracing") {
        return Ok(None);
    }
    let target = "/sys/kernel/tracing";
    let (Ok(source), Ok(dir), Ok(kind)) = (
        CString::new("tracefs"),
        CString::new(target),
        CString::new("tracefs"),
    ) else {
        return Ok(None);
    };
    // SAFETY: every pointer is a valid NUL-terminated string; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            kind.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let error = io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => TlsError::Privilege {
                action: format!("mounting tracefs at {target} (the syscall tracepoints need it)"),
                source: error,
            },
            _ => TlsError::Kernel {
                action: format!("mounting tracefs at {target}"),
                feature: "tracefs (CONFIG_TRACING)",
                source: error,
            },
        });
    }
    Ok(Some(format!(
        "mounted tracefs at {target}: the syscall tracepoints are found through it"
    )))
}

/// The uprobe program `name`.
fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut UProbe, TlsError> {
    let program = ebpf.program_mut(name).ok_or_else(|| missing(name))?;
    program
        .try_into()
        .map_err(|e| TlsError::classify(format!("opening {name}"), &e))
}

/// The tracepoint program `name`.
fn tracepoint<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut TracePoint, TlsError> {
    let program = ebpf.program_mut(name).ok_or_else(|| missing(name))?;
    program
        .try_into()
        .map_err(|e| TlsError::classify(format!("opening {name}"), &e))
}

/// A map or program missing from the object (a build problem).
pub fn missing(name: &str) -> TlsError {
    TlsError::Ebpf {
        action: "opening the TLS object".into(),
        message: format!("{name} missing from the object"),
    }
}
