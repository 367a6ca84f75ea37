//! `-e md5`, `-e sha256`: each direction's digest, of its file as written (a gap is a hole
//! the file reads as zeros; `-b` cuts it), in the direction's report record as tcpflow 1.6's
//! `<hashdigest type='MD5'>`. A direction with gaps or late bytes says so (`holes`, `late`):
//! its digest is still that of the file's bytes where nothing was late.

use md5::Md5;
use sha2::{Digest, Sha256};
use tcpflow_core::{CloseReason, Dir, FlowInfo, FlowKey};

use crate::fxhash::SlotMap;

use super::set::{dir_id, Ctx, Extra, Scanner};

#[derive(Clone, Debug, Default)]
struct DirDigest {
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    /// Where the next byte goes (what was hashed ends here).
    pos: u64,
    holes: u64,
    late: u64,
}

/// Per flow slot, both directions.
#[derive(Debug)]
pub struct Digests {
    md5: bool,
    sha256: bool,
    max: u64,
    flows: SlotMap<Box<[DirDigest; 2]>>,
    /// Slots closed by eviction whose hashing state is kept, with the connection's key and
    /// index: picked up again, the digests go on over the whole file (one per slot at most).
    parked: SlotMap<(FlowKey, u32)>,
}

impl Digests {
    pub fn new(md5: bool, sha256: bool, max_bytes: Option<u64>) -> Digests {
        Digests {
            md5,
            sha256,
            max: max_bytes.unwrap_or(u64::MAX),
            flows: SlotMap::default(),
            parked: SlotMap::default(),
        }
    }

    fn dir(&mut self, flow: &FlowInfo, dir: Dir) -> &mut DirDigest {
        let (md5, sha256) = (self.md5, self.sha256);
        // The hashers' states are made for a new slot only, not on every call.
        let f = self.flows.entry(flow.slot).or_insert_with(|| {
            let fresh = DirDigest {
                md5: md5.then(Md5::new),
                sha256: sha256.then(Sha256::new),
                ..Default::default()
            };
            Box::new([fresh.clone(), fresh])
        });
        &mut f[dir.index()]
    }
}

impl DirDigest {
    fn update(&mut self, b: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(b);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(b);
        }
    }

    /// Zeros up to `to` (a hole), within the file's bound.
    fn zeros_to(&mut self, to: u64, max: u64) {
        let to = to.min(max);
        let z = [0u8; 4096];
        while self.pos < to {
            let n = (to - self.pos).min(z.len() as u64) as usize;
            self.update(&z[..n]);
            self.pos += n as u64;
        }
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

impl Scanner for Digests {
    fn open(&mut self, _cx: &mut Ctx<'_>, flow: &FlowInfo, _names: &[String; 2]) {
        let parked = self.parked.remove(&flow.slot);
        if parked == Some((flow.key, flow.conn_index)) {
            if let Some(f) = self.flows.get(&flow.slot) {
                if (0..2).all(|d| f[d].pos == flow.dirs[d].stream_len.min(self.max)) {
                    // Evicted and picked up again where it stopped: hashing goes on.
                    return;
                }
            }
        }
        // A slot reused: what came before is gone (a connection resumed without its state
        // carries on at its offset: its first bytes read as a hole).
        self.flows.remove(&flow.slot);
    }

    fn data(&mut self, _cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let max = self.max;
        let d = self.dir(flow, dir);
        let end = offset + data.len() as u64;
        if end <= d.pos || d.pos >= max {
            // A redelivery (overlap policy `last`) or past `-b`: the file's bytes there are
            // not the ones hashed; counted as late so the record says so.
            if end <= d.pos {
                d.late += data.len() as u64;
            }
            return;
        }
        if offset > d.pos {
            d.holes += offset - d.pos;
            d.zeros_to(offset, max);
        }
        let skip = (d.pos - offset.min(d.pos)) as usize;
        let keep = ((max - d.pos).min((data.len() - skip) as u64)) as usize;
        d.update(&data[skip..skip + keep]);
        d.pos += keep as u64;
    }

    fn gap(&mut self, _cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, len: u64) {
        let max = self.max;
        let d = self.dir(flow, dir);
        let end = offset.saturating_add(len);
        if end > d.pos {
            d.holes += end - d.pos.max(offset);
            d.zeros_to(end, max);
        }
    }

    fn late(&mut self, _cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, _offset: u64, data: &[u8]) {
        // Written into a hole already hashed as zeros.
        self.dir(flow, dir).late += data.len() as u64;
    }

    fn close(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, reason: CloseReason) {
        let f = if reason == CloseReason::Evicted {
            // This close's record gets the digests of the file so far; the state stays in
            // case the connection is picked up again.
            let Some(f) = self.flows.get(&flow.slot) else {
                return;
            };
            self.parked.insert(flow.slot, (flow.key, flow.conn_index));
            f.clone()
        } else {
            let Some(f) = self.flows.remove(&flow.slot) else {
                return;
            };
            f
        };
        for (i, d) in f.into_iter().enumerate() {
            if d.pos == 0 {
                continue;
            }
            let dir = if i == 0 { Dir::AtoB } else { Dir::BtoA };
            let mut attrs = String::new();
            let mut json = String::new();
            if d.holes > 0 {
                attrs.push_str(&format!(" holes='{}'", d.holes));
                json.push_str(&format!(",\"digest_holes\":{}", d.holes));
            }
            if d.late > 0 {
                attrs.push_str(&format!(" late='{}'", d.late));
                json.push_str(&format!(",\"digest_late\":{}", d.late));
            }
            let mut x = Extra::default();
            if let Some(h) = d.md5 {
                let v = hex(&h.finalize());
                x.xml.push_str(&format!(
                    "      <hashdigest type='MD5'{attrs}>{v}</hashdigest>\n"
                ));
                x.json.push_str(&format!(",\"md5\":\"{v}\""));
            }
            if let Some(h) = d.sha256 {
                let v = hex(&h.finalize());
                x.xml.push_str(&format!(
                    "      <hashdigest type='SHA256'{attrs}>{v}</hashdigest>\n"
                ));
                x.json.push_str(&format!(",\"sha256\":\"{v}\""));
            }
            x.json.push_str(&json);
            cx.extras.insert(dir_id(flow, dir), x);
        }
    }
}
