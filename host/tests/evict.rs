//! A long connection evicted again and again by a SYN flood (issue 16): its bytes all go to
//! its one file, at their offsets, and the report has no gap.

mod common;
use common::*;

/// Distinct bytes per offset, so a piece written at the wrong place shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

#[test]
fn a_syn_flood_does_not_split_a_long_connection() {
    let (c, s) = (
        End {
            ip: [192, 168, 1, 1],
            port: 33000,
            mac: [2, 0, 0, 0, 0, 1],
        },
        server(),
    );
    let data = payload(300 * 1000);
    let reply = payload(300 * 10);
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    let (isn_c, isn_s) = (1_000_000u32, 5_000_000u32);
    p.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    p.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    p.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK, b"");
    let mut flood = 0u32;
    for (k, chunk) in data.chunks(1000).enumerate() {
        let (sc, ss) = (isn_c + 1 + (k * 1000) as u32, isn_s + 1 + (k * 10) as u32);
        p.tcp(tick(), c, s, sc, ss, ACK | PSH, chunk);
        p.tcp(
            tick(),
            s,
            c,
            ss,
            sc + 1000,
            ACK | PSH,
            &reply[k * 10..k * 10 + 10],
        );
        // More new connections than the table holds twice over, between each two segments:
        // the connection, active since it was put at the front, goes back there once, and is
        // evicted when it reaches the tail again (second-chance order).
        for _ in 0..200 {
            flood += 1;
            p.tcp(tick(), client(flood), s, flood, 0, SYN, b"");
        }
    }
    let (sc, ss) = (
        isn_c + 1 + data.len() as u32,
        isn_s + 1 + reply.len() as u32,
    );
    p.tcp(tick(), c, s, sc, ss, FIN | ACK, b"");
    p.tcp(tick(), s, c, ss, sc + 1, FIN | ACK, b"");
    p.tcp(tick(), c, s, sc + 1, ss + 1, ACK, b"");

    let dir = tmp("evict");
    let input = dir.join("flood.pcap");
    p.write(&input);
    let out = dir.join("out");
    let o = run(&[
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--max-flows",
        "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join(flow_name(c, s))).unwrap(), data);
    assert_eq!(std::fs::read(out.join(flow_name(s, c))).unwrap(), reply);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("192.168.001.001") || n.contains("-192.168.001.001"))
        .collect();
    files.sort();
    let mut want = [flow_name(c, s), flow_name(s, c)];
    want.sort();
    assert_eq!(files, want);
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert_eq!(counter(&report, "gap_bytes"), 0);
    assert_eq!(counter(&report, "name_errors"), 0);
    assert!(
        counter(&report, "resumed") >= 299,
        "{}",
        counter(&report, "resumed")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// When a connection's bytes cannot be written (one 4-tuple used by 1003 connections, each
/// forgotten by the table before the next, so each needs another name, and after 1000
/// tries there is none): the bytes are counted, reported, and the exit status is 1.
#[test]
fn bytes_without_a_file_name_are_counted_and_fail_the_run() {
    let (c, s) = (
        End {
            ip: [192, 168, 1, 2],
            port: 33001,
            mac: [2, 0, 0, 0, 0, 1],
        },
        server(),
    );
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    let mut flood = 0u32;
    let mut syn_flood = |p: &mut Pcap, n: usize, t: u64| {
        for i in 0..n {
            flood += 1;
            p.tcp(t + i as u64, client(flood), s, flood, 0, SYN, b"");
        }
    };
    syn_flood(&mut p, 64, tick());
    for k in 0..1003u32 {
        let isn = 10_000 * k;
        p.tcp(tick(), c, s, isn, 0, SYN, b"");
        p.tcp(
            tick(),
            c,
            s,
            isn + 1,
            0,
            ACK | PSH,
            format!("conn {k:04}.").as_bytes(),
        );
        p.tcp(tick(), c, s, isn + 11, 0, FIN | ACK, b"");
        p.tcp(tick(), s, c, 7, isn + 12, FIN | ACK, b"");
        // The finished connection's record goes to the next new one.
        syn_flood(&mut p, 1, tick());
        tick();
    }
    let dir = tmp("noname");
    let input = dir.join("reuse.pcap");
    p.write(&input);
    let out = dir.join("out");
    let o = run(&[
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--max-flows",
        "64",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 directions not written (30 bytes)"),
        "{}",
        stderr(&o)
    );
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert_eq!(counter(&report, "name_errors"), 3);
    assert_eq!(counter(&report, "unwritten_bytes"), 30);
    let base = flow_name(c, s);
    assert_eq!(std::fs::read(out.join(&base)).unwrap(), b"conn 0000.");
    assert_eq!(
        std::fs::read(out.join(format!("{base}c999"))).unwrap(),
        b"conn 0999."
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A long HTTP download evicted again and again by a SYN flood: with `-e http` its bodies come
/// out whole (the scanner keeps an evicted connection's state until it is picked up again),
/// and `-e md5` hashes the whole flow file, not the part after the last eviction.
#[test]
fn a_syn_flood_does_not_cut_http_bodies_or_digests() {
    let (c, s) = (
        End {
            ip: [192, 168, 1, 3],
            port: 33002,
            mac: [2, 0, 0, 0, 0, 1],
        },
        server(),
    );
    let request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let first = payload(120 * 1000);
    let second = payload(90 * 1000 + 7);
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", first.len()).into_bytes();
    response.extend_from_slice(&first);
    response.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in second.chunks(3000) {
        response.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        response.extend_from_slice(piece);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");

    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    let (isn_c, isn_s) = (2_000_000u32, 7_000_000u32);
    p.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    p.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    let sc = isn_c + 1 + request.len() as u32;
    p.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK | PSH, request);
    let mut flood = 0u32;
    for (k, chunk) in response.chunks(1000).enumerate() {
        let ss = isn_s + 1 + (k * 1000) as u32;
        p.tcp(tick(), s, c, ss, sc, ACK | PSH, chunk);
        // More new connections than the table holds, between each two segments.
        for _ in 0..100 {
            flood += 1;
            p.tcp(tick(), client(flood), s, flood, 0, SYN, b"");
        }
    }
    let ss = isn_s + 1 + response.len() as u32;
    p.tcp(tick(), s, c, ss, sc, FIN | ACK, b"");
    p.tcp(tick(), c, s, sc, ss + 1, FIN | ACK, b"");

    let dir = tmp("evict-http");
    let input = dir.join("flood.pcap");
    p.write(&input);
    let out = dir.join("out");
    let o = run(&[
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--max-flows",
        "64",
        "-e",
        "http",
        "-e",
        "md5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let flow = flow_name(s, c);
    // (Compared without printing: a difference would print megabytes.)
    assert!(
        std::fs::read(out.join(&flow)).unwrap() == response,
        "flow file differs"
    );
    let body = |n: u32| std::fs::read(out.join(format!("{flow}-HTTPBODY-{n:03}"))).unwrap();
    assert!(body(1) == first, "body 1 differs");
    assert!(body(2) == second, "body 2 differs");
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(counter(&report, "resumed") >= 200, "{report}");
    assert_eq!(counter(&report, "http_bodies"), 2);
    assert_eq!(counter(&report, "http_bodies_incomplete"), 0);
    // Each close of the download (one per eviction, and the last) is a record of its own;
    // the last one's digest is of the whole file.
    let digests: Vec<&str> = report
        .split("<hashdigest type='MD5'>")
        .skip(1)
        .map(|r| r.split('<').next().unwrap())
        .collect();
    let md5sum = std::process::Command::new("md5sum")
        .arg(out.join(&flow))
        .output()
        .unwrap();
    let whole = String::from_utf8(md5sum.stdout).unwrap();
    let whole = whole.split(' ').next().unwrap();
    assert!(
        digests.contains(&whole),
        "no record has the file's md5 {whole}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
