//! Hostile traffic against the core, through its public API only: frames built by hand, a
//! recording sink of the test kit (`tcpflow_core::testkit`), bounded memory (the storage handed in, nothing else:
//! a counting allocator shows the engine allocates nothing while it runs) and bounded time.
//!
//! Each test prints the engine's memory: the sum of the storage slices it was handed
//! (`Capacities::memory_bytes`) plus the `Engine` value itself. It cannot grow.
//!
//! The > 4 GiB flow takes a few seconds: `cargo test -p tcpflow-core --test hostile --
//! --nocapture` shows every figure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use tcpflow_core::testkit::{Rec, Store};
use tcpflow_core::{
    Capacities, CloseReason, Config, Dir, Engine, FlowInfo, GapReason, LinkType, OverlapPolicy,
    Sink, Stats, Timestamp,
};

// ---------------------------------------------------------------------------------------
// Allocation counting: per thread, so that tests running in parallel do not disturb each
// other.

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread may be tearing down its locals.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread local without a destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

// ---------------------------------------------------------------------------------------
// Storage

/// Prints the engine's memory and checks it is what `Capacities` says.
fn report(store: &Store, what: &str) -> usize {
    let caps = Capacities {
        flows: store.flows.len(),
        blocks: store.blocks.len(),
        frag_slots: store.frag_slots.len(),
        frag_slot_bytes: store.frag_arena.len() / store.frag_slots.len().max(1),
    };
    let storage = store.bytes();
    assert_eq!(
        storage,
        caps.memory_bytes(),
        "storage is what Capacities says"
    );
    let engine = std::mem::size_of::<Engine<'_>>();
    println!(
        "{what}: engine memory {} bytes ({:.1} MiB): storage {storage} ({} flows, {} pool \
         blocks, {} x {} fragment bytes) + Engine value {engine}",
        storage + engine,
        (storage + engine) as f64 / (1 << 20) as f64,
        caps.flows,
        caps.blocks,
        caps.frag_slots,
        caps.frag_slot_bytes,
    );
    storage + engine
}

fn caps(flows: usize, blocks: usize, frag_slots: usize) -> Capacities {
    Capacities {
        flows,
        blocks,
        frag_slots,
        frag_slot_bytes: 65536,
    }
}

// ---------------------------------------------------------------------------------------
// Frames

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Offsets in the frames built here (Ethernet, IPv4 without options, TCP).
const IP: usize = 14;
const TCP: usize = IP + 20;

type End = ([u8; 4], u16);

/// Writes an Ethernet/IPv4/TCP frame into `out` (reusing its allocation). `ip_len0`: IPv4
/// total length 0, as a TSO super-packet captured before the NIC split it.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    out: &mut Vec<u8>,
    src: End,
    dst: End,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &[u8],
    payload: &[u8],
    ip_len0: bool,
) {
    assert_eq!(options.len() % 4, 0);
    let tcp_len = 20 + options.len();
    out.clear();
    out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = if ip_len0 {
        0
    } else {
        (20 + tcp_len + payload.len()) as u16
    };
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    out.extend_from_slice(&src.0);
    out.extend_from_slice(&dst.0);
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.push((tcp_len as u8 / 4) << 4);
    out.push(flags);
    out.extend_from_slice(&window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(options);
    out.extend_from_slice(payload);
}

/// An Ethernet/IPv4 fragment: `data` at byte `offset` (a multiple of 8) of datagram `ident`.
fn ipv4_fragment(
    src: [u8; 4],
    dst: [u8; 4],
    ident: u16,
    offset: usize,
    more: bool,
    data: &[u8],
) -> Vec<u8> {
    assert_eq!(offset % 8, 0);
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    v.extend_from_slice(&[0x45, 0]);
    v.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    v.extend_from_slice(&ident.to_be_bytes());
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, 6, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(data);
    v
}

/// A TCP header (no options) and payload: the upper layer of a fragmented datagram.
fn tcp_segment(src: u16, dst: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    tcp_frame(
        &mut v,
        ([0; 4], src),
        ([0; 4], dst),
        seq,
        ack,
        flags,
        65535,
        &[],
        payload,
        false,
    );
    v.split_off(TCP)
}

/// One connection: builds its frames and tracks both sides' next sequence numbers.
#[derive(Clone, Copy, Debug)]
struct Conn {
    client: End,
    server: End,
    /// Next sequence number of the client (0) and the server (1).
    next: [u32; 2],
}

impl Conn {
    fn new(client: End, server: End, isn_c: u32, isn_s: u32) -> Self {
        Conn {
            client,
            server,
            next: [isn_c, isn_s],
        }
    }

    fn ends(&self, side: usize) -> (End, End) {
        if side == 0 {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        }
    }

    /// A frame from `side` at an explicit sequence number (acknowledging the peer's next).
    fn at(&self, out: &mut Vec<u8>, side: usize, seq: u32, flags: u8, payload: &[u8]) {
        let (s, d) = self.ends(side);
        tcp_frame(
            out,
            s,
            d,
            seq,
            self.next[1 - side],
            flags,
            65535,
            &[],
            payload,
            false,
        );
    }

    /// A frame from `side` at its next sequence number, which then advances.
    fn send(&mut self, out: &mut Vec<u8>, side: usize, flags: u8, payload: &[u8]) {
        self.at(out, side, self.next[side], flags, payload);
        let mut n = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            n += 1;
        }
        self.next[side] = self.next[side].wrapping_add(n);
    }
}

/// Deterministic bytes: the stream byte at `offset` of the stream tagged `tag`.
fn pat(tag: u32, offset: u64) -> u8 {
    let x = (offset ^ u64::from(tag) << 40).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8
}

fn pattern(tag: u32, from: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pat(tag, from + i)).collect()
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Feed<'e, 's> {
    engine: &'e mut Engine<'s>,
    now: u64,
}

impl Feed<'_, '_> {
    /// Processes one Ethernet frame 1 ms after the previous one.
    fn frame<S: Sink>(&mut self, frame: &[u8], sink: &mut S) {
        self.now += 1_000_000;
        self.engine
            .process(Timestamp(self.now), LinkType::ETHERNET, frame, sink)
            .expect("the frame decodes");
    }
}

