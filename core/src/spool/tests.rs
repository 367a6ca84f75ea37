//! Spool tests: round trips, power cuts, the ring, wear, corruption.
//!
//! Workloads are scripts of sink events whose stream bytes are a function of (flow, direction,
//! offset), so any byte a replay delivers can be checked on the spot, and the event index of
//! each replayed record tells whether what came back is a prefix (or, after the ring dropped
//! segments, a window) of what was written.

use std::collections::{HashMap, HashSet};
use std::println;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::format::{
    read_header, read_record, segment_base, Record, SegmentHeader, OPEN_LEN, SEGMENT_HEADER_LEN,
};
use super::mock::{MockError, MockFlash};
use super::nor::{NorSpool, NorSpoolError};
use super::*;
use crate::config::Config;
use crate::decode::LinkType;
use crate::flow::{Dir, DirInfo, FlowInfo, FlowKey};
use crate::sink::{CloseReason, GapReason, Sink};
use crate::testutil::{pattern, Conv, Rec, Store, ACK, PSH};
use crate::{Addr, Timestamp, Vlans};

const SECTOR: usize = 4096;
type Flash<'a> = MockFlash<'a, 1, 4, SECTOR>;
type Nor<'a> = NorSpool<Flash<'a>>;

/// The memory behind a mock flash.
struct Mem {
    mem: Vec<u8>,
    erases: Vec<u32>,
}

impl Mem {
    fn new(bytes: usize) -> Self {
        Mem {
            mem: vec![0; bytes],
            erases: vec![0; bytes / SECTOR],
        }
    }
    /// A fresh (erased) flash as a spool of `sectors` sectors per segment.
    fn nor(&mut self, sectors: u32, block: u32) -> Nor<'_> {
        let len = self.mem.len() as u32;
        NorSpool::new(
            Flash::new(&mut self.mem, &mut self.erases),
            0,
            len,
            sectors,
            block,
        )
        .unwrap()
    }
    /// The flash as it is now.
    fn nor_as_is(&mut self, sectors: u32, block: u32) -> Nor<'_> {
        let len = self.mem.len() as u32;
        let f = Flash::with_contents(&mut self.mem, &mut self.erases);
        NorSpool::new(f, 0, len, sectors, block).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Workloads

#[derive(Clone, Debug)]
enum Ev {
    Open(FlowInfo),
    Data(FlowInfo, Dir, u64, Vec<u8>),
    Gap(FlowInfo, Dir, u64, u64, GapReason),
    Close(FlowInfo, CloseReason),
    Sync,
}

/// The stream byte at `off` of `dir` of the flow whose side A port is `port`.
fn byte(port: u16, dir: Dir, off: u64) -> u8 {
    let mut x = (u64::from(port) << 48) ^ ((dir as u64) << 47) ^ off;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 56) as u8
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

#[derive(Clone, Copy)]
struct Spec {
    /// Flows opened in all.
    flows: usize,
    /// Engine flow slots (most flows open at once).
    slots: u32,
    /// Events before the remaining flows are closed.
    events: usize,
    /// Percent of data events up to `big` bytes (split into several records); the rest are
    /// up to 1448.
    big_pct: u64,
    big: u64,
    /// A Sync event after every this many events (0: never), and after each close.
    sync_every: usize,
    sync_on_close: bool,
    /// Data events are exactly 1448 bytes (bulk), never gaps.
    bulk: bool,
    /// Number of the first flow (flows get ports from their numbers).
    first_flow: usize,
}

const SPEC: Spec = Spec {
    flows: 60,
    slots: 16,
    events: 400,
    big_pct: 5,
    big: 9000,
    sync_every: 25,
    sync_on_close: true,
    bulk: false,
    first_flow: 0,
};

fn new_flow(n: usize, slot: u32, ts: u64) -> FlowInfo {
    let (hi, lo) = ((n >> 8) as u8, n as u8);
    let (a, b) = if n % 3 == 1 {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, hi, lo];
        let mut b = a;
        b[15] ^= 0x80;
        a[7] = 1;
        (Addr::V6(a), Addr::V6(b))
    } else {
        (Addr::V4([10, 0, hi, lo]), Addr::V4([192, 168, hi, lo]))
    };
    let mut vlans = Vlans::NONE;
    if n % 5 == 0 {
        vlans.push((n % 4000) as u16 + 1);
    }
    if n % 10 == 0 {
        vlans.push(7);
    }
    FlowInfo {
        slot,
        key: FlowKey {
            addr: [a, b],
            port: [1024 + (n % 60000) as u16, if n % 2 == 0 { 80 } else { 443 }],
            vlans,
        },
        conn_index: (n % 3) as u32,
        first_ts: Timestamp(ts),
        last_ts: Timestamp(ts),
        macs: (n % 2 == 0).then_some([[2, 0, 0, 0, hi, lo], [2, 0, 0, 1, 0, 1]]),
        dirs: [DirInfo::EMPTY; 2],
    }
}

/// A script of sink events honouring the sink contract (offsets grow, open before and
/// nothing after close), ending with every flow closed and a Sync.
fn workload(seed: u64, spec: Spec) -> Vec<Ev> {
    let mut rng = Rng::new(seed);
    let mut free: Vec<u32> = (0..spec.slots).rev().collect();
    let mut active: Vec<FlowInfo> = Vec::new();
    let mut opened = 0usize;
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut evs = Vec::new();
    loop {
        ts += rng.below(1_000_000) + 1;
        let winding_down = evs.len() >= spec.events;
        if spec.sync_every > 0 && !evs.is_empty() && evs.len() % spec.sync_every == 0 {
            evs.push(Ev::Sync);
        }
        let can_open = opened < spec.flows && !free.is_empty();
        if !winding_down && can_open && (active.is_empty() || rng.chance(15)) {
            let slot = free.pop().unwrap();
            let info = new_flow(spec.first_flow + opened, slot, ts);
            opened += 1;
            evs.push(Ev::Open(info));
            active.push(info);
            continue;
        }
        if active.is_empty() {
            break;
        }
        let k = rng.below(active.len() as u64) as usize;
        let info = &mut active[k];
        info.last_ts = Timestamp(ts);
        let r = rng.below(100);
        let dir = if rng.chance(50) { Dir::AtoB } else { Dir::BtoA };
        let d = dir.index();
        if winding_down || (r < 6 && !spec.bulk) {
            for di in &mut info.dirs {
                di.packets += 1 + rng.below(3);
                di.ooo_segments = rng.below(5);
                di.retransmitted_bytes = rng.below(3000);
                di.conflict_bytes = rng.below(10);
                di.syn = rng.chance(80);
                di.fin = rng.chance(70);
                di.rst = rng.chance(10);
            }
            let reasons = [
                CloseReason::Fin,
                CloseReason::Rst,
                CloseReason::Idle,
                CloseReason::Evicted,
                CloseReason::Reused,
                CloseReason::EndOfInput,
            ];
            let reason = reasons[rng.below(6) as usize];
            let info = active.swap_remove(k);
            free.push(info.slot);
            evs.push(Ev::Close(info, reason));
            if spec.sync_on_close {
                evs.push(Ev::Sync);
            }
        } else if r < 10 && !spec.bulk {
            let len = 1 + rng.below(5000);
            let off = info.dirs[d].stream_len;
            let di = &mut info.dirs[d];
            di.gaps += 1;
            di.gap_bytes += len;
            di.stream_len += len;
            let reason = if rng.chance(50) {
                GapReason::Lost
            } else {
                GapReason::Snaplen
            };
            evs.push(Ev::Gap(*info, dir, off, len, reason));
        } else {
            let len = if spec.bulk {
                1448
            } else if rng.chance(spec.big_pct) {
                1 + rng.below(spec.big)
            } else {
                1 + rng.below(1448)
            };
            let off = info.dirs[d].stream_len;
            let port = info.key.port[0];
            let bytes: Vec<u8> = (0..len).map(|i| byte(port, dir, off + i)).collect();
            let di = &mut info.dirs[d];
            di.packets += 1;
            di.payload_bytes += len;
            di.stream_len += len;
            evs.push(Ev::Data(*info, dir, off, bytes));
        }
    }
    evs.push(Ev::Sync);
    evs
}

