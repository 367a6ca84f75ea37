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
    pub const IEEE802_11: u32 = 105;
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    pub const PPI: u32 = 192;
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
    /// An 802.11 data frame with LLC/SNAP (105), behind a radiotap (127) or PPI (192) header
    /// when `Radio` says.
    Wifi(Wifi, Radio),
}

/// How an 802.11 data frame is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wifi {
    /// DS bits of the client's frames: 0 none, 1 to-DS (client to access point), 2
    /// from-DS, 3 both (four addresses, a wireless bridge). The server's frames go the other
    /// way through the access point (to-DS and from-DS swapped).
    pub ds: u8,
    /// QoS data (with a QoS control field) rather than plain data.
    pub qos: bool,
    /// The Protected bit: the body is encrypted (a CCMP header, scrambled bytes, a MIC), so
    /// no reader can take data from it.
    pub protected: bool,
}

/// The header before an 802.11 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Radio {
    /// None: link type 105.
    None,
    /// Radiotap (127) with TSFT, flags, channel and signal; `fcs`: the frame ends with its
    /// FCS (flag 0x10); `pad`: the MAC header is padded to 4 bytes (flag 0x20).
    Radiotap { fcs: bool, pad: bool },
    /// PPI (192) with an 802.11-Common field; `fcs`: the frame ends with its FCS.
    Ppi { fcs: bool },
}

/// The access points' addresses in 802.11 frames.
pub const BSSID: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xb1];
pub const BSSID2: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xb2];

/// CRC-32 (IEEE 802.3), the 802.11 FCS.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl Wifi {
    /// MAC header length before padding.
    fn mac_len(&self) -> usize {
        (if self.ds == 3 { 30 } else { 24 }) + if self.qos { 2 } else { 0 }
    }

    /// The 802.11 frame (MAC header, optional padding to 4 bytes, LLC/SNAP, the packet; FCS
    /// when `fcs`) from `src` to `dst`.
    fn frame(&self, src: [u8; 6], dst: [u8; 6], ip: &[u8], pad: bool, fcs: bool) -> Vec<u8> {
        let mut f = wifi::data_header(self.ds, self.qos, self.protected, src, dst, 0);
        if pad {
            wifi::pad_to_4(&mut f);
        }
        let body = wifi::llc_snap(ethertype(ip), ip);
        if self.protected {
            // CCMP header (packet number, key id with ExtIV), the body scrambled, the MIC.
            f.extend_from_slice(&[0x01, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00]);
            f.extend(body.iter().map(|b| b ^ 0x5a));
            f.extend_from_slice(&[0x4d; 8]);
        } else {
            f.extend_from_slice(&body);
        }
        if fcs {
            let c = crc32(&f);
            f.extend_from_slice(&c.to_le_bytes());
        }
        f
    }
}

/// The 802.11 builders, one set for the generator's [`Link::Wifi`] and the core's decoder
/// tests (which call them with the odd options a capture seldom has: no TSFT, an extended
/// present bitmap, PPI alignment, Prism and AVS headers).
pub mod wifi {
    use super::{BSSID, BSSID2};

    /// A data MAC header (QoS data when `qos`, with an empty QoS control field) from `src` to
    /// `dst` with the DS bits `ds` (1 to-DS, 2 from-DS, 3 both: four addresses, from access
    /// point [`BSSID`] to [`BSSID2`]), the Protected bit, and the sequence control field.
    pub fn data_header(
        ds: u8,
        qos: bool,
        protected: bool,
        src: [u8; 6],
        dst: [u8; 6],
        seq_ctl: u16,
    ) -> Vec<u8> {
        let mut f = vec![
            if qos { 0x88 } else { 0x08 },
            (ds & 3) | if protected { 0x40 } else { 0 },
            0x2c,
            0x00,
        ];
        let addrs: [[u8; 6]; 3] = match ds & 3 {
            0 => [dst, src, BSSID],
            1 => [BSSID, src, dst],
            2 => [dst, BSSID, src],
            _ => [BSSID2, BSSID, dst],
        };
        for a in addrs {
            f.extend_from_slice(&a);
        }
        f.extend_from_slice(&seq_ctl.to_le_bytes());
        if ds & 3 == 3 {
            f.extend_from_slice(&src);
        }
        if qos {
            f.extend_from_slice(&[0x00, 0x00]);
        }
        f
    }

