//! State helpers for playbooks: windowed counts, distinct counts and first-seen, scoped per playbook and keyed by event time.
//!
//! Held in memory, sharded and bounded; durability and correlation across
//! restarts belong to the state stage (the sled store).

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
}

/// Runs `f` with the calling playbook and event time known to the helpers.
pub fn with_context<T>(playbook: &str, event_time: i64, f: impl FnOnce() -> T) -> T {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.0.clear();
        c.0.push_str(playbook);
        c.1 = event_time;
    });
    f()
}

fn current() -> (String, i64) {
    CURRENT.with(|c| c.borrow().clone())
}

enum Entry {
    Times(VecDeque<i64>),
    Distinct(HashMap<u64, i64>),
    Seen,
}

/// The helpers' memory.
#[derive(Default)]
pub struct WindowState {
    shards: [Mutex<HashMap<String, Entry>>; SHARDS],
    max_keys: usize,
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
        let full = format!("{playbook}\u{0}{kind}\u{0}{key}");
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

    /// Forgets everything (between playbook test cases).
    pub fn clear(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// A window written as `"5m"`, `"30s"` or a number of seconds.
pub fn window_secs(d: &rhai::Dynamic) -> Result<i64, String> {
    if let Ok(n) = d.as_int() {
        return Ok(n);
    }
    let s = d
        .clone()
        .into_string()
        .map_err(|t| format!("window must be a duration like \"5m\", not {t}"))?;
    humantime::parse_duration(s.trim())
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .map_err(|e| format!("invalid window {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_in_a_sliding_event_time_window() {
        let s = WindowState::new(1000);
        let at = |t: i64| with_context("p", t, || s.count("alice", 300));
        assert_eq!(at(1000), 1);
        assert_eq!(at(1100), 2);
        assert_eq!(at(1299), 3);
        assert_eq!(at(1301), 2, "the event at 1000 left the window");
        assert_eq!(
            with_context("other", 1301, || s.count("alice", 300)),
            1,
            "scoped per playbook"
        );
    }

    #[test]
    fn counts_distinct_values_and_first_sightings() {
        let s = WindowState::new(1000);
        let d = |t: i64, v: &str| with_context("p", t, || s.distinct("alice", v, 600));
        assert_eq!(d(0, "s1"), 1);
        assert_eq!(d(10, "s1"), 1);
        assert_eq!(d(20, "s2"), 2);
        assert_eq!(d(700, "s3"), 1, "s1 and s2 expired");
        assert!(with_context("p", 0, || s.first_seen("k")));
        assert!(!with_context("p", 5, || s.first_seen("k")));
        s.clear();
        assert!(with_context("p", 6, || s.first_seen("k")));
    }

    #[test]
    fn parses_windows() {
        assert_eq!(window_secs(&rhai::Dynamic::from("5m")), Ok(300));
        assert_eq!(window_secs(&rhai::Dynamic::from(90_i64)), Ok(90));
        assert!(window_secs(&rhai::Dynamic::from("soon")).is_err());
    }
}
