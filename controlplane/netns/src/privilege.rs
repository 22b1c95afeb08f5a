//! Whether this process may make environments: CAP_SYS_ADMIN (namespaces, mounts) and
//! CAP_NET_ADMIN (links, addresses, routes) in its effective set.

use crate::error::NetnsError;

/// Bit of CAP_NET_ADMIN in a capability set.
const CAP_NET_ADMIN: u32 = 12;
/// Bit of CAP_SYS_ADMIN in a capability set.
const CAP_SYS_ADMIN: u32 = 21;

/// The capabilities environments need that this process lacks, by name (empty when none).
pub fn missing_capabilities() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    missing_in(&status)
}

/// The needed capabilities missing from the `CapEff:` line of a `/proc/PID/status` text (all
/// of them when there is no such line).
fn missing_in(status: &str) -> Vec<&'static str> {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1u64 << bit) == 0)
    .map(|(_, name)| name)
    .collect()
}

/// Checks that this process may make environments, before anything is made.
///
/// # Errors
/// [`NetnsError::Privilege`] naming `what` needs them and which are missing.
pub fn check_privileges(what: &str) -> Result<(), NetnsError> {
    let missing = missing_capabilities();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NetnsError::Privilege {
            what: what.to_owned(),
            missing: missing.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_cap_eff() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert!(missing_in(root).is_empty());
        let net_only = "CapEff:\t0000000000001000\n";
        assert_eq!(missing_in(net_only), ["CAP_SYS_ADMIN"]);
        let none = "CapEff:\t0000000000000000\n";
        assert_eq!(missing_in(none), ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        assert_eq!(missing_in("").len(), 2);
    }
}
