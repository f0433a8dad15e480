//! The state store: a small key-value trait with an embedded implementation on sled and an in-memory one for tests.
//!
//! Everything rampart keeps across restarts (behavioural baselines now;
//! dedup windows, the outbox and the journal later) goes through [`StateStore`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open state store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("state store {tree}: {source}")]
    Io {
        tree: String,
        #[source]
        source: sled::Error,
    },
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

/// Named trees of byte keys and values.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError>;
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError>;
    /// Every entry of a tree, in key order.
    fn scan(&self, tree: &str) -> Result<Vec<Entry>, StateError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StateError>;
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
    fn scan(&self, tree: &str) -> Result<Vec<Entry>, StateError> {
        Ok(self
            .lock()
            .get(tree)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }
    fn flush(&self) -> Result<(), StateError> {
        Ok(())
    }
}

/// The embedded, durable store on sled.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(32 << 20)
            .open()
            .map_err(|source| StateError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { db })
    }

    fn tree(&self, tree: &str) -> Result<sled::Tree, StateError> {
        self.db.open_tree(tree).map_err(|source| StateError::Io {
            tree: tree.to_owned(),
            source,
        })
    }
}

impl StateStore for SledStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let io = |source| StateError::Io {
            tree: tree.to_owned(),
            source,
        };
        Ok(self.tree(tree)?.get(key).map_err(io)?.map(|v| v.to_vec()))
    }
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            tree: tree.to_owned(),
            source,
        };
        self.tree(tree)?.insert(key, value).map_err(io)?;
        Ok(())
    }
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            tree: tree.to_owned(),
            source,
        };
        self.tree(tree)?.remove(key).map_err(io)?;
        Ok(())
    }
    fn scan(&self, tree: &str) -> Result<Vec<Entry>, StateError> {
        let io = |source| StateError::Io {
            tree: tree.to_owned(),
            source,
        };
        self.tree(tree)?
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect()
    }
    fn flush(&self) -> Result<(), StateError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|source| StateError::Io {
                tree: "*".to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every store must keep; run against each implementation.
    fn contract(s: &dyn StateStore) {
        assert_eq!(s.get("t", b"k").unwrap(), None);
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
        s.delete("t", b"a").unwrap();
        assert_eq!(s.scan("t").unwrap().len(), 1);
        assert_eq!(s.get("other", b"k").unwrap(), Some(b"x".to_vec()));
        s.flush().unwrap();
    }

    #[test]
    fn memory_store_keeps_the_contract() {
        contract(&MemoryStore::default());
    }

    #[test]
    fn sled_store_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            contract(&s);
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.get("t", b"k").unwrap(), Some(b"v2".to_vec()));
    }
}
