//! Test helpers of the core's unit tests: a conversation scripter over the test kit's frame
//! builders (`tcpflow-tests`), and the storage and contract sink of [`crate::testkit`].

use std::net::{Ipv4Addr, SocketAddr};
use std::vec;
use std::vec::Vec;

use tcpflow_tests::conn::{Conn, LinkOpts};
use tcpflow_tests::link::Dir;

pub use crate::testkit::{Rec, Store};
pub use tcpflow_tests::packet::flags::{ACK, FIN, PSH, RST, SYN};

/// The frames of one IPv4 connection over Ethernet (10.0.0.1:`cport` to 10.0.0.2:80) as raw
/// bytes, with a sequence cursor per side the tests may move (to script holes, overlaps,
/// probes): a thin layer over the tests crate's [`Conn`], which builds the datagrams.
#[derive(Debug, Clone)]
pub struct Conv {
    conn: Conn,
    /// Next sequence number of each side (0: client, 1: server).
    pub seq: [u32; 2],
}

impl Conv {
    pub fn new(cport: u16, isn_c: u32, isn_s: u32) -> Self {
        let client = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), cport));
        let server = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 80));
        Conv {
            // Ethernet, TTL 64, window 65535.
            conn: Conn::new(client, server, isn_c, isn_s, LinkOpts::default()),
            seq: [isn_c, isn_s],
        }
    }

    /// A frame from `side` (0 client, 1 server) with explicit sequence number; its ACK
    /// number is the other side's cursor, whatever the flags.
    pub fn frame_at(&self, side: usize, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let dir = [Dir::C2S, Dir::S2C][side];
        let ip = self
            .conn
            .datagram(dir, flags, seq, self.seq[1 - side], 1, payload);
        // Padded to Ethernet's 60 bytes with 0xEE (never zero, so padding that leaks into a
        // stream shows).
        self.conn.opts.link.encode(dir, &ip)
    }

    /// A frame from `side` at its current sequence number; advances it.
    pub fn send(&mut self, side: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
        let f = self.frame_at(side, self.seq[side], flags, payload);
        let mut n = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            n += 1;
        }
        self.seq[side] = self.seq[side].wrapping_add(n);
        f
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.send(0, SYN, &[]),
            self.send(1, SYN | ACK, &[]),
            self.send(0, ACK, &[]),
        ]
    }

    /// FIN from each side and the last ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.send(0, FIN | ACK, &[]),
            self.send(1, FIN | ACK, &[]),
            self.send(0, ACK, &[]),
        ]
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}
