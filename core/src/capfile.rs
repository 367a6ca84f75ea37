//! Capture files: classic pcap and pcapng, parsed from bytes the caller holds.
//!
//! A pull parser with no buffer of its own. The caller reads the file in blocks of its
//! choosing, hands [`CapFile::open`] the first bytes, then asks [`CapFile::next`] for one step
//! at a time over the bytes it has not consumed yet: a packet record (its bytes are a slice of
//! the caller's buffer: no copy), a block to skip, a request for more bytes, or the end. Only
//! the caller knows where the file ends, so it says so (`eof`); a record cut short at the end
//! is then an error rather than a request for more.
//!
//! - Classic pcap: magics `a1b2c3d4` (microseconds) and `a1b23c4d` (nanoseconds) in both byte
//!   orders, and Kuznetzov's modified pcap `a1b2cd34` (24-byte record headers).
//! - pcapng: section header blocks (each may switch the byte order; it forgets the interfaces
//!   of the section before), interface description blocks (link type, snap length,
//!   `if_tsresol`, `if_tsoffset`), enhanced, simple and obsolete packet blocks; every other
//!   block is skipped by its length. Each packet carries its interface's link type, so a file
//!   may mix link types.
//!
//! Nothing here allocates or panics, whatever the bytes: every field is read through `get`
//! and every length is checked before it is used. Limits are libpcap's: a captured length of
//! at most [`MAX_CAPLEN`] bytes, a pcapng block of at most [`MAX_BLOCK`] bytes (so a buffer of
//! [`MAX_HELD`] bytes always holds a whole step), and (ours) [`MAX_INTERFACES`] interfaces per
//! section.

use core::fmt;

use crate::decode::LinkType;
use crate::time::Timestamp;

/// The largest captured length of one packet (libpcap's `MAXIMUM_SNAPLEN`); a record header
/// claiming more is corrupt.
pub const MAX_CAPLEN: u32 = 262_144;
/// The largest pcapng block (libpcap's: an enhanced packet block of [`MAX_CAPLEN`] bytes with
/// 128 KiB of options).
pub const MAX_BLOCK: usize = 12 + 20 + MAX_CAPLEN as usize + 131_072;
/// A buffer of this many bytes always holds whatever one step needs (a file header, a record,
/// a block).
pub const MAX_HELD: usize = MAX_BLOCK;
/// Interfaces described in one pcapng section, at most.
pub const MAX_INTERFACES: usize = 256;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Which kind of capture file, as its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Fields in big-endian byte order.
        big_endian: bool,
        /// Timestamps in nanoseconds (magic `a1b23c4d`), else microseconds.
        nanos: bool,
        /// Kuznetzov's modified pcap: 8 more bytes in each record header.
        modified: bool,
    },
    /// pcapng; the byte order is that of the current section.
    Pcapng {
        /// Fields in big-endian byte order.
        big_endian: bool,
    },
}

/// One pcapng interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Link type of its packets.
    pub link: LinkType,
    /// 0: no limit.
    pub snaplen: u32,
    /// `if_tsresol`: bit 7 clear, 10^-n seconds; set, 2^-n (n the low 7 bits). Default 6.
    pub tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub tsoffset: i64,
}

impl Interface {
    const EMPTY: Interface = Interface {
        link: LinkType(0),
        snaplen: 0,
        tsresol: 6,
        tsoffset: 0,
    };
}

/// One packet, its bytes a slice of the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Link type of the packet (in pcapng, its interface's).
    pub link: LinkType,
    /// pcapng interface id (0 in classic pcap).
    pub interface: u32,
    /// Bytes captured (`data.len()`).
    pub caplen: u32,
    /// Length on the wire, as the file says (may be less than `caplen` in a bad file: the
    /// captured bytes are still all given, as tshark reads them).
    pub origlen: u32,
    /// Snap length of the file (classic) or the interface (pcapng), as written: 0 or 2^31
    /// and above mean no limit.
    pub snaplen: u32,
    /// The captured bytes, a slice of the caller's buffer.
    pub data: &'a [u8],
}

impl Record<'_> {
    /// Whether the record holds more bytes than the snap length allows (an inconsistent
    /// file: libpcap would cut the record there; the bytes are all given here).
    pub fn exceeds_snaplen(&self) -> bool {
        snap_limit(self.snaplen).is_some_and(|s| self.caplen > s)
    }
}

/// What [`CapFile::next`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A packet; drop `consumed` bytes from the front of the buffer after using it.
    Record {
        /// Bytes of the buffer this step used.
        consumed: usize,
        /// The packet.
        record: Record<'a>,
    },
    /// A block that is not a packet (read, or skipped); drop `consumed` bytes.
    Skip {
        /// Bytes of the buffer this step used.
        consumed: usize,
    },
    /// The buffer must hold at least this many bytes (from its start) for the next step.
    NeedMore {
        /// Bytes needed from the buffer's start.
        at_least: usize,
    },
    /// The file ended cleanly (only with `eof`).
    End,
}

/// What [`CapFile::open`] found.
// The state (its interface table: 4 KiB) is returned by value once per file: the core does
// not allocate, so it is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Opened {
    /// The buffer must hold at least this many bytes (from the file's start).
    NeedMore {
        /// Bytes needed from the file's start.
        at_least: usize,
    },
    /// The header is read: drop `consumed` bytes and go on with [`CapFile::next`].
    Ready {
        /// The reader, positioned after the header.
        file: CapFile,
        /// Bytes of the header.
        consumed: usize,
    },
}

