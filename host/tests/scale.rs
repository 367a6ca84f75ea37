//! 200,000 connections open at once, under `ulimit -n 1024`: every byte of all 400,000 files
//! right. The open-file cache and the per-direction buffers make this work; tcpflow 1.6.1
//! keeps one descriptor per flow and fails.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::*;

const FLOWS: u32 = 200_000;

/// The message of side `side` of flow `i`.
fn msg(i: u32, side: &str) -> Vec<u8> {
    format!("{side} of flow {i}\n").into_bytes()
}

/// Writes the capture of [`FLOWS`] connections open at once to `cap`: every connection
/// opens (2 frames), then every one sends (2), then every one closes (2).
fn concurrent_capture(cap: &std::path::Path) {
    let s_end = server();
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    for i in 0..FLOWS {
        t += 1;
        p.tcp(t, client(i), s_end, 999, 0, SYN, b"");
        p.tcp(t, s_end, client(i), 8999, 1000, SYN | ACK, b"");
    }
    for i in 0..FLOWS {
        t += 1;
        let (a, b) = (msg(i, "client"), msg(i, "server"));
        p.tcp(t, client(i), s_end, 1000, 9000, ACK | PSH, &a);
        p.tcp(
            t,
            s_end,
            client(i),
            9000,
            1000 + a.len() as u32,
            ACK | PSH,
            &b,
        );
    }
    for i in 0..FLOWS {
        t += 1;
        let (a, b) = (msg(i, "client").len() as u32, msg(i, "server").len() as u32);
        p.tcp(t, client(i), s_end, 1000 + a, 9000 + b, FIN | ACK, b"");
        p.tcp(t, s_end, client(i), 9000 + b, 1001 + a, FIN | ACK, b"");
    }
    p.write(cap);
}

