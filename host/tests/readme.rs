//! The `--memory 16M` router figures README.md and host/README.md quote are the code's,
//! exactly (64-bit: the sizes of the core's records differ on 32-bit targets).

#![cfg(target_pointer_width = "64")]

use tcpflow::budget::{host_bytes_per_flow, Sizing};

const README: &str = include_str!("../../README.md");
const HOST_README: &str = include_str!("../README.md");

#[test]
fn router_budget_as_the_readmes_quote_it() {
    let (spool, cut) = (true, false);
    let s = Sizing::from_budget(16 << 20, host_bytes_per_flow(spool, cut));
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / f64::from(1 << 20));
    assert_eq!(s.max_flows, 87_645, "{s:?}");
    assert_eq!(mib(s.ooo_bytes() as u64), "3.5 MiB", "{s:?}");
    assert_eq!(s.frag_slots, 12, "{s:?}");
    assert_eq!(mib(s.memory_bytes(spool, cut)), "15.4 MiB", "{s:?}");
    for (file, text, quote) in [
        (
            "README.md",
            README,
            "`--spool`: 87,645 flows and 3.5 MiB of out-of-order data",
        ),
        (
            "host/README.md",
            HOST_README,
            "`--spool`: 87,645 flows, 3.5 MiB of out-of-order\ndata, 12 fragment slots; 15.4 MiB by the estimate",
        ),
    ] {
        assert!(
            text.contains(quote),
            "{file} does not say {quote:?}: update it to the code's figures"
        );
    }
}
