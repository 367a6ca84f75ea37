//! The test cases written to `testdata/` by `gen-testdata`.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use crate::conn::{make_monotonic, merge_by_time, Conn, LinkOpts, Pkt};
use crate::expected::{expected_files, ExpectedFile};
use crate::link::{Dir, Link, Radio, Vlan, Wifi};
use crate::packet::Ext;
use crate::pcap::{PcapWriter, PcapngWriter};

const C2S: Dir = Dir::C2S;
const S2C: Dir = Dir::S2C;
/// Snap length written in the header of captures that are not cut.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Capture file format of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

/// One case: a capture and the connections that made it.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// One line: what the case checks.
    pub about: &'static str,
    /// Where the expected output is a choice of policy, what was chosen.
    pub policy: Option<&'static str>,
    /// Where `tshark -z follow,tcp,raw` (via corpus/tools/tshark-flows) disagrees, and why.
    pub tshark: Option<&'static str>,
    pub format: Format,
    pub snaplen: u32,
    pub linktype: u32,
    pub conns: Vec<Conn>,
    /// Packets in capture order.
    pub pkts: Vec<Pkt>,
}

impl Case {
    /// A pcap case; timestamps are made strictly increasing in capture order.
    pub fn new(
        name: &'static str,
        about: &'static str,
        conns: Vec<Conn>,
        mut pkts: Vec<Pkt>,
    ) -> Case {
        assert!(!pkts.is_empty());
        let linktype = pkts[0].link.linktype();
        assert!(
            pkts.iter().all(|p| p.link.linktype() == linktype),
            "{name}: one link type per capture"
        );
        make_monotonic(&mut pkts);
        Case {
            name,
            about,
            policy: None,
            tshark: None,
            format: Format::Pcap,
            snaplen: DEFAULT_SNAPLEN,
            linktype,
            conns,
            pkts,
        }
    }

    pub fn policy(mut self, p: &'static str) -> Case {
        self.policy = Some(p);
        self
    }

    pub fn tshark(mut self, t: &'static str) -> Case {
        self.tshark = Some(t);
        self
    }

    pub fn snaplen(mut self, s: u32) -> Case {
        self.snaplen = s;
        self
    }

    pub fn pcapng(mut self) -> Case {
        self.format = Format::Pcapng;
        self
    }

    /// File name of the capture inside the case folder.
    pub fn input_name(&self) -> &'static str {
        match self.format {
            Format::Pcap => "input.pcap",
            Format::Pcapng => "input.pcapng",
        }
    }

    /// The capture file's bytes.
    pub fn capture(&self) -> Vec<u8> {
        match self.format {
            Format::Pcap => {
                let mut w = PcapWriter::new(self.linktype, self.snaplen);
                for p in &self.pkts {
                    w.write(p.ts_us, &p.frame());
                }
                w.into_bytes()
            }
            Format::Pcapng => {
                let mut w = PcapngWriter::new(self.linktype as u16, self.snaplen);
                for p in &self.pkts {
                    w.write(p.ts_us, &p.frame());
                }
                w.into_bytes()
            }
        }
    }

    /// The files a correct tool writes for this capture.
    pub fn expected(&self) -> Vec<ExpectedFile> {
        let conns: Vec<&Conn> = self.conns.iter().collect();
        expected_files(&conns, &self.pkts, self.snaplen)
    }

    /// Writes `root/<name>/input.pcap[ng]` and `root/<name>/expected/*`, replacing what was
    /// there.
    pub fn write(&self, root: &Path) -> io::Result<()> {
        let dir = root.join(self.name);
        let exp = dir.join("expected");
        if exp.exists() {
            fs::remove_dir_all(&exp)?;
        }
        for f in ["input.pcap", "input.pcapng"] {
            if dir.join(f).exists() {
                fs::remove_file(dir.join(f))?;
            }
        }
        fs::create_dir_all(&exp)?;
        fs::write(dir.join(self.input_name()), self.capture())?;
        for f in self.expected() {
            fs::write(exp.join(&f.name), &f.data)?;
        }
        Ok(())
    }
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Printable text: lines of 63 characters and `\n`.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,";
    let mut r = Rng::new(seed);
    (0..len)
        .map(|i| {
            if i % 64 == 63 {
                b'\n'
            } else {
                A[(r.next_u64() >> 40) as usize % A.len()]
            }
        })
        .collect()
}

/// Binary data without NUL bytes (so a hole of NULs is easy to see).
pub fn binary(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len)
        .map(|_| 1 + ((r.next_u64() >> 32) % 255) as u8)
        .collect()
}

