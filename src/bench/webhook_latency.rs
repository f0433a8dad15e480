//! rampart's own alert latency for `rampart bench`, without a broker: the realistic mix POSTed at a fixed rate as EventList batches (as the API server's audit webhook backend sends them) to `rampart run`'s webhook source, and the time from each alerting event's POST until its `chat.postMessage` reaches the Slack stand-in.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::child::{free_port, Rampart};
use super::sink::SlackSink;
use super::{percentile, setup, BaseConfig, BenchError, BenchOptions};
use crate::synth::Generator;

/// Events posted before measuring: connections open, caches and baselines warm.
const WARM_UP: Duration = Duration::from_secs(5);

/// One batch per tick: the webhook backend flushes what it buffered.
const TICK: Duration = Duration::from_millis(10);

/// Longest the child may take to open its webhook listener.
const START: Duration = Duration::from_secs(60);

/// One POSTed batch, as the sender saw it.
struct Batch {
    /// Audit IDs of its events.
    ids: Vec<String>,
    /// When the POST was handed to the HTTP client.
    posted: Instant,
    /// From `posted` until the webhook source's answer was read.
    answered: Duration,
    /// None when answered 2xx, else the status or the transport error.
    failure: Option<String>,
}

/// The config of a `rampart run` child with the config's enrichment and
/// playbooks, the webhook source on `listen`, every alert in the alerts file
/// (to know which events alerted) and Slack pointed at the stand-in.
fn child_config(
    base: &BaseConfig,
    sink: &SlackSink,
    listen: SocketAddr,
    dir: &Path,
) -> Result<String, BenchError> {
    super::child::child_yaml(
        base,
        &format!("sources:\n  webhook:\n    listen: \"{listen}\"\n"),
        dir,
        &format!(
            "  alerts_file: {}/alerts.jsonl\n{}",
            dir.display(),
            sink.responder_yaml()
        ),
    )
}

/// `n` events of the mix as one EventList body, with their audit IDs.
fn event_list(gen: &mut Generator, n: usize) -> (String, Vec<String>) {
    let mut ids = Vec::with_capacity(n);
    let mut body = String::from(
        r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#,
    );
    for i in 0..n {
        let (ev, _) = gen.next_event();
        ids.push(ev["auditID"].as_str().unwrap_or_default().to_owned());
        if i > 0 {
            body.push(',');
        }
        body.push_str(&ev.to_string());
    }
    body.push_str("]}");
    (body, ids)
}

/// POSTs one batch and reads the answer.
async fn post(client: reqwest::Client, url: String, body: String, ids: Vec<String>) -> Batch {
    let posted = Instant::now();
    let r = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let failure = match r {
        Ok(resp) => {
            let status = resp.status();
            // Read the answer, so the connection goes back to the pool.
            match resp.bytes().await {
                Ok(_) if status.is_success() => None,
                Ok(b) => Some(format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    String::from_utf8_lossy(&b).trim()
                )),
                Err(e) => Some(e.to_string()),
            }
        }
        Err(e) => Some(e.to_string()),
    };
    Batch {
        ids,
        posted,
        answered: posted.elapsed(),
        failure,
    }
}

/// POSTs the mix at `rate` events/s for `length`, one EventList per tick, each
/// on its own task: like the webhook backend, the sender does not wait for
/// one answer before the next batch. Returns every batch once all are
/// answered, and the rate achieved (events over the span of the ticks used).
async fn offer(
    client: &reqwest::Client,
    url: &str,
    gen: &mut Generator,
    rate: u64,
    length: Duration,
) -> (Vec<Batch>, f64) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut n = 0u64;
    let mut pending = Vec::new();
    for ticks in 1..=(length.as_millis() / TICK.as_millis()).max(1) as u64 {
        // Whole events per tick, the remainder carried, so any rate is offered exactly.
        let due = rate * ticks * TICK.as_millis() as u64 / 1000;
        let count = (due - n) as usize;
        n = due;
        // The batch is built before its tick, so the POST goes out on time.
        let (body, ids) = event_list(gen, count);
        tick.tick().await;
        if count > 0 {
            pending.push(tokio::spawn(post(
                client.clone(),
                url.to_owned(),
                body,
                ids,
            )));
        }
    }
    // The last batch stands for a whole tick.
    let achieved = n as f64 / (start.elapsed() + TICK).as_secs_f64();
    let batches = futures::future::join_all(pending)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    (batches, achieved)
}

