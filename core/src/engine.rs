//! The engine: frames in, sink events out.

use crate::config::Config;
use crate::decode::{self, Addr, DecodeError, LinkType};
use crate::defrag::Defragmenter;
use crate::flow::FlowRef;
use crate::sink::Sink;
use crate::stats::Stats;
use crate::storage::{Storage, StorageError};
use crate::time::Timestamp;
use crate::tracker::Tracker;

/// What happened to a frame that decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// A TCP segment of a tracked connection was processed: which one, and its direction
    /// (also for a late packet of a connection already closed). For a frame holding several
    /// packets (802.11 A-MSDU), the last TCP segment's.
    Tcp(FlowRef),
    /// A TCP segment for a new connection found no record to track it in (which happens only
    /// when the storage holds no flow record): its bytes are counted in `untracked_bytes`.
    Untracked,
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
    /// An engine over `storage`, or why the storage cannot be used whole (see
    /// [`Storage::check`]): the engine never takes less than it is given.
    pub fn new(storage: Storage<'s>, config: Config) -> Result<Self, StorageError> {
        storage.check()?;
        Ok(Engine {
            tracker: Tracker::new(
                storage.flows,
                storage.hot,
                storage.index,
                storage.blocks,
                config,
            ),
            defrag: Defragmenter::new(
                storage.frag_slots,
                storage.frag_arena,
                config.frag_timeout_ns,
            ),
            stats: Stats::default(),
            now: Timestamp(0),
        })
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
        // The packet is read where the decoder left it, and the result is the value returned
        // on every path (so built in the caller's slot): a copy of either, stored piecewise
        // and read back whole, stalls. One call of `packet` (it is large and inlined).
        let decoded = decode::decode_frame(link, frame, &mut self.stats.decode);
        let pkt = match &decoded {
            Ok(p) => p,
            Err(e) => return self.refuse(*e),
        };
        let mut outcome = self.packet(ts, pkt, sink);
        if self.stats.decode.wifi_amsdu_skipped != skipped {
            outcome = self.more_msdus(ts, link, frame, skipped, outcome, sink);
        }
        outcome
    }

    /// The A-MSDU subframes after the first of `frame`, each a packet of its own (of any
    /// flow): the outcome is the last TCP segment's (`first` is the first subframe's); out of
    /// line, so that the common frame's path stays as it is.
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
                Ok((pkt, _)) => self.packet(ts, &pkt, sink),
                Err(e) => self.refuse(e),
            };
            if matches!(r, Ok(Outcome::Tcp(_) | Outcome::Untracked)) || outcome.is_err() {
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
        pkt: &decode::IpPacket<'_>,
        sink: &mut S,
    ) -> Result<Outcome, DecodeError> {
        // A reassembled tunnel's inner packet, which borrows the fragment buffer for less
        // long, may take the packet's place.
        let inner_pkt;
        let mut pkt = pkt;
        if ts > self.now {
            self.now = ts;
            self.tracker
                .expire_idle(self.now, &mut self.stats.flow, sink);
        }
        let (protocol, payload, claimed) = if pkt.fragment.is_some() {
            match self.defrag.push(ts, pkt, &mut self.stats.frag) {
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
                    match decode::decode_tunnel(pkt, proto, rest) {
                        Ok(None) => (proto, rest, rest.len() as u32),
                        Ok(Some(inner)) if inner.fragment.is_none() => {
                            inner_pkt = inner;
                            pkt = &inner_pkt;
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
        match self
            .tracker
            .segment(ts, pkt, &seg, &mut self.stats.flow, sink)
        {
            Some(flow) => Ok(Outcome::Tcp(flow)),
            None => Ok(Outcome::Untracked),
        }
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

    /// Closes every open flow (reason `EndOfInput`), oldest first (second-chance order),
    /// delivering what is held and reporting holes as gaps; drops incomplete fragmented datagrams (counted).
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        self.tracker.finish(&mut self.stats.flow, sink);
        self.defrag.flush(&mut self.stats.frag);
    }

    /// Every counter.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Flows being reassembled now.
    pub fn open_flows(&self) -> usize {
        self.tracker.open_len()
    }

    /// The most flows that can be tracked at once with the storage given.
    pub fn capacity(&self) -> usize {
        self.tracker.capacity()
    }

    /// Out-of-order pool blocks free now.
    pub fn free_blocks(&self) -> u32 {
        self.tracker.free_blocks()
    }
}
