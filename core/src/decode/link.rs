//! Link layers and what sits between them and IP: Ethernet with VLAN tags, 802.2 LLC/SNAP,
//! PPPoE, PPP, Cisco HDLC, MPLS, Linux cooked capture (SLL, SLL2), BSD null/loop, NFLOG.

use super::*;
use tunnel::MAX_TUNNELS;

/// Ethertypes and TPIDs the decoder knows.
pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86dd;
pub(super) const TPID_8021Q: u16 = 0x8100;
pub(super) const TPID_8021AD: u16 = 0x88a8;
pub(super) const TPID_9100: u16 = 0x9100;
pub(super) const ETH_MPLS_UNICAST: u16 = 0x8847;
pub(super) const ETH_MPLS_MULTICAST: u16 = 0x8848;
pub(super) const ETH_PPPOE_SESSION: u16 = 0x8864;
/// Transparent Ethernet bridging: an Ethernet frame (GRE, Geneve).
pub(super) const ETH_TEB: u16 = 0x6558;
/// PPP (PPTP's enhanced GRE).
pub(super) const ETH_PPP: u16 = 0x880b;
/// Below this an Ethernet type field is an 802.3 length, and 802.2 LLC follows.
pub(super) const ETH_MIN_TYPE: u16 = 0x0600;
/// Linux cooked capture protocol value for an 802.2 LLC frame.
pub(super) const SLL_LLC: u16 = 0x0004;

/// PPP protocol numbers.
pub(super) const PPP_IPV4: u16 = 0x0021;
pub(super) const PPP_IPV6: u16 = 0x0057;
pub(super) const PPP_MPLS_UNICAST: u16 = 0x0281;
pub(super) const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// NFLOG TLV type of the packet itself.
pub(super) const NFULA_PAYLOAD: u16 = 9;

/// At most this many MPLS labels in one stack; a deeper stack is not decoded
/// ([`DecodeError::NotIp`]).
pub(super) const MAX_MPLS_LABELS: usize = 8;
/// At most this many link-layer headers between two IP headers (a longer chain is not
/// decoded: [`DecodeError::NotIp`]). Chains only repeat through Ethernet in MPLS, which
/// counts against [`MAX_TUNNELS`], so this is only a backstop.
pub(super) const MAX_LINK_STEPS: usize = 16;

/// BSD null / OpenBSD loop family. The null header is in the capturing host's byte order
/// (and some loop writers got it wrong), so both orders are tried; the known values are
/// below 256, so at most one order matches.
pub(super) fn bsd_family(h: &[u8; 4]) -> Result<Version, DecodeError> {
    let known = |v: u32| match v {
        2 => Some(Version::V4),
        // NetBSD/OpenBSD, FreeBSD, macOS each numbered AF_INET6 differently.
        24 | 28 | 30 => Some(Version::V6),
        _ => None,
    };
    known(u32::from_le_bytes(*h))
        .or_else(|| known(u32::from_be_bytes(*h)))
        .ok_or(DecodeError::NotIp)
}

