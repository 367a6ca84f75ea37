//! Engine scenarios: each reassembly case from the design, checked byte for byte.

use std::vec;
use std::vec::Vec;

use crate::config::{Config, OverlapPolicy};

use crate::flow::Dir;

use crate::sink::{CloseReason, GapReason};
use crate::testutil::*;
use crate::{LinkType, Timestamp};

fn cfg() -> Config {
    Config::default()
}

/// Feeds frames one millisecond apart, then finishes.
fn run(store: &mut Store, cfg: Config, frames: &[Vec<u8>]) -> (Rec, crate::Stats) {
    let mut rec = Rec {
        allow_rewrite: cfg.overlap == OverlapPolicy::Last,
        ..Rec::default()
    };
    let mut e = store.engine(cfg);
    for (i, f) in frames.iter().enumerate() {
        e.process(
            Timestamp(1_000_000 * (i as u64 + 1)),
            LinkType::ETHERNET,
            f,
            &mut rec,
        )
        .unwrap();
    }
    e.finish(&mut rec);
    (rec, *e.stats())
}

fn segments(c: &mut Conv, side: usize, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
    data.chunks(mss)
        .map(|p| c.send(side, ACK | PSH, p))
        .collect()
}

#[test]
fn in_order_exchange_closes_on_fin() {
    let mut c = Conv::new(40000, 1000, 5000);
    let req = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let resp = pattern(5000, 1);
    let mut f = c.handshake();
    f.extend(segments(&mut c, 0, &req, 1460));
    f.extend(segments(&mut c, 1, &resp, 1460));
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40000, 0);
    assert_eq!(fl.dirs[0].bytes, req);
    assert_eq!(fl.dirs[1].bytes, resp);
    assert_eq!(fl.close, Some(CloseReason::Fin));
    assert!(fl.dirs[0].gaps.is_empty() && fl.dirs[1].gaps.is_empty());
    assert_eq!(stats.flow.delivered_bytes, (req.len() + resp.len()) as u64);
    assert_eq!(stats.flow.ooo_segments, 0);
    let info = fl.info.unwrap();
    assert_eq!(info.dirs[0].packets, 4); // SYN, ACK, request, FIN (the last ACK comes after close)
    assert!(info.dirs[0].syn && info.dirs[0].fin && info.dirs[1].syn && info.dirs[1].fin);
}

#[test]
fn sequence_numbers_wrap() {
    let mut c = Conv::new(40001, u32::MAX - 3000, u32::MAX - 10);
    let data = pattern(300_000, 2);
    let mut f = c.handshake();
    f.extend(segments(&mut c, 0, &data, 1448));
    f.extend(segments(&mut c, 1, &data[..5000], 1448));
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40001, 0);
    assert_eq!(fl.dirs[0].bytes, data);
    assert_eq!(fl.dirs[1].bytes, data[..5000]);
    assert_eq!(fl.close, Some(CloseReason::Fin));
}

#[test]
fn reuse_after_fin_and_after_rst_are_new_connections() {
    let mut f = Vec::new();
    let mut a = Conv::new(40002, 100, 200);
    f.extend(a.handshake());
    f.push(a.send(0, ACK, b"first"));
    f.extend(a.close());
    // Same 4-tuple, ISN close to the old one: still a new connection (tcpflow 1.6 merges it).
    let mut b = Conv::new(40002, 100 + 5 + 1000, 900);
    f.extend(b.handshake());
    f.push(b.send(0, ACK, b"second"));
    f.push(b.send(0, RST, &[]));
    let mut c = Conv::new(40002, 77_777, 88_888);
    f.extend(c.handshake());
    f.push(c.send(1, ACK, b"third"));
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(40002, 0).dirs[0].bytes, b"first");
    assert_eq!(rec.find(40002, 0).close, Some(CloseReason::Fin));
    assert_eq!(rec.find(40002, 1).dirs[0].bytes, b"second");
    assert_eq!(rec.find(40002, 1).close, Some(CloseReason::Rst));
    assert_eq!(rec.find(40002, 2).dirs[1].bytes, b"third");
    assert_eq!(stats.flow.reused, 2);
}

#[test]
fn new_syn_on_open_flow_closes_it_as_reused() {
    let mut f = Vec::new();
    let mut a = Conv::new(40003, 100, 200);
    f.extend(a.handshake());
    f.push(a.send(0, ACK, b"old"));
    let mut b = Conv::new(40003, 3_000_000_000, 900);
    f.extend(b.handshake());
    f.push(b.send(0, ACK, b"new"));
    // A retransmitted SYN of the new connection is not a third one.
    f.push(b.frame_at(0, 3_000_000_000, SYN, &[]));
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(40003, 0).close, Some(CloseReason::Reused));
    assert_eq!(rec.find(40003, 0).dirs[0].bytes, b"old");
    assert_eq!(rec.find(40003, 1).dirs[0].bytes, b"new");
    assert_eq!(rec.flows.len(), 2);
}

#[test]
fn midstream_pickup_keeps_data_that_arrives_late() {
    let mut c = Conv::new(40004, 10_000, 20_000);
    let data = pattern(4000, 3);
    let segs = segments(&mut c, 0, &data, 1000);
    // No handshake; the second segment is seen first, then the first.
    let f = vec![
        segs[1].clone(),
        segs[0].clone(),
        segs[2].clone(),
        segs[3].clone(),
    ];
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40004, 0);
    assert_eq!(fl.dirs[0].bytes, data);
    assert!(fl.dirs[0].gaps.is_empty());
}

