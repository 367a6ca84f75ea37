//! Byte-level builders: IPv4 (options, fragments), IPv6 (extension headers, fragments), TCP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

pub const PROTO_TCP: u8 = 6;
pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_DEST_OPTS: u8 = 60;

/// Sums 16-bit big-endian words (odd trailing byte padded with zero).
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u32) << 8;
    }
    acc
}

/// The Internet checksum of `data`, starting from a partial sum.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut s = sum16(data, initial) as u64;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Header fields of a TCP segment (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

/// Builds a TCP segment with a correct checksum over the pseudo-header of `src`/`dst`.
pub fn tcp_segment(src: IpAddr, dst: IpAddr, h: &Tcp, payload: &[u8]) -> Vec<u8> {
    tcp_segment_with_options(src, dst, h, &[], payload)
}

/// [`tcp_segment`] with TCP options (a multiple of 4 bytes, at most 40).
pub fn tcp_segment_with_options(
    src: IpAddr,
    dst: IpAddr,
    h: &Tcp,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        options.len() % 4 == 0 && options.len() <= 40,
        "TCP options of {} bytes",
        options.len()
    );
    let mut t = Vec::with_capacity(20 + options.len() + payload.len());
    t.extend_from_slice(&h.src_port.to_be_bytes());
    t.extend_from_slice(&h.dst_port.to_be_bytes());
    t.extend_from_slice(&h.seq.to_be_bytes());
    t.extend_from_slice(&h.ack.to_be_bytes());
    t.push((((20 + options.len()) / 4) as u8) << 4);
    t.push(h.flags);
    t.extend_from_slice(&h.window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    let len = t.len() as u32;
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, PROTO_TCP]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, PROTO_TCP]);
            p
        }
        _ => panic!("TCP segment between an IPv4 and an IPv6 address"),
    };
    let c = checksum(&t, sum16(&pseudo, 0));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn ipv4_header_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let c = checksum(h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Builds an IPv4 datagram. `options` is padded with EOL to a multiple of 4 bytes.
pub fn ipv4_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    ttl: u8,
    options: &[u8],
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let opt_len = options.len().div_ceil(4) * 4;
    assert!(opt_len <= 40, "IPv4 options longer than 40 bytes");
    let hl = 20 + opt_len;
    let total = hl + payload.len();
    assert!(total <= 65535, "IPv4 datagram too long");
    let mut p = Vec::with_capacity(total);
    p.push(0x40 | (hl / 4) as u8);
    p.push(0);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&0x4000u16.to_be_bytes()); // DF
    p.push(ttl);
    p.push(proto);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    p.resize(hl, 0);
    ipv4_header_checksum(&mut p[..hl]);
    p.extend_from_slice(payload);
    p
}

/// Sets an IPv4 datagram's total length field to 0 (as TSO/LSO captures show it) and fixes the
/// header checksum.
pub fn ipv4_zero_total_length(dgram: &mut [u8]) {
    assert_eq!(dgram[0] >> 4, 4, "not IPv4");
    dgram[2] = 0;
    dgram[3] = 0;
    let hl = (dgram[0] & 0x0f) as usize * 4;
    ipv4_header_checksum(&mut dgram[..hl]);
}

/// Splits an IPv4 datagram into fragments. `cuts` are the offsets (into the IP payload,
/// multiples of 8, increasing) where the second, third, ... pieces start. Options whose copy
/// bit is set are repeated in every fragment, the others only in the first.
pub fn ipv4_fragment(dgram: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let hl = (dgram[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([dgram[2], dgram[3]]) as usize;
    let payload = &dgram[hl..total];
    let bounds = piece_bounds(payload.len(), cuts);
    // options for the non-first fragments
    let mut copied = Vec::new();
    let opts = &dgram[20..hl];
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            t => {
                let l = (opts[i + 1] as usize).max(2);
                if t & 0x80 != 0 {
                    copied.extend_from_slice(&opts[i..i + l]);
                }
                i += l;
            }
        }
    }
    let mut out = Vec::new();
    for (k, &(a, b)) in bounds.iter().enumerate() {
        let opt: &[u8] = if k == 0 { opts } else { &copied };
        let ohl = 20 + opt.len().div_ceil(4) * 4;
        let mut f = Vec::with_capacity(ohl + b - a);
        f.extend_from_slice(&dgram[..20]);
        f.extend_from_slice(opt);
        f.resize(ohl, 0);
        f[0] = 0x40 | (ohl / 4) as u8;
        f[2..4].copy_from_slice(&((ohl + b - a) as u16).to_be_bytes());
        let more = if k + 1 < bounds.len() { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&(more | (a / 8) as u16).to_be_bytes());
        ipv4_header_checksum(&mut f[..ohl]);
        f.extend_from_slice(&payload[a..b]);
        out.push(f);
    }
    out
}

