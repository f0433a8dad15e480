//! State helpers for playbooks: windowed counts, thresholds, distinct counts and first-seen, scoped per playbook and cluster, in event time.
//!
//! Held in memory, sharded and bounded; durability and correlation across
//! restarts belong to the state stage (the sled store). Every key is the
//! calling playbook's and the event's cluster's: two clusters never share a count.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

const SHARDS: usize = 16;
/// Most timestamps or distinct values kept for one key.
const MAX_PER_KEY: usize = 10_000;

thread_local! {
    /// The playbook and event time of the call running on this thread.
    static CURRENT: RefCell<(String, i64)> = const { RefCell::new((String::new(), 0)) };
    /// The cluster of the event being judged (for per-cluster lists).
    static CLUSTER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with the calling playbook, event time and cluster known to the helpers.
pub fn with_context<T>(playbook: &str, event_time: i64, cluster: &str, f: impl FnOnce() -> T) -> T {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.0.clear();
        c.0.push_str(playbook);
        c.1 = event_time;
    });
    CLUSTER.with(|c| {
        let mut c = c.borrow_mut();
        c.clear();
        c.push_str(cluster);
    });
    f()
}

/// Calls `f` with the cluster of the event being judged on this thread.
pub fn with_cluster<R>(f: impl FnOnce(&str) -> R) -> R {
    CLUSTER.with(|c| f(&c.borrow()))
}

pub(super) fn current() -> (String, i64) {
    CURRENT.with(|c| c.borrow().clone())
}

enum Entry {
    Times(VecDeque<i64>),
    /// Event times in the window, and the event time the threshold last fired at.
    Threshold(VecDeque<i64>, Option<i64>),
    Distinct(HashMap<u64, i64>),
    Seen,
    /// Event time at which each step of a sequence was last seen.
    Steps(Vec<Option<i64>>),
}

/// How far out of order (seconds) the steps of a sequence may arrive and still count.
const SEQUENCE_TOLERANCE: i64 = 30;
/// Risk halves every this many seconds.
pub const RISK_HALF_LIFE: i64 = 3600;

/// The helpers' memory.
#[derive(Default)]
pub struct WindowState {
    shards: [Mutex<HashMap<String, Entry>>; SHARDS],
    max_keys: usize,
    /// Entity risk, shared by all playbooks: (value, event time of the value).
    risk: Mutex<HashMap<String, (f64, i64)>>,
}

impl std::fmt::Debug for WindowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowState")
    }
}

