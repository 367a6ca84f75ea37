//! The tracker: a TCP segment to its connection, and the connection's life (opened, reused,
//! resumed, closed, evicted). It holds the flow table and the out-of-order pool, everything a
//! segment touches; the engine hands it each segment after decoding and defragmenting.
//!
//! Two rules live here, each in one place:
//! - whether a segment starts a new connection on a known 4-tuple: [`is_new_connection`];
//! - the eviction policy, what gives way when storage is full (see "Eviction policy" below):
//!   [`Tracker::take_record`] for a flow record, [`Tracker::hot`] for a hot slot.

use crate::config::Config;
use crate::decode::{IpPacket, TcpSegment};
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey, FlowRef};
use crate::pool::{Block, Pool, NIL};
use crate::sink::{CloseReason, Sink};
use crate::stats::FlowStats;
use crate::stream::{Env, Mode};
use crate::table::{FlowRecord, FlowTable, HotSlot, RecordState};
use crate::time::Timestamp;

/// The flow table and the pool: everything a segment touches.
#[derive(Debug)]
pub(crate) struct Tracker<'s> {
    table: FlowTable<'s>,
    pool: Pool<'s>,
    cfg: Config,
    /// The latest time idle flows were expired at ([`Tracker::expire_idle`]).
    now: Timestamp,
}

/// Whether a segment for a known 4-tuple, travelling in `d` of the connection held in `slot`
/// (whose record is in `state`), starts a new connection there rather than continuing it.
#[inline(always)]
fn is_new_connection(state: RecordState, slot: &HotSlot, d: Dir, seg: &TcpSegment<'_>) -> bool {
    let flags = seg.flags;
    let h = &slot.half[d.index()];
    match state {
        RecordState::Open => {
            // A connection attempt on a live 4-tuple is a new connection unless it repeats
            // this side's SYN.
            flags.syn() && !flags.ack() && h.mode != Mode::Unset && !(h.has_syn && h.isn == seg.seq)
        }
        RecordState::Evicted => {
            // Evicted, not finished: only a new SYN, or data far from where its direction
            // stopped, starts another connection.
            (flags.syn() && !(h.has_syn && h.isn == seg.seq))
                || (!flags.syn()
                    && seg.payload_len > 0
                    && h.mode != Mode::Unset
                    && h.is_far(seg.seq))
        }
        RecordState::Closed => {
            // A repeat of the finished connection's own SYN is not a new one.
            let reset = slot.info.dirs[0].rst || slot.info.dirs[1].rst;
            let old_syn = h.has_syn && h.isn == seg.seq && !reset;
            (flags.syn() && !old_syn)
                || (!flags.syn()
                    && seg.payload_len > 0
                    && (h.mode == Mode::Unset || h.is_far(seg.seq)))
        }
        RecordState::Free | RecordState::Spill => true,
    }
}

fn new_info(pkt: &IpPacket<'_>, seg: &TcpSegment<'_>, ts: Timestamp, conn_index: u32) -> FlowInfo {
    FlowInfo {
        slot: 0,
        key: FlowKey {
            addr: [pkt.src, pkt.dst],
            port: [seg.src_port, seg.dst_port],
            vlans: pkt.vlans,
        },
        conn_index,
        first_ts: ts,
        last_ts: ts,
        macs: pkt.macs,
        dirs: [DirInfo::EMPTY; 2],
    }
}

impl<'s> Tracker<'s> {
    pub(crate) fn new(
        flows: &'s mut [FlowRecord],
        hot: &'s mut [HotSlot],
        index: &'s mut [u32],
        blocks: &'s mut [Block],
        cfg: Config,
    ) -> Self {
        Tracker {
            table: FlowTable::new(flows, hot, index, cfg.hash_key),
            pool: Pool::new(blocks),
            cfg,
            now: Timestamp(0),
        }
    }

    /// Flows being reassembled now.
    pub(crate) fn open_len(&self) -> usize {
        self.table.open_len()
    }

    /// The most flows that can be tracked at once.
    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Out-of-order pool blocks free now.
    pub(crate) fn free_blocks(&self) -> u32 {
        self.pool.free_count()
    }

