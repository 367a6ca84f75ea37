//! The bytes on storage. Everything is little-endian and every multi-byte field is written
//! with `to_le_bytes`, so a spool written on big-endian MIPS reads on x86 and back.
//!
//! ```text
//! segment = header (64 bytes) record* (0xFF or garbage: the end)
//! header  = "TFSP" version:u16 header_len:u16 seq:u64 epoch:u32 block_size:u32
//!           segment_size:u32 slots:u32 dropped_flows:u64 dropped_bytes:u64
//!           dropped_segments:u64 reserved:u32 crc:u32 (over the 60 bytes before it)
//! record  = type:u8 flags:u8 len:u16 crc:u32 body (len counts the 8 header bytes)
//! ```
//! A record's CRC covers the segment's sequence number, then the record without its CRC
//! field: a record left over from an older lap of the ring (a file whose erase is a no-op)
//! carries another sequence number and fails it, so stale bytes never pass for new ones.

use super::crc::Crc;
use super::Drops;
use super::SpoolStorage;
use crate::decode::{Addr, Vlans};
use crate::flow::{Dir, DirInfo, FlowKey};
use crate::sink::{CloseReason, GapReason};
use crate::time::Timestamp;

pub(crate) const MAGIC: [u8; 4] = *b"TFSP";
pub(crate) const VERSION: u16 = 1;
/// Bytes at the start of every segment before its first record.
pub const SEGMENT_HEADER_LEN: u32 = 64;
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// The longest record (header included); a reader's buffer must hold one.
pub const MAX_RECORD: usize = 4096;

pub(crate) const T_OPEN: u8 = 1;
pub(crate) const T_DATA: u8 = 2;
pub(crate) const T_GAP: u8 = 3;
pub(crate) const T_CLOSE: u8 = 4;
/// Where a stream may end: 2^63 - 1, the longest file (a file offset is signed). A capture
/// cannot reach it (8 EiB); a record past it is invalid rather than a file nobody can write.
pub const MAX_STREAM: u64 = i64::MAX as u64;
/// In a Data record's direction byte: the bytes fill a range reported as a gap (late).
pub(crate) const F_LATE: u8 = 0x80;
/// Fills the rest of a block after `sync`; its body is not covered by the CRC (never read).
pub(crate) const T_PAD: u8 = 5;

/// FlowOpen flag: the first description of this flow in the spool (not a repeat at the top
/// of a later segment). The ring counts a flow as dropped when this record goes.
pub(crate) const OPEN_FIRST: u8 = 1;

const IDS: usize = 8; // slot:u32 id:u32, at the start of every body
const ADDR_LEN: usize = 17; // family tag, 16 bytes (IPv4 in the first 4)
const VLANS_LEN: usize = 7; // count, 3 ids
const MACS_LEN: usize = 13; // present flag, 2 x 6 bytes
const DIR_LEN: usize = 65; // 8 counters, flags

pub(crate) const DATA_FIXED: usize = IDS + 8; // offset:u64, then the bytes
pub(crate) const DATA_OVERHEAD: usize = RECORD_HEADER_LEN + DATA_FIXED;
/// Most stream bytes in one Data record; longer events are split.
pub const MAX_DATA: usize = MAX_RECORD - DATA_OVERHEAD;
pub(crate) const OPEN_FIXED: usize = IDS + 4 + 8 + 2 * ADDR_LEN + 4 + VLANS_LEN + MACS_LEN;
pub(crate) const OPEN_LEN: usize = RECORD_HEADER_LEN + OPEN_FIXED;
pub(crate) const GAP_FIXED: usize = IDS + 8 + 8 + 1;
pub(crate) const GAP_LEN: usize = RECORD_HEADER_LEN + GAP_FIXED;
pub(crate) const CLOSE_FIXED: usize = IDS + 1 + 8 + MACS_LEN + 2 * DIR_LEN;
pub(crate) const CLOSE_LEN: usize = RECORD_HEADER_LEN + CLOSE_FIXED;

