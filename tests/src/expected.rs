//! What a correct tool writes: file names (tcpflow 1.6's default template) and contents.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::conn::{Conn, Pkt, Seg};
use crate::link::Dir;

/// `%A.%a` / `%B.%b`: IPv4 as four zero-padded 3-digit octets, IPv6 compressed, then the port
/// as 5 digits.
pub fn endpoint_name(ep: SocketAddr) -> String {
    match ep.ip() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!(
                "{:03}.{:03}.{:03}.{:03}.{:05}",
                o[0],
                o[1],
                o[2],
                o[3],
                ep.port()
            )
        }
        IpAddr::V6(a) => format!("{}.{:05}", a, ep.port()),
    }
}

/// The default template `%A.%a-%B.%b%V%v%C%c`: `--VLAN` (outermost id) when tagged, `cN` for
/// the N-th reuse of the same 4-tuple (N > 0).
pub fn flow_name(src: SocketAddr, dst: SocketAddr, vlan: Option<u16>, index: u32) -> String {
    let mut s = format!("{}-{}", endpoint_name(src), endpoint_name(dst));
    if let Some(v) = vlan {
        s.push_str(&format!("--{v}"));
    }
    if index > 0 {
        s.push_str(&format!("c{index}"));
    }
    s
}

/// One expected output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFile {
    pub name: String,
    pub data: Vec<u8>,
}

/// Applies `seg` to a direction's buffer: bytes not yet written are taken, bytes already
/// written are kept (first copy in capture order wins).
fn apply(buf: &mut Vec<u8>, have: &mut Vec<bool>, seg: &Seg, take: usize) {
    let off = seg.off as usize;
    let end = off + take;
    if buf.len() < end {
        buf.resize(end, 0);
        have.resize(end, false);
    }
    for (i, &b) in seg.data[..take].iter().enumerate() {
        if !have[off + i] {
            have[off + i] = true;
            buf[off + i] = b;
        }
    }
}

/// Connection indices (the `cN` of the names): connections with the same addresses, ports
/// and VLAN ids are numbered 0, 1, 2... in order of their first packet in the capture.
pub fn conn_indices(conns: &[&Conn], pkts: &[Pkt]) -> HashMap<u32, u32> {
    let mut first: Vec<u32> = Vec::new();
    for p in pkts {
        if !first.contains(&p.conn) {
            first.push(p.conn);
        }
    }
    let mut per_key: HashMap<(SocketAddr, SocketAddr, Vec<u16>), u32> = HashMap::new();
    let mut out = HashMap::new();
    for id in first {
        let c = conns
            .iter()
            .find(|c| c.id == id)
            .expect("packet of a connection not listed");
        let (a, b) = if c.client <= c.server {
            (c.client, c.server)
        } else {
            (c.server, c.client)
        };
        let n = per_key.entry((a, b, c.opts.link.vlan_ids())).or_insert(0);
        out.insert(id, *n);
        *n += 1;
    }
    out
}

