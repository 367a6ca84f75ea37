//! IPv4 and IPv6 fragment reassembly in a fixed set of slots.
//!
//! Each slot owns an equal share of the arena and reassembles one datagram in place: fragment
//! bytes are copied to their offset, and a short sorted list of received ranges tells what is
//! held. The first copy of a byte wins (as in the TCP stream, an evasion defence); later
//! copies are only compared, for the counters. Incomplete datagrams time out on capture time.

use core::fmt;

use crate::decode::{Addr, IpPacket, Vlans};
use crate::stats::FragStats;
use crate::time::Timestamp;

/// Received ranges a datagram may be held in before it is given up (as too_big): bounds the
/// per-fragment work and the slot size.
const MAX_RANGES: usize = 16;

/// Datagrams recently dropped (no slot, too big, malformed), so that their later fragments
/// are dropped too instead of opening a slot that can only time out (and count the datagram a
/// second time).
const RECENT_DROPS: usize = 4;

/// What identifies a datagram (RFC 791, RFC 8200), plus the VLANs it came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    src: Addr,
    dst: Addr,
    ident: u32,
    vlans: Vlans,
    /// IPv4 protocol; 0 for IPv6, whose fragments may carry different next headers (RFC 8200
    /// 4.5: the first fragment's counts).
    protocol: u8,
}

impl Key {
    const NONE: Key = Key {
        src: Addr::V4([0; 4]),
        dst: Addr::V4([0; 4]),
        ident: 0,
        vlans: Vlans::NONE,
        protocol: 0,
    };

    fn of(pkt: &IpPacket<'_>, ident: u32) -> Key {
        Key {
            src: pkt.src,
            dst: pkt.dst,
            ident,
            vlans: pkt.vlans,
            protocol: match pkt.src {
                Addr::V4(_) => pkt.protocol,
                Addr::V6(_) => 0,
            },
        }
    }
}

/// One datagram being reassembled. Storage for [`Storage::frag_slots`](crate::Storage::frag_slots).
#[derive(Clone, Copy, Debug)]
pub struct FragSlot {
    used: bool,
    key: Key,
    /// When its first fragment (in arrival order) came: the timeout runs from here.
    first: Timestamp,
    /// Payload length, known once the last fragment (more == false) is seen.
    total: Option<u32>,
    /// Upper protocol, from the fragment at offset 0.
    protocol: Option<u8>,
    /// Received byte ranges `[start, end)`: sorted, disjoint and not touching.
    ranges: [(u32, u32); MAX_RANGES],
    nranges: u8,
}

impl FragSlot {
    /// A free slot.
    pub const EMPTY: FragSlot = FragSlot {
        used: false,
        key: Key::NONE,
        first: Timestamp(0),
        total: None,
        protocol: None,
        ranges: [(0, 0); MAX_RANGES],
        nranges: 0,
    };

    fn ranges(&self) -> &[(u32, u32)] {
        self.ranges.get(..usize::from(self.nranges)).unwrap_or(&[])
    }

    /// Bytes held.
    fn held(&self) -> u64 {
        self.ranges().iter().map(|&(s, e)| u64::from(e - s)).sum()
    }

    /// Frees the slot, counting what it held as lost.
    fn drop_counted(&mut self, stats: &mut FragStats) {
        stats.dropped_bytes += self.held();
        *self = FragSlot::EMPTY;
    }
}

/// What a fragment did to its datagram.
enum Outcome {
    Pending,
    /// Complete with this protocol and length.
    Complete(u8, u32),
    /// Too big for a slot, or malformed.
    Drop,
}

/// Reassembles fragments in a fixed set of slots.
pub struct Defragmenter<'s> {
    slots: &'s mut [FragSlot],
    arena: &'s mut [u8],
    /// Arena bytes per slot: the largest datagram payload that can be reassembled.
    share: usize,
    timeout_ns: u64,
    /// Keys of recently dropped datagrams and when they were dropped, in a ring.
    dropped: [Option<(Key, Timestamp)>; RECENT_DROPS],
    next_dropped: usize,
}

impl fmt::Debug for Defragmenter<'_> {
    // Not derived: the arena can be megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Defragmenter")
            .field("slots", &self.slots.len())
            .field("share", &self.share)
            .field("timeout_ns", &self.timeout_ns)
            .field("pending", &self.pending())
            .finish()
    }
}

impl<'s> Defragmenter<'s> {
    /// `arena` is split evenly among the slots; a datagram larger than its share is dropped
    /// (counted in too_big). Datagrams time out `timeout_ns` after their first fragment.
    pub fn new(slots: &'s mut [FragSlot], arena: &'s mut [u8], timeout_ns: u64) -> Self {
        // Storage may be reused from an earlier run.
        for slot in slots.iter_mut() {
            *slot = FragSlot::EMPTY;
        }
        let share = arena.len().checked_div(slots.len()).unwrap_or(0);
        Defragmenter {
            slots,
            arena,
            share,
            timeout_ns,
            dropped: [None; RECENT_DROPS],
            next_dropped: 0,
        }
    }

