//! Decoding: link layer, encapsulations, IP, TCP.
//!
//! Every byte here is untrusted: fields are read through `get`/fixed-size arrays so that no
//! input can panic, and multi-byte fields are read big-endian explicitly (except where a link
//! layer stores host order, which is tried both ways).
//!
//! A frame is walked from the link layer inwards (VLAN tags, LLC/SNAP, PPPoE, PPP, MPLS,
//! Cisco HDLC, NFLOG) to an IP header, and through tunnels (IP in IP, GRE, VXLAN, Geneve,
//! GTP-U, AYIYA) to the innermost IP packet. Every length field on the way bounds what
//! follows it (as tshark's reported length does), so an inner length beyond it is cut there
//! rather than taken for a snap-length cut; no length is trusted beyond the captured bytes.
//! Every repetition is bounded: 3 VLAN tags, 8 MPLS labels, 8 GTP-U extension headers, 4
//! encapsulations.

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
    pub const PPP: LinkType = LinkType(9);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const C_HDLC: LinkType = LinkType(104);
    pub const NFLOG: LinkType = LinkType(239);

    /// Whether [`decode_ip`] understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(
            self.0,
            0 | 1 | 9 | 12 | 14 | 50 | 101 | 104 | 108 | 113 | 228 | 229 | 239 | 276
        )
    }
}

/// An IP address.
// repr(u8): a defined layout whose all-zero bytes are `V4([0; 4])` (see `FlowSlot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
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
const ETH_MPLS_UNICAST: u16 = 0x8847;
const ETH_MPLS_MULTICAST: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
/// Transparent Ethernet bridging: an Ethernet frame (GRE, Geneve).
const ETH_TEB: u16 = 0x6558;
/// PPP (PPTP's enhanced GRE).
const ETH_PPP: u16 = 0x880b;
/// Below this an Ethernet type field is an 802.3 length, and 802.2 LLC follows.
const ETH_MIN_TYPE: u16 = 0x0600;
/// Linux cooked capture protocol value for an 802.2 LLC frame.
const SLL_LLC: u16 = 0x0004;

/// PPP protocol numbers.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS_UNICAST: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// IP protocols that carry tunnels.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;

/// UDP destination ports of tunnels.
const UDP_VXLAN: u16 = 4789;
const UDP_GENEVE: u16 = 6081;
const UDP_GTP_U: u16 = 2152;
const UDP_AYIYA: u16 = 5072;

/// GRE flags (first byte).
const GRE_CHECKSUM: u8 = 0x80;
const GRE_ROUTING: u8 = 0x40;
const GRE_KEY: u8 = 0x20;
const GRE_SEQUENCE: u8 = 0x10;
/// GRE version 1 acknowledgement flag (second byte).
const GRE_ACK: u8 = 0x80;

/// NFLOG TLV type of the packet itself.
const NFULA_PAYLOAD: u16 = 9;

/// At most this many encapsulations are opened (IP in IP, GRE, UDP tunnels, Ethernet in
/// MPLS). An IP packet at that depth is returned as it is (its protocol is the tunnel's, so
/// the engine ignores it as not TCP); an Ethernet pseudowire beyond it is not decoded
/// ([`DecodeError::NotIp`]).
const MAX_TUNNELS: usize = 4;
/// At most this many MPLS labels in one stack; a deeper stack is not decoded
/// ([`DecodeError::NotIp`]).
const MAX_MPLS_LABELS: usize = 8;
/// At most this many GTP-U extension headers.
const MAX_GTP_EXTENSIONS: usize = 8;
/// At most this many link-layer headers between two IP headers (a longer chain is not
/// decoded: [`DecodeError::NotIp`]). Chains only repeat through Ethernet in MPLS, which
/// counts against [`MAX_TUNNELS`], so this is only a backstop.
const MAX_LINK_STEPS: usize = 16;

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

/// Bytes on the way in: the captured part of `claimed` bytes. `claimed` comes from the
/// length fields read so far (PPPoE, UDP, an outer IP header, ...), `usize::MAX` while none
/// said; it exceeds `data.len()` only when the snap length cut the frame.
#[derive(Clone, Copy)]
struct Span<'a> {
    data: &'a [u8],
    claimed: usize,
}

