//! Alert latency for `rampart bench`: the realistic mix produced at a fixed rate into a topic that `rampart run` consumes, and the time from handing each event to the Kafka producer until its alert reaches the Slack stand-in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use super::child::Rampart;
use super::kafka::{unique, Bench};
use super::{percentile, setup, BenchError, BenchOptions};

/// Events produced before measuring: the consumer group joins and the caches warm.
const WARM_UP: Duration = Duration::from_secs(5);

/// How long a fetch may wait for data, for rampart's consumer and the bare one alike.
/// librdkafka's default is 500 ms; tansu holds every fetch that long even when
/// data arrives meanwhile (a Kafka broker answers as soon as there is data), so
/// with the default this run would measure tansu's fetch wait.
const FETCH_WAIT_MS: &str = "50";

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// A bare consumer on the same topic, timing each measured event from send to poll:
/// the broker's share of the latency. Runs until `stop`.
fn bare_latency(
    brokers: &str,
    topic: &str,
    sent: Sent,
    stop: Arc<AtomicBool>,
) -> HashMap<String, f64> {
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("bare-latency"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", FETCH_WAIT_MS)
        .create();
    let Ok(c) = consumer else {
        return HashMap::new();
    };
    if c.subscribe(&[topic]).is_err() {
        return HashMap::new();
    }
    let mut lat = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(m)) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let at = Instant::now();
        let Some(id) = m.payload().and_then(audit_id) else {
            continue;
        };
        if let Some(t) = sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            lat.insert(id.to_owned(), (at - *t).as_secs_f64());
        }
    }
    lat
}

/// The `auditID` of a generated event (the generator writes it near the start).
fn audit_id(payload: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"auditID\":\"";
    let start = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = payload[start..].iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&payload[start..start + len]).ok()
}

/// Sends events at `rate`/s for `length`, in 10 ms ticks; returns how many were sent.
/// Records the send instant of each event's audit ID in `sent` when given.
async fn paced(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    gen: &mut crate::synth::Generator,
    rate: u64,
    length: Duration,
    sent: Option<&Mutex<HashMap<String, Instant>>>,
) -> Result<u64, BenchError> {
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut n = 0u64;
    let mut deliveries = Vec::new();
    while start.elapsed() < length {
        tick.tick().await;
        for _ in 0..per_tick {
            let (ev, _) = gen.next_event();
            let id = ev["auditID"].as_str().unwrap_or_default().to_owned();
            let payload = ev.to_string();
            let rec: FutureRecord<'_, (), str> = FutureRecord::to(topic)
                .payload(payload.as_str())
                .partition((n % partitions as u64) as i32);
            let now = Instant::now();
            match producer.send_result(rec) {
                Ok(d) => deliveries.push(d),
                Err((e, _)) => return Err(setup(format!("produce: {e}"))),
            }
            if let Some(s) = sent {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id, now);
            }
            n += 1;
        }
        if deliveries.len() >= 5000 {
            check(std::mem::take(&mut deliveries)).await?;
        }
    }
    check(deliveries).await?;
    Ok(n)
}

async fn check(d: Vec<rdkafka::producer::DeliveryFuture>) -> Result<(), BenchError> {
    for r in futures::future::join_all(d).await {
        match r {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(setup(format!("produce: {e}"))),
            Err(_) => return Err(setup("produce: delivery cancelled")),
        }
    }
    Ok(())
}

/// The p99s of one latency run, in seconds.
pub(super) struct Latency {
    /// Producer to Slack stand-in.
    pub p99: f64,
    /// rampart's share of it.
    pub own_p99: f64,
}