/// Feeds a script to a writer. Returns how many events are known to be on storage (up to
/// the last sync that reported success, before any failure).
fn feed<S: SpoolStorage>(w: &mut SpoolWriter<'_, S>, evs: &[Ev]) -> usize {
    let mut durable = 0;
    let mut failed = false;
    for (i, e) in evs.iter().enumerate() {
        match e {
            Ev::Open(f) => w.open(f),
            Ev::Data(f, d, o, b) => w.data(f, *d, *o, b),
            Ev::Gap(f, d, o, l, r) => w.gap(f, *d, *o, *l, *r),
            Ev::Close(f, r) => w.close(f, *r),
            Ev::Sync => {
                if w.sync() && !failed {
                    durable = i + 1;
                } else {
                    failed = true;
                }
            }
        }
    }
    durable
}

fn data_bytes(evs: &[Ev]) -> u64 {
    evs.iter()
        .map(|e| match e {
            Ev::Data(_, _, _, b) => b.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Index of the last event that writes a record.
fn last_event(evs: &[Ev]) -> Option<usize> {
    evs.iter().rposition(|e| !matches!(e, Ev::Sync))
}

fn flows_opened(evs: &[Ev]) -> u64 {
    evs.iter().filter(|e| matches!(e, Ev::Open(_))).count() as u64
}

// ---------------------------------------------------------------------------------------
// What a replay delivers

#[derive(Clone, Debug, PartialEq)]
enum Out {
    Open(FlowInfo),
    Data {
        port: u16,
        dir: Dir,
        off: u64,
        len: u64,
    },
    Gap {
        port: u16,
        dir: Dir,
        off: u64,
        len: u64,
        reason: GapReason,
    },
    Close(FlowInfo, CloseReason),
}

/// Records a replay, checking every byte as it arrives and the sink contract.
#[derive(Default)]
struct Recorder {
    evs: Vec<Out>,
    open: HashSet<u32>,
    /// Next offset per (port, dir): data only moves forward.
    next: HashMap<(u16, usize), u64>,
}

impl Sink for Recorder {
    fn open(&mut self, f: &FlowInfo) {
        assert!(self.open.insert(f.slot), "open on an open slot: {f:?}");
        self.evs.push(Out::Open(*f));
    }
    fn data(&mut self, f: &FlowInfo, dir: Dir, off: u64, data: &[u8]) {
        assert!(self.open.contains(&f.slot), "data for a flow not open");
        assert!(!data.is_empty());
        let port = f.key.port[0];
        for (i, &b) in data.iter().enumerate() {
            assert_eq!(
                b,
                byte(port, dir, off + i as u64),
                "wrong byte: port {port} {dir:?} offset {}",
                off + i as u64
            );
        }
        let next = self.next.entry((port, dir.index())).or_insert(0);
        assert!(off >= *next, "data went backwards");
        *next = off + data.len() as u64;
        self.evs.push(Out::Data {
            port,
            dir,
            off,
            len: data.len() as u64,
        });
    }
    fn gap(&mut self, f: &FlowInfo, dir: Dir, off: u64, len: u64, reason: GapReason) {
        assert!(self.open.contains(&f.slot), "gap for a flow not open");
        self.evs.push(Out::Gap {
            port: f.key.port[0],
            dir,
            off,
            len,
            reason,
        });
    }
    fn close(&mut self, f: &FlowInfo, reason: CloseReason) {
        assert!(self.open.remove(&f.slot), "close of a flow not open");
        self.evs.push(Out::Close(*f, reason));
    }
}

fn replay<S: SpoolStorage>(storage: S, slots: usize) -> (Recorder, Summary)
where
    S::Error: core::fmt::Debug,
{
    let mut r = SpoolReader::new(storage).unwrap();
    let mut rec = Recorder::default();
    let mut flows = vec![ReplayFlow::EMPTY; slots];
    let mut buf = vec![0u8; MAX_RECORD];
    let sum = r.replay(&mut rec, &mut flows, &mut buf).unwrap();
    (rec, sum)
}

/// How a replay relates to the script it came from.
struct Verdict {
    /// Per event: fully replayed.
    present: Vec<bool>,
    /// Index of the first and last event of which anything was replayed (Opens aside).
    first: Option<usize>,
    last: Option<usize>,
    /// Closes the reader made for flows cut short.
    made_up: u64,
}

/// Stream range `[start, end)` of the scripted Data event at an index.
type Span = (u64, u64, usize);

/// Maps each replayed event to the scripted event it came from and checks it: FlowInfo
/// equal, records in script order, nothing replayed twice; a Close is either the scripted
/// one or one the reader made for a flow cut short (EndOfInput, counters empty).
fn check(evs: &[Ev], out: &Recorder, sum: Option<&Summary>, ordered_opens: bool) -> Verdict {
    let mut opens = HashMap::new();
    let mut spans: HashMap<(u16, usize), Vec<Span>> = HashMap::new();
    let mut gaps = HashMap::new();
    let mut closes = HashMap::new();
    for (i, e) in evs.iter().enumerate() {
        match e {
            Ev::Open(f) => {
                opens.insert(f.key.port[0], i);
            }
            Ev::Data(f, d, o, b) => spans.entry((f.key.port[0], d.index())).or_default().push((
                *o,
                *o + b.len() as u64,
                i,
            )),
            Ev::Gap(f, d, o, _, _) => {
                gaps.insert((f.key.port[0], d.index(), *o), i);
            }
            Ev::Close(f, _) => {
                closes.insert(f.key.port[0], i);
            }
            Ev::Sync => {}
        }
    }
    let mut covered = vec![0u64; evs.len()];
    let mut present = vec![false; evs.len()];
    let (mut first, mut last) = (None, None::<usize>);
    let mut made_up = 0u64;
    let mut order = |i: usize, first: &mut Option<usize>| {
        if let Some(l) = last {
            assert!(
                i >= l,
                "event {i} replayed after event {l}: {:?} / {:?}",
                evs[i],
                evs[l]
            );
        }
        last = Some(i);
        first.get_or_insert(i);
    };
    for o in &out.evs {
        match o {
            Out::Open(f) => {
                let i = opens[&f.key.port[0]];
                let Ev::Open(g) = &evs[i] else { unreachable!() };
                assert_eq!(f, g, "FlowInfo of an open");
                present[i] = true;
                if ordered_opens {
                    order(i, &mut first);
                }
            }
            Out::Data {
                port,
                dir,
                off,
                len,
            } => {
                let v = &spans[&(*port, dir.index())];
                let k = v.partition_point(|s| s.1 <= *off);
                let (s, e, i) = v[k];
                assert!(s <= *off && off + len <= e, "a record across two events");
                covered[i] += len;
                order(i, &mut first);
            }
            Out::Gap {
                port,
                dir,
                off,
                len,
                reason,
            } => {
                let i = gaps[&(*port, dir.index(), *off)];
                let Ev::Gap(_, _, _, l, r) = &evs[i] else {
                    unreachable!()
                };
                assert_eq!((len, reason), (l, r));
                assert!(!present[i], "gap replayed twice");
                present[i] = true;
                order(i, &mut first);
            }
            Out::Close(f, reason) => {
                let scripted = closes.get(&f.key.port[0]).copied();
                match scripted.map(|i| (i, &evs[i])) {
                    Some((i, Ev::Close(g, r))) if g == f && r == reason => {
                        assert!(!present[i], "close replayed twice");
                        present[i] = true;
                        order(i, &mut first);
                    }
                    _ => {
                        assert_eq!(*reason, CloseReason::EndOfInput, "a close out of nowhere");
                        assert_eq!(f.dirs, [DirInfo::EMPTY; 2], "a made-up close with counters");
                        made_up += 1;
                    }
                }
            }
        }
    }
    for (i, e) in evs.iter().enumerate() {
        if let Ev::Data(_, _, _, b) = e {
            assert!(covered[i] <= b.len() as u64, "bytes replayed twice");
            present[i] = covered[i] == b.len() as u64;
        }
    }
    if let Some(sum) = sum {
        assert_eq!(made_up, sum.flows_unclosed, "closes made by the reader");
    }
    Verdict {
        present,
        first,
        last,
        made_up,
    }
}

/// The replay is a prefix of the script: every event before the last one replayed is there
/// whole, and everything up to `durable` is there.
fn assert_prefix(evs: &[Ev], v: &Verdict, durable: usize) {
    let last = v.last.map_or(0, |l| l + 1);
    for (i, e) in evs.iter().enumerate().take(last.max(durable)) {
        if matches!(e, Ev::Sync) || (i + 1 == last && i >= durable) {
            continue; // the last event replayed may be cut short, unless it was synced
        }
        assert!(
            v.present[i],
            "event {i} missing (last replayed {last}, durable {durable}): {e:?}"
        );
    }
}

/// The replay is a window of the script: whole from just after the first event replayed
/// to the end (the ring dropped what came before).
fn assert_window(evs: &[Ev], v: &Verdict) {
    let first = v.first.expect("nothing replayed");
    for (i, e) in evs.iter().enumerate().skip(first + 1) {
        if matches!(e, Ev::Sync) {
            continue;
        }
        assert!(
            v.present[i],
            "event {i} missing (window from {first}): {e:?}"
        );
    }
}

fn writer_on<'a, S: SpoolStorage>(
    storage: S,
    buf: &'a mut [u8],
    table: &'a mut [SpoolFlow],
) -> SpoolWriter<'a, S>
where
    S::Error: core::fmt::Debug,
{
    SpoolWriter::new(storage, buf, table).unwrap()
}

// ---------------------------------------------------------------------------------------
// Round trips

/// The writer reads no slot it has not used: a table left by an earlier writer (flows open,
/// ids and segments set) gives the same spool, byte for byte, as an empty one, also for the
/// events of flows opened before it started (a writer attached to a running engine).
#[test]
fn a_used_flow_table_writes_as_an_empty_one() {
    let spec = Spec {
        flows: 120,
        slots: 40,
        events: 1500,
        ..SPEC
    };
    let evs = workload(3, spec);
    let mut used = vec![SpoolFlow::EMPTY; 40];
    {
        let mut mem = Mem::new(1 << 20);
        let mut nor = mem.nor(4, 256);
        let mut buf = vec![0u8; 4096];
        let mut w = writer_on(&mut nor, &mut buf, &mut used);
        // Half the events: flows are left open in the table.
        feed(&mut w, &evs[..evs.len() / 2]);
    }
    assert!(used.iter().filter(|f| **f != SpoolFlow::EMPTY).count() > 5);
    let mut spools = Vec::new();
    for mut table in [used, vec![SpoolFlow::EMPTY; 40]] {
        let mut mem = Mem::new(1 << 20);
        let mut nor = mem.nor(4, 256);
        let mut buf = vec![0u8; 4096];
        {
            let mut w = writer_on(&mut nor, &mut buf, &mut table);
            let rest = &evs[evs.len() / 2..];
            assert_eq!(feed(&mut w, rest), rest.len());
        }
        spools.push(nor.flash().raw().to_vec());
    }
    assert!(spools[0] == spools[1], "the spools differ");
}

#[test]
fn round_trip_many_flows() {
    let spec = Spec {
        flows: 300,
        slots: 40,
        events: 3000,
        ..SPEC
    };
    let evs = workload(1, spec);
    let mut mem = Mem::new(4 << 20);
    let mut nor = mem.nor(4, 256);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 40]);
    let (durable, st) = {
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        (feed(&mut w, &evs), w.stats())
    };
    assert_eq!(durable, evs.len());
    assert_eq!(st.payload_bytes, data_bytes(&evs));
    assert_eq!((st.lost_records, st.storage_errors), (0, 0));
    assert_eq!(st.drops, Drops::default());
    assert_eq!(st.bytes_programmed, nor.flash().bytes_programmed());
    let (out, sum) = replay(&mut nor, 40);
    let v = check(&evs, &out, Some(&sum), true);
    for (i, e) in evs.iter().enumerate() {
        assert!(
            v.present[i] || matches!(e, Ev::Sync),
            "event {i} missing: {e:?}"
        );
    }
    let n = flows_opened(&evs);
    assert!(n > 150, "{n} flows");
    assert_eq!(sum.flows, n);
    assert_eq!(
        (sum.flows_closed, sum.flows_unclosed, sum.flows_truncated),
        (n, 0, 0)
    );
    assert_eq!(sum.data_bytes, data_bytes(&evs));
    let gap_bytes: u64 = evs
        .iter()
        .map(|e| {
            if let Ev::Gap(_, _, _, l, _) = e {
                *l
            } else {
                0
            }
        })
        .sum();
    assert_eq!(sum.gap_bytes, gap_bytes);
    assert_eq!(
        (sum.orphan_records, sum.untracked_records, sum.seq_breaks),
        (0, 0, 0)
    );
    assert_eq!(sum.epochs, 1);
    let ts: Vec<Timestamp> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Open(f) => Some(f.first_ts),
            Ev::Close(f, _) => Some(f.last_ts),
            _ => None,
        })
        .collect();
    assert_eq!(sum.first_ts, ts.iter().min().copied());
    assert_eq!(sum.last_ts, ts.iter().max().copied());
    // Big events were split: more Data records than Data events.
    let data_events = evs.iter().filter(|e| matches!(e, Ev::Data(..))).count();
    let data_records = out
        .evs
        .iter()
        .filter(|o| matches!(o, Out::Data { .. }))
        .count();
    assert!(
        data_records > data_events,
        "{data_records} records for {data_events} events"
    );
}

