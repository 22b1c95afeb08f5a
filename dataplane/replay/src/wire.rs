//! Reading the target's responses: a sans-I/O HTTP/1.1 response parser over the bytes of one
//! connection. The head is parsed with `httparse`; the body is delimited by the request method
//! and status (HEAD, 204, 304), `Transfer-Encoding: chunked` (decoded, trailers kept),
//! `Content-Length`, or the end of the connection. Interim 1xx responses are skipped.

use httparse::Status;

/// Longest head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Largest body accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Headers parsed without a heap allocation.
const STACK_HEADERS: usize = 64;

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The head is malformed.
    #[error("malformed response head: {0}")]
    Head(String),
    /// The head is longer than 64 KiB.
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The target switched protocols.
    #[error("the target switched protocols (101)")]
    Upgrade,
    /// A chunk-size or trailer line is malformed or too long.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    /// The body is larger than accepted.
    #[error("response body larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    /// The connection ended inside the response.
    #[error("the target closed the connection in the middle of the response")]
    Truncated,
    /// The connection ended before the response began.
    #[error("the target closed the connection without answering")]
    Closed,
}

/// A complete response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status line, header lines and blank line, as received.
    pub head: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// The body without transfer coding.
    pub body: Vec<u8>,
    /// Raw trailer lines of a chunked body.
    pub trailers: Vec<u8>,
    /// Whether the connection cannot carry another request after this response.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Parses one response from the bytes of a connection.
#[derive(Debug)]
pub struct ResponseParser {
    head_request: bool,
    state: State,
    response: Response,
    started: bool,
}

impl ResponseParser {
    /// A parser for the response to a request; `head_request` when its method was HEAD.
    pub fn new(head_request: bool) -> Self {
        ResponseParser {
            head_request,
            state: State::Head,
            response: Response::default(),
            started: false,
        }
    }

    /// Consumes what it can from the start of `buf`; returns the bytes consumed and whether the
    /// response is complete (then [`ResponseParser::take`] hands it over).
    ///
    /// # Errors
    /// [`WireError`] when the bytes are not a valid response.
    pub fn advance(&mut self, buf: &[u8]) -> Result<(usize, bool), WireError> {
        let mut used = 0;
        loop {
            let rest = buf.get(used..).unwrap_or(&[]);
            if !rest.is_empty() {
                self.started = true;
            }
            let n = match self.state {
                State::Done => return Ok((used, true)),
                State::Head => self.head(rest)?,
                State::Length(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.keep(rest.get(..take).unwrap_or(&[]))?;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    take
                }
                State::ChunkSize => self.chunk_size(rest)?,
                State::ChunkData(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.keep(rest.get(..take).unwrap_or(&[]))?;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    take
                }
                State::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        self.state = State::ChunkSize;
                        2
                    }
                    [b'\n', ..] => {
                        self.state = State::ChunkSize;
                        1
                    }
                    [] | [b'\r'] => 0,
                    _ => return Err(WireError::Chunked("no line end after chunk data")),
                },
                State::Trailers => self.trailer(rest)?,
                State::UntilClose => {
                    self.keep(rest)?;
                    rest.len()
                }
            };
            if n == 0 && self.state != State::Done {
                return Ok((used, false));
            }
            used += n;
        }
    }

    /// The connection ended: completes a close-delimited body.
    ///
    /// # Errors
    /// [`WireError::Closed`] when no byte of the response came, [`WireError::Truncated`] when
    /// the response was cut short.
    pub fn eof(&mut self) -> Result<(), WireError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            State::Head if !self.started => Err(WireError::Closed),
            _ => Err(WireError::Truncated),
        }
    }

    /// Whether a byte of the response has been seen.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Hands over the complete response.
    pub fn take(&mut self) -> Response {
        std::mem::take(&mut self.response)
    }

    fn keep(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if self.response.body.len() + bytes.len() > MAX_BODY {
            return Err(WireError::BodyTooLarge);
        }
        self.response.body.extend_from_slice(bytes);
        Ok(())
    }

    fn head(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap;
        let mut parsed = httparse::Response::new(&mut stack);
        let mut result = parsed.parse(buf);
        if result == Err(httparse::Error::TooManyHeaders) {
            heap = vec![httparse::EMPTY_HEADER; MAX_HEAD / 4];
            parsed = httparse::Response::new(&mut heap);
            result = parsed.parse(buf);
        }
        let n = match result {
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) if buf.len() > MAX_HEAD => return Err(WireError::HeadTooLarge),
            Ok(Status::Partial) => return Ok(0),
            Err(e) => return Err(WireError::Head(e.to_string())),
        };
        let status = parsed.code.unwrap_or(0);
        if status == 101 {
            return Err(WireError::Upgrade);
        }
        if (100..200).contains(&status) {
            return Ok(n); // an interim response: the final one follows
        }
        let mut chunked = false;
        let mut length = None;
        let mut close = parsed.version == Some(0);
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = last_token(h.value).is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(h.value).map_err(|_| bad_length())?;
                length = Some(text.trim().parse::<u64>().map_err(|_| bad_length())?);
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
        }
        self.response.status = status;
        self.response.head = buf.get(..n).unwrap_or(buf).to_vec();
        self.state = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if chunked {
            State::ChunkSize
        } else if let Some(length) = length {
            if length as usize > MAX_BODY {
                return Err(WireError::BodyTooLarge);
            }
            self.response.body.reserve(length as usize);
            if length == 0 {
                State::Done
            } else {
                State::Length(length)
            }
        } else {
            close = true;
            State::UntilClose
        };
        self.response.close = close;
        Ok(n)
    }

    fn line(buf: &[u8]) -> Result<Option<&[u8]>, WireError> {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => Ok(buf.get(..=i)),
            None if buf.len() > MAX_LINE => Err(WireError::Chunked("line too long")),
            None => Ok(None),
        }
    }

    fn chunk_size(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        let Some(line) = Self::line(buf)? else {
            return Ok(0);
        };
        let digits = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(&[])
            .trim_ascii();
        if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(WireError::Chunked("bad chunk size"));
        }
        let size = digits.iter().fold(0u64, |acc, &d| {
            acc * 16 + u64::from((d as char).to_digit(16).unwrap_or(0))
        });
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData(size)
        };
        Ok(line.len())
    }

    fn trailer(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        let Some(line) = Self::line(buf)? else {
            return Ok(0);
        };
        if line == b"\r\n" || line == b"\n" {
            self.state = State::Done;
        } else if self.response.trailers.len() + line.len() > MAX_LINE {
            return Err(WireError::Chunked("trailers too long"));
        } else {
            self.response.trailers.extend_from_slice(line);
        }
        Ok(line.len())
    }
}

fn bad_length() -> WireError {
    WireError::Head("bad Content-Length".into())
}

fn last_token(value: &[u8]) -> Option<&[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .rfind(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