#[test]
fn midstream_pickup_commits_after_the_hold_and_counts_late_bytes() {
    let mut c = Conv::new(40005, 10_000, 20_000);
    let data = pattern(30 * 100, 4);
    let segs = segments(&mut c, 0, &data, 100);
    let mut f: Vec<_> = segs[1..].to_vec();
    f.push(segs[0].clone()); // far too late: the stream already started at segment 1
    let cfg = Config {
        midstream_hold_segments: 4,
        ..cfg()
    };
    let (rec, stats) = run(&mut Store::new(8, 64), cfg, &f);
    assert_eq!(rec.find(40005, 0).dirs[0].bytes, data[100..]);
    assert_eq!(stats.flow.late_bytes, 100);
}

#[test]
fn syn_with_data() {
    let mut c = Conv::new(40006, 500, 600);
    let f = vec![
        c.send(0, SYN, b"early"),
        c.send(1, SYN | ACK, &[]),
        c.send(0, ACK, b" data"),
    ];
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(40006, 0).dirs[0].bytes, b"early data");
}

#[test]
fn keepalive_probes_never_corrupt_the_stream() {
    let mut c = Conv::new(40007, 500, 600);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"hello"));
    let next = c.seq[0];
    f.push(c.frame_at(0, next.wrapping_sub(1), ACK, b"\xAA")); // garbage byte at next-1
    f.push(c.frame_at(0, next.wrapping_sub(1), ACK, &[])); // and an empty one
    f.push(c.send(0, ACK, b" world"));
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(40007, 0).dirs[0].bytes, b"hello world");
    assert_eq!(stats.flow.keepalives, 1);
    assert_eq!(stats.flow.conflict_bytes, 0);
}

#[test]
fn zero_window_probe_byte_is_data_once() {
    let mut c = Conv::new(40008, 500, 600);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"ab"));
    let next = c.seq[0];
    f.push(c.frame_at(0, next, ACK, b"c")); // probe: the next byte, sent early
    f.push(c.frame_at(0, next, ACK, b"c")); // again
    f.push(c.send(0, ACK, b"cdef")); // then the window opens
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(40008, 0).dirs[0].bytes, b"abcdef");
}

#[test]
fn ethernet_padding_is_never_data() {
    let mut c = Conv::new(40009, 500, 600);
    let mut f = c.handshake();
    for b in b"tiny" {
        f.push(c.send(0, ACK, &[*b])); // 55-byte frames, padded with 0xEE
    }
    f.extend(c.close());
    assert!(f.iter().all(|x| x.len() >= 60));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40009, 0);
    assert_eq!(fl.dirs[0].bytes, b"tiny");
    assert!(fl.dirs[1].bytes.is_empty());
    assert_eq!(stats.flow.payload_bytes, 4);
}

fn overlap_frames() -> Vec<Vec<u8>> {
    let mut c = Conv::new(40010, 1000, 2000);
    let mut f = c.handshake();
    let base = c.seq[0];
    f.push(c.frame_at(0, base, ACK, b"AAAA")); // delivered
    f.push(c.frame_at(0, base + 8, ACK, b"CCCC")); // held (hole at 4..8)
    f.push(c.frame_at(0, base + 8, ACK, b"cccc")); // conflicts with held
    f.push(c.frame_at(0, base + 4, ACK, b"BBBB")); // fills the hole
    f.push(c.frame_at(0, base, ACK, b"aaAA")); // conflicts with delivered
    c.seq[0] = base + 12;
    f.extend(c.close());
    f
}

#[test]
fn overlap_with_different_data_first_wins() {
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &overlap_frames());
    let fl = rec.find(40010, 0);
    assert_eq!(fl.dirs[0].bytes, b"AAAABBBBCCCC");
    assert_eq!(stats.flow.conflict_bytes, 4 + 4);
    assert_eq!(fl.info.unwrap().dirs[0].conflict_bytes, 8);
    assert_eq!(stats.flow.retransmitted_bytes, 8);
}

#[test]
fn overlap_with_different_data_last_wins() {
    let cfg = Config {
        overlap: OverlapPolicy::Last,
        ..cfg()
    };
    let (rec, stats) = run(&mut Store::new(8, 16), cfg, &overlap_frames());
    assert_eq!(rec.find(40010, 0).dirs[0].bytes, b"aaAABBBBcccc");
    assert!(stats.flow.conflict_bytes > 0);
}

#[test]
fn lost_segment_is_a_gap_not_joined_bytes() {
    let mut c = Conv::new(40011, 1000, 2000);
    let data = pattern(5000, 5);
    let mut f = c.handshake();
    let segs = segments(&mut c, 0, &data, 1000);
    f.extend(
        segs.iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, s)| s.clone()),
    );
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40011, 0);
    assert_eq!(fl.dirs[0].gaps, vec![(2000, 1000, GapReason::Lost)]);
    let mut expect = data.clone();
    expect[2000..3000].fill(0);
    assert_eq!(fl.dirs[0].bytes, expect);
    assert_eq!(stats.flow.gap_bytes, 1000);
    assert_eq!(fl.close, Some(CloseReason::Fin));
}

#[test]
fn lost_last_segment_before_fin_is_a_trailing_gap() {
    let mut c = Conv::new(40012, 1000, 2000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"kept"));
    c.send(0, ACK, b"lost"); // never captured
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(40012, 0);
    assert_eq!(fl.dirs[0].bytes, b"kept\0\0\0\0");
    assert_eq!(fl.dirs[0].gaps, vec![(4, 4, GapReason::Lost)]);
}