    /// Closes every open flow (reason `EndOfInput`), oldest first.
    pub(crate) fn finish<S: Sink>(&mut self, stats: &mut FlowStats, sink: &mut S) {
        while let Some(i) = self.table.oldest_open() {
            self.close(i, CloseReason::EndOfInput, stats, sink);
        }
    }

    // Inlined into both callers (the common frame's path and the A-MSDU tail): as one
    // call it was inlined, and a call per packet here costs about 70 instructions.
    #[inline(always)]
    pub(crate) fn segment<S: Sink>(
        &mut self,
        ts: Timestamp,
        pkt: &IpPacket<'_>,
        seg: &TcpSegment<'_>,
        stats: &mut FlowStats,
        sink: &mut S,
    ) -> Option<FlowRef> {
        let flags = seg.flags;
        // Every payload byte seen, whatever becomes of it (delivered, late, after close, ...).
        stats.payload_bytes += seg.payload_len as u64;
        let (found, hash) =
            self.table
                .lookup(pkt.src, seg.src_port, pkt.dst, seg.dst_port, &pkt.vlans);
        let (i, dir, h, known) = match found {
            Some((i, d)) => {
                let mut h = self.hot(i, true, stats, sink);
                let mut state = self.table.state(i);
                let last = self.table.hot_slot(h).info.last_ts;
                if state == RecordState::Open && self.idle(last) {
                    // Idle past the timeout, and not closed yet only because the open list
                    // is in second-chance order (`FlowTable::touch`): closed now, before its
                    // packet, as if the tail had been in exact order.
                    self.close(i, CloseReason::Idle, stats, sink);
                    h = self.hot(i, true, stats, sink);
                    state = self.table.state(i);
                }
                let slot = self.table.hot_slot(h);
                let fresh = is_new_connection(state, slot, d, seg);
                if fresh {
                    let conn = slot.info.conn_index.wrapping_add(1);
                    if state == RecordState::Open {
                        self.close(i, CloseReason::Reused, stats, sink);
                    }
                    stats.reused += 1;
                    stats.opened += 1;
                    // Closing packed it, most likely.
                    let h = self.hot(i, false, stats, sink);
                    self.table.reopen(i, new_info(pkt, seg, ts, conn));
                    sink.open(&self.table.hot_slot(h).info);
                    (i, Dir::AtoB, h, false)
                } else if state == RecordState::Closed {
                    // A late packet of a finished connection (the last ACK, a repeated FIN).
                    let conn_index = slot.info.conn_index;
                    stats.after_close_bytes += seg.payload_len as u64;
                    self.table.touch(i);
                    return Some(FlowRef {
                        slot: i,
                        conn_index,
                        dir: d,
                    });
                } else if state == RecordState::Evicted {
                    // The connection goes on where it stopped: same index, same offsets.
                    self.table.resume(i);
                    stats.resumed += 1;
                    let slot = self.table.hot_slot(h);
                    // The figures restart with the resumed part (each close is its own
                    // record), so gaps reported before the eviction are no longer the
                    // direction's: bytes for them are judged as any old range is.
                    for half in &mut slot.half {
                        half.forget_gaps();
                    }
                    let info = &mut slot.info;
                    for di in &mut info.dirs {
                        *di = DirInfo {
                            stream_len: di.stream_len,
                            syn: di.syn,
                            fin: di.fin,
                            rst: di.rst,
                            ..DirInfo::EMPTY
                        };
                    }
                    sink.open(info);
                    (i, d, h, false)
                } else {
                    (i, d, h, true)
                }
            }
            None => {
                let i = match self.take_record(stats, sink) {
                    Some(i) => i,
                    None => {
                        stats.untracked_bytes += seg.payload_len as u64;
                        return None;
                    }
                };
                stats.opened += 1;
                let h = self.hot(i, false, stats, sink);
                self.table.install(i, new_info(pkt, seg, ts, 0), hash, true);
                sink.open(&self.table.hot_slot(h).info);
                (i, Dir::AtoB, h, false)
            }
        };
        // A flow just installed, reopened or resumed was put at the front of its list by it.
        if known {
            self.table.touch(i);
        }
        let d = dir.index();
        let slot = self.table.hot_slot(h);
        let HotSlot { info, half, .. } = slot;
        let flow = FlowRef {
            slot: i,
            conn_index: info.conn_index,
            dir,
        };
        let mut env = Env {
            pool: &mut self.pool,
            stats,
            cfg: &self.cfg,
            sink,
        };
        info.last_ts = ts;
        if info.macs.is_none() {
            info.macs = pkt
                .macs
                .map(|m| if dir == Dir::AtoB { m } else { [m[1], m[0]] });
        }
        {
            let di = &mut info.dirs[d];
            di.packets += 1;
            di.payload_bytes += seg.payload_len as u64;
        }
        let mut data_seq = seg.seq;
        if flags.syn() {
            // A SYN after this side's own reset is a retry: the reset ended the attempt, not
            // the connection.
            info.dirs[d].rst = false;
            info.dirs[d].syn = true;
            half[d].syn(seg.seq);
            data_seq = seg.seq.wrapping_add(1);
        }
        if flags.ack() {
            half[1 - d].peer_ack(seg.ack);
        }
        if seg.payload_len > 0 {
            half[d].data(info, dir, &mut env, data_seq, seg.payload, seg.payload_len);
        }
        if flags.fin() {
            info.dirs[d].fin = true;
            half[d].fin(info, dir, &mut env, data_seq, seg.payload_len);
        }
        if flags.rst() && !half[d].rst_plausible(seg.seq) {
            env.stats.ignored_rsts += 1;
        } else if flags.rst() {
            // The side that reset sends nothing more; the other side's data already in
            // flight still arrives (and is kept, as tshark keeps it), so the flow closes
            // when that side is done too.
            info.dirs[d].rst = true;
        }
        let over = |h: &crate::stream::Half, di: &DirInfo| {
            h.finished() || h.fin_acked() || di.rst || (h.mode == Mode::Unset && di.packets == 0)
        };
        let ending =
            half[0].fin_seen() || half[1].fin_seen() || info.dirs[0].rst || info.dirs[1].rst;
        if ending && over(&half[0], &info.dirs[0]) && over(&half[1], &info.dirs[1]) {
            let reason = if info.dirs[0].rst || info.dirs[1].rst {
                CloseReason::Rst
            } else {
                CloseReason::Fin
            };
            self.close(i, reason, stats, sink);
        }
        self.table.settle(i);
        Some(flow)
    }

