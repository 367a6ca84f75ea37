//! A write that fails for one file (a file size limit, a FIFO under a flow's name) costs that
//! file, not the run: every other flow is written, the failed direction's lost bytes are in
//! the report, a warning names the file, and the exit status is 1.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every regular file in `dir` but the report, by name.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file()
            && e.file_name() != "report.xml"
            && e.file_name() != "report.html"
        {
            m.insert(e.file_name().into(), std::fs::read(e.path()).unwrap());
        }
    }
    m
}

/// A field of a JSON report line (numbers and our plain names).
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

fn num(line: &str, key: &str) -> u64 {
    field(line, key).map_or(0, |v| v.parse().unwrap())
}

/// The report's flow line for the file `name` (in `outdir`), and its totals line.
fn report_lines(report: &Path, outdir: &Path, name: &Path) -> (String, String) {
    let text = std::fs::read_to_string(report).unwrap();
    let want = outdir.join(name);
    let flow = text
        .lines()
        .find(|l| field(l, "filename").as_deref() == Some(s(&want)))
        .unwrap_or_else(|| panic!("no record for {}: {text}", want.display()))
        .to_string();
    let totals = text
        .lines()
        .find(|l| l.starts_with("{\"type\":\"totals\""))
        .expect("totals")
        .to_string();
    (flow, totals)
}

/// `n` connections one after another; connection `i` answers `resp_len(i)` bytes.
fn capture(n: u32, resp_len: impl Fn(u32) -> usize) -> Pcap {
    let mut p = Pcap::new();
    for i in 0..n {
        let req = format!("GET /{i} HTTP/1.0\r\n\r\n");
        let resp: Vec<u8> = (0..resp_len(i))
            .map(|k| (k as u32).wrapping_mul(7).wrapping_add(i) as u8)
            .collect();
        p.conversation(
            1_000_000 + u64::from(i) * 100_000,
            client(i),
            server(),
            1000 + i,
            9000 + i,
            req.as_bytes(),
            &resp,
            1400,
        );
    }
    p
}