#[test]
fn full_table_evicts_least_recently_active_with_its_data() {
    let mut store = Store::new(2, 16);
    let mut rec = Rec::default();
    let mut e = store.engine(cfg());
    let mut convs: Vec<Conv> = (0..3).map(|i| Conv::new(41000 + i, 100, 200)).collect();
    let mut t = 0u64;
    let mut feed = |e: &mut crate::Engine<'_>, rec: &mut Rec, f: Vec<u8>| {
        t += 1_000_000;
        e.process(Timestamp(t), LinkType::ETHERNET, &f, rec)
            .unwrap();
    };
    for c in convs.iter_mut().take(2) {
        for f in c.handshake() {
            feed(&mut e, &mut rec, f);
        }
    }
    // Flow 0 has a hole; its held data must come out when it is evicted.
    let base = convs[0].seq[0];
    let f0 = convs[0].frame_at(0, base + 3, ACK, b"late");
    feed(&mut e, &mut rec, f0);
    let f1 = convs[1].send(0, ACK, b"busy");
    feed(&mut e, &mut rec, f1);
    for f in convs[2].handshake() {
        feed(&mut e, &mut rec, f);
    }
    let fl = rec.find(41000, 0);
    assert_eq!(fl.close, Some(CloseReason::Evicted));
    assert_eq!(fl.dirs[0].bytes, b"\0\0\0late");
    assert_eq!(fl.dirs[0].gaps, vec![(0, 3, GapReason::Lost)]);
    assert_eq!(rec.find(41001, 0).close, None);
    assert!(e.stats().flow.closed_evicted >= 1);
    assert_eq!(e.free_blocks(), 16);
}

#[test]
fn idle_flows_close_on_capture_time() {
    let mut store = Store::new(8, 16);
    let mut rec = Rec::default();
    let mut e = store.engine(Config {
        idle_timeout_ns: 10_000_000_000,
        ..cfg()
    });
    let mut a = Conv::new(42000, 1, 2);
    let mut b = Conv::new(42001, 1, 2);
    for f in a.handshake() {
        e.process(Timestamp::from_secs(100), LinkType::ETHERNET, &f, &mut rec)
            .unwrap();
    }
    let f = b.send(0, SYN, &[]);
    e.process(Timestamp::from_secs(105), LinkType::ETHERNET, &f, &mut rec)
        .unwrap();
    assert_eq!(rec.find(42000, 0).close, None);
    let f = b.send(0, ACK, b"x");
    e.process(Timestamp::from_secs(111), LinkType::ETHERNET, &f, &mut rec)
        .unwrap();
    assert_eq!(rec.find(42000, 0).close, Some(CloseReason::Idle));
    assert_eq!(rec.find(42001, 0).close, None);
    e.advance(Timestamp::from_secs(200), &mut rec);
    assert_eq!(rec.find(42001, 0).close, Some(CloseReason::Idle));
    assert_eq!(e.open_flows(), 0);
}

/// The open list is in second-chance order (`FlowTable::touch`), so a flow idle past the
/// timeout can sit behind one that is not, where the tail check does not reach it: its own
/// next packet closes it first, as exact order would have at that packet's time.
#[test]
fn a_flow_idle_behind_a_busier_one_closes_before_its_next_packet() {
    let mut store = Store::new(8, 16);
    let mut rec = Rec::default();
    let mut e = store.engine(Config {
        idle_timeout_ns: 10_000_000_000,
        ..cfg()
    });
    let mut w = Conv::new(42100, 1, 2);
    let mut x = Conv::new(42101, 1, 2);
    let mut y = Conv::new(42102, 1, 2);
    let mut at = |secs: u64, f: Vec<u8>| {
        e.process(Timestamp::from_secs(secs), LinkType::ETHERNET, &f, &mut rec)
            .unwrap();
    };
    at(100, w.send(0, SYN, &[]));
    at(101, x.send(0, SYN, &[]));
    at(102, x.send(0, ACK, b"x1")); // x active since put at the front: marked
    at(103, y.send(0, SYN, &[]));
    at(104, w.send(0, ACK, b"w1")); // w marked too
                                    // Tail check at 105: w and x go back to the front (w, then x); y, not idle, stops it.
    at(105, y.send(0, ACK, b"y1"));
    // At 112.5 the tail check stops at w (active at 104); x, last active at 102, is idle
    // behind it. Its packet finds it closed, a late packet of a finished connection.
    let late = x.send(0, ACK, b"x2");
    e.process(
        Timestamp(112_500_000_000),
        LinkType::ETHERNET,
        &late,
        &mut rec,
    )
    .unwrap();
    let fl = rec.find(42101, 0);
    assert_eq!(fl.close, Some(CloseReason::Idle));
    assert_eq!(fl.dirs[0].bytes, b"x1");
    assert_eq!(rec.find(42100, 0).close, None);
    assert_eq!(rec.find(42102, 0).close, None);
    let st = e.stats().flow;
    assert_eq!((st.closed_idle, st.after_close_bytes), (1, 2));
}

#[test]
fn snaplen_cut_becomes_a_gap_and_the_stream_goes_on() {
    let mut c = Conv::new(42002, 1, 2);
    let mut f = c.handshake();
    let data = pattern(3000, 6);
    let segs = segments(&mut c, 0, &data, 1000);
    let cut_len = 14 + 20 + 20 + 100;
    f.push(segs[0][..cut_len].to_vec());
    f.push(segs[1].clone());
    f.push(segs[2][..cut_len].to_vec());
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42002, 0);
    let mut expect = data.clone();
    expect[100..1000].fill(0);
    expect[2100..3000].fill(0);
    assert_eq!(fl.dirs[0].bytes, expect);
    assert_eq!(
        fl.dirs[0].gaps,
        vec![
            (100, 900, GapReason::Snaplen),
            (2100, 900, GapReason::Snaplen)
        ]
    );
    assert_eq!(stats.decode.snaplen_cut, 2);
}