fn feed<'e, 's>(engine: &'e mut Engine<'s>) -> Feed<'e, 's> {
    Feed {
        engine,
        now: 1_700_000_000_000_000_000,
    }
}

// ---------------------------------------------------------------------------------------
// Sinks

/// The test kit's recording sink, as a sink that cannot take late bytes: the core counts
/// them late (what these tests check) instead of delivering them into the gap.
fn rec() -> Rec {
    Rec {
        refuse_late: true,
        ..Rec::default()
    }
}

/// Per-slot state of [`Check`].
#[derive(Clone, Copy, Debug, Default)]
struct SlotCheck {
    open: bool,
    tag: [u32; 2],
    next: [u64; 2],
}

/// A sink that stores nothing and never allocates once built: it checks the tiling of
/// every direction and every delivered byte against [`pat`], with the tag of the direction
/// (its source port, `tag_of`), and counts.
struct Check {
    slots: Vec<SlotCheck>,
    delivered: u64,
    gaps: u64,
    gap_bytes: u64,
    opened: u64,
    closes: [u64; 6],
    /// The close of the flow whose side A has this port.
    watch_port: u16,
    watched: Option<(FlowInfo, CloseReason)>,
}

fn reason_index(r: CloseReason) -> usize {
    match r {
        CloseReason::Fin => 0,
        CloseReason::Rst => 1,
        CloseReason::Idle => 2,
        CloseReason::Evicted => 3,
        CloseReason::Reused => 4,
        CloseReason::EndOfInput => 5,
    }
}

impl Check {
    fn new(slots: usize, watch_port: u16) -> Self {
        Check {
            slots: vec![SlotCheck::default(); slots],
            delivered: 0,
            gaps: 0,
            gap_bytes: 0,
            opened: 0,
            closes: [0; 6],
            watch_port,
            watched: None,
        }
    }

    fn slot(&mut self, flow: &FlowInfo) -> &mut SlotCheck {
        let s = &mut self.slots[flow.slot as usize];
        assert!(s.open, "event for a slot without an open flow");
        s
    }
}

impl Sink for Check {
    fn open(&mut self, flow: &FlowInfo) {
        let s = &mut self.slots[flow.slot as usize];
        assert!(!s.open, "slot reopened while its flow is open");
        *s = SlotCheck {
            open: true,
            tag: [u32::from(flow.key.port[0]), u32::from(flow.key.port[1])],
            next: [0; 2],
        };
        self.opened += 1;
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let s = self.slot(flow);
        let d = dir.index();
        assert!(!data.is_empty());
        assert_eq!(offset, s.next[d], "data must follow what was delivered");
        let tag = s.tag[d];
        for (i, &b) in data.iter().enumerate() {
            assert_eq!(
                b,
                pat(tag, offset + i as u64),
                "wrong byte at {}",
                offset + i as u64
            );
        }
        s.next[d] += data.len() as u64;
        self.delivered += data.len() as u64;
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, _reason: GapReason) {
        let s = self.slot(flow);
        assert_eq!(
            offset,
            s.next[dir.index()],
            "gap must follow what was delivered"
        );
        assert!(len > 0);
        s.next[dir.index()] += len;
        self.gaps += 1;
        self.gap_bytes += len;
    }

    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let s = self.slot(flow);
        let tag = s.tag[dir.index()];
        assert!(offset + data.len() as u64 <= s.next[dir.index()]);
        data.iter()
            .enumerate()
            .any(|(i, &b)| b != pat(tag, offset + i as u64))
    }

    /// Late bytes must be the right bytes, inside what was reported missing.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let s = self.slot(flow);
        let tag = s.tag[dir.index()];
        assert!(offset + data.len() as u64 <= s.next[dir.index()]);
        for (i, &b) in data.iter().enumerate() {
            assert_eq!(b, pat(tag, offset + i as u64), "wrong late byte");
        }
        self.delivered += data.len() as u64;
        self.gap_bytes -= data.len() as u64;
        true
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        let s = self.slot(flow);
        for d in Dir::BOTH {
            assert_eq!(flow.dirs[d.index()].stream_len, s.next[d.index()]);
        }
        s.open = false;
        self.closes[reason_index(reason)] += 1;
        if flow.key.port[0] == self.watch_port {
            self.watched = Some((*flow, reason));
        }
    }
}

fn closed(st: &Stats) -> [u64; 6] {
    let f = &st.flow;
    [
        f.closed_fin,
        f.closed_rst,
        f.closed_idle,
        f.closed_evicted,
        f.closed_reused,
        f.closed_end,
    ]
}

// ---------------------------------------------------------------------------------------
// SYN flood

