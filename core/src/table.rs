//! The flow table: a fixed array of small records, one per tracked connection, a smaller set
//! of hot slots for the connections active now, a keyed open-addressing index, and three
//! recency lists.
//!
//! One name for each thing:
//! - a *record* ([`FlowRecord`], 80 bytes) is a connection's identity: its index is the
//!   flow's number for the sink ([`FlowInfo::slot`]), stable while it is open. Its
//!   [`RecordState`] says what it holds (free, open, closed, evicted, or the rest of another);
//! - a *hot slot* ([`HotSlot`], about 400 bytes) holds a connection's whole state unpacked,
//!   where the tracker works on it. A record is *hot* while it links to one, and *packed*
//!   (`core/src/pack.rs`) otherwise.
//!
//! A connection gets a hot slot when a packet comes for it; when none is free, one not used
//! lately (a clock sweep) is packed back into its record. When nearly every packet has
//! to take a slot for its connection (far more active ones than slots), the one that just
//! took a slot is packed right after its packet instead ([`FlowTable::settle`]), and its
//! slot is the next one given. So 200,000 open connections cost
//! 200,000 records and a few thousand hot slots. A flow too big for one record spills into
//! spare ones; without a spare record it keeps its hot slot, and when the few flows tried for
//! a slot all do so, the tracker evicts one of them (the eviction policy is in
//! `tracker.rs`).
//! - `open`: connections being reassembled, most recently active first, in second-chance
//!   order: a packet marks its flow rather than moving it ([`FlowTable::touch`]), and a
//!   marked flow goes back to the front when it reaches the tail ([`FlowTable::oldest`]).
//!   Its tail is both the next to time out (capture time) and the one evicted when every
//!   record is taken: a flow not active since every other was put at the front. (A flow
//!   idle past the timeout behind a busier tail is closed by its own next packet, before
//!   it: `Tracker::segment`.)
//! - `closed`: finished connections kept so that a reused 4-tuple gets the next connection
//!   index and late packets (the last ACK, a retransmitted FIN) are recognised. They hold no
//!   pool blocks, are packed when they close, and are recycled first, oldest first, when a
//!   record is needed.
//! - `evicted`: connections evicted after delivering data, remembered (at most a quarter of
//!   the records) so that a packet that continues one picks it up again with its connection
//!   index and stream offsets, rather than as a new connection. Recycled after `closed`.
//!
//! Lookups hash the address/port pair in a canonical order, so both directions find the same
//! record, with SipHash-1-3 under a key the embedder chooses.

use crate::decode::{Addr, Vlans};
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::hash::siphash13;
use crate::pool::NIL;
use crate::stream::Half;
use crate::time::Timestamp;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordState {
    Free,
    Open,
    Closed,
    /// The rest of a packed flow too big for one record (not indexed nor listed).
    Spill,
    /// Closed by eviction after delivering data, and remembered (on the `evicted` list) so
    /// that its later packets pick it up where it stopped ([`FlowTable::resume`]).
    Evicted,
}

/// [`FlowTable::misses`] from which slots are settled: about 7 packets in 8 had to give
/// their flow a slot (the average tends to 1,024 when all do).
const THRASHING: u32 = 896;

/// Bytes of a [`FlowRecord`].
pub const RECORD_BYTES: usize = 80;
/// Bytes of a record that hold its packed flow.
const PACKED: usize = RECORD_BYTES - 18;
/// The most bytes a flow packs into (every field at its largest).
const MAX_PACKED: usize = 512;
/// [`FlowRecord::len`] bit: the flow was active since it was put at the front of its list
/// ([`FlowTable::touch`]); it goes back to the front when it reaches the tail.
const TOUCHED: u8 = 0x80;
const _: () = assert!(PACKED < TOUCHED as usize);
/// Flows a search for a hot slot tries to pack before it gives up.
const MAX_PACK_TRIES: u32 = 8;
/// [`FlowRecord::link`]: the flow is in the hot slot of the low bits.
const HOT: u32 = 1 << 31;
/// The most records a table numbers (an index with the [`HOT`] bit clear).
pub(crate) const MAX_RECORDS: usize = HOT as usize - 1;

/// One tracked connection. Storage for [`crate::Storage::flows`].
///
/// Storage may start as any valid values: a record is set to [`FlowRecord::EMPTY`] when first
/// taken, and all-zero bytes are valid (integers, a byte array and a `repr(u8)` enum whose
/// variant 0 is data-free), so a host can allocate the table zeroed and pay only for the pages
/// its flows reach.
#[derive(Clone, Copy, Debug)]
pub struct FlowRecord {
    /// Links of the open or closed list (free records: the free list).
    prev: u32,
    next: u32,
    hash: u32,
    /// `HOT | slot` while the flow is in a hot slot; while it is packed, 0 or the record
    /// holding the rest of it + 1 (in a `Spill` record: the next one + 1, or 0).
    link: u32,
    state: RecordState,
    /// Bytes of `packed` used, and [`TOUCHED`].
    len: u8,
    packed: [u8; PACKED],
}

const _: () = assert!(core::mem::size_of::<FlowRecord>() == RECORD_BYTES);

impl FlowRecord {
    /// A free record.
    pub const EMPTY: FlowRecord = FlowRecord {
        prev: NIL,
        next: NIL,
        hash: 0,
        link: 0,
        state: RecordState::Free,
        len: 0,
        packed: [0; PACKED],
    };

    /// The packed bytes it holds.
    #[inline]
    fn packed(&self) -> &[u8] {
        self.packed
            .get(..usize::from(self.len & !TOUCHED))
            .unwrap_or(&[])
    }

    /// Holds `n` packed bytes now (its [`TOUCHED`] mark kept).
    #[inline]
    fn set_packed_len(&mut self, n: usize) {
        self.len = self.len & TOUCHED | n as u8;
    }
}

