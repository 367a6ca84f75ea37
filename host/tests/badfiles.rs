//! Damaged and hostile capture files, through the `tcpflow` binary: every truncation point
//! of two small captures, a wrong magic, odd snap lengths, a record longer than the snap
//! length, pcapng files with mixed link types (and filters on them), an empty file, a folder
//! given as input.
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
        if name.ends_with(".xml")
            || name.ends_with(".json")
            || name.ends_with(".html")
            || name.starts_with('.')
        {
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
/// record (`record_ends`, increasing); a pcapng also right after its section header
/// (`empty_end`: a section with no interface and no packet is an empty capture).
struct Layout {
    header_end: usize,
    record_ends: Vec<usize>,
    empty_end: Option<usize>,
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
            empty_end: None,
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
            empty_end: Some(idb),
        }
    }

    fn clean(&self, n: usize) -> bool {
        n == self.header_end || self.record_ends.contains(&n) || self.empty_end == Some(n)
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
    let mut clean: Vec<usize> = layout.empty_end.into_iter().collect();
    clean.push(layout.header_end);
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
/// file is inconsistent, and the bytes past 64 are in it. libpcap would keep the first 64
/// bytes of each such record and drop the rest without a word; tshark reads every byte.
/// Every byte is read (the flows are the whole capture's), the first such packet is named
/// once with the count at the end of the file, the report counts them, and the run fails.
#[test]
fn record_longer_than_the_snaplen() {
    let mut b = basic();
    b[16..20].copy_from_slice(&64u32.to_le_bytes());
    let (o, input, f) = run_bytes("snap64", "snap64.pcap", &b);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(f, expected("basic"), "every byte: {e}");
    let name = input.display();
    let first = format!(
        "tcpflow: {name}: packet 4: record of 137 bytes is longer than the file's snap length 64; read whole\n"
    );
    assert!(e.starts_with(&first), "{e}");
    assert_eq!(
        e.matches("longer than the file's snap length").count(),
        1,
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "tcpflow: {name}: 4 records longer than the snap length, read whole\n"
        )),
        "{e}"
    );
    let report = std::fs::read_to_string(input.parent().unwrap().join("out/report.xml")).unwrap();
    assert!(report.contains("records_over_snaplen='4'"), "{report}");
    assert!(report.contains("read_errors='0'"), "{report}");
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

/// The frames of testdata/basic, in order.
fn basic_frames() -> Vec<Vec<u8>> {
    let b = basic();
    let layout = Layout::pcap(&b);
    let mut frames = Vec::new();
    let mut start = 24;
    for &end in &layout.record_ends {
        frames.push(b[start + 16..end].to_vec());
        start = end;
    }
    frames
}

fn shb() -> Vec<u8> {
    let mut shb_body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb_body.extend_from_slice(&[1, 0, 0, 0]);
    shb_body.extend_from_slice(&(-1i64).to_le_bytes());
    pcapng_block(0x0a0d_0d0a, &shb_body)
}

/// testdata/basic as a pcapng whose second interface is raw IP (101) after Ethernet: the
/// sixth packet (1,448 bytes of the server's data) only on the raw IP interface, the others
/// on the Ethernet one. libpcap refuses such a file (one link type per file); each packet
/// carries its interface's link type here, so both are decoded: the whole capture's flows,
/// exit 0.
fn mixed_pcapng() -> Vec<u8> {
    let frames = basic_frames();
    let mut f = shb();
    f.extend(idb(1));
    let t0 = 1_700_000_000_000_000u64;
    for (i, fr) in frames[..5].iter().enumerate() {
        f.extend(epb(0, t0 + i as u64, fr));
    }
    f.extend(idb(101));
    f.extend(epb(1, t0 + 10, &frames[5][14..]));
    for (i, fr) in frames[6..].iter().enumerate() {
        f.extend(epb(0, t0 + 20 + i as u64, fr));
    }
    f
}

