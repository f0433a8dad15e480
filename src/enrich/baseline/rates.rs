//! Rate models: how much a principal usually does per hour, overall and per verb class, by local hour on weekdays and weekends, as exponentially weighted means and variances.
//!
//! Each hour's counts are folded into the bucket of that hour (weekday or
//! weekend, local hour: 48 buckets), hours without activity as zeros. Weekdays
//! share buckets so that a bucket learns from five days a week instead of one:
//! after two weeks a Tuesday 03:00 bucket has ten samples, where an
//! hour-of-the-week bucket would have two. A bucket's first samples are plain
//! averages; after that each new hour weighs [`ALPHA`], so the model follows
//! a principal whose habits change within about two weeks.
//!
//! The score of the current hour is `(now - mean) / sqrt(var + mean + 1)`:
//! the spread seen, plus Poisson noise for small counts, so going from 1 to 3
//! events is not unusual. A minimum volume and a minimum of samples guard it.

use serde::{Deserialize, Serialize};

/// Verb classes; an event counts in `All` and in each class it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerbClass {
    All,
    Read,
    Write,
    Delete,
    Exec,
    Secrets,
    Rbac,
}

pub const CLASSES: usize = 7;
pub const BUCKETS: usize = 48;
/// Weight of a new hour once a bucket has this many samples' worth of history.
const ALPHA: f32 = 0.1;
/// Hours of inactivity folded as zeros at most (older gaps are not replayed).
const MAX_GAP_HOURS: i64 = 14 * 24;

impl VerbClass {
    pub const EVERY: [VerbClass; CLASSES] = [
        VerbClass::All,
        VerbClass::Read,
        VerbClass::Write,
        VerbClass::Delete,
        VerbClass::Exec,
        VerbClass::Secrets,
        VerbClass::Rbac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VerbClass::All => "all",
            VerbClass::Read => "read",
            VerbClass::Write => "write",
            VerbClass::Delete => "delete",
            VerbClass::Exec => "exec",
            VerbClass::Secrets => "secrets",
            VerbClass::Rbac => "rbac",
        }
    }

    /// How an explanation names the class's events.
    pub fn noun(self) -> &'static str {
        match self {
            VerbClass::All => "requests",
            VerbClass::Read => "reads",
            VerbClass::Write => "writes",
            VerbClass::Delete => "deletes",
            VerbClass::Exec => "exec and attach sessions",
            VerbClass::Secrets => "secret requests",
            VerbClass::Rbac => "RBAC requests",
        }
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The classes an event counts in, as bits of [`VerbClass`].
pub fn classes_of(verb: &str, resource: &str, subresource: &str, api_group: &str) -> u8 {
    let mut m = VerbClass::All.bit();
    let interactive = matches!(subresource, "exec" | "attach" | "portforward");
    m |= match verb {
        _ if interactive => VerbClass::Exec.bit(),
        "get" | "list" | "watch" => VerbClass::Read.bit(),
        "delete" | "deletecollection" => VerbClass::Delete.bit(),
        "create" | "update" | "patch" => VerbClass::Write.bit(),
        _ => 0,
    };
    if resource == "secrets" {
        m |= VerbClass::Secrets.bit();
    }
    if api_group == "rbac.authorization.k8s.io" {
        m |= VerbClass::Rbac.bit();
    }
    m
}

/// The bucket of a local time: 0..24 weekday hours, 24..48 weekend hours.
pub fn bucket(local_secs: i64) -> usize {
    let how = super::hour_of_week(local_secs);
    let (day, hour) = (how / 24, how % 24);
    if day >= 5 {
        24 + hour
    } else {
        hour
    }
}

/// How a bucket is named in explanations: `weekdays 03:00`.
pub fn bucket_name(b: usize) -> String {
    let (when, hour) = if b >= 24 {
        ("weekends", b - 24)
    } else {
        ("weekdays", b)
    };
    format!("{when} {hour:02}:00")
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Cell {
    mean: f32,
    var: f32,
}

/// One principal's rate model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateModel {
    /// The hour being counted (hours since the epoch, UTC); 0 before the first event.
    hour: i64,
    /// Local offset (seconds) of that hour.
    offset: i32,
    counts: [u32; CLASSES],
    /// Hours folded into each bucket.
    samples: Vec<u16>,
    /// Per class, the buckets (allocated on the class's first activity).
    cells: [Option<Vec<Cell>>; CLASSES],
}

/// How unusual the current hour is for one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateScore {
    pub class: VerbClass,
    pub bucket: usize,
    pub now: u32,
    pub usual: f32,
    pub spread: f32,
    pub samples: u16,
    pub score: f32,
}

impl RateScore {
    /// `now` over the usual count (at least 1).
    pub fn ratio(&self) -> f32 {
        self.now as f32 / self.usual.max(1.0)
    }
}

