//! Sizing the engine and the command's buffers, from defaults or from one RAM budget
//! (`--memory`).
//!
//! The engine never allocates after start: its flow records and full slots, hash index,
//! out-of-order pool and fragment slots are allocated once, at the sizes chosen here, and what
//! they cost is [`tcpflow_core::Capacities::memory_bytes`]. The command adds its own state per
//! flow (file names and buffers bookkeeping, or the spool writer's table) and its output
//! buffers.
//!
//! The split of a budget (documented in `--help` and host/README.md):
//! - 60%: the flow table: engine records and slots, hash index and the command's state per
//!   flow;
//! - 25%: the out-of-order pool;
//! - 5%: fragment reassembly, in 64 KiB slots (1 to 64);
//! - 10%: output buffers (file writes; the spool writer's buffer takes up to [`SPOOL_BUFFER_MAX`] of it).

use tcpflow_core::spool::{SegmentTally, SpoolFlow};
use tcpflow_core::Capacities;
use tcpflow_core::FragSlot;
use tcpflow_core::{Block, BLOCK_DATA};

/// Shares of `--memory`, in percent.
pub const FLOWS_PCT: u64 = 60;
pub const POOL_PCT: u64 = 25;
pub const FRAG_PCT: u64 = 5;
pub const BUFFERS_PCT: u64 = 10;

/// Bytes of one fragment slot (the largest datagram reassembled).
pub const FRAG_SLOT_BYTES: usize = 64 * 1024;
/// The spool writer's buffer, at least and at most: records go to storage in writes of its
/// size, and at each sync. Larger writes cost fewer system calls (1 MiB rather than 64 KiB:
/// `bench --spool` concurrent 2.1 -> 1.8 x copy), so it takes the buffers' share up to the
/// most; both are multiples of the 4 KiB block and hold the largest record.
pub const SPOOL_BUFFER_MIN: usize = 64 * 1024;
pub const SPOOL_BUFFER_MAX: usize = 1024 * 1024;
/// Segments whose drops the spool writer counts as it fills them, so that it need not read
/// them back when the ring reuses them ([`tcpflow_core::spool::SegmentTally`], 16 bytes
/// each): a spool of up to 4 GiB in 1 MiB segments. Segments past them are read back.
pub const SPOOL_TALLIES: usize = 4096;
/// Their bytes, out of the buffers' share.
const SPOOL_TALLY_BYTES: usize = SPOOL_TALLIES * std::mem::size_of::<SegmentTally>();
/// The most flows the command accepts.
pub const MAX_FLOWS: u32 = 1 << 28;

/// Defaults without `--memory` (a workstation).
pub const DEFAULT_FLOWS: u32 = 262_144;
pub const DEFAULT_POOL_BLOCKS: u32 = 16_384;
pub const DEFAULT_FRAG_SLOTS: usize = 64;
// 16 MiB: the smallest that writes each short flow once where up to 2,000 connections are
// open (bench's many: 0 reopens; 12 MiB: 165, 8 MiB: 12,638). Past that, the oldest buffers
// go out early on the finishing thread, beside the decoding one, so more buys no speed and
// costs memory (200,000 connections open at once: 64 MiB ran alike with 188 MiB of RSS
// against 124). The file writer starts at less (`output::files::FIRST_BUDGET`) and grows to
// this only when directions go on after an early write.
pub const DEFAULT_BUFFER_BYTES: usize = 16 << 20;
/// The output buffers are never smaller than this (a few directions' worth).
pub const MIN_BUFFER_BYTES: usize = 256 << 10;

/// What the command's own state costs per flow slot, by output mode and whether `-b` cuts
/// (estimates that include the allocator's overhead).
pub fn host_bytes_per_flow(spool: bool, cut: bool) -> usize {
    if spool {
        // The spool writer's table and the `-R` flag.
        std::mem::size_of::<SpoolFlow>() + 1
    } else if cut {
        crate::output::FLOW_STATE_BYTES + crate::output::CUT_STATE_BYTES
    } else {
        crate::output::FLOW_STATE_BYTES
    }
}

/// Sizes of everything allocated at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    pub max_flows: u32,
    pub pool_blocks: u32,
    pub frag_slots: usize,
    pub frag_slot_bytes: usize,
    /// The file writer's buffer cap (`Limits::total_buffer`).
    pub buffer_bytes: usize,
}

impl Sizing {
    pub const DEFAULT: Sizing = Sizing {
        max_flows: DEFAULT_FLOWS,
        pool_blocks: DEFAULT_POOL_BLOCKS,
        frag_slots: DEFAULT_FRAG_SLOTS,
        frag_slot_bytes: FRAG_SLOT_BYTES,
        buffer_bytes: DEFAULT_BUFFER_BYTES,
    };

