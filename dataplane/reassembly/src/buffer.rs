//! The out-of-order buffer of one stream direction: runs of bytes that arrived ahead of a hole,
//! keyed by stream offset, never overlapping, with memory accounted against two limits.
//!
//! A segment that continues the last byte of a buffered run is appended to it, so the usual
//! pattern (one missing segment, then the rest of the window in order) costs one growing vector
//! rather than an allocation per segment. Runs are never merged to the right (that would let
//! holes filled from right to left copy the same bytes over and over); adjacent runs are simply
//! delivered one after the other.

use std::collections::BTreeMap;

use crate::config::OverlapPolicy;

/// Bookkeeping bytes counted for each buffered run on top of its capacity: about what the map
/// node share and the allocation header cost, so that many tiny segments cannot exceed a bound.
pub const CHUNK_OVERHEAD: usize = 64;

/// Buffer limits and the usage shared by all directions of a reassembler.
#[derive(Debug)]
pub(crate) struct Budget<'a> {
    /// Limit for this direction.
    pub per_direction: usize,
    /// Limit for all directions together.
    pub total_limit: usize,
    /// Bytes held by all directions together.
    pub total_used: &'a mut usize,
}

/// What a segment had in common with bytes already held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// Bytes of the segment that were already held.
    pub bytes: u64,
    /// Whether any of them differed from the held bytes.
    pub conflict: bool,
}

impl Overlap {
    /// Compares `old` with `new` (same length) and adds the result.
    pub fn add(&mut self, old: &[u8], new: &[u8]) {
        self.bytes += old.len() as u64;
        if old != new {
            self.conflict = true;
        }
    }
}

/// Out-of-order runs of one direction.
#[derive(Debug, Default)]
pub(crate) struct OooBuffer {
    /// Runs by starting offset; they never overlap.
    runs: BTreeMap<u64, Vec<u8>>,
    /// Accounted bytes: capacity plus [`CHUNK_OVERHEAD`] per run.
    held: usize,
}

/// Accounted cost of a run with this capacity.
fn cost(capacity: usize) -> usize {
    capacity.saturating_add(CHUNK_OVERHEAD)
}

/// Stream offset just past a run.
fn run_end(start: u64, run: &[u8]) -> u64 {
    start + run.len() as u64
}

impl OooBuffer {
    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Accounted bytes held.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Offset of the first held byte.
    pub fn first_start(&self) -> Option<u64> {
        self.runs.keys().next().copied()
    }

    /// Offset just past the last held byte.
    pub fn end(&self) -> Option<u64> {
        self.runs
            .iter()
            .next_back()
            .map(|(&start, run)| run_end(start, run))
    }

    /// The first run and its starting offset.
    pub fn first_run(&self) -> Option<(u64, &[u8])> {
        self.runs
            .iter()
            .next()
            .map(|(&start, run)| (start, run.as_slice()))
    }

    /// Removes and returns the first run.
    pub fn pop_first(&mut self, total_used: &mut usize) -> Option<(u64, Vec<u8>)> {
        let (start, run) = self.runs.pop_first()?;
        self.release(cost(run.capacity()), total_used);
        Some((start, run))
    }

    /// Removes everything, returning the number of runs dropped.
    pub fn clear(&mut self, total_used: &mut usize) -> usize {
        let n = self.runs.len();
        self.runs.clear();
        self.release(self.held, total_used);
        n
    }

    /// Drops held bytes at or beyond `limit`, returning the number of runs affected.
    pub fn truncate(&mut self, limit: u64, total_used: &mut usize) -> usize {
        let mut affected = 0;
        while let Some((&start, _)) = self.runs.iter().next_back() {
            if start < limit {
                break;
            }
            if let Some(run) = self.runs.remove(&start) {
                self.release(cost(run.capacity()), total_used);
            }
            affected += 1;
        }
        if let Some((&start, run)) = self.runs.iter_mut().next_back()
            && run_end(start, run) > limit
        {
            let before = run.capacity();
            run.truncate(usize::try_from(limit - start).unwrap_or(usize::MAX));
            run.shrink_to_fit();
            let freed = before - run.capacity();
            self.release(freed, total_used);
            affected += 1;
        }
        affected
    }

    /// Removes the bytes before `offset` from the first run when it starts before it, keeping the
    /// rest buffered at `offset` (its capacity, and so its accounted cost, does not change).
    pub fn trim_front(&mut self, offset: u64, total_used: &mut usize) {
        let Some(mut entry) = self.runs.first_entry() else {
            return;
        };
        let start = *entry.key();
        if start >= offset {
            return;
        }
        let run = entry.get_mut();
        let cut = usize::try_from(offset - start)
            .unwrap_or(usize::MAX)
            .min(run.len());
        run.drain(..cut);
        let run = entry.remove();
        if run.is_empty() {
            self.release(cost(run.capacity()), total_used);
        } else {
            self.runs.insert(offset, run);
        }
    }

