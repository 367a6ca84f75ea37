//! A RAM-backed NOR flash for tests and firmware examples (feature `mock`): NOR semantics
//! (program only clears bits, and a byte that is not erased may not be programmed again),
//! erase counts per sector, bytes programmed, and a power cut after N bytes programmed.

use embedded_storage::nor_flash::ReadNorFlash;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind};

/// What the mock refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MockError {
    /// An access not on a write (or erase) boundary.
    NotAligned,
    /// An access past the end of the flash.
    OutOfBounds,
    /// A program over a byte that was not erased (real NOR would AND the bits silently).
    NotErased,
    /// The power was cut (see [`MockFlash::cut_power_after`]).
    PowerCut,
}

impl NorFlashError for MockError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MockError::NotAligned => NorFlashErrorKind::NotAligned,
            MockError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// `READ`, `WRITE` and `ERASE` are the flash's read, write and erase granularity.
#[derive(Debug)]
pub struct MockFlash<'a, const READ: usize, const WRITE: usize, const ERASE: usize> {
    mem: &'a mut [u8],
    erases: &'a mut [u32],
    programmed: u64,
    /// Bytes that may still be programmed before the power goes.
    budget: Option<u64>,
    powered: bool,
}

impl<'a, const READ: usize, const WRITE: usize, const ERASE: usize>
    MockFlash<'a, READ, WRITE, ERASE>
{
    /// A factory-fresh (erased) flash over `mem`, with one erase counter per sector in
    /// `erases`. Its capacity is what both cover, in whole sectors.
    pub fn new(mem: &'a mut [u8], erases: &'a mut [u32]) -> Self {
        mem.fill(0xFF);
        erases.fill(0);
        Self::with_contents(mem, erases)
    }

    /// A flash holding `mem` as it is (an image saved from another run, or planted
    /// garbage), erase counters from `erases`.
    pub fn with_contents(mem: &'a mut [u8], erases: &'a mut [u32]) -> Self {
        let sectors = (mem.len() / ERASE.max(1)).min(erases.len());
        let cap = sectors * ERASE;
        MockFlash {
            mem: &mut mem[..cap],
            erases,
            programmed: 0,
            budget: None,
            powered: true,
        }
    }

    /// Power goes after `n` more bytes are programmed: the write that crosses the limit is
    /// applied up to it (the byte at the cut half programmed) and fails, and every operation
    /// after it fails with [`MockError::PowerCut`] until [`Self::restore_power`].
    pub fn cut_power_after(&mut self, n: u64) {
        self.budget = Some(n);
    }

    /// Power back (the next boot); no cut planned.
    pub fn restore_power(&mut self) {
        self.powered = true;
        self.budget = None;
    }

    /// Whether the flash is powered (false after a simulated power cut).
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Bytes programmed since creation (torn writes count what they applied).
    pub fn bytes_programmed(&self) -> u64 {
        self.programmed
    }

    /// Erases per sector.
    pub fn erase_counts(&self) -> &[u32] {
        self.erases
    }

    /// The raw contents.
    pub fn raw(&self) -> &[u8] {
        self.mem
    }

    /// The raw contents, to plant garbage as a torn erase or a bad cell would.
    pub fn raw_mut(&mut self) -> &mut [u8] {
        self.mem
    }

    fn range(&self, offset: u32, len: usize, align: usize) -> Result<(usize, usize), MockError> {
        let start = offset as usize;
        if align == 0 || start % align != 0 || len % align != 0 {
            return Err(MockError::NotAligned);
        }
        let end = start.checked_add(len).ok_or(MockError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(MockError::OutOfBounds);
        }
        Ok((start, end))
    }
}

impl<const READ: usize, const WRITE: usize, const ERASE: usize> ErrorType
    for MockFlash<'_, READ, WRITE, ERASE>
{
    type Error = MockError;
}

impl<const READ: usize, const WRITE: usize, const ERASE: usize> ReadNorFlash
    for MockFlash<'_, READ, WRITE, ERASE>
{
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        if !self.powered {
            return Err(MockError::PowerCut);
        }
        let (s, e) = self.range(offset, bytes.len(), READ)?;
        bytes.copy_from_slice(&self.mem[s..e]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const READ: usize, const WRITE: usize, const ERASE: usize> NorFlash
    for MockFlash<'_, READ, WRITE, ERASE>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        if !self.powered {
            return Err(MockError::PowerCut);
        }
        if to < from {
            return Err(MockError::OutOfBounds);
        }
        let (s, e) = self.range(from, (to - from) as usize, ERASE)?;
        self.mem[s..e].fill(0xFF);
        for c in &mut self.erases[s / ERASE..e / ERASE] {
            *c += 1;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        if !self.powered {
            return Err(MockError::PowerCut);
        }
        let (s, e) = self.range(offset, bytes.len(), WRITE)?;
        let target = &mut self.mem[s..e];
        if target.iter().any(|&b| b != 0xFF) {
            return Err(MockError::NotErased);
        }
        let n = match self.budget {
            Some(b) => (b.min(bytes.len() as u64)) as usize,
            None => bytes.len(),
        };
        for (t, d) in target.iter_mut().zip(bytes).take(n) {
            *t &= d;
        }
        self.programmed += n as u64;
        if let Some(b) = self.budget.as_mut() {
            *b -= n as u64;
            if *b == 0 {
                self.powered = false;
            }
        }
        if n < bytes.len() {
            // The byte being programmed when the power went: only some of its bits made it.
            target[n] &= bytes[n] | 0x0F;
            return Err(MockError::PowerCut);
        }
        Ok(())
    }
}
