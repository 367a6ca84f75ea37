//! tcpflow-core on a Cortex-M4, no operating system, no allocator.
//!
//! For each capture embedded in the image (classic pcap files from `testdata/`):
//! 1. parse its records and feed the frames to `tcpflow_core::Engine`, whose storage is
//!    static and sized by `common::CAPS`;
//! 2. the engine's events go both to a digest sink and to a `SpoolWriter` on a RAM-backed
//!    NOR flash (`MockFlash` behind `NorSpool`: NOR rules, 4 KiB sectors, 16 KiB segments);
//! 3. the spool is read back with `SpoolReader` into a second digest sink;
//! 4. both sets of per-flow digests (FNV-1a 64 of each direction's bytes at their offsets,
//!    lengths, gap bytes, close reason, times) must equal what the build script computed by
//!    running the same core on the host (`$OUT_DIR/expected.rs`).
//!
//! Logs go out as defmt frames over semihosting (stdout); the exit status (semihosting
//! SYS_EXIT) is 0 only when every capture matched.
#![no_std]
#![no_main]

use core::mem::{size_of, MaybeUninit};

// cortex-m provides the critical section (single core) that the defmt logger takes.
use cortex_m as _;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use defmt::{error, info, warn};
use defmt_semihosting as _;
use static_cell::{ConstStaticCell, StaticCell};

use tcpflow_core::spool::mock::MockFlash;
use tcpflow_core::spool::nor::NorSpool;
use tcpflow_core::spool::{
    self, Drops, ReplayFlow, SpoolFlow, SpoolReader, SpoolStorage, SpoolWriter, MAX_RECORD,
};
use tcpflow_core::Block;
use tcpflow_core::FragSlot;
use tcpflow_core::{CloseReason, Dir, Engine, FlowInfo, GapReason, Sink, Storage};
use tcpflow_core::{FlowRecord, HotSlot};

mod common;
mod expected {
    include!(concat!(env!("OUT_DIR"), "/expected.rs"));
}

use common::{Capture, DigestSink, FlowDigest, CAPS, FRAG_ARENA, INDEX_LEN};
use expected::{CAPTURES, MAX_FLOWS};

/// The NOR flash the spool lives on: 1 MiB of 4 KiB sectors, byte reads, 4-byte programs
/// (a typical SPI NOR part). In RAM here; on a board, the external flash chip.
const SECTOR: usize = 4096;
const SPOOL_BYTES: usize = 1 << 20;
const SECTORS_PER_SEGMENT: u32 = 4;
/// The writer's program unit: one 256-byte page.
const BLOCK: u32 = 256;

type Flash = MockFlash<'static, 1, 4, SECTOR>;
type Nor = NorSpool<Flash>;
type Digests = DigestSink<MAX_FLOWS, { CAPS.flows }>;

// The engine's storage: initialised in place at start-up (their empty values are not all
// zeros, and as initialised statics they would also take their size again in flash).
static FLOWS: StaticCell<[FlowRecord; CAPS.flows]> = StaticCell::new();
static HOT: StaticCell<[HotSlot; CAPS.hot_len()]> = StaticCell::new();
static BLOCKS: StaticCell<[Block; CAPS.blocks]> = StaticCell::new();
static FRAG_SLOTS: StaticCell<[FragSlot; CAPS.frag_slots]> = StaticCell::new();
static INDEX: ConstStaticCell<[u32; INDEX_LEN]> = ConstStaticCell::new([0; INDEX_LEN]);
static FRAG_ARENA_MEM: ConstStaticCell<[u8; FRAG_ARENA]> = ConstStaticCell::new([0; FRAG_ARENA]);

