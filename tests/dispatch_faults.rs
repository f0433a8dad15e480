//! The dispatcher when the state store fails between doing a delivery and journaling it (disk full): the outcome is kept and written first once the store works, and the delivery is not done again meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::slack_kit;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::respond::dispatch::DispatchSettings;
use rampart::respond::{BoxFuture, Effect, Responder, Retry};
use rampart::state::model::{Delivery, Status};
use rampart::state::{Entry, MemoryStore, StateError, StateSettings, StateStage, StateStore};

/// A store whose writes fail (as on a full disk) while `failing` is set.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStore,
    failing: AtomicBool,
    refused: AtomicUsize,
}

impl Flaky {
    fn check(&self, tree: &str) -> Result<(), StateError> {
        if !self.failing.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::SeqCst);
        Err(StateError::Io {
            tree: tree.to_owned(),
            source: sled::Error::Io(std::io::Error::from_raw_os_error(28)),
        })
    }
}

impl StateStore for Flaky {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(tree, key)
    }
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.check(tree)?;
        self.inner.put(tree, key, value)
    }
    fn delete(&self, tree: &str, key: &[u8]) -> Result<(), StateError> {
        self.check(tree)?;
        self.inner.delete(tree, key)
    }
    fn range(
        &self,
        tree: &str,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        self.inner.range(tree, from, to, limit)
    }
    fn len(&self, tree: &str) -> Result<usize, StateError> {
        self.inner.len(tree)
    }
    fn flush(&self) -> Result<(), StateError> {
        self.check("*")
    }
    fn size_on_disk(&self) -> Result<u64, StateError> {
        Ok(0)
    }
}

/// Counts deliveries; the disk fills up while the first one is being done.
struct Counter {
    done: AtomicUsize,
    store: Arc<Flaky>,
}

impl Responder for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn takes_every_alert(&self) -> bool {
        true
    }
    fn deliver<'a>(&'a self, _: &'a Delivery, _: bool) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            self.done.fetch_add(1, Ordering::SeqCst);
            self.store.failing.store(true, Ordering::SeqCst);
            Ok(Effect::done("counted"))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_done_but_not_journaled_is_not_done_again_and_is_journaled_once_the_store_works()
{
    let store = Arc::new(Flaky::default());
    let st = Arc::new(
        StateStage::open(
            store.clone(),
            StateSettings {
                sinks: vec!["counter".into()],
                ..StateSettings::default()
            },
        )
        .unwrap(),
    );
    let counter = Arc::new(Counter {
        done: AtomicUsize::new(0),
        store: store.clone(),
    });
    let d = common::Dispatching::over(
        st.clone(),
        vec![counter.clone()],
        DispatchSettings {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..DispatchSettings::default()
        },
    );
    d.feed(&slack_kit::judged(
        "a-1",
        1_795_000_000,
        "alice@example.com",
        "p",
    ));
    // The dispatcher keeps trying to journal (each round) and delivers nothing meanwhile.
    common::eventually(
        "several rounds against the failing store",
        Duration::from_secs(20),
        || (store.refused.load(Ordering::SeqCst) >= 3).then_some(()),
    )
    .await;
    assert_eq!(
        counter.done.load(Ordering::SeqCst),
        1,
        "delivered again while the store failed"
    );
    store.failing.store(false, Ordering::SeqCst);
    let id = "prod-eu/a-1/p/counter";
    let entry = common::eventually("the outcome journaled", Duration::from_secs(20), || {
        st.outbox().journal(id).unwrap()
    })
    .await;
    assert_eq!(entry.status, Status::Done);
    assert_eq!(entry.detail, "counted");
    common::eventually("the outbox empty", Duration::from_secs(20), || {
        (st.outbox().pending().unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(counter.done.load(Ordering::SeqCst), 1, "done exactly once");
    d.stop().await;
}