impl Walk {
    /// Reads VLAN tags while `ethertype` is a TPID; returns the inner ethertype and what
    /// follows.
    pub(super) fn vlan_tags<'a>(
        &mut self,
        mut ethertype: u16,
        mut rest: Span<'a>,
    ) -> Result<(u16, Span<'a>), DecodeError> {
        // The flow keeps the capture link's VLANs (tshark keys flows on the inner addresses
        // alone); tags inside a tunnel are skipped, up to the same limit.
        let mut skipped = Vlans::NONE;
        let vlans = if self.tunnels == 0 {
            &mut self.vlans
        } else {
            &mut skipped
        };
        while matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_9100) {
            if vlans.len() >= Vlans::MAX {
                return Err(DecodeError::TooManyVlans);
            }
            let (tag, r) = rest.split::<4>().ok_or(DecodeError::TruncatedLink)?;
            vlans.push(u16::from_be_bytes([tag[0], tag[1]]));
            ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            rest = r;
        }
        Ok((ethertype, rest))
    }

    /// Walks link-layer headers until an IP header.
    pub(super) fn down_to_ip<'a>(
        &mut self,
        mut layer: Layer<'a>,
    ) -> Result<(Version, Span<'a>), DecodeError> {
        for _ in 0..MAX_LINK_STEPS {
            layer = match layer {
                Layer::Ip(version, ip) => return Ok((version, ip)),
                Layer::Ethernet(d) => {
                    let (h, rest) = d.split::<14>().ok_or(DecodeError::TruncatedLink)?;
                    if self.tunnels == 0 {
                        self.macs = Some([field(h, 6), field(h, 0)]);
                    }
                    let (et, rest) = self.vlan_tags(be16(h, 12), rest)?;
                    if et < ETH_MIN_TYPE {
                        // An 802.3 length: the LLC frame's.
                        Layer::Llc(rest.limit(usize::from(et)))
                    } else {
                        Layer::Ethertype(et, rest)
                    }
                }
                Layer::Ethertype(et, d) => {
                    let (et, rest) = self.vlan_tags(et, d)?;
                    match et {
                        ETH_IPV4 => Layer::Ip(Version::V4, rest),
                        ETH_IPV6 => Layer::Ip(Version::V6, rest),
                        ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST => Layer::Mpls(rest),
                        ETH_PPPOE_SESSION => pppoe(rest)?,
                        _ => return Err(DecodeError::NotIp),
                    }
                }
                Layer::Llc(d) => {
                    let (et, rest) = snap(d)?;
                    Layer::Ethertype(et, rest)
                }
                Layer::Ppp(d) => ppp(d)?,
                Layer::CiscoHdlc(d) => {
                    let (h, rest) = d.split::<4>().ok_or(DecodeError::TruncatedLink)?;
                    Layer::Ethertype(be16(h, 2), rest)
                }
                Layer::Mpls(d) => self.mpls(d)?,
                Layer::Ieee80211(d, pad) => self.ieee80211(d, pad)?,
            };
        }
        Err(DecodeError::NotIp)
    }

    /// Skips an MPLS label stack; the payload's first nibble tells what it is (MPLS does
    /// not say).
    pub(super) fn mpls<'a>(&mut self, mut d: Span<'a>) -> Result<Layer<'a>, DecodeError> {
        for _ in 0..MAX_MPLS_LABELS {
            let (label, rest) = d.split::<4>().ok_or(DecodeError::TruncatedLink)?;
            d = rest;
            if label[2] & 0x01 == 0 {
                continue;
            }
            // Bottom of the stack.
            return match d.data.first().map(|b| b >> 4) {
                Some(4) => Ok(Layer::Ip(Version::V4, d)),
                Some(6) => Ok(Layer::Ip(Version::V6, d)),
                // An Ethernet pseudowire with its control word (RFC 4385: first nibble 0).
                // Ethernet without a control word cannot be told from IP reliably and is
                // not decoded.
                Some(0) => {
                    let (_, frame) = d.split::<4>().ok_or(DecodeError::TruncatedLink)?;
                    self.enter()?;
                    Ok(Layer::Ethernet(frame))
                }
                Some(_) => Err(DecodeError::NotIp),
                None => Err(DecodeError::TruncatedLink),
            };
        }
        Err(DecodeError::NotIp)
    }

    /// Counts an encapsulation found below the IP layer (Ethernet in MPLS).
    pub(super) fn enter(&mut self) -> Result<(), DecodeError> {
        if self.tunnels >= MAX_TUNNELS {
            return Err(DecodeError::NotIp);
        }
        self.tunnels += 1;
        Ok(())
    }
}

/// A PPPoE session header (RFC 2516): version/type 0x11, code 0, session id, length of the
/// PPP frame that follows.
pub(super) fn pppoe(d: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, rest) = d.split::<6>().ok_or(DecodeError::TruncatedLink)?;
    if h[0] != 0x11 || h[1] != 0 {
        return Err(DecodeError::NotIp);
    }
    Ok(Layer::Ppp(rest.limit(usize::from(be16(h, 4)))))
}

/// A PPP frame: optional address/control 0xff 0x03, then a 2-byte protocol, or a 1-byte one
/// when it was compressed (protocol numbers have an odd low byte and an even high byte).
pub(super) fn ppp(d: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let d = match d.data {
        [0xff, 0x03, ..] => d.after(2),
        _ => d,
    };
    let (protocol, rest) = match d.data {
        [p, ..] if p & 1 == 1 => (u16::from(*p), d.after(1)),
        [hi, lo, ..] => (u16::from_be_bytes([*hi, *lo]), d.after(2)),
        _ => return Err(DecodeError::TruncatedLink),
    };
    match protocol {
        PPP_IPV4 => Ok(Layer::Ip(Version::V4, rest)),
        PPP_IPV6 => Ok(Layer::Ip(Version::V6, rest)),
        PPP_MPLS_UNICAST | PPP_MPLS_MULTICAST => Ok(Layer::Mpls(rest)),
        _ => Err(DecodeError::NotIp),
    }
}