/// 100,000 SYNs from distinct 4-tuples into a 1,024-flow table while a real connection
/// sends data every 97 SYNs: every SYN flow past the table evicts the least recently active
/// one; the real connection is never the oldest, so it is reconstructed byte-exact.
#[test]
fn syn_flood_far_past_the_flow_table() {
    const SYNS: u32 = 100_000;
    const FLOWS: usize = 1024;
    let mut store = Store::from_caps(caps(FLOWS, 256, 4));
    let memory = report(&store, "SYN flood");
    let mut e = store.engine(Config::default());
    let mut sink = Check::new(FLOWS, 5555);
    let mut f = feed(&mut e);
    let server = ([192, 168, 0, 2], 80);
    let mut real = Conn::new(([192, 168, 0, 1], 5555), server, 1000, 900_000);
    let mut frame = Vec::with_capacity(2048);
    let (mut sent_c, mut sent_s) = (0u64, 0u64);
    for flags in [SYN, SYN | ACK, ACK] {
        let side = usize::from(flags == SYN | ACK);
        real.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    // Every buffer is built: from here on nothing may allocate.
    let mut payload = [0u8; 100];
    let start = Instant::now();
    let before = allocations();
    for i in 0..SYNS {
        let src = (
            [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            1024 + (i % 50_000) as u16,
        );
        tcp_frame(
            &mut frame,
            src,
            server,
            i.wrapping_mul(7919),
            0,
            SYN,
            65535,
            &[],
            &[],
            false,
        );
        f.frame(&frame, &mut sink);
        if i % 97 == 0 {
            for (k, b) in payload.iter_mut().enumerate() {
                *b = pat(5555, sent_c + k as u64);
            }
            real.send(&mut frame, 0, ACK | PSH, &payload);
            f.frame(&frame, &mut sink);
            sent_c += 100;
        }
        if i % 500 == 0 {
            for (k, b) in payload[..50].iter_mut().enumerate() {
                *b = pat(80, sent_s + k as u64);
            }
            real.send(&mut frame, 1, ACK | PSH, &payload[..50]);
            f.frame(&frame, &mut sink);
            sent_s += 50;
        }
    }
    let allocated = allocations() - before;
    let took = start.elapsed();
    for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
        real.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    e.finish(&mut sink);
    println!("SYN flood: {SYNS} SYNs in {took:?}, {allocated} allocations while processing");

    let st = *e.stats();
    let opened = u64::from(SYNS) + 1;
    assert_eq!(st.flow.opened, opened);
    assert_eq!(sink.opened, opened);
    // Fin: the real connection; evicted: every flow past the table; end: what was left.
    let expect = [1, 0, 0, opened - FLOWS as u64, 0, FLOWS as u64 - 1];
    assert_eq!(
        closed(&st),
        expect,
        "closes: fin, rst, idle, evicted, reused, end"
    );
    assert_eq!(sink.closes, expect);
    let (info, reason) = sink.watched.expect("the real connection closed");
    assert_eq!(reason, CloseReason::Fin);
    assert_eq!(info.conn_index, 0);
    assert_eq!(info.dirs[0].stream_len, sent_c);
    assert_eq!(info.dirs[1].stream_len, sent_s);
    assert_eq!((info.dirs[0].gaps, info.dirs[1].gaps), (0, 0));
    assert_eq!(sink.delivered, sent_c + sent_s);
    assert_eq!(st.flow.delivered_bytes, sent_c + sent_s);
    assert_eq!((sink.gaps, st.flow.gaps), (0, 0));
    assert_eq!(e.open_flows(), 0);
    assert_eq!(e.free_blocks(), 256);
    assert_eq!(allocated, 0, "the engine allocated while processing");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(memory < 2 << 20, "{memory}");
}

// ---------------------------------------------------------------------------------------
// Many tiny out-of-order segments

/// 100,000 one-byte segments in one flow, one byte apart (every even offset, none of the odd
/// ones: the worst case for a pool that holds byte ranges), with a 32-block limit per
/// direction: 16 KiB of them fill it, and each time the direction gives up the holes of its
/// first window (gaps) to make room. Every byte sent is delivered and every byte never sent
/// is a gap. Then 100,000 more, shuffled within windows of 32 bytes: the pool repairs every
/// one. Time and memory stay bounded (the engine never allocates); no wrong byte.
#[test]
fn one_hundred_thousand_tiny_out_of_order_segments() {
    const N: u64 = 100_000;
    const L1: u64 = 2 * N + 1;
    const HOLD: u64 = 32;
    let mut store = Store::from_caps(caps(16, 64, 2));
    report(&store, "tiny out-of-order segments");
    let cfg = Config {
        max_blocks_per_dir: HOLD as u32,
        ..Config::default()
    };
    let mut e = store.engine(cfg);
    let mut sink = Check::new(16, 7000);
    let mut f = feed(&mut e);
    let mut frame = Vec::with_capacity(256);
    let isn = 0xffff_fff0u32; // the sequence numbers wrap early on
    let mut conn = Conn::new(([10, 0, 0, 1], 7000), ([10, 0, 0, 2], 80), isn, 5);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    let base = isn.wrapping_add(1);
    let start = Instant::now();
    let before = allocations();
    // Phase 1: one byte apart, from offset 2 (so a hole is at 0 too).
    for k in 1..=N {
        {
            let off = 2 * k;
            conn.at(
                &mut frame,
                0,
                base.wrapping_add(off as u32),
                ACK,
                &[pat(7000, off)],
            );
            f.frame(&frame, &mut sink);
        }
    }
    let phase1 = *f.engine.stats();
    // Phase 2: shuffled windows of 32.
    let mut rng = Rng(0x5eed);
    let mut order = [0u64; 32];
    for w in 0..N / 32 {
        for (i, o) in order.iter_mut().enumerate() {
            *o = i as u64;
        }
        for i in (1..32).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &k in &order {
            let off = L1 + w * 32 + k;
            conn.at(
                &mut frame,
                0,
                base.wrapping_add(off as u32),
                ACK,
                &[pat(7000, off)],
            );
            f.frame(&frame, &mut sink);
        }
    }
    let allocated = allocations() - before;
    let took = start.elapsed();
    let total = L1 + N / 32 * 32;
    conn.next[0] = base.wrapping_add(total as u32);
    for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    e.finish(&mut sink);
    println!(
        "tiny out-of-order segments: {} segments in {took:?}, {allocated} allocations",
        N + N / 32 * 32
    );

    // Phase 1: the bytes sent delivered, the bytes never sent gaps; room made about once
    // per window of the stream (512 bytes held in each).
    let p1 = phase1.flow;
    assert!(
        p1.pool_full > 0 && p1.pool_full <= L1 / 1024 + 1,
        "{}",
        p1.pool_full
    );
    assert!(p1.delivered_bytes + p1.gap_bytes <= L1);
    assert!(
        L1 - (p1.delivered_bytes + p1.gap_bytes) <= (HOLD + 1) * 1024,
        "held at most"
    );
    assert_eq!(p1.conflict_bytes, 0);
    assert_eq!(p1.late_bytes, 0);
    // Phase 2: everything repaired; room is made only to let go of phase 1's held windows.
    let st = *e.stats();
    assert!(st.flow.pool_full - p1.pool_full <= HOLD + 1);
    assert_eq!(st.flow.conflict_bytes, 0);
    assert_eq!(st.flow.delivered_bytes, N + N / 32 * 32);
    assert_eq!(st.flow.gap_bytes, N + 1);
    let (info, reason) = sink.watched.expect("closed");
    assert_eq!(reason, CloseReason::Fin);
    assert_eq!(info.dirs[0].stream_len, total);
    assert_eq!(sink.delivered + sink.gap_bytes, total);
    assert_eq!(e.free_blocks(), 64);
    assert_eq!(allocated, 0);
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// Bytes that arrive for a hole already reported as a gap are, per `FlowStats::late_bytes`,
/// "payload bytes that arrived for a hole already reported as a gap (too late)".
///
/// Regression test, fixed; was a bug (core/src/stream.rs, `Half::data`): they are counted as `retransmitted_bytes` (and
/// per direction), and handed to `Sink::redelivered` as if they had been delivered. The
/// host's sink compares them with the file, where the hole is NULs, so it answers "differ":
/// they are then counted as `conflict_bytes` (the evasion signal) under both policies, and
/// under `--overlap last` written into the hole, which `report.xml` still lists as a gap
/// (checked with the binary, `--max-ooo-bytes 2K`: "10 conflicting bytes" either way).
/// Input: handshake; 1 block per direction; client bytes 1100..1110 (held), 2100..2110 (in
/// another window: no room, the gap 0..1100 is reported, 1100..1110 delivered); then bytes
/// 0..10 arrive (a sink that cannot take late bytes). Expected: late_bytes
/// 10, retransmitted_bytes 0, no `redelivered` call. Got: late_bytes 0, retransmitted_bytes
/// 10, `redelivered(offset 0, 10 bytes)` inside the reported gap (and, with a sink that
/// compares, conflict_bytes 10).
#[test]
fn late_bytes_for_a_reported_gap_are_counted_late() {
    let mut store = Store::from_caps(caps(4, 4, 2));
    let cfg = Config {
        max_blocks_per_dir: 1,
        ..Config::default()
    };
    let mut e = store.engine(cfg);
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let mut conn = Conn::new(([10, 0, 0, 1], 7001), ([10, 0, 0, 2], 80), 100, 5);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    for from in [1100u64, 2100, 0] {
        conn.at(&mut frame, 0, 101 + from as u32, ACK, &pattern(1, from, 10));
        f.frame(&frame, &mut rec);
    }
    let st = e.stats().flow;
    let d = &rec.find(7001, 0).dirs[0];
    assert_eq!(
        d.gaps,
        vec![(0, 1100, GapReason::Lost)],
        "the hole given up"
    );
    assert_eq!(st.late_bytes, 10, "late bytes");
    assert_eq!(st.retransmitted_bytes, 0, "retransmitted bytes");
    assert!(
        rec.redelivered.is_empty(),
        "redelivered: {:?}",
        rec.redelivered
    );
}

/// `FlowStats::payload_bytes` is "payload bytes seen in TCP segments", and
/// `after_close_bytes` "payload bytes after a FIN, or on a connection already closed": a
/// late segment on a closed connection is in both.
///
/// Regression test, fixed; was a bug (core/src/engine.rs, `Tracker::segment`): the branch for a packet on a closed
/// connection (and the one for a segment that finds no slot) counts its payload in
/// `after_close_bytes` (`untracked_bytes`) and returns before `payload_bytes` is
/// incremented, so the payload seen is not the sum of its fates (found by the `engine` fuzz
/// target, fuzz/regressions/engine/payload-bytes-on-a-closed-connection). Input: handshake,
/// 100 client bytes, FIN, FIN, ACK (closed), then 10 more client bytes at the next sequence
/// number. Expected: payload_bytes 110, after_close_bytes 10. Got: payload_bytes 100.
#[test]
fn payload_bytes_counts_segments_on_a_closed_connection() {
    let mut store = Store::from_caps(caps(4, 4, 2));
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let mut conn = Conn::new(([10, 0, 0, 1], 7002), ([10, 0, 0, 2], 80), 100, 5);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    conn.send(&mut frame, 0, ACK | PSH, &pattern(1, 0, 100));
    f.frame(&frame, &mut rec);
    for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    assert_eq!(rec.find(7002, 0).close, Some(CloseReason::Fin));
    conn.send(&mut frame, 0, ACK | PSH, &pattern(1, 100, 10));
    f.frame(&frame, &mut rec);
    let st = e.stats().flow;
    assert_eq!(st.after_close_bytes, 10, "after-close bytes");
    assert_eq!(st.payload_bytes, 110, "payload bytes seen");
}

// ---------------------------------------------------------------------------------------
// Overlaps

/// Overlapping segments with conflicting data, held and delivered, under both policies:
/// B at 100..200 (held), C at 150..250 (overlaps B held: 50 retransmitted, 50 differ), A at
/// 0..100 (delivers all), D at 50..120 (overlaps delivered A and B: 70, all differ), C+E at
/// 200..260 (50 the same, 10 new).
#[test]
fn overlapping_segments_with_conflicting_data() {
    for policy in [OverlapPolicy::First, OverlapPolicy::Last] {
        let mut store = Store::from_caps(caps(8, 16, 2));
        let mut e = store.engine(Config {
            overlap: policy,
            ..Config::default()
        });
        let mut rec = Rec {
            allow_rewrite: policy == OverlapPolicy::Last,
            ..rec()
        };
        let mut f = feed(&mut e);
        let mut frame = Vec::new();
        let mut conn = Conn::new(([10, 0, 0, 1], 7100), ([10, 0, 0, 2], 80), 1_000_000, 5);
        for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
            conn.send(&mut frame, side, flags, &[]);
            f.frame(&frame, &mut rec);
        }
        let base = 1_000_001u32;
        let run = |c: u8, n: usize| vec![c; n];
        let mut ce = run(b'C', 50);
        ce.extend(run(b'E', 10));
        for (off, bytes) in [
            (100, run(b'B', 100)),
            (150, run(b'C', 100)),
            (0, run(b'A', 100)),
            (50, run(b'D', 70)),
            (200, ce),
        ] {
            conn.at(&mut frame, 0, base + off, ACK, &bytes);
            f.frame(&frame, &mut rec);
        }
        conn.next[0] = base + 260;
        for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
            conn.send(&mut frame, side, flags, &[]);
            f.frame(&frame, &mut rec);
        }
        e.finish(&mut rec);
        let mut want = Vec::new();
        let parts: &[(u8, usize)] = match policy {
            OverlapPolicy::First => &[(b'A', 100), (b'B', 100), (b'C', 50), (b'E', 10)],
            OverlapPolicy::Last => &[(b'A', 50), (b'D', 70), (b'B', 30), (b'C', 100), (b'E', 10)],
        };
        for &(c, n) in parts {
            want.extend(run(c, n));
        }
        let flow = rec.find(7100, 0);
        assert_eq!(
            String::from_utf8_lossy(&flow.dirs[0].bytes),
            String::from_utf8_lossy(&want),
            "{policy:?}"
        );
        assert_eq!(flow.close, Some(CloseReason::Fin));
        let info = flow.info.unwrap();
        let st = e.stats().flow;
        assert_eq!(info.dirs[0].retransmitted_bytes, 170, "{policy:?}");
        assert_eq!(info.dirs[0].conflict_bytes, 120, "{policy:?}");
        assert_eq!(
            (st.retransmitted_bytes, st.conflict_bytes),
            (170, 120),
            "{policy:?}"
        );
        assert_eq!(st.delivered_bytes, 260);
        assert_eq!(info.dirs[0].gaps, 0);
        assert_eq!(e.free_blocks(), 16);
    }
}

// ---------------------------------------------------------------------------------------
// Sequence jumps

/// Segments 2^31, 2^31 + 1000, 2^30 ahead, 2^30 behind and 100 MiB ahead (past the
/// acknowledged point by more than `max_jump`) of the stream, and an ACK 2^31 away: each
/// segment counted out of window with its bytes, none placed, the stream intact.
#[test]
fn sequence_numbers_jumping_by_2_31() {
    let mut store = Store::from_caps(caps(8, 16, 2));
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let isn = 0x7fff_ff00u32;
    let mut conn = Conn::new(([10, 0, 0, 1], 7200), ([10, 0, 0, 2], 80), isn, 5);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    let mut sent = 0u64;
    let mut send_data = |f: &mut Feed<'_, '_>, rec: &mut Rec, conn: &mut Conn, n: usize| {
        let mut frame = Vec::new();
        for _ in 0..n {
            conn.send(&mut frame, 0, ACK, &pattern(7200, sent, 100));
            f.frame(&frame, rec);
            sent += 100;
            conn.send(&mut frame, 1, ACK, &[]);
            f.frame(&frame, rec);
        }
    };
    send_data(&mut f, &mut rec, &mut conn, 10);
    let next = conn.next[0];
    let bogus = pattern(99, 0, 100);
    for jump in [
        1u32 << 31,
        (1 << 31) + 1000,
        1 << 30,
        (1u32 << 30).wrapping_neg(),
        100 << 20,
    ] {
        conn.at(&mut frame, 0, next.wrapping_add(jump), ACK, &bogus);
        f.frame(&frame, &mut rec);
    }
    // The server acknowledges something 2^31 away: ignored.
    let (s, d) = conn.ends(1);
    tcp_frame(
        &mut frame,
        s,
        d,
        conn.next[1],
        next.wrapping_add(1 << 31),
        ACK,
        65535,
        &[],
        &[],
        false,
    );
    f.frame(&frame, &mut rec);
    send_data(&mut f, &mut rec, &mut conn, 10);
    for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    e.finish(&mut rec);
    let st = e.stats().flow;
    assert_eq!(st.out_of_window, 5);
    assert_eq!(st.out_of_window_bytes, 500);
    let flow = rec.find(7200, 0);
    assert_eq!(flow.close, Some(CloseReason::Fin));
    assert_eq!(flow.dirs[0].bytes, pattern(7200, 0, 2000));
    assert!(flow.dirs[0].gaps.is_empty());
    assert_eq!(st.delivered_bytes, 2000);
}

// ---------------------------------------------------------------------------------------
// Fragments

/// Datagrams whose last fragment never comes: the table (4 slots) fills, later datagrams
/// find no slot (counted), the old ones time out on capture time (counted, slots freed), a
/// complete datagram then goes through, and `finish` drops what is left (counted).
#[test]
fn fragments_that_never_complete() {
    let mut store = Store::from_caps(caps(8, 16, 4));
    report(&store, "fragments");
    let mut e = store.engine(Config {
        frag_timeout_ns: 1_000_000_000,
        ..Config::default()
    });
    let mut rec = rec();
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let t0 = 1_700_000_000_000_000_000u64;
    let piece = vec![0x55u8; 64];
    // 10 first fragments at t0: 4 held, 6 without a slot.
    for ident in 0..10u16 {
        let fr = ipv4_fragment(c, s, ident, 0, true, &piece);
        let out = e
            .process(Timestamp(t0), LinkType::ETHERNET, &fr, &mut rec)
            .unwrap();
        assert_eq!(out, tcpflow_core::engine::Outcome::FragmentHeld);
    }
    let st = e.stats().frag;
    assert_eq!((st.fragments, st.no_slot, st.timed_out), (10, 6, 0));
    assert_eq!(st.dropped_bytes, 6 * 64);
    // 1.5 s later: the 4 time out (advance runs the timeouts without a packet).
    e.advance(Timestamp(t0 + 1_500_000_000), &mut rec);
    let st = e.stats().frag;
    assert_eq!((st.timed_out, st.dropped_bytes), (4, 10 * 64));
    // Four new incomplete datagrams fit again, and a whole one is reassembled.
    for ident in 100..104u16 {
        let fr = ipv4_fragment(c, s, ident, 0, true, &piece);
        e.process(
            Timestamp(t0 + 1_600_000_000),
            LinkType::ETHERNET,
            &fr,
            &mut rec,
        )
        .unwrap();
    }
    assert_eq!(e.stats().frag.no_slot, 6, "the slots were freed");
    // The table is full again: the whole datagram waits for the timeout, 2 s later.
    let seg = tcp_segment(7300, 80, 1, 0, SYN, &[]);
    let t = t0 + 3_000_000_000;
    let first = ipv4_fragment(c, s, 200, 0, true, &seg[..16]);
    let last = ipv4_fragment(c, s, 200, 16, false, &seg[16..]);
    for fr in [first, last] {
        e.process(Timestamp(t), LinkType::ETHERNET, &fr, &mut rec)
            .unwrap();
    }
    let st = e.stats().frag;
    assert_eq!((st.timed_out, st.reassembled, st.no_slot), (8, 1, 6));
    assert_eq!(e.stats().decode.tcp_segments, 1);
    assert_eq!(
        e.stats().flow.opened,
        1,
        "the reassembled SYN opened a flow"
    );
    // One more that never completes: finish drops it.
    let fr = ipv4_fragment(c, s, 300, 0, true, &piece);
    e.process(Timestamp(t), LinkType::ETHERNET, &fr, &mut rec)
        .unwrap();
    e.finish(&mut rec);
    let st = e.stats().frag;
    assert_eq!(st.fragments, 10 + 4 + 2 + 1);
    assert_eq!(st.timed_out, 9);
    assert_eq!(st.dropped_bytes, (10 + 4 + 1) * 64);
}

/// A fragmented segment whose pieces overlap: a conflicting copy of 8 bytes and an
/// identical copy of 16 arrive after the first copies: the first copy wins, and the
/// overlap and conflict counters are exact.
#[test]
fn fragment_overlaps_first_copy_wins() {
    let mut store = Store::from_caps(caps(8, 16, 4));
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let payload = pattern(7400, 0, 64);
    // The SYN, not fragmented (offset 0, no more fragments).
    let syn = ipv4_fragment(c, s, 1, 0, false, &tcp_segment(7400, 80, 1, 0, SYN, &[]));
    let t = 1_700_000_000_000_000_000u64;
    e.process(Timestamp(t), LinkType::ETHERNET, &syn, &mut rec)
        .unwrap();
    let datagram = tcp_segment(7400, 80, 2, 0, ACK, &payload); // 84 bytes
    let mut conflicting = datagram[40..64].to_vec();
    for b in &mut conflicting[..8] {
        *b ^= 0xff; // bytes 40..48 differ; 48..64 are new
    }
    let pieces = [
        ipv4_fragment(c, s, 2, 0, true, &datagram[..48]),
        ipv4_fragment(c, s, 2, 40, true, &conflicting),
        ipv4_fragment(c, s, 2, 8, true, &datagram[8..24]),
        ipv4_fragment(c, s, 2, 64, false, &datagram[64..]),
    ];
    for (i, fr) in pieces.iter().enumerate() {
        e.process(
            Timestamp(t + 1 + i as u64),
            LinkType::ETHERNET,
            fr,
            &mut rec,
        )
        .unwrap();
    }
    e.finish(&mut rec);
    let st = e.stats().frag;
    assert_eq!((st.fragments, st.reassembled), (4, 1));
    assert_eq!(st.overlap_bytes, 8 + 16);
    assert_eq!(st.conflict_bytes, 8);
    assert_eq!(
        rec.find(7400, 0).dirs[0].bytes,
        payload,
        "the first copy wins"
    );
}

// ---------------------------------------------------------------------------------------
// A flow past 4 GiB

/// Segment payload bytes, their checksum weights and what the sink computes: a word-level,
/// position-weighted sum, so that a byte in the wrong place changes it.
const SEG: usize = 65536;
const WORDS: u64 = (SEG / 8) as u64;

/// The sum over `data` (at stream offset `offset`, a multiple of 8).
fn checksum(offset: u64, data: &[u8]) -> u64 {
    assert_eq!(offset % 8, 0);
    assert_eq!(data.len() % 8, 0);
    let j0 = offset / 8;
    let mut acc = 0u64;
    for (i, c) in data.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        acc = acc.wrapping_add(w.wrapping_mul(2 * (j0 + i as u64) + 1));
    }
    acc
}