/// Writes fields in order into a fixed buffer; never panics (a field past the end is dropped,
/// which the fixed sizes above rule out).
pub(crate) struct Enc<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Enc<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Enc { buf, pos: 0 }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        if let Some(d) = self.buf.get_mut(self.pos..end) {
            d.copy_from_slice(b);
        }
        self.pos = end;
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn addr(&mut self, a: &Addr) {
        let mut b = [0u8; 16];
        match a {
            Addr::V4(v) => {
                b[..4].copy_from_slice(v);
                self.u8(4);
            }
            Addr::V6(v) => {
                b = *v;
                self.u8(6);
            }
        }
        self.bytes(&b);
    }
    fn vlans(&mut self, v: &Vlans) {
        let ids = v.as_slice();
        self.u8(ids.len() as u8);
        for i in 0..Vlans::MAX {
            self.u16(ids.get(i).copied().unwrap_or(0));
        }
    }
    fn macs(&mut self, m: &Option<[[u8; 6]; 2]>) {
        match m {
            Some([a, b]) => {
                self.u8(1);
                self.bytes(a);
                self.bytes(b);
            }
            None => {
                self.u8(0);
                self.bytes(&[0; 12]);
            }
        }
    }
    fn dir_info(&mut self, d: &DirInfo) {
        for v in [
            d.packets,
            d.payload_bytes,
            d.stream_len,
            d.ooo_segments,
            d.gaps,
            d.gap_bytes,
            d.retransmitted_bytes,
            d.conflict_bytes,
        ] {
            self.u64(v);
        }
        self.u8(u8::from(d.syn) | u8::from(d.fin) << 1 | u8::from(d.rst) << 2);
    }
}

/// Reads fields in order; `None` past the end.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.arr::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.arr()?))
    }
    fn addr(&mut self) -> Option<Addr> {
        let tag = self.u8()?;
        let b: [u8; 16] = self.arr()?;
        match tag {
            4 => Some(Addr::V4([b[0], b[1], b[2], b[3]])),
            6 => Some(Addr::V6(b)),
            _ => None,
        }
    }
    fn vlans(&mut self) -> Option<Vlans> {
        let n = usize::from(self.u8()?);
        if n > Vlans::MAX {
            return None;
        }
        let mut v = Vlans::NONE;
        for i in 0..Vlans::MAX {
            let id = self.u16()?;
            if i < n {
                v.push(id);
            }
        }
        Some(v)
    }
    fn macs(&mut self) -> Option<Option<[[u8; 6]; 2]>> {
        let present = self.u8()?;
        let a: [u8; 6] = self.arr()?;
        let b: [u8; 6] = self.arr()?;
        match present {
            0 => Some(None),
            1 => Some(Some([a, b])),
            _ => None,
        }
    }
    fn dir_info(&mut self) -> Option<DirInfo> {
        let mut d = DirInfo::EMPTY;
        d.packets = self.u64()?;
        d.payload_bytes = self.u64()?;
        d.stream_len = self.u64()?;
        d.ooo_segments = self.u64()?;
        d.gaps = self.u64()?;
        d.gap_bytes = self.u64()?;
        d.retransmitted_bytes = self.u64()?;
        d.conflict_bytes = self.u64()?;
        let f = self.u8()?;
        if f & !7 != 0 {
            return None;
        }
        d.syn = f & 1 != 0;
        d.fin = f & 2 != 0;
        d.rst = f & 4 != 0;
        Some(d)
    }
}

pub(crate) fn close_code(r: CloseReason) -> u8 {
    match r {
        CloseReason::Fin => 0,
        CloseReason::Rst => 1,
        CloseReason::Idle => 2,
        CloseReason::Evicted => 3,
        CloseReason::Reused => 4,
        CloseReason::EndOfInput => 5,
    }
}

fn close_from(c: u8) -> Option<CloseReason> {
    Some(match c {
        0 => CloseReason::Fin,
        1 => CloseReason::Rst,
        2 => CloseReason::Idle,
        3 => CloseReason::Evicted,
        4 => CloseReason::Reused,
        5 => CloseReason::EndOfInput,
        _ => return None,
    })
}

pub(crate) fn gap_code(r: GapReason) -> u8 {
    match r {
        GapReason::Lost => 0,
        GapReason::Snaplen => 1,
    }
}