/// Why a capture file cannot be read (further).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// No byte at all.
    Empty,
    /// Neither a pcap nor a pcapng magic number.
    UnknownMagic([u8; 4]),
    /// The file ends inside its header.
    FileHeaderCut {
        /// Bytes there are.
        got: usize,
        /// Bytes the header takes.
        need: usize,
    },
    /// Classic pcap of a major version other than 2.
    PcapVersion {
        /// Major version in the header.
        major: u16,
        /// Minor version in the header.
        minor: u16,
    },
    /// pcapng section of a major version other than 1.
    PcapngVersion {
        /// Major version in the section header.
        major: u16,
        /// Minor version in the section header.
        minor: u16,
    },
    /// pcapng section header whose byte-order magic is not `1a2b3c4d` in either order.
    ByteOrderMagic([u8; 4]),
    /// The file ends inside a record header.
    RecordHeaderCut {
        /// Bytes there are.
        got: usize,
        /// Bytes the record header takes.
        need: usize,
    },
    /// The file ends inside a record's captured bytes.
    RecordDataCut {
        /// Bytes there are.
        got: usize,
        /// Captured length the record header says.
        caplen: u32,
    },
    /// The file ends inside a pcapng block header.
    BlockHeaderCut {
        /// Bytes there are.
        got: usize,
    },
    /// The file ends inside a pcapng block.
    BlockCut {
        /// Bytes there are.
        got: usize,
        /// Length the block header says.
        len: u32,
    },
    /// A captured length above [`MAX_CAPLEN`]: a corrupt record header.
    CaplenTooBig {
        /// Captured length the record says.
        caplen: u32,
    },
    /// A pcapng block length that is not a multiple of 4.
    BlockLengthUnaligned {
        /// Length the block header says.
        len: u32,
    },
    /// A pcapng block shorter than its type's fixed fields.
    BlockTooShort {
        /// The block's type.
        block_type: u32,
        /// Length the block header says.
        len: u32,
        /// Length of the type's fixed fields.
        min: u32,
    },
    /// A pcapng block longer than [`MAX_BLOCK`].
    BlockTooLong {
        /// Length the block header says.
        len: u32,
    },
    /// A pcapng block whose trailing length differs from its leading one.
    TrailerMismatch {
        /// The leading length.
        len: u32,
        /// The trailing length.
        trailer: u32,
    },
    /// A packet block whose captured bytes run past the block's end.
    CaplenPastBlock {
        /// Captured length the packet block says.
        caplen: u32,
        /// Bytes the block has for it.
        room: u32,
    },
    /// A packet on an interface that the section has not described.
    UnknownInterface {
        /// The packet's interface id.
        id: u32,
        /// Interfaces the section described.
        defined: u32,
    },
    /// More than [`MAX_INTERFACES`] interfaces in one section.
    TooManyInterfaces,
    /// An `if_tsresol` finer than 10^-19 or 2^-63 seconds.
    TsResolution(u8),
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CapError::*;
        match *self {
            Empty => write!(f, "the file is empty"),
            UnknownMagic(_) => write!(f, "unknown file format"),
            FileHeaderCut { got, need } => {
                write!(f, "file header cut short: {got} of {need} bytes")
            }
            PcapVersion { major, minor } => {
                write!(f, "unsupported pcap version {major}.{minor}")
            }
            PcapngVersion { major, minor } => {
                write!(f, "unsupported pcapng version {major}.{minor}")
            }
            ByteOrderMagic(m) => write!(
                f,
                "section header with an unknown byte-order magic {:02x}{:02x}{:02x}{:02x}",
                m[0], m[1], m[2], m[3]
            ),
            RecordHeaderCut { got, need } => write!(
                f,
                "truncated capture: the record header is cut short ({got} of {need} bytes)"
            ),
            RecordDataCut { got, caplen } => write!(
                f,
                "truncated capture: the record announces {caplen} captured bytes, the file has {got}"
            ),
            BlockHeaderCut { got } => write!(
                f,
                "truncated capture: the block header is cut short ({got} of 12 bytes)"
            ),
            BlockCut { got, len } => write!(
                f,
                "truncated capture: a block of {len} bytes is cut short after {got}"
            ),
            CaplenTooBig { caplen } => write!(
                f,
                "captured length {caplen} is more than the maximum {MAX_CAPLEN} (corrupt record header)"
            ),
            BlockLengthUnaligned { len } => {
                write!(f, "block length {len} is not a multiple of 4")
            }
            BlockTooShort {
                block_type,
                len,
                min,
            } => write!(
                f,
                "block of type {block_type:#x} has length {len}, less than its minimum {min}"
            ),
            BlockTooLong { len } => {
                write!(f, "block length {len} is more than the maximum {MAX_BLOCK}")
            }
            TrailerMismatch { len, trailer } => write!(
                f,
                "block length {len} at its start but {trailer} at its end"
            ),
            CaplenPastBlock { caplen, room } => write!(
                f,
                "captured length {caplen} runs past the end of its block ({room} bytes of room)"
            ),
            UnknownInterface { id, defined } => write!(
                f,
                "packet on interface {id}, but the section describes {defined} interface{}",
                if defined == 1 { "" } else { "s" }
            ),
            TooManyInterfaces => write!(
                f,
                "more than {MAX_INTERFACES} interfaces in one section"
            ),
            TsResolution(r) => {
                if r & 0x80 != 0 {
                    write!(f, "interface timestamp resolution 2^-{} is too fine", r & 0x7f)
                } else {
                    write!(f, "interface timestamp resolution 10^-{r} is too fine")
                }
            }
        }
    }
}

/// The state of a capture file being read: its format and, for pcapng, the current
/// section's byte order and interfaces.
#[derive(Clone)]
pub struct CapFile {
    kind: Kind,
    big: bool,
    ifaces: [Interface; MAX_INTERFACES],
    n_ifaces: usize,
    first_link: Option<LinkType>,
    /// Timestamp of the last packet (a simple packet block has none: it gets this one).
    last_ts: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pcap {
        nanos: bool,
        modified: bool,
        link: LinkType,
        snaplen: u32,
    },
    Pcapng,
}

impl fmt::Debug for CapFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapFile")
            .field("format", &self.format())
            .field("link", &self.link())
            .field("interfaces", &self.interfaces())
            .finish()
    }
}

/// A snap length that limits (0 and 2^31 and above do not, as libpcap reads them).
fn snap_limit(s: u32) -> Option<u32> {
    (s != 0 && s < 1 << 31).then_some(s)
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    match b.get(at..at.saturating_add(2)) {
        Some(&[x, y]) if big => u16::from_be_bytes([x, y]),
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    match b.get(at..at.saturating_add(4)) {
        Some(&[w, x, y, z]) if big => u32::from_be_bytes([w, x, y, z]),
        Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]),
        _ => 0,
    }
}

/// A 64-bit value in the section's byte order.
fn u64_at(b: &[u8], at: usize, big: bool) -> u64 {
    let first = u64::from(u32_at(b, at, big));
    let second = u64::from(u32_at(b, at + 4, big));
    if big {
        first << 32 | second
    } else {
        second << 32 | first
    }
}

/// A packet block's timestamp: the high 32 bits, then the low 32 bits, each in the
/// section's byte order.
fn ts_at(b: &[u8], at: usize, big: bool) -> u64 {
    u64::from(u32_at(b, at, big)) << 32 | u64::from(u32_at(b, at + 4, big))
}

