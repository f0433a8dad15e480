//! Metrics and health endpoints while the pipeline runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use common::*;
use rampart::pipeline::{self, RunOptions};
use tokio_util::sync::CancellationToken;

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_and_dead_letters_and_readiness_follows_the_pipeline() {
    let s = Scratch::new();
    let cfg = s.config(
        "sources:\n  webhook:\n    listen: 127.0.0.1:0\ntelemetry:\n  listen: 127.0.0.1:0\n",
    );
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", running.telemetry_addr.unwrap());
    let hook = format!("http://{}/audit", running.webhook_addr.unwrap());
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let before = get("/metrics").await.unwrap().text().await.unwrap();
    let (lines, _) = events(7, 51);
    let body = format!(
        r#"{{"kind":"EventList","items":[{},{{"kind":0}}]}}"#,
        lines.join(",")
    );
    let resp = client
        .post(&hook)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let after = get("/metrics").await.unwrap().text().await.unwrap();
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    assert_eq!(
        delta("rampart_events_decoded_total{source=\"webhook\"}"),
        7.0
    );
    assert_eq!(delta("rampart_dead_letters_total{source=\"webhook\"}"), 1.0);
    assert_eq!(
        delta("rampart_records_received_total{source=\"webhook\"}"),
        1.0
    );
    assert!(delta("rampart_webhook_requests_total{code=\"2xx\"}") >= 1.0);
    assert!(after.contains("# HELP rampart_events_decoded_total"));

    let health = running.health.clone();
    shutdown.cancel();
    running.wait().await.unwrap();
    assert!(!health.is_ready(), "not ready once draining");
}
