//! One carved body: dechunked bytes in, decoded (when it has codings), written to its file in
//! pieces with holes where bytes were missing, hashed as written, bounded in size.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::decode::{push_chain, Coding, Stage};

/// Bytes gathered before a write to the body's file.
const WRITE_CHUNK: usize = 32 * 1024;
/// Raw bytes kept until the first decoded byte: a body whose coding fails at once is kept as
/// received.
const RAW_PREFIX: usize = 4 * 1024;
/// Missing ranges listed per body in the report (the rest are counted).
pub const MAX_RANGES: usize = 8;

/// Why a body is not complete (or a note on it), for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incomplete {
    /// Bytes were missing (gaps); the ranges are in [`BodyOut::missing`].
    Gaps,
    /// The connection ended before the body did.
    Cut,
    /// The framing broke (a bad chunk size line, ...).
    Framing(String),
    /// Decoding failed; what decoded is kept (or the body as received, when nothing had).
    Decode(String),
    /// The `--http-max-body` bound was reached.
    Capped,
    /// Writing the file failed.
    Write(String),
}

impl Incomplete {
    pub fn text(&self) -> String {
        match self {
            Incomplete::Gaps => "gaps".into(),
            Incomplete::Cut => "connection ended".into(),
            Incomplete::Framing(s) => format!("framing: {s}"),
            Incomplete::Decode(s) => format!("decode: {s}"),
            Incomplete::Capped => "http-max-body reached".into(),
            Incomplete::Write(s) => format!("write: {s}"),
        }
    }
}

/// A body being written.
#[derive(Debug)]
pub struct BodyOut {
    /// Path of the file (as opened, under the output folder) and its name relative to it.
    full: PathBuf,
    pub rel: PathBuf,
    mode: u32,
    created: bool,
    buf: Vec<u8>,
    /// File offset of `buf[0]`; `size` is where the next byte goes.
    buf_off: u64,
    pub size: u64,
    /// End of the bytes written to the file (a hole after them still counts in `size`).
    written_end: u64,
    sha: Sha256,
    stages: Vec<Stage>,
    /// Raw (dechunked, still coded) bytes until the first decoded byte came out.
    raw_prefix: Vec<u8>,
    produced: bool,
    /// Coded bytes received (after dechunking).
    pub received: u64,
    max: u64,
    /// Bytes not written for the bound: of an uncoded body, those past it; of a coded one,
    /// the received (coded) bytes of the piece that reached it and of every later piece
    /// (not decoded: a bomb costs no more work past the bound).
    pub capped_bytes: u64,
    capped: bool,
    pub missing: Vec<(u64, u64)>,
    pub missing_bytes: u64,
    /// First reason the body is not complete.
    pub why: Option<Incomplete>,
    /// While `why` is gaps: the first other reason, which stays if late bytes fill them all.
    other_why: Option<Incomplete>,
    /// Late bytes were written into holes: the digest is taken from the file at the end.
    refilled: bool,
    /// Decoding stopped (a failure, a gap in coded bytes, the bound).
    decode_stopped: bool,
    pub write_errors: u64,
}

impl BodyOut {
    pub fn new(full: PathBuf, rel: PathBuf, mode: u32, codings: &[Coding], max: u64) -> BodyOut {
        BodyOut {
            full,
            rel,
            mode,
            created: false,
            buf: Vec::new(),
            buf_off: 0,
            size: 0,
            written_end: 0,
            sha: Sha256::new(),
            stages: codings.iter().map(|c| Stage::new(*c)).collect(),
            raw_prefix: Vec::new(),
            produced: false,
            received: 0,
            max,
            capped_bytes: 0,
            capped: false,
            missing: Vec::new(),
            missing_bytes: 0,
            why: None,
            other_why: None,
            refilled: false,
            decode_stopped: false,
            write_errors: 0,
        }
    }

    /// The file, as opened.
    pub fn path(&self) -> &Path {
        &self.full
    }

    /// Whether the file was made (a body with nothing written has none).
    pub fn has_file(&self) -> bool {
        self.created
    }

