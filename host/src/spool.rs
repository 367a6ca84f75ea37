//! The flash spool on the host: the core's spool format ([`tcpflow_core::spool`]) over a file
//! or a block device (the output that spools the engine's events is
//! [`crate::output::spool`]).
//!
//! ## Geometry
//! - Blocks of [`BLOCK_SIZE`] (4 KiB): every write is whole blocks at a block-aligned offset
//!   (`pwrite`), so a flash device programs whole pages, and a partial block is written
//!   only by a sync (the core closes it with a Pad record).
//! - Segments (the unit the ring drops, and erases) of 1 MiB for spools of 16 MiB and more;
//!   a smaller spool gets at least 16 segments, each a power of two of at least 16 KiB (the
//!   core's advice: smaller segments waste more on the per-segment flow descriptions). The
//!   spool is `--spool-size` rounded down to whole segments.
//! - An existing spool keeps its segment size (found by reading the segment headers, which
//!   name it); it may be grown, never shrunk (that would drop data without counting it).
//!
//! ## Storage operations
//! - `erase` does nothing: the core's records carry their segment's sequence number in their
//!   checksum, so bytes left from an older lap never validate. (A zero fill would double the
//!   writes, a discard would give the blocks back to a file system that may then be full.)
//! - `write` is `pwrite` of whole blocks, `read` is `pread` (bytes past the end of a short
//!   file read as zeros), `sync` is `fdatasync`. The writer's storage reads ahead: when the
//!   ring comes round, the writer reads the records of the segment it is about to reuse, a
//!   header and a body at a time (to count what it drops), and one `pread` each made that
//!   most of `--spool`'s time on a fast disk. Small reads there come from a 64 KiB window
//!   read at once, which the writer's own writes keep current (nothing else writes the file:
//!   it is locked); a read away from the window (a segment header) takes just its blocks.
//!   Zeros this run made (a new spool, or what a continued one was grown by) are not read
//!   back until written. Readers of a spool being written (`--ship`) do not read ahead.
//! - An existing spool's segment size comes from its first segment header, in one pass over
//!   the headers; only when that header is damaged is every size tried (a header every
//!   16 KiB: on flash, the whole spool read before the first packet).
//! - The file is opened with `O_CREAT`, locked (`flock`, one writer at a time), checked
//!   against the file system's free space and sized in full, so a disk that is too small
//!   fails at start, with a message, not hours later. Then it is preallocated
//!   (`fallocate`) in steps: for [`ALLOCATE_NOW`] before the first packet, the rest on a
//!   thread beside the run. A file system that allocates by zeroing memory (tmpfs: about
//!   0.35 s a GiB here, and a router's `/tmp` is one) would otherwise hold up the first
//!   packet for all of it. The writes go on meanwhile: `fallocate` keeps bytes already
//!   written, and a write where the thread has not been yet allocates its own blocks. The
//!   run waits for the thread at its end, so the file is whole for the next run; a failure
//!   there (a quota, or a disk filled since the check) is a warning, and a write that then
//!   finds no room is the storage error it is today. With one processor (`crate::cores`)
//!   and in the field builds (feature `alloc-thread`, left out for their size budget) it
//!   is all allocated before the first packet.
//!
//! ## Errors during a run
//! A storage error (disk gone, file size limit) is fatal, like a write error of the file
//! writer: it is reported once, the run stops reading, nothing more is written to the
//! spool (what is there stays readable up to the last whole record) and the exit status is
//! nonzero.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tcpflow_core::spool::format::header_segment_size;
use tcpflow_core::spool::{SpoolReader, SpoolStats, SpoolStorage, SEGMENT_HEADER_LEN};

use crate::input::io_message;
use crate::report::Group;

/// The write unit.
pub const BLOCK_SIZE: u32 = 4096;
/// Segment sizes: the largest, the smallest, and how many segments a small spool gets at
/// least.
pub const MAX_SEGMENT: u32 = 1 << 20;
pub const MIN_SEGMENT: u32 = 16 << 10;
pub const MIN_SEGMENTS: u64 = 16;
/// The smallest spool: two segments (the ring needs one to drop and one to keep).
pub const MIN_SPOOL: u64 = 2 * MIN_SEGMENT as u64;

/// A size for messages: `256 MiB`, `16 KiB`, `1000 bytes`.
pub fn fmt_size(b: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (u, name) in UNITS {
        if b >= u {
            return if b % u == 0 {
                format!("{} {name}", b / u)
            } else {
                format!("{} {name}", crate::timefmt::fixed(b, u, 1))
            };
        }
    }
    format!("{b} bytes")
}

/// The segment size of a new spool of `size` bytes.
pub fn segment_size_for(size: u64) -> u32 {
    let per = size / MIN_SEGMENTS;
    let pow = if per == 0 {
        0
    } else {
        1u64 << (63 - per.leading_zeros())
    };
    pow.clamp(u64::from(MIN_SEGMENT), u64::from(MAX_SEGMENT)) as u32
}