fn hash<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl WindowState {
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys: max_keys.max(SHARDS),
            ..Self::default()
        }
    }

    fn with_entry<T>(
        &self,
        kind: &str,
        key: &str,
        make: impl FnOnce() -> Entry,
        f: impl FnOnce(&mut Entry, i64) -> T,
    ) -> T {
        let (playbook, now) = current();
        let full = with_cluster(|cluster| joined(&[&playbook, cluster, kind, key]));
        let mut shard = self.shards[(hash(&full) as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.max_keys / SHARDS && !shard.contains_key(&full) {
            // Bounded memory: forget half of this shard's keys.
            let mut n = 0;
            shard.retain(|_, _| {
                n += 1;
                n % 2 == 0
            });
        }
        f(shard.entry(full).or_insert_with(make), now)
    }

    /// Adds this event under `key`; returns how many events `key` had in the last `window` seconds.
    pub fn count(&self, key: &str, window: i64) -> i64 {
        self.with_entry(
            "count",
            key,
            || Entry::Times(VecDeque::new()),
            |e, now| match e {
                Entry::Times(times) => {
                    times.push_back(now);
                    while times.front().is_some_and(|t| *t <= now - window)
                        || times.len() > MAX_PER_KEY
                    {
                        times.pop_front();
                    }
                    times.iter().filter(|t| **t <= now).count() as i64
                }
                _ => 0,
            },
        )
    }

    /// Adds this event under `key`; true once per `window` when `key` has had `n` or more events
    /// within `window` seconds. Unlike `count(key, window) == n`, it does not skip `n` when
    /// events arrive out of order, and it fires again only once the window has passed.
    pub fn threshold(&self, key: &str, n: i64, window: i64) -> bool {
        self.with_entry(
            "threshold",
            key,
            || Entry::Threshold(VecDeque::new(), None),
            |e, now| match e {
                Entry::Threshold(times, fired) => {
                    // Kept in event-time order, so that an early arrival is not dropped first.
                    let at = times.partition_point(|t| *t <= now);
                    times.insert(at, now);
                    let newest = times.back().copied().unwrap_or(now);
                    while times.front().is_some_and(|t| *t <= newest - window)
                        || times.len() > MAX_PER_KEY
                    {
                        times.pop_front();
                    }
                    let due = fired.is_none_or(|f| (now - f).abs() >= window);
                    if due && times.len() as i64 >= n.max(1) {
                        *fired = Some(now);
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            },
        )
    }

    /// Adds `value` under `key`; returns how many distinct values `key` had in the last `window` seconds.
    pub fn distinct(&self, key: &str, value: &str, window: i64) -> i64 {
        let v = hash(value);
        self.with_entry(
            "distinct",
            key,
            || Entry::Distinct(HashMap::new()),
            |e, now| match e {
                Entry::Distinct(values) => {
                    let seen = values.entry(v).or_insert(now);
                    *seen = (*seen).max(now);
                    values.retain(|_, t| *t > now - window);
                    if values.len() > MAX_PER_KEY {
                        values.clear();
                        values.insert(v, now);
                    }
                    values.len() as i64
                }
                _ => 0,
            },
        )
    }

    /// True the first time this playbook sees `key`.
    pub fn first_seen(&self, key: &str) -> bool {
        let mut fresh = false;
        self.with_entry(
            "seen",
            key,
            || {
                fresh = true;
                Entry::Seen
            },
            |_, _| (),
        );
        fresh
    }

    /// Records step `step` (1-based) of a `total`-step sequence for `key`; true when this
    /// step completes it: every earlier step seen, in order (within a small tolerance for
    /// reordering), the first no more than `within` seconds ago.
    pub fn sequence(&self, key: &str, step: i64, total: i64, within: i64) -> bool {
        let (Ok(step), Ok(total)) = (usize::try_from(step), usize::try_from(total)) else {
            return false;
        };
        if step == 0 || step > total || total > 32 {
            return false;
        }
        self.with_entry(
            "sequence",
            key,
            || Entry::Steps(vec![None; total]),
            |e, now| match e {
                Entry::Steps(steps) if steps.len() == total => {
                    steps[step - 1] = Some(steps[step - 1].map_or(now, |t| t.max(now)));
                    if step != total {
                        return false;
                    }
                    let mut prev = None::<i64>;
                    for t in steps.iter() {
                        let Some(t) = *t else { return false };
                        if now - t > within || prev.is_some_and(|p| t + SEQUENCE_TOLERANCE < p) {
                            return false;
                        }
                        prev = Some(t);
                    }
                    steps.iter_mut().for_each(|s| *s = None);
                    true
                }
                _ => false,
            },
        )
    }

    /// Adds `points` to an entity's risk in `cluster`, which halves every hour of event time; returns the new risk.
    pub fn add_risk(&self, cluster: &str, entity: &str, points: f64, now: i64) -> f64 {
        let key = joined(&[cluster, entity]);
        let mut r = self.risk.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() >= self.max_keys && !r.contains_key(&key) {
            r.retain(|_, (v, at)| decayed(*v, *at, now) >= 1.0);
        }
        let e = r.entry(key).or_insert((0.0, now));
        let value = decayed(e.0, e.1, now) + points;
        *e = (value, now.max(e.1));
        value
    }

    /// An entity's current risk in the cluster of the event being judged.
    pub fn risk(&self, entity: &str) -> f64 {
        let (_, now) = current();
        let key = with_cluster(|cluster| joined(&[cluster, entity]));
        let r = self.risk.lock().unwrap_or_else(|e| e.into_inner());
        r.get(&key).map_or(0.0, |(v, at)| decayed(*v, *at, now))
    }

    /// Forgets everything (between playbook test cases).
    pub fn clear(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.risk.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The parts joined by NUL (by hand: `format!` costs about ten times as much per call).
fn joined(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push('\u{0}');
        }
        s.push_str(p);
    }
    s
}

fn decayed(value: f64, at: i64, now: i64) -> f64 {
    let age = (now - at).max(0) as f64;
    value * 0.5f64.powf(age / RISK_HALF_LIFE as f64)
}

/// A window a playbook passed that is not a duration (raised in the script, with its position).
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("window must be a duration like \"5m\", not {0}")]
    NotADuration(String),
    #[error("invalid window {text:?}: {source}")]
    Invalid {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
}

/// A window written as `"5m"`, `"30s"` or a number of seconds.
pub fn window_secs(d: &rhai::Dynamic) -> Result<i64, WindowError> {
    if let Ok(n) = d.as_int() {
        return Ok(n);
    }
    let s = d
        .clone()
        .into_string()
        .map_err(|t| WindowError::NotADuration(t.to_string()))?;
    humantime::parse_duration(s.trim())
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .map_err(|source| WindowError::Invalid { text: s, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_in_a_sliding_event_time_window() {
        let s = WindowState::new(1000);
        let at = |t: i64| with_context("p", t, "", || s.count("alice", 300));
        assert_eq!(at(1000), 1);
        assert_eq!(at(1100), 2);
        assert_eq!(at(1299), 3);
        assert_eq!(
            at(1301),
            3,
            "the event at 1000 left the window as this one came in"
        );
        assert_eq!(at(1600), 2, "only 1301 and 1600 are within 300 s of 1600");
        assert_eq!(
            with_context("other", 1301, "", || s.count("alice", 300)),
            1,
            "scoped per playbook"
        );
    }

    #[test]
    fn counts_distinct_values_and_first_sightings() {
        let s = WindowState::new(1000);
        let d = |t: i64, v: &str| with_context("p", t, "", || s.distinct("alice", v, 600));
        assert_eq!(d(0, "s1"), 1);
        assert_eq!(d(10, "s1"), 1);
        assert_eq!(d(20, "s2"), 2);
        assert_eq!(d(700, "s3"), 1, "s1 and s2 expired");
        assert!(with_context("p", 0, "", || s.first_seen("k")));
        assert!(!with_context("p", 5, "", || s.first_seen("k")));
        s.clear();
        assert!(with_context("p", 6, "", || s.first_seen("k")));
    }

    #[test]
    fn sequences_complete_in_order_within_the_span_and_tolerate_small_reordering() {
        let s = WindowState::new(1000);
        let step = |t: i64, n: i64| with_context("p", t, "", || s.sequence("mallory", n, 2, 300));
        assert!(!step(0, 1));
        assert!(step(100, 2), "step 2 after step 1 within 5 minutes");
        assert!(!step(110, 2), "completing resets the sequence");
        assert!(!step(200, 1));
        assert!(!step(600, 2), "too late: step 1 was 400 s before");
        // Step 2 arrives first, step 1 ten seconds earlier in event time arrives after.
        assert!(!step(1010, 2));
        assert!(!step(1000, 1));
        assert!(step(1011, 2), "modest reordering is tolerated");
    }

    #[test]
    fn risk_accumulates_and_decays_by_half_every_hour() {
        let s = WindowState::new(1000);
        assert_eq!(s.add_risk("", "alice", 40.0, 0), 40.0);
        assert_eq!(s.add_risk("", "alice", 40.0, 0), 80.0);
        assert_eq!(
            with_context("p", RISK_HALF_LIFE, "", || s.risk("alice")),
            40.0
        );
        assert_eq!(with_context("p", 0, "", || s.risk("bob")), 0.0);
        assert_eq!(
            with_context("p", 0, "prod", || s.risk("alice")),
            0.0,
            "alice in another cluster is another entity"
        );
    }

    #[test]
    fn keys_are_per_cluster() {
        let s = WindowState::new(1000);
        let count = |cluster: &str| with_context("p", 10, cluster, || s.count("alice", 300));
        assert_eq!(count("prod"), 1);
        assert_eq!(count("prod"), 2);
        assert_eq!(
            count("staging"),
            1,
            "another cluster's alice is counted apart"
        );
        assert!(with_context("p", 10, "prod", || s.first_seen("k")));
        assert!(with_context("p", 10, "staging", || s.first_seen("k")));
    }

    #[test]
    fn a_threshold_fires_once_per_window_whatever_the_arrival_order() {
        let s = WindowState::new(1000);
        let hit = |t: i64| with_context("p", t, "", || s.threshold("mallory", 5, 300));
        // Events at 1..=5 s arrive as 1, 2, 4, 5, 3: `count(..) == 5` never sees 5 (the event
        // at 5 s counts 4 at or before it, the one at 3 s counts 3), the threshold does.
        let fired: Vec<bool> = [1, 2, 4, 5, 3].into_iter().map(hit).collect();
        assert_eq!(fired, [false, false, false, false, true]);
        assert!(!hit(6), "once per window");
        assert!(!hit(200));
        assert!(
            hit(303),
            "a window after firing, five events within 300 s again (4, 5, 6, 200, 303)"
        );
        assert!(!hit(304), "once per window");
        // Below the count the threshold never fires, whatever the order.
        let other = |t: i64| with_context("p", t, "", || s.threshold("trent", 3, 60));
        assert!(
            !other(100) && !other(10) && !other(50),
            "10 is out of 100's window"
        );
    }

    #[test]
    fn parses_windows() {
        assert_eq!(window_secs(&rhai::Dynamic::from("5m")).unwrap(), 300);
        assert_eq!(window_secs(&rhai::Dynamic::from(90_i64)).unwrap(), 90);
        assert!(window_secs(&rhai::Dynamic::from("soon")).is_err());
    }
}
