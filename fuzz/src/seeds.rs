//! Seed inputs for each target: frames cut from the test captures (`testdata/*/input.pcap*`)
//! and hand-built sequences, in each target's input encoding.

use crate::decode::link_index;
use crate::defrag::{Frag, KeySel};
use crate::engine::{Setup, Synth, TICK_NS};
use crate::spool_reader::{Geometry, Op};
use crate::Input;
use tcpflow_core::LinkType;

/// The frames of a test capture: (link type, timestamp in ns, bytes), read with the test
/// kit's reader; nothing from a file it does not read.
fn frames(file: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
    let Ok(cap) = tcpflow_tests::pcap::read_capture(file) else {
        return Vec::new();
    };
    cap.records
        .into_iter()
        .map(|r| (cap.linktype, r.ts_ns, r.data))
        .collect()
}

/// Largest engine seed: the start of a capture, as many whole frames as fit.
pub const ENGINE_SEED_MAX: usize = 16 * 1024;
/// Frames per capture kept as decode seeds (spread over the capture).
pub const DECODE_PER_CAPTURE: usize = 24;

/// Engine seeds from one capture: its frames as raw-frame operations, under two setups.
pub fn engine_from_capture(file: &[u8]) -> Vec<Vec<u8>> {
    let frames = frames(file);
    let Some(&(link, _, _)) = frames.first() else {
        return Vec::new();
    };
    let Some(li) = link_index(LinkType(link)) else {
        return Vec::new();
    };
    let setups = [
        Setup {
            last: false,
            hold: 2,
            idle: false,
            big_frags: true,
            blocks: 3,
        },
        Setup {
            last: true,
            hold: 0,
            idle: true,
            big_frags: false,
            blocks: 1,
        },
    ];
    // The second also with `resume_evicted` (link byte bit 6): captures with more
    // connections than the 4 flow records evict and pick them up again.
    setups
        .iter()
        .zip([li, li | 0x40])
        .map(|(s, lb)| {
            let mut out = vec![s.to_byte(), lb];
            let mut prev = frames[0].1;
            for (_, ts, f) in &frames {
                if out.len() + 3 + f.len() > ENGINE_SEED_MAX {
                    break;
                }
                let dt = (ts.saturating_sub(prev) / TICK_NS).min(0x7f) as u8;
                prev = *ts;
                out.push(dt);
                out.extend_from_slice(&(f.len() as u16).to_le_bytes());
                out.extend_from_slice(f);
            }
            out
        })
        .collect()
}

/// Engine seeds built from harness segments: a handshake, data in and out of order,
/// overlaps, a FIN exchange; a midstream pickup; a reset.
pub fn engine_synthetic() -> Vec<Vec<u8>> {
    let seg = |conn, side, flags, seq: i16, ack: i16, len, fill| Synth {
        conn,
        side,
        far: false,
        dt: 1,
        flags,
        seq,
        ack,
        len,
        fill,
    };
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    let conversation = vec![
        seg(0, 0, SYN, 0, 0, 0, 0),
        seg(0, 1, SYN | ACK, 0, 1, 0, 0),
        seg(0, 0, ACK, 1, 1, 0, 0),
        seg(0, 0, ACK, 1, 1, 100, 0),
        seg(0, 0, ACK, 201, 1, 100, 0),
        seg(0, 0, ACK, 151, 1, 100, 7),
        seg(0, 0, ACK, 101, 1, 100, 0),
        seg(0, 1, ACK, 1, 301, 200, 0),
        seg(0, 0, FIN | ACK, 301, 201, 0, 0),
        seg(0, 1, FIN | ACK, 201, 302, 0, 0),
        seg(0, 0, ACK, 302, 202, 0, 0),
    ];
    let midstream = vec![
        seg(1, 0, ACK, 1000, 50, 50, 0),
        seg(1, 0, ACK, 950, 50, 50, 0),
        seg(1, 1, ACK, 50, 1100, 20, 0),
        seg(1, 0, ACK, 1100, 70, 50, 0),
        seg(0, 0, SYN, 0, 0, 0, 0),
        seg(0, 0, ACK, 1, 1, 30, 0),
        seg(0, 1, RST, 0, 0, 0, 0),
        seg(1, 0, ACK, 1300, 70, 50, 0),
    ];
    let mut out = Vec::new();
    // Link byte 1 (Ethernet), or 0x81: the same and a run again on reused storage.
    for (setup, link, evs) in [
        (0x06u8, 1u8, &conversation),
        (0xc7, 0x81, &conversation),
        (0x44, 1, &midstream),
        (0x13, 0x81, &midstream),
    ] {
        let mut v = vec![setup, link];
        for s in evs {
            s.encode(&mut v);
        }
        out.push(v);
    }
    out
}

