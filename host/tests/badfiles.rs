//! Damaged and hostile capture files, through the `tcpflow` binary: every truncation point
//! of two small captures, a wrong magic, odd snap lengths, a record longer than the snap
//! length, a pcapng with mixed link types, an empty file, a folder given as input.
//!
//! For each: no panic (exit status 101 or "panicked" on stderr), a clear error naming the
//! file (and the packet, where there is one) with a nonzero status, and the flows read
//! before the damage written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::{bin, stderr, tmp};

/// Flow files by name (the report is left out).
type Flows = BTreeMap<String, Vec<u8>>;

fn testdata(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(case)
        .join(file)
}

/// Runs `tcpflow -r input -o out` with a small memory budget (so that a run takes
/// milliseconds, not the time to set up a workstation-sized table).
fn tcpflow(input: &Path, out: &Path) -> Output {
    bin()
        .arg("-r")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--memory", "4M"])
        .stdin(Stdio::null())
        .output()
        .expect("run tcpflow")
}

/// Why a run is not acceptable whatever the input: a panic or a signal.
fn panicked(o: &Output) -> Option<String> {
    let e = stderr(o);
    match o.status.code() {
        None => Some(format!("killed by a signal: {:?}", o.status)),
        Some(101) => Some(format!("exit status 101: {e}")),
        _ if e.contains("panicked") => Some(format!("panicked: {e}")),
        _ => None,
    }
}

fn assert_no_panic(o: &Output) {
    if let Some(p) = panicked(o) {
        panic!("{p}");
    }
}

/// The flow files in `dir` (none if it does not exist).
fn flows(dir: &Path) -> Flows {
    let mut m = Flows::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return m;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".xml") || name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        m.insert(name, std::fs::read(e.path()).unwrap());
    }
    m
}

fn expected(case: &str) -> Flows {
    flows(&testdata(case, "expected"))
}

/// Whether `got` could be what was written before the rest of the capture was lost: known
/// names, no longer than expected, every byte the expected one or a NUL (a hole).
fn compatible(got: &Flows, want: &Flows) -> Result<(), String> {
    for (name, bytes) in got {
        let w = want
            .get(name)
            .ok_or_else(|| format!("unexpected file {name}"))?;
        if bytes.len() > w.len() {
            return Err(format!(
                "{name}: {} bytes, more than {}",
                bytes.len(),
                w.len()
            ));
        }
        if let Some(i) = (0..bytes.len()).find(|&i| bytes[i] != w[i] && bytes[i] != 0) {
            return Err(format!("{name}: wrong byte at {i}"));
        }
    }
    Ok(())
}

fn non_nul(f: &Flows) -> usize {
    f.values()
        .map(|b| b.iter().filter(|&&c| c != 0).count())
        .sum()
}

// ---------------------------------------------------------------------------------------
// Record layout

/// Where a capture may end cleanly: after its file header (`header_end`) or after any whole
/// record (`record_ends`, increasing).
struct Layout {
    header_end: usize,
    record_ends: Vec<usize>,
}

impl Layout {
    fn pcap(b: &[u8]) -> Layout {
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian pcap");
        let mut ends = Vec::new();
        let mut pos = 24;
        while pos < b.len() {
            let caplen = u32::from_le_bytes(b[pos + 8..pos + 12].try_into().unwrap()) as usize;
            pos += 16 + caplen;
            ends.push(pos);
        }
        assert_eq!(pos, b.len());
        Layout {
            header_end: 24,
            record_ends: ends,
        }
    }

    /// A little-endian pcapng of a section header, one interface description, then packet
    /// blocks.
    fn pcapng(b: &[u8]) -> Layout {
        let len = |p: usize| u32::from_le_bytes(b[p + 4..p + 8].try_into().unwrap()) as usize;
        let typ = |p: usize| u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
        assert_eq!(typ(0), 0x0a0d_0d0a);
        let idb = len(0);
        assert_eq!(typ(idb), 1);
        let header_end = idb + len(idb);
        let mut ends = Vec::new();
        let mut pos = header_end;
        while pos < b.len() {
            assert_eq!(typ(pos), 6, "enhanced packet blocks only");
            pos += len(pos);
            ends.push(pos);
        }
        assert_eq!(pos, b.len());
        Layout {
            header_end,
            record_ends: ends,
        }
    }

