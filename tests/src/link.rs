//! Link-layer framing for each supported link type.

/// Link types (the pcap LINKTYPE_ values) this generator can write: each is a row of the
/// core's `tcpflow_core::decode::LINK_TYPES` (a test below holds them to it).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// Bytes used to pad short Ethernet frames. Deliberately not zero, so that a tool treating
/// padding as payload writes visibly wrong bytes.
pub const PAD_BYTE: u8 = 0xEE;

/// Which side sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Client to server.
    C2S,
    /// Server to client.
    S2C,
}

impl Dir {
    pub fn other(self) -> Dir {
        match self {
            Dir::C2S => Dir::S2C,
            Dir::S2C => Dir::C2S,
        }
    }
    pub fn idx(self) -> usize {
        self as usize
    }
}

/// One VLAN tag: TPID (0x8100, 0x88a8, 0x9100) and the TCI fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vlan {
    pub tpid: u16,
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
}

impl Vlan {
    pub fn new(tpid: u16, pcp: u8, vid: u16) -> Vlan {
        assert!(pcp < 8 && vid < 4096);
        Vlan {
            tpid,
            pcp,
            dei: false,
            vid,
        }
    }
    /// The 16-bit tag control information.
    pub fn tci(&self) -> u16 {
        ((self.pcp as u16) << 13) | ((self.dei as u16) << 12) | self.vid
    }
}

/// A link layer and its options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    /// Ethernet II with 0..3 VLAN tags, outermost first; padded to 60 bytes with `PAD_BYTE`.
    Ethernet(Vec<Vlan>),
    /// Linux cooked capture v1 (113).
    Sll,
    /// Linux cooked capture v2 (276).
    Sll2,
    /// Raw IP, version from the first nibble (101).
    Raw,
    /// Raw IPv4 only (228).
    RawIpv4,
    /// Raw IPv6 only (229).
    RawIpv6,
    /// BSD null: a 4-byte little-endian address family (2, or 30 for IPv6 as macOS writes).
    NullLe,
    /// OpenBSD loop: a 4-byte big-endian address family (2, or 24 for IPv6).
    Loop,
}

/// MAC address used for the client (`C2S` source) and server.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

fn ethertype(ip: &[u8]) -> u16 {
    match ip.first().map(|b| b >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    }
}

impl Link {
    pub fn ethernet() -> Link {
        Link::Ethernet(Vec::new())
    }

    pub fn linktype(&self) -> u32 {
        match self {
            Link::Ethernet(_) => linktype::ETHERNET,
            Link::Sll => linktype::LINUX_SLL,
            Link::Sll2 => linktype::LINUX_SLL2,
            Link::Raw => linktype::RAW,
            Link::RawIpv4 => linktype::IPV4,
            Link::RawIpv6 => linktype::IPV6,
            Link::NullLe => linktype::NULL,
            Link::Loop => linktype::LOOP,
        }
    }

    /// Bytes of link header before the IP packet.
    pub fn header_len(&self) -> usize {
        match self {
            Link::Ethernet(v) => 14 + 4 * v.len(),
            Link::Sll => 16,
            Link::Sll2 => 20,
            Link::Raw | Link::RawIpv4 | Link::RawIpv6 => 0,
            Link::NullLe | Link::Loop => 4,
        }
    }

    /// The outermost VLAN id, if tagged (what the flow name carries).
    pub fn outer_vlan(&self) -> Option<u16> {
        match self {
            Link::Ethernet(v) => v.first().map(|t| t.vid),
            _ => None,
        }
    }

    /// All VLAN ids, outermost first (part of a connection's identity).
    pub fn vlan_ids(&self) -> Vec<u16> {
        match self {
            Link::Ethernet(v) => v.iter().map(|t| t.vid).collect(),
            _ => Vec::new(),
        }
    }

