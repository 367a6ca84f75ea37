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
//!
//! One file per layer, as smoltcp's `wire`: `linktype` (the table of supported link types),
//! `link` (link layers and what sits between them and IP), `ieee80211`, `radiotap`, `ppi`,
//! `prism` (Wi-Fi), `ip` (IPv4, IPv6 and its extension headers), `tunnel` (encapsulations
//! inside IP), `tcp`. This file holds the public types, the walk's state and [`decode_ip`].

use crate::seq::SeqNum;
use crate::stats::DecodeStats;

mod ieee80211;
mod ip;
mod link;
mod linktype;
mod ppi;
mod prism;
mod radiotap;
mod tcp;
#[cfg(test)]
mod testutil;
mod tunnel;

pub use ip::skip_ipv6_extensions;
pub use linktype::{LinkType, LinkTypeRow, LINK_TYPES};
pub use tcp::decode_tcp;
pub use tunnel::decode_tunnel;

use ip::ip_header;
use link::{ETH_IPV4, ETH_IPV6, TPID_8021Q};
use tunnel::carries_tunnel;

/// An IP address.
// repr(u8): a defined layout whose all-zero bytes are `V4([0; 4])` (see `HotSlot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Addr {
    /// An IPv4 address, network byte order.
    V4([u8; 4]),
    /// An IPv6 address, network byte order.
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
    /// No VLAN tag.
    pub const NONE: Vlans = Vlans {
        ids: [0; 3],
        len: 0,
    };
    /// The most tags held (a fourth is [`DecodeError::TooManyVlans`]).
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

    /// The ids, outermost first.
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }

    /// Whether there is no tag.
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
    /// VLAN ids of the frame, outermost first.
    pub vlans: Vlans,
    /// Source and destination MAC when the link has them.
    pub macs: Option<[[u8; 6]; 2]>,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Upper-layer protocol after all extension headers (for a non-first IPv6 fragment, the
    /// fragment header's next header).
    pub protocol: u8,
    /// Where the packet sits in its datagram, when it is a fragment.
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
    /// The FIN bit.
    pub const FIN: u8 = 0x01;
    /// The SYN bit.
    pub const SYN: u8 = 0x02;
    /// The RST bit.
    pub const RST: u8 = 0x04;
    /// The PSH bit.
    pub const PSH: u8 = 0x08;
    /// The ACK bit.
    pub const ACK: u8 = 0x10;
    /// The URG bit.
    pub const URG: u8 = 0x20;
    /// The sender is done sending.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// The sender opens the connection (the segment's sequence number is its ISN).
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// The sender resets the connection.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// The acknowledgement number is valid.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first byte (or of the SYN).
    pub seq: SeqNum,
    /// Acknowledgement number (valid with the ACK flag).
    pub ack: SeqNum,
    /// The flags.
    pub flags: TcpFlags,
    /// Receive window, unscaled.
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
    /// A link type without a row in [`LINK_TYPES`].
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
    /// An 802.11 frame with the Protected bit (WEP, TKIP, CCMP, GCMP): its payload is
    /// encrypted, so it is counted and skipped (the engine ignores it as it does
    /// [`DecodeError::NotIp`]).
    Protected,
}

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

/// An Ethernet header's source and destination MAC, in that order. On 64-bit targets built
/// from two wide reads: six- and two-byte pieces were stored and then read back eight bytes
/// at a time, a store-forwarding stall on every frame.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn ethernet_macs(h: &[u8; 14]) -> [[u8; 6]; 2] {
    // As little-endian integers, h[0..8] and h[8..12]; the source MAC is h[6..12].
    let lo = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let hi = u64::from(u32::from_le_bytes([h[8], h[9], h[10], h[11]]));
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&((lo >> 48) | (hi << 16) | (lo << 48)).to_le_bytes());
    out[8..].copy_from_slice(&((lo >> 16) as u32).to_le_bytes());
    let (src, dst) = out.split_at(6);
    [
        *src.first_chunk().unwrap_or(&[0; 6]),
        *dst.first_chunk().unwrap_or(&[0; 6]),
    ]
}

