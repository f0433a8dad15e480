//! The durable outbox (work waiting for a responder, one FIFO per responder) and the journal (what became of it, by idempotency key).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::expiry::{self, Tag};
use super::model::{Alert, Delivery, JournalEntry};
use super::{Op, StateError, StateStore};

pub const OUTBOX: &str = "outbox";
pub const JOURNAL: &str = "journal";
pub const ALERTS: &str = "alerts";
/// What on-call found each alert to be (written by triage), kept as long as the alert.
pub const OUTCOMES: &str = "outcomes";

fn corrupt(tree: &str, e: &serde_json::Error) -> StateError {
    StateError::Corrupt {
        tree: tree.to_owned(),
        message: e.to_string(),
    }
}

/// The outbox and the journal over one store.
#[derive(Debug)]
pub struct Outbox {
    store: Arc<dyn StateStore>,
    seq: AtomicU64,
    notify: Arc<Notify>,
    /// Serialises decisions on parked responses (read, then write).
    decide: std::sync::Mutex<()>,
}

fn prefix(responder: &str) -> Vec<u8> {
    let mut p = responder.as_bytes().to_vec();
    p.push(0);
    p
}

impl Outbox {
    pub fn open(store: Arc<dyn StateStore>) -> Result<Self, StateError> {
        // Sequence numbers only order items within a responder; restart above the highest in use.
        let max = store
            .scan(OUTBOX)?
            .iter()
            .filter_map(|(k, _)| k.get(k.len().checked_sub(8)?..)?.try_into().ok())
            .map(u64::from_be_bytes)
            .max()
            .unwrap_or(0);
        Ok(Self {
            store,
            seq: AtomicU64::new(max + 1),
            notify: Arc::new(Notify::new()),
            decide: std::sync::Mutex::new(()),
        })
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Woken whenever work is enqueued.
    pub fn notified(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Wakes the dispatcher (after the enqueued work is durable).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// The write that puts `d` at the end of its responder's queue.
    pub fn enqueue(&self, d: &Delivery) -> Op {
        let mut key = prefix(&d.responder);
        key.extend_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        Op::Put(OUTBOX, key, serde_json::to_vec(d).unwrap_or_default())
    }

    /// The responders that have queued work.
    pub fn responders(&self) -> Result<Vec<String>, StateError> {
        let mut out: Vec<String> = Vec::new();
        let mut from = Vec::new();
        while let Some((k, _)) = self.store.range(OUTBOX, &from, None, 1)?.pop() {
            let name = k.split(|b| *b == 0).next().unwrap_or_default();
            out.push(String::from_utf8_lossy(name).into_owned());
            from = name.to_vec();
            from.push(1);
        }
        Ok(out)
    }

    /// The first `limit` items of a responder's queue, in order.
    pub fn head(
        &self,
        responder: &str,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Delivery)>, StateError> {
        self.head_from(responder, &prefix(responder), limit)
    }

    /// Up to `limit` items of a responder's queue from key `from` on, in order.
    pub fn head_from(
        &self,
        responder: &str,
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Delivery)>, StateError> {
        let mut to = responder.as_bytes().to_vec();
        to.push(1);
        self.store
            .range(OUTBOX, from, Some(&to), limit)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|d| (k, d))
                    .map_err(|e| corrupt(OUTBOX, &e))
            })
            .collect()
    }

    /// Keeps an item queued with its new attempt count and earliest next attempt.
    pub fn reschedule(&self, key: &[u8], d: &Delivery) -> Result<(), StateError> {
        let v = serde_json::to_vec(d).map_err(|e| corrupt(OUTBOX, &e))?;
        self.store.put(OUTBOX, key, &v)?;
        self.store.flush()
    }

    /// Records the outcome in the journal and takes the item off the queue, durably and in that order.
    pub fn finish(&self, key: &[u8], entry: &JournalEntry, expires: i64) -> Result<(), StateError> {
        let v = serde_json::to_vec(entry).map_err(|e| corrupt(JOURNAL, &e))?;
        self.store.apply(&[
            Op::Put(JOURNAL, entry.id.as_bytes().to_vec(), v),
            expiry::put(expires, Tag::Journal, entry.id.as_bytes()),
            Op::Delete(OUTBOX, key.to_vec()),
        ])?;
        self.store.flush()
    }

    /// Rewrites a journal entry (an approval decided, an action undone).
    pub fn record(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let v = serde_json::to_vec(entry).map_err(|e| corrupt(JOURNAL, &e))?;
        self.store.put(JOURNAL, entry.id.as_bytes(), &v)?;
        self.store.flush()
    }

    /// Drops an item whose delivery the journal already has (a replay).
    pub fn drop_item(&self, key: &[u8]) -> Result<(), StateError> {
        self.store.delete(OUTBOX, key)?;
        self.store.flush()
    }

    pub fn journal(&self, id: &str) -> Result<Option<JournalEntry>, StateError> {
        self.store
            .get(JOURNAL, id.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(JOURNAL, &e)))
            .transpose()
    }

    /// Every journal entry, newest first.
    pub fn journal_entries(&self) -> Result<Vec<JournalEntry>, StateError> {
        let mut v: Vec<JournalEntry> = decode_all(&*self.store, JOURNAL)?;
        v.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Every retained alert, newest first.
    pub fn alerts(&self) -> Result<Vec<Alert>, StateError> {
        let mut v: Vec<Alert> = decode_all(&*self.store, ALERTS)?;
        v.sort_by(|a, b| {
            b.first_seen
                .cmp(&a.first_seen)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(v)
    }

    pub(super) fn decide_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.decide.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Items still waiting, across responders.
    pub fn pending(&self) -> Result<usize, StateError> {
        self.store.len(OUTBOX)
    }
}

/// What `rampart alerts` / `rampart actions` (and `/api/...`) list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Alerts,
    Actions,
}

impl Listing {
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Alerts => "alerts",
            Listing::Actions => "actions",
        }
    }
}

impl Outbox {
    /// The newest `limit` alerts (with open windows' counts) or journal entries, as JSON.
    pub fn listing(&self, what: Listing, limit: usize) -> Result<serde_json::Value, StateError> {
        let v = match what {
            Listing::Alerts => {
                let mut a = super::stage::alerts_with_live_counts(&*self.store, self)?;
                a.truncate(limit);
                serde_json::to_value(a)
            }
            Listing::Actions => {
                let mut j = self.journal_entries()?;
                j.truncate(limit);
                serde_json::to_value(j)
            }
        };
        v.map_err(|e| corrupt(JOURNAL, &e))
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(
    store: &dyn StateStore,
    tree: &str,
) -> Result<Vec<T>, StateError> {
    store
        .scan(tree)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| corrupt(tree, &e)))
        .collect()
}