pub fn http_get(path: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tcpflow-testgen/1\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

pub fn http_response(seed: u64, body_len: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(&text(seed, body_len));
    r
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Seconds after the default start, in microseconds.
fn at(secs: u64) -> u64 {
    crate::conn::DEFAULT_START_US + secs * 1_000_000
}

/// The closing sequence: server FIN, client FIN (acking it), server ACK.
pub fn close(c: &mut Conn) -> Vec<Pkt> {
    vec![c.fin(S2C), c.fin(C2S), c.ack(S2C)]
}

/// Handshake, request, ACK, response (client ACKs every second segment), close.
pub fn exchange(c: &mut Conn, req: &[u8], resp: &[u8], mss: usize) -> Vec<Pkt> {
    let mut v = c.handshake();
    v.extend(c.send(C2S, req, mss));
    v.push(c.ack(S2C));
    for (i, p) in c.send(S2C, resp, mss).into_iter().enumerate() {
        v.push(p);
        if i % 2 == 1 {
            v.push(c.ack(C2S));
        }
    }
    v.push(c.ack(C2S));
    v.extend(close(c));
    v
}

fn http_conn(
    client: &str,
    server: &str,
    isn: u32,
    opts: LinkOpts,
    seed: u64,
    body: usize,
) -> (Conn, Vec<Pkt>) {
    let mut c = Conn::new(sa(client), sa(server), isn, isn ^ 0x5a5a_0000, opts);
    let host = sa(server).ip().to_string();
    let p = exchange(
        &mut c,
        &http_get(&format!("/file{seed}"), &host),
        &http_response(seed, body),
        1448,
    );
    (c, p)
}

fn one(name: &'static str, about: &'static str, (c, p): (Conn, Vec<Pkt>)) -> Case {
    Case::new(name, about, vec![c], p)
}

fn many(name: &'static str, about: &'static str, flows: Vec<(Conn, Vec<Pkt>)>) -> Case {
    let (conns, lists): (Vec<Conn>, Vec<Vec<Pkt>>) = flows.into_iter().unzip();
    Case::new(name, about, conns, merge_by_time(lists))
}

fn basic() -> Case {
    one(
        "basic",
        "HTTP-like exchange over Ethernet: handshake, request, 3000-byte response, FINs",
        http_conn(
            "10.0.0.1:40000",
            "10.0.0.2:80",
            1000,
            LinkOpts::default(),
            1,
            3000,
        ),
    )
}

fn padding() -> Case {
    let mut c = Conn::new(
        sa("10.0.0.1:40001"),
        sa("10.0.0.2:7"),
        77_000,
        88_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    let words: [&[u8]; 7] = [
        b"a", b"bc", b"def", b"ghij", b"klmno", b"pqrstu", b"vwxyz12",
    ];
    for w in words {
        v.extend(c.send(C2S, w, 100));
        let up = w.to_ascii_uppercase();
        v.extend(c.send(S2C, &up, 100));
        v.push(c.ack(C2S));
    }
    v.push(c.keepalive(C2S));
    v.push(c.ack(S2C));
    v.push(c.keepalive(S2C));
    v.push(c.ack(C2S));
    v.extend(c.send(C2S, b"end", 1));
    v.extend(c.send(S2C, b"END", 1));
    v.extend(close(&mut c));
    Case::new(
        "padding",
        "1..7-byte segments in frames padded to 60 bytes with 0xEE, padded keep-alives and ACKs: padding is never data",
        vec![c],
        v,
    )
}

fn ooo() -> Case {
    let mut c = Conn::new(
        sa("10.0.0.1:40002"),
        sa("10.0.0.2:80"),
        123_456,
        654_321,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    let s = c.send(C2S, &text(3, 1200), 100);
    let ack = c.ack(S2C);
    let order = [0, 2, 1, 3, 5, 4, 4, 6, 3, 8, 9, 7, 10, 11, 11];
    v.extend(order.iter().map(|&i| s[i].clone()));
    v.push(c.retransmit(C2S, 500, 200)); // one retransmission spanning two segments
    v.push(ack);
    let r = c.send(S2C, &http_response(4, 700), 120);
    let order = [0, 3, 1, 2, 6, 5, 4, 2, 6];
    v.extend(order.iter().map(|&i| r[i].clone()));
    v.push(c.retransmit(S2C, 0, 1)); // a 1-byte retransmission of the first byte
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "ooo",
        "segments out of order, duplicated and retransmitted (including one retransmission spanning two segments) in both directions",
        vec![c],
        v,
    )
}

fn tiny_ooo() -> Case {
    let mut c = Conn::new(
        sa("10.0.0.1:40020"),
        sa("10.0.0.2:80"),
        2_000_000,
        3_000_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    let mut rng = Rng::new(15);
    for (dir, data) in [(C2S, text(15, 12_000)), (S2C, binary(16, 6_000))] {
        let mut segs = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let n = (1 + rng.next_u64() % 8).min((data.len() - off) as u64) as usize;
            segs.extend(c.send(dir, &data[off..off + n], n));
            off += n;
        }
        for i in (1..segs.len()).rev() {
            segs.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        v.extend(segs);
        v.push(c.ack(if dir == C2S { S2C } else { C2S }));
    }
    v.extend(close(&mut c));
    Case::new(
        "tiny-ooo",
        "4,000 segments of 1..8 bytes in random order in both directions: the out-of-order pool holds them in a few blocks, no gap, no conflict",
        vec![c],
        v,
    )
}

fn overlap() -> Case {
    let mut c = Conn::new(
        sa("10.0.0.1:40003"),
        sa("10.0.0.2:80"),
        42,
        4242,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    let s = c.send(C2S, &text(5, 1000), 100);
    v.extend(s[0..3].iter().cloned()); // 0..300
    v.push(c.segment_at(C2S, 250, &[b'X'; 100])); // 250..300 old (kept), 300..350 new: X
    v.push(s[3].clone()); // 300..400: 300..350 stay X
    v.push(s[4].clone()); // 400..500
    v.push(c.segment_at(C2S, 420, &[b'Y'; 60])); // inside delivered data: ignored
    v.push(c.segment_at(C2S, 600, &[b'Z'; 100])); // out of order, arrives before the original
    v.push(s[5].clone()); // 500..600
    v.push(s[6].clone()); // 600..700: Z arrived first and stays
    v.push(s[7].clone()); // 700..800
    v.push(c.segment_at(C2S, 780, &[b'W'; 40])); // 780..800 kept, 800..820 new: W
    v.push(s[8].clone());
    v.push(s[9].clone());
    v.push(c.ack(S2C));
    let r = c.send(S2C, &text(6, 500), 250);
    v.extend(r.iter().cloned());
    v.push(c.segment_at(S2C, 0, &[b'Q'; 300])); // a full retransmission with other bytes: ignored
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "overlap",
        "overlapping segments whose bytes differ (X, Y, Z, W, Q runs): the first copy of each byte in capture order wins",
        vec![c],
        v,
    )
    .policy(
        "first copy wins, per byte, in capture order; this includes bytes 600..700 of the client \
         stream, where the differing copy (Z) arrived out of order before the original (tshark agrees)",
    )
}

fn vlan() -> Case {
    let a = LinkOpts::new(Link::Ethernet(vec![Vlan::new(0x8100, 5, 100)]));
    let b = LinkOpts::new(Link::Ethernet(vec![Vlan::new(0x8100, 7, 4001)])).start(at(0) + 500);
    many(
        "vlan",
        "802.1Q with priority bits set (TCI 0xa064 and 0xefa1): names end in --100 and --4001, the VLAN id without priority bits",
        vec![
            http_conn("10.0.1.1:40000", "10.0.1.2:80", 10, a, 7, 2000),
            http_conn("10.0.1.3:40001", "10.0.1.2:80", 20, b, 8, 1000),
        ],
    )
    .tshark("names only: tshark-flows appends the whole TCI (--41060, --61345); contents agree")
}

fn qinq() -> Case {
    let l = |tags: Vec<Vlan>, i: u64| LinkOpts::new(Link::Ethernet(tags)).start(at(0) + i * 250);
    many(
        "qinq",
        "stacked tags: 0x88a8+0x8100, 0x9100+0x8100, 0x9100 alone, 0x88a8+0x8100+0x8100; names carry the outermost id",
        vec![
            http_conn("10.0.2.1:40000", "10.0.2.2:80", 1, l(vec![Vlan::new(0x88a8, 3, 200), Vlan::new(0x8100, 0, 10)], 0), 9, 1500),
            http_conn("10.0.2.1:40001", "10.0.2.2:80", 2, l(vec![Vlan::new(0x9100, 0, 300), Vlan::new(0x8100, 2, 20)], 1), 10, 1500),
            http_conn("10.0.2.1:40002", "10.0.2.2:80", 3, l(vec![Vlan::new(0x9100, 1, 400)], 2), 11, 1500),
            http_conn(
                "10.0.2.1:40003",
                "10.0.2.2:80",
                4,
                l(vec![Vlan::new(0x88a8, 0, 500), Vlan::new(0x8100, 0, 501), Vlan::new(0x8100, 0, 502)], 3),
                12,
                1500,
            ),
        ],
    )
    .tshark(
        "names only: tshark-flows uses the first 802.1Q/0x9100 tag's TCI (the inner tag under 0x88a8): \
         --10, --300, --8592, --501; contents agree",
    )
}

fn vlan_tuple() -> Case {
    let a = LinkOpts::new(Link::Ethernet(vec![Vlan::new(0x8100, 0, 100)]));
    let b = LinkOpts::new(Link::Ethernet(vec![Vlan::new(0x8100, 0, 101)])).start(at(0) + 500);
    many(
        "vlan-tuple",
        "the same 4-tuple on VLAN 100 and VLAN 101 at the same time: two connections, neither is c1",
        vec![
            http_conn("10.0.1.1:40000", "10.0.1.2:80", 1000, a, 13, 1200),
            http_conn("10.0.1.1:40000", "10.0.1.2:80", 900_000, b, 14, 1300),
        ],
    )
    .policy("VLAN ids are part of the connection key (DESIGN.md), so both flows are index 0")
    .tshark(
        "tshark keys TCP conversations without the VLAN: the second SYN starts a new stream that \
         absorbs both connections' later packets (one stream, a 148 KB gap)",
    )
}

fn ipv6_ext() -> Case {
    let dst: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    let ext = vec![
        Ext::HopByHop(vec![]),
        Ext::DestOpts(vec![]),
        Ext::srh(&[dst]),
        Ext::DestOpts(vec![0x1e, 2, 0xab, 0xcd]), // an unknown option to skip
    ];
    one(
        "ipv6-ext",
        "IPv6 with hop-by-hop, destination options, routing (SRH, segments left 0) and destination options headers before TCP",
        http_conn("[2001:db8::1]:40000", "[2001:db8::2]:80", 5, LinkOpts::default().ipv6_ext(ext), 15, 2500),
    )
}

/// Request and response sent as segments that are cut into IP fragments.
fn frag_conn(c: &mut Conn, seed: u64) -> Vec<Pkt> {
    let mut v = c.handshake();
    let req = c.send(C2S, &text(seed, 300), 1400).remove(0);
    v.extend(c.fragment(&req, &[96, 200])); // in order
    v.push(c.ack(S2C));
    let r = c.send(S2C, &text(seed + 1, 4400), 1400);
    let f0 = c.fragment(&r[0], &[512, 1024, 1416]); // last piece 4 bytes: a padded frame
    v.extend(f0.into_iter().rev()); // reversed
    let f1 = c.fragment(&r[1], &[704]);
    v.extend([f1[1].clone(), f1[0].clone(), f1[1].clone()]); // second piece first, and again
    let f2 = c.fragment(&r[2], &[400, 800]);
    v.extend([f2[0].clone(), f2[2].clone(), f2[1].clone()]);
    v.push(r[3].clone()); // not fragmented
    v.push(c.ack(C2S));
    v.extend(close(c));
    v
}

fn ipv4_frag() -> Case {
    let mut c = Conn::new(
        sa("10.0.3.1:40000"),
        sa("10.0.3.2:80"),
        31,
        32,
        LinkOpts::default(),
    );
    let v = frag_conn(&mut c, 16);
    Case::new(
        "ipv4-frag",
        "TCP segments split into IPv4 fragments, some pieces reversed, swapped or duplicated, a 4-byte last piece in a padded frame",
        vec![c],
        v,
    )
}

fn ipv6_frag() -> Case {
    let mut a = Conn::new(
        sa("[2001:db8:1::1]:40000"),
        sa("[2001:db8:1::2]:80"),
        61,
        62,
        LinkOpts::default(),
    );
    let va = frag_conn(&mut a, 18);
    let ext = vec![Ext::HopByHop(vec![]), Ext::DestOpts(vec![])];
    let o = LinkOpts::default().ipv6_ext(ext).start(at(0) + 500);
    let mut b = Conn::new(
        sa("[2001:db8:1::1]:40001"),
        sa("[2001:db8:1::2]:80"),
        63,
        64,
        o,
    );
    let vb = frag_conn(&mut b, 20);
    Case::new(
        "ipv6-frag",
        "IPv6 fragments (fragment header), out of order and duplicated; one flow with hop-by-hop before and destination options inside the fragmented part",
        vec![a, b],
        merge_by_time(vec![va, vb]),
    )
}

fn reuse_fin() -> Case {
    let mk = |isn: u32, t: u64, seed: u64| {
        http_conn(
            "10.0.4.1:40000",
            "10.0.4.2:80",
            isn,
            LinkOpts::default().start(at(t)),
            seed,
            800 + seed as usize,
        )
    };
    many(
        "reuse-fin",
        "one 4-tuple used by three connections in turn, each closed with FINs: files with no suffix, c1, c2",
        vec![mk(1000, 0, 21), mk(2_000_000, 1, 22), mk(3_000_000_000, 2, 23)],
    )
}

fn reuse_rst() -> Case {
    let t = "10.0.4.1:40001";
    let s = "10.0.4.2:80";
    let mut a = Conn::new(sa(t), sa(s), 500, 600, LinkOpts::default());
    let mut va = a.handshake();
    va.extend(a.send(C2S, &http_get("/a", "10.0.4.2"), 1448));
    va.extend(a.send(S2C, &http_response(24, 2000), 1448));
    va.push(a.rst(C2S));
    let mut b = Conn::new(sa(t), sa(s), 700, 800, LinkOpts::default().start(at(1)));
    let mut vb = b.handshake();
    vb.extend(b.send(C2S, &http_get("/b", "10.0.4.2"), 1448));
    vb.extend(b.send(S2C, &text(25, 300), 1448));
    vb.push(b.rst(S2C));
    let (c, vc) = http_conn(t, s, 900, LinkOpts::default().start(at(2)), 26, 500);
    Case::new(
        "reuse-rst",
        "one 4-tuple used again after a client RST and after a server RST (with nearby ISNs): c1, c2",
        vec![a, b, c],
        merge_by_time(vec![va, vb, vc]),
    )
}

fn midstream() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40000"),
        sa("10.0.5.2:80"),
        3_000_000_000,
        1_000_000,
        LinkOpts::default(),
    );
    let _not_captured = c.handshake();
    let s = c.send(C2S, &text(27, 1500), 500);
    let mut v = vec![s[1].clone(), s[0].clone(), s[2].clone()];
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, &http_response(28, 2500), 1448));
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "midstream",
        "no handshake captured; the first client segment seen is the 2nd of the stream and the 1st follows it: the whole stream, in order",
        vec![c],
        v,
    )
    .policy("data just before the first segment seen, arriving within the out-of-order window, belongs to the stream (DESIGN.md)")
    .tshark("tshark starts the stream at the first segment seen and drops the earlier one: 1000 of 1500 client bytes")
}

