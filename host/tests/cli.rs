//! The command line, run as a user runs it: flags, errors, exit statuses.

mod common;

use common::*;

#[test]
fn help_is_the_manual() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for needle in [
        "-r <FILE>",
        "-R <FILE>",
        "-o <DIR>",
        "-T <TEMPLATE>",
        "--report-json",
        "--max-flows",
        "--max-names",
        "--idle-timeout",
        "--overlap",
        "[EXPRESSION]",
        "%A/%a",
        "Exit status",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
    // Every tcpflow 1.6.1 flag is listed at the end; refused ones are not options.
    assert!(out.contains("-K, --pcap-per-flow"), "{out}");
    assert!(out.contains("tcpflow 1.6.1's flags here:"), "{out}");
    assert!(!out.contains("-L <"), "{out}");
}

#[test]
fn version_exits_zero() {
    let o = run(&["-V"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("tcpflow {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unsupported_flags_are_refused_not_ignored() {
    for (args, msg) in [
        (&["-L", "lock", "-r", "x.pcap"][..], "tcpflow: -L (semaphore lock) is not supported\n"),
        (&["-e", "pictures", "-r", "x.pcap"][..], "tcpflow: -e pictures: unknown scanner; the scanners are: http, md5, sha256, netviz\n"),
        (&["-S", "netviz_histogram_size=5", "-r", "x.pcap"][..], "tcpflow: -S netviz_histogram_size: unknown setting; known: enable_report, tcp_timeout, tcp_cmd, tcp_alert_fd, http_cmd, http_alert_fd\n"),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), msg);
    }
}

#[test]
fn usage_errors() {
    let o = run(&["-z", "/tmp", "-r", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-z (chroot) requires -U USER"));
    let o = run(&["-T", "../%A.%a", "-r", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'..' component"), "{}", stderr(&o));
    let o = run(&["-T", "%A%q", "-r", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown variable %q"));
    let o = run(&["--overlap", "middle", "-r", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn missing_input_fails_before_creating_anything() {
    let d = tmp("missing");
    let out = d.join("out");
    let o = run(&[
        "-r",
        "/nonexistent/capture.pcap",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "tcpflow: cannot open /nonexistent/capture.pcap: No such file or directory\n"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn not_a_capture_is_named() {
    let d = tmp("notcap");
    let f = d.join("notes.txt");
    std::fs::write(&f, "hello, this is not a capture\n").unwrap();
    let out = d.join("out");
    let o = run(&["-r", f.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "tcpflow: {}: not a pcap or pcapng capture",
            f.display()
        )),
        "{e}"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_filter_is_a_usage_error() {
    let d = tmp("filter");
    let cap = d.join("c.pcap");
    Pcap::new().write(&cap);
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        d.join("out").to_str().unwrap(),
        "port",
        "80",
        "and",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("tcpflow: bad filter expression 'port 80 and'"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn output_folder_that_cannot_be_created() {
    let d = tmp("nodir");
    let cap = d.join("c.pcap");
    Pcap::new().write(&cap);
    let blocker = d.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let o = run(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        blocker.join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("tcpflow: cannot create output folder"),
        "{}",
        stderr(&o)
    );
    let o = run(&["-r", cap.to_str().unwrap(), "-o", blocker.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a folder"), "{}", stderr(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

/// An output folder the user cannot write to is found before any packet is read. As root
/// (CI), permissions do not apply, so the run drops to `nobody` with -U.
#[test]
fn unwritable_output_folder() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("ro");
    let cap = d.join("c.pcap");
    let mut p = Pcap::new();
    p.conversation(
        1_000_000,
        client(1),
        server(),
        100,
        200,
        b"hello",
        b"world",
        1000,
    );
    p.write(&cap);
    std::fs::set_permissions(&cap, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    let o = if is_root {
        run(&[
            "-U",
            "nobody",
            "-r",
            cap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-report",
        ])
    } else {
        run(&["-r", cap.to_str().unwrap(), "-o", out.to_str().unwrap()])
    };
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(
        e,
        format!(
            "tcpflow: output folder {} is not writable: Permission denied\n",
            out.display()
        )
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

/// Waits up to `secs` for the child; kills it when it has not ended.
fn wait_or_kill(child: &mut std::process::Child, secs: u64) -> Option<i32> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.code().unwrap_or(-1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn mkfifo(p: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// `-r FIFO`: the first SIGINT stops the run whether it waits for a writer or for more
/// data (plain or compressed), and what was read is written with the report.
#[test]
fn the_first_sigint_stops_a_run_waiting_on_a_fifo() {
    use std::io::Write;
    let d = tmp("fifo");
    let basic = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/basic/input.pcap"),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&basic).unwrap();
    let gz = gz.finish().unwrap();
    // (case, bytes the writer sends and then holds the FIFO open; None: no writer)
    let cases: [(&str, Option<Vec<u8>>); 3] = [
        ("no-writer", None),
        ("plain", Some(basic.clone())),
        ("gzip", Some(gz)),
    ];
    let mut failures = Vec::new();
    for (case, bytes) in cases {
        let fifo = d.join(format!("{case}.fifo"));
        mkfifo(&fifo);
        let out = d.join(case);
        let mut child = bin()
            .args([
                "-q",
                "-r",
                fifo.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .args(["--memory", "4M"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let writer = bytes.map(|b| {
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all(&b).unwrap();
            f // held open: the reader waits for more
        });
        std::thread::sleep(std::time::Duration::from_millis(700));
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let code = wait_or_kill(&mut child, 5);
        drop(writer);
        if code != Some(0) {
            failures.push(format!("{case}: exit {code:?} (None: still running)"));
            continue;
        }
        let report = std::fs::read_to_string(out.join("report.xml")).unwrap_or_default();
        if !report.trim_end().ends_with("</dfxml>") {
            failures.push(format!("{case}: no complete report"));
        }
        let flows = std::fs::read_dir(&out)
            .map(|r| r.count().saturating_sub(2)) // report.xml, report.html
            .unwrap_or(0);
        let want = if case == "no-writer" { 0 } else { 2 };
        if flows != want {
            failures.push(format!("{case}: {flows} flow files, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A run stuck where it never checks the stop flag (here: console output into a pipe nobody
/// reads, so write(2) blocks and restarts after the signal) still ends on one SIGTERM: after
/// 5 s without progress it exits with 130 and says so (issue 24: a run stuck starting a
/// thread under qemu ignored SIGTERM for minutes).
#[test]
fn one_sigterm_ends_a_run_stuck_without_progress() {
    use std::io::Read;
    let input =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/wrap/input.pcap");
    let mut child = bin()
        .args(["-c", "-r", input.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held, never read: the pipe (64 KiB) fills with the ~200 KiB of streams.
    let unread = child.stdout.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run was expected to block on its full stdout pipe"
    );
    let t = std::time::Instant::now();
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let code = wait_or_kill(&mut child, 20);
    let took = t.elapsed();
    drop(unread);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(130), "after {took:?}; stderr: {err}");
    assert!(
        took >= std::time::Duration::from_secs(4) && took < std::time::Duration::from_secs(12),
        "ended {took:?} after the signal (bound: 5 s without progress)"
    );
    assert!(err.contains("no progress for 5 s"), "{err}");
}
