//! In-order ingest speed of the core: `cargo bench -p tcpflow-core`. Prints packets/s and
//! ns/packet for bulk in-order traffic, small-segment traffic, and traffic with 1% of
//! segments out of order. Frames are built in memory first; only `Engine::process` is timed.

use std::hint::black_box;
use std::time::Instant;

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

/// Ethernet/IPv4/TCP from 10.0.F.F:40000+F to 10.0.0.2:80 (the test kit's builders).
fn frame(flow: u32, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let src = Ipv4Addr::new(10, 0, (flow >> 8) as u8, flow as u8);
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
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut e = store.engine(Config::default());
        let mut sink = Count(0);
        let t = Instant::now();
        for (i, f) in frames.iter().enumerate() {
            let _ =
                black_box(e.process(Timestamp(i as u64 * 1000), LinkType::ETHERNET, f, &mut sink));
        }
        e.finish(&mut sink);
        best = best.min(t.elapsed().as_secs_f64());
        black_box(sink.0);
    }
    let n = frames.len() as f64;
    println!(
        "{name:<28} {:>8} packets  {:>7.1} Mpackets/s  {:>6.1} ns/packet  {:>7.0} MB/s (best of {rounds})",
        frames.len(),
        n / best / 1e6,
        best * 1e9 / n,
        bytes as f64 / best / 1e6
    );
}

fn main() {
    // `cargo test --benches` runs this with no arguments too: keep that quick.
    let quick = std::env::args().all(|a| a != "--bench");
    let scale = if quick { 1 } else { 20 };
    bench(
        "bulk 16 flows x 1448 B",
        &workload(16, 500 * scale, 1448, 0),
        5,
    );
    bench(
        "small 1024 flows x 64 B",
        &workload(1024, 10 * scale, 64, 0),
        5,
    );
    bench(
        "1% out of order, 1448 B",
        &workload(16, 500 * scale, 1448, 100),
        5,
    );
}