    /// Adds a fragment (`pkt.fragment` is Some; a packet that is not a fragment is ignored and
    /// not counted). When this fragment completes its datagram, returns (upper protocol,
    /// reassembled upper-layer payload); the slice lives in the arena and stays valid until the
    /// next call. For IPv6 the payload is the fragmentable part: it may start with extension
    /// headers (see [`crate::decode::skip_ipv6_extensions`]).
    pub fn push(
        &mut self,
        now: Timestamp,
        pkt: &IpPacket<'_>,
        stats: &mut FragStats,
    ) -> Option<(u8, &[u8])> {
        let frag = pkt.fragment?;
        stats.fragments += 1;
        let key = Key::of(pkt, frag.ident);
        // Never trust a payload longer than the IP claim.
        let data = pkt
            .payload
            .get(..usize::try_from(pkt.payload_len).unwrap_or(usize::MAX))
            .unwrap_or(pkt.payload);
        let data_len = data.len() as u64;

        // One pass: expire old datagrams (so memory stays bounded without calls to expire),
        // find this one's slot, or a free one.
        let mut found = None;
        let mut free = None;
        let timeout = self.timeout_ns;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.used && expired(slot.first, now, timeout) {
                stats.timed_out += 1;
                slot.drop_counted(stats);
            }
            if !slot.used {
                free = free.or(Some(i));
            } else if slot.key == key {
                found = Some(i);
            }
        }
        let idx = match found {
            Some(i) => i,
            None if self.recently_dropped(&key, now) => {
                stats.dropped_bytes += data_len;
                return None;
            }
            None => match free {
                Some(i) => {
                    let slot = self.slots.get_mut(i)?;
                    *slot = FragSlot::EMPTY;
                    slot.used = true;
                    slot.key = key;
                    slot.first = now;
                    i
                }
                None => {
                    // First come keeps its slot: the newcomer is the one dropped.
                    stats.no_slot += 1;
                    stats.dropped_bytes += data_len;
                    remember_drop(&mut self.dropped, &mut self.next_dropped, key, now);
                    return None;
                }
            },
        };

        let share = self.share;
        let start = idx.checked_mul(share)?;
        let buf = self.arena.get_mut(start..start.checked_add(share)?)?;
        let slot = self.slots.get_mut(idx)?;
        match add_fragment(slot, buf, frag.offset, frag.more, pkt, data, stats) {
            Outcome::Pending => None,
            Outcome::Drop => {
                stats.too_big += 1;
                stats.dropped_bytes += data_len;
                slot.drop_counted(stats);
                remember_drop(&mut self.dropped, &mut self.next_dropped, key, now);
                None
            }
            Outcome::Complete(protocol, total) => {
                *slot = FragSlot::EMPTY;
                stats.reassembled += 1;
                let whole = buf.get(..usize::try_from(total).ok()?)?;
                Some((protocol, whole))
            }
        }
    }

    fn recently_dropped(&self, key: &Key, now: Timestamp) -> bool {
        self.dropped
            .iter()
            .flatten()
            .any(|(k, at)| k == key && !expired(*at, now, self.timeout_ns))
    }

    /// Drops datagrams whose first fragment is older than the timeout (counted timed_out,
    /// their bytes dropped_bytes).
    pub fn expire(&mut self, now: Timestamp, stats: &mut FragStats) {
        let timeout = self.timeout_ns;
        for slot in self.slots.iter_mut() {
            if slot.used && expired(slot.first, now, timeout) {
                stats.timed_out += 1;
                slot.drop_counted(stats);
            }
        }
    }

    /// Drops every pending datagram (end of input), counted as timed out.
    pub fn flush(&mut self, stats: &mut FragStats) {
        for slot in self.slots.iter_mut().filter(|s| s.used) {
            stats.timed_out += 1;
            slot.drop_counted(stats);
        }
        self.dropped = [None; RECENT_DROPS];
    }

    /// Datagrams pending.
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.used).count()
    }
}

/// Whether something that started at `first` is older than the timeout at `now` (capture
/// time going backwards never expires anything).
fn expired(first: Timestamp, now: Timestamp, timeout_ns: u64) -> bool {
    now.0.saturating_sub(first.0) > timeout_ns
}

/// Records a dropped datagram in the ring (a free function so that `push` can call it while
/// it borrows the arena).
fn remember_drop(
    ring: &mut [Option<(Key, Timestamp)>; RECENT_DROPS],
    next: &mut usize,
    key: Key,
    now: Timestamp,
) {
    if let Some(entry) = ring.get_mut(*next) {
        *entry = Some((key, now));
    }
    *next = (*next + 1) % RECENT_DROPS;
}

