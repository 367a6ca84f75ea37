//! Prism (link type 119) and AVS (163) monitor headers before an 802.11 frame. Prism's
//! header length is in the capturing host's byte order; some drivers write an AVS header
//! under link type 119, told by its magic (as tshark does).

use super::*;

/// AVS header versions 1 and 2: 0x80211001, 0x80211002 (big-endian).
const AVS_MAGIC: u32 = 0x8021_1000;

/// A Prism header: message code, message length (the header's), device name, items.
pub(super) fn prism(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, _) = frame.split::<8>().ok_or(DecodeError::TruncatedLink)?;
    if u32::from_be_bytes(field(h, 0)) & !0xf == AVS_MAGIC {
        return avs(frame);
    }
    let fits = |n: u32| (8..=frame.data.len()).contains(&usize::try_from(n).unwrap_or(0));
    let len = [
        u32::from_le_bytes(field(h, 4)),
        u32::from_be_bytes(field(h, 4)),
    ]
    .into_iter()
    .find(|&n| fits(n))
    .ok_or(DecodeError::TruncatedLink)?;
    Ok(Layer::Ieee80211(frame.after(len as usize), false))
}

/// An AVS header: version, header length (big-endian), then radio fields.
pub(super) fn avs(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, _) = frame.split::<8>().ok_or(DecodeError::TruncatedLink)?;
    if u32::from_be_bytes(field(h, 0)) & !0xf != AVS_MAGIC {
        return Err(DecodeError::NotIp);
    }
    let len = usize::try_from(u32::from_be_bytes(field(h, 4))).unwrap_or(usize::MAX);
    if len < 8 || len > frame.data.len() {
        return Err(DecodeError::TruncatedLink);
    }
    Ok(Layer::Ieee80211(frame.after(len), false))
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn prism_and_avs() {
        let data = wifi_data(0, false, &snap(0x0800, &inner4(b"prism")));
        for big_endian in [false, true] {
            let f = prism_frame(big_endian, &data);
            let p = decode_ip(LinkType::PRISM, leak(f)).unwrap();
            assert_v4_tcp(&p, b"prism");
        }
        let f = avs_frame(&data);
        let p = decode_ip(LinkType::IEEE802_11_AVS, leak(f.clone())).unwrap();
        assert_v4_tcp(&p, b"prism");
        // AVS written under the Prism link type.
        let p = decode_ip(LinkType::PRISM, leak(f)).unwrap();
        assert_v4_tcp(&p, b"prism");
    }

    #[test]
    fn prism_and_avs_bad_headers() {
        let data = wifi_data(0, false, &snap(0x0800, &inner4(b"x")));
        let mut f = prism_frame(false, &data);
        f[4..8].copy_from_slice(&[0xff, 0xff, 0, 0xff]);
        assert_eq!(
            decode_ip(LinkType::PRISM, &f),
            Err(DecodeError::TruncatedLink)
        );
        let mut f = avs_frame(&data);
        f[0] = 0x70;
        assert_eq!(
            decode_ip(LinkType::IEEE802_11_AVS, &f),
            Err(DecodeError::NotIp)
        );
        for len in [0u32, 7, 100_000] {
            let mut f = avs_frame(&data);
            f[4..8].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                decode_ip(LinkType::IEEE802_11_AVS, &f),
                Err(DecodeError::TruncatedLink)
            );
        }
        // Shorter than its own 144-byte header (the frame that overflowed tcpflow's Prism
        // handler, simsong/tcpflow issue 182).
        let f = prism_frame(false, &data);
        assert_eq!(
            decode_ip(LinkType::PRISM, &f[..100]),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            decode_ip(LinkType::PRISM, &f[..144]),
            Err(DecodeError::TruncatedLink)
        );
        for n in 0..8 {
            assert_eq!(
                decode_ip(LinkType::PRISM, &f[..n]),
                Err(DecodeError::TruncatedLink)
            );
        }
    }
}