/// A held segment cut by the snap length at the end of its window, whose cut bytes come
/// whole in the next window before the hole in front is filled: the cut ends where held
/// bytes start. (Found by `random_frames_never_panic`: draining spun on an empty gap.)
#[test]
fn cut_bytes_that_arrive_whole_in_the_next_window_are_delivered() {
    let mut c = Conv::new(42011, 1, 2);
    let mut f = c.handshake();
    let base = c.seq[0];
    // The internal offset of the first byte after the SYN is 0: windows are [0, 1024), ...
    let data = pattern(1100, 12);
    let cut = c.frame_at(0, base + 1000, ACK, &data[1000..1100]);
    f.push(cut[..14 + 20 + 20 + 24].to_vec()); // 1000..1024 captured, 1024..1100 cut
    f.push(c.frame_at(0, base + 1024, ACK, &data[1024..1074]));
    f.push(c.frame_at(0, base, ACK, &data[..1000]));
    c.seq[0] = base + 1100;
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    let d = &rec.find(42011, 0).dirs[0];
    assert_eq!(d.bytes[..1074], data[..1074]);
    assert_eq!(d.bytes.len(), 1100);
    assert_eq!(
        d.gaps.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
        [(1074, 26)]
    );
}

#[test]
fn sequence_jump_of_half_the_space_is_not_placed() {
    let mut c = Conv::new(42003, 1, 2);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"abc"));
    let far = c.seq[0].wrapping_add(1 << 31);
    f.push(c.frame_at(0, far, ACK, b"evil"));
    f.push(c.send(0, ACK, b"def"));
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(42003, 0).dirs[0].bytes, b"abcdef");
    assert_eq!(stats.flow.out_of_window, 1);
    assert_eq!(stats.flow.out_of_window_bytes, 4);
}

#[test]
fn pool_exhaustion_gives_gaps_never_wrong_bytes() {
    let mut c = Conv::new(42004, 1, 2);
    let data = pattern(20 * 500, 7);
    let mut f = c.handshake();
    let mut segs = segments(&mut c, 0, &data, 500);
    segs.remove(0); // a hole at the start that never fills
    f.extend(segs);
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 4), cfg(), &f);
    let fl = rec.find(42004, 0);
    let mut expect = data.clone();
    expect[..500].fill(0);
    assert_eq!(fl.dirs[0].bytes, expect);
    assert_eq!(fl.dirs[0].gaps, vec![(0, 500, GapReason::Lost)]);
    assert!(stats.flow.pool_full > 0);
}

/// With one block per direction, four holes are given up as gaps; their bytes then
/// arrive, late. The slot remembers the latest three, whose bytes land in their holes; the
/// direction's budget is full (its one block holds data), so the oldest is forgotten: its
/// bytes are counted as unclassified, neither written nor called conflicting (the holes were
/// never delivered, so there was nothing to differ from), and it stays a reported gap.
#[test]
fn late_bytes_fill_every_remembered_gap() {
    let mut c = Conv::new(42010, 1, 2);
    let data = pattern(10_000, 9);
    let mut f = c.handshake();
    let base = c.seq[0];
    let at = |c: &Conv, lo: usize, hi: usize| c.frame_at(0, base + lo as u32, ACK, &data[lo..hi]);
    for lo in [1100, 2100, 3100] {
        f.push(at(&c, lo, lo + 100));
    }
    for lo in (4100..10_000).step_by(1000) {
        f.push(at(&c, lo, (lo + 1000).min(10_000)));
    }
    // The holes, last first, the first one in two pieces.
    for (lo, hi) in [
        (3200, 4100),
        (2200, 3100),
        (1200, 2100),
        (500, 1100),
        (0, 500),
    ] {
        f.push(at(&c, lo, hi));
    }
    c.seq[0] = base + 10_000;
    f.extend(c.close());
    let cfg = Config {
        max_blocks_per_dir: 1,
        ..cfg()
    };
    let (rec, stats) = run(&mut Store::new(8, 4), cfg, &f);
    let fl = rec.find(42010, 0);
    let mut want = data.clone();
    want[..1100].fill(0);
    assert_eq!(fl.dirs[0].bytes, want);
    assert_eq!(fl.dirs[0].gaps, vec![(0, 1100, GapReason::Lost)]);
    let st = stats.flow;
    assert_eq!(st.pool_full, 4);
    assert_eq!(st.late_filled_bytes, 3 * 900);
    assert_eq!(st.unclassified_bytes, 1100);
    assert_eq!((st.gaps, st.gap_bytes), (1, 1100));
    assert_eq!((st.conflict_bytes, st.late_bytes), (0, 0));
    assert_eq!(st.retransmitted_bytes, 0);
    assert_eq!(st.delivered_bytes, 10_000 - 1100);
    let info = fl.info.expect("closed");
    assert_eq!((info.dirs[0].gaps, info.dirs[0].gap_bytes), (1, 1100));
}

/// With room in the pool, a direction remembers as many gaps as its budget holds: forty
/// holes given up one after the other, then all their bytes, in an order of their own, fill
/// every one of them (the gaps beyond the slot's few are in pool blocks meanwhile, which
/// are all given back).
#[test]
fn late_bytes_fill_gaps_far_beyond_the_slot() {
    let mut c = Conv::new(42011, 1, 2);
    let n = 40;
    let data = pattern(n * 1024 + 1024, 11);
    let mut f = c.handshake();
    let base = c.seq[0];
    let at = |c: &Conv, lo: usize, hi: usize| c.frame_at(0, base + lo as u32, ACK, &data[lo..hi]);
    // Window k: its second half arrives early; with one data block per direction, each new
    // window gives up the hole before the last.
    for k in 0..=n {
        f.push(at(&c, k * 1024 + 512, k * 1024 + 1024));
    }
    let mut order: Vec<usize> = (0..=n).collect();
    order.sort_by_key(|k| (k * 7919) % 41);
    for k in order {
        f.push(at(&c, k * 1024, k * 1024 + 512));
    }
    c.seq[0] = base + data.len() as u32;
    f.extend(c.close());
    let cfg = Config {
        max_blocks_per_dir: 4,
        ..cfg()
    };
    let mut store = Store::new(8, 16);
    let (rec, stats) = run(&mut store, cfg, &f);
    let fl = rec.find(42011, 0);
    assert!(fl.dirs[0].gaps.is_empty(), "{:?}", fl.dirs[0].gaps);
    assert_eq!(fl.dirs[0].bytes, data);
    let st = stats.flow;
    assert!(st.pool_full >= n as u64 / 4, "{}", st.pool_full);
    assert_eq!((st.gaps, st.gap_bytes), (0, 0));
    assert_eq!((st.conflict_bytes, st.unclassified_bytes), (0, 0));
    assert_eq!(st.delivered_bytes, data.len() as u64);
    assert!(st.late_filled_bytes > 30 * 512, "{}", st.late_filled_bytes);
}

