//! End to end through the engine: captures built here, the binary run on them, whole outputs
//! compared.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

const REQ: &[u8] = b"GET / HTTP/1.0\r\nHost: example\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn c_to_s(n: u32) -> String {
    let c = client(n);
    format!(
        "010.{:03}.{:03}.{:03}.{:05}-010.009.009.009.00080",
        c.ip[1], c.ip[2], c.ip[3], c.port
    )
}

fn s_to_c(n: u32) -> String {
    let c = client(n);
    format!(
        "010.009.009.009.00080-010.{:03}.{:03}.{:03}.{:05}",
        c.ip[1], c.ip[2], c.ip[3], c.port
    )
}

fn one_conversation(path: &Path) {
    let mut p = Pcap::new();
    p.conversation(
        1_264_976_181_000_000,
        client(1),
        server(),
        1000,
        5000,
        REQ,
        RESP,
        16,
    );
    p.write(path);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn one_connection_two_files_and_a_report() {
    let d = tmp("one");
    let cap = d.join("c.pcap");
    one_conversation(&cap);
    let out = d.join("out");
    // A file from an earlier run is overwritten, not appended to or renamed.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(c_to_s(1)), vec![b'x'; 4000]).unwrap();
    let o = run(&[
        "-r",
        s(&cap),
        "-o",
        s(&out),
        "--report-json",
        s(&d.join("r.json")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join(c_to_s(1))).unwrap(), REQ);
    assert_eq!(std::fs::read(out.join(s_to_c(1))).unwrap(), RESP);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            c_to_s(1),
            s_to_c(1),
            "report.html".to_string(),
            "report.xml".to_string()
        ]
    );
    // Modification time: the connection's first packet.
    let m = std::fs::metadata(out.join(c_to_s(1)))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(m, UNIX_EPOCH + Duration::from_micros(1_264_976_181_000_010));
    let x = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(x.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<dfxml xmloutputversion='1.0'>"));
    assert_eq!(x.matches("<fileobject>").count(), 2);
    assert!(x.contains(&format!(
        "<filename>{}</filename>",
        out.join(c_to_s(1)).display()
    )));
    assert!(x.contains(&format!("<filesize>{}</filesize>", REQ.len())));
    assert!(
        x.contains("src_ipn='10.0.0.1' dst_ipn='10.9.9.9' srcport='40001' dstport='80'"),
        "{x}"
    );
    assert!(x.contains("mac_daddr='02:00:00:00:00:02' mac_saddr='02:00:00:00:00:01'"));
    assert!(x.contains("close='fin'"));
    assert!(x.contains("<total_flows>1</total_flows>"));
    assert!(x.trim_end().ends_with("</dfxml>"));
    let j = std::fs::read_to_string(d.join("r.json")).unwrap();
    let lines: Vec<&str> = j.lines().collect();
    assert_eq!(lines.len(), 4, "{j}");
    assert!(lines[0].starts_with("{\"type\":\"creator\""));
    assert!(lines[1].starts_with("{\"type\":\"flow\""));
    assert!(lines[3].starts_with("{\"type\":\"totals\""));
    assert!(
        stderr(&o).starts_with("tcpflow: 12 packets, 1 connections, 2 files"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn compressed_and_standard_input_give_the_same_files() {
    let d = tmp("gz");
    let cap = d.join("c.pcap");
    one_conversation(&cap);
    let raw = std::fs::read(&cap).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(d.join("c.pcap.gz"), gz.finish().unwrap()).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&raw).unwrap();
    std::fs::write(d.join("c.pcap.xz"), xz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&raw).unwrap();
    std::fs::write(d.join("c.pcap.bz2"), bz.finish().unwrap()).unwrap();
    for name in ["c.pcap.gz", "c.pcap.xz", "c.pcap.bz2"] {
        let out = d.join(format!("out-{name}"));
        let o = run(&["-q", "-r", s(&d.join(name)), "-o", s(&out)]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert_eq!(std::fs::read(out.join(c_to_s(1))).unwrap(), REQ, "{name}");
        assert_eq!(std::fs::read(out.join(s_to_c(1))).unwrap(), RESP, "{name}");
    }
    // Standard input, compressed or not.
    for name in ["c.pcap", "c.pcap.gz"] {
        let out = d.join(format!("stdin-{name}"));
        let mut child = bin()
            .args(["-q", "-r", "-", "-o", s(&out)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(d.join(name)).unwrap())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(std::fs::read(out.join(s_to_c(1))).unwrap(), RESP);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn truncated_capture_is_an_error_but_flows_are_written() {
    let d = tmp("trunc");
    let cap = d.join("c.pcap");
    one_conversation(&cap);
    let mut raw = std::fs::read(&cap).unwrap();
    // Append a record header that promises more bytes than follow.
    raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&cap, &raw).unwrap();
    let out = d.join("out");
    let o = run(&["-r", s(&cap), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "tcpflow: {}: bad packet 13 (after 12 good ones): ",
            cap.display()
        )),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join(c_to_s(1))).unwrap(), REQ);
    assert_eq!(std::fs::read(out.join(s_to_c(1))).unwrap(), RESP);
    assert!(std::fs::read_to_string(out.join("report.xml"))
        .unwrap()
        .contains("read_errors='1'"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn console_output() {
    let d = tmp("console");
    let cap = d.join("c.pcap");
    let mut p = Pcap::new();
    p.conversation(
        1_000_000,
        client(1),
        server(),
        1000,
        5000,
        b"ab\x01",
        b"xyz",
        100,
    );
    p.write(&cap);
    let o = run(&["-c", "-r", s(&cap)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: ab\\x01\n{}: xyz\n", c_to_s(1), s_to_c(1))
    );
    let o = run(&["-c", "-s", "-r", s(&cap)]);
    assert_eq!(
        stdout(&o),
        format!("{}: ab.\n{}: xyz\n", c_to_s(1), s_to_c(1))
    );
    let o = run(&["-C", "-0", "-B", "-r", s(&cap)]);
    assert_eq!(o.stdout, b"ab\x01xyz");
    let o = run(&["-C", "-D", "-r", s(&cap)]);
    assert_eq!(stdout(&o), "0000: 6162 01 ab.\n\n0000: 7879 7a xyz\n\n");
    // No files in console mode.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

/// Thousands of connections open at once, written through 8 descriptors: every byte right.
#[test]
fn many_concurrent_connections_few_descriptors() {
    let d = tmp("many");
    let cap = d.join("c.pcap");
    let n = 3000u32;
    let mut p = Pcap::new();
    let (s_end, mut t) = (server(), 1_000_000u64);
    let body = |i: u32, k: u32| -> Vec<u8> { format!("flow {i} chunk {k};").into_bytes() };
    let mut seqs = vec![(1000u32, 9000u32); n as usize];
    for i in 0..n {
        t += 1;
        p.tcp(t, client(i), s_end, 999, 0, SYN, b"");
        p.tcp(t, s_end, client(i), 8999, 1000, SYN | ACK, b"");
        p.tcp(t, client(i), s_end, 1000, 9000, ACK, b"");
    }
    for k in 0..5 {
        for i in 0..n {
            t += 1;
            let (cs, ss) = seqs[i as usize];
            let a = body(i, k);
            let b = body(i + 100_000, k);
            p.tcp(t, client(i), s_end, cs, ss, ACK | PSH, &a);
            p.tcp(t, s_end, client(i), ss, cs + a.len() as u32, ACK | PSH, &b);
            seqs[i as usize] = (cs + a.len() as u32, ss + b.len() as u32);
        }
    }
    for i in 0..n {
        t += 1;
        let (cs, ss) = seqs[i as usize];
        p.tcp(t, client(i), s_end, cs, ss, RST, b"");
    }
    p.write(&cap);
    let out = d.join("out");
    // 1 KiB of buffers in all: data is written and files reopened all the time.
    let o = run(&[
        "-q",
        "-f",
        "8",
        "--buffer-mb",
        "1",
        "-r",
        s(&cap),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for i in 0..n {
        let want_a: Vec<u8> = (0..5).flat_map(|k| body(i, k)).collect();
        let want_b: Vec<u8> = (0..5).flat_map(|k| body(i + 100_000, k)).collect();
        assert_eq!(
            std::fs::read(out.join(c_to_s(i))).unwrap(),
            want_a,
            "flow {i}"
        );
        assert_eq!(
            std::fs::read(out.join(s_to_c(i))).unwrap(),
            want_b,
            "flow {i}"
        );
    }
    let x = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert_eq!(x.matches("<fileobject>").count(), 2 * n as usize);
    assert!(x.contains(&format!("files_written='{}'", 2 * n)));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn max_bytes_unprocessed_and_finishing_files() {
    let d = tmp("misc");
    let cap = d.join("a.pcap");
    let mut p = Pcap::new();
    // Connection 1 starts here and ends in the -R file.
    let (c, sv) = (client(1), server());
    p.tcp(10, c, sv, 99, 0, SYN, b"");
    p.tcp(20, sv, c, 499, 100, SYN | ACK, b"");
    p.tcp(30, c, sv, 100, 500, ACK | PSH, b"0123456789");
    // Not TCP: an ARP frame goes to -w.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    p.frame(40, &arp);
    p.write(&cap);
    let fin = d.join("b.pcap");
    let mut q = Pcap::new();
    q.tcp(50, c, sv, 110, 500, ACK | PSH, b"abcdef");
    q.tcp(60, c, sv, 116, 500, FIN | ACK, b"");
    // Connection 2 starts in the -R file: not written.
    q.conversation(70, client(2), sv, 1, 2, b"late", b"ignored", 100);
    q.write(&fin);
    let out = d.join("out");
    let w = d.join("unprocessed.pcap");
    let o = run(&[
        "-q",
        "-b",
        "12",
        "-r",
        s(&cap),
        "-R",
        s(&fin),
        "-o",
        s(&out),
        "-w",
        s(&w),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join(c_to_s(1))).unwrap(), b"0123456789ab");
    assert!(!out.join(c_to_s(2)).exists());
    assert!(!out.join(s_to_c(2)).exists());
    let x = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(x.contains("truncated_bytes='4'"), "{x}");
    assert!(x.contains("flows_ignored_late='1'"), "{x}");
    assert!(x.contains("unprocessed_written='1'"), "{x}");
    // The -w file is a capture holding the ARP frame.
    let wb = std::fs::read(&w).unwrap();
    assert_eq!(wb.len(), 24 + 16 + arp.len());
    std::fs::remove_dir_all(&d).unwrap();
}
