//! TLS plaintext capture: uprobes on the TLS libraries processes use, so tapline sees HTTPS
//! traffic as the applications read and write it, without keys.
//!
//! [`TlsCapture::open`] loads the programs of `tapline_bpf::TLS`, attaches syscall tracepoints
//! (they tie each TLS session to its TCP 4-tuple, without kprobes) and probes:
//!
//! - **OpenSSL 1.1/3 and libraries with its API** (BoringSSL, LibreSSL, copies linked into an
//!   executable): `SSL_write`, `SSL_read`, `SSL_write_ex`, `SSL_read_ex` (entry and return),
//!   and `SSL_free` for the end of a session; where OpenSSL 3's public pairs both call
//!   `ssl_write_internal` / `ssl_read_internal` (found by decoding `SSL_*_ex`), those two are
//!   probed instead, once per direction, because the public functions start with an
//!   instruction the kernel must single-step on every hit;
//! - **GnuTLS**: `gnutls_record_send` (or `gnutls_record_send2`, which it forwards to),
//!   `gnutls_record_recv`, and `gnutls_deinit`.
//!
//! Which files are probed follows [`TlsOptions`]: the libraries a `--pid` process maps (read
//! from `/proc/PID/maps`, opened as `/proc/PID/root/<path>` so containers work), the library
//! linked into a `--binary` or the ones it links against (`DT_NEEDED`, followed through other
//! libraries), or for all processes (`--tls`) the system's libssl/libgnutls, every library any
//! process maps, and, as processes start (an exec tracepoint), theirs. A uprobe is set on a
//! file, so it fires in every process mapping that file: each file is probed once, and
//! filters in the kernel keep only the selected processes' calls; a capture of `--pid`
//! processes alone sets the probes for each of them, so other processes do not trap.
//!
//! [`TlsCapture::drain`] hands on [`TlsEvent`]s: plaintext chunks (at most 16 KiB each; a
//! large call comes as several, none cut off) with the direction, process, thread, session
//! id, 4-tuple, role, cgroup and command; and session ends. Bytes the programs could not copy
//! (ring full, unreadable memory) are counted ([`TlsCounters`]) and reported on the next chunk
//! of the call as `lost`.
//!
//! # TLS stacks that are not captured
//!
//! They are detected and reported in [`TlsCapture::notes`], never silently missed: for a
//! process named with `--pid`, per process; otherwise once per executable (by device and
//! inode), however many processes run it, with their count when the capture is detached.
//! tapline's own process and executable are never reported.
//!
//! - **Go** (`crypto/tls`; a `.go.buildinfo` section and the `crypto/tls.(*Conn).Write`
//!   function). Go does not call a shared library. Supporting it needs uprobes on
//!   `crypto/tls.(*Conn).Write` and `.Read` that read arguments in Go's register ABI (Go 1.17
//!   and later; the stack ABI before), and, since Go moves goroutine stacks, no return probes:
//!   the `RET` instructions of `Read` must be found by disassembling the function and probed
//!   one by one, with the goroutine (not the thread) as the key tying entry to return.
//! - **Java** (`libjvm.so` mapped, or the command `java`). JSSE encrypts in Java code.
//!   Supporting it needs an agent inside the JVM (JVMTI, or a `java.lang.instrument` agent
//!   wrapping `SSLSocket`/`SSLEngine` streams) that hands plaintext to tapline.
//! - **rustls** inside a program (its name in the executable). Its functions are mangled,
//!   generic and often inlined, differently in each build; supporting it needs per-build
//!   symbol discovery (e.g. of `rustls::conn::ConnectionCommon::reader`/`writer`
//!   monomorphizations) or the program's cooperation (a keylog file, `SSLKEYLOGFILE`).
//!
//! A process named with `--pid` that uses no TLS library at all is reported as such.

mod attach;
mod capture;
mod discover;
mod elf;
mod error;
mod event;
mod reported;
mod scan;
pub mod x86;

pub use capture::{
    DEFAULT_RING_BYTES, DRAIN_BATCH, ProcessInfo, TlsCapture, TlsCounters, TlsOptions,
};
pub use discover::{FileId, Unsupported};
pub use elf::{
    ElfInfo, FoundLibrary, ProbeSymbol, SymbolRole, inspect as inspect_elf,
    inspect_bytes as inspect_elf_bytes,
};
pub use error::{PRIVILEGE_HINT, TlsError};
pub use event::{
    DecodeError, Record, TlsDirection, TlsEvent, TlsEventKind, TlsLibrary, TlsRole, decode,
};
pub use tapline_bpf::clock::WallClock;