#[test]
fn rst_delivers_held_data_with_gaps() {
    let mut c = Conv::new(42005, 1, 2);
    let mut f = c.handshake();
    let base = c.seq[0];
    f.push(c.frame_at(0, base + 2, ACK, b"cd"));
    f.push(c.frame_at(1, c.seq[1], RST, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42005, 0);
    assert_eq!(fl.close, Some(CloseReason::Rst));
    assert_eq!(fl.dirs[0].bytes, b"\0\0cd");
    assert_eq!(stats.flow.closed_rst, 1);
}

#[test]
fn data_after_fin_is_dropped_and_counted() {
    let mut c = Conv::new(42006, 1, 2);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"end"));
    f.push(c.send(0, FIN | ACK, &[]));
    f.push(c.send(0, ACK, b"beyond")); // after the FIN: not part of the stream
    f.push(c.send(1, FIN | ACK, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(42006, 0).dirs[0].bytes, b"end");
    assert_eq!(stats.flow.after_close_bytes, 6);
}

#[test]
fn vlans_separate_flows() {
    let mut c = Conv::new(42007, 1, 2);
    let f = c.send(0, SYN, &[]);
    let g = c.send(0, ACK, b"x");
    let tagged = |f: &Vec<u8>, id: u16| {
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&[0x81, 0x00]);
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&f[12..]);
        v
    };
    let frames = vec![
        tagged(&f, 0x2064),
        tagged(&g, 0x2064),
        tagged(&f, 7),
        g.clone(),
    ];
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &frames);
    assert_eq!(rec.flows.len(), 3);
    assert_eq!(rec.flows[0].key.vlans.outer(), Some(100));
    assert_eq!(rec.flows[0].dirs[0].bytes, b"x");
}

#[test]
fn a_flow_direction_sees_only_its_own_bytes() {
    // Interleaved directions and two flows, reordered within each.
    let mut a = Conv::new(42008, 1, 2);
    let mut b = Conv::new(42009, 3, 4);
    let mut f = a.handshake();
    f.extend(b.handshake());
    let da = pattern(3000, 8);
    let db = pattern(3000, 9);
    let sa = segments(&mut a, 1, &da, 700);
    let sb = segments(&mut b, 0, &db, 700);
    for i in (0..sa.len()).rev() {
        f.push(sa[i].clone());
        f.push(sb[i].clone());
    }
    let (rec, _) = run(&mut Store::new(8, 64), cfg(), &f);
    assert_eq!(rec.find(42008, 0).dirs[Dir::BtoA.index()].bytes, da);
    assert_eq!(rec.find(42009, 0).dirs[Dir::AtoB.index()].bytes, db);
}

#[test]
fn newest_syn_ack_counts_until_data_flows() {
    // Three SYN-ACKs with different ISNs; the data follows the last one.
    let mut c = Conv::new(42010, 100, 7000);
    let mut f = vec![c.send(0, SYN, &[])];
    f.push(c.frame_at(1, 1_000_000, SYN | ACK, &[]));
    f.push(c.frame_at(1, 2_000_000, SYN | ACK, &[]));
    f.push(c.send(1, SYN | ACK, &[]));
    f.push(c.send(0, ACK, b"req"));
    f.push(c.send(1, ACK, b"response"));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(42010, 0).dirs[1].bytes, b"response");
    assert_eq!(stats.flow.out_of_window, 0);
}

#[test]
fn data_far_from_a_stale_syn_ack_re_anchors_the_direction() {
    // The SYN-ACK seen last is not the one the data follows (TCP Fast Open retries).
    let mut c = Conv::new(42011, 100, 7000);
    let mut f = vec![c.send(0, SYN, &[]), c.send(1, SYN | ACK, &[])];
    f.push(c.frame_at(1, 3_000_000_000, SYN | ACK, &[]));
    f.push(c.send(0, ACK, b"req"));
    f.push(c.send(1, ACK, b"resp"));
    f.push(c.send(1, ACK, b"onse"));
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(42011, 0).dirs[1].bytes, b"response");
}

#[test]
fn a_repeated_capture_of_a_closed_connection_is_not_a_new_one() {
    let mut c = Conv::new(42012, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"only once"));
    f.extend(c.close());
    let again = f.clone();
    f.extend(again); // the same packets again, as a duplicated capture has them
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.flows.len(), 1, "{:#?}", rec.flows);
    assert_eq!(rec.find(42012, 0).dirs[0].bytes, b"only once");
    assert_eq!(stats.flow.reused, 0);
    assert_eq!(stats.flow.after_close_bytes, 9);
}

#[test]
fn segment_far_beyond_the_acknowledged_window_is_not_placed() {
    let mut c = Conv::new(42013, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"abc"));
    f.push(c.send(1, ACK, &[])); // the server acknowledges "abc"
    let far = c.seq[0].wrapping_add(400 << 20);
    f.push(c.frame_at(0, far, ACK, b"junk"));
    f.push(c.send(0, ACK, b"def"));
    f.extend(c.close());
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.find(42013, 0).dirs[0].bytes, b"abcdef");
    assert_eq!(stats.flow.out_of_window_bytes, 4);
}

