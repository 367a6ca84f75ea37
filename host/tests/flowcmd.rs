//! `-S tcp_cmd` and `-S tcp_alert_fd`: one call (one line) per flow file, once the file is
//! complete; a slow command does not hold up a live capture. `-S http_cmd` and
//! `-S http_alert_fd` (with `-e http`): the same per HTTP body file, including the bodies
//! the scanner finishes on its worker thread.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A command that records its argument and the size of that file when it runs, after
/// `sleep` seconds.
fn recorder(d: &Path, log: &Path, sleep: &str) -> String {
    let script = d.join("record.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {sleep}\nprintf '%s %s\\n' \"$1\" \"$(wc -c < \"$1\")\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.to_str().unwrap().to_string()
}

/// Flow files in `out` with their sizes (report and HTTP bodies aside).
fn flow_files(out: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            !["report.xml", "report.html"].contains(&n) && !n.contains("-HTTPBODY-")
        })
        .map(|p| (p.to_str().unwrap().to_string(), p.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

/// Lines of `log` as (path, size), sorted.
fn calls(log: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (p, n) = l.rsplit_once(' ').unwrap();
            (p.to_string(), n.trim().parse().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn capture(d: &Path) -> std::path::PathBuf {
    let cap = d.join("c.pcap");
    let mut p = Pcap::new();
    let s = server();
    for i in 0..20 {
        let body = format!("request {i}\n").repeat(50 + i as usize);
        let reply = format!("reply {i}\n").repeat(20);
        p.conversation(
            1_000_000 + u64::from(i) * 10_000,
            client(i),
            s,
            1000 * i,
            5000 * i,
            body.as_bytes(),
            reply.as_bytes(),
            1400,
        );
    }
    p.write(&cap);
    cap
}

#[test]
fn tcp_cmd_runs_once_per_complete_flow_file() {
    let d = tmp("tcpcmd");
    let cap = capture(&d);
    let out = d.join("out");
    let log = d.join("calls.log");
    let cmd = recorder(&d, &log, "0");
    let o = run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-S",
        &format!("tcp_cmd={cmd}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = flow_files(&out);
    assert_eq!(files.len(), 40);
    // Each file once, and its whole size was there when the command ran.
    assert_eq!(calls(&log), files);

    // Through the shell, asked for: the path is $1.
    let log2 = d.join("shell.log");
    let out2 = d.join("out2");
    let o = run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--tcp-cmd-shell",
        "-S",
        &format!(
            "tcp_cmd=printf '%s %s\\n' \"$1\" \"$(wc -c < \"$1\")\" >> {}",
            log2.display()
        ),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(calls(&log2), flow_files(&out2));

    // A command that fails: counted and said, the run goes on.
    let out3 = d.join("out3");
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out3.to_str().unwrap(),
        "-S",
        "tcp_cmd=false",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("40 commands run, 40 failed"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Runs tcpflow with `args` and descriptor 7 open on a new file at `alerts`; checks that it
/// succeeded and returns the file's lines, each a `close` line, without that word, sorted.
fn alerts_on_fd7(alerts: &Path, args: &[&str]) -> Vec<String> {
    let f = std::fs::File::create(alerts).unwrap();
    let fd = f.as_raw_fd();
    let mut cmd = bin();
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; this runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    drop(f);
    let mut lines: Vec<String> = std::fs::read_to_string(alerts)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("close\t").expect(l).to_string())
        .collect();
    lines.sort();
    lines
}

#[test]
fn tcp_alert_fd_gets_a_line_per_flow_file() {
    let d = tmp("alertfd");
    let cap = capture(&d);
    let out = d.join("out");
    let alerts = d.join("alerts");
    let (c, o) = (cap.to_str().unwrap(), out.to_str().unwrap());
    let lines = alerts_on_fd7(&alerts, &["-q", "-r", c, "-o", o, "-S", "tcp_alert_fd=7"]);
    let files: Vec<String> = flow_files(&out).into_iter().map(|(p, _)| p).collect();
    assert_eq!(lines, files);
    // A descriptor that is not open: said before anything is read.
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-S",
        "tcp_alert_fd=99",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("not open"), "{}", stderr(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

/// A live capture of `lo` with a command that takes a second per file: 30 connections in
/// quick succession are all written whole, and every command runs (after the capture ends).
#[test]
fn a_slow_tcp_cmd_does_not_lose_live_packets() {
    let d = tmp("slowcmd");
    let out = d.join("out");
    let log = d.join("calls.log");
    let cmd = recorder(&d, &log, "1");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let child = bin()
        .args(["-i", "lo", "-o", out.to_str().unwrap()])
        .args([
            "-S",
            &format!("tcp_cmd={cmd}"),
            "--idle-timeout",
            "1",
            &filter,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    const N: usize = 30;
    let server = std::thread::spawn(move || {
        for _ in 0..N {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).unwrap();
            s.write_all(&buf[..100]).unwrap();
        }
    });
    for i in 0..N {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(&vec![b'a' + (i % 26) as u8; 50_000]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
    }
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    if e.contains("cannot capture on lo") {
        assert!(
            std::env::var_os("CI").is_none(),
            "no capture rights under CI: {e}"
        );
        eprintln!("no capture rights here: skipped ({e})");
        std::fs::remove_dir_all(&d).unwrap();
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("drops: 0 by capture"), "{e}");
    let files = flow_files(&out);
    assert_eq!(files.len(), 2 * N, "{e}");
    let sizes: Vec<u64> = files.iter().map(|f| f.1).collect();
    assert_eq!(
        sizes.iter().filter(|&&s| s == 50_000).count(),
        N,
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().filter(|&&s| s == 100).count(), N, "{sizes:?}");
    assert_eq!(calls(&log), files);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A command that records its argument and the CRC and size of that file (`cksum`) when it
/// runs.
fn content_recorder(d: &Path, name: &str, log: &Path) -> String {
    let script = d.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$1\" \"$(cksum < \"$1\")\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.to_str().unwrap().to_string()
}

/// Lines of `log` as (path, "crc size"), sorted.
fn content_calls(log: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (p, c) = l.split_once(' ').unwrap();
            (p.to_string(), c.to_string())
        })
        .collect();
    v.sort();
    v
}

/// The HTTP body files in `out` with their CRC and size (`cksum`) now.
fn body_files(out: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("-HTTPBODY-"))
        .map(|p| {
            let o = std::process::Command::new("cksum")
                .stdin(std::fs::File::open(&p).unwrap())
                .output()
                .unwrap();
            (
                p.to_str().unwrap().to_string(),
                String::from_utf8(o.stdout).unwrap().trim().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// An HTTP capture with more bodies than the scanner carves on the reading thread (64), so
/// that most are finished on its worker.
fn http_capture(d: &Path) -> (std::path::PathBuf, usize) {
    let c = tcpflow_tests::http_workload::capture(25, 6);
    let p = d.join("http.pcap");
    std::fs::write(&p, &c.pcap).unwrap();
    (p, c.bodies)
}

#[test]
fn http_cmd_runs_once_per_complete_body_file() {
    let d = tmp("httpcmd");
    let (cap, bodies) = http_capture(&d);
    assert!(bodies > 64);
    let out = d.join("out");
    let (tlog, hlog) = (d.join("tcp.log"), d.join("http.log"));
    let tcmd = recorder(&d, &tlog, "0");
    let hcmd = content_recorder(&d, "record-body.sh", &hlog);
    let o = run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-e",
        "http",
        "-S",
        &format!("tcp_cmd={tcmd}"),
        "-S",
        &format!("http_cmd={hcmd}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = body_files(&out);
    assert_eq!(files.len(), bodies);
    // Each body file once, with its final content when the command ran; each flow file
    // once too (the two settings share the bound on commands, not their files).
    assert_eq!(content_calls(&hlog), files);
    assert_eq!(calls(&tlog), flow_files(&out));
    let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        xml.contains(&format!("http_cmd_started='{bodies}'")),
        "{xml}"
    );
    assert!(xml.contains("http_cmd_failed='0'"), "{xml}");

    // Through the shell, asked for: the path is $1.
    let out2 = d.join("out2");
    let slog = d.join("shell.log");
    let o = run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "-e",
        "http",
        "--http-cmd-shell",
        "-S",
        &format!(
            "http_cmd=printf '%s %s\\n' \"$1\" \"$(cksum < \"$1\")\" >> {}",
            slog.display()
        ),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(content_calls(&slog), body_files(&out2));

    // Failures: counted, said and in the report; the run goes on.
    let out3 = d.join("out3");
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        out3.to_str().unwrap(),
        "-e",
        "http",
        "-S",
        "http_cmd=false",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("http {bodies} commands run, {bodies} failed")),
        "{}",
        stderr(&o)
    );
    let xml = std::fs::read_to_string(out3.join("report.xml")).unwrap();
    assert!(
        xml.contains(&format!("http_cmd_failed='{bodies}'")),
        "{xml}"
    );

    // Without the scanner there are no bodies: a usage error, before anything is read.
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        d.join("out4").to_str().unwrap(),
        "-S",
        "http_cmd=true",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("-e http"), "{}", stderr(&o));
    assert!(!d.join("out4").exists());
    std::fs::remove_dir_all(&d).unwrap();
}

/// `http_alert_fd` and `tcp_alert_fd` on the same descriptor: a `close` line per body file
/// and per flow file.
#[test]
fn http_alert_fd_gets_a_line_per_body_file() {
    let d = tmp("httpalert");
    let (cap, bodies) = http_capture(&d);
    let out = d.join("out");
    let alerts = d.join("alerts");
    let (c, o) = (cap.to_str().unwrap(), out.to_str().unwrap());
    let lines = alerts_on_fd7(
        &alerts,
        &[
            "-q",
            "-r",
            c,
            "-o",
            o,
            "-e",
            "http",
            "-S",
            "http_alert_fd=7",
            "-S",
            "tcp_alert_fd=7",
        ],
    );
    let body: Vec<String> = body_files(&out).into_iter().map(|(p, _)| p).collect();
    assert_eq!(body.len(), bodies);
    let mut all: Vec<String> = flow_files(&out).into_iter().map(|(p, _)| p).collect();
    all.extend(body);
    all.sort();
    assert_eq!(lines, all);
    let xml = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        xml.contains(&format!("http_alert_lines='{bodies}'")),
        "{xml}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A router spools, a PC carves later: `-S tcp_cmd` and `http_cmd` act on the files an
/// export writes as on a direct run's.
#[test]
fn commands_run_on_an_exported_spool_too() {
    let d = tmp("spoolcmd");
    let (cap, bodies) = http_capture(&d);
    let spool = d.join("s.spool");
    let o = run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
        "--spool-size",
        "16M",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = d.join("out");
    let (tlog, hlog) = (d.join("tcp.log"), d.join("http.log"));
    let tcmd = recorder(&d, &tlog, "0");
    let hcmd = content_recorder(&d, "record-body.sh", &hlog);
    let o = run(&[
        "-q",
        "--spool-export",
        spool.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-e",
        "http",
        "-S",
        &format!("tcp_cmd={tcmd}"),
        "-S",
        &format!("http_cmd={hcmd}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = body_files(&out);
    assert_eq!(files.len(), bodies);
    assert_eq!(content_calls(&hlog), files);
    assert_eq!(calls(&tlog), flow_files(&out));
    std::fs::remove_dir_all(&d).unwrap();
}