/// A storage operation that failed.
#[derive(Debug)]
pub struct StorageError {
    pub op: &'static str,
    pub offset: u64,
    pub err: io::Error,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.err.raw_os_error() {
            Some(libc::EFBIG) => " (the file size limit, ulimit -f, was reached)",
            Some(libc::ENOSPC) => " (the disk is full)",
            Some(libc::EIO) => " (the device failed or was removed)",
            _ => "",
        };
        write!(
            f,
            "{} at offset {}: {}{hint}",
            self.op,
            self.offset,
            io_message(&self.err)
        )
    }
}

/// A spool in a file or on a block device.
#[derive(Debug)]
pub struct FileSpool {
    file: File,
    path: PathBuf,
    segment_size: u32,
    segment_count: u32,
    /// The CPU's CRC-32C when it has one (see [`crate::crc`]).
    crc: crate::crc::CrcFn,
    /// Bytes of the spool the file holds when it ends inside it (a truncated copy): reads
    /// past the end give zeros.
    short: Option<u64>,
    /// The writer's read-ahead window (see the module docs); None for readers.
    ahead: Option<ReadAhead>,
    /// The thread preallocating the rest of the file (see the module docs).
    #[cfg(feature = "alloc-thread")]
    allocating: Option<Allocating>,
}

/// Bytes of the spool read at once for small reads of the writer.
const READ_AHEAD: usize = 64 << 10;

/// A window of the spool file: `buf[..len]` are the bytes at `at`.
#[derive(Debug)]
struct ReadAhead {
    at: u64,
    len: usize,
    buf: Vec<u8>,
    /// The file's bytes from here on are zeros this run made and has not written over (a
    /// new spool, or the part a continued one was grown by): reads there need no `pread`.
    /// The writer reads every segment's header at start and each segment before it reuses
    /// it, so a new spool of 640 MiB was 640 reads of 64 KiB of zeros before the first
    /// packet.
    zeros_from: u64,
    /// Windows read (for the tests).
    fills: u64,
}

impl FileSpool {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length when it is shorter than the spool (truncated), else `None`.
    pub fn short(&self) -> Option<u64> {
        self.short
    }

    /// Bytes the spool spans.
    pub fn size(&self) -> u64 {
        u64::from(self.segment_size) * u64::from(self.segment_count)
    }

    fn check(&self, op: &'static str, offset: u64, len: usize) -> Result<(), StorageError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(StorageError {
                op,
                offset,
                err: io::Error::new(io::ErrorKind::InvalidInput, "outside the spool"),
            }),
        }
    }
}

impl SpoolStorage for FileSpool {
    type Error = StorageError;

    fn segment_size(&self) -> u32 {
        self.segment_size
    }

    fn segment_count(&self) -> u32 {
        self.segment_count
    }

    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn erase(&mut self, segment: u32) -> Result<(), StorageError> {
        // Stale bytes never validate (see the module docs): nothing to do.
        if segment >= self.segment_count {
            return Err(StorageError {
                op: "erasing",
                offset: u64::from(segment) * u64::from(self.segment_size),
                err: io::Error::new(io::ErrorKind::InvalidInput, "no such segment"),
            });
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.check("writing", offset, data.len())?;
        if let Some(a) = &mut self.ahead {
            // Zeros below a write's start stay known only up to the write's end: simpler,
            // and the writer's writes move forward through the file anyway.
            a.zeros_from = a.zeros_from.max(offset + data.len() as u64);
            // The window is the file's bytes: what is written over it is copied in.
            let (lo, hi) = (
                offset.max(a.at),
                (offset + data.len() as u64).min(a.at + a.len as u64),
            );
            if lo < hi {
                let (w, d) = ((lo - a.at) as usize, (lo - offset) as usize);
                let n = (hi - lo) as usize;
                a.buf[w..w + n].copy_from_slice(&data[d..d + n]);
            }
        }
        self.file
            .write_all_at(data, offset)
            .map_err(|err| StorageError {
                op: "writing",
                offset,
                err,
            })
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.check("reading", offset, buf.len())?;
        let Some(mut a) = self.ahead.take() else {
            return self.read_at(offset, buf);
        };
        let r = self.read_ahead(&mut a, offset, buf);
        self.ahead = Some(a);
        r
    }

    fn crc32c_update(&self, crc: u32, bytes: &[u8]) -> u32 {
        (self.crc)(crc, bytes)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        // May outlast the stop watchdog's bound on a slow card; that is not a stuck run.
        let _busy = crate::watchdog::busy();
        self.file.sync_data().map_err(|err| StorageError {
            op: "syncing",
            offset: 0,
            err,
        })
    }
}

impl FileSpool {
    /// `read` through the window `a`: from it when it holds the bytes, else it is moved to
    /// them first (reads as large as the window go straight to the file).
    fn read_ahead(
        &mut self,
        a: &mut ReadAhead,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let end = offset + buf.len() as u64;
        if offset >= a.zeros_from {
            buf.fill(0);
            return Ok(());
        }
        let block = u64::from(BLOCK_SIZE);
        let at = offset - offset % block;
        if end - at > READ_AHEAD as u64 {
            // Larger than a window from its block: straight from the file.
            return self.read_at(offset, buf);
        }
        if offset >= a.at && end <= a.at + a.len as u64 {
            let from = (offset - a.at) as usize;
            buf.copy_from_slice(&a.buf[from..from + buf.len()]);
            return Ok(());
        }
        // A read that starts in the window or right after it goes on in order (a segment's
        // records): what the window still holds is taken from it, and a whole window is read
        // from where it ends, so no block is read twice. Elsewhere (a segment's header, which
        // the writer reads for every segment of a spool it continues) just its blocks: a
        // window each was 64 KiB read from flash for 64 bytes used.
        let win_end = a.at + a.len as u64;
        let (start, want, kept) = if a.len > 0 && offset >= a.at && offset <= win_end {
            let kept = (win_end - offset) as usize;
            let from = (offset - a.at) as usize;
            buf[..kept].copy_from_slice(&a.buf[from..a.len]);
            (win_end, READ_AHEAD as u64, kept)
        } else {
            (at, (end - at).div_ceil(block) * block, 0)
        };
        let len = (self.size() - start).min(want) as usize;
        a.buf.resize(READ_AHEAD, 0);
        a.len = 0;
        let mut window = std::mem::take(&mut a.buf);
        let r = self.read_at(start, &mut window[..len]);
        a.buf = window;
        r?;
        a.at = start;
        a.len = len;
        a.fills += 1;
        let from = (offset + kept as u64 - start) as usize;
        let rest = &mut buf[kept..];
        rest.copy_from_slice(&a.buf[from..from + rest.len()]);
        Ok(())
    }

