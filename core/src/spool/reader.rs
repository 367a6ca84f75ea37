//! The reader: validates records and replays them into any sink.

use super::format::{plausible_header, read_header, read_record, segment_base, Record};
use super::format::{SegmentHeader, CLOSE_LEN, MAX_RECORD, OPEN_LEN, SEGMENT_HEADER_LEN};
use super::{check_geometry, ConfigError, Drops, SpoolError, SpoolStorage};
use crate::decode::{Addr, Vlans};
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::sink::{CloseReason, Sink};
use crate::time::Timestamp;

/// The reader's state for one spool flow slot (a slice of these, at least
/// [`SpoolInfo::slots`] long, is handed to [`SpoolReader::replay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplayFlow {
    id: u32,
    open: bool,
    /// Per direction, where the records replayed so far end (`u64::MAX`: not known yet, for
    /// a flow whose start the spool lacks): a later record starting past it means records
    /// between them were lost.
    ends: [u64; 2],
    /// Counted in [`Summary::flows_cut`] already.
    cut: bool,
    info: FlowInfo,
}

impl ReplayFlow {
    /// A slot with no flow.
    pub const EMPTY: ReplayFlow = ReplayFlow {
        id: 0,
        open: false,
        ends: [0; 2],
        cut: false,
        info: FlowInfo {
            slot: 0,
            key: FlowKey {
                addr: [Addr::V4([0; 4]), Addr::V4([0; 4])],
                port: [0; 2],
                vlans: Vlans::NONE,
            },
            conn_index: 0,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            macs: None,
            dirs: [DirInfo::EMPTY; 2],
        },
    };
}

/// What the segment headers say, without reading records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpoolInfo {
    /// Segments with a valid header.
    pub segments: u32,
    /// Sequence number of the oldest valid segment.
    pub oldest_seq: u64,
    /// Sequence number of the newest valid segment.
    pub newest_seq: u64,
    /// The longest writer flow table among them: the replay table must be this long.
    pub slots: u32,
    /// The ring's drop counters as of the newest segment.
    pub drops: Drops,
}

/// What a replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
    /// Segments read.
    pub segments: u32,
    /// Records replayed (Pad records not counted).
    pub records: u64,
    /// Flows replayed (each once, however many segments describe it).
    pub flows: u64,
    /// Of those, flows whose first record the ring had dropped: their data starts late.
    pub flows_truncated: u64,
    /// Flows closed by a Close record.
    pub flows_closed: u64,
    /// Flows without a Close record (cut by a power loss, still open when the spool was
    /// read, or lost with a damaged segment): closed by the reader, reason `EndOfInput`.
    pub flows_unclosed: u64,
    /// Stream bytes of Data records replayed.
    pub data_bytes: u64,
    /// Bytes of Gap records replayed.
    pub gap_bytes: u64,
    /// Earliest first timestamp and latest timestamp of the flows replayed.
    pub first_ts: Option<Timestamp>,
    /// See `first_ts`.
    pub last_ts: Option<Timestamp>,
    /// The ring's drop counters (from the newest segment header).
    pub drops: Drops,
    /// Places where the next segment's sequence number was not the next one (a segment
    /// lost to damage or to an erase cut short).
    pub seq_breaks: u32,
    /// Writer runs seen (a writer restarted on the spool starts a new epoch).
    pub epochs: u32,
    /// Records for a slot beyond the replay table (skipped).
    pub untracked_records: u64,
    /// Records of a flow whose FlowOpen was not seen (skipped; the writer never leaves
    /// these, so they mean the replay table or the spool is not what it should be).
    pub orphan_records: u64,
    /// Stretches of storage inside segments that held no valid record where records should
    /// be: bytes that stopped validating with valid records after them (the reader skips to
    /// the next one), a segment whose header was lost but whose records were found, and a
    /// segment of a writer run that ends early or in bytes that are not the writer's fill.
    pub damaged_regions: u64,
    /// Bytes in those stretches.
    pub damaged_bytes: u64,
    /// Flows with records lost to damage (each once): a record that starts past where the
    /// flow's records so far end, or a flow first seen, without its start, after damage.
    pub flows_cut: u64,
    /// Stream bytes missing between records of those flows (known from the offsets).
    pub cut_bytes: u64,
    /// Writer runs whose last segment ends in a partial record (a write cut by a crash or a
    /// power loss): not damage, everything before it is read.
    pub torn_tails: u32,
    /// The last torn tail: its storage offset and the bytes from there to the end of its block.
    pub torn_at: Option<(u64, u32)>,
}