/// Waits until the child accepts connections on `addr`.
async fn listening(child: &mut Rampart, addr: SocketAddr) -> Result<(), BenchError> {
    let end = Instant::now() + START;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        child.alive()?;
        if Instant::now() > end {
            return Err(setup(format!(
                "rampart's webhook source did not listen on {addr} within {START:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Audit IDs of the events whose alert starts a Slack message (`alert` and
/// `high_risk`, not updates, follow-ups or playbooks on trial), from the alerts file.
fn alerting(alerts_file: &Path) -> HashSet<String> {
    std::fs::read_to_string(alerts_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| matches!(a["kind"].as_str(), Some("alert" | "high_risk")))
        .filter(|a| a["dry_run"] != Value::Bool(true))
        .filter_map(|a| a["event"]["auditID"].as_str().map(str::to_owned))
        .collect()
}

/// The most batches that were waiting for their answer at one time.
fn most_in_flight(batches: &[Batch]) -> usize {
    let mut edges: Vec<(Instant, i32)> = batches
        .iter()
        .flat_map(|b| [(b.posted, 1), (b.posted + b.answered, -1)])
        .collect();
    // At equal instants an answer comes before a new POST.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// Runs the measurement; prints it and returns the p99 in seconds (None if no alert was timed).
pub(super) async fn run(
    base: &BaseConfig,
    opts: &BenchOptions,
    work: &Path,
    say: &mut impl FnMut(String),
) -> Result<Option<f64>, BenchError> {
    let dir = work.join("webhook-latency");
    let sink = SlackSink::start().await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut child = Rampart::spawn(&child_config(base, &sink, addr, &dir)?, &dir)?;
    listening(&mut child, addr).await?;
    let url = format!("http://{addr}/audit");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(setup)?;
    let mut gen = Generator::wide(opts.seed.wrapping_add(2));

    // Warm up; every batch is answered (so handled) before measuring starts.
    let (warm, _) = offer(&client, &url, &mut gen, opts.rate, WARM_UP).await;
    if let Some(f) = warm.iter().find_map(|b| b.failure.as_ref()) {
        child.alive()?;
        return Err(setup(format!(
            "rampart's webhook source refused a warm-up batch: {f}"
        )));
    }
    let warm_events: usize = warm.iter().map(|b| b.ids.len()).sum();

    let cpu0 = child.cpu();
    let t0 = Instant::now();
    let (batches, achieved) = offer(&client, &url, &mut gen, opts.rate, opts.latency_for).await;
    let busy = child.cpu().saturating_sub(cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    // Alerts raised by the last events may still be on their way to the stand-in
    // and the alerts file.
    let alerts_file = dir.join("alerts.jsonl");
    let observed = || {
        (
            sink.posts().len(),
            std::fs::metadata(&alerts_file).map_or(0, |m| m.len()),
        )
    };
    let settle = Instant::now();
    let mut last = observed();
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(1)
        && settle.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = observed();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    let rss = child.peak_rss();
    child.stop();

    let events: usize = batches.iter().map(|b| b.ids.len()).sum();
    let sent: HashMap<&str, Instant> = batches
        .iter()
        .flat_map(|b| b.ids.iter().map(|id| (id.as_str(), b.posted)))
        .collect();
    // Each alerting event's first message (an event may alert in several playbooks).
    let mut first: HashMap<&str, Instant> = HashMap::new();
    let posts = sink.posts();
    for p in &posts {
        let Some((&id, _)) = p.audit_id.as_deref().and_then(|id| sent.get_key_value(id)) else {
            continue;
        };
        let at = first.entry(id).or_insert(p.at);
        *at = (*at).min(p.at);
    }
    let alerting = alerting(&alerts_file);
    let alerting: Vec<&str> = alerting
        .iter()
        .filter_map(|id| sent.get_key_value(id.as_str()).map(|(k, _)| *k))
        .collect();
    let mut lat: Vec<f64> = alerting
        .iter()
        .filter_map(|id| Some((*first.get(id)? - sent[id]).as_secs_f64()))
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut answers: Vec<f64> = batches.iter().map(|b| b.answered.as_secs_f64()).collect();
    answers.sort_by(f64::total_cmp);
    let failed: Vec<&str> = batches
        .iter()
        .filter_map(|b| b.failure.as_deref())
        .collect();
    let ms = |v: &[f64], p: f64| percentile(v, p) * 1e3;

    say(format!(
        "rampart's own alert latency (no broker): {} events/s offered for {:?} after {warm_events} warm-up events; the mix as one EventList per 10 ms ({:.0} events each), POSTed without waiting for earlier answers as the API server's webhook backend does, to `rampart run`'s webhook source -> Slack stand-in:",
        opts.rate,
        opts.latency_for,
        events as f64 / batches.len().max(1) as f64,
    ));
    say(format!(
        "  webhook: {events} events in {} batches ({:.0}/s achieved, at most {} in flight); {} answered 2xx, POST to answer p50 {:.1} ms, p99 {:.1} ms{}",
        batches.len(),
        achieved,
        most_in_flight(&batches),
        batches.len() - failed.len(),
        ms(&answers, 50.0),
        ms(&answers, 99.0),
        failed
            .first()
            .map(|f| format!(" ({} failed, e.g. {f})", failed.len()))
            .unwrap_or_default(),
    ));
    say(format!(
        "  Slack: {} alerting events, {} ({:.1}%) with their chat.postMessage at the stand-in; POST to chat.postMessage receipt: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        alerting.len(),
        lat.len(),
        100.0 * lat.len() as f64 / alerting.len().max(1) as f64,
        ms(&lat, 50.0),
        ms(&lat, 90.0),
        ms(&lat, 99.0),
        ms(&lat, 100.0),
    ));
    say(format!(
        "  rampart meanwhile: {:.0}% of one core, peak RSS {:.0} MiB\n",
        busy * 100.0,
        rss as f64 / (1024.0 * 1024.0)
    ));
    Ok((!lat.is_empty()).then(|| percentile(&lat, 99.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_list_carries_its_events_and_their_ids() {
        let (body, ids) = event_list(&mut Generator::wide(7), 3);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kind"], "EventList");
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        for (item, id) in items.iter().zip(&ids) {
            assert_eq!(item["auditID"].as_str(), Some(id.as_str()));
        }
        let (empty, none) = event_list(&mut Generator::wide(7), 0);
        assert!(none.is_empty());
        assert_eq!(
            serde_json::from_str::<Value>(&empty).unwrap()["items"],
            serde_json::json!([])
        );
    }

    #[test]
    fn only_new_messages_outside_trials_count_as_alerting() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.jsonl");
        std::fs::write(
            &p,
            [
                r#"{"kind":"alert","event":{"auditID":"a"}}"#,
                r#"{"kind":"update","event":{"auditID":"b"}}"#,
                r#"{"kind":"follow_up","event":{"auditID":"c"}}"#,
                r#"{"kind":"high_risk","event":{"auditID":"d"}}"#,
                r#"{"kind":"alert","dry_run":true,"event":{"auditID":"e"}}"#,
                "not json",
            ]
            .join("\n"),
        )
        .unwrap();
        let got = alerting(&p);
        assert_eq!(got, HashSet::from(["a".to_owned(), "d".to_owned()]));
        assert!(alerting(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn counts_the_batches_in_flight() {
        let t = Instant::now();
        let b = |at: u64, took: u64| Batch {
            ids: Vec::new(),
            posted: t + Duration::from_millis(at),
            answered: Duration::from_millis(took),
            failure: None,
        };
        assert_eq!(most_in_flight(&[]), 0);
        assert_eq!(most_in_flight(&[b(0, 10), b(10, 10), b(20, 10)]), 1);
        assert_eq!(most_in_flight(&[b(0, 25), b(10, 15), b(20, 10)]), 3);
    }
}
