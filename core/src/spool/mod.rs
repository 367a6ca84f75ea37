//! # The flash spool: a bounded, crash-safe, append-only log of sink events
//!
//! A flow-per-file layout wears flash and fills small disks. The spool instead records the
//! engine's [`Sink`](crate::Sink) events (flow open, data at offset, gap, close) as
//! checksummed records in one ring of fixed-size segments, written in large aligned blocks.
//! The same format serves firmware on raw NOR flash ([`nor::NorSpool`]) and the host on a
//! file (its own [`SpoolStorage`]); [`SpoolReader`] replays a spool into any sink, so the host
//! exports it to the same per-flow files a direct run writes.
//!
//! ## Layout ([`format`](mod@format) has the bytes)
//! - The storage is `segment_count` segments of `segment_size` bytes, written in order and
//!   round robin. A segment starts with a header carrying a sequence number that grows each
//!   time a segment is (re)started, so the reader finds the oldest and newest after a crash.
//! - Records (FlowOpen, Data, Gap, Close, Pad) follow, each with a CRC-32C seeded with the
//!   segment's sequence number. A record never spans two segments; Data longer than
//!   [`MAX_DATA`] or than the space left in a segment is split.
//! - **Every segment describes its own flows**: before the first record of a flow in a
//!   segment the writer repeats the flow's FlowOpen there. Dropping the oldest segment then
//!   never leaves records nobody can name. The cost is one 86-byte record per active flow
//!   per segment; the alternative, the key (about 45 bytes) in every record, costs 3% on
//!   bulk data whatever the segment size and still lacks conn index, first time and MACs.
//!   Records carry the engine slot and a spool flow id (unique within a writer run).
//! - Bytes go to storage only in whole blocks of `block_size` at block-aligned offsets, each
//!   programmed once: `sync` closes a partial block with a Pad record and the next record
//!   starts at the next block, so NOR flash (no second program without an erase) works.
//!
//! ## Ring
//! When the writer moves to a segment that holds older data it counts what goes (flows
//! whose first FlowOpen is there, their data bytes), erases it and carries the cumulative
//! [`Drops`] in the new segment's header, so the reader reports them. It counts a segment it
//! filled itself as it filled it, when given a [`SegmentTally`] per segment
//! ([`SpoolWriter::with_tallies`]); any other segment (an earlier run's, one whose write
//! failed) it reads back.
//!
//! ## Recovery
//! The reader walks segments in ring order from the oldest valid header. Where a record does
//! not validate (length, type, CRC, fields) it looks for the next one that does in the same
//! segment and goes on from there; a segment whose header does not validate is read under
//! the sequence number its ring neighbour implies if its records validate under it. Records
//! that stop short of the writer's fill are a torn tail when the writer run ended there
//! (after a power cut everything up to the last whole record is kept, nothing torn is
//! returned) and damage otherwise; [`Summary`] counts both. A writer
//! started on a used storage continues after the newest segment in a new epoch; flows the
//! old epoch never closed are closed by the reader with [`CloseReason::EndOfInput`].
//!
//! Known gap: the header carrying a drop is written with the new segment's first block; a
//! power cut between the erase and that write loses the count of that one drop (the data
//! was gone either way).
//!
//! ## Sizing
//! Overhead per segment is its 64-byte header plus 86 bytes per flow active in it; per Data
//! record 24 bytes. With 16 KiB segments, 8 busy flows and 1448-byte data the measured
//! write amplification is 1.06 (bytes programmed / stream bytes); 4 KiB segments with as
//! many flows would pass 1.2. Pick segments of at least 16 KiB (more with many concurrent
//! flows), and enough of them that one (the unit dropped) is a small part of the spool.
//! Wear is even by construction: segments are erased strictly round robin, across restarts.
//! Before erasing a segment the writer reads it once to count what goes, unless it has a
//! tally for it.
//!
//! [`CloseReason::EndOfInput`]: crate::CloseReason::EndOfInput

mod crc;
pub mod format;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod nor;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use crc::crc32c_update;
pub use format::{MAX_DATA, MAX_RECORD, SEGMENT_HEADER_LEN};
pub use reader::{ReplayFlow, SpoolInfo, SpoolReader, Summary};
pub use writer::{SegmentTally, SpoolFlow, SpoolStats, SpoolWriter};

