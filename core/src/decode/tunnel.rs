//! Tunnels inside IP, opened down to the innermost IP packet: IP in IP, GRE, and by UDP
//! port VXLAN, Geneve, GTP-U and AYIYA.

use super::*;
use link::{ETH_MPLS_MULTICAST, ETH_MPLS_UNICAST, ETH_PPP, ETH_TEB};

/// IP protocols that carry tunnels.
pub(super) const IPPROTO_IPIP: u8 = 4;
pub(super) const IPPROTO_UDP: u8 = 17;
pub(super) const IPPROTO_IPV6: u8 = 41;
pub(super) const IPPROTO_GRE: u8 = 47;

/// UDP destination ports of tunnels.
pub(super) const UDP_VXLAN: u16 = 4789;
pub(super) const UDP_GENEVE: u16 = 6081;
pub(super) const UDP_GTP_U: u16 = 2152;
pub(super) const UDP_AYIYA: u16 = 5072;

/// GRE flags (first byte).
pub(super) const GRE_CHECKSUM: u8 = 0x80;
pub(super) const GRE_ROUTING: u8 = 0x40;
pub(super) const GRE_KEY: u8 = 0x20;
pub(super) const GRE_SEQUENCE: u8 = 0x10;
/// GRE version 1 acknowledgement flag (second byte).
pub(super) const GRE_ACK: u8 = 0x80;

/// At most this many encapsulations are opened (IP in IP, GRE, UDP tunnels, Ethernet in
/// MPLS). An IP packet at that depth is returned as it is (its protocol is the tunnel's, so
/// the engine ignores it as not TCP); an Ethernet pseudowire beyond it is not decoded
/// ([`DecodeError::NotIp`]).
pub(super) const MAX_TUNNELS: usize = 4;
/// At most this many GTP-U extension headers.
pub(super) const MAX_GTP_EXTENSIONS: usize = 8;

impl Walk {
    /// Opens the tunnels `pkt` carries, down to the innermost packet. Every turn opens one
    /// more, so this ends within [`MAX_TUNNELS`] turns.
    pub(super) fn open_tunnels<'a>(
        &mut self,
        mut pkt: IpPacket<'a>,
    ) -> Result<IpPacket<'a>, DecodeError> {
        while pkt.fragment.is_none() && carries_tunnel(pkt.protocol) && self.tunnels < MAX_TUNNELS {
            let Some(inner) = tunnel(&pkt)? else {
                break;
            };
            self.tunnels += 1;
            let (version, ip) = self.down_to_ip(inner)?;
            pkt = ip_header(version, ip, self.vlans, self.macs)?;
        }
        Ok(pkt)
    }
}

/// Opens the tunnel that a reassembled datagram carries. [`decode_ip`] returns a fragment
/// as it is, so a tunnel whose outer packet was fragmented reaches the engine's reassembly
/// unopened; this continues from there. `outer` is a fragment of the datagram (for its
/// addresses, VLANs and MACs); `protocol` and `payload` are the reassembled datagram's upper
/// layer (after IPv6 extension headers, see [`skip_ipv6_extensions`]). The result is what
/// [`decode_ip`] would have returned for the datagram unfragmented: `Ok(None)` when it is
/// not a tunnel (or does not look like one), else the innermost packet (which may itself be
/// a fragment) or the inner decode's error.
pub fn decode_tunnel<'a>(
    outer: &IpPacket<'_>,
    protocol: u8,
    payload: &'a [u8],
) -> Result<Option<IpPacket<'a>>, DecodeError> {
    let pkt = IpPacket {
        vlans: outer.vlans,
        macs: outer.macs,
        src: outer.src,
        dst: outer.dst,
        protocol,
        fragment: None,
        payload,
        payload_len: len_u32(payload.len()),
    };
    if tunnel(&pkt)?.is_none() {
        return Ok(None);
    }
    Walk::new(outer.vlans, outer.macs)
        .open_tunnels(pkt)
        .map(Some)
}

/// Whether an upper-layer protocol may be a tunnel that [`tunnel`] opens.
pub(super) fn carries_tunnel(protocol: u8) -> bool {
    matches!(
        protocol,
        IPPROTO_IPIP | IPPROTO_IPV6 | IPPROTO_GRE | IPPROTO_UDP
    )
}

/// The tunnel an IP packet carries, if any (`None`: the packet is the one to return).
pub(super) fn tunnel<'a>(pkt: &IpPacket<'a>) -> Result<Option<Layer<'a>>, DecodeError> {
    let d = Span {
        data: pkt.payload,
        claimed: usize::try_from(pkt.payload_len).unwrap_or(usize::MAX),
    };
    match pkt.protocol {
        IPPROTO_IPIP => Ok(Some(Layer::Ip(Version::V4, d))),
        IPPROTO_IPV6 => Ok(Some(Layer::Ip(Version::V6, d))),
        IPPROTO_GRE => gre(d),
        IPPROTO_UDP => udp(d),
        _ => Ok(None),
    }
}

