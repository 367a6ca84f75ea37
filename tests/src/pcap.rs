//! Capture file writers (classic pcap, minimal pcapng) and a small reader.

/// Classic pcap magic for microsecond timestamps.
pub const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
/// Classic pcap magic for nanosecond timestamps.
pub const MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// Writes a classic pcap file (microsecond timestamps, little-endian) into memory.
///
/// Frames longer than `snaplen` are cut: the record gets caplen = snaplen and the original
/// length.
#[derive(Debug, Clone)]
pub struct PcapWriter {
    buf: Vec<u8>,
    snaplen: u32,
}

impl PcapWriter {
    pub fn new(linktype: u32, snaplen: u32) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&MAGIC_MICRO.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&snaplen.to_le_bytes());
        buf.extend_from_slice(&linktype.to_le_bytes());
        PcapWriter { buf, snaplen }
    }

    /// Appends one frame captured at `ts_us` microseconds since the epoch.
    pub fn write(&mut self, ts_us: u64, frame: &[u8]) {
        let cap = frame.len().min(self.snaplen as usize);
        self.buf
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.buf.extend_from_slice(&(cap as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&frame[..cap]);
    }

    /// The file so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Writes a minimal pcapng file: one section header block, one interface description block
/// (default microsecond resolution) and enhanced packet blocks, all little-endian.
#[derive(Debug, Clone)]
pub struct PcapngWriter {
    buf: Vec<u8>,
    snaplen: u32,
    interfaces: u32,
}

fn push_block(buf: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    buf.extend_from_slice(&block_type.to_le_bytes());
    buf.extend_from_slice(&total.to_le_bytes());
    buf.extend_from_slice(body);
    buf.resize(buf.len() + padded - body.len(), 0);
    buf.extend_from_slice(&total.to_le_bytes());
}

impl PcapngWriter {
    pub fn new(linktype: u16, snaplen: u32) -> Self {
        let mut buf = Vec::with_capacity(4096);
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        push_block(&mut buf, 0x0a0d_0d0a, &shb);
        let mut w = PcapngWriter {
            buf,
            snaplen,
            interfaces: 0,
        };
        w.add_interface(linktype);
        w
    }

    /// Adds an interface of `linktype` (a capture on several interfaces, which may differ in
    /// link type); its number is what [`PcapngWriter::write_on`] takes.
    pub fn add_interface(&mut self, linktype: u16) -> u32 {
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&self.snaplen.to_le_bytes());
        push_block(&mut self.buf, 1, &idb);
        self.interfaces += 1;
        self.interfaces - 1
    }

    /// Appends one enhanced packet block on interface 0.
    pub fn write(&mut self, ts_us: u64, frame: &[u8]) {
        self.write_on(0, ts_us, frame);
    }

    /// Appends one enhanced packet block on interface `iface`.
    pub fn write_on(&mut self, iface: u32, ts_us: u64, frame: &[u8]) {
        assert!(iface < self.interfaces, "interface {iface} not added");
        let cap = frame.len().min(self.snaplen as usize);
        let mut epb = Vec::with_capacity(20 + cap);
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
        epb.extend_from_slice(&(cap as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame[..cap]);
        push_block(&mut self.buf, 6, &epb);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One record read back from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// The captured bytes (caplen of them).
    pub data: Vec<u8>,
}

/// A capture read back into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub linktype: u32,
    pub snaplen: u32,
    /// True when the file used nanosecond timestamps.
    pub nanos: bool,
    /// True when the file was big-endian.
    pub big_endian: bool,
    pub records: Vec<Record>,
}

struct Rd<'a> {
    b: &'a [u8],
    be: bool,
}

impl Rd<'_> {
    fn u16(&self, at: usize) -> Result<u16, String> {
        let s = self
            .b
            .get(at..at + 2)
            .ok_or_else(|| format!("truncated at byte {at}"))?;
        let a = [s[0], s[1]];
        Ok(if self.be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        let s = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| format!("truncated at byte {at}"))?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
}

/// Reads a classic pcap file: both byte orders, microsecond and nanosecond magic.
pub fn read_pcap(bytes: &[u8]) -> Result<Capture, String> {
    if bytes.len() < 24 {
        return Err("file shorter than a pcap header".into());
    }
    let magic_le = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (be, nanos) = match magic_le {
        MAGIC_MICRO => (false, false),
        MAGIC_NANO => (false, true),
        m if m.swap_bytes() == MAGIC_MICRO => (true, false),
        m if m.swap_bytes() == MAGIC_NANO => (true, true),
        m => return Err(format!("not a pcap file (magic {m:#010x})")),
    };
    let r = Rd { b: bytes, be };
    let snaplen = r.u32(16)?;
    let linktype = r.u32(20)?;
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let sec = r.u32(at)? as u64;
        let frac = r.u32(at + 4)? as u64;
        let cap = r.u32(at + 8)? as usize;
        let orig_len = r.u32(at + 12)?;
        let data = bytes
            .get(at + 16..at + 16 + cap)
            .ok_or_else(|| format!("record at byte {at} runs past the end of the file"))?
            .to_vec();
        let ts_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        records.push(Record {
            ts_ns,
            orig_len,
            data,
        });
        at += 16 + cap;
    }
    Ok(Capture {
        linktype,
        snaplen,
        nanos,
        big_endian: be,
        records,
    })
}

