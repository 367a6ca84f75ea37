//! The memory the engine works in, handed in by the embedder, and the check that it is
//! what the engine can use whole.

use crate::defrag::FragSlot;
use crate::pool::{Block, MAX_BLOCKS};
use crate::sizing::Capacities;
use crate::table::{FlowRecord, HotSlot, MAX_RECORDS};

/// All the memory the engine uses, handed in by the embedder.
///
/// Build it from [`Capacities`]: `flows`, [`Capacities::hot_len`] hot slots (or any number
/// from one to `flows`), [`Capacities::index_len`] index entries, `blocks`, `frag_slots`, and
/// `frag_slots * frag_slot_bytes` arena bytes. [`Storage::check`] (which
/// [`Engine::new`](crate::Engine::new) runs) refuses storage the engine could not use whole,
/// rather than use less of it than was given.
#[derive(Debug)]
pub struct Storage<'s> {
    /// Flow records: the maximum number of tracked connections (80 bytes each).
    pub flows: &'s mut [FlowRecord],
    /// Hot slots for the connections active now (about 500 bytes each); the others wait
    /// packed in their records. At least one; [`crate::Capacities::hot_len`] suggests a size.
    pub hot: &'s mut [HotSlot],
    /// Hash index; length a power of two, at least twice `flows.len()`.
    pub index: &'s mut [u32],
    /// Out-of-order pool shared by all flows.
    pub blocks: &'s mut [Block],
    /// Fragment reassembly slots, and the bytes they share (split evenly).
    pub frag_slots: &'s mut [FragSlot],
    /// The bytes the fragment slots share (split evenly among them).
    pub frag_arena: &'s mut [u8],
}

/// Why [`Storage`] was refused: a length the engine cannot use whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StorageError {
    /// `index` is not a power of two at least twice `flows` long
    /// ([`Capacities::index_len`] gives the length).
    Index {
        /// Entries given.
        len: usize,
        /// Entries needed for the flows given.
        needed: usize,
    },
    /// More flow records than the table can number.
    TooManyFlows {
        /// Records given.
        flows: usize,
        /// The most the table takes.
        max: usize,
    },
    /// `hot` is empty (no flow could be worked on), or longer than `flows` (the extra slots
    /// would never be used).
    HotSlots {
        /// Hot slots given.
        hot: usize,
        /// Flow records given.
        flows: usize,
    },
    /// More pool blocks than the pool can number.
    TooManyBlocks {
        /// Blocks given.
        blocks: usize,
        /// The most the pool takes.
        max: usize,
    },
    /// `frag_arena` does not split evenly over `frag_slots` (or there are bytes and no slot).
    FragArena {
        /// Arena bytes given.
        arena: usize,
        /// Fragment slots given.
        slots: usize,
    },
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            StorageError::Index { len, needed } => write!(
                f,
                "hash index of {len} entries: must be a power of two of at least {needed}"
            ),
            StorageError::TooManyFlows { flows, max } => {
                write!(f, "{flows} flow records: at most {max}")
            }
            StorageError::HotSlots { hot, flows } => write!(
                f,
                "{hot} hot slots for {flows} flow records: from one to the number of records"
            ),
            StorageError::TooManyBlocks { blocks, max } => {
                write!(f, "{blocks} pool blocks: at most {max}")
            }
            StorageError::FragArena { arena, slots } => write!(
                f,
                "a fragment arena of {arena} bytes does not split evenly over {slots} slots"
            ),
        }
    }
}

impl Storage<'_> {
    /// The capacities this storage gives, if the engine can use all of it; otherwise what is
    /// wrong with it.
    pub fn check(&self) -> Result<Capacities, StorageError> {
        let flows = self.flows.len();
        if flows > MAX_RECORDS {
            return Err(StorageError::TooManyFlows {
                flows,
                max: MAX_RECORDS,
            });
        }
        let needed = flows.saturating_mul(2).max(2);
        let len = self.index.len();
        if !len.is_power_of_two() || len < needed {
            return Err(StorageError::Index { len, needed });
        }
        let hot = self.hot.len();
        if hot == 0 || hot > flows.max(1) {
            return Err(StorageError::HotSlots { hot, flows });
        }
        let blocks = self.blocks.len();
        if blocks > MAX_BLOCKS {
            return Err(StorageError::TooManyBlocks {
                blocks,
                max: MAX_BLOCKS,
            });
        }
        let (arena, slots) = (self.frag_arena.len(), self.frag_slots.len());
        let frag_slot_bytes = match arena.checked_div(slots) {
            Some(share) if share * slots == arena => share,
            None if arena == 0 => 0,
            _ => return Err(StorageError::FragArena { arena, slots }),
        };
        Ok(Capacities {
            flows,
            blocks,
            frag_slots: slots,
            frag_slot_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// Storage of `caps`, built as the docs say, with `edit` applied to the lengths
    /// (flows, hot, index, blocks, frag slots, arena).
    fn check(caps: Capacities, edit: impl Fn(&mut [usize; 6])) -> Result<Capacities, StorageError> {
        let mut n = [
            caps.flows,
            caps.hot_len(),
            caps.index_len(),
            caps.blocks,
            caps.frag_slots,
            caps.frag_slots * caps.frag_slot_bytes,
        ];
        edit(&mut n);
        let mut flows = vec![FlowRecord::EMPTY; n[0]];
        let mut hot = vec![HotSlot::EMPTY; n[1]];
        let mut index = vec![0u32; n[2]];
        let mut blocks = vec![Block::EMPTY; n[3]];
        let mut frag_slots = vec![FragSlot::EMPTY; n[4]];
        let mut frag_arena = vec![0u8; n[5]];
        Storage {
            flows: &mut flows,
            hot: &mut hot,
            index: &mut index,
            blocks: &mut blocks,
            frag_slots: &mut frag_slots,
            frag_arena: &mut frag_arena,
        }
        .check()
    }

    #[test]
    fn storage_built_from_capacities_is_taken_whole() {
        let small = Capacities {
            flows: 100,
            blocks: 10,
            frag_slots: 2,
            frag_slot_bytes: 1000,
        };
        for caps in [small, Capacities::ROUTER] {
            assert_eq!(check(caps, |_| {}), Ok(caps));
        }
        let none = Capacities {
            flows: 0,
            blocks: 0,
            frag_slots: 0,
            frag_slot_bytes: 0,
        };
        assert_eq!(check(none, |n| n[1] = 1), Ok(none));
    }

    #[test]
    fn storage_the_engine_would_shrink_is_refused() {
        let caps = Capacities {
            flows: 100,
            blocks: 10,
            frag_slots: 2,
            frag_slot_bytes: 1000,
        };
        assert_eq!(
            check(caps, |n| n[2] = 300),
            Err(StorageError::Index {
                len: 300,
                needed: 200
            })
        );
        assert_eq!(
            check(caps, |n| n[2] = 128),
            Err(StorageError::Index {
                len: 128,
                needed: 200
            })
        );
        assert_eq!(
            check(caps, |n| n[1] = 0),
            Err(StorageError::HotSlots { hot: 0, flows: 100 })
        );
        assert_eq!(
            check(caps, |n| n[1] = 101),
            Err(StorageError::HotSlots {
                hot: 101,
                flows: 100
            })
        );
        assert_eq!(
            check(caps, |n| n[5] = 2001),
            Err(StorageError::FragArena {
                arena: 2001,
                slots: 2
            })
        );
        assert_eq!(
            check(caps, |n| (n[4], n[5]) = (0, 10)),
            Err(StorageError::FragArena {
                arena: 10,
                slots: 0
            })
        );
    }
}
