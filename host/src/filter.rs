//! The tcpdump filter expression for capture files: compiled by libpcap once per link type
//! (a pcapng file may mix them), run on each record by `pcap_offline_filter` with the
//! record's captured and original lengths (so `len`, `greater` and `less` see the length on
//! the wire, as when libpcap reads the file itself).

use std::os::raw::{c_int, c_uint};

use pcap::{BpfInstruction, BpfProgram, Capture, Linktype, PacketHeader};
use tcpflow_core::LinkType;

/// `struct bpf_program` of libpcap.
#[repr(C)]
struct RawProgram {
    bf_len: c_uint,
    bf_insns: *const BpfInstruction,
}

extern "C" {
    // libpcap (linked by the pcap crate): runs a compiled filter on one packet; nonzero when
    // it matches.
    fn pcap_offline_filter(fp: *const RawProgram, h: *const PacketHeader, pkt: *const u8) -> c_int;
}

/// The libpcap DLT for a LINKTYPE read from a file (they differ for a few link types, as in
/// libpcap's `linktype_to_dlt`); what `pcap_open_dead` and `pcap_datalink_val_to_name` take.
pub fn dlt(link: LinkType) -> i32 {
    match link.0 {
        100 => 11, // ATM RFC 1483
        101 => 12, // raw IP
        102 => 15, // SLIP BSD/OS
        103 => 16, // PPP BSD/OS
        106 => 19, // ATM classical IP
        l => i32::try_from(l).unwrap_or(-1),
    }
}

/// A filter expression compiled for one link type.
pub struct Program {
    prog: BpfProgram,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.prog.get_instructions().len())
            .finish()
    }
}

impl Program {
    /// Compiles `expr` (optimised) for packets of `link`; libpcap's message on failure.
    pub fn compile(expr: &str, link: LinkType) -> Result<Program, String> {
        let dead = Capture::dead(Linktype(dlt(link))).map_err(|e| format!("libpcap: {e}"))?;
        let prog = dead.compile(expr, true).map_err(|e| match e {
            pcap::Error::PcapError(m) => m,
            other => other.to_string(),
        })?;
        Ok(Program { prog })
    }

    /// Whether a packet of `data` (captured) and `origlen` bytes on the wire matches.
    pub fn matches(&self, data: &[u8], origlen: u32) -> bool {
        let insns = self.prog.get_instructions();
        let fp = RawProgram {
            bf_len: insns.len() as c_uint,
            bf_insns: insns.as_ptr(),
        };
        let h = PacketHeader {
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            caplen: data.len() as u32,
            len: origlen,
        };
        // SAFETY: `fp` points at the compiled instructions (`BpfInstruction` is a
        // transparent `struct bpf_insn`), alive for the call; `h` is a `struct pcap_pkthdr`
        // (`PacketHeader` is repr(C) with its fields) whose caplen is the length of `data`,
        // the bytes libpcap reads (its filter machine checks every load against caplen).
        unsafe { pcap_offline_filter(&fp, &h, data.as_ptr()) != 0 }
    }
}

/// The expression and its programs, compiled on first use for each link type.
#[derive(Debug)]
pub struct Filters {
    expr: String,
    programs: Vec<(LinkType, Result<Program, String>)>,
}

impl Filters {
    pub fn new(expr: &str) -> Filters {
        Filters {
            expr: expr.to_string(),
            programs: Vec::new(),
        }
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The program for `link`, compiled now if it is the first packet of that link type;
    /// the compiler's message if the expression does not apply to it.
    pub fn program(&mut self, link: LinkType) -> &Result<Program, String> {
        let i = match self.programs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                self.programs
                    .push((link, Program::compile(&self.expr, link)));
                self.programs.len() - 1
            }
        };
        &self.programs[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame, `pad` bytes of payload.
    fn frame(dport: u16, pad: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + pad) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&40000u16.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend(std::iter::repeat(0x61).take(pad));
        f
    }

    #[test]
    fn ports_and_wire_length() {
        let p = Program::compile("tcp port 80", LinkType::ETHERNET).unwrap();
        assert!(p.matches(&frame(80, 0), 54));
        assert!(!p.matches(&frame(81, 0), 54));
        // `greater` looks at the length on the wire, not the bytes captured.
        let g = Program::compile("greater 1000", LinkType::ETHERNET).unwrap();
        let f = frame(80, 1400);
        assert!(g.matches(&f[..64], 1454));
        assert!(!g.matches(&f[..64], 64));
        // A load past the captured bytes does not match (and reads nothing beyond them).
        let deep = Program::compile("tcp[1400] = 0x61", LinkType::ETHERNET).unwrap();
        assert!(deep.matches(&f, 1454));
        assert!(!deep.matches(&f[..64], 1454));
    }

    #[test]
    fn compiled_per_link_type() {
        let mut fs = Filters::new("tcp port 80");
        assert!(fs.program(LinkType::ETHERNET).is_ok());
        // Raw IP: LINKTYPE 101 is DLT 12 for libpcap.
        let raw = &frame(80, 0)[14..];
        assert!(fs.program(LinkType::RAW).as_ref().unwrap().matches(raw, 40));
        assert!(fs
            .program(LinkType::RAW_12)
            .as_ref()
            .unwrap()
            .matches(raw, 40));
        let mut e = Filters::new("ether host 1:2:3:4:5:6");
        assert!(e.program(LinkType::ETHERNET).is_ok());
        assert!(e.program(LinkType::RAW).is_err());
        assert_eq!(e.programs.len(), 2);
        assert!(e.program(LinkType::RAW).is_err());
        assert_eq!(e.programs.len(), 2);
    }
}
