//! The webhook source: the API server's audit webhook backend posts EventList batches here; 2xx only once a batch is durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::value::RawValue;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::registry::{BoxFuture, Source, SourceError, StartContext};
use super::{now_ms, route_key, Ack, Origin, Record, Router};
use crate::config::{KafkaConnection, Secret, WebhookConfig};
use crate::deadletter::{DeadLetter, DeadLetterEntry};
use crate::event::{gunzip, ClusterHint, Gunzip, SourceKind};

/// Errors starting the webhook source.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TLS material: {0}")]
    Tls(String),
    #[error("cannot create webhook bridge producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

struct Shared {
    router: Router,
    token: Option<Secret>,
    max_body: usize,
    read_timeout: Duration,
    ack_timeout: Duration,
    cluster: ClusterHint,
    bridge: Option<(FutureProducer, String)>,
    cluster_header: Option<String>,
    dead_letter: Arc<DeadLetter>,
}

/// A running webhook listener.
pub struct WebhookSource {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl WebhookSource {
    /// Binds the listener (TLS when configured) and serves until `shutdown`.
    pub async fn start(
        cfg: &WebhookConfig,
        kafka: Option<&KafkaConnection>,
        cluster: ClusterHint,
        cluster_header: Option<String>,
        router: Router,
        dead_letter: Arc<DeadLetter>,
        shutdown: CancellationToken,
    ) -> Result<Self, WebhookError> {
        let bridge = match (&cfg.bridge_topic, kafka) {
            (Some(topic), Some(conn)) => {
                let producer: FutureProducer = super::kafka::client_config(conn)
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5")
                    .create()
                    .map_err(WebhookError::Producer)?;
                Some((producer, topic.clone()))
            }
            _ => None,
        };
        let shared = Arc::new(Shared {
            router,
            token: cfg.bearer_token.clone(),
            max_body: usize::try_from(cfg.max_body.0).unwrap_or(usize::MAX),
            read_timeout: cfg.read_timeout.get(),
            ack_timeout: cfg.ack_timeout.get(),
            cluster,
            bridge,
            cluster_header,
            dead_letter,
        });
        let app = axum::Router::new()
            .route(&cfg.path, post(receive))
            .with_state(shared);
        let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
        let make = app.into_make_service();
        let task = match &cfg.tls {
            Some(tls) => {
                let config = super::webhook_tls::server_config(tls)?;
                let mut server = axum_server::bind_rustls(
                    cfg.listen,
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
                )
                .handle(handle.clone());
                // A client that never finishes its headers is disconnected (axum-server's default is never).
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(cfg.read_timeout.get());
                tokio::spawn(async move { server.serve(make).await })
            }
            None => {
                let mut server = axum_server::bind(cfg.listen).handle(handle.clone());
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(cfg.read_timeout.get());
                tokio::spawn(async move { server.serve(make).await })
            }
        };
        let Some(addr) = handle.listening().await else {
            let source = match task.await {
                Ok(Err(e)) => e,
                _ => std::io::Error::other("listener ended before binding"),
            };
            return Err(WebhookError::Bind {
                addr: cfg.listen,
                source,
            });
        };
        let grace = cfg.ack_timeout.get();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            // Stop accepting; requests in flight finish (and are acknowledged) within the grace.
            handle.graceful_shutdown(Some(grace));
        });
        tracing::info!(%addr, "webhook source listening");
        Ok(Self { addr, task })
    }

    /// Waits until the listener has stopped and every request in flight was answered.
    pub async fn join(self) {
        match self.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook listener failed"),
            Err(e) => tracing::warn!(error = %e, "webhook listener task failed"),
            Ok(Ok(())) => {}
        }
    }
}

/// `sources.webhook` (registered in [`super::registry`]).
pub fn start<'a>(
    cx: &'a StartContext<'a>,
    out: &'a mut Vec<Box<dyn Source>>,
) -> BoxFuture<'a, Result<(), SourceError>> {
    Box::pin(async move {
        if let Some(w) = &cx.config.sources.webhook {
            let src = WebhookSource::start(
                w,
                cx.config.kafka.as_ref(),
                w.cluster.as_deref().map(Arc::from),
                cx.resolver.header_name().map(str::to_owned),
                cx.router.clone(),
                cx.dead_letter.clone(),
                cx.shutdown.clone(),
            )
            .await?;
            out.push(Box::new(src));
        }
        Ok(())
    })
}

impl Source for WebhookSource {
    fn join(self: Box<Self>) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            WebhookSource::join(*self).await;
            Ok(())
        })
    }
    fn listen_addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }
}

fn answer(code: StatusCode, message: &str) -> Response {
    let class = match code.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    crate::internal_events::WebhookAnswered { class }.emit();
    (code, format!("{message}\n")).into_response()
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(token) = &s.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
            let mut r = answer(StatusCode::UNAUTHORIZED, "unauthenticated");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/json",
        );
    }
    // A body that trickles in (or stalls) would hold its buffer and connection for ever.
    let raw =
        match tokio::time::timeout(s.read_timeout, axum::body::to_bytes(body, s.max_body)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return answer(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            Err(_) => return answer(StatusCode::REQUEST_TIMEOUT, "body not received in time"),
        };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        match gunzip(&raw, s.max_body) {
            Ok(b) => Bytes::from(b),
            Err(Gunzip::TooLarge) => {
                return answer(StatusCode::PAYLOAD_TOO_LARGE, "decompressed body too large")
            }
            Err(Gunzip::Corrupt) => return answer(StatusCode::BAD_REQUEST, "invalid gzip body"),
        }
    } else {
        raw
    };
    let received_at_ms = now_ms();
    let origin = Origin {
        source: SourceKind::Webhook,
        received_at_ms,
        ..Origin::default()
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return reject_malformed(&s, &origin, &body).await;
    }
    match &s.bridge {
        Some((producer, topic)) => bridge(&s, producer, topic, &body).await,
        None => process(&s, origin, body).await,
    }
}

