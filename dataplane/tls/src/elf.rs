//! Reading what the capture needs from an ELF file: the TLS functions it defines (with the file
//! offsets uprobes attach at), the libraries it needs, and the marks of TLS stacks the probes
//! cannot see (Go's `crypto/tls`, rustls).
//!
//! Where OpenSSL 3's `SSL_read`/`SSL_read_ex` (and the write pair) both call one internal
//! function that starts with an instruction the kernel emulates, that function is probed
//! once in their place (see [`crate::x86`]): a probe on the public functions, which start with
//! `sub $n,%rsp`, is single-stepped on every call.
//!
//! Files are memory-mapped and parsed once; everything read from them is treated as untrusted
//! (a malformed file gives an error or an empty answer, never a panic).

use std::fs::File;
use std::io;
use std::path::Path;

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SectionKind};

use crate::event::{TlsDirection, TlsLibrary};
use crate::x86;

/// A function the probes attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSymbol {
    /// Its name (for an internal function, what it stands for), as the notes show it.
    pub name: &'static str,
    /// What it does.
    pub role: SymbolRole,
}

/// What a probed function does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolRole {
    /// Moves plaintext; `ex` when the length comes back through argument 4.
    Data {
        /// Which way.
        direction: TlsDirection,
        /// Whether the length comes back through a pointer.
        ex: bool,
    },
    /// Frees a session.
    Close,
}

/// The probed functions of each library.
pub const OPENSSL_SYMBOLS: [ProbeSymbol; 5] = [
    data("SSL_write", TlsDirection::Sent, false),
    data("SSL_read", TlsDirection::Received, false),
    data("SSL_write_ex", TlsDirection::Sent, true),
    data("SSL_read_ex", TlsDirection::Received, true),
    ProbeSymbol {
        name: "SSL_free",
        role: SymbolRole::Close,
    },
];

/// The probed functions of GnuTLS.
pub const GNUTLS_SYMBOLS: [ProbeSymbol; 3] = [
    data("gnutls_record_send", TlsDirection::Sent, false),
    data("gnutls_record_recv", TlsDirection::Received, false),
    ProbeSymbol {
        name: "gnutls_deinit",
        role: SymbolRole::Close,
    },
];

/// OpenSSL 3's internal write function, probed for `SSL_write` and `SSL_write_ex` when both
/// call it; its arguments and result are those of `SSL_write_ex`.
pub const OPENSSL_WRITE_INTERNAL: ProbeSymbol = data(
    "ssl_write_internal (for SSL_write, SSL_write_ex)",
    TlsDirection::Sent,
    true,
);

/// OpenSSL 3's internal read function, probed for `SSL_read` and `SSL_read_ex` when both call
/// it; its arguments and result are those of `SSL_read_ex`.
pub const OPENSSL_READ_INTERNAL: ProbeSymbol = data(
    "ssl_read_internal (for SSL_read, SSL_read_ex)",
    TlsDirection::Received,
    true,
);

/// GnuTLS's `gnutls_record_send2`, probed in place of `gnutls_record_send` when that only
/// hands its call on to it (GnuTLS 3.6.3 and later); the same arguments and result.
pub const GNUTLS_SEND2: ProbeSymbol = data(
    "gnutls_record_send2 (for gnutls_record_send)",
    TlsDirection::Sent,
    false,
);

const fn data(name: &'static str, direction: TlsDirection, ex: bool) -> ProbeSymbol {
    ProbeSymbol {
        name,
        role: SymbolRole::Data { direction, ex },
    }
}

/// The probed functions of `library`.
pub fn symbols_of(library: TlsLibrary) -> &'static [ProbeSymbol] {
    match library {
        TlsLibrary::OpenSsl => &OPENSSL_SYMBOLS,
        TlsLibrary::GnuTls => &GNUTLS_SYMBOLS,
    }
}

/// A TLS library's functions found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLibrary {
    /// Which library's API.
    pub library: TlsLibrary,
    /// The probed functions it defines, with their file offsets.
    pub symbols: Vec<(ProbeSymbol, u64)>,
}