fn gap_from(c: u8) -> Option<GapReason> {
    match c {
        0 => Some(GapReason::Lost),
        1 => Some(GapReason::Snaplen),
        _ => None,
    }
}

fn dir_from(c: u8) -> Option<Dir> {
    match c {
        0 => Some(Dir::AtoB),
        1 => Some(Dir::BtoA),
        _ => None,
    }
}

/// The first bytes of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Grows by one every time a segment is (re)started; never 0.
    pub seq: u64,
    /// Grows by one every time a writer starts on the storage: spool flow ids are unique
    /// within an epoch only, and flows still open when an epoch ends were cut short.
    pub epoch: u32,
    pub block_size: u32,
    pub segment_size: u32,
    /// Length of the writer's flow table: every slot in the records is below it.
    pub slots: u32,
    /// What the ring had dropped, cumulative, when this segment was started.
    pub drops: Drops,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
        let mut e = Enc::new(&mut b);
        e.bytes(&MAGIC);
        e.u16(VERSION);
        e.u16(SEGMENT_HEADER_LEN as u16);
        e.u64(self.seq);
        e.u32(self.epoch);
        e.u32(self.block_size);
        e.u32(self.segment_size);
        e.u32(self.slots);
        e.u64(self.drops.flows);
        e.u64(self.drops.bytes);
        e.u64(self.drops.segments);
        e.u32(0);
        let crc = Crc::new().update(&b[..60]).finish();
        b[60..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// A header that validates and belongs to a spool of this segment size, or `None`.
    pub(crate) fn decode(b: &[u8], segment_size: u32) -> Option<Self> {
        Self::decode_any(b).filter(|h| h.segment_size == segment_size)
    }

    /// A header that validates, whatever segment size it names.
    fn decode_any(b: &[u8]) -> Option<Self> {
        let body = b.get(..60)?;
        let crc = u32::from_le_bytes(b.get(60..64)?.try_into().ok()?);
        if Crc::new().update(body).finish() != crc {
            return None;
        }
        let mut d = Dec::new(body);
        if d.take(4)? != MAGIC || d.u16()? != VERSION || u32::from(d.u16()?) != SEGMENT_HEADER_LEN {
            return None;
        }
        let h = SegmentHeader {
            seq: d.u64()?,
            epoch: d.u32()?,
            block_size: d.u32()?,
            segment_size: d.u32()?,
            slots: d.u32()?,
            drops: Drops {
                flows: d.u64()?,
                bytes: d.u64()?,
                segments: d.u64()?,
            },
        };
        (h.seq != 0).then_some(h)
    }
}

/// The segment size named by a segment header (a segment's first [`SEGMENT_HEADER_LEN`]
/// bytes) that validates, or `None`. Every segment size puts a segment at offset 0, so a
/// spool whose first header is intact gives its geometry from one read there; a storage
/// read with a wrong segment size finds no header at all (each names its own).
pub fn header_segment_size(b: &[u8]) -> Option<u32> {
    SegmentHeader::decode_any(b).map(|h| h.segment_size)
}

/// Byte offset of segment `index` in the storage.
pub(crate) fn segment_base(index: u32, segment_size: u32) -> u64 {
    u64::from(index) * u64::from(segment_size)
}

/// Reads and validates the header of segment `index`.
pub(crate) fn read_header<S: SpoolStorage + ?Sized>(
    storage: &mut S,
    index: u32,
    segment_size: u32,
) -> Result<Option<SegmentHeader>, S::Error> {
    let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
    storage.read(segment_base(index, segment_size), &mut b)?;
    Ok(SegmentHeader::decode(&b, segment_size))
}

/// A flow's description: what names its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenRec {
    pub slot: u32,
    pub id: u32,
    pub first: bool,
    pub key: FlowKey,
    pub conn_index: u32,
    pub first_ts: Timestamp,
    pub macs: Option<[[u8; 6]; 2]>,
}

