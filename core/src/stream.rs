//! One direction of a connection: sequence numbers to stream offsets, in-order delivery, the
//! out-of-order list, overlaps, gaps.
//!
//! Offsets here are *internal*: `u64` positions that grow with the stream and never wrap, so
//! flows beyond 4 GiB work. The sink sees `internal - origin`, where the origin is the first
//! byte after the SYN, or for a flow picked up midstream the lowest byte seen while the
//! direction was still provisional (see [`Mode::Provisional`]).
//!
//! Invariants (checked by the property tests):
//! - held blocks are sorted, do not overlap, and all start after `next`;
//! - every byte in `[origin, next)` was delivered exactly once or reported in a gap;
//! - a byte is only ever delivered once, except under the `last` overlap policy, where a
//!   differing retransmission of delivered bytes is delivered again at the same offset.

use crate::config::{Config, OverlapPolicy};

use crate::flow::{Dir, FlowInfo};

use crate::pool::{Block, Pool, BLOCK_DATA, NIL, RANGES};
use crate::seq::SeqNum;
use crate::sink::{GapReason, Sink};
use crate::stats::FlowStats;

/// Segments further than this from the stream position are ambiguous (half the sequence space
/// is the hard limit; a quarter leaves room for both directions of error).
pub(crate) const MAX_DISTANCE: i64 = 1 << 30;

/// Internal offset of the first byte seen in a direction picked up midstream: leaves room for
/// data that belongs before it and arrives later.
const HOLD_BASE: u64 = 1 << 31;

pub(crate) const NO_FIN: u64 = u64::MAX;

/// Entries of a direction's `gap_lo`/`gap_hi`: the latest gaps it remembers in its slot (the
/// fast path, [`INLINE`] of them), then the hull of the gaps it forgot ([`HULL`]).
pub(crate) const GAPS_KEPT: usize = 4;
/// Gaps remembered in the slot; older ones go to the gap memory, pool blocks of
/// [`RANGES`] ranges each, as the direction's budget allows.
const INLINE: usize = GAPS_KEPT - 1;
/// Entry of the hull: the span of the gaps forgotten for lack of memory (empty when
/// `lo == hi`). Bytes landing there are late or retransmitted, nobody knows which: they are
/// counted (`unclassified_bytes`), neither written nor compared.
const HULL: usize = GAPS_KEPT - 1;

/// Where a remembered gap is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// The hull of forgotten gaps.
    Hull,
    /// Inline entry `k`.
    Inline(usize),
    /// Range `k` of gap-memory block `block`, which follows `prev` (or is the first).
    Spill { block: u32, prev: u32, k: usize },
}

/// How far a direction has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Nothing that fixes sequence numbers seen yet.
    Unset,
    /// Picked up midstream: data is held, not delivered, so that bytes belonging before the
    /// first segment seen can still take their place. Ends on [`Half::commit`].
    Provisional,
    /// Delivering.
    Open,
}

/// Everything the stream layer needs from its surroundings.
pub(crate) struct Env<'a, 'p, S> {
    pub pool: &'a mut Pool<'p>,
    pub stats: &'a mut FlowStats,
    pub cfg: &'a Config,
    pub sink: &'a mut S,
}

/// One direction's reassembly state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Half {
    pub(crate) mode: Mode,
    /// Sequence number of the byte at internal offset `next`.
    pub(crate) next_seq: SeqNum,
    /// Internal offset of the next byte to deliver.
    pub(crate) next: u64,
    /// Internal offset that the sink sees as 0.
    pub(crate) origin: u64,
    pub(crate) isn: SeqNum,
    pub(crate) has_syn: bool,
    /// Internal offset of the FIN, or `NO_FIN`.
    pub(crate) fin_off: u64,
    /// Highest internal offset the peer acknowledged, once `peer_acked`.
    pub(crate) acked: u64,
    pub(crate) peer_acked: bool,
    /// Entries below [`INLINE`]: the latest holes given up as gaps, what is still missing
    /// of them (internal offsets, ascending; `lo == hi` is an empty entry, after the others):
    /// bytes that arrive for them later are late, not retransmitted. Older gaps are in the
    /// gap memory (below these), and those forgotten for lack of memory in the hull (entry
    /// [`HULL`], below all the others).
    pub(crate) gap_lo: [u64; GAPS_KEPT],
    pub(crate) gap_hi: [u64; GAPS_KEPT],
    pub(crate) head: u32,
    pub(crate) tail: u32,
    /// Pool blocks held: data windows and gap memory (the direction's budget covers both).
    pub(crate) blocks: u32,
    /// While provisional: segments held. Once open: the first block of the gap memory plus
    /// one (0: none), a list of pool blocks in ascending order.
    pub(crate) held: u32,
}

impl Half {
    pub(crate) const EMPTY: Half = Half {
        mode: Mode::Unset,
        next_seq: SeqNum(0),
        next: 0,
        origin: 0,
        isn: SeqNum(0),
        has_syn: false,
        fin_off: NO_FIN,
        acked: 0,
        peer_acked: false,
        gap_lo: [0; GAPS_KEPT],
        gap_hi: [0; GAPS_KEPT],
        head: NIL,
        tail: NIL,
        blocks: 0,
        held: 0,
    };