impl<'a> Span<'a> {
    /// A whole frame: its length on the wire is not known here.
    fn frame(data: &'a [u8]) -> Self {
        Span {
            data,
            claimed: usize::MAX,
        }
    }

    /// The same bytes under a length field claiming `n`: the captured part is cut to it.
    fn limit(self, n: usize) -> Self {
        let claimed = self.claimed.min(n);
        Span {
            data: self.data.get(..claimed).unwrap_or(self.data),
            claimed,
        }
    }

    /// What follows the first `n` bytes.
    fn after(self, n: usize) -> Self {
        Span {
            data: self.data.get(n..).unwrap_or(&[]),
            claimed: self.claimed.saturating_sub(n),
        }
    }

    /// The first `N` bytes, if captured, and what follows them.
    fn split<const N: usize>(self) -> Option<(&'a [u8; N], Self)> {
        let (h, _) = self.data.split_first_chunk::<N>()?;
        Some((h, self.after(N)))
    }

    /// The first `n` bytes of a tunnel header: `None` when fewer are claimed (so it is not
    /// the tunnel), [`DecodeError::TruncatedIp`] when only the capture is shorter.
    fn header(self, n: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        if n > self.claimed {
            return Ok(None);
        }
        self.data.get(..n).map(Some).ok_or(DecodeError::TruncatedIp)
    }
}

/// A header still to be read on the way in to an IP header.
#[derive(Clone, Copy)]
enum Layer<'a> {
    /// An Ethernet II or 802.3 frame, from its destination MAC.
    Ethernet(Span<'a>),
    /// What follows an ethertype (VLAN tags may come first).
    Ethertype(u16, Span<'a>),
    /// An 802.2 LLC header: only SNAP with an ethertype is understood.
    Llc(Span<'a>),
    /// A PPP frame: optional 0xff 0x03 (address, control), then the protocol field.
    Ppp(Span<'a>),
    /// A Cisco HDLC frame: address, control, ethertype.
    CiscoHdlc(Span<'a>),
    /// An MPLS label stack.
    Mpls(Span<'a>),
    /// An IP header.
    Ip(Version, Span<'a>),
}

/// What the walk from the frame to the innermost IP header has collected.
struct Walk {
    /// VLAN ids of the capture link (tags inside tunnels are skipped, not recorded).
    vlans: Vlans,
    /// MACs of the outermost Ethernet header.
    macs: Option<[[u8; 6]; 2]>,
    /// Encapsulations opened so far (at most [`MAX_TUNNELS`]).
    tunnels: usize,
}

impl Walk {
    /// Reads VLAN tags while `ethertype` is a TPID; returns the inner ethertype and what
    /// follows.
    fn vlan_tags<'a>(
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
    fn down_to_ip<'a>(&mut self, mut layer: Layer<'a>) -> Result<(Version, Span<'a>), DecodeError> {
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
            };
        }
        Err(DecodeError::NotIp)
    }

    /// Skips an MPLS label stack; the payload's first nibble tells what it is (MPLS does
    /// not say).
    fn mpls<'a>(&mut self, mut d: Span<'a>) -> Result<Layer<'a>, DecodeError> {
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

    /// Opens the tunnels `pkt` carries, down to the innermost packet. Every turn opens one
    /// more, so this ends within [`MAX_TUNNELS`] turns.
    fn open_tunnels<'a>(&mut self, mut pkt: IpPacket<'a>) -> Result<IpPacket<'a>, DecodeError> {
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

    /// Counts an encapsulation found below the IP layer (Ethernet in MPLS).
    fn enter(&mut self) -> Result<(), DecodeError> {
        if self.tunnels >= MAX_TUNNELS {
            return Err(DecodeError::NotIp);
        }
        self.tunnels += 1;
        Ok(())
    }
}

/// A PPPoE session header (RFC 2516): version/type 0x11, code 0, session id, length of the
/// PPP frame that follows.
fn pppoe(d: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, rest) = d.split::<6>().ok_or(DecodeError::TruncatedLink)?;
    if h[0] != 0x11 || h[1] != 0 {
        return Err(DecodeError::NotIp);
    }
    Ok(Layer::Ppp(rest.limit(usize::from(be16(h, 4)))))
}

