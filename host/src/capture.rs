//! Live capture on a thread of its own.
//!
//! The capturing thread does nothing but drain libpcap's ring into batches and hand them to
//! the packet loop through a bounded queue: file writes, flow table work and a slow disk stall
//! the packet loop, never the ring. libpcap runs without immediate mode, so the kernel hands
//! over whole blocks of packets and the thread wakes a few times per block, not per packet.
//!
//! Every packet lost is counted where it was lost: `pcap_dropped` (the kernel's ring was full),
//! `pcap_if_dropped` (the interface), `queue_dropped` (the queue between the threads was full:
//! the packet loop fell behind by more than `--queue-size`).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pcap::{Active, Capture};
use tcpflow_core::Timestamp;

/// A batch is handed over when it holds this many bytes (or when the ring has no more).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Each packet's header in a batch: time (8), wire length (4), captured length (4).
const HEADER: usize = 16;
/// How long the capturing thread waits in poll(2) for the kernel to hand over a block.
const POLL_MS: i32 = 100;
/// Batches kept for reuse when the packet loop has caught up (the rest are freed).
const KEEP_BATCHES: usize = 4;

/// What the capturing thread counted, handed back when it ends.
#[derive(Debug, Default, Clone)]
pub struct CaptureStats {
    /// libpcap's counters (`pcap_stats`), when it could give them.
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
    /// Packets taken from the ring but dropped because the queue was full.
    pub queue_dropped: u64,
    /// Batches handed over, and the most bytes waiting in the queue at once.
    pub batches: u64,
    pub queue_peak_bytes: u64,
    /// Why the capture ended early (a capture error), if it did.
    pub error: Option<String>,
}

/// Packets captured and not yet processed, in the order they came.
pub struct Batch {
    buf: Vec<u8>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            buf: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, ts: Timestamp, origlen: u32, data: &[u8]) {
        self.buf.extend_from_slice(&ts.0.to_le_bytes());
        self.buf.extend_from_slice(&origlen.to_le_bytes());
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    /// Whether a packet of `len` captured bytes still fits without growing the buffer.
    fn fits(&self, len: usize) -> bool {
        self.buf.len() + HEADER + len <= self.buf.capacity()
    }

    pub fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Each packet: (time, wire length, captured bytes).
    pub fn packets(&self) -> BatchIter<'_> {
        BatchIter { rest: &self.buf }
    }
}

pub struct BatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = (Timestamp, u32, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < HEADER {
            return None;
        }
        let (h, rest) = self.rest.split_at(HEADER);
        let ts = u64::from_le_bytes(h[0..8].try_into().expect("8 bytes"));
        let origlen = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
        let caplen = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes")) as usize;
        // Written by this module only: the length is always there.
        let (data, rest) = rest.split_at(caplen.min(rest.len()));
        self.rest = rest;
        Some((Timestamp(ts), origlen, data))
    }
}

/// What a [`Source`] has for the capturing thread.
pub enum Polled<'a> {
    /// A packet: its time, wire length and captured bytes.
    Packet(Timestamp, u32, &'a [u8]),
    /// Nothing ready now.
    Empty,
    /// No more packets will come.
    End,
    /// The capture failed.
    Error(String),
}

/// Where the capturing thread takes packets from: libpcap's live capture (or a test's).
pub trait Source: Send + 'static {
    /// Waits at most `ms` for packets to be ready (a signal may end the wait early).
    fn wait(&mut self, ms: i32);
    fn next(&mut self) -> Polled<'_>;
    /// Packets received, dropped by the ring, dropped by the interface, when known.
    fn counters(&mut self) -> Option<(u64, u64, u64)>;
}

impl Source for Capture<Active> {
    fn wait(&mut self, ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd. EINTR (a signal) just ends the wait.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }

