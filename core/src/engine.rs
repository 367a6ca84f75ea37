//! The engine: frames in, sink events out.

use crate::config::Config;
use crate::decode::{self, Addr, DecodeError, IpPacket, LinkType, TcpSegment};
use crate::defrag::Defragmenter;
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::pool::{Pool, NIL};
use crate::sink::{CloseReason, Sink};
use crate::stats::{FlowStats, Stats};
use crate::storage::Storage;
use crate::stream::{Env, Mode};
use crate::table::{FlowSlot, FlowTable, SlotState};
use crate::time::Timestamp;

/// What happened to a frame that decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// A TCP segment was processed.
    Tcp,
    /// A fragment was held until its datagram completes.
    FragmentHeld,
    /// Not TCP (or not IP): ignored.
    Ignored,
}

/// 802.11 A-MSDU subframes taken from one frame at most (the rest are counted in
/// `wifi_amsdu_skipped`).
pub const MAX_MSDUS: u16 = 256;

/// The reassembly engine.
#[derive(Debug)]
pub struct Engine<'s> {
    tracker: Tracker<'s>,
    defrag: Defragmenter<'s>,
    stats: Stats,
    now: Timestamp,
}

impl<'s> Engine<'s> {
    pub fn new(storage: Storage<'s>, config: Config) -> Self {
        Engine {
            tracker: Tracker {
                table: FlowTable::new(storage.flows, storage.hot, storage.index, config.hash_key),
                pool: Pool::new(storage.blocks),
                cfg: config,
            },
            defrag: Defragmenter::new(
                storage.frag_slots,
                storage.frag_arena,
                config.frag_timeout_ns,
            ),
            stats: Stats::default(),
            now: Timestamp(0),
        }
    }

    /// Feeds one frame captured at `ts` on a link of type `link`. A refused frame is counted
    /// and its error returned (nothing else changes); frames that are not TCP are counted and
    /// ignored.
    pub fn process<S: Sink>(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        sink: &mut S,
    ) -> Result<Outcome, DecodeError> {
        self.stats.decode.frames += 1;
        // decode_frame counts the A-MSDU subframes after the first as skipped: taken back
        // here, they are decoded below (the common frame holds one packet and pays a compare).
        let skipped = self.stats.decode.wifi_amsdu_skipped;
        let pkt = match decode::decode_frame(link, frame, &mut self.stats.decode) {
            Ok(p) => p,
            Err(e) => return self.refuse(e),
        };
        let first = self.packet(ts, pkt, sink);
        if self.stats.decode.wifi_amsdu_skipped == skipped {
            return first;
        }
        self.more_msdus(ts, link, frame, skipped, first, sink)
    }

    /// The A-MSDU subframes after the first of `frame`, each a packet of its own (of any
    /// flow); out of line, so that the common frame's path stays as it is.
    #[cold]
    #[inline(never)]
    fn more_msdus<S: Sink>(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        skipped: u64,
        first: Result<Outcome, DecodeError>,
        sink: &mut S,
    ) -> Result<Outcome, DecodeError> {
        let more = self.stats.decode.wifi_amsdu_skipped - skipped;
        self.stats.decode.wifi_amsdu_skipped = skipped;
        let more = u16::try_from(more).unwrap_or(u16::MAX);
        // Finding subframe k walks the k before it, so a crafted frame of many tiny
        // subframes is taken up to a bound (real ones hold a few, or about 130 bare ACKs in
        // 11n's 7,935 bytes) and the rest counted.
        let take = more.min(MAX_MSDUS - 1);
        self.stats.decode.wifi_amsdu_skipped += u64::from(more - take);
        let mut outcome = first;
        for k in 1..=take {
            let r = match decode::decode_frame_at(link, frame, k) {
                Ok((pkt, _)) => self.packet(ts, pkt, sink),
                Err(e) => self.refuse(e),
            };
            if matches!(r, Ok(Outcome::Tcp)) || outcome.is_err() {
                outcome = r;
            }
        }
        outcome
    }

