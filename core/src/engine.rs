//! The engine: frames in, sink events out.

use crate::decode::{Addr, DecodeError, LinkType, Vlans};
use crate::defrag::FragSlot;
use crate::pool::Block;
use crate::stats::Stats;
use crate::table::FlowSlot;
use crate::Timestamp;

/// A direction within a connection. `AtoB` is from the side that sent the first packet seen
/// (the SYN when the handshake was captured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dir {
    AtoB = 0,
    BtoA = 1,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::AtoB, Dir::BtoA];
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn reverse(self) -> Dir {
        match self {
            Dir::AtoB => Dir::BtoA,
            Dir::BtoA => Dir::AtoB,
        }
    }
}

/// A connection's addresses, ports and VLAN ids. `addr[0]`/`port[0]` is side A.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowKey {
    pub addr: [Addr; 2],
    pub port: [u16; 2],
    pub vlans: Vlans,
}

impl FlowKey {
    /// Source address and port of data flowing in `dir`.
    pub fn src(&self, dir: Dir) -> (Addr, u16) {
        (self.addr[dir.index()], self.port[dir.index()])
    }
    /// Destination address and port of data flowing in `dir`.
    pub fn dst(&self, dir: Dir) -> (Addr, u16) {
        let i = dir.reverse().index();
        (self.addr[i], self.port[i])
    }
}

/// Per-direction figures of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DirInfo {
    /// Segments seen in this direction (with or without payload).
    pub packets: u64,
    /// Payload bytes seen, duplicates included.
    pub payload_bytes: u64,
    /// Stream length so far: bytes delivered plus gap bytes.
    pub stream_len: u64,
    /// Segments that arrived ahead of a hole.
    pub ooo_segments: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes that came again (retransmissions, overlaps).
    pub retransmitted_bytes: u64,
    /// Of those, bytes that differed from the copy that was kept (an evasion signal).
    pub conflict_bytes: u64,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// What the sink is told about a flow with every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowInfo {
    /// Slot in the flow table: stable while the flow is open, reused afterwards. Sinks may index
    /// their own per-flow state by it (slots < the `flows` storage length).
    pub slot: u32,
    pub key: FlowKey,
    /// 0 for the first connection on this 4-tuple (and VLANs), 1 for the next, ...
    pub conn_index: u32,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// MAC addresses of side A and side B, when the link layer has them.
    pub macs: Option<[[u8; 6]; 2]>,
    pub dirs: [DirInfo; 2],
}

/// Why a flow was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CloseReason {
    /// Both sides sent FIN and every byte before them was delivered or reported as a gap.
    Fin,
    Rst,
    /// No packet for the idle timeout (capture time).
    Idle,
    /// The table was full and this was the least recently active flow.
    Evicted,
    /// A new connection started on the same 4-tuple.
    Reused,
    /// The input ended (or the embedder asked to finish).
    EndOfInput,
}

/// Why bytes are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GapReason {
    /// Never captured (or dropped when the pool was full, or the flow closed first).
    Lost,
    /// The snap length cut the packet that carried them.
    Snaplen,
}

/// Which copy wins when two segments carry different bytes for the same stream offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OverlapPolicy {
    /// The first copy seen (tshark, Zeek, Suricata's default).
    #[default]
    First,
    /// The last copy seen.
    Last,
}

/// Receives what the engine reconstructs. Every method but `data` has a no-op default.
pub trait Sink {
    /// A flow was created (first packet of a connection).
    fn open(&mut self, _flow: &FlowInfo) {}
    /// Stream bytes of `dir` at `offset`. Offsets only grow, except that under
    /// [`OverlapPolicy::Last`] bytes already delivered may be delivered again with new content.
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]);
    /// Bytes `[offset, offset + len)` of `dir` are missing for good.
    fn gap(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _len: u64, _reason: GapReason) {}
    /// Bytes already delivered came again. Return true if they differ from what was delivered
    /// (the core does not keep delivered bytes; a sink that does can tell). Under
    /// [`OverlapPolicy::Last`] a differing copy is then delivered again through `data`.
    fn redelivered(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _data: &[u8]) -> bool {
        false
    }
    /// The flow is finished; no event for this slot follows until it is reused.
    fn close(&mut self, _flow: &FlowInfo, _reason: CloseReason) {}
}

/// Tunables. Timeouts are capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Close a flow after this long without a packet; 0 never.
    pub idle_timeout_ns: u64,
    /// Drop an incomplete fragmented datagram after this long.
    pub frag_timeout_ns: u64,
    pub overlap: OverlapPolicy,
    /// Out-of-order pool blocks one direction may hold (its bound on holes and held data).
    pub max_blocks_per_dir: u32,
    /// A flow picked up midstream holds its first segments this long (in segments) so that
    /// earlier data arriving late still lands in front of them.
    pub midstream_hold_segments: u32,
    /// Key of the flow table's hash; the host draws it at random.
    pub hash_key: [u64; 2],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout_ns: 0,
            frag_timeout_ns: 30_000_000_000,
            overlap: OverlapPolicy::First,
            max_blocks_per_dir: 512,
            midstream_hold_segments: 16,
            hash_key: [0x736f_6d65_7073_6575, 0x646f_7261_6e64_6f6d],
        }
    }
}

/// All the memory the engine uses, handed in by the embedder.
#[derive(Debug)]
pub struct Storage<'s> {
    /// Flow table slots: the maximum number of tracked connections.
    pub flows: &'s mut [FlowSlot],
    /// Hash index; length a power of two, at least twice `flows.len()`.
    pub index: &'s mut [u32],
    /// Out-of-order pool shared by all flows.
    pub blocks: &'s mut [Block],
    /// Fragment reassembly slots, and the bytes they share (split evenly).
    pub frag_slots: &'s mut [FragSlot],
    pub frag_arena: &'s mut [u8],
}

/// What happened to a frame that decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// A TCP segment was processed.
    Tcp,
    /// A fragment was held until its datagram completes.
    FragmentHeld,
    /// Not TCP (or not IP): ignored.
    Ignored,
}

/// The reassembly engine.
#[derive(Debug)]
pub struct Engine<'s> {
    _s: Storage<'s>,
    stats: Stats,
}

impl<'s> Engine<'s> {
    pub fn new(storage: Storage<'s>, config: Config) -> Self {
        let _ = config;
        Engine { _s: storage, stats: Stats::default() }
    }

    /// Feeds one frame.
    pub fn process<S: Sink>(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        sink: &mut S,
    ) -> Result<Outcome, DecodeError> {
        let _ = (ts, link, frame, sink);
        todo!()
    }

    /// Runs timeouts up to `now` without a packet (live capture when traffic stops).
    pub fn advance<S: Sink>(&mut self, now: Timestamp, sink: &mut S) {
        let _ = (now, sink);
    }

    /// Closes every flow (reason `EndOfInput`), delivering what is held, with gaps.
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        let _ = sink;
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