/// Adds one fragment's captured bytes `data` at `offset` to the datagram in `slot`, whose bytes
/// live in `buf`. Checks everything before changing anything, so a dropped datagram's bytes
/// are counted once.
fn add_fragment(
    slot: &mut FragSlot,
    buf: &mut [u8],
    offset: u32,
    more: bool,
    pkt: &IpPacket<'_>,
    data: &[u8],
    stats: &mut FragStats,
) -> Outcome {
    let start = u64::from(offset);
    let claimed_end = start + u64::from(pkt.payload_len);
    if claimed_end > (buf.len() as u64).min(u64::from(u32::MAX)) {
        return Outcome::Drop;
    }
    // Within the slot, so within u32 and usize from here on.
    let claimed_end = claimed_end as u32;
    let end = offset + data.len() as u32;
    let held_end = slot.ranges().last().map_or(0, |&(_, e)| e);
    let total = match (more, slot.total) {
        // Two different last fragments, or data already held past the end.
        (false, Some(t)) if t != claimed_end => return Outcome::Drop,
        (false, _) if held_end > claimed_end => return Outcome::Drop,
        (false, _) => Some(claimed_end),
        (true, Some(t)) if claimed_end > t => return Outcome::Drop,
        (true, t) => t,
    };
    let mut merged = [(0u32, 0u32); MAX_RANGES];
    let nmerged = if end > offset {
        match merge(slot.ranges(), offset, end, &mut merged) {
            Some(n) => n,
            None => return Outcome::Drop,
        }
    } else {
        // Nothing captured: nothing to hold.
        let held = slot.ranges();
        if let Some(m) = merged.get_mut(..held.len()) {
            m.copy_from_slice(held);
        }
        held.len()
    };

    copy_uncovered(slot.ranges(), buf, offset, data, stats);
    slot.ranges = merged;
    slot.nranges = nmerged as u8;
    slot.total = total;
    if offset == 0 && slot.protocol.is_none() {
        slot.protocol = Some(pkt.protocol);
    }
    match (slot.total, slot.protocol) {
        (Some(t), Some(p)) if t == 0 || slot.ranges() == [(0, t)] => Outcome::Complete(p, t),
        _ => Outcome::Pending,
    }
}

/// Merges `[s, e)` into the sorted, disjoint `ranges`, writing the result to `out`; None when
/// more than [`MAX_RANGES`] ranges would be needed.
fn merge(
    ranges: &[(u32, u32)],
    s: u32,
    e: u32,
    out: &mut [(u32, u32); MAX_RANGES],
) -> Option<usize> {
    let mut n = 0;
    let mut put = |r: (u32, u32)| -> Option<()> {
        *out.get_mut(n)? = r;
        n += 1;
        Some(())
    };
    let (mut ns, mut ne) = (s, e);
    let mut placed = false;
    for &(rs, re) in ranges {
        if re < ns {
            put((rs, re))?;
        } else if rs > ne {
            if !placed {
                put((ns, ne))?;
                placed = true;
            }
            put((rs, re))?;
        } else {
            // Overlapping or touching: one range.
            ns = ns.min(rs);
            ne = ne.max(re);
        }
    }
    if !placed {
        put((ns, ne))?;
    }
    Some(n)
}

/// The bytes `[a, b)` of the datagram in `buf` and in `data` (which starts at `offset`).
fn piece<'b, 'd>(
    buf: &'b mut [u8],
    data: &'d [u8],
    offset: u32,
    a: u32,
    b: u32,
) -> (Option<&'b mut [u8]>, Option<&'d [u8]>) {
    let d = data.get((a - offset) as usize..(b - offset) as usize);
    (buf.get_mut(a as usize..b as usize), d)
}