/// Runs the latency measurement; prints it and returns the p99s (None if no alert was measured).
pub(super) async fn run(
    k: &Bench,
    opts: &BenchOptions,
    say: &mut impl FnMut(String),
) -> Result<Option<Latency>, BenchError> {
    let topic = unique("latency");
    k.create_topic(&topic).await?;
    let dir = tempfile::Builder::new()
        .prefix("rampart-bench-latency")
        .tempdir()?;
    let cfg = k.child_config(&topic, dir.path())?.replace(
        "    start_from: earliest\n",
        &format!("    start_from: earliest\n    properties:\n      fetch.wait.max.ms: \"{FETCH_WAIT_MS}\"\n"),
    );
    let mut child = Rampart::spawn(&cfg, dir.path())?;
    let producer = k.producer(5)?;
    let mut gen = crate::synth::Generator::wide(opts.seed.wrapping_add(1));

    // Warm up until rampart has acknowledged what it was sent, so the
    // measured events do not queue behind the group join.
    let mut produced = 0;
    loop {
        produced += paced(
            &producer,
            &topic,
            k.partitions,
            &mut gen,
            opts.rate,
            WARM_UP,
            None,
        )
        .await?;
        // Caught up within a few seconds of the last warm-up event: measure.
        let caught_up = child
            .wait_for(
                "rampart_records_acked_total",
                produced as f64,
                Duration::from_secs(5),
            )
            .await;
        match caught_up {
            Ok(_) => break,
            Err(e) if produced > opts.rate * 60 => {
                return Err(setup(format!(
                    "rampart did not keep up with the warm-up traffic within a minute: {e}"
                )))
            }
            Err(_) => {}
        }
    }
    let posts_before = k.sink.posts().len();
    let updates_before = k.sink.updates();
    let sent: Sent = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let bare = {
        let (b, t, s, st) = (k.brokers.clone(), topic.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || bare_latency(&b, &t, s, st))
    };
    let cpu0 = child.cpu();
    let t0 = Instant::now();
    let measured = paced(
        &producer,
        &topic,
        k.partitions,
        &mut gen,
        opts.rate,
        opts.latency_for,
        Some(&*sent),
    )
    .await?;
    let offered = measured as f64 / t0.elapsed().as_secs_f64();
    child
        .wait_for(
            "rampart_records_acked_total",
            (produced + measured) as f64,
            Duration::from_secs(120),
        )
        .await?;
    let cpu = child.cpu().saturating_sub(cpu0);
    let busy = cpu.as_secs_f64() / t0.elapsed().as_secs_f64();
    // Alerts raised by the last events may still be on their way to the stand-in.
    let settle = Instant::now();
    let mut last = k.sink.posts().len();
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(1)
        && settle.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = k.sink.posts().len();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    let rss = child.peak_rss();
    child.stop();
    stop.store(true, Ordering::Relaxed);
    let by_id = bare.join().unwrap_or_default();
    let mut broker: Vec<f64> = by_id.values().copied().collect();
    broker.sort_by(f64::total_cmp);

    let sent = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let posts = k.sink.posts();
    let measured_posts: Vec<(f64, Option<f64>)> = posts[posts_before..]
        .iter()
        .filter_map(|p| {
            let id = p.audit_id.as_ref()?;
            let total = (p.at - *sent.get(id)?).as_secs_f64();
            Some((total, by_id.get(id).map(|b| total - b)))
        })
        .collect();
    let mut lat: Vec<f64> = measured_posts.iter().map(|m| m.0).collect();
    lat.sort_by(f64::total_cmp);
    // rampart's own share: the same event's latency minus the bare consumer's.
    let mut own: Vec<f64> = measured_posts.iter().filter_map(|m| m.1).collect();
    own.sort_by(f64::total_cmp);
    let ms = |p: f64| percentile(&lat, p) * 1e3;
    say(format!(
        "alert latency: {} events/s offered for {:?} ({measured} events, {offered:.0}/s achieved, after {produced} warm-up events), producer -> tansu -> rampart -> Slack stand-in:",
        opts.rate, opts.latency_for
    ));
    say(format!(
        "  {} new alerts posted (plus {} edits); p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        k.sink.updates() - updates_before,
        ms(50.0),
        ms(90.0),
        ms(99.0),
        ms(100.0)
    ));
    say(format!(
        "  broker alone (a bare consumer on the same topic, every measured event): {} events; p50 {:.1} ms, p99 {:.1} ms (fetch.wait.max.ms {FETCH_WAIT_MS} for both consumers)",
        broker.len(),
        percentile(&broker, 50.0) * 1e3,
        percentile(&broker, 99.0) * 1e3,
    ));
    say(format!(
        "  rampart's own share (each alert's latency minus its event's bare-consumer latency): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&own, 50.0) * 1e3,
        percentile(&own, 99.0) * 1e3,
    ));
    say(format!(
        "  rampart meanwhile: {:.0}% of one core, peak RSS {:.0} MiB\n",
        busy * 100.0,
        rss as f64 / (1024.0 * 1024.0)
    ));
    Ok((!lat.is_empty()).then(|| Latency {
        p99: percentile(&lat, 99.0),
        own_p99: percentile(&own, 99.0),
    }))
}
