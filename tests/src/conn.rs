//! A TCP conversation scripter: emits the packets of one connection and records what each side
//! sent.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::link::{Dir, Link};
use crate::packet::{self, flags, Ext, Tcp, PROTO_TCP};

/// Data carried by a packet, for the expected-output model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    /// Stream offset of the first byte (0 = the byte after the SYN).
    pub off: u64,
    /// The payload bytes.
    pub data: Vec<u8>,
}

/// Membership of a packet in a set of IP fragments of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frag {
    /// Unique per datagram.
    pub group: u64,
    /// Index of this piece.
    pub index: usize,
    /// Number of pieces.
    pub count: usize,
}

/// One packet to be written to a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    /// Capture time in microseconds since the epoch.
    pub ts_us: u64,
    /// Id of the `Conn` that made it.
    pub conn: u32,
    pub dir: Dir,
    pub link: Link,
    /// The IP datagram (or fragment), without link header or padding.
    pub ip: Vec<u8>,
    /// Stream data a correct reassembler takes from this packet (`None` for packets without
    /// payload and for keep-alive probes, whose byte is not stream data).
    pub seg: Option<Seg>,
    pub frag: Option<Frag>,
}

impl Pkt {
    /// The frame as it goes into the capture (link header, padding).
    pub fn frame(&self) -> Vec<u8> {
        self.link.encode(self.dir, &self.ip)
    }

    /// Bytes before the TCP payload in the frame (only meaningful for unfragmented packets
    /// with a `seg`).
    pub fn payload_start(&self) -> usize {
        let data = self.seg.as_ref().map_or(0, |s| s.data.len());
        self.link.header_len() + self.ip.len() - data
    }

    /// Sets the IPv4 total length to 0 as TSO/LSO captures show it.
    pub fn zero_ipv4_total_length(&mut self) {
        packet::ipv4_zero_total_length(&mut self.ip);
    }
}

/// Link and IP options of a connection, and its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOpts {
    pub link: Link,
    /// IPv4 options (padded with EOL to a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers, in order, before TCP.
    pub ipv6_ext: Vec<Ext>,
    pub ttl: u8,
    pub window: u16,
    /// Timestamp of the first packet, microseconds since the epoch.
    pub start_us: u64,
    /// Time between packets.
    pub step_us: u64,
}

/// 2023-11-14T22:13:20Z: the default start of every capture.
pub const DEFAULT_START_US: u64 = 1_700_000_000_000_000;

impl Default for LinkOpts {
    fn default() -> Self {
        LinkOpts {
            link: Link::ethernet(),
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            ttl: 64,
            window: 65535,
            start_us: DEFAULT_START_US,
            step_us: 1000,
        }
    }
}

impl LinkOpts {
    pub fn new(link: Link) -> Self {
        LinkOpts {
            link,
            ..Default::default()
        }
    }
    pub fn start(mut self, start_us: u64) -> Self {
        self.start_us = start_us;
        self
    }
    pub fn ipv4_options(mut self, o: &[u8]) -> Self {
        self.ipv4_options = o.to_vec();
        self
    }
    pub fn ipv6_ext(mut self, e: Vec<Ext>) -> Self {
        self.ipv6_ext = e;
        self
    }
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// One TCP connection between a client and a server.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub opts: LinkOpts,
    isn: [u32; 2],
    sent: [Vec<u8>; 2],
    fin: [bool; 2],
    ip_id: [u16; 2],
    frag_ctr: u32,
    now: u64,
}

impl Conn {
    pub fn new(
        client: SocketAddr,
        server: SocketAddr,
        isn_c: u32,
        isn_s: u32,
        opts: LinkOpts,
    ) -> Conn {
        assert_eq!(
            client.is_ipv4(),
            server.is_ipv4(),
            "client and server must use the same IP version"
        );
        Conn {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client,
            server,
            now: opts.start_us,
            opts,
            isn: [isn_c, isn_s],
            sent: [Vec::new(), Vec::new()],
            fin: [false, false],
            ip_id: [0x1000, 0x8000],
            frag_ctr: 0,
        }
    }

    /// Everything `dir` has sent so far: the true stream of that direction.
    pub fn stream(&self, dir: Dir) -> &[u8] {
        &self.sent[dir.idx()]
    }

    /// The (source, destination) of packets in `dir`.
    pub fn endpoints(&self, dir: Dir) -> (SocketAddr, SocketAddr) {
        match dir {
            Dir::C2S => (self.client, self.server),
            Dir::S2C => (self.server, self.client),
        }
    }