/// Reads a pcapng file with one interface (SHB, IDB, EPB/SPB; other blocks are skipped).
pub fn read_pcapng(bytes: &[u8]) -> Result<Capture, String> {
    if bytes.len() < 28 || bytes[..4] != [0x0a, 0x0d, 0x0d, 0x0a] {
        return Err("not a pcapng file".into());
    }
    let be = match bytes[8..12] {
        [0x1a, 0x2b, 0x3c, 0x4d] => true,
        [0x4d, 0x3c, 0x2b, 0x1a] => false,
        _ => return Err("bad pcapng byte-order magic".into()),
    };
    let r = Rd { b: bytes, be };
    let mut cap = Capture {
        linktype: 0,
        snaplen: 0,
        nanos: false,
        big_endian: be,
        records: Vec::new(),
    };
    let mut tsresol_div = 1_000u64; // ns per tick, default 10^-6 s
    let mut have_idb = false;
    let mut at = 0;
    while at < bytes.len() {
        let typ = r.u32(at)?;
        let len = r.u32(at + 4)? as usize;
        if len < 12 || len % 4 != 0 || at + len > bytes.len() {
            return Err(format!("bad block length {len} at byte {at}"));
        }
        match typ {
            1 => {
                if have_idb {
                    return Err("more than one interface is not supported".into());
                }
                have_idb = true;
                cap.linktype = r.u16(at + 8)? as u32;
                cap.snaplen = r.u32(at + 12)?;
                let mut o = at + 16;
                while o + 4 <= at + len - 4 {
                    let code = r.u16(o)?;
                    let olen = r.u16(o + 2)? as usize;
                    if code == 0 {
                        break;
                    }
                    if code == 9 && olen == 1 {
                        let v = bytes[o + 4];
                        if v & 0x80 == 0 && v <= 9 {
                            tsresol_div = 10u64.pow(9 - v as u32);
                            cap.nanos = v == 9;
                        }
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
            }
            6 => {
                let hi = r.u32(at + 12)? as u64;
                let lo = r.u32(at + 16)? as u64;
                let caplen = r.u32(at + 20)? as usize;
                let orig_len = r.u32(at + 24)?;
                let data = bytes
                    .get(at + 28..at + 28 + caplen)
                    .ok_or("enhanced packet block runs past its end")?
                    .to_vec();
                cap.records.push(Record {
                    ts_ns: ((hi << 32) | lo) * tsresol_div,
                    orig_len,
                    data,
                });
            }
            3 => {
                let orig_len = r.u32(at + 8)?;
                let caplen = (orig_len as usize).min(len - 16);
                cap.records.push(Record {
                    ts_ns: 0,
                    orig_len,
                    data: bytes[at + 12..at + 12 + caplen].to_vec(),
                });
            }
            _ => {}
        }
        at += len;
    }
    if !have_idb {
        return Err("no interface description block".into());
    }
    Ok(cap)
}

/// Reads either format, by its magic.
pub fn read_capture(bytes: &[u8]) -> Result<Capture, String> {
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        read_pcapng(bytes)
    } else {
        read_pcap(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_round_trip_and_snaplen() {
        let mut w = PcapWriter::new(1, 96);
        w.write(1_700_000_000_123_456, &[1u8; 60]);
        w.write(1_700_000_001_000_001, &[2u8; 200]);
        let c = read_pcap(&w.into_bytes()).unwrap();
        assert_eq!(
            (c.linktype, c.snaplen, c.nanos, c.big_endian),
            (1, 96, false, false)
        );
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.records[0].ts_ns, 1_700_000_000_123_456_000);
        assert_eq!(c.records[0].data, vec![1u8; 60]);
        assert_eq!(c.records[1].orig_len, 200);
        assert_eq!(c.records[1].data, vec![2u8; 96]);
    }

    #[test]
    fn big_endian_nano() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC_NANO.to_be_bytes());
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_be_bytes());
        b.extend_from_slice(&228u32.to_be_bytes());
        b.extend_from_slice(&5u32.to_be_bytes());
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&[9, 8, 7]);
        let c = read_pcap(&b).unwrap();
        assert!(c.big_endian && c.nanos);
        assert_eq!(c.linktype, 228);
        assert_eq!(c.records[0].ts_ns, 5_000_000_007);
        assert_eq!(c.records[0].data, vec![9, 8, 7]);
        assert!(read_pcap(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn pcapng_round_trip() {
        let mut w = PcapngWriter::new(1, 65535);
        w.write(1_700_000_000_000_001, &[3u8; 61]);
        w.write(1_700_000_000_000_002, &[4u8; 64]);
        let bytes = w.into_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let c = read_capture(&bytes).unwrap();
        assert_eq!(c.linktype, 1);
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.records[0].data, vec![3u8; 61]);
        assert_eq!(c.records[1].ts_ns, 1_700_000_000_000_002_000);
    }
}
