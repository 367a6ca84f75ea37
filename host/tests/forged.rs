//! A sender that forges its sequence numbers, with no ACK from its peer (issue 16): its files
//! stay about as large as what it sent, and every byte not placed is counted.

mod common;
use common::*;

const MIB: u32 = 1 << 20;

#[test]
fn forged_sequence_numbers_without_acks_keep_files_small() {
    let s = server();
    let mut p = Pcap::new();
    let mut t = 1_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    let data = vec![b'd'; 100];
    let mut forged_bytes = 0u64;
    // 1. Picked up midstream (its first segments held until more come); then a segment 900
    // MiB before the first one seen.
    let (c4, base4) = (client(4), 0x4000_0000u32);
    p.tcp(tick(), c4, s, base4, 0, ACK | PSH, &data);
    p.tcp(tick(), c4, s, base4 - 900 * MIB, 0, ACK | PSH, &data);
    forged_bytes += 100;
    p.tcp(tick(), c4, s, base4 + 100, 0, ACK | PSH, &data);
    // 2. Picked up midstream: 1000 real bytes, then 50 segments 101 to 150 MiB ahead.
    let (c1, base) = (client(1), 0x1000_0000u32);
    for k in 0..10 {
        p.tcp(tick(), c1, s, base + k * 100, 0, ACK | PSH, &data);
    }
    for k in 1..=50u32 {
        p.tcp(tick(), c1, s, base + 1000 + (100 + k) * MIB, 0, ACK, &data);
        forged_bytes += 100;
    }
    // 3. A SYN the peer never answers, then jumps of 60 MiB (each within the jump limit),
    // 30 times (never wrapping): the pool is two blocks, so each third segment gives up the
    // hole before the first, and the next jump starts from there.
    let (c2, isn) = (client(2), 5000u32);
    p.tcp(tick(), c2, s, isn, 0, SYN, b"");
    p.tcp(tick(), c2, s, isn + 1, 0, ACK | PSH, &[b'x'; 1000]);
    let mut next = isn + 1001;
    for _ in 0..30 {
        let at = next.wrapping_add(60 * MIB);
        for j in 0..3 {
            p.tcp(tick(), c2, s, at.wrapping_add(j * 10), 0, ACK, b"y");
        }
        next = at.wrapping_add(1);
    }
    // 4. A FIN 900 MiB after the data.
    let (c3, isn3) = (client(3), 9000u32);
    p.tcp(tick(), c3, s, isn3, 0, SYN, b"");
    p.tcp(tick(), c3, s, isn3 + 1, 0, ACK | PSH, &[b'z'; 500]);
    p.tcp(tick(), c3, s, isn3 + 501 + 900 * MIB, 0, FIN | ACK, b"");

    let dir = tmp("forged");
    let input = dir.join("forged.pcap");
    p.write(&input);
    let out = dir.join("out");
    let o = run(&[
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--pool-blocks",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let len = |c: End| std::fs::metadata(out.join(flow_name(c, s))).unwrap().len();
    assert_eq!(len(c1), 1000);
    assert_eq!(len(c3), 500);
    assert_eq!(len(c4), 200);
    // One jump within the limit is placed (a hole of 60 MiB and two of 9 bytes between its
    // three bytes); the holes would then outgrow the 1003 bytes sent by more than the limit.
    assert_eq!(len(c2), 1000 + 60 * MIB as u64 + 21);
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    let ratchet = 29 * 3;
    assert_eq!(counter(&report, "out_of_window"), 50 + ratchet + 1 + 1);
    assert_eq!(
        counter(&report, "out_of_window_bytes"),
        forged_bytes + ratchet
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
