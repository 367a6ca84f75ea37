//! Writes the seed corpus: `cargo run --example seeds -- TESTDATA_DIR CORPUS_DIR`.
//! Creates `CORPUS_DIR/{decode,defrag,engine,spool_reader,capfile,spool_export,http}/seed-*`.

use std::path::Path;

use tcpflow_fuzz::{capfile, seeds};

/// Named seed inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (testdata, corpus) = match args.as_slice() {
        [_, t, c] => (Path::new(t), Path::new(c)),
        _ => {
            eprintln!("usage: seeds TESTDATA_DIR CORPUS_DIR");
            std::process::exit(2);
        }
    };
    let mut captures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(testdata)
        .expect("testdata")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        for name in ["input.pcap", "input.pcapng"] {
            if let Ok(b) = std::fs::read(d.join(name)) {
                let case = d.file_name().unwrap().to_string_lossy().into_owned();
                captures.push((case, b));
            }
        }
    }
    let mut sets: Vec<(&str, Seeds)> = vec![
        ("decode", Vec::new()),
        ("engine", Vec::new()),
        ("defrag", Vec::new()),
        ("spool_reader", Vec::new()),
        ("capfile", Vec::new()),
        ("spool_export", Vec::new()),
        ("http", Vec::new()),
    ];
    for (case, bytes) in &captures {
        for (i, s) in seeds::decode_from_capture(bytes).into_iter().enumerate() {
            sets[0].1.push((format!("seed-{case}-{i}"), s));
        }
        for (i, s) in seeds::engine_from_capture(bytes).into_iter().enumerate() {
            sets[1].1.push((format!("seed-{case}-{i}"), s));
        }
        for (i, s) in capfile::seeds_from_capture(bytes).into_iter().enumerate() {
            sets[4].1.push((format!("seed-{case}-{i}"), s));
        }
    }
    for (i, s) in seeds::decode_synthetic().into_iter().enumerate() {
        sets[0].1.push((format!("seed-synthetic-{i}"), s));
    }
    for (i, s) in seeds::engine_synthetic().into_iter().enumerate() {
        sets[1].1.push((format!("seed-synthetic-{i}"), s));
    }
    for (i, s) in seeds::defrag_synthetic().into_iter().enumerate() {
        sets[2].1.push((format!("seed-{i}"), s));
    }
    for (i, s) in seeds::spool_synthetic().into_iter().enumerate() {
        sets[3].1.push((format!("seed-{i}"), s));
    }
    for (i, s) in seeds::spool_export_synthetic().into_iter().enumerate() {
        sets[5].1.push((format!("seed-{i}"), s));
    }
    for (i, s) in tcpflow_fuzz::http::seeds().into_iter().enumerate() {
        sets[6].1.push((format!("seed-{i}"), s));
    }
    for (target, seeds) in sets {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        let total: usize = seeds.iter().map(|(_, s)| s.len()).sum();
        for (name, s) in &seeds {
            std::fs::write(dir.join(name), s).expect("seed");
        }
        println!("{target}: {} seeds, {} bytes", seeds.len(), total);
    }
}