    /// One decoded packet: defragmented, then its TCP segment to the tracker.
    #[inline(always)]
    fn packet<S: Sink>(
        &mut self,
        ts: Timestamp,
        pkt: decode::IpPacket<'_>,
        sink: &mut S,
    ) -> Result<Outcome, DecodeError> {
        // A local of its own: a reassembled tunnel's inner packet, which borrows the
        // fragment buffer for less long, may take its place.
        let mut pkt = pkt;
        if ts > self.now {
            self.now = ts;
            self.tracker
                .expire_idle(self.now, &mut self.stats.flow, sink);
        }
        let (protocol, payload, claimed) = if pkt.fragment.is_some() {
            match self.defrag.push(ts, &pkt, &mut self.stats.frag) {
                None => return Ok(Outcome::FragmentHeld),
                Some((proto, bytes)) => {
                    let (proto, skip) = match pkt.src {
                        Addr::V6(_) => match decode::skip_ipv6_extensions(proto, bytes) {
                            Ok(r) => r,
                            Err(e) => {
                                e.count(&mut self.stats.decode);
                                return Err(e);
                            }
                        },
                        Addr::V4(_) => (proto, 0),
                    };
                    let rest = &bytes[skip.min(bytes.len())..];
                    // A tunnel whose outer packets were fragmented opens only now.
                    match decode::decode_tunnel(&pkt, proto, rest) {
                        Ok(None) => (proto, rest, rest.len() as u32),
                        Ok(Some(inner)) if inner.fragment.is_none() => {
                            pkt = inner;
                            (inner.protocol, inner.payload, inner.payload_len)
                        }
                        Ok(Some(inner)) => {
                            // Fragments inside a reassembled tunnel are not reassembled again.
                            self.stats.frag.too_big += 1;
                            self.stats.frag.dropped_bytes += inner.payload.len() as u64;
                            return Ok(Outcome::Ignored);
                        }
                        Err(e) => {
                            e.count(&mut self.stats.decode);
                            return Err(e);
                        }
                    }
                }
            }
        } else {
            (pkt.protocol, pkt.payload, pkt.payload_len)
        };
        if protocol != 6 {
            self.stats.decode.not_tcp += 1;
            return Ok(Outcome::Ignored);
        }
        let seg = match decode::decode_tcp(payload, claimed) {
            Ok(s) => s,
            Err(e) => {
                e.count(&mut self.stats.decode);
                return Err(e);
            }
        };
        self.stats.decode.tcp_segments += 1;
        if (seg.payload.len() as u32) < seg.payload_len {
            self.stats.decode.snaplen_cut += 1;
        }
        self.tracker
            .segment(ts, &pkt, &seg, &mut self.stats.flow, sink);
        Ok(Outcome::Tcp)
    }

    fn refuse(&mut self, e: DecodeError) -> Result<Outcome, DecodeError> {
        e.count(&mut self.stats.decode);
        match e {
            // Encrypted 802.11 frames are as expected as ARP: counted, ignored.
            DecodeError::NotIp | DecodeError::Protected => Ok(Outcome::Ignored),
            e => Err(e),
        }
    }

    /// Runs timeouts up to `now` without a packet (live capture when traffic stops).
    pub fn advance<S: Sink>(&mut self, now: Timestamp, sink: &mut S) {
        if now > self.now {
            self.now = now;
        }
        self.tracker
            .expire_idle(self.now, &mut self.stats.flow, sink);
        self.defrag.expire(self.now, &mut self.stats.frag);
    }

    /// Closes every open flow (reason `EndOfInput`), oldest first, delivering what is held
    /// and reporting holes as gaps; drops incomplete fragmented datagrams (counted).
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        while let Some(i) = self.tracker.table.oldest_open() {
            self.tracker
                .close(i, CloseReason::EndOfInput, &mut self.stats.flow, sink);
        }
        self.defrag.flush(&mut self.stats.frag);
    }

    /// Every counter.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Flows being reassembled now.
    pub fn open_flows(&self) -> usize {
        self.tracker.table.open_len()
    }

    /// The most flows that can be tracked at once with the storage given.
    pub fn capacity(&self) -> usize {
        self.tracker.table.capacity()
    }

    /// Out-of-order pool blocks free now.
    pub fn free_blocks(&self) -> u32 {
        self.tracker.pool.free_count()
    }
}

