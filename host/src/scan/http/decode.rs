//! Content decoding, streaming: each coding is a stage fed compressed bytes as they come and
//! handing out decoded bytes in pieces of at most [`OUT_CHUNK`], so that a body of any size
//! (or a decompression bomb) passes through a fixed amount of memory. Codecs are the crates'
//! (flate2's inflate on zlib-rs, brotli-decompressor, ruzstd); this is the glue.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Decompress, FlushDecompress, Status};

/// Decoded bytes handed on at a time.
pub const OUT_CHUNK: usize = 32 * 1024;

/// A content or transfer coding this scanner decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// `deflate`: zlib-wrapped as the RFC says, or raw deflate as some servers send it.
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    /// The coding named in a header (case-insensitive); `None` for identity and unknown ones.
    pub fn parse(name: &str) -> Option<Coding> {
        match name.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

/// What the next stage (or the body file) does with decoded bytes: false stops decoding (the
/// size bound was reached).
pub type Out<'a> = dyn FnMut(&[u8]) -> bool + 'a;

/// One decoding stage.
pub struct Stage {
    kind: Kind,
    /// Decoded bytes, reused.
    buf: Box<[u8]>,
    /// The coding's stream ended; bytes after it are counted, not decoded.
    pub ended: bool,
    /// Compressed bytes that came after the end of the coded stream.
    pub trailing: u64,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage").field("ended", &self.ended).finish()
    }
}

enum Kind {
    /// gzip: a member header parsed here, then raw deflate, then the 8-byte trailer; members
    /// may follow one another.
    Gzip {
        hdr: GzHeader,
        inflate: Box<Decompress>,
        trailer: u8,
    },
    /// deflate before its first two bytes tell zlib from raw.
    DeflateProbe(Vec<u8>),
    Inflate(Box<Decompress>),
    Br(Box<BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>>),
    /// zstd: ruzstd decodes whole blocks, so compressed bytes wait here until one is whole
    /// (a block is at most 128 KiB; the bound is [`ZSTD_MAX_PENDING`]).
    Zstd {
        dec: Box<ruzstd::decoding::FrameDecoder>,
        pending: Vec<u8>,
        /// The frame header was read.
        started: bool,
    },
}

/// Compressed zstd bytes held while a block is incomplete: a block and a frame header.
const ZSTD_MAX_PENDING: usize = 128 * 1024 + 64 * 1024;
/// The longest zstd frame header: magic, descriptor, window, dictionary id, content size.
const ZSTD_MAX_HEADER: usize = 18;

/// Where a gzip member's header parse is.
#[derive(Clone, Copy, Debug)]
enum GzHeader {
    /// Bytes of the fixed 10-byte header seen, and its flags once known.
    Fixed {
        seen: u8,
        flags: u8,
    },
    /// FEXTRA length bytes (2), then that many bytes.
    ExtraLen {
        flags: u8,
        seen: u8,
        len: u16,
    },
    Extra {
        flags: u8,
        left: u16,
    },
    /// FNAME / FCOMMENT: up to a NUL.
    Name {
        flags: u8,
    },
    Comment {
        flags: u8,
    },
    Crc {
        left: u8,
    },
    Done,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

impl Stage {
    pub fn new(c: Coding) -> Stage {
        let kind = match c {
            Coding::Gzip => Kind::Gzip {
                hdr: GzHeader::Fixed { seen: 0, flags: 0 },
                inflate: Box::new(Decompress::new(false)),
                trailer: 0,
            },
            Coding::Deflate => Kind::DeflateProbe(Vec::new()),
            Coding::Br => Kind::Br(Box::new(BrotliState::new(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ))),
            Coding::Zstd => Kind::Zstd {
                dec: Box::new(ruzstd::decoding::FrameDecoder::new()),
                pending: Vec::new(),
                started: false,
            },
        };
        Stage {
            kind,
            buf: vec![0; OUT_CHUNK].into_boxed_slice(),
            ended: false,
            trailing: 0,
        }
    }