    /// Wraps an IP packet (or fragment) sent in direction `dir` into a frame.
    pub fn encode(&self, dir: Dir, ip: &[u8]) -> Vec<u8> {
        let v6 = ip.first().map(|b| b >> 4) == Some(6);
        let (src, dst) = match dir {
            Dir::C2S => (CLIENT_MAC, SERVER_MAC),
            Dir::S2C => (SERVER_MAC, CLIENT_MAC),
        };
        let mut f = Vec::with_capacity(self.header_len() + ip.len() + 60);
        match self {
            Link::Ethernet(tags) => {
                assert!(tags.len() <= 3, "at most 3 VLAN tags");
                f.extend_from_slice(&dst);
                f.extend_from_slice(&src);
                for t in tags {
                    f.extend_from_slice(&t.tpid.to_be_bytes());
                    f.extend_from_slice(&t.tci().to_be_bytes());
                }
                f.extend_from_slice(&ethertype(ip).to_be_bytes());
                f.extend_from_slice(ip);
                if f.len() < 60 {
                    f.resize(60, PAD_BYTE);
                }
                return f;
            }
            Link::Sll => {
                // packet type: outgoing on the client's interface, or addressed to it
                let pkttype: u16 = if dir == Dir::C2S { 4 } else { 0 };
                f.extend_from_slice(&pkttype.to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.extend_from_slice(&6u16.to_be_bytes());
                f.extend_from_slice(&src);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&ethertype(ip).to_be_bytes());
            }
            Link::Sll2 => {
                let pkttype: u8 = if dir == Dir::C2S { 4 } else { 0 };
                f.extend_from_slice(&ethertype(ip).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&2u32.to_be_bytes()); // interface index
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.push(pkttype);
                f.push(6);
                f.extend_from_slice(&src);
                f.extend_from_slice(&[0, 0]);
            }
            Link::Raw => {}
            Link::RawIpv4 => assert!(!v6, "IPv6 packet on a raw IPv4 (228) link"),
            Link::RawIpv6 => assert!(v6, "IPv4 packet on a raw IPv6 (229) link"),
            Link::NullLe => f.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
            Link::Loop => f.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
        }
        f.extend_from_slice(ip);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_padding_and_tags() {
        let ip = [0x45u8; 20];
        let f = Link::Ethernet(vec![Vlan::new(0x88a8, 3, 200), Vlan::new(0x8100, 0, 10)])
            .encode(Dir::C2S, &ip);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(u16::from_be_bytes([f[14], f[15]]), (3 << 13) | 200);
        assert_eq!(&f[20..22], &[0x08, 0x00]);
        assert!(f[42..].iter().all(|&b| b == PAD_BYTE));
    }

    /// Every link type the generator writes is one the core's table lists, under the same
    /// number.
    #[test]
    fn link_types_are_rows_of_the_cores_table() {
        use tcpflow_core::decode::{LinkType, LINK_TYPES};
        let links = [
            Link::ethernet(),
            Link::Sll,
            Link::Sll2,
            Link::Raw,
            Link::RawIpv4,
            Link::RawIpv6,
            Link::NullLe,
            Link::Loop,
        ];
        for l in &links {
            assert!(
                LINK_TYPES.iter().any(|r| r.link.0 == l.linktype()),
                "{l:?} ({}) is not in the core's table",
                l.linktype()
            );
        }
        for (ours, core) in [
            (linktype::NULL, LinkType::NULL),
            (linktype::ETHERNET, LinkType::ETHERNET),
            (linktype::RAW, LinkType::RAW),
            (linktype::LOOP, LinkType::LOOP),
            (linktype::LINUX_SLL, LinkType::LINUX_SLL),
            (linktype::IPV4, LinkType::IPV4),
            (linktype::IPV6, LinkType::IPV6),
            (linktype::LINUX_SLL2, LinkType::LINUX_SLL2),
        ] {
            assert_eq!(ours, core.0);
        }
    }

    #[test]
    fn null_and_loop_families() {
        let ip6 = [0x60u8; 40];
        assert_eq!(&Link::NullLe.encode(Dir::S2C, &ip6)[..4], &[30, 0, 0, 0]);
        assert_eq!(&Link::Loop.encode(Dir::S2C, &ip6)[..4], &[0, 0, 0, 24]);
        assert_eq!(Link::Sll2.encode(Dir::C2S, &ip6).len(), 60);
    }
}