    fn clean(&self, n: usize) -> bool {
        n == self.header_end || self.record_ends.contains(&n)
    }

    /// The last clean end at or before `n` (for `n` past the header).
    fn clean_before(&self, n: usize) -> usize {
        self.record_ends
            .iter()
            .copied()
            .filter(|&e| e <= n)
            .max()
            .unwrap_or(self.header_end)
    }

    /// The packet a cut at `n` (past the header, not clean) falls in, from 1.
    fn packet_at(&self, n: usize) -> usize {
        self.record_ends.iter().filter(|&&e| e <= n).count() + 1
    }
}

// ---------------------------------------------------------------------------------------
// Every truncation point

/// Cuts `case`'s capture at every length from 0 to its size and runs the binary on each,
/// spread over a few threads. A cut on a clean end must succeed with the flows of the
/// packets before it (compatible with the expected files, growing with the cut, the whole
/// expected output at the full length); any other cut must fail naming the file and (past
/// the file header) the packet it falls in, with the flows written being exactly those of
/// the last clean end before it.
fn every_truncation(case: &str, file: &str) {
    let full = std::fs::read(testdata(case, file)).unwrap();
    let layout = match file.ends_with(".pcapng") {
        true => Layout::pcapng(&full),
        false => Layout::pcap(&full),
    };
    let want = expected(case);
    let dir = tmp(&format!("trunc-{case}"));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let ext = Path::new(file)
        .extension()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    // One run: the cut file, its output, what the binary said.
    let cut = |n: usize| -> (PathBuf, Output, Flows) {
        let input = dir.join(format!("cut-{n}.{ext}"));
        let out = dir.join(format!("out-{n}"));
        std::fs::write(&input, &full[..n]).unwrap();
        let o = tcpflow(&input, &out);
        let f = flows(&out);
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_file(&input);
        (input, o, f)
    };
    let parallel = |ns: Vec<usize>, each: &(dyn Fn(usize) + Sync)| {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&n) = ns.get(i) else { break };
                    each(n);
                });
            }
        });
    };
    let failures = Mutex::new(Vec::<String>::new());
    let fail = |n: usize, m: String| failures.lock().unwrap().push(format!("cut at {n}: {m}"));

    // Clean ends first: their outputs are the reference for the cuts after them.
    let mut clean = vec![layout.header_end];
    clean.extend(&layout.record_ends);
    let at_clean = Mutex::new(BTreeMap::<usize, Flows>::new());
    parallel(clean.clone(), &|n| {
        let (_, o, f) = cut(n);
        if let Some(p) = panicked(&o) {
            fail(n, p);
        } else if o.status.code() != Some(0) {
            fail(n, format!("a clean end failed: {}", stderr(&o)));
        }
        if let Err(e) = compatible(&f, &want) {
            fail(n, e);
        }
        at_clean.lock().unwrap().insert(n, f);
    });
    let at_clean = at_clean.into_inner().unwrap();
    let mut grown = 0;
    for (&n, f) in &at_clean {
        let now = non_nul(f);
        if now < grown {
            fail(
                n,
                format!("{now} bytes written, fewer than {grown} at an earlier cut"),
            );
        }
        grown = now;
    }
    assert_eq!(at_clean[&full.len()], want, "the whole capture");

    let rest: Vec<usize> = (0..full.len()).filter(|&n| !layout.clean(n)).collect();
    parallel(rest, &|n| {
        let (input, o, f) = cut(n);
        if let Some(p) = panicked(&o) {
            return fail(n, p);
        }
        let e = stderr(&o);
        if o.status.code() != Some(1) {
            return fail(n, format!("exit status {:?}, not 1: {e}", o.status.code()));
        }
        let name = format!("tcpflow: {}: ", input.display());
        if n < layout.header_end {
            if !e.contains(&format!("{name}not a pcap or pcapng capture")) {
                fail(n, format!("no error naming the file: {e}"));
            }
            if !f.is_empty() {
                fail(
                    n,
                    format!("flows written from a file that did not open: {f:?}"),
                );
            }
            return;
        }
        let packet = layout.packet_at(n);
        if !e.contains(&format!("{name}bad packet {packet} ")) {
            fail(
                n,
                format!("no error naming the file and packet {packet}: {e}"),
            );
        }
        let before = layout.clean_before(n);
        if f != at_clean[&before] {
            fail(n, format!("flows differ from those of the cut at {before}"));
        }
    });
    let failures = failures.into_inner().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cuts wrong; first ones:\n{}",
        failures.len(),
        full.len() + 1,
        failures[..failures.len().min(20)].join("\n")
    );
    println!(
        "{case}/{file}: {} cuts, {} clean ends",
        full.len() + 1,
        clean.len()
    );
}

