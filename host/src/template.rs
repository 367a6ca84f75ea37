//! Output file names: tcpflow 1.6's `-T` template language.
//!
//! | variable | expands to |
//! |---|---|
//! | `%A` / `%a` | source address / port of the direction (IPv4 as four 3-digit octets, IPv6 compressed; port 5 digits) |
//! | `%B` / `%b` | destination address / port |
//! | `%E` / `%e` | source / destination MAC address, when the link layer has them (else nothing) |
//! | `%V` / `%v` | `--` when VLAN-tagged / the outermost VLAN id (nothing when untagged) |
//! | `%C` / `%c` | `c` / the connection index, when the index (a reused 4-tuple) is above 0 |
//! | `%#` | the connection index, always |
//! | `%T` / `%t` | the flow's first timestamp: ISO 8601 UTC (`2010-01-31T22:16:21Z`) / Unix seconds |
//! | `%S` | the session number: connections numbered 0, 1, 2... in the order they started in this run, shared by both directions |
//! | `%N` `%K` `%M` `%G` | the session number's 3-digit bins: `% 1000`, `/ 10^3 % 1000`, `/ 10^6 % 1000`, `/ 10^9 % 1000` |
//! | `%%` | `%` |
//!
//! `/` in a template makes sub-folders. As tcpflow 1.6 does, a template that does not use `%c`
//! (or `%#`) gets `%C%c` appended, so reused 4-tuples never share a file. A name is always
//! relative to the output folder: an absolute name or a `..` component is refused.

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use tcpflow_core::{Addr, Dir, FlowInfo};

use crate::timefmt::{self, push_num};

/// The default template, as tcpflow 1.6.
pub const DEFAULT: &str = "%A.%a-%B.%b%V%v%C%c";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(String),
    SrcAddr,
    SrcPort,
    DstAddr,
    DstPort,
    SrcMac,
    DstMac,
    VlanSep,
    Vlan,
    ConnC,
    ConnIndex,
    ConnAlways,
    IsoTime,
    EpochTime,
    Session,
    /// Session number divided by 10^(3*n), modulo 1000, 3 digits.
    Bin(u32),
}

/// A parsed name template.
#[derive(Clone, Debug)]
pub struct Template {
    toks: Vec<Tok>,
    source: String,
}

/// What a name is made of besides the flow itself.
#[derive(Clone, Copy, Debug)]
pub struct NameParams {
    /// Connection index to write for `%c`/`%#` (normally `FlowInfo::conn_index`).
    pub conn_index: u32,
    /// Session number (`%S`, `%N`...).
    pub session: u64,
}

