//! Helpers for the integration tests: a tiny pcap writer and a way to run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;
pub const RST: u8 = 0x04;

/// A pcap file being built (Ethernet, microsecond timestamps).
pub struct Pcap {
    pub bytes: Vec<u8>,
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
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
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        Pcap { bytes: b }
    }

    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) {
        self.bytes
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(frame);
    }

    /// An Ethernet/IPv4/TCP segment from `s` to `d`.
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
        let mut f = Vec::new();
        f.extend_from_slice(&d.mac);
        f.extend_from_slice(&s.mac);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 20 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        ip.extend_from_slice(&s.ip);
        ip.extend_from_slice(&d.ip);
        let c = csum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&s.port.to_be_bytes());
        tcp.extend_from_slice(&d.port.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&s.ip);
        pseudo.extend_from_slice(&d.ip);
        pseudo.extend_from_slice(&[0, 6, (tcp.len() >> 8) as u8, tcp.len() as u8]);
        pseudo.extend_from_slice(&tcp);
        let c = csum(&pseudo);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&tcp);
        self.frame(ts_us, &f);
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
        std::fs::write(p, &self.bytes).unwrap();
    }
}

pub fn client(n: u32) -> End {
    End {
        ip: [10, 0, (n >> 8) as u8, n as u8],
        port: 40000 + (n % 20000) as u16,
        mac: [2, 0, 0, 0, 0, 1],
    }
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
