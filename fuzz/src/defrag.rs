//! `defrag`: a sequence of fragments built from the input, pushed into a `Defragmenter` with
//! two slots and a small arena, checked against a model.
//!
//! Input: one byte for the arena size, then fragments of 6 bytes each (see [`Frag`]), each
//! followed by its data when it carries input bytes.
//!
//! Checks, beyond "no panic":
//! - a completed datagram is no longer than a slot's share and, when every fragment of it
//!   carried the consistent bytes `consistent(key, offset)`, is exactly those bytes (no byte
//!   from another datagram, another offset or an earlier use of the slot);
//! - while nothing was dropped (no timeout, no full table, nothing too big), a model of
//!   "first copy wins" predicts the bytes, the protocol, when the datagram completes, and
//!   the overlap and conflict counters exactly;
//! - at most two datagrams are pending, and `flush` leaves none.

use std::collections::HashMap;

use tcpflow_core::decode::{Fragment, IpPacket};
use tcpflow_core::defrag::{Defragmenter, FragSlot};
use tcpflow_core::stats::FragStats;
use tcpflow_core::{Addr, Timestamp, Vlans};

use crate::Input;

pub const SLOTS: usize = 2;
const TIMEOUT_NS: u64 = 1_000_000_000;
const TICK_NS: u64 = 50_000_000;

/// What identifies a datagram to the defragmenter (its key), as the harness builds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySel {
    pub src: u8,
    pub v6: bool,
    pub ident: u32,
    /// IPv4: part of the key; IPv6: the next header this fragment claims.
    pub protocol: u8,
    pub vlan: bool,
}

impl KeySel {
    fn from_byte(b: u8) -> Self {
        KeySel {
            src: b & 3,
            v6: b & 4 != 0,
            ident: if b & 8 != 0 { 0x1_0001 } else { 7 },
            protocol: if b & 16 != 0 { 17 } else { 6 },
            vlan: b & 32 != 0,
        }
    }
    pub fn to_byte(self) -> u8 {
        self.src
            | u8::from(self.v6) << 2
            | u8::from(self.ident != 7) << 3
            | u8::from(self.protocol == 17) << 4
            | u8::from(self.vlan) << 5
    }
    /// The part of the key the defragmenter compares (IPv6 ignores the protocol).
    fn model_key(self) -> (u8, bool, u32, u8, bool) {
        let p = if self.v6 { 0 } else { self.protocol };
        (self.src, self.v6, self.ident, p, self.vlan)
    }
    fn addrs(self) -> (Addr, Addr) {
        if self.v6 {
            let mut s = [0u8; 16];
            s[0] = 0xfe;
            s[1] = 0x80;
            s[15] = self.src + 1;
            let mut d = s;
            d[15] = 0x99;
            (Addr::V6(s), Addr::V6(d))
        } else {
            (
                Addr::V4([10, 0, 0, self.src + 1]),
                Addr::V4([10, 0, 0, 0x99]),
            )
        }
    }
}

/// The byte every consistent fragment carries at `offset` of the datagram of key `k`.
pub fn consistent(k: (u8, bool, u32, u8, bool), offset: u32) -> u8 {
    let h = offset
        .wrapping_mul(0x9e37_79b1)
        .wrapping_add(u32::from(k.0) * 31 + u32::from(k.1) * 7 + k.2 + u32::from(k.3));
    (h >> 24) as u8 ^ (offset as u8)
}

/// One fragment as encoded in the input.
#[derive(Clone, Copy, Debug)]
pub struct Frag {
    pub key: KeySel,
    pub more: bool,
    /// Data from the input instead of the consistent bytes.
    pub own_data: bool,
    /// `payload_len` claims `extra` bytes more than are captured.
    pub extra: u8,
    /// Offset in bytes: `units * 8`, or `units` itself when `raw_offset`.
    pub units: u16,
    pub raw_offset: bool,
    /// Data length in 4-byte units.
    pub len4: u8,
    /// Capture time advance in ticks.
    pub dt: u8,
}

impl Frag {
    pub fn offset(&self) -> u32 {
        if self.raw_offset {
            u32::from(self.units)
        } else {
            u32::from(self.units) * 8
        }
    }

    fn read(inp: &mut Input<'_>) -> Option<Frag> {
        let key = KeySel::from_byte(inp.u8()?);
        let flags = inp.u8()?;
        let units = inp.u16()?;
        let len4 = inp.u8()?;
        let dt = inp.u8()?;
        Some(Frag {
            key,
            more: flags & 1 != 0,
            own_data: flags & 2 != 0,
            raw_offset: flags & 4 != 0,
            extra: if flags & 8 != 0 { flags >> 4 } else { 0 },
            units,
            len4,
            dt,
        })
    }

    /// The encoding [`run`] reads (data follows when `own_data`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.key.to_byte());
        let extra = if self.extra > 0 {
            8 | (self.extra.min(15) << 4)
        } else {
            0
        };
        out.push(
            u8::from(self.more)
                | u8::from(self.own_data) << 1
                | u8::from(self.raw_offset) << 2
                | extra,
        );
        out.extend_from_slice(&self.units.to_le_bytes());
        out.push(self.len4);
        out.push(self.dt);
    }
}

/// The model of one datagram: first copy of each byte, total, protocol.
#[derive(Debug)]
struct Model {
    bytes: Held,
    total: Option<u32>,
    protocol: Option<u8>,
    /// A fragment carried bytes other than the consistent ones since the last completion.
    tainted: bool,
    /// Nothing was dropped since this datagram started: the model is exact.
    exact: bool,
}

