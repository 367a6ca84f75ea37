//! Frame builders and checks shared by the decoder's tests.

pub(crate) use crate::decode::*;
pub(crate) use proptest::prelude::*;
pub(crate) use std::vec;
pub(crate) use std::vec::Vec;
// The link, IP and 802.11 builders are the capture generator's: these are thin wrappers
// that fix the addresses and fields the decoder's tests share.
pub(crate) use tcpflow_tests::link::{self, wifi};
pub(crate) use tcpflow_tests::packet;

pub(crate) const SRC4: [u8; 4] = [10, 0, 0, 1];
pub(crate) const DST4: [u8; 4] = [10, 0, 0, 2];
pub(crate) const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub(crate) const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub(crate) const MAC_SRC: [u8; 6] = tcpflow_tests::link::CLIENT_MAC;
pub(crate) const MAC_DST: [u8; 6] = tcpflow_tests::link::SERVER_MAC;

/// A TCP segment: ports 40000 -> 80, seq 1000, ack 2000, PSH|ACK, window 512 (its checksum
/// over the IPv4 test addresses whatever carries it: the decoder does not check it).
pub(crate) fn tcp(options: &[u8], payload: &[u8]) -> Vec<u8> {
    let h = packet::Tcp {
        src_port: 40000,
        dst_port: 80,
        seq: 1000,
        ack: 2000,
        flags: packet::flags::PSH | packet::flags::ACK,
        window: 512,
    };
    packet::tcp_segment_with_options(SRC4.into(), DST4.into(), &h, options, payload)
}

/// An IPv4 packet, identification 0x1234, DF, TTL 64 (`options` a multiple of 4 bytes).
pub(crate) fn ipv4(protocol: u8, options: &[u8], body: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    packet::ipv4_packet(
        SRC4.into(),
        DST4.into(),
        0x1234,
        64,
        options,
        protocol,
        body,
    )
}

pub(crate) fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
    packet::ipv6_packet(SRC6.into(), DST6.into(), 64, &[], next, body)
}

/// A generic extension header (hop-by-hop, routing, destination options) of `units` * 8
/// bytes, filled with PadN-like bytes.
pub(crate) fn ext(next: u8, units: u8) -> Vec<u8> {
    let mut v = vec![next, units - 1];
    v.resize(usize::from(units) * 8, 0x01);
    v
}

/// An AH header with `words` 32-bit words in total.
pub(crate) fn ah(next: u8, words: u8) -> Vec<u8> {
    let mut v = vec![next, words - 2];
    v.resize(usize::from(words) * 4, 0xa5);
    v
}

pub(crate) fn frag_hdr(next: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
    let mut v = vec![next, 0];
    v.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    v.extend_from_slice(&ident.to_be_bytes());
    v
}

pub(crate) fn eth(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut v = link::ethernet_header(MAC_SRC, MAC_DST, tags, ethertype);
    v.extend_from_slice(body);
    v
}

pub(crate) fn sll(protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = link::sll_header(0, MAC_SRC, protocol);
    v.extend_from_slice(body);
    v
}

pub(crate) fn sll2(protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = link::sll2_header(protocol, 0, MAC_SRC);
    v.extend_from_slice(body);
    v
}

pub(crate) fn prefixed(prefix: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

/// Outer (tunnel endpoint) addresses; the inner packets use SRC4/DST4 and SRC6/DST6.
pub(crate) const OUT4: [[u8; 4]; 2] = [[192, 0, 2, 1], [192, 0, 2, 2]];
pub(crate) const OUT6: [[u8; 16]; 2] = [
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
];
pub(crate) const INNER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

pub(crate) fn ipv4_between(addrs: [[u8; 4]; 2], protocol: u8, body: &[u8]) -> Vec<u8> {
    let mut v = ipv4(protocol, &[], body);
    v[12..16].copy_from_slice(&addrs[0]);
    v[16..20].copy_from_slice(&addrs[1]);
    v
}

pub(crate) fn ipv6_between(addrs: [[u8; 16]; 2], next: u8, body: &[u8]) -> Vec<u8> {
    let mut v = ipv6(next, body);
    v[8..24].copy_from_slice(&addrs[0]);
    v[24..40].copy_from_slice(&addrs[1]);
    v
}

pub(crate) fn outer4(protocol: u8, body: &[u8]) -> Vec<u8> {
    ipv4_between(OUT4, protocol, body)
}

pub(crate) fn outer6(next: u8, body: &[u8]) -> Vec<u8> {
    ipv6_between(OUT6, next, body)
}

pub(crate) fn inner4(payload: &[u8]) -> Vec<u8> {
    ipv4(6, &[], &tcp(&[], payload))
}

/// As [`inner4`], from source port 40000 + `k` (another flow for each `k`).
pub(crate) fn inner4_port(k: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = tcp(&[], payload);
    t[0..2].copy_from_slice(&(40_000 + k).to_be_bytes());
    ipv4(6, &[], &t)
}

pub(crate) fn inner6(payload: &[u8]) -> Vec<u8> {
    ipv6(6, &tcp(&[], payload))
}

/// An inner Ethernet frame (tunnel MACs, optional tags).
pub(crate) fn inner_eth(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut v = eth(tags, ethertype, body);
    v[0..6].copy_from_slice(&INNER_MAC);
    v[6..12].copy_from_slice(&INNER_MAC);
    v
}

pub(crate) fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&(8 + body.len() as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(body);
    v
}

/// GRE version 0 with the optional fields `flags` names (C 0x80, K 0x20, S 0x10).
pub(crate) fn gre(flags: u8, protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, 0];
    v.extend_from_slice(&protocol.to_be_bytes());
    for bit in [0x80u8, 0x20, 0x10] {
        if flags & bit != 0 {
            v.extend_from_slice(&[0xee; 4]);
        }
    }
    v.extend_from_slice(body);
    v
}