/// [`ethernet_macs`] on 32-bit targets, copied field by field: there the 64-bit shifts cost
/// about 500 bytes of code, and the field builds (MIPS routers) are held to a size budget.
#[cfg(not(target_pointer_width = "64"))]
#[inline(always)]
fn ethernet_macs(h: &[u8; 14]) -> [[u8; 6]; 2] {
    [field(h, 6), field(h, 0)]
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

    /// Without its last `n` captured bytes (a trailer: an 802.11 FCS).
    fn drop_tail(self, n: usize) -> Option<Self> {
        let end = self.data.len().checked_sub(n)?;
        Some(Span {
            data: self.data.get(..end)?,
            claimed: self.claimed.saturating_sub(n),
        })
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
    /// An IEEE 802.11 frame; `true` when its header is padded to 4 bytes (radiotap's data
    /// pad flag, PPI's alignment).
    Ieee80211(Span<'a>, bool),
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
    /// 802.11 A-MSDU: the subframe to decode, and how many follow it.
    msdu_index: u16,
    more_msdus: u16,
}

impl Walk {
    /// A walk from a frame's outermost header (or, with a tunnel's VLANs and MACs, from a
    /// reassembled datagram).
    fn new(vlans: Vlans, macs: Option<[[u8; 6]; 2]>) -> Walk {
        Walk {
            vlans,
            macs,
            tunnels: 0,
            msdu_index: 0,
            more_msdus: 0,
        }
    }
}

/// Decodes the link layer and IP header(s) of a frame, down to the innermost IP packet of
/// a tunnel.
///
/// `payload` is cut to the length the IP header claims (so Ethernet padding is never data),
/// or to a shorter length the layers around it claim (PPPoE, UDP, an outer IP header, ...);
/// `payload_len` is that claimed length, larger than `payload.len()` when the snap length cut
/// the packet.
///
/// Link layers ([`LINK_TYPES`]): Ethernet (VLAN tags, 802.2 LLC/SNAP, MPLS, PPPoE sessions),
/// Linux SLL and SLL2, raw IP, BSD null/loop, PPP, PPP in HDLC framing, Cisco HDLC, NFLOG,
/// and IEEE 802.11 data frames bare or behind radiotap, PPI, Prism or AVS headers (a
/// protected frame is [`DecodeError::Protected`]; of an A-MSDU the first subframe is
/// returned, and [`decode_frame`] counts the others).
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
    decode_frame(link, frame, &mut DecodeStats::default())
}

/// [`decode_ip`], also counting in `stats` what the frame holds beyond the packet returned:
/// 802.11 A-MSDU subframes after the first (`wifi_amsdu_skipped`; the engine takes one
/// packet per frame). Refusals are not counted here (see [`DecodeError::count`]).
// Inlined into the engine's per-packet path (it has two callers since A-MSDU subframes
// each decode: without this the packet is returned through memory, ~20 instructions).
#[inline(always)]
pub fn decode_frame<'a>(
    link: LinkType,
    frame: &'a [u8],
    stats: &mut DecodeStats,
) -> Result<IpPacket<'a>, DecodeError> {
    // Most frames are Ethernet II carrying IP, untagged or with one 802.1Q tag (a tap on a
    // trunk port): read them without the walk's loop over layers (the same header
    // functions, so the same result; a test compares the two).
    if link.0 == 1 {
        if let Some((h, _)) = frame.split_first_chunk::<14>() {
            match be16(h, 12) {
                TPID_8021Q => return ethernet_one_tag(frame, h, stats),
                ethertype => {
                    if let Some(version) = ip_version(ethertype) {
                        return ethernet_ip(frame, h, version, 14, Vlans::NONE);
                    }
                }
            }
        }
    }
    decode_ip_walk(link, frame, stats)
}

