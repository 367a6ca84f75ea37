//! `spool_reader`: the spool reader over a RAM storage holding arbitrary bytes, or holding a
//! spool that a writer produced from input-driven events and that was then damaged.
//!
//! Input: a geometry byte ([`Geometry`]), a mode byte (bit 0: writer mode; bits 1..=5: the
//! replay table length; bits 6..=7 and the next byte: a read error after that many reads),
//! then the storage bytes (raw mode) or writer events and damage (writer mode, see [`Op`]).
//!
//! Checks, beyond "no panic": the replay ends (storage reads are bounded by the geometry, so
//! a loop is caught as a failure, not a timeout); the sink sees `open` only for a slot with
//! no open flow and `data`/`gap`/`close` only for an open one, with the key it was opened
//! with; every flow opened is closed once; the summary's figures agree with the events; an
//! undamaged spool that lost and dropped nothing replays every byte written.

use std::collections::HashMap;

use tcpflow_core::spool::{
    ReplayFlow, SpoolFlow, SpoolReader, SpoolStorage, SpoolWriter, Summary, MAX_RECORD,
};
use tcpflow_core::{
    Addr, CloseReason, Dir, DirInfo, FlowInfo, FlowKey, GapReason, Sink, Timestamp, Vlans,
};

use crate::Input;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamError {
    OutOfBounds,
    Injected,
}

/// A spool storage in RAM, with plain file semantics (writes anywhere, erase to 0xFF).
#[derive(Debug)]
pub struct Ram {
    pub mem: Vec<u8>,
    pub segment: u32,
    pub count: u32,
    pub block: u32,
    pub reads: u64,
    /// Fail every read after this many.
    pub fail_after: Option<u64>,
}

/// The geometry byte: segment size 1..8 KiB, 2..9 segments, block 16..2048 bytes (a block
/// that does not divide the segment is a configuration the reader must refuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry(pub u8);

impl Geometry {
    pub fn segment(self) -> u32 {
        1024 << (self.0 & 3)
    }
    pub fn count(self) -> u32 {
        2 + u32::from((self.0 >> 2) & 7)
    }
    pub fn block(self) -> u32 {
        16 << ((self.0 >> 5) & 7)
    }
}

impl Ram {
    pub fn new(g: Geometry) -> Self {
        Self::with_geometry(g.segment(), g.count(), g.block())
    }

    /// Erased storage of `count` segments of `segment` bytes, written in `block`s.
    pub fn with_geometry(segment: u32, count: u32, block: u32) -> Self {
        Ram {
            mem: vec![0xff; (segment * count) as usize],
            segment,
            count,
            block,
            reads: 0,
            fail_after: None,
        }
    }

