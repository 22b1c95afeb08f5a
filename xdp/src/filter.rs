//! What the kernel-side filters select: ports and CIDRs, parsed from the command line and
//! written into the capture object's maps (so they change without reloading).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use tapline_bpf::capture::{MAX_CIDRS, MAX_PORTS};

/// An IPv4 or IPv6 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address, host bits cleared.
    pub addr: IpAddr,
    /// The prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// Makes a CIDR, clearing the host bits of `addr`.
    ///
    /// # Errors
    /// When `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, FilterError> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(FilterError::Cidr(format!(
                "{addr}/{prefix}: the prefix is longer than {bits} bits"
            )));
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Cidr::new(ip, self.prefix).is_ok_and(|c| c.addr == self.addr)
    }
}

impl FromStr for Cidr {
    type Err = FilterError;

    /// Parses `ADDR/PREFIX`, or a bare address (a /32 or /128).
    fn from_str(text: &str) -> Result<Self, FilterError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            FilterError::Cidr(format!(
                "{text:?}: expected an IPv4 or IPv6 address, optionally with /PREFIX"
            ))
        })?;
        let prefix = match prefix {
            None => {
                if addr.is_ipv4() {
                    32
                } else {
                    128
                }
            }
            Some(p) => p.parse::<u8>().map_err(|_| {
                FilterError::Cidr(format!("{text:?}: the prefix length is not a number"))
            })?,
        };
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What the capture programs select. Empty lists select everything; when both are given a
/// packet must match both (a listed port at either end, a listed network at either end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// TCP or UDP ports, source or destination.
    pub ports: Vec<u16>,
    /// Networks, source or destination.
    pub hosts: Vec<Cidr>,
}

impl Filter {
    /// Checks the filter fits the kernel maps.
    ///
    /// # Errors
    /// When there are more ports or networks than the maps hold.
    pub fn validate(&self) -> Result<(), FilterError> {
        if self.ports.len() > MAX_PORTS as usize {
            return Err(FilterError::TooMany("ports", MAX_PORTS));
        }
        let v4 = self.hosts.iter().filter(|c| c.addr.is_ipv4()).count();
        let v6 = self.hosts.len() - v4;
        if v4 > MAX_CIDRS as usize || v6 > MAX_CIDRS as usize {
            return Err(FilterError::TooMany(
                "networks of one IP version",
                MAX_CIDRS,
            ));
        }
        Ok(())
    }

    /// Whether a packet between `a:pa` and `b:pb` passes (ports `None` when not TCP/UDP).
    ///
    /// This is the kernel programs' rule, for userspace sources such as SPAN capture.
    pub fn matches(&self, a: Option<IpAddr>, b: Option<IpAddr>, ports: Option<(u16, u16)>) -> bool {
        let hosts_ok = self.hosts.is_empty()
            || [a, b]
                .into_iter()
                .flatten()
                .any(|ip| self.hosts.iter().any(|c| c.contains(ip)));
        let ports_ok = self.ports.is_empty()
            || ports.is_some_and(|(pa, pb)| self.ports.contains(&pa) || self.ports.contains(&pb));
        hosts_ok && ports_ok
    }
}

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A network that does not parse.
    #[error("--host {0}")]
    Cidr(String),
    /// More entries than the kernel map holds.
    #[error("too many {0}: at most {1}")]
    TooMany(&'static str, u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_clear_host_bits() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert_eq!("10.1.2.3".parse::<Cidr>().unwrap().prefix, 32);
        assert_eq!("fd00::1".parse::<Cidr>().unwrap().prefix, 128);
        assert_eq!(
            "fd00:1::5/32".parse::<Cidr>().unwrap().to_string(),
            "fd00:1::/32"
        );
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix, 0);
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", "1.2.3.4/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_contain_their_addresses() {
        let c: Cidr = "10.231.0.0/24".parse().unwrap();
        assert!(c.contains("10.231.0.9".parse().unwrap()));
        assert!(!c.contains("10.231.1.9".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains("fd00::1".parse().unwrap()));
    }

    #[test]
    fn filters_follow_the_kernel_rule() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let none = Filter::default();
        assert!(none.matches(None, None, None));
        let ports = Filter {
            ports: vec![80],
            hosts: vec![],
        };
        assert!(ports.matches(ip("1.1.1.1"), ip("2.2.2.2"), Some((40000, 80))));
        assert!(!ports.matches(ip("1.1.1.1"), ip("2.2.2.2"), Some((40000, 81))));
        assert!(!ports.matches(ip("1.1.1.1"), ip("2.2.2.2"), None));
        let both = Filter {
            ports: vec![80],
            hosts: vec!["2.2.2.0/24".parse().unwrap()],
        };
        assert!(both.matches(ip("1.1.1.1"), ip("2.2.2.2"), Some((80, 1))));
        assert!(!both.matches(ip("1.1.1.1"), ip("3.2.2.2"), Some((80, 1))));
    }

    #[test]
    fn oversized_filters_are_refused() {
        let filter = Filter {
            ports: (0..=1024).collect(),
            hosts: vec![],
        };
        assert!(filter.validate().is_err());
        assert!(Filter::default().validate().is_ok());
    }
}