/// Sends `a` and `b` every event.
struct Tee<'a, A, B>(&'a mut A, &'a mut B);

impl<A: Sink, B: Sink> Sink for Tee<'_, A, B> {
    fn open(&mut self, f: &FlowInfo) {
        self.0.open(f);
        self.1.open(f);
    }
    fn data(&mut self, f: &FlowInfo, d: Dir, o: u64, b: &[u8]) {
        self.0.data(f, d, o, b);
        self.1.data(f, d, o, b);
    }
    fn gap(&mut self, f: &FlowInfo, d: Dir, o: u64, l: u64, r: GapReason) {
        self.0.gap(f, d, o, l, r);
        self.1.gap(f, d, o, l, r);
    }
    fn close(&mut self, f: &FlowInfo, r: CloseReason) {
        self.0.close(f, r);
        self.1.close(f, r);
    }
}

/// The engine's own events, spooled and replayed, give what a direct run gives.
#[test]
fn engine_events_replay_like_a_direct_run() {
    let mut store = Store::new(32, 256);
    let mut engine = store.engine(Config::default());
    let mut convs: Vec<Conv> = (0..24u16)
        .map(|i| {
            Conv::new(
                40000 + i,
                1000 + u32::from(i) * 7919,
                5_000_000 + u32::from(i),
            )
        })
        .collect();
    let mut frames = Vec::new();
    for c in &mut convs {
        frames.extend(c.handshake());
    }
    for round in 0..12usize {
        for (i, c) in convs.iter_mut().enumerate() {
            let a = pattern(50 + (i * 37 + round * 101) % 1400, (i * 100 + round) as u32);
            let b = pattern(1448, (i * 100 + round + 50) as u32);
            let fa = c.send(0, PSH | ACK, &a);
            let fb = c.send(1, PSH | ACK, &b);
            if !(i == 5 && round == 3) {
                frames.push(fa); // one segment lost: a gap
            }
            frames.push(fb);
        }
    }
    for c in &mut convs {
        frames.extend(c.close());
    }
    let mut mem = Mem::new(1 << 20);
    let mut nor = mem.nor(4, 512);
    let (mut buf, mut table) = (vec![0u8; 8192], vec![SpoolFlow::EMPTY; 32]);
    let mut direct = Rec::default();
    {
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        for (t, f) in frames.iter().enumerate() {
            let mut tee = Tee(&mut direct, &mut w);
            let _ = engine.process(
                Timestamp::from_secs(t as u64 + 1),
                LinkType::ETHERNET,
                f,
                &mut tee,
            );
        }
        engine.finish(&mut Tee(&mut direct, &mut w));
        assert!(w.sync());
        assert_eq!(w.stats().lost_records, 0);
    }
    let mut spooled = Rec::default();
    let mut r = SpoolReader::new(&mut nor).unwrap();
    let (mut flows, mut rbuf) = (vec![ReplayFlow::EMPTY; 32], vec![0u8; MAX_RECORD]);
    let sum = r.replay(&mut spooled, &mut flows, &mut rbuf).unwrap();
    assert_eq!(direct.flows.len(), 24);
    assert_eq!(spooled.flows.len(), direct.flows.len());
    assert_eq!(sum.flows_closed, 24);
    for (a, b) in direct.flows.iter().zip(&spooled.flows) {
        assert_eq!(
            (a.key, a.conn_index, a.close, a.info),
            (b.key, b.conn_index, b.close, b.info)
        );
        for d in 0..2 {
            assert_eq!(a.dirs[d].bytes, b.dirs[d].bytes);
            assert_eq!(a.dirs[d].gaps, b.dirs[d].gaps);
        }
    }
    assert!(
        direct.flows.iter().any(|f| !f.dirs[0].gaps.is_empty()),
        "the lost segment is a gap"
    );
}

