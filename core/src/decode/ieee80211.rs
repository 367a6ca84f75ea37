//! IEEE 802.11 data frames (link type 105, and inside radiotap, PPI, Prism and AVS): the MAC
//! header (3 or 4 addresses, QoS control, HT control), then 802.2 LLC/SNAP. Management and
//! control frames, null data and 802.11 fragments carry no IP packet here
//! ([`DecodeError::NotIp`]); a protected frame is encrypted ([`DecodeError::Protected`]).
//! Of an A-MSDU each subframe is its own packet: [`decode_frame_at`] decodes the one asked
//! for and says how many follow; the engine takes them all.

use super::*;

/// Frame control, first byte: type data.
const TYPE_DATA: u8 = 2;
/// Data subtype bits: QoS (QoS control field present), no data (null function, CF-ack or
/// CF-poll alone).
const SUBTYPE_QOS: u8 = 0x08;
const SUBTYPE_NO_DATA: u8 = 0x04;
/// Frame control, second byte.
const TO_DS: u8 = 0x01;
const FROM_DS: u8 = 0x02;
const MORE_FRAGMENTS: u8 = 0x04;
const PROTECTED: u8 = 0x40;
/// In a QoS data frame: an HT control field follows the QoS control field.
const ORDER: u8 = 0x80;
/// QoS control, first byte: the body is an A-MSDU.
const QOS_AMSDU: u8 = 0x80;
/// An A-MSDU subframe header: destination, source, length (big-endian).
const MSDU_HEADER: usize = 14;

/// Link type 105: the frame is an 802.11 frame, without padding.
pub(super) fn ieee80211(frame: Span<'_>) -> Result<Layer<'_>, DecodeError> {
    Ok(Layer::Ieee80211(frame, false))
}

impl Walk {
    /// An 802.11 frame down to its LLC header; `pad`: the MAC header is padded to 4 bytes.
    pub(super) fn ieee80211<'a>(
        &mut self,
        d: Span<'a>,
        pad: bool,
    ) -> Result<Layer<'a>, DecodeError> {
        let Some((fc, _)) = d.split::<2>() else {
            return Err(DecodeError::TruncatedLink);
        };
        let (version, kind, subtype) = (fc[0] & 0x03, (fc[0] >> 2) & 0x03, fc[0] >> 4);
        if version != 0 || kind != TYPE_DATA || subtype & SUBTYPE_NO_DATA != 0 {
            return Err(DecodeError::NotIp);
        }
        let flags = fc[1];
        if flags & PROTECTED != 0 {
            return Err(DecodeError::Protected);
        }
        let four = flags & (TO_DS | FROM_DS) == TO_DS | FROM_DS;
        let qos = subtype & SUBTYPE_QOS != 0;
        let mut len = if four { 30 } else { 24 };
        if qos {
            len += 2;
            if flags & ORDER != 0 {
                len += 4;
            }
        }
        let h = d.data.get(..len).ok_or(DecodeError::TruncatedLink)?;
        // Fragments (rare: off by default) are not reassembled; only a first fragment would
        // start with LLC, and it would end early.
        if flags & MORE_FRAGMENTS != 0 || h[22] & 0x0f != 0 {
            return Err(DecodeError::NotIp);
        }
        let amsdu = qos && h[if four { 30 } else { 24 }] & QOS_AMSDU != 0;
        // Destination and source by the DS bits (addresses 1..4 at 4, 10, 16, 24).
        let (da, sa) = match flags & (TO_DS | FROM_DS) {
            0 => (4, 10),
            TO_DS => (16, 10),
            FROM_DS => (4, 16),
            _ => (16, 24),
        };
        if pad {
            len = (len + 3) & !3;
        }
        if d.data.len() < len {
            return Err(DecodeError::TruncatedLink);
        }
        let body = d.after(len);
        if self.tunnels == 0 {
            self.macs = Some([field(h, sa), field(h, da)]);
        }
        if !amsdu {
            return Ok(Layer::Llc(body));
        }
        // Subframe `msdu_index`: each before it is a header and its body, padded to 4
        // bytes; at most `body.len() / 14` of them, so this ends.
        let mut body = body;
        for _ in 0..self.msdu_index {
            let (sub, _) = body
                .split::<MSDU_HEADER>()
                .ok_or(DecodeError::TruncatedLink)?;
            let next = pad4(MSDU_HEADER + usize::from(be16(sub, 12)));
            if body.data.len() < next + MSDU_HEADER {
                return Err(DecodeError::TruncatedLink);
            }
            body = body.after(next);
        }
        let (sub, rest) = body
            .split::<MSDU_HEADER>()
            .ok_or(DecodeError::TruncatedLink)?;
        let msdu_len = usize::from(be16(sub, 12));
        if self.tunnels == 0 {
            self.macs = Some([field(sub, 6), field(sub, 0)]);
        }
        self.more_msdus = count_msdus(rest.after(msdu_len).data, msdu_len);
        Ok(Layer::Llc(rest.limit(msdu_len)))
    }
}