#[test]
fn every_truncation_of_a_pcap() {
    every_truncation("basic", "input.pcap");
}

#[test]
fn every_truncation_of_a_pcapng() {
    every_truncation("pcapng", "input.pcapng");
}

// ---------------------------------------------------------------------------------------
// Damaged headers and records

/// Runs the binary on `bytes` written to `name` in a fresh folder; returns the output, the
/// input path and the flows written.
fn run_bytes(tag: &str, name: &str, bytes: &[u8]) -> (Output, PathBuf, Flows) {
    let d = tmp(tag);
    let input = d.join(name);
    std::fs::write(&input, bytes).unwrap();
    let out = d.join("out");
    let o = tcpflow(&input, &out);
    assert_no_panic(&o);
    let f = flows(&out);
    (o, input, f)
}

fn basic() -> Vec<u8> {
    std::fs::read(testdata("basic", "input.pcap")).unwrap()
}

/// Asserts a failed run: status 1 and `what` after the file's name on stderr.
fn assert_error(o: &Output, input: &Path, what: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let want = format!("tcpflow: {}: {what}", input.display());
    assert!(e.contains(&want), "wanted {want:?} in: {e}");
}

#[test]
fn wrong_magic() {
    let mut b = basic();
    b[..4].copy_from_slice(&[0x00, 0x11, 0x22, 0x33]);
    let (o, input, f) = run_bytes("magic", "magic.pcap", &b);
    assert_error(
        &o,
        &input,
        "not a pcap or pcapng capture (unknown file format)",
    );
    assert!(f.is_empty());
}

#[test]
fn empty_file() {
    let (o, input, f) = run_bytes("empty", "empty.pcap", &[]);
    assert_error(&o, &input, "not a pcap or pcapng capture");
    assert!(f.is_empty());
}

#[test]
fn folder_as_input() {
    let d = tmp("folder");
    let input = d.join("captures");
    std::fs::create_dir(&input).unwrap();
    let o = tcpflow(&input, &d.join("out"));
    assert_no_panic(&o);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "tcpflow: cannot read {}: it is a folder, not a capture file",
            input.display()
        )),
        "{e}"
    );
}

/// A snap length of 0 or 2^31 in the file header: libpcap (like tcpdump and tshark) takes
/// both as "no limit" and reads the records, which are intact; refusing the file would
/// lose data that is there. So these succeed, byte-exact, with no panic.
#[test]
fn snaplen_zero_and_two_to_the_31() {
    for snaplen in [0u32, 1 << 31] {
        let mut b = basic();
        b[16..20].copy_from_slice(&snaplen.to_le_bytes());
        let (o, _, f) = run_bytes(&format!("snap{snaplen}"), "snap.pcap", &b);
        assert_eq!(
            o.status.code(),
            Some(0),
            "snaplen {snaplen}: {}",
            stderr(&o)
        );
        assert_eq!(f, expected("basic"), "snaplen {snaplen}");
    }
}