impl RateModel {
    /// Counts one event at `time` (epoch seconds) whose local offset is `offset`, in the classes `mask`.
    pub fn count(&mut self, time: i64, offset: i32, mask: u8) {
        let hour = time.div_euclid(3600);
        if self.samples.len() != BUCKETS {
            self.samples = vec![0; BUCKETS];
        }
        if self.hour == 0 {
            self.hour = hour;
            self.offset = offset;
        } else if hour > self.hour {
            self.roll(hour, offset);
        }
        // An event of an earlier hour (out of order) counts in the current one.
        for (c, n) in self.counts.iter_mut().enumerate() {
            if mask & (1 << c) != 0 {
                *n = n.saturating_add(1);
            }
        }
    }

    /// Folds the finished hour and the quiet hours up to `hour`.
    fn roll(&mut self, hour: i64, offset: i32) {
        let counts = std::mem::take(&mut self.counts);
        self.fold(self.hour, self.offset, &counts);
        let first_quiet = (self.hour + 1).max(hour - MAX_GAP_HOURS);
        for h in first_quiet..hour {
            self.fold(h, offset, &[0; CLASSES]);
        }
        self.hour = hour;
        self.offset = offset;
    }

    fn fold(&mut self, hour: i64, offset: i32, counts: &[u32; CLASSES]) {
        let b = bucket(hour * 3600 + i64::from(offset));
        let n = self.samples[b];
        let alpha = (1.0 / (f32::from(n) + 1.0)).max(ALPHA);
        for (c, &x) in counts.iter().enumerate() {
            if x > 0 && self.cells[c].is_none() {
                self.cells[c] = Some(vec![Cell::default(); BUCKETS]);
            }
            let Some(cells) = self.cells[c].as_mut() else {
                continue;
            };
            let cell = &mut cells[b];
            let diff = x as f32 - cell.mean;
            let incr = alpha * diff;
            cell.mean += incr;
            cell.var = (1.0 - alpha) * (cell.var + diff * incr);
        }
        self.samples[b] = n.saturating_add(1);
    }

    /// The current hour's standing in `class`.
    pub fn score(&self, class: VerbClass) -> RateScore {
        let b = bucket(self.hour * 3600 + i64::from(self.offset));
        let c = class as usize;
        let cell = self.cells[c].as_ref().map(|v| v[b]).unwrap_or_default();
        let now = self.counts[c];
        let noise = (cell.var + cell.mean + 1.0).sqrt();
        RateScore {
            class,
            bucket: b,
            now,
            usual: cell.mean,
            spread: cell.var.sqrt(),
            samples: self.samples.get(b).copied().unwrap_or(0),
            score: (now as f32 - cell.mean) / noise,
        }
    }

    /// Heap bytes held (for the memory bench).
    pub fn heap_bytes(&self) -> usize {
        self.samples.capacity() * 2
            + self
                .cells
                .iter()
                .flatten()
                .map(|v| v.capacity() * std::mem::size_of::<Cell>())
                .sum::<usize>()
    }
}

/// Guards and thresholds of the volume signal.
#[derive(Debug, Clone, Copy)]
pub struct RateGuards {
    /// Least events in the hour (in the class) before it can be unusual.
    pub min_volume: u32,
    /// Least hours the bucket has learnt from.
    pub min_samples: u16,
}