// ---------------------------------------------------------------------------------------
// Power cuts

/// A storage that logs the writes it passes on, and counts the reads.
struct Logged<S> {
    inner: S,
    writes: Vec<(u64, usize)>,
    reads: u64,
}

impl<S: SpoolStorage> SpoolStorage for Logged<S> {
    type Error = S::Error;
    fn segment_size(&self) -> u32 {
        self.inner.segment_size()
    }
    fn segment_count(&self) -> u32 {
        self.inner.segment_count()
    }
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn erase(&mut self, s: u32) -> Result<(), S::Error> {
        self.inner.erase(s)
    }
    fn write(&mut self, o: u64, d: &[u8]) -> Result<(), S::Error> {
        self.writes.push((o, d.len()));
        self.inner.write(o, d)
    }
    fn read(&mut self, o: u64, b: &mut [u8]) -> Result<(), S::Error> {
        self.reads += 1;
        self.inner.read(o, b)
    }
    fn sync(&mut self) -> Result<(), S::Error> {
        self.inner.sync()
    }
}

/// Where every record (and segment header) ends, as a count of bytes programmed.
fn record_boundaries(spec: Spec, seed: u64, geo: (usize, u32, u32)) -> (Vec<u64>, u64) {
    let evs = workload(seed, spec);
    let mut mem = Mem::new(geo.0);
    let mut log = Logged {
        inner: mem.nor(geo.1, geo.2),
        writes: Vec::new(),
        reads: 0,
    };
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; spec.slots as usize]);
    {
        let mut w = writer_on(&mut log, &mut buf, &mut table);
        feed(&mut w, &evs);
        let drops = w.stats().drops;
        assert_eq!(drops.segments, 0, "the power cut tests must not wrap");
    }
    let total = log.inner.flash().bytes_programmed();
    let (seg, count) = (log.segment_size(), log.segment_count());
    let mut ends = Vec::new();
    let mut rbuf = vec![0u8; MAX_RECORD];
    for i in 0..count {
        let Some(h) = read_header(&mut log.inner, i, seg).unwrap() else {
            continue;
        };
        let base = segment_base(i, seg);
        let mut pos = SEGMENT_HEADER_LEN;
        ends.push(base + u64::from(pos));
        while let Some((_, len)) =
            read_record(&mut log.inner, base, pos, seg, h.seq, &mut rbuf).unwrap()
        {
            pos += len;
            ends.push(base + u64::from(pos));
        }
    }
    // Flash address -> bytes programmed when it was reached.
    let mut cuts = Vec::new();
    for a in ends {
        let mut before = 0u64;
        for &(o, l) in &log.writes {
            if a >= o && a <= o + l as u64 {
                cuts.push(before + (a - o));
                break;
            }
            before += l as u64;
        }
    }
    (cuts, total)
}

/// Runs `evs` into a fresh flash whose power goes after `cut` bytes, optionally plants
/// garbage after the last byte programmed, then replays and checks the prefix.
fn cut_and_check(evs: &[Ev], spec: Spec, geo: (usize, u32, u32), cut: u64, garbage: &[u8]) {
    let mut mem = Mem::new(geo.0);
    let mut nor = mem.nor(geo.1, geo.2);
    nor.flash_mut().cut_power_after(cut);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; spec.slots as usize]);
    let durable = {
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        let durable = feed(&mut w, evs);
        let st = w.stats();
        if durable < evs.len() {
            assert!(st.storage_errors > 0 && st.lost_records > 0, "{st:?}");
            let e = w.last_error();
            assert_eq!(e, Some(&NorSpoolError::Flash(MockError::PowerCut)));
        }
        durable
    };
    assert!(nor.flash().bytes_programmed() <= cut);
    nor.flash_mut().restore_power();
    if !garbage.is_empty() {
        // Garbage where the writer would have gone on (the first erased byte after the end).
        let raw = nor.flash_mut().raw_mut();
        let end = raw.iter().rposition(|&b| b != 0xFF).map_or(0, |p| p + 1);
        let n = garbage.len().min(raw.len() - end);
        raw[end..end + n].copy_from_slice(&garbage[..n]);
    }
    let (out, sum) = replay(&mut nor, spec.slots as usize);
    let v = check(evs, &out, Some(&sum), true);
    assert_prefix(evs, &v, durable);
    // Every flow closed and synced before the cut is back whole, with its final FlowInfo.
    for (i, e) in evs.iter().enumerate().take(durable) {
        if let Ev::Close(f, r) = e {
            assert!(v.present[i]);
            assert!(out.evs.contains(&Out::Close(*f, *r)));
        }
    }
}

const CUT_GEO: (usize, u32, u32) = (256 << 10, 1, 256);
/// Room for two runs without wrapping.
const RESTART_GEO: (usize, u32, u32) = (1 << 20, 1, 256);

#[test]
fn power_cut_at_every_record_boundary() {
    let spec = Spec {
        flows: 12,
        slots: 6,
        events: 120,
        ..SPEC
    };
    let evs = workload(7, spec);
    let (cuts, total) = record_boundaries(spec, 7, CUT_GEO);
    assert!(cuts.len() > 80, "{} boundaries", cuts.len());
    for &c in &cuts {
        for cut in [c.saturating_sub(1), c, c + 1] {
            cut_and_check(&evs, spec, CUT_GEO, cut, &[]);
        }
    }
    // With garbage after the tail too.
    for &c in cuts.iter().step_by(3) {
        cut_and_check(
            &evs,
            spec,
            CUT_GEO,
            c,
            &[0x02, 0x00, 0x30, 0x00, 1, 2, 3, 4, 0, 0],
        );
    }
    println!(
        "power cut at {} record boundaries of {total} bytes: ok",
        cuts.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn power_cut_at_random_offsets_recovers_a_prefix(
        seed in 0u64..1000,
        at in 0u64..=1000,
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let spec = Spec { flows: 20, slots: 8, events: 200, ..SPEC };
        let evs = workload(seed, spec);
        let (_, total) = record_boundaries(spec, seed, CUT_GEO);
        cut_and_check(&evs, spec, CUT_GEO, total * at / 1000, &garbage);
    }

    /// A writer restarted after a cut continues the spool in a new epoch: the reader gives
    /// a prefix of the first run, then the whole second run.
    #[test]
    fn writer_restarted_after_a_cut_continues_the_spool(seed in 0u64..1000, at in 0u64..1000) {
        let spec = Spec { flows: 15, slots: 8, events: 150, ..SPEC };
        let first = workload(seed, spec);
        let second = workload(seed + 5000, Spec { flows: 10, first_flow: 1000, ..spec });
        let (_, total) = record_boundaries(spec, seed, RESTART_GEO);
        let mut mem = Mem::new(RESTART_GEO.0);
        let mut nor = mem.nor(RESTART_GEO.1, RESTART_GEO.2);
        nor.flash_mut().cut_power_after(total * at / 1000);
        let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 8]);
        let durable = {
            let mut w = writer_on(&mut nor, &mut buf, &mut table);
            feed(&mut w, &first)
        };
        nor.flash_mut().restore_power();
        let epoch = {
            let mut w = writer_on(&mut nor, &mut buf, &mut table);
            prop_assert_eq!(feed(&mut w, &second), second.len());
            w.epoch()
        };
        let (out, sum) = replay(&mut nor, 8);
        prop_assert_eq!(sum.epochs, epoch);
        // Each run's flows have their own ports.
        let of_first = |o: &Out| match o {
            Out::Open(f) | Out::Close(f, _) => f.key.port[0] < 2024,
            Out::Data { port, .. } | Out::Gap { port, .. } => *port < 2024,
        };
        let ra = Recorder {
            evs: out.evs.iter().filter(|o| of_first(o)).cloned().collect(),
            ..Recorder::default()
        };
        let rb = Recorder {
            evs: out.evs.iter().filter(|o| !of_first(o)).cloned().collect(),
            ..Recorder::default()
        };
        let va = check(&first, &ra, None, true);
        assert_prefix(&first, &va, durable);
        let vb = check(&second, &rb, None, true);
        assert_prefix(&second, &vb, second.len());
        prop_assert_eq!(vb.made_up, 0);
        prop_assert_eq!(va.made_up, sum.flows_unclosed);
    }
}