/// Runs the binary under a file size limit (bytes), SIGXFSZ ignored, as `ulimit -f` does;
/// killed if it takes more than a minute (a FIFO must never block it).
fn run_limited(args: &[&str], fsize: Option<u64>) -> Output {
    let mut cmd = bin();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(limit) = fsize {
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
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("tcpflow hung; stderr: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// 24 connections under a 48 KiB file size limit: connection 3 answers 600 KB (its buffers
/// are written as they fill, by the decoding thread: the write at the limit fails),
/// connection 9 answers 60 KB (held to its end, written by the last job: that fails). Every
/// other file is written whole, both big ones hold their first 48 KiB, the report has
/// what each lost and counts as written only what reached the files, and the exit status is 1.
#[test]
fn file_size_limit_costs_the_file_not_the_run() {
    let d = tmp("fsize");
    let cap = d.join("c.pcap");
    let big = |i: u32| match i {
        3 => 600_000,
        9 => 60_000,
        _ => 1500 + 10 * i as usize,
    };
    capture(24, big).write(&cap);
    let direct = d.join("direct");
    let o = run_limited(&["-q", "-r", s(&cap), "-o", s(&direct)], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = tree(&direct);
    assert_eq!(want.len(), 48);
    let limit = 48 * 1024u64;
    let bigs: Vec<PathBuf> = want
        .iter()
        .filter(|(_, b)| b.len() as u64 > limit)
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(bigs.len(), 2);

    let out = d.join("out");
    let json = d.join("r.json");
    let o = run_limited(
        &["-r", s(&cap), "-o", s(&out), "--report-json", s(&json)],
        Some(limit),
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        std::fs::metadata(&json).unwrap().len() < limit,
        "the report fits"
    );
    let got = tree(&out);
    assert_eq!(got.len(), 48, "{e}");
    let mut on_disk = 0;
    for (name, bytes) in &want {
        let g = &got[name];
        on_disk += g.len() as u64;
        if bigs.contains(name) {
            assert_eq!(g.len() as u64, limit, "{}", name.display());
            assert_eq!(g[..], bytes[..limit as usize], "{}", name.display());
            assert!(
                e.contains(&format!(
                    "tcpflow: warning: writing {}: File too large",
                    s(&out.join(name))
                )),
                "{e}"
            );
            let (flow, _) = report_lines(&json, &out, name);
            assert_eq!(num(&flow, "filesize"), limit, "{flow}");
            assert_eq!(
                num(&flow, "write_lost_bytes"),
                bytes.len() as u64 - limit,
                "{flow}"
            );
        } else {
            assert_eq!(g, bytes, "{}", name.display());
        }
    }
    let (ok_flow, totals) = report_lines(&json, &out, want.keys().next().unwrap());
    assert!(field(&ok_flow, "write_lost_bytes").is_none(), "{ok_flow}");
    let lost: u64 = bigs.iter().map(|n| want[n].len() as u64 - limit).sum();
    assert_eq!(num(&totals, "files_failed"), 2, "{totals}");
    assert_eq!(num(&totals, "write_lost_bytes"), lost, "{totals}");
    assert_eq!(num(&totals, "bytes_written"), on_disk, "{totals}");
    assert!(e.contains("2 files failed"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// FIFOs under two flow files' names: a 200 KB direction (more than a pipe's 64 KiB, so a
/// write would block with no reader; written as its buffers fill) and a short one (written by
/// its last job). Those directions are reported lost, the FIFOs are left alone, every other
/// file is written, no hang, exit status 1.
#[test]
fn fifo_under_a_flow_name_costs_that_flow() {
    let d = tmp("fifo");
    let cap = d.join("c.pcap");
    let len = |i: u32| if i == 4 { 200_000 } else { 700 + i as usize };
    capture(10, len).write(&cap);
    let direct = d.join("direct");
    let o = run_limited(&["-q", "-r", s(&cap), "-o", s(&direct)], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = tree(&direct);
    assert_eq!(want.len(), 20);
    let victims: Vec<PathBuf> = want
        .iter()
        .filter(|(_, b)| b.len() == 200_000 || b.len() == 707)
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(victims.len(), 2);

    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    for v in &victims {
        let c = std::ffi::CString::new(s(&out.join(v))).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }
    let json = d.join("r.json");
    let o = run_limited(
        &["-r", s(&cap), "-o", s(&out), "--report-json", s(&json)],
        None,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let got = tree(&out);
    assert_eq!(got.len(), 18, "{e}");
    for (name, bytes) in &want {
        if !victims.contains(name) {
            assert_eq!(&got[name], bytes, "{}", name.display());
        }
    }
    for v in &victims {
        let fifo = out.join(v);
        assert!(
            e.contains(&format!(
                "tcpflow: warning: cannot create {}: it is not a regular file",
                s(&fifo)
            )),
            "{e}"
        );
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        let (flow, _) = report_lines(&json, &out, v);
        assert_eq!(num(&flow, "filesize"), 0, "{flow}");
        assert_eq!(
            num(&flow, "write_lost_bytes"),
            want[v].len() as u64,
            "{flow}"
        );
    }
    let (_, totals) = report_lines(&json, &out, &victims[0]);
    assert_eq!(num(&totals, "files_failed"), 2, "{totals}");
    assert_eq!(num(&totals, "files_written"), 18, "{totals}");
    let on_disk: u64 = got.values().map(|b| b.len() as u64).sum();
    assert_eq!(num(&totals, "bytes_written"), on_disk, "{totals}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Console output that cannot be written (standard output on a full device): the run stops
/// with status 1, and the report counts none of it as written; to a working output, every
/// stream byte.
#[test]
fn console_bytes_written_are_the_ones_that_reached_it() {
    let d = tmp("console-full");
    let cap = d.join("c.pcap");
    capture(4, |i| 30_000 + i as usize).write(&cap);
    let xml = d.join("r.xml");
    let streams: u64 = (0..4)
        .map(|i| 30_000 + i + format!("GET /{i} HTTP/1.0\r\n\r\n").len() as u64)
        .sum();
    for (target, status, written) in [("/dev/full", 1, 0), ("/dev/null", 0, streams)] {
        let out = std::fs::OpenOptions::new()
            .write(true)
            .open(target)
            .unwrap();
        let o = bin()
            .args(["-c", "-r", s(&cap), "-X", s(&xml)])
            .stdin(Stdio::null())
            .stdout(out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
        let x = std::fs::read_to_string(&xml).unwrap();
        assert!(
            x.contains(&format!(" bytes_written='{written}' ")),
            "{target}: {x}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
