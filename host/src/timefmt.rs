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

/// `YYYY-MM-DDTHH:MM:SS` of Unix seconds, UTC.
fn date_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `2010-01-31T22:16:21Z`: the `%T` template variable (whole seconds).
pub fn iso_seconds(ts: Timestamp) -> String {
    format!("{}Z", date_time(ts.secs()))
}

/// `2010-01-31T22:16:21.260924Z`: report times, microseconds as tcpflow 1.6 writes them.
pub fn iso_micros(ts: Timestamp) -> String {
    format!("{}.{:06}Z", date_time(ts.secs()), ts.subsec_nanos() / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
