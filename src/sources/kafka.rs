//! The Kafka source: a consumer group member whose offsets are stored only once every event of a message is acknowledged.
//!
//! librdkafka is blocking-friendly, so the consumer lives on its own thread:
//! it polls, routes each message to the worker that owns its partition
//! (per-partition order), and stores the committable offset of each
//! partition as acknowledgements come back. Auto-commit then commits only
//! stored offsets. On revocation and shutdown it waits, within
//! `drain_timeout`, for outstanding acks before the partitions are released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

use super::registry::{BoxFuture, Source, SourceError, StartContext};
use super::{now_ms, route_key, Ack, Batcher, OffsetTracker, Origin, Record, Router};
use crate::config::{KafkaConnection, KafkaSourceConfig, StartFrom};
use crate::event::{ClusterResolver, SourceKind};
use crate::telemetry::Health;

/// Errors of the Kafka source.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("cannot create kafka consumer for group {group}: {source}")]
    Create {
        group: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot subscribe to topics {topics:?}: {source}")]
    Subscribe {
        topics: Vec<String>,
        #[source]
        source: KafkaError,
    },
    #[error("kafka consumer thread failed: {0}")]
    Thread(String),
}

/// Base librdkafka settings for any client: brokers plus pass-through properties.
pub fn client_config(conn: &KafkaConnection) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &conn.brokers);
    for (k, v) in &conn.properties {
        c.set(k, v.expose());
    }
    c
}

/// Settings for a producer whose records must not be lost or duplicated by broker retries
/// (dead letters, the alerts topic, the enriched-events topic): acks from all replicas, idempotent.
pub fn producer_config(conn: &KafkaConnection) -> ClientConfig {
    let mut c = client_config(conn);
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000");
    c
}

/// Maps (topic, partition) to tracker slots and back.
#[derive(Debug, Default)]
struct Slots {
    by_slot: HashMap<u64, (Arc<str>, i32)>,
}

impl Slots {
    fn slot(&mut self, topic: &str, partition: i32) -> (u64, Arc<str>) {
        let slot = route_key(topic, i64::from(partition));
        let entry = self
            .by_slot
            .entry(slot)
            .or_insert_with(|| (Arc::from(topic), partition));
        (slot, entry.0.clone())
    }
}

/// librdkafka callbacks: lag and broker connectivity from statistics, drain-and-commit on revocation.
struct SourceContext {
    tracker: Arc<OffsetTracker>,
    slots: Mutex<Slots>,
    drain_timeout: Duration,
    health: Arc<Health>,
}

/// The readiness component the Kafka source reports under.
const COMPONENT: &str = "kafka";

/// What keeps the consumer from consuming, as librdkafka's statistics show it: no broker
/// connection, or no group coordinator. `None` when it is connected and in its group.
fn connectivity_problem(statistics: &Statistics) -> Option<String> {
    let connected = statistics
        .brokers
        .values()
        .any(|b| b.state == "UP" || b.state == "UPDATE");
    if !connected {
        return Some("no connection to any broker; consumption paused until one answers".into());
    }
    match &statistics.cgrp {
        Some(g) if g.state != "up" => Some(format!(
            "consumer group coordinator unavailable (state {}); consumption paused",
            g.state
        )),
        _ => None,
    }
}

