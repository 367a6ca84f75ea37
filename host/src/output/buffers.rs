//! The file output's per-direction buffers: bytes held in memory until a direction ends, its
//! buffer is full, or the budget over all of them is reached (then the oldest go first).
//! Every byte held is counted as allocated, with an overhead per buffer, so that many tiny
//! buffers are bounded too.

use std::collections::VecDeque;
use std::ops::{Index, IndexMut};
use std::path::PathBuf;

use tcpflow_core::Dir;

use super::names::NAME_ENTRY_BYTES;

/// No buffer.
pub(super) const NO_BUF: u32 = u32::MAX;

/// A growing buffer whose bytes fill less than this is grown in place (the copy is cheap);
/// past it, growing starts a new segment instead, so that no byte is copied again (growth
/// by copying cost the `many` workload 1.25 bytes copied per byte written).
const SEGMENT_MIN: usize = 4096;
/// Segments a buffer holds at most (past it, it grows in place): within the vectored
/// write's [`MAX_PARTS`].
const MAX_SEGMENTS: usize = 15;
/// Parts a held buffer is written in at most.
pub const MAX_PARTS: usize = MAX_SEGMENTS + 1;

/// A direction's buffered bytes: the segments filled before (most buffers have none), then
/// the one being filled (`tail`). Written out whole with one vectored write.
#[derive(Debug, Default)]
pub struct Held {
    head: Option<Box<Head>>,
    tail: Vec<u8>,
}

/// The filled segments of a [`Held`], each full to its capacity.
#[derive(Debug, Default)]
struct Head {
    segments: Vec<Vec<u8>>,
    len: usize,
    cap: usize,
}

impl From<Vec<u8>> for Held {
    fn from(tail: Vec<u8>) -> Held {
        Held { head: None, tail }
    }
}

impl Held {
    #[inline]
    fn head_len(&self) -> usize {
        self.head.as_ref().map_or(0, |h| h.len)
    }

    #[inline]
    fn head_cap(&self) -> usize {
        self.head.as_ref().map_or(0, |h| h.cap)
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.head_len() + self.tail.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.head_cap() + self.tail.capacity()
    }

    /// Appends `data` if the segment being filled has room for it.
    #[inline]
    pub(super) fn try_extend(&mut self, data: &[u8]) -> bool {
        if self.tail.capacity() - self.tail.len() < data.len() {
            return false;
        }
        self.tail.extend_from_slice(data);
        true
    }

    /// Appends `data`, growing to `target` bytes allocated in all if it must grow (`target`
    /// is at least the length after).
    #[inline]
    fn extend(&mut self, data: &[u8], target: usize) {
        if !self.try_extend(data) {
            self.grow_and_extend(data, target);
        }
    }

    #[inline(never)]
    fn grow_and_extend(&mut self, data: &[u8], target: usize) {
        debug_assert!(target >= self.len() + data.len());
        let segments = self.head.as_ref().map_or(0, |h| h.segments.len());
        if self.tail.len() < SEGMENT_MIN || segments >= MAX_SEGMENTS {
            let want = target.saturating_sub(self.head_cap() + self.tail.len());
            self.tail.reserve_exact(want);
            self.tail.extend_from_slice(data);
            return;
        }
        // Fill the segment, then a new one for the rest.
        let (now, rest) = data.split_at(self.tail.capacity() - self.tail.len());
        self.tail.extend_from_slice(now);
        let next = Vec::with_capacity(target.saturating_sub(self.capacity()).max(rest.len()));
        let full = std::mem::replace(&mut self.tail, next);
        let head = self.head.get_or_insert_with(Box::default);
        head.len += full.len();
        head.cap += full.capacity();
        head.segments.push(full);
        self.tail.extend_from_slice(rest);
    }

    /// Empties it, keeping its memory as one segment. A buffer that grew by segments is a
    /// streaming direction's: one segment of the whole capacity, allocated once, spares it a
    /// new segment (and its free) every time it fills.
    fn clear_keeping_memory(&mut self) {
        self.tail.clear();
        if let Some(h) = self.head.take() {
            let whole = h.cap + self.tail.capacity();
            drop(h);
            self.tail = Vec::new();
            self.tail.reserve_exact(whole);
        }
    }