    /// The MAC header length of a frame [`data_header`] began (the frame may be shorter).
    pub fn header_len(frame: &[u8]) -> usize {
        let four = frame.get(1).is_some_and(|f| f & 3 == 3);
        let qos = frame.first().is_some_and(|f| f & 0x80 != 0);
        (if four { 30 } else { 24 } + if qos { 2 } else { 0 }).min(frame.len())
    }

    /// Pads a MAC header to a multiple of 4 bytes (radiotap's data-pad flag).
    pub fn pad_to_4(header: &mut Vec<u8>) {
        while header.len() % 4 != 0 {
            header.push(0);
        }
    }

    /// LLC/SNAP and an ethertype before `body`.
    pub fn llc_snap(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// An A-MSDU body: each MSDU from `src` to `dst` with its length, padded to 4 bytes but
    /// the last (the frame carrying it sets the QoS control's A-MSDU bit).
    pub fn amsdu(src: [u8; 6], dst: [u8; 6], msdus: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, m) in msdus.iter().enumerate() {
            body.extend_from_slice(&dst);
            body.extend_from_slice(&src);
            body.extend_from_slice(&(m.len() as u16).to_be_bytes());
            body.extend_from_slice(m);
            if i + 1 < msdus.len() {
                while body.len() % 4 != 0 {
                    body.push(0);
                }
            }
        }
        body
    }

    /// A channel: frequency in MHz and the radiotap/PPI channel flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Channel {
        pub mhz: u16,
        pub flags: u16,
    }

    /// Channel 1, 2.4 GHz CCK.
    pub const CH1_CCK: Channel = Channel {
        mhz: 2412,
        flags: 0x00a0,
    };
    /// Channel 6, 2.4 GHz OFDM.
    pub const CH6_OFDM: Channel = Channel {
        mhz: 2437,
        flags: 0x00c0,
    };

    /// A radiotap header: TSFT when `tsft`, an extended present bitmap (a vendor namespace
    /// bit in the second word) when `ext`, the Flags field (FCS at the end: `fcs`; MAC
    /// header padded to 4 bytes: `pad`), the channel, and the antenna signal when `signal`.
    /// Fields aligned to their size, counted from the header's start.
    pub fn radiotap_header(
        tsft: Option<u64>,
        ext: bool,
        fcs: bool,
        pad: bool,
        channel: Channel,
        signal: Option<i8>,
    ) -> Vec<u8> {
        let mut present = 1u32 << 1 | 1 << 3;
        if tsft.is_some() {
            present |= 1;
        }
        if signal.is_some() {
            present |= 1 << 5;
        }
        if ext {
            present |= 1 << 31;
        }
        let mut v = vec![0, 0, 0, 0];
        v.extend_from_slice(&present.to_le_bytes());
        if ext {
            v.extend_from_slice(&(1u32 << 30).to_le_bytes());
        }
        if let Some(t) = tsft {
            while v.len() % 8 != 0 {
                v.push(0);
            }
            v.extend_from_slice(&t.to_le_bytes());
        }
        v.push(u8::from(fcs) << 4 | u8::from(pad) << 5);
        if v.len() % 2 != 0 {
            v.push(0);
        }
        v.extend_from_slice(&channel.mhz.to_le_bytes());
        v.extend_from_slice(&channel.flags.to_le_bytes());
        if let Some(s) = signal {
            v.push(s as u8);
        }
        let len = v.len() as u16;
        v[2..4].copy_from_slice(&len.to_le_bytes());
        v
    }

    /// PPI's 802.11-Common field.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PpiCommon {
        pub tsf: u64,
        /// The frame ends with its FCS.
        pub fcs: bool,
        /// In 500 kb/s units.
        pub rate: u16,
        pub channel: Channel,
        pub signal: i8,
        pub noise: i8,
    }

    /// A PPI header for a frame of link type `dlt`: the 802.11-Common field, then `extra`
    /// fields as (type, value), each padded to 4 bytes when `aligned` (the header's flag).
    pub fn ppi_header(
        dlt: u32,
        aligned: bool,
        common: &PpiCommon,
        extra: &[(u16, &[u8])],
    ) -> Vec<u8> {
        let mut v = vec![0, u8::from(aligned), 0, 0];
        v.extend_from_slice(&dlt.to_le_bytes());
        // TSF, flags, rate, frequency, channel flags, FHSS hop set and pattern, signal, noise.
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&20u16.to_le_bytes());
        v.extend_from_slice(&common.tsf.to_le_bytes());
        v.extend_from_slice(&u16::from(common.fcs).to_le_bytes());
        v.extend_from_slice(&common.rate.to_le_bytes());
        v.extend_from_slice(&common.channel.mhz.to_le_bytes());
        v.extend_from_slice(&common.channel.flags.to_le_bytes());
        v.extend_from_slice(&[0, 0, common.signal as u8, common.noise as u8]);
        for &(kind, value) in extra {
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
            v.extend_from_slice(value);
            if aligned {
                while v.len() % 4 != 0 {
                    v.push(0);
                }
            }
        }
        let len = v.len() as u16;
        v[2..4].copy_from_slice(&len.to_le_bytes());
        v
    }

    /// A 144-byte Prism header naming device `wlan0`, its length in either byte order.
    pub fn prism_header(big_endian: bool) -> Vec<u8> {
        let mut v = vec![0x44, 0, 0, 0];
        v.extend_from_slice(&if big_endian {
            144u32.to_be_bytes()
        } else {
            144u32.to_le_bytes()
        });
        v.extend_from_slice(b"wlan0\0\0\0\0\0\0\0\0\0\0\0");
        v.resize(144, 0);
        v
    }

    /// A 64-byte AVS (version 1) header.
    pub fn avs_header() -> Vec<u8> {
        let mut v = 0x8021_1001u32.to_be_bytes().to_vec();
        v.extend_from_slice(&64u32.to_be_bytes());
        v.resize(64, 0);
        v
    }
}