/// What an ELF file tells the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// TLS libraries whose functions the file defines (a shared TLS library, or an
    /// executable with one linked in).
    pub libraries: Vec<FoundLibrary>,
    /// `DT_NEEDED`: the libraries it links against.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` entries, `:`-separated lists split.
    pub runpath: Vec<String>,
    /// A Go binary (`.go.buildinfo` section).
    pub go: bool,
    /// Go's `crypto/tls` is linked in.
    pub go_tls: bool,
    /// rustls is linked in (its name appears in the file).
    pub rustls: bool,
}

/// Reads `path` (see [`inspect_bytes`]); `deep` also searches the bytes for Go's `crypto/tls`
/// and rustls (for executables; libraries skip it).
///
/// # Errors
/// When the file cannot be opened or mapped. A file that is not a 64-bit ELF gives an empty
/// [`ElfInfo`].
pub fn inspect(path: &Path, deep: bool) -> io::Result<ElfInfo> {
    let file = File::open(path)?;
    // SAFETY: the map is read-only and private; a file changed underneath gives wrong answers
    // (parsed defensively), not undefined behaviour in this process's own data.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(inspect_bytes(&map, deep))
}

/// What the ELF image `bytes` tells the capture.
pub fn inspect_bytes(bytes: &[u8], deep: bool) -> ElfInfo {
    let mut info = ElfInfo::default();
    let Ok(elf) = ElfFile64::<Endianness>::parse(bytes) else {
        return info;
    };
    for library in [TlsLibrary::OpenSsl, TlsLibrary::GnuTls] {
        let mut symbols: Vec<(ProbeSymbol, u64)> = symbols_of(library)
            .iter()
            .filter_map(|s| file_offset(&elf, s.name).map(|offset| (*s, offset)))
            .collect();
        for (symbol, offset) in &mut symbols {
            if symbol.role == SymbolRole::Close {
                *offset = past_null_check(&elf, symbol.name, *offset);
            }
        }
        if library == TlsLibrary::GnuTls
            && let Some(offset) = send2_for_send(&elf)
        {
            symbols.retain(|(s, _)| s.name != "gnutls_record_send");
            symbols.push((GNUTLS_SEND2, offset));
        }
        if library == TlsLibrary::OpenSsl {
            for (plain, ex, internal) in [
                ("SSL_write", "SSL_write_ex", OPENSSL_WRITE_INTERNAL),
                ("SSL_read", "SSL_read_ex", OPENSSL_READ_INTERNAL),
            ] {
                if let Some(offset) = shared_internal(&elf, plain, ex) {
                    symbols.retain(|(s, _)| s.name != plain && s.name != ex);
                    symbols.push((internal, offset));
                }
            }
        }
        let has_data = symbols
            .iter()
            .any(|(s, _)| matches!(s.role, SymbolRole::Data { .. }));
        if has_data {
            info.libraries.push(FoundLibrary { library, symbols });
        }
    }
    read_dynamic(&elf, &mut info);
    info.go = elf.section_by_name(".go.buildinfo").is_some();
    if deep {
        info.go_tls = memchr::memmem::find(bytes, b"crypto/tls.(*Conn).Write").is_some();
        info.rustls = memchr::memmem::find(bytes, b"rustls").is_some();
    }
    info
}

/// The file offset of the defined function `name`, from `.dynsym` or `.symtab`.
fn file_offset(elf: &ElfFile64<'_, Endianness>, name: &str) -> Option<u64> {
    let symbol = elf
        .dynamic_symbols()
        .chain(elf.symbols())
        .find(|s| s.is_definition() && s.name().is_ok_and(|n| n == name))?;
    let section = elf.section_by_index(symbol.section_index()?).ok()?;
    let (offset, size) = section.file_range()?;
    let within = symbol.address().checked_sub(section.address())?;
    if within >= size {
        return None;
    }
    let at = offset.checked_add(within)?;
    (at < elf.data().len() as u64).then_some(at)
}

/// The address of the defined function `name`.
fn address(elf: &ElfFile64<'_, Endianness>, name: &str) -> Option<u64> {
    elf.dynamic_symbols()
        .chain(elf.symbols())
        .find(|s| s.is_definition() && s.name().is_ok_and(|n| n == name))
        .map(|s| s.address())
}

