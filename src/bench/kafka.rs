//! The broker part of `rampart bench`: a topic of the realistic mix, a bare librdkafka consumer's rate on it (the denominator), and `rampart run` with the config's playbooks and a Slack responder consuming the same topic.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use super::child::Rampart;
use super::sink::SlackSink;
use super::{setup, BaseConfig, BenchError};

/// A name no earlier run on the same broker used.
pub(super) fn unique(p: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{p}-{}-{t}", std::process::id())
}

/// The broker, the config under test and the Slack stand-in, shared by the broker runs.
pub(super) struct Bench {
    pub brokers: String,
    pub partitions: i32,
    base: BaseConfig,
    work: PathBuf,
    pub sink: SlackSink,
}

/// One rampart round on the broker.
struct Round {
    rate: f64,
    cpu: Duration,
    peak_rss: u64,
    alerts_posted: usize,
}

impl Bench {
    pub async fn new(
        brokers: &str,
        partitions: i32,
        base: &BaseConfig,
        work: &Path,
    ) -> Result<Self, BenchError> {
        Ok(Self {
            brokers: brokers.to_owned(),
            partitions,
            base: base.clone(),
            work: work.to_owned(),
            sink: SlackSink::start().await?,
        })
    }

    pub async fn create_topic(&self, name: &str) -> Result<(), BenchError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .map_err(setup)?;
        let t = NewTopic::new(name, self.partitions, TopicReplication::Fixed(1));
        for r in admin
            .create_topics(
                [&t],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .map_err(setup)?
        {
            r.map_err(|(t, e)| setup(format!("create topic {t}: {e}")))?;
        }
        Ok(())
    }

    /// A producer; `linger` 0 sends each record at once (latency), more batches (throughput).
    pub fn producer(&self, linger_ms: u32) -> Result<FutureProducer, BenchError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", linger_ms.to_string())
            .set("batch.size", "1000000")
            .create()
            .map_err(setup)
    }

    async fn produce_all(&self, topic: &str, lines: &[String]) -> Result<(), BenchError> {
        let producer = self.producer(20)?;
        let mut pending = Vec::with_capacity(10_000);
        for (i, l) in lines.iter().enumerate() {
            let rec: FutureRecord<'_, (), str> = FutureRecord::to(topic)
                .payload(l.as_str())
                .partition(i as i32 % self.partitions);
            pending.push(producer.send(rec, Duration::from_secs(60)));
            if pending.len() == 10_000 || i + 1 == lines.len() {
                for r in futures::future::join_all(pending.drain(..)).await {
                    r.map_err(|(e, _)| setup(format!("produce: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// A bare consumer: poll every message and touch its payload. Returns messages/s from the first message.
    fn bare(&self, topic: &str, n: usize) -> Result<f64, BenchError> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", unique("bare"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(setup)?;
        c.subscribe(&[topic]).map_err(setup)?;
        let (mut seen, mut bytes, mut start) = (0usize, 0usize, None);
        let deadline = Instant::now() + Duration::from_secs(120 + n as u64 / 1000);
        while seen < n {
            if Instant::now() > deadline {
                return Err(setup(format!("bare consumer: {seen} of {n} messages")));
            }
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.map_err(setup)?;
                start.get_or_insert_with(Instant::now);
                bytes += m.payload().map_or(0, <[u8]>::len);
                seen += 1;
            }
        }
        std::hint::black_box(bytes);
        Ok(n as f64 / start.map_or(1e-9, |s| s.elapsed().as_secs_f64()))
    }

    /// The config of a `rampart run` child consuming `topic` with the config's playbooks and Slack pointed at the sink.
    pub fn child_config(&self, topic: &str, dir: &Path) -> Result<String, BenchError> {
        let head = format!(
            "kafka:\n  brokers: \"{}\"\nsources:\n  kafka:\n    group_id: {}\n    topics: [{topic}]\n    start_from: earliest\n",
            self.brokers,
            unique("rampart-bench"),
        );
        super::child::child_yaml(&self.base, &head, dir, &self.sink.responder_yaml())
    }

    async fn rampart(&self, topic: &str, n: usize, round: usize) -> Result<Round, BenchError> {
        let dir = self.work.join(format!("kafka-{round}"));
        let posted0 = self.sink.posts().len();
        let mut child = Rampart::spawn(&self.child_config(topic, &dir)?, &dir)?;
        let start = child
            .wait_for(
                "rampart_records_received_total",
                1.0,
                Duration::from_secs(120),
            )
            .await?;
        let cpu0 = child.cpu();
        let deadline = Duration::from_secs(120 + n as u64 / 1000);
        let end = child
            .wait_for("rampart_records_acked_total", n as f64, deadline)
            .await?;
        let round = Round {
            rate: n as f64 / (end - start).as_secs_f64().max(1e-9),
            cpu: child.cpu().saturating_sub(cpu0),
            peak_rss: child.peak_rss(),
            alerts_posted: self.sink.posts().len() - posted0,
        };
        child.stop();
        let _ = std::fs::remove_dir_all(&dir);
        Ok(round)
    }

    /// Alternating bare and rampart rounds on one topic; prints a table, returns the median ratio.
    pub async fn throughput(
        &self,
        lines: &[String],
        rounds: usize,
        say: &mut impl FnMut(String),
    ) -> Result<f64, BenchError> {
        let topic = unique("bench");
        self.create_topic(&topic).await?;
        self.produce_all(&topic, lines).await?;
        let n = lines.len();
        say(format!(
            "Kafka end to end: {n} events on {} partitions, broker {}; rampart = `rampart run` (child process) with the config's playbooks, state on sled and Slack to a local stand-in:",
            self.partitions, self.brokers
        ));
        say(format!(
            "  {:<6} {:>11} {:>13} {:>6} {:>14} {:>14} {:>12}",
            "round",
            "bare msg/s",
            "rampart ev/s",
            "ratio",
            "CPU s/1M ev",
            "peak RSS MiB",
            "Slack posts"
        ));
        let mut ratios = Vec::new();
        for round in 1..=rounds.max(1) {
            let b = tokio::task::block_in_place(|| self.bare(&topic, n))?;
            let r = self.rampart(&topic, n, round).await?;
            ratios.push(r.rate / b);
            say(format!(
                "  {round:<6} {b:>11.0} {:>13.0} {:>6.2} {:>14.1} {:>14.0} {:>12}",
                r.rate,
                r.rate / b,
                r.cpu.as_secs_f64() * 1e6 / n as f64,
                r.peak_rss as f64 / (1024.0 * 1024.0),
                r.alerts_posted
            ));
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        say(format!("  median ratio {median:.2}\n"));
        Ok(median)
    }
}