fn wrap() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40001"),
        sa("10.0.5.2:80"),
        0xffff_fff0,
        0xfffe_8000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    v.extend(c.send(C2S, &text(29, 200), 1448)); // wraps after 15 bytes
    v.push(c.ack(S2C));
    for (i, p) in c
        .send(S2C, &binary(30, 200_000), 1448)
        .into_iter()
        .enumerate()
    {
        v.push(p); // wraps after 32767 bytes
        if i % 4 == 3 {
            v.push(c.ack(C2S));
        }
    }
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "wrap",
        "sequence numbers wrap past 2^32 in both directions (client ISN 0xfffffff0, server 0xfffe8000, 200000 bytes)",
        vec![c],
        v,
    )
}

fn syn_data() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40002"),
        sa("10.0.5.2:80"),
        7_000,
        8_000,
        LinkOpts::default(),
    );
    let mut v = vec![c.syn_with_data(&text(31, 64)), c.syn_ack(), c.ack(C2S)];
    v.extend(c.send(C2S, &text(32, 200), 1448));
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, &http_response(33, 1000), 1448));
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "syn-data",
        "a SYN carrying 64 bytes (TCP Fast Open style): they are the first bytes of the client stream",
        vec![c],
        v,
    )
}

fn keepalive() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40003"),
        sa("10.0.5.2:80"),
        9_000,
        10_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    v.extend(c.send(C2S, &http_get("/ka", "10.0.5.2"), 1448));
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, &http_response(34, 600), 1448));
    for _ in 0..2 {
        v.push(c.keepalive(C2S));
        v.push(c.ack(S2C));
        v.push(c.keepalive(S2C));
        v.push(c.ack(C2S));
    }
    v.extend(c.send(C2S, &http_get("/ka2", "10.0.5.2"), 1448));
    v.extend(c.send(S2C, &http_response(35, 300), 1448));
    v.push(c.keepalive(C2S));
    v.push(c.keepalive(S2C));
    v.extend(close(&mut c));
    Case::new(
        "keepalive",
        "keep-alive probes (1 garbage byte at next-1, in padded frames) from both sides between requests: streams unaffected",
        vec![c],
        v,
    )
}