    fn release(&mut self, bytes: usize, total_used: &mut usize) {
        self.held = self.held.saturating_sub(bytes);
        *total_used = total_used.saturating_sub(bytes);
    }

    /// The run containing `offset`, as (start, end).
    fn containing(&self, offset: u64) -> Option<(u64, u64)> {
        let (&start, run) = self.runs.range(..=offset).next_back()?;
        let end = run_end(start, run);
        (end > offset).then_some((start, end))
    }

    /// The start of the first run at or after `offset`.
    fn next_start(&self, offset: u64) -> Option<u64> {
        self.runs.range(offset..).next().map(|(&start, _)| start)
    }

    /// Start, length and capacity of the run ending exactly at `offset`.
    fn ending_at(&self, offset: u64) -> Option<(u64, usize, usize)> {
        let (&start, run) = self.runs.range(..offset).next_back()?;
        (run_end(start, run) == offset).then_some((start, run.len(), run.capacity()))
    }

    /// Smallest added cost to take the bytes of `[start, end)` not held yet.
    fn min_cost(&self, start: u64, end: u64) -> usize {
        let mut added = 0usize;
        let mut pos = start;
        while pos < end {
            if let Some((_, run_end)) = self.containing(pos) {
                pos = run_end.min(end);
                continue;
            }
            let hole_end = self.next_start(pos).map_or(end, |s| s.min(end));
            let len = usize::try_from(hole_end - pos).unwrap_or(usize::MAX);
            added = added.saturating_add(match self.ending_at(pos) {
                Some((_, run_len, capacity)) => (run_len + len).saturating_sub(capacity),
                None => cost(len),
            });
            pos = hole_end;
        }
        added
    }

    /// Buffers `data` at stream offset `start`, resolving overlaps with held bytes by `policy`.
    ///
    /// Returns `None`, holding nothing new, when the new bytes do not fit the budget.
    pub fn insert(
        &mut self,
        start: u64,
        data: &[u8],
        policy: OverlapPolicy,
        budget: &mut Budget<'_>,
    ) -> Option<Overlap> {
        let end = start + data.len() as u64;
        let room = budget
            .per_direction
            .saturating_sub(self.held)
            .min(budget.total_limit.saturating_sub(*budget.total_used));
        if let Some(done) = self.insert_last(start, data, room, budget) {
            return done;
        }
        let needed = self.min_cost(start, end);
        if needed > room {
            return None;
        }
        // Capacity beyond the minimum that appends may take to grow geometrically.
        let mut slack = room - needed;
        let mut overlap = Overlap::default();
        let mut pos = start;
        while pos < end {
            let from = usize::try_from(pos - start).unwrap_or(usize::MAX);
            if let Some((run_start, run_stop)) = self.containing(pos) {
                let stop = run_stop.min(end);
                let to = usize::try_from(stop - start).unwrap_or(usize::MAX);
                let (Some(new), Some(run)) = (data.get(from..to), self.runs.get_mut(&run_start))
                else {
                    break;
                };
                let at = usize::try_from(pos - run_start).unwrap_or(usize::MAX);
                if let Some(old) = run.get_mut(at..at + new.len()) {
                    overlap.add(old, new);
                    if policy == OverlapPolicy::Last {
                        old.copy_from_slice(new);
                    }
                }
                pos = stop;
                continue;
            }
            let hole_end = self.next_start(pos).map_or(end, |s| s.min(end));
            let to = usize::try_from(hole_end - start).unwrap_or(usize::MAX);
            let Some(new) = data.get(from..to) else {
                break;
            };
            let grown = match self.ending_at(pos) {
                Some((run_start, _, _)) => self
                    .runs
                    .get_mut(&run_start)
                    .map(|run| append(run, new, &mut slack)),
                None => None,
            };
            let added = match grown {
                Some(added) => added,
                None => {
                    let run = new.to_vec();
                    let added = cost(run.capacity());
                    self.runs.insert(pos, run);
                    added
                }
            };
            self.held += added;
            *budget.total_used += added;
            pos = hole_end;
        }
        Some(overlap)
    }
}

impl OooBuffer {
    /// The common case of [`OooBuffer::insert`], without range searches: `data` lies at or beyond
    /// the end of everything held. Returns `None` when that is not the case, else the result of
    /// the insert.
    fn insert_last(
        &mut self,
        start: u64,
        data: &[u8],
        room: usize,
        budget: &mut Budget<'_>,
    ) -> Option<Option<Overlap>> {
        let mut last = self.runs.last_entry();
        let last_end = last.as_ref().map(|l| run_end(*l.key(), l.get()));
        if last_end.is_some_and(|e| start < e) {
            return None;
        }
        let added = match last.as_mut() {
            Some(last) if last_end == Some(start) => {
                let run = last.get_mut();
                let needed = (run.len() + data.len()).saturating_sub(run.capacity());
                if needed > room {
                    return Some(None);
                }
                let mut slack = room - needed;
                append(run, data, &mut slack)
            }
            _ => {
                if cost(data.len()) > room {
                    return Some(None);
                }
                let run = data.to_vec();
                let added = cost(run.capacity());
                self.runs.insert(start, run);
                added
            }
        };
        self.held += added;
        *budget.total_used += added;
        Some(Some(Overlap::default()))
    }
}

