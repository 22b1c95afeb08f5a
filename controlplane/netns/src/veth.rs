//! A veth pair between the host and an environment, for jobs that need a link (live mirroring
//! feeds the environment through one): addresses on both ends, and a default route through
//! the host only when asked, since replayed traffic must never reach a real dependency.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with its prefix length, such as `169.254.0.1/30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?}: expected an IPv4 address with a prefix, such as 169.254.0.1/30");
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The link a job asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VethSpec {
    /// The host end's address.
    pub host: Ipv4Cidr,
    /// The environment end's address.
    pub env: Ipv4Cidr,
    /// Route everything not local through the host end (off unless a user asks).
    pub default_route: bool,
}

impl VethSpec {
    /// The `n`-th /30 of 169.254.0.0/16 (link-local, never routed): host `.1`, environment
    /// `.2` of the block, no default route; `n` counts modulo the 16384 blocks there are.
    pub fn link_local(n: u32) -> Self {
        let block = (n % 16384) * 4;
        let [_, _, high, low] = block.to_be_bytes();
        let at = |last: u8| Ipv4Cidr {
            addr: Ipv4Addr::new(169, 254, high, low | last),
            prefix: 30,
        };
        VethSpec {
            host: at(1),
            env: at(2),
            default_route: false,
        }
    }
}

/// A veth pair an environment made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// The host end's interface name.
    pub host_name: String,
    /// The environment end's interface name.
    pub env_name: String,
    /// What was asked.
    pub spec: VethSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_print() {
        let c: Ipv4Cidr = "169.254.3.1/30".parse().unwrap();
        assert_eq!((c.addr, c.prefix), (Ipv4Addr::new(169, 254, 3, 1), 30));
        assert_eq!(c.to_string(), "169.254.3.1/30");
        for bad in ["169.254.3.1", "169.254.3.1/33", "x/30", "1.2.3.4/"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn link_local_blocks_do_not_overlap() {
        let a = VethSpec::link_local(0);
        assert_eq!(a.host.to_string(), "169.254.0.1/30");
        assert_eq!(a.env.to_string(), "169.254.0.2/30");
        let b = VethSpec::link_local(1);
        assert_eq!(b.host.to_string(), "169.254.0.5/30");
        let c = VethSpec::link_local(64);
        assert_eq!(c.env.to_string(), "169.254.1.2/30");
        let last = VethSpec::link_local(16383);
        assert_eq!(last.host.to_string(), "169.254.255.253/30");
        assert_eq!(VethSpec::link_local(16384), a);
        assert!(!a.default_route);
    }
}