/// VXLAN with the I flag and a VNI; `reserved` fills the reserved bytes.
pub(crate) fn vxlan(reserved: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x08, reserved, reserved, reserved, 0x00, 0x12, 0x34, reserved,
    ];
    v.extend_from_slice(body);
    v
}

/// PPP in HDLC-like framing.
pub(crate) fn ppp(protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff, 0x03];
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// `labels` MPLS labels, the last with the bottom-of-stack bit.
pub(crate) fn mpls(labels: usize, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..labels {
        let bos = u32::from(i + 1 == labels);
        let label = (16 + i as u32) << 12 | bos << 8 | 64;
        v.extend_from_slice(&label.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// A PPPoE session header and a PPP protocol field.
pub(crate) fn pppoe(protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x11, 0x00, 0x12, 0x34];
    v.extend_from_slice(&(2 + body.len() as u16).to_be_bytes());
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// 802.3 length + LLC/SNAP + ethertype (the 802.11 builders' LLC/SNAP).
pub(crate) use tcpflow_tests::link::wifi::llc_snap as snap;

/// An NFLOG frame: `tlvs` as (type, value), lengths in the given byte order.
pub(crate) fn nflog(family: u8, tlvs: &[(u16, &[u8])], big_endian: bool) -> Vec<u8> {
    let mut v = vec![family, 0, 0, 42];
    for &(kind, value) in tlvs {
        let len = 4 + value.len() as u16;
        if big_endian {
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&kind.to_be_bytes());
        } else {
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&kind.to_le_bytes());
        }
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
    }
    v
}

/// NFLOG TLVs as a capture has them: packet header, prefix, then the payload.
pub(crate) fn nflog_frame(family: u8, packet: &[u8], big_endian: bool) -> Vec<u8> {
    nflog(
        family,
        &[
            (1, &[0x08, 0x00, 3, 0]),
            (10, b"log\0"),
            (11, &[0, 0, 0, 0]),
            (9, packet),
        ],
        big_endian,
    )
}

/// A test frame that outlives the packet decoded from it.
pub(crate) fn leak(frame: Vec<u8>) -> &'static [u8] {
    frame.leak()
}

pub(crate) fn assert_outer4(p: &IpPacket<'_>, protocol: u8) {
    assert_eq!(p.src, Addr::V4(OUT4[0]));
    assert_eq!(p.dst, Addr::V4(OUT4[1]));
    assert_eq!(p.protocol, protocol);
}

pub(crate) fn assert_v4_tcp(p: &IpPacket<'_>, payload: &[u8]) {
    assert_eq!(p.src, Addr::V4(SRC4));
    assert_eq!(p.dst, Addr::V4(DST4));
    assert_eq!(p.protocol, 6);
    assert_eq!(p.fragment, None);
    assert_eq!(p.payload_len as usize, 20 + payload.len());
    let t = decode_tcp(p.payload, p.payload_len).unwrap();
    assert_eq!(t.payload, payload);
}

pub(crate) fn assert_v6_tcp(p: &IpPacket<'_>, payload: &[u8]) {
    assert_eq!(p.src, Addr::V6(SRC6));
    assert_eq!(p.dst, Addr::V6(DST6));
    assert_eq!(p.protocol, 6);
    assert_eq!(p.fragment, None);
    let t = decode_tcp(p.payload, p.payload_len).unwrap();
    assert_eq!(t.payload, payload);
    assert_eq!(t.payload_len as usize, payload.len());
}