/// Record 3 claims 2^31 - 1 captured bytes: libpcap refuses it; the error names the file
/// and packet 3, and the flows of packets 1 and 2 are written.
#[test]
fn record_length_past_any_snaplen() {
    let b = basic();
    let layout = Layout::pcap(&b);
    let rec3 = layout.record_ends[1];
    let mut bad = b.clone();
    bad[rec3 + 8..rec3 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let (o, input, f) = run_bytes("bigrec", "bigrec.pcap", &bad);
    assert_error(&o, &input, "bad packet 3 (after 2 good ones)");
    let (o2, _, f2) = run_bytes("bigrec-ref", "two.pcap", &b[..rec3]);
    assert_eq!(o2.status.code(), Some(0));
    assert_eq!(f, f2, "the flows of the two good packets");
}

/// The file header says snap length 64; the records are longer (up to 1,514 bytes): the
/// file is inconsistent, and the bytes past 64 are in it.
///
/// BUG (host, reading through libpcap): libpcap keeps the first 64 bytes of each such
/// record and drops the rest without an error (its workaround for old Solaris files), so
/// tcpflow exits 0 having written NULs for 3,110 bytes that are in the file, reported as 4
/// snap-length gaps, with no warning. Expected: an error naming the file and the first such
/// packet (exit 1), or every byte (as tshark reads it). Got: exit status 0; the client's
/// file is 83 bytes of which 73 are NULs, the server's 3,067 bytes of which 3,037.
#[test]
#[ignore = "bug: records longer than the file's snap length are cut silently (libpcap)"]
fn record_longer_than_the_snaplen() {
    let mut b = basic();
    b[16..20].copy_from_slice(&64u32.to_le_bytes());
    let (o, input, f) = run_bytes("snap64", "snap64.pcap", &b);
    if o.status.code() == Some(0) {
        assert_eq!(
            f,
            expected("basic"),
            "exit 0, so every byte: {}",
            stderr(&o)
        );
    } else {
        assert_error(&o, &input, "bad packet ");
    }
}

/// Compressed captures (gzip, xz, bzip2, decompressed on the fly by a thread) cut short:
/// every cut but the whole file fails with an error naming the file; what was decompressed
/// before the cut is written. Cuts every 13 bytes and each of the last 16.
#[test]
fn truncated_compressed_captures() {
    use std::io::Write;
    let plain = basic();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let want = expected("basic");
    for (kind, bytes) in [("gz", gz), ("xz", xz), ("bz2", bz)] {
        let len = bytes.len();
        let cuts: Vec<usize> = (0..len)
            .step_by(13)
            .chain(len.saturating_sub(16)..=len)
            .collect();
        for n in cuts {
            let (o, input, f) =
                run_bytes(&format!("z{kind}"), &format!("c.pcap.{kind}"), &bytes[..n]);
            if n == len {
                assert_eq!(o.status.code(), Some(0), "{kind} whole: {}", stderr(&o));
                assert_eq!(f, want, "{kind} whole");
                continue;
            }
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{kind} cut at {n}: {e}");
            assert!(
                e.contains(&format!("tcpflow: {}: ", input.display())),
                "{kind} cut at {n}: the file is not named: {e}"
            );
            compatible(&f, &want).unwrap_or_else(|m| panic!("{kind} cut at {n}: {m}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// pcapng with mixed link types

fn pcapng_block(typ: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (12 + body.len()) as u32;
    let mut v = typ.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn idb(link: u16) -> Vec<u8> {
    let mut b = link.to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    pcapng_block(1, &b)
}

fn epb(iface: u32, ts_us: u64, frame: &[u8]) -> Vec<u8> {
    let mut b = iface.to_le_bytes().to_vec();
    b.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts_us as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(frame);
    pcapng_block(6, &b)
}

/// A pcapng whose second interface is raw IP (101) after Ethernet: libpcap cannot give one
/// link type for the file and stops at the second interface block. The error names the file
/// and the packet; the flows of the Ethernet packets before it are written.
#[test]
fn pcapng_with_mixed_link_types() {
    let b = basic();
    let layout = Layout::pcap(&b);
    let mut frames = Vec::new();
    let mut start = 24;
    for &end in &layout.record_ends {
        frames.push(b[start + 16..end].to_vec());
        start = end;
    }
    let mut shb_body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb_body.extend_from_slice(&[1, 0, 0, 0]);
    shb_body.extend_from_slice(&(-1i64).to_le_bytes());
    let mut f = pcapng_block(0x0a0d_0d0a, &shb_body);
    f.extend(idb(1));
    let t0 = 1_700_000_000_000_000u64;
    for (i, fr) in frames[..5].iter().enumerate() {
        f.extend(epb(0, t0 + i as u64, fr));
    }
    f.extend(idb(101));
    f.extend(epb(1, t0 + 10, &frames[5][14..]));
    for (i, fr) in frames[5..].iter().enumerate() {
        f.extend(epb(0, t0 + 20 + i as u64, fr));
    }
    let (o, input, flows) = run_bytes("mixed", "mixed.pcapng", &f);
    assert_error(&o, &input, "bad packet 6 (after 5 good ones)");
    assert!(stderr(&o).contains("different from the type of the first interface"));
    compatible(&flows, &expected("basic")).unwrap();
    // The request was in the first five packets.
    let client = "010.000.000.001.40000-010.000.000.002.00080";
    assert_eq!(flows.get(client), expected("basic").get(client));
}
