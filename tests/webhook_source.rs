//! The webhook source as the API server's webhook backend sees it: status codes, auth, gzip, TLS, and 2xx only once durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::io::Write;
use std::time::Duration;

use common::*;
use rampart::pipeline::{self, RunOptions, Running};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

fn event_list(lines: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        lines.join(",")
    )
}

async fn start(s: &Scratch, webhook: &str, extra: &str) -> (Running, String, CancellationToken) {
    start_webhook(s, webhook, extra).await
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_200_only_after_every_event_of_the_batch_is_written() {
    let s = Scratch::new();
    let (running, url, shutdown) = start(&s, "", "").await;
    let (lines, ids) = events(25, 21);
    let resp = post(&url, event_list(&lines)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // No polling: by the time the 2xx arrives the batch is already in the output.
    assert_eq!(audit_ids(&s.output()), ids);
    let first = &read_jsonl(&s.output())[0];
    assert_eq!(first["provenance"]["source"], "webhook");
    shutdown.cancel();
    assert_eq!(running.wait().await.unwrap().events, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_wrong_methods_media_types_sizes_and_malformed_bodies() {
    let s = Scratch::new();
    let (running, url, shutdown) = start(&s, "    max_body: 4KiB", "").await;
    let client = reqwest::Client::new();
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let text = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = post(&url, format!(r#"{{"pad":"{}"}}"#, "x".repeat(8 * 1024))).await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A gzip bomb: small on the wire, far over the limit inflated.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 8 << 20]).unwrap();
    let bomb = client
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(bomb.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bad = post(&url, "{not json").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let other = client
        .post(format!("{url}/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    shutdown.cancel();
    running.wait().await.unwrap();
    // The malformed body was kept, not dropped.
    let dead = read_jsonl(&s.dead_letters());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["original"], "{not json");
    assert_eq!(dead[0]["source"], "webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_the_configured_bearer_token() {
    std::env::set_var("RAMPART_TEST_WEBHOOK_TOKEN", "s3cret-token");
    let s = Scratch::new();
    let (running, url, shutdown) =
        start(&s, "    bearer_token: ${RAMPART_TEST_WEBHOOK_TOKEN}", "").await;
    let (lines, _) = events(2, 22);
    let body = event_list(&lines);
    let client = reqwest::Client::new();
    let send = |token: Option<&str>| {
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let none = send(None).await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        send(Some("guess")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        audit_ids(&s.output()).is_empty(),
        "rejected batches are not processed"
    );
    assert_eq!(
        send(Some("s3cret-token")).await.unwrap().status(),
        StatusCode::OK
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_eq!(audit_ids(&s.output()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_gzip_compressed_batches() {
    let s = Scratch::new();
    let (running, url, shutdown) = start(&s, "", "").await;
    let (lines, ids) = events(40, 23);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(event_list(&lines).as_bytes()).unwrap();
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(audit_ids(&s.output()), ids);
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_when_the_batch_cannot_be_kept() {
    let s = Scratch::new();
    // Every write to /dev/full fails with ENOSPC: the output cannot keep the batch.
    let cfg = rampart::config::load_str(
        &format!(
            "sources:\n  webhook:\n    listen: 127.0.0.1:0\n    ack_timeout: 3s\noutput:\n  console: off\n  file: /dev/full\nstate:\n  dir: {}\n",
            s.path("state").display()
        ),
        "t",
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/audit", running.webhook_addr.unwrap());
    let (lines, _) = events(3, 24);
    let resp = post(&url, event_list(&lines)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    shutdown.cancel();
    assert!(
        running.wait().await.is_err(),
        "the output failure is reported"
    );
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_identity: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["kube-apiserver".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_identity: format!("{}{}", client_key.serialize_pem(), client.pem()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_and_with_a_client_ca_requires_client_certificates() {
    let s = Scratch::new();
    let p = pki();
    for (name, body) in [
        ("ca.pem", &p.ca),
        ("cert.pem", &p.server_cert),
        ("key.pem", &p.server_key),
    ] {
        std::fs::write(s.path(name), body).unwrap();
    }
    let tls = format!(
        "    tls:\n      cert: {}\n      key: {}\n      client_ca: {}",
        s.path("cert.pem").display(),
        s.path("key.pem").display(),
        s.path("ca.pem").display()
    );
    let (running, url, shutdown) = start(&s, &tls, "").await;
    let url = url.replace("http://", "https://");
    let ca = reqwest::Certificate::from_pem(p.ca.as_bytes()).unwrap();
    let (lines, ids) = events(3, 25);

    let anonymous = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .build()
        .unwrap();
    let refused = anonymous
        .post(&url)
        .header("content-type", "application/json")
        .body(event_list(&lines))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate must not get in"
    );

    let identity = reqwest::Identity::from_pem(p.client_identity.as_bytes()).unwrap();
    let mtls = reqwest::Client::builder()
        .add_root_certificate(ca)
        .identity(identity)
        .build()
        .unwrap();
    let ok = mtls
        .post(&url)
        .header("content-type", "application/json")
        .body(event_list(&lines))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(audit_ids(&s.output()), ids);
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridges_batches_into_kafka_and_answers_once_they_are_there() {
    let topic = unique("bridged");
    create_topic(&topic, 1).await;
    let s = Scratch::new();
    let kafka = format!(
        "kafka:\n  brokers: {}\ncluster:\n  default: fallback\n",
        brokers()
    );
    let webhook = format!("    bridge_topic: {topic}\n    cluster: prod-eu");
    let (running, url, shutdown) = start(&s, &webhook, &kafka).await;
    let (lines, ids) = events(10, 26);
    assert_eq!(
        post(&url, event_list(&lines)).await.status(),
        StatusCode::OK
    );

    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("bridge-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[&topic]).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 10 && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let cluster = m
                .headers()
                .unwrap()
                .iter()
                .find(|h| h.key == "cluster")
                .unwrap()
                .value
                .unwrap()
                .to_vec();
            assert_eq!(cluster, b"prod-eu");
            // Keyed by cluster and principal: one principal's events share a partition.
            let user = v["user"]["username"].as_str().unwrap();
            assert_eq!(
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                Some(format!("prod-eu/{user}"))
            );
            got.push(v["auditID"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, ids);
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_answers_503_when_kafka_cannot_take_the_batch() {
    let s = Scratch::new();
    // Nothing listens on port 1: the produce times out, so the batch is not acknowledged.
    let kafka = "kafka:\n  brokers: 127.0.0.1:1\n  properties:\n    message.timeout.ms: \"1500\"\n";
    let (running, url, shutdown) = start(&s, "    bridge_topic: nowhere", kafka).await;
    let (lines, _) = events(2, 27);
    assert_eq!(
        post(&url, event_list(&lines)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    shutdown.cancel();
    running.wait().await.unwrap();
}
