//! Shared by the firmware (`no_std`, thumbv7em) and its build script (host, std), so both
//! parse the captures, size the engine and digest the flows with the same code: the build
//! script runs it on the host to produce the expected digests, the firmware must reproduce
//! them through the NOR-flash spool.
//!
//! Only `core` and `tcpflow_core` here.

#![allow(dead_code)]

use tcpflow_core::{
    Addr, Capacities, CloseReason, Config, Dir, Engine, FlowInfo, GapReason, LinkType, Sink,
    Timestamp,
};

/// What the example hands the engine: a small microcontroller's worth (see README.md for
/// what it costs).
pub const CAPS: Capacities = Capacities {
    flows: 32,
    blocks: 64,
    frag_slots: 4,
    frag_slot_bytes: 8192,
};
pub const INDEX_LEN: usize = CAPS.index_len();
pub const FRAG_ARENA: usize = CAPS.frag_slots * CAPS.frag_slot_bytes;

/// The engine's tunables; the same on the host and in the firmware.
pub fn config() -> Config {
    Config {
        max_blocks_per_dir: 32,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Classic pcap

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum PcapError {
    /// Not a classic pcap file (pcapng and others are not handled here).
    Magic,
    /// The file ends inside its header.
    Header,
    /// A record header or body runs past the end of the file (at this record index).
    Truncated(u32),
}

/// Iterates the records of a classic pcap file (either byte order, micro- or nanosecond).
#[derive(Debug)]
pub struct Pcap<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    nanos: bool,
    index: u32,
    pub link: LinkType,
    pub snaplen: u32,
}

impl<'a> Pcap<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, PcapError> {
        let magic = data
            .get(..4)
            .map(|m| [m[0], m[1], m[2], m[3]])
            .ok_or(PcapError::Header)?;
        let (big_endian, nanos) = match magic {
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            _ => return Err(PcapError::Magic),
        };
        if data.len() < 24 {
            return Err(PcapError::Header);
        }
        let mut p = Pcap {
            data,
            pos: 24,
            big_endian,
            nanos,
            index: 0,
            link: LinkType(0),
            snaplen: 0,
        };
        p.snaplen = p.u32_at(16);
        // The upper bits of the link type field carry FCS information.
        p.link = LinkType(p.u32_at(20) & 0xffff);
        Ok(p)
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = [
            self.data[at],
            self.data[at + 1],
            self.data[at + 2],
            self.data[at + 3],
        ];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

impl<'a> Iterator for Pcap<'a> {
    type Item = Result<(Timestamp, &'a [u8]), PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let index = self.index;
        self.index += 1;
        if self.data.len() - self.pos < 16 {
            self.pos = self.data.len();
            return Some(Err(PcapError::Truncated(index)));
        }
        let secs = u64::from(self.u32_at(self.pos));
        let frac = u64::from(self.u32_at(self.pos + 4));
        let incl = self.u32_at(self.pos + 8) as usize;
        let start = self.pos + 16;
        let Some(frame) = start
            .checked_add(incl)
            .and_then(|end| self.data.get(start..end))
        else {
            self.pos = self.data.len();
            return Some(Err(PcapError::Truncated(index)));
        };
        self.pos = start + incl;
        let ns = if self.nanos { frac } else { frac * 1000 };
        Some(Ok((Timestamp(secs * 1_000_000_000 + ns), frame)))
    }
}

/// What feeding a capture did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Fed {
    pub frames: u32,
    /// Frames the engine refused (counted in its stats too); same on host and target.
    pub refused: u32,
}

/// Feeds every record of `pcap` to `engine`, then closes every flow.
pub fn feed<S: Sink>(engine: &mut Engine<'_>, pcap: &[u8], sink: &mut S) -> Result<Fed, PcapError> {
    let records = Pcap::new(pcap)?;
    let link = records.link;
    let mut fed = Fed::default();
    for rec in records {
        let (ts, frame) = rec?;
        fed.frames += 1;
        if engine.process(ts, link, frame, sink).is_err() {
            fed.refused += 1;
        }
    }
    engine.finish(sink);
    Ok(fed)
}

// ---------------------------------------------------------------------------------------
// Digests

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a over `n` zero bytes (a hole in the file): each is a multiply by the prime, so
/// `h * prime^n`, in O(log n).
fn fnv_zeros(h: u64, mut n: u64) -> u64 {
    let (mut acc, mut base) = (1u64, FNV_PRIME);
    while n > 0 {
        if n & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        n >>= 1;
    }
    h.wrapping_mul(acc)
}

/// One direction of a flow, as the file tcpflow writes for it would be: its bytes at their
/// stream offsets with gaps as holes (zeros).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct DirDigest {
    /// FNV-1a 64 of the stream (holes as zero bytes).
    pub fnv: u64,
    /// Where the data and gap events end.
    pub len: u64,
    pub data_bytes: u64,
    pub gap_bytes: u64,
    /// `stream_len` of the flow's final FlowInfo (at close).
    pub stream_len: u64,
}

impl DirDigest {
    pub const START: DirDigest = DirDigest {
        fnv: FNV_OFFSET,
        len: 0,
        data_bytes: 0,
        gap_bytes: 0,
        stream_len: 0,
    };
}

/// A connection: which one, how it ended, and both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct FlowDigest {
    /// FNV-1a 64 of the addresses, ports, VLAN ids and connection index.
    pub key: u64,
    pub conn_index: u32,
    pub first_ts: u64,
    pub last_ts: u64,
    /// [`close_code`] of the reason; 0 while open.
    pub close: u8,
    pub dirs: [DirDigest; 2],
}