/// First copies by offset, below the slot size (a datagram reaching past it is dropped, and
/// a drop makes every model inexact, so nothing past it is ever compared).
#[derive(Debug)]
struct Held {
    bytes: Vec<u16>,
    /// A byte past the slot size was offered.
    beyond: bool,
}

impl Held {
    const ABSENT: u16 = 0x100;
    fn new(share: usize) -> Self {
        Held {
            bytes: vec![Self::ABSENT; share],
            beyond: false,
        }
    }
    fn get(&self, off: u32) -> Option<u8> {
        let v = *self.bytes.get(off as usize)?;
        (v != Self::ABSENT).then_some(v as u8)
    }
    fn first(&mut self, off: u32, b: u8) {
        match self.bytes.get_mut(off as usize) {
            Some(v) if *v == Self::ABSENT => *v = u16::from(b),
            Some(_) => {}
            None => self.beyond = true,
        }
    }
    fn contains(&self, off: u32) -> bool {
        self.get(off).is_some()
    }
}

fn drops(s: &FragStats) -> (u64, u64, u64, u64) {
    (s.timed_out, s.no_slot, s.too_big, s.dropped_bytes)
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(size) = inp.u8() else { return };
    // 64 bytes to 16 KiB per slot.
    let share = 64usize << (size % 9);
    let mut slots = vec![FragSlot::EMPTY; SLOTS];
    let mut arena = vec![0xA5u8; SLOTS * share];
    let mut d = Defragmenter::new(&mut slots, &mut arena, TIMEOUT_NS);
    let mut stats = FragStats::default();
    let mut models: HashMap<(u8, bool, u32, u8, bool), Model> = HashMap::new();
    let mut now = 1_000 * TIMEOUT_NS;
    let mut buf = Vec::new();
    let mut pushed = 0u64;
    while let Some(f) = Frag::read(&mut inp) {
        now += u64::from(f.dt) * TICK_NS;
        let key = f.key.model_key();
        let offset = f.offset();
        let len = usize::from(f.len4) * 4;
        buf.clear();
        if f.own_data {
            buf.extend_from_slice(inp.take(len));
        } else {
            buf.extend((0..len as u32).map(|i| consistent(key, offset.wrapping_add(i))));
        }
        let (src, dst) = f.key.addrs();
        let mut vlans = Vlans::NONE;
        if f.key.vlan {
            vlans.push(100);
        }
        let pkt = IpPacket {
            vlans,
            macs: None,
            src,
            dst,
            protocol: f.key.protocol,
            fragment: Some(Fragment {
                ident: f.key.ident,
                offset,
                more: f.more,
            }),
            payload: &buf,
            payload_len: buf.len() as u32 + u32::from(f.extra),
        };

        // The model's view before the push.
        let m = models.entry(key).or_insert_with(|| Model {
            bytes: Held::new(share),
            total: None,
            protocol: None,
            tainted: false,
            exact: true,
        });
        m.tainted |= f.own_data;
        let (mut overlap, mut conflict) = (0u64, 0u64);
        for (i, &b) in buf.iter().enumerate() {
            if let Some(old) = m.bytes.get(offset.wrapping_add(i as u32)) {
                overlap += 1;
                conflict += u64::from(old != b);
            }
        }
        let before = stats;
        pushed += 1;
        let out = d
            .push(Timestamp(now), &pkt, &mut stats)
            .map(|(p, bytes)| (p, bytes.to_vec()));
        assert_eq!(stats.fragments, pushed);
        assert!(d.pending() <= SLOTS);
        let dropped = drops(&stats) != drops(&before);
        if dropped {
            // Something was dropped (perhaps another datagram, perhaps this fragment): the
            // model no longer knows which first copies survive.
            for m in models.values_mut() {
                m.exact = false;
            }
        }
        let m = models.get_mut(&key).expect("model");
        if m.bytes.beyond {
            m.exact = false;
        }
        if !dropped && m.exact {
            assert_eq!(
                stats.overlap_bytes - before.overlap_bytes,
                overlap,
                "overlap bytes"
            );
            assert_eq!(
                stats.conflict_bytes - before.conflict_bytes,
                conflict,
                "conflict bytes"
            );
            for (i, &b) in buf.iter().enumerate() {
                m.bytes.first(offset + i as u32, b);
            }
            if !f.more {
                m.total = Some(offset + pkt.payload_len);
            }
            if offset == 0 && m.protocol.is_none() {
                m.protocol = Some(f.key.protocol);
            }
        }
        match out {
            Some((protocol, bytes)) => {
                assert_eq!(stats.reassembled, before.reassembled + 1);
                assert!(bytes.len() <= share, "datagram larger than a slot");
                if !m.tainted {
                    for (i, &b) in bytes.iter().enumerate() {
                        assert_eq!(
                            b,
                            consistent(key, i as u32),
                            "byte {i} of a datagram of consistent fragments"
                        );
                    }
                }
                if !dropped && m.exact {
                    assert_eq!(Some(bytes.len() as u32), m.total, "datagram length");
                    assert_eq!(Some(protocol), m.protocol, "datagram protocol");
                    for (i, &b) in bytes.iter().enumerate() {
                        assert_eq!(Some(b), m.bytes.get(i as u32), "first copy of byte {i}");
                    }
                }
                models.remove(&key);
            }
            None => {
                assert_eq!(stats.reassembled, before.reassembled);
                if !dropped && m.exact {
                    if let (Some(t), Some(_)) = (m.total, m.protocol) {
                        let whole = (0..t).all(|i| m.bytes.contains(i));
                        assert!(!whole, "datagram of {t} bytes complete but not returned");
                    }
                }
            }
        }
    }
    d.flush(&mut stats);
    assert_eq!(d.pending(), 0, "flush left datagrams pending");
}