/// The payload of a tunnel whose header names an ethertype (GRE, Geneve).
pub(super) fn by_ethertype(ethertype: u16, d: Span<'_>) -> Option<Layer<'_>> {
    match ethertype {
        ETH_IPV4 => Some(Layer::Ip(Version::V4, d)),
        ETH_IPV6 => Some(Layer::Ip(Version::V6, d)),
        ETH_TEB => Some(Layer::Ethernet(d)),
        ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST => Some(Layer::Mpls(d)),
        _ => None,
    }
}

/// GRE: version 0 (RFC 2784/2890: optional checksum, key and sequence number) or version 1
/// (PPTP, RFC 2637: PPP). Source routing (RFC 1701) is not decoded.
pub(super) fn gre(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    let (h, _) = d.split::<4>().ok_or(DecodeError::TruncatedIp)?;
    let (flags, protocol) = (h[0], be16(h, 2));
    let optional = |present: bool| if present { 4 } else { 0 };
    let len = match h[1] & 0x07 {
        0 if flags & GRE_ROUTING == 0 => {
            4 + optional(flags & GRE_CHECKSUM != 0)
                + optional(flags & GRE_KEY != 0)
                + optional(flags & GRE_SEQUENCE != 0)
        }
        // The key field (payload length, call id) is mandatory.
        1 if protocol == ETH_PPP && flags & GRE_KEY != 0 => {
            8 + optional(flags & GRE_SEQUENCE != 0) + optional(h[1] & GRE_ACK != 0)
        }
        _ => return Ok(None),
    };
    let inner = if protocol == ETH_PPP {
        match usize::from(be16(d.data, 4)) {
            // An acknowledgement alone (or a header cut before the length: reported below).
            0 if d.data.len() >= 8 => return Ok(None),
            n => Layer::Ppp(d.after(len).limit(n)),
        }
    } else {
        match by_ethertype(protocol, d.after(len)) {
            Some(inner) => inner,
            None => return Ok(None),
        }
    };
    if d.data.len() < len {
        return Err(DecodeError::TruncatedIp);
    }
    Ok(Some(inner))
}

/// UDP tunnels, by destination port (AYIYA: either port). The UDP length is used where it is
/// shorter than the IP length (0: the IP length; below 8: malformed, not a tunnel).
pub(super) fn udp(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    // A UDP header cut by the snap length: its port is unknown.
    let Some((h, _)) = d.split::<8>() else {
        return Ok(None);
    };
    let d = match usize::from(be16(h, 4)) {
        0 => d,
        n if n < 8 => return Ok(None),
        n => d.limit(n),
    };
    let body = d.after(8);
    match (be16(h, 0), be16(h, 2)) {
        (_, UDP_VXLAN) => vxlan(body),
        (_, UDP_GENEVE) => geneve(body),
        (_, UDP_GTP_U) => gtp_u(body),
        // An AYIYA server answers from its port to the client's.
        (_, UDP_AYIYA) | (UDP_AYIYA, _) => ayiya(body),
        _ => Ok(None),
    }
}

/// VXLAN (RFC 7348): flags (I: the VNI is valid), VNI, then an Ethernet frame. Reserved
/// fields are not checked (some senders use them).
pub(super) fn vxlan(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    match d.header(8)? {
        Some(h) if h[0] & 0x08 != 0 => Ok(Some(Layer::Ethernet(d.after(8)))),
        _ => Ok(None),
    }
}

/// Geneve (RFC 8926): version 0, options length in 4-byte words, protocol type.
pub(super) fn geneve(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    let Some(h) = d.header(8)? else {
        return Ok(None);
    };
    if h[0] >> 6 != 0 {
        return Ok(None);
    }
    let len = 8 + usize::from(h[0] & 0x3f) * 4;
    let Some(inner) = by_ethertype(be16(h, 2), d.after(len)) else {
        return Ok(None);
    };
    Ok(d.header(len)?.map(|_| inner))
}

/// GTP-U (3GPP TS 29.281): version 1, protocol type GTP, message type G-PDU (user data;
/// echo and other signalling carry no packet). The length counts what follows the first 8
/// bytes; with any of the E, S, PN flags 4 more bytes follow (sequence number, N-PDU
/// number, next extension type), then extension headers (each a length in 4-byte units,
/// content, next type). The payload is an IP packet of either version.
pub(super) fn gtp_u(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    let Some(h) = d.header(8)? else {
        return Ok(None);
    };
    let flags = h[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
        return Ok(None);
    }
    let d = d.limit(8 + usize::from(be16(h, 2)));
    if flags & 0x07 == 0 {
        return Ok(Some(Layer::Ip(Version::Any, d.after(8))));
    }
    let mut off = 12;
    let Some(mut next) = d.header(off)?.and_then(|o| o.last().copied()) else {
        return Ok(None);
    };
    if flags & 0x04 == 0 {
        next = 0;
    }
    for _ in 0..=MAX_GTP_EXTENSIONS {
        if next == 0 {
            return Ok(Some(Layer::Ip(Version::Any, d.after(off))));
        }
        let units = match d.header(off + 1)?.and_then(|e| e.last().copied()) {
            Some(u) if u != 0 => usize::from(u),
            _ => return Ok(None),
        };
        off += units * 4;
        match d.header(off)?.and_then(|e| e.last().copied()) {
            Some(n) => next = n,
            None => return Ok(None),
        }
    }
    // Too many extension headers.
    Ok(None)
}

/// AYIYA (Anything In Anything): identity length 2^n bytes and signature length n * 4
/// bytes from the high nibbles of the first two bytes; opcode 1 (forward) carries a packet
/// whose protocol is the next header byte.
pub(super) fn ayiya(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    let Some(h) = d.header(8)? else {
        return Ok(None);
    };
    let version = match (h[2] & 0x0f, h[3]) {
        (1, IPPROTO_IPV6) => Version::V6,
        (1, IPPROTO_IPIP) => Version::V4,
        _ => return Ok(None),
    };
    let len = 8 + (1usize << (h[0] >> 4)) + usize::from(h[1] >> 4) * 4;
    Ok(d.header(len)?.map(|_| Layer::Ip(version, d.after(len))))
}
#[cfg(test)]
mod tests {
    use super::{MAX_GTP_EXTENSIONS, MAX_TUNNELS};
    use crate::decode::testutil::*;

    #[test]
    fn ip_in_ip() {
        let v4 = inner4(b"4in");
        let v6 = inner6(b"6in");
        let cases = [
            eth(&[(0x8100, 3)], 0x0800, &outer4(4, &v4)),
            eth(&[(0x8100, 3)], 0x0800, &outer4(41, &v6)),
            eth(&[(0x8100, 3)], 0x86dd, &outer6(4, &v4)),
            eth(&[(0x8100, 3)], 0x86dd, &outer6(41, &v6)),
        ];
        for (i, f) in cases.iter().enumerate() {
            let p = decode_ip(LinkType::ETHERNET, f).unwrap();
            if i % 2 == 0 {
                assert_v4_tcp(&p, b"4in");
            } else {
                assert_v6_tcp(&p, b"6in");
            }
            // The capture link's VLAN and MACs stay.
            assert_eq!(p.vlans.as_slice(), &[3]);
            assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        }
        // Behind IPv6 extension headers.
        let mut body = ext(41, 1);
        body.extend_from_slice(&v6);
        assert_v6_tcp(
            &decode_ip(LinkType::RAW, &outer6(60, &body)).unwrap(),
            b"6in",
        );
        // The protocol decides the inner version; inner errors are returned.
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &v6)),
            Err(DecodeError::BadIpVersion)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &outer6(41, &v4)),
            Err(DecodeError::BadIpVersion)
        );
        // An inner packet the outer length leaves no room for is malformed; one the capture
        // cut is truncated.
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &[])),
            Err(DecodeError::BadIpHeader)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &v4[..10])),
            Err(DecodeError::BadIpHeader)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &v4)[..30]),
            Err(DecodeError::TruncatedIp)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &v4)[..20]),
            Err(DecodeError::TruncatedIp)
        );
        let mut bad = v4.clone();
        bad[0] = 0x44;
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(4, &bad)),
            Err(DecodeError::BadIpHeader)
        );
        // The outer length bounds the inner packet; the snap length only cuts it.
        let mut long = v4.clone();
        long[2..4].copy_from_slice(&500u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(outer4(4, &long))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (23, 23));
        let f = outer4(4, &v4);
        let p = decode_ip(LinkType::RAW, &f[..f.len() - 2]).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (23, 21));
        // IPComp cannot be decompressed: returned as it is.
        let p = decode_ip(LinkType::RAW, leak(outer4(108, &[4, 0, 0, 1, 9, 9]))).unwrap();
        assert_outer4(&p, 108);
        // Other protocols are the packet's own.
        let p = decode_ip(LinkType::RAW, leak(outer4(50, &[0; 16]))).unwrap();
        assert_outer4(&p, 50);
    }

    #[test]
    fn gre_version_0() {
        let v4 = inner4(b"gre");
        for flags in [0x00u8, 0x80, 0x20, 0x10, 0xa0, 0x30, 0xb0] {
            let f = eth(
                &[(0x8100, 9)],
                0x0800,
                &outer4(47, &gre(flags, 0x0800, &v4)),
            );
            let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
            assert_v4_tcp(&p, b"gre");
            assert_eq!(p.vlans.as_slice(), &[9]);
            let f = outer6(47, &gre(flags, 0x86dd, &inner6(b"gre6")));
            assert_v6_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"gre6");
        }
        // Transparent Ethernet bridging: inner tags are skipped, the outer VLAN stays.
        let inner = inner_eth(&[(0x8100, 100), (0x8100, 200)], 0x0800, &v4);
        let f = eth(
            &[(0x8100, 9)],
            0x0800,
            &outer4(47, &gre(0x20, 0x6558, &inner)),
        );
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v4_tcp(&p, b"gre");
        assert_eq!(p.vlans.as_slice(), &[9]);
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        // MPLS in GRE.
        let f = outer4(47, &gre(0, 0x8847, &mpls(2, &v4)));
        assert_v4_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"gre");
        // ERSPAN, WCCP, routing present, versions 2..7: the outer packet.
        for g in [
            gre(0x10, 0x88be, &[0; 40]),
            gre(0, 0x883e, &[0; 40]),
            gre(0x40, 0x0800, &v4),
        ] {
            let p = decode_ip(LinkType::RAW, leak(outer4(47, &g))).unwrap();
            assert_outer4(&p, 47);
        }
        for version in 2..8u8 {
            let mut g = gre(0, 0x0800, &v4);
            g[1] = version;
            assert_outer4(&decode_ip(LinkType::RAW, &outer4(47, &g)).unwrap(), 47);
        }
        // Inner failures are the inner decode's.
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(47, &gre(0xb0, 0x0800, &[]))),
            Err(DecodeError::BadIpHeader)
        );
        assert_eq!(
            decode_ip(
                LinkType::RAW,
                &outer4(47, &gre(0xb0, 0x0800, &v4))[..20 + 16 + 5]
            ),
            Err(DecodeError::TruncatedIp)
        );
        assert_eq!(
            decode_ip(
                LinkType::RAW,
                &outer4(47, &gre(0, 0x6558, &eth(&[], 0x0806, &[0; 28])))
            ),
            Err(DecodeError::NotIp)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(47, &[0x00, 0x00, 0x08])),
            Err(DecodeError::TruncatedIp)
        );
        // Flags promise fields that are not there.
        assert_eq!(
            decode_ip(
                LinkType::RAW,
                &outer4(47, &[0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0])
            ),
            Err(DecodeError::TruncatedIp)
        );
    }

    #[test]
    fn gre_version_1_pptp() {
        let v4 = inner4(b"pptp");
        let pptp = |flags: u8, ack: bool, ppp_frame: &[u8]| {
            let mut v = vec![flags | 0x20, 0x01 | if ack { 0x80 } else { 0 }, 0x88, 0x0b];
            v.extend_from_slice(&(ppp_frame.len() as u16).to_be_bytes());
            v.extend_from_slice(&[0x40, 0x00]);
            if flags & 0x10 != 0 {
                v.extend_from_slice(&7u32.to_be_bytes());
            }
            if ack {
                v.extend_from_slice(&6u32.to_be_bytes());
            }
            v.extend_from_slice(ppp_frame);
            v
        };
        for (flags, ack) in [(0x10u8, false), (0x10, true)] {
            let f = outer4(47, &pptp(flags, ack, &ppp(0x0021, &v4)));
            assert_v4_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"pptp");
        }
        // Address/control and protocol field compression.
        let mut compressed = vec![0x21];
        compressed.extend_from_slice(&v4);
        let f = outer4(47, &pptp(0x10, true, &compressed));
        assert_v4_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"pptp");
        // An acknowledgement alone: the outer packet.
        let f = outer4(47, &pptp(0, true, &[]));
        assert_outer4(&decode_ip(LinkType::RAW, &f).unwrap(), 47);
        // Encrypted (MPPE) or control PPP: not IP.
        let f = outer4(47, &pptp(0x10, false, &ppp(0x00fd, &[1, 2, 3, 4])));
        assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::NotIp));
        // Without the key flag, or another protocol: the outer packet.
        let mut nokey = pptp(0x10, false, &ppp(0x0021, &v4));
        nokey[0] &= !0x20;
        assert_outer4(&decode_ip(LinkType::RAW, &outer4(47, &nokey)).unwrap(), 47);
        let mut other = pptp(0x10, false, &ppp(0x0021, &v4));
        other[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_outer4(&decode_ip(LinkType::RAW, &outer4(47, &other)).unwrap(), 47);
        // The payload length bounds the PPP frame.
        let mut short = pptp(0x10, false, &ppp(0x0021, &v4));
        short[4..6].copy_from_slice(&24u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(outer4(47, &short))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (0, 0));
        let g = pptp(0x10, true, &ppp(0x0021, &v4));
        for n in 4..16 {
            assert_eq!(
                decode_ip(LinkType::RAW, &outer4(47, &g[..n])),
                Err(DecodeError::TruncatedIp),
                "{n}"
            );
        }
    }

    #[test]
    fn vxlan_tunnels() {
        let v4 = inner4(b"vxlan");
        for reserved in [0u8, 0xff] {
            let inner = inner_eth(&[(0x8100, 300)], 0x0800, &v4);
            let f = eth(
                &[(0x8100, 4)],
                0x0800,
                &outer4(17, &udp(54321, 4789, &vxlan(reserved, &inner))),
            );
            let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
            assert_v4_tcp(&p, b"vxlan");
            assert_eq!(p.vlans.as_slice(), &[4]);
            assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        }
        let f = outer6(
            17,
            &udp(1, 4789, &vxlan(0, &inner_eth(&[], 0x86dd, &inner6(b"v6")))),
        );
        assert_v6_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"v6");
        // Not VXLAN: I flag clear, another port, the source port only, a short datagram.
        let inner = inner_eth(&[], 0x0800, &v4);
        let mut no_i = vxlan(0, &inner);
        no_i[0] = 0;
        for u in [
            udp(1, 4789, &no_i),
            udp(1, 4790, &vxlan(0, &inner)),
            udp(4789, 1, &vxlan(0, &inner)),
            udp(1, 4789, &[0x08, 0, 0, 0]),
        ] {
            assert_outer4(&decode_ip(LinkType::RAW, &outer4(17, &u)).unwrap(), 17);
        }
        // UDP length below its header: malformed, the outer packet.
        let mut bad = udp(1, 4789, &vxlan(0, &inner));
        bad[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_outer4(&decode_ip(LinkType::RAW, &outer4(17, &bad)).unwrap(), 17);
        // The UDP length bounds the inner frame; 0 means the IP length.
        let mut short = udp(1, 4789, &vxlan(0, &inner));
        short[4..6].copy_from_slice(&(8 + 8 + 14 + 20 + 20 + 2u16).to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(outer4(17, &short))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (22, 22));
        let mut zero = udp(1, 4789, &vxlan(0, &inner));
        zero[4..6].copy_from_slice(&0u16.to_be_bytes());
        assert_v4_tcp(
            &decode_ip(LinkType::RAW, &outer4(17, &zero)).unwrap(),
            b"vxlan",
        );
        // Inner failures are the inner decode's.
        let arp = udp(1, 4789, &vxlan(0, &inner_eth(&[], 0x0806, &[0; 28])));
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(17, &arp)),
            Err(DecodeError::NotIp)
        );
        let cut = udp(1, 4789, &vxlan(0, &inner[..10]));
        assert_eq!(
            decode_ip(LinkType::RAW, &outer4(17, &cut)),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn vxlan_agrees_with_etherparse() {
        use etherparse::PacketBuilder;
        let mut inner = Vec::new();
        PacketBuilder::ethernet2(INNER_MAC, INNER_MAC)
            .ipv6(SRC6, DST6, 64)
            .tcp(40000, 80, 1000, 512)
            .write(&mut inner, b"etherparse inner")
            .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv4(OUT4[0], OUT4[1], 64)
            .udp(33333, 4789)
            .write(&mut f, &vxlan(0, &inner))
            .unwrap();
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(p.vlans.as_slice(), &[42]);
        assert_v6_tcp(&p, b"etherparse inner");
        // GTP-U and Geneve around an etherparse IPv4 packet.
        let mut ip = Vec::new();
        PacketBuilder::ipv4(SRC4, DST4, 64)
            .tcp(40000, 80, 1000, 512)
            .write(&mut ip, b"gtp")
            .unwrap();
        let mut gtp = vec![0x30, 0xff];
        gtp.extend_from_slice(&(ip.len() as u16).to_be_bytes());
        gtp.extend_from_slice(&[0, 0, 0, 1]);
        gtp.extend_from_slice(&ip);
        let mut f = Vec::new();
        PacketBuilder::ipv6(OUT6[0], OUT6[1], 64)
            .udp(2152, 2152)
            .write(&mut f, &gtp)
            .unwrap();
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_eq!((p.src, p.dst), (Addr::V4(SRC4), Addr::V4(DST4)));
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, b"gtp");
    }

    #[test]
    fn geneve_tunnels() {
        let v4 = inner4(b"geneve");
        for options in [0u8, 1, 5, 63] {
            let g = geneve(options, 0x6558, &inner_eth(&[], 0x0800, &v4));
            let f = eth(&[], 0x0800, &outer4(17, &udp(9, 6081, &g)));
            assert_v4_tcp(&decode_ip(LinkType::ETHERNET, &f).unwrap(), b"geneve");
            let g = geneve(options, 0x0800, &v4);
            assert_v4_tcp(
                &decode_ip(LinkType::RAW, &outer6(17, &udp(9, 6081, &g))).unwrap(),
                b"geneve",
            );
            let g = geneve(options, 0x86dd, &inner6(b"g6"));
            assert_v6_tcp(
                &decode_ip(LinkType::RAW, &outer4(17, &udp(9, 6081, &g))).unwrap(),
                b"g6",
            );
        }
        // Version 1, an unknown protocol, options beyond the datagram: the outer packet.
        let mut v1 = geneve(0, 0x0800, &v4);
        v1[0] |= 0x40;
        let mut past = geneve(0, 0x0800, &[0; 8]);
        past[0] = 3;
        for g in [v1, geneve(2, 0x0806, &[0; 28]), past] {
            let f = outer4(17, &udp(9, 6081, &g));
            assert_outer4(&decode_ip(LinkType::RAW, &f).unwrap(), 17);
        }
        // Options cut by the snap length.
        let f = outer4(17, &udp(9, 6081, &geneve(4, 0x0800, &v4)));
        assert_eq!(
            decode_ip(LinkType::RAW, &f[..20 + 8 + 8 + 10]),
            Err(DecodeError::TruncatedIp)
        );
    }

    #[test]
    fn gtp_u_tunnels() {
        let v4 = inner4(b"gtp");
        let cases = [
            gtp(0, &[], &v4),
            gtp(0x02, &[], &v4),
            gtp(0x01, &[], &v4),
            gtp(0x04, &[(0x85, 1)], &v4),
            gtp(0x06, &[(0x85, 2), (0x40, 1), (0xc0, 3)], &v4),
        ];
        for g in cases {
            let f = eth(&[], 0x0800, &outer4(17, &udp(2152, 2152, &g)));
            assert_v4_tcp(&decode_ip(LinkType::ETHERNET, &f).unwrap(), b"gtp");
        }
        let g = gtp(0, &[], &inner6(b"gtp6"));
        assert_v6_tcp(
            &decode_ip(LinkType::RAW, &outer4(17, &udp(40000, 2152, &g))).unwrap(),
            b"gtp6",
        );
        // Extension headers up to the limit, then one too many.
        let exts: Vec<(u8, u8)> = (0..MAX_GTP_EXTENSIONS).map(|_| (0x85, 1)).collect();
        let g = gtp(0x04, &exts, &v4);
        assert_v4_tcp(
            &decode_ip(LinkType::RAW, &outer4(17, &udp(1, 2152, &g))).unwrap(),
            b"gtp",
        );
        let exts: Vec<(u8, u8)> = (0..=MAX_GTP_EXTENSIONS).map(|_| (0x85, 1)).collect();
        let g = gtp(0x04, &exts, &v4);
        assert_outer4(
            &decode_ip(LinkType::RAW, &outer4(17, &udp(1, 2152, &g))).unwrap(),
            17,
        );
        // Echo request, version 2 (GTP-C), GTP', a zero-length extension header, an
        // extension past the GTP length: the outer packet.
        let mut echo = gtp(0x02, &[], &[]);
        echo[1] = 1;
        let mut v2 = gtp(0, &[], &v4);
        v2[0] = 0x48;
        let mut prime = gtp(0, &[], &v4);
        prime[0] &= !0x10;
        let mut zero_ext = gtp(0x04, &[(0x85, 1)], &v4);
        zero_ext[12] = 0;
        let mut past = gtp(0x04, &[(0x85, 1)], &[]);
        past[12] = 2;
        for g in [echo, v2, prime, zero_ext, past] {
            let f = outer4(17, &udp(2152, 2152, &g));
            assert_outer4(&decode_ip(LinkType::RAW, &f).unwrap(), 17);
        }
        // The GTP length bounds the packet; a non-IP payload is an inner error.
        let mut short = gtp(0, &[], &v4);
        short[2..4].copy_from_slice(&41u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(outer4(17, &udp(1, 2152, &short)))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (21, 21));
        let f = outer4(17, &udp(1, 2152, &gtp(0, &[], &[0x21; 30])));
        assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::BadIpVersion));
    }

    #[test]
    fn ayiya_tunnels() {
        let v6 = inner6(b"ayiya");
        for (id, sig) in [(4u8, 5u8), (0, 0), (3, 15)] {
            let a = ayiya(id, sig, 1, 41, &v6);
            // Client to server, and the server's answer from its port.
            for (sport, dport) in [(53859, 5072), (5072, 53859)] {
                let f = eth(&[], 0x0800, &outer4(17, &udp(sport, dport, &a)));
                assert_v6_tcp(&decode_ip(LinkType::ETHERNET, &f).unwrap(), b"ayiya");
            }
        }
        let a = ayiya(4, 5, 1, 4, &inner4(b"v4"));
        assert_v4_tcp(
            &decode_ip(LinkType::RAW, &outer4(17, &udp(1, 5072, &a))).unwrap(),
            b"v4",
        );
        // Heartbeats (opcode 0), other next headers, an identity past the datagram.
        for a in [
            ayiya(4, 5, 0, 41, &[]),
            ayiya(4, 5, 1, 17, &[0; 8]),
            ayiya(4, 5, 1, 41, &[])[..20].to_vec(),
        ] {
            let f = outer4(17, &udp(1, 5072, &a));
            assert_outer4(&decode_ip(LinkType::RAW, &f).unwrap(), 17);
        }
        let mut huge = ayiya(0, 0, 1, 41, &v6);
        huge[0] = 0xf1;
        let f = outer4(17, &udp(1, 5072, &huge));
        assert_outer4(&decode_ip(LinkType::RAW, &f).unwrap(), 17);
    }

    #[test]
    fn tunnel_nesting_limit() {
        // IPv4 in IPv4, `depth` encapsulations deep; level i has addresses 10.i.0.1/2.
        let nested = |depth: usize| {
            let mut p = ipv4_between(
                [[10, depth as u8, 0, 1], [10, depth as u8, 0, 2]],
                6,
                &tcp(&[], b"deep"),
            );
            for level in (0..depth).rev() {
                p = ipv4_between([[10, level as u8, 0, 1], [10, level as u8, 0, 2]], 4, &p);
            }
            p
        };
        for depth in 0..=MAX_TUNNELS {
            let p = decode_ip(LinkType::RAW, leak(nested(depth))).unwrap();
            assert_eq!(p.src, Addr::V4([10, depth as u8, 0, 1]));
            assert_eq!(p.protocol, 6);
        }
        // One more: the packet at the limit is returned as it is.
        let p = decode_ip(LinkType::RAW, leak(nested(MAX_TUNNELS + 1))).unwrap();
        assert_eq!(p.src, Addr::V4([10, MAX_TUNNELS as u8, 0, 1]));
        assert_eq!(p.protocol, 4);
        let p = decode_ip(LinkType::RAW, leak(nested(40))).unwrap();
        assert_eq!(p.protocol, 4);
        // Mixed: IPv6 in GRE in VXLAN in IPv4 in IPv6.
        let g = ipv4_between(
            [[10, 3, 0, 1], [10, 3, 0, 2]],
            47,
            &gre(0x20, 0x86dd, &inner6(b"mix")),
        );
        let v = udp(1, 4789, &vxlan(0, &inner_eth(&[], 0x0800, &g)));
        let f = outer6(4, &ipv4_between([[10, 1, 0, 1], [10, 1, 0, 2]], 17, &v));
        assert_v6_tcp(&decode_ip(LinkType::RAW, &f).unwrap(), b"mix");
        // Ethernet pseudowires in MPLS count too: the fifth is not decoded.
        let pw = |depth: usize| {
            let mut f = eth(&[], 0x8847, &mpls(1, &inner4(b"pw")));
            for _ in 0..depth {
                let mut cw = vec![0, 0, 0, 0];
                cw.extend_from_slice(&f);
                f = eth(&[], 0x8847, &mpls(1, &cw));
            }
            f
        };
        for depth in 0..=MAX_TUNNELS {
            assert_v4_tcp(&decode_ip(LinkType::ETHERNET, &pw(depth)).unwrap(), b"pw");
        }
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &pw(MAX_TUNNELS + 1)),
            Err(DecodeError::NotIp)
        );
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &pw(100)),
            Err(DecodeError::NotIp)
        );
        // Pseudowires and IP tunnels share the limit.
        let mut cw = vec![0, 0, 0, 0];
        cw.extend_from_slice(&eth(&[], 0x0800, &nested(MAX_TUNNELS)));
        let p = decode_ip(LinkType::ETHERNET, leak(eth(&[], 0x8847, &mpls(1, &cw)))).unwrap();
        assert_eq!(p.src, Addr::V4([10, MAX_TUNNELS as u8 - 1, 0, 1]));
        assert_eq!(p.protocol, 4);
    }

    #[test]
    fn fragmented_outer_packets_are_not_opened() {
        let g = gre(0, 0x0800, &inner4(b"frag"));
        let mut f = outer4(47, &g);
        f[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_outer4(&p, 47);
        assert!(p.fragment.is_some());
        assert_eq!(p.payload, &g[..]);
        let mut body = frag_hdr(17, 0, true, 5);
        body.extend_from_slice(&udp(
            1,
            4789,
            &vxlan(0, &inner_eth(&[], 0x0800, &inner4(b"x"))),
        ));
        let p = decode_ip(LinkType::RAW, leak(outer6(44, &body))).unwrap();
        assert_eq!((p.src, p.protocol), (Addr::V6(OUT6[0]), 17));
        assert!(p.fragment.is_some());
        // An inner fragment is returned for the engine, with the inner addresses.
        let mut inner = inner4(b"inner fragment");
        inner[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(outer4(4, &inner))).unwrap();
        assert_eq!((p.src, p.protocol), (Addr::V4(SRC4), 6));
        assert_eq!(p.fragment.map(|f| f.more), Some(true));
    }

    #[test]
    fn tunnels_in_reassembled_datagrams() {
        // A GRE datagram whose first fragment decode_ip returned as it was.
        let g = gre(
            0x20,
            0x6558,
            &inner_eth(&[(0x8100, 8)], 0x0800, &inner4(b"reassembled")),
        );
        let mut f = eth(&[(0x8100, 3)], 0x0800, &outer4(47, &g[..16]));
        f[14 + 4 + 6..14 + 4 + 8].copy_from_slice(&0x2000u16.to_be_bytes());
        let first = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert!(first.fragment.is_some());
        let p = decode_tunnel(&first, 47, &g).unwrap().unwrap();
        assert_v4_tcp(&p, b"reassembled");
        assert_eq!(p.vlans.as_slice(), &[3]);
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        // GTP-U over IPv6, the inner packet itself a fragment.
        let mut inner = inner6(b"gtp");
        inner[6] = 44;
        let mut body = frag_hdr(6, 0, true, 1);
        body.extend_from_slice(&inner[40..]);
        let inner = ipv6(44, &body);
        let u = udp(2152, 2152, &gtp(0, &[], &inner));
        let first = decode_ip(LinkType::RAW, leak(outer6(17, &u))).unwrap();
        let p = decode_tunnel(&first, 17, &u).unwrap().unwrap();
        assert_eq!((p.src, p.protocol), (Addr::V6(SRC6), 6));
        assert!(p.fragment.is_some());
        // Not a tunnel, or not one that looks right: None. Inner errors are returned.
        assert_eq!(decode_tunnel(&first, 6, &tcp(&[], b"")), Ok(None));
        assert_eq!(decode_tunnel(&first, 17, &udp(1, 53, &[0; 12])), Ok(None));
        assert_eq!(decode_tunnel(&first, 17, &udp(1, 4789, &[0; 12])), Ok(None));
        // (A reassembled datagram is whole: what its inner header lacks is malformed.)
        assert_eq!(
            decode_tunnel(&first, 47, &gre(0, 0x0800, &[0x45, 0])),
            Err(DecodeError::BadIpHeader)
        );
        assert_eq!(decode_tunnel(&first, 4, &[]), Err(DecodeError::BadIpHeader));
        assert_eq!(
            decode_tunnel(&first, 47, &[0, 0, 0x08]),
            Err(DecodeError::TruncatedIp)
        );
        // The nesting limit holds from there.
        let mut deep = inner4(b"deep");
        for _ in 0..MAX_TUNNELS {
            deep = outer4(4, &deep);
        }
        let p = decode_tunnel(&first, 4, &deep).unwrap().unwrap();
        assert_outer4(&p, 4);
    }

    #[test]
    fn tunnel_truncation_at_every_offset() {
        let frames = tunnel_frames()
            .into_iter()
            .map(|(l, f)| (l, f, 0))
            .chain(udp_tunnel_frames());
        for (link, frame, udp_end) in frames {
            let full = decode_ip(link, &frame).unwrap();
            assert_eq!(full.protocol, 6, "{link:?} {frame:02x?}");
            let full_tcp = decode_tcp(full.payload, full.payload_len).unwrap();
            for n in 0..frame.len() {
                match decode_ip(link, &frame[..n]) {
                    Err(_) => {}
                    Ok(p) if p.src != full.src => {
                        // The port of a UDP header cut short is unknown.
                        assert_eq!(p.protocol, 17, "{link:?} cut at {n}");
                        assert!(n < udp_end, "{link:?} cut at {n}");
                    }
                    Ok(p) => {
                        assert_eq!((p.dst, p.protocol), (full.dst, 6));
                        assert_eq!(p.payload_len, full.payload_len, "{link:?} cut at {n}");
                        assert!(p.payload.len() < full.payload.len(), "{link:?} cut at {n}");
                        assert!(full.payload.starts_with(p.payload));
                        if let Ok(t) = decode_tcp(p.payload, p.payload_len) {
                            assert_eq!(t.payload_len, full_tcp.payload_len);
                            assert!(t.payload.len() < full_tcp.payload.len());
                        }
                    }
                }
            }
        }
    }
}