/// Keeps a body that is not JSON in the dead-letter sink, then tells the sender it was bad.
async fn reject_malformed(s: &Shared, origin: &Origin, body: &[u8]) -> Response {
    let cluster = s.cluster.as_deref().unwrap_or("");
    let entry = DeadLetterEntry {
        reason: "webhook body is not valid JSON".to_owned(),
        origin,
        cluster,
        index: 0,
        whole_record: true,
        bytes: body,
    };
    match s.dead_letter.write(&entry).await {
        Ok(()) => answer(StatusCode::BAD_REQUEST, "body is not valid JSON"),
        Err(e) => {
            tracing::error!(error = %e, "cannot dead-letter malformed webhook body");
            answer(StatusCode::SERVICE_UNAVAILABLE, "cannot store the batch")
        }
    }
}

/// Hands the batch to the pipeline and answers once every event in it is handled.
async fn process(s: &Shared, origin: Origin, body: Bytes) -> Response {
    let (ack, done) = Ack::reply();
    let record = Record {
        bytes: body,
        origin,
        cluster: s.cluster.clone(),
        route_key: route_key("webhook", now_ms()),
        ack,
    };
    if s.router.send(record).await.is_err() {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match tokio::time::timeout(s.ack_timeout, done).await {
        Ok(Ok(())) => answer(StatusCode::OK, "ok"),
        Ok(Err(_)) => answer(StatusCode::SERVICE_UNAVAILABLE, "batch was not processed"),
        Err(_) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for the batch",
        ),
    }
}

/// The Kafka key of one event: its cluster and the principal who made the request, so that one
/// principal's events share a partition (and so one instance's state) while a cluster's spread.
fn record_key(cluster: Option<&str>, item: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct User<'a> {
        #[serde(borrow, default)]
        username: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default)]
        user: Option<User<'a>>,
    }
    let user = serde_json::from_slice::<Item<'_>>(item)
        .ok()
        .and_then(|i| i.user?.username)
        .filter(|u| !u.is_empty());
    match (cluster, user) {
        (Some(c), Some(u)) => Some(format!("{c}/{u}")),
        (None, Some(u)) => Some(u.into_owned()),
        (Some(c), None) => Some(c.to_owned()),
        (None, None) => None,
    }
}

/// Produces each event of the batch to Kafka (acks=all), keyed by cluster and principal, and
/// answers once all are durable.
async fn bridge(s: &Shared, producer: &FutureProducer, topic: &str, body: &[u8]) -> Response {
    let items = split_items(body);
    let keys: Vec<Option<String>> = items
        .iter()
        .map(|item| record_key(s.cluster.as_deref(), item))
        .collect();
    let cluster = s.cluster.as_deref();
    let header_name = s.cluster_header.as_deref();
    let sends = items.iter().zip(&keys).map(|(item, key)| {
        let mut headers = OwnedHeaders::new();
        if let (Some(key), Some(value)) = (header_name, cluster) {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(*item).headers(headers);
        let record = match key {
            Some(k) => record.key(k.as_bytes()),
            None => record,
        };
        producer.send(record, s.ack_timeout)
    });
    let results = join_all(sends).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed == 0 {
        answer(StatusCode::OK, "ok")
    } else {
        tracing::warn!(
            failed,
            total = results.len(),
            "webhook batch not fully produced to kafka"
        );
        answer(StatusCode::SERVICE_UNAVAILABLE, "batch not stored; retry")
    }
}

/// The items of an EventList or array, each as its own bytes; anything else whole.
fn split_items(body: &[u8]) -> Vec<&[u8]> {
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<&'a RawValue>,
    }
    if let Ok(list) = serde_json::from_slice::<List<'_>>(body) {
        return list.items.iter().map(|r| r.get().as_bytes()).collect();
    }
    if let Ok(arr) = serde_json::from_slice::<Vec<&RawValue>>(body) {
        return arr.iter().map(|r| r.get().as_bytes()).collect();
    }
    vec![body]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gunzip_stops_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 10 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(Gunzip::TooLarge)));
        assert!(matches!(gunzip(b"not gzip", 1 << 20), Err(Gunzip::Corrupt)));
    }

    #[test]
    fn splits_event_lists_and_arrays_into_items() {
        assert_eq!(
            split_items(br#"{"kind":"EventList","items":[{"a":1},{"b":2}]}"#),
            vec![&br#"{"a":1}"#[..], br#"{"b":2}"#]
        );
        assert_eq!(split_items(br#"[{"a":1}]"#), vec![&br#"{"a":1}"#[..]]);
        assert_eq!(split_items(br#"{"a":1}"#), vec![&br#"{"a":1}"#[..]]);
    }

    #[test]
    fn records_are_keyed_by_cluster_and_principal() {
        let ev = br#"{"auditID":"a","user":{"username":"system:serviceaccount:ci:deployer","groups":["x"]}}"#;
        assert_eq!(
            record_key(Some("prod"), ev).as_deref(),
            Some("prod/system:serviceaccount:ci:deployer")
        );
        assert_eq!(
            record_key(None, br#"{"user":{"username":"alice\u0040example.com"}}"#).as_deref(),
            Some("alice@example.com"),
            "escaped names are read as the API server meant them"
        );
        assert_eq!(
            record_key(Some("prod"), br#"{"user":{}}"#).as_deref(),
            Some("prod")
        );
        assert_eq!(record_key(None, b"not json"), None);
    }
}
