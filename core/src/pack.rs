//! A flow's whole state in a few dozen bytes, for flows that wait between packets.
//!
//! The table keeps every connection in a small record and only the recently active ones in
//! hot slots (see [`crate::table`]). A record holds its flow packed: fields at their default
//! are left out (a presence bit each), the rest are LEB128 varints, and most are stored as the
//! difference from what the other fields predict (bytes seen minus stream length, the ISN
//! from the sequence number and the stream length, the acknowledgement from the stream
//! position), which is zero for a clean connection. A clean IPv4 flow with MAC addresses
//! packs into about 60 bytes against 400 unpacked.
//!
//! Packing is exact: `unpack(pack(x)) == x` for every state (tested with random states).
//! Packed bytes are only ever written by `pack`; reading garbage cannot panic, it gives some
//! state.

use crate::decode::{Addr, Vlans};
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::pool::NIL;
use crate::seq::SeqNum;
use crate::stream::{Half, Mode, GAPS_KEPT, NO_FIN};
use crate::time::Timestamp;

/// Fields that may be left out, each with a presence bit. The bitmap is a varint, so the
/// fields a clean connection has come first (one byte of bitmap for them).
const LAST_TS: usize = 0;
const CONN_INDEX: usize = 11;
/// Per direction: [`POS`] gives their bits.
const DIR_FIELDS: usize = 20 + 2 * (GAPS_KEPT - 1);
const PACKETS: usize = 0;
const PAYLOAD: usize = 1;
const STREAM_LEN: usize = 2;
const OOO: usize = 3;
const GAPS: usize = 4;
const GAP_BYTES: usize = 5;
const RETRANS: usize = 6;
const CONFLICT: usize = 7;
const NEXT_SEQ: usize = 8;
const ISN: usize = 9;
const NEXT: usize = 10;
const ORIGIN: usize = 11;
const FIN_OFF: usize = 12;
const ACKED: usize = 13;
const GAP_LO: usize = 14;
const GAP_LEN: usize = 15;
const HEAD: usize = 16;
const TAIL: usize = 17;
const BLOCKS: usize = 18;
const HELD: usize = 19;
/// The remembered gaps after the first: start and length of each.
const MORE_GAPS: usize = 20;
const FIELDS: usize = 2 + 2 * DIR_FIELDS;

/// Bit of each direction's fields: packets, sequence number and stream length of both
/// directions first, then the acknowledgements, the bytes seen, the connection index, the
/// FINs' offsets (a connection waits packed between its two FINs), and the fields only an
/// impaired or unusual connection sets.
const POS: [[usize; DIR_FIELDS]; 2] = pos_table();

const fn pos_table() -> [[usize; DIR_FIELDS]; 2] {
    let mut t = [[0; DIR_FIELDS]; 2];
    let mut d = 0;
    while d < 2 {
        t[d][PACKETS] = 1 + 3 * d;
        t[d][NEXT_SEQ] = 2 + 3 * d;
        t[d][NEXT] = 3 + 3 * d;
        t[d][ACKED] = 7 + d;
        t[d][PAYLOAD] = 9 + d;
        t[d][FIN_OFF] = 12 + d;
        // LAST_TS is 0 and CONN_INDEX 11; the rest from 14, direction by direction.
        let mut next = 14 + d * (DIR_FIELDS - 6);
        let mut f = 0;
        while f < DIR_FIELDS {
            if f != PACKETS
                && f != NEXT_SEQ
                && f != NEXT
                && f != ACKED
                && f != PAYLOAD
                && f != FIN_OFF
            {
                t[d][f] = next;
                next += 1;
            }
            f += 1;
        }
        d += 1;
    }
    t
}

/// The fields a direction with nothing unusual sets (see `plain` in [`pack`]).
const PLAIN_FIELDS: [usize; 6] = [PACKETS, PAYLOAD, NEXT_SEQ, NEXT, ACKED, FIN_OFF];