#[test]
fn data_in_flight_after_the_peer_resets_is_kept() {
    let mut c = Conv::new(42014, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"req"));
    f.push(c.send(0, FIN | ACK, &[]));
    f.push(c.send(1, ACK, b"part one, "));
    f.push(c.send(0, RST, &[]));
    f.push(c.send(1, ACK, b"part two"));
    f.push(c.send(0, RST, &[]));
    f.push(c.send(1, FIN | ACK, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42014, 0);
    assert_eq!(fl.dirs[1].bytes, b"part one, part two");
    assert_eq!(fl.close, Some(CloseReason::Rst));
    assert_eq!(stats.flow.closed_rst, 1);
}

#[test]
fn a_syn_retried_after_a_reset_continues_or_restarts_the_connection() {
    // The client resets its first attempt, then retries with the same ISN: one connection.
    let mut c = Conv::new(42015, 100, 7000);
    let mut f = vec![
        c.frame_at(0, 100, SYN, &[]),
        c.frame_at(1, 5, ACK, &[]),
        c.frame_at(0, 101, RST, &[]),
    ];
    f.extend(c.handshake());
    f.push(c.send(0, ACK, b"hello"));
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.flows.len(), 1);
    assert_eq!(rec.find(42015, 0).dirs[0].bytes, b"hello");
    // The server refuses the first SYN; the retry with the same ISN is the same connection,
    // whose reset is forgotten once the server answers with a SYN-ACK.
    let mut c = Conv::new(42016, 100, 7000);
    let mut f = vec![
        c.frame_at(0, 100, SYN, &[]),
        c.frame_at(1, 5, RST | ACK, &[]),
    ];
    f.extend(c.handshake());
    f.push(c.send(0, ACK, b"again"));
    f.extend(c.close());
    let (rec, _) = run(&mut Store::new(8, 16), cfg(), &f);
    assert_eq!(rec.flows.len(), 1);
    assert_eq!(rec.find(42016, 0).dirs[0].bytes, b"again");
    assert_eq!(rec.find(42016, 0).close, Some(CloseReason::Fin));
}

/// The FIN's sequence number is never a byte of the stream: a lost FIN whose ACK arrives
/// (the peer acknowledges one past the last byte) leaves the stream as sent, with no gap.
#[test]
fn a_lost_fin_acknowledged_by_the_peer_is_not_a_byte() {
    let mut c = Conv::new(42020, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK | PSH, b"request"));
    c.send(0, FIN | ACK, &[]); // lost
    f.push(c.send(1, ACK, b"response"));
    f.push(c.send(1, FIN | ACK, &[])); // acknowledges the lost FIN
    f.push(c.send(0, ACK, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42020, 0);
    assert_eq!(fl.dirs[0].bytes, b"request");
    assert!(fl.dirs[0].gaps.is_empty(), "{:?}", fl.dirs[0].gaps);
    assert_eq!(fl.dirs[1].bytes, b"response");
    assert_eq!(stats.flow.gap_bytes, 0);
    assert_eq!(stats.flow.fin_assumed, 1);
}

/// Data lost before a lost FIN: the gap is the data bytes only.
#[test]
fn data_and_fin_lost_before_the_ack_give_a_gap_of_the_data_only() {
    let mut c = Conv::new(42021, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"kept "));
    c.send(0, ACK, b"lost"); // never captured
    c.send(0, FIN | ACK, &[]); // nor its FIN
    f.push(c.send(1, FIN | ACK, &[]));
    f.push(c.send(0, ACK, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42021, 0);
    assert_eq!(fl.dirs[0].bytes, b"kept \0\0\0\0");
    assert_eq!(fl.dirs[0].gaps, vec![(5, 4, GapReason::Lost)]);
    assert_eq!(stats.flow.gap_bytes, 4);
}

/// The peer resets instead of closing, acknowledging the lost FIN (and lost data) on its RST.
#[test]
fn a_lost_fin_acknowledged_by_a_reset_is_not_a_byte() {
    for lost_data in [false, true] {
        let mut c = Conv::new(42022, 100, 7000);
        let mut f = c.handshake();
        f.push(c.send(0, ACK, b"abc"));
        if lost_data {
            c.send(0, ACK, b"de");
        }
        c.send(0, FIN | ACK, &[]);
        f.push(c.send(1, RST | ACK, &[]));
        let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
        let fl = rec.find(42022, 0);
        let want: &[u8] = if lost_data { b"abc\0\0" } else { b"abc" };
        assert_eq!(fl.dirs[0].bytes, want, "lost data: {lost_data}");
        assert_eq!(stats.flow.gap_bytes, 2 * lost_data as u64);
        assert_eq!(fl.close, Some(CloseReason::Rst));
    }
}

/// The ACK of a lost FIN as the last packet of the input.
#[test]
fn a_lost_fin_acknowledged_at_the_end_of_input_is_not_a_byte() {
    let mut c = Conv::new(42023, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"last words"));
    c.send(0, FIN | ACK, &[]);
    f.push(c.send(1, ACK, &[]));
    let (rec, stats) = run(&mut Store::new(8, 16), cfg(), &f);
    let fl = rec.find(42023, 0);
    assert_eq!(fl.dirs[0].bytes, b"last words");
    assert!(fl.dirs[0].gaps.is_empty());
    assert_eq!(fl.close, Some(CloseReason::EndOfInput));
    assert_eq!(stats.flow.fin_assumed, 1);
}

