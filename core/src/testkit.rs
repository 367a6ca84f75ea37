//! The test kit's pieces made of the core's own types: storage owned by a test ([`Store`])
//! and the sink that records every event and panics when the event contract is broken
//! ([`Rec`]). One copy for the core's unit tests (`cfg(test)`), its integration tests and
//! benchmark, the tests crate's tests and the fuzz harnesses (feature `testkit`). Frames,
//! captures and conversations come from the `tcpflow-tests` crate, which knows no core type.

use core::mem::size_of_val;
use std::collections::HashMap;
use std::vec;
use std::vec::Vec;

use crate::config::Config;
use crate::defrag::FragSlot;
use crate::engine::Engine;
use crate::flow::{Dir, FlowInfo, FlowKey};
use crate::pool::Block;
use crate::sink::{CloseReason, GapReason, Sink};
use crate::sizing::Capacities;
use crate::storage::Storage;
use crate::table::{FlowRecord, HotSlot};

/// Storage owned by a test.
pub struct Store {
    /// Flow records.
    pub flows: Vec<FlowRecord>,
    /// Hot slots.
    pub hot: Vec<HotSlot>,
    /// The flow index.
    pub index: Vec<u32>,
    /// Out-of-order pool blocks.
    pub blocks: Vec<Block>,
    /// Fragment slots.
    pub frag_slots: Vec<FragSlot>,
    /// Fragment reassembly bytes.
    pub frag_arena: Vec<u8>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("flows", &self.flows.len())
            .field("hot", &self.hot.len())
            .field("index", &self.index.len())
            .field("blocks", &self.blocks.len())
            .field("frag_slots", &self.frag_slots.len())
            .field("frag_arena", &self.frag_arena.len())
            .finish()
    }
}

impl Store {
    /// `flows` records, `blocks` pool blocks, two full slots, 8 fragment slots of 64 KiB.
    pub fn new(flows: usize, blocks: usize) -> Self {
        // Few full slots, so that tests with several flows pack and unpack them.
        Self::with_hot(flows, blocks, flows.clamp(1, 2))
    }

    /// `flows` records, `blocks` pool blocks and `hot` hot slots; 8 fragment slots of 64 KiB.
    pub fn with_hot(flows: usize, blocks: usize, hot: usize) -> Self {
        Store {
            flows: vec![FlowRecord::EMPTY; flows],
            hot: vec![HotSlot::EMPTY; hot],
            index: vec![0; (flows * 2).next_power_of_two().max(2)],
            blocks: vec![Block::EMPTY; blocks],
            frag_slots: vec![FragSlot::EMPTY; 8],
            frag_arena: vec![0; 8 * 65536],
        }
    }

    /// Exactly the storage `c` describes (what the command and the firmware hand the engine).
    pub fn from_caps(c: Capacities) -> Self {
        Store {
            flows: vec![FlowRecord::EMPTY; c.flows],
            hot: vec![HotSlot::EMPTY; c.hot_len()],
            index: vec![0; c.index_len()],
            blocks: vec![Block::EMPTY; c.blocks],
            frag_slots: vec![FragSlot::EMPTY; c.frag_slots],
            frag_arena: vec![0; c.frag_slots * c.frag_slot_bytes],
        }
    }

    /// `n` full slots instead: fewer than the flows makes a test pack and unpack them.
    pub fn hot(mut self, n: usize) -> Self {
        self.hot = vec![HotSlot::EMPTY; n];
        self
    }

    /// Bytes of the slices handed to the engine (`Capacities::memory_bytes` for
    /// [`Store::from_caps`]).
    pub fn bytes(&self) -> usize {
        size_of_val(self.flows.as_slice())
            + size_of_val(self.hot.as_slice())
            + size_of_val(self.index.as_slice())
            + size_of_val(self.blocks.as_slice())
            + size_of_val(self.frag_slots.as_slice())
            + self.frag_arena.len()
    }

    /// An engine over this storage (which must be what its capacities build).
    pub fn engine(&mut self, cfg: Config) -> Engine<'_> {
        Engine::new(
            Storage {
                flows: &mut self.flows,
                hot: &mut self.hot,
                index: &mut self.index,
                blocks: &mut self.blocks,
                frag_slots: &mut self.frag_slots,
                frag_arena: &mut self.frag_arena,
            },
            cfg,
        )
        .expect("storage built from its capacities")
    }
}