/// Smallest total length of a pcapng block of each type (its fixed fields).
fn min_block_len(t: u32) -> u32 {
    match t {
        SHB => 28,
        IDB => 20,
        PB | EPB => 32,
        SPB => 16,
        _ => 12,
    }
}

/// A whole pcapng block in the buffer.
struct Block<'a> {
    typ: u32,
    big: bool,
    len: usize,
    body: &'a [u8],
}

enum Framed<'a> {
    Need(usize),
    End,
    Block(Block<'a>),
}

/// Finds the pcapng block at the start of `buf` (`big`: the section's byte order; a section
/// header says its own) and checks its lengths.
fn frame(buf: &[u8], eof: bool, big: bool) -> Result<Framed<'_>, CapError> {
    let Some(head) = buf.get(..12) else {
        return if !eof {
            Ok(Framed::Need(12))
        } else if buf.is_empty() {
            Ok(Framed::End)
        } else {
            Err(CapError::BlockHeaderCut { got: buf.len() })
        };
    };
    let (typ, big) = if u32_at(head, 0, false) == SHB {
        let bom = u32_at(head, 8, false).to_le_bytes();
        let big = if bom == BYTE_ORDER_MAGIC.to_le_bytes() {
            false
        } else if bom == BYTE_ORDER_MAGIC.to_be_bytes() {
            true
        } else {
            return Err(CapError::ByteOrderMagic(bom));
        };
        (SHB, big)
    } else {
        (u32_at(head, 0, big), big)
    };
    let len32 = u32_at(head, 4, big);
    if len32 % 4 != 0 {
        return Err(CapError::BlockLengthUnaligned { len: len32 });
    }
    let min = min_block_len(typ);
    if len32 < min {
        return Err(CapError::BlockTooShort {
            block_type: typ,
            len: len32,
            min,
        });
    }
    let len = len32 as usize;
    if len > MAX_BLOCK {
        return Err(CapError::BlockTooLong { len: len32 });
    }
    let Some(block) = buf.get(..len) else {
        return if eof {
            Err(CapError::BlockCut {
                got: buf.len(),
                len: len32,
            })
        } else {
            Ok(Framed::Need(len))
        };
    };
    let trailer = u32_at(block, len.saturating_sub(4), big);
    if trailer != len32 {
        return Err(CapError::TrailerMismatch {
            len: len32,
            trailer,
        });
    }
    Ok(Framed::Block(Block {
        typ,
        big,
        len,
        body: block.get(8..len.saturating_sub(4)).unwrap_or(&[]),
    }))
}

