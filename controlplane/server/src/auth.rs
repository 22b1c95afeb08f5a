//! Who may use the API: a bearer token from the token file (compared in constant time) or a
//! client certificate that the TLS handshake verified against the configured CA.
//!
//! A request with neither gets 401 and `WWW-Authenticate: Bearer`; a token that is not
//! accepted gets 403. A certificate from another CA never gets here: the handshake fails.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ServerError;

/// Shortest token accepted in a token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// The accepted bearer tokens, kept as SHA-256 digests so comparisons take the same time
/// whatever the presented token's length.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} accepted)", self.digests.len())
    }
}

impl Tokens {
    /// Accepts the given tokens.
    ///
    /// # Errors
    /// [`ServerError::Setting`] for a token shorter than [`MIN_TOKEN_LEN`] or with spaces.
    pub fn new<S: AsRef<str>>(tokens: &[S], origin: &str) -> Result<Tokens, ServerError> {
        let mut digests = Vec::with_capacity(tokens.len());
        for (n, token) in tokens.iter().enumerate() {
            let token = token.as_ref();
            if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                return Err(ServerError::Setting(format!(
                    "{origin}: token {} is not usable: expected at least {MIN_TOKEN_LEN} characters without spaces",
                    n + 1
                )));
            }
            digests.push(digest(token.as_bytes()));
        }
        Ok(Tokens { digests })
    }

    /// Reads a token file: one token per line; empty lines and lines starting with `#` are
    /// skipped.
    ///
    /// # Errors
    /// [`ServerError::File`] when it cannot be read or holds no token, [`ServerError::Setting`]
    /// for a token that is too short.
    pub fn load(path: &Path) -> Result<Tokens, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::File {
            path: path.to_path_buf(),
            reason: format!("cannot read the token file: {e}"),
        })?;
        let tokens: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if tokens.is_empty() {
            return Err(ServerError::File {
                path: path.to_path_buf(),
                reason: "the token file holds no token (one per line)".into(),
            });
        }
        Tokens::new(&tokens, &path.display().to_string())
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens, in time independent of where it differs.
    pub fn accepts(&self, presented: &str) -> bool {
        let wanted = digest(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        for d in &self.digests {
            found |= d.ct_eq(&wanted);
        }
        found.into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What the credentials of a request amount to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A verified client certificate or an accepted token.
    Allowed,
    /// No credentials (or not a bearer token): 401 with `WWW-Authenticate: Bearer`.
    Missing(&'static str),
    /// A bearer token that is not accepted: 403.
    Refused,
}

/// Judges a request from its `Authorization` header and whether its connection presented a
/// client certificate the handshake verified.
pub fn judge(tokens: &Tokens, authorization: Option<&[u8]>, client_cert: bool) -> Verdict {
    if client_cert {
        return Verdict::Allowed;
    }
    let Some(header) = authorization else {
        return Verdict::Missing(
            "authentication required: send Authorization: Bearer TOKEN or a client certificate",
        );
    };
    let header = String::from_utf8_lossy(header);
    let mut parts = header.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Verdict::Missing("expected Authorization: Bearer TOKEN");
    }
    if tokens.accepts(token) {
        Verdict::Allowed
    } else {
        Verdict::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_judged() {
        let tokens = Tokens::new(&["0123456789abcdef", "another-token-0001"], "t").unwrap();
        assert!(tokens.accepts("0123456789abcdef"));
        assert!(tokens.accepts("another-token-0001"));
        assert!(!tokens.accepts("0123456789abcdeF"));
        assert!(!tokens.accepts(""));
        let judge = |h: Option<&str>, cert| judge(&tokens, h.map(str::as_bytes), cert);
        assert_eq!(judge(None, true), Verdict::Allowed);
        assert!(matches!(judge(None, false), Verdict::Missing(_)));
        assert!(matches!(
            judge(Some("Basic abc"), false),
            Verdict::Missing(_)
        ));
        assert!(matches!(judge(Some("Bearer "), false), Verdict::Missing(_)));
        assert_eq!(
            judge(Some("Bearer wrong-token-0000"), false),
            Verdict::Refused
        );
        assert_eq!(
            judge(Some("bearer 0123456789abcdef"), false),
            Verdict::Allowed
        );
        assert_eq!(format!("{tokens:?}"), "Tokens(2 accepted)");
    }

    #[test]
    fn token_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# ci\n\n  0123456789abcdef  \n").unwrap();
        assert!(Tokens::load(&path).unwrap().accepts("0123456789abcdef"));
        std::fs::write(&path, "short\n").unwrap();
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.contains("at least 16"), "{e}");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(
            Tokens::load(&path)
                .unwrap_err()
                .to_string()
                .contains("no token")
        );
        let e = Tokens::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