    fn next(&mut self) -> Polled<'_> {
        match self.next_packet() {
            Ok(p) => {
                let ts = Timestamp(
                    (p.header.ts.tv_sec.max(0) as u64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(p.header.ts.tv_usec.max(0) as u64 * 1000),
                );
                Polled::Packet(ts, p.header.len, p.data)
            }
            Err(pcap::Error::TimeoutExpired) => Polled::Empty,
            Err(pcap::Error::NoMorePackets) => Polled::End,
            Err(e) => Polled::Error(e.to_string()),
        }
    }

    fn counters(&mut self) -> Option<(u64, u64, u64)> {
        self.stats()
            .ok()
            .map(|s| (s.received.into(), s.dropped.into(), s.if_dropped.into()))
    }
}

/// The packet loop's end of a live capture.
pub struct LiveCapture {
    full: Receiver<Batch>,
    empty: SyncSender<Batch>,
    queued: Arc<AtomicUsize>,
    /// Batches that exist (in either queue, or being filled): the capturing thread makes
    /// them up to the bound, the packet loop frees the spare ones once it has caught up.
    allocated: Arc<AtomicUsize>,
    thread: Option<JoinHandle<CaptureStats>>,
}

/// What [`LiveCapture::next`] gives.
pub enum Next {
    Batch(Batch),
    /// Nothing came within the wait: time to run timeouts.
    Idle,
    /// The capturing thread ended (stopped, or a capture error); the queue is empty.
    Ended,
}

impl LiveCapture {
    /// Starts the capturing thread on an opened (nonblocking) capture. `queue_bytes` bounds the
    /// packets waiting between the threads; batches are allocated as the queue grows, so a
    /// loop that keeps up holds one or two.
    pub fn start<S: Source>(cap: S, queue_bytes: usize, stop: Arc<AtomicBool>) -> LiveCapture {
        let batches = (queue_bytes / BATCH_BYTES).max(2);
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(batches);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Batch>(batches);
        let queued = Arc::new(AtomicUsize::new(0));
        let allocated = Arc::new(AtomicUsize::new(1));
        let (q, a) = (queued.clone(), allocated.clone());
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(cap, batches, full_tx, empty_rx, q, a, stop))
            .expect("spawning the capture thread");
        LiveCapture {
            full: full_rx,
            empty: empty_tx,
            queued,
            allocated,
            thread: Some(thread),
        }
    }

    /// The next batch, waiting at most `wait`.
    pub fn next(&mut self, wait: Duration) -> Next {
        match self.full.recv_timeout(wait) {
            Ok(b) => {
                self.queued.fetch_sub(b.len_bytes(), Ordering::Relaxed);
                Next::Batch(b)
            }
            Err(RecvTimeoutError::Timeout) => Next::Idle,
            Err(RecvTimeoutError::Disconnected) => Next::Ended,
        }
    }

    /// Gives a processed batch back for reuse; once the loop has caught up, batches beyond
    /// a few are freed instead, so the memory a burst took is given back.
    pub fn recycle(&mut self, mut b: Batch) {
        if self.queued.load(Ordering::Relaxed) == 0
            && self.allocated.load(Ordering::Relaxed) > KEEP_BATCHES
        {
            self.allocated.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        b.buf.clear();
        // The thread may have ended; a batch it no longer wants is freed.
        let _ = self.empty.try_send(b);
    }

    /// Batches that exist now (for tests).
    pub fn batches_allocated(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Waits for the capturing thread (stopped by the stop flag) and returns its counters.
    /// Batches still queued must have been taken with [`LiveCapture::next`] first.
    pub fn join(mut self) -> CaptureStats {
        drop(self.empty);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(s)) => s,
            _ => CaptureStats {
                error: Some("the capture thread failed".into()),
                ..CaptureStats::default()
            },
        }
    }
}