/// 802.2 LLC with SNAP (AA AA 03, OUI 00-00-00 or 00-00-F8, ethertype): the ethertype and
/// what follows. Other LLC frames (spanning tree, NetBIOS, ...) are not IP.
pub(super) fn snap(d: Span<'_>) -> Result<(u16, Span<'_>), DecodeError> {
    match d.data {
        [0xaa, 0xaa, 0x03, 0, 0, 0 | 0xf8, hi, lo, ..] => {
            Ok((u16::from_be_bytes([*hi, *lo]), d.after(8)))
        }
        // A SNAP header cut short.
        [] | [0xaa] | [0xaa, 0xaa] | [0xaa, 0xaa, 0x03, ..] if d.data.len() < 8 => {
            Err(DecodeError::TruncatedLink)
        }
        _ => Err(DecodeError::NotIp),
    }
}

/// NFLOG (Linux netfilter log): family, version, resource id, then TLVs whose length and
/// type are in the capturing host's byte order. That is little-endian in practice; a
/// big-endian one is recognised by its first TLV type (all types are below 256).
pub(super) fn nflog(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, mut tlvs) = frame.split::<4>().ok_or(DecodeError::TruncatedLink)?;
    let version = match h[0] {
        2 => Version::V4,
        10 => Version::V6,
        _ => return Err(DecodeError::NotIp),
    };
    let big_endian = matches!(tlvs.data, [_, _, 0, t, ..] if *t != 0);
    let read = |b: [u8; 2]| {
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    // Every TLV is at least 4 bytes, so this ends within frame.len() / 4 steps.
    while !tlvs.data.is_empty() {
        let (t, value) = tlvs.split::<4>().ok_or(DecodeError::TruncatedLink)?;
        let len = usize::from(read([t[0], t[1]]));
        // The top bits are netlink's nested / byte-order flags.
        let kind = read([t[2], t[3]]) & 0x3fff;
        let Some(value_len) = len.checked_sub(4) else {
            return Err(DecodeError::TruncatedLink);
        };
        if kind == NFULA_PAYLOAD {
            return Ok(Layer::Ip(version, value.limit(value_len)));
        }
        // Values are padded to 4 bytes.
        let next = (len + 3) & !3;
        if tlvs.data.len() < next {
            return Err(DecodeError::TruncatedLink);
        }
        tlvs = tlvs.after(next);
    }
    Err(DecodeError::NotIp)
}

/// Linux cooked capture (SLL): packet type, ARPHRD type, address length, 8 address bytes,
/// protocol. libpcap puts a VLAN tag the kernel stripped back after the header as 802.1Q.
pub(super) fn sll(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, rest) = frame.split::<16>().ok_or(DecodeError::TruncatedLink)?;
    Ok(sll_protocol(be16(h, 14), rest))
}

/// Linux cooked capture v2 (SLL2): protocol first, then interface index, ARPHRD type,
/// packet type, address length and 8 address bytes.
pub(super) fn sll2(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, rest) = frame.split::<20>().ok_or(DecodeError::TruncatedLink)?;
    Ok(sll_protocol(be16(h, 0), rest))
}

/// BSD null and OpenBSD loop: a 4-byte address family (see [`bsd_family`]).
pub(super) fn null_loop(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, rest) = frame.split::<4>().ok_or(DecodeError::TruncatedLink)?;
    Ok(Layer::Ip(bsd_family(h)?, rest))
}

/// Link type 50: PPP in HDLC-like framing, or Cisco HDLC (address 0x0f unicast, 0x8f
/// broadcast), which some writers store under it.
pub(super) fn ppp_hdlc(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(match frame.data.first() {
        Some(0x0f | 0x8f) => Layer::CiscoHdlc(frame),
        _ => Layer::Ppp(frame),
    })
}

