//! PPI, the Per-Packet Information header (link type 192): version, flags, length,
//! the link type of what follows, then little-endian fields. The 802.11-Common field says
//! whether an 802.11 frame ends with its FCS (stripped).

use super::*;

/// Header flags: fields are padded to 4 bytes.
const ALIGNED: u8 = 0x01;
/// The 802.11-Common field and its flag: the frame ends with a 4-byte FCS.
const FIELD_80211_COMMON: u16 = 2;
const COMMON_FCS: u16 = 0x0001;

/// A PPI header and the frame after it (802.11, or any other link type of the table but PPI).
pub(super) fn ppi(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, _) = frame.split::<8>().ok_or(DecodeError::TruncatedLink)?;
    if h[0] != 0 {
        return Err(DecodeError::NotIp);
    }
    let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
    let dlt = u32::from_le_bytes(field(h, 4));
    let hdr = frame.data.get(..len).ok_or(DecodeError::TruncatedLink)?;
    if len < 8 {
        return Err(DecodeError::TruncatedLink);
    }
    // Every field is at least its 4-byte header, so this ends within len / 4 steps.
    let mut fields = hdr.get(8..).unwrap_or(&[]);
    let mut fcs = false;
    while let Some((f, rest)) = fields.split_first_chunk::<4>() {
        let kind = u16::from_le_bytes([f[0], f[1]]);
        let flen = usize::from(u16::from_le_bytes([f[2], f[3]]));
        let value = rest.get(..flen).ok_or(DecodeError::TruncatedLink)?;
        if kind == FIELD_80211_COMMON {
            // TSF timer (8 bytes), then the flags.
            fcs = u16::from_le_bytes(field(value, 8)) & COMMON_FCS != 0;
        }
        let step = if h[1] & ALIGNED != 0 {
            (flen + 3) & !3
        } else {
            flen
        };
        fields = rest.get(step..).unwrap_or(&[]);
    }
    let mut d = frame.after(len);
    if fcs {
        d = d.drop_tail(4).ok_or(DecodeError::TruncatedLink)?;
    }
    match LinkType(dlt) {
        LinkType::IEEE802_11 => Ok(Layer::Ieee80211(d, false)),
        // One PPI header inside another would let a frame recurse.
        LinkType::PPI => Err(DecodeError::NotIp),
        link => link.row().map_err(|_| DecodeError::NotIp)?.enter(d),
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn ppi_802_11_with_and_without_fcs() {
        let qos = wifi_data(2, true, &snap(0x86dd, &inner6(b"ppi")));
        for (fcs, aligned) in [(false, false), (true, false), (true, true)] {
            let f = ppi_frame(105, fcs, aligned, &qos);
            let p = decode_ip(LinkType::PPI, leak(f)).unwrap();
            assert_v6_tcp(&p, b"ppi");
        }
        // Another link type inside: Ethernet.
        let e = eth(&[], 0x0800, &inner4(b"ppi-eth"));
        let p = decode_ip(LinkType::PPI, leak(ppi_frame(1, false, false, &e))).unwrap();
        assert_v4_tcp(&p, b"ppi-eth");
    }

    #[test]
    fn ppi_bad_headers() {
        let qos = wifi_data(2, true, &snap(0x0800, &inner4(b"x")));
        let good = ppi_frame(105, true, false, &qos);
        let mut f = good.clone();
        f[0] = 2;
        assert_eq!(decode_ip(LinkType::PPI, &f), Err(DecodeError::NotIp));
        for dlt in [192u32, 7] {
            let mut f = good.clone();
            f[4..8].copy_from_slice(&dlt.to_le_bytes());
            assert_eq!(
                decode_ip(LinkType::PPI, &f),
                Err(DecodeError::NotIp),
                "{dlt}"
            );
        }
        for len in [0u16, 7, 9, 30, 3000] {
            let mut f = good.clone();
            f[2..4].copy_from_slice(&len.to_le_bytes());
            assert!(decode_ip(LinkType::PPI, &f).is_err(), "len {len}");
        }
        // A field longer than the header.
        let mut f = good.clone();
        f[10..12].copy_from_slice(&200u16.to_le_bytes());
        assert_eq!(
            decode_ip(LinkType::PPI, &f),
            Err(DecodeError::TruncatedLink)
        );
    }
}