fn lost() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40004"),
        sa("10.0.5.2:80"),
        11_000,
        12_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    let s = c.send(C2S, &text(36, 2000), 200);
    v.extend(
        s.iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, p)| p.clone()),
    );
    v.push(c.ack(S2C));
    let r = c.send(S2C, &text(37, 1500), 300);
    v.extend(r[..4].iter().cloned()); // the last segment never arrives
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "lost",
        "a client segment (bytes 600..800) and the server's last segment (1200..1500) never arrive: NUL holes, full stream length",
        vec![c],
        v,
    )
    .policy("a hole is NULs at its offset and the file is as long as the stream (known from the FIN), even when the hole is at the end")
    .tshark("tshark stops at a hole that is never filled: the server file ends at 1200 bytes (the middle hole agrees)")
}

/// A FIN that never arrives while the peer's ACK of it does: one connection per variant.
fn lost_fin() -> Case {
    let mk = |port: u16, t: u64| {
        Conn::new(
            sa(&format!("10.0.5.1:{port}")),
            sa("10.0.5.2:80"),
            20_000 + port as u32,
            30_000 + port as u32,
            LinkOpts::default().start(at(0) + t * 300),
        )
    };
    // The client's FIN lost; the server's FIN acknowledges it.
    let mut a = mk(40007, 0);
    let mut va = a.handshake();
    va.extend(a.send(C2S, &http_get("/fin", "10.0.5.2"), 1448));
    va.push(a.ack(S2C));
    va.extend(a.send(S2C, &http_response(50, 900), 1448));
    va.push(a.ack(C2S));
    let _lost = a.fin(C2S);
    va.push(a.fin(S2C));
    va.push(a.ack(C2S));
    // The client's last data segment lost with its FIN: the hole is the data only.
    let mut b = mk(40008, 1);
    let mut vb = b.handshake();
    let s = b.send(C2S, &text(51, 700), 400);
    vb.push(s[0].clone());
    let _lost = b.fin(C2S);
    vb.push(b.ack(S2C));
    vb.extend(b.send(S2C, &text(52, 300), 1448));
    vb.push(b.fin(S2C));
    vb.push(b.ack(C2S));
    // The server's last segment and FIN lost; the client's FIN acknowledges both.
    let mut c = mk(40009, 2);
    let mut vc = c.handshake();
    vc.extend(c.send(C2S, &http_get("/both", "10.0.5.2"), 1448));
    let r = c.send(S2C, &http_response(53, 2000), 1000);
    vc.extend(r[..2].iter().cloned());
    let _lost = c.fin(S2C);
    vc.push(c.fin(C2S));
    vc.push(c.ack(S2C));
    // The server resets, acknowledging the client's lost FIN.
    let mut d = mk(40010, 3);
    let mut vd = d.handshake();
    vd.extend(d.send(C2S, &text(54, 200), 1448));
    let _lost = d.fin(C2S);
    vd.push(d.rst(S2C));
    // The ACK of the server's lost FIN is the last packet of the capture.
    let mut e = mk(40011, 4);
    let mut ve = e.handshake();
    ve.extend(e.send(C2S, &http_get("/end", "10.0.5.2"), 1448));
    ve.extend(e.send(S2C, &http_response(55, 500), 1448));
    let _lost = e.fin(S2C);
    e.wait(10_000_000);
    ve.push(e.ack(C2S));
    Case::new(
        "lost-fin",
        "FINs that never arrive while the peer's ACK of them does (after a FIN, a RST, at the end of the capture), some with the data before them lost too: files are exactly the bytes sent",
        vec![a, b, c, d, e],
        merge_by_time(vec![va, vb, vc, vd, ve]),
    )
    .policy("an acknowledged sequence number past every byte seen, with no FIN seen, is taken for the lost FIN, never a byte: the file ends before it (counted as fin_assumed)")
    .tshark("tshark stops at a hole that is never filled: the client file of :40008 ends at 400 bytes and the server file of :40009 at 2000")
}

