//! tapline's data plane: capture sources, packet decoding, the dispatcher and reassembly
//! workers, protocol parsing into RRPairs, and the snapshot store they are written to.

pub mod capture;
pub mod filter;
pub mod import;
pub mod live;
pub mod packet;
pub mod record;
pub mod snapshot;
pub mod tls_chunk;
pub mod view;
pub mod worker;
