//! Kafka source throughput as a ratio to a bare librdkafka consumer on the same broker, in the same run.
//!
//! Needs a broker: `scripts/bench.sh` starts tansu and runs this with
//! `RAMPART_KAFKA_BROKERS` set. Prints figures; it is not a pass/fail test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::config::load_str;
use rampart::pipeline::{self, RunOptions};
use rampart::synth::Generator;
use rampart::telemetry::PipelineStats;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;

fn unique(p: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{p}-{}-{t}", std::process::id())
}

async fn setup(brokers: &str, topic: &str, n: usize) -> f64 {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let t = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .create()
        .unwrap();
    let lines = Generator::new(3).lines(n);
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut pending = Vec::with_capacity(10_000);
    for (i, l) in lines.iter().enumerate() {
        let rec: FutureRecord<'_, (), str> = FutureRecord::to(topic)
            .payload(l.as_str())
            .partition(i as i32 % PARTITIONS);
        pending.push(producer.send(rec, Duration::from_secs(60)));
        if pending.len() == 10_000 {
            for r in futures::future::join_all(pending.drain(..)).await {
                r.map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for r in futures::future::join_all(pending).await {
        r.map_err(|(e, _)| e).unwrap();
    }
    bytes as f64 / n as f64
}

/// A bare consumer: poll every message and touch its payload. Returns messages/s.
fn bare(brokers: &str, topic: &str, n: usize) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut seen = 0usize;
    let mut bytes = 0usize;
    let mut start = None;
    while seen < n {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            start.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    assert!(bytes > 0);
    n as f64 / start.unwrap().elapsed().as_secs_f64()
}

/// rampart's Kafka source through decode and acknowledgement (output off). Returns events/s.
async fn rampart(brokers: &str, topic: &str, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "kafka:\n  brokers: {brokers}\nsources:\n  kafka:\n    group_id: {}\n    topics: [{topic}]\noutput:\n  console: off\nstate:\n  dir: {}\n",
        unique("rampart"),
        dir.path().display()
    );
    let cfg = load_str(&yaml, "bench").unwrap();
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    let stats: Arc<PipelineStats> = running.stats.clone();
    let mut start = None;
    loop {
        if start.is_none() && PipelineStats::get(&stats.records) > 0 {
            start = Some(Instant::now());
        }
        if PipelineStats::get(&stats.acked_records) as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = n as f64 / start.unwrap().elapsed().as_secs_f64();
    shutdown.cancel();
    running.wait().await.unwrap();
    rate
}

fn main() {
    let Ok(brokers) = std::env::var("RAMPART_KAFKA_BROKERS") else {
        eprintln!("RAMPART_KAFKA_BROKERS is not set; run scripts/bench.sh, which starts a broker");
        std::process::exit(2);
    };
    let n: usize = std::env::var("RAMPART_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = unique("bench");
    let avg = rt.block_on(setup(&brokers, &topic, n));
    println!("Kafka source vs bare librdkafka consumer: {n} events (avg {avg:.0} B) on {PARTITIONS} partitions, broker {brokers}\n");
    println!(
        "{:<8} {:>16} {:>16} {:>8}",
        "round", "bare msg/s", "rampart ev/s", "ratio"
    );
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let b = bare(&brokers, &topic, n);
        let r = rt.block_on(rampart(&brokers, &topic, n));
        ratios.push(r / b);
        println!("{round:<8} {b:>16.0} {r:>16.0} {:>8.2}", r / b);
    }
    ratios.sort_by(f64::total_cmp);
    println!("\nmedian ratio: {:.2}", ratios[ratios.len() / 2]);
}
