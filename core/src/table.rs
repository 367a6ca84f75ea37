//! The flow table: a fixed array of slots, a keyed open-addressing index, and two
//! recency lists.
//!
//! - `open`: connections being reassembled, most recently active first. Its tail is both the
//!   next to time out (capture time) and the one evicted when every slot is taken.
//! - `closed`: finished connections kept so that a reused 4-tuple gets the next connection
//!   index and late packets (the last ACK, a retransmitted FIN) are recognised. They hold no
//!   pool blocks and are recycled first, oldest first, when a slot is needed.
//!
//! Lookups hash the address/port pair in a canonical order, so both directions find the same
//! slot, with SipHash-1-3 under a key the embedder chooses.

use crate::decode::{Addr, Vlans};
use crate::engine::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::hash::siphash13;
use crate::pool::NIL;
use crate::stream::Half;
use crate::Timestamp;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotState {
    Free,
    Open,
    Closed,
}

/// One connection's state. Storage for [`crate::engine::Storage::flows`].
///
/// Storage may start as any valid values: a slot is set to [`FlowSlot::EMPTY`] when first
/// taken. All-zero bytes are valid (every field is an integer, a bool, an array of them or a
/// `repr(u8)` enum whose variant 0 holds only such fields; `macs` is `None` when zero), so a
/// host can allocate the table zeroed and pay only for the pages its flows reach.
#[derive(Clone, Copy, Debug)]
pub struct FlowSlot {
    pub(crate) info: FlowInfo,
    pub(crate) half: [Half; 2],
    prev: u32,
    next: u32,
    hash: u32,
    pub(crate) state: SlotState,
}

impl FlowSlot {
    pub const EMPTY: FlowSlot = FlowSlot {
        info: FlowInfo {
            slot: 0,
            key: FlowKey {
                addr: [Addr::V4([0; 4]); 2],
                port: [0; 2],
                vlans: Vlans::NONE,
            },
            conn_index: 0,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            macs: None,
            dirs: [DirInfo::EMPTY; 2],
        },
        half: [Half::EMPTY; 2],
        prev: NIL,
        next: NIL,
        hash: 0,
        state: SlotState::Free,
    };
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
    len: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Which list a slot is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Open,
    Closed,
}

/// The table.
#[derive(Debug)]
pub(crate) struct FlowTable<'s> {
    slots: &'s mut [FlowSlot],
    index: &'s mut [u32],
    mask: usize,
    key: [u64; 2],
    /// Slots given back by `remove`.
    free: u32,
    /// Slots at or above this index were never used: they are reset when first taken, so
    /// start-up touches none of them.
    fresh: u32,
    open: List,
    closed: List,
    /// Slots of recent lookups by a cheap, unkeyed hash of the 4-tuple: most packets belong
    /// to one of a few busy flows, and a hit skips SipHash. A hint only: a hit is checked
    /// against the slot's whole key, so crafted collisions cost a miss, never a wrong flow.
    recent: [u32; RECENT],
}

/// Entries of [`FlowTable::recent`] (a power of two).
const RECENT: usize = 256;

/// The [`FlowTable::recent`] entry of a 4-tuple: the same for both directions.
#[inline]
fn recent_index(src: Addr, sport: u16, dst: Addr, dport: u16) -> usize {
    fn fold(a: Addr) -> u32 {
        match a {
            Addr::V4(b) => u32::from_ne_bytes(b),
            Addr::V6(b) => u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
        }
    }
    let x = fold(src) ^ fold(dst) ^ (sport ^ dport) as u32;
    // The first of a pair of entries (two-way: see `FlowTable::remember`).
    (x.wrapping_mul(0x9e37_79b1) >> (32 - RECENT.trailing_zeros())) as usize & !1
}

/// The packed words of a canonical (lower endpoint first) flow key, and whether the packet's
/// source is the lower endpoint.
fn key_words(src: Addr, sport: u16, dst: Addr, dport: u16, vlans: &Vlans) -> [u64; 6] {
    fn addr_words(a: Addr) -> (u64, u64, u64) {
        match a {
            Addr::V4(b) => (u32::from_be_bytes(b) as u64, 0, 4),
            Addr::V6(b) => {
                let mut hi = [0u8; 8];
                let mut lo = [0u8; 8];
                hi.copy_from_slice(&b[..8]);
                lo.copy_from_slice(&b[8..]);
                (u64::from_be_bytes(hi), u64::from_be_bytes(lo), 6)
            }
        }
    }
    let (lo, lop, hi, hip) = if (src, sport) <= (dst, dport) {
        (src, sport, dst, dport)
    } else {
        (dst, dport, src, sport)
    };
    let (a0, a1, fam) = addr_words(lo);
    let (b0, b1, _) = addr_words(hi);
    let mut v = 0u64;
    for (i, id) in vlans.as_slice().iter().enumerate() {
        v |= (*id as u64) << (12 * i);
    }
    v |= (vlans.as_slice().len() as u64) << 40;
    [
        a0,
        a1,
        b0,
        b1,
        lop as u64 | (hip as u64) << 16 | fam << 32,
        v,
    ]
}

