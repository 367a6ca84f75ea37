//! Decoding: link layer, IP, TCP.
//!
//! Every byte here is untrusted: fields are read through `get`/fixed-size arrays so that no
//! input can panic, and multi-byte fields are read big-endian explicitly (except where a link
//! layer stores host order, which is tried both ways).

use crate::seq::SeqNum;
use crate::stats::DecodeStats;

/// A pcap LINKTYPE value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW_12: LinkType = LinkType(12);
    pub const RAW_14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Whether [`decode_ip`] understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
    }
}

/// An IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// VLAN ids (12 bits each, priority bits removed), outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Vlans {
    ids: [u16; 3],
    len: u8,
}

impl Vlans {
    pub const NONE: Vlans = Vlans {
        ids: [0; 3],
        len: 0,
    };
    pub const MAX: usize = 3;

    /// Appends an id; false when three are already held.
    pub fn push(&mut self, id: u16) -> bool {
        if (self.len as usize) < Self::MAX {
            self.ids[self.len as usize] = id & 0x0fff;
            self.len += 1;
            true
        } else {
            false
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The outermost id, if tagged.
    pub fn outer(&self) -> Option<u16> {
        self.as_slice().first().copied()
    }
}

/// Where a fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fragment {
    /// Identification (IPv4: 16 bits; IPv6: 32 bits).
    pub ident: u32,
    /// Offset of this fragment's data in the datagram's payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// An IP packet with its link-layer context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub vlans: Vlans,
    /// Source and destination MAC when the link has them.
    pub macs: Option<[[u8; 6]; 2]>,
    pub src: Addr,
    pub dst: Addr,
    /// Upper-layer protocol after all extension headers (for a non-first IPv6 fragment, the
    /// fragment header's next header).
    pub protocol: u8,
    pub fragment: Option<Fragment>,
    /// The upper-layer bytes that were captured (never beyond the IP length).
    pub payload: &'a [u8],
    /// The upper-layer length the IP header claims; larger than `payload.len()` when the
    /// snap length cut the packet.
    pub payload_len: u32,
}

/// TCP flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length per the IP header (>= `payload.len()`).
    pub payload_len: u32,
}

/// Why a frame was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    UnsupportedLinkType(u32),
    /// Not IP (ARP, LLDP, ...): ignored, not an error for the user.
    NotIp,
    /// More than [`Vlans::MAX`] VLAN tags.
    TooManyVlans,
    /// The frame ends inside the link-layer header.
    TruncatedLink,
    /// The frame ends inside the IP header (or its options / extension headers).
    TruncatedIp,
    /// Version field is neither 4 nor 6, or does not match the link layer.
    BadIpVersion,
    /// IPv4 header length below 20 or beyond the total length.
    BadIpHeader,
    /// An IPv6 extension header chain that cannot be walked.
    BadIpv6ExtHeader,
    /// The segment ends inside the TCP header, or its data offset is below 5.
    BadTcpHeader,
}

/// Ethertypes and TPIDs the decoder knows.
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;
const TPID_9100: u16 = 0x9100;

/// IPv6 extension header numbers.
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;

/// Which IP version the link layer announced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// Raw IP links: the version nibble decides.
    Any,
    V4,
    V6,
}

/// Reads `N` bytes at `at`. Callers only read inside headers whose length they checked, so
/// the zero fallback is unreachable; it exists so that no read can panic.
fn field<const N: usize>(d: &[u8], at: usize) -> [u8; N] {
    d.get(at..at.saturating_add(N))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(field(d, at))
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(field(d, at))
}

/// Length as the `u32` the packet types use; only a >4 GiB frame saturates.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads VLAN tags while `ethertype` is a TPID; returns the inner ethertype and what follows.
fn vlan_tags<'a>(
    mut ethertype: u16,
    mut rest: &'a [u8],
    vlans: &mut Vlans,
) -> Result<(u16, &'a [u8]), DecodeError> {
    while matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_9100) {
        if vlans.len() >= Vlans::MAX {
            return Err(DecodeError::TooManyVlans);
        }
        let (tag, r) = rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::TruncatedLink)?;
        vlans.push(u16::from_be_bytes([tag[0], tag[1]]));
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        rest = r;
    }
    Ok((ethertype, rest))
}

fn ethertype_version(ethertype: u16) -> Result<Version, DecodeError> {
    match ethertype {
        ETH_IPV4 => Ok(Version::V4),
        ETH_IPV6 => Ok(Version::V6),
        _ => Err(DecodeError::NotIp),
    }
}

