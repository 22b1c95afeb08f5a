//! The flow table: connections by direction-independent key, in a slab with two intrusive
//! least-recently-active lists (open connections, and closed ones kept to absorb late segments),
//! so eviction and idle expiry take the oldest entry in O(1).
//!
//! Moving an entry to the tail of its list touches its neighbours, which with many flows are
//! cache misses on every segment. So an entry is only moved when it was last moved at least
//! [`LRU_GRANULARITY_NS`] of capture time ago: the lists are ordered by the time of the last
//! move (the entry's *stamp*), and each entry's last activity is at or after its stamp. Eviction
//! is least recently active to within that granularity; idle expiry stays exact (see
//! [`FlowTable::stale`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::flow::Flow;

/// One side of a connection, compact for hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    ip: u128,
    port: u16,
    v6: bool,
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => Self {
                ip: u128::from(u32::from(*a.ip())),
                port: a.port(),
                v6: false,
            },
            SocketAddr::V6(a) => Self {
                ip: u128::from(*a.ip()),
                port: a.port(),
                v6: true,
            },
        }
    }
}

/// A connection's key: the same for both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

impl Hash for FlowKey {
    /// Feeds the hasher as few words as the key needs, without losing any bit (so collisions
    /// cannot be aimed at the randomly keyed hasher).
    fn hash<H: Hasher>(&self, h: &mut H) {
        let ports = u64::from(self.lo.port)
            | u64::from(self.hi.port) << 16
            | u64::from(self.lo.v6) << 32
            | u64::from(self.hi.v6) << 33;
        if self.lo.v6 || self.hi.v6 {
            h.write_u128(self.lo.ip);
            h.write_u128(self.hi.ip);
        } else {
            // IPv4 addresses fit 32 bits each.
            h.write_u64((self.lo.ip as u64) << 32 | self.hi.ip as u64);
        }
        h.write_u64(ports);
    }
}

impl FlowKey {
    /// The key of the connection between `a` and `b`, in either order.
    pub fn new(a: Endpoint, b: Endpoint) -> Self {
        if a <= b {
            Self { lo: a, hi: b }
        } else {
            Self { lo: b, hi: a }
        }
    }
}

/// No entry.
const NIL: u32 = u32::MAX;

/// Capture time within which repeated activity does not move an entry in its list.
pub(crate) const LRU_GRANULARITY_NS: u64 = 100_000_000;

#[derive(Debug)]
struct Entry {
    key: FlowKey,
    flow: Flow,
    prev: u32,
    next: u32,
    /// When the entry was last moved to the tail of its list.
    stamp: u64,
    /// Which list the entry is on.
    retired: bool,
}

/// A doubly linked list through the slab, oldest at the head.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Connections by key, with least-recently-active order.
#[derive(Debug)]
pub(crate) struct FlowTable {
    map: HashMap<FlowKey, u32, ahash::RandomState>,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    live: List,
    retired: List,
    /// The last entry found: consecutive segments of one flow skip the hash lookup.
    last: Option<(FlowKey, u32)>,
}