/// The flow table and the pool: everything a segment touches.
#[derive(Debug)]
struct Tracker<'s> {
    table: FlowTable<'s>,
    pool: Pool<'s>,
    cfg: Config,
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
    // Inlined into both callers (the common frame's path and the A-MSDU tail): as one
    // call it was inlined, and a call per packet here costs about 70 instructions.
    #[inline(always)]
    fn segment<S: Sink>(
        &mut self,
        ts: Timestamp,
        pkt: &IpPacket<'_>,
        seg: &TcpSegment<'_>,
        stats: &mut FlowStats,
        sink: &mut S,
    ) {
        let flags = seg.flags;
        // Every payload byte seen, whatever becomes of it (delivered, late, after close, ...).
        stats.payload_bytes += seg.payload_len as u64;
        let (found, hash) =
            self.table
                .lookup(pkt.src, seg.src_port, pkt.dst, seg.dst_port, &pkt.vlans);
        let (i, dir, h) = match found {
            Some((i, d)) => {
                let h = self.hot(i, true, stats, sink);
                let state = self.table.state(i);
                let slot = self.table.slot_at(h);
                let fresh = match state {
                    SlotState::Open => {
                        // A connection attempt on a live 4-tuple is a new connection unless
                        // it repeats this side's SYN.
                        let h = &slot.half[d.index()];
                        flags.syn()
                            && !flags.ack()
                            && h.mode != Mode::Unset
                            && !(h.has_syn && h.isn == seg.seq)
                    }
                    SlotState::Evicted => {
                        // Evicted, not finished: only a new SYN, or data far from where its
                        // direction stopped, starts another connection.
                        let h = &slot.half[d.index()];
                        (flags.syn() && !(h.has_syn && h.isn == seg.seq))
                            || (!flags.syn()
                                && seg.payload_len > 0
                                && h.mode != Mode::Unset
                                && h.is_far(seg.seq))
                    }
                    SlotState::Closed => {
                        // A repeat of the finished connection's own SYN is not a new one.
                        let h = &slot.half[d.index()];
                        let reset = slot.info.dirs[0].rst || slot.info.dirs[1].rst;
                        let old_syn = h.has_syn && h.isn == seg.seq && !reset;
                        (flags.syn() && !old_syn)
                            || (!flags.syn()
                                && seg.payload_len > 0
                                && (h.mode == Mode::Unset || h.is_far(seg.seq)))
                    }
                    SlotState::Free | SlotState::Spill => true,
                };
                if fresh {
                    let conn = slot.info.conn_index.wrapping_add(1);
                    if state == SlotState::Open {
                        self.close(i, CloseReason::Reused, stats, sink);
                    }
                    stats.reused += 1;
                    stats.opened += 1;
                    // Closing packed it, most likely.
                    let h = self.hot(i, false, stats, sink);
                    self.table.reopen(i, new_info(pkt, seg, ts, conn));
                    sink.open(&self.table.slot_at(h).info);
                    (i, Dir::AtoB, h)
                } else if state == SlotState::Closed {
                    // A late packet of a finished connection (the last ACK, a repeated FIN).
                    stats.after_close_bytes += seg.payload_len as u64;
                    self.table.touch(i);
                    return;
                } else if state == SlotState::Evicted {
                    // The connection goes on where it stopped: same index, same offsets.
                    self.table.resume(i);
                    stats.resumed += 1;
                    let slot = self.table.slot_at(h);
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
                    (i, d, h)
                } else {
                    (i, d, h)
                }
            }
            None => {
                let i = match self.take_slot(stats, sink) {
                    Some(i) => i,
                    None => {
                        stats.untracked_bytes += seg.payload_len as u64;
                        return;
                    }
                };
                stats.opened += 1;
                let h = self.hot(i, false, stats, sink);
                self.table.install(i, new_info(pkt, seg, ts, 0), hash, true);
                sink.open(&self.table.slot_at(h).info);
                (i, Dir::AtoB, h)
            }
        };
        self.table.touch(i);
        let d = dir.index();
        let slot = self.table.slot_at(h);
        let FlowSlot { info, half, .. } = slot;
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
    }

    /// Gives record `i` a full slot (see [`FlowTable::make_hot`]) and returns it. When the
    /// flows tried for their slot do not pack (no record to spare), one of them is closed
    /// (evicted: its data delivered, holes reported), and forgotten if even closed it does not
    /// pack.
    #[inline]
    fn hot<S: Sink>(&mut self, i: u32, unpack: bool, stats: &mut FlowStats, sink: &mut S) -> u32 {
        match self.table.make_hot(i, unpack) {
            Ok(h) => h,
            Err(_) => self.make_room(i, unpack, stats, sink),
        }
    }

    #[inline(never)]
    fn make_room<S: Sink>(
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
                // Cannot happen: the table has full slots (or no records to look up), at
                // least one was tried, and `i` is in none of them.
                debug_assert!(false, "no full slot to free");
                return 0;
            }
            self.close(victim, CloseReason::Evicted, stats, sink);
            if self.table.is_hot(victim) {
                self.table.remove(victim);
            }
        }
    }

    /// A record for a new flow: free, else a closed one, else the least recently active open
    /// flow is evicted (its data delivered, holes reported).
    fn take_slot<S: Sink>(&mut self, stats: &mut FlowStats, sink: &mut S) -> Option<u32> {
        if let Some(i) = self.table.take_free() {
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
                return self.table.take_free();
            }
            if !self.table.mark_evicted(old) {
                // As many remembered as the table allows: the oldest of them makes room.
                self.table.forget_evicted();
                self.table.mark_evicted(old);
                return self.table.take_free();
            }
        }
        self.table.forget_evicted();
        self.table.take_free()
    }

    /// Closes open flow `i`; returns whether it delivered any byte (data or gap).
    fn close<S: Sink>(
        &mut self,
        i: u32,
        reason: CloseReason,
        stats: &mut FlowStats,
        sink: &mut S,
    ) -> bool {
        if self.table.state(i) != SlotState::Open {
            return false;
        }
        let h = self.hot(i, true, stats, sink);
        let FlowSlot { info, half, .. } = self.table.slot_at(h);
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

    #[inline]
    fn expire_idle<S: Sink>(&mut self, now: Timestamp, stats: &mut FlowStats, sink: &mut S) {
        if self.cfg.idle_timeout_ns != 0 {
            self.expire_idle_now(now, stats, sink);
        }
    }

    #[inline(never)]
    fn expire_idle_now<S: Sink>(&mut self, now: Timestamp, stats: &mut FlowStats, sink: &mut S) {
        let idle = self.cfg.idle_timeout_ns;
        while let Some(i) = self.table.oldest_open() {
            let h = self.hot(i, true, stats, sink);
            let last = self.table.slot_at(h).info.last_ts;
            if now.0.saturating_sub(last.0) <= idle {
                break;
            }
            self.close(i, CloseReason::Idle, stats, sink);
        }
    }
}