/// A connection's whole state while it is active. Storage for
/// [`crate::Storage::hot`].
///
/// Like records, slots may start as any valid values and all-zero bytes are valid (every
/// field is an integer, a bool, an array of them or a `repr(u8)` enum whose variant 0 holds
/// only such fields; `macs` is `None` when zero).
#[derive(Clone, Copy, Debug)]
pub struct HotSlot {
    pub(crate) info: FlowInfo,
    pub(crate) half: [Half; 2],
    /// The record this slot works for, or NIL when free.
    rec: u32,
    /// Next free slot, while free.
    next_free: u32,
    /// Used since the clock hand last passed (second chance).
    referenced: bool,
    /// The record holds this flow packed as it is here (see [`FlowTable::settle`]): the slot
    /// can be given to another flow without packing.
    clean: bool,
    /// On the `clean` list (linked through `next_free`).
    listed: bool,
}

impl HotSlot {
    /// A free hot slot.
    pub const EMPTY: HotSlot = HotSlot {
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
        rec: NIL,
        next_free: NIL,
        referenced: false,
        clean: false,
        listed: false,
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

/// Which list a record is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Open,
    Closed,
    Evicted,
}

/// The table.
#[derive(Debug)]
pub(crate) struct FlowTable<'s> {
    recs: &'s mut [FlowRecord],
    hot: &'s mut [HotSlot],
    /// Entries: 0 (empty), or a record + 1 in the bits of `rec_mask` under the high bits of
    /// its key's hash (a tag): a probe passes over other keys' entries without reading their
    /// records (with many connections open, a cache miss each).
    index: &'s mut [u32],
    mask: usize,
    rec_mask: u32,
    key: [u64; 2],
    /// Records given back by `remove`.
    free: u32,
    /// Records at or above this index were never used: they are reset when first taken, so
    /// start-up touches none of them.
    fresh: u32,
    /// The same for hot slots.
    hot_free: u32,
    hot_fresh: u32,
    /// The clock hand: the next hot slot considered for packing.
    hand: u32,
    /// Slots settled clean (`settle`), most recent first: taken before the clock turns.
    /// Entries are checked when taken (a slot used again since, or freed, is skipped or
    /// taken as free).
    clean: u32,
    /// The record whose flow the latest `make_hot` had to give a slot to, or NIL.
    arrived: u32,
    /// Of the latest packets, how many had to give their flow a slot: a moving average,
    /// [`THRASHING`] and more when nearly all did.
    misses: u32,
    macs: crate::pack::MacPairs,
    open: List,
    closed: List,
    evicted: List,
    /// Hot slots of recent flows by a cheap, unkeyed hash of the 4-tuple: most packets belong
    /// to one of a few busy flows, and a hit skips SipHash and the record. A hint only: a hit
    /// is checked against the slot's whole key, so crafted collisions (or a slot that went to
    /// another flow since) cost a miss, never a wrong flow. Each entry is a slot and, above
    /// it, the 4-tuple's tag: a slot is only read when the tag matches, so with many more
    /// flows than entries a miss costs no read of a slot (a cache miss, mostly).
    recent: [u64; RECENT],
}

/// An empty [`FlowTable::recent`] entry.
const NO_RECENT: u64 = NIL as u64;

/// Entries of [`FlowTable::recent`] (a power of two).
const RECENT: usize = 256;

/// The [`FlowTable::recent`] entry of a 4-tuple and its tag: the same for both directions.
#[inline]
fn recent_index(src: Addr, sport: u16, dst: Addr, dport: u16) -> (usize, u32) {
    fn fold(a: Addr) -> u32 {
        match a {
            Addr::V4(b) => u32::from_ne_bytes(b),
            Addr::V6(b) => u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
        }
    }
    let x = fold(src) ^ fold(dst) ^ (sport ^ dport) as u32;
    let t = x.wrapping_mul(0x9e37_79b1);
    // The first of a pair of entries (two-way: see `FlowTable::remember`).
    ((t >> (32 - RECENT.trailing_zeros())) as usize & !1, t)
}