    /// Whether every byte up to the FIN has been delivered (or reported missing).
    pub(crate) fn finished(&self) -> bool {
        self.mode == Mode::Open && self.fin_off != NO_FIN && self.next >= self.fin_off
    }

    pub(crate) fn fin_seen(&self) -> bool {
        self.fin_off != NO_FIN
    }

    /// The peer acknowledged the FIN: whatever is still missing before it was sent and
    /// received, just not captured. Nothing more will come.
    pub(crate) fn fin_acked(&self) -> bool {
        self.fin_off != NO_FIN && self.acked > self.fin_off
    }

    /// Internal offset of `seq`, or None when it is too far from the stream position to be
    /// placed without ambiguity. May be negative (before the stream's start).
    fn offset_of(&self, seq: SeqNum) -> Option<i64> {
        let d = seq.diff(self.next_seq) as i64;
        if d.abs() >= MAX_DISTANCE {
            None
        } else {
            Some(self.next as i64 + d)
        }
    }

    /// Nothing placed yet: the sequence numbers are only as good as the SYN they came from.
    fn pristine(&self) -> bool {
        self.mode == Mode::Open
            && self.next == self.origin
            && self.head == NIL
            && self.fin_off == NO_FIN
    }

    /// Whether `seq` is too far from where this direction stopped to belong to it (a new
    /// connection on a closed 4-tuple rather than a late packet of the old one).
    pub(crate) fn is_far(&self, seq: SeqNum) -> bool {
        match self.offset_of(seq) {
            None => true,
            Some(off) => (off - self.next as i64).abs() > 1 << 20,
        }
    }

    /// A SYN from this side: fixes the ISN. Returns false when the direction already had a
    /// different start (the caller decides whether that is a new connection).
    pub(crate) fn syn(&mut self, seq: SeqNum) -> bool {
        match self.mode {
            Mode::Unset => {
                *self = Half::EMPTY;
                self.mode = Mode::Open;
                self.isn = seq;
                self.has_syn = true;
                self.next_seq = seq.wrapping_add(1);
                true
            }
            // Several SYN-ACKs with different ISNs (a middlebox, a retry): until data flows,
            // the newest one counts.
            _ if self.has_syn && self.isn != seq && self.pristine() => {
                self.isn = seq;
                self.next_seq = seq.wrapping_add(1);
                true
            }
            _ => self.has_syn && self.isn == seq,
        }
    }

    /// The first data of a direction whose SYN was not seen.
    fn start_midstream(&mut self, seq: SeqNum, hold: bool) {
        self.mode = if hold { Mode::Provisional } else { Mode::Open };
        self.next_seq = seq;
        self.next = if hold { HOLD_BASE } else { 0 };
        self.origin = self.next;
        self.acked = 0;
        self.peer_acked = false;
    }

    /// The peer acknowledged up to `ack`: bytes before it were sent, so if they never arrive
    /// they are a gap, not the end of the stream.
    pub(crate) fn peer_ack(&mut self, ack: SeqNum) {
        if self.mode == Mode::Unset {
            return;
        }
        if let Some(off) = self.offset_of(ack) {
            if !self.peer_acked || off > self.acked as i64 {
                self.acked = off.max(0) as u64;
                self.peer_acked = true;
            }
        }
    }

    /// Whether data (or a FIN) at internal offset `off` may be placed: the holes it can leave
    /// are bounded. It may run ahead of the stream position, or of what the peer acknowledged
    /// when that is further, by `max_jump`; while provisional, be that far from the first
    /// segment either way. And, since a sender can move its position through holes given up
    /// (the pool full) and jump again, its holes that no ACK covers may outgrow the bytes it
    /// claimed to send by `max_jump` in all: a sender forging its sequence numbers without
    /// ACKs from its peer grows its file by little more than what it sends.
    fn within_reach(&self, info: &FlowInfo, dir: Dir, off: i64, cfg: &Config) -> bool {
        let reach = cfg.max_jump.min(i64::MAX as u64) as i64;
        let ahead = match self.mode {
            Mode::Open if self.peer_acked => off - self.next.max(self.acked) as i64,
            Mode::Open => off - self.next as i64,
            // The stream starts at the lowest byte held: a hole can open on either side.
            _ => (off - self.next as i64).abs(),
        };
        if ahead <= 0 {
            return true;
        }
        let di = &info.dirs[dir.index()];
        // Holes before what the peer acknowledged were sent (a lossy capture, not a forger):
        // at most all of the stream up to there, so the rest is at least this.
        let proven = if self.peer_acked {
            self.acked.saturating_sub(self.origin)
        } else {
            0
        };
        let unproven = di.gap_bytes.saturating_sub(proven);
        let budget = di.payload_bytes.saturating_add(cfg.max_jump);
        ahead <= reach && unproven.saturating_add(ahead as u64) <= budget
    }

