//! CRC-32C (Castagnoli), table driven. Castagnoli rather than IEEE because it detects more
//! error patterns at record lengths like ours. Slicing-by-8 (eight bytes per step through
//! eight 1 KiB tables built at compile time): the spool checks every stream byte, and one
//! byte per step made the CRC most of a spooling run's CPU time.

const POLY: u32 = 0x82F6_3B78; // reflected 0x1EDC6F41

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// `TABLES[k][i]`: the CRC of byte `i` followed by `k` zero bytes.
const TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    t[0] = TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ TABLE[(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// A running CRC-32C.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc(u32);

impl Crc {
    pub(crate) const fn new() -> Self {
        Crc(!0)
    }

    pub(crate) fn update(self, bytes: &[u8]) -> Self {
        Crc(crc32c_update(self.0, bytes))
    }

    /// Continues with the register value an accelerated implementation left.
    pub(crate) fn update_with(self, bytes: &[u8], f: impl Fn(u32, &[u8]) -> u32) -> Self {
        Crc(f(self.0, bytes))
    }

    pub(crate) const fn finish(self) -> u32 {
        !self.0
    }
}

/// One step of CRC-32C on the register value `c` (the running value before the final
/// inversion; a fresh CRC starts from `!0`). This is what the CPU instructions compute
/// (`crc32` on x86-64 with SSE4.2, `crc32c*` on ARMv8), so a host may substitute them
/// through [`SpoolStorage::crc32c_update`](super::SpoolStorage::crc32c_update).
pub fn crc32c_update(mut c: u32, bytes: &[u8]) -> u32 {
    let t = &TABLES;
    let mut chunks = bytes.chunks_exact(8);
    for ch in &mut chunks {
        // Little-endian loads whatever the target: the CRC is defined on the byte order.
        let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::Crc;

    #[test]
    fn check_value_of_crc32c() {
        // The catalogue's check value for CRC-32/ISCSI.
        assert_eq!(Crc::new().update(b"123456789").finish(), 0xE306_9283);
        // Streaming in pieces gives the same result.
        assert_eq!(
            Crc::new().update(b"1234").update(b"56789").finish(),
            0xE306_9283
        );
    }

    #[test]
    fn slicing_matches_one_byte_at_a_time() {
        fn bytewise(bytes: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in bytes {
                c = super::TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
            }
            !c
        }
        let data: [u8; 300] =
            core::array::from_fn(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8);
        for start in 0..9 {
            for end in (start..300).step_by(7) {
                let d = &data[start..end];
                assert_eq!(Crc::new().update(d).finish(), bytewise(d), "{start}..{end}");
                let (a, b) = d.split_at(d.len() / 3);
                assert_eq!(Crc::new().update(a).update(b).finish(), bytewise(d));
            }
        }
    }
}