    fn range(&self, offset: u64, len: usize) -> Result<std::ops::Range<usize>, RamError> {
        let start = usize::try_from(offset).map_err(|_| RamError::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(RamError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(RamError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl SpoolStorage for Ram {
    type Error = RamError;
    fn segment_size(&self) -> u32 {
        self.segment
    }
    fn segment_count(&self) -> u32 {
        self.count
    }
    fn block_size(&self) -> u32 {
        self.block
    }
    fn erase(&mut self, segment: u32) -> Result<(), RamError> {
        let base = u64::from(segment) * u64::from(self.segment);
        let r = self.range(base, self.segment as usize)?;
        self.mem[r].fill(0xff);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), RamError> {
        let r = self.range(offset, data.len())?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), RamError> {
        self.reads += 1;
        if self.fail_after.is_some_and(|n| self.reads > n) {
            return Err(RamError::Injected);
        }
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.mem[r]);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), RamError> {
        Ok(())
    }
}

/// The replay's sink: checks the reader's event contract and adds up what it saw.
#[derive(Debug, Default)]
pub struct ReplayChecker {
    open: HashMap<u32, FlowKey>,
    pub opens: u64,
    pub closes: u64,
    pub data_bytes: u64,
    pub gap_bytes: u64,
}

impl ReplayChecker {
    fn check(&self, flow: &FlowInfo, what: &str) {
        let key = self
            .open
            .get(&flow.slot)
            .unwrap_or_else(|| panic!("{what} for slot {} with no open flow", flow.slot));
        assert_eq!(*key, flow.key, "{what}: key changed");
    }
}

impl Sink for ReplayChecker {
    fn open(&mut self, flow: &FlowInfo) {
        assert!(
            self.open.insert(flow.slot, flow.key).is_none(),
            "open for slot {} whose flow is open",
            flow.slot
        );
        self.opens += 1;
    }
    fn data(&mut self, flow: &FlowInfo, _dir: Dir, _offset: u64, data: &[u8]) {
        self.check(flow, "data");
        self.data_bytes += data.len() as u64;
    }
    fn gap(&mut self, flow: &FlowInfo, _dir: Dir, _offset: u64, len: u64, _r: GapReason) {
        self.check(flow, "gap");
        self.gap_bytes = self.gap_bytes.saturating_add(len);
    }
    fn close(&mut self, flow: &FlowInfo, _reason: CloseReason) {
        self.check(flow, "close");
        self.open.remove(&flow.slot);
        self.closes += 1;
    }
}

/// Writer-mode operations: events into the writer, then damage to the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Open {
        slot: u8,
    },
    Data {
        slot: u8,
        dir: u8,
        len: u16,
        fill: u8,
    },
    Gap {
        slot: u8,
        dir: u8,
        len: u32,
    },
    Close {
        slot: u8,
    },
    Sync,
    /// A new writer on the same storage (a restart: a new epoch).
    Restart,
    /// No more events: damage follows.
    EndEvents,
}

impl Op {
    fn read(inp: &mut Input<'_>) -> Option<Op> {
        let op = inp.u8()?;
        Some(match op % 8 {
            0 => Op::Open { slot: inp.u8()? },
            1 | 6 => Op::Data {
                slot: inp.u8()?,
                dir: op >> 7,
                len: inp.u16()? % 6000,
                fill: inp.u8()?,
            },
            2 => Op::Gap {
                slot: inp.u8()?,
                dir: op >> 7,
                len: inp.u32()?,
            },
            3 => Op::Close { slot: inp.u8()? },
            4 => Op::Sync,
            5 => Op::Restart,
            _ => Op::EndEvents,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Op::Open { slot } => out.extend_from_slice(&[0, slot]),
            Op::Data {
                slot,
                dir,
                len,
                fill,
            } => {
                out.extend_from_slice(&[1 | (dir & 1) << 7, slot]);
                out.extend_from_slice(&len.to_le_bytes());
                out.push(fill);
            }
            Op::Gap { slot, dir, len } => {
                out.extend_from_slice(&[2 | (dir & 1) << 7, slot]);
                out.extend_from_slice(&len.to_le_bytes());
            }
            Op::Close { slot } => out.extend_from_slice(&[3, slot]),
            Op::Sync => out.push(4),
            Op::Restart => out.push(5),
            Op::EndEvents => out.push(7),
        }
    }
}

fn flow_info(slot: u32, n: u32, dirs: [DirInfo; 2]) -> FlowInfo {
    FlowInfo {
        slot,
        key: FlowKey {
            addr: [Addr::V4([10, 0, 0, 1]), Addr::V4([10, 0, 1, n as u8])],
            port: [40000 + (n % 1000) as u16, 80],
            vlans: Vlans::NONE,
        },
        conn_index: n / 1000,
        first_ts: Timestamp(u64::from(n) * 1000),
        last_ts: Timestamp(u64::from(n) * 1000 + 1),
        macs: None,
        dirs,
    }
}

/// What the events did, to judge an undamaged replay.
#[derive(Default, Debug)]
pub struct Written {
    pub data_bytes: u64,
    pub lossless: bool,
}

/// Feeds writer-mode events; returns what was written.
pub fn write_events(inp: &mut Input<'_>, ram: &mut Ram, wslots: usize) -> Written {
    let mut buf = vec![0u8; MAX_RECORD.next_multiple_of(ram.block as usize)];
    let mut table = vec![SpoolFlow::EMPTY; wslots];
    let mut open: HashMap<u32, FlowInfo> = HashMap::new();
    let mut n = 0u32;
    let mut out = Written {
        lossless: true,
        ..Written::default()
    };
    let mut bytes = Vec::new();
    'writers: loop {
        let Ok(mut w) = SpoolWriter::new(&mut *ram, &mut buf, &mut table) else {
            out.lossless = false;
            return out;
        };
        loop {
            let Some(op) = Op::read(inp) else {
                break 'writers finish(w, &mut out);
            };
            match op {
                Op::Open { slot } => {
                    let slot = u32::from(slot) % (wslots as u32 + 1);
                    if let Some(old) = open.remove(&slot) {
                        w.close(&old, CloseReason::Reused);
                    }
                    n += 1;
                    let f = flow_info(slot, n, [DirInfo::EMPTY; 2]);
                    w.open(&f);
                    open.insert(slot, f);
                }
                Op::Data {
                    slot,
                    dir,
                    len,
                    fill,
                } => {
                    let slot = u32::from(slot) % (wslots as u32 + 1);
                    let Some(f) = open.get_mut(&slot) else {
                        continue;
                    };
                    if len == 0 {
                        continue;
                    }
                    let d = usize::from(dir & 1);
                    let off = f.dirs[d].stream_len;
                    bytes.clear();
                    bytes.extend((0..len).map(|i| fill ^ (i as u8)));
                    f.dirs[d].stream_len += u64::from(len);
                    let f = *f;
                    w.data(&f, if d == 0 { Dir::AtoB } else { Dir::BtoA }, off, &bytes);
                    out.data_bytes += u64::from(len);
                }
                Op::Gap { slot, dir, len } => {
                    let slot = u32::from(slot) % (wslots as u32 + 1);
                    let Some(f) = open.get_mut(&slot) else {
                        continue;
                    };
                    if len == 0 {
                        continue;
                    }
                    let d = usize::from(dir & 1);
                    let off = f.dirs[d].stream_len;
                    f.dirs[d].stream_len += u64::from(len);
                    f.dirs[d].gaps += 1;
                    f.dirs[d].gap_bytes += u64::from(len);
                    let f = *f;
                    let dir = if d == 0 { Dir::AtoB } else { Dir::BtoA };
                    w.gap(&f, dir, off, u64::from(len), GapReason::Lost);
                }
                Op::Close { slot } => {
                    let slot = u32::from(slot) % (wslots as u32 + 1);
                    if let Some(f) = open.remove(&slot) {
                        w.close(&f, CloseReason::Fin);
                    }
                }
                Op::Sync => {
                    out.lossless &= w.sync();
                }
                Op::Restart => {
                    out.lossless &= w.sync();
                    out.lossless &= w.stats().lost_records == 0;
                    // Flows open at the restart are cut short: a new epoch.
                    open.clear();
                    out.lossless = false;
                    continue 'writers;
                }
                Op::EndEvents => break 'writers finish(w, &mut out),
            }
        }
    }
}

fn finish(mut w: SpoolWriter<'_, &mut Ram>, out: &mut Written) -> Written {
    out.lossless &= w.sync();
    let st = w.stats();
    out.lossless &= st.lost_records == 0 && st.drops.segments == 0 && st.storage_errors == 0;
    Written {
        data_bytes: out.data_bytes,
        lossless: out.lossless,
    }
}

/// Applies damage operations from the rest of the input.
pub fn damage(inp: &mut Input<'_>, ram: &mut Ram) -> bool {
    let mut any = false;
    let (seg, count, len) = (ram.segment as usize, ram.count as usize, ram.mem.len());
    while let Some(op) = inp.u8() {
        any = true;
        match op % 4 {
            0 => {
                let (Some(pos), Some(x)) = (inp.u32(), inp.u8()) else {
                    break;
                };
                ram.mem[pos as usize % len] ^= x.max(1);
            }
            1 => {
                let (Some(a), Some(b)) = (inp.u8(), inp.u8()) else {
                    break;
                };
                let (a, b) = (usize::from(a) % count, usize::from(b) % count);
                ram.mem.copy_within(a * seg..(a + 1) * seg, b * seg);
            }
            2 => {
                let Some(a) = inp.u8() else { break };
                let a = usize::from(a) % count;
                ram.mem[a * seg..(a + 1) * seg].fill(0xff);
            }
            _ => {
                let (Some(pos), Some(n)) = (inp.u32(), inp.u8()) else {
                    break;
                };
                let pos = pos as usize % len;
                let end = (pos + usize::from(n) * 4).min(len);
                ram.mem[pos..end].fill(0);
            }
        }
    }
    any
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let (Some(g), Some(mode)) = (inp.u8(), inp.u8()) else {
        return;
    };
    let g = Geometry(g);
    let fail = inp.u8().unwrap_or(0);
    let mut ram = Ram::new(g);
    let replay_slots = usize::from((mode >> 1) & 31);
    let mut expect = None;
    if mode & 1 == 0 {
        let raw = inp.rest();
        let n = raw.len().min(ram.mem.len());
        ram.mem[..n].copy_from_slice(&raw[..n]);
    } else {
        let wslots = 1 + usize::from(inp.u8().unwrap_or(0) % 8);
        let written = write_events(&mut inp, &mut ram, wslots);
        let damaged = damage(&mut inp, &mut ram);
        if written.lossless && !damaged && replay_slots >= wslots {
            expect = Some(written.data_bytes);
        }
    }
    if mode >> 6 != 0 {
        ram.fail_after = Some(u64::from(mode >> 6) * 256 + u64::from(fail));
        expect = None;
    }
    let (seg, count) = (u64::from(g.segment()), u64::from(g.count()));
    ram.reads = 0;
    let Ok(mut reader) = SpoolReader::new(&mut ram) else {
        return;
    };
    let _ = reader.info();
    let mut flows = vec![ReplayFlow::EMPTY; replay_slots];
    let mut buf = vec![0u8; MAX_RECORD];
    let mut sink = ReplayChecker::default();
    let res = reader.replay(&mut sink, &mut flows, &mut buf);
    // info: one read per segment; replay: per segment a few header reads (its own, its
    // neighbours' when it has none), at most two per record (header, body; a record takes
    // at least 8 bytes), and the searches after damage: a read per 4 KiB, a read to start
    // each search, three per candidate that fails (at most seg/128 per budget, two budgets).
    // Under one read per byte: linear, so a loop fails here instead of hanging.
    let bound = count * (20 + seg);
    assert!(ram.reads <= bound, "{} reads, more than {bound}", ram.reads);
    let sum: Summary = match res {
        Ok(s) => s,
        Err(_) => {
            assert!(
                ram.fail_after.is_some(),
                "replay failed without a storage error"
            );
            return;
        }
    };
    assert!(sink.open.is_empty(), "flows left open: {:?}", sink.open);
    assert_eq!(sink.opens, sum.flows, "flows");
    assert_eq!(sink.closes, sum.flows, "every flow closed once");
    assert_eq!(
        sum.flows,
        sum.flows_closed + sum.flows_unclosed,
        "closed + unclosed"
    );
    assert!(sum.flows_truncated <= sum.flows);
    assert_eq!(sink.data_bytes, sum.data_bytes, "data bytes");
    assert_eq!(sink.gap_bytes, sum.gap_bytes, "gap bytes");
    assert!(sum.segments <= g.count());
    assert!(sum.flows_cut <= sum.flows, "flows cut: {sum:?}");
    assert!(
        sum.torn_at.is_some() == (sum.torn_tails > 0),
        "torn tail: {sum:?}"
    );
    if let Some(bytes) = expect {
        assert_eq!(
            sum.data_bytes, bytes,
            "an undamaged spool lost data: {sum:?}"
        );
        assert!(
            !sum.damaged(),
            "an undamaged spool reads as damaged: {sum:?}"
        );
        assert_eq!(
            sum.torn_tails, 0,
            "an undamaged spool has a torn tail: {sum:?}"
        );
    }
}

/// The storage a writer leaves after `ops` (for raw-mode seeds).
pub fn image(g: Geometry, ops: &[Op], wslots: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for op in ops {
        op.encode(&mut bytes);
    }
    let mut ram = Ram::new(g);
    write_events(&mut Input::new(&bytes), &mut ram, wslots);
    ram.mem
}