/// The ACK of a lost FIN arrives after the flow timed out: a late packet of a closed flow,
/// never a byte nor a new flow.
#[test]
fn a_lost_fin_acknowledged_after_the_idle_timeout_is_not_a_byte() {
    let mut store = Store::new(8, 16);
    let mut rec = Rec::default();
    let mut e = store.engine(Config {
        idle_timeout_ns: 10_000_000_000,
        ..cfg()
    });
    let mut c = Conv::new(42024, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"idle"));
    f.push(c.send(1, ACK, &[]));
    c.send(0, FIN | ACK, &[]);
    for f in &f {
        e.process(Timestamp::from_secs(1), LinkType::ETHERNET, f, &mut rec)
            .unwrap();
    }
    let late = c.send(1, FIN | ACK, &[]);
    e.process(
        Timestamp::from_secs(60),
        LinkType::ETHERNET,
        &late,
        &mut rec,
    )
    .unwrap();
    e.finish(&mut rec);
    assert_eq!(rec.flows.len(), 1);
    let fl = rec.find(42024, 0);
    assert_eq!(fl.close, Some(CloseReason::Idle));
    assert_eq!(fl.dirs[0].bytes, b"idle");
    assert_eq!(e.stats().flow.gap_bytes, 0);
}

/// Jumps within `max_jump` repeated through holes given up (the pool is two blocks): the
/// holes no ACK covers stop growing at about `max_jump`, acknowledged or not.
#[test]
fn repeated_jumps_through_given_up_holes_are_bounded() {
    for acked in [false, true] {
        let mut c = Conv::new(42030, 100, 7000);
        let mut f = vec![c.send(0, SYN, &[])];
        if acked {
            f.push(c.send(1, SYN | ACK, &[]));
        }
        f.push(c.send(0, ACK, b"start"));
        let mut at = c.seq[0];
        for _ in 0..20 {
            at = at.wrapping_add(40 << 20);
            for j in 0..3 {
                f.push(c.frame_at(0, at.wrapping_add(j * 10), ACK, b"j"));
            }
            at = at.wrapping_add(1);
        }
        let (rec, stats) = run(&mut Store::new(8, 2), cfg(), &f);
        let fl = rec.find(42030, 0);
        let len = fl.dirs[0].next;
        assert_eq!(len, 5 + (40 << 20) + 21, "acked: {acked}");
        assert_eq!(stats.flow.out_of_window, 19 * 3);
    }
}

/// Holes the peer acknowledged were sent: a capture that lost most of a transfer keeps the
/// bytes it has at their offsets, however large the holes.
#[test]
fn acknowledged_holes_do_not_count_against_the_reach() {
    let mut c = Conv::new(42031, 100, 7000);
    let mut f = c.handshake();
    f.push(c.send(0, ACK, b"head"));
    for _ in 0..5 {
        // Lost, and acknowledged but for the last 100 bytes before the next piece.
        c.seq[0] = c.seq[0].wrapping_add((200 << 20) - 100);
        f.push(c.send(1, ACK, &[]));
        c.seq[0] = c.seq[0].wrapping_add(100);
        f.push(c.send(0, ACK, b"piece"));
    }
    f.extend(c.close());
    // Two pool blocks: each hole is given up as the next piece comes.
    let (rec, stats) = run(&mut Store::new(8, 2), cfg(), &f);
    let fl = rec.find(42031, 0);
    assert_eq!(fl.dirs[0].next, 4 + 5 * ((200 << 20) + 5));
    assert_eq!(fl.dirs[0].gaps.len(), 5);
    assert_eq!(stats.flow.out_of_window, 0);
}

/// A long connection evicted again and again by a SYN flood (4 flow records; 7 SYNs after
/// each of its pairs of packets: it goes back to the front once, active since it was put
/// there, then reaches the tail again, idle since): with
/// `resume_evicted` each later packet picks it up where it stopped, one connection whose
/// events tile its stream; without, each pickup is a new connection.
#[test]
fn an_evicted_connection_resumes_where_it_stopped() {
    for resume in [true, false] {
        let mut store = Store::new(4, 16);
        let mut rec = Rec {
            resume_evicted: resume,
            ..Rec::default()
        };
        let mut e = store.engine(Config {
            resume_evicted: resume,
            ..cfg()
        });
        let mut t = 0u64;
        let mut feed = |e: &mut crate::Engine<'_>, rec: &mut Rec, f: &[u8]| {
            t += 1_000_000;
            e.process(Timestamp(t), LinkType::ETHERNET, f, rec).unwrap();
        };
        let mut l = Conv::new(43000, 100, 7000);
        for f in l.handshake() {
            feed(&mut e, &mut rec, &f);
        }
        let data = pattern(40 * 100, 11);
        let mut port = 50000;
        for chunk in data.chunks(100) {
            feed(&mut e, &mut rec, &l.send(0, ACK, chunk));
            feed(&mut e, &mut rec, &l.send(1, ACK, &[]));
            for _ in 0..7 {
                let mut syn = Conv::new(port, 1, 2);
                port += 1;
                feed(&mut e, &mut rec, &syn.send(0, SYN, &[]));
            }
        }
        for f in l.close() {
            feed(&mut e, &mut rec, &f);
        }
        e.finish(&mut rec);
        let st = *e.stats();
        if resume {
            let fl = rec.find(43000, 0);
            assert_eq!(fl.dirs[0].bytes, data);
            assert!(fl.dirs[0].gaps.is_empty());
            assert_eq!(fl.close, Some(CloseReason::Fin));
            assert_eq!(st.flow.resumed, 40); // after each flood but the first, and the close
            assert_eq!(st.flow.gap_bytes, 0);
        } else {
            assert_eq!(st.flow.resumed, 0);
            let pieces = rec.flows.iter().filter(|f| f.key.port[0] == 43000).count();
            assert!(pieces > 1, "{pieces}");
        }
    }
}