// The spool's: writer and reader buffers, their per-slot tables, and the flash itself.
static WRITE_BUF: ConstStaticCell<[u8; MAX_RECORD]> = ConstStaticCell::new([0; MAX_RECORD]);
static READ_BUF: ConstStaticCell<[u8; MAX_RECORD]> = ConstStaticCell::new([0; MAX_RECORD]);
static WRITER_FLOWS: StaticCell<[SpoolFlow; CAPS.flows]> = StaticCell::new();
static REPLAY_FLOWS: StaticCell<[ReplayFlow; CAPS.flows]> = StaticCell::new();
static FLASH_MEM: ConstStaticCell<[u8; SPOOL_BYTES]> = ConstStaticCell::new([0; SPOOL_BYTES]);
static FLASH_ERASES: ConstStaticCell<[u32; SPOOL_BYTES / SECTOR]> =
    ConstStaticCell::new([0; SPOOL_BYTES / SECTOR]);

static DIRECT: ConstStaticCell<Digests> = ConstStaticCell::new(DigestSink::new());
static REPLAYED: ConstStaticCell<Digests> = ConstStaticCell::new(DigestSink::new());

/// Fills a static array with `v` in place, without building it on the stack first.
// `StaticCell` hands out its `&'static mut` once (a second call panics).
#[allow(clippy::mut_from_ref)]
fn fill<T: Copy, const N: usize>(cell: &'static StaticCell<[T; N]>, v: T) -> &'static mut [T; N] {
    let m: &'static mut MaybeUninit<[T; N]> = cell.uninit();
    let p = m.as_mut_ptr().cast::<T>();
    for i in 0..N {
        // SAFETY: i < N: inside the array, and each element is written once before any read.
        unsafe { p.add(i).write(v) };
    }
    // SAFETY: every element was written just above.
    unsafe { m.assume_init_mut() }
}

struct Mem {
    flows: &'static mut [FlowRecord; CAPS.flows],
    hot: &'static mut [HotSlot; CAPS.hot_len()],
    index: &'static mut [u32; INDEX_LEN],
    blocks: &'static mut [Block; CAPS.blocks],
    frag_slots: &'static mut [FragSlot; CAPS.frag_slots],
    frag_arena: &'static mut [u8; FRAG_ARENA],
    write_buf: &'static mut [u8; MAX_RECORD],
    read_buf: &'static mut [u8; MAX_RECORD],
    writer_flows: &'static mut [SpoolFlow; CAPS.flows],
    replay_flows: &'static mut [ReplayFlow; CAPS.flows],
    nor: Nor,
    direct: &'static mut Digests,
    replayed: &'static mut Digests,
}

/// Both sinks get every event.
struct Tee<'a, A, B> {
    a: &'a mut A,
    b: &'a mut B,
}

impl<A: Sink, B: Sink> Sink for Tee<'_, A, B> {
    fn open(&mut self, flow: &FlowInfo) {
        self.a.open(flow);
        self.b.open(flow);
    }
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.a.data(flow, dir, offset, data);
        self.b.data(flow, dir, offset, data);
    }
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        self.a.gap(flow, dir, offset, len, reason);
        self.b.gap(flow, dir, offset, len, reason);
    }
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let a = self.a.redelivered(flow, dir, offset, data);
        let b = self.b.redelivered(flow, dir, offset, data);
        a || b
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        self.a.close(flow, reason);
        self.b.close(flow, reason);
    }
}