/// The IP version an ethertype announces, if it is IPv4's or IPv6's.
#[inline(always)]
fn ip_version(ethertype: u16) -> Option<Version> {
    match ethertype {
        ETH_IPV4 => Some(Version::V4),
        ETH_IPV6 => Some(Version::V6),
        _ => None,
    }
}

/// The packet of an Ethernet frame (header `h`) whose IP header starts at `at`, after the
/// tags `vlans`: the shortcuts' common end.
#[inline(always)]
fn ethernet_ip<'a>(
    frame: &'a [u8],
    h: &[u8; 14],
    version: Version,
    at: usize,
    vlans: Vlans,
) -> Result<IpPacket<'a>, DecodeError> {
    let macs = Some(ethernet_macs(h));
    let ip = Span::frame(frame).after(at);
    // IPv4 decoded in line: returned through memory, the packet was written field by field
    // and read back in wider pieces, a store-forwarding stall per frame.
    // The result is returned as it is, not taken apart and built again, for the same reason.
    let decoded = match ip.data.first() {
        Some(b) if version == Version::V4 && b >> 4 == 4 => {
            ip::ipv4(ip.data, ip.claimed, vlans, macs)
        }
        _ => ip_header(version, ip, vlans, macs),
    };
    match decoded {
        Ok(pkt) if carries_tunnel(pkt.protocol) => Walk::new(vlans, macs).open_tunnels(pkt),
        other => other,
    }
}

/// [`decode_frame`]'s shortcut for an Ethernet frame (header `h`) with one 802.1Q tag;
/// anything else after the tag (another tag, MPLS, ...) takes the walk. Out of line: the
/// untagged frame's path stays as short as it was.
#[inline(never)]
fn ethernet_one_tag<'a>(
    frame: &'a [u8],
    h: &[u8; 14],
    stats: &mut DecodeStats,
) -> Result<IpPacket<'a>, DecodeError> {
    if let Some(tag) = frame.get(14..18) {
        if let Some(version) = ip_version(be16(tag, 2)) {
            let mut vlans = Vlans::NONE;
            vlans.push(be16(tag, 0));
            return ethernet_ip(frame, h, version, 18, vlans);
        }
    }
    decode_ip_walk(LinkType::ETHERNET, frame, stats)
}

/// [`decode_frame`] for every link type and encapsulation.
fn decode_ip_walk<'a>(
    link: LinkType,
    frame: &'a [u8],
    stats: &mut DecodeStats,
) -> Result<IpPacket<'a>, DecodeError> {
    let (pkt, more) = walk_frame(link, frame, 0)?;
    // Counted only here: the fast path above never meets 802.11.
    stats.wifi_amsdu_skipped += u64::from(more);
    Ok(pkt)
}

/// The packet of a frame that holds several (802.11 A-MSDU subframe `index`, 0 the first),
/// and how many follow it in the frame (0 for a frame of one packet). [`decode_frame`] is
/// `index` 0, counting those that follow as skipped; the engine takes each of them with this.
pub fn decode_frame_at(
    link: LinkType,
    frame: &[u8],
    index: u16,
) -> Result<(IpPacket<'_>, u16), DecodeError> {
    walk_frame(link, frame, index)
}

