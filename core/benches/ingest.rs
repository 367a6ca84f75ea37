//! In-order ingest speed of the core: `cargo bench -p tcpflow-core`. Prints packets/s and
//! ns/packet for bulk in-order traffic, small-segment traffic, traffic with 1% of segments
//! out of order, and 200,000 connections open at once visited round-robin (the shape of the
//! command benchmark's `concurrent` workload, where most connections wait packed in their
//! records). Frames are built in memory first; only `Engine::process` is timed, by the
//! thread's CPU clock (time the thread ran: on a machine shared with other work, wall time
//! counts theirs too), with the wall time beside it.

use std::hint::black_box;
use std::time::Instant;

/// Wall and thread CPU time since `start`.
#[derive(Clone, Copy)]
struct Clock {
    wall: Instant,
    cpu: f64,
}

/// Seconds of CPU this thread has run.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// (CPU, wall) seconds since the start.
    fn elapsed(&self) -> (f64, f64) {
        (thread_cpu() - self.cpu, self.wall.elapsed().as_secs_f64())
    }
}

/// The smaller CPU time of two (CPU, wall) measures, with its wall time.
fn best_of(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    if b.0 < a.0 {
        b
    } else {
        a
    }
}

use std::net::Ipv4Addr;

use tcpflow_core::testkit::Store;
use tcpflow_core::{Capacities, Config, Dir, FlowInfo, LinkType, Sink, Timestamp};
use tcpflow_tests::link::{Dir as Side, Link};
use tcpflow_tests::packet::{ipv4_packet, tcp_segment, Tcp, PROTO_TCP};

struct Count(u64);

impl Sink for Count {
    fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, data: &[u8]) {
        self.0 += data.len() as u64;
    }
}

/// Ethernet/IPv4/TCP from 10.F.F.F:40000+F to 10.0.0.2:80 (the test kit's builders).
fn frame(flow: u32, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let src = Ipv4Addr::new(10, (flow >> 16) as u8, (flow >> 8) as u8, flow as u8);
    let dst = Ipv4Addr::new(10, 0, 0, 2);
    let h = Tcp {
        src_port: 40000 + flow as u16,
        dst_port: 80,
        seq,
        ack: 1,
        flags,
        window: 0xffff,
    };
    let segment = tcp_segment(src.into(), dst.into(), &h, payload);
    let ip = ipv4_packet(src, dst, 0, 64, &[], PROTO_TCP, &segment);
    Link::ethernet().encode(Side::C2S, &ip)
}

/// `flows` connections sending `per_flow` segments of `mss` bytes, round-robin; every
/// `ooo_every`-th segment swapped with the next one (0: never).
fn workload(flows: u32, per_flow: u32, mss: usize, ooo_every: u32) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..mss).map(|i| i as u8).collect();
    let mut out = Vec::new();
    for f in 0..flows {
        out.push(frame(f, 999, 0x02, &[]));
    }
    for k in 0..per_flow {
        for f in 0..flows {
            out.push(frame(f, 1000 + k * mss as u32, 0x10, &payload));
        }
    }
    if ooo_every > 0 {
        let step = ooo_every as usize * flows as usize;
        let mut i = flows as usize;
        while i + (flows as usize) < out.len() {
            out.swap(i, i + flows as usize);
            i += step;
        }
    }
    out
}

fn bench(name: &str, frames: &[Vec<u8>], rounds: u32) {
    // A full slot for each of the 1,024 flows of the widest workload.
    let mut store = Store::from_caps(Capacities {
        flows: 4096,
        blocks: 4096,
        frag_slots: 16,
        frag_slot_bytes: 65536,
    })
    .hot(1024);
    let bytes: usize = frames.iter().map(|f| f.len()).sum();
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let mut e = store.engine(Config::default());
        let mut sink = Count(0);
        let t = Clock::start();
        for (i, f) in frames.iter().enumerate() {
            let _ =
                black_box(e.process(Timestamp(i as u64 * 1000), LinkType::ETHERNET, f, &mut sink));
        }
        e.finish(&mut sink);
        best = best_of(best, t.elapsed());
        black_box(sink.0);
    }
    let n = frames.len() as f64;
    let (cpu, wall) = best;
    println!(
        "{name:<28} {:>8} packets  {:>7.1} Mpackets/s  {:>6.1} ns/packet  {:>7.0} MB/s  (wall {:>6.1} ns/packet; best of {rounds})",
        frames.len(),
        n / cpu / 1e6,
        cpu * 1e9 / n,
        bytes as f64 / cpu / 1e6,
        wall * 1e9 / n,
    );
}

