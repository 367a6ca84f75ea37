//! `--spool`, `--spool-export`, `--spool-summary` and `--memory`, through the binary: the
//! export gives a direct run's files, a SIGKILL leaves an exportable spool, the ring keeps
//! the newest flows and counts the rest, storage that is too small or fills up is a clear
//! error.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` but the reports, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                if !["report.xml", "report.json", "report.html"].contains(&rel.to_str().unwrap()) {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut m = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut m);
    }
    m
}

/// A string field of a JSON report line (the report's own simple escaping: no `"` in ours).
fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    if let Some(r) = rest.strip_prefix('"') {
        Some(r[..r.find('"')?].to_string())
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }
}

/// The per-direction lines of a JSON report, with the output folder taken out of the names
/// and the fields a spool cannot reproduce removed: `conflict_bytes` (telling a differing
/// retransmission of delivered bytes needs those bytes, which the spool keeps on storage).
fn flow_lines(report: &Path, outdir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(report).unwrap();
    let prefix = format!("{}/", outdir.display());
    text.lines()
        .filter(|l| l.starts_with("{\"type\":\"flow\""))
        .map(|l| {
            let l = l.replace(&prefix, "");
            match l.find(",\"conflict_bytes\":") {
                Some(i) => {
                    let end = l[i + 1..].find(',').map_or(l.len(), |j| i + 1 + j);
                    format!("{}{}", &l[..i], &l[end..])
                }
                None => l,
            }
        })
        .collect()
}

fn ok(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(o));
}