/// The files a correct tool writes for capture `pkts` (in capture order) cut at `snaplen`.
///
/// Each direction that sent payload gets a file as long as everything it sent; bytes that
/// never arrived, or that the snap length cut off, are NULs; where copies of a byte differ, the
/// first one in capture order wins. IP fragments count when the last missing piece arrives.
pub fn expected_files(conns: &[&Conn], pkts: &[Pkt], snaplen: u32) -> Vec<ExpectedFile> {
    let idx = conn_indices(conns, pkts);
    let mut bufs: HashMap<(u32, Dir), (Vec<u8>, Vec<bool>)> = HashMap::new();
    let mut frags: HashMap<u64, HashSet<usize>> = HashMap::new();
    for p in pkts {
        let Some(seg) = &p.seg else { continue };
        let frame_len = p.frame().len();
        let take = match p.frag {
            Some(f) => {
                assert!(
                    frame_len <= snaplen as usize,
                    "the model does not cut fragments by the snap length"
                );
                let seen = frags.entry(f.group).or_default();
                if !seen.insert(f.index) || seen.len() != f.count {
                    continue;
                }
                seg.data.len()
            }
            None if frame_len > snaplen as usize => (snaplen as usize)
                .saturating_sub(p.payload_start())
                .min(seg.data.len()),
            None => seg.data.len(),
        };
        let (buf, have) = bufs.entry((p.conn, p.dir)).or_default();
        apply(buf, have, seg, take);
    }
    let mut out = BTreeMap::new();
    for c in conns {
        let Some(&n) = idx.get(&c.id) else { continue };
        for dir in [Dir::C2S, Dir::S2C] {
            let mut data = bufs.remove(&(c.id, dir)).map(|b| b.0).unwrap_or_default();
            let len = c.stream(dir).len().max(data.len());
            if len == 0 {
                continue;
            }
            data.resize(len, 0);
            let (src, dst) = c.endpoints(dir);
            let name = flow_name(src, dst, c.opts.link.outer_vlan(), n);
            assert!(
                out.insert(name.clone(), data).is_none(),
                "two flows named {name}"
            );
        }
    }
    out.into_iter()
        .map(|(name, data)| ExpectedFile { name, data })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::LinkOpts;
    use crate::link::{Link, Vlan};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(
            flow_name(sa("10.0.0.1:40000"), sa("10.0.0.2:80"), None, 0),
            "010.000.000.001.40000-010.000.000.002.00080"
        );
        assert_eq!(
            flow_name(sa("[2001:db8::1]:40000"), sa("[2001:db8::2]:80"), None, 0),
            "2001:db8::1.40000-2001:db8::2.00080"
        );
        assert_eq!(
            flow_name(sa("10.0.0.2:80"), sa("192.168.100.1:5"), Some(100), 2),
            "010.000.000.002.00080-192.168.100.001.00005--100c2"
        );
    }

    #[test]
    fn model_holes_overlaps_reuse_vlan() {
        let tag = Link::Ethernet(vec![Vlan::new(0x8100, 5, 100)]);
        let mut a = Conn::new(
            sa("10.0.0.1:40000"),
            sa("10.0.0.2:80"),
            1,
            2,
            LinkOpts::new(tag),
        );
        let mut pk = a.handshake();
        let d = a.send(Dir::C2S, b"abcdefgh", 2);
        pk.extend([d[0].clone(), d[2].clone()]); // "ab", "ef"; "cd" and "gh" lost
        pk.push(a.segment_at(Dir::C2S, 1, b"XYZ")); // "b" kept, "cd" from here
        pk.push(a.keepalive(Dir::C2S));
        pk.push(a.fin(Dir::C2S));
        let mut b = Conn::new(
            sa("10.0.0.1:40000"),
            sa("10.0.0.2:80"),
            9,
            9,
            LinkOpts::new(Link::Ethernet(vec![Vlan::new(0x8100, 0, 100)])),
        );
        pk.extend(b.handshake());
        pk.extend(b.send(Dir::S2C, b"hi", 10));
        let f = expected_files(&[&a, &b], &pk, 65535);
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "010.000.000.001.40000-010.000.000.002.00080--100",
                "010.000.000.002.00080-010.000.000.001.40000--100c1"
            ]
        );
        assert_eq!(f[0].data, b"abYZef\0\0");
        assert_eq!(f[1].data, b"hi");
    }

    #[test]
    fn model_snaplen() {
        let mut a = Conn::new(
            sa("10.0.0.1:1"),
            sa("10.0.0.2:2"),
            0,
            0,
            LinkOpts::default(),
        );
        let pk = a.send(Dir::C2S, &[7u8; 100], 100);
        let f = expected_files(&[&a], &pk, 64);
        assert_eq!(f[0].data.len(), 100);
        assert_eq!(&f[0].data[..10], &[7u8; 10]);
        assert!(f[0].data[10..].iter().all(|&b| b == 0));
    }
}
