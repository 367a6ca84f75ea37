//! The link types the decoder supports: one table, read by [`decode_ip`](super::decode_ip),
//! [`LinkType::is_supported`], the fuzz decode target and the capture generator's tests. A
//! new link type is one row here and one file holding its entry function.

use super::{DecodeError, Layer, Span, Version};

/// A pcap LINKTYPE value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order (both are
    /// tried).
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet (with VLAN tags, PPPoE, MPLS, LLC/SNAP).
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP, the DLT value 12 some BSDs write.
    pub const RAW_12: LinkType = LinkType(12);
    /// Raw IP, the DLT value 14 some BSDs write.
    pub const RAW_14: LinkType = LinkType(14);
    /// Raw IP, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: a 4-byte address family (both byte orders are tried).
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture (SLL).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture, version 2 (SLL2).
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// PPP, with or without its address and control bytes.
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// Cisco HDLC.
    pub const C_HDLC: LinkType = LinkType(104);
    /// Linux netfilter log (NFLOG).
    pub const NFLOG: LinkType = LinkType(239);
    /// 802.11 frames without a monitor header.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// 802.11 behind a Prism monitor header.
    pub const PRISM: LinkType = LinkType(119);
    /// 802.11 behind a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// 802.11 behind an AVS monitor header.
    pub const IEEE802_11_AVS: LinkType = LinkType(163);
    /// 802.11 (or another supported link) behind a PPI header.
    pub const PPI: LinkType = LinkType(192);

    /// Whether [`decode_ip`](super::decode_ip) understands this link type (it has a row in
    /// [`LINK_TYPES`]).
    pub fn is_supported(self) -> bool {
        self.row().is_ok()
    }

    /// This link type's row in [`LINK_TYPES`].
    pub(super) fn row(self) -> Result<&'static LinkTypeRow, DecodeError> {
        LINK_TYPES
            .iter()
            .find(|r| r.link == self)
            .ok_or(DecodeError::UnsupportedLinkType(self.0))
    }
}

/// How a link type's frame is entered: its first layer (the walk takes it from there).
type Enter = for<'a> fn(Span<'a>) -> Result<Layer<'a>, DecodeError>;

/// One supported link type.
#[derive(Clone, Copy)]
pub struct LinkTypeRow {
    /// The link type.
    pub link: LinkType,
    /// The LINKTYPE_ name (tcpdump.org's list) without the prefix; the BSD raw-IP DLT values
    /// 12 and 14 as RAW_12 and RAW_14.
    pub name: &'static str,
    enter: Enter,
}

impl LinkTypeRow {
    /// The first layer of a frame of this link type.
    pub(super) fn enter<'a>(&self, frame: Span<'a>) -> Result<Layer<'a>, DecodeError> {
        (self.enter)(frame)
    }
}

impl core::fmt::Debug for LinkTypeRow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name, self.link.0)
    }
}

const fn row(link: LinkType, name: &'static str, enter: Enter) -> LinkTypeRow {
    LinkTypeRow { link, name, enter }
}

fn ethernet(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ethernet(frame))
}

fn ppp(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ppp(frame))
}

fn cisco_hdlc(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::CiscoHdlc(frame))
}

/// Raw IP: the version nibble decides.
fn raw(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ip(Version::Any, frame))
}

fn raw_ipv4(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ip(Version::V4, frame))
}

fn raw_ipv6(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ip(Version::V6, frame))
}

/// Every supported link type. The fuzz targets pick a link type by its index here, so new
/// rows go at the end (their seeds and regressions keep their meaning).
pub const LINK_TYPES: &[LinkTypeRow] = &[
    row(LinkType::NULL, "NULL", super::link::null_loop),
    row(LinkType::ETHERNET, "ETHERNET", ethernet),
    row(LinkType::PPP, "PPP", ppp),
    // DLT_RAW as BSD/OS (12) and OpenBSD (14) numbered it.
    row(LinkType::RAW_12, "RAW_12", raw),
    row(LinkType::RAW_14, "RAW_14", raw),
    row(LinkType::PPP_HDLC, "PPP_HDLC", super::link::ppp_hdlc),
    row(LinkType::RAW, "RAW", raw),
    row(LinkType::C_HDLC, "C_HDLC", cisco_hdlc),
    row(LinkType::LOOP, "LOOP", super::link::null_loop),
    row(LinkType::LINUX_SLL, "LINUX_SLL", super::link::sll),
    row(LinkType::IPV4, "IPV4", raw_ipv4),
    row(LinkType::IPV6, "IPV6", raw_ipv6),
    row(LinkType::NFLOG, "NFLOG", super::link::nflog),
    row(LinkType::LINUX_SLL2, "LINUX_SLL2", super::link::sll2),
    row(
        LinkType::IEEE802_11,
        "IEEE802_11",
        super::ieee80211::ieee80211,
    ),
    row(
        LinkType::IEEE802_11_RADIOTAP,
        "IEEE802_11_RADIOTAP",
        super::radiotap::radiotap,
    ),
    row(LinkType::PPI, "PPI", super::ppi::ppi),
    row(LinkType::PRISM, "IEEE802_11_PRISM", super::prism::prism),
    row(
        LinkType::IEEE802_11_AVS,
        "IEEE802_11_AVS",
        super::prism::avs,
    ),
];

#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn one_row_per_link_type() {
        for (i, r) in LINK_TYPES.iter().enumerate() {
            assert!(r.link.is_supported(), "{r:?}");
            assert!(
                LINK_TYPES[i + 1..].iter().all(|o| o.link != r.link),
                "{r:?} twice"
            );
        }
        for n in [2u32, 7, 100, 147, 1000] {
            assert!(!LinkType(n).is_supported());
        }
    }
}
