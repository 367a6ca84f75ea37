//! The writer: sink events in, records out, whole blocks at a time.

use core::fmt;

use super::format::{
    encode_close, encode_open, gap_code, read_header, read_record, record_header, segment_base,
    CloseRec, Enc, OpenRec, Record, SegmentHeader, CLOSE_LEN, DATA_FIXED, DATA_OVERHEAD, F_LATE,
    GAP_FIXED, GAP_LEN, MAX_DATA, MAX_RECORD, OPEN_FIRST, OPEN_LEN, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN, T_CLOSE, T_DATA, T_GAP, T_OPEN, T_PAD,
};
use super::{check_geometry, ConfigError, Drops, SpoolError, SpoolStorage};
use crate::flow::{Dir, FlowInfo};
use crate::sink::{CloseReason, GapReason, Sink};

/// A Data event is split to fill the end of a segment only if at least this many bytes fit
/// there; less goes to the next segment (the waste is bounded by a record header and this).
const MIN_SPLIT: usize = 64;

/// The writer's state for one engine flow slot (the embedder hands in a slice of these, at
/// least as long as the engine's flow table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpoolFlow {
    id: u32,
    open: bool,
    /// Sequence number of the segment holding the flow's latest FlowOpen; 0: never written.
    described: u64,
}

impl SpoolFlow {
    /// A slot with no flow.
    pub const EMPTY: SpoolFlow = SpoolFlow {
        id: 0,
        open: false,
        described: 0,
    };
}

/// What a segment this writer filled holds that the ring drops when it comes round to it
/// again, counted as its records were written. Without it the writer reads the segment back
/// (every record read, checksummed and parsed) before it reuses it: once the ring laps, a
/// segment read for each one written, which on flash doubles the I/O. Storage for
/// [`SpoolWriter::with_tallies`], one per segment; segments beyond the slice are read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SegmentTally {
    /// Sequence number of the segment counted; 0: not counted (read it back).
    seq: u64,
    /// FlowOpen records of flows that start there.
    flows: u32,
    /// Stream bytes of its Data records.
    bytes: u32,
}

impl SegmentTally {
    /// Nothing counted.
    pub const EMPTY: SegmentTally = SegmentTally {
        seq: 0,
        flows: 0,
        bytes: 0,
    };
}

/// The writer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpoolStats {
    /// Records written to storage or waiting in the block buffer (Pad records not counted).
    pub records: u64,
    /// Stream bytes in those records.
    pub payload_bytes: u64,
    /// Bytes handed to the storage's `write` that it accepted (headers, padding included).
    pub bytes_programmed: u64,
    /// Segments erased to make room (the ring's laps).
    pub segments_erased: u64,
    /// Times the storage was synced.
    pub syncs: u64,
    /// What the ring dropped, cumulative over the spool's life (carried across restarts in
    /// the segment headers).
    pub drops: Drops,
    /// Storage operations that failed (see [`SpoolWriter::last_error`]).
    pub storage_errors: u64,
    /// Records, and stream bytes in them, that could not be written: a failed write, a
    /// stopped writer, or a flow slot beyond the table.
    pub lost_records: u64,
    /// See `lost_records`.
    pub lost_bytes: u64,
    /// Events for a slot beyond the flow table handed in (counted in `lost_*` too).
    pub untracked_events: u64,
}