// ---------------------------------------------------------------------------------------
// The ring

/// Runs a script 10x the spool's size through the ring; the newest data stays, and the drop
/// counters account exactly for what is gone.
fn ring_run<S: SpoolStorage>(storage: &mut S, label: &str)
where
    S::Error: core::fmt::Debug,
{
    let capacity = u64::from(storage.segment_size()) * u64::from(storage.segment_count());
    let spec = Spec {
        flows: 100_000,
        slots: 12,
        events: 0,
        sync_every: 0,
        sync_on_close: false,
        ..SPEC
    };
    let evs = workload(
        100,
        Spec {
            events: capacity as usize * 14 / 700,
            ..spec
        },
    );
    assert!(data_bytes(&evs) >= 10 * capacity);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 12]);
    let st = {
        let mut w = writer_on(&mut *storage, &mut buf, &mut table);
        assert_eq!(feed(&mut w, &evs), evs.len());
        w.stats()
    };
    let (out, sum) = replay(&mut *storage, 12);
    let v = check(&evs, &out, Some(&sum), false);
    assert_window(&evs, &v);
    assert_eq!(v.last, last_event(&evs), "the newest event is kept");
    let total = data_bytes(&evs);
    assert_eq!(st.drops, sum.drops);
    assert_eq!(
        sum.data_bytes + sum.drops.bytes,
        total,
        "data kept + dropped = written"
    );
    assert_eq!(
        sum.flows - sum.flows_truncated + sum.drops.flows,
        flows_opened(&evs),
        "flows kept from their start + dropped = opened"
    );
    assert_eq!(
        sum.drops.segments,
        st.segments_erased - u64::from(storage.segment_count())
    );
    // What is kept fills the spool but one segment (the one being dropped), less overhead
    // (a FlowOpen per open flow per segment weighs in small segments).
    let floor = (capacity - u64::from(storage.segment_size())) / 2;
    assert!(
        sum.data_bytes >= floor && sum.data_bytes <= capacity,
        "{} kept",
        sum.data_bytes
    );
    assert!(sum.flows_truncated > 0);
    println!(
        "{label}: wrote {total} bytes into {capacity}: kept {} bytes in {} flows ({} truncated), \
         dropped {} bytes, {} flows, {} segments",
        sum.data_bytes,
        sum.flows,
        sum.flows_truncated,
        sum.drops.bytes,
        sum.drops.flows,
        sum.drops.segments
    );
}

#[test]
fn ring_keeps_the_newest_data_and_counts_what_it_drops() {
    let mut mem = Mem::new(64 << 10);
    let mut nor = mem.nor(2, 256);
    ring_run(&mut nor, "nor 8 x 8 KiB");
}

/// A file whose erase does nothing (or zero fills): old laps stay on storage.
struct FileLike {
    data: Vec<u8>,
    seg: u32,
    count: u32,
    zero_fill: bool,
}

impl SpoolStorage for FileLike {
    type Error = core::convert::Infallible;
    fn segment_size(&self) -> u32 {
        self.seg
    }
    fn segment_count(&self) -> u32 {
        self.count
    }
    fn block_size(&self) -> u32 {
        4096
    }
    fn erase(&mut self, s: u32) -> Result<(), Self::Error> {
        if self.zero_fill {
            let b = (s * self.seg) as usize;
            self.data[b..b + self.seg as usize].fill(0);
        }
        Ok(())
    }
    fn write(&mut self, o: u64, d: &[u8]) -> Result<(), Self::Error> {
        assert_eq!((o % 4096, d.len() % 4096), (0, 0), "unaligned write");
        self.data[o as usize..o as usize + d.len()].copy_from_slice(d);
        Ok(())
    }
    fn read(&mut self, o: u64, b: &mut [u8]) -> Result<(), Self::Error> {
        b.copy_from_slice(&self.data[o as usize..o as usize + b.len()]);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn ring_over_a_file_whose_erase_is_a_no_op_never_returns_stale_records() {
    for zero_fill in [false, true] {
        let mut f = FileLike {
            data: vec![0; 8 * 16384],
            seg: 16384,
            count: 8,
            zero_fill,
        };
        ring_run(
            &mut f,
            if zero_fill {
                "file, zero fill"
            } else {
                "file, no-op erase"
            },
        );
    }
}

/// A second writer run over the spool an earlier run left (its segments are read back), fed
/// `evs[split..]`, with and without tallies: its stats, the spool's bytes, and the reads
/// it made, for each.
fn second_run_with_and_without_tallies(
    evs: &[Ev],
    split: usize,
    seg: u32,
    count: u32,
) -> [(SpoolStats, u64, Vec<u8>); 2] {
    [false, true].map(|tallied| {
        let mut f = FileLike {
            data: vec![0; (seg * count) as usize],
            seg,
            count,
            zero_fill: false,
        };
        let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 12]);
        {
            let mut w = writer_on(&mut f, &mut buf, &mut table);
            feed(&mut w, &evs[..split]);
            assert!(w.sync());
        }
        let mut tallies = vec![SegmentTally::EMPTY; count as usize];
        let mut c = Logged {
            inner: &mut f,
            writes: Vec::new(),
            reads: 0,
        };
        let st = {
            let mut w = writer_on(&mut c, &mut buf, &mut table);
            if tallied {
                w = w.with_tallies(&mut tallies);
            }
            feed(&mut w, &evs[split..]);
            assert!(w.sync());
            w.stats()
        };
        let reads = c.reads;
        (st, reads, f.data)
    })
}

/// Tallies count what a read-back would: a second run over a spool an earlier run left,
/// lapping several times, writes the same bytes and counts the same drops with and without
/// them, and with them reads only the earlier run's segments.
#[test]
fn tallied_segments_drop_as_read_back_ones_without_reading() {
    let (seg, count) = (16384u32, 8u32);
    let spec = Spec {
        flows: 100_000,
        slots: 12,
        events: (seg * count) as usize * 5 / 700,
        sync_every: 0,
        sync_on_close: false,
        ..SPEC
    };
    let evs = workload(7, spec);
    let [(plain, plain_reads, plain_bytes), (tally, tally_reads, tally_bytes)] =
        second_run_with_and_without_tallies(&evs, evs.len() / 3, seg, count);
    assert!(plain.segments_erased > 3 * u64::from(count), "{plain:?}");
    assert!(plain.drops.flows > 0 && plain.drops.bytes > 0, "{plain:?}");
    assert_eq!(plain, tally);
    assert!(plain_bytes == tally_bytes, "the spools differ");
    // Read back: the first run's segments once, not every segment of every lap.
    assert!(
        tally_reads * 3 < plain_reads,
        "{tally_reads} reads with tallies, {plain_reads} without"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same with random workloads, segment sizes, ring lengths and first runs (syncs
    /// included: they pad blocks inside a segment).
    #[test]
    fn tallies_agree_with_read_back_on_random_rings(
        seed in 0u64..10_000,
        seg_k in 2u32..=5,
        count in 2u32..=9,
        laps in 1usize..=4,
        split_pct in 0usize..=90,
        sync_every in 0usize..=40,
    ) {
        let seg = 4096 << seg_k;
        let spec = Spec {
            flows: 100_000,
            slots: 12,
            events: (seg * count) as usize * laps / 700,
            sync_every,
            sync_on_close: sync_every % 2 == 0,
            ..SPEC
        };
        let evs = workload(seed, spec);
        let [(plain, _, plain_bytes), (tally, _, tally_bytes)] =
            second_run_with_and_without_tallies(&evs, evs.len() * split_pct / 100, seg, count);
        prop_assert_eq!(plain, tally);
        prop_assert!(plain_bytes == tally_bytes, "the spools differ");
    }
}

/// A segment whose write failed is read back when the ring reuses it, tallies or not: what
/// reached the flash is not what the writer counted.
#[test]
fn a_segment_with_a_failed_write_is_read_back() {
    let spec = Spec {
        flows: 100_000,
        slots: 12,
        events: (64 << 10) * 5 / 700,
        sync_every: 0,
        sync_on_close: false,
        ..SPEC
    };
    let evs = workload(11, spec);
    let cut = evs.len() / 4;
    // Power cuts at several places, so that records the writer counted lie past the cut.
    for budget in [1500, 3000, 6000, 9000, 13000] {
        let mut runs = Vec::new();
        for tallied in [false, true] {
            let mut mem = Mem::new(64 << 10);
            let mut nor = mem.nor(2, 256);
            nor.flash_mut().cut_power_after(budget);
            let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 12]);
            let mut tallies = vec![SegmentTally::EMPTY; 8];
            let mut w = writer_on(&mut nor, &mut buf, &mut table);
            if tallied {
                w = w.with_tallies(&mut tallies);
            }
            feed(&mut w, &evs[..cut]);
            w.storage_mut().flash_mut().restore_power();
            assert!(w.clear_error().is_some());
            feed(&mut w, &evs[cut..]);
            assert!(w.sync());
            runs.push(w.stats());
        }
        assert!(
            runs[0].storage_errors > 0 && runs[0].segments_erased > 24,
            "{:?}",
            runs[0]
        );
        assert_eq!(runs[0], runs[1], "power cut after {budget} bytes");
    }
}

