//! Test helpers of the core's unit tests: a conversation scripter over the test kit's frame
//! builders (`tcpflow-tests`), and the storage and contract sink of [`crate::testkit`].

use std::net::Ipv4Addr;
use std::vec;
use std::vec::Vec;

use tcpflow_tests::link::{Dir as Side, Link};
use tcpflow_tests::packet::{ipv4_packet, tcp_segment, Tcp, PROTO_TCP};

pub use crate::testkit::{Rec, Store};
pub use tcpflow_tests::packet::flags::{ACK, FIN, PSH, RST, SYN};

/// Builds the frames of one IPv4 connection over Ethernet, tracking sequence numbers.
#[derive(Debug, Clone)]
pub struct Conv {
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
    /// Next sequence number of each side (0: client, 1: server).
    pub seq: [u32; 2],
}

impl Conv {
    pub fn new(cport: u16, isn_c: u32, isn_s: u32) -> Self {
        Conv {
            client: ([10, 0, 0, 1], cport),
            server: ([10, 0, 0, 2], 80),
            seq: [isn_c, isn_s],
        }
    }

    /// A frame from `side` (0 client, 1 server) with explicit sequence number.
    pub fn frame_at(&self, side: usize, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (s, d) = if side == 0 {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let (src, dst) = (Ipv4Addr::from(s.0), Ipv4Addr::from(d.0));
        let h = Tcp {
            src_port: s.1,
            dst_port: d.1,
            seq,
            ack: self.seq[1 - side],
            flags,
            window: 65535,
        };
        let segment = tcp_segment(src.into(), dst.into(), &h, payload);
        let ip = ipv4_packet(src, dst, 1, 64, &[], PROTO_TCP, &segment);
        // Padded to Ethernet's 60 bytes with 0xEE (never zero, so padding that leaks into a
        // stream shows).
        Link::ethernet().encode([Side::C2S, Side::S2C][side], &ip)
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
