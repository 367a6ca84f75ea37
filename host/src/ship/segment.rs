//! The few bytes of a spool segment the shipper reads: its header's sequence number (which
//! segment it is), segment size and drop counters. The layout is the core's
//! (`tcpflow_core::spool::format`, "header = ..."); read here rather than through the core's
//! crate-private header type so the core's surface stays as it is.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use tcpflow_core::spool::{crc32c_update, SEGMENT_HEADER_LEN};

const MAGIC: &[u8; 4] = b"TFSP";
const VERSION: u16 = 1;
const SEQ: usize = 8;
const SEGMENT_SIZE: usize = 24;
const DROPS: usize = 32;
const CRC: usize = 60;

/// What a valid segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub seq: u64,
    pub segment_size: u32,
}

fn crc(b: &[u8]) -> u32 {
    !crc32c_update(!0, b)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The header at the start of `b`, if it validates (checksum, magic, version).
pub fn parse(b: &[u8]) -> Option<Header> {
    let b = b.get(..SEGMENT_HEADER_LEN as usize)?;
    if crc(&b[..CRC]) != u32_at(b, CRC) || &b[..4] != MAGIC {
        return None;
    }
    if u16::from_le_bytes([b[4], b[5]]) != VERSION
        || u32::from(u16::from_le_bytes([b[6], b[7]])) != SEGMENT_HEADER_LEN
    {
        return None;
    }
    let seq = u64::from_le_bytes(b[SEQ..SEQ + 8].try_into().ok()?);
    (seq != 0).then_some(Header {
        seq,
        segment_size: u32_at(b, SEGMENT_SIZE),
    })
}

/// Sets the cumulative drop counters (flows, bytes, segments) of the valid header at the
/// start of `b`, with its checksum. Used on a copy assembled from a bucket, whose losses are
/// what never reached the bucket, not what the tap's ring overwrote after shipping it.
pub fn set_drops(b: &mut [u8], flows: u64, bytes: u64, segments: u64) {
    if parse(b).is_none() {
        return;
    }
    b[DROPS..DROPS + 8].copy_from_slice(&flows.to_le_bytes());
    b[DROPS + 8..DROPS + 16].copy_from_slice(&bytes.to_le_bytes());
    b[DROPS + 16..DROPS + 24].copy_from_slice(&segments.to_le_bytes());
    let c = crc(&b[..CRC]);
    b[CRC..CRC + 4].copy_from_slice(&c.to_le_bytes());
}

/// Reads the header of segment `index` of a spool of `segment_size`-byte segments.
pub fn read(file: &File, index: u32, segment_size: u32) -> io::Result<Option<Header>> {
    let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
    let at = u64::from(index) * u64::from(segment_size);
    match file.read_exact_at(&mut b, at) {
        Ok(()) => Ok(parse(&b).filter(|h| h.segment_size == segment_size)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}
