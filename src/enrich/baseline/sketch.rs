//! Bounded-memory sketches: last-seen day stamps (a blocked Bloom filter of days) and distinct counts (a blocked count-min), persisted page by page.
//!
//! Both are fixed arrays of 16-bit cells laid out in 64-byte lines. A key picks
//! one line and [`K`] cells inside it, so an update or a query touches one cache
//! line. Memory never grows: millions of keys only raise the chance that a key's
//! cells were all set by others. Both sketches err on one side only:
//! - [`Stamps`] may answer "seen" (on a day no earlier than the truth) for a key
//!   never stamped, never "unseen" for one that was;
//! - [`Counts`] never under-counts.
//!
//! So a novelty or rarity signal built on them can be missed, never invented.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use crate::state::StateStore;

/// Cells per 64-byte line.
const LINE: usize = 32;
/// Cells per key.
pub const K: usize = 4;
/// Cells per persisted page (8 KiB).
const PAGE: usize = 4096;
/// Store tree of the pages.
pub const TREE: &str = "baseline-sketch";

/// Fixed cells with dirty pages, shared by both sketches.
struct Cells {
    cells: Box<[AtomicU16]>,
    dirty: Box<[AtomicBool]>,
    lines: u64,
}

impl Cells {
    fn new(bytes: usize) -> Self {
        let lines = (bytes / (LINE * 2)).max(PAGE / LINE);
        // Whole pages.
        let lines = lines.div_ceil(PAGE / LINE) * (PAGE / LINE);
        let n = lines * LINE;
        Self {
            cells: (0..n).map(|_| AtomicU16::new(0)).collect(),
            dirty: (0..n / PAGE).map(|_| AtomicBool::new(false)).collect(),
            lines: lines as u64,
        }
    }

    /// The `K` cells of `hash`: one line, then 5 bits of the hash per cell.
    fn slots(&self, hash: u64) -> [usize; K] {
        let line = ((u128::from(mix(hash)) * u128::from(self.lines)) >> 64) as usize;
        let base = line * LINE;
        let mut out = [0; K];
        let mut bits = hash;
        for slot in &mut out {
            *slot = base + (bits & (LINE as u64 - 1)) as usize;
            bits >>= 5;
        }
        out
    }

    fn mark(&self, cell: usize) {
        let d = &self.dirty[cell / PAGE];
        if !d.load(Ordering::Relaxed) {
            d.store(true, Ordering::Relaxed);
        }
    }

    fn min(&self, slots: &[usize; K]) -> u16 {
        slots
            .iter()
            .map(|&s| self.cells[s].load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    fn bytes(&self) -> usize {
        self.cells.len() * 2
    }

    /// Share of cells set (0..1): how full the sketch is.
    fn fill(&self) -> f64 {
        let set = self
            .cells
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) != 0)
            .count();
        set as f64 / self.cells.len() as f64
    }

    fn page_key(name: &str, page: usize) -> Vec<u8> {
        let mut k = name.as_bytes().to_vec();
        k.push(b'/');
        k.extend_from_slice(&(page as u32).to_be_bytes());
        k
    }

    /// Reads every stored page of `name` (a page of another size is ignored).
    fn load(&self, store: &dyn StateStore, name: &str) {
        for page in 0..self.dirty.len() {
            let Ok(Some(bytes)) = store.get(TREE, &Self::page_key(name, page)) else {
                continue;
            };
            if bytes.len() != PAGE * 2 {
                continue;
            }
            for (i, pair) in bytes.chunks_exact(2).enumerate() {
                let v = u16::from_le_bytes([pair[0], pair[1]]);
                self.cells[page * PAGE + i].fetch_max(v, Ordering::Relaxed);
            }
        }
    }

