//! `http`: the `-e http` scanner (and the digests) over input-driven stream events: both
//! directions of a connection, data in pieces of any size, gaps, late bytes, a close. The
//! streams are the input's bytes, so anything the HTTP parser, the chunked decoder and the
//! decoders (gzip, deflate, br, zstd) can be fed is reached; the bodies go to a scratch folder.
//!
//! Input: a mode byte (bit 0: `-Z`, no decoding; bit 1: a 4 KiB body bound; bits 2..=3: the
//! close reason), then events: a byte (bit 0: direction; bits 1..=2: data, gap, late; bits
//! 3..=7: a length in 64-byte units for gaps, or for data the count of bytes taken, 1..=32
//! times 16) and, for data, that many input bytes.
//!
//! Checks, beyond "no panic": every body file written is at most the bound, and the report
//! gets one line per body written.

use std::path::{Path, PathBuf};

use tcpflow::report::Objects;
use tcpflow::scan::http::HttpConfig;
use tcpflow::scan::{ScanConfig, ScanSet, Selection};
use tcpflow::template::Template;
use tcpflow_core::{Addr, CloseReason, Dir, DirInfo, FlowInfo, FlowKey, Timestamp, Vlans};

use crate::Input;

fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("tcpflow-fuzz-http-{}", std::process::id()))
}

fn flow() -> FlowInfo {
    FlowInfo {
        slot: 0,
        key: FlowKey {
            addr: [Addr::V4([10, 0, 0, 1]), Addr::V4([10, 0, 0, 2])],
            port: [40000, 80],
            vlans: Vlans::NONE,
        },
        conn_index: 0,
        first_ts: Timestamp(0),
        last_ts: Timestamp(0),
        macs: None,
        dirs: [DirInfo::EMPTY; 2],
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(mode) = inp.u8() else { return };
    let max_body = if mode & 2 != 0 { 4096 } else { 1 << 20 };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let cfg = ScanConfig {
        selection: Selection {
            http: true,
            md5: true,
            sha256: true,
            netviz: false,
        },
        template: Template::parse(tcpflow::template::DEFAULT).expect("the default template"),
        outdir: dir.clone(),
        display_dir: None,
        file_mode: 0o600,
        max_bytes: None,
        http: HttpConfig {
            max_body,
            decode: mode & 1 == 0,
        },
    };
    let mut set = ScanSet::new(cfg).expect("scanners selected");
    let mut report = Objects::default();
    let f = flow();
    set.open(&f, 0, &mut report);
    let mut off = [0u64; 2];
    while let Some(ev) = inp.u8() {
        let d = if ev & 1 == 0 { Dir::AtoB } else { Dir::BtoA };
        let i = d.index();
        let n = u64::from(ev >> 3);
        match (ev >> 1) & 3 {
            1 => {
                let len = 1 + n * 64;
                set.gap(&f, d, off[i], len, &mut report);
                off[i] += len;
            }
            2 if off[i] > 0 => {
                let b = inp.take(((n as usize) + 1).min(off[i] as usize));
                set.late(&f, d, off[i] - b.len() as u64, b, &mut report);
            }
            _ => {
                let b = inp.take((n as usize + 1) * 16);
                if b.is_empty() {
                    break;
                }
                set.data(&f, d, off[i], b, &mut report);
                off[i] += b.len() as u64;
            }
        }
    }
    let reason = [
        CloseReason::Fin,
        CloseReason::Rst,
        CloseReason::EndOfInput,
        CloseReason::Idle,
    ][usize::from((mode >> 2) & 3)];
    set.close(&f, reason, &mut report);
    for d in Dir::BOTH {
        let _ = set.take_extra(&f, d);
    }
    for e in std::fs::read_dir(&dir).expect("scratch folder").flatten() {
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        assert!(
            len <= max_body,
            "{}: {len} bytes over the bound {max_body}",
            e.path().display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seeds: conversations in the input's format (requests one way, responses the other) with
/// each framing, a coded body and a gap.
pub fn seeds() -> Vec<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[b'z'; 3000]).expect("in memory");
    let gz = gz.finish().expect("in memory");
    let mut coded = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    coded.extend_from_slice(&gz);
    let convs: Vec<(Vec<u8>, Vec<u8>, bool)> = vec![
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".to_vec(),
            false,
        ),
        (
            b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\r\n\r\nuntil the close".to_vec(),
            false,
        ),
        (b"GET /g HTTP/1.1\r\n\r\n".to_vec(), coded.clone(), false),
        (b"GET /g HTTP/1.1\r\n\r\n".to_vec(), coded, true),
    ];
    let mut out = Vec::new();
    for (req, rsp, gap) in convs {
        let mut s = vec![0u8];
        for (d, bytes) in [(0u8, &req), (1u8, &rsp)] {
            let mut first = true;
            for c in bytes.chunks(64) {
                if gap && d == 1 && !first {
                    // A gap of 1 byte (length code 0), then the data goes on.
                    s.push(d | 1 << 1);
                }
                first = false;
                s.push(d | (((c.len() as u8).div_ceil(16) - 1) << 3));
                s.extend_from_slice(c);
                // Pad to the length the event byte announces.
                s.resize(s.len() + (c.len().div_ceil(16) * 16 - c.len()), b' ');
            }
        }
        out.push(s);
    }
    out
}