    /// Sequence number of stream offset `off` in `dir`.
    pub fn seq(&self, dir: Dir, off: u64) -> u32 {
        self.isn[dir.idx()].wrapping_add(1).wrapping_add(off as u32)
    }

    /// The next sequence number `dir` would send.
    pub fn next_seq(&self, dir: Dir) -> u32 {
        let i = dir.idx();
        self.seq(dir, self.sent[i].len() as u64)
            .wrapping_add(self.fin[i] as u32)
    }

    /// Current clock value (timestamp of the next packet).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the clock forward.
    pub fn wait(&mut self, us: u64) {
        self.now += us;
    }

    fn tick(&mut self) -> u64 {
        let t = self.now;
        self.now += self.opts.step_us;
        t
    }

    /// Builds one packet from `dir` (the ACK number, when the ACK flag is set, acknowledges
    /// everything the other side sent).
    pub fn packet(&mut self, dir: Dir, fl: u8, seq: u32, payload: &[u8], seg: Option<Seg>) -> Pkt {
        let ack = if fl & flags::ACK != 0 {
            self.next_seq(dir.other())
        } else {
            0
        };
        let id = self.ip_id[dir.idx()];
        self.ip_id[dir.idx()] = id.wrapping_add(1);
        let ip = self.datagram(dir, fl, seq, ack, id, payload);
        Pkt {
            ts_us: self.tick(),
            conn: self.id,
            dir,
            link: self.opts.link.clone(),
            ip,
            seg,
            frag: None,
        }
    }

