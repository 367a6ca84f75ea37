//! The out-of-order pool: fixed-size blocks shared by every flow.
//!
//! A direction that has a hole keeps the bytes after it here. A block holds one aligned
//! window of [`BLOCK_DATA`] stream bytes with a bit per byte saying which are present, so a
//! window costs one block however it was segmented: a thousand 1-byte segments in one window
//! take one block, not a thousand. A direction's blocks form a list sorted by window. The
//! pool never grows: when it is empty the stream layer gives up on the oldest hole of the
//! direction that needs room (a gap event), so data is delivered late rather than lost.

/// Stream bytes one block's window covers: a full-size Ethernet segment spans at most two.
pub const BLOCK_DATA: usize = 1024;

const WORDS: usize = BLOCK_DATA / 64;

/// Snap-length cuts one block remembers. A cut is only a label (the bytes are missing
/// either way): one that does not fit is reported as `Lost` instead of `Snaplen`.
const CUTS: usize = 2;

/// Gap ranges one block holds when it serves as a direction's gap memory (see
/// [`Block::range`]): 16 bytes each.
pub(crate) const RANGES: usize = BLOCK_DATA / 16;

/// End of a list.
pub(crate) const NIL: u32 = u32::MAX;
/// The most blocks a pool numbers (indexes are u32 with [`NIL`] reserved).
pub(crate) const MAX_BLOCKS: usize = NIL as usize - 1;

/// One block of held data. Storage for [`crate::Storage::blocks`]. Blocks are set
/// before use, and all-zero bytes are a valid block, so a host can allocate them zeroed.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub(crate) next: u32,
    /// Window-relative start (0..=BLOCK_DATA) and length of bytes the snap length cut off
    /// right after held bytes; a length of 0 is an empty entry. May reach past the window.
    cut_at: [u16; CUTS],
    cut_len: [u32; CUTS],
    /// Stream offset (the direction's internal offset) of `data[0]`, a multiple of
    /// `BLOCK_DATA`.
    pub(crate) base: u64,
    /// Bit `i` set: `data[i]` holds a byte of the stream.
    have: [u64; WORDS],
    pub(crate) data: [u8; BLOCK_DATA],
}

impl Block {
    /// A free block.
    pub const EMPTY: Block = Block {
        next: NIL,
        cut_at: [0; CUTS],
        cut_len: [0; CUTS],
        base: 0,
        have: [0; WORDS],
        data: [0; BLOCK_DATA],
    };

    /// The window holding internal offset `off`.
    pub(crate) fn window(off: u64) -> u64 {
        off & !(BLOCK_DATA as u64 - 1)
    }

    pub(crate) fn end(&self) -> u64 {
        self.base + BLOCK_DATA as u64
    }

    pub(crate) fn has(&self, i: usize) -> bool {
        self.have[i / 64] >> (i % 64) & 1 == 1
    }

    /// First present byte at or after window-relative `from`, or `BLOCK_DATA`.
    pub(crate) fn next_set(&self, from: usize) -> usize {
        self.scan(from, 0)
    }

    /// First absent byte at or after window-relative `from`, or `BLOCK_DATA`.
    pub(crate) fn next_clear(&self, from: usize) -> usize {
        self.scan(from, u64::MAX)
    }

