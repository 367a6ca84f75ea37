//! Bytes that arrive for a hole already reported as a gap, through the binary: they land in
//! the file, the report no longer counts the hole, nothing is called conflicting; the spool
//! export writes the same file; the console prints them after a header that says so.

mod common;

use std::path::Path;

use common::*;

const LEN: usize = 2110;

fn data() -> Vec<u8> {
    (0..LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Handshake; with one pool block, client bytes 1100..1110 are held, 2100..2110 need
/// another block (the hole 0..1100 is given up as a gap), 1110..2100 follow in order; then
/// 0..1100 arrive, late; FINs.
fn capture(p: &Path) {
    let (c, s) = (client(7), server());
    let (isn_c, isn_s) = (1000u32, 9000u32);
    let d = data();
    let mut pc = Pcap::new();
    let mut t = 1_700_000_000_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    pc.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    pc.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    pc.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK, b"");
    for (lo, hi) in [(1100, 1110), (2100, 2110), (1110, 2100), (0, 1100)] {
        let seq = isn_c + 1 + lo as u32;
        pc.tcp(tick(), c, s, seq, isn_s + 1, ACK, &d[lo..hi]);
    }
    let fin = isn_c + 1 + LEN as u32;
    pc.tcp(tick(), c, s, fin, isn_s + 1, FIN | ACK, b"");
    pc.tcp(tick(), s, c, isn_s + 1, fin + 1, FIN | ACK, b"");
    pc.tcp(tick(), c, s, fin + 1, isn_s + 2, ACK, b"");
    pc.write(p);
}

fn ok(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
}

#[test]
fn late_bytes_land_in_files_spool_export_and_console() {
    let d = tmp("late");
    let cap = d.join("late.pcap");
    capture(&cap);
    let name = format!(
        "010.000.000.007.{:05}-010.009.009.009.00080",
        client(7).port
    );
    let small = ["--max-ooo-bytes", "1K", "-r", cap.to_str().unwrap()];

    let direct = d.join("direct");
    let mut args = small.to_vec();
    args.extend(["-o", direct.to_str().unwrap()]);
    let o = run(&args);
    ok(&o);
    assert_eq!(std::fs::read(direct.join(&name)).unwrap(), data());
    let report = std::fs::read_to_string(direct.join("report.xml")).unwrap();
    for want in [
        "late_filled_bytes='1100'",
        "gap_bytes='0'",
        "conflict_bytes='0'",
        "pool_full='1'",
    ] {
        assert!(report.contains(want), "{want} not in the report:\n{report}");
    }
    assert!(
        stderr(&o).contains("0 gaps (0 bytes), 0 conflicting bytes"),
        "{}",
        stderr(&o)
    );

    let spool = d.join("spool");
    let mut args = small.to_vec();
    args.extend(["-q", "--spool", spool.to_str().unwrap()]);
    ok(&run(&args));
    let exported = d.join("exported");
    ok(&run(&[
        "-q",
        "--spool-export",
        spool.to_str().unwrap(),
        "-o",
        exported.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(exported.join(&name)).unwrap(), data());

    let mut args = small.to_vec();
    args.extend(["-q", "-c"]);
    let o = run(&args);
    ok(&o);
    let out = stdout(&o);
    let at = out.find("[late bytes 0..1100]").expect("late header") + 21;
    assert!(
        out[at..].contains(std::str::from_utf8(&data()[..1100]).unwrap()),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The late bytes are inside an HTTP body still being received: with `-e http` they also go
/// into the body file, whose record then says complete, with the digest of the whole body;
/// the same through the spool and its export. Once as the first body (carved inline), once
/// after 70 small ones (carved on the bodies' thread).
#[test]
fn late_bytes_fill_an_http_body_still_open() {
    for small in [0, 70] {
        late_http_body(small);
    }
}

fn late_http_body(small: usize) {
    const BODY: usize = 5000;
    let body: Vec<u8> = (0..BODY).map(|i| b'A' + (i % 23) as u8).collect();
    let mut resp = Vec::new();
    for _ in 0..small {
        resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    }
    resp.extend(format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").bytes());
    let start = resp.len();
    resp.extend_from_slice(&body);
    let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n".repeat(small + 1);

    let d = tmp("late-http");
    let cap = d.join("late-http.pcap");
    let (c, s) = (client(8), server());
    let (isn_c, isn_s) = (1000u32, 9000u32);
    let mut pc = Pcap::new();
    let mut t = 1_700_000_000_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    pc.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    pc.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    pc.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK | PSH, &req);
    let ack = isn_c + 1 + req.len() as u32;
    // As in `capture`, after the big body's head (pool windows are 1 KiB, from `base`): with
    // one pool block, base+1100..1110 held, base+2100..2110 needing another (the hole
    // start..base+1100 given up as a gap), base+1110..2100 and on in order, then
    // start..base+1100 late, while the body is still open.
    let base = start.div_ceil(1024) * 1024 - 1024;
    let len = resp.len();
    for (lo, hi) in [
        (0, start),
        (base + 1100, base + 1110),
        (base + 2100, base + 2110),
        (base + 1110, base + 2100),
        (base + 2110, base + 3000),
        (start, base + 1100),
        (base + 3000, len),
    ] {
        pc.tcp(tick(), s, c, isn_s + 1 + lo as u32, ack, ACK, &resp[lo..hi]);
    }
    let fin = isn_s + 1 + len as u32;
    pc.tcp(tick(), s, c, fin, ack, FIN | ACK, b"");
    pc.tcp(tick(), c, s, ack, fin + 1, FIN | ACK, b"");
    pc.write(&cap);

    let name = format!(
        "010.009.009.009.00080-010.000.000.008.{:05}",
        client(8).port
    );
    let body_file = format!("{name}-HTTPBODY-{:03}", small + 1);
    let check = |out: &Path| {
        assert!(std::fs::read(out.join(&name)).unwrap() == resp, "flow file");
        let b = std::fs::read(out.join(&body_file)).unwrap();
        assert!(b == body, "body file differs ({small} small bodies before)");
        let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
        let filled = format!("http_late_body_bytes='{}'", base + 1100 - start);
        for want in [
            filled.as_str(),
            "http_bodies_incomplete='0'",
            "http_missing_bytes='0'",
            "gap_bytes='0'",
        ] {
            assert!(report.contains(want), "{want} not in the report:\n{report}");
        }
        assert!(!report.contains("complete='no'"), "{report}");
        let sha = std::process::Command::new("sha256sum")
            .arg(out.join(&body_file))
            .output()
            .unwrap();
        let sha = String::from_utf8(sha.stdout).unwrap();
        let sha = sha.split(' ').next().unwrap().to_string();
        assert!(
            report.contains(&sha),
            "the record's sha256 is not the body's {sha}"
        );
    };

    let direct = d.join("direct");
    ok(&run(&[
        "--max-ooo-bytes",
        "1K",
        "-e",
        "http",
        "-r",
        cap.to_str().unwrap(),
        "-o",
        direct.to_str().unwrap(),
    ]));
    check(&direct);

    let spool = d.join("spool");
    ok(&run(&[
        "-q",
        "--max-ooo-bytes",
        "1K",
        "-r",
        cap.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
    ]));
    let exported = d.join("exported");
    ok(&run(&[
        "-q",
        "-e",
        "http",
        "--spool-export",
        spool.to_str().unwrap(),
        "-o",
        exported.to_str().unwrap(),
    ]));
    check(&exported);
    let _ = std::fs::remove_dir_all(&d);
}

/// Windows of this stream: more than a direction may hold out of order (512 blocks of 1 KiB,
/// the core's default), so the oldest holes are given up as gaps, far more than the four a
/// flow slot remembers.
const WINDOWS: usize = 600;

/// Every KiB of the stream starts with a hole: the rest of each KiB first, in order (past the
/// direction's budget each new KiB gives up the oldest hole, as a gap); then every hole's
/// bytes, late, in an order of their own; FINs.
fn many_gaps_capture(p: &Path) -> Vec<u8> {
    let (c, s) = (client(8), server());
    let (isn_c, isn_s) = (5000u32, 9000u32);
    let d: Vec<u8> = (0..WINDOWS * 1024)
        .map(|i| b'a' + ((i * 7 + i / 1024) % 26) as u8)
        .collect();
    let hole = |k: usize| (k * 1024, k * 1024 + 1 + (k * 389) % 900);
    let mut pc = Pcap::new();
    let mut t = 1_700_000_000_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    pc.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    pc.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    pc.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK, b"");
    let seg = |lo: usize| isn_c + 1 + lo as u32;
    for k in 0..WINDOWS {
        let (_, hi) = hole(k);
        pc.tcp(
            tick(),
            c,
            s,
            seg(hi),
            isn_s + 1,
            ACK,
            &d[hi..(k + 1) * 1024],
        );
    }
    let mut order: Vec<usize> = (0..WINDOWS).collect();
    order.sort_by_key(|&k| (k * 7919) % WINDOWS);
    for k in order {
        let (lo, hi) = hole(k);
        pc.tcp(tick(), c, s, seg(lo), isn_s + 1, ACK, &d[lo..hi]);
    }
    let fin = seg(d.len());
    pc.tcp(tick(), c, s, fin, isn_s + 1, FIN | ACK, b"");
    pc.tcp(tick(), s, c, isn_s + 1, fin + 1, FIN | ACK, b"");
    pc.tcp(tick(), c, s, fin + 1, isn_s + 2, ACK, b"");
    pc.write(p);
    d
}

/// The figure `name='N'` of the report's totals.
#[test]
fn many_gaps_filled_late_land_in_files_and_spool_export() {
    let d = tmp("late-many");
    let cap = d.join("many.pcap");
    let data = many_gaps_capture(&cap);
    let name = format!(
        "010.000.000.008.{:05}-010.009.009.009.00080",
        client(8).port
    );
    let direct = d.join("direct");
    let o = run(&["-r", cap.to_str().unwrap(), "-o", direct.to_str().unwrap()]);
    ok(&o);
    assert!(
        std::fs::read(direct.join(&name)).unwrap() == data,
        "file differs"
    );
    let report = std::fs::read_to_string(direct.join("report.xml")).unwrap();
    // More holes given up than a flow slot remembers, every one of them filled late.
    eprintln!(
        "pool_full {}, late_filled_bytes {}",
        counter(&report, "pool_full"),
        counter(&report, "late_filled_bytes")
    );
    assert!(counter(&report, "pool_full") >= 50, "{report}");
    assert!(counter(&report, "late_filled_bytes") >= 50, "{report}");
    for want in [
        "gap_bytes='0'",
        "conflict_bytes='0'",
        "unclassified_bytes='0'",
        "late_bytes='0'",
    ] {
        assert!(report.contains(want), "{want} not in the report:\n{report}");
    }
    assert!(
        stderr(&o).contains("0 gaps (0 bytes), 0 conflicting bytes"),
        "{}",
        stderr(&o)
    );

    let spool = d.join("spool");
    ok(&run(&[
        "-q",
        "-r",
        cap.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
    ]));
    let exported = d.join("exported");
    ok(&run(&[
        "-q",
        "--spool-export",
        spool.to_str().unwrap(),
        "-o",
        exported.to_str().unwrap(),
    ]));
    assert!(
        std::fs::read(exported.join(&name)).unwrap() == data,
        "exported file differs"
    );
    let report = std::fs::read_to_string(exported.join("report.xml")).unwrap();
    assert!(report.contains("gap_bytes='0'"), "{report}");
    let _ = std::fs::remove_dir_all(&d);
}
