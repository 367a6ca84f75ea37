//! A minimal pcap / pcapng reader for cutting test captures into seed frames (not for
//! untrusted files: it stops at the first thing it does not understand).

/// Frames of a capture: (link type, timestamp in ns, frame bytes).
pub type Frames = Vec<(u32, u64, Vec<u8>)>;

pub fn frames(file: &[u8]) -> Frames {
    match file.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => pcapng(file),
        Some(_) => pcap(file),
        None => Vec::new(),
    }
}

fn pcap(f: &[u8]) -> Frames {
    let mut out = Vec::new();
    let Some(magic) = f.get(..4) else { return out };
    let (le, nano) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return out,
    };
    let u32at = |p: usize| -> Option<u32> {
        let b: [u8; 4] = f.get(p..p + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let Some(link) = u32at(20) else { return out };
    let mut pos = 24;
    while let (Some(sec), Some(frac), Some(caplen)) = (u32at(pos), u32at(pos + 4), u32at(pos + 8)) {
        let start = pos + 16;
        let Some(data) = f.get(start..start + caplen as usize) else {
            break;
        };
        let ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nano { 1 } else { 1000 };
        out.push((link & 0xffff, ns, data.to_vec()));
        pos = start + caplen as usize;
    }
    out
}

fn pcapng(f: &[u8]) -> Frames {
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut le = true;
    let mut pos = 0;
    while pos + 12 <= f.len() {
        let u32at = |p: usize| -> Option<u32> {
            let b: [u8; 4] = f.get(p..p + 4)?.try_into().ok()?;
            Some(if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let Some(typ) = u32at(pos) else { break };
        if typ == 0x0a0d_0d0a {
            le = f.get(pos + 8..pos + 12) == Some(&[0x4d, 0x3c, 0x2b, 0x1a]);
            links.clear();
        }
        let u32at = |p: usize| -> Option<u32> {
            let b: [u8; 4] = f.get(p..p + 4)?.try_into().ok()?;
            Some(if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let Some(len) = u32at(pos + 4).map(|l| l as usize) else {
            break;
        };
        if len < 12 || pos + len > f.len() {
            break;
        }
        match typ {
            1 => {
                let l = f[pos + 8] as u32 | (f[pos + 9] as u32) << 8;
                let l = if le { l } else { l.swap_bytes() >> 16 };
                links.push(l);
            }
            6 => {
                let (Some(ifc), Some(hi), Some(lo), Some(cap)) = (
                    u32at(pos + 8),
                    u32at(pos + 12),
                    u32at(pos + 16),
                    u32at(pos + 20),
                ) else {
                    break;
                };
                let start = pos + 28;
                if let (Some(&link), Some(data)) =
                    (links.get(ifc as usize), f.get(start..start + cap as usize))
                {
                    // Default resolution: microseconds.
                    let ts = (u64::from(hi) << 32 | u64::from(lo)) * 1000;
                    out.push((link, ts, data.to_vec()));
                }
            }
            _ => {}
        }
        pos += len;
    }
    out
}
