//! The state stage's foundation: a small key-value trait with an embedded implementation on sled and an in-memory one for tests.
//!
//! Everything rampart keeps across restarts goes through [`StateStore`]:
//! behavioural baselines, dedup windows and thresholds ([`stage`]), entity
//! risk ([`risk`]), the outbox and the journal ([`outbox`]), and the expiry
//! index that bounds them all ([`expiry`]).

pub mod approvals;
pub mod expiry;
pub mod model;
pub mod outbox;
pub mod risk;
pub mod sled_store;
pub mod stage;
pub mod summary;

pub use sled_store::SledStore;
pub use stage::{StateSettings, StateStage};

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Mutex;

/// How a response finds what it acts on in the event that raised its alert (a revocation, the
/// binding the event touched). Given to the stage by whoever builds it, so that the stage names no
/// responder; what it returns travels, opaque, in the delivery's `target`.
pub trait ResponseTargets: Send + Sync {
    /// The target of a response of `kind` (its responder's queue name) to `ev`, if it has one.
    fn target(&self, kind: &str, ev: &crate::event::AuditEvent) -> Option<serde_json::Value>;
}

/// Whether a standing decision of on-call's (a suppression) silences an alert about to be raised;
/// given to the stage by whoever builds it, so that the stage names no triage.
pub trait Silencer: Send + Sync {
    /// The id of the suppression that silences `alert` now, if one does.
    fn silenced_by(&self, alert: &model::Alert) -> Option<String>;
}

/// Errors of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open state store at {path}: {}", describe(source))]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("state store {tree}: {}", describe(source))]
    Io {
        tree: String,
        #[source]
        source: sled::Error,
    },
    #[error("state store {tree}: corrupt entry: {message}")]
    Corrupt { tree: String, message: String },
}

/// A sled error as a person should read it: for I/O errors the operating system's words
/// ("No space left on device (os error 28)"), which sled's own text buries in a debug dump once
/// it has stored the error (it clones I/O errors through their `Debug` form).
pub fn describe(e: &sled::Error) -> String {
    let sled::Error::Io(io) = e else {
        return e.to_string();
    };
    let text = io.to_string();
    let code = io.raw_os_error().or_else(|| {
        text.split("code: ")
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    match code {
        Some(c) => std::io::Error::from_raw_os_error(c).to_string(),
        None => text,
    }
}

/// FNV-1a over `parts`: stable across processes, builds and Rust versions, so
/// it may be persisted (baseline value hashes) or used to route (partitions, file checkpoints).
pub fn stable_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);
type Trees = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(&'static str, Vec<u8>, Vec<u8>),
    Delete(&'static str, Vec<u8>),
}

/// Named trees of byte keys and values.
///
/// Writes become durable at [`StateStore::flush`]; a crash before it keeps a
/// prefix of the writes in the order they were made (sled's log is
/// sequential), which the state stage relies on: it writes the outbox before
/// the record that marks an event as handled.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError>;
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError>;
    /// Every entry of a tree, in key order.
    fn scan(&self, tree: &str) -> Result<Vec<Entry>, StateError> {
        self.range(tree, &[], None, usize::MAX)
    }
    /// Up to `limit` entries with keys in `[from, to)` (`to` absent: to the end), in key order.
    fn range(
        &self,
        tree: &str,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError>;
    /// Entries in a tree.
    fn len(&self, tree: &str) -> Result<usize, StateError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StateError>;
    /// Bytes the store occupies on disk (0 for the in-memory store).
    fn size_on_disk(&self) -> Result<u64, StateError>;
    /// Why the store cannot make writes durable — a write or flush failed (disk full, read-only,
    /// I/O error) and none has succeeded since — for readiness; `None` while it works.
    fn failure(&self) -> Option<String> {
        None
    }
    /// Applies writes in order.
    fn apply(&self, ops: &[Op]) -> Result<(), StateError> {
        for op in ops {
            match op {
                Op::Put(t, k, v) => self.put(t, k, v)?,
                Op::Delete(t, k) => self.delete(t, k)?,
            }
        }
        Ok(())
    }
}

/// A store that lives only as long as the process (tests, `replay`).
#[derive(Debug, Default)]
pub struct MemoryStore {
    trees: Mutex<Trees>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Trees> {
        self.trees.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateStore for MemoryStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.lock().get(tree).and_then(|t| t.get(key).cloned()))
    }
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.lock()
            .entry(tree.to_owned())
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError> {
        if let Some(t) = self.lock().get_mut(tree) {
            t.remove(key);
        }
        Ok(())
    }
    fn range(
        &self,
        tree: &str,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        let trees = self.lock();
        let Some(t) = trees.get(tree) else {
            return Ok(Vec::new());
        };
        let upper = to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec()));
        Ok(t.range((Bound::Included(from.to_vec()), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn len(&self, tree: &str) -> Result<usize, StateError> {
        Ok(self.lock().get(tree).map_or(0, BTreeMap::len))
    }
    fn flush(&self) -> Result<(), StateError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, StateError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every store must keep; run against each implementation.
    pub(crate) fn contract(s: &dyn StateStore) {
        assert_eq!(s.get("t", b"k").unwrap(), None);
        assert_eq!(s.len("t").unwrap(), 0);
        s.put("t", b"k", b"v1").unwrap();
        s.put("t", b"a", b"v0").unwrap();
        s.put("other", b"k", b"x").unwrap();
        assert_eq!(s.get("t", b"k").unwrap(), Some(b"v1".to_vec()));
        s.put("t", b"k", b"v2").unwrap();
        assert_eq!(
            s.scan("t").unwrap(),
            vec![
                (b"a".to_vec(), b"v0".to_vec()),
                (b"k".to_vec(), b"v2".to_vec())
            ]
        );
        s.apply(&[
            Op::Put("t", b"b".to_vec(), b"v3".to_vec()),
            Op::Put("t", b"c".to_vec(), b"v4".to_vec()),
            Op::Delete("t", b"c".to_vec()),
        ])
        .unwrap();
        assert_eq!(s.len("t").unwrap(), 3);
        let keys = |v: Vec<Entry>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(s.range("t", b"b", None, 10).unwrap()),
            vec![b"b".to_vec(), b"k".to_vec()]
        );
        assert_eq!(
            keys(s.range("t", b"", Some(b"k"), 10).unwrap()),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            keys(s.range("t", b"", None, 1).unwrap()),
            vec![b"a".to_vec()]
        );
        assert!(s.range("missing", b"", None, 10).unwrap().is_empty());
        s.delete("t", b"a").unwrap();
        s.delete("t", b"never-there").unwrap();
        assert_eq!(s.scan("t").unwrap().len(), 2);
        assert_eq!(s.get("other", b"k").unwrap(), Some(b"x".to_vec()));
        s.flush().unwrap();
    }

    #[test]
    fn memory_store_keeps_the_contract() {
        contract(&MemoryStore::default());
    }

    #[test]
    fn io_errors_read_as_the_operating_system_words_them() {
        let raw = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        assert_eq!(describe(&raw), "No space left on device (os error 28)");
        // What sled hands out after storing an error: the Debug form wrapped again.
        let cloned = sled::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("{:?}", std::io::Error::from_raw_os_error(28)),
        ));
        assert_eq!(describe(&cloned), "No space left on device (os error 28)");
        assert_eq!(
            describe(&sled::Error::Unsupported("x".into())),
            sled::Error::Unsupported("x".into()).to_string()
        );
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash([&b""[..]]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash([&b"a"[..]]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            stable_hash([&b"ab"[..]]),
            stable_hash([&b"a"[..], &b"b"[..]])
        );
    }
}
