//! HTTP/1.x message parsing over reassembled TCP byte streams.
//!
//! [`Http1Conn`] is a deterministic core in the style of `quinn-proto`: it does no I/O and reads
//! no clock. The bytes of one TCP connection go in per direction, in order, each call with the
//! capture timestamp of its bytes; complete request/response [`Exchange`]s come out. Gaps, early
//! closes, oversized heads, garbage and mid-stream pickups are survived by resynchronising on the
//! next plausible start line, and every loss is flagged on the exchange it touched ([`Flags`]).
//!
//! A message cut inside its head (a gap, or a capture with a small snap length that keeps only
//! each packet's first bytes) is still handed out with the head bytes captured, flagged, and
//! paired like the others.
//!
//! Alongside the connection parser the crate offers views for readers of stored heads, cut
//! ones included ([`parse_request_head`], [`parse_response_head`]), cheap protocol detection
//! ([`looks_like_request`], [`looks_like_response`]) and a bounded content decoder
//! ([`decode_body`]).
//!
//! Memory is bounded by the [`Http1Config`] limits: a head never grows past `max_head_bytes`, a
//! kept body past `max_body_bytes`, the queue of unanswered requests past `max_pipelined`, and
//! bytes held back while one side waits for the other past `max_unpaired_bytes`.

mod conn;
mod decode;
mod detect;
mod half;
mod head;
mod pairing;
mod types;
mod view;

pub use conn::Http1Conn;
pub use decode::{DecodeError, decode_body};
pub use detect::{looks_like_request, looks_like_response};
pub use types::{ConnState, Exchange, Flags, Http1Config, Http1Stats, Message};
pub use view::{HeadError, RequestHead, ResponseHead, parse_request_head, parse_response_head};

#[cfg(test)]
mod tests;