    /// The bytes, segment by segment.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.head
            .iter()
            .flat_map(|h| h.segments.iter().map(Vec::as_slice))
            .chain(std::iter::once(self.tail.as_slice()))
            .filter(|s| !s.is_empty())
    }

    /// Calls `f` with the segments as slices, for a vectored write.
    pub fn with_parts<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        if self.head.is_none() {
            return f(&[&self.tail]);
        }
        let mut parts: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
        let mut n = 0;
        for s in self.segments() {
            parts[n] = s;
            n += 1;
        }
        f(&parts[..n])
    }

    /// Whether `bytes` equal the bytes held from `start` (all within them).
    pub(super) fn equals_at(&self, start: usize, bytes: &[u8]) -> bool {
        let mut at = 0;
        self.segments().all(|s| {
            let piece = overlap(&mut at, s.len(), start, bytes.len());
            piece.map_or(true, |(seg, new)| s[seg] == bytes[new])
        })
    }

    /// Overwrites the bytes held from `start` with `bytes` (all within them).
    pub(super) fn overwrite(&mut self, start: usize, bytes: &[u8]) {
        let mut at = 0;
        let head = self.head.iter_mut().flat_map(|h| h.segments.iter_mut());
        for s in head.chain(std::iter::once(&mut self.tail)) {
            if let Some((seg, new)) = overlap(&mut at, s.len(), start, bytes.len()) {
                s[seg].copy_from_slice(&bytes[new]);
            }
        }
    }
}

/// Where a segment of `len` bytes at `*at` (moved past it) meets the range of `n` bytes from
/// `start`: that part of the segment, and of the range.
fn overlap(
    at: &mut usize,
    len: usize,
    start: usize,
    n: usize,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (lo, hi) = (*at, *at + len);
    *at = hi;
    let (a, b) = (start.max(lo), (start + n).min(hi));
    (a < b).then(|| (a - lo..b - lo, a - start..b - start))
}

/// Buffered bytes of one direction, with its file name (so a budget flush can open the file
/// without the flow at hand).
#[derive(Debug, Default)]
pub(super) struct DirBuf {
    pub(super) data: Held,
    /// Stream offset of `data[0]`.
    pub(super) off: u64,
    /// Identifies this buffer's holding in the queue (0: not queued).
    seq: u64,
    /// Name relative to the output folder.
    pub(super) name: PathBuf,
    /// The file's time (the flow's first packet), for a write made without the flow.
    pub(super) mtime_ns: u64,
    /// Whose buffer it is: flow slot and direction (0 or 1).
    slot: u32,
    dir: u8,
}

/// What a held buffer costs besides its bytes (its entry, name, the name's entry in the set
/// of names used and the allocator's overhead).
pub(super) const BUF_OVERHEAD: usize = std::mem::size_of::<DirBuf>() + 64 + NAME_ENTRY_BYTES;

/// The buffers, by entry number; freed entries are reused.
#[derive(Debug)]
pub(super) struct Buffers {
    entries: Vec<DirBuf>,
    free: Vec<u32>,
    /// Bytes held: the buffers' capacity and [`BUF_OVERHEAD`] per entry in use.
    pub(super) held: usize,
    /// Entries holding bytes.
    live: usize,
    /// Buffers in the order they started holding bytes, by entry and `seq`: an entry whose
    /// `seq` changed since (written out, freed) is stale and skipped.
    queue: VecDeque<(u32, u64)>,
    next_seq: u64,
}

impl Index<u32> for Buffers {
    type Output = DirBuf;
    #[inline]
    fn index(&self, b: u32) -> &DirBuf {
        &self.entries[b as usize]
    }
}

impl IndexMut<u32> for Buffers {
    #[inline]
    fn index_mut(&mut self, b: u32) -> &mut DirBuf {
        &mut self.entries[b as usize]
    }
}

impl Buffers {
    pub(super) fn new() -> Buffers {
        Buffers {
            entries: Vec::new(),
            free: Vec::new(),
            held: 0,
            live: 0,
            queue: VecDeque::new(),
            next_seq: 1,
        }
    }