fn capture_loop<S: Source>(
    mut cap: S,
    max_batches: usize,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
    queued: Arc<AtomicUsize>,
    allocated: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> CaptureStats {
    let mut st = CaptureStats::default();
    let mut cur = Some(Batch::with_capacity(BATCH_BYTES));
    // Hands the current batch over; returns false when the packet loop is gone.
    let hand_over = |cur: &mut Option<Batch>, st: &mut CaptureStats| {
        let Some(b) = cur.take() else { return true };
        if b.buf.is_empty() {
            *cur = Some(b);
            return true;
        }
        let n = b.len_bytes();
        let now = queued.fetch_add(n, Ordering::Relaxed) + n;
        st.queue_peak_bytes = st.queue_peak_bytes.max(now as u64);
        st.batches += 1;
        // Never blocks: there are at most `max_batches` batches and the channel holds that
        // many.
        if full.try_send(b).is_err() {
            return false;
        }
        *cur = match empty.try_recv() {
            Ok(b) => Some(b),
            Err(TryRecvError::Empty) if allocated.load(Ordering::Relaxed) < max_batches => {
                allocated.fetch_add(1, Ordering::Relaxed);
                Some(Batch::with_capacity(BATCH_BYTES))
            }
            // The queue is full: packets are dropped (and counted) until a batch comes back.
            Err(_) => None,
        };
        true
    };
    'outer: loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            cap.wait(POLL_MS);
        }
        // Drain what the ring holds; on stop this takes the packets captured before it.
        loop {
            if cur.is_none() {
                cur = empty.try_recv().ok();
            }
            match cap.next() {
                Polled::Packet(ts, origlen, data) => {
                    if cur.as_ref().is_some_and(|b| !b.fits(data.len()))
                        && !hand_over(&mut cur, &mut st)
                    {
                        break 'outer;
                    }
                    match &mut cur {
                        Some(b) if b.fits(data.len()) => b.push(ts, origlen, data),
                        // A packet larger than a batch (snap length up to 256 KiB) makes the
                        // batch grow to hold it.
                        Some(b) => {
                            b.buf.reserve_exact(HEADER + data.len());
                            b.push(ts, origlen, data);
                        }
                        None => st.queue_dropped += 1,
                    }
                }
                Polled::Empty => break,
                Polled::End => {
                    let _ = hand_over(&mut cur, &mut st);
                    break 'outer;
                }
                Polled::Error(e) => {
                    st.error = Some(e);
                    let _ = hand_over(&mut cur, &mut st);
                    break 'outer;
                }
            }
        }
        // The ring is empty for now: what was gathered goes to the packet loop, so a quiet
        // link still sees its packets within a poll round.
        if !hand_over(&mut cur, &mut st) || stopping {
            break;
        }
    }
    if let Some((received, dropped, if_dropped)) = cap.counters() {
        st.received = received;
        st.dropped = dropped;
        st.if_dropped = if_dropped;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let mut b = Batch::with_capacity(BATCH_BYTES);
        let pkts: Vec<(u64, u32, Vec<u8>)> = (0..100u32)
            .map(|i| (u64::from(i) * 1_000_003, i + 60, vec![i as u8; i as usize]))
            .collect();
        for (t, o, d) in &pkts {
            assert!(b.fits(d.len()));
            b.push(Timestamp(*t), *o, d);
        }
        let back: Vec<(u64, u32, Vec<u8>)> =
            b.packets().map(|(t, o, d)| (t.0, o, d.to_vec())).collect();
        assert_eq!(back, pkts);
    }

    /// Packets of 1,000 bytes numbered 0.., `burst` every millisecond, then `End`.
    struct Fake {
        next: u64,
        total: u64,
        burst: u64,
        ready: u64,
        buf: Vec<u8>,
        /// From this packet on, a trickle of 20 a millisecond (a burst that ends).
        calm_after: u64,
    }

    impl Source for Fake {
        fn wait(&mut self, _ms: i32) {
            // A burst arrives every millisecond.
            std::thread::sleep(Duration::from_millis(1));
            self.ready = if self.next >= self.calm_after {
                self.burst.min(20)
            } else {
                self.burst
            };
        }
        fn next(&mut self) -> Polled<'_> {
            if self.next == self.total {
                return Polled::End;
            }
            if self.ready == 0 {
                return Polled::Empty;
            }
            self.ready -= 1;
            self.buf.clear();
            self.buf.extend_from_slice(&self.next.to_le_bytes());
            self.buf.resize(1000, 0xab);
            self.next += 1;
            Polled::Packet(Timestamp(self.next), 1000, &self.buf)
        }
        fn counters(&mut self) -> Option<(u64, u64, u64)> {
            Some((self.next, 0, 0))
        }
    }

    /// Runs a fake capture of `total` packets (`burst` a millisecond) into a queue of `queue`
    /// bytes, with a packet
    /// loop that sleeps `delay` per batch: the packets seen (by number) and the counters.
    fn run_fake(total: u64, burst: u64, queue: usize, delay: Duration) -> (Vec<u64>, CaptureStats) {
        let src = Fake {
            next: 0,
            total,
            burst,
            ready: 0,
            buf: Vec::new(),
            calm_after: u64::MAX,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut cap = LiveCapture::start(src, queue, stop);
        let mut seen = Vec::new();
        loop {
            match cap.next(Duration::from_secs(5)) {
                Next::Batch(b) => {
                    for (ts, len, d) in b.packets() {
                        assert_eq!(len, 1000);
                        assert_eq!(d.len(), 1000);
                        let n = u64::from_le_bytes(d[..8].try_into().unwrap());
                        assert_eq!(ts.0, n + 1);
                        seen.push(n);
                    }
                    cap.recycle(b);
                    std::thread::sleep(delay);
                }
                Next::Idle => panic!("the fake source never idles"),
                Next::Ended => break,
            }
        }
        (seen, cap.join())
    }

    #[test]
    fn a_loop_that_keeps_up_sees_every_packet_in_order() {
        let (seen, st) = run_fake(20_000, 100, 4 << 20, Duration::ZERO);
        assert_eq!(st.queue_dropped, 0, "{st:?}");
        assert!(
            seen == (0..20_000).collect::<Vec<_>>(),
            "{} seen",
            seen.len()
        );
        assert_eq!(st.received, 20_000);
        assert!(st.queue_peak_bytes <= 4 << 20);
    }

    #[test]
    fn a_slow_loop_costs_counted_drops_never_disorder() {
        // Two batches of queue, a loop slower than the source: packets are dropped at the
        // queue, each one counted, and those that pass keep their order.
        let (seen, st) = run_fake(20_000, 700, 2 * BATCH_BYTES, Duration::from_millis(5));
        assert!(st.queue_dropped > 0, "{st:?}");
        assert_eq!(seen.len() as u64 + st.queue_dropped, 20_000);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert!(st.queue_peak_bytes <= 2 * BATCH_BYTES as u64);
    }

    #[test]
    fn batches_a_burst_took_are_freed_once_caught_up() {
        // A loop slow for its first batches lets the queue grow to many batches; once it
        // has caught up, all but a few are freed. The burst ends (a trickle follows), so the
        // loop catches up however slow a loaded machine makes it.
        let src = Fake {
            next: 0,
            total: 20_000,
            burst: 700,
            ready: 0,
            buf: Vec::new(),
            calm_after: 12_000,
        };
        let mut cap = LiveCapture::start(src, 8 << 20, Arc::new(AtomicBool::new(false)));
        let (mut n, mut peak) = (0u64, 0);
        loop {
            match cap.next(Duration::from_secs(5)) {
                Next::Batch(b) => {
                    n += b.packets().count() as u64;
                    peak = peak.max(cap.batches_allocated());
                    cap.recycle(b);
                    if peak < 2 * KEEP_BATCHES {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Next::Idle => panic!("the fake source never idles"),
                Next::Ended => break,
            }
        }
        assert!(peak >= 2 * KEEP_BATCHES, "peak {peak}");
        assert!(cap.batches_allocated() <= KEEP_BATCHES + 1);
        let st = cap.join();
        assert_eq!(n + st.queue_dropped, 20_000);
    }

    #[test]
    fn fits_is_exact() {
        let mut b = Batch::with_capacity(64);
        assert!(b.fits(48));
        assert!(!b.fits(49));
        b.push(Timestamp(1), 100, &[7; 48]);
        assert!(!b.fits(0));
        assert_eq!(b.packets().count(), 1);
    }
}