impl Summary {
    /// Whether the spool lost records to damage (not to the ring, not to a torn tail).
    pub fn damaged(&self) -> bool {
        self.damaged_regions > 0
            || self.flows_cut > 0
            || self.seq_breaks > 0
            || self.orphan_records > 0
            || self.untracked_records > 0
    }

    fn saw(&mut self, ts: Timestamp) {
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
    }
}

/// Replays a spool: every valid record, in the order written, into a [`Sink`].
#[derive(Debug)]
pub struct SpoolReader<S> {
    storage: S,
}

struct NullSink;

impl Sink for NullSink {
    fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, _: &[u8]) {}
}

impl<S: SpoolStorage> SpoolReader<S> {
    /// A reader over `storage`, or why its geometry is refused.
    pub fn new(storage: S) -> Result<Self, ConfigError> {
        check_geometry(&storage)?;
        Ok(SpoolReader { storage })
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> S {
        self.storage
    }

    /// Reads the segment headers only.
    pub fn info(&mut self) -> Result<SpoolInfo, S::Error> {
        let mut info = SpoolInfo::default();
        let seg = self.storage.segment_size();
        for i in 0..self.storage.segment_count() {
            if let Some(h) = read_header(&mut self.storage, i, seg)? {
                if info.segments == 0 || h.seq < info.oldest_seq {
                    info.oldest_seq = h.seq;
                }
                if h.seq > info.newest_seq {
                    info.newest_seq = h.seq;
                    info.drops = h.drops;
                }
                info.segments += 1;
                info.slots = info.slots.max(h.slots);
            }
        }
        Ok(info)
    }

    /// [`Self::replay`] into a sink that discards everything: the figures only.
    pub fn summary(
        &mut self,
        flows: &mut [ReplayFlow],
        buf: &mut [u8],
    ) -> Result<Summary, SpoolError<S::Error>> {
        self.replay(&mut NullSink, flows, buf)
    }

    /// Replays every valid record into `sink`: `open` once per flow (from its first FlowOpen
    /// still in the spool), `data` and `gap` with the FlowInfo of that FlowOpen, `close` with
    /// the final FlowInfo of the Close record. Flows left open at the end of an epoch or of
    /// the spool are closed with [`CloseReason::EndOfInput`] and the FlowInfo last known.
    ///
    /// Damage does not end a segment: after bytes that do not validate the reader looks for
    /// the next valid record of the segment and goes on from there, and a segment whose
    /// header was lost is read with the sequence number its neighbours imply. What it skips
    /// is counted ([`Summary::damaged`]).
    ///
    /// `flows` is indexed by the writer's slot numbers (at least [`SpoolInfo::slots`]
    /// entries; records beyond are counted and skipped); `buf` holds one record
    /// ([`MAX_RECORD`] bytes). Only a storage read error stops a replay early.
    pub fn replay<K: Sink>(
        &mut self,
        sink: &mut K,
        flows: &mut [ReplayFlow],
        buf: &mut [u8],
    ) -> Result<Summary, SpoolError<S::Error>> {
        if buf.len() < MAX_RECORD {
            return Err(ConfigError::Buffer.into());
        }
        flows.fill(ReplayFlow::EMPTY);
        let mut sum = Summary::default();
        let (seg, count) = (self.storage.segment_size(), self.storage.segment_count());
        let mut newest: Option<(u32, u64)> = None;
        for i in 0..count {
            if let Some(h) = read_header(&mut self.storage, i, seg).map_err(SpoolError::Storage)? {
                if newest.map_or(true, |(_, s)| h.seq > s) {
                    newest = Some((i, h.seq));
                }
            }
        }
        let Some((newest, _)) = newest else {
            return Ok(sum);
        };
        let block = self.storage.block_size();
        // The writer fills segments round robin, so ring order from the one after the newest
        // is oldest first; a header out of order there (stale) is skipped.
        let mut last: Option<SegmentHeader> = None;
        // Where the previous segment's records stopped in bytes that are not a clean end:
        // a torn tail if its writer run ended there, damage if the run went on.
        let mut pending: Option<BadEnd> = None;
        for step in 1..=count {
            let idx = ((u64::from(newest) + u64::from(step)) % u64::from(count)) as u32;
            let (h, start) =
                match read_header(&mut self.storage, idx, seg).map_err(SpoolError::Storage)? {
                    Some(h) => (h, SEGMENT_HEADER_LEN),
                    None => match self.lost_header(idx, last.as_ref(), buf)? {
                        Some((h, at)) => {
                            sum.damaged_regions += 1;
                            sum.damaged_bytes += u64::from(at);
                            (h, at)
                        }
                        None => continue,
                    },
                };
            if let Some(l) = last {
                if h.seq <= l.seq {
                    continue;
                }
                if h.seq != l.seq.saturating_add(1) {
                    sum.seq_breaks += 1;
                }
            }
            if let Some(p) = pending.take() {
                let run_went_on = last.is_some_and(|l| l.epoch == h.epoch);
                settle(p, run_went_on, &mut sum);
            }
            if last.map_or(true, |l| l.epoch != h.epoch) {
                close_all(sink, flows, &mut sum);
                sum.epochs += 1;
            }
            sum.segments += 1;
            sum.drops = h.drops;
            last = Some(h);
            pending = self
                .replay_segment(idx, &h, start, block, sink, flows, buf, &mut sum)
                .map_err(SpoolError::Storage)?;
        }
        if let Some(p) = pending {
            settle(p, false, &mut sum);
        }
        close_all(sink, flows, &mut sum);
        Ok(sum)
    }

    /// A segment whose header does not validate but whose records do, under the sequence
    /// number after its ring neighbour's (or before the next one's): its header was damaged.
    /// Returns the header it must have had and where its first valid record is.
    fn lost_header(
        &mut self,
        idx: u32,
        last: Option<&SegmentHeader>,
        buf: &mut [u8],
    ) -> Result<Option<(SegmentHeader, u32)>, SpoolError<S::Error>> {
        let (seg, count) = (self.storage.segment_size(), self.storage.segment_count());
        let prev = idx.checked_sub(1).unwrap_or(count - 1);
        let next = (idx + 1) % count;
        let guess = match read_header(&mut self.storage, prev, seg).map_err(SpoolError::Storage)? {
            Some(p) => Some((p, p.seq.saturating_add(1))),
            None => read_header(&mut self.storage, next, seg)
                .map_err(SpoolError::Storage)?
                .map(|n| (n, n.seq.saturating_sub(1))),
        };
        let Some((near, seq)) = guess else {
            return Ok(None);
        };
        if seq == 0 || last.is_some_and(|l| seq <= l.seq) {
            return Ok(None);
        }
        let mut budget = scan_budget(seg);
        let base = segment_base(idx, seg);
        let found = self
            .next_record(base, SEGMENT_HEADER_LEN, seg, seq, buf, &mut budget)
            .map_err(SpoolError::Storage)?;
        Ok(found.map(|at| {
            let h = SegmentHeader {
                seq,
                drops: last.map_or(near.drops, |l| l.drops),
                ..near
            };
            (h, at)
        }))
    }

    /// The first offset at or after `from` in the segment at `base` where a record of
    /// sequence number `seq` validates. Candidates are found in whole buffers read at once;
    /// each that fails its CRC costs `budget` (so crafted bytes cannot make the search
    /// quadratic); `None` when the segment or the budget ends first.
    fn next_record(
        &mut self,
        base: u64,
        from: u32,
        seg: u32,
        seq: u64,
        buf: &mut [u8],
        budget: &mut u64,
    ) -> Result<Option<u32>, S::Error> {
        const H: usize = 4;
        let mut p = from;
        while p < seg && (seg - p) as usize >= 8 {
            let n = ((seg - p) as usize).min(MAX_RECORD);
            let Some(win) = buf.get_mut(..n) else {
                return Ok(None);
            };
            self.storage.read(base + u64::from(p), win)?;
            let cand = (0..=n - 8).find(|&i| {
                let room = (seg - p) as usize - i;
                let mut head = [0u8; H];
                head.copy_from_slice(&win[i..i + H]);
                plausible_header(head, room)
            });
            let Some(i) = cand else {
                // The last 7 bytes may start a header that continues in the next read.
                p += (n - 7) as u32;
                continue;
            };
            let at = p + i as u32;
            let len = u64::from(u16::from_le_bytes([win[i + 2], win[i + 3]]));
            // At least 512: a crafted segment of short candidates then costs at most
            // seg/128 of them (three reads each), not one per byte.
            let cost = len.max(512);
            if *budget < cost {
                return Ok(None);
            }
            *budget -= cost;
            if read_record(&mut self.storage, base, at, seg, seq, buf)?.is_some() {
                return Ok(Some(at));
            }
            p = at + 1;
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn replay_segment<K: Sink>(
        &mut self,
        idx: u32,
        h: &SegmentHeader,
        start: u32,
        block: u32,
        sink: &mut K,
        flows: &mut [ReplayFlow],
        buf: &mut [u8],
        sum: &mut Summary,
    ) -> Result<Option<BadEnd>, S::Error> {
        let seg = h.segment_size;
        let base = segment_base(idx, seg);
        let mut pos = start;
        let mut budget = scan_budget(seg);
        loop {
            let Some((rec, len)) = read_record(&mut self.storage, base, pos, seg, h.seq, buf)?
            else {
                // Not a record: the end of what the writer wrote, or damage with records after
                // it.
                match self.next_record(base, pos + 1, seg, h.seq, buf, &mut budget)? {
                    Some(at) => {
                        sum.damaged_regions += 1;
                        sum.damaged_bytes += u64::from(at - pos);
                        pos = at;
                        continue;
                    }
                    None => return self.segment_end(base, pos, seg, block, buf),
                }
            };
            pos += len;
            if rec == Record::Pad {
                continue;
            }
            sum.records += 1;
            let damage_seen = sum.damaged();
            match rec {
                Record::Open(o) => {
                    let Some(e) = flows.get_mut(o.slot as usize) else {
                        sum.untracked_records += 1;
                        continue;
                    };
                    if e.open && e.id == o.id {
                        // The repeat at the top of a segment of a flow already replayed.
                        if e.info.macs.is_none() {
                            e.info.macs = o.macs;
                        }
                        continue;
                    }
                    if e.open {
                        // Its Close went with a damaged segment.
                        e.open = false;
                        sum.flows_unclosed += 1;
                        sink.close(&e.info, CloseReason::EndOfInput);
                    }
                    // A flow first seen without its start: the ring dropped it, or (once
                    // damage was seen, which leaves the same trace) the damage took it.
                    let cut = !o.first && damage_seen;
                    *e = ReplayFlow {
                        id: o.id,
                        open: true,
                        ends: if o.first { [0; 2] } else { [u64::MAX; 2] },
                        cut,
                        info: FlowInfo {
                            slot: o.slot,
                            key: o.key,
                            conn_index: o.conn_index,
                            first_ts: o.first_ts,
                            last_ts: o.first_ts,
                            macs: o.macs,
                            dirs: [DirInfo::EMPTY; 2],
                        },
                    };
                    sum.flows += 1;
                    sum.flows_cut += u64::from(cut);
                    sum.flows_truncated += u64::from(!o.first && !cut);
                    sum.saw(o.first_ts);
                    sink.open(&e.info);
                }
                Record::Data {
                    slot,
                    id,
                    dir,
                    offset,
                    bytes,
                    late,
                } => {
                    if let Some(e) = find(flows, slot, id, sum) {
                        follow(e, dir, offset, bytes.len() as u64, sum);
                        sum.data_bytes = sum.data_bytes.saturating_add(bytes.len() as u64);
                        if late {
                            sink.late(&e.info, dir, offset, bytes);
                        } else {
                            sink.data(&e.info, dir, offset, bytes);
                        }
                    }
                }
                Record::Gap {
                    slot,
                    id,
                    dir,
                    offset,
                    len,
                    reason,
                } => {
                    if let Some(e) = find(flows, slot, id, sum) {
                        follow(e, dir, offset, len, sum);
                        // Saturating: a record's length is whatever the storage holds.
                        sum.gap_bytes = sum.gap_bytes.saturating_add(len);
                        sink.gap(&e.info, dir, offset, len, reason);
                    }
                }
                Record::Close(c) => {
                    if let Some(e) = find(flows, c.slot, c.id, sum) {
                        e.info.last_ts = c.last_ts;
                        e.info.macs = c.macs;
                        e.info.dirs = c.dirs;
                        e.open = false;
                        sum.flows_closed += 1;
                        sum.saw(c.last_ts);
                        sink.close(&e.info, c.reason);
                    }
                }
                Record::Pad => {}
            }
        }
    }

    /// Where a segment's records stop at `pos` with no valid record after it: a clean end
    /// (the writer's 0xFF fill to the end of the block, or a block boundary), else a bad
    /// end for [`settle`].
    fn segment_end(
        &mut self,
        base: u64,
        pos: u32,
        seg: u32,
        block: u32,
        buf: &mut [u8],
    ) -> Result<Option<BadEnd>, S::Error> {
        let unused = seg - pos;
        let in_block = pos % block;
        let mut clean = true;
        let mut rest = 0;
        if in_block != 0 {
            rest = block - in_block;
            let mut at = pos;
            while at < pos + rest {
                let n = ((pos + rest - at) as usize).min(buf.len());
                let Some(b) = buf.get_mut(..n) else { break };
                self.storage.read(base + u64::from(at), b)?;
                if b.iter().any(|&x| x != 0xFF) {
                    clean = false;
                    break;
                }
                at += n as u32;
            }
        }
        // A segment the writer moved on from is full but for less than a FlowOpen and a
        // Close (what a record needs at most when it does not fit).
        let early = unused as usize > OPEN_LEN + CLOSE_LEN;
        Ok((!clean || early).then_some(BadEnd {
            at: base + u64::from(pos),
            rest,
            unused,
            clean,
        }))
    }
}

/// A segment's records that stopped short: bytes that are not the writer's fill, or a
/// segment left early.
#[derive(Clone, Copy, Debug)]
struct BadEnd {
    /// Storage offset where the records stop.
    at: u64,
    /// Bytes from there to the end of the block, and to the end of the segment.
    rest: u32,
    unused: u32,
    /// The block was closed with the writer's fill (the segment was only left early).
    clean: bool,
}

/// Counts a bad end once the next segment shows whether its writer run went on (damage:
/// records that should be there are not) or ended there (a torn tail if the bytes are not
/// the fill; a run that stopped early otherwise, which is no loss).
fn settle(p: BadEnd, run_went_on: bool, sum: &mut Summary) {
    if run_went_on {
        sum.damaged_regions += 1;
        sum.damaged_bytes += u64::from(p.unused);
    } else if !p.clean {
        sum.torn_tails += 1;
        sum.torn_at = Some((p.at, p.rest));
    }
}

/// What a scan may spend on candidates that fail, per segment: four times its size in
/// bytes checksummed (random bytes hold about one candidate per 512 KiB; the stale records of
/// an older lap after the newest one cost their length once).
fn scan_budget(seg: u32) -> u64 {
    4 * u64::from(seg)
}

/// Notes a record of `len` stream bytes at `offset`: one that starts past where the
/// direction's records end means records between them were lost.
fn follow(e: &mut ReplayFlow, dir: Dir, offset: u64, len: u64, sum: &mut Summary) {
    let end = &mut e.ends[dir.index()];
    if *end != u64::MAX && offset > *end {
        sum.cut_bytes = sum.cut_bytes.saturating_add(offset - *end);
        if !e.cut {
            e.cut = true;
            sum.flows_cut += 1;
        }
    }
    let new_end = offset.saturating_add(len);
    *end = if *end == u64::MAX {
        new_end
    } else {
        (*end).max(new_end)
    };
}

/// The open flow a record belongs to.
fn find<'f>(
    flows: &'f mut [ReplayFlow],
    slot: u32,
    id: u32,
    sum: &mut Summary,
) -> Option<&'f mut ReplayFlow> {
    match flows.get_mut(slot as usize) {
        None => {
            sum.untracked_records += 1;
            None
        }
        Some(e) if e.open && e.id == id => Some(e),
        Some(_) => {
            sum.orphan_records += 1;
            None
        }
    }
}

fn close_all<K: Sink>(sink: &mut K, flows: &mut [ReplayFlow], sum: &mut Summary) {
    for e in flows.iter_mut().filter(|e| e.open) {
        e.open = false;
        sum.flows_unclosed += 1;
        sink.close(&e.info, CloseReason::EndOfInput);
    }
}
