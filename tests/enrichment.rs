//! Enrichment through the running pipeline: directory, GeoIP (and its hot reload), assets, baselines across restarts, and a stalled identity API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use common::*;
use rampart::enrich::identity_api::IdentityApi;
use rampart::pipeline::{self, RunOptions, Running};
use tokio_util::sync::CancellationToken;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn event(user: &str, ip: &str, verb: &str, resource: &str, ns: &str, time: &str) -> String {
    serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("{user}-{ip}-{verb}-{resource}-{time}"), "stage": "ResponseComplete",
        "requestURI": format!("/api/v1/namespaces/{ns}/{resource}"), "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [ip], "userAgent": "kubectl/v1.30.1 (linux/amd64)",
        "objectRef": {"resource": resource, "namespace": ns, "apiVersion": "v1"},
        "responseStatus": {"code": 200}, "requestReceivedTimestamp": time
    })
    .to_string()
}

async fn start(s: &Scratch, enrich: &str) -> (Running, String, CancellationToken) {
    start_webhook(s, "", &format!("enrich:\n{enrich}")).await
}

async fn post(url: &str, events: &[String]) {
    let body = format!(r#"{{"kind":"EventList","items":[{}]}}"#, events.join(","));
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn last(s: &Scratch) -> serde_json::Value {
    read_jsonl(&s.output()).pop().unwrap()["enrichment"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_identity_network_asset_and_baseline() {
    let s = Scratch::new();
    let enrich = format!(
        "  identity:\n    directory: {}\n  network:\n    classes: [{{ cidr: 10.244.0.0/16, label: internal/pod-network }}]\n    geoip:\n      city: {}\n      asn: {}\n      anonymous: {}\n  assets:\n    rules: {}\n",
        repo("enrichers/identity.yaml").display(),
        repo("tests/data/geoip/GeoIP2-City-Test.mmdb").display(),
        repo("tests/data/geoip/GeoLite2-ASN-Test.mmdb").display(),
        repo("tests/data/geoip/GeoIP2-Anonymous-IP-Test.mmdb").display(),
        repo("enrichers/assets.yaml").display(),
    );
    let (running, url, shutdown) = start(&s, &enrich).await;
    post(
        &url,
        &[event(
            "alice@example.com",
            "81.2.69.142",
            "get",
            "secrets",
            "payments",
            "2026-11-16T10:00:00Z",
        )],
    )
    .await;
    let e = last(&s);
    assert_eq!(e["identity"]["team"], "payments");
    assert_eq!(e["identity"]["slack"], "@alice");
    assert_eq!(e["identity"]["known"], true);
    assert_eq!(e["network"]["country"], "GB");
    assert_eq!(e["network"]["city"], "London");
    assert_eq!(e["network"]["tor_exit"], true);
    assert_eq!(e["asset"]["tier"], "critical");
    assert_eq!(e["asset"]["data_class"], "pii");
    assert_eq!(e["baseline"]["learning"], true);

    post(
        &url,
        &[event(
            "mallory@evil.example",
            "10.244.1.9",
            "list",
            "pods",
            "default",
            "2026-11-16T10:00:01Z",
        )],
    )
    .await;
    let e = last(&s);
    assert_eq!(e["identity"]["known"], false);
    assert_eq!(e["identity"]["kind"], "human");
    assert_eq!(e["network"]["class"], "internal/pod-network");
    assert!(
        e["network"]["country"].is_null(),
        "internal addresses are not looked up"
    );
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geoip_database_replaced_under_a_running_pipeline_is_used_by_the_next_events() {
    let s = Scratch::new();
    let city = s.path("city.mmdb");
    std::fs::copy(repo("tests/data/geoip/GeoLite2-City-Test.mmdb"), &city).unwrap();
    let enrich = format!(
        "  network:\n    geoip:\n      city: {}\n      reload_interval: 50ms\n",
        city.display()
    );
    let (running, url, shutdown) = start(&s, &enrich).await;
    // 2.2.3.4 is unknown to the GeoLite2 test database and GB in the GeoIP2 one.
    post(
        &url,
        &[event(
            "u",
            "2.2.3.4",
            "get",
            "pods",
            "default",
            "2026-11-16T10:00:00Z",
        )],
    )
    .await;
    assert!(last(&s)["network"]["country"].is_null());

    // Replace by rename, as geoipupdate does.
    let staged = s.path("city.mmdb.new");
    std::fs::copy(repo("tests/data/geoip/GeoIP2-City-Test.mmdb"), &staged).unwrap();
    std::fs::rename(&staged, &city).unwrap();
    let mut n = 0;
    loop {
        n += 1;
        post(
            &url,
            &[event(
                "u",
                "2.2.3.4",
                "get",
                "pods",
                "default",
                &format!("2026-11-16T10:00:{:02}Z", n % 60),
            )],
        )
        .await;
        if last(&s)["network"]["country"] == "GB" {
            break;
        }
        assert!(n < 400, "the new database was never used");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_geoip_database_stops_startup_with_its_path() {
    let s = Scratch::new();
    let bad = repo("tests/data/geoip/GeoIP2-City-Test-Broken-Double-Format.mmdb");
    let cfg = s.config(&format!(
        "sources:\n  webhook:\n    listen: 127.0.0.1:0\nenrich:\n  network:\n    geoip:\n      city: {}\n",
        bad.display()
    ));
    let err = pipeline::start(&cfg, RunOptions::default(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("GeoIP2-City-Test-Broken-Double-Format.mmdb"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_survive_a_restart() {
    let s = Scratch::new();
    let enrich = "  baseline:\n    learning_period: 0s\n  network:\n    geoip:\n      city: CITY\n"
        .replace(
            "CITY",
            &repo("tests/data/geoip/GeoIP2-City-Test.mmdb")
                .display()
                .to_string(),
        );
    let (running, url, shutdown) = start(&s, &enrich).await;
    post(
        &url,
        &[event(
            "alice@example.com",
            "81.2.69.142",
            "get",
            "pods",
            "default",
            "2026-11-16T10:00:00Z",
        )],
    )
    .await;
    shutdown.cancel();
    running.wait().await.unwrap();

    let (running, url, shutdown) = start(&s, &enrich).await;
    post(
        &url,
        &[event(
            "alice@example.com",
            "81.2.69.142",
            "get",
            "pods",
            "default",
            "2026-11-16T10:05:00Z",
        )],
    )
    .await;
    assert_eq!(
        last(&s)["baseline"]["new_country"],
        false,
        "GB was learned before the restart"
    );
    post(
        &url,
        &[event(
            "alice@example.com",
            "89.160.20.112",
            "get",
            "pods",
            "default",
            "2026-11-16T10:06:00Z",
        )],
    )
    .await;
    assert_eq!(last(&s)["baseline"]["new_country"], true);
    shutdown.cancel();
    running.wait().await.unwrap();
}

/// A directory API on 127.0.0.1:0 whose answers the test chooses; counts requests.
async fn directory_api(mode: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/users/{user}",
        get(
            move |axum::extract::Path(user): axum::extract::Path<String>| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    match mode {
                        "stall" => std::future::pending::<(axum::http::StatusCode, String)>().await,
                        "fail" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                        _ if user == "dana@example.com" => (
                            axum::http::StatusCode::OK,
                            r#"{"name":"Dana","team":"data"}"#.to_owned(),
                        ),
                        _ => (axum::http::StatusCode::NOT_FOUND, String::new()),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/users/{{user}}"), hits)
}

#[tokio::test(start_paused = true)]
async fn a_stalled_identity_api_costs_each_principal_at_most_one_timeout() {
    let (url, hits) = directory_api("stall").await;
    let api = IdentityApi::new(
        url,
        None,
        Duration::from_millis(300),
        Duration::from_secs(600),
        Duration::from_secs(60),
    );
    let t = tokio::time::Instant::now();
    assert!(api.lookup("eve@example.com").await.is_none());
    assert_eq!(
        t.elapsed(),
        Duration::from_millis(300),
        "waited exactly the timeout"
    );
    let t = tokio::time::Instant::now();
    assert!(api.lookup("eve@example.com").await.is_none());
    assert_eq!(t.elapsed(), Duration::ZERO, "the miss is cached");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(api.lookup("eve@example.com").await.is_none());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "asked again after the negative TTL"
    );
}

#[tokio::test(start_paused = true)]
async fn the_identity_api_answers_are_cached_for_their_ttl() {
    let (url, hits) = directory_api("ok").await;
    let api = IdentityApi::new(
        url,
        None,
        Duration::from_secs(1),
        Duration::from_secs(600),
        Duration::from_secs(60),
    );
    assert_eq!(
        api.lookup("dana@example.com")
            .await
            .unwrap()
            .team
            .as_deref(),
        Some("data")
    );
    assert_eq!(
        api.lookup("dana@example.com")
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Dana")
    );
    assert!(api.lookup("nobody@example.com").await.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(601)).await;
    api.lookup("dana@example.com").await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    let (url, _) = directory_api("fail").await;
    let failing = IdentityApi::new(
        url,
        None,
        Duration::from_secs(1),
        Duration::from_secs(600),
        Duration::from_secs(60),
    );
    assert!(
        failing.lookup("dana@example.com").await.is_none(),
        "a 500 is a miss, not an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_while_the_identity_api_stalls() {
    let (url, _) = directory_api("stall").await;
    let s = Scratch::new();
    let enrich = format!("  identity:\n    api:\n      url: \"{url}\"\n      timeout: 200ms\n");
    let (running, hook, shutdown) = start(&s, &enrich).await;
    post(
        &hook,
        &[event(
            "eve@example.com",
            "10.0.0.1",
            "get",
            "pods",
            "default",
            "2026-11-16T10:00:00Z",
        )],
    )
    .await;
    assert_eq!(last(&s)["identity"]["known"], false);
    shutdown.cancel();
    running.wait().await.unwrap();
}