    /// `pread`s `buf` at `offset`; bytes past the end of a short file are zeros.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => {
                    // Past the end of a short file: never written.
                    buf[n..].fill(0);
                    break;
                }
                Ok(r) => n += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    return Err(StorageError {
                        op: "reading",
                        offset: offset + n as u64,
                        err,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Length of a file or block device.
fn length(file: &mut File, md: &std::fs::Metadata) -> io::Result<u64> {
    if md.file_type().is_block_device() {
        file.seek(SeekFrom::End(0))
    } else {
        Ok(md.len())
    }
}

/// Valid segment headers of a spool of `count` segments of `seg` bytes in `file`.
fn valid_segments(file: &File, path: &Path, seg: u32, count: u64) -> Result<u32, String> {
    if count < 2 {
        return Ok(0);
    }
    let f = file
        .try_clone()
        .map_err(|e| format!("{}: {}", path.display(), io_message(&e)))?;
    let storage = FileSpool {
        file: f,
        path: path.to_path_buf(),
        segment_size: seg,
        segment_count: count.min(u64::from(u32::MAX)) as u32,
        crc: crate::crc::best(),
        short: None,
        ahead: None,
        #[cfg(feature = "alloc-thread")]
        allocating: None,
    };
    let mut r = SpoolReader::new(storage)
        .map_err(|e| format!("{}: spool geometry refused: {e:?}", path.display()))?;
    let info = r
        .info()
        .map_err(|e| format!("cannot read spool {}: {e}", path.display()))?;
    Ok(info.segments)
}

/// The segment size of the spool in `file` (`len` bytes), found from its segment headers
/// (each names its segment size, so a wrong guess finds none), and how many valid segments
/// it has. `None` when no segment header validates.
fn probe(file: &File, path: &Path, len: u64) -> Result<Option<(u32, u32)>, String> {
    // A segment the file ends inside counts (a truncated spool): its headers still name
    // the segment size, and reads past the end give zeros.
    let count = |seg: u32| {
        len.div_ceil(u64::from(seg))
            .max(if len > 0 { 2 } else { 0 })
    };
    // The first segment's header names the size: one pass over the headers. Trying every
    // size reads a header every 16 KiB, which on flash reads the whole spool before the
    // first packet. Only a spool whose first header is damaged needs that.
    let mut first = [0u8; SEGMENT_HEADER_LEN as usize];
    let named = match file.read_exact_at(&mut first, 0) {
        Ok(()) => header_segment_size(&first),
        Err(_) => None,
    };
    if let Some(seg) =
        named.filter(|s| (MIN_SEGMENT..=MAX_SEGMENT).contains(s) && s.is_power_of_two())
    {
        let found = valid_segments(file, path, seg, count(seg))?;
        if found > 0 {
            return Ok(Some((seg, found)));
        }
    }
    let mut best: Option<(u32, u32)> = None;
    let mut seg = MIN_SEGMENT;
    while seg <= MAX_SEGMENT {
        let found = valid_segments(file, path, seg, count(seg))?;
        if found > 0 && best.map_or(true, |(_, n)| found >= n) {
            best = Some((seg, found));
        }
        seg *= 2;
    }
    Ok(best)
}

/// Whether the first `len` bytes of `file` are all zeros (a spool allocated but never
/// written, a zeroed device): nothing there to lose. Holes are skipped (`SEEK_DATA`); the
/// read stops at the first byte that is not zero, so only a file that is zeros is read
/// through.
fn all_zeros(file: &File, len: u64) -> io::Result<bool> {
    let mut b = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        // SAFETY: lseek on a descriptor we own; it only moves the file offset.
        let data = unsafe {
            libc::lseek(
                file.as_raw_fd(),
                libc::off_t::try_from(at).unwrap_or(libc::off_t::MAX),
                libc::SEEK_DATA,
            )
        };
        if data < 0 {
            // ENXIO: no data from here on (holes read as zeros). Anything else: no
            // SEEK_DATA (a block device, an old file system): read it all.
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                return Ok(true);
            }
        } else {
            at = at.max(data as u64);
        }
        if at >= len {
            break;
        }
        let n = ((len - at) as usize).min(b.len());
        let got = match file.read_at(&mut b[..n], at) {
            Ok(0) => return Ok(true),
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if b[..got].iter().any(|&x| x != 0) {
            return Ok(false);
        }
        at += got as u64;
    }
    Ok(true)
}

/// What opening a spool for writing found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// The file was created by this run.
    pub created: bool,
    /// Valid segments already there (a spool continued).
    pub existing_segments: u32,
    /// The file was grown from this many bytes.
    pub grown_from: Option<u64>,
    /// Something to tell the user (preallocation not supported, ...).
    pub warning: Option<String>,
}

/// Opens (creating if needed), locks and preallocates the spool at `path` for a writer;
/// `size` is `--spool-size`. Every refusal is a one-line message naming the path.
///
/// What is at `path` already decides: nothing, or zeros, makes a new spool; a spool is
/// continued; anything else (a disk image, a file system, notes) is refused and left as it
/// is, unless `init` (`--spool-init`) says to make a spool of it.
pub fn open_for_writing(path: &Path, size: u64, init: bool) -> Result<(FileSpool, Opened), String> {
    let name = path.display();
    if size < MIN_SPOOL {
        return Err(format!(
            "--spool-size {} is too small: a spool needs at least two segments of {} ({})",
            fmt_size(size),
            fmt_size(u64::from(MIN_SEGMENT)),
            fmt_size(MIN_SPOOL)
        ));
    }
    let mut opened = Opened::default();
    let mut oo = OpenOptions::new();
    // A link is not followed: where the spool goes may be writable by someone else, who
    // would point it at another file (give the file or the device itself).
    oo.read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    let link_msg = |e: io::Error| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            "it is a symbolic link (not followed; give the file or device itself)".to_string()
        } else {
            io_message(&e)
        }
    };
    let mut file = match oo.clone().create_new(true).open(path) {
        Ok(f) => {
            opened.created = true;
            f
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => oo
            .open(path)
            .map_err(|e| format!("cannot open spool {name}: {}", link_msg(e)))?,
        Err(e) => return Err(format!("cannot create spool {name}: {}", link_msg(e))),
    };
    // From here on, a failure removes a file this run created.
    let fail = |msg: String, created: bool| -> String {
        if created {
            let _ = std::fs::remove_file(path);
        }
        msg
    };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        let msg = if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!("spool {name} is in use by another tcpflow (it is locked)")
        } else {
            format!("cannot lock spool {name}: {}", io_message(&e))
        };
        return Err(msg);
    }
    let md = file.metadata().map_err(|e| {
        fail(
            format!("cannot open spool {name}: {}", io_message(&e)),
            opened.created,
        )
    })?;
    let ft = md.file_type();
    let device = ft.is_block_device();
    if !ft.is_file() && !device {
        return Err(format!("spool {name} is neither a file nor a block device"));
    }
    if ft.is_file() && md.nlink() > 1 {
        // Another name for someone else's file: not ours to write.
        return Err(format!(
            "spool {name} has other hard links; refused (it could be another file)"
        ));
    }
    let len = length(&mut file, &md)
        .map_err(|e| format!("cannot open spool {name}: {}", io_message(&e)))?;

    // What is there already: a spool (continued, same segment size), nothing, or something
    // else (refused: it is not ours to overwrite).
    let mut segment_size = segment_size_for(size);
    // Nothing but zeros in the file (see `ReadAhead::zeros_from`).
    let mut blank = len == 0;
    if len > 0 {
        match probe(&file, path, len)? {
            Some((seg, found)) => {
                segment_size = seg;
                opened.existing_segments = found;
                // Segments past the new size would be lost without being counted, and the
                // writer would not know where the spool ends: refused.
                let kept = valid_segments(&file, path, seg, size / u64::from(seg))?;
                if kept < found {
                    let old = len / u64::from(seg) * u64::from(seg);
                    return Err(format!(
                        "{name} holds a spool of {}; --spool-size {} would cut it: export it (tcpflow --spool-export {name} -o DIR) and remove it first, or give --spool-size {}",
                        fmt_size(old),
                        fmt_size(size),
                        fmt_size(old)
                    ));
                }
            }
            None if init => {}
            None => {
                // The bytes the spool would overwrite or cut: a file's whole length (cut to
                // the spool's), a device's first --spool-size.
                let at_stake = if device { len.min(size) } else { len };
                blank = all_zeros(&file, at_stake)
                    .map_err(|e| format!("cannot read spool {name}: {}", io_message(&e)))?;
                if !blank {
                    let what = if device { "device" } else { "file" };
                    return Err(format!(
                        "{name} exists and does not hold a spool ({}, not all zeros): left as it is; to make a spool of this {what} (its contents are lost) add --spool-init, or choose another path",
                        fmt_size(len)
                    ));
                }
            }
        }
    }
    let count = (size / u64::from(segment_size)).min(u64::from(u32::MAX));
    if count < 2 {
        return Err(fail(
            format!(
                "--spool-size {} is too small for the spool's {} segments: at least {}",
                fmt_size(size),
                fmt_size(u64::from(segment_size)),
                fmt_size(2 * u64::from(segment_size))
            ),
            opened.created,
        ));
    }
    let extent = count * u64::from(segment_size);
    // A new file, or one found all zeros, holds nothing but zeros; a file grown by this run
    // (set_len) zeros past its old length; a device, nothing known (only its first
    // --spool-size was checked, and nothing here sizes it).
    let zeros_from = match (device, blank) {
        (true, _) => u64::MAX,
        (false, true) => 0,
        (false, false) => len,
    };

    #[cfg_attr(not(feature = "alloc-thread"), allow(unused_variables))]
    let allocating = if device {
        if len < extent {
            return Err(format!(
                "spool device {name} holds {}, less than --spool-size {}",
                fmt_size(len),
                fmt_size(size)
            ));
        }
        None
    } else {
        let a = preallocate(&file, path, len, extent, &md, &mut opened)
            .map_err(|m| fail(m, opened.created))?;
        if len > 0 && len < extent && opened.existing_segments > 0 {
            opened.grown_from = Some(len);
        }
        a
    };
    Ok((
        FileSpool {
            file,
            path: path.to_path_buf(),
            segment_size,
            segment_count: count as u32,
            crc: crate::crc::best(),
            short: None,
            ahead: Some(ReadAhead {
                at: 0,
                len: 0,
                buf: Vec::new(),
                zeros_from,
                fills: 0,
            }),
            #[cfg(feature = "alloc-thread")]
            allocating,
        },
        opened,
    ))
}