/// A flow's end with its final figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CloseRec {
    pub slot: u32,
    pub id: u32,
    pub reason: CloseReason,
    pub last_ts: Timestamp,
    pub macs: Option<[[u8; 6]; 2]>,
    pub dirs: [DirInfo; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record<'b> {
    Open(OpenRec),
    Data {
        slot: u32,
        id: u32,
        dir: Dir,
        offset: u64,
        bytes: &'b [u8],
        /// Late bytes for a reported gap ([`crate::Sink::late`]).
        late: bool,
    },
    Gap {
        slot: u32,
        id: u32,
        dir: Dir,
        offset: u64,
        len: u64,
        reason: GapReason,
    },
    Close(CloseRec),
    Pad,
}

pub(crate) fn encode_open(o: &OpenRec) -> [u8; OPEN_FIXED] {
    let mut b = [0u8; OPEN_FIXED];
    let mut e = Enc::new(&mut b);
    e.u32(o.slot);
    e.u32(o.id);
    e.u32(o.conn_index);
    e.u64(o.first_ts.0);
    e.addr(&o.key.addr[0]);
    e.addr(&o.key.addr[1]);
    e.u16(o.key.port[0]);
    e.u16(o.key.port[1]);
    e.vlans(&o.key.vlans);
    e.macs(&o.macs);
    b
}

pub(crate) fn encode_close(c: &CloseRec) -> [u8; CLOSE_FIXED] {
    let mut b = [0u8; CLOSE_FIXED];
    let mut e = Enc::new(&mut b);
    e.u32(c.slot);
    e.u32(c.id);
    e.u8(close_code(c.reason));
    e.u64(c.last_ts.0);
    e.macs(&c.macs);
    e.dir_info(&c.dirs[0]);
    e.dir_info(&c.dirs[1]);
    b
}

/// The record header for a record of `len` bytes whose body is `parts` in order; the CRC
/// steps by the storage's [`SpoolStorage::crc32c_update`].
pub(crate) fn record_header<S: SpoolStorage + ?Sized>(
    storage: &S,
    seq: u64,
    typ: u8,
    flags: u8,
    len: u16,
    parts: &[&[u8]],
) -> [u8; 8] {
    let len_le = len.to_le_bytes();
    let head = [typ, flags, len_le[0], len_le[1]];
    let body = if typ == T_PAD { &[][..] } else { parts };
    let c = record_crc(storage, seq, head, body).to_le_bytes();
    [head[0], head[1], head[2], head[3], c[0], c[1], c[2], c[3]]
}

/// A record's CRC: its segment's sequence number, its header's first four bytes, then its
/// body (none for a Pad), in steps of the storage's CRC (the CPU's, on a host that has
/// one: the writer checksums every byte it stores and reads back the segments it reuses).
fn record_crc<S: SpoolStorage + ?Sized>(
    storage: &S,
    seq: u64,
    head: [u8; 4],
    body: &[&[u8]],
) -> u32 {
    let update = |c, b: &[u8]| storage.crc32c_update(c, b);
    let mut start = [0u8; 12];
    start[..8].copy_from_slice(&seq.to_le_bytes());
    start[8..].copy_from_slice(&head);
    body.iter()
        .fold(Crc::new().update_with(&start, update), |crc, p| {
            crc.update_with(p, update)
        })
        .finish()
}

/// Whether a record header's first four bytes (type, flags, length) describe a record that
/// fits in `room` bytes: the checks before the CRC, shared by [`read_record`] and the
/// reader's search for the next record after damage (which runs them on every offset).
pub(crate) fn plausible_header(head: [u8; 4], room: usize) -> bool {
    let (typ, flags) = (head[0], head[1]);
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    if len < RECORD_HEADER_LEN || len > room {
        return false;
    }
    match typ {
        T_PAD => flags == 0,
        T_OPEN => len == OPEN_LEN && flags & !OPEN_FIRST == 0,
        T_GAP => len == GAP_LEN && flags <= 1,
        T_CLOSE => len == CLOSE_LEN && flags == 0,
        T_DATA => len > DATA_OVERHEAD && len <= MAX_RECORD && flags & !F_LATE <= 1,
        _ => false,
    }
}