/// `--spool-summary` as key/value pairs.
fn summary(spool: &Path) -> BTreeMap<String, String> {
    let o = run(&["--spool-summary", s(spool)]);
    ok(&o, "summary");
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The leading number of a summary value ("12 (...)" -> 12).
fn num(m: &BTreeMap<String, String>, key: &str) -> u64 {
    let v = m.get(key).unwrap_or_else(|| panic!("no {key} in {m:?}"));
    v.split_whitespace().next().unwrap().parse().unwrap()
}

/// Deterministic bytes.
/// `tcpflow -q -r CAP --spool SPOOL --spool-size SIZE`.
fn spool_into(cap: &Path, spool: &Path, size: &str) -> Output {
    run(&[
        "-q",
        "-r",
        s(cap),
        "--spool",
        s(spool),
        "--spool-size",
        size,
    ])
}

fn bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// `n` connections, one started every `gap_us`, each sending a request and a response in
/// 1000-byte segments 20 ms apart and closing with FINs: many are open at any time.
fn busy_capture(n: u32, gap_us: u64, max_req: usize, max_resp: usize) -> Pcap {
    struct Pkt {
        t: u64,
        s: End,
        d: End,
        seq: u32,
        ack: u32,
        flags: u8,
        data: Vec<u8>,
    }
    let mut pkts = Vec::new();
    let sv = server();
    for i in 0..n {
        let c = client(i);
        let t0 = 1_700_000_000_000_000 + u64::from(i) * gap_us;
        let req = bytes(i, 100 + (i as usize * 7919) % max_req);
        let resp = bytes(i + 1_000_000, 200 + (i as usize * 104_729) % max_resp);
        let (ic, is) = (1000 + i * 77, 900_000 + i * 13);
        let mut t = t0;
        let mut push = |t: u64, s: End, d: End, seq: u32, ack: u32, flags: u8, data: &[u8]| {
            pkts.push(Pkt {
                t,
                s,
                d,
                seq,
                ack,
                flags,
                data: data.to_vec(),
            })
        };
        push(t, c, sv, ic, 0, SYN, b"");
        push(t + 1000, sv, c, is, ic + 1, SYN | ACK, b"");
        push(t + 2000, c, sv, ic + 1, is + 1, ACK, b"");
        t += 2000;
        let (mut sc, mut ss) = (ic + 1, is + 1);
        for ch in req.chunks(1000) {
            t += 20_000;
            push(t, c, sv, sc, ss, ACK | PSH, ch);
            sc += ch.len() as u32;
        }
        for ch in resp.chunks(1000) {
            t += 20_000;
            push(t, sv, c, ss, sc, ACK | PSH, ch);
            ss += ch.len() as u32;
        }
        push(t + 20_000, c, sv, sc, ss, FIN | ACK, b"");
        push(t + 21_000, sv, c, ss, sc + 1, FIN | ACK, b"");
        push(t + 22_000, c, sv, sc + 1, ss + 1, ACK, b"");
    }
    pkts.sort_by_key(|p| p.t);
    let mut p = Pcap::new();
    for k in &pkts {
        p.tcp(k.t, k.s, k.d, k.seq, k.ack, k.flags, &k.data);
    }
    p
}

/// `DIR/c.pcap`: one short conversation (a client, the server, one byte each way).
fn one_conversation(d: &Path) -> PathBuf {
    let cap = d.join("c.pcap");
    let mut p = Pcap::new();
    p.conversation(1_000_000, client(1), server(), 1, 2, b"x", b"y", 100);
    p.write(&cap);
    cap
}

/// Every testdata case: spooled then exported, the files are a direct run's, names
/// included, and so are the report's per-direction records.
#[test]
fn export_is_byte_identical_to_a_direct_run_on_every_testdata_case() {
    let Some(cases) = tcpflow_tests::testdata_cases() else {
        return;
    };
    let mut ran = tcpflow_tests::Cases::new("testdata cases spooled and exported");
    let work = tmp("spool-testdata");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let input = ["input.pcap", "input.pcapng"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
            .unwrap();
        ran.ran();
        let out = work.join(&name);
        let (direct, exported) = (out.join("direct"), out.join("exported"));
        let spool = out.join("spool");
        let o = run(&[
            "-q",
            "-r",
            s(&input),
            "-o",
            s(&direct),
            "--report-json",
            s(&out.join("direct.json")),
        ]);
        ok(&o, &name);
        let o = run(&[
            "-q",
            "-r",
            s(&input),
            "--spool",
            s(&spool),
            "--spool-size",
            "1M",
        ]);
        ok(&o, &name);
        let o = export_with_report(&spool, &exported, &out.join("exported.json"));
        ok(&o, &name);
        let (want, got) = (tree(&direct), tree(&exported));
        if want.is_empty() || want != got {
            failures.push(format!(
                "{name}: direct {:?}, exported {:?}",
                want.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>(),
                got.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
            ));
            continue;
        }
        let (a, b) = (
            flow_lines(&out.join("direct.json"), &direct),
            flow_lines(&out.join("exported.json"), &exported),
        );
        if a != b {
            failures.push(format!("{name}: report records differ:\n{a:#?}\n{b:#?}"));
        }
        // The summary agrees with the direct run.
        let sum = summary(&spool);
        let total: u64 = field(
            std::fs::read_to_string(out.join("direct.json"))
                .unwrap()
                .lines()
                .last()
                .unwrap(),
            "total_flows",
        )
        .unwrap()
        .parse()
        .unwrap();
        if num(&sum, "flows") != total || num(&sum, "flows closed") != total {
            failures.push(format!("{name}: summary {sum:?}, direct {total} flows"));
        }
        if sum["torn tail"] != "none" || num(&sum, "dropped flows") != 0 {
            failures.push(format!("{name}: summary {sum:?}"));
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
    ran.done(tcpflow_tests::testdata_count());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `-b` and `-R` apply when spooling as when writing files.
#[test]
fn max_bytes_and_finishing_files_when_spooling() {
    let d = tmp("spool-b-r");
    let (a, b) = (d.join("a.pcap"), d.join("b.pcap"));
    let (c, sv) = (client(1), server());
    let mut p = Pcap::new();
    p.tcp(10, c, sv, 99, 0, SYN, b"");
    p.tcp(20, sv, c, 499, 100, SYN | ACK, b"");
    p.tcp(30, c, sv, 100, 500, ACK | PSH, b"0123456789");
    p.write(&a);
    let mut q = Pcap::new();
    q.tcp(50, c, sv, 110, 500, ACK | PSH, b"abcdef");
    q.tcp(60, c, sv, 116, 500, FIN | ACK, b"");
    q.conversation(70, client(2), sv, 1, 2, b"late", b"ignored", 100);
    q.write(&b);
    let (direct, exported, spool) = (d.join("direct"), d.join("exported"), d.join("s"));
    let flags = ["-q", "-b", "12", "-r", s(&a), "-R", s(&b)];
    let mut args = flags.to_vec();
    args.extend(["-o", s(&direct)]);
    ok(&run(&args), "direct");
    let mut args = flags.to_vec();
    args.extend(["--spool", s(&spool), "--spool-size", "64K"]);
    ok(&run(&args), "spool");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&exported)]),
        "export",
    );
    let want = tree(&direct);
    assert_eq!(want.len(), 1, "{:?}", want.keys());
    assert_eq!(want, tree(&exported));
    assert_eq!(
        num(&summary(&spool), "flows"),
        1,
        "the -R flow is not spooled"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// SIGKILL in the middle of a capture read slowly from a pipe: the spool exports, every flow
/// whose close record made it is the direct run's file, and no exported byte differs from
/// the direct run's byte at the same offset.
#[test]
fn sigkill_mid_capture_leaves_an_exportable_spool() {
    let d = tmp("spool-kill");
    let cap = d.join("c.pcap");
    let pcap = busy_capture(3000, 20_000, 3000, 8000);
    pcap.write(&cap);
    let direct = d.join("direct");
    ok(
        &run(&[
            "-q",
            "-r",
            s(&cap),
            "-o",
            s(&direct),
            "--report-json",
            s(&d.join("direct.json")),
        ]),
        "direct",
    );
    let want = tree(&direct);
    assert_eq!(want.len(), 6000);

    let spool = d.join("spool");
    let mut child = bin()
        .args(["-q", "-r", "-", "--spool", s(&spool), "--spool-size", "64M"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunks: Vec<&[u8]> = pcap.bytes().chunks(64 * 1024).collect();
    let half = chunks.len() / 2;
    for ch in &chunks[..half] {
        if stdin.write_all(ch).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let it work through what it has, then kill it with the pipe still open: mid-capture.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), None, "killed by a signal: {}", stderr(&o));

    let sum = summary(&spool);
    let exported = d.join("exported");
    let o = export_with_report(&spool, &exported, &d.join("exported.json"));
    ok(&o, "export after SIGKILL");
    let got = tree(&exported);
    assert!(
        !got.is_empty() && got.len() < want.len(),
        "killed mid-capture: {} of {} files",
        got.len(),
        want.len()
    );
    // Which directions had their flow's close record: their report line says why it closed.
    let mut closed = 0;
    let mut unclosed = 0;
    for line in flow_lines(&d.join("exported.json"), &exported) {
        let Some(name) = field(&line, "filename") else {
            continue;
        };
        let name = PathBuf::from(name);
        let file = &got[&name];
        let orig = want
            .get(&name)
            .unwrap_or_else(|| panic!("{} not in the direct run", name.display()));
        match field(&line, "close").as_deref() {
            Some("fin") => {
                closed += 1;
                assert!(file == orig, "{}: closed flow differs", name.display());
            }
            Some("end") => {
                unclosed += 1;
                assert!(file.len() <= orig.len(), "{}", name.display());
                assert!(
                    file[..] == orig[..file.len()],
                    "{}: a byte differs",
                    name.display()
                );
            }
            other => panic!("{}: close {other:?}", name.display()),
        }
    }
    eprintln!(
        "killed after {half} of {} chunks: {} of {} files exported, {closed} of closed flows, {unclosed} of unclosed ones; summary {sum:?}",
        chunks.len(),
        got.len(),
        want.len()
    );
    assert!(closed > 100, "{closed} closed directions");
    assert_eq!(closed + unclosed, got.len());
    assert_eq!(num(&sum, "flows unclosed") > 0, unclosed > 0, "{sum:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A spool much smaller than the capture: the newest flows are whole, the oldest dropped,
/// and every flow of the direct run is either dropped (counted) or exported.
#[test]
fn ring_keeps_the_newest_flows_and_counts_the_dropped() {
    let d = tmp("spool-ring");
    let cap = d.join("c.pcap");
    let n = 600u32;
    let mut p = Pcap::new();
    for i in 0..n {
        p.conversation(
            1_700_000_000_000_000 + u64::from(i) * 1000,
            client(i),
            server(),
            1000 + i,
            5000 + i,
            &bytes(i, 1500),
            &bytes(i + 7777, 4000),
            1000,
        );
    }
    p.write(&cap);
    let direct = d.join("direct");
    ok(&run(&["-q", "-r", s(&cap), "-o", s(&direct)]), "direct");
    let want = tree(&direct);
    assert_eq!(want.len(), 2 * n as usize);

    let spool = d.join("spool");
    let o = run(&["-r", s(&cap), "--spool", s(&spool), "--spool-size", "256K"]);
    ok(&o, "spool");
    assert!(
        stderr(&o).contains("dropped by the ring: "),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 256 << 10);
    let sum = summary(&spool);
    let (flows, truncated, dropped) = (
        num(&sum, "flows"),
        num(&sum, "flows truncated"),
        num(&sum, "dropped flows"),
    );
    assert!(dropped > n as u64 / 2, "most flows do not fit: {sum:?}");
    assert!(flows > 10, "{sum:?}");
    assert_eq!(
        dropped + flows - truncated,
        u64::from(n),
        "dropped + exported whole = the direct run's flows: {sum:?}"
    );
    assert!(num(&sum, "dropped bytes") > 0 && num(&sum, "dropped segments") > 0);
    assert_eq!(sum["torn tail"], "none");
    // The writer's figures say the same.
    assert!(
        stderr(&o).contains(&format!("dropped by the ring: {dropped} flows")),
        "{}",
        stderr(&o)
    );

    let exported = d.join("exported");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&exported)]),
        "export",
    );
    let got = tree(&exported);
    // The newest flows are there, whole; the oldest are gone.
    let newest: Vec<u32> = (n - (flows - truncated) as u32..n).collect();
    for &i in &newest {
        let c = client(i);
        let a = format!(
            "010.{:03}.{:03}.{:03}.{:05}",
            c.ip[1], c.ip[2], c.ip[3], c.port
        );
        for name in [
            format!("{a}-010.009.009.009.00080"),
            format!("010.009.009.009.00080-{a}"),
        ] {
            let name = PathBuf::from(name);
            assert!(want.contains_key(&name), "{}", name.display());
            assert!(
                got.get(&name) == want.get(&name),
                "newest flow {i}: {}",
                name.display()
            );
        }
    }
    assert!(got.len() >= 2 * newest.len());
    assert!(got.len() <= 2 * flows as usize);
    let first = want.keys().next().unwrap();
    assert!(!got.contains_key(first), "the oldest flow was dropped");
    for (name, data) in &got {
        let orig = &want[name];
        assert_eq!(data.len(), orig.len(), "{}", name.display());
        // A flow whose start was dropped has a hole there; every byte it has is right.
        let start = data.iter().position(|&b| b != 0).unwrap_or(data.len());
        assert_eq!(data[start..], orig[start..], "{}", name.display());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A second run continues the spool: the export has both runs' flows.
#[test]
fn a_second_run_continues_the_spool() {
    let d = tmp("spool-continue");
    let (a, b) = (d.join("a.pcap"), d.join("b.pcap"));
    let mut p = Pcap::new();
    p.conversation(
        1_000_000,
        client(1),
        server(),
        1,
        2,
        b"first run",
        b"one",
        100,
    );
    p.write(&a);
    let mut q = Pcap::new();
    q.conversation(
        2_000_000,
        client(2),
        server(),
        1,
        2,
        b"second run",
        b"two",
        100,
    );
    q.write(&b);
    let spool = d.join("s");
    for c in [&a, &b] {
        ok(&spool_into(c, &spool, "1M"), "spool");
    }
    let sum = summary(&spool);
    assert_eq!(num(&sum, "flows"), 2);
    assert_eq!(num(&sum, "writer runs"), 2);
    let out = d.join("out");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&out)]),
        "export",
    );
    assert_eq!(tree(&out).len(), 4);
    // Growing keeps it; shrinking is allowed only while nothing is cut.
    let spool_run = |size: &str| spool_into(&a, &spool, size);
    ok(&spool_run("2M"), "grow");
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 2 << 20);
    assert_eq!(num(&summary(&spool), "flows"), 3);
    ok(&spool_run("1M"), "shrink, nothing cut");
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 1 << 20);
    assert_eq!(num(&summary(&spool), "flows"), 4);
    // Each run starts a new segment (of 64 KiB): 16 more runs reach past the first 1 MiB.
    for _ in 0..16 {
        ok(&spool_run("2M"), "grow");
    }
    let o = spool_run("1M");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("would cut it"), "{}", stderr(&o));
    assert_eq!(num(&summary(&spool), "flows"), 20);
    std::fs::remove_dir_all(&d).unwrap();
}