    /// Decodes `input`, handing decoded bytes to `out`. `Ok(false)`: `out` asked to stop.
    pub fn push(&mut self, mut input: &[u8], out: &mut Out<'_>) -> Result<bool, String> {
        while !input.is_empty() {
            if self.ended {
                self.trailing += input.len() as u64;
                return Ok(true);
            }
            let used = match &mut self.kind {
                Kind::Gzip {
                    hdr,
                    inflate,
                    trailer,
                } => {
                    if !matches!(hdr, GzHeader::Done) {
                        gz_header(hdr, input)?
                    } else if *trailer > 0 {
                        let n = (*trailer as usize).min(input.len());
                        *trailer -= n as u8;
                        if *trailer == 0 {
                            // Another member may follow (concatenated gzip is one body).
                            *hdr = GzHeader::Fixed { seen: 0, flags: 0 };
                            inflate.reset(false);
                        }
                        n
                    } else {
                        let (n, end, go) = inflate_some(inflate, input, &mut self.buf, out)?;
                        if !go {
                            return Ok(false);
                        }
                        if end {
                            *trailer = 8;
                        }
                        n
                    }
                }
                Kind::DeflateProbe(seen) => {
                    let take = (2 - seen.len()).min(input.len());
                    seen.extend_from_slice(&input[..take]);
                    if seen.len() == 2 {
                        // A zlib header: method 8, a window of at most 32 KiB, and a check
                        // making the first two bytes a multiple of 31.
                        let (a, b) = (seen[0], seen[1]);
                        let zlib = a & 0x0f == 8
                            && a >> 4 <= 7
                            && (u16::from(a) << 8 | u16::from(b)) % 31 == 0;
                        let mut d = Box::new(Decompress::new(zlib));
                        let head = std::mem::take(seen);
                        let (_, end, go) = inflate_all(&mut d, &head, &mut self.buf, out)?;
                        self.kind = Kind::Inflate(d);
                        if end {
                            self.ended = true;
                        }
                        if !go {
                            return Ok(false);
                        }
                    }
                    take
                }
                Kind::Inflate(d) => {
                    let (n, end, go) = inflate_some(d, input, &mut self.buf, out)?;
                    if !go {
                        return Ok(false);
                    }
                    if end {
                        self.ended = true;
                    }
                    n
                }
                Kind::Br(st) => {
                    let (mut avail_in, mut in_off) = (input.len(), 0usize);
                    loop {
                        let (mut avail_out, mut out_off, mut total) =
                            (self.buf.len(), 0usize, 0usize);
                        let r = BrotliDecompressStream(
                            &mut avail_in,
                            &mut in_off,
                            input,
                            &mut avail_out,
                            &mut out_off,
                            &mut self.buf,
                            &mut total,
                            st,
                        );
                        if out_off > 0 && !out(&self.buf[..out_off]) {
                            return Ok(false);
                        }
                        match r {
                            BrotliResult::NeedsMoreOutput => continue,
                            BrotliResult::NeedsMoreInput => break,
                            BrotliResult::ResultSuccess => {
                                self.ended = true;
                                break;
                            }
                            BrotliResult::ResultFailure => return Err("br: corrupt data".into()),
                        }
                    }
                    in_off
                }
                Kind::Zstd {
                    dec,
                    pending,
                    started,
                } => {
                    if pending.len() + input.len() > ZSTD_MAX_PENDING {
                        return Err("zstd: a block larger than 128 KiB".into());
                    }
                    pending.extend_from_slice(input);
                    let n = input.len();
                    if !*started {
                        // The frame header whole first (at most 18 bytes): ruzstd reads it
                        // from a reader and fails on a short one.
                        let mut src = &pending[..];
                        match dec.init(&mut src) {
                            Ok(()) => {
                                let used = pending.len() - src.len();
                                pending.drain(..used);
                                *started = true;
                            }
                            Err(_) if pending.len() < ZSTD_MAX_HEADER => return Ok(true),
                            Err(e) => return Err(format!("zstd: {e}")),
                        }
                    }
                    let mut off = 0;
                    loop {
                        // ruzstd counts a 4-byte checksum as read when fewer bytes are
                        // there, and reads nothing useful from fewer than 4 (a block
                        // header is 3 bytes and its content follows): fewer wait.
                        let avail = &pending[off..];
                        let src = if avail.len() >= 4 { avail } else { &[][..] };
                        let (read, wrote) = dec
                            .decode_from_to(src, &mut self.buf)
                            .map_err(|e| format!("zstd: {e}"))?;
                        let read = read.min(src.len());
                        off += read;
                        if wrote > 0 && !out(&self.buf[..wrote]) {
                            return Ok(false);
                        }
                        if dec.is_finished() && dec.can_collect() == 0 {
                            self.ended = true;
                            self.trailing += (pending.len() - off) as u64;
                            pending.clear();
                            return Ok(true);
                        }
                        if read == 0 && wrote == 0 {
                            break;
                        }
                    }
                    pending.drain(..off);
                    n
                }
            };
            input = &input[used..];
        }
        Ok(true)
    }