/// Bytes past this offset are checked against the contract but not kept: random frames can
/// open gaps of gigabytes, more than a 32-bit target under qemu can allocate.
const KEEP_BYTES_UP_TO: u64 = 64 << 20;

/// One direction as the sink saw it.
#[derive(Debug, Default, Clone)]
pub struct DirRec {
    /// Bytes at their offsets; gaps are zeros. Only the first `KEEP_BYTES_UP_TO`.
    pub bytes: Vec<u8>,
    /// Gaps reported: offset, length, reason.
    pub gaps: Vec<(u64, u64, GapReason)>,
    /// Where the next event must start (the contract: offsets only grow).
    pub next: u64,
    /// The last `redelivered` bytes that differed: the only ones a rewrite (the `last`
    /// policy) may deliver again.
    pub differed: Option<(u64, Vec<u8>)>,
}

impl DirRec {
    /// Whether `offset..offset + len` touches a reported gap.
    pub fn in_gap(&self, offset: u64, len: u64) -> bool {
        self.gaps
            .iter()
            .any(|&(o, l, _)| offset < o + l && o < offset + len)
    }
}

/// One connection as the sink saw it.
#[derive(Debug, Clone)]
pub struct FlowRec {
    /// The connection's key.
    pub key: FlowKey,
    /// Its number among the connections of the same 4-tuple.
    pub conn_index: u32,
    /// The two directions (`Dir::index`).
    pub dirs: [DirRec; 2],
    /// How it closed, once it has.
    pub close: Option<CloseReason>,
    /// The flow as the close event gave it.
    pub info: Option<FlowInfo>,
}

/// Records every event and panics when the event contract is broken.
#[derive(Debug, Default)]
pub struct Rec {
    /// Every connection, in the order opened.
    pub flows: Vec<FlowRec>,
    /// Connection (`flows` index) by flow record slot.
    pub by_slot: HashMap<u32, usize>,
    /// Allow data again at delivered offsets (the `last` overlap policy).
    pub allow_rewrite: bool,
    /// Refuse late bytes (a sink that cannot write into a reported gap): the core counts
    /// them late instead of delivered.
    pub refuse_late: bool,
    /// Expect evicted connections picked up again (set it with
    /// [`Config::resume_evicted`]); without it an `open` that carries a stream is a breach.
    pub resume_evicted: bool,
    /// Late events taken.
    pub late_events: u64,
    /// `redelivered` calls: (direction, offset, length, whether it touched a reported gap).
    pub redelivered: Vec<(Dir, u64, u64, bool)>,
}

impl Rec {
    fn cur(&mut self, flow: &FlowInfo) -> &mut FlowRec {
        let i = *self
            .by_slot
            .get(&flow.slot)
            .expect("event for a flow never opened");
        let r = &mut self.flows[i];
        assert!(r.close.is_none(), "event after close");
        assert_eq!(r.key, flow.key);
        r
    }

    /// The single flow with this conn index whose side A has port `a_port`.
    pub fn find(&self, a_port: u16, conn_index: u32) -> &FlowRec {
        let v: Vec<_> = self
            .flows
            .iter()
            .filter(|f| f.key.port[0] == a_port && f.conn_index == conn_index)
            .collect();
        assert_eq!(
            v.len(),
            1,
            "flows with port {a_port} conn {conn_index}: {:?}",
            self.flows
        );
        v[0]
    }
}