/// The spool's geometry comes from its first segment header; with that header damaged, the
/// others still give it, and the run continues the spool rather than refusing the file.
#[test]
fn a_damaged_first_header_still_continues_the_spool() {
    let d = tmp("spool-first-header");
    let cap = d.join("a.pcap");
    let mut p = Pcap::new();
    p.conversation(1_000_000, client(1), server(), 1, 2, b"ask", b"answer", 100);
    p.write(&cap);
    let spool = d.join("s");
    let spool_run = || spool_into(&cap, &spool, "1M");
    // Each run starts a segment (of 64 KiB).
    for _ in 0..3 {
        ok(&spool_run(), "spool");
    }
    assert_eq!(num(&summary(&spool), "writer runs"), 3);
    let mut b = std::fs::read(&spool).unwrap();
    b[..64].fill(0);
    std::fs::write(&spool, &b).unwrap();
    ok(&spool_run(), "continued without its first header");
    let (sum, _) = damaged_summary(&spool);
    // Runs are counted from segment headers: the first one's is gone. Its records are
    // still read.
    assert_eq!(num(&sum, "writer runs"), 3, "{sum:?}");
    assert_eq!(sum["segments"], "3 (sequence 2..4)", "{sum:?}");
    assert_eq!(num(&sum, "flows"), 4, "{sum:?}");
    // The segment size was kept: the fourth run's segment is the fourth 64 KiB.
    let b = std::fs::read(&spool).unwrap();
    assert_eq!(&b[3 << 16..(3 << 16) + 4], b"TFSP");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn refusals_at_start() {
    let d = tmp("spool-refuse");
    let cap = one_conversation(&d);
    // Not a spool: never overwritten.
    let other = d.join("notes.txt");
    std::fs::write(&other, "precious").unwrap();
    let o = run(&["-q", "-r", s(&cap), "--spool", s(&other)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not hold a spool"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&other).unwrap(), b"precious");
    let o = run(&["--spool-summary", s(&other)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a spool"), "{}", stderr(&o));
    // Locked by another writer.
    let spool = d.join("s");
    ok(&spool_into(&cap, &spool, "64K"), "spool");
    let f = std::fs::File::open(&spool).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) },
        0
    );
    let o = run(&[
        "-q",
        "-r",
        s(&cap),
        "--spool",
        s(&spool),
        "--spool-size",
        "64K",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("in use by another tcpflow"),
        "{}",
        stderr(&o)
    );
    drop(f);
    // Usage errors.
    for args in [
        vec!["--spool-size", "1M", "-r", s(&cap)],
        vec!["--spool", s(&spool), "-c", "-r", s(&cap)],
        vec!["--spool", s(&spool), "--overlap", "last", "-r", s(&cap)],
        vec!["--spool-export", s(&spool), "-r", s(&cap)],
        vec!["--spool-export", s(&spool), "--spool-summary", s(&spool)],
        vec!["--spool", s(&spool), "--spool-size", "12Q", "-r", s(&cap)],
        vec!["--spool", s(&spool), "--spool-size", "16K", "-r", s(&cap)],
    ] {
        let o = run(&args);
        assert!(
            matches!(o.status.code(), Some(1) | Some(2)),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).starts_with("tcpflow: ") || stderr(&o).starts_with("error: "),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A spool that does not fit on a small tmpfs: refused at start, and nothing is left there.
#[test]
fn spool_larger_than_a_small_tmpfs_fails_at_start() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        tcpflow_tests::cannot_run("not root: cannot mount a tmpfs");
        return;
    }
    let d = tmp("spool-tmpfs");
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", s(&mnt)])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    if !st.status.success() {
        tcpflow_tests::cannot_run(format_args!(
            "cannot mount a tmpfs here ({})",
            String::from_utf8_lossy(&st.stderr).trim()
        ));
        return;
    }
    let guard = Mount(mnt.clone());
    let cap = one_conversation(&d);
    let spool = mnt.join("s");
    let o = run(&[
        "-q",
        "-r",
        s(&cap),
        "--spool",
        s(&spool),
        "--spool-size",
        "4M",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("tcpflow: not enough free space for spool"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(!spool.exists(), "the file created for the spool is removed");
    // One that fits works.
    ok(
        &run(&[
            "-q",
            "-r",
            s(&cap),
            "--spool",
            s(&spool),
            "--spool-size",
            "512K",
        ]),
        "fits",
    );
    drop(guard);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--spool-size` beyond the free space of the file system: refused at start, before
/// anything is allocated.
#[test]
fn spool_larger_than_the_free_space_fails_at_start() {
    let d = tmp("spool-nospace");
    let cap = one_conversation(&d);
    // SAFETY: statvfs fills the zeroed struct.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        let path = std::ffi::CString::new(s(&d)).unwrap();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0);
        st.f_bavail as u64 * st.f_frsize as u64
    };
    let size = format!("{}G", (free >> 30) + 1024);
    let spool = d.join("s");
    let o = run(&[
        "-q",
        "-r",
        s(&cap),
        "--spool",
        s(&spool),
        "--spool-size",
        &size,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("tcpflow: not enough free space for spool"),
        "{}",
        stderr(&o)
    );
    assert!(!spool.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

/// Runs the binary under a file size limit, SIGXFSZ ignored (as a shell's `ulimit -f`).
fn run_with_fsize_limit(args: &[&str], limit: u64) -> Output {
    let mut cmd = bin();
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// A file size limit reached in the middle of a run: a clear error, a nonzero exit, and the
/// spool still exports what was written. Below the spool's size from the start: refused at
/// start.
#[test]
fn file_size_limit_mid_run_is_an_error_and_the_spool_still_exports() {
    let d = tmp("spool-fsize");
    let cap = d.join("c.pcap");
    let pcap = busy_capture(1500, 5_000, 2000, 6000);
    pcap.write(&cap);
    let direct = d.join("direct");
    ok(&run(&["-q", "-r", s(&cap), "-o", s(&direct)]), "direct");
    let want = tree(&direct);

    // A new spool larger than the limit cannot even be allocated.
    let fresh = d.join("fresh");
    let o = run_with_fsize_limit(
        &[
            "-q",
            "-r",
            s(&cap),
            "--spool",
            s(&fresh),
            "--spool-size",
            "8M",
        ],
        2 << 20,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot allocate"), "{}", stderr(&o));
    assert!(stderr(&o).contains("file size limit"), "{}", stderr(&o));

    // A spool allocated earlier (a first run without the limit), then a run under a limit
    // of 2 MiB: the writes past it fail in the middle of the run.
    let spool = d.join("s");
    let small = d.join("small.pcap");
    let mut p = Pcap::new();
    p.conversation(
        1_000_000,
        client(60000),
        server(),
        1,
        2,
        b"before",
        b"limit",
        100,
    );
    p.write(&small);
    ok(
        &run(&[
            "-q",
            "-r",
            s(&small),
            "--spool",
            s(&spool),
            "--spool-size",
            "8M",
        ]),
        "first run",
    );
    let o = run_with_fsize_limit(
        &["-r", s(&cap), "--spool", s(&spool), "--spool-size", "8M"],
        2 << 20,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "tcpflow: spool {}: writing at offset ",
            spool.display()
        )),
        "{e}"
    );
    assert!(
        e.contains("File too large (the file size limit, ulimit -f, was reached)"),
        "{e}"
    );
    assert!(std::fs::metadata(&spool).unwrap().len() == 8 << 20);

    let exported = d.join("exported");
    let o = export_with_report(&spool, &exported, &d.join("e.json"));
    ok(&o, "export");
    let got = tree(&exported);
    assert!(got.len() > 20, "{} files exported", got.len());
    assert!(got.len() < want.len() + 2);
    let mut closed = 0;
    for line in flow_lines(&d.join("e.json"), &exported) {
        let Some(name) = field(&line, "filename") else {
            continue;
        };
        let name = PathBuf::from(name);
        if name.to_string_lossy().contains("010.000.234.096.") {
            continue; // the first run's flow: client(60000)
        }
        let (file, orig) = (&got[&name], &want[&name]);
        if field(&line, "close").as_deref() == Some("fin") {
            closed += 1;
            assert!(file == orig, "{}", name.display());
        } else {
            assert!(file[..] == orig[..file.len()], "{}", name.display());
        }
    }
    eprintln!(
        "{} files exported after the limit, {closed} of closed flows: {e}",
        got.len()
    );
    assert!(closed > 10, "{closed}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--memory` sizes the flow table, the pool, the fragment slots and the buffers; explicit
/// flags override their share. Visible with -v and in the report.
#[test]
fn memory_budget_sets_the_capacities() {
    use tcpflow::budget::{host_bytes_per_flow, Sizing};
    let d = tmp("spool-memory");
    let cap = one_conversation(&d);
    let report = d.join("r.xml");
    let spool = d.join("s");
    let o = run(&[
        "-v",
        "-r",
        s(&cap),
        "--memory",
        "16M",
        "--spool",
        s(&spool),
        "--spool-size",
        "64K",
        "-X",
        s(&report),
    ]);
    ok(&o, "memory");
    let want = Sizing::from_budget(16 << 20, host_bytes_per_flow(true, false));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("tcpflow: {} flows (", want.max_flows)),
        "{e}"
    );
    assert!(
        e.contains(&format!("{} pool blocks", want.pool_blocks)),
        "{e}"
    );
    assert!(
        e.contains(&format!("{} fragment slots", want.frag_slots)),
        "{e}"
    );
    assert!(e.contains("(--memory 16 MiB)"), "{e}");
    let x = std::fs::read_to_string(&report).unwrap();
    assert!(
        x.contains(&format!(
            "<capacities memory_budget='16777216' memory_estimate='{}' max_flows='{}' pool_blocks='{}'",
            want.memory_bytes(true, false),
            want.max_flows,
            want.pool_blocks
        )),
        "{x}"
    );
    assert!(want.memory_bytes(true, false) <= 16 << 20);
    assert!(
        x.contains("<spool size='65536' segment_size='16384' segments='4' records='"),
        "{x}"
    );

    // Explicit flags win over their share; files mode keeps more state per flow.
    let out = d.join("out");
    let o = run(&[
        "-v",
        "-r",
        s(&cap),
        "-o",
        s(&out),
        "--memory",
        "16M",
        "--max-flows",
        "1000",
        "--max-ooo-bytes",
        "1M",
    ]);
    ok(&o, "explicit");
    let e = stderr(&o);
    assert!(e.contains("tcpflow: 1000 flows ("), "{e}");
    assert!(e.contains("1024 pool blocks"), "{e}");
    let files = Sizing::from_budget(16 << 20, host_bytes_per_flow(false, false));
    assert!(files.max_flows < want.max_flows);
    let o = run(&["-v", "-r", s(&cap), "-o", s(&out), "--memory", "16M"]);
    assert!(
        stderr(&o).contains(&format!("tcpflow: {} flows (", files.max_flows)),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Live capture into a spool, stopped with SIGTERM: the flows are closed, spooled and synced,
/// and the export has them.
#[test]
fn live_capture_into_a_spool_until_sigterm() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let d = tmp("spool-live");
    let spool = d.join("s");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let child = bin()
        .args([
            "-i",
            "lo",
            "--spool",
            s(&spool),
            "--spool-size",
            "1M",
            "--spool-sync",
            "1",
            &filter,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut sv, _) = listener.accept().unwrap();
    c.write_all(b"to the spool").unwrap();
    let mut buf = [0u8; 12];
    sv.read_exact(&mut buf).unwrap();
    sv.write_all(b"and back").unwrap();
    let mut buf = [0u8; 8];
    c.read_exact(&mut buf).unwrap();
    // Still open: synced on wall time while the capture runs.
    std::thread::sleep(Duration::from_millis(2500));
    let during = if spool.exists() {
        Some(summary(&spool))
    } else {
        None
    };
    drop(c);
    drop(sv);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    if e.contains("cannot capture on lo") {
        std::fs::remove_dir_all(&d).unwrap();
        tcpflow_tests::cannot_run(format_args!("no capture rights here ({e})"));
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("connections spooled"), "{e}");
    let during = during.expect("the spool exists while capturing");
    assert_eq!(num(&during, "flows"), 1, "{during:?}");
    assert_eq!(
        num(&during, "data bytes"),
        20,
        "synced before the end: {during:?}"
    );
    let out = d.join("out");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&out)]),
        "export",
    );
    let mut files: Vec<Vec<u8>> = tree(&out).into_values().collect();
    files.sort();
    assert_eq!(files, vec![b"and back".to_vec(), b"to the spool".to_vec()]);
    let sum = summary(&spool);
    assert_eq!(num(&sum, "flows closed"), 1, "{sum:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------------------------------
// Crafted and damaged spools: every byte may be crafted (the CRCs are recomputed here).

/// CRC-32C of the parts in order, as the spool computes it.
fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut c = !0;
    for p in parts {
        c = tcpflow_core::spool::crc32c_update(c, p);
    }
    !c
}

/// A spool image with its geometry (64 KiB segments: a 1 MiB spool).
struct Img {
    b: Vec<u8>,
    seg: usize,
}

impl Img {
    fn seq(&self, base: usize) -> u64 {
        u64::from_le_bytes(self.b[base + 8..base + 16].try_into().unwrap())
    }
    fn valid_header(&self, base: usize) -> bool {
        &self.b[base..base + 4] == b"TFSP"
            && crc32c(&[&self.b[base..base + 60]]).to_le_bytes() == self.b[base + 60..base + 64]
    }
    /// Rewrites a segment header's CRC after an edit.
    fn reheader(&mut self, base: usize) {
        let c = crc32c(&[&self.b[base..base + 60]]);
        self.b[base + 60..base + 64].copy_from_slice(&c.to_le_bytes());
    }
    /// Rewrites a record's CRC (of the segment at `base`) after an edit.
    fn recrc(&mut self, base: usize, at: usize) {
        let seq = self.seq(base).to_le_bytes();
        let len = usize::from(u16::from_le_bytes([self.b[at + 2], self.b[at + 3]]));
        let head: [u8; 4] = self.b[at..at + 4].try_into().unwrap();
        let c = if head[0] == 5 {
            crc32c(&[&seq, &head])
        } else {
            crc32c(&[&seq, &head, &self.b[at + 8..at + len]])
        };
        self.b[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
    }
    /// The records of the segment at `base`: (offset, type, length), Pad records included.
    fn records(&self, base: usize) -> Vec<(usize, u8, usize)> {
        let mut out = Vec::new();
        if !self.valid_header(base) {
            return out;
        }
        let seq = self.seq(base).to_le_bytes();
        let mut at = base + 64;
        while at + 8 <= base + self.seg {
            let h = &self.b[at..at + 8];
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            if !(1..=5).contains(&h[0]) || len < 8 || at + len > base + self.seg {
                break;
            }
            let want = if h[0] == 5 {
                crc32c(&[&seq, &h[..4]])
            } else {
                crc32c(&[&seq, &h[..4], &self.b[at + 8..at + len]])
            };
            if want.to_le_bytes() != h[4..8] {
                break;
            }
            out.push((at, h[0], len));
            at += len;
        }
        out
    }
    /// Segment bases in sequence order.
    fn segments(&self) -> Vec<usize> {
        let mut v: Vec<(u64, usize)> = (0..self.b.len() / self.seg)
            .map(|i| i * self.seg)
            .filter(|&b| self.valid_header(b))
            .map(|b| (self.seq(b), b))
            .collect();
        v.sort();
        v.into_iter().map(|(_, b)| b).collect()
    }
}

/// 40 connections (about 1 MB of stream bytes) spooled into a 1 MiB spool that keeps them
/// all: the spool, its image and the export of the undamaged spool.
fn damage_fixture(tag: &str) -> (PathBuf, PathBuf, Img, BTreeMap<PathBuf, Vec<u8>>) {
    let d = tmp(tag);
    let cap = d.join("c.pcap");
    busy_capture(40, 20_000, 2000, 40_000).write(&cap);
    let spool = d.join("spool");
    ok(
        &run(&[
            "-q",
            "-r",
            s(&cap),
            "--spool",
            s(&spool),
            "--spool-size",
            "2M",
        ]),
        "spool",
    );
    let out = d.join("clean");
    ok(
        &run(&["-q", "--spool-export", s(&spool), "-o", s(&out)]),
        "export",
    );
    let want = tree(&out);
    assert_eq!(want.len(), 80);
    let img = Img {
        b: std::fs::read(&spool).unwrap(),
        seg: 128 << 10,
    };
    assert!(img.segments().len() >= 4, "{}", img.segments().len());
    let sum = summary(&spool);
    assert_eq!(num(&sum, "dropped flows"), 0);
    assert_eq!(sum["damage"], "none");
    (d, spool, img, want)
}

/// Runs `--spool-summary` expecting failure: its key/value pairs and stderr.
fn damaged_summary(spool: &Path) -> (BTreeMap<String, String>, String) {
    let o = run(&["--spool-summary", s(spool)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let m = stdout(&o)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (m, stderr(&o))
}

/// `tcpflow -q --spool-export SPOOL -o OUT --report-json JSON`.
fn export_with_report(spool: &Path, out: &Path, json: &Path) -> std::process::Output {
    run(&[
        "-q",
        "--spool-export",
        s(spool),
        "-o",
        s(out),
        "--report-json",
        s(json),
    ])
}

/// Exports a damaged spool: exit 1, one line saying so; the files written.
fn damaged_export(spool: &Path, out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let o = run(&["-q", "--spool-export", s(spool), "-o", s(out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("tcpflow: spool ") && e.contains(" is damaged: "),
        "{e}"
    );
    tree(out)
}

/// Files of `got` equal to those of `want`.
fn same_files(want: &BTreeMap<PathBuf, Vec<u8>>, got: &BTreeMap<PathBuf, Vec<u8>>) -> usize {
    want.iter().filter(|(k, v)| got.get(*k) == Some(v)).count()
}

#[test]
fn a_flipped_byte_is_reported_and_the_rest_of_its_segment_recovered() {
    let (d, spool, mut img, want) = damage_fixture("spool-flip");
    // A Data record in the middle of the second segment (not the newest).
    let base = img.segments()[1];
    let recs = img.records(base);
    let &(at, _, len) = recs.iter().skip(recs.len() / 2).find(|r| r.1 == 2).unwrap();
    img.b[at + len / 2] ^= 0x01;
    std::fs::write(&spool, &img.b).unwrap();
    let (sum, err) = damaged_summary(&spool);
    assert!(
        sum["damage"].starts_with(&format!("1 unreadable stretches ({len} bytes) skipped")),
        "{sum:?}"
    );
    assert_eq!(sum["torn tail"], "none");
    assert!(err.contains("is damaged"), "{err}");
    let got = damaged_export(&spool, &d.join("out"));
    assert_eq!(got.len(), want.len());
    // One record's bytes (one direction of one flow) are missing; every other file is whole.
    assert_eq!(same_files(&want, &got), want.len() - 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_zeroed_first_block_loses_that_block_and_is_not_blamed_on_the_ring() {
    let (d, spool, mut img, want) = damage_fixture("spool-zero");
    let base = img.segments()[0];
    img.b[base..base + 4096].fill(0);
    std::fs::write(&spool, &img.b).unwrap();
    let (sum, _) = damaged_summary(&spool);
    assert_eq!(num(&sum, "flows truncated"), 0, "{sum:?}");
    assert_eq!(num(&sum, "dropped flows"), 0, "{sum:?}");
    assert!(sum["damage"].contains("unreadable stretches"), "{sum:?}");
    let got = damaged_export(&spool, &d.join("out"));
    // The flows whose start was in that block are missing; the others are whole.
    let whole = same_files(&want, &got);
    assert!(whole + 12 >= want.len(), "{whole} of {}", want.len());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_spool_truncated_below_one_segment_still_exports_what_it_holds() {
    let (d, spool, img, want) = damage_fixture("spool-trunc");
    let first = img.segments()[0];
    assert_eq!(first, 0);
    let cut = 48 << 10;
    let records = img.records(0).iter().filter(|r| r.0 + r.2 <= cut).count();
    std::fs::write(&spool, &img.b[..cut]).unwrap();
    let (sum, err) = damaged_summary(&spool);
    assert!(sum["damage"].contains("truncated"), "{sum:?}");
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(num(&sum, "records"), records as u64, "{sum:?}");
    assert!(num(&sum, "flows") > 0);
    let got = damaged_export(&spool, &d.join("out"));
    assert!(!got.is_empty() && same_files(&want, &got) > 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn crafted_fields_at_their_maxima_are_one_line_errors() {
    let (d, spool, img, _) = damage_fixture("spool-crafted");
    let base = img.segments()[0];
    let one_line_error = |o: &Output, what: &str, needle: &str| {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(1), "{what}: {e}");
        assert_eq!(e.lines().count(), 1, "{what}: {e}");
        assert!(
            e.starts_with("tcpflow: ") && e.contains(needle),
            "{what}: {e}"
        );
    };
    // A flow table the size of the address space (or of 23 GB): refused, not allocated.
    for slots in [u32::MAX, 100_000_000] {
        let mut c = Img {
            b: img.b.clone(),
            seg: img.seg,
        };
        c.b[base + 28..base + 32].copy_from_slice(&slots.to_le_bytes());
        c.reheader(base);
        std::fs::write(&spool, &c.b).unwrap();
        let o = run(&["--spool-summary", s(&spool)]);
        one_line_error(&o, "summary", &format!("{slots} flow slots"));
        let o = run(&["-q", "--spool-export", s(&spool), "-o", s(&d.join("o1"))]);
        one_line_error(&o, "export", "--max-flows");
    }
    // Counters, times and indexes at their maxima in every Open and Close record.
    let mut c = Img {
        b: img.b.clone(),
        seg: img.seg,
    };
    for b in c.segments() {
        for (at, typ, _) in c.records(b) {
            let body = at + 8;
            match typ {
                1 => {
                    c.b[body + 8..body + 12].fill(0xFF); // conn index
                    c.b[body + 12..body + 20].fill(0xFF); // first time
                }
                4 => {
                    c.b[body + 9..body + 17].fill(0xFF); // last time
                    for k in 0..2 {
                        let d = body + 30 + k * 65;
                        c.b[d..d + 64].fill(0xFF); // the eight counters
                    }
                }
                _ => continue,
            }
            c.recrc(b, at);
        }
    }
    std::fs::write(&spool, &c.b).unwrap();
    let o = run(&["--spool-summary", s(&spool)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = d.join("o2");
    let o = export_with_report(&spool, &out, &d.join("r.json"));
    // Figures are figures: reported as they are (sums saturate), nothing breaks.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(tree(&out).len(), 80);
    // A Gap whose end passes 2^64 (or 2^63, past any file): a damaged record, reported.
    for len in [u64::MAX - 5, 1u64 << 63] {
        let mut c = Img {
            b: img.b.clone(),
            seg: img.seg,
        };
        let newest = *c.segments().last().unwrap();
        let recs = c.records(newest);
        // Over the newest segment's last Data record: the same flow and direction.
        let &(at, _, len0) = recs.iter().rev().find(|r| r.1 == 2).unwrap();
        let mut rec = vec![3u8, c.b[at + 1], 33, 0, 0, 0, 0, 0];
        rec.extend_from_slice(&c.b[at + 8..at + 16]); // slot, id
        rec.extend_from_slice(&5u64.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.push(0);
        c.b[at..at + 33].copy_from_slice(&rec);
        // A Pad for the rest of the old record keeps the records after it in step.
        let pad = len0 - 33;
        assert!(pad >= 8);
        c.b[at + 33..at + 35].copy_from_slice(&[5, 0]);
        c.b[at + 35..at + 37].copy_from_slice(&(pad as u16).to_le_bytes());
        c.recrc(newest, at);
        c.recrc(newest, at + 33);
        std::fs::write(&spool, &c.b).unwrap();
        let o = run(&["-q", "--spool-export", s(&spool), "-o", s(&d.join("o3"))]);
        one_line_error(
            &o,
            "huge gap",
            "is damaged: 1 unreadable stretches (33 bytes)",
        );
        assert!(!stderr(&o).contains("out of range"), "{}", stderr(&o));
        std::fs::remove_dir_all(d.join("o3")).unwrap();
        if len == 1u64 << 63 {
            // Ending at 2^63 - 1 it is valid: a file of that length is the file system's
            // to refuse.
            let end = (1u64 << 63) - 1 - 5;
            c.b[at + 24..at + 32].copy_from_slice(&end.to_le_bytes());
            c.recrc(newest, at);
            std::fs::write(&spool, &c.b).unwrap();
            let o = run(&["-q", "--spool-export", s(&spool), "-o", s(&d.join("o3"))]);
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            assert!(!stderr(&o).contains("out of range"), "{}", stderr(&o));
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_file_that_is_not_a_spool_is_never_overwritten_without_spool_init() {
    let d = tmp("spool-init");
    let cap = one_conversation(&d);
    // An ISO image: its first 32 KiB are zeros.
    let iso = d.join("disk.iso");
    let mut image = vec![0u8; 32 << 10];
    image.extend_from_slice(b"\x01CD001\x01 a file system that is not ours");
    image.resize(600 << 10, 0x42);
    std::fs::write(&iso, &image).unwrap();
    let spool_run = |extra: &[&str]| {
        let mut a = vec![
            "-q",
            "-r",
            s(&cap),
            "--spool",
            s(&iso),
            "--spool-size",
            "256K",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let o = spool_run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("does not hold a spool") && e.contains("--spool-init"),
        "{e}"
    );
    assert_eq!(std::fs::read(&iso).unwrap(), image, "left intact");
    // Asked for: it becomes a spool.
    ok(&spool_run(&["--spool-init"]), "--spool-init");
    assert_eq!(std::fs::metadata(&iso).unwrap().len(), 256 << 10);
    assert_eq!(num(&summary(&iso), "flows"), 1);
    // Empty, or all zeros (a spool allocated but never written): taken as they are.
    for (name, len) in [("empty", 0usize), ("zeros", 100 << 10)] {
        let f = d.join(name);
        std::fs::write(&f, vec![0u8; len]).unwrap();
        ok(
            &run(&[
                "-q",
                "-r",
                s(&cap),
                "--spool",
                s(&f),
                "--spool-size",
                "256K",
            ]),
            name,
        );
        assert_eq!(num(&summary(&f), "flows"), 1);
    }
    // --spool-init alone is a usage error.
    let o = run(&["--spool-init", "-r", s(&cap)]);
    assert!(
        stderr(&o).contains("--spool-init needs --spool"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}
