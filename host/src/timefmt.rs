//! UTC time formatting without a calendar crate: ISO 8601 as tcpflow writes it.

use tcpflow_core::Timestamp;

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01 (proleptic Gregorian).
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Two ASCII digits for each of 0..100.
const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `num / den` in decimal with `places` digits after the point, rounded half to even as
/// `{:.N}` rounds a float's exact value (the same text whenever `num / den` is a float
/// exactly, as byte counts over powers of two are). In integers: without any `{:.N}` of a
/// float, the field builds carry no float formatting (about 7.7 KB of their size budget).
pub fn fixed(num: u64, den: u64, places: u32) -> String {
    let den = u128::from(den.max(1));
    let scale = 10u128.pow(places.min(12));
    let scaled = u128::from(num) * scale;
    let (mut q, r) = (scaled / den, scaled % den);
    if 2 * r > den || (2 * r == den && q % 2 == 1) {
        q += 1;
    }
    let mut s = (q / scale).to_string();
    if places > 0 {
        s.push('.');
        push_num(&mut s, (q % scale) as u64, places.min(12) as usize);
    }
    s
}

/// Appends `n` in decimal, at least `width` digits (zero-padded, up to 20): the per-flow
/// paths (names, report records) format dozens of numbers per direction, and `write!` costs
/// several times more.
pub fn push_num(s: &mut String, n: u64, width: usize) {
    if n < 10 && width <= 1 {
        // Most counters of a record are 0: one byte.
        s.push(char::from(b'0' + n as u8));
        return;
    }
    // Pre-filled with zeros: the padding is already there.
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = n;
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[r..r + 2]);
    }
    if v >= 10 {
        let r = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[r..r + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    // SAFETY: `buf` holds only ASCII digits.
    s.push_str(unsafe { std::str::from_utf8_unchecked(&buf[start..]) });
}

/// Appends `YYYY-MM-DDTHH:MM:SS` of Unix seconds, UTC.
fn push_date_time(s: &mut String, secs: u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        s.push('-');
    }
    push_num(s, y.unsigned_abs(), 4);
    s.push('-');
    push_num(s, m.into(), 2);
    s.push('-');
    push_num(s, d.into(), 2);
    s.push('T');
    push_num(s, rem / 3600, 2);
    s.push(':');
    push_num(s, rem / 60 % 60, 2);
    s.push(':');
    push_num(s, rem % 60, 2);
}

/// `2010-01-31T22:16:21Z`: the `%T` template variable (whole seconds).
pub fn iso_seconds(ts: Timestamp) -> String {
    let mut s = String::with_capacity(20);
    push_iso_seconds(&mut s, ts);
    s
}

/// [`iso_seconds`] appended to `s`.
pub fn push_iso_seconds(s: &mut String, ts: Timestamp) {
    push_date_time(s, ts.secs());
    s.push('Z');
}

/// `2010-01-31T22:16:21.260924Z`: report times, microseconds as tcpflow 1.6 writes them.
pub fn iso_micros(ts: Timestamp) -> String {
    let mut s = String::with_capacity(27);
    push_iso_micros(&mut s, ts);
    s
}

/// [`iso_micros`] appended to `s`.
pub fn push_iso_micros(s: &mut String, ts: Timestamp) {
    push_date_time(s, ts.secs());
    push_micros_z(s, ts);
}

/// `.260924Z`: what follows the seconds in [`iso_micros`].
fn push_micros_z(s: &mut String, ts: Timestamp) {
    s.push('.');
    push_num(s, (ts.subsec_nanos() / 1000).into(), 6);
    s.push('Z');
}

/// [`push_iso_micros`] that remembers the last second's date and time: report records come
/// in capture order, so most fall in the same second as the one before (the date and time
/// are most of the work).
#[derive(Debug, Default)]
pub struct IsoMicros {
    secs: Option<u64>,
    date_time: String,
}

impl IsoMicros {
    pub fn push(&mut self, s: &mut String, ts: Timestamp) {
        let secs = ts.secs();
        if self.secs != Some(secs) {
            self.date_time.clear();
            push_date_time(&mut self.date_time, secs);
            self.secs = Some(secs);
        }
        s.push_str(&self.date_time);
        push_micros_z(s, ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same text as `{:.N}` of the float, where the quotient is a float exactly, ties
    /// included (half to even), and for quotients that are not.
    #[test]
    fn fixed_is_the_floats_text() {
        for (num, den) in [
            (0u64, 1u64),
            (5, 4),
            (3, 8),
            (1, 8),
            (5, 8),
            (1281, 1024),
            (1_048_575, 1_048_576),
            (1_572_864, 1_048_576),
            (1, 3),
            (2, 3),
            (99_999, 100_000),
            (464_789_504, 349_929_167),
            (7, 1),
        ] {
            for places in 0..=6 {
                let want = format!("{:.*}", places as usize, num as f64 / den as f64);
                assert_eq!(fixed(num, den, places), want, "{num}/{den} to {places}");
            }
        }
        // Past a float's 53 bits, exactly (the float would round the numerator to 2^64).
        assert_eq!(fixed(u64::MAX, 1 << 20, 2), "17592186044416.00");
        assert_eq!(fixed(u64::MAX - (1 << 19), 1 << 20, 1), "17592186044415.5");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso_seconds(Timestamp(0)), "1970-01-01T00:00:00Z");
        // tcpflow 1.6.1's report for dns_axfr.pcapng.
        let ts = Timestamp::from_micros(1_264_976_181, 260_924);
        assert_eq!(iso_micros(ts), "2010-01-31T22:16:21.260924Z");
        // A leap day and the far side of 2038.
        assert_eq!(
            iso_seconds(Timestamp::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            iso_seconds(Timestamp::from_secs(4_102_444_800)),
            "2100-01-01T00:00:00Z"
        );
    }

    #[test]
    fn remembered_seconds_format_alike() {
        let mut m = IsoMicros::default();
        // Same second twice, the next, back to an earlier one, and a day boundary.
        for (secs, us) in [
            (1_264_976_181, 260_924),
            (1_264_976_181, 999_999),
            (1_264_976_182, 0),
            (1_264_976_181, 5),
            (951_868_799, 1),
            (951_868_800, 1),
        ] {
            let ts = Timestamp::from_micros(secs, us);
            let mut s = String::from("x");
            m.push(&mut s, ts);
            assert_eq!(s, format!("x{}", iso_micros(ts)));
        }
    }

    #[test]
    fn numbers_match_format() {
        for (n, w) in [
            (0, 0),
            (0, 1),
            (9, 0),
            (9, 2),
            (0, 3),
            (7, 3),
            (1234, 2),
            (65535, 5),
            (80, 5),
            (u64::MAX, 0),
            (99, 2),
            (100, 0),
            (5, 20),
            (12_345_678_901, 6),
            (1_000_000, 1),
        ] {
            let mut s = String::new();
            push_num(&mut s, n, w);
            assert_eq!(s, format!("{n:0w$}"));
        }
    }
}