    /// Whether the coded stream ended cleanly (a body that stops before is incomplete).
    pub fn finished(&self) -> bool {
        self.ended
            || matches!(
                &self.kind,
                Kind::Gzip {
                    hdr: GzHeader::Fixed { seen: 0, .. },
                    ..
                }
            )
    }
}

/// Parses part of a gzip member header; returns the bytes used.
fn gz_header(h: &mut GzHeader, input: &[u8]) -> Result<usize, String> {
    let mut used = 0;
    for &b in input {
        used += 1;
        *h = match *h {
            GzHeader::Fixed { seen, flags } => {
                match seen {
                    0 if b != 0x1f => return Err("gzip: bad magic".into()),
                    1 if b != 0x8b => return Err("gzip: bad magic".into()),
                    2 if b != 8 => return Err("gzip: not deflate".into()),
                    _ => {}
                }
                let flags = if seen == 3 { b } else { flags };
                if seen + 1 < 10 {
                    GzHeader::Fixed {
                        seen: seen + 1,
                        flags,
                    }
                } else {
                    next_gz_field(flags, 0)
                }
            }
            GzHeader::ExtraLen { flags, seen, len } => {
                let len = len | u16::from(b) << (8 * seen);
                if seen == 0 {
                    GzHeader::ExtraLen {
                        flags,
                        seen: 1,
                        len,
                    }
                } else if len == 0 {
                    next_gz_field(flags, FEXTRA)
                } else {
                    GzHeader::Extra { flags, left: len }
                }
            }
            GzHeader::Extra { flags, left } => {
                if left == 1 {
                    next_gz_field(flags, FEXTRA)
                } else {
                    GzHeader::Extra {
                        flags,
                        left: left - 1,
                    }
                }
            }
            GzHeader::Name { flags } => {
                if b == 0 {
                    next_gz_field(flags, FNAME)
                } else {
                    GzHeader::Name { flags }
                }
            }
            GzHeader::Comment { flags } => {
                if b == 0 {
                    next_gz_field(flags, FCOMMENT)
                } else {
                    GzHeader::Comment { flags }
                }
            }
            GzHeader::Crc { left } => {
                if left == 1 {
                    GzHeader::Done
                } else {
                    GzHeader::Crc { left: left - 1 }
                }
            }
            GzHeader::Done => unreachable!("the loop stops at Done"),
        };
        if matches!(h, GzHeader::Done) {
            break;
        }
    }
    Ok(used)
}

/// The header field after the ones in `done` (flags, in the order of RFC 1952).
fn next_gz_field(flags: u8, done: u8) -> GzHeader {
    let after = |f: u8| done == 0 || f > done;
    if flags & FEXTRA != 0 && after(FEXTRA) {
        GzHeader::ExtraLen {
            flags,
            seen: 0,
            len: 0,
        }
    } else if flags & FNAME != 0 && after(FNAME) {
        GzHeader::Name { flags }
    } else if flags & FCOMMENT != 0 && after(FCOMMENT) {
        GzHeader::Comment { flags }
    } else if flags & FHCRC != 0 {
        GzHeader::Crc { left: 2 }
    } else {
        GzHeader::Done
    }
}

/// Inflates from `input` until it is used up or the deflate stream ends: (bytes used, ended,
/// go on).
fn inflate_some(
    d: &mut Decompress,
    input: &[u8],
    buf: &mut [u8],
    out: &mut Out<'_>,
) -> Result<(usize, bool, bool), String> {
    inflate_all(d, input, buf, out)
}

fn inflate_all(
    d: &mut Decompress,
    input: &[u8],
    buf: &mut [u8],
    out: &mut Out<'_>,
) -> Result<(usize, bool, bool), String> {
    let mut off = 0;
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let st = d
            .decompress(&input[off..], buf, FlushDecompress::None)
            .map_err(|e| format!("deflate: {e}"))?;
        let used = (d.total_in() - in0) as usize;
        let made = (d.total_out() - out0) as usize;
        off += used;
        if made > 0 && !out(&buf[..made]) {
            return Ok((off, false, false));
        }
        match st {
            Status::StreamEnd => return Ok((off, true, true)),
            _ if used == 0 && made == 0 => return Ok((off, false, true)),
            _ if off == input.len() && made < buf.len() => return Ok((off, false, true)),
            _ => {}
        }
    }
}

