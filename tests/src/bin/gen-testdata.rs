//! Writes the test captures and their expected flows.
//!
//! usage: gen-testdata [ROOT]   (default: the workspace's testdata/ folder)

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata"));
    match tcpflow_tests::cases::write_all(&root) {
        Ok(cases) => {
            let mut total = 0u64;
            for c in &cases {
                let exp: u64 = c.expected().iter().map(|f| f.data.len() as u64).sum();
                let cap = c.capture().len() as u64;
                total += exp + cap;
                println!(
                    "{:<12} {:>4} packets {:>8} bytes capture {:>8} bytes expected",
                    c.name,
                    c.pkts.len(),
                    cap,
                    exp
                );
            }
            println!(
                "{} cases, {} bytes, in {}",
                cases.len(),
                total,
                root.canonicalize().unwrap_or(root).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-testdata: {}: {e}", root.display());
            ExitCode::FAILURE
        }
    }
}