    /// First bit at or after `from` that differs from the bits of `skip` (all 0 or all 1).
    fn scan(&self, from: usize, skip: u64) -> usize {
        if from >= BLOCK_DATA {
            return BLOCK_DATA;
        }
        let mut w = from / 64;
        let mut bits = (self.have[w] ^ skip) & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return w * 64 + bits.trailing_zeros() as usize;
            }
            w += 1;
            if w == WORDS {
                return BLOCK_DATA;
            }
            bits = self.have[w] ^ skip;
        }
    }

    /// Marks window-relative `[lo, hi)` present.
    pub(crate) fn set(&mut self, lo: usize, hi: usize) {
        if lo >= hi {
            return;
        }
        let (first, last) = (lo / 64, (hi - 1) / 64);
        let low = u64::MAX << (lo % 64);
        let high = u64::MAX >> (63 - (hi - 1) % 64);
        if first == last {
            self.have[first] |= low & high;
            return;
        }
        self.have[first] |= low;
        for w in &mut self.have[first + 1..last] {
            *w = u64::MAX;
        }
        self.have[last] |= high;
    }

    /// Remembers that `len` bytes from window-relative `at` were cut by the snap length.
    pub(crate) fn add_cut(&mut self, at: usize, len: u32) {
        let at = at as u16;
        for k in 0..CUTS {
            if self.cut_len[k] == 0 || self.cut_at[k] == at {
                self.cut_at[k] = at;
                self.cut_len[k] = self.cut_len[k].max(len);
                return;
            }
        }
    }

    // A block can also serve as gap memory: ranges of a stream reported as gaps, ascending,
    // `[lo, hi)` as two little-endian u64 in `data` (`RANGES` of them); `have[0]` counts them
    // and, in the first block of a direction's list, `have[1]` is the last block and
    // `have[2]` the number of blocks.

    /// Ranges held, as gap memory.
    pub(crate) fn ranges(&self) -> usize {
        (self.have[0] as usize).min(RANGES)
    }

    /// Range `k` (below [`Block::ranges`]), as gap memory.
    pub(crate) fn range(&self, k: usize) -> (u64, u64) {
        let at = k * 16;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.data[i..i + 8]);
            u64::from_le_bytes(b)
        };
        (word(at), word(at + 8))
    }

    /// Sets range `k`, as gap memory.
    pub(crate) fn set_range(&mut self, k: usize, lo: u64, hi: u64) {
        let at = k * 16;
        self.data[at..at + 8].copy_from_slice(&lo.to_le_bytes());
        self.data[at + 8..at + 16].copy_from_slice(&hi.to_le_bytes());
    }

    /// Puts `[lo, hi)` at position `k`, moving the later ranges up (the block has room).
    pub(crate) fn insert_range(&mut self, k: usize, lo: u64, hi: u64) {
        let n = self.ranges();
        if n >= RANGES || k > n {
            return;
        }
        self.data.copy_within(k * 16..n * 16, k * 16 + 16);
        self.set_range(k, lo, hi);
        self.have[0] = n as u64 + 1;
    }

    /// Removes range `k`, moving the later ranges down.
    pub(crate) fn remove_range(&mut self, k: usize) {
        let n = self.ranges();
        if k >= n {
            return;
        }
        self.data.copy_within(k * 16 + 16..n * 16, k * 16);
        self.have[0] = n as u64 - 1;
    }

    /// Forgets every range, as gap memory.
    pub(crate) fn clear_ranges(&mut self) {
        self.have[0] = 0;
    }

    /// The last block of the list this block starts, as gap memory.
    pub(crate) fn last_block(&self) -> u32 {
        self.have[1] as u32
    }

    pub(crate) fn set_last_block(&mut self, i: u32) {
        self.have[1] = u64::from(i);
    }

    /// Blocks in the list this block starts, as gap memory.
    pub(crate) fn list_len(&self) -> u32 {
        self.have[2] as u32
    }

    pub(crate) fn set_list_len(&mut self, n: u32) {
        self.have[2] = u64::from(n);
    }

    /// End (internal offset) of a remembered cut that covers `off`, if any.
    pub(crate) fn cut_covering(&self, off: u64) -> Option<u64> {
        (0..CUTS)
            .filter(|&k| self.cut_len[k] > 0)
            .map(|k| {
                let lo = self.base + u64::from(self.cut_at[k]);
                (lo, lo + u64::from(self.cut_len[k]))
            })
            .filter(|&(lo, hi)| lo <= off && off < hi)
            .map(|(_, hi)| hi)
            .max()
    }
}

/// The blocks and their free list. Blocks never used yet are taken from a high-water mark
/// instead of the list, so start-up touches none of them (the host's pool can be large).
#[derive(Debug)]
pub(crate) struct Pool<'s> {
    blocks: &'s mut [Block],
    /// Usable blocks (indexes are u32 with NIL reserved).
    len: u32,
    /// Released blocks.
    free: u32,
    /// Blocks at or above this index were never used.
    fresh: u32,
    free_count: u32,
}

impl<'s> Pool<'s> {
    pub(crate) fn new(blocks: &'s mut [Block]) -> Self {
        let len = blocks.len().min(MAX_BLOCKS) as u32;
        Pool {
            blocks,
            len,
            free: NIL,
            fresh: 0,
            free_count: len,
        }
    }

    /// A block, if `allowed` and one is free.
    pub(crate) fn alloc_if(&mut self, allowed: bool) -> Option<u32> {
        if allowed {
            self.alloc()
        } else {
            None
        }
    }