    // Eviction policy: what gives way when storage is full. Two kinds of storage run out.
    //
    // A flow record (a new connection needs one), taken by `take_record`, first that goes:
    // 1. a record never used or given back (`FlowTable::take_spare`);
    // 2. the least recently active closed connection (`FlowTable::recycle_oldest_closed`):
    //    it only numbers a reused 4-tuple, nothing is lost;
    // 3. the least recently active open connection, evicted: its held data delivered, its
    //    holes reported as gaps (`closed_evicted`). With `Config::resume_evicted`, one that
    //    delivered data is remembered (up to a quarter of the records) so a later packet picks
    //    it up again, and the record comes from evicting one more, or from forgetting the
    //    oldest remembered one.
    //
    // A hot slot (a connection being worked on needs one), taken by `hot`:
    // 1. a slot never used or given back;
    // 2. the slot of a connection not used since the clock hand last passed, packed back into
    //    its record (`FlowTable::make_hot`'s clock sweep): nothing is lost;
    // 3. when the few connections tried do not pack (no record to spare for a big one), one
    //    of them is evicted as above (`evict_for_hot_slot`), and forgotten if even closed it
    //    does not pack.

    /// Gives record `i` a hot slot and returns it (the common case: it has one already).
    #[inline]
    fn hot<S: Sink>(&mut self, i: u32, unpack: bool, stats: &mut FlowStats, sink: &mut S) -> u32 {
        match self.table.make_hot(i, unpack) {
            Ok(h) => h,
            Err(_) => self.evict_for_hot_slot(i, unpack, stats, sink),
        }
    }

    /// Step 3 of the hot slot policy: evicts the flows the clock sweep could not pack until
    /// record `i` gets a slot.
    #[inline(never)]
    fn evict_for_hot_slot<S: Sink>(
        &mut self,
        i: u32,
        unpack: bool,
        stats: &mut FlowStats,
        sink: &mut S,
    ) -> u32 {
        loop {
            let victim = match self.table.make_hot(i, unpack) {
                Ok(h) => return h,
                Err(v) => v,
            };
            if victim == NIL || victim == i {
                // Cannot happen: the table has hot slots (or no records to look up), at
                // least one was tried, and `i` is in none of them.
                debug_assert!(false, "no hot slot to free");
                return 0;
            }
            self.close(victim, CloseReason::Evicted, stats, sink);
            if self.table.is_hot(victim) {
                self.table.remove(victim);
            }
        }
    }