/// Runs the command under `ulimit -n 1024` with `args`.
fn run_under_1024(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; this runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn two_hundred_thousand_concurrent_flows_under_ulimit_1024() {
    let d = tmp("scale");
    let cap = d.join("c.pcap");
    let s_end = server();
    concurrent_capture(&cap);
    let out = d.join("out");
    let o = run_under_1024(&[
        "-q".as_ref(),
        "-r".as_ref(),
        cap.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut files = 0;
    for i in 0..FLOWS {
        let c = client(i);
        assert_eq!(
            std::fs::read(out.join(flow_name(c, s_end))).unwrap(),
            msg(i, "client"),
            "flow {i}"
        );
        assert_eq!(
            std::fs::read(out.join(flow_name(s_end, c))).unwrap(),
            msg(i, "server"),
            "flow {i}"
        );
        files += 2;
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), files + 2); // + report.xml, report.html
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        report.contains(&format!("<max_open_flows>{FLOWS}</max_open_flows>")),
        "every flow open at once"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Pcap records (16-byte header each) after the 24-byte file header, with their frames.
fn pcap_frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(&bytes[at + 16..(at + 16 + caplen).min(bytes.len())]);
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len(), "whole records");
    out
}

/// -K and --pcap-per-connection with the same 200,000 connections open at once: 600,000
/// pcap files through a bounded cache of descriptors (tcpflow 1.6.1 aborts at the limit),
/// every one complete: each direction's 3 frames, each connection's 6.
#[test]
fn two_hundred_thousand_flows_with_pcaps_under_ulimit_1024() {
    let d = tmp("scale-k");
    let cap = d.join("c.pcap");
    let s_end = server();
    concurrent_capture(&cap);
    let out = d.join("out");
    // In 1,000 folders (`%N`: the session number modulo 1,000): a million names in one
    // folder is a strain on the file system, not on descriptors, which this is about.
    let o = run_under_1024(&[
        "-q".as_ref(),
        "--no-report".as_ref(),
        "-T".as_ref(),
        "%N/%A.%a-%B.%b".as_ref(),
        "-K".as_ref(),
        "--pcap-per-connection".as_ref(),
        "-r".as_ref(),
        cap.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for i in 0..FLOWS {
        let c = client(i);
        let bin = out.join(format!("{:03}", i % 1000));
        for (a, b) in [(c, s_end), (s_end, c)] {
            let p = std::fs::read(bin.join(format!("{}.pcap", flow_name(a, b)))).unwrap();
            assert_eq!(pcap_frames(&p).len(), 3, "flow {i}");
            // The flow file too.
            assert!(bin.join(flow_name(a, b)).exists(), "flow {i}");
        }
        let p = std::fs::read(bin.join(format!("{}.conn.pcap", flow_name(c, s_end)))).unwrap();
        let frames = pcap_frames(&p);
        assert_eq!(frames.len(), 6, "flow {i}");
        assert!(frames[2].ends_with(&msg(i, "client")), "flow {i}");
    }
    let files: usize = std::fs::read_dir(&out)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 5 * FLOWS as usize);
    std::fs::remove_dir_all(&d).unwrap();
}

/// More open data than the buffers hold (`--buffer-mb 1`), with the data of each direction
/// in two rounds and retransmissions after the first was written: files written early on
/// the finishing thread, then again, compared where they came again, every byte and time right.
#[test]
fn more_open_data_than_buffers_is_written_early_and_right() {
    const N: u32 = 6_000;
    let d = tmp("budget");
    let cap = d.join("c.pcap");
    let s_end = server();
    let mut p = Pcap::new();
    let syn_us = |i: u32| 1_000_000_000_000 + u64::from(i) * 1_000_000;
    let msg = |i: u32, what: &str| format!("{what} of flow {i}: {}\n", "x".repeat(80)).into_bytes();
    for i in 0..N {
        p.tcp(syn_us(i), client(i), s_end, 999, 0, SYN, b"");
        p.tcp(syn_us(i), s_end, client(i), 8999, 1000, SYN | ACK, b"");
    }
    let mut t = syn_us(N);
    let (mut cseq, mut sseq) = (vec![1000u32; N as usize], vec![9000u32; N as usize]);
    for round in ["first", "second"] {
        for i in 0..N {
            t += 1;
            let k = i as usize;
            let (a, b) = (
                msg(i, &format!("client {round}")),
                msg(i, &format!("server {round}")),
            );
            p.tcp(t, client(i), s_end, cseq[k], sseq[k], ACK | PSH, &a);
            cseq[k] += a.len() as u32;
            p.tcp(t, s_end, client(i), sseq[k], cseq[k], ACK | PSH, &b);
            sseq[k] += b.len() as u32;
        }
        // The first round again for some flows, after it was written: the same bytes, or
        // (every 50th) different ones, a conflict the report counts.
        if round == "first" {
            for i in (0..N).step_by(7) {
                t += 1;
                let mut a = msg(i, "client first");
                if i % 50 == 0 {
                    a[0] = b'C';
                }
                p.tcp(t, client(i), s_end, 1000, 9000, ACK | PSH, &a);
            }
        }
    }
    for i in 0..N {
        t += 1;
        let k = i as usize;
        p.tcp(t, client(i), s_end, cseq[k], sseq[k], FIN | ACK, b"");
        p.tcp(t, s_end, client(i), sseq[k], cseq[k] + 1, FIN | ACK, b"");
    }
    p.write(&cap);
    drop(p);
    let out = d.join("out");
    let o = bin()
        .args(["-q", "--buffer-mb", "1", "-r"])
        .arg(&cap)
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        !report.contains("buffer_budget_flushes='0'"),
        "the buffers overflowed"
    );
    for i in 0..N {
        let c = client(i);
        let want = |who: &str| {
            [
                msg(i, &format!("{who} first")),
                msg(i, &format!("{who} second")),
            ]
            .concat()
        };
        let cf = out.join(flow_name(c, s_end));
        assert_eq!(std::fs::read(&cf).unwrap(), want("client"), "flow {i}");
        assert_eq!(
            std::fs::read(out.join(flow_name(s_end, c))).unwrap(),
            want("server"),
            "flow {i}"
        );
        let mtime = std::fs::metadata(&cf).unwrap().modified().unwrap();
        let secs = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs, syn_us(i) / 1_000_000, "time of flow {i}");
    }
    let conflicts = N.div_ceil(350) as usize; // i % 7 == 0 and i % 50 == 0
    let with_conflicts = report
        .lines()
        .filter(|l| l.contains("<tcpflow ") && !l.contains("conflict_bytes='0'"))
        .count();
    assert_eq!(
        with_conflicts, conflicts,
        "directions with conflicting bytes"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