#[entry]
fn main() -> ! {
    let flash = Flash::new(FLASH_MEM.take(), FLASH_ERASES.take());
    let nor = match NorSpool::new(flash, 0, SPOOL_BYTES as u32, SECTORS_PER_SEGMENT, BLOCK) {
        Ok(n) => n,
        Err(e) => {
            error!("NOR spool geometry refused: {}", e);
            semihosting::process::exit(1)
        }
    };
    let mut mem = Mem {
        flows: fill(&FLOWS, FlowRecord::EMPTY),
        hot: fill(&HOT, HotSlot::EMPTY),
        index: INDEX.take(),
        blocks: fill(&BLOCKS, Block::EMPTY),
        frag_slots: fill(&FRAG_SLOTS, FragSlot::EMPTY),
        frag_arena: FRAG_ARENA_MEM.take(),
        write_buf: WRITE_BUF.take(),
        read_buf: READ_BUF.take(),
        writer_flows: fill(&WRITER_FLOWS, SpoolFlow::EMPTY),
        replay_flows: fill(&REPLAY_FLOWS, ReplayFlow::EMPTY),
        nor,
        direct: DIRECT.take(),
        replayed: REPLAYED.take(),
    };
    info!(
        "tcpflow-core on Cortex-M4: {} flows, {} pool blocks, {} x {} B fragment slots = {} B of engine storage (Capacities::memory_bytes) + {} B Engine struct",
        CAPS.flows,
        CAPS.blocks,
        CAPS.frag_slots,
        CAPS.frag_slot_bytes,
        CAPS.memory_bytes(),
        size_of::<Engine<'static>>()
    );
    info!(
        "spool: {} KiB NOR flash, {} segments of {} B, {} B blocks",
        SPOOL_BYTES / 1024,
        mem.nor.segment_count(),
        mem.nor.segment_size(),
        mem.nor.block_size()
    );

    let (mut good, mut flows, mut bytes) = (0usize, 0usize, 0u64);
    for c in CAPTURES {
        match run(c, &mut mem) {
            Ok(b) => {
                good += 1;
                flows += c.flows.len();
                bytes += b;
            }
            Err(()) => error!("{=str}: FAILED", c.name),
        }
    }
    let (stack, static_ram) = ram_use();
    info!(
        "RAM: {} B static (.data + .bss, of which {} B is the mock NOR flash), peak stack {} B",
        static_ram,
        SPOOL_BYTES + SPOOL_BYTES / SECTOR * 4,
        stack
    );
    if good == CAPTURES.len() {
        info!(
            "all {} captures match the host: {} flows, {} stream bytes through the spool",
            good, flows, bytes
        );
        semihosting::process::exit(0)
    } else {
        error!(
            "{} of {} captures failed",
            CAPTURES.len() - good,
            CAPTURES.len()
        );
        semihosting::process::exit(1)
    }
}

/// One capture through engine, spool and replay. Ok(stream bytes) when every digest matches.
fn run(c: &Capture, m: &mut Mem) -> Result<u64, ()> {
    m.direct.reset();
    m.replayed.reset();
    if let Err(e) = spool::format(&mut m.nor) {
        error!("{=str}: flash erase failed: {}", c.name, e);
        return Err(());
    }
    let mut engine = Engine::new(
        Storage {
            flows: &mut m.flows[..],
            hot: &mut m.hot[..],
            index: &mut m.index[..],
            blocks: &mut m.blocks[..],
            frag_slots: &mut m.frag_slots[..],
            frag_arena: &mut m.frag_arena[..],
        },
        common::config(),
    )
    .map_err(|e| error!("{=str}: engine storage refused: {}", c.name, e))?;
    // The writer borrows the flash until the spool is synced; the reader takes it after.
    let (fed, synced, ws) = {
        let mut writer =
            match SpoolWriter::new(&mut m.nor, &mut m.write_buf[..], &mut m.writer_flows[..]) {
                Ok(w) => w,
                Err(e) => {
                    error!("{=str}: spool writer: {}", c.name, e);
                    return Err(());
                }
            };
        let fed = common::feed(
            &mut engine,
            c.pcap,
            &mut Tee {
                a: &mut *m.direct,
                b: &mut writer,
            },
        );
        (fed, writer.sync(), writer.stats())
    };
    let mut ok = true;
    match fed {
        Ok(f) if f == c.fed => {}
        Ok(f) => {
            error!("{=str}: fed {} but the host fed {}", c.name, f, c.fed);
            ok = false;
        }
        Err(e) => {
            error!("{=str}: pcap: {}", c.name, e);
            return Err(());
        }
    }
    if !synced || ws.lost_records != 0 || ws.storage_errors != 0 || ws.drops != Drops::default() {
        error!("{=str}: spool writer lost data: {}", c.name, ws);
        ok = false;
    }

    let mut reader = match SpoolReader::new(&mut m.nor) {
        Ok(r) => r,
        Err(e) => {
            error!("{=str}: spool reader: {}", c.name, e);
            return Err(());
        }
    };
    let sum = match reader.replay(
        &mut *m.replayed,
        &mut m.replay_flows[..],
        &mut m.read_buf[..],
    ) {
        Ok(s) => s,
        Err(e) => {
            error!("{=str}: replay: {}", c.name, e);
            return Err(());
        }
    };
    if sum.orphan_records != 0 || sum.untracked_records != 0 || sum.flows_unclosed != 0 {
        error!("{=str}: replay: {}", c.name, sum);
        ok = false;
    }

    ok &= check(c, "engine", m.direct);
    ok &= check(c, "spool", m.replayed);
    let bytes: u64 = c
        .flows
        .iter()
        .flat_map(|f| f.dirs.iter())
        .map(|d| d.data_bytes)
        .sum();
    if ok {
        info!(
            "{=str}: {} frames, {} flows, {} stream bytes; spool {} records, {} B programmed, {} segments; digests match{=str}",
            c.name,
            c.fed.frames,
            c.flows.len(),
            bytes,
            ws.records,
            ws.bytes_programmed,
            sum.segments,
            if c.matches_testdata { ", = testdata expected/" } else { "" }
        );
        Ok(bytes)
    } else {
        Err(())
    }
}

