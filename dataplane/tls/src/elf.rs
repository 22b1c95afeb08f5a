//! Reading what the capture needs from an ELF file: the TLS functions it defines (with the file
//! offsets uprobes attach at), the libraries it needs, and the marks of TLS stacks the probes
//! cannot see (Go's `crypto/tls`, rustls).
//!
//! Files are memory-mapped and parsed once; everything read from them is treated as untrusted
//! (a malformed file gives an error or an empty answer, never a panic).

use std::fs::File;
use std::io;
use std::path::Path;

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol};

use crate::event::{TlsDirection, TlsLibrary};

/// A function the probes attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSymbol {
    /// Its name.
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
        let symbols: Vec<(ProbeSymbol, u64)> = symbols_of(library)
            .iter()
            .filter_map(|s| file_offset(&elf, s.name).map(|offset| (*s, offset)))
            .collect();
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
        assert_eq!(
            names,
            [
                "SSL_write",
                "SSL_read",
                "SSL_write_ex",
                "SSL_read_ex",
                "SSL_free"
            ]
        );
        assert!(found.symbols.iter().all(|(_, offset)| *offset > 0));
        assert!(info.needed.iter().any(|n| n.starts_with("libcrypto")));
        assert!(!info.go);
    }
}
