//! Where environments live on the host, and how they are named.
//!
//! - `/run/tapline/netns/NAME`: the namespace, a bind mount of its nsfs file (as `ip netns`
//!   keeps them under `/run/netns`), so it outlives the thread that made it;
//! - `/run/tapline/env/NAME/`: the environment's folder, made first (by renaming a folder
//!   whose state file is already written, so a half-made environment is never seen without
//!   its owner): `state.json`, the `hosts` and `resolv.conf` processes inside see, logs.

use std::path::{Path, PathBuf};

/// The root of everything tapline keeps at run time.
pub const RUN_DIR: &str = "/run/tapline";
/// The folder of namespace files.
pub const NETNS_DIR: &str = "/run/tapline/netns";
/// The folder of environment folders.
pub const ENV_DIR: &str = "/run/tapline/env";
/// The state file's name inside an environment's folder.
pub const STATE_FILE: &str = "state.json";
/// Prefix of an environment folder still being made (renamed when complete).
pub const MAKING_PREFIX: &str = ".making-";
/// The longest environment name.
pub const MAX_NAME: usize = 48;

/// The namespace file of environment `name`.
pub fn netns_file(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The folder of environment `name`.
pub fn env_dir(name: &str) -> PathBuf {
    Path::new(ENV_DIR).join(name)
}

/// Checks a name prefix: 1 to 24 of `a-z`, `0-9` and `-`, starting with a letter.
///
/// # Errors
/// A message naming the prefix and what is allowed.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 24
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "environment name prefix {prefix:?}: expected 1 to 24 of a-z, 0-9 and -, starting with a letter"
        ))
    }
}

/// Whether `name` could be an environment's name (a safe single path component).
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The host-side and namespace-side interface names of the `index`-th veth pair of
/// environment `name`: `tlh` / `tle` and eight hex digits of a hash of both (15 bytes at most,
/// as the kernel allows), so concurrent environments do not collide.
pub fn veth_names(name: &str, index: u32) -> (String, String) {
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes().chain(index.to_le_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (format!("tlh{hash:08x}"), format!("tle{hash:08x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("run").is_ok());
        assert!(check_prefix("job-7").is_ok());
        for bad in ["", "Run", "7run", "a/b", "a.b", &"x".repeat(25)] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_are_single_components() {
        assert!(is_env_name("run-1234-0"));
        for bad in ["", ".making-run-1", "a/b", "..", &"x".repeat(49)] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn veth_names_fit_and_differ() {
        let (h, e) = veth_names("run-1234-0", 0);
        assert!(h.len() <= 15 && e.len() <= 15);
        assert_eq!(&h[3..], &e[3..]);
        assert_ne!(veth_names("run-1234-0", 1).0, h);
        assert_ne!(veth_names("run-1234-1", 0).0, h);
        assert_eq!(veth_names("run-1234-0", 0).0, h);
    }
}