#[test]
fn pcapng_with_mixed_link_types() {
    let (o, _, flows) = run_bytes("mixed", "mixed.pcapng", &mixed_pcapng());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(flows, expected("basic"));
    // Without the raw IP packet, its bytes are a hole: it was the one that filled it.
    let frames = basic_frames();
    let mut f = shb();
    f.extend(idb(1));
    for (i, fr) in frames.iter().enumerate().filter(|(i, _)| *i != 5) {
        f.extend(epb(0, 1_700_000_000_000_000 + i as u64, fr));
    }
    let (_, _, without) = run_bytes("mixed-ref", "eth-only.pcapng", &f);
    assert_ne!(without, flows);
}

/// A pcapng interface of a link type the core does not decode (after a supported first
/// one): a warning naming the file and the link type, once; its packets are counted as not
/// processed; the rest of the file is read.
#[test]
fn pcapng_interface_of_an_unsupported_link_type() {
    let frames = basic_frames();
    let mut f = shb();
    f.extend(idb(1));
    f.extend(idb(147));
    for (i, fr) in frames.iter().enumerate() {
        f.extend(epb(0, 1_700_000_000_000_000 + 2 * i as u64, fr));
        f.extend(epb(1, 1_700_000_000_000_001 + 2 * i as u64, &[1, 2, 3, 4]));
    }
    let (o, input, flows) = run_bytes("user0", "user0.pcapng", &f);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert_eq!(flows, expected("basic"));
    let want = format!(
        "tcpflow: warning: {}: unsupported link type 147; supported: ",
        input.display()
    );
    assert_eq!(e.matches(&want).count(), 1, "{e}");
    let report = std::fs::read_to_string(input.parent().unwrap().join("out/report.xml")).unwrap();
    let n = frames.len();
    assert!(
        report.contains(&format!("packets_read='{}'", 2 * n)),
        "{report}"
    );
    assert!(report.contains("unsupported_link='13'"), "{report}");
}