/// The A-MSDU subframes in `after` (what follows a subframe of `len` bytes): each is padded to
/// 4 bytes, and at least a header long, so this ends within `after.len() / 14` steps.
fn count_msdus(after: &[u8], len: usize) -> u16 {
    let mut rest = after
        .get(pad4(MSDU_HEADER + len) - MSDU_HEADER - len..)
        .unwrap_or(&[]);
    let mut n = 0u16;
    while let Some((h, _)) = rest.split_first_chunk::<MSDU_HEADER>() {
        n = n.saturating_add(1);
        let next = pad4(MSDU_HEADER + usize::from(be16(h, 12)));
        rest = rest.get(next..).unwrap_or(&[]);
    }
    n
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use crate::decode::testutil::*;

    #[test]
    fn data_frames_each_ds_direction() {
        let v4 = inner4(b"wifi");
        for ds in 0..4u8 {
            let f = wifi_data(ds, false, &snap(0x0800, &v4));
            let p = decode_ip(LinkType::IEEE802_11, &f).unwrap();
            assert_v4_tcp(&p, b"wifi");
            // The source and destination wherever the DS bits put them.
            assert_eq!(p.macs, Some([MAC_SRC, MAC_DST]), "ds {ds}");
            assert_eq!(msdus_skipped(LinkType::IEEE802_11, &f), 0);
        }
        let p = decode_ip(
            LinkType::IEEE802_11,
            leak(wifi_data(1, true, &snap(0x86dd, &inner6(b"qos6")))),
        )
        .unwrap();
        assert_v6_tcp(&p, b"qos6");
    }

    #[test]
    fn qos_with_ht_control() {
        let mut f = wifi_data(3, true, &snap(0x0800, &inner4(b"ht")));
        // Order bit: 4 bytes of HT control after the QoS control.
        f[1] |= 0x80;
        f.splice(32..32, [0xaa; 4]);
        let p = decode_ip(LinkType::IEEE802_11, leak(f)).unwrap();
        assert_v4_tcp(&p, b"ht");
    }

    #[test]
    fn frames_without_ip() {
        let body = snap(0x0800, &inner4(b"x"));
        let mut beacon = wifi_data(0, false, &body);
        beacon[0] = 0x80;
        let mut null = wifi_data(1, true, &[]);
        null[0] = 0xc8;
        let mut frag = wifi_data(1, false, &body);
        frag[1] |= 0x04;
        let mut later_frag = wifi_data(1, false, &body);
        later_frag[22] |= 1;
        let mut version = wifi_data(0, false, &body);
        version[0] |= 1;
        let arp = wifi_data(0, false, &snap(0x0806, &[0; 28]));
        for f in [beacon, null, frag, later_frag, version, arp] {
            assert_eq!(
                decode_ip(LinkType::IEEE802_11, &f),
                Err(DecodeError::NotIp),
                "{f:02x?}"
            );
        }
    }

    #[test]
    fn protected_frames_are_counted_apart() {
        let mut f = wifi_data(1, true, &[0x5a; 60]);
        f[1] |= 0x40;
        let e = decode_ip(LinkType::IEEE802_11, &f).unwrap_err();
        assert_eq!(e, DecodeError::Protected);
        let mut stats = DecodeStats::default();
        e.count(&mut stats);
        assert_eq!((stats.wifi_protected, stats.not_ip), (1, 0));
    }

    #[test]
    fn amsdu_first_subframe_decoded_the_rest_counted() {
        let a = snap(0x0800, &inner4(b"first"));
        let b = snap(0x0800, &inner4(b"second!"));
        let c = snap(0x86dd, &inner6(b"third"));
        let f = wifi_amsdu(&[&a, &b, &c]);
        assert_eq!(msdus_skipped(LinkType::IEEE802_11, &f), 2);
        let p = decode_ip(LinkType::IEEE802_11, leak(f)).unwrap();
        assert_v4_tcp(&p, b"first");
        assert_eq!(p.macs, Some([INNER_MAC, MAC_DST]));
        let one = wifi_amsdu(&[&a]);
        assert_eq!(msdus_skipped(LinkType::IEEE802_11, &one), 0);
        // A subframe length past the frame: what is there, as a snap-length cut.
        let mut long = wifi_amsdu(&[&a]);
        long[38] += 1;
        assert_eq!(msdus_skipped(LinkType::IEEE802_11, &long), 0);
    }

    #[test]
    fn each_amsdu_subframe_decodes_on_its_own() {
        let a = snap(0x0800, &inner4(b"first"));
        let b = snap(0x0800, &inner4(b"second!"));
        let c = snap(0x86dd, &inner6(b"third"));
        let f = leak(wifi_amsdu(&[&a, &b, &c]));
        let mut stats = DecodeStats::default();
        let (p, more) = decode_frame_at(LinkType::IEEE802_11, f, 0).unwrap();
        assert_v4_tcp(&p, b"first");
        assert_eq!(more, 2);
        let (p, more) = decode_frame_at(LinkType::IEEE802_11, f, 1).unwrap();
        assert_v4_tcp(&p, b"second!");
        assert_eq!(more, 1);
        let (p, more) = decode_frame_at(LinkType::IEEE802_11, f, 2).unwrap();
        assert_eq!(p.payload.len(), 20 + 5);
        assert_eq!(more, 0);
        assert_eq!(
            decode_frame_at(LinkType::IEEE802_11, f, 3).map(|r| r.1),
            Err(DecodeError::TruncatedLink)
        );
        // Asking past the end of any frame is refused, never a panic.
        for n in 0..f.len() {
            for k in 0..4 {
                let _ = decode_frame_at(LinkType::IEEE802_11, &f[..n], k);
            }
        }
        // decode_frame alone returns the first and counts the two after it as skipped.
        decode_frame(LinkType::IEEE802_11, f, &mut stats).unwrap();
        assert_eq!(stats.wifi_amsdu_skipped, 2);
    }

    /// The engine takes every subframe of an A-MSDU, each of its own flow; a protected frame
    /// is ignored and counted, as a frame that is not IP.
    #[test]
    fn engine_takes_every_subframe_and_counts_protected_frames() {
        use crate::config::Config;
        use crate::engine::Outcome;
        use crate::testutil::{Rec, Store};
        use crate::time::Timestamp;
        let a = snap(0x0800, &inner4(b"first"));
        let b = snap(0x0800, &inner4_port(2, b"second"));
        let c = snap(0x0800, &inner4_port(3, b"third!"));
        let mut store = Store::new(4, 8);
        let mut e = store.engine(Config::default());
        let mut sink = Rec::default();
        let amsdu = wifi_amsdu(&[&a, &b, &c]);
        let r = e.process(Timestamp(1), LinkType::IEEE802_11, &amsdu, &mut sink);
        // The outcome names the last subframe's flow (the third record taken).
        let last = crate::flow::FlowRef {
            slot: 2,
            conn_index: 0,
            dir: crate::flow::Dir::AtoB,
        };
        assert_eq!(r, Ok(Outcome::Tcp(last)));
        // Three flows, each with its bytes.
        e.finish(&mut sink);
        let mut got: Vec<Vec<u8>> = sink.flows.iter().map(|f| f.dirs[0].bytes.clone()).collect();
        got.sort();
        assert_eq!(
            got,
            vec![b"first".to_vec(), b"second".to_vec(), b"third!".to_vec()]
        );
        let mut sealed = wifi_data(1, true, &[0x5a; 60]);
        sealed[1] |= 0x40;
        let r = e.process(Timestamp(2), LinkType::IEEE802_11, &sealed, &mut sink);
        assert_eq!(r, Ok(Outcome::Ignored));
        let d = e.stats().decode;
        assert_eq!(
            (d.tcp_segments, d.wifi_amsdu_skipped, d.wifi_protected),
            (3, 0, 1)
        );
    }

    /// A crafted frame of thousands of tiny subframes: the engine takes MAX_MSDUS of them and
    /// counts the rest (finding subframe k walks the k before it).
    #[test]
    fn subframes_past_the_bound_are_counted() {
        use crate::config::Config;
        use crate::engine::MAX_MSDUS;
        use crate::testutil::{Rec, Store};
        use crate::time::Timestamp;
        let tiny = snap(0x0800, &inner4(b"x"));
        let many: Vec<&[u8]> = (0..1000).map(|_| &tiny[..]).collect();
        let f = wifi_amsdu(&many);
        let mut store = Store::new(4, 8);
        let mut e = store.engine(Config::default());
        let _ = e.process(Timestamp(1), LinkType::IEEE802_11, &f, &mut Rec::default());
        let d = e.stats().decode;
        assert_eq!(d.wifi_amsdu_skipped, 1000 - u64::from(MAX_MSDUS));
        assert_eq!(d.tcp_segments, u64::from(MAX_MSDUS));
    }

    #[test]
    fn truncated_headers() {
        let f = wifi_data(3, true, &snap(0x0800, &inner4(b"cut")));
        for n in [0, 1, 2, 23, 24, 31] {
            assert_eq!(
                decode_ip(LinkType::IEEE802_11, &f[..n]),
                Err(DecodeError::TruncatedLink),
                "cut at {n}"
            );
        }
    }
}