/// Where a spool lives: `segment_count` segments of `segment_size` bytes at offsets
/// `index * segment_size`.
///
/// Implemented by [`nor::NorSpool`] for raw NOR flash and by the host over a file, where
/// `erase` may be a no-op or a zero fill: stale bytes from an older lap never validate
/// (records are checksummed with their segment's sequence number).
pub trait SpoolStorage {
    /// What the storage's operations fail with.
    type Error;
    /// Bytes per segment: the unit the ring drops. A multiple of `block_size`.
    fn segment_size(&self) -> u32;
    /// Segments in the ring: at least two.
    fn segment_count(&self) -> u32;
    /// The unit the writer programs: every write is whole blocks at a block-aligned offset,
    /// each block written once between erases. 4096 for files; for NOR flash its write
    /// granularity rounded up to something large (256..4096).
    fn block_size(&self) -> u32;
    /// Makes a segment writable again (NOR: erase its sectors).
    fn erase(&mut self, segment: u32) -> Result<(), Self::Error>;
    /// `offset` and `data.len()` are multiples of `block_size`, into erased space.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Any offset and length inside the storage.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Makes what was written durable (a file's fsync; nothing for NOR).
    fn sync(&mut self) -> Result<(), Self::Error>;
    /// One step of the records' CRC-32C, as [`crc32c_update`] computes it. The writer
    /// checksums every byte it stores, so a host whose CPU has a CRC-32C instruction may
    /// use it here (the core has no `unsafe`, which the intrinsics need); it must give the
    /// same values. Records are checked with it too (the reader, and the writer reading
    /// back a segment the ring reuses); segment headers always use [`crc32c_update`].
    fn crc32c_update(&self, crc: u32, bytes: &[u8]) -> u32 {
        crc32c_update(crc, bytes)
    }
}

impl<S: SpoolStorage + ?Sized> SpoolStorage for &mut S {
    type Error = S::Error;
    fn segment_size(&self) -> u32 {
        (**self).segment_size()
    }
    fn segment_count(&self) -> u32 {
        (**self).segment_count()
    }
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn erase(&mut self, segment: u32) -> Result<(), Self::Error> {
        (**self).erase(segment)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        (**self).write(offset, data)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync()
    }
    fn crc32c_update(&self, crc: u32, bytes: &[u8]) -> u32 {
        (**self).crc32c_update(crc, bytes)
    }
}

/// What the ring dropped to make room: cumulative over the spool's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Drops {
    /// Flows whose first record (their original FlowOpen) was dropped: each flow is counted
    /// once, whether it lost only its start or everything.
    pub flows: u64,
    /// Stream bytes of the Data records dropped.
    pub bytes: u64,
    /// Segments erased that held a valid spool segment.
    pub segments: u64,
}

/// Smallest and largest block the format supports (a Pad record spans at most two blocks
/// and its length is a u16).
pub const MIN_BLOCK: u32 = 16;
/// Largest block the format supports.
pub const MAX_BLOCK: u32 = 16384;
/// Smallest segment: a header, a FlowOpen, a Close and some data must fit.
pub const MIN_SEGMENT: u32 = 1024;

/// Why a spool could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `block_size` outside [`MIN_BLOCK`]..=[`MAX_BLOCK`].
    BlockSize,
    /// `segment_size` below [`MIN_SEGMENT`] or not a multiple of `block_size`.
    SegmentSize,
    /// Fewer than two segments: the ring needs one to drop and one to keep.
    SegmentCount,
    /// The buffer is shorter than [`MAX_RECORD`] or (writer) not a multiple of `block_size`.
    Buffer,
}

/// An error opening or reading a spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpoolError<E> {
    /// The geometry or the buffer is refused.
    Config(ConfigError),
    /// The storage failed.
    Storage(E),
}

impl<E> From<ConfigError> for SpoolError<E> {
    fn from(e: ConfigError) -> Self {
        SpoolError::Config(e)
    }
}

/// Checks the storage's geometry against what the format supports.
pub(crate) fn check_geometry<S: SpoolStorage + ?Sized>(s: &S) -> Result<(), ConfigError> {
    let (block, seg) = (s.block_size(), s.segment_size());
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&block) {
        return Err(ConfigError::BlockSize);
    }
    if seg < MIN_SEGMENT || seg % block != 0 {
        return Err(ConfigError::SegmentSize);
    }
    if s.segment_count() < 2 {
        return Err(ConfigError::SegmentCount);
    }
    Ok(())
}

/// Erases every segment: an empty spool, nothing counted as dropped. (A writer started on a
/// used storage continues the spool there instead.)
pub fn format<S: SpoolStorage + ?Sized>(storage: &mut S) -> Result<(), S::Error> {
    for i in 0..storage.segment_count() {
        storage.erase(i)?;
    }
    Ok(())
}