    /// A reason the body is not complete (the first one is reported).
    pub fn note(&mut self, why: Incomplete) {
        match &self.why {
            None => self.why = Some(why),
            Some(Incomplete::Gaps) if self.other_why.is_none() && why != Incomplete::Gaps => {
                self.other_why = Some(why)
            }
            Some(_) => {}
        }
    }

    /// Late bytes (they filled a gap of the flow after the body had passed it) for the hole
    /// at body offset `at` of an uncoded body: written there. A coded body cannot take them
    /// (decoding stopped at the hole). Gives the bytes written.
    pub fn fill(&mut self, at: u64, data: &[u8]) -> u64 {
        if !self.stages.is_empty() {
            return 0;
        }
        // Holes are flushed before (and never inside the buffer), and end within the bound.
        let end = (at + data.len() as u64).min(self.buf_off).min(self.size);
        if at >= end {
            return 0;
        }
        let n = end - at;
        let r = self
            .open()
            .and_then(|f| f.write_all_at(&data[..n as usize], at));
        if let Err(e) = r {
            self.write_errors += 1;
            self.note(Incomplete::Write(crate::input::io_message(&e)));
            return 0;
        }
        self.refilled = true;
        self.missing_bytes = self.missing_bytes.saturating_sub(n);
        let mut left = Vec::with_capacity(self.missing.len() + 1);
        for &(lo, hi) in &self.missing {
            if lo < at.min(hi) {
                left.push((lo, at.min(hi)));
            }
            if end.max(lo) < hi {
                left.push((end.max(lo), hi));
            }
        }
        left.truncate(MAX_RANGES);
        self.missing = left;
        if self.missing_bytes == 0 && self.why == Some(Incomplete::Gaps) {
            self.why = self.other_why.take();
        }
        n
    }

    /// Body bytes (dechunked) in order.
    pub fn push(&mut self, data: &[u8]) {
        self.received += data.len() as u64;
        if self.capped {
            // Past the bound: received, neither decoded nor written.
            self.capped_bytes += data.len() as u64;
            return;
        }
        if self.stages.is_empty() {
            self.emit(data);
            return;
        }
        if self.decode_stopped {
            return;
        }
        if !self.produced && self.raw_prefix.len() < RAW_PREFIX {
            let n = (RAW_PREFIX - self.raw_prefix.len()).min(data.len());
            self.raw_prefix.extend_from_slice(&data[..n]);
        }
        let mut stages = std::mem::take(&mut self.stages);
        let r = push_chain(&mut stages, data, &mut |b: &[u8]| {
            self.produced |= !b.is_empty();
            self.emit(b)
        });
        self.stages = stages;
        match r {
            Ok(true) => {}
            Ok(false) => {
                self.decode_stopped = true;
                if self.capped {
                    self.capped_bytes += data.len() as u64;
                }
            }
            Err(e) => {
                self.decode_stopped = true;
                if !self.produced && self.raw_prefix.len() as u64 == self.received {
                    // Nothing decoded: kept as received from here on.
                    let raw = std::mem::take(&mut self.raw_prefix);
                    self.stages.clear();
                    self.decode_stopped = false;
                    self.emit(&raw);
                }
                self.note(Incomplete::Decode(e));
            }
        }
    }

