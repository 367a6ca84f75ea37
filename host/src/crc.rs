//! CRC-32C by the CPU's own instruction when it has one (x86-64 with SSE4.2, ARMv8 with the
//! CRC extension), for the spool writer: it checksums every byte it stores, and the core's
//! table-driven CRC was about a quarter of a spooling run's CPU time. The core cannot use the
//! intrinsics (they need `unsafe`, which it forbids), so it asks its storage
//! ([`tcpflow_core::spool::SpoolStorage::crc32c_update`]) and this is the host's answer.
//! Same values as [`tcpflow_core::spool::crc32c_update`] (tested below).

use tcpflow_core::spool::crc32c_update as software;

/// One CRC-32C step on the register value `c` (see [`tcpflow_core::spool::crc32c_update`]).
pub type CrcFn = fn(u32, &[u8]) -> u32;

/// The fastest CRC-32C this CPU runs, chosen once (the spool keeps it).
pub fn best() -> CrcFn {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        return x86::update;
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("crc") {
        return arm::update;
    }
    software
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    use std::sync::OnceLock;

    /// Only handed out by [`super::best`] after SSE4.2 was detected.
    pub fn update(c: u32, bytes: &[u8]) -> u32 {
        // SAFETY: `best` returns this function only when the CPU has SSE4.2.
        unsafe {
            if bytes.len() >= 3 * LANE {
                let (c, rest) = three_streams(c, bytes);
                sse42(c, rest)
            } else {
                // Most records: shorter than a block, one stream.
                sse42(c, bytes)
            }
        }
    }

    /// Bytes of each of the three streams of a block (see [`three_streams`]): a 1,448-byte
    /// record takes three blocks of them.
    const LANE: usize = 128;

    /// One word after another.
    #[target_feature(enable = "sse4.2")]
    fn sse42(c: u32, bytes: &[u8]) -> u32 {
        let mut c = u64::from(c);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            c = _mm_crc32_u64(c, word(w));
        }
        let mut c = c as u32;
        for &b in words.remainder() {
            c = _mm_crc32_u8(c, b);
        }
        c
    }

    /// `crc32` takes 3 cycles and can start every cycle: one stream waits on itself, three
    /// interleaved keep it busy. A block of three lanes A, B, C is checksummed as three
    /// streams (B and C from a zero register) and combined by linearity:
    /// `crc(c, A B C) = shift(shift(crc(c, A)) ^ crc(0, B)) ^ crc(0, C)`, where `shift` is
    /// the effect of LANE zero bytes. Returns the register after the whole blocks of
    /// `bytes`, and the bytes after them.
    #[target_feature(enable = "sse4.2")]
    #[inline(never)]
    fn three_streams(mut c: u32, bytes: &[u8]) -> (u32, &[u8]) {
        let t = shift_table();
        let mut blocks = bytes.chunks_exact(3 * LANE);
        for blk in &mut blocks {
            let (a, rest) = blk.split_at(LANE);
            let (b, d) = rest.split_at(LANE);
            let (mut ca, mut cb, mut cd) = (u64::from(c), 0u64, 0u64);
            for ((wa, wb), wd) in a
                .chunks_exact(8)
                .zip(b.chunks_exact(8))
                .zip(d.chunks_exact(8))
            {
                ca = _mm_crc32_u64(ca, word(wa));
                cb = _mm_crc32_u64(cb, word(wb));
                cd = _mm_crc32_u64(cd, word(wd));
            }
            c = shift(t, shift(t, ca as u32) ^ cb as u32) ^ cd as u32;
        }
        (c, blocks.remainder())
    }

    /// Eight bytes, little-endian: the CRC is defined on the bytes in order.
    #[inline(always)]
    fn word(w: &[u8]) -> u64 {
        u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
    }

    /// The register after LANE zero bytes, from the register before: linear, so a table per
    /// byte of the register gives it in four look-ups.
    #[inline(always)]
    fn shift(t: &[[u32; 256]; 4], r: u32) -> u32 {
        t[0][(r & 0xff) as usize]
            ^ t[1][(r >> 8 & 0xff) as usize]
            ^ t[2][(r >> 16 & 0xff) as usize]
            ^ t[3][(r >> 24) as usize]
    }

    /// [`shift`]'s table, made on first use from the 32 single-bit registers.
    fn shift_table() -> &'static [[u32; 256]; 4] {
        static TABLE: OnceLock<Box<[[u32; 256]; 4]>> = OnceLock::new();
        TABLE.get_or_init(|| {
            let zeros = [0u8; LANE];
            let bit: [u32; 32] = std::array::from_fn(|i| super::software(1 << i, &zeros));
            let mut t = Box::new([[0u32; 256]; 4]);
            for (k, row) in t.iter_mut().enumerate() {
                for (v, e) in row.iter_mut().enumerate() {
                    *e = (0..8)
                        .filter(|b| v >> b & 1 != 0)
                        .fold(0, |acc, b| acc ^ bit[8 * k + b]);
                }
            }
            t
        })
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::{__crc32cb, __crc32cd};

    /// Only handed out by [`super::best`] after the CRC extension was detected.
    pub fn update(c: u32, bytes: &[u8]) -> u32 {
        // SAFETY: `best` returns this function only when the CPU has the CRC extension.
        unsafe { crc(c, bytes) }
    }

    #[target_feature(enable = "crc")]
    fn crc(mut c: u32, bytes: &[u8]) -> u32 {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            c = __crc32cd(c, v);
        }
        for &b in words.remainder() {
            c = __crc32cb(c, b);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chosen CRC agrees with the core's on every length, alignment and start value,
    /// and the catalogue's check value comes out of it.
    #[test]
    fn same_values_as_the_core() {
        let f = best();
        assert_eq!(!f(!0, b"123456789"), 0xE306_9283);
        let data: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Around the three-stream blocks' edges (384 bytes) too, and a full-size segment.
        let edges = (1..=12).flat_map(|k| [384 * k - 1, 384 * k, 384 * k + 1]);
        for start in [0u32, !0, 0x1234_5678] {
            for off in 0..9 {
                for len in (0..200)
                    .chain(edges.clone())
                    .chain([1000, 1448, 4000, 4096, 8000])
                {
                    let b = &data[off..off + len];
                    assert_eq!(
                        f(start, b),
                        software(start, b),
                        "start {start:#x} off {off} len {len}"
                    );
                }
            }
        }
    }
}