/// A Geneve header with `options` 4-byte words of options.
pub(crate) fn geneve(options: u8, protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![options, 0x00];
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(&[0, 0, 7, 0]);
    for i in 0..options {
        v.extend_from_slice(&[0x01, 0x02, 0x80 | i, 0]);
    }
    v.extend_from_slice(body);
    v
}

/// A GTPv1-U G-PDU; `optional` adds the 4-byte sequence/N-PDU/next-type word with
/// these flags, `extensions` the extension headers (as (type, 4-byte units)).
pub(crate) fn gtp(flags: u8, extensions: &[(u8, u8)], body: &[u8]) -> Vec<u8> {
    let mut rest = Vec::new();
    if flags & 0x07 != 0 {
        rest.extend_from_slice(&[0, 1, 0]);
        rest.push(extensions.first().map_or(0, |e| e.0));
        for (i, &(_, units)) in extensions.iter().enumerate() {
            rest.push(units);
            rest.resize(rest.len() + usize::from(units) * 4 - 2, 0x5a);
            rest.push(extensions.get(i + 1).map_or(0, |e| e.0));
        }
    }
    rest.extend_from_slice(body);
    let mut v = vec![0x30 | flags, 0xff];
    v.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    v.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    v.extend_from_slice(&rest);
    v
}

/// An AYIYA header: identity 2^`id` bytes, signature `sig` * 4 bytes.
pub(crate) fn ayiya(id: u8, sig: u8, opcode: u8, next: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![
        id << 4 | 1,
        sig << 4 | 2,
        0x10 | opcode,
        next,
        0x5a,
        0,
        0,
        1,
    ];
    v.resize(v.len() + (1 << id) + usize::from(sig) * 4, 0x77);
    v.extend_from_slice(body);
    v
}

/// Tunnel frames that are not UDP: a cut gives an error or the inner packet.
pub(crate) fn tunnel_frames() -> Vec<(LinkType, Vec<u8>)> {
    let v4 = ipv4(6, &[1, 1, 1, 0], &tcp(&[1, 1, 1, 1], b"0123456789"));
    let v6 = inner6(b"abcdefgh");
    let mut cw = vec![0, 0, 0, 0];
    cw.extend_from_slice(&inner_eth(&[(0x8100, 1)], 0x0800, &v4));
    let mut pptp = vec![0x30, 0x81, 0x88, 0x0b];
    pptp.extend_from_slice(&(4 + v4.len() as u16).to_be_bytes());
    pptp.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    pptp.extend_from_slice(&ppp(0x0021, &v4));
    let snap4 = snap(0x0800, &v4);
    vec![
        (
            LinkType::ETHERNET,
            eth(&[(0x8100, 2)], 0x0800, &outer4(47, &gre(0xb0, 0x0800, &v4))),
        ),
        (
            LinkType::ETHERNET,
            eth(
                &[],
                0x0800,
                &outer4(47, &gre(0x20, 0x6558, &inner_eth(&[], 0x86dd, &v6))),
            ),
        ),
        (LinkType::RAW, outer4(47, &pptp)),
        (LinkType::RAW, outer6(4, &v4)),
        (LinkType::RAW, outer4(41, &v6)),
        (
            LinkType::ETHERNET,
            eth(&[(0x8100, 2)], 0x8847, &mpls(3, &v4)),
        ),
        (LinkType::ETHERNET, eth(&[], 0x8847, &mpls(1, &cw))),
        (
            LinkType::ETHERNET,
            eth(&[(0x88a8, 1), (0x8100, 2)], 0x8864, &pppoe(0x0021, &v4)),
        ),
        (LinkType::ETHERNET, eth(&[], snap4.len() as u16, &snap4)),
        (LinkType::PPP, ppp(0x0057, &v6)),
        (LinkType::PPP_HDLC, ppp(0x0281, &mpls(1, &v4))),
        (LinkType::C_HDLC, prefixed([0x0f, 0, 0x08, 0x00], &v4)),
        // (Payloads of whole 4-byte words: a cut in the padding would change nothing.)
        (LinkType::NFLOG, nflog_frame(2, &inner4(b"abcdefgh"), false)),
        (LinkType::NFLOG, nflog_frame(10, &v6, true)),
    ]
}

