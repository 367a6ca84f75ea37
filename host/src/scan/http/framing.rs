//! HTTP/1 framing: where a message head ends, and the chunked transfer coding taken apart
//! byte by byte (sizes, extensions, trailers) so that no chunk line reaches a body file.

/// Longest message head kept while looking for its end (a larger one ends HTTP parsing on
/// that direction, counted).
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk size line, and the most trailer bytes.
const MAX_CHUNK_LINE: u32 = 4096;
const MAX_TRAILER: u32 = 64 * 1024;

/// What the first bytes of a message say: a response, a request, not HTTP, or too few bytes
/// to tell. Leading empty lines (allowed before a request) are skipped by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Response,
    Request,
    NotHttp,
    Unknown,
}

pub fn classify(b: &[u8]) -> Start {
    const H: &[u8] = b"HTTP/";
    let n = b.len().min(H.len());
    if b[..n] == H[..n] {
        return if n == H.len() {
            Start::Response
        } else {
            Start::Unknown
        };
    }
    // A method: a token of letters (and '-', '_') then a space, as every registered one is.
    for (i, &c) in b.iter().enumerate().take(24) {
        if c == b' ' {
            return if i > 0 {
                Start::Request
            } else {
                Start::NotHttp
            };
        }
        if !(c.is_ascii_alphabetic() || c == b'-' || c == b'_') {
            return Start::NotHttp;
        }
    }
    if b.len() >= 24 {
        Start::NotHttp
    } else {
        Start::Unknown
    }
}

/// The length of the head in `b` (through its empty line), if it is all there. `from`: bytes
/// already searched (the search resumes a little before).
pub fn head_end(b: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// The chunked decoder's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunked {
    /// In a size line: the value so far, hex digits seen, in an extension, line length.
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        len: u32,
    },
    Data {
        left: u64,
    },
    /// After a chunk's data: its line end.
    DataEnd {
        cr: bool,
    },
    /// In the trailer: this line's length, all trailer bytes.
    Trailer {
        line: u32,
        total: u32,
    },
    Done,
}

impl Chunked {
    pub const START: Chunked = Chunked::Size {
        value: 0,
        digits: 0,
        ext: false,
        len: 0,
    };
}

/// One step over `b`: bytes used, and body data found (a range of `b`). Errors say why the
/// framing is lost.
pub fn chunk_step(st: &mut Chunked, b: &[u8]) -> Result<(usize, Option<(usize, usize)>), String> {
    match *st {
        Chunked::Data { left } => {
            let n = (left.min(b.len() as u64)) as usize;
            *st = if left == n as u64 {
                Chunked::DataEnd { cr: false }
            } else {
                Chunked::Data {
                    left: left - n as u64,
                }
            };
            Ok((n, Some((0, n))))
        }
        Chunked::Done => Ok((0, None)),
        _ => {
            for (i, &c) in b.iter().enumerate() {
                *st = match *st {
                    Chunked::Size {
                        value,
                        digits,
                        ext,
                        len,
                    } => {
                        if len >= MAX_CHUNK_LINE {
                            return Err("chunk size line too long".into());
                        }
                        let len = len + 1;
                        match c {
                            b'\n' if digits == 0 => return Err("empty chunk size".into()),
                            b'\n' if value == 0 => Chunked::Trailer { line: 0, total: 0 },
                            b'\n' => {
                                *st = Chunked::Data { left: value };
                                return Ok((i + 1, None));
                            }
                            b'\r' => Chunked::Size {
                                value,
                                digits,
                                ext,
                                len,
                            },
                            _ if ext => Chunked::Size {
                                value,
                                digits,
                                ext,
                                len,
                            },
                            b';' | b' ' | b'\t' if digits > 0 => Chunked::Size {
                                value,
                                digits,
                                ext: true,
                                len,
                            },
                            _ => {
                                let d = (c as char)
                                    .to_digit(16)
                                    .ok_or_else(|| format!("bad chunk size byte 0x{c:02x}"))?;
                                if digits >= 15 {
                                    return Err("chunk size too large".into());
                                }
                                Chunked::Size {
                                    value: value << 4 | u64::from(d),
                                    digits: digits + 1,
                                    ext,
                                    len,
                                }
                            }
                        }
                    }
                    Chunked::DataEnd { cr } => match c {
                        b'\r' if !cr => Chunked::DataEnd { cr: true },
                        b'\n' => Chunked::START,
                        _ => return Err("no line end after chunk data".into()),
                    },
                    Chunked::Trailer { line, total } => {
                        if total >= MAX_TRAILER {
                            return Err("trailer too long".into());
                        }
                        match c {
                            b'\n' if line == 0 => {
                                *st = Chunked::Done;
                                return Ok((i + 1, None));
                            }
                            b'\n' => Chunked::Trailer {
                                line: 0,
                                total: total + 1,
                            },
                            b'\r' => Chunked::Trailer {
                                line,
                                total: total + 1,
                            },
                            _ => Chunked::Trailer {
                                line: line + 1,
                                total: total + 1,
                            },
                        }
                    }
                    Chunked::Data { .. } | Chunked::Done => unreachable!("handled above"),
                };
            }
            Ok((b.len(), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk(input: &[u8], piece: usize) -> Result<(Vec<u8>, Chunked, usize), String> {
        let mut st = Chunked::START;
        let mut out = Vec::new();
        let mut used = 0;
        for p in input.chunks(piece) {
            let mut b = p;
            while !b.is_empty() && st != Chunked::Done {
                let (n, d) = chunk_step(&mut st, b)?;
                if let Some((s, e)) = d {
                    out.extend_from_slice(&b[s..e]);
                }
                used += n;
                b = &b[n..];
            }
        }
        Ok((out, st, used))
    }

    #[test]
    fn chunks_extensions_trailers() {
        let src = b"4;name=v\r\nWiki\r\n5 \r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in [1, 2, 5, 100] {
            let (out, st, used) = dechunk(src, piece).unwrap();
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(st, Chunked::Done);
            assert_eq!(&src[used..], b"NEXT");
        }
        let (out, _, _) = dechunk(b"3\nabc\n0\n\n", 1).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn bad_sizes() {
        assert!(dechunk(b"zz\r\n", 4).is_err());
        assert!(dechunk(b"\r\n", 4).is_err());
        assert!(dechunk(b"ffffffffffffffffff\r\n", 4).is_err());
        assert!(dechunk(b"3\r\nabcX", 4).is_err());
        assert!(dechunk(&[b'1'; 5000], 64).is_err());
    }

    #[test]
    fn starts() {
        assert_eq!(classify(b"HTTP/1.1 200"), Start::Response);
        assert_eq!(classify(b"HTT"), Start::Unknown);
        assert_eq!(classify(b"GET / HTTP/1.1"), Start::Request);
        assert_eq!(classify(b"M-SEARCH * HTTP/1.1"), Start::Request);
        assert_eq!(classify(b"\x16\x03\x01"), Start::NotHttp);
        assert_eq!(classify(b"GE"), Start::Unknown);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nxx", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nxx", 10), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n", 0), None);
    }
}