fn snaplen() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40005"),
        sa("10.0.5.2:80"),
        13_000,
        14_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    v.extend(c.send(C2S, &http_get("/snap", "10.0.5.2"), 1448));
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, &http_response(38, 3000), 1448));
    v.extend(c.send(S2C, b"tail-30-bytes-fully-captured\r\n", 1448));
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "snaplen",
        "snap length 96: each segment keeps its first 42 payload bytes; the cut bytes are NULs and files have the full stream length",
        vec![c],
        v,
    )
    .snaplen(96)
    .policy("bytes cut by the snap length are a gap: NULs at their offsets, file length from the IP length")
    .tshark("tshark concatenates only the captured bytes (42 per segment), without NULs for the cut ones")
}

fn tso() -> Case {
    let mut c = Conn::new(
        sa("10.0.5.1:40006"),
        sa("10.0.5.2:80"),
        15_000,
        16_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    for mut p in c.send(C2S, &text(39, 12_000), 4000) {
        p.zero_ipv4_total_length();
        v.push(p);
    }
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, &text(40, 2000), 1448));
    let mut big = c.send(S2C, &binary(41, 8000), 8000);
    big[0].zero_ipv4_total_length();
    v.extend(big);
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "tso",
        "IPv4 total length 0 on 4000- and 8000-byte TSO segments: payload is the captured length (frames are long, so no padding)",
        vec![c],
        v,
    )
}

