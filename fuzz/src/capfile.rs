//! `capfile`: the capture file parser (classic pcap, pcapng) over arbitrary bytes, read whole
//! and handed over in chunks.
//!
//! Input: a byte giving how many chunk-size bytes follow (0..=3, the low 2 bits), those
//! bytes (each a chunk of 1..=256 bytes times 1 + the high bits of the first byte), then the
//! file. The file is read as a whole, then through a buffer that gets more bytes only when
//! the parser asks for them (`NeedMore`), in those chunks: no panic, the contract of every
//! step, and the same records and the same ending both ways.

use tcpflow_core::capfile::{CapError, CapFile, Opened, Step, MAX_CAPLEN, MAX_HELD};

use crate::Input;

/// A record as owned values.
#[derive(Debug, PartialEq, Eq)]
pub struct Rec {
    pub ts: u64,
    pub link: u32,
    pub interface: u32,
    pub caplen: u32,
    pub origlen: u32,
    pub snaplen: u32,
    pub over_snaplen: bool,
    pub data: Vec<u8>,
}

/// The records of `file` and how reading it ended, handing the parser `chunks` bytes at a
/// time (cycled; `[usize::MAX]`: the whole file at once).
pub fn read(file: &[u8], chunks: &[usize]) -> (Vec<Rec>, Result<(), CapError>) {
    let mut recs = Vec::new();
    let mut have = 0usize;
    let mut k = 0;
    let mut more = |have: &mut usize| {
        let c = chunks[k % chunks.len()].max(1);
        k += 1;
        *have = have.saturating_add(c).min(file.len());
    };
    more(&mut have);
    let mut pos;
    let mut f = loop {
        let eof = have == file.len();
        match CapFile::open(&file[..have], eof) {
            Ok(Opened::Ready { file: f, consumed }) => {
                assert!(consumed > 0 && consumed <= have);
                pos = consumed;
                break f;
            }
            Ok(Opened::NeedMore { at_least }) => {
                assert!(!eof, "NeedMore at the end");
                assert!(at_least > have && at_least <= MAX_HELD, "{at_least} {have}");
                more(&mut have);
            }
            Err(e) => return (recs, Err(e)),
        }
    };
    // Every step consumes at least 4 bytes or asks for more: bounded.
    let mut steps = 0usize;
    loop {
        steps += 1;
        assert!(steps <= 2 * file.len() + 16, "no progress");
        let eof = have == file.len();
        let buf = &file[pos..have];
        match f.next(buf, eof) {
            Ok(Step::Record { consumed, record }) => {
                assert!(consumed > 0 && consumed <= buf.len());
                assert_eq!(record.data.len(), record.caplen as usize);
                assert!(record.caplen <= MAX_CAPLEN);
                assert!(crate::within(&buf[..consumed], record.data));
                recs.push(Rec {
                    ts: record.ts.0,
                    link: record.link.0,
                    interface: record.interface,
                    caplen: record.caplen,
                    origlen: record.origlen,
                    snaplen: record.snaplen,
                    over_snaplen: record.exceeds_snaplen(),
                    data: record.data.to_vec(),
                });
                pos += consumed;
            }
            Ok(Step::Skip { consumed }) => {
                assert!(consumed > 0 && consumed <= buf.len());
                pos += consumed;
            }
            Ok(Step::NeedMore { at_least }) => {
                assert!(!eof, "NeedMore at the end");
                assert!(at_least > buf.len() && at_least <= MAX_HELD, "{at_least}");
                more(&mut have);
            }
            Ok(Step::End) => {
                assert!(eof && buf.is_empty(), "End before the end");
                return (recs, Ok(()));
            }
            Err(e) => return (recs, Err(e)),
        }
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(sel) = inp.u8() else { return };
    let scale = usize::from(sel >> 2) + 1;
    let mut chunks = Vec::new();
    for _ in 0..(sel & 3) {
        if let Some(c) = inp.u8() {
            chunks.push((usize::from(c) + 1) * scale);
        }
    }
    if chunks.is_empty() {
        chunks.push(scale);
    }
    let file = inp.rest();
    let whole = read(file, &[usize::MAX]);
    let parts = read(file, &chunks);
    assert_eq!(parts, whole, "chunks {chunks:?}");
}

/// Seeds from one capture file: its first 64 KiB under three chunkings.
pub fn seeds_from_capture(file: &[u8]) -> Vec<Vec<u8>> {
    let file = &file[..file.len().min(64 * 1024)];
    [vec![0x00], vec![0x01, 0x00], vec![0x1f, 0xff, 0x10, 0x03]]
        .into_iter()
        .map(|mut v| {
            v.extend_from_slice(file);
            v
        })
        .collect()
}