/// Records left by an older lap in the blocks after the newest record must not pass for
/// new ones: with a sync after every event each block starts with a record, so after the
/// ring wraps the block after the end of the newest segment starts with a whole old record.
#[test]
fn stale_records_of_an_older_lap_never_validate() {
    // A block per event; 32 blocks in the ring: these wrap it once or twice, ending at
    // different places in the newest segment.
    for events in [80, 90, 100, 110, 140] {
        let mut f = FileLike {
            data: vec![0; 8 * 16384],
            seg: 16384,
            count: 8,
            zero_fill: false,
        };
        let spec = Spec {
            flows: 1000,
            slots: 6,
            events,
            big_pct: 0,
            sync_every: 1,
            ..SPEC
        };
        let evs = workload(77, spec);
        let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 6]);
        {
            let mut w = writer_on(&mut f, &mut buf, &mut table);
            assert_eq!(feed(&mut w, &evs), evs.len());
            assert!(w.stats().drops.segments > 0, "wrapped");
        }
        let (out, sum) = replay(&mut f, 6);
        let v = check(&evs, &out, Some(&sum), false);
        assert_window(&evs, &v);
        assert_eq!(v.last, last_event(&evs));
    }
}

// ---------------------------------------------------------------------------------------
// Wear

#[test]
fn write_amplification_and_erase_spread_on_nor() {
    // 256 KiB of 4 KiB sectors, 16 KiB segments, 256-byte blocks (a NOR page).
    let mut mem = Mem::new(256 << 10);
    let mut nor = mem.nor(4, 256);
    let capacity = 256u64 << 10;
    let spec = Spec {
        flows: 1_000_000,
        slots: 8,
        events: (40 * capacity / 1448) as usize,
        sync_every: 0,
        sync_on_close: false,
        bulk: true,
        ..SPEC
    };
    let evs = workload(3, spec);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 8]);
    // Restart the writer now and then (a reboot): the ring goes on where it was.
    let mut st = SpoolStats::default();
    for part in evs.chunks(evs.len() / 5 + 1) {
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        let part: Vec<Ev> = part.to_vec();
        feed(&mut w, &part);
        assert!(w.sync(), "a clean shutdown");
        let s = w.stats();
        st.payload_bytes += s.payload_bytes;
        st.bytes_programmed += s.bytes_programmed;
    }
    let programmed = nor.flash().bytes_programmed();
    assert_eq!(programmed, st.bytes_programmed);
    assert_eq!(st.payload_bytes, data_bytes(&evs));
    let wa_milli = programmed * 1000 / st.payload_bytes;
    let erases = nor.flash().erase_counts();
    let (min, max) = (*erases.iter().min().unwrap(), *erases.iter().max().unwrap());
    println!(
        "bulk 1448-byte data, 8 flows, 16 KiB segments: {} payload bytes, {programmed} programmed: \
         write amplification {}.{:03}; erases per sector min {min} max {max}",
        st.payload_bytes,
        wa_milli / 1000,
        wa_milli % 1000
    );
    assert!(wa_milli <= 1100, "write amplification {wa_milli}/1000");
    assert!(min > 20 && max <= 2 * min, "erase spread {min}..{max}");
}

// ---------------------------------------------------------------------------------------
// Corruption

fn spool_image(seed: u64) -> (Vec<u8>, Vec<Ev>) {
    let spec = Spec {
        flows: 20,
        slots: 8,
        events: 250,
        ..SPEC
    };
    let evs = workload(seed, spec);
    let mut mem = Mem::new(64 << 10);
    {
        let mut nor = mem.nor(1, 256);
        let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 8]);
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        assert_eq!(feed(&mut w, &evs), evs.len());
    }
    (mem.mem, evs)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Bytes changed anywhere (headers, records, erased space) never panic the reader, and
    /// whatever it returns is right.
    #[test]
    fn corrupt_bytes_never_panic_and_never_give_wrong_bytes(
        hits in proptest::collection::vec((any::<u32>(), any::<u8>(), 0u8..3), 1..24),
    ) {
        let (image, evs) = spool_image(11);
        let mut mem = Mem { erases: vec![0; image.len() / SECTOR], mem: image };
        let used = mem.mem.iter().rposition(|&b| b != 0xFF).unwrap_or(0) + 64;
        for (at, val, how) in hits {
            // Mostly where the data is; sometimes anywhere.
            let i = if how == 2 { at as usize % mem.mem.len() } else { at as usize % used.min(mem.mem.len()) };
            match how {
                0 => mem.mem[i] ^= 1 << (val % 8),
                _ => mem.mem[i] = val,
            }
        }
        let mut nor = mem.nor_as_is(1, 256);
        let (out, sum) = replay(&mut nor, 8);
        check(&evs, &out, Some(&sum), false);
    }

    /// Random bytes as a whole flash: no panic, and nothing at all is replayed.
    #[test]
    fn random_flash_replays_nothing(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut mem = Mem::new(16 << 10);
        for b in &mut mem.mem {
            *b = rng.next() as u8;
        }
        let mut nor = mem.nor_as_is(1, 256);
        let (out, sum) = replay(&mut nor, 8);
        prop_assert!(out.evs.is_empty());
        prop_assert_eq!(sum.records, 0);
    }
}

// ---------------------------------------------------------------------------------------
// Storage errors, the adapter, the mock, the format

#[test]
fn storage_errors_are_counted_and_the_writer_recovers() {
    let spec = Spec {
        flows: 10,
        slots: 6,
        events: 100,
        ..SPEC
    };
    let evs = workload(21, spec);
    let mut mem = Mem::new(128 << 10);
    let mut nor = mem.nor(1, 256);
    nor.flash_mut().cut_power_after(5000);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 6]);
    let mut w = writer_on(&mut nor, &mut buf, &mut table);
    let half = evs.len() / 2;
    feed(&mut w, &evs[..half]);
    let st = w.stats();
    assert!(
        st.storage_errors > 0 && st.lost_records > 0 && st.lost_bytes > 0,
        "{st:?}"
    );
    assert!(!w.sync(), "sync reports the loss");
    // Power back: the writer starts a fresh segment and goes on.
    w.storage_mut().flash_mut().restore_power();
    assert_eq!(
        w.clear_error(),
        Some(NorSpoolError::Flash(MockError::PowerCut))
    );
    feed(&mut w, &evs[half..]);
    assert!(w.sync());
    let after = w.stats();
    assert_eq!(
        after.lost_records, st.lost_records,
        "nothing lost once power is back"
    );
    let (out, sum) = replay(&mut nor, 6);
    // The second half is all there (its flows opened in the first half are described again).
    let v = check(&evs, &out, Some(&sum), false);
    for (i, e) in evs.iter().enumerate().skip(half) {
        if !matches!(e, Ev::Sync | Ev::Open(_)) {
            assert!(v.present[i], "event {i} missing: {e:?}");
        }
    }
}