fn link_case(name: &'static str, about: &'static str, link: Link, v4: bool, v6: bool) -> Case {
    let mut flows = Vec::new();
    if v4 {
        flows.push(http_conn(
            "10.0.7.1:40000",
            "10.0.7.2:80",
            100,
            LinkOpts::new(link.clone()),
            42,
            1800,
        ));
    }
    if v6 {
        let o = LinkOpts::new(link).start(at(0) + 500);
        flows.push(http_conn(
            "[fd00::7:1]:40000",
            "[fd00::7:2]:80",
            200,
            o,
            43,
            1900,
        ));
    }
    many(name, about, flows)
}

const fn wifi(ds: u8, qos: bool) -> Wifi {
    Wifi {
        ds,
        qos,
        protected: false,
    }
}

/// An 802.11 capture: one IPv4 connection in the clear and, interleaved, a second one whose
/// frames are all protected (encrypted): no reader can take data from them, so they give no
/// flow (the core counts them in `wifi_protected`).
fn wifi_protected() -> Case {
    let clear = LinkOpts::new(Link::Wifi(wifi(1, true), Radio::None));
    let (c, p) = http_conn("10.0.8.1:40000", "10.0.8.2:80", 300, clear, 44, 2000);
    let sealed = Link::Wifi(
        Wifi {
            protected: true,
            ..wifi(1, true)
        },
        Radio::None,
    );
    let (_, mut q) = http_conn(
        "10.0.8.1:40001",
        "10.0.8.2:80",
        400,
        LinkOpts::new(sealed).start(at(0) + 500),
        45,
        2000,
    );
    for pkt in &mut q {
        // Listed under the clear connection, carrying nothing a reader can take.
        pkt.conn = c.id;
        pkt.seg = None;
        pkt.frag = None;
    }
    Case::new(
        "wifi-protected",
        "IEEE 802.11 (105) QoS data: a connection in the clear, and one whose frames have the Protected bit (CCMP): encrypted frames give no flow and are counted",
        vec![c],
        merge_by_time(vec![p, q]),
    )
}

