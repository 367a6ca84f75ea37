//! IPv4 (options, AH) and IPv6 (extension headers).

use super::*;

/// IPv6 extension header numbers.
pub(super) const IPV6_HOPOPTS: u8 = 0;
pub(super) const IPV6_ROUTING: u8 = 43;
pub(super) const IPV6_FRAGMENT: u8 = 44;
pub(super) const IPV6_AH: u8 = 51;
pub(super) const IPV6_DSTOPTS: u8 = 60;

pub(super) fn ip_header(
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

/// Why fewer than `header` bytes of an IP header are there: the container claims fewer
/// (malformed), or the capture was cut.
pub(super) fn short_ip(limit: usize, header: usize) -> DecodeError {
    if limit < header {
        DecodeError::BadIpHeader
    } else {
        DecodeError::TruncatedIp
    }
}

/// An IPv4 packet in `data`, whose container claims at most `limit` bytes for it.
#[inline]
pub(super) fn ipv4(
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
pub(super) fn ipv6(
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
pub(super) struct ExtWalk {
    /// Upper-layer protocol (after a fragment header: its next header).
    protocol: u8,
    /// Offset of the upper-layer header (or of the fragment data).
    offset: usize,
    fragment: Option<Fragment>,
}

/// Walks extension headers in `data` (the captured part of `claimed` bytes). A header that
/// runs past `claimed` is malformed; one that runs past the capture only is truncated.
pub(super) fn walk_extensions(
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
pub(super) fn ext_bytes(
    data: &[u8],
    claimed: usize,
    off: usize,
    len: usize,
) -> Result<&[u8], DecodeError> {
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
#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

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
}