/// Writes sink events as spool records; implements [`Sink`], so it can take the engine's
/// events directly (or from a tee).
///
/// Storage errors never panic: they are counted, the last is kept ([`Self::last_error`]), the
/// records that did not reach storage are counted as lost, and the writer moves on to a fresh
/// segment with the next record. If even that fails (an erase error) it stops and counts
/// everything as lost until [`Self::clear_error`].
pub struct SpoolWriter<'a, S: SpoolStorage> {
    storage: S,
    buf: &'a mut [u8],
    flows: &'a mut [SpoolFlow],
    /// Per segment, what this writer put there (see [`SegmentTally`]); may be empty.
    tallies: &'a mut [SegmentTally],
    /// Slots at and above this were never used by this writer: they may hold anything, read
    /// as [`SpoolFlow::EMPTY`] and are reset when first written (see [`Self::flow_mut`]).
    fresh: usize,
    block: u32,
    seg_size: u32,
    seg_count: u32,
    /// Segment being written; `None` before the first record (and after an erase failed).
    cur: Option<u32>,
    next_index: u32,
    /// Sequence number of the current (or, before the first record, the newest) segment.
    seq: u64,
    epoch: u32,
    /// Next byte to write, within the segment.
    pos: u32,
    /// Segment offset of `buf[0]` (block aligned).
    buf_start: u32,
    /// Records (and their stream bytes) that end in the buffer: lost if its write fails.
    pending_records: u64,
    pending_bytes: u64,
    next_id: u32,
    /// The current segment had a write error: the next record starts a new one.
    broken: bool,
    /// An erase failed: nothing is written until `clear_error`.
    stopped: bool,
    /// Nothing was lost since the last `sync`.
    clean: bool,
    drops: Drops,
    stats: SpoolStats,
    last_error: Option<S::Error>,
}

