//! Storage capacities and what they cost: the engine's memory is exactly this, by
//! construction (it never allocates).

use crate::defrag::FragSlot;
use crate::pool::Block;
use crate::table::{FlowRecord, HotSlot};

/// How much of each kind of storage to hand the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Capacities {
    /// Flow records: connections tracked at once (closed ones are kept while there is room,
    /// to number reused 4-tuples). Hot slots for the active ones: [`Capacities::hot_len`].
    pub flows: usize,
    /// Out-of-order pool blocks of [`crate::pool::BLOCK_DATA`] bytes, shared by all flows.
    pub blocks: usize,
    /// Fragmented datagrams reassembled at once.
    pub frag_slots: usize,
    /// Largest fragmented datagram (bytes of each fragment slot).
    pub frag_slot_bytes: usize,
}

impl Capacities {
    /// A 64 MB OpenWrt router: about 6 MiB for the engine, leaving the rest to the kernel,
    /// the spool's buffers and the other daemons.
    pub const ROUTER: Capacities = Capacities {
        flows: 8192,
        blocks: 2048,
        frag_slots: 16,
        frag_slot_bytes: 65536,
    };

    /// A workstation: 262,144 concurrent flows and 32 MiB of out-of-order data.
    pub const WORKSTATION: Capacities = Capacities {
        flows: 262_144,
        blocks: 32_768,
        frag_slots: 64,
        frag_slot_bytes: 65536,
    };

    /// Length of the hash index: a power of two, at least twice the flows.
    pub const fn index_len(&self) -> usize {
        let n = self.flows.saturating_mul(2);
        if n < 2 {
            2
        } else {
            n.next_power_of_two()
        }
    }

    /// Hot slots ([`crate::Storage::hot`]) for these flows: one in eight up to 1,024,
    /// then one in 128; at least 8 (or every flow, for fewer). Enough for the connections that
    /// are active within a few thousand packets of each other; the rest wait packed.
    pub const fn hot_len(&self) -> usize {
        let f = self.flows;
        if f <= 8 {
            return f;
        }
        let mut h = f / 8;
        if h > 1024 {
            h = 1024;
        }
        if h < 8 {
            h = 8;
        }
        if f / 128 > h {
            f / 128
        } else {
            h
        }
    }

    /// Bytes of storage these capacities take.
    pub const fn memory_bytes(&self) -> usize {
        self.flows * core::mem::size_of::<FlowRecord>()
            + self.hot_len() * core::mem::size_of::<HotSlot>()
            + self.index_len() * core::mem::size_of::<u32>()
            + self.blocks * core::mem::size_of::<Block>()
            + self.frag_slots * (core::mem::size_of::<FragSlot>() + self.frag_slot_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::testutil::{pattern, Conv, Rec, Store, ACK};
    use crate::{Engine, LinkType, Timestamp};

    fn engine_with(c: Capacities) -> usize {
        let mut store = Store::from_caps(c);
        assert_eq!(store.bytes(), c.memory_bytes());
        let mut e = store.engine(Config::default());
        // Fill the table past its capacity with out-of-order data: nothing grows.
        let mut rec = Rec::default();
        for i in 0..(c.flows + 100) as u32 {
            let conv = Conv::new(i as u16, i, 0);
            let mut f = conv.frame_at(0, 1000 + i, ACK, &pattern(600, i));
            f[29] = (i >> 16) as u8; // client address varies beyond 65536 flows
            e.process(Timestamp(i as u64), LinkType::ETHERNET, &f, &mut rec)
                .unwrap();
        }
        assert_eq!(e.capacity(), c.flows);
        // Flows holding out-of-order data do not fit one record each: some take two.
        assert!(e.open_flows() <= c.flows && e.open_flows() > c.flows / 2);
        core::mem::size_of::<Engine<'_>>()
    }

    /// The figures the README quotes.
    #[test]
    fn memory_of_the_documented_configurations() {
        std::println!(
            "record {} B, hot slot {} B, block {} B, frag slot {} B + data",
            core::mem::size_of::<FlowRecord>(),
            core::mem::size_of::<HotSlot>(),
            core::mem::size_of::<Block>(),
            core::mem::size_of::<FragSlot>()
        );
        for (name, c, bound) in [
            ("router", Capacities::ROUTER, 5 << 20),
            ("workstation", Capacities::WORKSTATION, 64 << 20),
        ] {
            let engine = engine_with(c);
            let total = c.memory_bytes() + engine;
            std::println!(
                "{name}: {c:?}: {} KiB (engine struct {engine} B)",
                total / 1024
            );
            assert!(
                total <= bound,
                "{name}: {total} bytes over the documented {bound}"
            );
        }
    }
}