impl RateModel {
    /// The most unusual class of `mask` that passes the guards, if any.
    pub fn most_unusual(&self, mask: u8, g: RateGuards) -> Option<RateScore> {
        VerbClass::EVERY
            .iter()
            .filter(|c| mask & c.bit() != 0)
            .map(|c| self.score(*c))
            .filter(|s| s.now >= g.min_volume && s.samples >= g.min_samples)
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const DAY: i64 = 86_400;
    /// Monday 2026-11-16 00:00 UTC.
    const MONDAY: i64 = 1_794_787_200;
    const READ: u8 = 0b11;
    const SECRET_READ: u8 = 0b10_0011;
    const GUARDS: RateGuards = RateGuards {
        min_volume: 10,
        min_samples: 3,
    };

    /// Three weeks of `per_hour` reads at 09:00-17:00 on weekdays, nothing otherwise.
    fn office_worker(per_hour: u32, offset: i32) -> RateModel {
        let mut m = RateModel::default();
        for d in 0..21 {
            if d % 7 >= 5 {
                continue;
            }
            for h in 9..17 {
                let start = MONDAY + d * DAY + h * H - i64::from(offset);
                for i in 0..per_hour {
                    m.count(start + i64::from(i), offset, READ);
                }
            }
        }
        m
    }

    #[test]
    fn weekday_hours_learn_their_level_and_quiet_hours_stay_near_zero() {
        let mut m = office_worker(20, 0);
        // Monday of week 4, 10:00: 20 reads is usual.
        let t = MONDAY + 21 * DAY + 10 * H;
        for i in 0..20 {
            m.count(t + i, 0, READ);
        }
        let s = m.score(VerbClass::Read);
        assert!((s.usual - 20.0).abs() < 1.0, "{s:?}");
        assert!(s.score.abs() < 1.0, "{s:?}");
        assert_eq!(s.bucket, 10);
        // 03:00 the next day: 30 reads where the usual is 0.
        let night = MONDAY + 22 * DAY + 3 * H;
        for i in 0..30 {
            m.count(night + i, 0, READ);
        }
        let s = m.score(VerbClass::Read);
        assert!(s.usual < 0.01 && s.samples >= 10, "{s:?}");
        assert!(s.score > 20.0 && s.ratio() >= 30.0, "{s:?}");
    }

    #[test]
    fn seasonality_separates_weekends_from_weekdays() {
        let mut m = office_worker(20, 0);
        // Saturday of week 4, 10:00: 20 reads, never seen on a weekend.
        let sat = MONDAY + 26 * DAY + 10 * H;
        for i in 0..20 {
            m.count(sat + i, 0, READ);
        }
        let s = m.score(VerbClass::Read);
        assert_eq!(s.bucket, 34);
        assert!(s.usual < 0.01 && s.score > 10.0, "{s:?}");
    }

    #[test]
    fn small_counts_are_not_unusual_and_the_guards_hold() {
        let mut m = office_worker(1, 0);
        let t = MONDAY + 21 * DAY + 10 * H;
        for i in 0..3 {
            m.count(t + i, 0, READ);
        }
        let s = m.score(VerbClass::Read);
        assert!(s.score < 2.0, "1 -> 3 events scores {s:?}");
        assert!(m.most_unusual(READ, GUARDS).is_none(), "below min volume");
        // A fresh model has no samples: nothing passes the sample guard.
        let mut fresh = RateModel::default();
        for i in 0..50 {
            fresh.count(MONDAY + i, 0, READ);
        }
        assert!(fresh.most_unusual(READ, GUARDS).is_none());
    }

    #[test]
    fn time_zones_move_the_buckets_to_local_hours() {
        // Works 09:00-17:00 in UTC+9: 00:00-08:00 UTC.
        let mut m = office_worker(20, 9 * 3600);
        // 10:00 local (01:00 UTC) is usual.
        let t = MONDAY + 21 * DAY + H;
        for i in 0..20 {
            m.count(t + i, 9 * 3600, READ);
        }
        let s = m.score(VerbClass::Read);
        assert_eq!(s.bucket, 10);
        assert!(s.score.abs() < 1.0, "{s:?}");
        // 14:00 UTC is 23:00 local: unusual, although 14:00 UTC is office time in London.
        let t = MONDAY + 22 * DAY + 14 * H;
        for i in 0..20 {
            m.count(t + i, 9 * 3600, READ);
        }
        let s = m.score(VerbClass::Read);
        assert_eq!(s.bucket, 23);
        assert!(s.score > 10.0, "{s:?}");
    }

    #[test]
    fn old_habits_decay_and_new_ones_become_usual() {
        let mut m = office_worker(5, 0);
        // From week 4 on, 60 an hour: within two weeks 60 is no longer unusual.
        for d in 21..35 {
            if d % 7 >= 5 {
                continue;
            }
            for h in 9..17 {
                for i in 0..60 {
                    m.count(MONDAY + d * DAY + h * H + i, 0, READ);
                }
            }
        }
        let t = MONDAY + 35 * DAY + 10 * H;
        for i in 0..60 {
            m.count(t + i, 0, READ);
        }
        let s = m.score(VerbClass::Read);
        assert!(s.usual > 35.0, "{s:?}");
        assert!(s.score < 3.0, "{s:?}");
    }

    #[test]
    fn classes_are_counted_apart_and_the_most_unusual_is_reported() {
        let mut m = office_worker(20, 0);
        let t = MONDAY + 21 * DAY + 10 * H;
        for i in 0..25 {
            m.count(t + i, 0, SECRET_READ);
        }
        let s = m.most_unusual(SECRET_READ, GUARDS).unwrap();
        assert_eq!(s.class, VerbClass::Secrets, "{s:?}");
        assert!(s.ratio() >= 25.0);
        assert_eq!(
            classes_of("get", "pods", "exec", ""),
            VerbClass::All.bit() | VerbClass::Exec.bit()
        );
        assert_eq!(
            classes_of("create", "rolebindings", "", "rbac.authorization.k8s.io"),
            VerbClass::All.bit() | VerbClass::Write.bit() | VerbClass::Rbac.bit()
        );
        assert_eq!(bucket_name(27), "weekends 03:00");
    }
}