impl SourceContext {
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the committable offset of every partition that advanced.
    fn store_advances(&self, consumer: &BaseConsumer<SourceContext>) {
        let advances = self.tracker.advances();
        if advances.is_empty() {
            return;
        }
        let slots = self.lock_slots();
        let mut tpl = TopicPartitionList::new();
        for (slot, offset) in advances {
            if let Some((topic, partition)) = slots.by_slot.get(&slot) {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(offset));
            }
        }
        drop(slots);
        if let Err(e) = consumer.store_offsets(&tpl) {
            // A partition revoked meanwhile refuses the store; its new owner re-reads.
            tracing::debug!(error = %e, "could not store some offsets");
        }
    }

    fn release(&self, consumer: &BaseConsumer<SourceContext>, tpl: &TopicPartitionList) {
        let slots: Vec<u64> = tpl
            .elements()
            .iter()
            .map(|e| route_key(e.topic(), i64::from(e.partition())))
            .collect();
        let left = self.tracker.wait_drained(&slots, self.drain_timeout);
        if left > 0 {
            tracing::warn!(
                pending = left,
                "partitions revoked before all their events were acknowledged; the new owner will re-read them"
            );
        }
        self.store_advances(consumer);
        let mut commit = TopicPartitionList::new();
        for slot in &slots {
            let committable = self.tracker.forget(*slot).and_then(|p| p.committable());
            let name = self.lock_slots().by_slot.remove(slot);
            if let (Some(offset), Some((topic, partition))) = (committable, name) {
                let _ = commit.add_partition_offset(&topic, partition, Offset::Offset(offset));
            }
        }
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!(error = %e, "commit on partition release failed");
            }
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            L::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            L::Notice | L::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
            L::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        self.health
            .set_problem(COMPONENT, connectivity_problem(&statistics));
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                crate::internal_events::ConsumerLag {
                    topic,
                    partition: *partition,
                    lag: p.consumer_lag,
                }
                .emit();
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                crate::internal_events::Rebalanced {
                    kind: "revoke",
                    partitions: tpl.count(),
                }
                .emit();
                self.release(consumer, tpl);
            }
            Rebalance::Assign(tpl) => {
                crate::internal_events::Rebalanced {
                    kind: "assign",
                    partitions: tpl.count(),
                }
                .emit();
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// A running Kafka source; join it to learn how it ended.
pub struct KafkaSource {
    thread: std::thread::JoinHandle<Result<(), KafkaSourceError>>,
}

impl KafkaSource {
    /// Creates the consumer, subscribes, and starts the poll thread; broker outages are reported to `health`.
    pub fn start(
        conn: &KafkaConnection,
        cfg: &KafkaSourceConfig,
        resolver: ClusterResolver,
        router: Router,
        batch_size: usize,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) -> Result<Self, KafkaSourceError> {
        let tracker = Arc::new(OffsetTracker::default());
        let ctx = SourceContext {
            tracker: tracker.clone(),
            slots: Mutex::default(),
            drain_timeout: cfg.drain_timeout.get(),
            health,
        };
        let mut cc = client_config(conn);
        cc.set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                cfg.commit_interval.get().as_millis().to_string(),
            )
            .set(
                "auto.offset.reset",
                match cfg.start_from {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            )
            .set(
                "statistics.interval.ms",
                cfg.lag_interval.get().as_millis().to_string(),
            )
            .set("enable.partition.eof", "false")
            .set(
                "partition.assignment.strategy",
                cfg.partition_assignment.strategy(),
            )
            .set(
                "session.timeout.ms",
                cfg.session_timeout.get().as_millis().to_string(),
            );
        if let Some(id) = cfg.group_instance_id.as_deref() {
            cc.set("group.instance.id", id);
        }
        for (k, v) in &cfg.properties {
            cc.set(k, v.expose());
        }
        let consumer: BaseConsumer<SourceContext> =
            cc.create_with_context(ctx)
                .map_err(|source| KafkaSourceError::Create {
                    group: cfg.group_id.clone(),
                    source,
                })?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaSourceError::Subscribe {
                topics: cfg.topics.clone(),
                source,
            })?;
        let poll = PollLoop {
            consumer,
            tracker,
            resolver,
            batcher: Some(Batcher::new(router, batch_size)),
            shutdown,
            drain_timeout: cfg.drain_timeout.get(),
        };
        let thread = std::thread::Builder::new()
            .name("kafka-source".into())
            .spawn(move || poll.run())
            .map_err(|e| KafkaSourceError::Thread(e.to_string()))?;
        Ok(Self { thread })
    }

    /// Waits for the poll thread (it ends after shutdown, having drained and committed).
    pub async fn join(self) -> Result<(), KafkaSourceError> {
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .map_err(|e| KafkaSourceError::Thread(e.to_string()))?
            .map_err(|_| KafkaSourceError::Thread("poll thread panicked".into()))?
    }
}