/// The packed words of a canonical (lower endpoint first) flow key, and how many of them
/// there are: 3 for IPv4 (both addresses share a word), 6 for IPv6 (SipHash takes the count,
/// and the family is in the ports word too, so the two never collide by construction).
fn key_words(src: Addr, sport: u16, dst: Addr, dport: u16, vlans: &Vlans) -> ([u64; 6], usize) {
    let (lo, lop, hi, hip) = if (src, sport) <= (dst, dport) {
        (src, sport, dst, dport)
    } else {
        (dst, dport, src, sport)
    };
    let mut v = 0u64;
    for (i, id) in vlans.as_slice().iter().enumerate() {
        v |= (*id as u64) << (12 * i);
    }
    v |= (vlans.as_slice().len() as u64) << 40;
    let ports = |fam: u64| lop as u64 | (hip as u64) << 16 | fam << 32;
    match (lo, hi) {
        (Addr::V4(a), Addr::V4(b)) => (
            [
                (u32::from_be_bytes(a) as u64) << 32 | u32::from_be_bytes(b) as u64,
                ports(4),
                v,
                0,
                0,
                0,
            ],
            3,
        ),
        _ => {
            fn addr_words(a: Addr) -> (u64, u64) {
                match a {
                    Addr::V4(b) => (u32::from_be_bytes(b) as u64, 0),
                    Addr::V6(b) => {
                        let mut hi = [0u8; 8];
                        let mut lo = [0u8; 8];
                        hi.copy_from_slice(&b[..8]);
                        lo.copy_from_slice(&b[8..]);
                        (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
                    }
                }
            }
            let (a0, a1) = addr_words(lo);
            let (b0, b1) = addr_words(hi);
            ([a0, a1, b0, b1, ports(6), v], 6)
        }
    }
}

/// [`direction`] for a packed record (kept out of line: the busy flows are hot).
#[inline(never)]
fn packed_direction(
    r: &FlowRecord,
    src: Addr,
    sport: u16,
    dst: Addr,
    dport: u16,
    vlans: &Vlans,
) -> Option<Dir> {
    crate::pack::key_direction(r.packed(), src, sport, dst, dport, vlans)
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
    pub(crate) fn new(
        recs: &'s mut [FlowRecord],
        hot: &'s mut [HotSlot],
        index: &'s mut [u32],
        key: [u64; 2],
    ) -> Self {
        // The index must be a power of two with at least one empty entry per probe sequence;
        // use the largest power of two that fits and at most half of it for records.
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
        // Without a hot slot no flow can be worked on.
        let n = if hot.is_empty() {
            0
        } else {
            recs.len().min(ilen / 2).min(HOT as usize - 1)
        };
        let recs = &mut recs[..n];
        let h = hot.len().min(n).min(HOT as usize - 1);
        let hot = &mut hot[..h];
        // The bits that number a record + 1 (at most 31: `MAX_RECORDS`).
        let rec_bits = (u32::BITS - (n as u32).leading_zeros()).max(1);
        FlowTable {
            recs,
            hot,
            index,
            mask: ilen.saturating_sub(1),
            rec_mask: (1u32 << rec_bits) - 1,
            key,
            free: NIL,
            fresh: 0,
            hot_free: NIL,
            hot_fresh: 0,
            hand: 0,
            clean: NIL,
            arrived: NIL,
            misses: 0,
            macs: crate::pack::MacPairs::EMPTY,
            open: List::EMPTY,
            closed: List::EMPTY,
            evicted: List::EMPTY,
            recent: [NO_RECENT; RECENT],
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.recs.len()
    }

    pub(crate) fn open_len(&self) -> usize {
        self.open.len as usize
    }

    pub(crate) fn state(&self, i: u32) -> RecordState {
        self.recs[i as usize].state
    }

    /// The hot slot of record `i`, which must be hot ([`FlowTable::make_hot`]).
    pub(crate) fn hot_slot_of(&mut self, i: u32) -> &mut HotSlot {
        let l = self.recs[i as usize].link;
        debug_assert!(l & HOT != 0, "record {i} is packed");
        &mut self.hot[(l ^ HOT) as usize]
    }

    /// Hot slot `h`, as [`FlowTable::make_hot`] returned it.
    #[inline]
    pub(crate) fn hot_slot(&mut self, h: u32) -> &mut HotSlot {
        &mut self.hot[h as usize]
    }

    pub(crate) fn is_hot(&self, i: u32) -> bool {
        self.recs[i as usize].link & HOT != 0
    }

    /// Which direction a packet travels in record `i`'s flow, if it belongs to it.
    #[inline(always)]
    fn direction_in(
        &self,
        i: u32,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        vlans: &Vlans,
    ) -> Option<Dir> {
        let r = &self.recs[i as usize];
        match self.hot.get((r.link ^ HOT) as usize) {
            Some(s) => direction(&s.info.key, src, sport, dst, dport, vlans),
            None => packed_direction(r, src, sport, dst, dport, vlans),
        }
    }

    /// Finds the record of a packet's flow and the packet's direction in it.
    pub(crate) fn lookup(
        &mut self,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        vlans: &Vlans,
    ) -> (Option<(u32, Dir)>, u32) {
        let (r, tag) = recent_index(src, sport, dst, dport);
        // The hash is only needed to install a flow that was not found.
        let (e0, e1) = (self.recent[r], self.recent[r | 1]);
        if (e0 >> 32) as u32 == tag {
            if let Some(found) = self.recent_hit(e0 as u32, src, sport, dst, dport, vlans) {
                return (Some(found), 0);
            }
        }
        if (e1 >> 32) as u32 == tag {
            if let Some(found) = self.recent_hit(e1 as u32, src, sport, dst, dport, vlans) {
                return (Some(found), 0);
            }
        }
        let (words, n) = key_words(src, sport, dst, dport, vlans);
        let h = siphash13(self.key, &words[..n]) as u32;
        if self.index.is_empty() {
            return (None, h);
        }
        let mut i = h as usize & self.mask;
        let want = h & !self.rec_mask;
        loop {
            let e = self.index[i];
            if e == 0 {
                return (None, h);
            }
            let j = (e & self.rec_mask).wrapping_sub(1);
            if e & !self.rec_mask == want && self.recs[j as usize].hash == h {
                if let Some(d) = self.direction_in(j, src, sport, dst, dport, vlans) {
                    let l = self.recs[j as usize].link;
                    if l & HOT != 0 {
                        self.remember(r, tag, l ^ HOT);
                    }
                    return (Some((j, d)), h);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The record and direction of a packet in the flow of hot slot `hint`, if it is that
    /// flow's.
    #[inline(always)]
    fn recent_hit(
        &self,
        hint: u32,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        vlans: &Vlans,
    ) -> Option<(u32, Dir)> {
        let s = self.hot.get(hint as usize)?;
        // A free slot's record is NIL; a slot works for a record that is not free.
        if s.rec == NIL {
            return None;
        }
        direction(&s.info.key, src, sport, dst, dport, vlans).map(|d| (s.rec, d))
    }

    /// Puts hot slot `i` (of a 4-tuple with `tag`) first in the pair of recent entries at
    /// `r`; the other one keeps the flow that was first (two busy flows whose keys fall on
    /// the same pair both hit).
    fn remember(&mut self, r: usize, tag: u32, i: u32) {
        let e = u64::from(tag) << 32 | u64::from(i);
        if self.recent[r] != e {
            self.recent[r | 1] = self.recent[r];
            self.recent[r] = e;
        }
    }

    /// Gives record `i` a hot slot, unpacked from the record when `unpack` (otherwise the
    /// caller sets it whole), and returns it. Err(victim): every hot slot holds a flow that
    /// does not pack; the caller closes or removes `victim` to free one and asks again.
    #[inline]
    pub(crate) fn make_hot(&mut self, i: u32, unpack: bool) -> Result<u32, u32> {
        let h = self.recs[i as usize].link ^ HOT;
        match self.hot.get_mut(h as usize) {
            Some(s) => {
                s.referenced = true;
                // The caller may change the flow: the record's copy is stale from here on.
                s.clean = false;
                Ok(h)
            }
            None => self.make_hot_slow(i, unpack),
        }
    }

    #[inline(never)]
    fn make_hot_slow(&mut self, i: u32, unpack: bool) -> Result<u32, u32> {
        let h = self.take_hot()?;
        self.arrived = i;
        let r = &self.recs[i as usize];
        if r.link != 0 {
            // Spilled: gathered from its records (which are freed) first.
            let mut buf = [0u8; MAX_PACKED];
            let len = self.gather(i, &mut buf);
            self.unpack_into(i, h, unpack, &buf[..len]);
        } else {
            // The common case: unpacked straight from the record.
            let r = &self.recs[i as usize];
            let (packed, len) = (r.packed, r.packed().len());
            self.unpack_into(i, h, unpack, &packed[..len]);
        }
        Ok(h)
    }

    /// Record `i` goes to hot slot `h`, unpacked from `packed` when `unpack`.
    fn unpack_into(&mut self, i: u32, h: u32, unpack: bool, packed: &[u8]) {
        let s = &mut self.hot[h as usize];
        s.rec = i;
        s.referenced = true;
        s.clean = false;
        self.recs[i as usize].link = HOT | h;
        if unpack {
            crate::pack::unpack(packed, &self.macs, &mut s.info, &mut s.half);
            s.info.slot = i;
            let k = s.info.key;
            let (r, tag) = recent_index(k.addr[0], k.port[0], k.addr[1], k.port[1]);
            self.remember(r, tag, h);
        }
    }

    /// The packed bytes of record `i` and its spill records into `buf` (the spill records
    /// are freed); returns their length.
    fn gather(&mut self, i: u32, buf: &mut [u8; MAX_PACKED]) -> usize {
        let mut len = 0;
        let mut j = i;
        loop {
            let r = &self.recs[j as usize];
            let n = r.packed().len().min(MAX_PACKED - len);
            buf[len..len + n].copy_from_slice(&r.packed[..n]);
            len += n;
            let next = if r.link & HOT == 0 { r.link } else { 0 };
            if j != i {
                self.free_record(j);
            }
            // A chain never loops (`pack` builds it from free records); the bound keeps
            // garbage from spinning.
            if next == 0 || len >= MAX_PACKED {
                break;
            }
            j = next - 1;
            if self.recs.get(j as usize).map(|r| r.state) != Some(RecordState::Spill) {
                break;
            }
        }
        self.recs[i as usize].link = 0;
        len
    }

    /// Puts record `j` on the free list.
    fn free_record(&mut self, j: u32) {
        let r = &mut self.recs[j as usize];
        r.state = RecordState::Free;
        r.link = 0;
        r.len = 0;
        r.next = self.free;
        self.free = j;
    }

    /// A record for the rest of a packed flow, or for a new one: free or never used (closed
    /// flows are recycled by `recycle_oldest_closed` only).
    pub(crate) fn take_spare(&mut self) -> Option<u32> {
        take_unused(
            self.recs,
            &mut self.free,
            &mut self.fresh,
            |r| r.next,
            FlowRecord::EMPTY,
        )
    }

    /// A free hot slot: never used, given back, or taken from a flow not used since the
    /// clock hand last passed, which is packed into its record.
    fn take_hot(&mut self) -> Result<u32, u32> {
        if let Some(h) = take_unused(
            self.hot,
            &mut self.hot_free,
            &mut self.hot_fresh,
            |s| s.next_free,
            HotSlot::EMPTY,
        ) {
            return Ok(h);
        }
        if let Some(h) = self.take_clean() {
            return Ok(h);
        }
        let n = self.hot.len() as u32;
        let mut victim = NIL;
        let mut tries = 0;
        // Two turns: the first may only clear the marks.
        for _ in 0..2 * n {
            let h = self.hand;
            self.hand = if h + 1 >= n { 0 } else { h + 1 };
            let s = &mut self.hot[h as usize];
            // `take_clean` emptied the clean list: no slot is on it here.
            debug_assert!(!s.listed);
            if s.referenced {
                s.referenced = false;
                continue;
            }
            let rec = s.rec;
            if self.pack(rec) {
                // `pack` put the slot on the free list.
                let h = self.hot_free;
                self.hot_free = self.hot[h as usize].next_free;
                return Ok(h);
            }
            victim = rec;
            // Flows that do not pack (no record to spare, mostly) are not tried without
            // end: a few, then the caller evicts one.
            tries += 1;
            if tries == MAX_PACK_TRIES {
                break;
            }
        }
        Err(victim)
    }

    /// Packs record `i`'s flow into the record (and spill records when it is too big for
    /// one) and frees its hot slot; false when there is no record to spare (it stays hot).
    pub(crate) fn pack(&mut self, i: u32) -> bool {
        let r = &mut self.recs[i as usize];
        if r.link & HOT == 0 {
            return true;
        }
        let h = r.link ^ HOT;
        let s = &self.hot[h as usize];
        if let Some(n) = crate::pack::pack(&s.info, &s.half, &mut self.macs, &mut r.packed) {
            r.set_packed_len(n);
            r.link = 0;
            self.release_hot(h);
            return true;
        }
        let mut buf = [0u8; MAX_PACKED];
        let Some(n) = crate::pack::pack(&s.info, &s.half, &mut self.macs, &mut buf) else {
            return false;
        };
        // The rest goes to spill records, last first, each linking to the one after it.
        let chunks = n.div_ceil(PACKED);
        let mut spares = [NIL; MAX_PACKED.div_ceil(PACKED)];
        for k in 1..chunks {
            match self.take_spare() {
                Some(j) => spares[k] = j,
                None => {
                    for &j in &spares[1..k] {
                        self.free_record(j);
                    }
                    return false;
                }
            }
        }
        let mut link = 0;
        for k in (0..chunks).rev() {
            let j = if k == 0 { i } else { spares[k] };
            let part = &buf[k * PACKED..n.min((k + 1) * PACKED)];
            let r = &mut self.recs[j as usize];
            r.packed[..part.len()].copy_from_slice(part);
            r.set_packed_len(part.len());
            if k > 0 {
                r.state = RecordState::Spill;
                r.prev = NIL;
                r.next = NIL;
            }
            r.link = link;
            link = j + 1;
        }
        self.release_hot(h);
        true
    }

    /// Frees the spill records of packed record `i`.
    fn drop_spill(&mut self, i: u32) {
        let mut l = self.recs[i as usize].link;
        if l & HOT != 0 {
            return;
        }
        self.recs[i as usize].link = 0;
        let mut guard = MAX_PACKED.div_ceil(PACKED);
        while l != 0 && guard > 0 {
            let j = l - 1;
            match self.recs.get(j as usize) {
                Some(r) if r.state == RecordState::Spill => {
                    l = r.link;
                    self.free_record(j);
                }
                _ => break,
            }
            guard -= 1;
        }
    }

    fn release_hot(&mut self, h: u32) {
        let s = &mut self.hot[h as usize];
        s.rec = NIL;
        s.referenced = false;
        s.clean = false;
        if s.listed {
            // Its link is the clean list's: it is found free there.
            return;
        }
        s.next_free = self.hot_free;
        self.hot_free = h;
    }

    /// A slot from the clean list: free, or settled clean and not used since (its flow stays
    /// in its record, which holds it whole). Slots used since are taken off the list and left
    /// to the clock.
    fn take_clean(&mut self) -> Option<u32> {
        while self.clean != NIL {
            let h = self.clean;
            let s = &mut self.hot[h as usize];
            self.clean = s.next_free;
            s.listed = false;
            if s.rec == NIL {
                return Some(h);
            }
            if s.clean {
                s.clean = false;
                let rec = s.rec;
                s.rec = NIL;
                s.referenced = false;
                self.recs[rec as usize].link = 0;
                return Some(h);
            }
        }
        None
    }

    /// After each packet of record `i`'s flow. When nearly every packet has to give its flow
    /// a slot (the active flows far outnumber the slots, e.g. many connections visited
    /// round-robin, where keeping a flow in its slot gains nothing), and this one did, packs
    /// the flow into its record now, while it is in cache, and puts the slot on the clean
    /// list, to be taken next without packing. The clock would otherwise pack it much later,
    /// from memory, for the next flow that needs a slot. The flow stays in its slot until
    /// then: another packet for it soon finds it there (and makes it dirty). While most
    /// packets find their flow in its slot (busy flows, or a few thousand taking turns),
    /// nothing is settled: the clock keeps the ones used again. Only a flow that fits its
    /// record is settled (no spill records).
    #[inline]
    pub(crate) fn settle(&mut self, i: u32) {
        // Busy flows in their slots: nothing to average (a stale `arrived` is only ever
        // compared with the record of a later packet).
        if self.arrived != i && self.misses == 0 {
            return;
        }
        self.settle_now(i);
    }

    #[inline(never)]
    fn settle_now(&mut self, i: u32) {
        let arrived = self.arrived == i;
        self.arrived = NIL;
        // Decays to 0 (rounded up) when no packet misses.
        self.misses = self.misses - self.misses.div_ceil(32) + if arrived { 32 } else { 0 };
        if !arrived
            || self.misses < THRASHING
            || self.hot_free != NIL
            || (self.hot_fresh as usize) < self.hot.len()
        {
            return;
        }
        let r = &mut self.recs[i as usize];
        if r.link & HOT == 0 {
            return; // packed already (closed)
        }
        let h = r.link ^ HOT;
        let Some(s) = self.hot.get_mut(h as usize) else {
            return;
        };
        let Some(n) = crate::pack::pack(&s.info, &s.half, &mut self.macs, &mut r.packed) else {
            return;
        };
        r.set_packed_len(n);
        s.clean = true;
        s.referenced = false;
        if !s.listed {
            s.listed = true;
            s.next_free = self.clean;
            self.clean = h;
        }
    }

    /// Recycles the least recently active closed connection's record for a new flow (taken
    /// off its list and the index); None when no connection is closed.
    pub(crate) fn recycle_oldest_closed(&mut self) -> Option<u32> {
        let i = self.oldest(Which::Closed)?;
        self.unlink(i, Which::Closed);
        self.unindex(i);
        self.drop_spill(i);
        Some(i)
    }

    /// The least recently active open flow (see [`FlowTable::touch`]).
    pub(crate) fn oldest_open(&mut self) -> Option<u32> {
        self.oldest(Which::Open)
    }

    /// The tail of a list once every flow active since it was put at the front has gone
    /// back to the front: one not active since, put there before every other.
    fn oldest(&mut self, which: Which) -> Option<u32> {
        loop {
            let t = self.list(which).tail;
            let alone = self.list(which).head == t;
            let r = self.recs.get_mut(t as usize)?;
            if r.len & TOUCHED == 0 {
                return Some(t);
            }
            if alone {
                // Alone on its list (the head is never the tail otherwise).
                r.len &= !TOUCHED;
                return Some(t);
            }
            self.unlink(t, which);
            self.push_front(t, which);
        }
    }

    /// Installs a new flow in record `i` (taken by the tracker, or reused in place when
    /// `reindex` is false), which must be hot.
    pub(crate) fn install(&mut self, i: u32, info: FlowInfo, hash: u32, reindex: bool) {
        let s = self.hot_slot_of(i);
        s.info = info;
        s.info.slot = i;
        s.half = [Half::EMPTY; 2];
        let r = &mut self.recs[i as usize];
        r.hash = hash;
        r.state = RecordState::Open;
        if reindex {
            let mut j = hash as usize & self.mask;
            while self.index[j] != 0 {
                j = (j + 1) & self.mask;
            }
            self.index[j] = hash & !self.rec_mask | (i + 1);
        }
        self.push_front(i, Which::Open);
        let k = &info.key;
        let h = self.recs[i as usize].link ^ HOT;
        let (r, tag) = recent_index(k.addr[0], k.port[0], k.addr[1], k.port[1]);
        self.remember(r, tag, h);
    }

    /// Marks record `i` active. It is marked, not moved to the front of its list: moving
    /// it writes the records on either side, which with many connections open are anywhere
    /// in memory (two cache misses a packet). Marked flows go to the front when they reach
    /// the tail ([`FlowTable::oldest`]), so the tail is a flow not active since every other
    /// was put at the front: second-chance order, close to least recently active.
    /// The head is marked too: flows put at the front after it may have been active before
    /// it, and go back to the front after it, in the order they were put there.
    #[inline]
    pub(crate) fn touch(&mut self, i: u32) {
        if self.which(i).is_some() {
            self.recs[i as usize].len |= TOUCHED;
        }
    }

    /// Moves an open flow to the closed list, packed when it fits.
    pub(crate) fn mark_closed(&mut self, i: u32) {
        if self.recs[i as usize].state == RecordState::Open {
            self.unlink(i, Which::Open);
            self.recs[i as usize].state = RecordState::Closed;
            self.push_front(i, Which::Closed);
            self.pack(i);
        }
    }

    /// Moves a closed (or open) flow back to the open list for a new connection on its
    /// 4-tuple; record `i` must be hot.
    pub(crate) fn reopen(&mut self, i: u32, info: FlowInfo) {
        if let Some(which) = self.which(i) {
            self.unlink(i, which);
        }
        let hash = self.recs[i as usize].hash;
        self.install(i, info, hash, false);
    }

    /// Frees a record entirely (and its hot slot).
    pub(crate) fn remove(&mut self, i: u32) {
        let Some(which) = self.which(i) else { return };
        self.unlink(i, which);
        self.unindex(i);
        let l = self.recs[i as usize].link;
        if l & HOT != 0 {
            self.release_hot(l ^ HOT);
        } else {
            self.drop_spill(i);
        }
        self.free_record(i);
    }

    fn list(&mut self, which: Which) -> &mut List {
        match which {
            Which::Open => &mut self.open,
            Which::Closed => &mut self.closed,
            Which::Evicted => &mut self.evicted,
        }
    }

    /// The list record `i` is on, if any.
    fn which(&self, i: u32) -> Option<Which> {
        match self.recs[i as usize].state {
            RecordState::Open => Some(Which::Open),
            RecordState::Closed => Some(Which::Closed),
            RecordState::Evicted => Some(Which::Evicted),
            RecordState::Free | RecordState::Spill => None,
        }
    }

    /// Remembers a flow just closed by eviction (`mark_closed` packed it) so that its later
    /// packets resume it; false when the remembered ones already take a quarter of the
    /// records (the caller removes it).
    pub(crate) fn mark_evicted(&mut self, i: u32) -> bool {
        if self.recs[i as usize].state != RecordState::Closed
            || self.evicted.len as usize >= self.recs.len() / 4
        {
            return false;
        }
        self.unlink(i, Which::Closed);
        self.recs[i as usize].state = RecordState::Evicted;
        self.push_front(i, Which::Evicted);
        true
    }

    /// A remembered evicted flow is open again, as it was.
    pub(crate) fn resume(&mut self, i: u32) {
        if self.recs[i as usize].state == RecordState::Evicted {
            self.unlink(i, Which::Evicted);
            self.recs[i as usize].state = RecordState::Open;
            self.push_front(i, Which::Open);
        }
    }

    /// Frees the least recently active remembered evicted flow, if any.
    pub(crate) fn forget_evicted(&mut self) -> bool {
        let Some(i) = self.oldest(Which::Evicted) else {
            return false;
        };
        self.remove(i);
        true
    }

    fn push_front(&mut self, i: u32, which: Which) {
        let head = self.list(which).head;
        {
            let s = &mut self.recs[i as usize];
            s.prev = NIL;
            s.next = head;
            s.len &= !TOUCHED;
        }
        if head != NIL {
            self.recs[head as usize].prev = i;
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
            let s = &self.recs[i as usize];
            (s.prev, s.next)
        };
        if p != NIL {
            self.recs[p as usize].next = n;
        }
        if n != NIL {
            self.recs[n as usize].prev = p;
        }
        let l = self.list(which);
        if l.head == i {
            l.head = n;
        }
        if l.tail == i {
            l.tail = p;
        }
        l.len -= 1;
        let s = &mut self.recs[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    /// Removes record `i` from the index (backward-shift deletion: no tombstones, so probe
    /// sequences stay short however many flows come and go).
    fn unindex(&mut self, i: u32) {
        let mut j = self.recs[i as usize].hash as usize & self.mask;
        loop {
            let e = self.index[j];
            if e == 0 {
                return; // not indexed: nothing to do
            }
            if e & self.rec_mask == i + 1 {
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
            let ideal = self.recs[((e & self.rec_mask) - 1) as usize].hash as usize & self.mask;
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

/// An unused entry of `items`: the head of the free list `free` (linked through `next`),
/// else the first never used (`fresh`, reset to `empty`).
fn take_unused<T: Copy>(
    items: &mut [T],
    free: &mut u32,
    fresh: &mut u32,
    next: fn(&T) -> u32,
    empty: T,
) -> Option<u32> {
    if *free != NIL {
        let i = *free;
        *free = next(&items[i as usize]);
        return Some(i);
    }
    if (*fresh as usize) < items.len() {
        let i = *fresh;
        *fresh += 1;
        items[i as usize] = empty;
        return Some(i);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A record as the tracker takes one before it evicts: free, else the oldest closed.
    fn take_free(t: &mut FlowTable<'_>) -> Option<u32> {
        t.take_spare().or_else(|| t.recycle_oldest_closed())
    }

    fn v4(last: u8) -> Addr {
        Addr::V4([10, 0, 0, last])
    }

    fn info(a: u8, ap: u16, b: u8, bp: u16) -> FlowInfo {
        let mut i = HotSlot::EMPTY.info;
        i.key = FlowKey {
            addr: [v4(a), v4(b)],
            port: [ap, bp],
            vlans: Vlans::NONE,
        };
        i
    }

    #[test]
    fn finds_both_directions_and_keeps_vlans_apart() {
        let mut recs = vec![FlowRecord::EMPTY; 4];
        let mut slots = vec![HotSlot::EMPTY; 1];
        let mut index = vec![0u32; 8];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [1, 2]);
        let (found, h) = t.lookup(v4(1), 1000, v4(2), 80, &Vlans::NONE);
        assert!(found.is_none());
        let i = add(&mut t, info(1, 1000, 2, 80), h);
        t.recent = [NO_RECENT; RECENT]; // force the index path
                                        // Found hot and packed alike.
        for _ in 0..2 {
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
            assert!(t.pack(i));
            assert!(!t.is_hot(i));
        }
        t.make_hot(i, true).unwrap();
        assert_eq!(t.hot_slot_of(i).info.key, info(1, 1000, 2, 80).key);
        assert_eq!(t.hot_slot_of(i).info.slot, i);
    }

    #[test]
    fn index_survives_many_inserts_and_removals() {
        let n = 64;
        let mut recs = vec![FlowRecord::EMPTY; n];
        let mut slots = vec![HotSlot::EMPTY; 3];
        let mut index = vec![0u32; 128];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [3, 4]);
        let mut live = std::collections::BTreeMap::new();
        for round in 0..2000u32 {
            let port = (round * 7919 % 300) as u16;
            t.recent = [NO_RECENT; RECENT];
            let (found, h) = t.lookup(v4(1), port, v4(2), 80, &Vlans::NONE);
            match found {
                Some((i, _)) => {
                    assert_eq!(live.get(&port), Some(&i));
                    t.remove(i);
                    live.remove(&port);
                }
                None => {
                    assert!(!live.contains_key(&port));
                    let i = match take_free(&mut t) {
                        Some(i) => i,
                        None => {
                            let old = t.oldest_open().unwrap();
                            t.make_hot(old, true).unwrap();
                            let p = t.hot_slot_of(old).info.key.port[0];
                            t.remove(old);
                            live.remove(&p);
                            take_free(&mut t).unwrap()
                        }
                    };
                    t.make_hot(i, false).unwrap();
                    t.install(i, info(1, port, 2, 80), h, true);
                    live.insert(port, i);
                }
            }
            assert_eq!(t.open_len(), live.len());
        }
        for (&port, &i) in &live {
            t.recent = [NO_RECENT; RECENT];
            assert_eq!(
                t.lookup(v4(1), port, v4(2), 80, &Vlans::NONE).0,
                Some((i, Dir::AtoB))
            );
        }
    }

    #[test]
    fn recency_order_and_closed_slots_recycled_first() {
        let mut recs = vec![FlowRecord::EMPTY; 3];
        let mut slots = vec![HotSlot::EMPTY; 2];
        let mut index = vec![0u32; 8];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [5, 6]);
        let mut ids = vec![];
        for p in 0..3 {
            let (_, h) = t.lookup(v4(1), p, v4(2), 80, &Vlans::NONE);
            let i = add(&mut t, info(1, p, 2, 80), h);
            ids.push(i);
        }
        assert!(take_free(&mut t).is_none());
        assert_eq!(t.oldest_open(), Some(ids[0]));
        t.touch(ids[0]);
        assert_eq!(t.oldest_open(), Some(ids[1]));
        t.mark_closed(ids[2]);
        assert_eq!(take_free(&mut t), Some(ids[2]));
    }

    /// A flow too big for one record: IPv6, three VLANs, MAC addresses, every counter and
    /// offset large.
    fn big_flow(seed: u8) -> (FlowInfo, [Half; 2]) {
        let mut f = HotSlot::EMPTY;
        let mut vlans = Vlans::NONE;
        for id in [100, 200, 300] {
            vlans.push(id + seed as u16);
        }
        f.info.key = FlowKey {
            addr: [Addr::V6([seed; 16]), Addr::V6([seed ^ 0x55; 16])],
            port: [40000 + seed as u16, 443],
            vlans,
        };
        f.info.conn_index = 7;
        f.info.first_ts = Timestamp(1 << 60);
        f.info.last_ts = Timestamp((1 << 60) + (1 << 50));
        f.info.macs = Some([[seed; 6], [9; 6]]);
        for d in 0..2 {
            let x = (1u64 << 45) + d as u64 + seed as u64;
            f.info.dirs[d] = DirInfo {
                packets: x,
                payload_bytes: x * 3,
                stream_len: x * 2,
                ooo_segments: x,
                gaps: x,
                gap_bytes: x,
                retransmitted_bytes: x,
                conflict_bytes: x,
                syn: true,
                fin: d == 0,
                rst: false,
            };
            let h = &mut f.half[d];
            h.mode = crate::stream::Mode::Open;
            h.next = x * 2;
            h.origin = 0;
            h.acked = x;
            h.peer_acked = true;
            h.gap_lo[0] = x / 2;
            h.gap_hi[0] = x;
            h.blocks = 5;
            h.head = 17;
            h.tail = 23;
        }
        (f.info, f.half)
    }

    /// A new flow in a free record and a hot slot, as the engine adds one.
    fn add(t: &mut FlowTable<'_>, info: FlowInfo, hash: u32) -> u32 {
        let i = take_free(t).unwrap();
        t.make_hot(i, false).unwrap();
        t.install(i, info, hash, true);
        i
    }

    fn spill_count(t: &FlowTable<'_>) -> usize {
        t.recs[..t.fresh as usize]
            .iter()
            .filter(|r| r.state == RecordState::Spill)
            .count()
    }

    #[test]
    fn big_flows_spill_into_spare_records_and_come_back() {
        let mut recs = vec![FlowRecord::EMPTY; 8];
        let mut slots = vec![HotSlot::EMPTY; 1];
        let mut index = vec![0u32; 16];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [7, 8]);
        let (info_a, half_a) = big_flow(1);
        let k = info_a.key;
        let (_, hash) = t.lookup(k.addr[0], k.port[0], k.addr[1], k.port[1], &k.vlans);
        let a = add(&mut t, info_a, hash);
        t.hot_slot_of(a).half = half_a;
        // A second flow takes the only hot slot: the first is packed, over several records.
        let b = add(&mut t, info(1, 1000, 2, 80), 12);
        assert!(!t.is_hot(a));
        assert!(
            spill_count(&t) >= 1,
            "a big flow takes more than its record"
        );
        t.recent = [NO_RECENT; RECENT];
        assert_eq!(
            t.lookup(
                info_a.key.addr[1],
                443,
                info_a.key.addr[0],
                40001,
                &info_a.key.vlans
            )
            .0,
            Some((a, Dir::BtoA))
        );
        // Back in a hot slot: exactly as it was, and the spill records are free again.
        t.make_hot(a, true).unwrap();
        let mut want = info_a;
        want.slot = a;
        assert_eq!(t.hot_slot_of(a).info, want);
        assert_eq!(t.hot_slot_of(a).half, half_a);
        assert_eq!(spill_count(&t), 0);
        // Removed while packed: its spill records are freed with it.
        t.make_hot(b, true).unwrap();
        assert!(spill_count(&t) >= 1);
        t.remove(a);
        assert_eq!(spill_count(&t), 0);
    }

    #[test]
    fn settled_slots_are_taken_first_without_losing_a_change() {
        let mut recs = vec![FlowRecord::EMPTY; 8];
        let mut slots = vec![HotSlot::EMPTY; 2];
        let mut index = vec![0u32; 16];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [1, 2]);
        let a = add(&mut t, info(1, 1000, 2, 80), 1);
        // A slot is free: nothing to settle.
        t.settle(a);
        assert!(!t.hot[0].clean);
        let b = add(&mut t, info(1, 1001, 2, 80), 2);
        t.hot_slot_of(b).half[0].next = 5;
        // Every slot taken, but most packets found their flow in its slot: nothing settled.
        t.settle(b);
        assert!(!t.hot.iter().any(|s| s.clean));
        // Nearly all had to give theirs a slot: the flow that just got one is packed now,
        // and stays in its slot.
        t.misses = THRASHING;
        t.arrived = b;
        t.settle(b);
        let hb = t.recs[b as usize].link ^ HOT;
        assert!(t.is_hot(b) && t.hot[hb as usize].clean);
        // The next flow takes that slot without packing anything else.
        let c = add(&mut t, info(1, 1002, 2, 80), 3);
        assert!(!t.is_hot(b) && t.is_hot(a));
        assert_eq!(t.recs[c as usize].link ^ HOT, hb);
        t.make_hot(b, true).unwrap();
        assert_eq!(t.hot_slot_of(b).half[0].next, 5);
        assert_eq!(t.hot_slot_of(b).info.key, info(1, 1001, 2, 80).key);
        // A settled flow used again is dirty: its slot is skipped on the list, and what
        // changed is packed by the clock when the slot goes.
        t.misses = THRASHING;
        t.settle(b);
        let hb = t.recs[b as usize].link ^ HOT;
        assert!(t.hot[hb as usize].clean);
        t.make_hot(b, true).unwrap();
        t.hot_slot_of(b).half[0].next = 9;
        for _ in 0..3 {
            let other = [a, c].into_iter().find(|&x| !t.is_hot(x)).unwrap_or(a);
            t.make_hot(other, true).unwrap();
        }
        t.make_hot(b, true).unwrap();
        assert_eq!(t.hot_slot_of(b).half[0].next, 9);
        // A settled flow removed leaves its slot on the list, free, taken as such.
        t.arrived = b;
        t.misses = THRASHING;
        t.settle(b);
        let hb = t.recs[b as usize].link ^ HOT;
        t.remove(b);
        assert_eq!(t.hot[hb as usize].rec, NIL);
        let d = add(&mut t, info(1, 1003, 2, 80), 4);
        assert_eq!(t.recs[d as usize].link ^ HOT, hb);
        assert_eq!(t.clean, NIL);
    }

    #[test]
    fn slots_are_settled_only_when_nearly_every_packet_misses() {
        let mut recs = vec![FlowRecord::EMPTY; 4];
        let mut slots = vec![HotSlot::EMPTY; 1];
        let mut index = vec![0u32; 8];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [1, 2]);
        let run = |t: &mut FlowTable<'_>, miss_every: u32| {
            for k in 0..400 {
                t.arrived = if k % miss_every == 0 { 0 } else { NIL };
                t.settle(0);
            }
            t.misses
        };
        assert!(run(&mut t, 1) >= THRASHING);
        assert!(run(&mut t, 4) < THRASHING / 2);
        assert!(run(&mut t, 2) < THRASHING);
        // No miss for a while: back to nothing, and the common packet's check is one compare.
        assert_eq!(run(&mut t, 1000), 0);
    }

    #[test]
    fn a_big_flow_without_spare_records_stays_in_its_slot() {
        let mut recs = vec![FlowRecord::EMPTY; 2];
        let mut slots = vec![HotSlot::EMPTY; 1];
        let mut index = vec![0u32; 4];
        let mut t = FlowTable::new(&mut recs, &mut slots, &mut index, [7, 8]);
        let (info_a, half_a) = big_flow(2);
        let a = add(&mut t, info_a, 11);
        t.hot_slot_of(a).half = half_a;
        let b = take_free(&mut t).unwrap();
        // Every record is taken: the big flow cannot be packed, the caller must evict it.
        assert_eq!(t.make_hot(b, false), Err(a));
        assert!(t.is_hot(a));
        assert_eq!(t.hot_slot_of(a).half, half_a);
    }
}
