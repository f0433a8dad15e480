//! Shared helpers for the black-box tests: the real Kafka broker, config builders, and polling with a deadline.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rampart::config::{load_str, Config};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// The broker started by scripts/test.sh (or any Kafka-compatible broker).
pub fn brokers() -> String {
    std::env::var("RAMPART_KAFKA_BROKERS").expect(
        "RAMPART_KAFKA_BROKERS is not set: run the suite with scripts/test.sh, which starts a tansu broker",
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Produces each payload round-robin across `partitions`, one record per batch.
///
/// tansu 0.6's memory engine does not answer a fetch that starts inside a
/// record batch, which a consumer resuming mid-stream does; one record per
/// batch keeps every offset a batch boundary (a real Kafka broker needs no such care).
pub async fn produce(topic: &str, payloads: &[String], partitions: i32) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        let rec: FutureRecord<'_, (), str> = FutureRecord::to(topic)
            .payload(payload.as_str())
            .partition(i as i32 % partitions);
        p.send(rec, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

/// The committed offset of each partition of `topic` for `group` (-1001 when none).
pub fn committed(group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let res = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    res.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

/// Polls `check` until it returns Some or the deadline passes.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The JSON objects of a JSON-lines file (missing file: none).
///
/// The file may be read while the pipeline is still writing it, so a last
/// line without its newline is still being written and is not read yet; every
/// complete line must parse.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// auditIDs in an output file.
pub fn audit_ids(path: &Path) -> Vec<String> {
    read_jsonl(path)
        .iter()
        .map(|v| v["auditID"].as_str().unwrap().to_owned())
        .collect()
}

/// `n` synthetic events as JSON lines, with their auditIDs.
pub fn events(n: usize, seed: u64) -> (Vec<String>, Vec<String>) {
    let lines = rampart::synth::Generator::new(seed).lines(n);
    let ids = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    (lines, ids)
}

/// Runs a pipeline whose sources end by themselves (files read once) to the end.
pub async fn run_to_end(cfg: &Config) -> rampart::pipeline::RunReport {
    rampart::pipeline::start(
        cfg,
        Default::default(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap()
    .wait()
    .await
    .unwrap()
}

/// Starts a pipeline with a webhook source on 127.0.0.1:0; `webhook` adds fields
/// under `sources.webhook` (indented four spaces), `rest` adds top-level sections.
/// Returns the running pipeline, the webhook URL and its shutdown token.
pub async fn start_webhook(
    s: &Scratch,
    webhook: &str,
    rest: &str,
) -> (
    rampart::pipeline::Running,
    String,
    tokio_util::sync::CancellationToken,
) {
    let cfg = s.config(&format!(
        "sources:\n  webhook:\n    listen: 127.0.0.1:0\n    ack_timeout: 3s\n{webhook}\n{rest}"
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = rampart::pipeline::start(&cfg, Default::default(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/audit", running.webhook_addr.unwrap());
    (running, url, shutdown)
}

/// A scratch directory with an output file and a state dir, and a config built from a YAML body.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn output(&self) -> PathBuf {
        self.path("events.jsonl")
    }
    pub fn dead_letters(&self) -> PathBuf {
        self.path("dead-letter.jsonl")
    }
    /// `body` holds the sources (and anything else); output, state and dead-letter point into the scratch dir.
    pub fn config(&self, body: &str) -> Config {
        let yaml = format!(
            "{body}\noutput:\n  console: off\n  file: {}\nstate:\n  dir: {}\npipeline:\n  workers: 2\n  shutdown_grace: 30s\n",
            self.output().display(),
            self.path("state").display(),
        );
        let yaml = if body.contains("dead_letter:") {
            yaml
        } else {
            format!(
                "{yaml}dead_letter:\n  file: {}\n",
                self.dead_letters().display()
            )
        };
        load_str(&yaml, "test config").unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"))
    }
}

/// A state stage over memory with the real dispatcher running `responders` (alert sinks are
/// those that take every alert): what responder tests feed events into.
pub struct Dispatching {
    pub st: std::sync::Arc<rampart::state::StateStage>,
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dispatching {
    pub fn start(
        responders: Vec<std::sync::Arc<dyn rampart::respond::Responder>>,
        settings: rampart::respond::dispatch::DispatchSettings,
    ) -> Self {
        let sinks = responders
            .iter()
            .filter(|r| r.takes_every_alert())
            .map(|r| r.name().to_owned())
            .collect();
        let st = std::sync::Arc::new(
            rampart::state::StateStage::open(
                std::sync::Arc::new(rampart::state::MemoryStore::default()),
                rampart::state::StateSettings {
                    sinks,
                    ..rampart::state::StateSettings::default()
                },
            )
            .unwrap(),
        );
        Self::over(st, responders, settings)
    }

    /// The dispatcher over a stage that already holds work.
    pub fn over(
        st: std::sync::Arc<rampart::state::StateStage>,
        responders: Vec<std::sync::Arc<dyn rampart::respond::Responder>>,
        settings: rampart::respond::dispatch::DispatchSettings,
    ) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let tasks =
            rampart::respond::dispatch::spawn(st.clone(), responders, settings, stop.clone());
        Self { st, stop, tasks }
    }

    /// Judges `ev` and makes it durable, as the output stage does before acknowledging.
    pub fn feed(&self, ev: &rampart::event::AuditEvent) {
        self.st.process(ev).unwrap();
        self.st.commit().unwrap();
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// Prints a figure line (e.g. `security: webhook_auth rejected=11/11`) and appends it to
/// `CARGO_TARGET_TMPDIR/figures.txt`, which scripts/test.sh shows at the end: cargo hides the
/// output of tests that pass.
pub fn figure(line: &str) {
    use std::io::Write;
    println!("{line}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Fails, naming each playbook that fired with its count and first three entries, unless
/// none fired (`fires`: playbook → what each firing recorded).
pub fn assert_no_fires(fires: &std::collections::BTreeMap<String, Vec<String>>, what: &str) {
    let summary: std::collections::BTreeMap<&String, (usize, Vec<&String>)> = fires
        .iter()
        .map(|(k, v)| (k, (v.len(), v.iter().take(3).collect())))
        .collect();
    assert!(fires.is_empty(), "{what}: {summary:#?}");
}
