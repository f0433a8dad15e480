//! Time zones: the UTC offset of a principal's IANA zone at an instant, so hours are judged in local time.

use chrono::{Offset, TimeZone};

pub use chrono_tz::Tz;

/// The zone of an IANA name (`Europe/Berlin`); `None` for an unknown name.
pub fn parse(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// Seconds east of UTC in `tz` at `epoch_secs`.
pub fn offset(tz: Tz, epoch_secs: i64) -> i32 {
    chrono::DateTime::from_timestamp(epoch_secs, 0)
        .map(|t| {
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_daylight_saving() {
        let berlin = parse("Europe/Berlin").unwrap();
        // 2026-07-01 12:00 UTC: summer time, +2; 2026-12-01: winter, +1.
        assert_eq!(offset(berlin, 1_782_907_200), 7200);
        assert_eq!(offset(berlin, 1_796_126_400), 3600);
        let kolkata = parse("Asia/Kolkata").unwrap();
        assert_eq!(offset(kolkata, 1_796_126_400), 19_800);
        let la = parse("America/Los_Angeles").unwrap();
        assert_eq!(offset(la, 1_796_126_400), -8 * 3600);
        assert!(parse("Mars/Olympus_Mons").is_none());
    }
}