    /// The split of `budget` bytes (see the module docs). `host_per_flow` is
    /// [`host_bytes_per_flow`] for the output mode.
    pub fn from_budget(budget: u64, host_per_flow: usize) -> Sizing {
        let share = |pct: u64| (budget / 100).saturating_mul(pct) as usize;
        let flows_bytes = share(FLOWS_PCT);
        // The largest table that fits: the index is a power of two, so search.
        let fits = |n: usize| flow_table_bytes(n, host_per_flow) <= flows_bytes;
        let (mut lo, mut hi) = (0usize, MAX_FLOWS as usize);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let max_flows = lo.max(1) as u32;
        let pool_blocks =
            (share(POOL_PCT) / std::mem::size_of::<Block>()).clamp(1, u32::MAX as usize);
        let frag_slots =
            (share(FRAG_PCT) / (std::mem::size_of::<FragSlot>() + FRAG_SLOT_BYTES)).clamp(1, 64);
        let buffer_bytes = share(BUFFERS_PCT).max(MIN_BUFFER_BYTES);
        Sizing {
            max_flows,
            pool_blocks: pool_blocks as u32,
            frag_slots,
            frag_slot_bytes: FRAG_SLOT_BYTES,
            buffer_bytes,
        }
    }

    /// The spool writer's buffer with these sizes: the buffers' share less the tallies, within
    /// [`SPOOL_BUFFER_MIN`]..=[`SPOOL_BUFFER_MAX`], in whole 64 KiB.
    pub fn spool_buffer(&self) -> usize {
        // The tallies come out of the same share.
        let share = self
            .buffer_bytes
            .saturating_sub(SPOOL_TALLY_BYTES)
            .min(SPOOL_BUFFER_MAX);
        (share / SPOOL_BUFFER_MIN * SPOOL_BUFFER_MIN).max(SPOOL_BUFFER_MIN)
    }

    /// The engine's capacities.
    pub fn capacities(&self) -> Capacities {
        Capacities {
            flows: self.max_flows as usize,
            blocks: self.pool_blocks as usize,
            frag_slots: self.frag_slots,
            frag_slot_bytes: self.frag_slot_bytes,
        }
    }

    /// Bytes of out-of-order data the pool holds.
    pub fn ooo_bytes(&self) -> u64 {
        u64::from(self.pool_blocks) * BLOCK_DATA as u64
    }

    /// The memory these sizes take at most: the engine's storage, the command's state per
    /// flow, and the output buffers (the file writer's cap, or the spool writer's buffer).
    /// `cut`: `-b` was given.
    pub fn memory_bytes(&self, spool: bool, cut: bool) -> u64 {
        let per_flow = host_bytes_per_flow(spool, cut);
        let buffers = if spool {
            self.spool_buffer() + SPOOL_TALLY_BYTES
        } else {
            self.buffer_bytes
        };
        (self.capacities().memory_bytes() + self.max_flows as usize * per_flow + buffers) as u64
    }
}

/// Flow records and slots, hash index and the command's per-flow state for `n` flows.
fn flow_table_bytes(n: usize, host_per_flow: usize) -> usize {
    let c = Capacities {
        flows: n,
        blocks: 0,
        frag_slots: 0,
        frag_slot_bytes: 0,
    };
    c.memory_bytes() + n * host_per_flow
}

/// Full slots the engine gets for `flows` records ([`Capacities::hot_len`]).
pub fn hot_len(flows: usize) -> usize {
    Capacities {
        flows,
        blocks: 0,
        frag_slots: 0,
        frag_slot_bytes: 0,
    }
    .hot_len()
}

/// Pool blocks holding `bytes` of out-of-order data (at least one).
pub fn blocks_for(bytes: u64) -> u32 {
    bytes
        .div_ceil(BLOCK_DATA as u64)
        .clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_kept() {
        for budget in [4u64 << 20, 16 << 20, 64 << 20, 1 << 30] {
            for spool in [false, true] {
                for cut in [false, true] {
                    let s = Sizing::from_budget(budget, host_bytes_per_flow(spool, cut));
                    let used = s.memory_bytes(spool, cut);
                    assert!(used <= budget, "{budget}: {s:?} takes {used}");
                    // Not wasteful either: the shares are put to use (the spool needs only a
                    // small part of the buffers' share).
                    let floor = if spool { 80 } else { 90 };
                    assert!(used * 100 >= budget * floor, "{budget}: {s:?} takes {used}");
                    let table =
                        flow_table_bytes(s.max_flows as usize, host_bytes_per_flow(spool, cut));
                    assert!(table as u64 <= budget / 100 * FLOWS_PCT);
                }
            }
        }
    }

    #[test]
    fn router_budget() {
        let s = Sizing::from_budget(16 << 20, host_bytes_per_flow(true, false));
        assert!(s.max_flows >= 16_000, "{s:?}");
        assert!(s.ooo_bytes() >= 3 << 20, "{s:?}");
        assert_eq!(s.frag_slots, 12);
    }

    #[test]
    fn blocks_round_up() {
        assert_eq!(blocks_for(0), 1);
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(16 << 20), 16_384);
    }
}