    pub(crate) fn alloc(&mut self) -> Option<u32> {
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.blocks[i as usize].next;
            i
        } else if self.fresh < self.len {
            self.fresh += 1;
            self.fresh - 1
        } else {
            return None;
        };
        let b = &mut self.blocks[i as usize];
        b.next = NIL;
        b.have = [0; WORDS];
        b.cut_len = [0; CUTS];
        self.free_count -= 1;
        Some(i)
    }

    pub(crate) fn release(&mut self, i: u32) {
        if let Some(b) = self.blocks.get_mut(i as usize) {
            b.next = self.free;
            self.free = i;
            self.free_count += 1;
        }
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    /// Moves the ranges of gap-memory block `from` from its `k`-th on to the empty block
    /// `to`.
    pub(crate) fn move_ranges(&mut self, from: u32, k: usize, to: u32) {
        let n = self.get(from).ranges();
        for j in k..n {
            let (lo, hi) = self.get(from).range(j);
            self.get_mut(to).set_range(j - k, lo, hi);
        }
        self.get_mut(to).have[0] = n.saturating_sub(k) as u64;
        self.get_mut(from).have[0] = k.min(n) as u64;
    }

    /// Blocks in the pool.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn get(&self, i: u32) -> &Block {
        &self.blocks[i as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Block {
        &mut self.blocks[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn allocates_every_block_once_then_reuses_released_ones() {
        let mut storage = vec![Block::EMPTY; 3];
        let mut pool = Pool::new(&mut storage);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let c = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
        assert_eq!(pool.free_count(), 0);
        assert!(a != b && b != c && a != c);
        pool.release(b);
        assert_eq!(pool.alloc(), Some(b));
    }

    #[test]
    fn presence_bits_find_runs() {
        let mut b = Block::EMPTY;
        assert_eq!(b.next_set(0), BLOCK_DATA);
        assert_eq!(b.next_clear(5), 5);
        for (lo, hi) in [(3, 4), (60, 70), (100, 300), (1000, 1024)] {
            b.set(lo, hi);
        }
        for i in 0..BLOCK_DATA {
            let want = [(3, 4), (60, 70), (100, 300), (1000, 1024)]
                .iter()
                .any(|&(lo, hi)| (lo..hi).contains(&i));
            assert_eq!(b.has(i), want, "{i}");
        }
        assert_eq!(b.next_set(0), 3);
        assert_eq!(b.next_set(4), 60);
        assert_eq!(b.next_clear(60), 70);
        assert_eq!(b.next_set(70), 100);
        assert_eq!(b.next_clear(100), 300);
        assert_eq!(b.next_set(300), 1000);
        assert_eq!(b.next_clear(1000), BLOCK_DATA);
        b.set(0, BLOCK_DATA);
        assert_eq!(b.next_clear(0), BLOCK_DATA);
    }

    #[test]
    fn cuts_are_labels_that_may_be_dropped() {
        let mut b = Block::EMPTY;
        b.base = 2048;
        b.add_cut(10, 100);
        b.add_cut(1024, 5000);
        b.add_cut(500, 1); // no room: forgotten
        assert_eq!(b.cut_covering(2048 + 10), Some(2048 + 110));
        assert_eq!(b.cut_covering(2048 + 109), Some(2048 + 110));
        assert_eq!(b.cut_covering(2048 + 110), None);
        assert_eq!(b.cut_covering(3072 + 4999), Some(3072 + 5000));
        assert_eq!(b.cut_covering(2048 + 500), None);
    }

    #[test]
    fn gap_memory_ranges_insert_remove_and_move() {
        let mut storage = vec![Block::EMPTY; 2];
        let mut pool = Pool::new(&mut storage);
        let (a, b) = (pool.alloc().unwrap(), pool.alloc().unwrap());
        let blk = pool.get_mut(a);
        for k in 0..RANGES {
            blk.insert_range(k, k as u64 * 10, k as u64 * 10 + 5);
        }
        assert_eq!(blk.ranges(), RANGES);
        // Full: refused, nothing moves.
        blk.insert_range(3, 1, 2);
        assert_eq!((blk.ranges(), blk.range(3)), (RANGES, (30, 35)));
        blk.remove_range(0);
        assert_eq!((blk.ranges(), blk.range(0)), (RANGES - 1, (10, 15)));
        blk.insert_range(0, 0, 5);
        assert_eq!(blk.range(1), (10, 15));
        pool.move_ranges(a, RANGES / 2, b);
        assert_eq!(pool.get(a).ranges(), RANGES / 2);
        assert_eq!(pool.get(b).ranges(), RANGES / 2);
        assert_eq!(
            pool.get(b).range(0),
            (RANGES as u64 / 2 * 10, RANGES as u64 / 2 * 10 + 5)
        );
        assert_eq!(
            pool.get(a).range(RANGES / 2 - 1).0,
            (RANGES as u64 / 2 - 1) * 10
        );
        // A fresh block holds no ranges, whatever it held before.
        pool.release(a);
        assert_eq!(pool.alloc(), Some(a));
        assert_eq!(pool.get(a).ranges(), 0);
    }

    #[test]
    fn empty_pool_allocates_nothing() {
        let mut storage: [Block; 0] = [];
        let mut pool = Pool::new(&mut storage);
        assert!(pool.alloc().is_none());
    }
}