/// `sources.kafka` on the `kafka` connection (registered in [`super::registry`]).
pub fn start<'a>(
    cx: &'a StartContext<'a>,
    out: &'a mut Vec<Box<dyn Source>>,
) -> BoxFuture<'a, Result<(), SourceError>> {
    Box::pin(async move {
        let cfg = cx.config;
        if let (Some(k), Some(conn)) = (&cfg.sources.kafka, &cfg.kafka) {
            let src = KafkaSource::start(
                conn,
                k,
                cx.resolver.clone(),
                cx.router.clone(),
                cfg.pipeline.batch_size,
                cx.health.clone(),
                cx.shutdown.clone(),
            )?;
            out.push(Box::new(src));
        }
        Ok(())
    })
}

impl Source for KafkaSource {
    fn join(self: Box<Self>) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { Ok(KafkaSource::join(*self).await?) })
    }
}

struct PollLoop {
    consumer: BaseConsumer<SourceContext>,
    tracker: Arc<OffsetTracker>,
    resolver: ClusterResolver,
    batcher: Option<Batcher>,
    shutdown: CancellationToken,
    drain_timeout: Duration,
}

const STORE_EVERY: Duration = Duration::from_millis(20);

impl PollLoop {
    fn run(mut self) -> Result<(), KafkaSourceError> {
        let mut last_store = Instant::now();
        let mut last_error: Option<Instant> = None;
        while !self.shutdown.is_cancelled() {
            // Wait for messages only when nothing is held back; otherwise take
            // what is already fetched and hand the batch over as soon as it runs dry.
            let pending = self.batcher.as_ref().is_some_and(|b| !b.is_empty());
            let timeout = if pending {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            let go_on = match self.consumer.poll(timeout) {
                Some(Ok(msg)) => {
                    let record = self.record(&msg);
                    self.batcher
                        .as_mut()
                        .is_some_and(|b| b.push(record).is_ok())
                }
                Some(Err(e)) => {
                    if let KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown) = e {
                        // Not ready at once; the statistics say when a broker answers again.
                        self.consumer.context().health.set_problem(
                            COMPONENT,
                            Some(
                                "all brokers are down; consumption paused until one answers".into(),
                            ),
                        );
                    }
                    // Broker outages produce a stream of errors; log at most once a second.
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "kafka consumer error");
                        last_error = Some(Instant::now());
                    }
                    true
                }
                None => self.batcher.as_mut().is_some_and(|b| b.flush().is_ok()),
            };
            if !go_on {
                break;
            }
            if last_store.elapsed() >= STORE_EVERY {
                self.consumer.context().store_advances(&self.consumer);
                last_store = Instant::now();
            }
        }
        // Stop intake, let the workers finish what they hold, then commit.
        if let Some(mut b) = self.batcher.take() {
            let _ = b.flush();
        }
        let slots: Vec<u64> = self.tracker.lock().keys().copied().collect();
        let left = self.tracker.wait_drained(&slots, self.drain_timeout);
        if left > 0 {
            tracing::warn!(
                pending = left,
                "shutdown before all events were acknowledged; they will be re-read"
            );
        }
        self.consumer.context().store_advances(&self.consumer);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "final offset commit failed"),
        }
        self.consumer.unsubscribe();
        tracing::info!("kafka source stopped");
        Ok(())
    }

    /// Turns a message into a record whose ack will advance its partition.
    fn record(&self, msg: &rdkafka::message::BorrowedMessage<'_>) -> Record {
        let topic = msg.topic();
        let partition = msg.partition();
        let offset = msg.offset();
        let (slot, topic_arc) = self.consumer.context().lock_slots().slot(topic, partition);
        self.tracker.register(slot, offset, offset + 1);
        let header_value = self.resolver.header_name().and_then(|name| {
            msg.headers()
                .and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value))
        });
        let cluster = self
            .resolver
            .from_transport(header_value, msg.key(), Some(topic));
        Record {
            bytes: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
            origin: Origin {
                source: SourceKind::Kafka,
                topic: Some(topic_arc),
                partition: Some(partition),
                offset: Some(offset),
                received_at_ms: now_ms(),
                ..Origin::default()
            },
            cluster,
            route_key: slot,
            ack: Ack::tracked(self.tracker.clone(), slot, offset),
        }
    }
}