/// A filter expression on a pcapng mixing link types: compiled for each (Ethernet and raw
/// IP here), so that `tcp port 80` keeps the packets of both; `len` and `greater` see the
/// length on the wire of records cut by the snap length.
#[test]
fn filters_on_a_pcapng_mixing_link_types() {
    let d = tmp("filter-mixed");
    let input = d.join("mixed.pcapng");
    std::fs::write(&input, mixed_pcapng()).unwrap();
    let run = |tag: &str, expr: &[&str]| -> (Output, Flows) {
        let out = d.join(tag);
        let o = bin()
            .arg("-r")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--memory", "4M"])
            .args(expr)
            .stdin(Stdio::null())
            .output()
            .expect("run tcpflow");
        assert_no_panic(&o);
        (o, flows(&out))
    };
    let (o, f) = run("port80", &["tcp", "port", "80"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f, expected("basic"));
    let (o, f) = run("port81", &["tcp port 81"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(f.is_empty(), "{f:?}");
    // An expression that cannot apply to raw IP: the Ethernet packets are filtered, the raw
    // IP ones left out, said once, and the run fails.
    let (o, f) = run("ether", &["ether host 1:2:3:4:5:6"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(f.is_empty(), "{f:?}");
    let want = format!(
        "tcpflow: {}: bad filter expression 'ether host 1:2:3:4:5:6' for link type 101: ",
        input.display()
    );
    assert_eq!(e.matches(&want).count(), 1, "{e}");
    // Only the packets over 1,000 bytes on the wire: the server's two full segments (one
    // of them the raw IP packet, 1,488 bytes); the request (137 bytes) and the server's
    // last 171 bytes are left out.
    let (o, f) = run("greater", &["greater 1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let client = "010.000.000.001.40000-010.000.000.002.00080";
    let server = "010.000.000.002.00080-010.000.000.001.40000";
    assert!(!f.contains_key(client), "{f:?}");
    assert_eq!(f[server][..], expected("basic")[server][..2 * 1448]);

    // The same capture cut at 64 bytes a record (an honest snap length: origlen kept):
    // `greater` still sees the length on the wire.
    let b = basic();
    let layout = Layout::pcap(&b);
    let mut cut = b[..24].to_vec();
    cut[16..20].copy_from_slice(&64u32.to_le_bytes());
    let mut start = 24;
    for &end in &layout.record_ends {
        let mut h = b[start..start + 16].to_vec();
        let caplen = (end - start - 16).min(64);
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        cut.extend_from_slice(&h);
        cut.extend_from_slice(&b[start + 16..start + 16 + caplen]);
        start = end;
    }
    let small = d.join("snap64.pcap");
    std::fs::write(&small, &cut).unwrap();
    let count = |expr: &str| -> String {
        let out = d.join(format!("snap-{}", expr.replace(' ', "-")));
        let o = bin()
            .args(["-r", small.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .args(["--memory", "4M", expr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let x = std::fs::read_to_string(out.join("report.xml")).unwrap();
        let i = x.find("packets_read='").unwrap() + 14;
        x[i..i + x[i..].find('\'').unwrap()].to_string()
    };
    // Packets of more than 1,000 bytes on the wire: 3 (each 1,502 bytes, captured 64).
    let big = layout
        .record_ends
        .iter()
        .scan(24, |s, &e| {
            let n = e - *s - 16;
            *s = e;
            Some(n)
        })
        .filter(|&n| n > 1000)
        .count();
    assert_eq!(count("greater 1000"), big.to_string());
    assert_eq!(
        count("less 1000"),
        (layout.record_ends.len() - big).to_string()
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Peak resident set of `cmd` (KiB), its exit status and stderr.
// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn peak_rss_kib(cmd: &mut std::process::Command) -> (Option<i32>, String, i64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut err).unwrap();
    let mut status = 0;
    // SAFETY: reaps our own child (not waited for otherwise) into locals.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, err, ru.ru_maxrss)
}

/// An xz capture whose block header asks for a 4 GiB dictionary (the largest the format
/// can say), over 256 MiB of records: without a limit the decoder's dictionary fills.
fn xz_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    let mut rec = Vec::new();
    rec.extend_from_slice(&[0; 8]);
    rec.extend_from_slice(&65535u32.to_le_bytes());
    rec.extend_from_slice(&65535u32.to_le_bytes());
    rec.resize(16 + 65535, 0);
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(&pcap).unwrap();
    for _ in 0..(256 << 20) / rec.len() {
        e.write_all(&rec).unwrap();
    }
    let mut xz = e.finish().unwrap();
    // Block header after the 12-byte stream header: size, flags, [sizes], filter id
    // 0x21 (LZMA2), properties size 1, the dictionary byte, padding, CRC32.
    let size = (usize::from(xz[12]) + 1) * 4;
    let flags = xz[13];
    let mut p = 14;
    for bit in [0x40, 0x80] {
        if flags & bit != 0 {
            while xz[p] & 0x80 != 0 {
                p += 1;
            }
            p += 1;
        }
    }
    assert_eq!((xz[p], xz[p + 1]), (0x21, 1), "an LZMA2 filter");
    xz[p + 2] = 40; // 4 GiB - 1
    let mut crc = flate2::Crc::new();
    crc.update(&xz[12..12 + size - 4]);
    xz[12 + size - 4..12 + size].copy_from_slice(&crc.sum().to_le_bytes());
    xz
}

#[test]
fn an_xz_dictionary_bomb_stays_within_the_memory_budget() {
    let d = tmp("xzbomb");
    let bomb = d.join("bomb.pcap.xz");
    std::fs::write(&bomb, xz_bomb()).unwrap();
    let (code, err, rss) = peak_rss_kib(
        bin()
            .arg("-r")
            .arg(&bomb)
            .arg("-o")
            .arg(d.join("out"))
            .args(["--memory", "16M"]),
    );
    assert_ne!(code, Some(101), "panic: {err}");
    // The budget and a few MiB for the program, libpcap and libc.
    assert!(
        rss < 32 * 1024,
        "peak RSS {rss} KiB with --memory 16M; {err}"
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bomb.pcap.xz") && err.contains("xz data needs more than 16 MiB"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
