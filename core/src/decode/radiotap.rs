//! Radiotap (link type 127): a little-endian header of present-field bitmaps and fields, then
//! an 802.11 frame. Only the Flags field matters here: the frame ends with its FCS (stripped)
//! or has its MAC header padded to 4 bytes.

use super::*;

/// Present bitmap bits: TSFT (8 bytes, aligned to 8), Flags (1 byte), another bitmap follows.
const PRESENT_TSFT: u32 = 1 << 0;
const PRESENT_FLAGS: u32 = 1 << 1;
const PRESENT_EXT: u32 = 1 << 31;
/// Flags: the frame ends with a 4-byte FCS; padding between the MAC header and the body.
const FLAG_FCS: u8 = 0x10;
const FLAG_DATA_PAD: u8 = 0x20;

fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(d, at))
}

/// A radiotap header and the 802.11 frame after it.
pub(super) fn radiotap(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    let (h, _) = frame.split::<8>().ok_or(DecodeError::TruncatedLink)?;
    if h[0] != 0 {
        return Err(DecodeError::NotIp);
    }
    let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
    let hdr = frame.data.get(..len).ok_or(DecodeError::TruncatedLink)?;
    let present = le32(hdr, 4);
    // Extended bitmaps (each word with bit 31 set is followed by another) come before the
    // fields; every word is inside the header, so this ends within len / 4 steps.
    let mut off = 4;
    loop {
        if off + 4 > len {
            return Err(DecodeError::TruncatedLink);
        }
        let word = le32(hdr, off);
        off += 4;
        if word & PRESENT_EXT == 0 {
            break;
        }
    }
    // The first bitmap's fields come first, each aligned to its size from the header's start.
    let mut flags = 0;
    if present & PRESENT_FLAGS != 0 {
        if present & PRESENT_TSFT != 0 {
            off = ((off + 7) & !7) + 8;
        }
        flags = *hdr.get(off).ok_or(DecodeError::TruncatedLink)?;
    }
    let mut d = frame.after(len);
    if flags & FLAG_FCS != 0 {
        d = d.drop_tail(4).ok_or(DecodeError::TruncatedLink)?;
    }
    Ok(Layer::Ieee80211(d, flags & FLAG_DATA_PAD != 0))
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn radiotap_flags_fcs_and_padding() {
        let qos = wifi_data(1, true, &snap(0x0800, &inner4(b"radiotap")));
        for (tsft, fcs, pad, ext) in [
            (false, false, false, false),
            (true, true, false, false),
            (true, false, true, true),
            (false, true, true, true),
        ] {
            let f = radiotap_frame(tsft, fcs, pad, ext, &qos);
            let p = decode_ip(LinkType::IEEE802_11_RADIOTAP, leak(f)).unwrap();
            assert_v4_tcp(&p, b"radiotap");
        }
        // The FCS is not payload even where the IP length does not say (total length 0).
        let mut v4 = inner4(b"fcs");
        v4[2..4].copy_from_slice(&[0, 0]);
        let f = radiotap_frame(
            false,
            true,
            false,
            false,
            &wifi_data(0, false, &snap(0x0800, &v4)),
        );
        let p = decode_ip(LinkType::IEEE802_11_RADIOTAP, leak(f)).unwrap();
        let t = decode_tcp(p.payload, p.payload_len).unwrap();
        assert_eq!(t.payload, b"fcs");
    }

    #[test]
    fn radiotap_bad_headers() {
        let qos = wifi_data(1, true, &snap(0x0800, &inner4(b"x")));
        let good = radiotap_frame(true, true, true, true, &qos);
        let mut version = good.clone();
        version[0] = 1;
        assert_eq!(
            decode_ip(LinkType::IEEE802_11_RADIOTAP, &version),
            Err(DecodeError::NotIp)
        );
        // A length past the frame, or too short for its bitmaps and flags.
        for len in [2u16, 7, 12, 16, 17, 3000] {
            let mut f = good.clone();
            f[2..4].copy_from_slice(&len.to_le_bytes());
            assert!(
                decode_ip(LinkType::IEEE802_11_RADIOTAP, &f).is_err(),
                "len {len}"
            );
        }
        // Bitmaps that never end.
        let mut f = vec![0, 0, 16, 0];
        f.extend_from_slice(&[0xff; 12]);
        assert_eq!(
            decode_ip(LinkType::IEEE802_11_RADIOTAP, &f),
            Err(DecodeError::TruncatedLink)
        );
        // An FCS longer than what follows the header.
        let f = radiotap_frame(false, true, false, false, &[0x08, 0x00]);
        assert_eq!(
            decode_ip(LinkType::IEEE802_11_RADIOTAP, &f),
            Err(DecodeError::TruncatedLink)
        );
    }
}
