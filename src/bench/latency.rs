//! Alert latency for `rampart bench`: the realistic mix produced at a fixed rate into a topic that `rampart run` consumes, and the time from handing each event to the Kafka producer until its alert reaches the Slack stand-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::child::Rampart;
use super::kafka::{unique, Bench};
use super::{percentile, setup, BenchError, BenchOptions};

/// Events produced before measuring: the consumer group joins and the caches warm.
const WARM_UP: Duration = Duration::from_secs(5);

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

/// Runs the latency measurement; prints it and returns the p99 in seconds (None if no alert was measured).
pub(super) async fn run(
    k: &Bench,
    opts: &BenchOptions,
    say: &mut impl FnMut(String),
) -> Result<Option<f64>, BenchError> {
    let topic = unique("latency");
    k.create_topic(&topic).await?;
    let dir = tempfile::Builder::new()
        .prefix("rampart-bench-latency")
        .tempdir()?;
    let mut child = Rampart::spawn(&k.child_config(&topic, dir.path())?, dir.path())?;
    let producer = k.producer(0)?;
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
        if child
            .counter("rampart_records_acked_total")
            .await
            .unwrap_or(0.0)
            >= produced as f64
        {
            break;
        }
        if produced > opts.rate * 60 {
            return Err(setup(
                "rampart did not keep up with the warm-up traffic within a minute",
            ));
        }
    }
    let posts_before = k.sink.posts().len();
    let updates_before = k.sink.updates();
    let sent = Mutex::new(HashMap::new());
    let cpu0 = child.cpu();
    let t0 = Instant::now();
    let measured = paced(
        &producer,
        &topic,
        k.partitions,
        &mut gen,
        opts.rate,
        opts.latency_for,
        Some(&sent),
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

    let sent = sent
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let posts = k.sink.posts();
    let mut lat: Vec<f64> = posts[posts_before..]
        .iter()
        .filter_map(|p| Some((p.at - *sent.get(p.audit_id.as_ref()?)?).as_secs_f64()))
        .collect();
    lat.sort_by(f64::total_cmp);
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
        "  rampart meanwhile: {:.0}% of one core, peak RSS {:.0} MiB\n",
        busy * 100.0,
        rss as f64 / (1024.0 * 1024.0)
    ));
    Ok((!lat.is_empty()).then(|| percentile(&lat, 99.0)))
}
