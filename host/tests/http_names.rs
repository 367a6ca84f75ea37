//! HTTP body files are named after the flow file as the file writer really named it (issue
//! 18): when the 4-tuple's name is taken (the engine forgot an earlier connection on it, so
//! both have the same connection index), the flow file gets the next `cN` and so do its
//! bodies, instead of writing over the earlier connection's body files.

mod common;
use common::*;

/// One GET and its response on `c` -> `s`, from SYN to both FINs.
fn exchange(p: &mut Pcap, t: &mut u64, c: End, s: End, isn: (u32, u32), body: &[u8]) {
    let mut tick = || {
        *t += 10;
        *t
    };
    let request = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(body);
    let (ic, is) = isn;
    p.tcp(tick(), c, s, ic, 0, SYN, b"");
    p.tcp(tick(), s, c, is, ic + 1, SYN | ACK, b"");
    p.tcp(tick(), c, s, ic + 1, is + 1, ACK | PSH, request);
    let sc = ic + 1 + request.len() as u32;
    p.tcp(tick(), s, c, is + 1, sc, ACK | PSH, &response);
    let ss = is + 1 + response.len() as u32;
    p.tcp(tick(), s, c, ss, sc, FIN | ACK, b"");
    p.tcp(tick(), c, s, sc, ss + 1, FIN | ACK, b"");
    p.tcp(tick(), s, c, ss + 1, sc + 1, ACK, b"");
}

#[test]
fn bodies_follow_a_flow_file_named_with_the_next_connection_index() {
    let c = End {
        ip: [192, 168, 1, 7],
        port: 40404,
        mac: [2, 0, 0, 0, 0, 7],
    };
    let s = server();
    let (first, second) = (vec![b'1'; 3000], vec![b'2'; 2000]);
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    exchange(&mut p, &mut t, c, s, (1_000, 9_000), &first);
    // More connections than the table holds: the engine forgets the first one, so the next
    // on its 4-tuple starts again at connection index 0.
    for n in 0..400 {
        t += 10;
        p.tcp(t, client(n + 1), s, n, 0, SYN, b"");
    }
    exchange(&mut p, &mut t, c, s, (5_000, 77_000), &second);

    let dir = tmp("http-names");
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
        "-e",
        "http",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let flow = flow_name(s, c);
    let read = |n: &str| std::fs::read(out.join(n)).unwrap_or_default();
    // The second connection's flow file took the next name; its body goes with it.
    assert!(read(&flow).ends_with(&first), "first flow file");
    assert!(
        read(&format!("{flow}c1")).ends_with(&second),
        "second flow file"
    );
    // (Compared without printing the bytes.)
    assert!(read(&format!("{flow}-HTTPBODY-001")) == first, "first body");
    assert!(
        read(&format!("{flow}c1-HTTPBODY-001")) == second,
        "second body"
    );
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert_eq!(counter(&report, "http_bodies"), 2, "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
