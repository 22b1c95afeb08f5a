//! tapline mock: answers a service's outbound HTTP/1.1 calls from the responses recorded in a
//! snapshot, so a service can run against its dependencies' real past behaviour.
//!
//! - [`mod@load`] reads the usable request/response pairs of a snapshot into [`recorded`]
//!   exchanges (optionally only those whose client is one service, its outbound calls, or whose
//!   server is one of some dependencies);
//! - [`index`] is the matcher, a deterministic core without I/O: scope by `Host`, exact match
//!   of (method, target, body), then the closest by the [`score`], the n-th identical call
//!   answered by the n-th recorded answer;
//! - [`render`] re-frames recorded responses (hop-by-hop headers dropped, `Content-Length` or
//!   chunked framing written anew, `X-Tapline-Mock: matched` added);
//! - [`wire`] reads requests off the wire, [`server`] serves them with tokio, and [`nomatch`]
//!   writes the marked answer to a request nothing matches.
//!
//! The crate's README section (`tapline mock` in the repository's README) shows it at work.

pub mod error;
pub mod index;
pub mod load;
pub mod nomatch;
pub mod recorded;
pub mod render;
pub mod score;
pub mod server;
pub mod wire;

pub use error::{MockError, RecordError};
pub use index::{Decision, Index, MatchConfig, Request, Scope, SequenceEnd};
pub use load::{AddrSelector, Loaded, Selection, Skipped, load};
pub use recorded::Recorded;
pub use server::{Latency, Mock, ServerConfig, Summary, bind, run};