/// The digests `got` (from the engine or the spool) against the host's.
fn check(c: &Capture, what: &str, got: &mut Digests) -> bool {
    if got.overflow != 0 || got.unknown != 0 || got.disorder != 0 {
        error!(
            "{=str} ({=str}): {} flows over the table, {} events of unknown flows, {} out of order",
            c.name, what, got.overflow, got.unknown, got.disorder
        );
        return false;
    }
    let got = got.sorted();
    for (i, want) in c.flows.iter().enumerate() {
        let have: Option<&FlowDigest> = got.get(i);
        if have != Some(want) {
            error!("{=str} ({=str}): flow {}: host {}", c.name, what, i, want);
            match have {
                Some(h) => error!("{=str} ({=str}): flow {}: here {}", c.name, what, i, h),
                None => error!("{=str} ({=str}): flow {}: missing here", c.name, what, i),
            }
            return false;
        }
        defmt::debug!(
            "{=str} ({=str}): key {=u64:#x} c{} {}+{} B fnv {=u64:#x} {=u64:#x} ok",
            c.name,
            what,
            want.key,
            want.conn_index,
            want.dirs[0].len,
            want.dirs[1].len,
            want.dirs[0].fnv,
            want.dirs[1].fnv
        );
    }
    if got.len() != c.flows.len() {
        warn!(
            "{=str} ({=str}): {} flows here, the host had {}",
            c.name,
            what,
            got.len(),
            c.flows.len()
        );
        return false;
    }
    true
}

/// (Peak stack bytes, static RAM bytes): the stack was painted at reset (cortex-m-rt's
/// `paint-stack`); the deepest word no longer holding the paint is the high-water mark.
fn ram_use() -> (usize, usize) {
    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
        static __sdata: u32;
    }
    // Only the addresses of the linker's symbols are taken.
    let (top, bottom, ram) = (
        core::ptr::addr_of!(_stack_start) as usize,
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(__sdata) as usize,
    );
    let mut p = bottom;
    // SAFETY: [bottom, top) is the stack region, word aligned, in RAM.
    while p < top
        && unsafe { core::ptr::read_volatile(p as *const u32) } == cortex_m_rt::STACK_PAINT_VALUE
    {
        p += 4;
    }
    (top - p, bottom - ram)
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    error!("HardFault at pc {=u32:#x}", ef.pc());
    semihosting::process::exit(2)
}