    /// Writes the pages changed since the last save.
    fn save(&self, store: &dyn StateStore, name: &str) -> Result<(), crate::state::StateError> {
        for (page, d) in self.dirty.iter().enumerate() {
            if !d.swap(false, Ordering::Relaxed) {
                continue;
            }
            let mut bytes = Vec::with_capacity(PAGE * 2);
            for c in &self.cells[page * PAGE..(page + 1) * PAGE] {
                bytes.extend_from_slice(&c.load(Ordering::Relaxed).to_le_bytes());
            }
            if let Err(e) = store.put(TREE, &Self::page_key(name, page), &bytes) {
                d.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A finaliser, so that keys hashed with a weak hash still spread over the lines.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Day number (days since 1970-01-01, at least 1) of an epoch second: the stamps' unit.
pub fn day(epoch_secs: i64) -> u16 {
    u16::try_from(epoch_secs.div_euclid(86_400).clamp(1, i64::from(u16::MAX))).unwrap_or(1)
}

/// The last day each key was seen, for "new within the window" questions.
pub struct Stamps {
    cells: Cells,
}

impl Stamps {
    /// About `bytes` of memory, whatever the number of keys.
    pub fn new(bytes: usize) -> Self {
        Self {
            cells: Cells::new(bytes),
        }
    }

    /// The last day `key` was stamped (0: never), possibly later than the truth.
    pub fn last(&self, key: u64) -> u16 {
        self.cells.min(&self.cells.slots(key))
    }

    /// Stamps `key` with `day`; returns the day it was last seen before (0: never).
    pub fn stamp(&self, key: u64, day: u16) -> u16 {
        let slots = self.cells.slots(key);
        let before = self.cells.min(&slots);
        if before < day {
            for s in slots {
                if self.cells.cells[s].fetch_max(day, Ordering::Relaxed) < day {
                    self.cells.mark(s);
                }
            }
        }
        before
    }

    pub fn bytes(&self) -> usize {
        self.cells.bytes()
    }

    pub fn fill(&self) -> f64 {
        self.cells.fill()
    }

    pub fn load(&self, store: &dyn StateStore, name: &str) {
        self.cells.load(store, name);
    }

    pub fn save(&self, store: &dyn StateStore, name: &str) -> Result<(), crate::state::StateError> {
        self.cells.save(store, name)
    }
}

/// Was a key last seen on `last` new on `today` for a window of `window_days`?
pub fn new_within(last: u16, today: u16, window_days: u16) -> bool {
    last == 0 || today.saturating_sub(last) > window_days
}

/// Approximate counts (never under), with conservative update.
pub struct Counts {
    cells: Cells,
}

impl Counts {
    pub fn new(bytes: usize) -> Self {
        Self {
            cells: Cells::new(bytes),
        }
    }

    /// Estimate for `key` (at least the truth).
    pub fn get(&self, key: u64) -> u16 {
        self.cells.min(&self.cells.slots(key))
    }

    /// Adds one to `key`; returns the new estimate.
    pub fn add(&self, key: u64) -> u16 {
        let slots = self.cells.slots(key);
        let m = self.cells.min(&slots);
        let next = m.saturating_add(1);
        for s in slots {
            // Conservative update: raise only the cells below the new estimate.
            if self.cells.cells[s].fetch_max(next, Ordering::Relaxed) < next {
                self.cells.mark(s);
            }
        }
        next
    }

    /// Halves every count (ages the population out).
    pub fn halve(&self) {
        for (i, c) in self.cells.cells.iter().enumerate() {
            let v = c.load(Ordering::Relaxed);
            if v != 0 {
                c.store(v / 2, Ordering::Relaxed);
                self.cells.mark(i);
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.cells.bytes()
    }

    pub fn load(&self, store: &dyn StateStore, name: &str) {
        self.cells.load(store, name);
    }

    pub fn save(&self, store: &dyn StateStore, name: &str) -> Result<(), crate::state::StateError> {
        self.cells.save(store, name)
    }
}

/// Bloom-style chance that a never-stamped key looks seen, with `keys` keys in `cells` cells.
pub fn false_seen_bound(keys: usize, cells: usize) -> f64 {
    let load = (K * keys) as f64 / cells as f64;
    (1.0 - (-load).exp()).powi(K as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn key(i: u64) -> u64 {
        crate::state::stable_hash([i.to_le_bytes().as_slice()])
    }

    #[test]
    fn a_stamped_key_is_never_unseen_and_false_seen_stays_near_the_bloom_bound() {
        let s = Stamps::new(1 << 20); // 512k cells
        let n = 40_000;
        for i in 0..n {
            s.stamp(key(i), 100 + (i % 7) as u16);
        }
        for i in 0..n {
            assert!(s.last(key(i)) >= 100 + (i % 7) as u16, "key {i} lost");
        }
        let probes = 100_000;
        let false_seen = (n..n + probes).filter(|&i| s.last(key(i)) != 0).count();
        let rate = false_seen as f64 / probes as f64;
        let bound = false_seen_bound(n as usize, s.bytes() / 2);
        // The blocked layout costs a little over the classic bound; allow 3x and a floor.
        assert!(
            rate <= bound * 3.0 + 0.001,
            "false seen {rate:.5} against the Bloom bound {bound:.5}"
        );
        assert!(bound < 0.01, "sized for under 1%: {bound}");
    }

    #[test]
    fn days_move_forward_only_and_the_window_decides_novelty() {
        let s = Stamps::new(64 * 1024);
        assert_eq!(s.stamp(key(1), 200), 0);
        assert_eq!(s.stamp(key(1), 190), 200, "an older day does not go back");
        assert_eq!(s.last(key(1)), 200);
        assert!(!new_within(200, 230, 30));
        assert!(new_within(200, 231, 30), "31 days later is new again");
        assert!(new_within(0, 5, 30));
    }

    #[test]
    fn counts_never_under_count_and_over_count_by_little() {
        let c = Counts::new(1 << 18); // 128k cells
        let mut truth = std::collections::HashMap::new();
        // A skewed population: key i seen i % 50 + 1 times, 20k keys.
        for i in 0..20_000u64 {
            for _ in 0..=(i % 50) {
                c.add(key(i));
            }
            truth.insert(i, (i % 50 + 1) as u16);
        }
        let mut over = 0u64;
        for (i, t) in &truth {
            let e = c.get(key(*i));
            assert!(e >= *t, "under-count for {i}: {e} < {t}");
            over += u64::from(e - t);
        }
        let mean_over = over as f64 / truth.len() as f64;
        assert!(mean_over < 1.0, "mean over-count {mean_over}");
        c.halve();
        assert!(c.get(key(49)) >= 25 && c.get(key(49)) <= 26);
    }

    #[test]
    fn pages_survive_a_restart_and_only_changed_pages_are_written() {
        let store = MemoryStore::default();
        let s = Stamps::new(64 * 1024);
        s.stamp(key(7), 300);
        s.save(&store, "history").unwrap();
        assert_eq!(store.len(TREE).unwrap(), 1, "one page changed");
        s.save(&store, "history").unwrap();
        let again = Stamps::new(64 * 1024);
        again.load(&store, "history");
        assert_eq!(again.last(key(7)), 300);
        assert_eq!(again.last(key(8)), 0);
    }

    #[test]
    fn memory_is_fixed_by_the_size_not_the_keys() {
        let s = Stamps::new(1 << 20);
        let before = s.bytes();
        for i in 0..200_000 {
            s.stamp(key(i), 10);
        }
        assert_eq!(s.bytes(), before);
        assert!(s.fill() > 0.5);
    }
}
