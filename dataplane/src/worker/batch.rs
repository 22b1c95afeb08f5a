//! Serialized RRPairs in transit: from a worker to the writer thread, and from the writer to a
//! live pair tap (`tapline mirror`).

use rkyv::util::AlignedVec;

use crate::record::ArchivedRRPair;

/// Serialized RRPairs on their way to the writer: one buffer, each record 16-aligned in it, so
/// a batch costs two allocations however many pairs it holds.
///
/// A consumer (a pair tap) reads the records in place: [`PairBatch::iter`] yields each record's
/// bytes, starting on a 16-byte boundary as rkyv requires, so
/// `rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(bytes)` validates and reads one without
/// copying; [`PairBatch::pairs`] does exactly that for every record.
#[derive(Debug, Default, Clone)]
pub struct PairBatch {
    bytes: AlignedVec<16>,
    frames: Vec<(usize, usize)>,
}

impl PairBatch {
    /// Appends one serialized record.
    pub fn push(&mut self, record: &[u8]) {
        let start = self.bytes.len().next_multiple_of(16);
        self.bytes.resize(start, 0);
        self.bytes.extend_from_slice(record);
        self.frames.push((start, record.len()));
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The records, each starting 16-aligned, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .filter_map(|&(start, len)| self.bytes.get(start..start + len))
    }

    /// The records read in place, each validated with bytecheck before it is handed out.
    ///
    /// # Errors
    /// Each item is an error when its bytes are not a valid archived [`crate::record::RRPair`]
    /// (which a batch made by the pipeline never holds).
    pub fn pairs(&self) -> impl Iterator<Item = Result<&ArchivedRRPair, rkyv::rancor::Error>> {
        self.iter()
            .map(rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Flow, Protocol, RRPair};

    #[test]
    fn records_are_aligned_and_readable_in_place() {
        let mut batch = PairBatch::default();
        for id in 0..3u64 {
            let pair = RRPair {
                id,
                protocol: Protocol::Http1,
                start_ns: 0,
                end_ns: 0,
                flow: Flow::new("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap()),
                conn_start_ns: 0,
                index_in_conn: 0,
                request: None,
                response: None,
                interim: vec![],
                flags: 0,
                process: None,
            };
            batch.push(&rkyv::to_bytes::<rkyv::rancor::Error>(&pair).unwrap());
            // An odd-length filler makes the next record start off 16 unless it is padded.
            batch.push(&[1, 2, 3]);
        }
        assert_eq!(batch.len(), 6);
        assert!(
            batch
                .iter()
                .all(|r| (r.as_ptr() as usize).is_multiple_of(16))
        );
        let copy = batch.clone();
        let ids: Vec<u64> = copy
            .pairs()
            .step_by(2)
            .map(|p| p.unwrap().id.to_native())
            .collect();
        assert_eq!(ids, [0, 1, 2]);
        assert!(copy.pairs().nth(1).unwrap().is_err());
    }
}