    /// An empty entry for the direction `dir` of `slot`, named, its overhead counted.
    pub(super) fn alloc(&mut self, slot: u32, dir: Dir, name: PathBuf, mtime_ns: u64) -> u32 {
        let b = match self.free.pop() {
            Some(b) => b,
            None => {
                self.entries.push(DirBuf::default());
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[b as usize];
        e.name = name;
        e.mtime_ns = mtime_ns;
        e.slot = slot;
        e.dir = dir.index() as u8;
        self.held += BUF_OVERHEAD;
        b
    }

    /// Frees an entry: its bytes, their offset and the name back; nothing of it counted.
    pub(super) fn release(&mut self, b: u32) -> (Held, u64, PathBuf) {
        let e = &mut self.entries[b as usize];
        let data = std::mem::take(&mut e.data);
        let name = std::mem::take(&mut e.name);
        let off = e.off;
        e.seq = 0;
        if !data.is_empty() {
            self.live -= 1;
        }
        self.held -= data.capacity() + BUF_OVERHEAD;
        self.free.push(b);
        (data, off, name)
    }

    /// Takes an entry's bytes and their offset to write them (`None` when it holds none);
    /// their memory stays counted until [`Buffers::give_back`] or [`Buffers::uncount`].
    pub(super) fn take_data(&mut self, b: u32) -> Option<(Held, u64)> {
        let e = &mut self.entries[b as usize];
        if e.data.is_empty() {
            return None;
        }
        e.seq = 0;
        self.live -= 1;
        Some((std::mem::take(&mut e.data), e.off))
    }

    /// Puts emptied memory back into the entry, for the bytes that follow (as one segment).
    pub(super) fn give_back(&mut self, b: u32, mut data: Held) {
        let before = data.capacity();
        data.clear_keeping_memory();
        self.held = self.held - before + data.capacity();
        self.entries[b as usize].data = data;
    }

    /// Memory taken with [`Buffers::take_data`] that is not given back.
    pub(super) fn uncount(&mut self, capacity: usize) {
        self.held -= capacity;
    }

    /// Appends bytes at `off` (the entry holds none, or they follow its bytes), within `cap`
    /// bytes for the entry; `budget` is the bytes all buffers may hold.
    pub(super) fn push(&mut self, b: u32, off: u64, data: &[u8], cap: usize, budget: usize) {
        let e = &mut self.entries[b as usize];
        if e.data.is_empty() {
            e.off = off;
            e.seq = self.next_seq;
            self.next_seq += 1;
            self.live += 1;
            self.queue.push_back((b, e.seq));
        }
        // Memory is counted as allocated: exact for the first chunk (most flows are short).
        // A direction that goes on grows (a new segment, or a copy while it is small)
        // straight to the cap while the buffers hold under a quarter of the budget, fourfold
        // under half of it, twofold after that; never past the per-direction cap.
        let before = e.data.capacity();
        let need = e.data.len() + data.len();
        if before == 0 {
            e.data.tail.reserve_exact(need);
            e.data.tail.extend_from_slice(data);
        } else if need > before {
            let target = if self.held < budget / 4 {
                cap
            } else {
                let factor = if self.held < budget / 2 { 4 } else { 2 };
                need.max(before * factor)
            }
            .min(cap)
            .max(need);
            e.data.extend(data, target);
        } else {
            e.data.extend(data, need);
        }
        self.held += e.data.capacity() - before;
        if self.queue.len() > 4 * self.live + 1024 {
            let mut queue = std::mem::take(&mut self.queue);
            queue.retain(|&(b, seq)| self.queued(b, seq));
            self.queue = queue;
        }
    }

    fn queued(&self, b: u32, seq: u64) -> bool {
        let e = &self.entries[b as usize];
        e.seq == seq && !e.data.is_empty()
    }

    /// The direction (slot, direction) whose buffer holds the oldest bytes, taken off the
    /// queue.
    pub(super) fn pop_oldest(&mut self) -> Option<(u32, Dir)> {
        while let Some((b, seq)) = self.queue.pop_front() {
            if self.queued(b, seq) {
                let e = &self.entries[b as usize];
                let dir = if e.dir == 0 { Dir::AtoB } else { Dir::BtoA };
                return Some((e.slot, dir));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(h: &Held) -> Vec<u8> {
        h.segments().flatten().copied().collect()
    }

    /// Past [`SEGMENT_MIN`] a buffer grows by a new segment, the first filled to its end; below
    /// it, in place. Comparing and replacing work across segments.
    #[test]
    fn held_grows_by_segments() {
        let mut h = Held::default();
        h.extend(&[1; 100], 100);
        h.extend(&[2; 100], 400);
        assert_eq!((h.head.is_none(), h.len(), h.capacity()), (true, 200, 400));
        h.extend(&[3; SEGMENT_MIN], 8 * SEGMENT_MIN);
        assert!(h.head.is_none(), "grown in place while small");
        let before = h.capacity();
        assert!(h.tail.len() >= SEGMENT_MIN);
        let room = before - h.len();
        let more: Vec<u8> = (0..room + 1000).map(|i| i as u8).collect();
        h.extend(&more, 16 * SEGMENT_MIN);
        let first = &h.head.as_ref().expect("a new segment").segments;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].len(), first[0].capacity(), "the first one filled");
        assert_eq!(h.capacity(), 16 * SEGMENT_MIN);
        let mut want = [vec![1; 100], vec![2; 100], vec![3; SEGMENT_MIN], more].concat();
        assert_eq!(bytes(&h), want);
        assert_eq!(h.with_parts(|p| (p.len(), p.concat())), (2, want.clone()));
        // Across the boundary between the segments.
        let at = h.head_len() - 10;
        assert!(h.equals_at(at, &want[at..at + 20]));
        assert!(!h.equals_at(at, &[0; 20]));
        h.overwrite(at, &[9; 20]);
        want[at..at + 20].fill(9);
        assert_eq!(bytes(&h), want);
        assert!(h.equals_at(at, &[9; 20]));
        // Emptied for the bytes that follow: its memory stays, as one segment.
        let cap = h.capacity();
        h.clear_keeping_memory();
        assert_eq!((h.len(), h.capacity(), h.head.is_none()), (0, cap, true));
        let fill: Vec<u8> = (0..cap).map(|i| (i * 7) as u8).collect();
        h.extend(&fill, cap);
        assert!(
            h.head.is_none(),
            "filled to its capacity without a new segment"
        );
        assert_eq!(bytes(&h), fill);
    }

    /// A buffer given back keeps its memory whole, as one segment, still counted; released,
    /// nothing of it is.
    #[test]
    fn memory_given_back_is_one_segment() {
        let mut bufs = Buffers::new();
        let a = bufs.alloc(1, Dir::AtoB, PathBuf::from("a"), 1);
        bufs.push(a, 0, &[1; 5000], 64 * 1024, 1 << 20);
        bufs.push(a, 5000, &[2; 5000], 64 * 1024, 1 << 20);
        assert_eq!(bufs[a].data.with_parts(|p| p.len()), 2);
        assert_eq!(bufs.held, BUF_OVERHEAD + 64 * 1024);
        let (data, _) = bufs.take_data(a).unwrap();
        bufs.give_back(a, data);
        assert_eq!(bufs.held, BUF_OVERHEAD + 64 * 1024);
        assert_eq!(bufs[a].data.with_parts(|p| p.len()), 1);
        bufs.push(a, 10_000, &[3; 60_000], 64 * 1024, 1 << 20);
        assert_eq!(bufs[a].data.with_parts(|p| p.len()), 1);
        assert_eq!(bufs.held, BUF_OVERHEAD + 64 * 1024);
        let (data, _, _) = bufs.release(a);
        assert_eq!(data.len(), 60_000);
        assert_eq!(bufs.held, 0);
    }

    /// Memory is counted as allocated and given back whole; the oldest holding comes first,
    /// and a buffer written out meanwhile is skipped.
    #[test]
    fn memory_counted_and_oldest_first() {
        let mut bufs = Buffers::new();
        let a = bufs.alloc(3, Dir::AtoB, PathBuf::from("a"), 1);
        let b = bufs.alloc(5, Dir::BtoA, PathBuf::from("b"), 2);
        assert_eq!(bufs.held, 2 * BUF_OVERHEAD);
        bufs.push(a, 100, &[1; 10], 64, 1 << 20);
        bufs.push(b, 0, &[2; 10], 64, 1 << 20);
        bufs.push(a, 110, &[1; 10], 64, 1 << 20);
        assert_eq!(bufs[a].data.len(), 20);
        assert_eq!(bufs[a].off, 100);
        assert_eq!(
            bufs.held,
            2 * BUF_OVERHEAD + bufs[a].data.capacity() + bufs[b].data.capacity()
        );
        // `a` written out and holding again: it is now younger than `b`.
        let (data, off) = bufs.take_data(a).unwrap();
        assert_eq!((data.len(), off), (20, 100));
        bufs.give_back(a, data);
        bufs.push(a, 120, &[1; 4], 64, 1 << 20);
        assert_eq!(bufs.pop_oldest(), Some((5, Dir::BtoA)));
        assert_eq!(bufs.pop_oldest(), Some((3, Dir::AtoB)));
        assert_eq!(bufs.pop_oldest(), None);
        let (data, off, name) = bufs.release(a);
        assert_eq!((data.len(), off, name), (4, 120, PathBuf::from("a")));
        bufs.release(b);
        assert_eq!(bufs.held, 0);
        assert_eq!(
            bufs.alloc(1, Dir::AtoB, PathBuf::new(), 0),
            b,
            "entries are reused"
        );
    }
}
