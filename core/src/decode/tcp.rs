//! TCP headers.

use super::*;

/// Decodes a TCP header; `payload_len` is the upper-layer length the IP header claims
/// (>= data.len() when the snap length cut the packet).
pub fn decode_tcp(data: &[u8], payload_len: u32) -> Result<TcpSegment<'_>, DecodeError> {
    let (h, _) = data
        .split_first_chunk::<20>()
        .ok_or(DecodeError::BadTcpHeader)?;
    let hlen = usize::from(h[12] >> 4) * 4;
    let claimed = usize::try_from(payload_len).unwrap_or(usize::MAX);
    if hlen < 20 || claimed < hlen {
        return Err(DecodeError::BadTcpHeader);
    }
    let payload = data
        .get(hlen..claimed.min(data.len()))
        .ok_or(DecodeError::BadTcpHeader)?;
    Ok(TcpSegment {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        seq: SeqNum(be32(h, 4)),
        ack: SeqNum(be32(h, 8)),
        flags: TcpFlags(h[13]),
        window: u16::from_be_bytes([h[14], h[15]]),
        payload,
        payload_len: payload_len.saturating_sub(len_u32(hlen)),
    })
}
#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn tcp_header_checks() {
        let seg = tcp(&[2, 4, 5, 0xb4, 1, 1, 4, 2], b"data");
        let t = decode_tcp(&seg, seg.len() as u32).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"data"[..], 4));
        // Data offset below 5.
        for doff in 0..5u8 {
            let mut s = seg.clone();
            s[12] = doff << 4;
            assert_eq!(
                decode_tcp(&s, s.len() as u32),
                Err(DecodeError::BadTcpHeader)
            );
        }
        // Header (with options) longer than captured.
        assert_eq!(
            decode_tcp(&seg[..27], seg.len() as u32),
            Err(DecodeError::BadTcpHeader)
        );
        assert_eq!(
            decode_tcp(&seg[..19], seg.len() as u32),
            Err(DecodeError::BadTcpHeader)
        );
        // Claimed length shorter than the header.
        assert_eq!(decode_tcp(&seg, 27), Err(DecodeError::BadTcpHeader));
        // Claimed shorter than captured: the claim wins.
        let t = decode_tcp(&seg, 30).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"da"[..], 2));
        // Snaplen cut: claim beyond capture.
        let t = decode_tcp(&seg, 1000).unwrap();
        assert_eq!((t.payload, t.payload_len), (&b"data"[..], 972));
    }
}