impl<S: SpoolStorage> fmt::Debug for SpoolWriter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolWriter")
            .field("segment", &self.cur)
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("pos", &self.pos)
            .field("stopped", &self.stopped)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'a, S: SpoolStorage> SpoolWriter<'a, S> {
    /// A writer over `storage`, buffering in `buf` (at least [`MAX_RECORD`] bytes, a multiple
    /// of the block size; larger means fewer, larger writes) with one [`SpoolFlow`] per engine
    /// flow slot.
    ///
    /// A storage holding a spool is continued: the writer starts after its newest segment, in
    /// a new epoch, keeping its drop counters. Nothing is erased or written until the first
    /// event. Use [`super::format()`] first for an empty spool.
    pub fn new(
        mut storage: S,
        buf: &'a mut [u8],
        flows: &'a mut [SpoolFlow],
    ) -> Result<Self, SpoolError<S::Error>> {
        check_geometry(&storage)?;
        let block = storage.block_size();
        if buf.len() < MAX_RECORD || buf.len() % block as usize != 0 {
            return Err(ConfigError::Buffer.into());
        }
        let (seg_size, seg_count) = (storage.segment_size(), storage.segment_count());
        let mut newest: Option<(u32, SegmentHeader)> = None;
        for i in 0..seg_count {
            let h = read_header(&mut storage, i, seg_size).map_err(SpoolError::Storage)?;
            if let Some(h) = h {
                if newest.map_or(true, |(_, n)| h.seq > n.seq) {
                    newest = Some((i, h));
                }
            }
        }
        let (next_index, seq, epoch, drops) = match newest {
            Some((i, h)) => ((i + 1) % seg_count, h.seq, h.epoch.wrapping_add(1), h.drops),
            None => (0, 0, 1, Drops::default()),
        };
        // The slots are not read here: reading a fresh zeroed allocation maps the shared
        // zero page, and each first write after that is a copy-on-write fault that flushes
        // the TLB of every processor the process runs on. They are reset as first used.
        Ok(SpoolWriter {
            storage,
            buf,
            flows,
            tallies: &mut [],
            fresh: 0,
            block,
            seg_size,
            seg_count,
            cur: None,
            next_index,
            seq,
            epoch,
            pos: 0,
            buf_start: 0,
            pending_records: 0,
            pending_bytes: 0,
            next_id: 0,
            broken: false,
            stopped: false,
            clean: true,
            drops,
            stats: SpoolStats {
                drops,
                ..SpoolStats::default()
            },
            last_error: None,
        })
    }

    /// Counts what each segment holds as it is written, in `tallies` (one per segment from
    /// the first; reset here), so that the ring drops a segment this writer filled without
    /// reading it back. Segments it did not fill (an earlier run's, or past the slice) are
    /// still read.
    pub fn with_tallies(mut self, tallies: &'a mut [SegmentTally]) -> Self {
        tallies.fill(SegmentTally::EMPTY);
        self.tallies = tallies;
        self
    }

    /// Writes what is buffered (the partial block closed with a Pad record, so the next
    /// record starts on a fresh block) and syncs the storage. Returns true when every record
    /// since the last sync is on storage; otherwise see [`Self::stats`] and
    /// [`Self::last_error`].
    #[must_use]
    pub fn sync(&mut self) -> bool {
        if self.cur.is_some() && !self.broken && !self.stopped {
            let in_block = self.pos % self.block;
            if in_block != 0 {
                let r = self.block - in_block;
                if r as usize >= RECORD_HEADER_LEN {
                    self.pad(r);
                } else if self.pos + r + self.block <= self.seg_size {
                    // No room for a Pad header: pad through the next block too.
                    self.pad(r + self.block);
                } else {
                    // The segment's last block: unwritten bytes read as its end.
                    self.fill(0xFF, r as usize);
                }
            }
            let used = self.pos - self.buf_start;
            if used > 0 && !self.broken {
                self.write_out(used as usize);
            }
        }
        if let Err(e) = self.storage.sync() {
            self.note_error(e);
            self.clean = false;
        }
        self.stats.syncs += 1;
        let ok = self.clean;
        self.clean = true;
        ok
    }

    /// Every counter.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            drops: self.drops,
            ..self.stats
        }
    }

    /// The most recent storage error.
    pub fn last_error(&self) -> Option<&S::Error> {
        self.last_error.as_ref()
    }

    /// Takes the last error and, if the writer had stopped, lets it try again with the next
    /// record (in a fresh segment).
    pub fn clear_error(&mut self) -> Option<S::Error> {
        self.stopped = false;
        self.last_error.take()
    }

    /// The epoch this writer writes (one more than the newest on storage when it started).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The storage, to read it while the writer holds it.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, for inspection; writing to it behind the writer's back breaks the spool.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The storage back. Call [`Self::sync`] first: buffered records are not written.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Makes `flow`'s slot known to the writer (an event without `open`, e.g. a writer
    /// attached to a running engine, opens it here). False if the slot is beyond the table.
    fn track(&mut self, flow: &FlowInfo) -> bool {
        let id = self.next_id;
        match self.flow_mut(flow.slot) {
            None => false,
            Some(f) => {
                if !f.open {
                    *f = SpoolFlow {
                        id,
                        open: true,
                        described: 0,
                    };
                    self.next_id = id.wrapping_add(1);
                }
                true
            }
        }
    }

    fn untracked(&mut self, bytes: usize) {
        self.stats.untracked_events += 1;
        self.lost(1, bytes as u64);
    }

    fn lost(&mut self, records: u64, bytes: u64) {
        self.stats.lost_records += records;
        self.stats.lost_bytes += bytes;
        self.clean = false;
    }

    /// Gets the current segment ready for a record of at least `min_len` bytes of `flow`,
    /// writing the flow's FlowOpen first if this segment does not describe it yet. Returns
    /// the room left for the record, or `None` if nothing can be written.
    fn prepare(&mut self, flow: &FlowInfo, min_len: usize) -> Option<usize> {
        // Bounded: a fresh segment always has room; only a write error repeats a step.
        for _ in 0..4 {
            if self.stopped {
                return None;
            }
            if self.cur.is_none() || self.broken {
                self.start_segment();
                continue;
            }
            let described = self.flow(flow.slot).described;
            let need_open = described != self.seq;
            let open_len = if need_open { OPEN_LEN } else { 0 };
            let room = (self.seg_size - self.pos) as usize;
            if room < open_len + min_len {
                self.start_segment();
                continue;
            }
            if need_open {
                self.emit_open(flow, described == 0);
                if self.broken {
                    continue;
                }
                let seq = self.seq;
                if let Some(f) = self.flow_mut(flow.slot) {
                    f.described = seq;
                }
            }
            return Some((self.seg_size - self.pos) as usize);
        }
        None
    }

    fn id(&self, flow: &FlowInfo) -> u32 {
        self.flow(flow.slot).id
    }

    /// Slot `slot`'s state (EMPTY beyond the table or never used).
    #[inline]
    fn flow(&self, slot: u32) -> SpoolFlow {
        let i = slot as usize;
        match self.flows.get(i) {
            Some(f) if i < self.fresh => *f,
            _ => SpoolFlow::EMPTY,
        }
    }

    /// Slot `slot`'s state to change, or None beyond the table. The first use of a slot at
    /// or above [`Self::fresh`] resets it and those below it first: written, never read, so
    /// a zeroed allocation is only touched as far as the engine numbers its flows (in
    /// order, from 0) and each page faults in once.
    #[inline]
    fn flow_mut(&mut self, slot: u32) -> Option<&mut SpoolFlow> {
        let i = slot as usize;
        if i >= self.fresh && i < self.flows.len() {
            self.flows[self.fresh..=i].fill(SpoolFlow::EMPTY);
            self.fresh = i + 1;
        }
        self.flows.get_mut(i)
    }

    fn emit_open(&mut self, flow: &FlowInfo, first: bool) {
        let o = OpenRec {
            slot: flow.slot,
            id: self.id(flow),
            first,
            key: flow.key,
            conn_index: flow.conn_index,
            first_ts: flow.first_ts,
            macs: flow.macs,
        };
        let flags = if first { OPEN_FIRST } else { 0 };
        self.emit(T_OPEN, flags, &encode_open(&o), &[], 0);
    }

    /// Appends one record (header, fixed body, stream bytes) to the buffer.
    fn emit(&mut self, typ: u8, flags: u8, fixed: &[u8], data: &[u8], payload: u64) {
        let len = RECORD_HEADER_LEN + fixed.len() + data.len();
        let hdr = record_header(
            &self.storage,
            self.seq,
            typ,
            flags,
            len as u16,
            &[fixed, data],
        );
        self.put(&hdr);
        self.put(fixed);
        self.put(data);
        if self.broken {
            self.lost(1, payload);
        } else {
            // As `scan` would count the record: a flow's first FlowOpen, a Data record's bytes.
            if let Some(t) = self.cur.and_then(|c| self.tallies.get_mut(c as usize)) {
                t.flows += u32::from(typ == T_OPEN && flags & OPEN_FIRST != 0);
                t.bytes = t
                    .bytes
                    .saturating_add(u32::try_from(payload).unwrap_or(u32::MAX));
            }
            self.stats.records += 1;
            self.stats.payload_bytes += payload;
            self.pending_records += 1;
            self.pending_bytes += payload;
        }
    }

    /// A Pad record of `len` bytes: the reader skips it; its body is not checksummed.
    fn pad(&mut self, len: u32) {
        let hdr = record_header(&self.storage, self.seq, T_PAD, 0, len as u16, &[]);
        self.put(&hdr);
        self.fill(0xFF, len as usize - RECORD_HEADER_LEN);
    }

    fn put(&mut self, mut src: &[u8]) {
        while !src.is_empty() && !self.broken {
            let n = self.room_in_buf().min(src.len());
            let used = (self.pos - self.buf_start) as usize;
            if let (Some(d), Some(s)) = (self.buf.get_mut(used..used + n), src.get(..n)) {
                d.copy_from_slice(s);
            }
            self.advance(n);
            src = src.get(n..).unwrap_or(&[]);
        }
    }

    fn fill(&mut self, byte: u8, mut n: usize) {
        while n > 0 && !self.broken {
            let k = self.room_in_buf().min(n);
            let used = (self.pos - self.buf_start) as usize;
            if let Some(d) = self.buf.get_mut(used..used + k) {
                d.fill(byte);
            }
            self.advance(k);
            n -= k;
        }
    }

    /// Free bytes in the buffer (writing it out first if full).
    fn room_in_buf(&mut self) -> usize {
        let used = (self.pos - self.buf_start) as usize;
        if used >= self.buf.len() {
            self.write_out(self.buf.len());
            return if self.broken { 0 } else { self.buf.len() };
        }
        self.buf.len() - used
    }

    fn advance(&mut self, n: usize) {
        self.pos += n as u32;
        if (self.pos - self.buf_start) as usize == self.buf.len() {
            self.write_out(self.buf.len());
        }
    }

    /// Writes `buf[..len]` (whole blocks) at the buffer's place in the current segment.
    fn write_out(&mut self, len: usize) {
        let Some(idx) = self.cur else { return };
        let at = segment_base(idx, self.seg_size) + u64::from(self.buf_start);
        let data = self.buf.get(..len).unwrap_or(&[]);
        match self.storage.write(at, data) {
            Ok(()) => {
                self.stats.bytes_programmed += len as u64;
                self.buf_start += len as u32;
                self.pos = self.pos.max(self.buf_start);
                self.pending_records = 0;
                self.pending_bytes = 0;
            }
            Err(e) => self.fail(e),
        }
    }

    fn note_error(&mut self, e: S::Error) {
        self.stats.storage_errors += 1;
        self.last_error = Some(e);
    }

    /// A write failed: what the buffer held is lost, and the segment is abandoned (its
    /// blocks may be half programmed; the reader stops there).
    fn fail(&mut self, e: S::Error) {
        self.note_error(e);
        self.broken = true;
        // What reached storage is not known: the segment is read back when reused.
        if let Some(t) = self.cur.and_then(|c| self.tallies.get_mut(c as usize)) {
            *t = SegmentTally::EMPTY;
        }
        self.stats.records = self.stats.records.saturating_sub(self.pending_records);
        self.stats.payload_bytes = self.stats.payload_bytes.saturating_sub(self.pending_bytes);
        self.lost(self.pending_records, self.pending_bytes);
        self.pending_records = 0;
        self.pending_bytes = 0;
    }

    /// Closes the current segment and starts the next one in the ring: accounts for the
    /// data it held, erases it and buffers its header.
    fn start_segment(&mut self) {
        if self.cur.is_some() && !self.broken {
            let used = self.pos - self.buf_start;
            if used > 0 {
                // The rest of the block stays 0xFF: it reads as the end of the segment.
                let padded = used.div_ceil(self.block) * self.block;
                if let Some(tail) = self.buf.get_mut(used as usize..padded as usize) {
                    tail.fill(0xFF);
                }
                self.write_out(padded as usize);
            }
        }
        self.cur = None;
        let idx = self.next_index;
        let counted = self
            .tallies
            .get_mut(idx as usize)
            .map(|t| core::mem::replace(t, SegmentTally::EMPTY))
            .filter(|t| t.seq != 0);
        let read = match counted {
            Some(t) => Ok(Drops {
                flows: u64::from(t.flows),
                bytes: u64::from(t.bytes),
                segments: 1,
            }),
            None => self.scan(idx),
        };
        let dropped = match read {
            Ok(d) => d,
            Err(e) => {
                // What the segment held is unknown: the counters miss it, the error says so.
                self.note_error(e);
                Drops::default()
            }
        };
        if let Err(e) = self.storage.erase(idx) {
            self.note_error(e);
            self.stopped = true;
            return;
        }
        self.stats.segments_erased += 1;
        // Saturating: the counters and the sequence number come from storage, which a
        // crafted spool could set near the top.
        self.drops.flows = self.drops.flows.saturating_add(dropped.flows);
        self.drops.bytes = self.drops.bytes.saturating_add(dropped.bytes);
        self.drops.segments = self.drops.segments.saturating_add(dropped.segments);
        self.seq = self.seq.saturating_add(1);
        self.cur = Some(idx);
        if let Some(t) = self.tallies.get_mut(idx as usize) {
            *t = SegmentTally {
                seq: self.seq,
                flows: 0,
                bytes: 0,
            };
        }
        self.next_index = (idx + 1) % self.seg_count;
        self.pos = 0;
        self.buf_start = 0;
        self.broken = false;
        let header = SegmentHeader {
            seq: self.seq,
            epoch: self.epoch,
            block_size: self.block,
            segment_size: self.seg_size,
            slots: u32::try_from(self.flows.len()).unwrap_or(u32::MAX),
            drops: self.drops,
        };
        self.put(&header.encode());
    }

    /// What segment `idx` holds that the spool would lose if it were erased now.
    fn scan(&mut self, idx: u32) -> Result<Drops, S::Error> {
        let mut d = Drops::default();
        let Some(h) = read_header(&mut self.storage, idx, self.seg_size)? else {
            return Ok(d);
        };
        d.segments = 1;
        let base = segment_base(idx, self.seg_size);
        let mut pos = SEGMENT_HEADER_LEN;
        while let Some((rec, len)) =
            read_record(&mut self.storage, base, pos, self.seg_size, h.seq, self.buf)?
        {
            match rec {
                Record::Open(o) if o.first => d.flows += 1,
                Record::Data { bytes, .. } => d.bytes = d.bytes.saturating_add(bytes.len() as u64),
                _ => {}
            }
            pos += len;
        }
        Ok(d)
    }

    /// Data records for `data` at `offset`; `flags`: the direction, and [`F_LATE`] for late
    /// bytes.
    fn data_records(&mut self, flow: &FlowInfo, flags: u8, offset: u64, data: &[u8]) {
        if !self.track(flow) {
            self.untracked(data.len());
            return;
        }
        let mut done = 0usize;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            let chunk = rest.len().min(MAX_DATA);
            let Some(room) = self.prepare(flow, DATA_OVERHEAD + chunk.min(MIN_SPLIT)) else {
                self.lost(1, rest.len() as u64);
                return;
            };
            let n = chunk.min(room.saturating_sub(DATA_OVERHEAD)).max(1);
            let mut fixed = [0u8; DATA_FIXED];
            let mut e = Enc::new(&mut fixed);
            e.bytes(&self.ids(flow));
            e.u64(offset.saturating_add(done as u64));
            let bytes = rest.get(..n).unwrap_or(rest);
            self.emit(T_DATA, flags, &fixed, bytes, bytes.len() as u64);
            done += bytes.len();
        }
    }

    fn ids(&self, flow: &FlowInfo) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&flow.slot.to_le_bytes());
        b[4..].copy_from_slice(&self.id(flow).to_le_bytes());
        b
    }
}