#[test]
fn nor_adapter_with_read_granularity_4() {
    let evs = workload(5, SPEC);
    let mut mem = vec![0u8; 1 << 20];
    let mut erases = vec![0u32; 256];
    let flash: MockFlash<'_, 4, 4, SECTOR> = MockFlash::new(&mut mem, &mut erases);
    let mut nor = NorSpool::new(flash, 0, 1 << 20, 1, 256).unwrap();
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 16]);
    {
        let mut w = writer_on(&mut nor, &mut buf, &mut table);
        assert_eq!(feed(&mut w, &evs), evs.len());
    }
    let (out, sum) = replay(&mut nor, 16);
    let v = check(&evs, &out, Some(&sum), true);
    assert_prefix(&evs, &v, evs.len());
    // Unaligned reads of every length near an odd offset.
    let mut whole = vec![0u8; 200];
    nor.read(1000, &mut whole).unwrap();
    for start in 1000..1008u64 {
        for len in 0..70usize {
            let mut b = vec![0u8; len];
            nor.read(start, &mut b).unwrap();
            let s = (start - 1000) as usize;
            assert_eq!(b[..], whole[s..s + len]);
        }
    }
}

#[test]
fn nor_adapter_rejects_bad_geometry() {
    use super::nor::NorConfigError;
    let mut mem = vec![0u8; 64 << 10];
    let mut erases = vec![0u32; 16];
    let flash = Flash::new(&mut mem, &mut erases);
    assert_eq!(
        NorSpool::new(flash, 100, 32768, 1, 256).err(),
        Some(NorConfigError::Region)
    );
    let flash = Flash::new(&mut mem, &mut erases);
    assert_eq!(
        NorSpool::new(flash, 0, 128 << 10, 1, 256).err(),
        Some(NorConfigError::Region)
    );
    let flash = Flash::new(&mut mem, &mut erases);
    assert_eq!(NorSpool::new(flash, 0, 8192, 1, 256).err(), None);
    let flash = Flash::new(&mut mem, &mut erases);
    assert_eq!(
        NorSpool::new(flash, 0, 4096, 1, 256).err(),
        Some(NorConfigError::TooSmall)
    );
    let flash = Flash::new(&mut mem, &mut erases);
    assert_eq!(
        NorSpool::new(flash, 0, 8192, 1, 258).err(),
        Some(NorConfigError::BlockSize)
    );
    // The writer refuses what the format cannot hold.
    let flash = Flash::new(&mut mem, &mut erases);
    let nor = NorSpool::new(flash, 0, 65536, 1, 8).unwrap();
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 4]);
    assert_eq!(
        SpoolWriter::new(nor, &mut buf, &mut table).err(),
        Some(SpoolError::Config(ConfigError::BlockSize))
    );
    let flash = Flash::new(&mut mem, &mut erases);
    let nor = NorSpool::new(flash, 0, 65536, 1, 256).unwrap();
    let mut small = vec![0u8; 1024];
    assert_eq!(
        SpoolWriter::new(nor, &mut small, &mut table).err(),
        Some(SpoolError::Config(ConfigError::Buffer))
    );
}

#[test]
fn mock_flash_has_nor_semantics() {
    use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
    let mut mem = vec![0u8; 8192];
    let mut erases = vec![0u32; 2];
    let mut f = Flash::new(&mut mem, &mut erases);
    assert_eq!(f.write(2, &[0; 4]), Err(MockError::NotAligned));
    assert_eq!(f.write(0, &[0x0F, 0xF0, 0x00, 0xFF]), Ok(()));
    assert_eq!(
        f.write(0, &[0xFF; 4]),
        Err(MockError::NotErased),
        "no second program"
    );
    assert_eq!(f.write(8192, &[0; 4]), Err(MockError::OutOfBounds));
    let mut b = [0u8; 4];
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0x0F, 0xF0, 0x00, 0xFF]);
    f.erase(0, 4096).unwrap();
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0xFF; 4]);
    assert_eq!(f.erase_counts(), &[1, 0]);
    // A cut in the middle of a write: applied up to it, the byte at it half done.
    f.cut_power_after(6);
    assert_eq!(f.write(4096, &[0x00; 8]), Err(MockError::PowerCut));
    assert_eq!(f.raw()[4096..4104], [0, 0, 0, 0, 0, 0, 0x0F, 0xFF]);
    assert_eq!(f.erase(0, 4096), Err(MockError::PowerCut));
    f.restore_power();
    assert_eq!(f.bytes_programmed(), 4 + 6);
}

#[test]
fn format_is_little_endian_on_every_host() {
    let h = SegmentHeader {
        seq: 0x0102_0304_0506_0708,
        epoch: 0x1112_1314,
        block_size: 256,
        segment_size: 4096,
        slots: 9,
        drops: Drops {
            flows: 1,
            bytes: 2,
            segments: 3,
        },
    };
    let b = h.encode();
    assert_eq!(&b[..8], b"TFSP\x01\x00\x40\x00");
    assert_eq!(b[8..16], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(b[16..20], [0x14, 0x13, 0x12, 0x11]);
    assert_eq!(b[20..24], [0, 1, 0, 0]);
    assert_eq!(SegmentHeader::decode(&b, 4096), Some(h));
    assert_eq!(SegmentHeader::decode(&b, 8192), None, "another geometry");
    assert_eq!(format::header_segment_size(&b), Some(4096));
    let mut bad = b;
    bad[30] ^= 1;
    assert_eq!(SegmentHeader::decode(&bad, 4096), None);
    assert_eq!(format::header_segment_size(&bad), None);
    assert_eq!(
        format::header_segment_size(&[0; 64]),
        None,
        "erased or zeros"
    );
    assert_eq!(format::header_segment_size(&b[..63]), None, "short");
    // A record: header (type, flags, len LE, CRC LE) and body (slot, id, offset LE).
    let mut mem = Mem::new(16 << 10);
    let mut nor = mem.nor(1, 256);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 4]);
    let mut f = new_flow(0, 3, 5);
    let mut w = writer_on(&mut nor, &mut buf, &mut table);
    w.open(&f);
    f.dirs[1].stream_len = 0x0102;
    w.data(&f, Dir::BtoA, 0x0A0B_0C0D_0E0F, b"xyz");
    assert!(w.sync());
    let raw = nor.flash().raw();
    let rec = SEGMENT_HEADER_LEN as usize + OPEN_LEN;
    assert_eq!(raw[SEGMENT_HEADER_LEN as usize], 1, "FlowOpen first");
    assert_eq!(raw[rec..rec + 4], [2, 1, 27, 0], "Data, BtoA, 27 bytes");
    assert_eq!(raw[rec + 8..rec + 12], [3, 0, 0, 0], "slot 3");
    assert_eq!(
        raw[rec + 16..rec + 24],
        [0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0, 0]
    );
    assert_eq!(&raw[rec + 24..rec + 27], b"xyz");
    let mut rbuf = vec![0u8; MAX_RECORD];
    let seq = read_header(&mut nor, 0, 4096).unwrap().unwrap().seq;
    let r = read_record(&mut nor, 0, rec as u32, 4096, seq, &mut rbuf).unwrap();
    assert!(matches!(
        r,
        Some((
            Record::Data {
                slot: 3,
                offset: 0x0A0B_0C0D_0E0F,
                bytes: b"xyz",
                ..
            },
            27
        ))
    ));
    // The same bytes under another sequence number (a stale lap) do not validate.
    let r = read_record(&mut nor, 0, rec as u32, 4096, seq + 16, &mut rbuf).unwrap();
    assert!(r.is_none());
}

#[test]
fn sync_pads_so_no_block_is_programmed_twice() {
    // Sync after every event: each sync closes a partial block; the mock refuses any second
    // program of a byte, so a writer that re-programmed a block would fail here.
    let spec = Spec {
        flows: 10,
        slots: 6,
        events: 150,
        sync_every: 1,
        ..SPEC
    };
    let evs = workload(9, spec);
    for block in [16u32, 64, 256] {
        let mut mem = Mem::new(512 << 10);
        let mut nor = mem.nor(1, block);
        let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 6]);
        {
            let mut w = writer_on(&mut nor, &mut buf, &mut table);
            assert_eq!(feed(&mut w, &evs), evs.len());
            assert_eq!(w.stats().storage_errors, 0);
        }
        let (out, sum) = replay(&mut nor, 6);
        let v = check(&evs, &out, Some(&sum), true);
        assert_prefix(&evs, &v, evs.len());
    }
}

