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

/// Buffered bytes of one direction, with its file name (so a budget flush can open the file
/// without the flow at hand).
#[derive(Debug, Default)]
pub(super) struct DirBuf {
    pub(super) data: Vec<u8>,
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
    pub(super) fn release(&mut self, b: u32) -> (Vec<u8>, u64, PathBuf) {
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
    pub(super) fn take_data(&mut self, b: u32) -> Option<(Vec<u8>, u64)> {
        let e = &mut self.entries[b as usize];
        if e.data.is_empty() {
            return None;
        }
        e.seq = 0;
        self.live -= 1;
        Some((std::mem::take(&mut e.data), e.off))
    }

    /// Puts emptied memory back into the entry, for the bytes that follow.
    pub(super) fn give_back(&mut self, b: u32, mut data: Vec<u8>) {
        data.clear();
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
        // A direction that goes on grows (each growth copies what it holds) straight to the
        // cap while the buffers hold under a quarter of the budget, fourfold under half of
        // it, twofold after that; never past the per-direction cap.
        let before = e.data.capacity();
        let need = e.data.len() + data.len();
        if need > before {
            let target = if before == 0 {
                need
            } else if self.held < budget / 4 {
                cap
            } else {
                let factor = if self.held < budget / 2 { 4 } else { 2 };
                need.max(before * factor)
            }
            .min(cap)
            .max(need);
            e.data.reserve_exact(target - e.data.len());
        }
        e.data.extend_from_slice(data);
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