/// A PPP frame: optional address/control 0xff 0x03, then a 2-byte protocol, or a 1-byte one
/// when it was compressed (protocol numbers have an odd low byte and an even high byte).
fn ppp(d: Span<'_>) -> Result<Layer<'_>, DecodeError> {
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
fn snap(d: Span<'_>) -> Result<(u16, Span<'_>), DecodeError> {
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
fn nflog(frame: &[u8]) -> Result<Layer<'_>, DecodeError> {
    let (h, mut tlvs) = Span::frame(frame)
        .split::<4>()
        .ok_or(DecodeError::TruncatedLink)?;
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

/// Decodes the link layer and IP header(s) of a frame, down to the innermost IP packet of
/// a tunnel.
///
/// `payload` is cut to the length the IP header claims (so Ethernet padding is never data),
/// or to a shorter length the layers around it claim (PPPoE, UDP, an outer IP header, ...);
/// `payload_len` is that claimed length, larger than `payload.len()` when the snap length cut
/// the packet.
///
/// Link layers: Ethernet (VLAN tags, 802.2 LLC/SNAP, MPLS, PPPoE sessions), Linux SLL and
/// SLL2, raw IP, BSD null/loop, PPP, PPP in HDLC framing, Cisco HDLC and NFLOG.
///
/// Tunnels are opened down to the innermost IP packet (at most four of them), whose
/// addresses are the flow's, as in tshark: IP in IP (4, 41, also after IPv4 AH), GRE
/// (versions 0 and 1), and by UDP destination port VXLAN (4789), Geneve (6081), GTP-U
/// (2152) and AYIYA (5072, either port). The VLAN ids and MACs stay the capture link's.
/// A tunnel whose inner packet cannot be decoded returns the inner error; a packet that
/// does not look like the tunnel (a UDP datagram on one of those ports with a bad version,
/// flags or lengths; a GRE type or version that is not understood; GTP-U signalling) is
/// returned as the outer packet, which the engine ignores as not TCP. IPComp (108) cannot
/// be read without decompression and is returned as it is.
///
/// A fragment is returned as it is, for the engine to reassemble. A tunnel whose outer
/// packet is fragmented is therefore not opened here: after reassembly the datagram has the
/// tunnel's protocol (UDP, GRE, ...); [`decode_tunnel`] opens it.
pub fn decode_ip(link: LinkType, frame: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    // Most frames are untagged Ethernet II carrying IP: read them without the walk's loop
    // over layers (the same header functions, so the same result; a test compares the two).
    if link.0 == 1 {
        if let Some((h, _)) = frame.split_first_chunk::<14>() {
            let version = match be16(h, 12) {
                ETH_IPV4 => Some(Version::V4),
                ETH_IPV6 => Some(Version::V6),
                _ => None,
            };
            if let Some(version) = version {
                let macs = Some([field(h, 6), field(h, 0)]);
                let pkt = ip_header(version, Span::frame(frame).after(14), Vlans::NONE, macs)?;
                if !carries_tunnel(pkt.protocol) {
                    return Ok(pkt);
                }
                let mut walk = Walk {
                    vlans: Vlans::NONE,
                    macs,
                    tunnels: 0,
                };
                return walk.open_tunnels(pkt);
            }
        }
    }
    decode_ip_walk(link, frame)
}

/// [`decode_ip`] for every link type and encapsulation.
fn decode_ip_walk(link: LinkType, frame: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let mut walk = Walk {
        vlans: Vlans::NONE,
        macs: None,
        tunnels: 0,
    };
    let whole = Span::frame(frame);
    let layer = match link.0 {
        1 => Layer::Ethernet(whole),
        113 => {
            // libpcap puts a VLAN tag the kernel stripped back after the header as 802.1Q.
            let (h, rest) = whole.split::<16>().ok_or(DecodeError::TruncatedLink)?;
            sll_protocol(be16(h, 14), rest)
        }
        276 => {
            let (h, rest) = whole.split::<20>().ok_or(DecodeError::TruncatedLink)?;
            sll_protocol(be16(h, 0), rest)
        }
        0 | 108 => {
            let (h, rest) = whole.split::<4>().ok_or(DecodeError::TruncatedLink)?;
            Layer::Ip(bsd_family(h)?, rest)
        }
        9 => Layer::Ppp(whole),
        // PPP in HDLC-like framing, or Cisco HDLC (address 0x0f unicast, 0x8f broadcast).
        50 => match frame.first() {
            Some(0x0f | 0x8f) => Layer::CiscoHdlc(whole),
            _ => Layer::Ppp(whole),
        },
        104 => Layer::CiscoHdlc(whole),
        239 => nflog(frame)?,
        12 | 14 | 101 => Layer::Ip(Version::Any, whole),
        228 => Layer::Ip(Version::V4, whole),
        229 => Layer::Ip(Version::V6, whole),
        n => return Err(DecodeError::UnsupportedLinkType(n)),
    };
    let (version, ip) = walk.down_to_ip(layer)?;
    let pkt = ip_header(version, ip, walk.vlans, walk.macs)?;
    walk.open_tunnels(pkt)
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
    let mut walk = Walk {
        vlans: outer.vlans,
        macs: outer.macs,
        tunnels: 0,
    };
    walk.open_tunnels(pkt).map(Some)
}

/// A Linux cooked capture protocol: an ethertype, or 4 for 802.2 LLC.
fn sll_protocol(protocol: u16, rest: Span<'_>) -> Layer<'_> {
    if protocol == SLL_LLC {
        Layer::Llc(rest)
    } else {
        Layer::Ethertype(protocol, rest)
    }
}

fn ip_header(
    version: Version,
    ip: Span<'_>,
    vlans: Vlans,
    macs: Option<[[u8; 6]; 2]>,
) -> Result<IpPacket<'_>, DecodeError> {
    let first = *ip.data.first().ok_or(short_ip(ip.claimed, 1))?;
    match (version, first >> 4) {
        (Version::Any | Version::V4, 4) => ipv4(ip.data, ip.claimed, vlans, macs),
        (Version::Any | Version::V6, 6) => ipv6(ip.data, ip.claimed, vlans, macs),
        _ => Err(DecodeError::BadIpVersion),
    }
}

/// Whether an upper-layer protocol may be a tunnel that [`tunnel`] opens.
fn carries_tunnel(protocol: u8) -> bool {
    matches!(
        protocol,
        IPPROTO_IPIP | IPPROTO_IPV6 | IPPROTO_GRE | IPPROTO_UDP
    )
}

/// The tunnel an IP packet carries, if any (`None`: the packet is the one to return).
fn tunnel<'a>(pkt: &IpPacket<'a>) -> Result<Option<Layer<'a>>, DecodeError> {
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
fn by_ethertype(ethertype: u16, d: Span<'_>) -> Option<Layer<'_>> {
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
fn gre(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
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
fn udp(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
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
fn vxlan(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
    match d.header(8)? {
        Some(h) if h[0] & 0x08 != 0 => Ok(Some(Layer::Ethernet(d.after(8)))),
        _ => Ok(None),
    }
}

/// Geneve (RFC 8926): version 0, options length in 4-byte words, protocol type.
fn geneve(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
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
fn gtp_u(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
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
fn ayiya(d: Span<'_>) -> Result<Option<Layer<'_>>, DecodeError> {
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

/// Why fewer than `header` bytes of an IP header are there: the container claims fewer
/// (malformed), or the capture was cut.
fn short_ip(limit: usize, header: usize) -> DecodeError {
    if limit < header {
        DecodeError::BadIpHeader
    } else {
        DecodeError::TruncatedIp
    }
}

/// An IPv4 packet in `data`, whose container claims at most `limit` bytes for it.
fn ipv4(
    data: &[u8],
    limit: usize,
    vlans: Vlans,
    macs: Option<[[u8; 6]; 2]>,
) -> Result<IpPacket<'_>, DecodeError> {
    let Some((h, _)) = data.split_first_chunk::<20>() else {
        return Err(short_ip(limit, 20));
    };
    let hlen = usize::from(h[0] & 0x0f) * 4;
    if hlen < 20 {
        return Err(DecodeError::BadIpHeader);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if (total != 0 && total < hlen) || limit < hlen {
        return Err(DecodeError::BadIpHeader);
    }
    if data.len() < hlen {
        return Err(DecodeError::TruncatedIp);
    }
    // Total length 0: a TSO/LSO super-packet captured before the NIC split it; the captured
    // length is all there is. A total beyond what the container claims (PPPoE, UDP, an outer
    // IP header) ends where the container does, as in tshark.
    let claimed = if total == 0 {
        data.len() - hlen
    } else {
        (total - hlen).min(limit - hlen)
    };
    let end = hlen.saturating_add(claimed).min(data.len());
    let mut payload = data.get(hlen..end).unwrap_or(&[]);
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let more = flags_offset & 0x2000 != 0;
    let offset = u32::from(flags_offset & 0x1fff) * 8;
    let fragment = (more || offset != 0).then_some(Fragment {
        ident: u32::from(u16::from_be_bytes([h[4], h[5]])),
        offset,
        more,
    });
    let mut protocol = h[9];
    let mut claimed = claimed;
    // IPsec AH (RFC 4302) is skipped as in IPv6's extension headers (transport mode: the
    // upper layer follows; tunnel mode: an IP packet). A fragment keeps it: the engine sees
    // protocol 51 after reassembly.
    if protocol == IPV6_AH && fragment.is_none() {
        let len = payload.get(1).map_or(0, |&l| (usize::from(l) + 2) * 4);
        let ah = ext_bytes(payload, claimed, 0, len.max(2)).map_err(|e| match e {
            DecodeError::BadIpv6ExtHeader => DecodeError::BadIpHeader,
            e => e,
        })?;
        protocol = ah.first().copied().unwrap_or(0);
        payload = payload.get(len..).unwrap_or(&[]);
        claimed -= len;
    }
    Ok(IpPacket {
        vlans,
        macs,
        src: Addr::V4(field(h, 12)),
        dst: Addr::V4(field(h, 16)),
        protocol,
        fragment,
        payload,
        payload_len: len_u32(claimed),
    })
}

/// An IPv6 packet in `data`, whose container claims at most `limit` bytes for it.
fn ipv6(
    data: &[u8],
    limit: usize,
    vlans: Vlans,
    macs: Option<[[u8; 6]; 2]>,
) -> Result<IpPacket<'_>, DecodeError> {
    let Some((h, rest)) = data.split_first_chunk::<40>() else {
        return Err(short_ip(limit, 40));
    };
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let Some(limit) = limit.checked_sub(40) else {
        return Err(DecodeError::BadIpHeader);
    };
    // Payload length 0: a jumbogram (hop-by-hop jumbo option) or a GSO/BIG TCP super-packet;
    // the captured length is all there is.
    let claimed = if plen == 0 {
        rest.len()
    } else {
        plen.min(limit)
    };
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

    /// Outer (tunnel endpoint) addresses; the inner packets use SRC4/DST4 and SRC6/DST6.
    const OUT4: [[u8; 4]; 2] = [[192, 0, 2, 1], [192, 0, 2, 2]];
    const OUT6: [[u8; 16]; 2] = [
        [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    ];
    const INNER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn ipv4_between(addrs: [[u8; 4]; 2], protocol: u8, body: &[u8]) -> Vec<u8> {
        let mut v = ipv4(protocol, &[], body);
        v[12..16].copy_from_slice(&addrs[0]);
        v[16..20].copy_from_slice(&addrs[1]);
        v
    }

    fn ipv6_between(addrs: [[u8; 16]; 2], next: u8, body: &[u8]) -> Vec<u8> {
        let mut v = ipv6(next, body);
        v[8..24].copy_from_slice(&addrs[0]);
        v[24..40].copy_from_slice(&addrs[1]);
        v
    }

    fn outer4(protocol: u8, body: &[u8]) -> Vec<u8> {
        ipv4_between(OUT4, protocol, body)
    }

    fn outer6(next: u8, body: &[u8]) -> Vec<u8> {
        ipv6_between(OUT6, next, body)
    }

    fn inner4(payload: &[u8]) -> Vec<u8> {
        ipv4(6, &[], &tcp(&[], payload))
    }

    fn inner6(payload: &[u8]) -> Vec<u8> {
        ipv6(6, &tcp(&[], payload))
    }

    /// An inner Ethernet frame (tunnel MACs, optional tags).
    fn inner_eth(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = eth(tags, ethertype, body);
        v[0..6].copy_from_slice(&INNER_MAC);
        v[6..12].copy_from_slice(&INNER_MAC);
        v
    }

    fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&(8 + body.len() as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(body);
        v
    }

    /// GRE version 0 with the optional fields `flags` names (C 0x80, K 0x20, S 0x10).
    fn gre(flags: u8, protocol: u16, body: &[u8]) -> Vec<u8> {
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
    fn vxlan(reserved: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x08, reserved, reserved, reserved, 0x00, 0x12, 0x34, reserved,
        ];
        v.extend_from_slice(body);
        v
    }

    /// PPP in HDLC-like framing.
    fn ppp(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff, 0x03];
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// `labels` MPLS labels, the last with the bottom-of-stack bit.
    fn mpls(labels: usize, body: &[u8]) -> Vec<u8> {
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
    fn pppoe(protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11, 0x00, 0x12, 0x34];
        v.extend_from_slice(&(2 + body.len() as u16).to_be_bytes());
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// 802.3 length + LLC/SNAP + ethertype.
    fn snap(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// An NFLOG frame: `tlvs` as (type, value), lengths in the given byte order.
    fn nflog(family: u8, tlvs: &[(u16, &[u8])], big_endian: bool) -> Vec<u8> {
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
    fn nflog_frame(family: u8, packet: &[u8], big_endian: bool) -> Vec<u8> {
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
    fn leak(frame: Vec<u8>) -> &'static [u8] {
        frame.leak()
    }

    fn assert_outer4(p: &IpPacket<'_>, protocol: u8) {
        assert_eq!(p.src, Addr::V4(OUT4[0]));
        assert_eq!(p.dst, Addr::V4(OUT4[1]));
        assert_eq!(p.protocol, protocol);
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
            decode_ip(LinkType(105), &f),
            Err(DecodeError::UnsupportedLinkType(105))
        );
        for n in [0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 239, 276] {
            assert!(LinkType(n).is_supported());
            // Every supported type gets past the link-type check.
            assert_ne!(
                decode_ip(LinkType(n), &[]),
                Err(DecodeError::UnsupportedLinkType(n))
            );
        }
        assert!(!LinkType(147).is_supported());
        assert!(!LinkType(105).is_supported());
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
    fn ipv4_ah_is_skipped() {
        // Transport mode: TCP after AH.
        let mut body = ah(6, 6);
        body.extend_from_slice(&tcp(&[], b"ah"));
        let p = decode_ip(LinkType::RAW, leak(ipv4(51, &[], &body))).unwrap();
        assert_v4_tcp(&p, b"ah");
        // Tunnel mode: IP after AH (libpcap/AH-IPcomp-IPv4.pcap).
        let mut body = ah(4, 6);
        body.extend_from_slice(&inner4(b"tunnel"));
        let p = decode_ip(LinkType::RAW, leak(outer4(51, &body))).unwrap();
        assert_v4_tcp(&p, b"tunnel");
        // AH then IPComp: left as IPComp.
        let mut body = ah(108, 4);
        body.extend_from_slice(&[4, 0, 0, 2, 1, 2, 3]);
        let p = decode_ip(LinkType::RAW, leak(outer4(51, &body))).unwrap();
        assert_outer4(&p, 108);
        assert_eq!((p.payload_len, p.payload), (7, &[4, 0, 0, 2, 1, 2, 3][..]));
        // AH longer than the packet; cut by the capture; a fragment keeps it.
        let mut body = ah(6, 6);
        body.extend_from_slice(&tcp(&[], b""));
        assert_eq!(
            decode_ip(LinkType::RAW, &ipv4(51, &[], &body[..20])),
            Err(DecodeError::BadIpHeader)
        );
        assert_eq!(
            decode_ip(LinkType::RAW, &ipv4(51, &[], &[])),
            Err(DecodeError::BadIpHeader)
        );
        let f = ipv4(51, &[], &body);
        assert_eq!(
            decode_ip(LinkType::RAW, &f[..20 + 20]),
            Err(DecodeError::TruncatedIp)
        );
        let mut frag = f.clone();
        frag[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        let p = decode_ip(LinkType::RAW, leak(frag)).unwrap();
        assert_eq!((p.protocol, p.payload_len), (51, 44));
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

    /// A Geneve header with `options` 4-byte words of options.
    fn geneve(options: u8, protocol: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![options, 0x00];
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(&[0, 0, 7, 0]);
        for i in 0..options {
            v.extend_from_slice(&[0x01, 0x02, 0x80 | i, 0]);
        }
        v.extend_from_slice(body);
        v
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

    /// A GTPv1-U G-PDU; `optional` adds the 4-byte sequence/N-PDU/next-type word with
    /// these flags, `extensions` the extension headers (as (type, 4-byte units)).
    fn gtp(flags: u8, extensions: &[(u8, u8)], body: &[u8]) -> Vec<u8> {
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

    /// An AYIYA header: identity 2^`id` bytes, signature `sig` * 4 bytes.
    fn ayiya(id: u8, sig: u8, opcode: u8, next: u8, body: &[u8]) -> Vec<u8> {
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

    /// Tunnel frames that are not UDP: a cut gives an error or the inner packet.
    fn tunnel_frames() -> Vec<(LinkType, Vec<u8>)> {
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
    fn udp_tunnel_frames() -> Vec<(LinkType, Vec<u8>, usize)> {
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
        .into_iter()
        .chain(tunnel_frames())
        .collect()
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
        /// The Ethernet shortcut in `decode_ip` gives what the general walk gives, on
        /// valid frames with random bytes changed (IPv4, IPv6, tunnels, options, cuts).
        #[test]
        fn ethernet_shortcut_agrees_with_the_walk(
            v6 in any::<bool>(),
            protocol in prop::sample::select(vec![6u8, 17, 4, 41, 47, 51, 0, 44]),
            body in prop::collection::vec(any::<u8>(), 0..120),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let ip = if v6 { ipv6(protocol, &body) } else { ipv4(protocol, &[], &body) };
            let mut f = eth(&[], if v6 { 0x86dd } else { 0x0800 }, &ip);
            for (i, v) in flips {
                let i = i.index(f.len());
                f[i] = v;
            }
            let n = cut.index(f.len() + 1);
            prop_assert_eq!(decode_ip(LinkType::ETHERNET, &f[..n]), decode_ip_walk(LinkType::ETHERNET, &f[..n]));
        }

        #[test]
        fn random_bytes_never_panic(
            link in prop::sample::select(vec![
                0u32, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 239, 276, 7,
            ]),
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

        /// Random bytes behind tunnel headers reach the tunnel and inner parsers.
        #[test]
        fn random_tunnel_bodies_never_panic(
            v6 in any::<bool>(),
            kind in 0usize..9,
            head in prop::collection::vec(any::<u8>(), 0..4),
            body in prop::collection::vec(any::<u8>(), 0..160),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut inner = head.clone();
            inner.extend_from_slice(&body);
            let (protocol, payload) = match kind {
                0 => (4, inner.clone()),
                1 => (41, inner.clone()),
                2 => (47, gre(head.first().copied().unwrap_or(0) & 0xb0, 0x0800, &body)),
                3 => (47, gre(0, 0x6558, &inner)),
                4 => (47, inner.clone()),
                5 => (17, udp(1, 4789, &vxlan(0, &inner))),
                6 => (17, udp(1, 6081, &inner)),
                7 => (17, udp(1, 2152, &inner)),
                _ => (17, udp(5072, 1, &inner)),
            };
            let f = if v6 { outer6(protocol, &payload) } else { outer4(protocol, &payload) };
            let n = cut.index(f.len() + 1);
            check_invariants(LinkType::RAW, &f[..n]);
            for link in [LinkType::ETHERNET, LinkType::PPP, LinkType::C_HDLC, LinkType::NFLOG] {
                check_invariants(link, &inner);
            }
        }
    }
}
