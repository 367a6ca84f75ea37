//! The core alone on every testdata capture: the flows it reconstructs, named by the default
//! template, must be exactly the expected files (the host command is checked the same way
//! end to end in host/tests).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tcpflow_core::testkit::Store;
use tcpflow_core::{Addr, Capacities, Config, Dir, FlowInfo, LinkType, Sink, Timestamp};
use tcpflow_tests::flow_name;
use tcpflow_tests::pcap::read_capture;

#[derive(Default)]
struct Files {
    files: BTreeMap<String, Vec<u8>>,
}

fn ip(a: Addr) -> IpAddr {
    match a {
        Addr::V4(b) => IpAddr::from(b),
        Addr::V6(b) => IpAddr::from(b),
    }
}

fn name(flow: &FlowInfo, dir: Dir) -> String {
    let (s, sp) = flow.key.src(dir);
    let (d, dp) = flow.key.dst(dir);
    flow_name(
        SocketAddr::new(ip(s), sp),
        SocketAddr::new(ip(d), dp),
        flow.key.vlans.outer(),
        flow.conn_index,
    )
}

impl Sink for Files {
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let f = self.files.entry(name(flow, dir)).or_default();
        let end = offset as usize + data.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(data);
    }

    /// Late bytes land in the hole, as a file writer puts them.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.data(flow, dir, offset, data);
        true
    }

    fn gap(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        offset: u64,
        len: u64,
        _: tcpflow_core::GapReason,
    ) {
        let f = self.files.entry(name(flow, dir)).or_default();
        let end = (offset + len) as usize;
        if f.len() < end {
            f.resize(end, 0);
        }
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let input = ["input.pcap", "input.pcapng"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or("no input")?;
    let cap = read_capture(&std::fs::read(&input).unwrap())?;
    // Fewer full slots than flows: the captures with several flows go through packing.
    let mut store = Store::from_caps(Capacities {
        flows: 64,
        blocks: 1024,
        frag_slots: 16,
        frag_slot_bytes: 65536,
    })
    .hot(4);
    let mut engine = store.engine(Config::default());
    let mut sink = Files::default();
    for (i, r) in cap.records.iter().enumerate() {
        engine
            .process(
                Timestamp(r.ts_ns),
                LinkType(cap.linktype),
                &r.data,
                &mut sink,
            )
            .map_err(|e| format!("packet {}: {e:?}", i + 1))?;
    }
    engine.finish(&mut sink);
    let mut expected = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("expected")).unwrap() {
        let e = e.unwrap();
        expected.insert(
            e.file_name().into_string().unwrap(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    let got: Vec<_> = sink.files.keys().collect();
    let want: Vec<_> = expected.keys().collect();
    if got != want {
        return Err(format!("names differ:\n got  {got:?}\n want {want:?}"));
    }
    for (n, w) in &expected {
        let g = &sink.files[n];
        if g != w {
            let at = g
                .iter()
                .zip(w)
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(w.len()));
            return Err(format!(
                "{n}: {} bytes, want {}; first difference at {at}",
                g.len(),
                w.len()
            ));
        }
    }
    Ok(())
}

#[test]
fn core_reconstructs_every_testdata_case() {
    let Some(cases) = tcpflow_tests::testdata_cases() else {
        return;
    };
    let mut ran = tcpflow_tests::Cases::new("testdata cases through the core");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            ran.ran();
            run_case(c)
                .err()
                .map(|e| format!("{}: {e}", c.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    ran.done(tcpflow_tests::testdata_count());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