/// A connection evicted with a gap and picked up again: its figures start again with the
/// resumed part, so bytes for the gap reported before the eviction are not late for it. They
/// are counted as unclassified (neither written nor called conflicting); a retransmission of
/// delivered bytes outside the old gaps is still compared.
#[test]
fn bytes_for_a_gap_reported_before_an_eviction_are_unclassified() {
    let mut store = Store::new(4, 16);
    let mut rec = Rec {
        resume_evicted: true,
        ..Rec::default()
    };
    let mut e = store.engine(Config {
        resume_evicted: true,
        ..cfg()
    });
    let mut t = 0u64;
    let mut feed = |e: &mut crate::Engine<'_>, rec: &mut Rec, f: &[u8]| {
        t += 1_000_000;
        e.process(Timestamp(t), LinkType::ETHERNET, f, rec).unwrap();
    };
    let mut l = Conv::new(43001, 100, 7000);
    for f in l.handshake() {
        feed(&mut e, &mut rec, &f);
    }
    let data = pattern(300, 12);
    let base = l.seq[0];
    let at =
        |l: &Conv, lo: usize, hi: usize, d: &[u8]| l.frame_at(0, base + lo as u32, ACK, &d[lo..hi]);
    feed(&mut e, &mut rec, &at(&l, 0, 100, &data));
    feed(&mut e, &mut rec, &at(&l, 200, 300, &data));
    // Enough SYNs that it reaches the tail idle (it went back to the front once, active).
    for port in 50000..50007 {
        feed(&mut e, &mut rec, &Conv::new(port, 1, 2).send(0, SYN, &[]));
    }
    assert!(e.stats().flow.closed_evicted >= 1);
    // The hole's bytes, then delivered bytes changed.
    feed(&mut e, &mut rec, &at(&l, 100, 200, &data));
    let mut changed = data.clone();
    changed[..50].iter_mut().for_each(|b| *b ^= 1);
    feed(&mut e, &mut rec, &at(&l, 0, 50, &changed));
    l.seq[0] = base + 300;
    for f in l.close() {
        feed(&mut e, &mut rec, &f);
    }
    e.finish(&mut rec);
    let st = e.stats().flow;
    assert_eq!(st.resumed, 1);
    assert_eq!(st.unclassified_bytes, 100);
    assert_eq!((st.conflict_bytes, st.retransmitted_bytes), (50, 50));
    assert_eq!((st.late_filled_bytes, st.late_bytes), (0, 0));
    let mut want = data.clone();
    want[100..200].fill(0);
    assert_eq!(rec.find(43001, 0).dirs[0].bytes, want);
}

/// `process` names the connection and direction of each TCP segment: the slot and connection
/// index the sink is given, also for a late packet of a closed connection and for the next
/// connection on a reused 4-tuple.
#[test]
fn outcome_names_the_flow_and_direction_of_each_segment() {
    use crate::engine::Outcome;
    use crate::flow::FlowRef;
    let mut store = Store::new(8, 16);
    let mut rec = Rec::default();
    let mut e = store.engine(cfg());
    let mut t = 0;
    let mut feed = |e: &mut crate::Engine<'_>, rec: &mut Rec, f: &[u8]| {
        t += 1_000_000;
        e.process(Timestamp(t), LinkType::ETHERNET, f, rec).unwrap()
    };
    let mut c = Conv::new(40000, 1000, 5000);
    let mut other = Conv::new(40001, 3000, 7000);
    let hs = c.handshake();
    let first = feed(&mut e, &mut rec, &hs[0]);
    let Outcome::Tcp(flow) = first else {
        panic!("{first:?}")
    };
    // The slot the sink was given when the flow opened.
    let opened = &rec.flows[rec.by_slot[&flow.slot]];
    assert_eq!((opened.key.port[0], opened.conn_index), (40000, 0));
    assert_eq!((flow.conn_index, flow.dir), (0, Dir::AtoB));
    let at = |dir| Outcome::Tcp(FlowRef { dir, ..flow });
    let other_syn = feed(&mut e, &mut rec, &other.send(0, SYN, &[]));
    assert!(matches!(other_syn, Outcome::Tcp(f) if f.slot != flow.slot));
    assert_eq!(feed(&mut e, &mut rec, &hs[1]), at(Dir::BtoA));
    assert_eq!(feed(&mut e, &mut rec, &hs[2]), at(Dir::AtoB));
    assert_eq!(
        feed(&mut e, &mut rec, &c.send(1, ACK, b"hi")),
        at(Dir::BtoA)
    );
    let close = c.close();
    for (f, dir) in close.iter().zip([Dir::AtoB, Dir::BtoA, Dir::AtoB]) {
        assert_eq!(feed(&mut e, &mut rec, f), at(dir));
    }
    // Closed: a repeated FIN still names the connection it belongs to.
    assert_eq!(feed(&mut e, &mut rec, &close[1]), at(Dir::BtoA));
    // A new SYN on the 4-tuple: the next connection, in the same record.
    let mut again = Conv::new(40000, 90_000, 70_000);
    let next = feed(&mut e, &mut rec, &again.handshake()[0]);
    assert_eq!(
        next,
        Outcome::Tcp(FlowRef {
            conn_index: 1,
            ..flow
        })
    );
    // Not TCP: ignored, no flow.
    let udp = tcpflow_tests::link::ethernet_frame(
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        &[],
        &tcpflow_tests::packet::ipv4_packet(
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(10, 0, 0, 2),
            1,
            64,
            &[],
            17,
            &[0; 8],
        ),
    );
    assert_eq!(feed(&mut e, &mut rec, &udp), Outcome::Ignored);
    e.finish(&mut rec);
    // Without a record to give: untracked.
    let mut none = Store::new(0, 4);
    let mut e = none.engine(cfg());
    assert_eq!(
        e.process(Timestamp(1), LinkType::ETHERNET, &hs[0], &mut rec),
        Ok(Outcome::Untracked)
    );
}