impl FlowDigest {
    pub const ZERO: FlowDigest = FlowDigest {
        key: 0,
        conn_index: 0,
        first_ts: 0,
        last_ts: 0,
        close: 0,
        dirs: [DirDigest::START; 2],
    };
}

pub fn close_code(r: CloseReason) -> u8 {
    match r {
        CloseReason::Fin => 1,
        CloseReason::Rst => 2,
        CloseReason::Idle => 3,
        CloseReason::Evicted => 4,
        CloseReason::Reused => 5,
        CloseReason::EndOfInput => 6,
    }
}

pub fn key_digest(f: &FlowInfo) -> u64 {
    let mut h = FNV_OFFSET;
    for a in f.key.addr {
        h = match a {
            Addr::V4(b) => fnv(fnv(h, &[4]), &b),
            Addr::V6(b) => fnv(fnv(h, &[6]), &b),
        };
    }
    for p in f.key.port {
        h = fnv(h, &p.to_le_bytes());
    }
    for v in f.key.vlans.as_slice() {
        h = fnv(h, &v.to_le_bytes());
    }
    fnv(h, &f.conn_index.to_le_bytes())
}

/// A sink that digests every flow it is told about. `F` flows at most (over the whole
/// capture), `S` engine slots.
#[derive(Debug)]
pub struct DigestSink<const F: usize, const S: usize> {
    pub flows: [FlowDigest; F],
    pub len: usize,
    /// Per slot: index + 1 of the flow now on it (0: none).
    by_slot: [u16; S],
    /// Flows that did not fit in `flows`.
    pub overflow: u32,
    /// Events for a slot with no flow, or beyond `S`.
    pub unknown: u32,
    /// Data or gap events that did not continue the stream where it ended (the sink
    /// contract says they tile it in order).
    pub disorder: u32,
}

impl<const F: usize, const S: usize> DigestSink<F, S> {
    pub const fn new() -> Self {
        DigestSink {
            flows: [FlowDigest::ZERO; F],
            len: 0,
            by_slot: [0; S],
            overflow: 0,
            unknown: 0,
            disorder: 0,
        }
    }

    pub fn reset(&mut self) {
        self.len = 0;
        self.by_slot = [0; S];
        self.overflow = 0;
        self.unknown = 0;
        self.disorder = 0;
    }

    /// The flows, sorted (the order the host writes the expected ones in).
    pub fn sorted(&mut self) -> &[FlowDigest] {
        let n = self.len;
        self.flows[..n].sort_unstable();
        &self.flows[..n]
    }

    fn entry(&mut self, flow: &FlowInfo) -> Option<&mut FlowDigest> {
        let i = match self.by_slot.get(flow.slot as usize) {
            Some(&i) if i > 0 => i as usize - 1,
            _ => {
                self.unknown += 1;
                return None;
            }
        };
        self.flows.get_mut(i)
    }
}

impl<const F: usize, const S: usize> Default for DigestSink<F, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const F: usize, const S: usize> Sink for DigestSink<F, S> {
    fn open(&mut self, flow: &FlowInfo) {
        let Some(slot) = self.by_slot.get_mut(flow.slot as usize) else {
            self.unknown += 1;
            return;
        };
        if self.len >= F {
            *slot = 0;
            self.overflow += 1;
            return;
        }
        *slot = self.len as u16 + 1;
        self.flows[self.len] = FlowDigest {
            key: key_digest(flow),
            conn_index: flow.conn_index,
            first_ts: flow.first_ts.0,
            ..FlowDigest::ZERO
        };
        self.len += 1;
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let mut disorder = false;
        if let Some(e) = self.entry(flow) {
            let d = &mut e.dirs[dir.index()];
            if offset != d.len {
                disorder = true;
                if offset > d.len {
                    d.fnv = fnv_zeros(d.fnv, offset - d.len);
                }
            }
            d.fnv = fnv(d.fnv, data);
            d.data_bytes += data.len() as u64;
            d.len = d.len.max(offset + data.len() as u64);
        }
        self.disorder += u32::from(disorder);
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, _reason: GapReason) {
        let mut disorder = false;
        if let Some(e) = self.entry(flow) {
            let d = &mut e.dirs[dir.index()];
            if offset != d.len {
                disorder = true;
            }
            if offset + len > d.len {
                d.fnv = fnv_zeros(d.fnv, offset + len - d.len);
                d.len = offset + len;
            }
            d.gap_bytes += len;
        }
        self.disorder += u32::from(disorder);
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if let Some(e) = self.entry(flow) {
            e.close = close_code(reason);
            e.last_ts = flow.last_ts.0;
            for dir in Dir::BOTH {
                e.dirs[dir.index()].stream_len = flow.dirs[dir.index()].stream_len;
            }
        }
        if let Some(s) = self.by_slot.get_mut(flow.slot as usize) {
            *s = 0;
        }
    }
}

/// A capture embedded in the image, with what the host computed for it.
#[derive(Debug)]
pub struct Capture {
    /// The testdata case it comes from.
    pub name: &'static str,
    pub pcap: &'static [u8],
    pub fed: Fed,
    /// Sorted.
    pub flows: &'static [FlowDigest],
    /// Whether the host found these digests equal to the case's `expected/` files (the
    /// files a full `tcpflow` run writes), by (length, FNV) of each non-empty direction.
    pub matches_testdata: bool,
}