    /// Bytes `len` of the (coded) body missing at this point.
    pub fn hole(&mut self, len: u64) {
        self.received += len;
        let start = self.size;
        if self.missing.len() < MAX_RANGES {
            self.missing.push((start, start + len));
        }
        self.missing_bytes += len;
        self.note(Incomplete::Gaps);
        if !self.stages.is_empty() {
            // A coded stream cannot go on past missing bytes: what decoded is kept.
            self.decode_stopped = true;
            return;
        }
        let room = self.max.saturating_sub(self.size);
        let kept = len.min(room);
        if kept < len {
            self.capped_bytes += len - kept;
            self.capped = true;
            self.note(Incomplete::Capped);
        }
        self.flush();
        // The file keeps a hole there; the digest is of the file, which reads zeros.
        let zeros = [0u8; 4096];
        let mut left = kept;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.sha.update(&zeros[..n]);
            left -= n as u64;
        }
        self.size += kept;
        self.buf_off = self.size;
    }

    /// Decoded bytes to the file, within the bound; false once the bound is reached.
    fn emit(&mut self, data: &[u8]) -> bool {
        let room = self.max.saturating_sub(self.size);
        let kept = (data.len() as u64).min(room) as usize;
        let d = &data[..kept];
        self.sha.update(d);
        self.buf.extend_from_slice(d);
        self.size += kept as u64;
        if self.buf.len() >= WRITE_CHUNK {
            self.flush();
        }
        if kept < data.len() {
            if self.stages.is_empty() {
                self.capped_bytes += (data.len() - kept) as u64;
            }
            self.capped = true;
            self.note(Incomplete::Capped);
            return false;
        }
        true
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            self.buf_off = self.size;
            return;
        }
        if let Err(e) = self.write(self.buf_off) {
            self.write_errors += 1;
            self.note(Incomplete::Write(crate::input::io_message(&e)));
        }
        self.buf.clear();
        self.buf_off = self.size;
    }

    fn write(&mut self, off: u64) -> io::Result<()> {
        let f = self.open()?;
        f.write_all_at(&self.buf, off)?;
        self.written_end = off + self.buf.len() as u64;
        Ok(())
    }

    /// The digest of the file's first `size` bytes (what the body is).
    fn rehash(&mut self, sha: &mut Sha256) -> io::Result<()> {
        *sha = Sha256::new();
        let f = self.open()?;
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut off = 0u64;
        while off < self.size {
            let want = (self.size - off).min(buf.len() as u64) as usize;
            let n = f.read_at(&mut buf[..want], off)?;
            if n == 0 {
                // Shorter than written (changed under us): the rest reads as zeros.
                buf[..want].fill(0);
                sha.update(&buf[..want]);
                off += want as u64;
                continue;
            }
            sha.update(&buf[..n]);
            off += n as u64;
        }
        Ok(())
    }

    fn open(&mut self) -> io::Result<std::fs::File> {
        let folders = crate::safefs::folders_in(Path::new(&self.rel));
        let f = crate::safefs::open_file(&self.full, folders, !self.created, self.mode)?;
        self.created = true;
        Ok(f)
    }

    /// The body ended (`complete`: its framing says all of it came). Writes what is left and
    /// gives the file's sha256 (hex).
    pub fn finish(&mut self, complete: bool) -> String {
        if !complete {
            self.note(Incomplete::Cut);
        }
        if !self.decode_stopped && !self.stages.iter().all(Stage::finished) {
            self.note(Incomplete::Decode("coded stream ends early".into()));
        }
        let trailing: u64 = self.stages.iter().map(|s| s.trailing).sum();
        if trailing > 0 {
            self.note(Incomplete::Decode(format!(
                "{trailing} bytes after the coded stream"
            )));
        }
        self.flush();
        if self.size > self.written_end {
            // A hole at the end still makes the file that long.
            let r = self.open().and_then(|f| {
                if f.metadata()?.len() < self.size {
                    f.set_len(self.size)?;
                }
                Ok(())
            });
            if let Err(e) = r {
                self.write_errors += 1;
                self.note(Incomplete::Write(crate::input::io_message(&e)));
            }
        }
        // The record needs only the counts: the buffers and decoders go now (a finished body
        // may wait a little for its record on the worker's queue).
        self.buf = Vec::new();
        self.raw_prefix = Vec::new();
        self.stages = Vec::new();
        let mut sha = std::mem::take(&mut self.sha);
        if self.refilled {
            // The streaming digest read zeros where late bytes now are: take it from the file.
            if let Err(e) = self.rehash(&mut sha) {
                self.write_errors += 1;
                self.note(Incomplete::Write(crate::input::io_message(&e)));
            }
        }
        let sha = sha.finalize();
        let mut s = String::with_capacity(64);
        for b in sha {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}