/// Which direction a packet from `src:sport` to `dst:dport` travels in a flow with `key`, if
/// it belongs to it.
fn direction(
    key: &FlowKey,
    src: Addr,
    sport: u16,
    dst: Addr,
    dport: u16,
    vlans: &Vlans,
) -> Option<Dir> {
    if key.vlans != *vlans {
        return None;
    }
    if key.port[0] == sport && key.port[1] == dport && key.addr[0] == src && key.addr[1] == dst {
        Some(Dir::AtoB)
    } else if key.port[0] == dport
        && key.port[1] == sport
        && key.addr[0] == dst
        && key.addr[1] == src
    {
        Some(Dir::BtoA)
    } else {
        None
    }
}

impl<'s> FlowTable<'s> {
    pub(crate) fn new(slots: &'s mut [FlowSlot], index: &'s mut [u32], key: [u64; 2]) -> Self {
        // The index must be a power of two with at least one empty entry per probe sequence;
        // use the largest power of two that fits and at most half of it for slots.
        let ilen = if index.is_empty() {
            0
        } else {
            1usize << (usize::BITS - 1 - index.len().leading_zeros())
        };
        let index = &mut index[..ilen];
        // Usually already zero (a fresh allocation): reading it costs far less than writing,
        // and leaves untouched pages unallocated.
        if index.chunks(4096).any(|c| {
            // Eight lanes ORed independently so the compiler vectorises the loop.
            let mut lanes = [0u32; 8];
            for w in c.chunks_exact(8) {
                for (l, &e) in lanes.iter_mut().zip(w) {
                    *l |= e;
                }
            }
            let tail = c.chunks_exact(8).remainder().iter();
            lanes.iter().chain(tail).any(|&e| e != 0)
        }) {
            index.fill(0);
        }
        let n = slots.len().min(ilen / 2).min(NIL as usize - 1);
        let slots = &mut slots[..n];
        FlowTable {
            slots,
            index,
            mask: ilen.saturating_sub(1),
            key,
            free: NIL,
            fresh: 0,
            open: List::EMPTY,
            closed: List::EMPTY,
            recent: [NIL; RECENT],
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn open_len(&self) -> usize {
        self.open.len as usize
    }

    pub(crate) fn slot(&mut self, i: u32) -> &mut FlowSlot {
        &mut self.slots[i as usize]
    }

    /// Finds the slot of a packet's flow and the packet's direction in it.
    pub(crate) fn lookup(
        &mut self,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        vlans: &Vlans,
    ) -> (Option<(u32, Dir)>, u32) {
        let r = recent_index(src, sport, dst, dport);
        let hit = |hint: u32| {
            let s = self.slots.get(hint as usize)?;
            if s.state == SlotState::Free {
                return None;
            }
            let d = direction(&s.info.key, src, sport, dst, dport, vlans)?;
            Some((Some((hint, d)), s.hash))
        };
        if let Some(found) = hit(self.recent[r]).or_else(|| hit(self.recent[r + 1])) {
            return found;
        }
        let words = key_words(src, sport, dst, dport, vlans);
        let h = siphash13(self.key, &words) as u32;
        if self.index.is_empty() {
            return (None, h);
        }
        let mut i = h as usize & self.mask;
        loop {
            let e = self.index[i];
            if e == 0 {
                return (None, h);
            }
            let s = &self.slots[(e - 1) as usize];
            if s.hash == h {
                if let Some(d) = direction(&s.info.key, src, sport, dst, dport, vlans) {
                    self.remember(r, e - 1);
                    return (Some((e - 1, d)), h);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Puts slot `i` first in the pair of recent entries at `r`; the other one keeps the
    /// flow that was first (two busy flows whose keys fall on the same pair both hit).
    fn remember(&mut self, r: usize, i: u32) {
        if self.recent[r] != i {
            self.recent[r + 1] = self.recent[r];
            self.recent[r] = i;
        }
    }

    /// Takes a slot for a new flow: a free one, else the oldest closed one. None when every
    /// slot holds an open flow (the caller evicts and retries).
    pub(crate) fn take_free(&mut self) -> Option<u32> {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            return Some(i);
        }
        if (self.fresh as usize) < self.slots.len() {
            let i = self.fresh;
            self.fresh += 1;
            self.slots[i as usize] = FlowSlot::EMPTY;
            return Some(i);
        }
        let i = self.closed.tail;
        if i == NIL {
            return None;
        }
        self.unlink(i, Which::Closed);
        self.unindex(i);
        Some(i)
    }

    /// The least recently active open flow.
    pub(crate) fn oldest_open(&self) -> Option<u32> {
        (self.open.tail != NIL).then_some(self.open.tail)
    }

    /// Installs a new flow in slot `i` (taken with `take_free`, or reused in place when
    /// `reindex` is false).
    pub(crate) fn install(&mut self, i: u32, info: FlowInfo, hash: u32, reindex: bool) {
        let s = &mut self.slots[i as usize];
        s.info = info;
        s.info.slot = i;
        s.half = [Half::EMPTY; 2];
        s.hash = hash;
        s.state = SlotState::Open;
        if reindex {
            let mut j = hash as usize & self.mask;
            while self.index[j] != 0 {
                j = (j + 1) & self.mask;
            }
            self.index[j] = i + 1;
        }
        self.push_front(i, Which::Open);
        let k = &self.slots[i as usize].info.key;
        self.remember(recent_index(k.addr[0], k.port[0], k.addr[1], k.port[1]), i);
    }

    /// Marks slot `i` active: front of its list.
    pub(crate) fn touch(&mut self, i: u32) {
        let which = match self.slots[i as usize].state {
            SlotState::Open => Which::Open,
            SlotState::Closed => Which::Closed,
            SlotState::Free => return,
        };
        let list = match which {
            Which::Open => &self.open,
            Which::Closed => &self.closed,
        };
        if list.head == i {
            return;
        }
        // Not the head, so it has a predecessor and the list a head: a move to the front
        // without unlink's and push_front's general cases (this runs for most packets).
        let (p, n) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        debug_assert!(p != NIL);
        self.slots[p as usize].next = n;
        let list = self.list(which);
        let head = list.head;
        list.head = i;
        if n == NIL {
            list.tail = p;
        }
        if n != NIL {
            self.slots[n as usize].prev = p;
        }
        self.slots[head as usize].prev = i;
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = head;
    }

    /// Moves an open flow to the closed list.
    pub(crate) fn mark_closed(&mut self, i: u32) {
        if self.slots[i as usize].state == SlotState::Open {
            self.unlink(i, Which::Open);
            self.slots[i as usize].state = SlotState::Closed;
            self.push_front(i, Which::Closed);
        }
    }

    /// Moves a closed flow back to the open list for a new connection on its 4-tuple.
    pub(crate) fn reopen(&mut self, i: u32, info: FlowInfo) {
        if self.slots[i as usize].state == SlotState::Closed {
            self.unlink(i, Which::Closed);
        } else if self.slots[i as usize].state == SlotState::Open {
            self.unlink(i, Which::Open);
        }
        let hash = self.slots[i as usize].hash;
        self.install(i, info, hash, false);
    }

    /// Frees an evicted slot entirely.
    pub(crate) fn remove(&mut self, i: u32) {
        let which = match self.slots[i as usize].state {
            SlotState::Open => Which::Open,
            SlotState::Closed => Which::Closed,
            SlotState::Free => return,
        };
        self.unlink(i, which);
        self.unindex(i);
        let s = &mut self.slots[i as usize];
        s.state = SlotState::Free;
        s.next = self.free;
        self.free = i;
    }

    fn list(&mut self, which: Which) -> &mut List {
        match which {
            Which::Open => &mut self.open,
            Which::Closed => &mut self.closed,
        }
    }

    fn push_front(&mut self, i: u32, which: Which) {
        let head = self.list(which).head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = head;
        }
        if head != NIL {
            self.slots[head as usize].prev = i;
        }
        let l = self.list(which);
        l.head = i;
        if l.tail == NIL {
            l.tail = i;
        }
        l.len += 1;
    }

    fn unlink(&mut self, i: u32, which: Which) {
        let (p, n) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if p != NIL {
            self.slots[p as usize].next = n;
        }
        if n != NIL {
            self.slots[n as usize].prev = p;
        }
        let l = self.list(which);
        if l.head == i {
            l.head = n;
        }
        if l.tail == i {
            l.tail = p;
        }
        l.len -= 1;
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    /// Removes slot `i` from the index (backward-shift deletion: no tombstones, so probe
    /// sequences stay short however many flows come and go).
    fn unindex(&mut self, i: u32) {
        for r in self.recent.iter_mut().filter(|r| **r == i) {
            *r = NIL;
        }
        let mut j = self.slots[i as usize].hash as usize & self.mask;
        loop {
            let e = self.index[j];
            if e == 0 {
                return; // not indexed: nothing to do
            }
            if e == i + 1 {
                break;
            }
            j = (j + 1) & self.mask;
        }
        let mut hole = j;
        let mut k = (j + 1) & self.mask;
        loop {
            let e = self.index[k];
            if e == 0 {
                break;
            }
            let ideal = self.slots[(e - 1) as usize].hash as usize & self.mask;
            // Move the entry back if the hole lies on its probe path (between ideal and k).
            if (k.wrapping_sub(ideal) & self.mask) >= (k.wrapping_sub(hole) & self.mask) {
                self.index[hole] = e;
                hole = k;
            }
            k = (k + 1) & self.mask;
        }
        self.index[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn v4(last: u8) -> Addr {
        Addr::V4([10, 0, 0, last])
    }

    fn info(a: u8, ap: u16, b: u8, bp: u16) -> FlowInfo {
        let mut i = FlowSlot::EMPTY.info;
        i.key = FlowKey {
            addr: [v4(a), v4(b)],
            port: [ap, bp],
            vlans: Vlans::NONE,
        };
        i
    }

    #[test]
    fn finds_both_directions_and_keeps_vlans_apart() {
        let mut slots = vec![FlowSlot::EMPTY; 4];
        let mut index = vec![0u32; 8];
        let mut t = FlowTable::new(&mut slots, &mut index, [1, 2]);
        let (found, h) = t.lookup(v4(1), 1000, v4(2), 80, &Vlans::NONE);
        assert!(found.is_none());
        let i = t.take_free().unwrap();
        t.install(i, info(1, 1000, 2, 80), h, true);
        t.recent = [NIL; RECENT]; // force the index path
        assert_eq!(
            t.lookup(v4(2), 80, v4(1), 1000, &Vlans::NONE).0,
            Some((i, Dir::BtoA))
        );
        assert_eq!(
            t.lookup(v4(1), 1000, v4(2), 80, &Vlans::NONE).0,
            Some((i, Dir::AtoB))
        );
        let mut tagged = Vlans::NONE;
        tagged.push(7);
        assert!(t.lookup(v4(1), 1000, v4(2), 80, &tagged).0.is_none());
    }

    #[test]
    fn index_survives_many_inserts_and_removals() {
        let n = 64;
        let mut slots = vec![FlowSlot::EMPTY; n];
        let mut index = vec![0u32; 128];
        let mut t = FlowTable::new(&mut slots, &mut index, [3, 4]);
        let mut live = std::collections::BTreeMap::new();
        for round in 0..2000u32 {
            let port = (round * 7919 % 300) as u16;
            t.recent = [NIL; RECENT];
            let (found, h) = t.lookup(v4(1), port, v4(2), 80, &Vlans::NONE);
            match found {
                Some((i, _)) => {
                    assert_eq!(live.get(&port), Some(&i));
                    t.remove(i);
                    live.remove(&port);
                }
                None => {
                    assert!(!live.contains_key(&port));
                    let i = match t.take_free() {
                        Some(i) => i,
                        None => {
                            let old = t.oldest_open().unwrap();
                            let p = t.slot(old).info.key.port[0];
                            t.remove(old);
                            live.remove(&p);
                            t.take_free().unwrap()
                        }
                    };
                    t.install(i, info(1, port, 2, 80), h, true);
                    live.insert(port, i);
                }
            }
            assert_eq!(t.open_len(), live.len());
        }
        for (&port, &i) in &live {
            t.recent = [NIL; RECENT];
            assert_eq!(
                t.lookup(v4(1), port, v4(2), 80, &Vlans::NONE).0,
                Some((i, Dir::AtoB))
            );
        }
    }

    #[test]
    fn recency_order_and_closed_slots_recycled_first() {
        let mut slots = vec![FlowSlot::EMPTY; 3];
        let mut index = vec![0u32; 8];
        let mut t = FlowTable::new(&mut slots, &mut index, [5, 6]);
        let mut ids = vec![];
        for p in 0..3 {
            let (_, h) = t.lookup(v4(1), p, v4(2), 80, &Vlans::NONE);
            let i = t.take_free().unwrap();
            t.install(i, info(1, p, 2, 80), h, true);
            ids.push(i);
        }
        assert!(t.take_free().is_none());
        assert_eq!(t.oldest_open(), Some(ids[0]));
        t.touch(ids[0]);
        assert_eq!(t.oldest_open(), Some(ids[1]));
        t.mark_closed(ids[2]);
        assert_eq!(t.take_free(), Some(ids[2]));
    }
}