/// The bits a flow with nothing unusual may set: its plain fields, the last timestamp and the
/// connection index, which come first.
const PLAIN_BITS: u64 = plain_bits();

const fn plain_bits() -> u64 {
    let mut b = 1 << LAST_TS | 1 << CONN_INDEX;
    let mut d = 0;
    while d < 2 {
        let mut f = 0;
        while f < PLAIN_FIELDS.len() {
            b |= 1 << POS[d][PLAIN_FIELDS[f]];
            f += 1;
        }
        d += 1;
    }
    b
}

// They fit the bitmap's first two varint bytes.
const _: () = assert!(PLAIN_BITS >> 14 == 0);

/// The bits of the sequence numbers (stored in four bytes, not as varints).
const SEQ_BITS: u64 = 1 << POS[0][NEXT_SEQ] | 1 << POS[1][NEXT_SEQ];

fn is_seq(i: usize) -> bool {
    SEQ_BITS >> i & 1 != 0
}

/// Key byte flags.
const K_V6: u8 = 1;
const K_MACS: u8 = 1 << 3;
/// The MAC addresses are a [`MacPairs`] entry: one byte of index.
const K_MAC_REF: u8 = 1 << 4;
const K_VLANS_SHIFT: u32 = 1;

/// Pairs of MAC addresses kept once for all packed flows: a capture on a link between two
/// routers has one or two, and each flow then packs one byte instead of twelve.
/// Append-only (first come), so an index stays valid for the table's life.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MacPairs {
    pairs: [[[u8; 6]; 2]; MAC_PAIRS],
    len: u8,
}

const MAC_PAIRS: usize = 16;

impl MacPairs {
    pub(crate) const EMPTY: MacPairs = MacPairs {
        pairs: [[[0; 6]; 2]; MAC_PAIRS],
        len: 0,
    };

    /// The index of `m`, added if there is room.
    fn index_of(&mut self, m: &[[u8; 6]; 2]) -> Option<u8> {
        let n = self.len as usize;
        if let Some(i) = self.pairs[..n].iter().position(|p| p == m) {
            return Some(i as u8);
        }
        if n < MAC_PAIRS {
            self.pairs[n] = *m;
            self.len += 1;
            return Some(n as u8);
        }
        None
    }

    fn get(&self, i: u8) -> Option<[[u8; 6]; 2]> {
        self.pairs[..self.len as usize].get(i as usize).copied()
    }
}

fn zigzag(v: u64) -> u64 {
    let s = v as i64;
    ((s << 1) ^ (s >> 63)) as u64
}