/// BSD null / OpenBSD loop family. The null header is in the capturing host's byte order
/// (and some loop writers got it wrong), so both orders are tried; the known values are
/// below 256, so at most one order matches.
fn bsd_family(h: &[u8; 4]) -> Result<Version, DecodeError> {
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

/// Decodes the link layer and IP header(s) of a frame.
///
/// `payload` is cut to the length the IP header claims (so Ethernet padding is never data);
/// `payload_len` is that claimed length, larger than `payload.len()` when the snap length cut
/// the packet.
pub fn decode_ip(link: LinkType, frame: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let mut vlans = Vlans::NONE;
    let mut macs = None;
    let (version, ip) = match link.0 {
        1 => {
            let (h, rest) = frame
                .split_first_chunk::<14>()
                .ok_or(DecodeError::TruncatedLink)?;
            macs = Some([field(h, 6), field(h, 0)]);
            let (et, rest) = vlan_tags(u16::from_be_bytes([h[12], h[13]]), rest, &mut vlans)?;
            (ethertype_version(et)?, rest)
        }
        113 => {
            let (h, rest) = frame
                .split_first_chunk::<16>()
                .ok_or(DecodeError::TruncatedLink)?;
            // libpcap puts a VLAN tag the kernel stripped back after the header as 802.1Q.
            let (et, rest) = vlan_tags(u16::from_be_bytes([h[14], h[15]]), rest, &mut vlans)?;
            (ethertype_version(et)?, rest)
        }
        276 => {
            let (h, rest) = frame
                .split_first_chunk::<20>()
                .ok_or(DecodeError::TruncatedLink)?;
            let (et, rest) = vlan_tags(u16::from_be_bytes([h[0], h[1]]), rest, &mut vlans)?;
            (ethertype_version(et)?, rest)
        }
        0 | 108 => {
            let (h, rest) = frame
                .split_first_chunk::<4>()
                .ok_or(DecodeError::TruncatedLink)?;
            (bsd_family(h)?, rest)
        }
        12 | 14 | 101 => (Version::Any, frame),
        228 => (Version::V4, frame),
        229 => (Version::V6, frame),
        n => return Err(DecodeError::UnsupportedLinkType(n)),
    };
    let first = *ip.first().ok_or(DecodeError::TruncatedIp)?;
    match (version, first >> 4) {
        (Version::Any | Version::V4, 4) => ipv4(ip, vlans, macs),
        (Version::Any | Version::V6, 6) => ipv6(ip, vlans, macs),
        _ => Err(DecodeError::BadIpVersion),
    }
}

fn ipv4(
    data: &[u8],
    vlans: Vlans,
    macs: Option<[[u8; 6]; 2]>,
) -> Result<IpPacket<'_>, DecodeError> {
    let (h, _) = data
        .split_first_chunk::<20>()
        .ok_or(DecodeError::TruncatedIp)?;
    let hlen = usize::from(h[0] & 0x0f) * 4;
    if hlen < 20 {
        return Err(DecodeError::BadIpHeader);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total != 0 && total < hlen {
        return Err(DecodeError::BadIpHeader);
    }
    if data.len() < hlen {
        return Err(DecodeError::TruncatedIp);
    }
    // Total length 0: a TSO/LSO super-packet captured before the NIC split it; the captured
    // length is all there is.
    let claimed = if total == 0 {
        data.len() - hlen
    } else {
        total - hlen
    };
    let payload_len = len_u32(claimed);
    let end = hlen
        .saturating_add(claimed.min(payload_len as usize))
        .min(data.len());
    let payload = data.get(hlen..end).unwrap_or(&[]);
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let more = flags_offset & 0x2000 != 0;
    let offset = u32::from(flags_offset & 0x1fff) * 8;
    let fragment = (more || offset != 0).then_some(Fragment {
        ident: u32::from(u16::from_be_bytes([h[4], h[5]])),
        offset,
        more,
    });
    Ok(IpPacket {
        vlans,
        macs,
        src: Addr::V4(field(h, 12)),
        dst: Addr::V4(field(h, 16)),
        protocol: h[9],
        fragment,
        payload,
        payload_len,
    })
}

fn ipv6(
    data: &[u8],
    vlans: Vlans,
    macs: Option<[[u8; 6]; 2]>,
) -> Result<IpPacket<'_>, DecodeError> {
    let (h, rest) = data
        .split_first_chunk::<40>()
        .ok_or(DecodeError::TruncatedIp)?;
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // Payload length 0: a jumbogram (hop-by-hop jumbo option) or a GSO/BIG TCP super-packet;
    // the captured length is all there is.
    let claimed = if plen == 0 { rest.len() } else { plen };
    let captured = rest.get(..claimed.min(rest.len())).unwrap_or(rest);
    let walk = walk_extensions(h[6], captured, claimed, true)?;
    let payload_len = len_u32(claimed.saturating_sub(walk.offset));
    let end = walk
        .offset
        .saturating_add(payload_len as usize)
        .min(captured.len());
    Ok(IpPacket {
        vlans,
        macs,
        src: Addr::V6(field(h, 8)),
        dst: Addr::V6(field(h, 24)),
        protocol: walk.protocol,
        fragment: walk.fragment,
        payload: captured.get(walk.offset..end).unwrap_or(&[]),
        payload_len,
    })
}