fn ipv4_opts() -> Case {
    // NOP, record route with two empty slots (not copied), router alert (copied)
    let opts = [1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x94, 4, 0, 0];
    one(
        "ipv4-opts",
        "IPv4 with 16 bytes of options (IHL 9) on every packet",
        http_conn(
            "10.0.8.1:40000",
            "10.0.8.2:80",
            300,
            LinkOpts::default().ipv4_options(&opts),
            44,
            1600,
        ),
    )
}

fn pcapng() -> Case {
    one(
        "pcapng",
        "a pcapng capture (SHB, IDB, EPB) of an HTTP-like exchange over Ethernet",
        http_conn(
            "10.0.9.1:40000",
            "10.0.9.2:80",
            400,
            LinkOpts::default(),
            45,
            2200,
        ),
    )
    .pcapng()
}

fn concurrent() -> Case {
    let o = |i: u64| LinkOpts::default().start(at(0) + i * 333);
    many(
        "concurrent",
        "three connections (two IPv4 from one client, one IPv6) interleaved packet by packet",
        vec![
            http_conn("10.0.6.1:40000", "10.0.6.2:80", 1, o(0), 46, 3000),
            http_conn("10.0.6.1:40001", "10.0.6.2:80", 2, o(1), 47, 2000),
            http_conn(
                "[2001:db8:6::1]:40000",
                "[2001:db8:6::2]:80",
                3,
                o(2),
                48,
                2500,
            ),
        ],
    )
}

fn big() -> Case {
    let mut c = Conn::new(
        sa("10.0.6.1:40002"),
        sa("10.0.6.2:80"),
        17_000,
        18_000,
        LinkOpts::default(),
    );
    let mut v = c.handshake();
    v.extend(c.send(C2S, &http_get("/big", "10.0.6.2"), 1448));
    v.push(c.ack(S2C));
    for (i, p) in c
        .send(S2C, &binary(49, 100_000), 1448)
        .into_iter()
        .enumerate()
    {
        v.push(p);
        if i % 2 == 1 {
            v.push(c.ack(C2S));
        }
    }
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    Case::new(
        "big",
        "a 100000-byte flow (over 64 KiB) in 1448-byte segments",
        vec![c],
        v,
    )
}

/// Every case, in README order.
pub fn all() -> Vec<Case> {
    vec![
        basic(),
        padding(),
        ooo(),
        tiny_ooo(),
        overlap(),
        vlan(),
        qinq(),
        vlan_tuple(),
        ipv6_ext(),
        ipv4_opts(),
        ipv4_frag(),
        ipv6_frag(),
        reuse_fin(),
        reuse_rst(),
        midstream(),
        wrap(),
        syn_data(),
        keepalive(),
        lost(),
        lost_fin(),
        snaplen(),
        tso(),
        link_case(
            "link-sll",
            "Linux cooked capture v1 (113), IPv4 and IPv6",
            Link::Sll,
            true,
            true,
        ),
        link_case(
            "link-sll2",
            "Linux cooked capture v2 (276), IPv4 and IPv6",
            Link::Sll2,
            true,
            true,
        ),
        link_case(
            "link-raw",
            "raw IP (101), IPv4 and IPv6",
            Link::Raw,
            true,
            true,
        ),
        link_case("link-ipv4", "raw IPv4 (228)", Link::RawIpv4, true, false),
        link_case("link-ipv6", "raw IPv6 (229)", Link::RawIpv6, false, true),
        link_case(
            "link-null",
            "BSD null (0), little-endian family: 2 for IPv4, 30 (macOS) for IPv6",
            Link::NullLe,
            true,
            true,
        ),
        link_case(
            "link-loop",
            "OpenBSD loop (108), big-endian family: 2 for IPv4, 24 for IPv6",
            Link::Loop,
            true,
            true,
        ),
        link_case(
            "wifi-80211",
            "IEEE 802.11 (105) data frames with LLC/SNAP, client to access point (to-DS) and back (from-DS), IPv4 and IPv6",
            Link::Wifi(wifi(1, false), Radio::None),
            true,
            true,
        ),
        link_case(
            "wifi-4addr",
            "IEEE 802.11 (105) four-address QoS data frames (to-DS and from-DS: a wireless bridge), IPv4 and IPv6",
            Link::Wifi(wifi(3, true), Radio::None),
            true,
            true,
        ),
        link_case(
            "wifi-radiotap",
            "radiotap (127) before 802.11 QoS data: TSFT, flags, channel, signal; no FCS, no padding; IPv4 and IPv6",
            Link::Wifi(wifi(1, true), Radio::Radiotap { fcs: false, pad: false }),
            true,
            true,
        ),
        link_case(
            "wifi-radiotap-fcs",
            "radiotap (127) with the FCS-present and data-pad flags: each frame ends with its 4-byte FCS (not data) and the 26-byte QoS header is padded to 28; IPv4 and IPv6",
            Link::Wifi(wifi(2, true), Radio::Radiotap { fcs: true, pad: true }),
            true,
            true,
        ),
        link_case(
            "wifi-ppi",
            "PPI (192) with an 802.11-Common field saying the frame ends with its FCS, before 802.11 QoS data; IPv4 and IPv6",
            Link::Wifi(wifi(1, true), Radio::Ppi { fcs: true }),
            true,
            true,
        ),
        wifi_protected(),
        pcapng(),
        concurrent(),
        big(),
    ]
    .into_iter()
    .chain(crate::http_cases::cases())
    .collect()
}