/// Decode seeds from one capture: the link index and one frame each.
pub fn decode_from_capture(file: &[u8]) -> Vec<Vec<u8>> {
    let frames = frames(file);
    let step = frames.len().div_ceil(DECODE_PER_CAPTURE).max(1);
    frames
        .iter()
        .step_by(step)
        .filter_map(|(link, _, f)| {
            let li = link_index(LinkType(*link))?;
            let mut v = vec![li];
            v.extend_from_slice(f);
            Some(v)
        })
        .collect()
}

/// Decode seeds for what the test captures do not hold: 802.11 behind Prism and AVS headers,
/// an A-MSDU of two subframes, a protected frame.
pub fn decode_synthetic() -> Vec<Vec<u8>> {
    // IPv4 (total length 45), TCP (data offset 5), "hello".
    let mut ip = vec![
        0x45, 0, 0, 45, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 1, 0]);
    ip.extend_from_slice(&[0, 0, 0, 0]);
    ip.extend_from_slice(b"hello");
    let mut msdu = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    msdu.extend_from_slice(&ip);
    let header = |fc0: u8, fc1: u8| {
        let mut v = vec![fc0, fc1, 0, 0];
        for a in 1..=3u8 {
            v.extend_from_slice(&[2, 0, 0, 0, 0, a]);
        }
        v.extend_from_slice(&[0, 0]);
        if fc0 & 0x80 != 0 {
            v.extend_from_slice(&[0x80, 0]);
        }
        v
    };
    let mut data = header(0x08, 0x01);
    data.extend_from_slice(&msdu);
    let mut amsdu = header(0x88, 0x01);
    for i in 0..2 {
        amsdu.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        amsdu.extend_from_slice(&(msdu.len() as u16).to_be_bytes());
        amsdu.extend_from_slice(&msdu);
        if i == 0 {
            amsdu.resize(amsdu.len().div_ceil(4) * 4, 0);
        }
    }
    let mut protected = header(0x08, 0x41);
    protected.extend_from_slice(&[0x5a; 40]);
    let mut prism = vec![0x44, 0, 0, 0, 144, 0, 0, 0];
    prism.resize(144, 0);
    prism.extend_from_slice(&data);
    let mut avs = vec![0x80, 0x21, 0x10, 0x01, 0, 0, 0, 64];
    avs.resize(64, 0);
    avs.extend_from_slice(&data);
    [
        (LinkType::IEEE802_11, amsdu),
        (LinkType::IEEE802_11, protected),
        (LinkType::PRISM, prism),
        (LinkType::IEEE802_11_AVS, avs),
    ]
    .into_iter()
    .filter_map(|(link, f)| {
        let mut v = vec![link_index(link)?];
        v.extend_from_slice(&f);
        Some(v)
    })
    .collect()
}

/// Defrag seeds: datagrams in order, reversed, overlapping with conflicting bytes, IPv6, a
/// zero-length datagram, one too big, three keys for two slots.
pub fn defrag_synthetic() -> Vec<Vec<u8>> {
    let key = |b: u8| KeySel {
        src: b & 3,
        v6: b & 4 != 0,
        ident: 7,
        protocol: 6,
        vlan: false,
    };
    let f = |k: u8, units: u16, len4: u8, more: bool| Frag {
        key: key(k),
        more,
        own_data: false,
        extra: 0,
        units,
        raw_offset: false,
        len4,
        dt: 1,
    };
    let enc = |size: u8, frags: &[Frag], own: &[u8]| {
        let mut v = vec![size];
        for fr in frags {
            fr.encode(&mut v);
            if fr.own_data {
                v.extend(own.iter().copied().cycle().take(usize::from(fr.len4) * 4));
            }
        }
        v
    };
    let mut own = f(0, 2, 4, true);
    own.own_data = true;
    vec![
        enc(
            4,
            &[f(0, 0, 4, true), f(0, 2, 4, true), f(0, 4, 2, false)],
            &[],
        ),
        enc(
            4,
            &[f(0, 4, 2, false), f(0, 2, 4, true), f(0, 0, 4, true)],
            &[],
        ),
        enc(
            4,
            &[f(0, 0, 4, true), own, f(0, 1, 8, true), f(0, 4, 2, false)],
            b"XY",
        ),
        enc(
            5,
            &[f(4, 0, 16, true), f(4, 2, 16, false), f(4, 8, 8, true)],
            &[],
        ),
        enc(2, &[f(1, 0, 0, false)], &[]),
        enc(0, &[f(0, 0, 16, true), f(0, 8, 16, false)], &[]),
        enc(
            3,
            &[
                f(0, 0, 2, true),
                f(1, 0, 2, true),
                f(2, 0, 2, true),
                f(2, 1, 2, false),
            ],
            &[],
        ),
    ]
}