    /// Steps 1 and 2 of the record policy: a record that costs nothing to take.
    fn free_record(&mut self) -> Option<u32> {
        self.table
            .take_spare()
            .or_else(|| self.table.recycle_oldest_closed())
    }

    /// A record for a new flow, by the record policy; None only when the table has none.
    fn take_record<S: Sink>(&mut self, stats: &mut FlowStats, sink: &mut S) -> Option<u32> {
        if let Some(i) = self.free_record() {
            return Some(i);
        }
        // A victim that delivered data is remembered, and one more is evicted for the record:
        // under a flood of new connections the oldest remembered one goes, not the victim.
        for _ in 0..2 {
            let Some(old) = self.table.oldest_open() else {
                break;
            };
            let delivered = self.close(old, CloseReason::Evicted, stats, sink);
            if !(self.cfg.resume_evicted && delivered) {
                self.table.remove(old);
                return self.free_record();
            }
            if !self.table.mark_evicted(old) {
                // As many remembered as the table allows: the oldest of them makes room.
                self.table.forget_evicted();
                self.table.mark_evicted(old);
                return self.free_record();
            }
        }
        self.table.forget_evicted();
        self.free_record()
    }

    /// Closes open flow `i`; returns whether it delivered any byte (data or gap).
    fn close<S: Sink>(
        &mut self,
        i: u32,
        reason: CloseReason,
        stats: &mut FlowStats,
        sink: &mut S,
    ) -> bool {
        if self.table.state(i) != RecordState::Open {
            return false;
        }
        let h = self.hot(i, true, stats, sink);
        let HotSlot { info, half, .. } = self.table.hot_slot(h);
        // A reset connection that ends by time or input still ended with a reset.
        let reason = match reason {
            CloseReason::Idle | CloseReason::EndOfInput | CloseReason::Reused
                if info.dirs[0].rst || info.dirs[1].rst =>
            {
                CloseReason::Rst
            }
            r => r,
        };
        let mut env = Env {
            pool: &mut self.pool,
            stats,
            cfg: &self.cfg,
            sink,
        };
        for dir in Dir::BOTH {
            half[dir.index()].flush(info, dir, &mut env);
            half[dir.index()].release(env.pool);
        }
        let counter = match reason {
            CloseReason::Fin => &mut stats.closed_fin,
            CloseReason::Rst => &mut stats.closed_rst,
            CloseReason::Idle => &mut stats.closed_idle,
            CloseReason::Evicted => &mut stats.closed_evicted,
            CloseReason::Reused => &mut stats.closed_reused,
            CloseReason::EndOfInput => &mut stats.closed_end,
        };
        *counter += 1;
        sink.close(info, reason);
        let delivered = info.dirs.iter().any(|d| d.stream_len > 0);
        self.table.mark_closed(i);
        delivered
    }

    /// Whether a flow last active at `last` has been idle past the timeout.
    #[inline]
    fn idle(&self, last: Timestamp) -> bool {
        self.cfg.idle_timeout_ns != 0
            && self.now.0.saturating_sub(last.0) > self.cfg.idle_timeout_ns
    }

    #[inline]
    pub(crate) fn expire_idle<S: Sink>(
        &mut self,
        now: Timestamp,
        stats: &mut FlowStats,
        sink: &mut S,
    ) {
        self.now = now;
        if self.cfg.idle_timeout_ns != 0 {
            self.expire_idle_now(stats, sink);
        }
    }

    #[inline(never)]
    fn expire_idle_now<S: Sink>(&mut self, stats: &mut FlowStats, sink: &mut S) {
        while let Some(i) = self.table.oldest_open() {
            let h = self.hot(i, true, stats, sink);
            let last = self.table.hot_slot(h).info.last_ts;
            if !self.idle(last) {
                break;
            }
            self.close(i, CloseReason::Idle, stats, sink);
        }
    }
}
