//! Tracks which records of each partition (or file) are done, so that only finished work is ever committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Positions handed out but not yet acknowledged, for one partition or file.
///
/// A record spans `[start, end)`; for Kafka that is `[offset, offset + 1)`, for
/// a file the bytes of one line. The committable position is the start of the
/// oldest pending record, or the end of the newest one when none is pending.
#[derive(Debug, Default)]
pub struct PartitionOffsets {
    pending: BTreeMap<i64, i64>,
    high_end: Option<i64>,
    committed: Option<i64>,
}

impl PartitionOffsets {
    pub fn register(&mut self, start: i64, end: i64) {
        self.pending.insert(start, end);
        self.high_end = Some(self.high_end.map_or(end, |h| h.max(end)));
    }

    /// Marks a record done; returns whether anything changed.
    pub fn ack(&mut self, start: i64) -> bool {
        self.pending.remove(&start).is_some()
    }

    /// The position to resume from after everything handed out so far.
    pub fn committable(&self) -> Option<i64> {
        match self.pending.keys().next() {
            Some(first) => Some(*first),
            None => self.high_end,
        }
    }

    /// The committable position, if it moved since the last call.
    pub fn take_advance(&mut self) -> Option<i64> {
        let c = self.committable()?;
        if self.committed == Some(c) {
            return None;
        }
        self.committed = Some(c);
        Some(c)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Pending positions for many slots (partitions, files), shared between a
/// source and the workers that acknowledge its records.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    slots: Mutex<HashMap<u64, PartitionOffsets>>,
    changed: Condvar,
}

impl OffsetTracker {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<u64, PartitionOffsets>> {
        // A poisoned lock only means a worker panicked mid-update; the map is still consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, slot: u64, start: i64, end: i64) {
        self.lock().entry(slot).or_default().register(start, end);
    }

    pub fn ack(&self, slot: u64, start: i64) {
        let mut slots = self.lock();
        if let Some(p) = slots.get_mut(&slot) {
            p.ack(start);
        }
        drop(slots);
        self.changed.notify_all();
    }

    /// Drops a slot (partition revoked, file closed); later acks for it are ignored.
    pub fn forget(&self, slot: u64) -> Option<PartitionOffsets> {
        self.lock().remove(&slot)
    }

    /// Blocks until the given slots have nothing pending, or the deadline passes.
    /// Returns the number of records still pending.
    pub fn wait_drained(&self, slots: &[u64], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            let pending: usize = slots
                .iter()
                .filter_map(|s| guard.get(s))
                .map(PartitionOffsets::pending)
                .sum();
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                return pending;
            }
            guard = match self.changed.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Every slot whose committable position moved since the last call.
    pub fn advances(&self) -> Vec<(u64, i64)> {
        self.lock()
            .iter_mut()
            .filter_map(|(slot, p)| p.take_advance().map(|c| (*slot, c)))
            .collect()
    }
}

impl super::AckTarget for OffsetTracker {
    fn ack(&self, slot: u64, position: i64) {
        OffsetTracker::ack(self, slot, position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_up_to_the_oldest_unacknowledged_record() {
        let mut p = PartitionOffsets::default();
        for o in 10..15 {
            p.register(o, o + 1);
        }
        p.ack(11);
        p.ack(12);
        assert_eq!(p.committable(), Some(10));
        p.ack(10);
        assert_eq!(p.committable(), Some(13));
        p.ack(14);
        assert_eq!(p.committable(), Some(13));
        p.ack(13);
        assert_eq!(p.committable(), Some(15));
    }

    #[test]
    fn reports_each_advance_once() {
        let t = OffsetTracker::default();
        t.register(1, 0, 1);
        assert_eq!(t.advances(), vec![(1, 0)]);
        assert!(t.advances().is_empty());
        t.ack(1, 0);
        assert_eq!(t.advances(), vec![(1, 1)]);
    }

    #[test]
    fn waits_for_acks_from_another_thread() {
        let t = std::sync::Arc::new(OffsetTracker::default());
        t.register(7, 0, 1);
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.ack(7, 0));
        assert_eq!(t.wait_drained(&[7], Duration::from_secs(10)), 0);
        h.join().unwrap();
        t.register(7, 1, 2);
        assert_eq!(t.wait_drained(&[7], Duration::from_millis(1)), 1);
    }
}