/// The code at `address` up to the end of its executable section, with its file offset.
fn code_at<'a>(elf: &ElfFile64<'a, Endianness>, address: u64) -> Option<(&'a [u8], u64)> {
    let section = elf.sections().find(|s| {
        s.kind() == SectionKind::Text && address >= s.address() && address - s.address() < s.size()
    })?;
    let (offset, size) = section.file_range()?;
    let within = address.checked_sub(section.address())?;
    let at = offset.checked_add(within)?;
    let end = offset.checked_add(size)?;
    let code = elf
        .data()
        .get(usize::try_from(at).ok()?..usize::try_from(end).ok()?)?;
    Some((code, at))
}

/// Where to probe the close function `name` at file offset `offset`: past its null check when
/// that lands on an instruction the kernel emulates (see [`x86::cheap_entry_past_null_check`]),
/// else `offset`.
fn past_null_check(elf: &ElfFile64<'_, Endianness>, name: &str, offset: u64) -> u64 {
    address(elf, name)
        .and_then(|at| code_at(elf, at))
        .filter(|(_, code_offset)| *code_offset == offset)
        .and_then(|(code, _)| x86::cheap_entry_past_null_check(code))
        .and_then(|skip| offset.checked_add(u64::try_from(skip).ok()?))
        .unwrap_or(offset)
}

/// The file offset of `gnutls_record_send2`, to probe in place of `gnutls_record_send`, when
/// the latter only zeroes send2's extra arguments and jumps (through the PLT, so the target is
/// taken from the symbol, not the jump) and send2 starts with an instruction the kernel
/// emulates.
fn send2_for_send(elf: &ElfFile64<'_, Endianness>) -> Option<u64> {
    let (send, _) = code_at(elf, address(elf, "gnutls_record_send")?)?;
    if !x86::zeroes_then_jumps(send) {
        return None;
    }
    let (send2, offset) = code_at(elf, address(elf, "gnutls_record_send2")?)?;
    let skip = u64::try_from(x86::cheap_entry(send2)?).ok()?;
    offset.checked_add(skip)
}

/// The file offset to probe for both `plain` (`SSL_read`) and `ex` (`SSL_read_ex`): the
/// internal function `ex` hands its arguments to untouched and `plain` calls too, when its
/// first instruction is one the kernel emulates. `None` when any of that does not hold.
fn shared_internal(elf: &ElfFile64<'_, Endianness>, plain: &str, ex: &str) -> Option<u64> {
    let ex_at = address(elf, ex)?;
    let plain_at = address(elf, plain)?;
    let (ex_code, _) = code_at(elf, ex_at)?;
    let target = ex_at.checked_add_signed(x86::forwarded_call(ex_code)?)?;
    let (plain_code, _) = code_at(elf, plain_at)?;
    let relative = i64::try_from(i128::from(target) - i128::from(plain_at)).ok()?;
    if !x86::calls(plain_code, relative) {
        return None;
    }
    let (target_code, target_offset) = code_at(elf, target)?;
    let skip = u64::try_from(x86::cheap_entry(target_code)?).ok()?;
    target_offset.checked_add(skip)
}

/// Fills `needed` and `runpath` from the dynamic section.
fn read_dynamic(elf: &ElfFile64<'_, Endianness>, info: &mut ElfInfo) {
    let Ok(table) = elf
        .elf_section_table()
        .dynamic_table(elf.endian(), elf.data())
    else {
        return;
    };
    for entry in table.iter() {
        let tag = entry.tag;
        let Ok(text) = table.string(entry) else {
            continue;
        };
        let text = String::from_utf8_lossy(text);
        match tag {
            object::elf::DT_NEEDED => info.needed.push(text.into_owned()),
            object::elf::DT_RUNPATH | object::elf::DT_RPATH => info
                .runpath
                .extend(text.split(':').filter(|p| !p.is_empty()).map(str::to_owned)),
            _ => {}
        }
    }
}

