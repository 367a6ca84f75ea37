//! [`SpoolStorage`] over raw NOR flash (`embedded-storage`'s [`NorFlash`]).
//!
//! A segment is one or more erase sectors; the writer's block (its write unit) is a multiple
//! of the flash's `WRITE_SIZE`, so every program is aligned and lands on erased bytes.

use embedded_storage::nor_flash::NorFlash;

use super::SpoolStorage;

/// Bytes read through the bounce buffer when the flash's `READ_SIZE` is above 1.
const BOUNCE: usize = 64;

/// Why a flash region cannot hold a spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NorConfigError {
    /// `base` or `len` not a multiple of the erase size, or outside the flash.
    Region,
    /// `block_size` not a multiple of the write size, or the segment not a multiple of it.
    BlockSize,
    /// Fewer than two segments fit.
    TooSmall,
    /// A `READ_SIZE` above 64 (not supported by the bounce buffer).
    ReadSize,
}

/// A flash error, or an access outside the spool region (which the writer never makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NorSpoolError<E> {
    /// The flash failed.
    Flash(E),
    /// An access outside the spool region.
    OutOfRange,
}

/// A spool on the region `[base, base + len)` of a NOR flash.
#[derive(Debug)]
pub struct NorSpool<F> {
    flash: F,
    base: u32,
    segment_size: u32,
    segment_count: u32,
    block_size: u32,
}

impl<F: NorFlash> NorSpool<F> {
    /// `sectors_per_segment` erase sectors make a segment (the unit the ring drops; bigger
    /// segments waste less on headers and repeated FlowOpens, smaller ones drop less at a
    /// time). `block_size` is the write unit (a multiple of `WRITE_SIZE`; 256..4096 is
    /// typical: a page program each).
    pub fn new(
        flash: F,
        base: u32,
        len: u32,
        sectors_per_segment: u32,
        block_size: u32,
    ) -> Result<Self, NorConfigError> {
        let erase = u32::try_from(F::ERASE_SIZE).map_err(|_| NorConfigError::Region)?;
        let write = u32::try_from(F::WRITE_SIZE).map_err(|_| NorConfigError::BlockSize)?;
        if F::READ_SIZE == 0 || F::READ_SIZE > BOUNCE {
            return Err(NorConfigError::ReadSize);
        }
        if erase == 0 || base % erase != 0 || len % erase != 0 {
            return Err(NorConfigError::Region);
        }
        let end = base.checked_add(len).ok_or(NorConfigError::Region)?;
        if end as usize > flash.capacity() {
            return Err(NorConfigError::Region);
        }
        let segment_size = erase
            .checked_mul(sectors_per_segment)
            .filter(|&s| s > 0)
            .ok_or(NorConfigError::TooSmall)?;
        if write == 0
            || block_size == 0
            || block_size % write != 0
            || segment_size % block_size != 0
        {
            return Err(NorConfigError::BlockSize);
        }
        let segment_count = len / segment_size;
        if segment_count < 2 {
            return Err(NorConfigError::TooSmall);
        }
        Ok(NorSpool {
            flash,
            base,
            segment_size,
            segment_count,
            block_size,
        })
    }

    /// The flash, to read it.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, to use it for something else between spool operations.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The flash address of spool offset `offset..offset + len`, if inside the region.
    fn addr(&self, offset: u64, len: usize) -> Result<u32, NorSpoolError<F::Error>> {
        let size = u64::from(self.segment_size) * u64::from(self.segment_count);
        let end = offset
            .checked_add(len as u64)
            .ok_or(NorSpoolError::OutOfRange)?;
        if end > size {
            return Err(NorSpoolError::OutOfRange);
        }
        u32::try_from(u64::from(self.base) + offset).map_err(|_| NorSpoolError::OutOfRange)
    }
}

impl<F: NorFlash> SpoolStorage for NorSpool<F> {
    type Error = NorSpoolError<F::Error>;

    fn segment_size(&self) -> u32 {
        self.segment_size
    }

    fn segment_count(&self) -> u32 {
        self.segment_count
    }

    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn erase(&mut self, segment: u32) -> Result<(), Self::Error> {
        if segment >= self.segment_count {
            return Err(NorSpoolError::OutOfRange);
        }
        let from = self.base + segment * self.segment_size;
        self.flash
            .erase(from, from + self.segment_size)
            .map_err(NorSpoolError::Flash)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        let at = self.addr(offset, data.len())?;
        self.flash.write(at, data).map_err(NorSpoolError::Flash)
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let mut at = self.addr(offset, buf.len())?;
        let rs = F::READ_SIZE as u32;
        if rs <= 1 || (at % rs == 0 && buf.len() % F::READ_SIZE == 0) {
            return self.flash.read(at, buf).map_err(NorSpoolError::Flash);
        }
        // Unaligned: aligned chunks through a small buffer. The region is erase aligned, so
        // rounding out to READ_SIZE never leaves it.
        let mut bounce = [0u8; BOUNCE];
        let chunk = (BOUNCE as u32 / rs) * rs;
        let mut out = buf;
        while !out.is_empty() {
            let start = at - at % rs;
            let skip = (at - start) as usize;
            let want = (skip + out.len()).min(chunk as usize);
            let len = want.div_ceil(F::READ_SIZE) * F::READ_SIZE;
            let b = bounce.get_mut(..len).ok_or(NorSpoolError::OutOfRange)?;
            self.flash.read(start, b).map_err(NorSpoolError::Flash)?;
            let n = (want - skip).min(out.len());
            let (head, rest) = out.split_at_mut(n);
            head.copy_from_slice(b.get(skip..skip + n).ok_or(NorSpoolError::OutOfRange)?);
            out = rest;
            at += n as u32;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