impl Sink for Rec {
    fn open(&mut self, flow: &FlowInfo) {
        let resumed = flow.dirs.iter().any(|d| d.stream_len > 0);
        // `Sink::open`: only an evicted connection picked up again under `resume_evicted`
        // opens with a stream; a new one starts at offset 0.
        assert!(
            !resumed || self.resume_evicted,
            "an open with a stream without resume_evicted"
        );
        if let Some(&i) = self.by_slot.get(&flow.slot) {
            let r = &mut self.flows[i];
            assert!(r.close.is_some(), "slot reopened while its flow is open");
            if resumed {
                // An evicted connection picked up again: its events carry on.
                assert_eq!(
                    r.close,
                    Some(CloseReason::Evicted),
                    "resumed but not evicted"
                );
                assert_eq!((r.key, r.conn_index), (flow.key, flow.conn_index));
                for (d, di) in r.dirs.iter_mut().zip(&flow.dirs) {
                    assert_eq!(d.next, di.stream_len, "resumed elsewhere");
                    // Its gap figures start again with the resumed part.
                    d.gaps.clear();
                }
                r.close = None;
                return;
            }
        }
        assert!(!resumed, "resumed a connection never opened in its slot");
        self.flows.push(FlowRec {
            key: flow.key,
            conn_index: flow.conn_index,
            dirs: Default::default(),
            close: None,
            info: None,
        });
        self.by_slot.insert(flow.slot, self.flows.len() - 1);
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let rewrite = self.allow_rewrite;
        let d = &mut self.cur(flow).dirs[dir.index()];
        assert!(!data.is_empty(), "empty data event");
        if offset < d.next {
            assert!(rewrite, "data at {offset} behind {}", d.next);
            assert!(offset + data.len() as u64 <= d.next);
            let differed = d.differed.take();
            assert_eq!(
                differed.as_ref().map(|(o, b)| (*o, b.as_slice())),
                Some((offset, data)),
                "a rewrite that redelivered did not announce"
            );
        } else {
            assert_eq!(offset, d.next, "data must follow what was delivered");
            d.next += data.len() as u64;
        }
        let end = offset + data.len() as u64;
        if end > KEEP_BYTES_UP_TO {
            return;
        }
        let (offset, end) = (offset as usize, end as usize);
        if d.bytes.len() < end {
            d.bytes.resize(end, 0);
        }
        d.bytes[offset..end].copy_from_slice(data);
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        let d = &mut self.cur(flow).dirs[dir.index()];
        assert_eq!(offset, d.next, "gap must follow what was delivered");
        assert!(len > 0);
        d.next += len;
        d.bytes.resize(d.next.min(KEEP_BYTES_UP_TO) as usize, 0);
        d.gaps.push((offset, len, reason));
    }

    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let d = &mut self.cur(flow).dirs[dir.index()];
        let end = offset + data.len() as u64;
        assert!(end <= d.next, "redelivered beyond what was delivered");
        let in_gap = d.in_gap(offset, data.len() as u64);
        let differs = end <= KEEP_BYTES_UP_TO && d.bytes[offset as usize..end as usize] != *data;
        d.differed = differs.then(|| (offset, data.to_vec()));
        self.redelivered
            .push((dir, offset, data.len() as u64, in_gap));
        differs
    }

    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        if self.refuse_late {
            // Still an event for an open flow.
            self.cur(flow);
            return false;
        }
        let d = &mut self.cur(flow).dirs[dir.index()];
        let end = offset + data.len() as u64;
        assert!(!data.is_empty(), "empty late event");
        let k = d
            .gaps
            .iter()
            .position(|&(o, n, _)| o <= offset && end <= o + n)
            .unwrap_or_else(|| panic!("late bytes {offset}..{end} outside a gap: {:?}", d.gaps));
        let (o, n, reason) = d.gaps.remove(k);
        if end < o + n {
            d.gaps.insert(k, (end, o + n - end, reason));
        }
        if o < offset {
            d.gaps.insert(k, (o, offset - o, reason));
        }
        if end <= KEEP_BYTES_UP_TO {
            d.bytes[offset as usize..end as usize].copy_from_slice(data);
        }
        self.late_events += 1;
        true
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        let r = self.cur(flow);
        for (i, d) in r.dirs.iter().enumerate() {
            assert_eq!(
                flow.dirs[i].stream_len, d.next,
                "stream_len disagrees with events"
            );
            let missing: u64 = d.gaps.iter().map(|g| g.1).sum();
            assert_eq!(
                (flow.dirs[i].gaps, flow.dirs[i].gap_bytes),
                (d.gaps.len() as u64, missing),
                "gap counters disagree with gap and late events"
            );
        }
        r.close = Some(reason);
        r.info = Some(*flow);
    }
}
