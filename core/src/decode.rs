//! Decoding: link layer, IP, TCP. INTERFACE STUB: the helper fills in the bodies.

use crate::seq::SeqNum;

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
    pub const NONE: Vlans = Vlans { ids: [0; 3], len: 0 };
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
