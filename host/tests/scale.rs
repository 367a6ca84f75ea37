//! 200,000 connections open at once, under `ulimit -n 1024`: every byte of all 400,000 files
//! right. The open-file cache and the per-direction buffers make this work; tcpflow 1.6.1
//! keeps one descriptor per flow and fails.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::*;

const FLOWS: u32 = 200_000;

fn name(a: End, b: End) -> String {
    let ip = |e: End| {
        e.ip.iter()
            .map(|o| format!("{o:03}"))
            .collect::<Vec<_>>()
            .join(".")
    };
    format!("{}.{:05}-{}.{:05}", ip(a), a.port, ip(b), b.port)
}

#[test]
fn two_hundred_thousand_concurrent_flows_under_ulimit_1024() {
    let d = tmp("scale");
    let cap = d.join("c.pcap");
    let s_end = server();
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    let msg = |i: u32, side: &str| format!("{side} of flow {i}\n").into_bytes();
    // Every connection opens, then every one sends, then every one closes.
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
    p.write(&cap);
    drop(p);
    let out = d.join("out");
    let mut cmd = bin();
    cmd.args(["-q", "-r"])
        .arg(&cap)
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::null());
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
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut files = 0;
    for i in 0..FLOWS {
        let c = client(i);
        assert_eq!(
            std::fs::read(out.join(name(c, s_end))).unwrap(),
            msg(i, "client"),
            "flow {i}"
        );
        assert_eq!(
            std::fs::read(out.join(name(s_end, c))).unwrap(),
            msg(i, "server"),
            "flow {i}"
        );
        files += 2;
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), files + 1); // + report.xml
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        report.contains(&format!("<max_open_flows>{FLOWS}</max_open_flows>")),
        "every flow open at once"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