fn unzigzag(v: u64) -> u64 {
    ((v >> 1) as i64 ^ -((v & 1) as i64)) as u64
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Option<()> {
        let end = self.len.checked_add(b.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(b);
        self.len = end;
        Some(())
    }

    fn varint(&mut self, mut v: u64) -> Option<()> {
        loop {
            let byte = self.out.get_mut(self.len)?;
            self.len += 1;
            if v < 0x80 {
                *byte = v as u8;
                return Some(());
            }
            *byte = v as u8 | 0x80;
            v >>= 7;
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        if let Some(src) = self.buf.get(self.pos..self.pos + N) {
            b.copy_from_slice(src);
        }
        self.pos += N;
        b
    }

    fn byte(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        // Ends at the buffer's end or the tenth byte, whatever garbage says.
        while let Some(&b) = self.buf.get(self.pos) {
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 || shift >= 63 {
                break;
            }
            shift += 7;
        }
        v
    }
}

fn write_addr(w: &mut Writer<'_>, a: Addr) -> Option<()> {
    match a {
        Addr::V4(b) => w.bytes(&b),
        Addr::V6(b) => w.bytes(&b),
    }
}

/// The key at the start of packed bytes, and where the rest begins.
fn read_key(r: &mut Reader<'_>) -> (FlowKey, u8) {
    let k = r.byte();
    let addr = |r: &mut Reader<'_>| {
        if k & K_V6 != 0 {
            Addr::V6(r.bytes())
        } else {
            Addr::V4(r.bytes())
        }
    };
    let a = addr(r);
    let b = addr(r);
    let pa = u16::from_le_bytes(r.bytes());
    let pb = u16::from_le_bytes(r.bytes());
    let mut vlans = Vlans::NONE;
    for _ in 0..(k >> K_VLANS_SHIFT) & 3 {
        vlans.push(u16::from_le_bytes(r.bytes()));
    }
    (
        FlowKey {
            addr: [a, b],
            port: [pa, pb],
            vlans,
        },
        k,
    )
}

/// The flow key of packed bytes.
#[cfg(test)]
fn key(packed: &[u8]) -> FlowKey {
    read_key(&mut Reader {
        buf: packed,
        pos: 0,
    })
    .0
}

/// Which direction a packet from `src:sport` to `dst:dport` with `vlans` travels in the flow
/// packed in `packed`, if it is that flow's: [`key`] and a compare, on the packed bytes (a
/// lookup of a packed flow does this for every packet, and most keys are IPv4).
pub(crate) fn key_direction(
    packed: &[u8],
    src: Addr,
    sport: u16,
    dst: Addr,
    dport: u16,
    vlans: &Vlans,
) -> Option<Dir> {
    let (&k, rest) = packed.split_first()?;
    let vl = vlans.as_slice();
    let alen = match src {
        Addr::V4(_) => 4,
        Addr::V6(_) => 16,
    };
    if (k & K_V6 != 0) != (alen == 16) || usize::from(k >> K_VLANS_SHIFT & 3) != vl.len() {
        return None;
    }
    let b = rest.get(..2 * alen + 4 + 2 * vl.len())?;
    let (a0, b) = b.split_at(alen);
    let (a1, b) = b.split_at(alen);
    let (ports, ids) = b.split_at(4);
    if !ids
        .chunks_exact(2)
        .zip(vl)
        .all(|(c, &id)| c == id.to_le_bytes())
    {
        return None;
    }
    let p0 = u16::from_le_bytes([ports[0], ports[1]]);
    let p1 = u16::from_le_bytes([ports[2], ports[3]]);
    let is = |bytes: &[u8], a: Addr| match a {
        Addr::V4(x) => bytes == x,
        Addr::V6(x) => bytes == x,
    };
    if p0 == sport && p1 == dport && is(a0, src) && is(a1, dst) {
        Some(Dir::AtoB)
    } else if p0 == dport && p1 == sport && is(a0, dst) && is(a1, src) {
        Some(Dir::BtoA)
    } else {
        None
    }
}

fn mode_bits(m: Mode) -> u8 {
    match m {
        Mode::Unset => 0,
        Mode::Provisional => 1,
        Mode::Open => 2,
    }
}

fn mode_of(bits: u8) -> Mode {
    match bits & 3 {
        1 => Mode::Provisional,
        2 => Mode::Open,
        _ => Mode::Unset,
    }
}

/// Fields of remembered gap `k`: its start and its length.
fn gap_fields(k: usize) -> (usize, usize) {
    if k == 0 {
        (GAP_LO, GAP_LEN)
    } else {
        (MORE_GAPS + 2 * (k - 1), MORE_GAPS + 2 * (k - 1) + 1)
    }
}

/// The ISN a direction's sequence number and length predict: the SYN takes one number; a
/// direction never seen (all zero) predicts its own zero ISN, so it packs as plain.
fn isn_guess(next_seq: SeqNum, has_syn: bool, len: u64) -> u32 {
    next_seq
        .0
        .wrapping_sub(u32::from(has_syn))
        .wrapping_sub(len as u32)
}

/// Packs a flow into `out`; returns the bytes used, or None when it does not fit.
///
/// Every struct packed is destructured whole (and [`unpack`] builds each whole), so a field
/// added to one of them does not compile until it is packed or said to be left out.
pub(crate) fn pack(
    info: &FlowInfo,
    half: &[Half; 2],
    macs: &mut MacPairs,
    out: &mut [u8],
) -> Option<usize> {
    let FlowInfo {
        // The record's index: where the flow is packed, not part of it.
        slot: _,
        key,
        conn_index,
        first_ts,
        last_ts,
        macs: flow_macs,
        dirs,
    } = info;
    let FlowKey { addr, port, vlans } = key;
    let mut w = Writer { out, len: 0 };
    let v6 = matches!(addr[0], Addr::V6(_));
    // Both addresses of a key share a family (a packet has one IP header).
    if v6 != matches!(addr[1], Addr::V6(_)) {
        return None;
    }
    let vl = vlans.as_slice();
    let mut k = (vl.len() as u8) << K_VLANS_SHIFT;
    if v6 {
        k |= K_V6;
    }
    let mac_ref = flow_macs.and_then(|m| macs.index_of(&m));
    if mac_ref.is_some() {
        k |= K_MAC_REF;
    } else if flow_macs.is_some() {
        k |= K_MACS;
    }
    w.bytes(&[k])?;
    write_addr(&mut w, addr[0])?;
    write_addr(&mut w, addr[1])?;
    w.bytes(&port[0].to_le_bytes())?;
    w.bytes(&port[1].to_le_bytes())?;
    for id in vl {
        w.bytes(&id.to_le_bytes())?;
    }
    match (mac_ref, flow_macs) {
        (Some(i), _) => w.bytes(&[i])?,
        (None, Some(m)) => {
            w.bytes(&m[0])?;
            w.bytes(&m[1])?;
        }
        (None, None) => {}
    }
    w.bytes(&first_ts.0.to_le_bytes())?;
    let mut flags = 0u8;
    let mut modes = 0u8;
    let mut vals = [0u64; FIELDS];
    vals[CONN_INDEX] = u64::from(*conn_index);
    vals[LAST_TS] = last_ts.0.wrapping_sub(first_ts.0);
    let mut present =
        u64::from(vals[CONN_INDEX] != 0) << CONN_INDEX | u64::from(vals[LAST_TS] != 0) << LAST_TS;
    for d in 0..2 {
        let DirInfo {
            packets,
            payload_bytes,
            stream_len,
            ooo_segments,
            gaps,
            gap_bytes,
            retransmitted_bytes,
            conflict_bytes,
            syn,
            fin,
            rst,
        } = dirs[d];
        let Half {
            mode,
            next_seq,
            next,
            origin,
            isn,
            has_syn,
            fin_off,
            acked,
            peer_acked,
            gap_lo,
            gap_hi,
            head,
            tail,
            blocks,
            held,
        } = half[d];
        flags |= (u8::from(syn) | u8::from(fin) << 1 | u8::from(rst) << 2) << (3 * d);
        flags |= u8::from(has_syn) << (6 + d);
        modes |= (mode_bits(mode) | u8::from(peer_acked) << 2) << (3 * d);
        modes |= u8::from(fin_off != NO_FIN) << (6 + d);
        let len = next.wrapping_sub(origin);
        let isn_guess = isn_guess(next_seq, has_syn, len);
        let payload = zigzag(payload_bytes.wrapping_sub(stream_len));
        let acked = zigzag(acked.wrapping_sub(next));
        // Whether there is one is a flag bit.
        let fin = if fin_off == NO_FIN {
            0
        } else {
            fin_off.wrapping_sub(origin)
        };
        // A direction with nothing unusual (the common case) sets only the leading fields.
        let plain = (stream_len ^ len)
            | ooo_segments
            | gaps
            | gap_bytes
            | retransmitted_bytes
            | conflict_bytes
            | u64::from(isn.0 ^ isn_guess)
            | origin
            | gap_lo.iter().chain(&gap_hi).fold(0, |a, &x| a | x)
            | u64::from(head ^ NIL)
            | u64::from(tail ^ NIL)
            | u64::from(blocks)
            | u64::from(held)
            == 0;
        if plain {
            for (f, x) in [
                (PACKETS, packets),
                (PAYLOAD, payload),
                (NEXT_SEQ, u64::from(next_seq.0)),
                (NEXT, len),
                (ACKED, acked),
                (FIN_OFF, fin),
            ] {
                let p = POS[d][f];
                vals[p] = x;
                present |= u64::from(x != 0) << p;
            }
            continue;
        }
        let mut v = [0u64; DIR_FIELDS];
        v[PACKETS] = packets;
        v[PAYLOAD] = payload;
        v[STREAM_LEN] = stream_len ^ len;
        v[OOO] = ooo_segments;
        v[GAPS] = gaps;
        v[GAP_BYTES] = gap_bytes;
        v[RETRANS] = retransmitted_bytes;
        v[CONFLICT] = conflict_bytes;
        v[NEXT_SEQ] = u64::from(next_seq.0);
        v[ISN] = u64::from(isn.0 ^ isn_guess);
        v[NEXT] = len;
        v[ORIGIN] = origin;
        v[FIN_OFF] = fin;
        v[ACKED] = acked;
        for k in 0..GAPS_KEPT {
            let (lo, len) = gap_fields(k);
            v[lo] = gap_lo[k];
            v[len] = gap_hi[k].wrapping_sub(gap_lo[k]);
        }
        v[HEAD] = u64::from(head ^ NIL);
        v[TAIL] = u64::from(tail ^ NIL);
        v[BLOCKS] = u64::from(blocks);
        v[HELD] = u64::from(held);
        for (&x, &p) in v.iter().zip(&POS[d]) {
            vals[p] = x;
            present |= u64::from(x != 0) << p;
        }
    }
    w.bytes(&[flags, modes])?;
    w.varint(present)?;
    let mut bits = present;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let v = vals[i];
        if is_seq(i) {
            // A sequence number is as good as random: four bytes beat a varint's five.
            w.bytes(&(v as u32).to_le_bytes())?;
        } else {
            w.varint(v)?;
        }
    }
    Some(w.len)
}

