//! The sizes README.md quotes ("The core's memory") are the code's, exactly: a change to a
//! record, a slot, a block or a preset fails here until the README says the new figure.
//! The figures are those of a 64-bit target (the README's), where this runs.

#![cfg(target_pointer_width = "64")]

use std::mem::size_of;

use tcpflow_core::FragSlot;
use tcpflow_core::{Block, BLOCK_DATA};
use tcpflow_core::{Capacities, Engine};
use tcpflow_core::{FlowRecord, HotSlot};

const README: &str = include_str!("../../README.md");

/// `n` with thousands separators, as the README writes numbers.
fn grouped(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn quoted(text: &str) {
    assert!(
        README.contains(text),
        "README.md does not say {text:?}: update it to the code's figure"
    );
}

#[test]
fn record_slot_and_block_sizes() {
    assert_eq!(size_of::<FlowRecord>(), 80);
    assert_eq!(size_of::<HotSlot>(), 504);
    assert_eq!(size_of::<Block>(), 1176);
    assert_eq!(BLOCK_DATA, 1024);
    quoted(&format!("{}-byte record", size_of::<FlowRecord>()));
    quoted(&format!("{}-byte slot", size_of::<HotSlot>()));
    quoted(&format!(
        "An out-of-order block is {} bytes",
        grouped(size_of::<Block>())
    ));
    quoted("a 1 KiB window of a stream");
    // "one per eight records up to 1,024, then one per 128"
    let hot = |flows| {
        Capacities {
            flows,
            ..Capacities::ROUTER
        }
        .hot_len()
    };
    assert_eq!(hot(8 * 1000), 1000);
    assert_eq!(hot(8 * 1024), 1024);
    assert_eq!(hot(128 * 1024), 1024);
    assert_eq!(hot(128 * 2048), 2048);
    quoted("one per eight records up to 1,024, then one per 128");
}

/// The presets' row of the table: flows, pool, fragments and the total (storage and the
/// `Engine` value), to the tenth of a MiB the table shows.
#[test]
fn preset_totals() {
    const MIB: usize = 1 << 20;
    for (name, c, row) in [
        (
            "router",
            Capacities::ROUTER,
            "| router (`Capacities::ROUTER`) | 8,192 | 2 MiB | 16 x 64 KiB | 4.5 MiB |",
        ),
        (
            "workstation",
            Capacities::WORKSTATION,
            "| workstation (`Capacities::WORKSTATION`) | 262,144 | 32 MiB | 64 x 64 KiB | 63.7 MiB |",
        ),
    ] {
        let total = c.memory_bytes() + size_of::<Engine<'_>>();
        let storage = c.flows * size_of::<FlowRecord>()
            + c.hot_len() * size_of::<HotSlot>()
            + c.index_len() * size_of::<u32>()
            + c.blocks * size_of::<Block>()
            + c.frag_slots * (size_of::<FragSlot>() + c.frag_slot_bytes);
        assert_eq!(c.memory_bytes(), storage, "{name}");
        let computed = format!(
            "| {name} (`Capacities::{}`) | {} | {} MiB | {} x {} KiB | {:.1} MiB |",
            name.to_uppercase(),
            grouped(c.flows),
            c.blocks * BLOCK_DATA / MIB,
            c.frag_slots,
            c.frag_slot_bytes / 1024,
            total as f64 / MIB as f64
        );
        assert_eq!(computed, row, "{name}: the code's row, then the README's");
        quoted(row);
        println!("{name}: {total} bytes ({computed})");
    }
}