/// Where an extension header walk stopped.
struct ExtWalk {
    /// Upper-layer protocol (after a fragment header: its next header).
    protocol: u8,
    /// Offset of the upper-layer header (or of the fragment data).
    offset: usize,
    fragment: Option<Fragment>,
}

/// Walks extension headers in `data` (the captured part of `claimed` bytes). A header that
/// runs past `claimed` is malformed; one that runs past the capture only is truncated.
fn walk_extensions(
    mut next: u8,
    data: &[u8],
    claimed: usize,
    allow_fragment: bool,
) -> Result<ExtWalk, DecodeError> {
    let mut off = 0usize;
    // Every header is at least 8 bytes, so the walk ends within data.len() / 8 steps.
    loop {
        let len = match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS | IPV6_AH => {
                let len_byte = ext_bytes(data, claimed, off, 2)?
                    .get(1)
                    .copied()
                    .unwrap_or(0);
                if next == IPV6_AH {
                    (usize::from(len_byte) + 2) * 4
                } else {
                    (usize::from(len_byte) + 1) * 8
                }
            }
            IPV6_FRAGMENT => 8,
            _ => {
                return Ok(ExtWalk {
                    protocol: next,
                    offset: off,
                    fragment: None,
                })
            }
        };
        let hdr = ext_bytes(data, claimed, off, len)?;
        let header_next = hdr.first().copied().unwrap_or(0);
        off += len;
        if next == IPV6_FRAGMENT {
            if !allow_fragment {
                return Err(DecodeError::BadIpv6ExtHeader);
            }
            let offset_flags = be16(hdr, 2);
            let offset = u32::from(offset_flags & 0xfff8);
            let more = offset_flags & 1 != 0;
            if offset != 0 || more {
                // The rest is this fragment's share of the datagram: stop here.
                return Ok(ExtWalk {
                    protocol: header_next,
                    offset: off,
                    fragment: Some(Fragment {
                        ident: be32(hdr, 4),
                        offset,
                        more,
                    }),
                });
            }
            // An atomic fragment (RFC 6946) is a whole datagram: keep walking.
        }
        next = header_next;
    }
}

/// The `len` bytes of an extension header at `off`.
fn ext_bytes(data: &[u8], claimed: usize, off: usize, len: usize) -> Result<&[u8], DecodeError> {
    let end = off.saturating_add(len);
    if end > claimed {
        return Err(DecodeError::BadIpv6ExtHeader);
    }
    data.get(off..end).ok_or(DecodeError::TruncatedIp)
}

/// Walks IPv6 extension headers starting with `next` at the start of `data` (used after
/// fragment reassembly, when the fragmentable part starts with e.g. destination options).
/// Returns the upper-layer protocol and the offset of its header in `data`. Protocols that are
/// not extension headers return `(next, 0)`. `data` is a whole reassembled payload, so a header
/// running past its end, or a nested fragment header, is [`DecodeError::BadIpv6ExtHeader`].
pub fn skip_ipv6_extensions(next: u8, data: &[u8]) -> Result<(u8, usize), DecodeError> {
    let walk = walk_extensions(next, data, data.len(), false)?;
    Ok((walk.protocol, walk.offset))
}