    /// A FIN from this side at the end of a segment that starts at `seq` and claims `len`
    /// bytes.
    pub(crate) fn fin<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        seq: SeqNum,
        len: u32,
    ) {
        if self.mode == Mode::Unset {
            self.start_midstream(seq, false);
        }
        if self.fin_off != NO_FIN {
            return;
        }
        if let Some(off) = self.offset_of(seq.wrapping_add(len)) {
            // A FIN out of reach would end the stream after a hole of that size.
            if !self.within_reach(info, dir, off, env.cfg) {
                env.stats.out_of_window += 1;
                return;
            }
            // A FIN before bytes already delivered is bogus; the stream ends where it is.
            self.fin_off = (off.max(0) as u64).max(self.next);
            if self.mode == Mode::Provisional {
                // No data follows a FIN, so nothing more can land before the first segment
                // than has already.
                self.commit(info, dir, env, None);
            }
        }
    }

    /// Payload of a segment: `data` was captured of `claimed` bytes starting at `seq`.
    pub(crate) fn data<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        seq: SeqNum,
        data: &[u8],
        claimed: u32,
    ) {
        if claimed == 0 {
            return;
        }
        if info.dirs[dir.index()].rst {
            env.stats.after_close_bytes += claimed as u64;
            return;
        }
        if self.mode == Mode::Unset {
            self.start_midstream(seq, env.cfg.midstream_hold_segments > 0);
        }
        let mut off = match self.offset_of(seq) {
            Some(off) => off,
            // The first data lands far from the SYN's ISN: the SYN was not this connection's
            // (a stale retransmission, a spoofed reply). The data is the better anchor.
            None if self.pristine() => {
                self.start_midstream(seq, env.cfg.midstream_hold_segments > 0);
                self.next as i64
            }
            None => {
                env.stats.out_of_window += 1;
                env.stats.out_of_window_bytes += claimed as u64;
                return;
            }
        };
        // Too far from what is known of this stream: not its data (a crafted or corrupt
        // segment); placing it would leave a hole of that size.
        if !self.within_reach(info, dir, off, env.cfg) {
            env.stats.out_of_window += 1;
            env.stats.out_of_window_bytes += claimed as u64;
            return;
        }
        let mut data = data;
        let mut cut = claimed.saturating_sub(data.len() as u32);
        let open = self.mode == Mode::Open;
        // A keep-alive probe: one old byte (often garbage) just before the stream position.
        if open && claimed <= 1 && off == self.next as i64 - 1 {
            env.stats.keepalives += 1;
            return;
        }
        // Nothing follows the FIN.
        if self.fin_off != NO_FIN {
            let fin = self.fin_off as i64;
            let end = off + data.len() as i64 + cut as i64;
            if off >= fin {
                env.stats.after_close_bytes += (end - off) as u64;
                return;
            }
            if end > fin {
                env.stats.after_close_bytes += (end - fin) as u64;
                let keep = (fin - off) as usize;
                if keep < data.len() {
                    data = &data[..keep];
                    cut = 0;
                } else {
                    cut = (keep - data.len()) as u32;
                }
            }
        }
        // Bytes before the stream's start (or before a midstream origin): too late to place.
        let floor = if open { self.origin as i64 } else { 0 };
        if off < floor {
            let skip = (floor - off) as usize;
            let late = skip.min(data.len());
            env.stats.late_bytes += late as u64;
            data = &data[late..];
            if skip > late {
                cut = cut.saturating_sub((skip - late) as u32);
            }
            off = floor;
        }
        let mut off = off as u64;
        // Bytes already delivered: a retransmission.
        if open && off < self.next {
            let n = ((self.next - off) as usize).min(data.len());
            if n > 0 {
                self.repeated(info, dir, env, off, &data[..n]);
            }
            data = &data[n..];
            off += n as u64;
            if off < self.next {
                // Only cut bytes reach below next: already accounted for.
                let c = (self.next - off).min(cut as u64);
                cut -= c as u32;
                off += c;
            }
        }
        if data.is_empty() && cut == 0 {
            return;
        }
        self.insert(info, dir, env, off, data, cut);
    }

    /// Bytes at `off` that are behind the stream position: a retransmission of delivered bytes
    /// (the sink compares them), bytes for a remembered gap, which arrive late, or bytes
    /// where gaps were forgotten, which nobody can classify.
    fn repeated<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        off: u64,
        data: &[u8],
    ) {
        let end = off + data.len() as u64;
        let mut pos = off;
        while pos < end {
            let piece = |to: u64| &data[(pos - off) as usize..(to - off) as usize];
            match self.find_gap(env.pool, pos) {
                Some((At::Hull, lo, hi)) if lo <= pos => {
                    let to = hi.min(end);
                    env.stats.unclassified_bytes += to - pos;
                    pos = to;
                }
                Some((at, lo, hi)) if lo <= pos => {
                    let to = hi.min(end);
                    self.late(info, dir, env, at, (lo, hi), pos, piece(to));
                    pos = to;
                }
                Some((_, lo, _)) => {
                    let to = lo.min(end);
                    self.redelivered(info, dir, env, pos, piece(to));
                    pos = to;
                }
                None => {
                    self.redelivered(info, dir, env, pos, piece(end));
                    pos = end;
                }
            }
        }
    }

    /// The first remembered range (hull, gap memory, inline gaps: ascending) that ends after
    /// `pos`, with its bounds.
    fn find_gap(&self, pool: &Pool<'_>, pos: u64) -> Option<(At, u64, u64)> {
        let (hlo, hhi) = (self.gap_lo[HULL], self.gap_hi[HULL]);
        if hlo < hhi && hhi > pos {
            return Some((At::Hull, hlo, hhi));
        }
        // Every range in the gap memory ends at or before the first inline gap starts, and
        // the last one ends in the last block: most lookups skip the list.
        let first_inline = (self.gap_lo[0] < self.gap_hi[0]).then_some(self.gap_lo[0]);
        let head = self.spill();
        if head != NIL && first_inline.map_or(true, |lo| pos < lo) {
            let last = pool.get(pool.get(head).last_block());
            let n = last.ranges();
            if n > 0 && last.range(n - 1).1 > pos {
                let (mut prev, mut i) = (NIL, head);
                while i != NIL {
                    let b = pool.get(i);
                    let n = b.ranges();
                    if n > 0 && b.range(n - 1).1 > pos {
                        // Binary search: the first range ending after `pos`.
                        let (mut a, mut z) = (0, n - 1);
                        while a < z {
                            let m = (a + z) / 2;
                            if b.range(m).1 > pos {
                                z = m;
                            } else {
                                a = m + 1;
                            }
                        }
                        let (lo, hi) = b.range(a);
                        let at = At::Spill {
                            block: i,
                            prev,
                            k: a,
                        };
                        return Some((at, lo, hi));
                    }
                    prev = i;
                    i = b.next;
                }
            }
        }
        (0..INLINE)
            .find(|&k| self.gap_lo[k] < self.gap_hi[k] && self.gap_hi[k] > pos)
            .map(|k| (At::Inline(k), self.gap_lo[k], self.gap_hi[k]))
    }

    /// Bytes at `off` for the remembered gap `(lo, hi)` at `at`, which was reported and never
    /// delivered: the sink may still write them at their offsets, and then the gap shrinks.
    #[allow(clippy::too_many_arguments)]
    fn late<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        at: At,
        (lo, hi): (u64, u64),
        off: u64,
        data: &[u8],
    ) {
        let n = data.len() as u64;
        if !env.sink.late(info, dir, off - self.origin, data) {
            env.stats.late_bytes += n;
            return;
        }
        env.stats.late_filled_bytes += n;
        env.stats.delivered_bytes += n;
        env.stats.gap_bytes -= n;
        let di = &mut info.dirs[dir.index()];
        di.gap_bytes -= n;
        let end = off + n;
        // What is left of the gap: both ends (two gaps now), one end, or nothing.
        let left = (off > lo).then_some((lo, off));
        let right = (end < hi).then_some((end, hi));
        if left.is_some() && right.is_some() {
            di.gaps += 1;
            env.stats.gaps += 1;
        } else if left.is_none() && right.is_none() {
            di.gaps -= 1;
            env.stats.gaps -= 1;
        }
        let (pool, cfg) = (&mut *env.pool, env.cfg);
        match at {
            At::Hull => {}
            At::Inline(k) => match (left, right) {
                (Some((a, b)), None) | (None, Some((a, b))) => {
                    self.gap_lo[k] = a;
                    self.gap_hi[k] = b;
                }
                (Some((a, b)), Some((c, d))) => {
                    self.gap_lo[k] = a;
                    self.gap_hi[k] = b;
                    self.insert_inline(pool, cfg, k + 1, c, d);
                }
                (None, None) => {
                    for j in k..INLINE - 1 {
                        self.gap_lo[j] = self.gap_lo[j + 1];
                        self.gap_hi[j] = self.gap_hi[j + 1];
                    }
                    self.gap_lo[INLINE - 1] = 0;
                    self.gap_hi[INLINE - 1] = 0;
                }
            },
            At::Spill { block, prev, k } => match (left, right) {
                (Some((a, b)), None) | (None, Some((a, b))) => {
                    pool.get_mut(block).set_range(k, a, b);
                }
                (Some((a, b)), Some((c, d))) => {
                    pool.get_mut(block).set_range(k, a, b);
                    self.insert_spilled(pool, cfg, block, k + 1, c, d);
                }
                (None, None) => {
                    pool.get_mut(block).remove_range(k);
                    if pool.get(block).ranges() == 0 {
                        self.unlink_spilled(pool, prev, block);
                        pool.release(block);
                        self.blocks -= 1;
                    }
                }
            },
        }
    }

    /// The first block of the gap memory, or NIL.
    fn spill(&self) -> u32 {
        if self.mode == Mode::Open {
            self.held.wrapping_sub(1)
        } else {
            NIL
        }
    }

    fn set_spill(&mut self, i: u32) {
        self.held = i.wrapping_add(1);
    }

    /// Forgets `[lo, hi)`: the hull grows over it. Only ever the lowest range remembered, so
    /// the hull stays below the others.
    fn forget(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        if self.gap_lo[HULL] < self.gap_hi[HULL] {
            self.gap_lo[HULL] = self.gap_lo[HULL].min(lo);
            self.gap_hi[HULL] = self.gap_hi[HULL].max(hi);
        } else {
            self.gap_lo[HULL] = lo;
            self.gap_hi[HULL] = hi;
        }
    }

    /// Forgets the gaps of the gap memory's first block and takes the block out of the list
    /// (still counted in `blocks`); NIL when the list is empty.
    fn take_first_spilled(&mut self, pool: &mut Pool<'_>) -> u32 {
        let head = self.spill();
        if head == NIL {
            return NIL;
        }
        let b = pool.get(head);
        let n = b.ranges();
        if n > 0 {
            let (lo, hi) = (b.range(0).0, b.range(n - 1).1);
            self.forget(lo, hi);
        }
        self.unlink_spilled(pool, NIL, head);
        let b = pool.get_mut(head);
        b.clear_ranges();
        b.next = NIL;
        head
    }

    /// Takes block `i`, which follows `prev` (NIL: the first), out of the gap memory's list.
    fn unlink_spilled(&mut self, pool: &mut Pool<'_>, prev: u32, i: u32) {
        let head = pool.get(self.spill());
        let (next, last, len) = (pool.get(i).next, head.last_block(), head.list_len());
        if prev == NIL {
            self.set_spill(next);
        } else {
            pool.get_mut(prev).next = next;
        }
        let head = self.spill();
        if head != NIL {
            let h = pool.get_mut(head);
            h.set_last_block(if last == i { prev } else { last });
            h.set_list_len(len.saturating_sub(1));
        }
    }

    /// Blocks of the gap memory.
    fn spilled_blocks(&self, pool: &Pool<'_>) -> u32 {
        match self.spill() {
            NIL => 0,
            head => pool.get(head).list_len(),
        }
    }

    /// A new block for the gap memory, if it holds less than a quarter of the direction's
    /// budget (held data has the rest), the direction is within its budget (gaps are given up
    /// while the window they free is still held, so the gap memory may take one block more
    /// for that moment), and a quarter of the pool is still free for held data (remembering
    /// old gaps never starves another flow's reassembly).
    fn alloc_spilled(&mut self, pool: &mut Pool<'_>, cfg: &Config) -> u32 {
        let max = cfg.max_blocks_per_dir;
        let room = self.spilled_blocks(pool) < max / 4
            && self.blocks <= max
            && pool.free_count() > pool.len() / 4;
        match pool.alloc_if(room) {
            Some(i) => {
                self.blocks += 1;
                pool.get_mut(i).clear_ranges();
                i
            }
            None => NIL,
        }
    }

    /// A block for the gap memory: a new one, or else its own first block, forgotten.
    fn spill_block(&mut self, pool: &mut Pool<'_>, cfg: &Config) -> u32 {
        match self.alloc_spilled(pool, cfg) {
            NIL => self.take_first_spilled(pool),
            i => i,
        }
    }

    /// Remembers `[lo, hi)`, above every gap in the gap memory and below every inline one.
    fn push_spilled(&mut self, pool: &mut Pool<'_>, cfg: &Config, lo: u64, hi: u64) {
        let head = self.spill();
        if head != NIL {
            let last = pool.get(head).last_block();
            let n = pool.get(last).ranges();
            if n < RANGES {
                pool.get_mut(last).insert_range(n, lo, hi);
                return;
            }
        }
        let i = self.spill_block(pool, cfg);
        if i == NIL {
            // No memory at all: forgotten.
            self.forget(lo, hi);
            return;
        }
        pool.get_mut(i).insert_range(0, lo, hi);
        self.append_spilled(pool, i);
    }

    /// Puts the (non-empty) block `i` at the end of the gap memory's list.
    fn append_spilled(&mut self, pool: &mut Pool<'_>, i: u32) {
        let len = self.spilled_blocks(pool);
        let head = self.spill();
        if head == NIL {
            self.set_spill(i);
        } else {
            let last = pool.get(head).last_block();
            pool.get_mut(last).next = i;
        }
        let h = pool.get_mut(self.spill());
        h.set_last_block(i);
        h.set_list_len(len + 1);
    }

    /// Remembers `[lo, hi)` at position `k` of gap-memory block `block` (a gap split in two
    /// by late bytes).
    fn insert_spilled(
        &mut self,
        pool: &mut Pool<'_>,
        cfg: &Config,
        block: u32,
        k: usize,
        lo: u64,
        hi: u64,
    ) {
        if pool.get(block).ranges() < RANGES {
            pool.get_mut(block).insert_range(k, lo, hi);
            return;
        }
        // Split the block in two: with a new block, or (when it is not the first) the
        // first block of the list, forgotten; else the lowest range of all makes room.
        let mut new = self.alloc_spilled(pool, cfg);
        if new == NIL && block != self.spill() {
            new = self.take_first_spilled(pool);
        }
        if new == NIL {
            let (a, b) = pool.get(block).range(0);
            pool.get_mut(block).remove_range(0);
            self.forget(a, b);
            match k.checked_sub(1) {
                Some(k) => pool.get_mut(block).insert_range(k, lo, hi),
                None => self.forget(lo, hi),
            }
            return;
        }
        let half = RANGES / 2;
        pool.move_ranges(block, half, new);
        let next = pool.get(block).next;
        pool.get_mut(new).next = next;
        pool.get_mut(block).next = new;
        let h = pool.get_mut(self.spill());
        if h.last_block() == block {
            h.set_last_block(new);
        }
        h.set_list_len(h.list_len() + 1);
        if k <= half {
            pool.get_mut(block).insert_range(k, lo, hi);
        } else {
            pool.get_mut(new).insert_range(k - half, lo, hi);
        }
    }

    /// Remembers `[lo, hi)` at inline position `k`; when the slot is full its lowest gap
    /// moves to the gap memory.
    fn insert_inline(&mut self, pool: &mut Pool<'_>, cfg: &Config, mut k: usize, lo: u64, hi: u64) {
        if self.gap_lo[INLINE - 1] < self.gap_hi[INLINE - 1] {
            if k == 0 {
                self.push_spilled(pool, cfg, lo, hi);
                return;
            }
            self.push_spilled(pool, cfg, self.gap_lo[0], self.gap_hi[0]);
            for j in 0..INLINE - 1 {
                self.gap_lo[j] = self.gap_lo[j + 1];
                self.gap_hi[j] = self.gap_hi[j + 1];
            }
            k -= 1;
        }
        for j in (k + 1..INLINE).rev() {
            self.gap_lo[j] = self.gap_lo[j - 1];
            self.gap_hi[j] = self.gap_hi[j - 1];
        }
        self.gap_lo[k] = lo;
        self.gap_hi[k] = hi;
    }

    /// Frees the gap memory's first block for held data; whether there was one.
    fn free_first_spilled(&mut self, pool: &mut Pool<'_>) -> bool {
        let i = self.take_first_spilled(pool);
        if i == NIL {
            return false;
        }
        pool.release(i);
        self.blocks -= 1;
        true
    }

    /// Gives the gap memory back to the pool: its gaps are forgotten (the connection is
    /// closed; one evicted keeps its inline gaps and the hull in its record).
    fn release_spilled(&mut self, pool: &mut Pool<'_>) {
        while self.free_first_spilled(pool) {}
    }

    /// Forgets the remembered gaps (a resumed connection's figures start again, so bytes for
    /// gaps reported before its eviction are no longer late for it): the hull covers them.
    pub(crate) fn forget_gaps(&mut self) {
        for k in 0..INLINE {
            self.forget(self.gap_lo[k], self.gap_hi[k]);
            self.gap_lo[k] = 0;
            self.gap_hi[k] = 0;
        }
    }

    fn redelivered<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        off: u64,
        old: &[u8],
    ) {
        if old.is_empty() {
            return;
        }
        let n = old.len() as u64;
        let d = dir.index();
        info.dirs[d].retransmitted_bytes += n;
        env.stats.retransmitted_bytes += n;
        let rel = off - self.origin;
        if env.sink.redelivered(info, dir, rel, old) {
            info.dirs[d].conflict_bytes += n;
            env.stats.conflict_bytes += n;
            if env.cfg.overlap == OverlapPolicy::Last {
                env.sink.data(info, dir, rel, old);
            }
        }
    }

    /// Whether a RST at `seq` from this side is plausible: near where the side is, or before
    /// anything is placed. A blind RST with a random sequence number is not (RFC 5961).
    pub(crate) fn rst_plausible(&self, seq: SeqNum) -> bool {
        self.mode != Mode::Open || self.pristine() || !self.is_far(seq)
    }

    /// Places new bytes at internal offset `off` (at or after `next` when open).
    fn insert<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        off: u64,
        data: &[u8],
        cut: u32,
    ) {
        // The common case: in order, nothing held. Straight to the sink, no copy.
        if self.mode == Mode::Open && off == self.next && self.head == NIL {
            self.deliver(info, dir, env, data);
            if cut > 0 {
                self.gap(info, dir, env, cut as u64, GapReason::Snaplen);
            }
            return;
        }
        let end = off + data.len() as u64;
        if self.mode == Mode::Open && off > self.next {
            info.dirs[dir.index()].ooo_segments += 1;
            env.stats.ooo_segments += 1;
        }
        self.overlaps(info, dir, env, off, data);
        let mut pos = off;
        while pos < end {
            let open = self.mode == Mode::Open;
            if open && pos < self.next {
                // A snap-length gap reported while making room reached over these bytes.
                let n = self.next.min(end) - pos;
                env.stats.late_bytes += n;
                pos += n;
                continue;
            }
            if open && pos == self.next {
                // In order: up to the next held byte straight to the sink, then what follows.
                let upto = self.first_held(env.pool, pos).map_or(end, |h| h.min(end));
                let piece = &data[(pos - off) as usize..(upto - off) as usize];
                self.deliver(info, dir, env, piece);
                if upto == end && cut > 0 {
                    self.snap_gap(info, dir, env, end + cut as u64);
                }
                self.drain(info, dir, env);
                pos = self.next.min(end).max(upto);
                continue;
            }
            let w = Block::window(pos);
            let (prev, cur) = self.find(env.pool, w);
            let i = if cur != NIL {
                cur
            } else {
                let room = self.blocks < env.cfg.max_blocks_per_dir;
                let Some(i) = env.pool.alloc_if(room) else {
                    env.stats.pool_full += 1;
                    self.give_up_first_window(info, dir, env, pos);
                    continue;
                };
                self.link(env.pool, prev, i, w);
                i
            };
            let wend = (w + BLOCK_DATA as u64).min(end);
            let (lo, hi) = ((pos - w) as usize, (wend - w) as usize);
            let src = &data[(pos - off) as usize..(wend - off) as usize];
            let b = env.pool.get_mut(i);
            // Only absent bytes: the first copy wins (under `last`, `overlaps` already
            // replaced the held ones).
            let mut k = b.next_clear(lo);
            while k < hi {
                let e = b.next_set(k).min(hi);
                b.data[k..e].copy_from_slice(&src[k - lo..e - lo]);
                k = b.next_clear(e);
            }
            b.set(lo, hi);
            if wend == end && cut > 0 {
                b.add_cut(hi, cut);
            }
            pos = wend;
        }
        if data.is_empty() && cut > 0 && self.mode == Mode::Open && off == self.next {
            self.gap(info, dir, env, cut as u64, GapReason::Snaplen);
        }
        if self.mode == Mode::Provisional {
            self.held += 1;
            if self.held >= env.cfg.midstream_hold_segments {
                self.commit(info, dir, env, None);
            }
        }
    }

    /// Puts freshly allocated block `i` for window `w` in the list after `prev`.
    fn link(&mut self, pool: &mut Pool<'_>, prev: u32, i: u32, w: u64) {
        let after = if prev == NIL {
            self.head
        } else {
            pool.get(prev).next
        };
        let b = pool.get_mut(i);
        b.base = w;
        b.next = after;
        if prev == NIL {
            self.head = i;
        } else {
            pool.get_mut(prev).next = i;
        }
        if after == NIL {
            self.tail = i;
        }
        self.blocks += 1;
    }

    /// Compares a new segment with the held bytes it overlaps; under `last`, takes its bytes.
    fn overlaps<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        off: u64,
        data: &[u8],
    ) {
        let end = off + data.len() as u64;
        if self.head == NIL || off >= env.pool.get(self.tail).end() {
            return;
        }
        let (mut retrans, mut conflict) = (0u64, 0u64);
        let last = env.cfg.overlap == OverlapPolicy::Last;
        let mut i = self.head;
        while i != NIL {
            let b = env.pool.get_mut(i);
            if b.base >= end {
                break;
            }
            if b.end() > off {
                let lo = (b.base.max(off) - b.base) as usize;
                let hi = (b.end().min(end) - b.base) as usize;
                let mut k = b.next_set(lo);
                while k < hi {
                    let e = b.next_clear(k).min(hi);
                    let at = (b.base + k as u64 - off) as usize;
                    let new = &data[at..at + (e - k)];
                    let held = &mut b.data[k..e];
                    retrans += (e - k) as u64;
                    let differ = held.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
                    conflict += differ;
                    if last && differ > 0 {
                        held.copy_from_slice(new);
                    }
                    k = b.next_set(e);
                }
            }
            i = b.next;
        }
        let di = &mut info.dirs[dir.index()];
        di.retransmitted_bytes += retrans;
        di.conflict_bytes += conflict;
        env.stats.retransmitted_bytes += retrans;
        env.stats.conflict_bytes += conflict;
    }

    /// The last block of a window before `w` and the block of window `w` (or NIL).
    fn find(&self, pool: &Pool<'_>, w: u64) -> (u32, u32) {
        if self.tail != NIL && pool.get(self.tail).base < w {
            return (self.tail, NIL);
        }
        let (mut prev, mut cur) = (NIL, self.head);
        while cur != NIL {
            let b = pool.get(cur);
            if b.base >= w {
                return (prev, if b.base == w { cur } else { NIL });
            }
            prev = cur;
            cur = b.next;
        }
        (prev, NIL)
    }

    /// The first held byte at or after internal offset `from`.
    fn first_held(&self, pool: &Pool<'_>, from: u64) -> Option<u64> {
        let mut i = self.head;
        while i != NIL {
            let b = pool.get(i);
            if b.end() > from {
                let k = b.next_set(from.saturating_sub(b.base) as usize);
                if k < BLOCK_DATA {
                    return Some(b.base + k as u64);
                }
            }
            i = b.next;
        }
        None
    }

    /// Bytes from `next` up to `limit` were cut by the snap length: a gap, up to the next
    /// byte held.
    fn snap_gap<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        limit: u64,
    ) {
        let limit = self
            .first_held(env.pool, self.next)
            .map_or(limit, |h| h.min(limit));
        if limit > self.next {
            self.gap(info, dir, env, limit - self.next, GapReason::Snaplen);
        }
    }

    /// No pool block for bytes at `pos`: stop waiting for holes (gaps) until the first window
    /// is freed, or for a provisional direction, commit to its start. Never skips past `pos`.
    fn give_up_first_window<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        pos: u64,
    ) {
        if self.mode == Mode::Provisional {
            self.commit(info, dir, env, Some(pos));
            return;
        }
        // A window of sparse bytes has many holes: giving up one at a time would fill the
        // pool again with every byte that arrives.
        let first = self.head;
        loop {
            let target = self
                .first_held(env.pool, self.next)
                .map_or(pos, |h| h.min(pos));
            if target > self.next {
                self.gap(info, dir, env, target - self.next, GapReason::Lost);
            }
            self.drain(info, dir, env);
            if self.head != first || self.head == NIL || self.next >= pos {
                return;
            }
        }
    }

    /// Ends the provisional state: the stream starts at the lowest byte held (or `hint`).
    fn commit<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        hint: Option<u64>,
    ) {
        if self.mode != Mode::Provisional {
            return;
        }
        let mut low = hint.unwrap_or(u64::MAX);
        if let Some(h) = self.first_held(env.pool, 0) {
            low = low.min(h);
        }
        if low == u64::MAX {
            low = self.next;
        }
        let delta = low as i64 - self.next as i64;
        self.next_seq = self.next_seq.wrapping_add(delta as i32 as u32);
        self.next = low;
        self.origin = low;
        self.mode = Mode::Open;
        // `held` names the gap memory from now on: none yet.
        self.held = 0;
        if self.fin_off != NO_FIN && self.fin_off < low {
            self.fin_off = low;
        }
        self.drain(info, dir, env);
    }

    /// Delivers held bytes that have become contiguous, and releases windows left behind.
    fn drain<S: Sink>(&mut self, info: &mut FlowInfo, dir: Dir, env: &mut Env<'_, '_, S>) {
        if self.mode != Mode::Open {
            return;
        }
        while self.head != NIL {
            let i = self.head;
            let b = env.pool.get(i);
            if self.next < b.base {
                break;
            }
            let rel = (self.next - b.base) as usize;
            if rel < BLOCK_DATA && b.has(rel) {
                let e = b.next_clear(rel);
                let bytes = &b.data[rel..e];
                env.sink.data(info, dir, self.next - self.origin, bytes);
                let n = bytes.len() as u64;
                self.advance(info, dir, n);
                env.stats.delivered_bytes += n;
                continue;
            }
            if let Some(cut_end) = b.cut_covering(self.next) {
                let limit = self
                    .first_held(env.pool, self.next)
                    .map_or(cut_end, |h| h.min(cut_end));
                // Held bytes at `next` in a later window end the cut (no gap): go on to them.
                if limit > self.next {
                    self.gap(info, dir, env, limit - self.next, GapReason::Snaplen);
                    continue;
                }
            }
            if rel < BLOCK_DATA && b.next_set(rel) < BLOCK_DATA {
                break;
            }
            // Nothing of this window is still to come from the pool.
            self.head = b.next;
            if self.head == NIL {
                self.tail = NIL;
            }
            self.blocks -= 1;
            env.pool.release(i);
        }
    }

    fn deliver<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        data: &[u8],
    ) {
        if data.is_empty() {
            return;
        }
        env.sink.data(info, dir, self.next - self.origin, data);
        env.stats.delivered_bytes += data.len() as u64;
        self.advance(info, dir, data.len() as u64);
    }

    fn gap<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
        len: u64,
        reason: GapReason,
    ) {
        if len == 0 {
            return;
        }
        env.sink
            .gap(info, dir, self.next - self.origin, len, reason);
        let used = (0..INLINE)
            .filter(|&k| self.gap_lo[k] < self.gap_hi[k])
            .count();
        self.insert_inline(env.pool, env.cfg, used, self.next, self.next + len);
        env.stats.gaps += 1;
        env.stats.gap_bytes += len;
        let di = &mut info.dirs[dir.index()];
        di.gaps += 1;
        di.gap_bytes += len;
        self.advance(info, dir, len);
    }

    fn advance(&mut self, info: &mut FlowInfo, dir: Dir, n: u64) {
        self.next += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        info.dirs[dir.index()].stream_len = self.next - self.origin;
    }

    /// The connection is over: deliver everything held, reporting each hole as a gap, and the
    /// bytes known to have been sent after the last one received (up to the FIN, or what the
    /// peer acknowledged).
    pub(crate) fn flush<S: Sink>(
        &mut self,
        info: &mut FlowInfo,
        dir: Dir,
        env: &mut Env<'_, '_, S>,
    ) {
        self.commit(info, dir, env, None);
        if self.mode != Mode::Open {
            return;
        }
        while let Some(h) = self.first_held(env.pool, self.next) {
            if h > self.next {
                self.gap(info, dir, env, h - self.next, GapReason::Lost);
            }
            self.drain(info, dir, env);
        }
        self.drain(info, dir, env);
        let end = if self.fin_off != NO_FIN {
            self.fin_off
        } else if self.acked > self.next {
            // An ACK counts sequence numbers, and the last one may be a FIN that was lost: a
            // FIN is never a byte, so the stream ends before it. Nothing in the capture tells
            // a lost FIN from a lost last byte; the counter says which was assumed.
            env.stats.fin_assumed += 1;
            self.acked - 1
        } else {
            self.acked
        };
        if end > self.next && ((end - self.next) as i64) < MAX_DISTANCE {
            self.gap(info, dir, env, end - self.next, GapReason::Lost);
        }
    }

    /// Returns held blocks to the pool without delivering them (used only after `flush`,
    /// which leaves none, and as a guard when a slot is reused).
    pub(crate) fn release(&mut self, pool: &mut Pool<'_>) {
        self.release_spilled(pool);
        let mut i = self.head;
        while i != NIL {
            let n = pool.get(i).next;
            pool.release(i);
            i = n;
        }
        self.head = NIL;
        self.tail = NIL;
        self.blocks = 0;
    }
}
