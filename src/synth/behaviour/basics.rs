//! Basics of the behaviour scenario: seeded randomness helpers, civil dates, RFC 3339 with microseconds, and time zones.
//!
//! Time zones are a fixed standard UTC offset plus the daylight-saving rule the zone has followed
//! since 2007 (EU, US, south-eastern Australia, or none). That is all the generator needs to place
//! a person's working day correctly on both sides of a DST change, without a tz database
//! dependency; the directory still names each zone by its IANA name.

use crate::synth::Rng;

pub(crate) const HOUR: i64 = 3_600;
pub(crate) const DAY: i64 = 86_400;
pub(crate) const MICROS: i64 = 1_000_000;

/// A 64-bit mix of several numbers (splitmix64 finaliser on each), for deriving independent seeds.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for &p in parts {
        h ^= p.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    }
    h
}

/// A generator seeded from several numbers.
pub(crate) fn rng(parts: &[u64]) -> Rng {
    Rng::new(mix(parts))
}

/// Sampling helpers on top of the project's splitmix64 [`Rng`].
pub(crate) trait Draw {
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64;
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.unit() * (hi - lo + 1) as f64) as i64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Log-normal with median `median` and log-sd `sigma`.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    /// Poisson with mean `mean` (Knuth below 30, a rounded normal above).
    fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u32;
        }
        let limit = (-mean).exp();
        let (mut k, mut p) = (0u32, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
    /// An index drawn with the given weights.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

impl Draw for Rng {
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) use crate::event::time::{civil_from_days, days_from_civil};

/// 0 for Monday .. 6 for Sunday.
pub(crate) fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

/// Appends microseconds since the epoch as `2026-10-05T09:13:22.123456Z`.
pub(crate) fn push_rfc3339(out: &mut String, micros: i64) {
    use std::fmt::Write;
    let secs = micros.div_euclid(MICROS);
    let frac = micros.rem_euclid(MICROS);
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let rem = secs.rem_euclid(DAY);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// A daylight-saving rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dst {
    None,
    /// Last Sunday of March to last Sunday of October, at 01:00 UTC.
    Eu,
    /// Second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
    /// First Sunday of October 02:00 local to first Sunday of April 03:00 local (southern summer).
    AuSouth,
}

/// A time zone as the generator models it: an IANA name, a standard offset and a DST rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zone {
    pub name: &'static str,
    /// Standard-time offset from UTC in seconds.
    pub std: i64,
    pub dst: Dst,
}

pub(crate) const ZONES: &[Zone] = &[
    Zone {
        name: "America/Los_Angeles",
        std: -8 * HOUR,
        dst: Dst::Us,
    },
    Zone {
        name: "America/New_York",
        std: -5 * HOUR,
        dst: Dst::Us,
    },
    Zone {
        name: "Europe/London",
        std: 0,
        dst: Dst::Eu,
    },
    Zone {
        name: "Europe/Berlin",
        std: HOUR,
        dst: Dst::Eu,
    },
    Zone {
        name: "Europe/Stockholm",
        std: HOUR,
        dst: Dst::Eu,
    },
    Zone {
        name: "Europe/Paris",
        std: HOUR,
        dst: Dst::Eu,
    },
    Zone {
        name: "Asia/Kolkata",
        std: 5 * HOUR + 1800,
        dst: Dst::None,
    },
    Zone {
        name: "Asia/Singapore",
        std: 8 * HOUR,
        dst: Dst::None,
    },
    Zone {
        name: "Asia/Shanghai",
        std: 8 * HOUR,
        dst: Dst::None,
    },
    Zone {
        name: "Australia/Sydney",
        std: 10 * HOUR,
        dst: Dst::AuSouth,
    },
];

/// Indexes into [`ZONES`].
pub(crate) mod zone {
    pub const LA: usize = 0;
    pub const NY: usize = 1;
    pub const LONDON: usize = 2;
    pub const BERLIN: usize = 3;
    pub const STOCKHOLM: usize = 4;
    pub const PARIS: usize = 5;
    pub const KOLKATA: usize = 6;
    pub const SINGAPORE: usize = 7;
    pub const SHANGHAI: usize = 8;
    pub const SYDNEY: usize = 9;
}