/// Spool reader seeds: writer-mode event sequences, and the raw images they leave (so raw
/// mode starts from valid checksums).
pub fn spool_synthetic() -> Vec<Vec<u8>> {
    let data = |slot, dir, len, fill| Op::Data {
        slot,
        dir,
        len,
        fill,
    };
    let scripts: Vec<(u8, Vec<Op>)> = vec![
        (
            0x04,
            vec![
                Op::Open { slot: 0 },
                data(0, 0, 300, 1),
                data(0, 1, 900, 2),
                Op::Open { slot: 1 },
                data(1, 0, 2000, 3),
                Op::Gap {
                    slot: 1,
                    dir: 0,
                    len: 100,
                },
                Op::Close { slot: 0 },
                Op::Sync,
                data(1, 1, 50, 4),
                Op::Close { slot: 1 },
                Op::EndEvents,
            ],
        ),
        (
            0x00,
            vec![
                Op::Open { slot: 0 },
                data(0, 0, 1500, 1),
                data(0, 0, 1500, 2),
                data(0, 0, 1500, 3),
                Op::Sync,
                Op::Restart,
                Op::Open { slot: 1 },
                data(1, 1, 700, 5),
                Op::EndEvents,
            ],
        ),
    ];
    let mut out = Vec::new();
    for (g, ops) in scripts {
        // Writer mode, replay table of 4, no read error, writer table of 2.
        let mut v = vec![g, 1 | 4 << 1, 0, 1];
        for op in &ops {
            op.encode(&mut v);
        }
        out.push(v.clone());
        // The same with damage: a flipped byte, a segment copied over another.
        v.extend_from_slice(&[0, 100, 0, 0, 0, 0x40, 1, 0, 1]);
        out.push(v);
        // The raw image.
        let mem = crate::spool_reader::image(Geometry(g), &ops, 2);
        let mut raw = vec![g, 4 << 1, 0];
        raw.extend_from_slice(&mem);
        out.push(raw);
    }
    out
}

/// Spool export seeds: the spool reader's scripts in writer mode (2 segments of 16 KiB, a
/// writer table of 2), damaged, cut short, and as the raw file they leave.
pub fn spool_export_synthetic() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for reader_seed in spool_synthetic().iter().step_by(3) {
        // Writer-mode reader seeds start: geometry, mode, fail, writer slots; then events.
        let events = &reader_seed[4..];
        let mut v = vec![1 | 32, 0, 0, 1];
        v.extend_from_slice(events);
        out.push(v.clone());
        // Damaged: a flipped byte in the first segment's records.
        let mut d = v.clone();
        d.extend_from_slice(&[0, 200, 0, 0, 0, 0x10]);
        out.push(d);
        // Cut at 6000 bytes (1500 units of 4).
        let mut c = v.clone();
        c[0] |= 8;
        c[1..3].copy_from_slice(&1500u16.to_le_bytes());
        out.push(c);
        // The raw file.
        let mut ram = crate::spool_reader::Ram::with_geometry(16 << 10, 2, 4096);
        ram.mem.fill(0);
        crate::spool_reader::write_events(&mut Input::new(events), &mut ram, 2);
        let mut raw = vec![0];
        raw.extend_from_slice(&ram.mem);
        out.push(raw);
    }
    out
}