/// UDP tunnel frames and where their UDP header ends: a cut inside it gives the outer
/// UDP packet.
pub(crate) fn udp_tunnel_frames() -> Vec<(LinkType, Vec<u8>, usize)> {
    let v4 = ipv4(6, &[1, 1, 1, 0], &tcp(&[1, 1, 1, 1], b"0123456789"));
    let v6 = inner6(b"abcdefgh");
    let vx = udp(
        1,
        4789,
        &vxlan(0xff, &inner_eth(&[(0x8100, 7)], 0x0800, &v4)),
    );
    vec![
        (
            LinkType::ETHERNET,
            eth(&[(0x8100, 2)], 0x0800, &outer4(17, &vx)),
            14 + 4 + 20 + 8,
        ),
        (LinkType::RAW, outer6(17, &vx), 40 + 8),
        (
            LinkType::RAW,
            outer4(
                17,
                &udp(1, 6081, &geneve(2, 0x6558, &inner_eth(&[], 0x86dd, &v6))),
            ),
            28,
        ),
        (
            LinkType::RAW,
            outer4(17, &udp(1, 2152, &gtp(0x06, &[(0x85, 2)], &v4))),
            28,
        ),
        (
            LinkType::RAW,
            outer4(17, &udp(5072, 1, &ayiya(4, 5, 1, 41, &v6))),
            28,
        ),
    ]
}

/// An 802.11 data frame (QoS data when `qos`) with the DS bits `ds` (1 to-DS, 2 from-DS, 3
/// both: four addresses), from `MAC_SRC` to `MAC_DST`, sequence number 1.
pub(crate) fn wifi_data(ds: u8, qos: bool, body: &[u8]) -> Vec<u8> {
    let mut v = wifi::data_header(ds, qos, false, MAC_SRC, MAC_DST, 0x0010);
    v.extend_from_slice(body);
    v
}

/// A to-DS QoS data frame carrying an A-MSDU of `msdus` (each from `INNER_MAC` to
/// `MAC_DST`).
pub(crate) fn wifi_amsdu(msdus: &[&[u8]]) -> Vec<u8> {
    let mut f = wifi_data(1, true, &wifi::amsdu(INNER_MAC, MAC_DST, msdus));
    f[24] |= 0x80;
    f
}

/// A radiotap header (optionally TSFT, an extended bitmap with a vendor namespace bit, the
/// Flags field with FCS and data pad) before an 802.11 `frame`; with `pad` the MAC header
/// (24, 26, 30 or 32 bytes) is padded to 4 bytes, with `fcs` 4 bytes of FCS follow.
pub(crate) fn radiotap_frame(tsft: bool, fcs: bool, pad: bool, ext: bool, frame: &[u8]) -> Vec<u8> {
    let tsft = tsft.then_some(0x0102_0304_0506_0708);
    let mut v = wifi::radiotap_header(tsft, ext, fcs, pad, wifi::CH1_CCK, None);
    let hlen = wifi_header_len(frame);
    let mut mac = frame[..hlen].to_vec();
    if pad {
        wifi::pad_to_4(&mut mac);
    }
    v.extend_from_slice(&mac);
    v.extend_from_slice(&frame[hlen..]);
    if fcs {
        v.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    }
    v
}

/// The MAC header length of a frame built by [`wifi_data`].
pub(crate) fn wifi_header_len(frame: &[u8]) -> usize {
    wifi::header_len(frame)
}

/// A PPI header (an 802.11-Common field, then a 3-byte field that `aligned` pads) before a
/// frame of link type `dlt`, with a 4-byte FCS when `fcs`.
pub(crate) fn ppi_frame(dlt: u32, fcs: bool, aligned: bool, frame: &[u8]) -> Vec<u8> {
    // 1 Mb/s, signal -60 dBm, noise -96 dBm.
    let common = wifi::PpiCommon {
        tsf: 0,
        fcs,
        rate: 2,
        channel: wifi::CH1_CCK,
        signal: -60,
        noise: -96,
    };
    let mut v = wifi::ppi_header(dlt, aligned, &common, &[(0x8000, &[1, 2, 3])]);
    v.extend_from_slice(frame);
    if fcs {
        v.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    }
    v
}

/// A 144-byte Prism header, its length in either byte order.
pub(crate) fn prism_frame(big_endian: bool, frame: &[u8]) -> Vec<u8> {
    let mut v = wifi::prism_header(big_endian);
    v.extend_from_slice(frame);
    v
}

/// A 64-byte AVS (version 1) header.
pub(crate) fn avs_frame(frame: &[u8]) -> Vec<u8> {
    let mut v = wifi::avs_header();
    v.extend_from_slice(frame);
    v
}

/// The A-MSDU subframes [`decode_frame`] counts as skipped in a frame it decodes.
pub(crate) fn msdus_skipped(link: LinkType, frame: &[u8]) -> u64 {
    let mut stats = crate::stats::DecodeStats::default();
    decode_frame(link, frame, &mut stats).unwrap();
    stats.wifi_amsdu_skipped
}