/// The text of `testdata/README.md`.
pub fn readme(cases: &[Case]) -> String {
    let mut s = String::from(
        "# Test captures and their expected flows\n\
         \n\
         Generated by `cargo run -p tcpflow-tests --bin gen-testdata` (tests/src/cases.rs): do not\n\
         edit by hand. The generator is deterministic (fixed seeds and timestamps); running it\n\
         again gives identical files.\n\
         \n\
         Each folder holds `input.pcap` (or `input.pcapng`) and `expected/`, the files a correct\n\
         tool writes with the default name template `%A.%a-%B.%b%V%v%C%c`:\n\
         \n\
         - IPv4 as four zero-padded 3-digit octets, IPv6 compressed (Rust's `Ipv6Addr` display),\n\
         \x20 each followed by `.` and the port as 5 digits: `010.000.000.001.40000-010.000.000.002.00080`.\n\
         - `--ID` for a VLAN-tagged flow: the outermost tag's 12-bit VLAN id, whatever its TPID\n\
         \x20 (tcpflow 1.6.1 prints the whole TCI, priority bits included, and only for 0x8100).\n\
         - `c1`, `c2` for the 2nd and 3rd connection on the same addresses, ports and VLAN ids, in\n\
         \x20 capture order.\n\
         - One file per direction that sent payload, as long as everything that direction sent.\n\
         \x20 Bytes that never arrived or that the snap length cut are NULs at their offsets; where\n\
         \x20 copies of a byte differ, the first copy in capture order wins. Keep-alive bytes and\n\
         \x20 Ethernet padding (always 0xEE here, never zero) are never data.\n\
         - `report.xml` / `report.json` are not part of the expected output.\n\
         \n\
         Hosts: client MAC 02:00:00:00:00:01, server 02:00:00:00:00:02; timestamps start at\n\
         1700000000 s, 1 ms apart per connection.\n\
         \n\
         | case | input | what it checks |\n\
         |---|---|---|\n",
    );
    for c in cases {
        s.push_str(&format!(
            "| `{}` | {} (link {}{}) | {} |\n",
            c.name,
            c.input_name(),
            c.linktype,
            if c.snaplen != DEFAULT_SNAPLEN {
                format!(", snaplen {}", c.snaplen)
            } else {
                String::new()
            },
            c.about
        ));
    }
    s.push_str("\n## Policy choices (expected output that is a decision, not a fact)\n\n");
    for c in cases {
        if let Some(p) = c.policy {
            s.push_str(&format!("- `{}`: {}.\n", c.name, p));
        }
    }
    s.push_str(
        "\n## Where tshark disagrees\n\n\
         `corpus/tools/tshark-flows CAPTURE OUTDIR` (tshark 4.0 `-z follow,tcp,raw`) gives exactly the\n\
         expected files for every case not listed here.\n\n",
    );
    for c in cases {
        if let Some(t) = c.tshark {
            s.push_str(&format!("- `{}`: {}.\n", c.name, t));
        }
    }
    s
}

/// Writes every case and the README under `root`.
pub fn write_all(root: &Path) -> io::Result<Vec<Case>> {
    let cases = all();
    fs::create_dir_all(root)?;
    for c in &cases {
        c.write(root)?;
    }
    fs::write(root.join("README.md"), readme(&cases))?;
    Ok(cases)
}
