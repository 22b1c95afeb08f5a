//! The `/etc/hosts` and `/etc/resolv.conf` that processes inside an environment see (bind
//! mounted over the host's in their own mount namespace, as `ip netns exec` does with
//! `/etc/netns/NAME/`).
//!
//! The hosts file names loopback, the host's own name (so programs that resolve it do not
//! wait on DNS) and each recorded dependency; `resolv.conf` points at 127.0.0.1, where nothing
//! answers DNS, so any other name fails at once instead of reaching a real resolver.

use std::net::IpAddr;

/// The `resolv.conf` of an environment.
pub const RESOLV_CONF: &str = "# tapline environment: no DNS server answers here, so names \
                                   outside the hosts file fail fast\n\
                                   nameserver 127.0.0.1\n\
                                   options timeout:1 attempts:1\n";

/// Whether `name` may go into a hosts file: a DNS-style name of letters, digits, `-`, `_` and
/// `.`, not starting with `-` or `.`, at most 253 bytes (recorded `Host` headers are hostile).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.parse::<IpAddr>().is_err()
}

/// The hosts file: loopback names, `hostname` on 127.0.0.1 (when given and valid), then
/// `entries` (address, names) in order; names that are not valid host names are left out.
pub fn hosts_text(entries: &[(IpAddr, Vec<String>)], hostname: Option<&str>) -> String {
    let mut text = String::from(
        "# tapline environment: recorded dependencies on their own loopback addresses\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    if let Some(host) = hostname.filter(|h| is_host_name(h) && *h != "localhost") {
        text.push_str(&format!("127.0.0.1\t{host}\n"));
    }
    for (address, names) in entries {
        let names: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| is_host_name(n))
            .collect();
        if !names.is_empty() {
            text.push_str(&format!("{address}\t{}\n", names.join(" ")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lists_loopback_the_host_and_dependencies() {
        let text = hosts_text(
            &[
                ("127.0.1.1".parse().unwrap(), vec!["inventory".into()]),
                (
                    "127.0.1.2".parse().unwrap(),
                    vec!["pricing".into(), "pricing.internal".into()],
                ),
            ],
            Some("build-7"),
        );
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("127.0.0.1\tbuild-7\n"));
        assert!(text.contains("127.0.1.1\tinventory\n"));
        assert!(text.contains("127.0.1.2\tpricing pricing.internal\n"));
    }

    #[test]
    fn hostile_names_stay_out() {
        let text = hosts_text(
            &[(
                "127.0.1.1".parse().unwrap(),
                vec![
                    "evil\n10.0.0.1 bank".into(),
                    "a b".into(),
                    "-x".into(),
                    "10.0.0.1".into(),
                ],
            )],
            Some("bad host"),
        );
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(is_host_name("inventory.svc.cluster.local"));
        assert!(!is_host_name(""));
        assert!(!is_host_name(&"a".repeat(254)));
    }
}
