//! Compiles every `src/*.bpf.c` into an eBPF object in `OUT_DIR` with Debian's `clang-19`.
//!
//! The flags are the ones measured to pass this kernel's verifier (see EBPF-FACTS.md):
//! `-target bpf -D__TARGET_ARCH_x86 -O2 -g -mcpu=v3`. Headers come from `linux-libc-dev`
//! (`<linux/bpf.h>`) and `libbpf-dev` (`<bpf/bpf_helpers.h>`); a missing tool or header fails
//! the build with a message naming the Debian package to install.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C compiler, overridable for other distributions.
const DEFAULT_CLANG: &str = "clang-19";

fn main() {
    if let Err(message) = run() {
        // A build script reports failure through a panic-free exit with the reason on stderr.
        eprintln!("error: tapline-bpf: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let src_dir = manifest_dir.join("src");
    let include_dir = manifest_dir.join("include");
    let clang = env::var("TAPLINE_CLANG").unwrap_or_else(|_| DEFAULT_CLANG.to_owned());

    println!("cargo:rerun-if-env-changed=TAPLINE_CLANG");
    println!("cargo:rerun-if-changed={}", src_dir.display());
    if include_dir.is_dir() {
        println!("cargo:rerun-if-changed={}", include_dir.display());
    }

    check_headers()?;
    let sources = bpf_sources(&src_dir)?;
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
        compile(&clang, source, &include_dir, &out_dir)?;
    }
    Ok(())
}

/// Lists `*.bpf.c` files in `dir`, sorted so builds are reproducible.
fn bpf_sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut sources = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        let is_bpf_c = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".bpf.c"));
        if is_bpf_c {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// Fails early, naming the package, when the kernel or libbpf headers are missing.
fn check_headers() -> Result<(), String> {
    let needed = [
        ("/usr/include/bpf/bpf_helpers.h", "libbpf-dev"),
        ("/usr/include/linux/bpf.h", "linux-libc-dev"),
    ];
    for (header, package) in needed {
        if !Path::new(header).exists() {
            return Err(format!(
                "{header} not found: install the Debian package `{package}` \
                 (apt-get install {package}, or run tests/setup.sh)"
            ));
        }
    }
    Ok(())
}

/// Compiles one `NAME.bpf.c` into `OUT_DIR/NAME.bpf.o`.
fn compile(clang: &str, source: &Path, include_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let file_name = source
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no UTF-8 file name", source.display()))?;
    let stem = file_name.trim_end_matches(".c");
    let object = out_dir.join(format!("{stem}.o"));
    let multiarch = format!("/usr/include/{}-linux-gnu", target_arch_dir());

    let output = Command::new(clang)
        .args([
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-O2",
            "-g",
            "-mcpu=v3",
        ])
        .args(["-Wall", "-Werror"])
        .arg("-I")
        .arg(include_dir)
        .arg("-I")
        .arg(&multiarch)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(&object)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "`{clang}` not found: install the Debian package `clang-19` \
                     (apt-get install clang-19 libbpf-dev, or run tests/setup.sh), \
                     or point TAPLINE_CLANG at a clang that targets bpf"
                )
            } else {
                format!("cannot run `{clang}`: {e}")
            }
        })?;
    if !output.status.success() {
        return Err(format!(
            "`{clang}` failed on {} ({}):\n{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The Debian multiarch include folder of the host (for `<asm/types.h>`).
fn target_arch_dir() -> &'static str {
    match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64",
        _ => "x86_64",
    }
}