/// The library a file name suggests, before its symbols are read: `libssl.so.3` is OpenSSL,
/// `libgnutls.so.30` GnuTLS.
pub fn library_by_name(file_name: &str) -> Option<TlsLibrary> {
    let is_lib = |stem: &str| {
        file_name
            .strip_prefix(stem)
            .is_some_and(|rest| rest.starts_with(".so") || rest.starts_with('-'))
    };
    if is_lib("libssl") || is_lib("libboringssl") {
        Some(TlsLibrary::OpenSsl)
    } else if is_lib("libgnutls") {
        Some(TlsLibrary::GnuTls)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert_eq!(library_by_name("libssl.so.3"), Some(TlsLibrary::OpenSsl));
        assert_eq!(library_by_name("libssl-3.so"), Some(TlsLibrary::OpenSsl));
        assert_eq!(library_by_name("libgnutls.so.30"), Some(TlsLibrary::GnuTls));
        assert_eq!(
            library_by_name("libgnutls-dane.so.0"),
            Some(TlsLibrary::GnuTls)
        );
        assert_eq!(library_by_name("libssl3.so"), None);
        assert_eq!(library_by_name("libcrypto.so.3"), None);
    }

    /// How many internal functions replace a public pair in `names`.
    fn found_internal(names: &[&str]) -> usize {
        names.iter().filter(|n| n.contains("_internal")).count()
    }

    #[test]
    fn the_system_gnutls_is_probed_where_it_is_cheap() {
        let path = Path::new("/lib/x86_64-linux-gnu/libgnutls.so.30");
        if !path.exists() {
            eprintln!("SKIPPED: no {}", path.display());
            return;
        }
        let info = inspect(path, false).unwrap();
        let found = info
            .libraries
            .iter()
            .find(|l| l.library == TlsLibrary::GnuTls)
            .unwrap();
        eprintln!("probed: {:x?}", found.symbols);
        let names: Vec<&str> = found.symbols.iter().map(|(s, _)| s.name).collect();
        assert!(names.contains(&"gnutls_record_recv") && names.contains(&"gnutls_deinit"));
        // Send once: the forwarder or the function it forwards to.
        assert_eq!(
            names.contains(&"gnutls_record_send"),
            !names.contains(&GNUTLS_SEND2.name),
            "{names:?}"
        );
    }

    #[test]
    fn garbage_is_not_an_elf() {
        assert_eq!(inspect_bytes(b"\x7fELF garbage", true), ElfInfo::default());
        assert_eq!(inspect_bytes(&[], false), ElfInfo::default());
    }

    #[test]
    fn the_system_libssl_defines_the_probed_functions() {
        let path = Path::new("/lib/x86_64-linux-gnu/libssl.so.3");
        if !path.exists() {
            eprintln!("SKIPPED: no {}", path.display());
            return;
        }
        let info = inspect(path, false).unwrap();
        assert_eq!(info.libraries.len(), 1);
        let found = &info.libraries[0];
        assert_eq!(found.library, TlsLibrary::OpenSsl);
        let names: Vec<&str> = found.symbols.iter().map(|(s, _)| s.name).collect();
        eprintln!("probed: {:x?}", found.symbols);
        let bytes = std::fs::read(path).unwrap();
        let free = found.symbols.iter().find(|(s, _)| s.name == "SSL_free");
        let free = usize::try_from(free.unwrap().1).unwrap();
        assert!(x86::cheap_entry_past_null_check(&bytes[free..]) == Some(0));
        assert!(names.contains(&"SSL_free"), "{names:?}");
        // Each direction is probed once: through the internal function or the public pair.
        for (plain, ex, internal) in [
            ("SSL_write", "SSL_write_ex", OPENSSL_WRITE_INTERNAL),
            ("SSL_read", "SSL_read_ex", OPENSSL_READ_INTERNAL),
        ] {
            let shared = found.symbols.iter().find(|(s, _)| *s == internal);
            if let Some((_, offset)) = shared {
                assert!(!names.contains(&plain) && !names.contains(&ex), "{names:?}");
                let at = usize::try_from(*offset).unwrap();
                assert!(x86::cheap_entry(&bytes[at..]).is_some());
            } else {
                assert!(names.contains(&plain) && names.contains(&ex), "{names:?}");
            }
        }
        assert_eq!(names.len(), 1 + 2 * 2 - found_internal(&names));
        assert!(found.symbols.iter().all(|(_, offset)| *offset > 0));
        assert!(info.needed.iter().any(|n| n.starts_with("libcrypto")));
        assert!(!info.go);
    }
}