/// The thread preallocating the rest of a spool file: where and why it stopped short.
#[cfg(feature = "alloc-thread")]
type Allocating = std::thread::JoinHandle<Result<(), (u64, io::Error)>>;
/// None without the feature.
#[cfg(not(feature = "alloc-thread"))]
type Allocating = std::convert::Infallible;

/// How long opening a spool preallocates before it leaves the rest to a thread.
pub const ALLOCATE_NOW: Duration = Duration::from_millis(10);
/// Bytes preallocated by the first call: small enough that a write waits little for the
/// file (tmpfs holds the file's lock through each call). On a disk file system the steps
/// grow (see [`FAST_ALLOCATION`]): 2 GiB on ext4 took 1,024 calls at 2 MiB, now 23.
const ALLOCATE_STEP: u64 = 2 << 20;
/// A step taken in less than this doubles the next one, up to [`MAX_ALLOCATE_STEP`]: tmpfs
/// zeroes 2 MiB in about 0.7 ms here and stays at 2 MiB.
const FAST_ALLOCATION: Duration = Duration::from_micros(200);
const MAX_ALLOCATE_STEP: u64 = 256 << 20;

/// Allocates `extent` bytes for the spool file (now `len` bytes long): checks the free
/// space first (so nothing is half allocated on a disk that is too small), sizes the file,
/// then `fallocate`s for [`ALLOCATE_NOW`] and returns the thread that allocates the rest,
/// if any (see the module docs). A file system that cannot preallocate gets a sparse file
/// and a warning.
fn preallocate(
    file: &File,
    path: &Path,
    len: u64,
    extent: u64,
    md: &std::fs::Metadata,
    opened: &mut Opened,
) -> Result<Option<Allocating>, String> {
    let name = path.display();
    let allocated = md.blocks().saturating_mul(512);
    let needed = extent.saturating_sub(allocated);
    // SAFETY: fstatvfs fills the zeroed struct.
    let avail = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::fstatvfs(file.as_raw_fd(), &mut st) == 0 {
            Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
        } else {
            None
        }
    };
    if let Some(avail) = avail {
        if needed > avail {
            return Err(format!(
                "not enough free space for spool {name}: --spool-size {} needs {} more, the file system has {} free",
                fmt_size(extent),
                fmt_size(needed),
                fmt_size(avail)
            ));
        }
    }
    let refused = |e: &io::Error| {
        let hint = match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => " (not enough free space)",
            Some(libc::EFBIG) => " (over the file size limit, ulimit -f, or the file system's)",
            _ => "",
        };
        format!(
            "cannot allocate {} for spool {name}: {}{hint}",
            fmt_size(extent),
            io_message(e)
        )
    };
    // Sized first: a file size limit refuses it here, and readers of the file (`--ship`)
    // see the whole spool while the thread allocates.
    if len != extent {
        file.set_len(extent).map_err(|e| refused(&e))?;
    }
    // Without the thread (the field builds: host/Cargo.toml), or with no processor for it
    // (crate::cores), all of it is allocated here.
    let until = (cfg!(feature = "alloc-thread") && crate::cores::spare_core())
        .then(|| Instant::now() + ALLOCATE_NOW);
    let at = match allocate(file, 0, extent, until) {
        Ok(at) if at == extent => return Ok(None),
        Ok(at) => at,
        Err((0, e)) if not_supported(&e) => {
            opened.warning = Some(format!(
                "the file system of {name} cannot preallocate; the spool's {} are reserved only as they are written",
                fmt_size(extent)
            ));
            return Ok(None);
        }
        Err((_, e)) => {
            // Give back what the run took: the length (and the blocks past it).
            if len < extent {
                let _ = file.set_len(len);
            }
            return Err(refused(&e));
        }
    };
    #[cfg(feature = "alloc-thread")]
    {
        if let Ok(f) = file.try_clone() {
            if let Ok(t) = std::thread::Builder::new()
                .name("spool-alloc".into())
                .spawn(move || allocate(&f, at, extent, None).map(drop))
            {
                return Ok(Some(t));
            }
        }
        // Without a thread (none to be had) the rest is allocated here, as before.
        allocate(file, at, extent, None)
            .map(|_| None)
            .map_err(|(_, e)| refused(&e))
    }
    #[cfg(not(feature = "alloc-thread"))]
    {
        let _ = at;
        Ok(None)
    }
}