/// The day (since the epoch) of the `n`th Sunday (1-based) of a month, or the last one for `n == 0`.
fn sunday(y: i64, m: i64, n: i64) -> i64 {
    if n == 0 {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let last = days_from_civil(ny, nm, 1) - 1;
        return last - (weekday(last) + 1) % 7;
    }
    let first = days_from_civil(y, m, 1);
    first + (6 - weekday(first)) + 7 * (n - 1)
}

impl Zone {
    /// The offset from UTC, in seconds, at a UTC instant.
    pub fn offset_at(&self, utc: i64) -> i64 {
        let year = civil_from_days(utc.div_euclid(DAY)).0;
        let summer = match self.dst {
            Dst::None => false,
            Dst::Eu => {
                let on = sunday(year, 3, 0) * DAY + HOUR;
                let off = sunday(year, 10, 0) * DAY + HOUR;
                (on..off).contains(&utc)
            }
            Dst::Us => {
                let on = sunday(year, 3, 2) * DAY + 2 * HOUR - self.std;
                let off = sunday(year, 11, 1) * DAY + 2 * HOUR - (self.std + HOUR);
                (on..off).contains(&utc)
            }
            Dst::AuSouth => {
                let off = sunday(year, 4, 1) * DAY + 3 * HOUR - (self.std + HOUR);
                let on = sunday(year, 10, 1) * DAY + 2 * HOUR - self.std;
                utc < off || utc >= on
            }
        };
        self.std + if summer { HOUR } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: i64, d: i64, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY + h * HOUR
    }

    #[test]
    fn daylight_saving_changes_fall_where_the_zones_put_them() {
        let berlin = ZONES[zone::BERLIN];
        assert_eq!(berlin.offset_at(at(2026, 10, 25, 0)), 2 * HOUR);
        assert_eq!(berlin.offset_at(at(2026, 10, 25, 1)), HOUR);
        assert_eq!(berlin.offset_at(at(2026, 3, 29, 1)), 2 * HOUR);
        let la = ZONES[zone::LA];
        assert_eq!(la.offset_at(at(2026, 11, 1, 8)), -7 * HOUR);
        assert_eq!(la.offset_at(at(2026, 11, 1, 9)), -8 * HOUR);
        assert_eq!(la.offset_at(at(2026, 3, 8, 10)), -7 * HOUR);
        let ny = ZONES[zone::NY];
        assert_eq!(ny.offset_at(at(2026, 11, 1, 5)), -4 * HOUR);
        assert_eq!(ny.offset_at(at(2026, 11, 1, 6)), -5 * HOUR);
        let sydney = ZONES[zone::SYDNEY];
        // 2026-10-04 02:00 AEST = 2026-10-03 16:00 UTC.
        assert_eq!(sydney.offset_at(at(2026, 10, 3, 15)), 10 * HOUR);
        assert_eq!(sydney.offset_at(at(2026, 10, 3, 16)), 11 * HOUR);
        assert_eq!(sydney.offset_at(at(2026, 4, 4, 15)), 11 * HOUR);
        assert_eq!(sydney.offset_at(at(2026, 4, 4, 16)), 10 * HOUR);
        assert_eq!(ZONES[zone::KOLKATA].offset_at(0), 19_800);
    }

    #[test]
    fn timestamps_carry_microseconds_and_round_trip() {
        let mut s = String::new();
        push_rfc3339(&mut s, at(2026, 10, 5, 9) * MICROS + 123_456);
        assert_eq!(s, "2026-10-05T09:00:00.123456Z");
        assert_eq!(
            crate::event::time::parse_rfc3339(&s),
            Some(at(2026, 10, 5, 9))
        );
        assert_eq!(weekday(days_from_civil(2026, 10, 5)), 0);
    }
}
