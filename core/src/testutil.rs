//! Test helpers: owned storage, a sink that records every event and checks the event
//! contract, and hand-built frames.

use std::collections::HashMap;
use std::vec;
use std::vec::Vec;

use crate::config::Config;
use crate::defrag::FragSlot;
use crate::engine::Engine;
use crate::flow::{Dir, FlowInfo, FlowKey};
use crate::pool::Block;
use crate::sink::{CloseReason, GapReason, Sink};
use crate::storage::Storage;
use crate::table::{FlowRecord, HotSlot as FlowSlot};

/// Storage owned by a test.
pub struct Store {
    pub flows: Vec<FlowRecord>,
    pub hot: Vec<FlowSlot>,
    pub index: Vec<u32>,
    pub blocks: Vec<Block>,
    pub frag_slots: Vec<FragSlot>,
    pub frag_arena: Vec<u8>,
}

impl Store {
    pub fn new(flows: usize, blocks: usize) -> Self {
        // Few full slots, so that tests with several flows pack and unpack them.
        Self::with_hot(flows, blocks, flows.clamp(1, 2))
    }

    pub fn with_hot(flows: usize, blocks: usize, hot: usize) -> Self {
        Store {
            flows: vec![FlowRecord::EMPTY; flows],
            hot: vec![FlowSlot::EMPTY; hot],
            index: vec![0; (flows * 2).next_power_of_two().max(2)],
            blocks: vec![Block::EMPTY; blocks],
            frag_slots: vec![FragSlot::EMPTY; 8],
            frag_arena: vec![0; 8 * 65536],
        }
    }

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
    pub gaps: Vec<(u64, u64, GapReason)>,
    /// Where the next event must start (the contract: offsets only grow).
    pub next: u64,
}

/// One connection as the sink saw it.
#[derive(Debug, Clone)]
pub struct FlowRec {
    pub key: FlowKey,
    pub conn_index: u32,
    pub dirs: [DirRec; 2],
    pub close: Option<CloseReason>,
    pub info: Option<FlowInfo>,
}

/// Records every event and panics when the event contract is broken.
#[derive(Debug, Default)]
pub struct Rec {
    pub flows: Vec<FlowRec>,
    pub by_slot: HashMap<u32, usize>,
    /// Allow data again at delivered offsets (the `last` overlap policy).
    pub allow_rewrite: bool,
    /// Late events taken.
    pub late_events: u64,
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
        if let Some(&i) = self.by_slot.get(&flow.slot) {
            let r = &mut self.flows[i];
            assert!(r.close.is_some(), "slot reopened while its flow is open");
            if flow.dirs.iter().any(|d| d.stream_len > 0) {
                // An evicted connection picked up again: its events carry on.
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
        if end > KEEP_BYTES_UP_TO {
            return false;
        }
        d.bytes[offset as usize..end as usize] != *data
    }

    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
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

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A TCP header (no options) followed by `payload`.
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + payload.len());
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.push(5 << 4);
    v.push(flags);
    v.extend_from_slice(&65535u16.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

/// An IPv4 packet (no options, checksum not computed: the decoder does not check it).
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + payload.len());
    v.push(0x45);
    v.push(0);
    v.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

/// An Ethernet frame, padded to the 60-byte minimum with 0xEE (never zero, so padding that
/// leaks into a stream shows).
pub fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    while v.len() < 60 {
        v.push(0xEE);
    }
    v
}

/// Builds the frames of one IPv4 connection over Ethernet, tracking sequence numbers.
#[derive(Debug, Clone)]
pub struct Conv {
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
    /// Next sequence number of each side (0: client, 1: server).
    pub seq: [u32; 2],
}

impl Conv {
    pub fn new(cport: u16, isn_c: u32, isn_s: u32) -> Self {
        Conv {
            client: ([10, 0, 0, 1], cport),
            server: ([10, 0, 0, 2], 80),
            seq: [isn_c, isn_s],
        }
    }

    /// A frame from `side` (0 client, 1 server) with explicit sequence number.
    pub fn frame_at(&self, side: usize, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (s, d) = if side == 0 {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ack = self.seq[1 - side];
        ether(
            0x0800,
            &ipv4(s.0, d.0, 6, &tcp(s.1, d.1, seq, ack, flags, payload)),
        )
    }

    /// A frame from `side` at its current sequence number; advances it.
    pub fn send(&mut self, side: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
        let f = self.frame_at(side, self.seq[side], flags, payload);
        let mut n = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            n += 1;
        }
        self.seq[side] = self.seq[side].wrapping_add(n);
        f
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.send(0, SYN, &[]),
            self.send(1, SYN | ACK, &[]),
            self.send(0, ACK, &[]),
        ]
    }

    /// FIN from each side and the last ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.send(0, FIN | ACK, &[]),
            self.send(1, FIN | ACK, &[]),
            self.send(0, ACK, &[]),
        ]
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}