// ---------------------------------------------------------------------------------------
// Damage: the reader goes on after it and counts it

/// A spool of 32 segments of 16 KiB over a file-like storage (4 KiB blocks), written from a
/// workload that fills several segments without wrapping.
fn file_image() -> (FileLike, Vec<Ev>) {
    let spec = Spec {
        flows: 40,
        slots: 8,
        events: 300,
        big_pct: 0,
        ..SPEC
    };
    let evs = workload(5, spec);
    let mut f = FileLike {
        data: vec![0; 32 * 16384],
        seg: 16384,
        count: 32,
        zero_fill: false,
    };
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 8]);
    {
        let mut w = writer_on(&mut f, &mut buf, &mut table);
        assert_eq!(feed(&mut w, &evs), evs.len());
        assert_eq!(w.stats().drops.segments, 0);
    }
    (f, evs)
}

/// Records of a segment: (offset in storage, length).
fn records_of(f: &mut FileLike, idx: u32) -> Vec<(u64, u32)> {
    let h = read_header(f, idx, f.seg).unwrap().expect("a header");
    let base = segment_base(idx, f.seg);
    let (mut pos, mut out, mut buf) = (SEGMENT_HEADER_LEN, Vec::new(), vec![0u8; MAX_RECORD]);
    let seg = f.seg;
    while let Some((_, len)) = read_record(f, base, pos, seg, h.seq, &mut buf).unwrap() {
        out.push((base + u64::from(pos), len));
        pos += len;
    }
    out
}

#[test]
fn an_undamaged_spool_reports_no_damage() {
    let (mut f, evs) = file_image();
    let (out, sum) = replay(&mut f, 8);
    let v = check(&evs, &out, Some(&sum), true);
    assert_eq!(v.last, last_event(&evs));
    assert!(!sum.damaged(), "{sum:?}");
    assert_eq!(
        (sum.damaged_regions, sum.torn_tails, sum.flows_cut),
        (0, 0, 0)
    );
}

#[test]
fn a_flipped_byte_costs_one_record_and_the_rest_of_the_segment_is_read() {
    let (mut f, evs) = file_image();
    let (_, clean) = replay(&mut f, 8);
    assert!(clean.segments >= 3, "{clean:?}");
    // A record in the middle of segment 0.
    let recs = records_of(&mut f, 0);
    let (at, len) = recs[recs.len() / 2];
    f.data[at as usize + len as usize / 2] ^= 0x10;
    let (out, sum) = replay(&mut f, 8);
    check(&evs, &out, Some(&sum), false);
    assert_eq!(sum.damaged_regions, 1, "{sum:?}");
    assert_eq!(sum.damaged_bytes, u64::from(len));
    assert!(sum.damaged());
    assert_eq!(sum.torn_tails, 0);
    // One record lost, not the rest of the segment.
    assert_eq!(sum.records, clean.records - 1, "{sum:?}");
    assert!(sum.flows_cut + sum.orphan_records + sum.flows_unclosed > clean.flows_unclosed);
}

#[test]
fn a_zeroed_first_block_loses_that_block_only_and_is_not_blamed_on_the_ring() {
    let (mut f, evs) = file_image();
    let (_, clean) = replay(&mut f, 8);
    let in_block = records_of(&mut f, 1)
        .iter()
        .filter(|(at, _)| *at < 16384 + 4096)
        .count() as u64;
    // Segment 1's first block, its header included.
    f.data[16384..16384 + 4096].fill(0);
    let (out, sum) = replay(&mut f, 8);
    check(&evs, &out, Some(&sum), false);
    assert!(sum.damaged(), "{sum:?}");
    assert_eq!(sum.segments, clean.segments, "{sum:?}");
    assert_eq!(sum.seq_breaks, 0);
    assert_eq!(sum.flows_truncated, 0, "blamed on the ring: {sum:?}");
    // At most the records that touch the zeroed block are lost.
    assert!(
        sum.records + in_block + 1 >= clean.records,
        "{sum:?} {clean:?}"
    );
    assert!(sum.damaged_bytes >= 4096 && sum.damaged_bytes < 4096 + MAX_RECORD as u64);
}

#[test]
fn a_torn_last_block_is_a_torn_tail_not_damage() {
    let (mut f, evs) = file_image();
    let (_, clean) = replay(&mut f, 8);
    // The newest segment's last record, its block half written when the power went.
    let newest = (0..32)
        .filter_map(|i| read_header(&mut f, i, 16384).unwrap().map(|h| (h.seq, i)))
        .max()
        .unwrap()
        .1;
    let recs = records_of(&mut f, newest);
    let &(at, len) = recs
        .iter()
        .rev()
        .find(|(at, l)| *l > 32 && f.data[*at as usize] != format::T_PAD)
        .expect("a record");
    // From its middle to the end of its block: what the block held before.
    let at = at as usize + len as usize / 2;
    let end = (at / 4096 + 1) * 4096;
    f.data[at..end].fill(0x5A);
    let (out, sum) = replay(&mut f, 8);
    check(&evs, &out, Some(&sum), false);
    assert_eq!(sum.torn_tails, 1, "{sum:?}");
    assert!(!sum.damaged(), "{sum:?}");
    assert!(sum.records < clean.records);
}

#[test]
fn crafted_records_past_the_longest_stream_are_invalid() {
    // A Gap whose end passes 2^63 - 1 (no file can hold it) and one that ends there.
    let mut f = FileLike {
        data: vec![0; 2 * 16384],
        seg: 16384,
        count: 2,
        zero_fill: false,
    };
    let flow = new_flow(1, 0, 1);
    let (mut buf, mut table) = (vec![0u8; 4096], vec![SpoolFlow::EMPTY; 1]);
    {
        let mut w = writer_on(&mut f, &mut buf, &mut table);
        w.open(&flow);
        w.gap(&flow, Dir::AtoB, 0, format::MAX_STREAM, GapReason::Lost);
        w.gap(&flow, Dir::BtoA, 0, u64::MAX - 10, GapReason::Lost);
        w.close(&flow, CloseReason::Fin);
        assert!(w.sync());
    }
    let (out, sum) = replay(&mut f, 1);
    assert_eq!(sum.gap_bytes, format::MAX_STREAM, "{sum:?}");
    assert_eq!(sum.damaged_regions, 1, "{sum:?}");
    assert_eq!(sum.flows_closed, 1);
    assert_eq!(out.evs.len(), 3);
}

/// Counts reads.
struct Counted<'a> {
    inner: &'a mut FileLike,
    reads: u64,
}

impl SpoolStorage for Counted<'_> {
    type Error = core::convert::Infallible;
    fn segment_size(&self) -> u32 {
        self.inner.seg
    }
    fn segment_count(&self) -> u32 {
        self.inner.count
    }
    fn block_size(&self) -> u32 {
        4096
    }
    fn erase(&mut self, s: u32) -> Result<(), Self::Error> {
        self.inner.erase(s)
    }
    fn write(&mut self, o: u64, d: &[u8]) -> Result<(), Self::Error> {
        self.inner.write(o, d)
    }
    fn read(&mut self, o: u64, b: &mut [u8]) -> Result<(), Self::Error> {
        self.reads += 1;
        self.inner.read(o, b)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn crafted_candidates_cannot_make_the_search_after_damage_expensive() {
    let (mut f, _) = file_image();
    let (_, clean) = replay(&mut f, 8);
    // Every segment after its first record: a plausible Data header every 4 bytes, none
    // with a valid CRC.
    for i in 0..32usize {
        let base = i * 16384;
        for (k, b) in f.data[base + 200..base + 16384].iter_mut().enumerate() {
            *b = [2, 0, 25, 0][k % 4];
        }
    }
    let mut c = Counted {
        inner: &mut f,
        reads: 0,
    };
    let (_, sum) = replay(&mut c, 8);
    assert!(sum.damaged() || sum.torn_tails > 0, "{sum:?}");
    assert!(sum.records < clean.records);
    // Per segment: the candidates the budget allows (4 x 16 KiB / 512 = 128) at three reads
    // each, a few more; not one per byte.
    assert!(c.reads < 32 * (3 * 128 + 64), "{} reads", c.reads);
}