/// Hashes one direction of one flow instead of storing it.
struct HashSink {
    port: u16,
    next: u64,
    sum: u64,
    events: u64,
    events_past_4g: u64,
    other: u64,
    closed: Option<(FlowInfo, CloseReason)>,
}

impl Sink for HashSink {
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        if flow.key.port[0] != self.port || dir != Dir::AtoB {
            self.other += data.len() as u64;
            return;
        }
        assert_eq!(offset, self.next, "data must follow what was delivered");
        self.sum = self.sum.wrapping_add(checksum(offset, data));
        self.next += data.len() as u64;
        self.events += 1;
        if offset >= 1 << 32 {
            self.events_past_4g += 1;
        }
    }
    fn gap(&mut self, _: &FlowInfo, _: Dir, offset: u64, len: u64, _: GapReason) {
        panic!("gap of {len} at {offset}");
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        self.closed = Some((*flow, reason));
    }
}

/// 4.5 GiB in one direction of one connection, as 73,728 TSO super-packets of 64 KiB
/// (IPv4 total length 0), the sequence numbers wrapping twice (the ISN is 2^32 - 2^28), the
/// receiver acknowledging every 64 segments, and two pairs of segments swapped: one pair
/// just past 2^32 (held in the pool at offsets past 4 GiB), one where the sequence numbers
/// wrap. Each segment starts with its index, the rest is a fixed pattern; the sink checks
/// the offsets tile and computes a position-weighted checksum, compared with the one the
/// generator computes.
#[test]
fn flow_of_more_than_4_gib() {
    const SEGMENTS: u64 = 73_728; // 4.5 GiB
    let total = SEGMENTS * SEG as u64;
    let mut store = Store::from_caps(Capacities {
        flows: 16,
        blocks: 256,
        frag_slots: 2,
        frag_slot_bytes: 65536,
    });
    let memory = report(&store, "4.5 GiB flow");
    let mut e = store.engine(Config {
        max_blocks_per_dir: 128,
        ..Config::default()
    });
    let mut sink = HashSink {
        port: 7500,
        next: 0,
        sum: 0,
        events: 0,
        events_past_4g: 0,
        other: 0,
        closed: None,
    };
    let isn = 0u32.wrapping_sub(1 << 28);
    let mut conn = Conn::new(([10, 0, 0, 1], 7500), ([10, 0, 0, 2], 80), isn, 77);
    let mut frame = Vec::with_capacity(TCP + 20 + SEG);
    let mut f = feed(&mut e);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    let base = isn.wrapping_add(1);
    // The fixed part of every payload, and its checksum weights.
    let fill: Vec<u8> = (0..SEG as u64).map(|i| pat(7500, i)).collect();
    let (mut s_sum, mut t_sum) = (0u64, 0u64);
    for (j, c) in fill.chunks_exact(8).enumerate().skip(1) {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        s_sum = s_sum.wrapping_add(w);
        t_sum = t_sum.wrapping_add(w.wrapping_mul(2 * j as u64 + 1));
    }
    // Segment k's checksum: its index in word 0, the fill in the others.
    let seg_sum = |k: u64| {
        let j0 = k * WORDS;
        k.wrapping_mul(2 * j0 + 1)
            .wrapping_add(t_sum)
            .wrapping_add(s_sum.wrapping_mul(2 * j0))
    };
    let (c, s) = conn.ends(0);
    tcp_frame(
        &mut frame,
        c,
        s,
        base,
        conn.next[1],
        ACK,
        65535,
        &[],
        &fill,
        true,
    );
    // The segment where the sequence numbers wrap (the one holding offset 2^28 - 1), and
    // the first past 4 GiB: each is sent after the one following it.
    let wrap_seg = ((1u64 << 28) - 1) / SEG as u64;
    let order = |pos: u64| match pos {
        p if p == wrap_seg || p == 1 << 16 => p + 1,
        p if p == wrap_seg + 1 || p == (1 << 16) + 1 => p - 1,
        p => p,
    };
    let mut expect = 0u64;
    let mut ack = Vec::with_capacity(128);
    let start = Instant::now();
    let before = allocations();
    for pos in 0..SEGMENTS {
        let k = order(pos);
        if pos % 64 == 32 {
            // The receiver acknowledges everything before this position (never between the
            // two segments of a swapped pair).
            let (sv, cl) = conn.ends(1);
            let a = base.wrapping_add((pos * SEG as u64) as u32);
            tcp_frame(
                &mut ack,
                sv,
                cl,
                conn.next[1],
                a,
                ACK,
                65535,
                &[],
                &[],
                false,
            );
            f.frame(&ack, &mut sink);
        }
        let seq = base.wrapping_add((k * SEG as u64) as u32);
        frame[TCP + 4..TCP + 8].copy_from_slice(&seq.to_be_bytes());
        frame[TCP + 20..TCP + 28].copy_from_slice(&k.to_le_bytes());
        f.frame(&frame, &mut sink);
        expect = expect.wrapping_add(seg_sum(k));
    }
    let allocated = allocations() - before;
    let took = start.elapsed();
    conn.next[0] = base.wrapping_add(total as u32);
    for (side, flags) in [(0, FIN | ACK), (1, FIN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut sink);
    }
    e.finish(&mut sink);
    println!(
        "4.5 GiB flow: {SEGMENTS} segments in {took:?} ({:.1} GB/s), {} data events, {} past \
         4 GiB, {allocated} allocations, engine memory {memory} bytes",
        total as f64 / took.as_secs_f64() / 1e9,
        sink.events,
        sink.events_past_4g
    );
    assert_eq!(sink.next, total, "stream length");
    assert_eq!(sink.sum, expect, "checksum of the delivered stream");
    assert!(sink.events_past_4g > 0);
    assert_eq!(sink.other, 0);
    let (info, reason) = sink.closed.expect("closed");
    assert_eq!(reason, CloseReason::Fin);
    assert_eq!(info.dirs[0].stream_len, total);
    assert_eq!(info.dirs[0].payload_bytes, total);
    assert_eq!(info.dirs[0].ooo_segments, 2);
    assert_eq!(info.dirs[0].gaps, 0);
    let st = e.stats().flow;
    assert_eq!(st.delivered_bytes, total);
    assert_eq!((st.out_of_window, st.pool_full, st.gaps), (0, 0, 0));
    assert_eq!(e.free_blocks(), 256);
    assert_eq!(allocated, 0);
}

