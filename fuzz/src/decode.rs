//! `decode`: link layer and IP header(s) of one frame, then TCP.
//!
//! Input: a byte choosing the link type ([`LINK_TYPES`], or any `u32` from the next four bytes
//! when it is past the table), then the frame.

use tcpflow_core::decode::{
    decode_frame, decode_ip, decode_tcp, decode_tunnel, skip_ipv6_extensions, LINK_TYPES,
};
use tcpflow_core::stats::DecodeStats;
use tcpflow_core::{Addr, DecodeError, LinkType};

use crate::{within, Input};

/// Every link type the decoder supports: the core's table, in its order (new rows go at the
/// end, so a seed's first byte keeps its meaning).
pub fn link(index: usize) -> LinkType {
    LINK_TYPES[index % LINK_TYPES.len()].link
}

/// The [`LINK_TYPES`] index of a link type (the first byte of a seed).
pub fn link_index(link: LinkType) -> Option<u8> {
    LINK_TYPES
        .iter()
        .position(|r| r.link == link)
        .and_then(|i| u8::try_from(i).ok())
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(sel) = inp.u8() else { return };
    let link = match LINK_TYPES.get(usize::from(sel)) {
        Some(r) => r.link,
        None if sel >= 0xf0 => LinkType(inp.u32().unwrap_or(0)),
        None => link(usize::from(sel)),
    };
    let frame = inp.rest();
    let mut stats = DecodeStats::default();
    match decode_frame(link, frame, &mut stats) {
        Ok(pkt) => {
            assert!(within(frame, pkt.payload), "payload outside the frame");
            assert!(
                pkt.payload.len() as u64 <= u64::from(pkt.payload_len),
                "captured payload {} beyond the claimed {}",
                pkt.payload.len(),
                pkt.payload_len
            );
            assert!(pkt.vlans.len() <= 3);
            // Every A-MSDU subframe counted has at least its 14-byte header in the frame.
            assert!(stats.wifi_amsdu_skipped <= frame.len() as u64 / 14);
            assert_eq!(decode_ip(link, frame), Ok(pkt));
            assert_eq!(
                matches!(pkt.src, Addr::V4(_)),
                matches!(pkt.dst, Addr::V4(_)),
                "mixed address families"
            );
            if pkt.fragment.is_none() && pkt.protocol == 6 {
                tcp(pkt.payload, pkt.payload_len);
            }
            if pkt.fragment.is_some() {
                // What the engine does once a datagram is whole.
                if let Addr::V6(_) = pkt.src {
                    if let Ok((_, skip)) = skip_ipv6_extensions(pkt.protocol, pkt.payload) {
                        assert!(skip <= pkt.payload.len(), "extension headers past the end");
                    }
                }
                if let Ok(Some(inner)) = decode_tunnel(&pkt, pkt.protocol, pkt.payload) {
                    assert!(within(pkt.payload, inner.payload), "tunnel payload outside");
                    assert!(inner.payload.len() as u64 <= u64::from(inner.payload_len));
                }
            }
        }
        Err(e) => {
            if !link.is_supported() {
                assert_eq!(e, DecodeError::UnsupportedLinkType(link.0));
            }
            e.count(&mut stats);
        }
    }
    // The TCP decoder alone, on the raw bytes, with the captured length and a longer claim.
    tcp(frame, frame.len() as u32);
    tcp(frame, (frame.len() as u32).saturating_add(u32::from(sel)));
    let _ = skip_ipv6_extensions(sel, frame);
}

fn tcp(data: &[u8], claimed: u32) {
    if let Ok(seg) = decode_tcp(data, claimed) {
        assert!(within(data, seg.payload), "TCP payload outside the segment");
        assert!(
            seg.payload.len() as u64 <= u64::from(seg.payload_len),
            "TCP payload {} beyond the claimed {}",
            seg.payload.len(),
            seg.payload_len
        );
    }
}