/// Timestamp units of an interface to nanoseconds (the resolution was checked).
fn units_to_ns(units: u64, tsresol: u8) -> u64 {
    if tsresol & 0x80 == 0 {
        let k = u32::from(tsresol);
        if k <= 9 {
            units.saturating_mul(10u64.pow(9 - k))
        } else {
            units / 10u64.checked_pow(k - 9).unwrap_or(u64::MAX)
        }
    } else {
        let k = u32::from(tsresol & 0x7f);
        let ns = (u128::from(units) * 1_000_000_000) >> k.min(127);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

fn tsresol_ok(r: u8) -> bool {
    if r & 0x80 != 0 {
        r & 0x7f <= 63
    } else {
        r <= 19
    }
}

impl CapFile {
    /// Reads the file header (classic pcap) or the first section header block (pcapng) at
    /// the start of `buf`; `eof`: `buf` holds the whole rest of the file.
    pub fn open(buf: &[u8], eof: bool) -> Result<Opened, CapError> {
        let Some(&[m0, m1, m2, m3]) = buf.get(..4) else {
            return if !eof {
                Ok(Opened::NeedMore { at_least: 4 })
            } else if buf.is_empty() {
                Err(CapError::Empty)
            } else {
                Err(CapError::FileHeaderCut {
                    got: buf.len(),
                    need: 24,
                })
            };
        };
        let magic = [m0, m1, m2, m3];
        let mut file = CapFile {
            kind: Kind::Pcapng,
            big: false,
            ifaces: [Interface::EMPTY; MAX_INTERFACES],
            n_ifaces: 0,
            first_link: None,
            last_ts: Timestamp(0),
        };
        if u32::from_le_bytes(magic) == SHB {
            let block = match frame(buf, eof, false) {
                Ok(Framed::Block(b)) => b,
                Ok(Framed::Need(n)) => return Ok(Opened::NeedMore { at_least: n }),
                Ok(Framed::End) => return Err(CapError::Empty),
                Err(CapError::BlockHeaderCut { got }) => {
                    return Err(CapError::FileHeaderCut { got, need: 28 })
                }
                Err(CapError::BlockCut { got, len }) => {
                    return Err(CapError::FileHeaderCut {
                        got,
                        need: len as usize,
                    })
                }
                Err(e) => return Err(e),
            };
            file.section(&block)?;
            return Ok(Opened::Ready {
                file,
                consumed: block.len,
            });
        }
        let (big, nanos, modified) = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 => (false, false, false),
            0xa1b2_3c4d => (false, true, false),
            0xa1b2_cd34 => (false, false, true),
            _ => match u32::from_be_bytes(magic) {
                0xa1b2_c3d4 => (true, false, false),
                0xa1b2_3c4d => (true, true, false),
                0xa1b2_cd34 => (true, false, true),
                _ => return Err(CapError::UnknownMagic(magic)),
            },
        };
        let Some(h) = buf.get(..24) else {
            return if eof {
                Err(CapError::FileHeaderCut {
                    got: buf.len(),
                    need: 24,
                })
            } else {
                Ok(Opened::NeedMore { at_least: 24 })
            };
        };
        let (major, minor) = (u16_at(h, 4, big), u16_at(h, 6, big));
        if major != 2 {
            return Err(CapError::PcapVersion { major, minor });
        }
        let mut snaplen = u32_at(h, 16, big);
        // The link type is the low 16 bits; the rest holds FCS information.
        let link = LinkType(u32_at(h, 20, big) & 0xffff);
        if modified && link == LinkType::ETHERNET {
            // As libpcap: these were captured with the snap length counted from past the
            // Ethernet header.
            if let Some(s) = snap_limit(snaplen) {
                snaplen = s.saturating_add(14);
            }
        }
        file.big = big;
        file.first_link = Some(link);
        file.kind = Kind::Pcap {
            nanos,
            modified,
            link,
            snaplen,
        };
        Ok(Opened::Ready { file, consumed: 24 })
    }

    /// The file's format (pcapng: with the current section's byte order).
    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Pcap {
                nanos, modified, ..
            } => Format::Pcap {
                big_endian: self.big,
                nanos,
                modified,
            },
            Kind::Pcapng => Format::Pcapng {
                big_endian: self.big,
            },
        }
    }

    /// The file's link type (classic pcap), or that of the first interface described so
    /// far (pcapng; `None` before the first interface description block).
    pub fn link(&self) -> Option<LinkType> {
        self.first_link
    }

    /// Interfaces described in the current pcapng section (0 in classic pcap).
    pub fn interfaces(&self) -> usize {
        self.n_ifaces
    }

    /// Interface `id` of the current pcapng section.
    pub fn interface(&self, id: u32) -> Option<Interface> {
        self.ifaces
            .get(..self.n_ifaces)?
            .get(usize::try_from(id).ok()?)
            .copied()
    }

    /// The next step over `buf`, the bytes after those consumed so far; `eof`: `buf` holds
    /// the whole rest of the file. After a [`Step::Record`] or [`Step::Skip`], call again
    /// with the bytes after `consumed`; after [`Step::NeedMore`], with more bytes (or with
    /// `eof`). An error is final.
    #[inline]
    pub fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> Result<Step<'a>, CapError> {
        match self.kind {
            Kind::Pcap {
                nanos,
                modified,
                link,
                snaplen,
            } => self.next_pcap(buf, eof, nanos, modified, link, snaplen),
            Kind::Pcapng => self.next_pcapng(buf, eof),
        }
    }

    #[inline]
    fn next_pcap<'a>(
        &mut self,
        buf: &'a [u8],
        eof: bool,
        nanos: bool,
        modified: bool,
        link: LinkType,
        snaplen: u32,
    ) -> Result<Step<'a>, CapError> {
        let hl = if modified { 24 } else { 16 };
        if buf.len() < hl {
            return if !eof {
                Ok(Step::NeedMore { at_least: hl })
            } else if buf.is_empty() {
                Ok(Step::End)
            } else {
                Err(CapError::RecordHeaderCut {
                    got: buf.len(),
                    need: hl,
                })
            };
        }
        let big = self.big;
        let sec = u64::from(u32_at(buf, 0, big));
        let frac = u64::from(u32_at(buf, 4, big));
        let caplen = u32_at(buf, 8, big);
        let origlen = u32_at(buf, 12, big);
        if caplen > MAX_CAPLEN {
            return Err(CapError::CaplenTooBig { caplen });
        }
        let total = hl + caplen as usize;
        let Some(data) = buf.get(hl..total) else {
            return if eof {
                Err(CapError::RecordDataCut {
                    got: buf.len() - hl,
                    caplen,
                })
            } else {
                Ok(Step::NeedMore { at_least: total })
            };
        };
        let ns = sec
            .saturating_mul(1_000_000_000)
            .saturating_add(frac.saturating_mul(if nanos { 1 } else { 1000 }));
        self.last_ts = Timestamp(ns);
        Ok(Step::Record {
            consumed: total,
            record: Record {
                ts: Timestamp(ns),
                link,
                interface: 0,
                caplen,
                origlen,
                snaplen,
                data,
            },
        })
    }

    fn next_pcapng<'a>(&mut self, buf: &'a [u8], eof: bool) -> Result<Step<'a>, CapError> {
        let b = match frame(buf, eof, self.big)? {
            Framed::Need(n) => return Ok(Step::NeedMore { at_least: n }),
            Framed::End => return Ok(Step::End),
            Framed::Block(b) => b,
        };
        let big = b.big;
        let body = b.body;
        let (id, ts_units, caplen, origlen, data_at) = match b.typ {
            SHB => {
                self.section(&b)?;
                return Ok(Step::Skip { consumed: b.len });
            }
            IDB => {
                self.describe(&b)?;
                return Ok(Step::Skip { consumed: b.len });
            }
            EPB => (
                u32_at(body, 0, big),
                Some(ts_at(body, 4, big)),
                u32_at(body, 12, big),
                u32_at(body, 16, big),
                20,
            ),
            PB => (
                u32::from(u16_at(body, 0, big)),
                Some(ts_at(body, 4, big)),
                u32_at(body, 12, big),
                u32_at(body, 16, big),
                20,
            ),
            SPB => {
                let origlen = u32_at(body, 0, big);
                let room = u32::try_from(body.len().saturating_sub(4)).unwrap_or(u32::MAX);
                let mut caplen = origlen.min(room);
                if let Some(s) = self.interface(0).and_then(|i| snap_limit(i.snaplen)) {
                    caplen = caplen.min(s);
                }
                (0, None, caplen, origlen, 4)
            }
            _ => return Ok(Step::Skip { consumed: b.len }),
        };
        let Some(iface) = self.interface(id) else {
            return Err(CapError::UnknownInterface {
                id,
                defined: u32::try_from(self.n_ifaces).unwrap_or(u32::MAX),
            });
        };
        if caplen > MAX_CAPLEN {
            return Err(CapError::CaplenTooBig { caplen });
        }
        let room = body.len().saturating_sub(data_at);
        let Some(data) = body.get(data_at..data_at + caplen as usize) else {
            return Err(CapError::CaplenPastBlock {
                caplen,
                room: u32::try_from(room).unwrap_or(u32::MAX),
            });
        };
        let ts = match ts_units {
            Some(u) => {
                let ns = units_to_ns(u, iface.tsresol);
                let off = iface.tsoffset.unsigned_abs().saturating_mul(1_000_000_000);
                Timestamp(if iface.tsoffset >= 0 {
                    ns.saturating_add(off)
                } else {
                    ns.saturating_sub(off)
                })
            }
            None => self.last_ts,
        };
        self.last_ts = ts;
        Ok(Step::Record {
            consumed: b.len,
            record: Record {
                ts,
                link: iface.link,
                interface: id,
                caplen,
                origlen,
                snaplen: iface.snaplen,
                data,
            },
        })
    }

    /// A section header block: its byte order, a version this reader knows, no interfaces.
    fn section(&mut self, b: &Block<'_>) -> Result<(), CapError> {
        let major = u16_at(b.body, 4, b.big);
        let minor = u16_at(b.body, 6, b.big);
        if major != 1 {
            return Err(CapError::PcapngVersion { major, minor });
        }
        self.big = b.big;
        self.n_ifaces = 0;
        Ok(())
    }

    /// An interface description block: link type, snap length, `if_tsresol`, `if_tsoffset`.
    fn describe(&mut self, b: &Block<'_>) -> Result<(), CapError> {
        let big = b.big;
        let body = b.body;
        let mut iface = Interface {
            link: LinkType(u32::from(u16_at(body, 0, big))),
            snaplen: u32_at(body, 4, big),
            ..Interface::EMPTY
        };
        // Options: code, length, value padded to 4 bytes; end at code 0 or at the first
        // one that does not fit (as tshark, a malformed option list ends the options).
        let mut at = 8;
        while let Some(opt) = body.get(at..at + 4) {
            let code = u16_at(opt, 0, big);
            let len = usize::from(u16_at(opt, 2, big));
            let Some(value) = body.get(at + 4..at + 4 + len) else {
                break;
            };
            match code {
                0 => break,
                9 => {
                    if let Some(&r) = value.first() {
                        if !tsresol_ok(r) {
                            return Err(CapError::TsResolution(r));
                        }
                        iface.tsresol = r;
                    }
                }
                14 if len >= 8 => iface.tsoffset = u64_at(value, 0, big) as i64,
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        let Some(slot) = self.ifaces.get_mut(self.n_ifaces) else {
            return Err(CapError::TooManyInterfaces);
        };
        *slot = iface;
        self.n_ifaces += 1;
        if self.first_link.is_none() {
            self.first_link = Some(iface.link);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A classic pcap file.
    pub(crate) fn pcap(
        big: bool,
        magic: u32,
        link: u32,
        snaplen: u32,
        recs: &[(u32, u32, u32, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let mut v = Vec::new();
        w32(&mut v, magic);
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, snaplen);
        w32(&mut v, link);
        for &(sec, frac, orig, data) in recs {
            w32(&mut v, sec);
            w32(&mut v, frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, orig);
            if magic == 0xa1b2_cd34 {
                v.extend_from_slice(&[1, 0, 0, 0, 8, 0, 0, 0]);
            }
            v.extend_from_slice(data);
        }
        v
    }

    /// pcapng blocks in one byte order.
    pub(crate) struct Ng {
        pub big: bool,
        pub v: Vec<u8>,
    }

    impl Ng {
        pub fn new(big: bool) -> Ng {
            let mut n = Ng { big, v: Vec::new() };
            n.shb(big);
            n
        }
        fn b32(&self, x: u32) -> [u8; 4] {
            if self.big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        fn b16(&self, x: u16) -> [u8; 2] {
            if self.big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        pub fn block(&mut self, typ: u32, body: &[u8]) -> &mut Ng {
            let mut body = body.to_vec();
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let len = (12 + body.len()) as u32;
            let t = self.b32(typ);
            let l = self.b32(len);
            self.v.extend_from_slice(&t);
            self.v.extend_from_slice(&l);
            self.v.extend_from_slice(&body);
            self.v.extend_from_slice(&l);
            self
        }
        /// A new section (possibly switching the byte order).
        pub fn shb(&mut self, big: bool) -> &mut Ng {
            self.big = big;
            let mut b = self.b32(BYTE_ORDER_MAGIC).to_vec();
            b.extend_from_slice(&self.b16(1));
            b.extend_from_slice(&self.b16(0));
            b.extend_from_slice(&[0xff; 8]);
            self.block(SHB, &b)
        }
        /// An interface; options as (code, value).
        pub fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Ng {
            let mut b = self.b16(link).to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.b32(snaplen));
            for &(code, val) in opts {
                b.extend_from_slice(&self.b16(code));
                b.extend_from_slice(&self.b16(val.len() as u16));
                b.extend_from_slice(val);
                while b.len() % 4 != 0 {
                    b.push(0);
                }
            }
            if !opts.is_empty() {
                b.extend_from_slice(&[0; 4]);
            }
            self.block(IDB, &b)
        }
        pub fn epb(&mut self, iface: u32, ts: u64, orig: u32, data: &[u8]) -> &mut Ng {
            let mut b = self.b32(iface).to_vec();
            b.extend_from_slice(&self.b32((ts >> 32) as u32));
            b.extend_from_slice(&self.b32(ts as u32));
            b.extend_from_slice(&self.b32(data.len() as u32));
            b.extend_from_slice(&self.b32(orig));
            b.extend_from_slice(data);
            self.block(EPB, &b)
        }
        pub fn pb(&mut self, iface: u16, ts: u64, data: &[u8]) -> &mut Ng {
            let mut b = self.b16(iface).to_vec();
            b.extend_from_slice(&self.b16(0));
            b.extend_from_slice(&self.b32((ts >> 32) as u32));
            b.extend_from_slice(&self.b32(ts as u32));
            b.extend_from_slice(&self.b32(data.len() as u32));
            b.extend_from_slice(&self.b32(data.len() as u32));
            b.extend_from_slice(data);
            self.block(PB, &b)
        }
        pub fn spb(&mut self, orig: u32, data: &[u8]) -> &mut Ng {
            let mut b = self.b32(orig).to_vec();
            b.extend_from_slice(data);
            self.block(SPB, &b)
        }
    }

    /// A record as owned values, for comparisons.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Rec {
        pub ts: u64,
        pub link: u32,
        pub interface: u32,
        pub caplen: u32,
        pub origlen: u32,
        pub snaplen: u32,
        pub data: Vec<u8>,
    }

    /// Every record of a file given whole, and how it ended.
    pub(crate) fn read_all(file: &[u8]) -> (Vec<Rec>, Result<(), CapError>) {
        read_chunked(file, &[usize::MAX])
    }

    /// Every record of a file handed over in chunks of the given sizes (cycled; 0 counts as
    /// 1), as a reader with a growing buffer would: more bytes only on `NeedMore`.
    pub(crate) fn read_chunked(file: &[u8], chunks: &[usize]) -> (Vec<Rec>, Result<(), CapError>) {
        let mut recs = Vec::new();
        let mut have = 0usize; // bytes of the file available
        let mut k = 0;
        let mut more = |have: &mut usize| {
            let c = chunks[k % chunks.len()].max(1);
            k += 1;
            *have = have.saturating_add(c).min(file.len());
        };
        more(&mut have);
        let mut pos;
        let mut f = loop {
            let eof = have == file.len();
            match CapFile::open(&file[..have], eof) {
                Ok(Opened::Ready { file, consumed }) => {
                    pos = consumed;
                    break file;
                }
                Ok(Opened::NeedMore { at_least }) => {
                    assert!(!eof && at_least > have, "{at_least} {have}");
                    more(&mut have);
                }
                Err(e) => return (recs, Err(e)),
            }
        };
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 1_000_000, "no progress");
            let eof = have == file.len();
            let buf = &file[pos..have];
            match f.next(buf, eof) {
                Ok(Step::Record { consumed, record }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    assert_eq!(record.data.len(), record.caplen as usize);
                    recs.push(Rec {
                        ts: record.ts.0,
                        link: record.link.0,
                        interface: record.interface,
                        caplen: record.caplen,
                        origlen: record.origlen,
                        snaplen: record.snaplen,
                        data: record.data.to_vec(),
                    });
                    pos += consumed;
                }
                Ok(Step::Skip { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    pos += consumed;
                }
                Ok(Step::NeedMore { at_least }) => {
                    assert!(!eof, "NeedMore at eof");
                    assert!(at_least > buf.len() && at_least <= MAX_HELD);
                    more(&mut have);
                }
                Ok(Step::End) => {
                    assert!(eof && buf.is_empty());
                    return (recs, Ok(()));
                }
                Err(e) => return (recs, Err(e)),
            }
        }
    }

    const US: u32 = 0xa1b2_c3d4;
    const NS: u32 = 0xa1b2_3c4d;
    const MOD: u32 = 0xa1b2_cd34;

    #[test]
    fn classic_pcap_each_magic_and_byte_order() {
        for big in [false, true] {
            for (magic, mult) in [(US, 1000u64), (NS, 1), (MOD, 1000)] {
                let f = pcap(
                    big,
                    magic,
                    1,
                    65535,
                    &[(10, 20, 60, &[1, 2, 3]), (11, 999_999, 5, &[4; 5])],
                );
                let (recs, end) = read_all(&f);
                assert_eq!(end, Ok(()), "{big} {magic:x}");
                assert_eq!(recs.len(), 2);
                assert_eq!(recs[0].ts, 10_000_000_000 + 20 * mult);
                assert_eq!(recs[0].data, [1, 2, 3]);
                assert_eq!(recs[0].origlen, 60);
                assert_eq!(recs[0].link, 1);
                assert_eq!(recs[1].ts, 11_000_000_000 + 999_999 * mult);
                assert_eq!(recs[1].data, [4; 5]);
                let Ok(Opened::Ready { file, consumed }) = CapFile::open(&f, true) else {
                    panic!()
                };
                assert_eq!(consumed, 24);
                assert_eq!(
                    file.format(),
                    Format::Pcap {
                        big_endian: big,
                        nanos: magic == NS,
                        modified: magic == MOD
                    }
                );
                assert_eq!(file.link(), Some(LinkType::ETHERNET));
            }
        }
    }

    #[test]
    fn classic_link_type_keeps_the_low_16_bits() {
        // FCS-length bits above the link type (LT_FCS_LENGTH_PRESENT).
        let f = pcap(false, US, 0x1400_0001, 0, &[(1, 0, 3, &[1, 2, 3])]);
        assert_eq!(read_all(&f).0[0].link, 1);
    }

    #[test]
    fn caplen_above_origlen_keeps_every_captured_byte() {
        let f = pcap(false, US, 1, 0, &[(1, 0, 2, &[1, 2, 3, 4])]);
        let (r, end) = read_all(&f);
        assert_eq!(end, Ok(()));
        assert_eq!(
            (r[0].caplen, r[0].origlen, &r[0].data[..]),
            (4, 2, &[1, 2, 3, 4][..])
        );
    }

    #[test]
    fn records_longer_than_the_snaplen_are_given_whole_and_flagged() {
        let data = [7u8; 100];
        for (snap, over) in [
            (64u32, true),
            (100, false),
            (0, false),
            (1 << 31, false),
            (u32::MAX, false),
        ] {
            let f = pcap(false, US, 1, snap, &[(1, 0, 100, &data)]);
            let mut buf = &f[..];
            let Ok(Opened::Ready { mut file, consumed }) = CapFile::open(buf, true) else {
                panic!()
            };
            buf = &buf[consumed..];
            let Ok(Step::Record { record, .. }) = file.next(buf, true) else {
                panic!()
            };
            assert_eq!(record.data, &data[..], "snaplen {snap}");
            assert_eq!(record.exceeds_snaplen(), over, "snaplen {snap}");
        }
        // Modified pcap on Ethernet: the snap length counts from past the Ethernet header.
        let f = pcap(false, MOD, 1, 64, &[(1, 0, 78, &[0; 78])]);
        let (r, _) = read_all(&f);
        assert_eq!(r[0].snaplen, 78);
    }

    #[test]
    fn classic_errors() {
        assert_eq!(read_all(&[]).1, Err(CapError::Empty));
        assert_eq!(
            read_all(&[0, 1, 2, 3, 4, 5]).1,
            Err(CapError::UnknownMagic([0, 1, 2, 3]))
        );
        assert_eq!(
            read_all(&[0xd4, 0xc3]).1,
            Err(CapError::FileHeaderCut { got: 2, need: 24 })
        );
        let good = pcap(false, US, 1, 0, &[(1, 0, 4, &[1, 2, 3, 4])]);
        assert_eq!(
            read_all(&good[..20]).1,
            Err(CapError::FileHeaderCut { got: 20, need: 24 })
        );
        let mut v1 = good.clone();
        v1[4] = 1;
        assert_eq!(
            read_all(&v1).1,
            Err(CapError::PcapVersion { major: 1, minor: 4 })
        );
        assert_eq!(
            read_all(&good[..24 + 7]).1,
            Err(CapError::RecordHeaderCut { got: 7, need: 16 })
        );
        assert_eq!(
            read_all(&good[..24 + 16 + 1]).1,
            Err(CapError::RecordDataCut { got: 1, caplen: 4 })
        );
        let m = pcap(false, MOD, 1, 0, &[(1, 0, 4, &[1, 2, 3, 4])]);
        assert_eq!(
            read_all(&m[..24 + 20]).1,
            Err(CapError::RecordHeaderCut { got: 20, need: 24 })
        );
        let mut big = good.clone();
        big[24 + 8..24 + 12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        assert_eq!(
            read_all(&big).1,
            Err(CapError::CaplenTooBig {
                caplen: MAX_CAPLEN + 1
            })
        );
        // The largest captured length is fine.
        let max = pcap(
            false,
            US,
            1,
            0,
            &[(1, 0, MAX_CAPLEN, &vec![9; MAX_CAPLEN as usize])],
        );
        assert_eq!(read_all(&max).0.len(), 1);
    }

    #[test]
    fn pcapng_both_byte_orders_and_packet_blocks() {
        for big in [false, true] {
            let mut n = Ng::new(big);
            n.idb(1, 0, &[])
                .epb(0, 1_000_000, 99, &[1, 2, 3])
                .block(0x0000_0005, &[1, 2, 3, 4]) // interface statistics: skipped
                .pb(0, 2_000_000, &[4, 5])
                .spb(3, &[6, 7, 8, 0]);
            let (r, end) = read_all(&n.v);
            assert_eq!(end, Ok(()), "big {big}");
            assert_eq!(r.len(), 3);
            assert_eq!(
                (r[0].ts, r[0].origlen, &r[0].data[..]),
                (1_000_000_000, 99, &[1, 2, 3][..])
            );
            assert_eq!((r[1].ts, &r[1].data[..]), (2_000_000_000, &[4, 5][..]));
            // A simple packet block: no timestamp (the last one), caplen from origlen.
            assert_eq!(
                (r[2].ts, r[2].caplen, &r[2].data[..]),
                (2_000_000_000, 3, &[6, 7, 8][..])
            );
            let Ok(Opened::Ready { file, consumed }) = CapFile::open(&n.v, true) else {
                panic!()
            };
            assert_eq!(consumed, 28);
            assert_eq!(file.format(), Format::Pcapng { big_endian: big });
            assert_eq!(file.link(), None);
        }
    }

    #[test]
    fn simple_packet_block_is_cut_at_the_snaplen_and_the_block() {
        let mut n = Ng::new(false);
        n.idb(1, 4, &[]).spb(100, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let r = read_all(&n.v).0;
        assert_eq!(
            (r[0].caplen, r[0].origlen, &r[0].data[..]),
            (4, 100, &[1, 2, 3, 4][..])
        );
        assert!(!Record {
            data: &[],
            ..rec0()
        }
        .exceeds_snaplen());
        let mut n = Ng::new(false);
        n.idb(1, 0, &[]).spb(100, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(read_all(&n.v).0[0].caplen, 8);
        // No interface: an error.
        let mut n = Ng::new(false);
        n.spb(1, &[1]);
        assert_eq!(
            read_all(&n.v).1,
            Err(CapError::UnknownInterface { id: 0, defined: 0 })
        );
    }

    fn rec0() -> Record<'static> {
        Record {
            ts: Timestamp(0),
            link: LinkType(1),
            interface: 0,
            caplen: 4,
            origlen: 4,
            snaplen: 4,
            data: &[],
        }
    }

    #[test]
    fn pcapng_mixed_link_types_and_sections() {
        let mut n = Ng::new(false);
        n.idb(1, 0, &[])
            .idb(101, 0, &[])
            .epb(1, 5, 1, &[0x45])
            .epb(0, 6, 1, &[0xff])
            // A new section in the other byte order forgets the interfaces.
            .shb(true)
            .idb(276, 0, &[])
            .epb(0, 7, 1, &[1]);
        let (r, end) = read_all(&n.v);
        assert_eq!(end, Ok(()));
        let links: Vec<_> = r.iter().map(|r| (r.interface, r.link)).collect();
        assert_eq!(links, [(1, 101), (0, 1), (0, 276)]);
        // Interface 1 is gone in the new section.
        n.epb(1, 8, 1, &[1]);
        assert_eq!(
            read_all(&n.v).1,
            Err(CapError::UnknownInterface { id: 1, defined: 1 })
        );
    }

    #[test]
    fn pcapng_timestamp_resolution_and_offset() {
        // (interface options, timestamp units, nanoseconds)
        type Case<'a> = (&'a [(u16, &'a [u8])], u64, u64);
        let cases: &[Case] = &[
            (&[], 1_500_000, 1_500_000_000),
            (&[(9, &[6])], 1_500_000, 1_500_000_000),
            (&[(9, &[9])], 1_500_000_123, 1_500_000_123),
            (&[(9, &[3])], 1_500, 1_500_000_000),
            (&[(9, &[0])], 2, 2_000_000_000),
            (&[(9, &[12])], 1_500_000_123_456, 1_500_000_123),
            (&[(9, &[19])], 10_000_000_000_000_000_000, 1_000_000_000),
            (&[(9, &[0x80 | 10])], 3 * 1024 + 512, 3_500_000_000),
            (&[(9, &[0x80 | 30])], 1 << 30, 1_000_000_000),
            (&[(9, &[0x80])], 4, 4_000_000_000),
            (&[(14, &100i64.to_le_bytes())], 1_000_000, 101_000_000_000),
            (&[(14, &(-1i64).to_le_bytes())], 3_000_000, 2_000_000_000),
            // A negative offset before the epoch stops at 0.
            (&[(14, &(-10i64).to_le_bytes())], 3_000_000, 0),
            // Resolution and offset together, another option between them.
            (
                &[(9, &[9]), (2, b"eth0"), (14, &5i64.to_le_bytes())],
                7,
                5_000_000_007,
            ),
        ];
        for &(opts, units, want) in cases {
            let mut n = Ng::new(false);
            n.idb(1, 0, opts).epb(0, units, 1, &[1]);
            let (r, end) = read_all(&n.v);
            assert_eq!(end, Ok(()), "{opts:?}");
            assert_eq!(r[0].ts, want, "{opts:?} {units}");
        }
        // Big-endian offset.
        let mut n = Ng::new(true);
        n.idb(1, 0, &[(14, &100i64.to_be_bytes())])
            .epb(0, 1_000_000, 1, &[1]);
        assert_eq!(read_all(&n.v).0[0].ts, 101_000_000_000);
        // Huge values saturate.
        let mut n = Ng::new(false);
        n.idb(1, 0, &[(9, &[0])]).epb(0, u64::MAX, 1, &[1]);
        assert_eq!(read_all(&n.v).0[0].ts, u64::MAX);
        for bad in [20u8, 0x80 | 64, 0xff] {
            let mut n = Ng::new(false);
            n.idb(1, 0, &[(9, &[bad])]);
            assert_eq!(read_all(&n.v).1, Err(CapError::TsResolution(bad)));
        }
    }

    #[test]
    fn pcapng_interface_options_that_do_not_fit_end_the_options() {
        // Link type 1, snap length 0, then an option claiming 200 bytes: the options end
        // there and the interface is still described (default resolution).
        let mut n = Ng::new(false);
        n.block(IDB, &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 200, 0, 9, 0, 0, 0]);
        n.epb(0, 1_000_000, 1, &[1]);
        let (r, end) = read_all(&n.v);
        assert_eq!(end, Ok(()));
        assert_eq!(r[0].ts, 1_000_000_000);
        // An option of length 0 with a code that wants a value: ignored.
        let mut n = Ng::new(false);
        n.block(IDB, &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 14, 0, 0, 0]);
        n.epb(0, 1_000_000, 1, &[1]);
        assert_eq!(read_all(&n.v).0[0].ts, 1_000_000_000);
    }

    #[test]
    fn pcapng_interface_table_is_bounded() {
        let mut n = Ng::new(false);
        for _ in 0..MAX_INTERFACES {
            n.idb(1, 0, &[]);
        }
        n.epb(MAX_INTERFACES as u32 - 1, 0, 1, &[1]);
        assert_eq!(read_all(&n.v).1, Ok(()));
        n.idb(1, 0, &[]);
        assert_eq!(read_all(&n.v).1, Err(CapError::TooManyInterfaces));
        // A new section starts the count again.
        n.v.truncate(n.v.len() - 20);
        n.shb(false).idb(1, 0, &[]);
        assert_eq!(read_all(&n.v).1, Ok(()));
    }

    #[test]
    fn pcapng_errors() {
        let mut n = Ng::new(false);
        n.idb(1, 0, &[]).epb(0, 1, 3, &[1, 2, 3]);
        let good = n.v.clone();
        let idb_end = 28 + 20;
        let epb_len = good.len() - idb_end;
        // Cut inside the section header: a file header error.
        assert_eq!(
            read_all(&good[..10]).1,
            Err(CapError::FileHeaderCut { got: 10, need: 28 })
        );
        assert_eq!(
            read_all(&good[..20]).1,
            Err(CapError::FileHeaderCut { got: 20, need: 28 })
        );
        assert_eq!(
            read_all(&good[..idb_end + 5]).1,
            Err(CapError::BlockHeaderCut { got: 5 })
        );
        assert_eq!(
            read_all(&good[..good.len() - 1]).1,
            Err(CapError::BlockCut {
                got: epb_len - 1,
                len: epb_len as u32
            })
        );
        let set32 = |at: usize, x: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&x.to_le_bytes());
            b
        };
        assert_eq!(
            read_all(&set32(8, 0x1234_5678)).1,
            Err(CapError::ByteOrderMagic([0x78, 0x56, 0x34, 0x12]))
        );
        let mut v2 = good.clone();
        v2[12] = 2;
        assert_eq!(
            read_all(&v2).1,
            Err(CapError::PcapngVersion { major: 2, minor: 0 })
        );
        assert_eq!(
            read_all(&set32(idb_end + 4, 46)).1,
            Err(CapError::BlockLengthUnaligned { len: 46 })
        );
        assert_eq!(
            read_all(&set32(idb_end + 4, 28)).1,
            Err(CapError::BlockTooShort {
                block_type: 6,
                len: 28,
                min: 32
            })
        );
        assert_eq!(
            read_all(&set32(idb_end + 4, 8)).1,
            Err(CapError::BlockTooShort {
                block_type: 6,
                len: 8,
                min: 32
            })
        );
        assert_eq!(
            read_all(&set32(idb_end + 4, MAX_BLOCK as u32 + 4)).1,
            Err(CapError::BlockTooLong {
                len: MAX_BLOCK as u32 + 4
            })
        );
        assert_eq!(
            read_all(&set32(good.len() - 4, 8)).1,
            Err(CapError::TrailerMismatch {
                len: epb_len as u32,
                trailer: 8
            })
        );
        // EPB fields: interface, then captured length.
        assert_eq!(
            read_all(&set32(idb_end + 8, 3)).1,
            Err(CapError::UnknownInterface { id: 3, defined: 1 })
        );
        assert_eq!(
            read_all(&set32(idb_end + 20, 5)).1,
            Err(CapError::CaplenPastBlock { caplen: 5, room: 4 })
        );
        assert_eq!(
            read_all(&set32(idb_end + 20, MAX_CAPLEN + 1)).1,
            Err(CapError::CaplenTooBig {
                caplen: MAX_CAPLEN + 1
            })
        );
        // Errors say what they are.
        let mut s = std::string::String::new();
        use core::fmt::Write;
        write!(s, "{}", CapError::RecordDataCut { got: 3, caplen: 9 }).unwrap();
        assert_eq!(
            s,
            "truncated capture: the record announces 9 captured bytes, the file has 3"
        );
    }

    #[test]
    fn the_largest_block_fits_the_held_size() {
        let mut n = Ng::new(false);
        n.idb(1, 0, &[]);
        let data = vec![5u8; MAX_CAPLEN as usize];
        n.epb(0, 0, MAX_CAPLEN, &data);
        // Pad with options up to the largest block.
        let last = n.v.len();
        let epb_start = last - (32 + MAX_CAPLEN as usize);
        let extra = MAX_BLOCK - (32 + MAX_CAPLEN as usize);
        let mut blk = n.v[epb_start..last - 4].to_vec();
        blk.extend(core::iter::repeat(0).take(extra));
        blk.extend_from_slice(&(MAX_BLOCK as u32).to_le_bytes());
        blk[4..8].copy_from_slice(&(MAX_BLOCK as u32).to_le_bytes());
        n.v.truncate(epb_start);
        n.v.extend_from_slice(&blk);
        let (r, end) = read_all(&n.v);
        assert_eq!(end, Ok(()));
        assert_eq!(r[0].data, data);
        let (r2, end2) = read_chunked(&n.v, &[4096]);
        assert_eq!((r2, end2), (r, end));
    }

    #[test]
    fn chunked_reads_give_the_same_records() {
        let mut n = Ng::new(true);
        n.idb(1, 0, &[(9, &[9])])
            .epb(0, 5, 3, &[1, 2, 3])
            .shb(false)
            .idb(101, 0, &[]);
        for i in 0..20u8 {
            n.epb(0, u64::from(i), 40, &vec![i; usize::from(i) * 7]);
        }
        let p = pcap(
            true,
            NS,
            1,
            0,
            &[(1, 2, 3, &[1, 2, 3]), (4, 5, 6, &[9; 300])],
        );
        for f in [&n.v, &p] {
            let whole = read_all(f);
            assert_eq!(whole.1, Ok(()));
            for c in [1usize, 2, 3, 7, 13, 100] {
                assert_eq!(read_chunked(f, &[c]), whole, "chunks of {c}");
            }
            for cut in 0..f.len() {
                assert_eq!(read_chunked(&f[..cut], &[5, 1, 33]), read_all(&f[..cut]));
            }
        }
    }
}
