//! The memory the engine works in, handed in by the embedder.

use crate::defrag::FragSlot;
use crate::pool::Block;
use crate::table::{FlowRecord, HotSlot};

/// All the memory the engine uses, handed in by the embedder.
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
    pub frag_arena: &'s mut [u8],
}