// ---------------------------------------------------------------------------------------
// Windows

/// Window scale 14 with a 65535 window (about 1 GiB advertised) and zero windows with
/// probes: a one-byte probe carrying the next byte (delivered, then repeated by the real
/// segment: a retransmission, not a conflict), a keep-alive style probe (one garbage byte
/// just before the stream position: ignored), and a segment 900 MiB ahead, inside the huge
/// advertised window but past `max_jump`: out of window, no 900 MiB hole.
#[test]
fn huge_and_zero_windows() {
    let mut store = Store::from_caps(caps(8, 16, 2));
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let (c, s): (End, End) = (([10, 0, 0, 1], 7600), ([10, 0, 0, 2], 80));
    // MSS 1460, NOP, window scale 14.
    let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 14];
    let (isn_c, isn_s) = (5000u32, 9000u32);
    tcp_frame(&mut frame, c, s, isn_c, 0, SYN, 65535, &opts, &[], false);
    f.frame(&frame, &mut rec);
    tcp_frame(
        &mut frame,
        s,
        c,
        isn_s,
        isn_c + 1,
        SYN | ACK,
        65535,
        &opts,
        &[],
        false,
    );
    f.frame(&frame, &mut rec);
    let (mut cn, sn) = (isn_c + 1, isn_s + 1);
    let data = pattern(7600, 0, 3000);
    let client = |f: &mut Feed<'_, '_>, rec: &mut Rec, seq: u32, bytes: &[u8], win: u16| {
        let mut fr = Vec::new();
        tcp_frame(&mut fr, c, s, seq, sn, ACK, win, &[], bytes, false);
        f.frame(&fr, rec);
    };
    let server = |f: &mut Feed<'_, '_>, rec: &mut Rec, ack: u32, win: u16| {
        let mut fr = Vec::new();
        tcp_frame(&mut fr, s, c, sn, ack, ACK, win, &[], &[], false);
        f.frame(&fr, rec);
    };
    client(&mut f, &mut rec, cn, &[], 65535);
    client(&mut f, &mut rec, cn, &data[..1000], 65535);
    cn += 1000;
    // The receiver's window closes.
    server(&mut f, &mut rec, cn, 0);
    // A keep-alive style probe, and a zero-window probe carrying the next byte.
    client(&mut f, &mut rec, cn - 1, &[0xAA], 65535);
    client(&mut f, &mut rec, cn, &data[1000..1001], 65535);
    server(&mut f, &mut rec, cn, 0);
    // The window opens, huge: 65535 << 14.
    server(&mut f, &mut rec, cn, 65535);
    // Far inside the advertised window, far past anything acknowledged.
    client(
        &mut f,
        &mut rec,
        cn.wrapping_add(900 << 20),
        &pattern(1, 0, 500),
        65535,
    );
    client(&mut f, &mut rec, cn, &data[1000..3000], 0);
    cn += 2000;
    server(&mut f, &mut rec, cn, 65535);
    tcp_frame(&mut frame, c, s, cn, sn, FIN | ACK, 65535, &[], &[], false);
    f.frame(&frame, &mut rec);
    tcp_frame(&mut frame, s, c, sn, cn + 1, FIN | ACK, 0, &[], &[], false);
    f.frame(&frame, &mut rec);
    e.finish(&mut rec);
    let st = e.stats().flow;
    let flow = rec.find(7600, 0);
    assert_eq!(flow.dirs[0].bytes, data);
    assert!(flow.dirs[0].gaps.is_empty());
    assert_eq!(flow.close, Some(CloseReason::Fin));
    assert_eq!(st.keepalives, 1);
    assert_eq!((st.out_of_window, st.out_of_window_bytes), (1, 500));
    assert_eq!((st.retransmitted_bytes, st.conflict_bytes), (1, 0));
}