/// A Linux cooked capture protocol: an ethertype, or 4 for 802.2 LLC.
pub(super) fn sll_protocol(protocol: u16, rest: Span<'_>) -> Layer<'_> {
    if protocol == SLL_LLC {
        Layer::Llc(rest)
    } else {
        Layer::Ethertype(protocol, rest)
    }
}
#[cfg(test)]
mod tests {
    use super::MAX_MPLS_LABELS;
    use crate::decode::testutil::*;

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = eth(&[], 0x0800, &ipv4(6, &[], &tcp(&[], b"hello")));
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v4_tcp(&p, b"hello");
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        assert!(p.vlans.is_empty());
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!((t.src_port, t.dst_port), (40000, 80));
        assert_eq!((t.seq, t.ack), (SeqNum(1000), SeqNum(2000)));
        assert_eq!(t.flags.0, TcpFlags::PSH | TcpFlags::ACK);
        assert!(t.flags.ack() && !t.flags.syn() && !t.flags.fin() && !t.flags.rst());
        assert_eq!(t.window, 512);
        assert_eq!(t.payload_len, 5);
    }

    #[test]
    fn ethernet_ipv6_tcp() {
        let f = eth(&[], 0x86dd, &ipv6(6, &tcp(&[], b"six")));
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v6_tcp(&p, b"six");
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
    }

    #[test]
    fn ethernet_not_ip_and_version_mismatch() {
        let arp = eth(&[], 0x0806, &[0; 28]);
        assert_eq!(decode_ip(LinkType::ETHERNET, &arp), Err(DecodeError::NotIp));
        let lying = eth(&[], 0x0800, &ipv6(6, &tcp(&[], b"")));
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &lying),
            Err(DecodeError::BadIpVersion)
        );
        let lying = eth(&[], 0x86dd, &ipv4(6, &[], &tcp(&[], b"")));
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &lying),
            Err(DecodeError::BadIpVersion)
        );
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &[0; 13]),
            Err(DecodeError::TruncatedLink)
        );
        let empty_ip = eth(&[], 0x0800, &[]);
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &empty_ip),
            Err(DecodeError::TruncatedIp)
        );
    }

    #[test]
    fn vlan_tags_each_tpid_and_depth() {
        let ip = ipv4(6, &[], &tcp(&[], b"vlan"));
        for tpid in [0x8100u16, 0x88a8, 0x9100] {
            for depth in 1..=3usize {
                // Priority bits (0xe000) and DEI (0x1000) set: they must be stripped.
                let tags: Vec<(u16, u16)> = (0..depth)
                    .map(|i| (tpid, 0xf000 | (100 + i as u16)))
                    .collect();
                let f = eth(&tags, 0x0800, &ip);
                let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
                let want: Vec<u16> = (0..depth).map(|i| 100 + i as u16).collect();
                assert_eq!(
                    p.vlans.as_slice(),
                    &want[..],
                    "tpid {tpid:#x} depth {depth}"
                );
                assert_v4_tcp(&p, b"vlan");
            }
        }
        // QinQ mix: 802.1ad outer, 0x9100, 802.1Q inner.
        let f = eth(
            &[(0x88a8, 7), (0x9100, 8), (0x8100, 4095)],
            0x86dd,
            &ipv6(6, &tcp(&[], b"x")),
        );
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(p.vlans.as_slice(), &[7, 8, 4095]);
        assert_eq!(p.vlans.outer(), Some(7));
        assert_v6_tcp(&p, b"x");
    }

    #[test]
    fn fourth_vlan_tag_is_an_error() {
        let ip = ipv4(6, &[], &tcp(&[], b""));
        for tpid in [0x8100u16, 0x88a8, 0x9100] {
            let f = eth(
                &[(0x88a8, 1), (0x8100, 2), (0x9100, 3), (tpid, 4)],
                0x0800,
                &ip,
            );
            assert_eq!(
                decode_ip(LinkType::ETHERNET, &f),
                Err(DecodeError::TooManyVlans)
            );
        }
        // A tag cut short is a truncated link header.
        let f = eth(&[(0x8100, 1)], 0x0800, &[]);
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &f[..16]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn linux_sll_and_sll2() {
        let v4 = ipv4(6, &[], &tcp(&[], b"sll"));
        let v6 = ipv6(6, &tcp(&[], b"sll"));
        let f = sll(0x0800, &v4);
        let p = decode_ip(LinkType::LINUX_SLL, &f).unwrap();
        assert_v4_tcp(&p, b"sll");
        assert_eq!(p.macs, None);
        let f = sll(0x86dd, &v6);
        let p = decode_ip(LinkType::LINUX_SLL, &f).unwrap();
        assert_v6_tcp(&p, b"sll");
        let f = sll2(0x0800, &v4);
        let p = decode_ip(LinkType::LINUX_SLL2, &f).unwrap();
        assert_v4_tcp(&p, b"sll");
        let f = sll2(0x86dd, &v6);
        let p = decode_ip(LinkType::LINUX_SLL2, &f).unwrap();
        assert_v6_tcp(&p, b"sll");
        // libpcap's reinserted VLAN tag after the cooked header.
        let mut tagged = vec![0x20, 0x2a, 0x08, 0x00];
        tagged.extend_from_slice(&v4);
        let f = sll(0x8100, &tagged);
        let p = decode_ip(LinkType::LINUX_SLL, &f).unwrap();
        assert_eq!(p.vlans.as_slice(), &[42]);
        assert_v4_tcp(&p, b"sll");
        let f = sll2(0x8100, &tagged);
        let p = decode_ip(LinkType::LINUX_SLL2, &f).unwrap();
        assert_eq!(p.vlans.as_slice(), &[42]);
        assert_v4_tcp(&p, b"sll");
        assert_eq!(
            decode_ip(LinkType::LINUX_SLL, &sll(0x0806, &[0; 28])),
            Err(DecodeError::NotIp)
        );
        assert_eq!(
            decode_ip(LinkType::LINUX_SLL2, &sll2(0x0004, &[0; 28])),
            Err(DecodeError::NotIp)
        );
        assert_eq!(
            decode_ip(LinkType::LINUX_SLL, &[0; 15]),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            decode_ip(LinkType::LINUX_SLL2, &[0; 19]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn raw_ip_link_types() {
        let v4 = ipv4(6, &[], &tcp(&[], b"raw"));
        let v6 = ipv6(6, &tcp(&[], b"raw"));
        for link in [LinkType::RAW, LinkType::RAW_12, LinkType::RAW_14] {
            assert_v4_tcp(&decode_ip(link, &v4).unwrap(), b"raw");
            assert_v6_tcp(&decode_ip(link, &v6).unwrap(), b"raw");
            let mut v5 = v4.clone();
            v5[0] = 0x55;
            assert_eq!(decode_ip(link, &v5), Err(DecodeError::BadIpVersion));
            assert_eq!(decode_ip(link, &[]), Err(DecodeError::TruncatedIp));
        }
        assert_v4_tcp(&decode_ip(LinkType::IPV4, &v4).unwrap(), b"raw");
        assert_v6_tcp(&decode_ip(LinkType::IPV6, &v6).unwrap(), b"raw");
        assert_eq!(
            decode_ip(LinkType::IPV4, &v6),
            Err(DecodeError::BadIpVersion)
        );
        assert_eq!(
            decode_ip(LinkType::IPV6, &v4),
            Err(DecodeError::BadIpVersion)
        );
        let p = decode_ip(LinkType::RAW, &v4).unwrap();
        assert_eq!((p.macs, p.vlans), (None, Vlans::NONE));
    }

    #[test]
    fn null_and_loop_both_byte_orders() {
        let v4 = ipv4(6, &[], &tcp(&[], b"lo"));
        let v6 = ipv6(6, &tcp(&[], b"lo"));
        for link in [LinkType::NULL, LinkType::LOOP] {
            assert_v4_tcp(
                &decode_ip(link, &prefixed(2u32.to_le_bytes(), &v4)).unwrap(),
                b"lo",
            );
            assert_v4_tcp(
                &decode_ip(link, &prefixed(2u32.to_be_bytes(), &v4)).unwrap(),
                b"lo",
            );
            for fam in [24u32, 28, 30] {
                let le = prefixed(fam.to_le_bytes(), &v6);
                assert_v6_tcp(&decode_ip(link, &le).unwrap(), b"lo");
                let be = prefixed(fam.to_be_bytes(), &v6);
                assert_v6_tcp(&decode_ip(link, &be).unwrap(), b"lo");
            }
            // The family decides the version.
            let wrong = prefixed(2u32.to_le_bytes(), &v6);
            assert_eq!(decode_ip(link, &wrong), Err(DecodeError::BadIpVersion));
            let wrong = prefixed(30u32.to_be_bytes(), &v4);
            assert_eq!(decode_ip(link, &wrong), Err(DecodeError::BadIpVersion));
            // AF_APPLETALK etc.: not IP.
            let other = prefixed(16u32.to_le_bytes(), &v4);
            assert_eq!(decode_ip(link, &other), Err(DecodeError::NotIp));
            assert_eq!(decode_ip(link, &[2, 0, 0]), Err(DecodeError::TruncatedLink));
        }
    }

    #[test]
    fn unsupported_link_type_is_named() {
        let f = ipv4(6, &[], &tcp(&[], b""));
        assert_eq!(
            decode_ip(LinkType(147), &f),
            Err(DecodeError::UnsupportedLinkType(147))
        );
        assert_eq!(
            decode_ip(LinkType(106), &f),
            Err(DecodeError::UnsupportedLinkType(106))
        );
        for n in [
            0, 1, 9, 12, 14, 50, 101, 104, 105, 108, 113, 119, 127, 163, 192, 228, 229, 239, 276,
        ] {
            assert!(LinkType(n).is_supported());
            // Every supported type gets past the link-type check.
            assert_ne!(
                decode_ip(LinkType(n), &[]),
                Err(DecodeError::UnsupportedLinkType(n))
            );
        }
        assert!(!LinkType(147).is_supported());
        assert!(!LinkType(106).is_supported());
        assert_eq!(
            [
                LinkType::PPP,
                LinkType::PPP_HDLC,
                LinkType::C_HDLC,
                LinkType::NFLOG
            ],
            [LinkType(9), LinkType(50), LinkType(104), LinkType(239)]
        );
    }

    #[test]
    fn ppp_link_types() {
        let v4 = inner4(b"ppp");
        let v6 = inner6(b"ppp");
        for link in [LinkType::PPP, LinkType::PPP_HDLC] {
            // With and without address/control, 2-byte and compressed 1-byte protocols.
            let mut bare = vec![0x00, 0x21];
            bare.extend_from_slice(&v4);
            let mut compressed = vec![0xff, 0x03, 0x21];
            compressed.extend_from_slice(&v4);
            let mut both = vec![0x21];
            both.extend_from_slice(&v4);
            for f in [ppp(0x0021, &v4), bare, compressed, both] {
                let p = decode_ip(link, &f).unwrap();
                assert_v4_tcp(&p, b"ppp");
                assert_eq!((p.macs, p.vlans), (None, Vlans::NONE));
            }
            assert_v6_tcp(&decode_ip(link, &ppp(0x0057, &v6)).unwrap(), b"ppp");
            let mut c6 = vec![0x57];
            c6.extend_from_slice(&v6);
            assert_v6_tcp(&decode_ip(link, &c6).unwrap(), b"ppp");
            // MPLS unicast and multicast.
            for proto in [0x0281u16, 0x0283] {
                let f = ppp(proto, &mpls(2, &v4));
                assert_v4_tcp(&decode_ip(link, &f).unwrap(), b"ppp");
            }
            // LCP, CHAP, VJ-compressed TCP: not IP.
            for proto in [0xc021u16, 0xc223, 0x002d] {
                assert_eq!(decode_ip(link, &ppp(proto, &v4)), Err(DecodeError::NotIp));
            }
            // The protocol decides the version.
            assert_eq!(
                decode_ip(link, &ppp(0x0021, &v6)),
                Err(DecodeError::BadIpVersion)
            );
            for cut in [&[][..], &[0xff, 0x03], &[0xff, 0x03, 0x00], &[0x00]] {
                assert_eq!(decode_ip(link, cut), Err(DecodeError::TruncatedLink));
            }
            assert_eq!(
                decode_ip(link, &ppp(0x0021, &[])),
                Err(DecodeError::TruncatedIp)
            );
        }
        // LINKTYPE_PPP_HDLC also holds Cisco HDLC frames.
        let mut chdlc = vec![0x0f, 0x00, 0x08, 0x00];
        chdlc.extend_from_slice(&v4);
        assert_v4_tcp(&decode_ip(LinkType::PPP_HDLC, &chdlc).unwrap(), b"ppp");
        chdlc[0] = 0x8f;
        assert_v4_tcp(&decode_ip(LinkType::PPP_HDLC, &chdlc).unwrap(), b"ppp");
    }

    #[test]
    fn cisco_hdlc() {
        let hdlc = |addr: u8, ethertype: u16, body: &[u8]| {
            let mut v = vec![addr, 0x00];
            v.extend_from_slice(&ethertype.to_be_bytes());
            v.extend_from_slice(body);
            v
        };
        let link = LinkType::C_HDLC;
        assert_v4_tcp(
            &decode_ip(link, &hdlc(0x0f, 0x0800, &inner4(b"hdlc"))).unwrap(),
            b"hdlc",
        );
        assert_v6_tcp(
            &decode_ip(link, &hdlc(0x8f, 0x86dd, &inner6(b"hdlc"))).unwrap(),
            b"hdlc",
        );
        // MPLS, as in ndpi/BGP_redist.pcap.
        let p = decode_ip(link, leak(hdlc(0x0f, 0x8847, &mpls(1, &inner4(b"bgp"))))).unwrap();
        assert_v4_tcp(&p, b"bgp");
        assert_eq!(p.macs, None);
        // SLARP keepalives, CDP.
        for et in [0x8035u16, 0x2000] {
            assert_eq!(
                decode_ip(link, &hdlc(0x8f, et, &[0; 20])),
                Err(DecodeError::NotIp)
            );
        }
        assert_eq!(
            decode_ip(link, &[0x0f, 0x00, 0x08]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn nflog_link_type() {
        let v4 = inner4(b"nflog");
        let v6 = inner6(b"nflog!");
        for big_endian in [false, true] {
            let p = decode_ip(LinkType::NFLOG, leak(nflog_frame(2, &v4, big_endian))).unwrap();
            assert_v4_tcp(&p, b"nflog");
            assert_eq!((p.macs, p.vlans), (None, Vlans::NONE));
            let p = decode_ip(LinkType::NFLOG, leak(nflog_frame(10, &v6, big_endian))).unwrap();
            assert_v6_tcp(&p, b"nflog!");
        }
        // The family decides the version.
        assert_eq!(
            decode_ip(LinkType::NFLOG, &nflog_frame(2, &v6, false)),
            Err(DecodeError::BadIpVersion)
        );
        // AF_BRIDGE and others, and no payload TLV: not IP.
        assert_eq!(
            decode_ip(LinkType::NFLOG, &nflog_frame(7, &v4, false)),
            Err(DecodeError::NotIp)
        );
        let no_payload = nflog(2, &[(1, &[0x08, 0x00, 3, 0]), (10, b"x")], false);
        assert_eq!(
            decode_ip(LinkType::NFLOG, &no_payload),
            Err(DecodeError::NotIp)
        );
        // A TLV shorter than its own header, or running past the frame.
        let mut bad = nflog_frame(2, &v4, false);
        bad[4..6].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(
            decode_ip(LinkType::NFLOG, &bad),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            decode_ip(LinkType::NFLOG, &nflog_frame(2, &v4, false)[..10]),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            decode_ip(LinkType::NFLOG, &[2, 0, 0]),
            Err(DecodeError::TruncatedLink)
        );
        // The payload cut by the snap length: the IP claim stays.
        let f = nflog_frame(2, &v4, false);
        let p = decode_ip(LinkType::NFLOG, &f[..f.len() - 6]).unwrap();
        assert_eq!(p.payload_len, 25);
        assert_eq!(p.payload.len(), 22);
        // The payload TLV's length bounds the packet (the rest is padding).
        let mut short = v4.clone();
        short[2..4].copy_from_slice(&200u16.to_be_bytes());
        let p = decode_ip(LinkType::NFLOG, leak(nflog_frame(2, &short, false))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (25, 25));
    }

    #[test]
    fn mpls_label_stacks() {
        let v4 = inner4(b"mpls");
        for labels in 1..=MAX_MPLS_LABELS {
            for et in [0x8847u16, 0x8848] {
                let f = eth(&[], et, &mpls(labels, &v4));
                let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
                assert_v4_tcp(&p, b"mpls");
                assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
            }
        }
        let f = eth(&[], 0x8847, &mpls(MAX_MPLS_LABELS + 1, &v4));
        assert_eq!(decode_ip(LinkType::ETHERNET, &f), Err(DecodeError::NotIp));
        // Inside a VLAN (zeek/mpls-in-vlan.pcap), IPv6, and over SLL.
        let f = eth(&[(0x8100, 0x2d47)], 0x8847, &mpls(1, &inner6(b"v6")));
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v6_tcp(&p, b"v6");
        assert_eq!(p.vlans.as_slice(), &[0xd47]);
        let p = decode_ip(LinkType::LINUX_SLL, leak(sll(0x8847, &mpls(3, &v4)))).unwrap();
        assert_v4_tcp(&p, b"mpls");
        // An Ethernet pseudowire with a control word: inner tags and MACs are not the
        // flow's.
        let pw = inner_eth(&[(0x8100, 77)], 0x0800, &v4);
        let mut cw = vec![0, 0, 0, 1];
        cw.extend_from_slice(&pw);
        let f = eth(&[(0x8100, 5)], 0x8847, &mpls(2, &cw));
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v4_tcp(&p, b"mpls");
        assert_eq!(p.vlans.as_slice(), &[5]);
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        // Nothing, or something else, after the stack.
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &eth(&[], 0x8847, &mpls(2, &[]))),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &eth(&[], 0x8847, &mpls(2, &[0x15; 30]))),
            Err(DecodeError::NotIp)
        );
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &eth(&[], 0x8847, &mpls(2, &[0, 0]))),
            Err(DecodeError::TruncatedLink)
        );
        let f = eth(&[], 0x8847, &mpls(3, &v4));
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &f[..14 + 6]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn pppoe_sessions() {
        let v4 = inner4(b"pppoe");
        // Plain, and over QinQ (zeek/pppoe-over-qinq.pcap).
        let p = decode_ip(
            LinkType::ETHERNET,
            leak(eth(&[], 0x8864, &pppoe(0x0021, &v4))),
        )
        .unwrap();
        assert_v4_tcp(&p, b"pppoe");
        let f = eth(
            &[(0x88a8, 0x0e78), (0x8100, 0x09aa)],
            0x8864,
            &pppoe(0x0057, &inner6(b"qinq")),
        );
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v6_tcp(&p, b"qinq");
        assert_eq!(p.vlans.as_slice(), &[0xe78, 0x9aa]);
        // MPLS over PPPoE.
        let f = eth(&[], 0x8864, &pppoe(0x0281, &mpls(1, &v4)));
        assert_v4_tcp(&decode_ip(LinkType::ETHERNET, &f).unwrap(), b"pppoe");
        // The PPPoE length bounds the packet (tshark does the same): an IP total length
        // beyond it is not a snap-length cut.
        let mut long = v4.clone();
        long[2..4].copy_from_slice(&(v4.len() as u16 + 6).to_be_bytes());
        let mut body = pppoe(0x0021, &long);
        body.extend_from_slice(&[0; 6]);
        let p = decode_ip(LinkType::ETHERNET, leak(eth(&[], 0x8864, &body))).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (25, 25));
        let mut trailer = pppoe(0x0021, &v4);
        trailer.extend_from_slice(&[0xaa; 10]);
        let p = decode_ip(LinkType::ETHERNET, leak(eth(&[], 0x8864, &trailer))).unwrap();
        assert_v4_tcp(&p, b"pppoe");
        // A PPPoE length shorter than the IP header.
        let mut tiny = pppoe(0x0021, &v4);
        tiny[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &eth(&[], 0x8864, &tiny)),
            Err(DecodeError::BadIpHeader)
        );
        // LCP, a discovery frame, a session frame with a code, a bad version.
        let lcp = eth(&[], 0x8864, &pppoe(0xc021, &[1, 1, 0, 4]));
        assert_eq!(decode_ip(LinkType::ETHERNET, &lcp), Err(DecodeError::NotIp));
        let padi = eth(&[], 0x8863, &[0x11, 0x09, 0, 0, 0, 0]);
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &padi),
            Err(DecodeError::NotIp)
        );
        for (at, byte) in [(0usize, 0x09u8), (0, 0x21), (1, 0x07)] {
            let mut b = pppoe(0x0021, &v4);
            b[at] = byte;
            assert_eq!(
                decode_ip(LinkType::ETHERNET, &eth(&[], 0x8864, &b)),
                Err(DecodeError::NotIp)
            );
        }
        assert_eq!(
            decode_ip(LinkType::ETHERNET, &eth(&[], 0x8864, &[0x11, 0, 0, 0, 0])),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn llc_snap() {
        let v4 = inner4(b"snap");
        let body = snap(0x0800, &v4);
        let f = eth(&[], body.len() as u16, &body);
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v4_tcp(&p, b"snap");
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        // After a VLAN tag; Cisco's OUI 00-00-F8; IPv6.
        let mut body6 = snap(0x86dd, &inner6(b"six"));
        body6[5] = 0xf8;
        let f = eth(&[(0x8100, 12)], body6.len() as u16, &body6);
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_v6_tcp(&p, b"six");
        assert_eq!(p.vlans.as_slice(), &[12]);
        // Over Linux cooked capture (protocol 4: 802.2).
        let p = decode_ip(LinkType::LINUX_SLL, leak(sll(0x0004, &body))).unwrap();
        assert_v4_tcp(&p, b"snap");
        // The 802.3 length bounds the frame.
        let f = eth(&[], 30, &body);
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (2, 2));
        // Spanning tree, NetBIOS, other OUIs, ARP in SNAP: not IP.
        for llc in [
            vec![0x42, 0x42, 0x03, 0, 0, 0, 0, 0],
            vec![0xf0, 0xf0, 0x03, 0, 0, 0, 0, 0],
            vec![0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00],
            snap(0x0806, &[0; 28]),
        ] {
            let f = eth(&[], llc.len() as u16, &llc);
            assert_eq!(decode_ip(LinkType::ETHERNET, &f), Err(DecodeError::NotIp));
        }
        for n in 0..8 {
            let f = eth(&[], 100, &body[..n]);
            assert_eq!(
                decode_ip(LinkType::ETHERNET, &f),
                Err(DecodeError::TruncatedLink),
                "{n}"
            );
        }
    }
}