impl FlowTable {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            slots: Vec::new(),
            free: Vec::new(),
            live: List::EMPTY,
            retired: List::EMPTY,
            last: None,
        }
    }

    /// Entries, open and closed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Open connections.
    pub fn live_len(&self) -> usize {
        self.live.len
    }

    /// The entry of `key`.
    pub fn find(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((last, idx)) = self.last
            && last == *key
        {
            return Some(idx);
        }
        let idx = self.map.get(key).copied()?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    /// The flow of entry `idx`.
    pub fn flow(&self, idx: u32) -> Option<&Flow> {
        self.slot(idx).map(|e| &e.flow)
    }

    /// The flow of entry `idx`, mutably.
    pub fn flow_mut(&mut self, idx: u32) -> Option<&mut Flow> {
        self.slot_mut(idx).map(|e| &mut e.flow)
    }

    /// The least recently active open connection.
    pub fn oldest_live(&self) -> Option<u32> {
        (self.live.head != NIL).then_some(self.live.head)
    }

    /// The least recently active closed connection.
    pub fn oldest_retired(&self) -> Option<u32> {
        (self.retired.head != NIL).then_some(self.retired.head)
    }

    /// The entry after `idx` in its list (more recently active).
    pub fn newer(&self, idx: u32) -> Option<u32> {
        self.slot(idx).map(|e| e.next).filter(|&next| next != NIL)
    }

    /// Whether the entry at `idx`, and so every entry after it in its list, was moved to the
    /// tail at most `within` before `now`: none of them can have been idle for longer than that.
    pub fn stale(&self, idx: u32, now: u64, within: u64) -> bool {
        self.slot(idx)
            .is_some_and(|e| now.saturating_sub(e.stamp) > within)
    }

    /// Adds an open connection as the most recently active one, at time `now`.
    pub fn insert(&mut self, key: FlowKey, flow: Flow, now: u64) -> u32 {
        let entry = Entry {
            key,
            flow,
            prev: NIL,
            next: NIL,
            stamp: now,
            retired: false,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                if let Some(slot) = self.slots.get_mut(idx as usize) {
                    *slot = Some(entry);
                }
                idx
            }
            None => {
                // The table never holds anywhere near 2^32 entries (see `Reassembler::new`).
                let idx = u32::try_from(self.slots.len()).unwrap_or(NIL - 1);
                self.slots.push(Some(entry));
                idx
            }
        };
        self.map.insert(key, idx);
        self.push_tail(idx);
        idx
    }

    /// Removes an entry, returning its flow.
    pub fn remove(&mut self, idx: u32) -> Option<Flow> {
        self.unlink(idx);
        let entry = self.slots.get_mut(idx as usize)?.take()?;
        self.map.remove(&entry.key);
        if self.last.is_some_and(|(_, last)| last == idx) {
            self.last = None;
        }
        self.free.push(idx);
        Some(entry.flow)
    }

    /// Marks an entry as active at `now` (the reassembler's monotonic clock): moves it to the
    /// tail of its list unless it was moved there less than [`LRU_GRANULARITY_NS`] ago.
    pub fn touch(&mut self, idx: u32, now: u64) {
        let Some(entry) = self.slot(idx) else {
            return;
        };
        if now.saturating_sub(entry.stamp) < LRU_GRANULARITY_NS {
            return;
        }
        let tail = if entry.retired {
            self.retired.tail
        } else {
            self.live.tail
        };
        if tail != idx {
            self.unlink(idx);
            self.push_tail(idx);
        }
        if let Some(entry) = self.slot_mut(idx) {
            entry.stamp = now;
        }
    }

    /// Moves an entry from the open to the closed list, as the most recent, at `now`.
    pub fn retire(&mut self, idx: u32, now: u64) {
        self.unlink(idx);
        if let Some(entry) = self.slot_mut(idx) {
            entry.retired = true;
            entry.stamp = now;
        }
        self.push_tail(idx);
    }

    fn slot(&self, idx: u32) -> Option<&Entry> {
        self.slots.get(idx as usize)?.as_ref()
    }

    fn slot_mut(&mut self, idx: u32) -> Option<&mut Entry> {
        self.slots.get_mut(idx as usize)?.as_mut()
    }

    fn list_mut(&mut self, retired: bool) -> &mut List {
        if retired {
            &mut self.retired
        } else {
            &mut self.live
        }
    }

    fn unlink(&mut self, idx: u32) {
        let Some(entry) = self.slot(idx) else {
            return;
        };
        let (prev, next, retired) = (entry.prev, entry.next, entry.retired);
        if prev != NIL {
            if let Some(p) = self.slot_mut(prev) {
                p.next = next;
            }
        } else {
            self.list_mut(retired).head = next;
        }
        if next != NIL {
            if let Some(n) = self.slot_mut(next) {
                n.prev = prev;
            }
        } else {
            self.list_mut(retired).tail = prev;
        }
        let list = self.list_mut(retired);
        list.len = list.len.saturating_sub(1);
        if let Some(entry) = self.slot_mut(idx) {
            entry.prev = NIL;
            entry.next = NIL;
        }
    }

    fn push_tail(&mut self, idx: u32) {
        let Some(entry) = self.slot(idx) else {
            return;
        };
        let retired = entry.retired;
        let list = self.list_mut(retired);
        let tail = list.tail;
        list.tail = idx;
        list.len += 1;
        if tail == NIL {
            list.head = idx;
        }
        if let Some(t) = self.slot_mut(tail) {
            t.next = idx;
        }
        if let Some(entry) = self.slot_mut(idx) {
            entry.prev = tail;
            entry.next = NIL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnId;

    fn ep(port: u16) -> Endpoint {
        Endpoint::from(SocketAddr::from(([10, 0, 0, 1], port)))
    }

    #[test]
    fn key_is_direction_independent() {
        assert_eq!(FlowKey::new(ep(1), ep(2)), FlowKey::new(ep(2), ep(1)));
        let v6 = Endpoint::from("[::ffff:10.0.0.1]:1".parse::<SocketAddr>().unwrap());
        assert_ne!(FlowKey::new(ep(1), ep(2)), FlowKey::new(v6, ep(2)));
    }

    #[test]
    fn keeps_lru_order_and_reuses_slots() {
        let mut t = FlowTable::new();
        let ids: Vec<u32> = (0..4)
            .map(|i| {
                t.insert(
                    FlowKey::new(ep(i), ep(100)),
                    Flow::new(ConnId(u64::from(i)), ep(i), 0),
                    0,
                )
            })
            .collect();
        assert_eq!(t.oldest_live(), Some(ids[0]));
        // Within the granularity, activity does not reorder.
        t.touch(ids[0], LRU_GRANULARITY_NS - 1);
        assert_eq!(t.oldest_live(), Some(ids[0]));
        t.touch(ids[0], LRU_GRANULARITY_NS);
        assert_eq!(t.oldest_live(), Some(ids[1]));
        assert_eq!(t.newer(ids[1]), Some(ids[2]));
        assert!(t.stale(ids[1], LRU_GRANULARITY_NS, 0));
        assert!(!t.stale(ids[0], LRU_GRANULARITY_NS, 0));
        t.retire(ids[1], LRU_GRANULARITY_NS);
        assert_eq!((t.live_len(), t.len()), (3, 4));
        assert_eq!(t.oldest_live(), Some(ids[2]));
        assert_eq!(t.oldest_retired(), Some(ids[1]));
        assert!(t.remove(ids[1]).is_some());
        assert_eq!(t.oldest_retired(), None);
        assert_eq!(t.find(&FlowKey::new(ep(1), ep(100))), None);
        let again = t.insert(
            FlowKey::new(ep(9), ep(100)),
            Flow::new(ConnId(9), ep(9), 0),
            LRU_GRANULARITY_NS,
        );
        assert_eq!(again, ids[1]);
        let order: Vec<u32> = std::iter::from_fn(|| {
            let idx = t.oldest_live()?;
            t.remove(idx);
            Some(idx)
        })
        .collect();
        assert_eq!(order, vec![ids[2], ids[3], ids[0], ids[1]]);
        assert_eq!(t.len(), 0);
    }
}