impl Template {
    /// Parses a template; unknown variables and a trailing `%` are errors.
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut toks = Vec::new();
        let mut lit = String::new();
        let mut chars = src.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some(v) = chars.next() else {
                return Err(format!("template '{src}' ends with a lone %"));
            };
            let tok = match v {
                '%' => {
                    lit.push('%');
                    continue;
                }
                'A' => Tok::SrcAddr,
                'a' => Tok::SrcPort,
                'B' => Tok::DstAddr,
                'b' => Tok::DstPort,
                'E' => Tok::SrcMac,
                'e' => Tok::DstMac,
                'V' => Tok::VlanSep,
                'v' => Tok::Vlan,
                'C' => Tok::ConnC,
                'c' => Tok::ConnIndex,
                '#' => Tok::ConnAlways,
                'T' => Tok::IsoTime,
                't' => Tok::EpochTime,
                'S' => Tok::Session,
                'N' => Tok::Bin(0),
                'K' => Tok::Bin(1),
                'M' => Tok::Bin(2),
                'G' => Tok::Bin(3),
                other => {
                    return Err(format!(
                        "template '{src}' has an unknown variable %{other} \
                         (known: %A %a %B %b %E %e %V %v %C %c %# %T %t %S %N %K %M %G %%)"
                    ))
                }
            };
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            toks.push(tok);
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        if !toks
            .iter()
            .any(|t| matches!(t, Tok::ConnIndex | Tok::ConnAlways))
        {
            toks.push(Tok::ConnC);
            toks.push(Tok::ConnIndex);
        }
        if toks.is_empty() {
            return Err("the template is empty".into());
        }
        Ok(Template {
            toks,
            source: src.to_string(),
        })
    }

    /// Checks the template on a sample connection (index 0 and 1): a template whose names
    /// would leave the output folder is refused before any packet is read.
    pub fn check_static(&self) -> Result<(), String> {
        let sample = FlowInfo {
            slot: 0,
            key: tcpflow_core::FlowKey {
                addr: [Addr::V4([10, 0, 0, 1]), Addr::V4([10, 0, 0, 2])],
                port: [40000, 80],
                vlans: tcpflow_core::Vlans::NONE,
            },
            conn_index: 0,
            first_ts: tcpflow_core::Timestamp(0),
            last_ts: tcpflow_core::Timestamp(0),
            macs: None,
            dirs: [tcpflow_core::DirInfo::default(); 2],
        };
        for conn_index in [0, 1] {
            self.relative_path(
                &sample,
                Dir::AtoB,
                NameParams {
                    conn_index,
                    session: 0,
                },
            )?;
        }
        Ok(())
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expands the template for direction `dir` of `flow` (no safety check: see
    /// [`Template::relative_path`]).
    pub fn expand(&self, flow: &FlowInfo, dir: Dir, p: NameParams) -> String {
        let mut s = String::with_capacity(64);
        let (sa, sp) = flow.key.src(dir);
        let (da, dp) = flow.key.dst(dir);
        for t in &self.toks {
            match t {
                Tok::Lit(l) => s.push_str(l),
                Tok::SrcAddr => push_addr(&mut s, sa),
                Tok::SrcPort => push_num(&mut s, sp.into(), 5),
                Tok::DstAddr => push_addr(&mut s, da),
                Tok::DstPort => push_num(&mut s, dp.into(), 5),
                Tok::SrcMac => {
                    if let Some(m) = flow.macs {
                        push_mac(&mut s, &m[dir.index()]);
                    }
                }
                Tok::DstMac => {
                    if let Some(m) = flow.macs {
                        push_mac(&mut s, &m[dir.reverse().index()]);
                    }
                }
                Tok::VlanSep => {
                    if !flow.key.vlans.is_empty() {
                        s.push_str("--");
                    }
                }
                Tok::Vlan => {
                    if let Some(v) = flow.key.vlans.outer() {
                        push_num(&mut s, v.into(), 0);
                    }
                }
                Tok::ConnC => {
                    if p.conn_index > 0 {
                        s.push('c');
                    }
                }
                Tok::ConnIndex => {
                    if p.conn_index > 0 {
                        push_num(&mut s, p.conn_index.into(), 0);
                    }
                }
                Tok::ConnAlways => push_num(&mut s, p.conn_index.into(), 0),
                Tok::IsoTime => timefmt::push_iso_seconds(&mut s, flow.first_ts),
                Tok::EpochTime => push_num(&mut s, flow.first_ts.secs(), 0),
                Tok::Session => push_num(&mut s, p.session, 0),
                Tok::Bin(n) => push_num(&mut s, p.session / 1000u64.pow(*n) % 1000, 3),
            }
        }
        s
    }

    /// Expands and checks the name: it must stay inside the output folder.
    pub fn relative_path(
        &self,
        flow: &FlowInfo,
        dir: Dir,
        p: NameParams,
    ) -> Result<PathBuf, String> {
        let name = self.expand(flow, dir, p);
        check_relative(&name).map(|()| PathBuf::from(name))
    }
}

/// A name is acceptable when it is relative, has no `..` component and names a file (not a
/// folder).
pub fn check_relative(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the file name template gave an empty name".into());
    }
    if name.starts_with('/') {
        return Err(format!(
            "file name '{name}' is absolute; names must stay inside the output folder"
        ));
    }
    // This runs for every direction named: the searches below are vectorised by std, and
    // the components are only looked at when the name has a `..` somewhere.
    let b = name.as_bytes();
    let nul = b.contains(&0);
    let dotdot = name.contains("..") && b.split(|&c| c == b'/').any(|c| c == b"..");
    if nul {
        return Err(format!(
            "file name '{}' contains a NUL byte",
            name.escape_debug()
        ));
    }
    if name.ends_with('/') {
        return Err(format!("file name '{name}' names a folder, not a file"));
    }
    if dotdot {
        return Err(format!(
            "file name '{name}' has a '..' component; names must stay inside the output folder"
        ));
    }
    if name == "." || name.ends_with("/.") {
        return Err(format!("file name '{name}' names a folder, not a file"));
    }
    Ok(())
}

/// Appends ASCII bytes (the formatters below build them in a stack buffer: one append
/// instead of one per character).
fn push_ascii(s: &mut String, b: &[u8]) {
    debug_assert!(b.is_ascii());
    // SAFETY: callers pass ASCII only.
    s.push_str(unsafe { std::str::from_utf8_unchecked(b) });
}