    /// The IP datagram of a segment from `dir` with every header field given (nothing
    /// recorded, the clock not moved): for scripts that keep their own sequence numbers.
    pub fn datagram(
        &self,
        dir: Dir,
        fl: u8,
        seq: u32,
        ack: u32,
        ip_id: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let (src, dst) = self.endpoints(dir);
        let h = Tcp {
            src_port: src.port(),
            dst_port: dst.port(),
            seq,
            ack,
            flags: fl,
            window: self.opts.window,
        };
        let tcp = packet::tcp_segment(src.ip(), dst.ip(), &h, payload);
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => packet::ipv4_packet(
                s,
                d,
                ip_id,
                self.opts.ttl,
                &self.opts.ipv4_options,
                PROTO_TCP,
                &tcp,
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                packet::ipv6_packet(s, d, self.opts.ttl, &self.opts.ipv6_ext, PROTO_TCP, &tcp)
            }
            _ => unreachable!(),
        }
    }

    /// SYN from the client.
    pub fn syn(&mut self) -> Pkt {
        self.packet(Dir::C2S, flags::SYN, self.isn[0], &[], None)
    }

    /// SYN from the client carrying `data` (recorded as the first bytes of its stream).
    pub fn syn_with_data(&mut self, data: &[u8]) -> Pkt {
        assert!(self.sent[0].is_empty());
        self.sent[0].extend_from_slice(data);
        let seg = Seg {
            off: 0,
            data: data.to_vec(),
        };
        self.packet(Dir::C2S, flags::SYN, self.isn[0], data, Some(seg))
    }

    /// SYN+ACK from the server.
    pub fn syn_ack(&mut self) -> Pkt {
        self.packet(Dir::S2C, flags::SYN | flags::ACK, self.isn[1], &[], None)
    }

    /// A pure ACK from `dir`.
    pub fn ack(&mut self, dir: Dir) -> Pkt {
        let s = self.next_seq(dir);
        self.packet(dir, flags::ACK, s, &[], None)
    }

    /// SYN, SYN+ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Pkt> {
        vec![self.syn(), self.syn_ack(), self.ack(Dir::C2S)]
    }

    /// `data` sent by `dir` in segments of at most `seg_size` bytes (ACK, PSH on the last).
    pub fn send(&mut self, dir: Dir, data: &[u8], seg_size: usize) -> Vec<Pkt> {
        assert!(seg_size > 0);
        assert!(!self.fin[dir.idx()], "data after FIN");
        let mut out = Vec::new();
        let n = data.len().div_ceil(seg_size);
        for (k, chunk) in data.chunks(seg_size).enumerate() {
            let off = self.sent[dir.idx()].len() as u64;
            self.sent[dir.idx()].extend_from_slice(chunk);
            let fl = flags::ACK | if k + 1 == n { flags::PSH } else { 0 };
            let seq = self.seq(dir, off);
            let seg = Seg {
                off,
                data: chunk.to_vec(),
            };
            out.push(self.packet(dir, fl, seq, chunk, Some(seg)));
        }
        out
    }

    /// A segment from `dir` carrying `data` at stream offset `off`, NOT recorded as sent
    /// (for retransmissions with different bytes and overlaps).
    pub fn segment_at(&mut self, dir: Dir, off: u64, data: &[u8]) -> Pkt {
        let seq = self.seq(dir, off);
        let seg = Seg {
            off,
            data: data.to_vec(),
        };
        self.packet(dir, flags::ACK | flags::PSH, seq, data, Some(seg))
    }

    /// A retransmission of `len` already-sent bytes of `dir` at `off`.
    pub fn retransmit(&mut self, dir: Dir, off: u64, len: usize) -> Pkt {
        let o = off as usize;
        let data = self.sent[dir.idx()][o..o + len].to_vec();
        self.segment_at(dir, off, &data)
    }

    /// FIN+ACK from `dir`.
    pub fn fin(&mut self, dir: Dir) -> Pkt {
        let s = self.next_seq(dir);
        self.fin[dir.idx()] = true;
        self.packet(dir, flags::FIN | flags::ACK, s, &[], None)
    }

    /// RST+ACK from `dir`.
    pub fn rst(&mut self, dir: Dir) -> Pkt {
        let s = self.next_seq(dir);
        self.packet(dir, flags::RST | flags::ACK, s, &[], None)
    }

    /// A keep-alive probe from `dir`: one garbage byte at sequence next-1. The byte differs
    /// from the real byte at that offset; it is not stream data.
    pub fn keepalive(&mut self, dir: Dir) -> Pkt {
        let s = self.next_seq(dir).wrapping_sub(1);
        let garbage = match self.sent[dir.idx()].last() {
            Some(0) => 0x5a,
            _ => 0,
        };
        self.packet(dir, flags::ACK, s, &[garbage], None)
    }

    /// Splits `pkt` (a packet of this connection) into IP fragments at the offsets `cuts`
    /// (multiples of 8 into the fragmentable part). The pieces come in order, 1 us apart.
    pub fn fragment(&mut self, pkt: &Pkt, cuts: &[usize]) -> Vec<Pkt> {
        self.frag_ctr += 1;
        // derived from the connection, not its process-wide id, so output is reproducible
        let ident =
            self.isn[0].rotate_left(8) ^ ((self.client.port() as u32) << 16) ^ self.frag_ctr;
        let pieces = if pkt.ip[0] >> 4 == 4 {
            packet::ipv4_fragment(&pkt.ip, cuts)
        } else {
            packet::ipv6_fragment(&pkt.ip, cuts, ident)
        };
        let count = pieces.len();
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, ip)| Pkt {
                ts_us: pkt.ts_us + index as u64,
                ip,
                frag: Some(Frag {
                    group: ((self.id as u64) << 32) | self.frag_ctr as u64,
                    index,
                    count,
                }),
                ..pkt.clone()
            })
            .collect()
    }
}

/// Sets timestamps in list order: `start_us`, then `step_us` apart.
pub fn retime(pkts: &mut [Pkt], start_us: u64, step_us: u64) {
    for (i, p) in pkts.iter_mut().enumerate() {
        p.ts_us = start_us + i as u64 * step_us;
    }
}

/// Makes timestamps strictly increasing in list order (a packet earlier than its predecessor
/// gets the predecessor's time plus 1 us), so a reordered list still looks like a capture.
pub fn make_monotonic(pkts: &mut [Pkt]) {
    for i in 1..pkts.len() {
        if pkts[i].ts_us <= pkts[i - 1].ts_us {
            pkts[i].ts_us = pkts[i - 1].ts_us + 1;
        }
    }
}

/// Merges several packet lists by timestamp (stable: ties keep list order).
pub fn merge_by_time(lists: Vec<Vec<Pkt>>) -> Vec<Pkt> {
    let mut all: Vec<Pkt> = lists.into_iter().flatten().collect();
    all.sort_by_key(|p| p.ts_us);
    all
}

/// Reorders `pkts` so that the new list is `order` (indices into the old one). Indices may
/// repeat (duplicates) or be left out (drops).
pub fn permute(pkts: &[Pkt], order: &[usize]) -> Vec<Pkt> {
    order.iter().map(|&i| pkts[i].clone()).collect()
}