/// Preallocates `at..extent` of the file in steps, until done or `until`; where it stopped,
/// or where and why it failed.
fn allocate(
    file: &File,
    mut at: u64,
    extent: u64,
    until: Option<Instant>,
) -> Result<u64, (u64, io::Error)> {
    let mut step = ALLOCATE_STEP;
    while at < extent {
        let n = (extent - at).min(step);
        let t0 = Instant::now();
        fallocate(file, at, n).map_err(|e| (at, e))?;
        at += n;
        let now = Instant::now();
        // A file system that allocates without zeroing (ext4: microseconds a call) gets
        // larger steps; one that zeroes (tmpfs) keeps them short.
        if now - t0 < FAST_ALLOCATION {
            step = (step * 2).min(MAX_ALLOCATE_STEP);
        }
        if until.is_some_and(|t| now >= t) {
            break;
        }
    }
    Ok(at)
}

/// `fallocate` errors that say the file system cannot preallocate at all.
fn not_supported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EINVAL)
    )
}

impl FileSpool {
    /// Waits for the thread preallocating the file, if any; what it could not reserve, as a
    /// warning.
    #[cfg(feature = "alloc-thread")]
    pub fn finish_allocation(&mut self) -> Option<String> {
        let t = self.allocating.take()?;
        // Zeroing the rest of a large spool in memory may outlast the stop watchdog's bound.
        let _busy = crate::watchdog::busy();
        match t.join() {
            Ok(Ok(())) => None,
            Ok(Err((at, e))) => Some(format!(
                "spool {}: only {} of its {} could be reserved: {}; the rest is taken as it is written",
                self.path.display(),
                fmt_size(at),
                fmt_size(self.size()),
                io_message(&e)
            )),
            Err(_) => Some(format!(
                "spool {}: the thread preallocating it failed",
                self.path.display()
            )),
        }
    }
}