impl Radio {
    fn header_len(&self) -> usize {
        match self {
            Radio::None => 0,
            Radio::Radiotap { .. } => 23,
            Radio::Ppi { .. } => 32,
        }
    }
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

/// An Ethernet II header from `src` to `dst` with VLAN tags as (TPID, TCI), outermost
/// first, and the ethertype.
pub fn ethernet_header(src: [u8; 6], dst: [u8; 6], tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A Linux cooked capture v1 header (ARPHRD_ETHER) for packet type `pkttype` (0 to this
/// host, 4 outgoing) from `src`.
pub fn sll_header(pkttype: u16, src: [u8; 6], protocol: u16) -> Vec<u8> {
    let mut f = pkttype.to_be_bytes().to_vec();
    f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    f.extend_from_slice(&6u16.to_be_bytes());
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&protocol.to_be_bytes());
    f
}

/// A Linux cooked capture v2 header (interface 2, ARPHRD_ETHER) for packet type `pkttype`
/// from `src`.
pub fn sll2_header(protocol: u16, pkttype: u8, src: [u8; 6]) -> Vec<u8> {
    let mut f = protocol.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&2u32.to_be_bytes()); // interface index
    f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    f.push(pkttype);
    f.push(6);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0, 0]);
    f
}

/// An Ethernet II frame from `src` to `dst` around an IP packet (the ethertype from its
/// version), with up to 3 VLAN tags, padded to the 60-byte minimum with [`PAD_BYTE`].
pub fn ethernet_frame(src: [u8; 6], dst: [u8; 6], tags: &[Vlan], ip: &[u8]) -> Vec<u8> {
    assert!(tags.len() <= 3, "at most 3 VLAN tags");
    let tags: Vec<(u16, u16)> = tags.iter().map(|t| (t.tpid, t.tci())).collect();
    let mut f = ethernet_header(src, dst, &tags, ethertype(ip));
    f.extend_from_slice(ip);
    if f.len() < 60 {
        f.resize(60, PAD_BYTE);
    }
    f
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
            Link::Wifi(_, Radio::None) => linktype::IEEE802_11,
            Link::Wifi(_, Radio::Radiotap { .. }) => linktype::IEEE802_11_RADIOTAP,
            Link::Wifi(_, Radio::Ppi { .. }) => linktype::PPI,
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
            Link::Wifi(w, r) => {
                let pad = matches!(r, Radio::Radiotap { pad: true, .. });
                let mac = if pad {
                    w.mac_len().div_ceil(4) * 4
                } else {
                    w.mac_len()
                };
                r.header_len() + mac + if w.protected { 16 } else { 8 }
            }
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
            Link::Ethernet(tags) => return ethernet_frame(src, dst, tags, ip),
            Link::Sll => {
                // packet type: outgoing on the client's interface, or addressed to it
                let pkttype: u16 = if dir == Dir::C2S { 4 } else { 0 };
                f.extend(sll_header(pkttype, src, ethertype(ip)));
            }
            Link::Sll2 => {
                let pkttype: u8 = if dir == Dir::C2S { 4 } else { 0 };
                f.extend(sll2_header(ethertype(ip), pkttype, src));
            }
            Link::Raw => {}
            Link::RawIpv4 => assert!(!v6, "IPv6 packet on a raw IPv4 (228) link"),
            Link::RawIpv6 => assert!(v6, "IPv4 packet on a raw IPv6 (229) link"),
            Link::NullLe => f.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
            Link::Loop => f.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
            Link::Wifi(w, radio) => {
                let (fcs, pad) = match *radio {
                    Radio::None => (false, false),
                    Radio::Radiotap { fcs, pad } => (fcs, pad),
                    Radio::Ppi { fcs } => (fcs, false),
                };
                match radio {
                    Radio::None => {}
                    // Signal -40 dBm.
                    Radio::Radiotap { .. } => f.extend(wifi::radiotap_header(
                        Some(1_000_000),
                        false,
                        fcs,
                        pad,
                        wifi::CH6_OFDM,
                        Some(-40),
                    )),
                    // 54 Mb/s, signal -40 dBm, noise -90 dBm.
                    Radio::Ppi { .. } => f.extend(wifi::ppi_header(
                        105,
                        false,
                        &wifi::PpiCommon {
                            tsf: 1_000_000,
                            fcs,
                            rate: 108,
                            channel: wifi::CH6_OFDM,
                            signal: -40,
                            noise: -90,
                        },
                        &[],
                    )),
                }
                debug_assert_eq!(f.len(), radio.header_len());
                let w = match (dir, w.ds) {
                    (Dir::S2C, 1 | 2) => Wifi { ds: w.ds ^ 3, ..*w },
                    _ => *w,
                };
                f.extend(w.frame(src, dst, ip, pad, fcs));
                return f;
            }
        }
        f.extend_from_slice(ip);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIFI: Wifi = Wifi {
        ds: 3,
        qos: true,
        protected: false,
    };

    #[test]
    fn wifi_frames_decode_in_the_core() {
        use tcpflow_core::decode::{decode_ip, LinkType};
        // IPv4 (total length 45), TCP (data offset 5), "hello".
        let mut ip = vec![
            0x45, 0, 0, 45, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 1, 0]);
        ip.extend_from_slice(&[0, 0, 0, 0]);
        ip.extend_from_slice(b"hello");
        for ds in 0..4 {
            for qos in [false, true] {
                let w = Wifi {
                    ds,
                    qos,
                    protected: false,
                };
                for radio in [
                    Radio::None,
                    Radio::Radiotap {
                        fcs: false,
                        pad: false,
                    },
                    Radio::Radiotap {
                        fcs: true,
                        pad: true,
                    },
                    Radio::Ppi { fcs: true },
                ] {
                    let l = Link::Wifi(w, radio);
                    let f = l.encode(Dir::C2S, &ip);
                    let p = decode_ip(LinkType(l.linktype()), &f).unwrap();
                    assert_eq!(p.payload, &ip[20..], "{l:?}");
                    assert_eq!(p.macs, Some([CLIENT_MAC, SERVER_MAC]), "{l:?}");
                    let fcs = matches!(
                        radio,
                        Radio::Radiotap { fcs: true, .. } | Radio::Ppi { fcs: true }
                    );
                    assert_eq!(l.header_len() + ip.len() + 4 * usize::from(fcs), f.len());
                }
                let l = Link::Wifi(
                    Wifi {
                        protected: true,
                        ..w
                    },
                    Radio::None,
                );
                assert_eq!(
                    decode_ip(LinkType(l.linktype()), &l.encode(Dir::S2C, &ip)),
                    Err(tcpflow_core::DecodeError::Protected)
                );
            }
        }
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

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
            Link::Wifi(WIFI, Radio::None),
            Link::Wifi(
                WIFI,
                Radio::Radiotap {
                    fcs: true,
                    pad: true,
                },
            ),
            Link::Wifi(WIFI, Radio::Ppi { fcs: true }),
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
            (linktype::IEEE802_11, LinkType::IEEE802_11),
            (linktype::IEEE802_11_RADIOTAP, LinkType::IEEE802_11_RADIOTAP),
            (linktype::PPI, LinkType::PPI),
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