/// Decodes a TCP header; `payload_len` is the upper-layer length the IP header claims
/// (>= data.len() when the snap length cut the packet).
pub fn decode_tcp(data: &[u8], payload_len: u32) -> Result<TcpSegment<'_>, DecodeError> {
    let (h, _) = data
        .split_first_chunk::<20>()
        .ok_or(DecodeError::BadTcpHeader)?;
    let hlen = usize::from(h[12] >> 4) * 4;
    let claimed = usize::try_from(payload_len).unwrap_or(usize::MAX);
    if hlen < 20 || claimed < hlen {
        return Err(DecodeError::BadTcpHeader);
    }
    let payload = data
        .get(hlen..claimed.min(data.len()))
        .ok_or(DecodeError::BadTcpHeader)?;
    Ok(TcpSegment {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        seq: SeqNum(be32(h, 4)),
        ack: SeqNum(be32(h, 8)),
        flags: TcpFlags(h[13]),
        window: u16::from_be_bytes([h[14], h[15]]),
        payload,
        payload_len: payload_len.saturating_sub(len_u32(hlen)),
    })
}

impl DecodeError {
    /// Increments the counter of this kind in `stats`.
    pub fn count(self, stats: &mut DecodeStats) {
        let counter = match self {
            DecodeError::UnsupportedLinkType(_) => &mut stats.unsupported_link,
            DecodeError::NotIp => &mut stats.not_ip,
            DecodeError::TooManyVlans => &mut stats.too_many_vlans,
            DecodeError::TruncatedLink => &mut stats.truncated_link,
            DecodeError::TruncatedIp => &mut stats.truncated_ip,
            DecodeError::BadIpVersion => &mut stats.bad_ip_version,
            DecodeError::BadIpHeader => &mut stats.bad_ip_header,
            DecodeError::BadIpv6ExtHeader => &mut stats.bad_ipv6_ext,
            DecodeError::BadTcpHeader => &mut stats.bad_tcp_header,
        };
        *counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const SRC4: [u8; 4] = [10, 0, 0, 1];
    const DST4: [u8; 4] = [10, 0, 0, 2];
    const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const MAC_SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// A TCP segment: ports 40000 -> 80, seq 1000, ack 2000, PSH|ACK, window 512.
    fn tcp(options: &[u8], payload: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let doff = (20 + options.len()) / 4;
        let mut v = vec![0x9c, 0x40, 0, 80];
        v.extend_from_slice(&1000u32.to_be_bytes());
        v.extend_from_slice(&2000u32.to_be_bytes());
        v.extend_from_slice(&[(doff as u8) << 4, 0x18, 0x02, 0x00, 0, 0, 0, 0]);
        v.extend_from_slice(options);
        v.extend_from_slice(payload);
        v
    }

    /// An IPv4 packet (checksum left 0: the decoder does not check it).
    fn ipv4(protocol: u8, options: &[u8], body: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let hlen = 20 + options.len();
        let total = (hlen + body.len()) as u16;
        let mut v = vec![0x40 | (hlen / 4) as u8, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]);
        v.extend_from_slice(&SRC4);
        v.extend_from_slice(&DST4);
        v.extend_from_slice(options);
        v.extend_from_slice(body);
        v
    }

    fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(&[next, 64]);
        v.extend_from_slice(&SRC6);
        v.extend_from_slice(&DST6);
        v.extend_from_slice(body);
        v
    }

    /// A generic extension header (hop-by-hop, routing, destination options) of `units` * 8
    /// bytes, filled with PadN-like bytes.
    fn ext(next: u8, units: u8) -> Vec<u8> {
        let mut v = vec![next, units - 1];
        v.resize(usize::from(units) * 8, 0x01);
        v
    }

    /// An AH header with `words` 32-bit words in total.
    fn ah(next: u8, words: u8) -> Vec<u8> {
        let mut v = vec![next, words - 2];
        v.resize(usize::from(words) * 4, 0xa5);
        v
    }

    fn frag_hdr(next: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
        let mut v = vec![next, 0];
        v.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
        v.extend_from_slice(&ident.to_be_bytes());
        v
    }

    fn eth(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&MAC_DST);
        v.extend_from_slice(&MAC_SRC);
        for &(tpid, tci) in tags {
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&tci.to_be_bytes());
        }
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn sll(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0, 6];
        v.extend_from_slice(&MAC_SRC);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn sll2(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = protocol.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
        v.extend_from_slice(&MAC_SRC);
        v.extend_from_slice(&[0, 0]);
        assert_eq!(v.len(), 20);
        v.extend_from_slice(body);
        v
    }

    fn prefixed(prefix: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.extend_from_slice(body);
        v
    }

    fn assert_v4_tcp(p: &IpPacket<'_>, payload: &[u8]) {
        assert_eq!(p.src, Addr::V4(SRC4));
        assert_eq!(p.dst, Addr::V4(DST4));
        assert_eq!(p.protocol, 6);
        assert_eq!(p.fragment, None);
        assert_eq!(p.payload_len as usize, 20 + payload.len());
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, payload);
    }

    fn assert_v6_tcp(p: &IpPacket<'_>, payload: &[u8]) {
        assert_eq!(p.src, Addr::V6(SRC6));
        assert_eq!(p.dst, Addr::V6(DST6));
        assert_eq!(p.protocol, 6);
        assert_eq!(p.fragment, None);
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, payload);
        assert_eq!(t.payload_len as usize, payload.len());
    }

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
            decode_ip(LinkType(9), &f),
            Err(DecodeError::UnsupportedLinkType(9))
        );
        for n in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
            assert!(LinkType(n).is_supported());
            // Every supported type gets past the link-type check.
            assert_ne!(
                decode_ip(LinkType(n), &[]),
                Err(DecodeError::UnsupportedLinkType(n))
            );
        }
        assert!(!LinkType(147).is_supported());
    }

    #[test]
    fn ipv4_options_are_skipped() {
        for words in 1..=10usize {
            let opts: Vec<u8> = (0..words * 4)
                .map(|i| if i == 0 { 0x94 } else { 1 })
                .collect();
            let f = ipv4(6, &opts, &tcp(&[], b"opts"));
            let p = decode_ip(LinkType::RAW, &f).unwrap();
            assert_v4_tcp(&p, b"opts");
            assert_eq!(p.payload.len(), 24);
        }
    }

    #[test]
    fn ipv4_bad_header_lengths() {
        let good = ipv4(6, &[], &tcp(&[], b"abc"));
        for ihl in 0..5u8 {
            let mut f = good.clone();
            f[0] = 0x40 | ihl;
            assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::BadIpHeader));
        }
        // Total length shorter than the header.
        let mut f = good.clone();
        f[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::BadIpHeader));
        let mut f = ipv4(6, &[1, 1, 1, 1], &[]);
        f[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::BadIpHeader));
        // IHL says options that were not captured.
        let mut f = good[..20].to_vec();
        f[0] = 0x46;
        f[2..4].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(decode_ip(LinkType::RAW, &f), Err(DecodeError::TruncatedIp));
        assert_eq!(
            decode_ip(LinkType::RAW, &good[..19]),
            Err(DecodeError::TruncatedIp)
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK: 14 + 20 + 20 = 54 bytes, padded to the 60-byte minimum.
        let mut f = eth(&[], 0x0800, &ipv4(6, &[], &tcp(&[], b"")));
        f.extend_from_slice(&[0xaa; 6]);
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(p.payload_len, 20);
        assert_eq!(p.payload.len(), 20);
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, b"");
        assert_eq!(t.payload_len, 0);
        // The same for IPv6 (with a trailer after a 1-byte payload).
        let mut f = eth(&[], 0x86dd, &ipv6(6, &tcp(&[], b"z")));
        f.extend_from_slice(&[0xaa; 4]);
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(p.payload_len, 21);
        assert_eq!(decode_tcp(p.payload, p.payload_len).unwrap().payload, b"z");
    }

    #[test]
    fn ipv4_total_length_zero_uses_captured_length() {
        let mut f = ipv4(6, &[], &tcp(&[], &[7; 3000]));
        f[2..4].copy_from_slice(&0u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_eq!(p.payload_len, 3020);
        assert_eq!(p.payload.len(), 3020);
        assert_eq!(
            decode_tcp(p.payload, p.payload_len).unwrap().payload_len,
            3000
        );
    }

    #[test]
    fn snaplen_cut_packet() {
        let f = eth(&[], 0x0800, &ipv4(6, &[], &tcp(&[], &[9; 100])));
        let cut = &f[..14 + 20 + 20 + 30];
        let p = decode_ip(LinkType::ETHERNET, cut).unwrap();
        assert_eq!(p.payload_len, 120);
        assert_eq!(p.payload.len(), 50);
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, &[9; 30]);
        assert_eq!(t.payload_len, 100);
        let f = ipv6(6, &tcp(&[], &[9; 100]));
        let p = decode_ip(LinkType::IPV6, &f[..40 + 20 + 10]).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (120, 30));
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!((t.payload_len, t.payload.len()), (100, 10));
    }

    #[test]
    fn ipv4_fragments() {
        let mut f = ipv4(6, &[], &[1; 16]);
        // MF, offset 0.
        f[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_eq!(
            p.fragment,
            Some(Fragment {
                ident: 0x1234,
                offset: 0,
                more: true
            })
        );
        // Last fragment at offset 185 * 8.
        f[6..8].copy_from_slice(&185u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_eq!(
            p.fragment,
            Some(Fragment {
                ident: 0x1234,
                offset: 1480,
                more: false
            })
        );
        assert_eq!(p.payload, &[1; 16]);
        // DF alone is not a fragment.
        f[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        assert_eq!(decode_ip(LinkType::RAW, &f).unwrap().fragment, None);
    }

    #[test]
    fn ipv6_each_extension_header_alone() {
        let seg = tcp(&[], b"ext");
        let cases: [(u8, Vec<u8>); 5] = [
            (0, ext(6, 1)),
            (43, ext(6, 3)),
            (60, ext(6, 2)),
            (51, ah(6, 6)),
            // An atomic fragment is a whole datagram.
            (44, frag_hdr(6, 0, false, 77)),
        ];
        for (next, hdr) in cases {
            let mut body = hdr.clone();
            body.extend_from_slice(&seg);
            let f = ipv6(next, &body);
            let p = decode_ip(LinkType::IPV6, &f).unwrap();
            assert_v6_tcp(&p, b"ext");
            assert_eq!(p.payload_len as usize, seg.len(), "next header {next}");
            assert_eq!(
                skip_ipv6_extensions(next, &body),
                if next == 44 {
                    Err(DecodeError::BadIpv6ExtHeader)
                } else {
                    Ok((6, hdr.len()))
                }
            );
        }
    }

    #[test]
    fn ipv6_extension_headers_chained() {
        let seg = tcp(&[], b"chain");
        let mut body = ext(43, 1); // hop-by-hop -> routing
        body.extend(ext(60, 2)); // routing -> destination options
        body.extend(ext(51, 1)); // destination options -> AH
        body.extend(ah(44, 4)); // AH -> fragment (atomic)
        body.extend(frag_hdr(60, 0, false, 1)); // -> destination options
        body.extend(ext(6, 1));
        let ext_len = body.len();
        body.extend_from_slice(&seg);
        let f = ipv6(0, &body);
        let p = decode_ip(LinkType::IPV6, &f).unwrap();
        assert_v6_tcp(&p, b"chain");
        assert_eq!(ext_len, 8 + 16 + 8 + 16 + 8 + 8);
        // Upper-layer protocols are returned as they are.
        for upper in [6u8, 17, 50, 59] {
            let mut body = ext(upper, 1);
            body.extend_from_slice(&[0; 8]);
            let f = ipv6(60, &body);
            let p = decode_ip(LinkType::IPV6, &f).unwrap();
            assert_eq!((p.protocol, p.payload_len, p.payload.len()), (upper, 8, 8));
        }
        assert_eq!(skip_ipv6_extensions(6, &seg), Ok((6, 0)));
        assert_eq!(skip_ipv6_extensions(59, &[]), Ok((59, 0)));
        let mut chain = ext(43, 1);
        chain.extend(ext(6, 2));
        chain.extend_from_slice(&seg);
        assert_eq!(skip_ipv6_extensions(60, &chain), Ok((6, 24)));
        assert_eq!(
            skip_ipv6_extensions(60, &chain[..20]),
            Err(DecodeError::BadIpv6ExtHeader)
        );
        assert_eq!(
            skip_ipv6_extensions(0, &[6]),
            Err(DecodeError::BadIpv6ExtHeader)
        );
    }

    #[test]
    fn ipv6_fragment_header() {
        let data = [5u8; 24];
        let mut body = ext(44, 1); // hop-by-hop before the fragment header (unfragmentable)
        body.extend(frag_hdr(60, 1480, true, 0xdead_beef));
        body.extend_from_slice(&data);
        let f = ipv6(0, &body);
        let p = decode_ip(LinkType::IPV6, &f).unwrap();
        assert_eq!(p.protocol, 60, "the fragment header's next header");
        assert_eq!(
            p.fragment,
            Some(Fragment {
                ident: 0xdead_beef,
                offset: 1480,
                more: true
            })
        );
        assert_eq!(p.payload, &data);
        assert_eq!(p.payload_len, 24);
        // First fragment (offset 0, M set): walking stops too.
        let mut body = frag_hdr(6, 0, true, 9);
        body.extend_from_slice(&tcp(&[], b"frag"));
        let f = ipv6(44, &body);
        let p = decode_ip(LinkType::IPV6, &f).unwrap();
        assert_eq!(
            p.fragment,
            Some(Fragment {
                ident: 9,
                offset: 0,
                more: true
            })
        );
        assert_eq!((p.protocol, p.payload_len), (6, 24));
        // Last fragment: M clear, offset set.
        let mut body = frag_hdr(6, 8, false, 9);
        body.extend_from_slice(&[1; 8]);
        let f = ipv6(44, &body);
        let p = decode_ip(LinkType::IPV6, &f).unwrap();
        assert_eq!(
            p.fragment,
            Some(Fragment {
                ident: 9,
                offset: 8,
                more: false
            })
        );
    }

    #[test]
    fn ipv6_bad_and_truncated_extension_headers() {
        // A hop-by-hop header claiming 16 bytes in an 8-byte payload.
        let mut body = ext(6, 1);
        body[1] = 1;
        let f = ipv6(0, &body);
        assert_eq!(
            decode_ip(LinkType::IPV6, &f),
            Err(DecodeError::BadIpv6ExtHeader)
        );
        // Within the claimed length but cut by the capture.
        let mut body = ext(6, 4);
        body.extend_from_slice(&tcp(&[], b""));
        let f = ipv6(0, &body);
        assert_eq!(
            decode_ip(LinkType::IPV6, &f[..40 + 16]),
            Err(DecodeError::TruncatedIp)
        );
        assert_eq!(
            decode_ip(LinkType::IPV6, &f[..39]),
            Err(DecodeError::TruncatedIp)
        );
    }

    #[test]
    fn ipv6_jumbo_uses_captured_length() {
        // Hop-by-hop with the jumbo payload option (type 0xc2), payload length field 0.
        let seg = tcp(&[], &[3; 70000]);
        let mut body = vec![6, 0, 0xc2, 4];
        body.extend_from_slice(&(8 + seg.len() as u32).to_be_bytes());
        body.extend_from_slice(&seg);
        let mut f = ipv6(0, &body);
        f[4..6].copy_from_slice(&0u16.to_be_bytes());
        let p = decode_ip(LinkType::IPV6, &f).unwrap();
        assert_eq!(p.payload_len as usize, seg.len());
        assert_eq!(
            decode_tcp(p.payload, p.payload_len).unwrap().payload_len,
            70000
        );
    }

    #[test]
    fn tcp_header_checks() {
        let seg = tcp(&[2, 4, 5, 0xb4, 1, 1, 4, 2], b"data");
        let t = decode_tcp(&seg, seg.len() as u32).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"data"[..], 4));
        // Data offset below 5.
        for doff in 0..5u8 {
            let mut s = seg.clone();
            s[12] = doff << 4;
            assert_eq!(
                decode_tcp(&s, s.len() as u32),
                Err(DecodeError::BadTcpHeader)
            );
        }
        // Header (with options) longer than captured.
        assert_eq!(
            decode_tcp(&seg[..27], seg.len() as u32),
            Err(DecodeError::BadTcpHeader)
        );
        assert_eq!(
            decode_tcp(&seg[..19], seg.len() as u32),
            Err(DecodeError::BadTcpHeader)
        );
        // Claimed length shorter than the header.
        assert_eq!(decode_tcp(&seg, 27), Err(DecodeError::BadTcpHeader));
        // Claimed shorter than captured: the claim wins.
        let t = decode_tcp(&seg, 30).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"da"[..], 2));
        // Snaplen cut: claim beyond capture.
        let t = decode_tcp(&seg, 1000).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"data"[..], 972));
    }

    #[test]
    fn errors_count_in_their_own_counter() {
        use DecodeError::*;
        let all = [
            UnsupportedLinkType(5),
            NotIp,
            TooManyVlans,
            TruncatedLink,
            TruncatedIp,
            BadIpVersion,
            BadIpHeader,
            BadIpv6ExtHeader,
            BadTcpHeader,
        ];
        let mut stats = DecodeStats::default();
        for (i, e) in all.iter().enumerate() {
            for _ in 0..=i {
                e.count(&mut stats);
            }
        }
        let got = [
            stats.unsupported_link,
            stats.not_ip,
            stats.too_many_vlans,
            stats.truncated_link,
            stats.truncated_ip,
            stats.bad_ip_version,
            stats.bad_ip_header,
            stats.bad_ipv6_ext,
            stats.bad_tcp_header,
        ];
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(
            (
                stats.frames,
                stats.not_tcp,
                stats.tcp_segments,
                stats.snaplen_cut
            ),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn agrees_with_etherparse() {
        use etherparse::{PacketBuilder, VlanId};
        let payload = b"etherparse cross-check";
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .double_vlan(VlanId::try_new(10).unwrap(), VlanId::try_new(20).unwrap())
            .ipv4(SRC4, DST4, 64)
            .tcp(1234, 443, 0xffff_fff0, 1024)
            .syn()
            .write(&mut f, payload)
            .unwrap();
        let p = decode_ip(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(p.vlans.as_slice(), &[10, 20]);
        assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]));
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(
            (t.src_port, t.dst_port, t.seq),
            (1234, 443, SeqNum(0xffff_fff0))
        );
        assert!(t.flags.syn());
        assert_eq!(t.payload, payload);

        let mut f = Vec::new();
        PacketBuilder::ipv6(SRC6, DST6, 64)
            .tcp(5, 6, 7, 8)
            .write(&mut f, payload)
            .unwrap();
        let p = decode_ip(LinkType::RAW, &f).unwrap();
        assert_v6_tcp(&p, payload);
    }

    /// Valid frames for every link type.
    fn sample_frames() -> Vec<(LinkType, Vec<u8>)> {
        let v4 = ipv4(6, &[1, 1, 1, 0], &tcp(&[1, 1, 1, 1], b"0123456789"));
        let mut ext6 = ext(60, 1);
        ext6.extend(ext(51, 1));
        ext6.extend(ah(6, 4));
        ext6.extend(tcp(&[], b"abcdefgh"));
        let v6 = ipv6(0, &ext6);
        let mut f6 = frag_hdr(6, 0, true, 3);
        f6.extend(tcp(&[], b"fragment"));
        let v6f = ipv6(44, &f6);
        vec![
            (
                LinkType::ETHERNET,
                eth(&[(0x8100, 1), (0x88a8, 2)], 0x0800, &v4),
            ),
            (LinkType::ETHERNET, eth(&[(0x9100, 3)], 0x86dd, &v6)),
            (LinkType::LINUX_SLL, sll(0x0800, &v4)),
            (LinkType::LINUX_SLL2, sll2(0x86dd, &v6f)),
            (LinkType::RAW, v4.clone()),
            (LinkType::RAW_12, v6.clone()),
            (LinkType::RAW_14, v6f.clone()),
            (LinkType::IPV4, v4.clone()),
            (LinkType::IPV6, v6.clone()),
            (LinkType::NULL, prefixed(30u32.to_le_bytes(), &v6)),
            (LinkType::LOOP, prefixed(2u32.to_be_bytes(), &v4)),
        ]
    }

    #[test]
    fn truncation_at_every_offset() {
        for (link, frame) in sample_frames() {
            let full = decode_ip(link, &frame).unwrap();
            let full_tcp = decode_tcp(full.payload, full.payload_len).unwrap();
            for n in 0..frame.len() {
                match decode_ip(link, &frame[..n]) {
                    Err(_) => {}
                    Ok(p) => {
                        // Only the payload may be shorter; the claim stays.
                        assert_eq!(p.payload_len, full.payload_len, "{link:?} cut at {n}");
                        assert!(p.payload.len() < full.payload.len());
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

    fn check_invariants(link: LinkType, bytes: &[u8]) {
        if let Ok(p) = decode_ip(link, bytes) {
            assert!(p.payload.len() <= p.payload_len as usize);
            if let Ok(t) = decode_tcp(p.payload, p.payload_len) {
                assert!(t.payload.len() <= t.payload_len as usize);
            }
            if let Ok((_, off)) = skip_ipv6_extensions(p.protocol, p.payload) {
                assert!(off <= p.payload.len());
            }
        }
        let _ = decode_tcp(bytes, bytes.len() as u32);
        let _ = decode_tcp(bytes, u32::MAX);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 7]),
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            check_invariants(LinkType(link), &bytes);
        }

        /// Random bytes behind valid headers reach the deeper parsers.
        #[test]
        fn random_ip_bodies_never_panic(
            v6 in any::<bool>(),
            next in prop::sample::select(vec![0u8, 6, 43, 44, 51, 60, 59]),
            body in prop::collection::vec(any::<u8>(), 0..120),
            cut in any::<prop::sample::Index>(),
        ) {
            let f = if v6 { ipv6(next, &body) } else { ipv4(next, &[], &body) };
            let n = cut.index(f.len() + 1);
            check_invariants(LinkType::RAW, &f[..n]);
            let _ = skip_ipv6_extensions(next, &body);
        }
    }
}
