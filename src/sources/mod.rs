//! Sources: Kafka, the API server's webhook backend, and log files; each turns input into [`Record`]s carrying an [`Ack`].

pub mod file;
pub mod kafka;
mod offsets;
pub mod registry;
pub mod webhook;
mod webhook_tls;

pub use offsets::{OffsetTracker, PartitionOffsets};

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::event::{ClusterHint, Provenance, SourceKind};

/// One unit of input: a Kafka message, a webhook body, or a log line.
#[derive(Debug)]
pub struct Record {
    pub bytes: Bytes,
    pub origin: Origin,
    /// The cluster name as the transport reported it.
    pub cluster: ClusterHint,
    /// Records with the same key go to the same worker, in order.
    pub route_key: u64,
    pub ack: Ack,
}

/// Where a record was read, copied into each event's provenance.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source: SourceKind,
    pub topic: Option<Arc<str>>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub file: Option<Arc<str>>,
    pub line: Option<u64>,
    pub received_at_ms: i64,
}

impl Origin {
    /// The provenance of an event found at `index` of this record; `filled` is what its decoder filled in.
    pub fn provenance(&self, cluster: String, index: u32, filled: Vec<String>) -> Provenance {
        Provenance {
            source: self.source,
            cluster,
            topic: self.topic.as_deref().map(str::to_owned),
            partition: self.partition,
            offset: self.offset,
            file: self.file.as_deref().map(str::to_owned),
            line: self.line,
            index,
            received_at_ms: self.received_at_ms,
            filled,
        }
    }
}

/// Receives acknowledgements for positions it handed out.
pub trait AckTarget: Send + Sync + std::fmt::Debug {
    /// `slot` names a partition (or file), `position` the record inside it.
    fn ack(&self, slot: u64, position: i64);
}

/// Proof that a record has been fully handled downstream.
///
/// Calling [`Ack::ack`] lets the source advance past the record. Dropping an
/// `Ack` unacknowledged leaves the record pending, so it is read again after
/// a restart: at-least-once by construction.
#[derive(Debug, Default)]
pub struct Ack(Option<AckInner>);

#[derive(Debug)]
enum AckInner {
    Tracked(Arc<dyn AckTarget>, u64, i64),
    Reply(oneshot::Sender<()>),
}

impl Ack {
    /// An ack that advances a tracked position.
    pub fn tracked(target: Arc<dyn AckTarget>, slot: u64, position: i64) -> Self {
        Self(Some(AckInner::Tracked(target, slot, position)))
    }

    /// An ack that answers a waiting caller (a webhook request).
    pub fn reply() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(AckInner::Reply(tx))), rx)
    }

    /// An ack nobody waits for (tests, benchmarks).
    pub fn none() -> Self {
        Self(None)
    }

    pub fn ack(mut self) {
        match self.0.take() {
            Some(AckInner::Tracked(t, slot, pos)) => t.ack(slot, pos),
            Some(AckInner::Reply(tx)) => {
                let _ = tx.send(());
            }
            None => {}
        }
    }
}

/// The pipeline no longer takes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Sends batches of records to the workers: one bounded channel per worker,
/// chosen by route key so that a partition's records stay in order.
#[derive(Debug, Clone)]
pub struct Router {
    workers: Arc<[mpsc::Sender<Vec<Record>>]>,
}

impl Router {
    pub fn new(workers: Vec<mpsc::Sender<Vec<Record>>>) -> Self {
        Self {
            workers: workers.into(),
        }
    }

    fn index(&self, key: u64) -> usize {
        (key % (self.workers.len() as u64).max(1)) as usize
    }

    /// Sends one record on its own (webhook requests). Waits while the worker's
    /// channel is full (backpressure); errors once the pipeline has stopped,
    /// dropping the record unacknowledged.
    pub async fn send(&self, record: Record) -> Result<(), Stopped> {
        let i = self.index(record.route_key);
        self.workers[i]
            .send(vec![record])
            .await
            .map_err(|_| Stopped)
    }
}

/// Collects records per worker and hands them over in batches, so that a
/// thread hand-off is paid per batch rather than per record. Used from the
/// reader threads (Kafka, files), which may block.
#[derive(Debug)]
pub struct Batcher {
    router: Router,
    pending: Vec<Vec<Record>>,
    max: usize,
}

impl Batcher {
    pub fn new(router: Router, max: usize) -> Self {
        let pending = (0..router.workers.len()).map(|_| Vec::new()).collect();
        Self {
            router,
            pending,
            max: max.max(1),
        }
    }

    /// Adds a record; sends its worker's batch once it is full.
    pub fn push(&mut self, record: Record) -> Result<(), Stopped> {
        let i = self.router.index(record.route_key);
        self.pending[i].push(record);
        if self.pending[i].len() >= self.max {
            self.send(i)?;
        }
        Ok(())
    }

    /// Sends every partial batch (the source has nothing more right now).
    pub fn flush(&mut self) -> Result<(), Stopped> {
        for i in 0..self.pending.len() {
            if !self.pending[i].is_empty() {
                self.send(i)?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.pending.iter().all(Vec::is_empty)
    }

    fn send(&mut self, i: usize) -> Result<(), Stopped> {
        let batch = std::mem::replace(&mut self.pending[i], Vec::with_capacity(self.max));
        self.router.workers[i]
            .blocking_send(batch)
            .map_err(|_| Stopped)
    }
}

/// A stable 64-bit key for routing a (topic, partition) or a file.
pub fn route_key(name: &str, n: i64) -> u64 {
    crate::state::stable_hash([name.as_bytes(), &n.to_le_bytes()[..]])
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
