//! Helpers for the integration tests: captures built with the test kit (`tcpflow-tests`) in
//! the shape these tests use, and a way to run the binary.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tcpflow_tests::link::ethernet_frame;
use tcpflow_tests::packet::{ipv4_packet, tcp_segment, Tcp, PROTO_TCP};
use tcpflow_tests::pcap::PcapWriter;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use tcpflow_tests::packet::flags::{ACK, FIN, PSH, RST, SYN};

/// A pcap file being built (Ethernet, microsecond timestamps): the test kit's writer and
/// frame builders (`tcpflow-tests`) behind the calls these tests make.
pub struct Pcap {
    w: PcapWriter,
}

/// One side of a TCP conversation.
#[derive(Clone, Copy, Debug)]
pub struct End {
    pub ip: [u8; 4],
    pub port: u16,
    pub mac: [u8; 6],
}

impl Default for Pcap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pcap {
    pub fn new() -> Pcap {
        Pcap {
            w: PcapWriter::new(tcpflow_tests::linktype::ETHERNET, 65535),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) {
        self.w.write(ts_us, frame);
    }

    /// An Ethernet/IPv4/TCP segment from `s` to `d` (checksums right, padded to 60 bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        ts_us: u64,
        s: End,
        d: End,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let (src, dst) = (Ipv4Addr::from(s.ip), Ipv4Addr::from(d.ip));
        let h = Tcp {
            src_port: s.port,
            dst_port: d.port,
            seq,
            ack,
            flags,
            window: 0xffff,
        };
        let segment = tcp_segment(src.into(), dst.into(), &h, payload);
        let ip = ipv4_packet(src, dst, 1, 64, &[], PROTO_TCP, &segment);
        self.frame(ts_us, &ethernet_frame(s.mac, d.mac, &[], &ip));
    }

    /// A whole connection: handshake, `req` from the client, `resp` from the server (in
    /// segments of at most `mss`), FINs.
    #[allow(clippy::too_many_arguments)]
    pub fn conversation(
        &mut self,
        t0: u64,
        c: End,
        s: End,
        isn_c: u32,
        isn_s: u32,
        req: &[u8],
        resp: &[u8],
        mss: usize,
    ) {
        let mut t = t0;
        let mut tick = || {
            t += 10;
            t
        };
        self.tcp(tick(), c, s, isn_c, 0, SYN, b"");
        self.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
        self.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK, b"");
        let mut sc = isn_c + 1;
        for chunk in req.chunks(mss) {
            self.tcp(tick(), c, s, sc, isn_s + 1, ACK | PSH, chunk);
            sc += chunk.len() as u32;
        }
        let mut ss = isn_s + 1;
        for chunk in resp.chunks(mss) {
            self.tcp(tick(), s, c, ss, sc, ACK | PSH, chunk);
            ss += chunk.len() as u32;
        }
        self.tcp(tick(), c, s, sc, ss, FIN | ACK, b"");
        self.tcp(tick(), s, c, ss, sc + 1, FIN | ACK, b"");
        self.tcp(tick(), c, s, sc + 1, ss + 1, ACK, b"");
    }

    pub fn write(&self, p: &Path) {
        std::fs::write(p, self.bytes()).unwrap();
    }
}

pub fn client(n: u32) -> End {
    End {
        ip: [10, 0, (n >> 8) as u8, n as u8],
        port: 40000 + (n % 20000) as u16,
        mac: [2, 0, 0, 0, 0, 1],
    }
}

/// The default template's name of the direction from `a` to `b` (connection index 0).
pub fn flow_name(a: End, b: End) -> String {
    format!(
        "{:03}.{:03}.{:03}.{:03}.{:05}-{:03}.{:03}.{:03}.{:03}.{:05}",
        a.ip[0], a.ip[1], a.ip[2], a.ip[3], a.port, b.ip[0], b.ip[1], b.ip[2], b.ip[3], b.port
    )
}

pub fn server() -> End {
    End {
        ip: [10, 9, 9, 9],
        port: 80,
        mac: [2, 0, 0, 0, 0, 2],
    }
}

/// A fresh folder under the target's temp area.
pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcpflow-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcpflow"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of counter `name` in a report.xml (an attribute `name='N'`).
pub fn counter(report: &str, name: &str) -> u64 {
    let open = format!(" {name}='");
    let at = report
        .find(&open)
        .unwrap_or_else(|| panic!("{name} not in the report:\n{report}"))
        + open.len();
    let len = report[at..].find('\'').unwrap();
    report[at..at + len].parse().unwrap()
}
