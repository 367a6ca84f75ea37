//! The out-of-order pool: fixed-size blocks shared by every flow.
//!
//! A direction that has a hole keeps the data after it here, as a sorted singly linked list of
//! blocks, each holding up to [`BLOCK_DATA`] contiguous stream bytes. The pool never grows:
//! when it is empty the stream layer gives up on the oldest hole of the direction that needs
//! room (a gap event), so data is delivered late rather than lost.

/// Bytes of stream data one block holds: a full-size Ethernet segment fits in two.
pub const BLOCK_DATA: usize = 1024;

/// End of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One block of held data. Storage for [`crate::engine::Storage::blocks`]. Blocks are set
/// before use, and all-zero bytes are a valid block, so a host can allocate them zeroed.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub(crate) next: u32,
    pub(crate) len: u16,
    /// Stream offset (the direction's internal offset) of `data[0]`.
    pub(crate) offset: u64,
    /// Bytes right after this block's data that the snap length cut off: known to be lost.
    pub(crate) cut: u32,
    pub(crate) data: [u8; BLOCK_DATA],
}

impl Block {
    pub const EMPTY: Block = Block {
        next: NIL,
        len: 0,
        offset: 0,
        cut: 0,
        data: [0; BLOCK_DATA],
    };

    pub(crate) fn end(&self) -> u64 {
        self.offset + self.len as u64
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
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
        let len = blocks.len().min(NIL as usize - 1) as u32;
        Pool {
            blocks,
            len,
            free: NIL,
            fresh: 0,
            free_count: len,
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
        b.len = 0;
        b.cut = 0;
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
    fn empty_pool_allocates_nothing() {
        let mut storage: [Block; 0] = [];
        let mut pool = Pool::new(&mut storage);
        assert!(pool.alloc().is_none());
    }
}
