//! The out-of-order pool's worst case through the binary: 1-byte segments one byte apart,
//! far more of them than `--max-ooo-bytes` holds. Peak memory stays within `--memory`, every
//! byte sent is in the file at its offset, and every byte never sent is a reported gap.
//! Alone in its file: the peak is read from `getrusage(RUSAGE_CHILDREN)`, which covers every
//! child this test process has waited for (spawned with a real fork, after the capture's
//! buffer is freed, so the image `exec` replaces is small: see tests/src/bin/bench.rs).

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::*;

/// Bytes sent: one at every even offset from 2 to 2N; the odd ones and 0 never come.
const N: u32 = 200_000;
const MEMORY: u64 = 8 << 20;

fn byte_at(off: u32) -> u8 {
    (off.wrapping_mul(2_654_435_761) >> 24) as u8 | 1
}

#[test]
fn one_byte_segments_one_byte_apart_stay_within_the_memory_budget() {
    let d = tmp("pool-sparse");
    let (c, s) = (client(1), server());
    let (isn_c, isn_s) = (1000u32, 5000u32);
    let mut p = Pcap::new();
    let mut t = 1_700_000_000_000_000u64;
    let mut tick = || {
        t += 10;
        t
    };
    p.tcp(tick(), c, s, isn_c, 0, SYN, b"");
    p.tcp(tick(), s, c, isn_s, isn_c + 1, SYN | ACK, b"");
    p.tcp(tick(), c, s, isn_c + 1, isn_s + 1, ACK, b"");
    let base = isn_c + 1;
    for k in 1..=N {
        let off = 2 * k;
        p.tcp(tick(), c, s, base + off, isn_s + 1, ACK, &[byte_at(off)]);
    }
    let len = 2 * N + 1;
    p.tcp(tick(), c, s, base + len, isn_s + 1, FIN | ACK, b"");
    p.tcp(tick(), s, c, isn_s + 1, base + len + 1, FIN | ACK, b"");
    p.tcp(tick(), c, s, base + len + 1, isn_s + 2, ACK, b"");
    let cap = d.join("sparse.pcap");
    p.write(&cap);
    drop(p);
    // The program itself (binary, libpcap, libc: its resident pages doing nothing) is not
    // in --memory's shares, as host/README.md says: measured first, as a child of its own.
    let v = bin().arg("--version").output().unwrap();
    assert!(v.status.success());
    let program = children_peak_rss();
    let out = d.join("out");
    let mut cmd = bin();
    // SAFETY: the hook calls nothing, so it is async-signal-safe; it makes std fork for real.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    let o = cmd
        .stdin(Stdio::null())
        .args([
            "--memory",
            "8M",
            "--max-ooo-bytes",
            "64K",
            "-r",
            cap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let peak = children_peak_rss();
    assert!(
        peak <= MEMORY + program,
        "peak RSS {peak} over --memory {MEMORY} plus the program's own {program}"
    );

    let file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("010.000.000.001.")
        })
        .expect("the client's file");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), len as usize);
    for (off, &b) in bytes.iter().enumerate() {
        let off = off as u32;
        let want = if off >= 2 && off % 2 == 0 {
            byte_at(off)
        } else {
            0
        };
        assert_eq!(b, want, "byte {off}");
    }
    // Every byte never sent (0, 1 and the odd ones) is a gap; what made room is counted.
    let report = std::fs::read_to_string(out.join("report.xml")).unwrap();
    assert!(
        report.contains(&format!("gap_bytes='{}'", N + 1)),
        "gap bytes in the report: {}",
        report
            .lines()
            .filter(|l| l.contains("gap"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!report.contains(" pool_full='0'"), "room was made");
    let _ = std::fs::remove_dir_all(&d);
}

/// The largest peak resident set size of this process's finished children, in bytes.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru), 0);
        ru.ru_maxrss as u64 * 1024
    }
}
