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

    /// Only handed out by [`super::best`] after SSE4.2 was detected.
    pub fn update(c: u32, bytes: &[u8]) -> u32 {
        // SAFETY: `best` returns this function only when the CPU has SSE4.2.
        unsafe { sse42(c, bytes) }
    }

    #[target_feature(enable = "sse4.2")]
    fn sse42(c: u32, bytes: &[u8]) -> u32 {
        let mut c = u64::from(c);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            // Little-endian: the CRC is defined on the bytes in order.
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            c = _mm_crc32_u64(c, v);
        }
        let mut c = c as u32;
        for &b in words.remainder() {
            c = _mm_crc32_u8(c, b);
        }
        c
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
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in [0u32, !0, 0x1234_5678] {
            for off in 0..9 {
                for len in (0..200).chain([1000, 4000]) {
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