/// An IPv4 address in `buf`, each octet zero-padded to 3 digits (`padded`, as in names) or
/// as people write it; returns the length.
fn ipv4_into(buf: &mut [u8; 15], o: [u8; 4], padded: bool) -> usize {
    let mut n = 0;
    for (i, &v) in o.iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if padded || v >= 100 {
            buf[n] = b'0' + v / 100;
            n += 1;
        }
        if padded || v >= 10 {
            buf[n] = b'0' + v / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + v % 10;
        n += 1;
    }
    n
}

fn push_addr(s: &mut String, a: Addr) {
    match a {
        Addr::V4(o) => {
            let mut buf = [0; 15];
            let n = ipv4_into(&mut buf, o, true);
            push_ascii(s, &buf[..n]);
        }
        Addr::V6(b) => {
            let _ = write!(s, "{}", Ipv6Addr::from(b));
        }
    }
}

pub fn push_mac(s: &mut String, m: &[u8; 6]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [b':'; 17];
    for (i, b) in m.iter().enumerate() {
        buf[i * 3] = HEX[(b >> 4) as usize];
        buf[i * 3 + 1] = HEX[(b & 15) as usize];
    }
    push_ascii(s, &buf);
}

/// An address as people write it, appended to `s`: `10.0.0.1`, `2001:db8::1`.
pub fn push_addr_plain(s: &mut String, a: Addr) {
    match a {
        Addr::V4(o) => {
            let mut buf = [0; 15];
            let n = ipv4_into(&mut buf, o, false);
            push_ascii(s, &buf[..n]);
        }
        Addr::V6(b) => {
            let _ = write!(s, "{}", Ipv6Addr::from(b));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tcpflow_core::{DirInfo, FlowKey, Timestamp, Vlans};

    pub(crate) fn flow4() -> FlowInfo {
        FlowInfo {
            slot: 0,
            key: FlowKey {
                addr: [Addr::V4([10, 0, 0, 1]), Addr::V4([192, 168, 100, 2])],
                port: [40000, 80],
                vlans: Vlans::NONE,
            },
            conn_index: 0,
            first_ts: Timestamp::from_micros(1_264_976_181, 260_924),
            last_ts: Timestamp::from_micros(1_264_976_182, 0),
            macs: Some([
                [0, 0x0c, 0x29, 0x7e, 0xec, 0xa4],
                [0, 0x0c, 0x29, 0xce, 0xd1, 0x9e],
            ]),
            dirs: [DirInfo::default(); 2],
        }
    }

    fn p(conn_index: u32, session: u64) -> NameParams {
        NameParams {
            conn_index,
            session,
        }
    }

    fn name(tpl: &str, f: &FlowInfo, dir: Dir, params: NameParams) -> String {
        Template::parse(tpl).unwrap().expand(f, dir, params)
    }

    #[test]
    fn default_ipv4_both_directions() {
        let f = flow4();
        assert_eq!(
            name(DEFAULT, &f, Dir::AtoB, p(0, 0)),
            "010.000.000.001.40000-192.168.100.002.00080"
        );
        assert_eq!(
            name(DEFAULT, &f, Dir::BtoA, p(0, 0)),
            "192.168.100.002.00080-010.000.000.001.40000"
        );
    }

    #[test]
    fn ipv6_is_compressed() {
        let mut f = flow4();
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        f.key.addr = [Addr::V6(a), Addr::V6(b)];
        f.key.port = [40008, 443];
        assert_eq!(
            name(DEFAULT, &f, Dir::AtoB, p(0, 0)),
            "2001:db8::1.40008-2001:db8::2.00443"
        );
    }

    #[test]
    fn vlan_uses_outer_id() {
        let mut f = flow4();
        let mut v = Vlans::NONE;
        v.push(0x2064); // priority bits are dropped by Vlans: id 100
        v.push(200);
        f.key.vlans = v;
        assert_eq!(
            name(DEFAULT, &f, Dir::AtoB, p(0, 0)),
            "010.000.000.001.40000-192.168.100.002.00080--100"
        );
    }

    #[test]
    fn reused_connection_gets_c_suffix() {
        let f = flow4();
        assert_eq!(
            name(DEFAULT, &f, Dir::AtoB, p(1, 0)),
            "010.000.000.001.40000-192.168.100.002.00080c1"
        );
        assert_eq!(
            name(DEFAULT, &f, Dir::AtoB, p(12, 0)),
            "010.000.000.001.40000-192.168.100.002.00080c12"
        );
    }

    #[test]
    fn every_variable() {
        let f = flow4();
        let d = Dir::AtoB;
        assert_eq!(name("%A", &f, d, p(0, 0)), "010.000.000.001");
        assert_eq!(name("%a%c", &f, d, p(0, 0)), "40000");
        assert_eq!(name("%B%c", &f, d, p(0, 0)), "192.168.100.002");
        assert_eq!(name("%b%c", &f, d, p(0, 0)), "00080");
        assert_eq!(
            name("%E_%e%c", &f, d, p(0, 0)),
            "00:0c:29:7e:ec:a4_00:0c:29:ce:d1:9e"
        );
        assert_eq!(
            name("%E_%e%c", &f, Dir::BtoA, p(0, 0)),
            "00:0c:29:ce:d1:9e_00:0c:29:7e:ec:a4"
        );
        assert_eq!(name("x%V%v%c", &f, d, p(0, 0)), "x");
        assert_eq!(name("x%C%c", &f, d, p(3, 0)), "xc3");
        assert_eq!(name("x%#", &f, d, p(0, 0)), "x0");
        assert_eq!(name("x%#", &f, d, p(2, 0)), "x2");
        assert_eq!(name("%T%c", &f, d, p(0, 0)), "2010-01-31T22:16:21Z");
        assert_eq!(name("%t%c", &f, d, p(0, 0)), "1264976181");
        assert_eq!(
            name("%S%c", &f, d, p(0, 1_234_567_890_123)),
            "1234567890123"
        );
        assert_eq!(
            name("%G/%M/%K/%N%c", &f, d, p(0, 1_234_567_890_123)),
            "234/567/890/123"
        );
        assert_eq!(name("%N%c", &f, d, p(0, 7)), "007");
        assert_eq!(name("100%%%c", &f, d, p(0, 0)), "100%");
    }

    #[test]
    fn template_without_c_gets_it_appended() {
        let f = flow4();
        assert_eq!(name("%A", &f, Dir::AtoB, p(2, 0)), "010.000.000.001c2");
        assert_eq!(name("%A-%#", &f, Dir::AtoB, p(2, 0)), "010.000.000.001-2");
    }

    #[test]
    fn slash_makes_folders() {
        let f = flow4();
        let t = Template::parse("%A/%B/%a-%b").unwrap();
        let path = t.relative_path(&f, Dir::AtoB, p(0, 0)).unwrap();
        assert_eq!(
            path,
            PathBuf::from("010.000.000.001/192.168.100.002/40000-00080")
        );
    }

    #[test]
    fn escaping_names_are_refused() {
        let f = flow4();
        for tpl in ["../%A", "%A/../../etc/passwd", "/tmp/%A", "%A/", "..%C"] {
            let t = Template::parse(tpl).unwrap();
            assert!(
                t.relative_path(&f, Dir::AtoB, p(0, 0)).is_err(),
                "{tpl} accepted"
            );
        }
        // `..%C%c` is only `..` for connection 0: a name that is not `..` is fine.
        let t = Template::parse("..%C%c").unwrap();
        assert_eq!(
            t.relative_path(&f, Dir::AtoB, p(1, 0)).unwrap(),
            PathBuf::from("..c1")
        );
        assert!(check_relative("a..b/c").is_ok());
        assert!(check_relative("a/.b/..c").is_ok());
        for (name, why) in [
            ("", "empty"),
            ("/a", "absolute"),
            ("a\0b", "NUL"),
            ("a/", "folder"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a/..", "'..'"),
            ("a/.", "folder"),
            (".", "folder"),
        ] {
            let e = check_relative(name).expect_err(name);
            assert!(e.contains(why), "{name}: {e}");
        }
    }

    #[test]
    fn addresses_and_macs_as_written() {
        let mut s = String::new();
        push_addr(&mut s, Addr::V4([10, 0, 100, 255]));
        s.push(' ');
        push_addr_plain(&mut s, Addr::V4([10, 0, 100, 255]));
        s.push(' ');
        push_addr_plain(&mut s, Addr::V4([0, 9, 99, 1]));
        s.push(' ');
        push_mac(&mut s, &[0, 0x0c, 0x29, 0x7e, 0xec, 0xa4]);
        assert_eq!(s, "010.000.100.255 10.0.100.255 0.9.99.1 00:0c:29:7e:ec:a4");
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(Template::parse("%A%").is_err());
        assert!(Template::parse("%A%q").is_err());
    }
}