impl<S: SpoolStorage> Sink for SpoolWriter<'_, S> {
    fn open(&mut self, flow: &FlowInfo) {
        let id = self.next_id;
        let Some(f) = self.flow_mut(flow.slot) else {
            self.untracked(0);
            return;
        };
        // A new flow even if the slot looked open (its close was missed): the reader closes
        // the old one when it sees a FlowOpen with another id on the slot.
        *f = SpoolFlow {
            id,
            open: true,
            described: 0,
        };
        self.next_id = id.wrapping_add(1);
        if self.prepare(flow, 0).is_none() {
            self.lost(1, 0);
        }
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.data_records(flow, dir as u8, offset, data);
    }

    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        // Taken even when the spool has no room: what it drops is in its own loss counters.
        self.data_records(flow, dir as u8 | F_LATE, offset, data);
        true
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        if !self.track(flow) {
            self.untracked(0);
            return;
        }
        if self.prepare(flow, GAP_LEN).is_none() {
            self.lost(1, 0);
            return;
        }
        let mut fixed = [0u8; GAP_FIXED];
        let mut e = Enc::new(&mut fixed);
        e.bytes(&self.ids(flow));
        e.u64(offset);
        e.u64(len);
        e.u8(gap_code(reason));
        self.emit(T_GAP, dir as u8, &fixed, &[], 0);
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if !self.track(flow) {
            self.untracked(0);
            return;
        }
        if self.prepare(flow, CLOSE_LEN).is_some() {
            let c = CloseRec {
                slot: flow.slot,
                id: self.id(flow),
                reason,
                last_ts: flow.last_ts,
                macs: flow.macs,
                dirs: flow.dirs,
            };
            self.emit(T_CLOSE, 0, &encode_close(&c), &[], 0);
        } else {
            self.lost(1, 0);
        }
        if let Some(f) = self.flow_mut(flow.slot) {
            *f = SpoolFlow::EMPTY;
        }
    }
}