/// Decodes through a chain of stages, the first stage fed `input`; the last stage's output
/// goes to `out`.
pub fn push_chain(stages: &mut [Stage], input: &[u8], out: &mut Out<'_>) -> Result<bool, String> {
    match stages.split_first_mut() {
        None => Ok(out(input)),
        Some((first, rest)) => {
            let mut err = None;
            let go = first.push(
                input,
                &mut |chunk: &[u8]| match push_chain(rest, chunk, out) {
                    Ok(go) => go,
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                },
            )?;
            match err {
                Some(e) => Err(e),
                None => Ok(go),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode(stages: &mut [Stage], input: &[u8], piece: usize) -> Result<Vec<u8>, String> {
        let mut got = Vec::new();
        for c in input.chunks(piece.max(1)) {
            push_chain(stages, c, &mut |b: &[u8]| {
                got.extend_from_slice(b);
                true
            })?;
        }
        Ok(got)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_zlib_raw_in_any_pieces() {
        let text: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let g = gz(&text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let z = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&text).unwrap();
        let r = r.finish().unwrap();
        for piece in [1, 7, 1500, 1 << 20] {
            let mut s = [Stage::new(Coding::Gzip)];
            assert_eq!(decode(&mut s, &g, piece).unwrap(), text);
            assert!(s[0].finished());
            let mut s = [Stage::new(Coding::Deflate)];
            assert_eq!(decode(&mut s, &z, piece).unwrap(), text);
            let mut s = [Stage::new(Coding::Deflate)];
            assert_eq!(decode(&mut s, &r, piece).unwrap(), text);
            assert!(s[0].finished());
        }
    }

    #[test]
    fn gzip_header_fields_and_members() {
        let mut e = flate2::GzBuilder::new()
            .filename("a.txt")
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hello ").unwrap();
        let mut g = e.finish().unwrap();
        g.extend(gz(b"world"));
        let mut s = [Stage::new(Coding::Gzip)];
        assert_eq!(decode(&mut s, &g, 3).unwrap(), b"hello world");
    }

    #[test]
    fn stacked_and_errors() {
        let inner = gz(b"twice");
        let outer = gz(&inner);
        let mut s = [Stage::new(Coding::Gzip), Stage::new(Coding::Gzip)];
        assert_eq!(decode(&mut s, &outer, 5).unwrap(), b"twice");
        let mut s = [Stage::new(Coding::Gzip)];
        assert!(decode(&mut s, b"not gzip at all", 4).is_err());
        let mut s = [Stage::new(Coding::Br)];
        assert!(decode(&mut s, &[0xff; 64], 4).is_err());
    }

    #[test]
    fn zstd_and_br_round_trip() {
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let z = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for piece in [1, 100, 1448, 1 << 20] {
            let mut s = [Stage::new(Coding::Zstd)];
            let got = decode(&mut s, &z, piece).unwrap();
            assert!(
                got == text,
                "piece {piece}: {} bytes of {}",
                got.len(),
                text.len()
            );
            assert!(s[0].finished());
        }
        // A brotli stream of one uncompressed meta-block ("hello"), then an empty last one.
        let l = 4u32;
        let mut b = vec![(l << 4) as u8, (l >> 4) as u8, ((l >> 12) as u8) | 1 << 4];
        b.extend_from_slice(b"hello");
        b.push(0b11);
        let mut s = [Stage::new(Coding::Br)];
        assert_eq!(decode(&mut s, &b, 2).unwrap(), b"hello");
        assert!(s[0].finished());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 1, 2, 3, 7, 18, 64, 300, 5000] {
            for _ in 0..50 {
                let g: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                // zstd's and gzip's magic in front, so that the decoders get past it.
                for (c, head) in [
                    (Coding::Gzip, &[0x1f, 0x8b, 8, 0][..]),
                    (Coding::Deflate, &[][..]),
                    (Coding::Br, &[][..]),
                    (Coding::Zstd, &[0x28, 0xb5, 0x2f, 0xfd][..]),
                ] {
                    let input = [head, &g].concat();
                    let mut s = [Stage::new(c)];
                    let _ = decode(&mut s, &input, 1 + len % 17);
                    let _ = s[0].finished();
                }
            }
        }
    }

    #[test]
    fn a_stop_stops() {
        let big = gz(&vec![0u8; 10 << 20]);
        let mut s = [Stage::new(Coding::Gzip)];
        let mut n = 0usize;
        let go = push_chain(&mut s, &big, &mut |b: &[u8]| {
            n += b.len();
            n < 100_000
        })
        .unwrap();
        assert!(!go);
        assert!(n < 100_000 + OUT_CHUNK);
    }
}
