//! The vocabulary of a connection: its key, its directions, and the figures the sink is
//! given with every event.

use crate::decode::{Addr, Vlans};
use crate::time::Timestamp;

/// A direction within a connection. `AtoB` is from the side that sent the first packet seen
/// (the SYN when the handshake was captured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dir {
    /// From the side that sent the first packet seen.
    AtoB = 0,
    /// Towards that side.
    BtoA = 1,
}

impl Dir {
    /// Both directions, `AtoB` first.
    pub const BOTH: [Dir; 2] = [Dir::AtoB, Dir::BtoA];
    /// 0 for `AtoB`, 1 for `BtoA`: the index of the direction's entry in per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
    /// The other direction.
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
    /// Addresses of side A and side B.
    pub addr: [Addr; 2],
    /// Ports of side A and side B.
    pub port: [u16; 2],
    /// VLAN ids of the frames, outermost first.
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
    /// Ranges missing for good and their bytes: gap events, less what late bytes filled.
    pub gaps: u64,
    /// Bytes in those ranges.
    pub gap_bytes: u64,
    /// Bytes that came again (retransmissions, overlaps).
    pub retransmitted_bytes: u64,
    /// Of those, bytes that differed from the copy that was kept (an evasion signal).
    pub conflict_bytes: u64,
    /// A SYN was seen in this direction.
    pub syn: bool,
    /// A FIN was seen in this direction.
    pub fin: bool,
    /// This side reset the connection (a SYN after it clears the flag: a retry).
    pub rst: bool,
}

impl DirInfo {
    /// Nothing seen yet.
    pub const EMPTY: DirInfo = DirInfo {
        packets: 0,
        payload_bytes: 0,
        stream_len: 0,
        ooo_segments: 0,
        gaps: 0,
        gap_bytes: 0,
        retransmitted_bytes: 0,
        conflict_bytes: 0,
        syn: false,
        fin: false,
        rst: false,
    };
}

/// What the sink is told about a flow with every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowInfo {
    /// The flow's record: its index in [`Storage::flows`](crate::Storage::flows), stable
    /// while the flow is open, reused afterwards. Sinks may index their own per-flow state by
    /// it (it is below the `flows` storage length).
    pub slot: u32,
    /// Addresses, ports and VLAN ids.
    pub key: FlowKey,
    /// 0 for the first connection on this 4-tuple (and VLANs), 1 for the next, ...
    pub conn_index: u32,
    /// Capture time of the connection's first packet.
    pub first_ts: Timestamp,
    /// Capture time of its latest packet.
    pub last_ts: Timestamp,
    /// MAC addresses of side A and side B, when the link layer has them.
    pub macs: Option<[[u8; 6]; 2]>,
    /// Figures of each direction, indexed by [`Dir::index`].
    pub dirs: [DirInfo; 2],
}

/// Which connection and direction a frame's TCP segment went to (see
/// [`Outcome::Tcp`](crate::engine::Outcome::Tcp)): what per-flow outputs of frames, such as a
/// pcap per connection, need. `slot` and `conn_index` are those of the [`FlowInfo`] the sink
/// is given for that connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowRef {
    /// The connection's record, as [`FlowInfo::slot`].
    pub slot: u32,
    /// As [`FlowInfo::conn_index`].
    pub conn_index: u32,
    /// The direction the segment travelled in.
    pub dir: Dir,
}
