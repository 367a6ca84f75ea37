//! `spool_export`: `--spool-export` end to end, in process: a spool file (raw bytes, or a
//! spool a writer made from input-driven events and that was then damaged or cut short)
//! through the host's spool opening, the reader, the file writer and the report.
//!
//! Input: a mode byte (bit 0: writer mode; bits 1..=2: 2..5 segments of 16 KiB; bit 3: cut
//! the file short; bit 4: `-b 1000`; bit 5: a JSON report too), then raw file bytes (at most
//! 256 KiB) or, in writer mode, the cut length (u16, in 4-byte units), a writer slot count
//! byte and [`spool_reader`](crate::spool_reader)'s events and damage.
//!
//! Checks, beyond "no panic": every refusal is one line (no newline, not empty); the exit
//! status is 0 or 1; an undamaged, lossless spool exports with status 0 (and files, if it
//! holds data).

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::spool_reader::{damage, write_events, Ram};
use crate::Input;

/// A scratch folder of this process (each fuzzing process its own).
fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("tcpflow-fuzz-export-{}", std::process::id()))
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(mode) = inp.u8() else { return };
    let (mut expect_ok, mut expect_files) = (false, false);
    let image = if mode & 1 == 0 {
        inp.take(256 << 10).to_vec()
    } else {
        let count = 2 + u32::from((mode >> 1) & 3);
        let cut = inp.u16().map(|c| usize::from(c) * 4);
        let wslots = 1 + usize::from(inp.u8().unwrap_or(0) % 8);
        let mut ram = Ram::with_geometry(16 << 10, count, 4096);
        // A spool file starts as zeros (allocated, never written), not as erased flash.
        ram.mem.fill(0);
        let written = write_events(&mut inp, &mut ram, wslots);
        let damaged = damage(&mut inp, &mut ram);
        let mut b = ram.mem;
        if mode & 8 != 0 {
            b.truncate(cut.unwrap_or(0));
        }
        expect_ok = written.lossless && !damaged && mode & 8 == 0;
        expect_files = expect_ok && written.data_bytes > 0 && mode & 16 == 0;
        b
    };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let file = dir.join("spool");
    std::fs::write(&file, &image).expect("writing the spool file");
    let out = dir.join("out");
    let json = dir.join("r.json");
    let mut args = vec![
        "tcpflow".to_string(),
        "-q".into(),
        "--spool-export".into(),
        file.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        // A small table: a header asking for more is refused, as the command does.
        "--max-flows".into(),
        "64".into(),
    ];
    if mode & 16 != 0 {
        args.extend(["-b".into(), "1000".into()]);
    }
    if mode & 32 != 0 {
        args.extend(["--report-json".into(), json.display().to_string()]);
    }
    let opts = tcpflow::cli::Args::try_parse_from(&args)
        .expect("arguments")
        .into_options()
        .expect("options");
    match tcpflow::spoolcmd::export(&opts, &file) {
        Ok(0) => {}
        Ok(1) => assert!(!expect_ok, "an undamaged spool failed to export"),
        Ok(c) => panic!("exit status {c}"),
        Err(e) => {
            assert!(!expect_ok || e.contains("flow slots"), "refused: {e}");
            assert!(!e.is_empty() && !e.contains('\n'), "not one line: {e:?}");
        }
    }
    if expect_files {
        let files = std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name() != "report.xml")
                    .count()
            })
            .unwrap_or(0);
        assert!(files > 0, "an undamaged spool with data exported no file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