// glibc's 64-bit variant; musl's and OpenHarmony's off_t is 64-bit already.
#[cfg(any(target_env = "musl", target_env = "ohos"))]
use libc::{fallocate as sys_fallocate, off_t as Off};
#[cfg(not(any(target_env = "musl", target_env = "ohos")))]
use libc::{fallocate64 as sys_fallocate, off64_t as Off};

fn fallocate(file: &File, at: u64, len: u64) -> io::Result<()> {
    let big = |_| io::Error::from_raw_os_error(libc::EFBIG);
    let (at, len) = (
        Off::try_from(at).map_err(big)?,
        Off::try_from(len).map_err(big)?,
    );
    // SAFETY: fallocate on a descriptor we own.
    if unsafe { sys_fallocate(file.as_raw_fd(), 0, at, len) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens a spool to read it (`--spool-export`, `--spool-summary`): the segment size from its
/// headers. A blank file is an empty spool; a file with no valid segment and not blank is
/// refused.
pub fn open_for_reading(path: &Path) -> Result<FileSpool, String> {
    let name = path.display();
    let mut file =
        File::open(path).map_err(|e| format!("cannot open spool {name}: {}", io_message(&e)))?;
    let md = file
        .metadata()
        .map_err(|e| format!("cannot open spool {name}: {}", io_message(&e)))?;
    if md.is_dir() {
        return Err(format!("spool {name} is a folder"));
    }
    let len = length(&mut file, &md)
        .map_err(|e| format!("cannot read spool {name}: {}", io_message(&e)))?;
    let segment_size = match probe(&file, path, len)? {
        Some((seg, _)) => seg,
        None => {
            let blank = all_zeros(&file, len.min(u64::from(BLOCK_SIZE)))
                .map_err(|e| format!("cannot read spool {name}: {}", io_message(&e)))?;
            if !blank || len < MIN_SPOOL {
                return Err(format!(
                    "{name} is not a spool (no valid segment header in its {})",
                    fmt_size(len)
                ));
            }
            segment_size_for(len)
        }
    };
    let seg = u64::from(segment_size);
    // A file that ends inside a segment was cut short (the writer keeps whole segments):
    // that segment is read as far as the file goes. A device holds the spool in whole
    // segments at its start; what follows them is not the spool's.
    let whole = len / seg;
    let device = md.file_type().is_block_device();
    let count = if device || len % seg == 0 {
        whole
    } else {
        whole + 1
    };
    let count = count.max(2).min(u64::from(u32::MAX));
    let short = (!device && len < count * seg).then_some(len);
    Ok(FileSpool {
        file,
        path: path.to_path_buf(),
        segment_size,
        segment_count: count as u32,
        crc: crate::crc::best(),
        short,
        ahead: None,
        #[cfg(feature = "alloc-thread")]
        allocating: None,
    })
}

/// The spool's figures for the report and the summary line.
pub fn stats_group(s: &SpoolStats, storage: &FileSpool, lost_after_stop: (u64, u64)) -> Group {
    (
        "spool",
        vec![
            ("size", storage.size()),
            ("segment_size", u64::from(storage.segment_size)),
            ("segments", u64::from(storage.segment_count)),
            ("records", s.records),
            ("payload_bytes", s.payload_bytes),
            ("bytes_programmed", s.bytes_programmed),
            ("segments_erased", s.segments_erased),
            ("syncs", s.syncs),
            ("dropped_flows", s.drops.flows),
            ("dropped_bytes", s.drops.bytes),
            ("dropped_segments", s.drops.segments),
            ("storage_errors", s.storage_errors),
            ("lost_records", s.lost_records + lost_after_stop.0),
            ("lost_bytes", s.lost_bytes + lost_after_stop.1),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes() {
        assert_eq!(segment_size_for(256 << 20), 1 << 20);
        assert_eq!(segment_size_for(16 << 20), 1 << 20);
        assert_eq!(segment_size_for(8 << 20), 512 << 10);
        assert_eq!(segment_size_for(256 << 10), 16 << 10);
        assert_eq!(segment_size_for(300 << 10), 16 << 10);
        assert_eq!(segment_size_for(64 << 10), 16 << 10);
        assert_eq!(segment_size_for(0), 16 << 10);
    }

    /// On tmpfs (pages zeroed as they are allocated) a spool larger than what
    /// [`ALLOCATE_NOW`] covers is allocated by a thread while it is written: every byte
    /// written meanwhile reads back, and when the run ends the whole file is allocated.
    #[test]
    #[cfg(feature = "alloc-thread")]
    fn a_spool_is_allocated_beside_the_writes_and_whole_at_the_end() {
        // finish_allocation marks a storage wait (crate::watchdog).
        let _turn = crate::watchdog::storage_tests_in_turn();
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let dir = shm.join(format!("tcpflow-alloc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.spool");
        let size = 512u64 << 20;
        let (mut w, opened) = open_for_writing(&path, size, false).unwrap();
        assert!(opened.warning.is_none(), "{:?}", opened.warning);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        assert!(
            w.allocating.is_some(),
            "512 MiB of tmpfs allocated within {ALLOCATE_NOW:?}: nothing left for the thread"
        );
        // Writes spread over the spool while the thread allocates (ahead of it, and behind).
        let block = |k: u64| vec![(k % 251) as u8 + 1; BLOCK_SIZE as usize];
        let blocks = size / u64::from(BLOCK_SIZE);
        let at = |k: u64| k * 7919 % blocks * u64::from(BLOCK_SIZE);
        for k in 0..2000 {
            w.write(at(k), &block(k)).unwrap();
        }
        assert_eq!(w.finish_allocation(), None);
        assert!(w.allocating.is_none());
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.len(), size);
        assert!(
            md.blocks() * 512 >= size,
            "{} bytes allocated",
            md.blocks() * 512
        );
        let file = File::open(&path).unwrap();
        let mut b = vec![0u8; BLOCK_SIZE as usize];
        for k in 0..2000 {
            file.read_exact_at(&mut b, at(k)).unwrap();
            assert_eq!(b, block(k), "block {k}");
        }
        // A block never written is zeros.
        file.read_exact_at(&mut b, u64::from(BLOCK_SIZE)).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        drop((w, file));
        // With one processor there is no thread: all of it is allocated before the run.
        std::fs::remove_file(&path).unwrap();
        let p = path.clone();
        let w = crate::cores::test_support::on_one_core(move || {
            open_for_writing(&p, size, false).unwrap().0
        });
        assert!(w.allocating.is_none());
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= size);
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What the thread could not reserve comes back as a warning that says how much it got
    /// and why (here a descriptor that cannot allocate: read-only).
    #[test]
    #[cfg(feature = "alloc-thread")]
    fn what_the_allocating_thread_could_not_reserve_is_a_warning() {
        // finish_allocation marks a storage wait (crate::watchdog).
        let _turn = crate::watchdog::storage_tests_in_turn();
        let dir = std::env::temp_dir().join(format!("tcpflow-alloc-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.spool");
        let (mut w, _) = open_for_writing(&path, 1 << 20, false).unwrap();
        assert!(w.allocating.is_none(), "1 MiB is allocated at once");
        let read_only = File::open(&path).unwrap();
        w.allocating = Some(std::thread::spawn(move || {
            allocate(&read_only, 1 << 20, 2 << 20, None).map(drop)
        }));
        let msg = w.finish_allocation().expect("a warning");
        assert!(
            msg.starts_with(&format!(
                "spool {}: only 1 MiB of its 1 MiB",
                path.display()
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with("; the rest is taken as it is written"),
            "{msg}"
        );
        assert_eq!(w.finish_allocation(), None, "said once");
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_writers_read_ahead_gives_the_files_bytes() {
        let dir = std::env::temp_dir().join(format!("tcpflow-readahead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.spool");
        let (mut w, _) = open_for_writing(&path, 1 << 20, true).unwrap();
        let block = |k: u8| vec![k; BLOCK_SIZE as usize];
        for k in 0..32u8 {
            w.write(u64::from(k) * u64::from(BLOCK_SIZE), &block(k))
                .unwrap();
        }
        let mut reader = open_for_reading(&path).unwrap();
        // Small reads, as the writer's scan makes them, across block and window edges.
        let mut at = 3u64;
        while at < 32 * u64::from(BLOCK_SIZE) - 40 {
            let (mut a, mut b) = ([0u8; 37], [0u8; 37]);
            w.read(at, &mut a).unwrap();
            reader.read(at, &mut b).unwrap();
            assert_eq!(a, b, "at {at}");
            at += 37;
        }
        // The first read takes its block only; those after it, whole windows from where the
        // last one ended.
        let fills = w.ahead.as_ref().unwrap().fills;
        assert!(
            fills <= 3,
            "{fills} windows for 128 KiB read in small pieces"
        );
        // A write over the window is seen by the next read from it.
        let mut a = [0u8; 8];
        w.read(u64::from(BLOCK_SIZE), &mut a).unwrap();
        assert_eq!(a, [1; 8]);
        let fills = w.ahead.as_ref().unwrap().fills;
        w.write(u64::from(BLOCK_SIZE), &block(0xaa)).unwrap();
        w.read(u64::from(BLOCK_SIZE) + 100, &mut a).unwrap();
        assert_eq!(a, [0xaa; 8]);
        assert_eq!(w.ahead.as_ref().unwrap().fills, fills);
        // A large read goes to the file and agrees too, also one that fits a window but
        // not from its block.
        for (at, n) in [(0, READ_AHEAD), (BLOCK_SIZE as u64 - 1, READ_AHEAD - 2)] {
            let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
            w.read(at, &mut a).unwrap();
            reader.read(at, &mut b).unwrap();
            assert_eq!(a, b);
        }
        // A small read away from the window (a segment header) reads its block only.
        let mut a = [0u8; 64];
        w.read(20 * u64::from(BLOCK_SIZE) + 8, &mut a).unwrap();
        assert_eq!(a, [20; 64]);
        let ahead = w.ahead.as_ref().unwrap();
        assert_eq!(
            (ahead.at, ahead.len),
            (20 * u64::from(BLOCK_SIZE), BLOCK_SIZE as usize)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zeros_this_run_made_are_not_read_back() {
        let dir = std::env::temp_dir().join(format!("tcpflow-zeros-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.spool");
        let fills = |w: &FileSpool| w.ahead.as_ref().unwrap().fills;
        let block = |k: u8| vec![k; BLOCK_SIZE as usize];
        let mut a = [0xffu8; 64];
        {
            // A new spool: no read reaches the file until something is written.
            let (mut w, opened) = open_for_writing(&path, 2 << 20, false).unwrap();
            assert!(opened.created);
            for at in [0, 5000, (2 << 20) - 64] {
                w.read(at, &mut a).unwrap();
                assert_eq!(a, [0; 64], "at {at}");
            }
            assert_eq!(fills(&w), 0);
            // Below what is written, the file is read: it has the bytes.
            w.write(8 * u64::from(BLOCK_SIZE), &block(7)).unwrap();
            w.read(8 * u64::from(BLOCK_SIZE) + 10, &mut a).unwrap();
            assert_eq!(a, [7; 64]);
            w.read(100, &mut a).unwrap();
            assert_eq!(a, [0; 64]);
            let n = fills(&w);
            assert!(n > 0);
            w.read(9 * u64::from(BLOCK_SIZE), &mut a).unwrap();
            assert_eq!((a, fills(&w)), ([0; 64], n));
        }
        {
            // Made a spool of (--spool-init) and grown: the old length is read, only the
            // growth is known zero.
            let (mut w, _) = open_for_writing(&path, 4 << 20, true).unwrap();
            w.read(8 * u64::from(BLOCK_SIZE) + 10, &mut a).unwrap();
            assert_eq!(a, [7; 64], "the bytes the file holds");
            let n = fills(&w);
            w.read((2 << 20) + 100, &mut a).unwrap();
            assert_eq!((a, fills(&w)), ([0; 64], n));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(fmt_size(256 << 20), "256 MiB");
        assert_eq!(fmt_size(1536), "1.5 KiB");
        assert_eq!(fmt_size(100), "100 bytes");
    }
}
