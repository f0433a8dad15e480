//! The embedded, durable [`StateStore`] on sled.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Entry, StateError, StateStore};

/// The store on sled: one tree per kind of state, flushed by the state stage before acknowledging.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
    /// Opened trees: `open_tree` takes a lock and a lookup on every call.
    trees: std::sync::RwLock<std::collections::HashMap<String, sled::Tree>>,
    /// The last write or flush error, until a flush succeeds (sled refuses every write after an
    /// I/O error until it is reopened, so in practice until rampart restarts).
    failure: Mutex<Option<String>>,
}

/// sled's page cache by default. sled's memory grows beyond it with the number of pages (about
/// 120 MiB more with a million live dedup windows), so it is kept small: 16 MiB keeps the
/// state stage within 200 MiB RSS at a million windows (`cargo bench --bench state`).
pub const DEFAULT_CACHE: u64 = 16 << 20;

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        Self::open_with_cache(path, DEFAULT_CACHE)
    }

    /// Opens the store with a page cache of `cache` bytes.
    pub fn open_with_cache(path: &Path, cache: u64) -> Result<Self, StateError> {
        let open = || sled::Config::new().path(path).cache_capacity(cache).open();
        // A store just closed in this process is released by sled's background flusher when it
        // next wakes (within its 500 ms flush interval); wait for that rather than fail. Another
        // process holding the store still fails, after the same wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut res = open();
        while matches!(&res, Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            res = open();
        }
        let db = res.map_err(|source| StateError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            db,
            path: path.to_owned(),
            trees: Default::default(),
            failure: Mutex::default(),
        })
    }

    /// Remembers a failed write for [`StateStore::failure`].
    fn failed<T>(&self, tree: &str, r: Result<T, sled::Error>) -> Result<T, StateError> {
        r.map_err(|source| {
            let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            *f = Some(format!(
                "cannot write to {}: {}",
                self.path.display(),
                super::describe(&source)
            ));
            io(tree, source)
        })
    }

    fn tree(&self, tree: &str) -> Result<sled::Tree, StateError> {
        if let Some(t) = self
            .trees
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tree)
        {
            return Ok(t.clone());
        }
        let t = self.failed(tree, self.db.open_tree(tree))?;
        self.trees
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tree.to_owned(), t.clone());
        Ok(t)
    }
}

fn io(tree: &str, source: sled::Error) -> StateError {
    StateError::Io {
        tree: tree.to_owned(),
        source,
    }
}

impl StateStore for SledStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let v = self.tree(tree)?.get(key).map_err(|e| io(tree, e))?;
        Ok(v.map(|v| v.to_vec()))
    }
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.failed(tree, self.tree(tree)?.insert(key, value))?;
        Ok(())
    }
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError> {
        self.failed(tree, self.tree(tree)?.remove(key))?;
        Ok(())
    }
    fn range(
        &self,
        tree: &str,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        let t = self.tree(tree)?;
        let iter = match to {
            Some(to) => t.range(from..to),
            None => t.range(from..),
        };
        iter.take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| io(tree, e))
            })
            .collect()
    }
    fn len(&self, tree: &str) -> Result<usize, StateError> {
        Ok(self.tree(tree)?.len())
    }
    fn flush(&self) -> Result<(), StateError> {
        self.failed("*", self.db.flush())?;
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, StateError> {
        self.db.size_on_disk().map_err(|e| io("*", e))
    }
    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_store_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            super::super::tests::contract(&s);
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.get("t", b"k").unwrap(), Some(b"v2".to_vec()));
        assert!(s.size_on_disk().unwrap() > 0);
    }
}
