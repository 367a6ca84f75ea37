//! Replays every file under `regressions/<target>/` (inputs that once crashed a target, kept
//! after the fix) and the generated seeds through the harnesses: `cargo test` in `fuzz/`
//! (stable is enough).

use std::path::Path;

use tcpflow_fuzz::{capfile, decode, defrag, engine, http, seeds, spool_export, spool_reader};

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 7] = [
    ("decode", decode::run),
    ("defrag", defrag::run),
    ("engine", |d| {
        engine::run(d);
    }),
    ("spool_reader", spool_reader::run),
    ("capfile", capfile::run),
    ("spool_export", spool_export::run),
    ("http", http::run),
];

#[test]
fn regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut n = 0;
    for (target, run) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&f).unwrap();
            eprintln!("{target}: {}", f.display());
            run(&data);
            n += 1;
        }
    }
    eprintln!("{n} regression inputs replayed");
    // regressions/engine/ holds inputs: a replay that finds none checked nothing.
    assert!(n > 0, "no regression input found under {}", root.display());
}

#[test]
fn seeds_pass() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut dirs: Vec<_> = std::fs::read_dir(&testdata)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    let (mut decode_n, mut engine_n, mut capfile_n) = (0, 0, 0);
    // Connections the engine seeds with `resume_evicted` picked up again after an eviction
    // (the checker's resume rules must have run).
    let mut resumed = 0;
    for d in dirs {
        for name in ["input.pcap", "input.pcapng"] {
            let Ok(b) = std::fs::read(d.join(name)) else {
                continue;
            };
            for s in seeds::decode_from_capture(&b) {
                decode::run(&s);
                decode_n += 1;
            }
            for s in seeds::engine_from_capture(&b) {
                resumed += engine::run(&s).resumed;
                engine_n += 1;
            }
            for s in capfile::seeds_from_capture(&b) {
                capfile::run(&s);
                capfile_n += 1;
            }
        }
    }
    assert!(
        decode_n > 300 && engine_n > 50 && capfile_n >= 90,
        "{decode_n} {engine_n} {capfile_n}"
    );
    assert!(resumed > 0, "no engine seed resumed an evicted connection");
    let wifi = seeds::decode_synthetic();
    assert_eq!(wifi.len(), 4);
    for s in wifi {
        decode::run(&s);
    }
    for s in seeds::engine_synthetic() {
        engine::run(&s);
    }
    for s in seeds::defrag_synthetic() {
        defrag::run(&s);
    }
    for s in seeds::spool_synthetic() {
        spool_reader::run(&s);
    }
    for s in seeds::spool_export_synthetic() {
        spool_export::run(&s);
    }
    for s in http::seeds() {
        http::run(&s);
    }
}
