//! SipHash-1-3 with a secret key: flow-table lookups stay O(1) even when an attacker picks
//! the ports and addresses (an unkeyed hash lets crafted traffic pile flows into one bucket).

#[derive(Clone, Copy)]
struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline(always)]
    fn word(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }
}

/// SipHash-1-3 of a sequence of 64-bit words (the caller packs its key into words; the length
/// is fixed per caller, so no length byte is needed for unambiguity).
pub(crate) fn siphash13(key: [u64; 2], words: &[u64]) -> u64 {
    let mut s = State {
        v0: key[0] ^ 0x736f_6d65_7073_6575,
        v1: key[1] ^ 0x646f_7261_6e64_6f6d,
        v2: key[0] ^ 0x6c79_6765_6e65_7261,
        v3: key[1] ^ 0x7465_6462_7974_6573,
    };
    for &m in words {
        s.word(m);
    }
    s.word((words.len() as u64) << 59);
    s.v2 ^= 0xff;
    s.round();
    s.round();
    s.round();
    s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_key_and_every_word() {
        let a = siphash13([1, 2], &[3, 4]);
        assert_ne!(a, siphash13([1, 3], &[3, 4]));
        assert_ne!(a, siphash13([1, 2], &[3, 5]));
        assert_ne!(a, siphash13([1, 2], &[4, 4]));
        assert_eq!(a, siphash13([1, 2], &[3, 4]));
    }
}