/// Unpacks what [`pack`] wrote into `info` (all but `info.slot`, which is kept) and `half`.
pub(crate) fn unpack(packed: &[u8], macs: &MacPairs, info: &mut FlowInfo, half: &mut [Half; 2]) {
    let mut r = Reader {
        buf: packed,
        pos: 0,
    };
    let (key, k) = read_key(&mut r);
    let flow_macs = if k & K_MAC_REF != 0 {
        macs.get(r.byte())
    } else if k & K_MACS != 0 {
        Some([r.bytes(), r.bytes()])
    } else {
        None
    };
    let first_ts = Timestamp(u64::from_le_bytes(r.bytes()));
    let [flags, modes] = r.bytes::<2>();
    let present = r.varint();
    let mut vals = [0u64; FIELDS];
    // Bits past the fields are garbage: ignored.
    let mut bits = present & ((1 << FIELDS) - 1);
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        vals[i] = if is_seq(i) {
            u64::from(u32::from_le_bytes(r.bytes()))
        } else {
            r.varint()
        };
    }
    // A flow with nothing unusual (the common case) has only the plain fields: they are
    // picked out directly rather than gathered field by field.
    let plain = present & !PLAIN_BITS == 0;
    let mut dirs = [DirInfo::EMPTY; 2];
    for d in 0..2 {
        let mut v = [0u64; DIR_FIELDS];
        if plain {
            for f in PLAIN_FIELDS {
                v[f] = vals[POS[d][f]];
            }
        } else {
            for (f, x) in v.iter_mut().enumerate() {
                *x = vals[POS[d][f]];
            }
        }
        let f = flags >> (3 * d);
        let m = modes >> (3 * d);
        let origin = v[ORIGIN];
        let len = v[NEXT];
        let next = origin.wrapping_add(len);
        let next_seq = SeqNum(v[NEXT_SEQ] as u32);
        let isn_guess = isn_guess(next_seq, flags >> (6 + d) & 1 != 0, len);
        let stream_len = v[STREAM_LEN] ^ len;
        dirs[d] = DirInfo {
            packets: v[PACKETS],
            payload_bytes: stream_len.wrapping_add(unzigzag(v[PAYLOAD])),
            stream_len,
            ooo_segments: v[OOO],
            gaps: v[GAPS],
            gap_bytes: v[GAP_BYTES],
            retransmitted_bytes: v[RETRANS],
            conflict_bytes: v[CONFLICT],
            syn: f & 1 != 0,
            fin: f & 2 != 0,
            rst: f & 4 != 0,
        };
        let (mut gap_lo, mut gap_hi) = ([0u64; GAPS_KEPT], [0u64; GAPS_KEPT]);
        for k in 0..GAPS_KEPT {
            let (lo, len) = gap_fields(k);
            gap_lo[k] = v[lo];
            gap_hi[k] = v[lo].wrapping_add(v[len]);
        }
        half[d] = Half {
            mode: mode_of(m),
            next_seq,
            next,
            origin,
            isn: SeqNum(v[ISN] as u32 ^ isn_guess),
            has_syn: flags >> (6 + d) & 1 != 0,
            fin_off: if modes >> (6 + d) & 1 != 0 {
                v[FIN_OFF].wrapping_add(origin)
            } else {
                NO_FIN
            },
            acked: next.wrapping_add(unzigzag(v[ACKED])),
            peer_acked: m & 4 != 0,
            gap_lo,
            gap_hi,
            head: v[HEAD] as u32 ^ NIL,
            tail: v[TAIL] as u32 ^ NIL,
            blocks: v[BLOCKS] as u32,
            held: v[HELD] as u32,
        };
    }
    *info = FlowInfo {
        slot: info.slot,
        key,
        conn_index: vals[CONN_INDEX] as u32,
        first_ts,
        last_ts: Timestamp(first_ts.0.wrapping_add(vals[LAST_TS])),
        macs: flow_macs,
        dirs,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(v6: bool, seed: u64) -> Addr {
        if v6 {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&seed.to_le_bytes());
            b[8..].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
            Addr::V6(b)
        } else {
            Addr::V4((seed as u32).to_le_bytes())
        }
    }

    /// A value that is often a default, often small and sometimes anything.
    fn num() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), 0u64..300, 0u64..(1 << 40), any::<u64>()]
    }

    fn half() -> impl Strategy<Value = Half> {
        (
            (
                0u8..3,
                any::<u32>(),
                num(),
                num(),
                any::<u32>(),
                any::<bool>(),
            ),
            (
                prop_oneof![Just(NO_FIN), num()],
                num(),
                any::<bool>(),
                num(),
                num(),
            ),
            (
                prop_oneof![Just(NIL), any::<u32>()],
                prop_oneof![Just(NIL), any::<u32>()],
                num(),
                num(),
            ),
        )
            .prop_map(
                |(
                    (mode, next_seq, next, origin, isn, has_syn),
                    (fin_off, acked, peer_acked, gap_lo, gap_hi),
                    (head, tail, blocks, held),
                )| Half {
                    mode: mode_of(mode),
                    next_seq: SeqNum(next_seq),
                    next,
                    origin,
                    isn: SeqNum(isn),
                    has_syn,
                    fin_off,
                    acked,
                    peer_acked,
                    gap_lo: [gap_lo, gap_hi, gap_hi ^ 3, 0],
                    gap_hi: [gap_hi, gap_lo, gap_lo.wrapping_mul(7), 0],
                    head,
                    tail,
                    blocks: blocks as u32,
                    held: held as u32,
                },
            )
    }

    fn dir_info() -> impl Strategy<Value = DirInfo> {
        (
            (num(), num(), num(), num()),
            (num(), num(), num(), num()),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(|((p, pb, sl, o), (g, gb, r, c), (syn, fin, rst))| DirInfo {
                packets: p,
                payload_bytes: pb,
                stream_len: sl,
                ooo_segments: o,
                gaps: g,
                gap_bytes: gb,
                retransmitted_bytes: r,
                conflict_bytes: c,
                syn,
                fin,
                rst,
            })
    }

    fn info() -> impl Strategy<Value = FlowInfo> {
        (
            (
                any::<bool>(),
                any::<u64>(),
                any::<u64>(),
                any::<[u16; 2]>(),
                0usize..4,
            ),
            (
                num(),
                any::<u64>(),
                num(),
                proptest::option::of(any::<[[u8; 6]; 2]>()),
            ),
            (dir_info(), dir_info()),
        )
            .prop_map(
                |((v6, a, b, port, nv), (conn, first, span, macs), (d0, d1))| {
                    let mut vlans = Vlans::NONE;
                    for i in 0..nv {
                        vlans.push((a as u16).wrapping_add(i as u16));
                    }
                    FlowInfo {
                        slot: 0,
                        key: FlowKey {
                            addr: [addr(v6, a), addr(v6, b)],
                            port,
                            vlans,
                        },
                        conn_index: conn as u32,
                        first_ts: Timestamp(first),
                        last_ts: Timestamp(first.wrapping_add(span)),
                        macs,
                        dirs: [d0, d1],
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn unpack_gives_back_what_was_packed(info in info(), h0 in half(), h1 in half()) {
            let half = [h0, h1];
            let mut buf = [0u8; 512];
            // A dictionary with room, and one full of other pairs.
            let mut full = MacPairs::EMPTY;
            for i in 0..MAC_PAIRS {
                full.index_of(&[[i as u8; 6], [0xee; 6]]);
            }
            for mut macs in [MacPairs::EMPTY, full] {
            let n = pack(&info, &half, &mut macs, &mut buf).expect("512 bytes hold any flow");
            let mut got = FlowInfo { slot: 0, ..crate::table::HotSlot::EMPTY.info };
            let mut got_half = [Half::EMPTY; 2];
            unpack(&buf[..n], &macs, &mut got, &mut got_half);
            prop_assert_eq!(got, info);
            prop_assert_eq!(got_half, half);
            prop_assert_eq!(key(&buf[..n]), info.key);
            // The compare on packed bytes agrees with the one on the key, both ways, and
            // refuses a packet of another flow.
            let k = info.key;
            let dir = |src, sport, dst, dport, vlans: &Vlans| {
                key_direction(&buf[..n], src, sport, dst, dport, vlans)
            };
            let same_family = matches!((k.addr[0], k.addr[1]), (Addr::V4(_), Addr::V4(_)) | (Addr::V6(_), Addr::V6(_)));
            if same_family && k.addr[0] != k.addr[1] {
                prop_assert_eq!(dir(k.addr[0], k.port[0], k.addr[1], k.port[1], &k.vlans), Some(Dir::AtoB));
                prop_assert_eq!(dir(k.addr[1], k.port[1], k.addr[0], k.port[0], &k.vlans), Some(Dir::BtoA));
                prop_assert_eq!(dir(k.addr[0], k.port[0].wrapping_add(1), k.addr[1], k.port[1], &k.vlans), None);
                let mut other = k.vlans;
                if !other.push(1) {
                    other = Vlans::NONE;
                }
                prop_assert_eq!(dir(k.addr[0], k.port[0], k.addr[1], k.port[1], &other), None);
                let v4 = Addr::V4([1, 2, 3, 4]);
                prop_assert_eq!(dir(v4, k.port[0], v4, k.port[1], &k.vlans), None);
            }
            // Too small a buffer is refused, never overrun.
            prop_assert!(pack(&info, &half, &mut macs, &mut buf[..n - 1]).is_none());
            }
        }

        #[test]
        fn garbage_unpacks_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut got = crate::table::HotSlot::EMPTY.info;
            let mut half = [Half::EMPTY; 2];
            unpack(&bytes, &MacPairs::EMPTY, &mut got, &mut half);
            let _ = key(&bytes);
        }
    }

    /// An IPv4 connection with nothing unusual: handshake seen, `lens` bytes each way, all of
    /// them acknowledged.
    fn clean_flow(lens: [u64; 2]) -> (FlowInfo, [Half; 2]) {
        let mut info = crate::table::HotSlot::EMPTY.info;
        info.key.addr = [Addr::V4([10, 0, 0, 1]), Addr::V4([10, 0, 0, 2])];
        info.key.port = [40000, 80];
        info.first_ts = Timestamp(1_700_000_000_123_456_789);
        info.last_ts = Timestamp(info.first_ts.0 + 250_000_000);
        let mut half = [Half::EMPTY; 2];
        for (d, h) in half.iter_mut().enumerate() {
            let len = lens[d];
            h.mode = Mode::Open;
            h.has_syn = true;
            h.isn = SeqNum(0x9abc_def0 ^ d as u32);
            h.next = len;
            h.next_seq = h.isn.wrapping_add(1 + len as u32);
            h.acked = len;
            h.peer_acked = true;
            info.dirs[d].packets = 4 + d as u64 * 6;
            info.dirs[d].payload_bytes = len;
            info.dirs[d].stream_len = len;
            info.dirs[d].syn = true;
        }
        (info, half)
    }

    /// What a clean connection costs: the figure the module docs and the record size rely on.
    #[test]
    fn a_clean_flow_packs_small() {
        let (mut info, half) = clean_flow([1_200, 9_000]);
        info.macs = Some([[2; 6], [4; 6]]);
        let mut buf = [0u8; 512];
        let mut macs = MacPairs::EMPTY;
        let n = pack(&info, &half, &mut macs, &mut buf).unwrap();
        std::println!("clean IPv4 flow: {n} bytes");
        assert!(n <= 45, "{n} bytes");
        let mut v6 = info;
        v6.key.addr = [addr(true, 1), addr(true, 2)];
        let n6 = pack(&v6, &half, &mut macs, &mut buf).unwrap();
        std::println!("clean IPv6 flow: {n6} bytes");
        assert!(n6 <= 69, "{n6} bytes");
    }

    /// A connection waits packed between its two FINs (every close of a capture of many
    /// connections): the FIN's offset is one of the plain fields, so the flow packs as small
    /// as a clean one and unpacks whole.
    #[test]
    fn a_clean_flow_between_its_fins_packs_plain() {
        let (mut info, half) = clean_flow([100, 1_900]);
        // A second connection on the 4-tuple: bit 11 set, two bytes of bitmap already.
        info.conn_index = 1;
        let mut buf = [0u8; 512];
        let mut macs = MacPairs::EMPTY;
        let open = pack(&info, &half, &mut macs, &mut buf).unwrap();
        // The client's FIN after its 100 bytes (a one-byte varint); then a FIN with no data
        // before it, at offset 0 (no value, only its flag).
        for (fin_off, extra) in [(100u64, 1), (0, 0)] {
            let mut closing = half;
            closing[0].fin_off = fin_off;
            let mut fin = info;
            fin.dirs[0].fin = true;
            let n = pack(&fin, &closing, &mut macs, &mut buf).unwrap();
            // The same two bytes of bitmap: a bit past the first 14 would need a third.
            assert_eq!(n, open + extra, "FIN at {fin_off}");
            let mut got_info = crate::table::HotSlot::EMPTY.info;
            let mut got_half = [Half::EMPTY; 2];
            unpack(&buf[..n], &macs, &mut got_info, &mut got_half);
            assert_eq!(got_info, fin);
            assert_eq!(got_half, closing);
        }
    }

    #[test]
    fn each_field_has_its_own_bit() {
        let mut seen = [false; FIELDS];
        seen[LAST_TS] = true;
        seen[CONN_INDEX] = true;
        for d in 0..2 {
            for f in 0..DIR_FIELDS {
                assert!(!seen[POS[d][f]], "bit {} twice", POS[d][f]);
                seen[POS[d][f]] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