/// Copies the bytes of `data` (at `offset`) that `held` does not cover into `buf`; bytes it
/// covers are only compared (first copy wins) and counted.
fn copy_uncovered(
    held: &[(u32, u32)],
    buf: &mut [u8],
    offset: u32,
    data: &[u8],
    stats: &mut FragStats,
) {
    let end = offset + data.len() as u32;
    let mut cur = offset;
    for &(rs, re) in held {
        if re <= cur {
            continue;
        }
        if rs >= end {
            break;
        }
        if rs > cur {
            if let (Some(dst), Some(src)) = piece(buf, data, offset, cur, rs) {
                dst.copy_from_slice(src);
            }
        }
        let (os, oe) = (rs.max(cur), re.min(end));
        if let (Some(old), Some(new)) = piece(buf, data, offset, os, oe) {
            stats.overlap_bytes += u64::from(oe - os);
            stats.conflict_bytes += old.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
        }
        cur = oe;
    }
    if cur < end {
        if let (Some(dst), Some(src)) = piece(buf, data, offset, cur, end) {
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_ip, decode_tcp, skip_ipv6_extensions, Fragment, LinkType};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const SEC: u64 = 1_000_000_000;
    const TIMEOUT: u64 = 30 * SEC;

    fn v4(ident: u32, offset: u32, more: bool, data: &[u8]) -> IpPacket<'_> {
        IpPacket {
            vlans: Vlans::NONE,
            macs: None,
            src: Addr::V4([10, 0, 0, 1]),
            dst: Addr::V4([10, 0, 0, 2]),
            protocol: 6,
            fragment: Some(Fragment {
                ident,
                offset,
                more,
            }),
            payload: data,
            payload_len: data.len() as u32,
        }
    }

    fn v6(ident: u32, offset: u32, more: bool, data: &[u8]) -> IpPacket<'_> {
        IpPacket {
            src: Addr::V6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            dst: Addr::V6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            ..v4(ident, offset, more, data)
        }
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Splits `len` bytes into fragments of `sizes` (cycled): (offset, end, more).
    fn split(len: usize, sizes: &[usize]) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let mut off = 0;
        let mut i = 0;
        while off < len {
            let end = (off + sizes[i % sizes.len()]).min(len);
            out.push((off, end, end < len));
            off = end;
            i += 1;
        }
        out
    }

    struct Storage {
        slots: Vec<FragSlot>,
        arena: Vec<u8>,
    }

    impl Storage {
        fn new(slots: usize, share: usize) -> Self {
            Storage {
                slots: vec![FragSlot::EMPTY; slots],
                arena: vec![0; slots * share],
            }
        }
        fn defrag(&mut self) -> Defragmenter<'_> {
            Defragmenter::new(&mut self.slots, &mut self.arena, TIMEOUT)
        }
    }

    /// Pushes the fragments in `order`; returns what completed (protocol, bytes) and at which
    /// push.
    fn run(
        d: &mut Defragmenter<'_>,
        ipv6: bool,
        data: &[u8],
        frags: &[(usize, usize, bool)],
        order: &[usize],
        stats: &mut FragStats,
    ) -> Vec<(usize, u8, Vec<u8>)> {
        let mut done = Vec::new();
        for (n, &i) in order.iter().enumerate() {
            let (s, e, more) = frags[i];
            let mut p = if ipv6 {
                v6(7, s as u32, more, &data[s..e])
            } else {
                v4(7, s as u32, more, &data[s..e])
            };
            // Only the first fragment's next header counts for IPv6.
            if ipv6 && s != 0 {
                p.protocol = 17;
            }
            if let Some((proto, bytes)) = d.push(Timestamp(n as u64), &p, stats) {
                done.push((n, proto, bytes.to_vec()));
            }
        }
        done
    }

    fn check_orders(ipv6: bool) {
        let data = payload(4000);
        let frags = split(data.len(), &[1480]);
        assert_eq!(frags.len(), 3);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut st = Storage::new(4, 8192);
            let mut d = st.defrag();
            let mut stats = FragStats::default();
            let done = run(&mut d, ipv6, &data, &frags, &order, &mut stats);
            assert_eq!(done, vec![(2, 6, data.clone())], "order {order:?}");
            assert_eq!(d.pending(), 0);
            assert_eq!(
                stats,
                FragStats {
                    fragments: 3,
                    reassembled: 1,
                    ..FragStats::default()
                }
            );
        }
    }

    #[test]
    fn ipv4_in_order_reversed_shuffled() {
        check_orders(false);
    }

    #[test]
    fn ipv6_in_order_reversed_shuffled() {
        check_orders(true);
    }

    #[test]
    fn duplicates_are_counted_not_copied() {
        let data = payload(24);
        let mut st = Storage::new(2, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        assert!(d
            .push(Timestamp(0), &v4(1, 0, true, &data[..16]), &mut stats)
            .is_none());
        assert!(d
            .push(Timestamp(1), &v4(1, 0, true, &data[..16]), &mut stats)
            .is_none());
        assert_eq!((stats.overlap_bytes, stats.conflict_bytes), (16, 0));
        let (proto, got) = d
            .push(Timestamp(2), &v4(1, 16, false, &data[16..]), &mut stats)
            .unwrap();
        assert_eq!((proto, got), (6, &data[..]));
        // The last fragment again, after completion: a new datagram that never completes.
        assert!(d
            .push(Timestamp(3), &v4(1, 16, false, &data[16..]), &mut stats)
            .is_none());
        assert_eq!(d.pending(), 1);
        assert_eq!(stats.reassembled, 1);
        assert_eq!(stats.fragments, 4);
    }

    #[test]
    fn overlap_with_same_bytes() {
        let data = payload(32);
        let mut st = Storage::new(1, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        assert!(d
            .push(Timestamp(0), &v6(1, 8, true, &data[8..16]), &mut stats)
            .is_none());
        // Covers [8, 16) again, and new bytes on both sides.
        assert!(d
            .push(Timestamp(0), &v6(1, 0, true, &data[..24]), &mut stats)
            .is_none());
        let (_, got) = d
            .push(Timestamp(0), &v6(1, 16, false, &data[16..]), &mut stats)
            .unwrap();
        assert_eq!(got, &data[..]);
        assert_eq!((stats.overlap_bytes, stats.conflict_bytes), (8 + 8, 0));
    }

    #[test]
    fn overlap_with_different_bytes_first_wins() {
        let data = payload(32);
        let mut evil = data.clone();
        for b in &mut evil[10..13] {
            *b ^= 0xff;
        }
        evil[20] ^= 1;
        let mut st = Storage::new(1, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        assert!(d
            .push(Timestamp(0), &v4(1, 0, true, &data[..16]), &mut stats)
            .is_none());
        assert!(d
            .push(Timestamp(0), &v4(1, 24, false, &data[24..]), &mut stats)
            .is_none());
        // [8, 32) from the forged copy: [8, 16) and [24, 32) are held, [16, 24) is new.
        let (_, got) = d
            .push(Timestamp(0), &v4(1, 8, false, &evil[8..]), &mut stats)
            .unwrap();
        let mut want = data.clone();
        want[20] ^= 1; // the only forged byte that was not held already
        assert_eq!(got, &want[..]);
        assert_eq!((stats.overlap_bytes, stats.conflict_bytes), (16, 3));
    }

    #[test]
    fn timed_out_datagram_is_counted_with_its_bytes() {
        let data = payload(100);
        let mut st = Storage::new(2, 256);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        d.push(Timestamp(5), &v4(1, 0, true, &data[..48]), &mut stats);
        d.push(Timestamp(6), &v4(1, 64, false, &data[64..]), &mut stats);
        assert_eq!(d.pending(), 1);
        d.expire(Timestamp(5 + TIMEOUT), &mut stats);
        assert_eq!(
            (d.pending(), stats.timed_out),
            (1, 0),
            "not older than the timeout yet"
        );
        d.expire(Timestamp(6 + TIMEOUT), &mut stats);
        assert_eq!(d.pending(), 0);
        assert_eq!((stats.timed_out, stats.dropped_bytes), (1, 48 + 36));
        // The missing middle alone now starts a new datagram.
        assert!(d
            .push(
                Timestamp(7 + TIMEOUT),
                &v4(1, 48, true, &data[48..64]),
                &mut stats
            )
            .is_none());
        assert_eq!(d.pending(), 1);
    }

    #[test]
    fn push_expires_lazily() {
        let data = payload(64);
        let mut st = Storage::new(2, 256);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        d.push(Timestamp(0), &v4(1, 0, true, &data[..16]), &mut stats);
        d.push(Timestamp(0), &v4(2, 0, true, &data[..8]), &mut stats);
        // An unrelated fragment much later: both old datagrams go, without a call to expire.
        d.push(
            Timestamp(TIMEOUT + 1),
            &v4(3, 0, true, &data[..8]),
            &mut stats,
        );
        assert_eq!(d.pending(), 1);
        assert_eq!(
            (stats.timed_out, stats.dropped_bytes, stats.no_slot),
            (2, 24, 0)
        );
        // A fragment of an expired datagram does not complete it.
        assert!(d
            .push(
                Timestamp(TIMEOUT + 2),
                &v4(1, 16, false, &data[16..]),
                &mut stats
            )
            .is_none());
        assert_eq!(d.pending(), 2);
    }

    #[test]
    fn too_big_for_a_slot() {
        let data = payload(200);
        let mut st = Storage::new(2, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        d.push(Timestamp(0), &v4(1, 0, true, &data[..32]), &mut stats);
        // Ends at 72 > 64.
        assert!(d
            .push(Timestamp(1), &v4(1, 32, true, &data[32..72]), &mut stats)
            .is_none());
        assert_eq!(d.pending(), 0);
        assert_eq!((stats.too_big, stats.dropped_bytes), (1, 32 + 40));
        // Later fragments of the dropped datagram neither open a slot nor count it again.
        assert!(d
            .push(Timestamp(2), &v4(1, 72, false, &data[72..80]), &mut stats)
            .is_none());
        assert_eq!(d.pending(), 0);
        assert_eq!(
            (stats.too_big, stats.dropped_bytes, stats.timed_out),
            (1, 80, 0)
        );
        // Exactly the slot size fits.
        d.push(Timestamp(3), &v4(3, 0, true, &data[..32]), &mut stats);
        let (_, got) = d
            .push(Timestamp(3), &v4(3, 32, false, &data[32..64]), &mut stats)
            .unwrap();
        assert_eq!(got, &data[..64]);
    }

    #[test]
    fn all_slots_busy_keeps_the_first_comers() {
        let data = payload(32);
        let mut st = Storage::new(2, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        d.push(Timestamp(0), &v4(1, 0, true, &data[..16]), &mut stats);
        d.push(Timestamp(0), &v4(2, 0, true, &data[..16]), &mut stats);
        assert!(d
            .push(Timestamp(1), &v4(3, 0, true, &data[..16]), &mut stats)
            .is_none());
        assert_eq!((stats.no_slot, stats.dropped_bytes), (1, 16));
        // Its second fragment is dropped as well, counted as bytes only.
        assert!(d
            .push(Timestamp(1), &v4(3, 16, false, &data[16..]), &mut stats)
            .is_none());
        assert_eq!((stats.no_slot, stats.dropped_bytes), (1, 32));
        assert_eq!(d.pending(), 2);
        for ident in [1, 2] {
            let (_, got) = d
                .push(Timestamp(2), &v4(ident, 16, false, &data[16..]), &mut stats)
                .unwrap();
            assert_eq!(got, &data[..]);
        }
        assert_eq!((d.pending(), stats.reassembled), (0, 2));
        // Slots full of old datagrams: those expire first, the newcomer gets a slot.
        d.push(Timestamp(10), &v4(4, 0, true, &data[..16]), &mut stats);
        d.push(Timestamp(10), &v4(5, 0, true, &data[..16]), &mut stats);
        assert!(d
            .push(
                Timestamp(11 + TIMEOUT),
                &v4(6, 0, true, &data[..16]),
                &mut stats
            )
            .is_none());
        assert_eq!((d.pending(), stats.timed_out, stats.no_slot), (1, 2, 1));
    }

    #[test]
    fn pending_count_and_completion_frees_the_slot() {
        let data = payload(16);
        let mut st = Storage::new(1, 32);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        assert_eq!(d.pending(), 0);
        for round in 0..3u32 {
            d.push(Timestamp(0), &v4(round, 0, true, &data[..8]), &mut stats);
            assert_eq!(d.pending(), 1);
            assert!(d
                .push(Timestamp(0), &v4(round, 8, false, &data[8..]), &mut stats)
                .is_some());
            assert_eq!(d.pending(), 0);
        }
        assert_eq!((stats.reassembled, stats.no_slot), (3, 0));
    }

    #[test]
    fn snaplen_cut_fragment_never_completes() {
        let data = payload(32);
        let mut st = Storage::new(1, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        let mut cut = v4(1, 0, true, &data[..10]);
        cut.payload_len = 16;
        d.push(Timestamp(0), &cut, &mut stats);
        assert!(d
            .push(Timestamp(0), &v4(1, 16, false, &data[16..]), &mut stats)
            .is_none());
        assert_eq!(d.pending(), 1);
        d.flush(&mut stats);
        assert_eq!(d.pending(), 0);
        assert_eq!(
            (stats.timed_out, stats.dropped_bytes, stats.reassembled),
            (1, 26, 0)
        );
    }

    #[test]
    fn malformed_datagrams_are_dropped() {
        let data = payload(64);
        let mut stats = FragStats::default();
        let mut st = Storage::new(1, 128);
        let mut d = st.defrag();
        // Two last fragments that disagree on the length.
        d.push(Timestamp(0), &v4(1, 32, false, &data[32..]), &mut stats);
        d.push(Timestamp(0), &v4(1, 16, false, &data[16..32]), &mut stats);
        assert_eq!((stats.too_big, d.pending()), (1, 0));
        // A last fragment ending before data already held.
        d.push(Timestamp(0), &v4(2, 32, true, &data[32..48]), &mut stats);
        d.push(Timestamp(0), &v4(2, 8, false, &data[8..16]), &mut stats);
        assert_eq!((stats.too_big, d.pending()), (2, 0));
        // A middle fragment beyond the known end.
        d.push(Timestamp(0), &v4(3, 16, false, &data[16..24]), &mut stats);
        d.push(Timestamp(0), &v4(3, 16, true, &data[16..32]), &mut stats);
        assert_eq!((stats.too_big, d.pending()), (3, 0));
        assert_eq!(stats.dropped_bytes, (32 + 16) + (16 + 8) + (8 + 16));
    }

    #[test]
    fn too_many_pieces_is_too_big() {
        let data = payload(512);
        let mut st = Storage::new(1, 512);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        for i in 0..MAX_RANGES {
            let s = i * 16;
            d.push(
                Timestamp(0),
                &v6(1, s as u32, true, &data[s..s + 8]),
                &mut stats,
            );
        }
        assert_eq!((d.pending(), stats.too_big), (1, 0));
        // Filling a hole merges ranges: still fine.
        d.push(Timestamp(0), &v6(1, 8, true, &data[8..16]), &mut stats);
        assert_eq!((d.pending(), stats.too_big), (1, 0));
        // Two more disjoint pieces: the 17th range.
        d.push(Timestamp(0), &v6(1, 400, true, &data[400..408]), &mut stats);
        assert_eq!((d.pending(), stats.too_big), (1, 0));
        d.push(Timestamp(0), &v6(1, 480, true, &data[480..488]), &mut stats);
        assert_eq!((d.pending(), stats.too_big), (0, 1));
        // The 16 pieces, the hole, the piece at 400, and the refused one.
        assert_eq!(stats.dropped_bytes as usize, (MAX_RANGES + 2) * 8 + 8);
    }

    #[test]
    fn key_separates_protocol_vlan_and_ident() {
        let data = payload(32);
        let mut st = Storage::new(4, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        let a = v4(1, 0, true, &data[..16]);
        let mut udp = a;
        udp.protocol = 17;
        let mut tagged = a;
        tagged.vlans.push(5);
        let other_ident = v4(2, 0, true, &data[..16]);
        for p in [a, udp, tagged, other_ident] {
            d.push(Timestamp(0), &p, &mut stats);
        }
        assert_eq!(d.pending(), 4);
        let mut last = v4(1, 16, false, &data[16..]);
        last.protocol = 17;
        let (proto, got) = d.push(Timestamp(0), &last, &mut stats).unwrap();
        assert_eq!((proto, got), (17, &data[..]));
        assert_eq!(d.pending(), 3);
    }

    #[test]
    fn ipv6_protocol_comes_from_the_first_fragment() {
        let data = payload(48);
        let mut st = Storage::new(1, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        let mut last = v6(9, 24, false, &data[24..]);
        last.protocol = 99;
        d.push(Timestamp(0), &last, &mut stats);
        let mut first = v6(9, 0, true, &data[..24]);
        first.protocol = 60;
        let (proto, got) = d.push(Timestamp(0), &first, &mut stats).unwrap();
        assert_eq!((proto, got), (60, &data[..]));
    }

    #[test]
    fn flush_and_non_fragments() {
        let data = payload(16);
        let mut st = Storage::new(3, 64);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        let mut whole = v4(1, 0, false, &data);
        whole.fragment = None;
        assert!(d.push(Timestamp(0), &whole, &mut stats).is_none());
        assert_eq!((stats.fragments, d.pending()), (0, 0));
        d.push(Timestamp(0), &v4(1, 0, true, &data[..8]), &mut stats);
        d.push(Timestamp(0), &v6(1, 8, false, &data[8..]), &mut stats);
        assert_eq!(d.pending(), 2);
        d.flush(&mut stats);
        assert_eq!(d.pending(), 0);
        assert_eq!(
            (stats.fragments, stats.timed_out, stats.dropped_bytes),
            (2, 2, 16)
        );
    }

    #[test]
    fn new_clears_reused_storage() {
        let data = payload(16);
        let mut st = Storage::new(1, 32);
        let mut stats = FragStats::default();
        st.defrag()
            .push(Timestamp(0), &v4(1, 0, true, &data[..8]), &mut stats);
        let d = st.defrag();
        assert_eq!(d.pending(), 0);
        // No slots at all: every fragment is refused, nothing panics.
        let mut none: [FragSlot; 0] = [];
        let mut arena = [0u8; 16];
        let mut d = Defragmenter::new(&mut none, &mut arena, TIMEOUT);
        assert!(d
            .push(Timestamp(0), &v4(1, 0, true, &data[..8]), &mut stats)
            .is_none());
        assert_eq!(stats.no_slot, 1);
    }

    /// Raw IPv4 fragment bytes.
    fn ipv4_fragment(ident: u16, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        v.extend_from_slice(&ident.to_be_bytes());
        v.extend_from_slice(&((offset / 8) as u16 | if more { 0x2000 } else { 0 }).to_be_bytes());
        v.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(chunk);
        v
    }

    /// Raw IPv6 fragment bytes (no extension headers before the fragment header).
    fn ipv6_fragment(ident: u32, next: u8, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[44, 64]);
        v.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(&[next, 0]);
        v.extend_from_slice(&(offset as u16 | u16::from(more)).to_be_bytes());
        v.extend_from_slice(&ident.to_be_bytes());
        v.extend_from_slice(chunk);
        v
    }

    fn tcp_segment(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 2, 0, 0, 0, 0, 0,
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decoded_frames_reassemble_to_tcp() {
        let body = payload(3000);
        let seg = tcp_segment(&body);
        let mut st = Storage::new(4, 4096);
        let mut d = st.defrag();
        let mut stats = FragStats::default();
        let frames: Vec<Vec<u8>> = split(seg.len(), &[1480])
            .into_iter()
            .rev()
            .map(|(s, e, more)| ipv4_fragment(0xbeef, s, more, &seg[s..e]))
            .collect();
        let mut out = None;
        for f in &frames {
            let p = decode_ip(LinkType::RAW, f).unwrap();
            assert!(p.fragment.is_some());
            if let Some((proto, bytes)) = d.push(Timestamp(0), &p, &mut stats) {
                out = Some((proto, bytes.to_vec()));
            }
        }
        let (proto, bytes) = out.unwrap();
        assert_eq!(proto, 6);
        let t = decode_tcp(&bytes, bytes.len() as u32).unwrap();
        assert_eq!(t.payload, &body[..]);

        // IPv6 whose fragmentable part starts with destination options.
        let mut fragmentable = vec![6, 0, 1, 4, 0, 0, 0, 0];
        fragmentable.extend_from_slice(&seg);
        let mut out = None;
        for (s, e, more) in split(fragmentable.len(), &[1232]) {
            let f = ipv6_fragment(77, 60, s, more, &fragmentable[s..e]);
            let p = decode_ip(LinkType::IPV6, &f).unwrap();
            if let Some((proto, bytes)) = d.push(Timestamp(0), &p, &mut stats) {
                out = Some((proto, bytes.to_vec()));
            }
        }
        let (proto, bytes) = out.unwrap();
        assert_eq!(skip_ipv6_extensions(proto, &bytes), Ok((6, 8)));
        let t = decode_tcp(&bytes[8..], (bytes.len() - 8) as u32).unwrap();
        assert_eq!(t.payload, &body[..]);
        assert_eq!(stats.reassembled, 2);
    }

    proptest! {
        /// Any fragment sizes (multiples of 8), any order, optional duplicates: the datagram
        /// comes back whole, exactly once, at the push that completes it.
        #[test]
        fn any_order_reassembles(
            ipv6 in any::<bool>(),
            len in 1usize..3000,
            units in prop::collection::vec(1usize..64, 1..8),
            seed in prop::collection::vec(any::<prop::sample::Index>(), 64),
            dups in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let data = payload(len);
            let sizes: Vec<usize> = units.iter().map(|u| u * 8).collect();
            let mut frags = split(len, &sizes);
            // At most 2 * MAX_RANGES pieces, so that what is held never needs more than
            // MAX_RANGES ranges: the last piece takes the rest.
            if frags.len() > 2 * MAX_RANGES {
                frags.truncate(2 * MAX_RANGES - 1);
                let start = frags.last().map_or(0, |f| f.1);
                frags.push((start, len, false));
            }
            // Fisher-Yates with the drawn indices.
            let mut order: Vec<usize> = (0..frags.len()).collect();
            for i in (1..order.len()).rev() {
                let j = seed[i % seed.len()].index(i + 1);
                order.swap(i, j);
            }
            for dup in &dups {
                let k = dup.index(order.len() + 1);
                let which = order[dup.index(order.len())];
                order.insert(k, which);
            }
            // The datagram completes at the first push after which every piece was seen;
            // copies after that would start a new datagram (tested elsewhere).
            let mut seen = vec![false; frags.len()];
            let complete_at = order
                .iter()
                .position(|&i| {
                    seen[i] = true;
                    seen.iter().all(|&s| s)
                })
                .unwrap();
            order.truncate(complete_at + 1);
            let mut st = Storage::new(2, 4096);
            let mut d = st.defrag();
            let mut stats = FragStats::default();
            let done = run(&mut d, ipv6, &data, &frags, &order, &mut stats);
            prop_assert_eq!(done, vec![(complete_at, 6, data.clone())]);
            prop_assert_eq!(d.pending(), 0);
            prop_assert_eq!(stats.reassembled, 1);
            prop_assert_eq!(stats.conflict_bytes, 0);
            let pushed: usize = order.iter().map(|&i| frags[i].1 - frags[i].0).sum();
            prop_assert_eq!(stats.overlap_bytes as usize, pushed - len);
        }

        /// Random fragments (any offset, length, flags, order) never panic, and the counters
        /// stay consistent.
        #[test]
        fn random_fragments_never_panic(
            frags in prop::collection::vec((0u32..300, 0usize..200, any::<bool>(), 0u32..3, 0u64..100), 0..60),
        ) {
            let data = payload(200);
            let mut slots = [FragSlot::EMPTY; 3];
            let mut arena = [0u8; 3 * 256];
            let mut d = Defragmenter::new(&mut slots, &mut arena, 40);
            let mut stats = FragStats::default();
            for (off, len, more, ident, t) in frags {
                let p = v4(ident, off * 8, more, &data[..len]);
                if let Some((_, bytes)) = d.push(Timestamp(t), &p, &mut stats) {
                    prop_assert!(bytes.len() <= 256);
                }
                prop_assert!(d.pending() <= 3);
            }
            d.flush(&mut stats);
            prop_assert_eq!(d.pending(), 0);
        }
    }
}
