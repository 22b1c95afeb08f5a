//! HTTP/1.x message parsing over reassembled TCP byte streams.