/// Reads the record at `pos` of the segment at `base` (sequence number `seq`) into `buf`.
/// `None` when the bytes there are not a whole valid record of this segment: the end of what
/// the writer finished (or a torn or corrupt tail). Returns the record and its length.
pub(crate) fn read_record<'b, S: SpoolStorage + ?Sized>(
    storage: &mut S,
    base: u64,
    pos: u32,
    segment_size: u32,
    seq: u64,
    buf: &'b mut [u8],
) -> Result<Option<(Record<'b>, u32)>, S::Error> {
    let room = segment_size.saturating_sub(pos) as usize;
    if room < RECORD_HEADER_LEN {
        return Ok(None);
    }
    let at = base.saturating_add(u64::from(pos));
    let Some(hb) = buf.get_mut(..RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    storage.read(at, hb)?;
    let (typ, flags) = (hb[0], hb[1]);
    let len = usize::from(u16::from_le_bytes([hb[2], hb[3]]));
    let crc = u32::from_le_bytes([hb[4], hb[5], hb[6], hb[7]]);
    let head = [hb[0], hb[1], hb[2], hb[3]];
    if !plausible_header(head, room) {
        return Ok(None);
    }
    if typ == T_PAD {
        let valid = record_crc(storage, seq, head, &[]) == crc;
        return Ok(valid.then_some((Record::Pad, len as u32)));
    }
    let Some(body) = buf.get_mut(RECORD_HEADER_LEN..len) else {
        return Ok(None);
    };
    storage.read(at.saturating_add(RECORD_HEADER_LEN as u64), body)?;
    if record_crc(storage, seq, head, &[body]) != crc {
        return Ok(None);
    }
    let body: &'b [u8] = match buf.get(RECORD_HEADER_LEN..len) {
        Some(b) => b,
        None => return Ok(None),
    };
    Ok(decode_body(typ, flags, body).map(|r| (r, len as u32)))
}

/// Decodes a body whose CRC passed. A field out of range (which only a writer bug or a CRC
/// collision could produce) makes the record invalid rather than guessed.
fn decode_body(typ: u8, flags: u8, body: &[u8]) -> Option<Record<'_>> {
    let mut d = Dec::new(body);
    let slot = d.u32()?;
    let id = d.u32()?;
    match typ {
        T_OPEN => {
            if flags & !OPEN_FIRST != 0 {
                return None;
            }
            let conn_index = d.u32()?;
            let first_ts = Timestamp(d.u64()?);
            let a = d.addr()?;
            let b = d.addr()?;
            if core::mem::discriminant(&a) != core::mem::discriminant(&b) {
                return None;
            }
            let port = [d.u16()?, d.u16()?];
            let vlans = d.vlans()?;
            let macs = d.macs()?;
            Some(Record::Open(OpenRec {
                slot,
                id,
                first: flags & OPEN_FIRST != 0,
                key: FlowKey {
                    addr: [a, b],
                    port,
                    vlans,
                },
                conn_index,
                first_ts,
                macs,
            }))
        }
        T_DATA => {
            let late = flags & F_LATE != 0;
            let dir = dir_from(flags & !F_LATE)?;
            let offset = d.u64()?;
            let bytes = d.take(body.len().checked_sub(DATA_FIXED)?)?;
            if offset.checked_add(bytes.len() as u64)? > MAX_STREAM {
                return None;
            }
            Some(Record::Data {
                slot,
                id,
                dir,
                offset,
                bytes,
                late,
            })
        }
        T_GAP => {
            let dir = dir_from(flags)?;
            let offset = d.u64()?;
            let len = d.u64()?;
            let reason = gap_from(d.u8()?)?;
            if len == 0 || offset.checked_add(len).map_or(true, |end| end > MAX_STREAM) {
                return None;
            }
            Some(Record::Gap {
                slot,
                id,
                dir,
                offset,
                len,
                reason,
            })
        }
        T_CLOSE => {
            if flags != 0 {
                return None;
            }
            let reason = close_from(d.u8()?)?;
            let last_ts = Timestamp(d.u64()?);
            let macs = d.macs()?;
            let dirs = [d.dir_info()?, d.dir_info()?];
            Some(Record::Close(CloseRec {
                slot,
                id,
                reason,
                last_ts,
                macs,
                dirs,
            }))
        }
        _ => None,
    }
}