/// Where [`frame`] puts the TCP sequence number (Ethernet, then a 20-byte IPv4 header).
const SEQ_AT: usize = 14 + 20 + 4;

/// `flows` connections open at once: a SYN each, then `rounds` rounds of one `mss`-byte
/// segment per connection, round-robin, so every packet is for a connection not seen for
/// `flows` packets. With `shuffle`, each round visits the connections in a different order (as
/// each phase of the command benchmark's `concurrent` workload does), so the records are
/// reached at random rather than one after the other. Each round's frames are copied into one
/// buffer in the order they are sent, with the sequence number moved on (the core checks no
/// checksum), before the clock starts. Capacities are the workstation's (262,144 records and
/// the hot slots they come with).
fn bench_open(name: &str, flows: u32, rounds: u32, mss: usize, shuffle: bool, runs: u32) {
    let payload: Vec<u8> = (0..mss).map(|i| i as u8).collect();
    let syns: Vec<Vec<u8>> = (0..flows).map(|f| frame(f, 999, 0x02, &[])).collect();
    let data: Vec<Vec<u8>> = (0..flows).map(|f| frame(f, 1000, 0x10, &payload)).collect();
    let flen = data[0].len();
    let mut order: Vec<u32> = (0..flows).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut buf = vec![0u8; flen * flows as usize];
    let mut store = Store::from_caps(Capacities {
        flows: 262_144,
        blocks: 4096,
        frag_slots: 16,
        frag_slot_bytes: 65536,
    });
    let packets = flows as u64 * (1 + rounds as u64);
    let mut best = (f64::MAX, f64::MAX);
    let mut best_finish = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let mut e = store.engine(Config::default());
        let mut sink = Count(0);
        let mut ts = 0u64;
        let t = Clock::start();
        for f in &syns {
            ts += 1000;
            let _ = black_box(e.process(Timestamp(ts), LinkType::ETHERNET, f, &mut sink));
        }
        let mut busy = t.elapsed();
        for k in 0..rounds {
            if shuffle {
                // Fisher-Yates with xorshift: the same orders every run.
                for i in (1..order.len()).rev() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    order.swap(i, (rng % (i as u64 + 1)) as usize);
                }
            }
            let seq = (1000 + k * mss as u32).to_be_bytes();
            for (out, &f) in buf.chunks_exact_mut(flen).zip(&order) {
                out.copy_from_slice(&data[f as usize]);
                out[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq);
            }
            let t = Clock::start();
            for f in buf.chunks_exact(flen) {
                ts += 1000;
                let _ = black_box(e.process(Timestamp(ts), LinkType::ETHERNET, f, &mut sink));
            }
            let (cpu, wall) = t.elapsed();
            busy = (busy.0 + cpu, busy.1 + wall);
        }
        assert_eq!(
            e.open_flows(),
            flows as usize,
            "every connection stays open"
        );
        let t = Clock::start();
        e.finish(&mut sink);
        best_finish = best_of(best_finish, t.elapsed());
        best = best_of(best, busy);
        assert_eq!(sink.0, flows as u64 * rounds as u64 * mss as u64);
    }
    let n = packets as f64;
    println!(
        "{name:<28} {:>8} packets  {:>7.1} Mpackets/s  {:>6.1} ns/packet  finish {:>5.1} ns/flow  (wall {:>6.1} ns/packet; best of {runs})",
        packets,
        n / best.0 / 1e6,
        best.0 * 1e9 / n,
        best_finish.0 * 1e9 / flows as f64,
        best.1 * 1e9 / n,
    );
}

fn main() {
    // `cargo test --benches` runs this with no arguments too: keep that quick.
    let quick = std::env::args().all(|a| a != "--bench");
    // Other arguments pick the cases whose names contain one of them (`-- shuffled`).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let scale = if quick { 1 } else { 20 };
    for (name, flows, per_flow, mss, ooo) in [
        ("bulk 16 flows x 1448 B", 16, 500, 1448, 0),
        ("small 1024 flows x 64 B", 1024, 10, 64, 0),
        ("1% out of order, 1448 B", 16, 500, 1448, 100),
    ] {
        if run(name) {
            bench(name, &workload(flows, per_flow * scale, mss, ooo), 5);
        }
    }
    let (rounds, runs) = if quick { (1, 1) } else { (5, 3) };
    for (name, shuffle) in [
        ("200,000 open, round-robin", false),
        ("200,000 open, shuffled", true),
    ] {
        if run(name) {
            bench_open(name, 200_000, rounds, 100, shuffle, runs);
        }
    }
}
