//! The `--target` URL: `http://HOST[:PORT][/]`, the address to connect to and the `Host` value
//! replayed requests carry.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::error::ReplayError;

/// Where requests are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Target {
    /// Parses `http://HOST[:PORT][/]` (the scheme may be left out).
    ///
    /// # Errors
    /// [`ReplayError::Target`] naming the URL and what is wrong.
    pub fn parse(url: &str) -> Result<Self, ReplayError> {
        let fail = |reason: &str| ReplayError::Target {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(fail("https targets are not supported yet; use http://"));
            }
            Some(_) => return Err(fail("expected an http:// URL")),
            None => url,
        };
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        if !(path.is_empty() || path == "/") {
            return Err(fail(
                "a target has no path: requests keep their recorded target",
            ));
        }
        if authority.contains('@') {
            return Err(fail("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| fail("unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(fail("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| fail("the port must be a number from 1 to 65535"))?,
        };
        Ok(Target {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// The `Host` header value for this target (the port left out when it is 80).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The first address the host resolves to.
    ///
    /// # Errors
    /// [`ReplayError::Unreachable`] when it does not resolve.
    pub fn resolve(&self) -> Result<SocketAddr, ReplayError> {
        let unreachable = |source| ReplayError::Unreachable {
            url: self.url.clone(),
            addr: self.authority(),
            source,
        };
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| unreachable(std::io::Error::other("the name has no address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority()),
            ("127.0.0.1", 8080, "127.0.0.1:8080".into())
        );
        let t = Target::parse("http://svc/").unwrap();
        assert_eq!((t.port, t.authority()), (80, "svc".into()));
        let t = Target::parse("[::1]:81").unwrap();
        assert_eq!((t.host.as_str(), t.authority()), ("::1", "[::1]:81".into()));
        assert_eq!(
            t.resolve().unwrap(),
            "[::1]:81".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            Target::parse("localhost:9")
                .unwrap()
                .resolve()
                .unwrap()
                .port(),
            9
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("https://x", "https"),
            ("ftp://x", "http://"),
            ("http://x/v2", "no path"),
            ("http://:80", "no host"),
            ("http://x:0", "port"),
            ("http://x:99999", "port"),
            ("http://[::1", "unclosed"),
            ("http://u@x", "user"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(url) && e.contains(why), "{url}: {e}");
        }
    }
}
