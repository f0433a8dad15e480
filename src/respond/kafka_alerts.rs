//! The alerts topic: every alert (or those playbooks send with `kafka_alert()`) produced as rampart's alert document, keyed by dedup group, with an idempotent producer.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::config::{KafkaConnection, Problem};
use crate::playbook::Severity;
use crate::state::model::Delivery;

/// `respond.kafka`: produce alerts to a topic on the `kafka` connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaAlertsConfig {
    pub topic: String,
    /// Every alert, update and follow-up (default), or only those a playbook sends with `kafka_alert()`.
    #[serde(default = "yes")]
    pub every_alert: bool,
    /// With `every_alert`: only alerts at least this severe.
    #[serde(default)]
    pub min_severity: Option<Severity>,
}

fn yes() -> bool {
    true
}

/// Problems of `respond.kafka`.
pub fn validate(k: &KafkaAlertsConfig, conn: Option<&KafkaConnection>, p: &mut Vec<Problem>) {
    if k.topic.trim().is_empty() {
        p.push(Problem {
            path: "respond.kafka.topic".into(),
            message: "must name a topic".into(),
        });
    }
    if conn.is_none() {
        p.push(Problem {
            path: "respond.kafka".into(),
            message: "needs the `kafka` connection (brokers) to be configured".into(),
        });
    }
}

/// Produces alert documents to the alerts topic.
pub struct KafkaAlerts {
    cfg: KafkaAlertsConfig,
    producer: FutureProducer,
}

/// `respond.kafka`, on the `kafka` connection (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> super::BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        if let (Some(k), Some(conn)) = (&cx.config.respond.kafka, &cx.config.kafka) {
            out.responders
                .push(std::sync::Arc::new(KafkaAlerts::new(k, conn)?));
        }
        Ok(())
    })
}

impl KafkaAlerts {
    pub fn new(
        cfg: &KafkaAlertsConfig,
        conn: &KafkaConnection,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = crate::sources::kafka::producer_config(conn)
            .set("compression.type", "zstd")
            .create()?;
        Ok(Self {
            cfg: cfg.clone(),
            producer,
        })
    }
}

/// The record key: alerts of one dedup group (its alert, updates and follow-up) share a partition, in order.
pub fn record_key(d: &Delivery) -> String {
    let a = &d.alert;
    format!("{}/{}/{}", a.cluster, a.playbook, a.dedup)
}

impl Responder for KafkaAlerts {
    fn name(&self) -> &str {
        "kafka"
    }
    fn takes_every_alert(&self) -> bool {
        self.cfg.every_alert
    }
    fn concurrency(&self) -> usize {
        // Records of different threads may be in flight together; the producer keeps each partition in order.
        16
    }
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            let topic = &self.cfg.topic;
            let min = self.cfg.min_severity.filter(|_| self.cfg.every_alert);
            let would = || format!("would produce {} to {topic}", d.alert.title);
            if let Some(effect) = super::gate(d, min, "respond.kafka.min_severity", dry_run, would)
            {
                return Ok(effect);
            }
            let body = super::alert_document(d);
            let key = record_key(d);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "rampart-delivery",
                    value: Some(d.id.as_bytes()),
                })
                .insert(Header {
                    key: "rampart-kind",
                    value: Some(d.alert.kind.as_str().as_bytes()),
                });
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&body)
                .headers(headers);
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(delivery) => Ok(Effect::done(format!(
                    "produced to {topic} [{}] at offset {}",
                    delivery.partition, delivery.offset
                ))),
                Err((e, _)) => Err(Retry {
                    error: format!("cannot produce to {topic}: {e}"),
                    after: None,
                }),
            }
        })
    }
}