fn piece_bounds(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut bounds = Vec::new();
    let mut start = 0;
    for &c in cuts {
        assert!(c % 8 == 0, "fragment offset {c} is not a multiple of 8");
        assert!(
            c > start && c < len,
            "fragment offsets must increase inside the payload"
        );
        bounds.push((start, c));
        start = c;
    }
    bounds.push((start, len));
    bounds
}

/// An IPv6 extension header placed before the TCP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (padded with Pad1/PadN to a multiple of 8).
    HopByHop(Vec<u8>),
    /// Destination options (padded with Pad1/PadN to a multiple of 8).
    DestOpts(Vec<u8>),
    /// A routing header: type, segments left, type-specific data (the header is padded with
    /// zeros to a multiple of 8).
    Routing {
        routing_type: u8,
        segments_left: u8,
        data: Vec<u8>,
    },
}

impl Ext {
    fn code(&self) -> u8 {
        match self {
            Ext::HopByHop(_) => NH_HOP_BY_HOP,
            Ext::DestOpts(_) => NH_DEST_OPTS,
            Ext::Routing { .. } => NH_ROUTING,
        }
    }

    /// A segment routing header (type 4) listing `segments`, with segments left 0 (so the
    /// IPv6 destination is the final one).
    pub fn srh(segments: &[Ipv6Addr]) -> Ext {
        let mut data = vec![segments.len().saturating_sub(1) as u8, 0, 0, 0];
        for s in segments {
            data.extend_from_slice(&s.octets());
        }
        Ext::Routing {
            routing_type: 4,
            segments_left: 0,
            data,
        }
    }

    fn encode(&self, next: u8) -> Vec<u8> {
        let mut h = vec![next, 0];
        match self {
            Ext::HopByHop(o) | Ext::DestOpts(o) => {
                h.extend_from_slice(o);
                let pad = (8 - h.len() % 8) % 8;
                match pad {
                    0 => {}
                    1 => h.push(0),
                    n => {
                        h.push(1);
                        h.push((n - 2) as u8);
                        h.resize(h.len() + n - 2, 0);
                    }
                }
            }
            Ext::Routing {
                routing_type,
                segments_left,
                data,
            } => {
                h.push(*routing_type);
                h.push(*segments_left);
                h.extend_from_slice(data);
                h.resize(h.len().div_ceil(8) * 8, 0);
            }
        }
        h[1] = (h.len() / 8 - 1) as u8;
        h
    }
}

/// Builds an IPv6 packet with the given extension headers (in order) before the payload.
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    ext: &[Ext],
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(proto, Ext::code);
        body.extend_from_slice(&e.encode(next));
    }
    body.extend_from_slice(payload);
    let next = ext.first().map_or(proto, Ext::code);
    // Longer: a jumbogram (RFC 2675), payload length 0 and the length in a hop-by-hop option.
    let len = u16::try_from(body.len()).unwrap_or(0);
    assert!(
        len != 0 || body.is_empty() || next == NH_HOP_BY_HOP,
        "IPv6 payload too long (a jumbogram needs hop-by-hop)"
    );
    let mut p = Vec::with_capacity(40 + body.len());
    p.extend_from_slice(&0x6000_0000u32.to_be_bytes());
    p.extend_from_slice(&len.to_be_bytes());
    p.push(next);
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&body);
    p
}

