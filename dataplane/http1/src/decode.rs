//! The decoded view of a stored body: undoes the `Content-Encoding` codings (gzip, deflate,
//! identity) with a bound on the output, for readers such as `tapline inspect`.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Most content codings undone on one body; more is refused rather than decoded.
const MAX_CODINGS: usize = 4;

/// Errors of [`decode_body`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A content coding other than gzip, deflate or identity.
    #[error("unsupported content coding {coding:?}")]
    Unsupported {
        /// The coding as named in the header.
        coding: String,
    },
    /// More codings stacked than are undone.
    #[error("{count} content codings stacked; at most {MAX_CODINGS} are decoded")]
    TooManyCodings {
        /// Codings named in the headers.
        count: usize,
    },
    /// The compressed data is malformed or cut short.
    #[error("{coding} body does not decode: {source}")]
    Corrupt {
        /// The coding being undone.
        coding: &'static str,
        /// The decoder's complaint.
        source: std::io::Error,
    },
    /// The decoded body would be longer than the limit.
    #[error("decoded body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit given.
        limit: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// Decodes `body` by the `Content-Encoding` headers among `headers` (names matched without
/// regard to case; codings applied in the order listed are undone in reverse), producing at
/// most `limit` bytes. A body without a coding (or only `identity`) is returned borrowed.
///
/// # Errors
/// [`DecodeError::Unsupported`] naming a coding other than gzip, deflate or identity,
/// [`DecodeError::TooManyCodings`], [`DecodeError::Corrupt`] when the data does not decode and
/// [`DecodeError::TooLarge`] when the output would pass `limit`.
pub fn decode_body<'a>(
    headers: &[(&str, &[u8])],
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let mut codings = Vec::new();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-encoding") {
            continue;
        }
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.is_empty() || token.eq_ignore_ascii_case(b"identity") {
                continue;
            }
            let coding =
                if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
                    Coding::Gzip
                } else if token.eq_ignore_ascii_case(b"deflate") {
                    Coding::Deflate
                } else {
                    return Err(DecodeError::Unsupported {
                        coding: String::from_utf8_lossy(token).into_owned(),
                    });
                };
            codings.push(coding);
        }
    }
    if codings.len() > MAX_CODINGS {
        return Err(DecodeError::TooManyCodings {
            count: codings.len(),
        });
    }
    let mut data: Cow<'a, [u8]> = Cow::Borrowed(body);
    for coding in codings.into_iter().rev() {
        data = Cow::Owned(undo(coding, &data, limit)?);
    }
    if data.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(data)
}

fn undo(coding: Coding, data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match coding {
        Coding::Gzip => read_bounded(MultiGzDecoder::new(data), "gzip", limit),
        // "deflate" is zlib-wrapped by the standard, but raw deflate is common in the wild.
        Coding::Deflate if is_zlib_header(data) => {
            read_bounded(ZlibDecoder::new(data), "deflate", limit)
        }
        Coding::Deflate => read_bounded(DeflateDecoder::new(data), "deflate", limit),
    }
}

fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

fn read_bounded(
    reader: impl Read,
    coding: &'static str,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| DecodeError::Corrupt { coding, source })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn identity_is_borrowed() {
        let out = decode_body(&[("Content-Type", b"text/plain")], b"abc", 10).unwrap();
        assert!(matches!(out, Cow::Borrowed(b"abc")));
        let out = decode_body(&[("Content-Encoding", b"identity")], b"abc", 10).unwrap();
        assert_eq!(&*out, b"abc");
        assert!(matches!(
            decode_body(&[], b"abcd", 3),
            Err(DecodeError::TooLarge { limit: 3 })
        ));
    }

    #[test]
    fn gzip_and_deflate() {
        let gz = gzip(b"hello");
        let out = decode_body(&[("content-encoding", b"GZIP")], &gz, 100).unwrap();
        assert_eq!(&*out, b"hello");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(b"zlib data").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            &*decode_body(&[("Content-Encoding", b"deflate")], &z, 100).unwrap(),
            b"zlib data"
        );
        let mut d = DeflateEncoder::new(Vec::new(), Compression::fast());
        d.write_all(b"raw data").unwrap();
        let d = d.finish().unwrap();
        assert_eq!(
            &*decode_body(&[("Content-Encoding", b"deflate")], &d, 100).unwrap(),
            b"raw data"
        );
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let twice = gzip(&gzip(b"inner"));
        let out = decode_body(&[("Content-Encoding", b"gzip, gzip")], &twice, 100).unwrap();
        assert_eq!(&*out, b"inner");
        let out = decode_body(
            &[("Content-Encoding", b"gzip"), ("Content-Encoding", b"gzip")],
            &twice,
            100,
        );
        assert_eq!(&*out.unwrap(), b"inner");
    }

    #[test]
    fn errors_name_what_failed() {
        let e = decode_body(&[("Content-Encoding", b"br")], b"x", 10).unwrap_err();
        assert!(e.to_string().contains("\"br\""), "{e}");
        let e = decode_body(&[("Content-Encoding", b"gzip")], b"not gzip", 10).unwrap_err();
        assert!(
            matches!(e, DecodeError::Corrupt { coding: "gzip", .. }),
            "{e}"
        );
        let big = gzip(&[b'a'; 10_000]);
        let e = decode_body(&[("Content-Encoding", b"gzip")], &big, 100).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { limit: 100 }));
        let e = decode_body(
            &[("Content-Encoding", b"gzip,gzip,gzip,gzip,gzip")],
            b"",
            10,
        )
        .unwrap_err();
        assert!(matches!(e, DecodeError::TooManyCodings { count: 5 }));
    }
}