fn walk_frame(
    link: LinkType,
    frame: &[u8],
    index: u16,
) -> Result<(IpPacket<'_>, u16), DecodeError> {
    let mut walk = Walk::new(Vlans::NONE, None);
    walk.msdu_index = index;
    let layer = link.row()?.enter(Span::frame(frame))?;
    let (version, ip) = walk.down_to_ip(layer)?;
    let pkt = ip_header(version, ip, walk.vlans, walk.macs)?;
    let pkt = walk.open_tunnels(pkt)?;
    Ok((pkt, walk.more_msdus))
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
            DecodeError::Protected => &mut stats.wifi_protected,
        };
        *counter += 1;
    }
}
#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;
    use crate::seq::SeqNum;
    use crate::stats::DecodeStats;

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
            Protected,
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
            stats.wifi_protected,
        ];
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
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
            (LinkType::IEEE802_11, wifi_data(3, true, &snap(0x0800, &v4))),
            (
                LinkType::IEEE802_11_RADIOTAP,
                radiotap_frame(
                    true,
                    true,
                    true,
                    true,
                    &wifi_data(1, true, &snap(0x86dd, &v6)),
                ),
            ),
            (
                LinkType::PPI,
                ppi_frame(105, true, true, &wifi_data(2, false, &snap(0x0800, &v4))),
            ),
            (
                LinkType::PRISM,
                prism_frame(false, &wifi_data(0, false, &snap(0x0800, &v4))),
            ),
            (
                LinkType::IEEE802_11_AVS,
                avs_frame(&wifi_data(0, true, &snap(0x86dd, &v6f))),
            ),
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
        /// valid frames with random bytes changed (IPv4, IPv6, tunnels, options, cuts), with
        /// no VLAN tag, one or two (of each TPID).
        #[test]
        fn ethernet_shortcut_agrees_with_the_walk(
            v6 in any::<bool>(),
            protocol in prop::sample::select(vec![6u8, 17, 4, 41, 47, 51, 0, 44]),
            body in prop::collection::vec(any::<u8>(), 0..120),
            tags in prop::collection::vec(
                (prop::sample::select(vec![0x8100u16, 0x88a8, 0x9100]), any::<u16>()),
                0..3,
            ),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let ip = if v6 { ipv6(protocol, &body) } else { ipv4(protocol, &[], &body) };
            let mut f = eth(&tags, if v6 { 0x86dd } else { 0x0800 }, &ip);
            for (i, v) in flips {
                let i = i.index(f.len());
                f[i] = v;
            }
            let n = cut.index(f.len() + 1);
            prop_assert_eq!(decode_ip(LinkType::ETHERNET, &f[..n]), decode_ip_walk(LinkType::ETHERNET, &f[..n], &mut DecodeStats::default()));
        }

        /// The MACs read from an Ethernet header as two wide integers are its bytes 6..12
        /// (source) and 0..6 (destination).
        #[test]
        fn ethernet_macs_are_the_header_fields(h in any::<[u8; 14]>()) {
            prop_assert_eq!(super::ethernet_macs(&h), [super::field(&h, 6), super::field(&h, 0)]);
        }

        #[test]
        fn random_bytes_never_panic(
            // Every supported link type, and one that is not.
            link in prop::sample::select(
                LINK_TYPES.iter().map(|r| r.link.0).chain([7]).collect::<Vec<_>>()
            ),
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

        /// Random bytes behind 802.11 headers (any DS bits and flags, A-MSDU or not) and
        /// behind each monitor header reach the 802.11 and LLC parsers.
        #[test]
        fn random_wifi_bodies_never_panic(
            ds in 0u8..4,
            qos in any::<bool>(),
            flags in any::<u8>(),
            qos_ctl in any::<u8>(),
            body in prop::collection::vec(any::<u8>(), 0..120),
            radio in any::<(bool, bool, bool, bool)>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut f = wifi_data(ds, qos, &body);
            f[1] |= flags & 0xfc;
            if qos {
                let at = wifi_header_len(&f) - 2;
                f[at] = qos_ctl;
            }
            let (tsft, fcs, pad, ext) = radio;
            let frames = [
                (LinkType::IEEE802_11, f.clone()),
                (LinkType::IEEE802_11_RADIOTAP, radiotap_frame(tsft, fcs, pad, ext, &f)),
                (LinkType::PPI, ppi_frame(105, fcs, pad, &f)),
                (LinkType::PRISM, prism_frame(tsft, &f)),
                (LinkType::IEEE802_11_AVS, avs_frame(&f)),
            ];
            for (link, frame) in frames {
                let n = cut.index(frame.len() + 1);
                check_invariants(link, &frame[..n]);
            }
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
