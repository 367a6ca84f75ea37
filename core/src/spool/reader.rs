//! The reader: validates records and replays them into any sink.

use super::format::{read_header, read_record, segment_base, Record, SegmentHeader};
use super::format::{MAX_RECORD, SEGMENT_HEADER_LEN};
use super::{check_geometry, ConfigError, Drops, SpoolError, SpoolStorage};
use crate::decode::{Addr, Vlans};
use crate::engine::{CloseReason, Dir, DirInfo, FlowInfo, FlowKey, Sink};
use crate::Timestamp;

/// The reader's state for one spool flow slot (a slice of these, at least
/// [`SpoolInfo::slots`] long, is handed to [`SpoolReader::replay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplayFlow {
    id: u32,
    open: bool,
    info: FlowInfo,
}

impl ReplayFlow {
    pub const EMPTY: ReplayFlow = ReplayFlow {
        id: 0,
        open: false,
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
    pub oldest_seq: u64,
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
    pub data_bytes: u64,
    pub gap_bytes: u64,
    /// Earliest first timestamp and latest timestamp of the flows replayed.
    pub first_ts: Option<Timestamp>,
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
}

impl Summary {
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
    pub fn new(storage: S) -> Result<Self, ConfigError> {
        check_geometry(&storage)?;
        Ok(SpoolReader { storage })
    }

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
        // The writer fills segments round robin, so ring order from the one after the newest
        // is oldest first; a header out of order there (stale) is skipped.
        let mut last: Option<SegmentHeader> = None;
        for step in 1..=count {
            let idx = ((u64::from(newest) + u64::from(step)) % u64::from(count)) as u32;
            let Some(h) = read_header(&mut self.storage, idx, seg).map_err(SpoolError::Storage)?
            else {
                continue;
            };
            if let Some(l) = last {
                if h.seq <= l.seq {
                    continue;
                }
                if h.seq != l.seq.saturating_add(1) {
                    sum.seq_breaks += 1;
                }
            }
            if last.map_or(true, |l| l.epoch != h.epoch) {
                close_all(sink, flows, &mut sum);
                sum.epochs += 1;
            }
            sum.segments += 1;
            sum.drops = h.drops;
            last = Some(h);
            self.replay_segment(idx, &h, sink, flows, buf, &mut sum)
                .map_err(SpoolError::Storage)?;
        }
        close_all(sink, flows, &mut sum);
        Ok(sum)
    }

    fn replay_segment<K: Sink>(
        &mut self,
        idx: u32,
        h: &SegmentHeader,
        sink: &mut K,
        flows: &mut [ReplayFlow],
        buf: &mut [u8],
        sum: &mut Summary,
    ) -> Result<(), S::Error> {
        let seg = h.segment_size;
        let base = segment_base(idx, seg);
        let mut pos = SEGMENT_HEADER_LEN;
        while let Some((rec, len)) = read_record(&mut self.storage, base, pos, seg, h.seq, buf)? {
            pos += len;
            if rec == Record::Pad {
                continue;
            }
            sum.records += 1;
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
                    *e = ReplayFlow {
                        id: o.id,
                        open: true,
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
                    sum.flows_truncated += u64::from(!o.first);
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
        Ok(())
    }
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