// ---------------------------------------------------------------------------------------
// Resets

/// 5,000 RSTs with random sequence numbers, from both sides, against an open connection:
/// it closes once (as reset), no new connection, nothing delivered after; data sent after
/// the storm is counted as after-close bytes.
#[test]
fn rst_storm_against_an_open_connection() {
    let mut store = Store::from_caps(caps(8, 16, 2));
    report(&store, "RST storm");
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let mut conn = Conn::new(([10, 0, 0, 1], 7700), ([10, 0, 0, 2], 80), 77, 99);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    conn.send(&mut frame, 0, ACK | PSH, &pattern(7700, 0, 500));
    f.frame(&frame, &mut rec);
    conn.send(&mut frame, 1, ACK | PSH, &pattern(80, 0, 700));
    f.frame(&frame, &mut rec);
    let mut rng = Rng(42);
    for i in 0..5000 {
        let side = (rng.next() & 1) as usize;
        let flags = if i % 3 == 0 { RST | ACK } else { RST };
        conn.at(&mut frame, side, rng.next() as u32, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    let mut after = 0;
    for side in [0, 1] {
        conn.send(&mut frame, side, ACK | PSH, &[b'x'; 40]);
        f.frame(&frame, &mut rec);
        after += 40;
    }
    e.finish(&mut rec);
    let st = *e.stats();
    assert_eq!(rec.flows.len(), 1, "one connection");
    let flow = &rec.flows[0];
    assert_eq!(flow.close, Some(CloseReason::Rst));
    assert_eq!(flow.dirs[0].bytes, pattern(7700, 0, 500));
    assert_eq!(flow.dirs[1].bytes, pattern(80, 0, 700));
    assert_eq!(st.flow.opened, 1);
    assert_eq!(closed(&st), [0, 1, 0, 0, 0, 0]);
    assert_eq!(st.flow.after_close_bytes, after);
    assert_eq!(st.flow.delivered_bytes, 1200);
    assert_eq!(st.decode.tcp_segments, 3 + 2 + 5000 + 2);
    let info = flow.info.unwrap();
    assert!(info.dirs[0].rst && info.dirs[1].rst);
}

/// A single RST with a random sequence number, far outside anything the connection used (a
/// blind reset, RFC 5961), from the client's address: a receiver ignores it, and the
/// client's data keeps coming and being acknowledged.
///
/// Regression test, fixed (ignored RSTs are counted in ignored_rsts); was a finding (core/src/engine.rs, `Tracker::segment`; a design decision for the owners, not a
/// break of a documented contract): every RST is taken whatever its sequence number, so one
/// spoofed packet ends the client's side of the stream. Expected: the 1,500 client bytes.
/// Got: the first 500, then a 1,000-byte gap (the server acknowledged them, so they are
/// reported lost), the real bytes counted as after_close_bytes.
#[test]
fn blind_rst_does_not_truncate_the_stream() {
    let mut store = Store::from_caps(caps(8, 16, 2));
    let mut e = store.engine(Config::default());
    let mut rec = rec();
    let mut f = feed(&mut e);
    let mut frame = Vec::new();
    let mut conn = Conn::new(([10, 0, 0, 1], 7800), ([10, 0, 0, 2], 80), 77, 99);
    for (side, flags) in [(0, SYN), (1, SYN | ACK), (0, ACK)] {
        conn.send(&mut frame, side, flags, &[]);
        f.frame(&frame, &mut rec);
    }
    conn.send(&mut frame, 0, ACK | PSH, &pattern(7800, 0, 500));
    f.frame(&frame, &mut rec);
    conn.at(&mut frame, 0, 0x9000_0000, RST, &[]);
    f.frame(&frame, &mut rec);
    for k in 1..3 {
        conn.send(&mut frame, 0, ACK | PSH, &pattern(7800, 500 * k, 500));
        f.frame(&frame, &mut rec);
        conn.send(&mut frame, 1, ACK, &[]);
        f.frame(&frame, &mut rec);
    }
    e.finish(&mut rec);
    let d = &rec.find(7800, 0).dirs[0];
    let after = e.stats().flow.after_close_bytes;
    assert!(
        d.gaps.is_empty(),
        "gaps {:?}, after-close bytes {after}",
        d.gaps
    );
    assert!(d.bytes == pattern(7800, 0, 1500), "the client's bytes");
}
