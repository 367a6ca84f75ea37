//! Live capture on the loopback interface: a real TCP exchange on 127.0.0.1, then SIGINT (Ctrl-C).
//! Needs capture rights (root or CAP_NET_RAW); skipped without them, a failure under CI.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn loopback_capture_until_sigint() {
    let d = tmp("live");
    let out = d.join("out");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let child = bin()
        .args(["-i", "lo", "-o", out.to_str().unwrap(), &filter])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.write_all(b"ping from the client").unwrap();
    let mut buf = [0u8; 20];
    s.read_exact(&mut buf).unwrap();
    s.write_all(b"pong").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    drop(c);
    drop(s);
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    if e.contains("cannot capture on lo") {
        std::fs::remove_dir_all(&d).unwrap();
        tcpflow_tests::cannot_run(format_args!("no capture rights here ({e})"));
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{e}");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
        .unwrap()
        .map(|x| x.unwrap().path())
        .filter(|p| {
            !["report.xml", "report.html"].contains(&p.file_name().unwrap().to_str().unwrap())
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    let server = format!("127.000.000.001.{port:05}");
    assert_eq!(files.len(), 2, "{files:?}");
    let to_server = files
        .iter()
        .find(|(n, _)| n.ends_with(&server))
        .expect("client to server file");
    assert_eq!(to_server.1, b"ping from the client");
    let to_client = files
        .iter()
        .find(|(n, _)| n.starts_with(&server))
        .expect("server to client file");
    assert_eq!(to_client.1, b"pong");
    let x = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(x.contains("pcap_received="), "{x}");
    assert!(x.trim_end().ends_with("</dfxml>"));
    std::fs::remove_dir_all(&d).unwrap();
}