/// Splits an IPv6 packet into fragments with a fragment header. The unfragmentable part is the
/// IPv6 header and every extension header up to the last hop-by-hop or routing header; `cuts`
/// are offsets into the fragmentable rest (multiples of 8, increasing).
pub fn ipv6_fragment(dgram: &[u8], cuts: &[usize], ident: u32) -> Vec<Vec<u8>> {
    let end = 40 + u16::from_be_bytes([dgram[4], dgram[5]]) as usize;
    let mut nh = dgram[6];
    let mut pos = 40;
    let (mut unfrag_end, mut unfrag_nh_field) = (40, 6);
    while matches!(nh, NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS) {
        let len = (dgram[pos + 1] as usize + 1) * 8;
        if nh != NH_DEST_OPTS {
            unfrag_end = pos + len;
            unfrag_nh_field = pos;
        }
        nh = dgram[pos];
        pos += len;
    }
    let frag_next = dgram[unfrag_nh_field];
    let rest = &dgram[unfrag_end..end];
    let bounds = piece_bounds(rest.len(), cuts);
    let mut out = Vec::new();
    for (k, &(a, b)) in bounds.iter().enumerate() {
        let mut f = dgram[..unfrag_end].to_vec();
        f[unfrag_nh_field] = NH_FRAGMENT;
        let plen = unfrag_end - 40 + 8 + (b - a);
        f[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
        f.push(frag_next);
        f.push(0);
        let more = u16::from(k + 1 < bounds.len());
        f.extend_from_slice(&((((a / 8) as u16) << 3) | more).to_be_bytes());
        f.extend_from_slice(&ident.to_be_bytes());
        f.extend_from_slice(&rest[a..b]);
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let h = Tcp {
            src_port: 1,
            dst_port: 2,
            seq: 3,
            ack: 4,
            flags: flags::ACK,
            window: 5,
        };
        let t = tcp_segment(src.into(), dst.into(), &h, b"hello");
        let ip = ipv4_packet(src, dst, 7, 64, &[1, 1, 1], PROTO_TCP, &t);
        assert_eq!(ip[0], 0x46);
        assert_eq!(checksum(&ip[..24], 0), 0);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 6, 0, t.len() as u8]);
        assert_eq!(checksum(&t, sum16(&pseudo, 0)), 0);
    }

    #[test]
    fn ipv4_fragments_cover_payload() {
        let payload: Vec<u8> = (0..100u8).collect();
        let opts = [0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0];
        let ip = ipv4_packet(
            [1, 1, 1, 1].into(),
            [2, 2, 2, 2].into(),
            9,
            64,
            &opts,
            6,
            &payload,
        );
        let f = ipv4_fragment(&ip, &[48, 96]);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0][0] & 0xf, 8);
        assert_eq!(f[1][0] & 0xf, 6); // only the router alert option is copied
        let mut got = Vec::new();
        for p in &f {
            let hl = (p[0] & 0xf) as usize * 4;
            assert_eq!(checksum(&p[..hl], 0), 0);
            got.extend_from_slice(&p[hl..]);
        }
        assert_eq!(got, payload);
        assert_eq!(u16::from_be_bytes([f[2][6], f[2][7]]), 96 / 8);
    }

    #[test]
    fn ipv6_fragments_after_routing() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let ext = [
            Ext::HopByHop(vec![]),
            Ext::DestOpts(vec![]),
            Ext::srh(&[b]),
            Ext::DestOpts(vec![]),
        ];
        let payload = vec![0xabu8; 64];
        let p = ipv6_packet(a, b, 64, &ext, 6, &payload);
        assert_eq!(p.len(), 40 + 8 + 8 + 24 + 8 + 64);
        let f = ipv6_fragment(&p, &[16], 77);
        assert_eq!(f.len(), 2);
        // unfragmentable part: 40 + 8 + 8 + 24; routing header's next header is now 44
        assert_eq!(f[0][48 + 8], NH_FRAGMENT);
        assert_eq!(f[0][80], NH_DEST_OPTS);
        assert_eq!(f[1].len(), 80 + 8 + (8 + 64 - 16));
    }
}
