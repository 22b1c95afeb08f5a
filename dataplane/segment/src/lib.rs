//! Ring segments: memory-mapped files of CRC-checked, 16-byte-aligned frames.