/// Appends `new` to `run`, growing its capacity geometrically while `slack` allows, and returns
/// the capacity added.
fn append(run: &mut Vec<u8>, new: &[u8], slack: &mut usize) -> usize {
    let before = run.capacity();
    let needed = run.len() + new.len();
    if needed > before {
        let doubled = before.saturating_mul(2).max(needed);
        let extra = (doubled - needed).min(*slack);
        *slack -= extra;
        run.reserve_exact(needed + extra - run.len());
    }
    run.extend_from_slice(new);
    run.capacity() - before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(used: &mut usize) -> Budget<'_> {
        Budget {
            per_direction: 1 << 20,
            total_limit: 1 << 20,
            total_used: used,
        }
    }

    fn runs(buf: &OooBuffer) -> Vec<(u64, Vec<u8>)> {
        buf.runs.iter().map(|(&k, v)| (k, v.clone())).collect()
    }

    #[test]
    fn appends_to_the_run_it_continues() {
        let mut used = 0;
        let mut buf = OooBuffer::default();
        let mut b = budget(&mut used);
        buf.insert(10, b"abc", OverlapPolicy::First, &mut b)
            .unwrap();
        buf.insert(13, b"def", OverlapPolicy::First, &mut b)
            .unwrap();
        assert_eq!(runs(&buf), vec![(10, b"abcdef".to_vec())]);
        assert_eq!(buf.held(), used);
    }

    #[test]
    fn fills_holes_only_under_first() {
        let mut used = 0;
        let mut buf = OooBuffer::default();
        let mut b = budget(&mut used);
        buf.insert(10, b"bb", OverlapPolicy::First, &mut b).unwrap();
        buf.insert(14, b"dd", OverlapPolicy::First, &mut b).unwrap();
        let ov = buf
            .insert(9, b"AXXCXXE", OverlapPolicy::First, &mut b)
            .unwrap();
        assert_eq!(
            ov,
            Overlap {
                bytes: 4,
                conflict: true
            }
        );
        let all: Vec<u8> = runs(&buf).into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(all, b"AbbCXdd");
        assert_eq!(buf.first_start(), Some(9));
        assert_eq!(buf.end(), Some(16));
    }

    #[test]
    fn overwrites_under_last() {
        let mut used = 0;
        let mut buf = OooBuffer::default();
        let mut b = budget(&mut used);
        buf.insert(10, b"bb", OverlapPolicy::Last, &mut b).unwrap();
        let ov = buf.insert(9, b"XYZW", OverlapPolicy::Last, &mut b).unwrap();
        assert_eq!(ov.bytes, 2);
        let all: Vec<u8> = runs(&buf).into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(all, b"XYZW");
    }

    #[test]
    fn refuses_what_does_not_fit_and_accounts_exactly() {
        let mut used = 0;
        let mut buf = OooBuffer::default();
        let mut b = Budget {
            per_direction: 100 + CHUNK_OVERHEAD,
            total_limit: 1 << 20,
            total_used: &mut used,
        };
        assert!(
            buf.insert(0, &[1; 60], OverlapPolicy::First, &mut b)
                .is_some()
        );
        assert!(
            buf.insert(60, &[1; 40], OverlapPolicy::First, &mut b)
                .is_some()
        );
        assert!(
            buf.insert(100, &[1; 1], OverlapPolicy::First, &mut b)
                .is_none()
        );
        // A duplicate costs nothing and still fits.
        assert!(
            buf.insert(10, &[1; 20], OverlapPolicy::First, &mut b)
                .is_some()
        );
        assert!(buf.held() <= 100 + CHUNK_OVERHEAD);
        assert_eq!(buf.held(), used);
        let mut used2 = used;
        buf.truncate(50, &mut used2);
        assert_eq!(buf.end(), Some(50));
        assert_eq!(buf.held(), used2);
        buf.clear(&mut used2);
        assert_eq!((buf.held(), used2), (0, 0));
    }

    #[test]
    fn trims_the_front_of_the_first_run() {
        let mut used = 0;
        let mut buf = OooBuffer::default();
        let mut b = budget(&mut used);
        buf.insert(10, b"abcdef", OverlapPolicy::First, &mut b)
            .unwrap();
        let mut used2 = used;
        buf.trim_front(13, &mut used2);
        assert_eq!(runs(&buf), vec![(13, b"def".to_vec())]);
        buf.pop_first(&mut used2).unwrap();
        assert_eq!((buf.held(), used2), (0, 0));
    }
}
