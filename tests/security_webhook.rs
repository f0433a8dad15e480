//! Security of the webhook source, against the real `rampart run` process: forged credentials get 401 and reach nothing, oversized bodies and gzip bombs get 413 without the memory they claim, and stalled senders are cut off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::spawned;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use spawned::Spawned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Unusual, so that a match anywhere is unambiguous.
const TOKEN: &str = "whk-7Qz2Lp9Xv4Rt8Mn3";
const MAX_BODY: usize = 16 << 20;

struct Hook {
    proc: Spawned,
    url: String,
    addr: SocketAddr,
    telemetry: SocketAddr,
    metrics: String,
    s: Scratch,
}

/// `rampart run` with a webhook source (token from a file, default `max_body`, `extra` fields) and
/// telemetry, plus the top-level sections `rest`.
async fn start(extra: &str, rest: &str) -> Hook {
    let s = Scratch::new();
    std::fs::write(s.path("token"), TOKEN).unwrap();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "sources:\n  webhook:\n    listen: 127.0.0.1:0\n    bearer_token: {{ file: {} }}\n    ack_timeout: 10s\n{extra}\n{rest}telemetry:\n  listen: 127.0.0.1:0\noutput:\n  console: off\n  file: {}\ndead_letter:\n  file: {}\nstate:\n  dir: {}\n",
            s.path("token").display(),
            s.output().display(),
            s.dead_letters().display(),
            s.path("state").display(),
        ),
    )
    .unwrap();
    let mut proc = Spawned::start(
        s.dir.path(),
        "rampart",
        &["--log-format", "json", "run", "-c", cfg.to_str().unwrap()],
        &[],
    );
    let addr = proc.addr_logged("webhook source listening").await;
    let telemetry = proc.addr_logged("telemetry listening").await;
    Hook {
        proc,
        url: format!("http://{addr}/audit"),
        addr,
        telemetry,
        metrics: format!("http://{telemetry}/metrics"),
        s,
    }
}

fn event_list(lines: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        lines.join(",")
    )
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn post_good(h: &Hook, body: String) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(&h.url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// What a request tries: a description, its headers, and a query string the token is appended to.
type Attempt = (&'static str, Vec<(&'static str, String)>, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_exact_bearer_token_get_401_and_nothing_reaches_the_output() {
    let h = start("", "").await;
    let wrong_last = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
    assert_ne!(wrong_last, TOKEN);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("rampart:{TOKEN}"));
    let attempts: Vec<Attempt> = vec![
        ("no Authorization header", vec![], ""),
        (
            "another token",
            vec![("authorization", "Bearer not-the-token".into())],
            "",
        ),
        (
            "the last byte differs",
            vec![("authorization", format!("Bearer {wrong_last}"))],
            "",
        ),
        (
            "a prefix of the token",
            vec![("authorization", format!("Bearer {}", &TOKEN[..12]))],
            "",
        ),
        (
            "the token and one byte more",
            vec![("authorization", format!("Bearer {TOKEN}0"))],
            "",
        ),
        (
            "an empty bearer token",
            vec![("authorization", "Bearer ".into())],
            "",
        ),
        (
            "the token under Basic",
            vec![("authorization", format!("Basic {basic}"))],
            "",
        ),
        (
            "the token under another scheme",
            vec![("authorization", format!("Token {TOKEN}"))],
            "",
        ),
        (
            "the token without a scheme",
            vec![("authorization", TOKEN.into())],
            "",
        ),
        (
            "the token in another header",
            vec![
                ("x-auth-token", TOKEN.into()),
                ("proxy-authorization", format!("Bearer {TOKEN}")),
            ],
            "",
        ),
        ("the token in the query string", vec![], "?access_token="),
    ];
    let client = reqwest::Client::new();
    let mut refused_ids = Vec::new();
    for (i, (what, headers, query)) in attempts.iter().enumerate() {
        let (lines, ids) = events(3, 900 + i as u64);
        refused_ids.extend(ids);
        let url = if query.is_empty() {
            h.url.clone()
        } else {
            format!("{}{query}{TOKEN}", h.url)
        };
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(event_list(&lines));
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains(TOKEN), "{what}: the answer names the token");
    }
    // The same kind of batch with the token is taken: the refusals were about the credentials.
    let (lines, good_ids) = events(3, 899);
    assert_eq!(post_good(&h, event_list(&lines)).await, 200);
    let metrics = reqwest::get(&h.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status = h.proc.stop().await;
    assert!(status.success(), "{status}");
    let out = audit_ids(&h.s.output());
    let leaked = out.iter().filter(|id| refused_ids.contains(id)).count();
    assert_eq!(leaked, 0, "events of refused requests were processed");
    assert_eq!(out, good_ids);
    assert!(
        read_jsonl(&h.s.dead_letters()).is_empty(),
        "refused bodies are not even dead-lettered"
    );
    let rejected = metric(&metrics, "rampart_webhook_requests_total{code=\"4xx\"}");
    assert_eq!(rejected, attempts.len() as f64, "{metrics}");
    figure(&format!(
        "security: webhook_auth rejected={}/{} leaked_events={leaked} accepted_with_token=1",
        rejected,
        attempts.len()
    ));
}

/// Writes a request with `Content-Length: declared` and streams zeros until the answer arrives
/// (or the server stops reading): (status line, body bytes written).
async fn stream_oversized(addr: SocketAddr, declared: u64) -> (String, u64) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /audit HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let done = answered.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0u64;
        while sent < declared && !done.load(Ordering::SeqCst) {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let reading = tokio::time::timeout(Duration::from_secs(60), async {
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match rd.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    })
    .await;
    assert!(reading.is_ok(), "no answer within a minute");
    answered.store(true, Ordering::SeqCst);
    let sent = writer.await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    (text.lines().next().unwrap_or("").to_owned(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_gzip_bombs_get_413_without_the_memory_they_claim() {
    let h = start("", "").await;
    // Warm up with a real batch, so that the baseline includes a normal request's memory.
    let (lines, ids) = events(50, 910);
    assert_eq!(post_good(&h, event_list(&lines)).await, 200);
    let before = h.proc.memory_kib("VmHWM");

    // 1 GiB of zeros, gzip'd to about 1 MiB: far under max_body on the wire, 64 times over it inflated.
    let inflated: u64 = 1 << 30;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(inflated >> 20) {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < MAX_BODY / 8, "{} bytes", bomb.len());
    let resp = reqwest::Client::new()
        .post(&h.url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("decompressed body too large"));
    let after_bomb = h.proc.memory_kib("VmHWM");
    figure(&format!(
        "security: webhook_gzip_bomb status=413 wire_bytes={} inflated_bytes={inflated} max_body={MAX_BODY} peak_rss_kib_before={before} peak_rss_kib_after={after_bomb}",
        bomb.len()
    ));

    // A plain body that claims 256 MiB and keeps coming: refused once max_body is passed.
    let declared: u64 = 256 << 20;
    let (status, sent) = stream_oversized(h.addr, declared).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status:?}");
    assert!(sent < declared, "the server read all {sent} bytes");
    let after_plain = h.proc.memory_kib("VmHWM");
    figure(&format!(
        "security: webhook_oversized status=413 declared_bytes={declared} sent_before_answer={sent} max_body={MAX_BODY} peak_rss_kib_before={after_bomb} peak_rss_kib_after={after_plain}"
    ));

    // Each refusal may cost about a max_body buffer (and its growth), never the claimed size.
    let growth = (after_plain - before) * 1024;
    assert!(
        growth < 4 * MAX_BODY as u64,
        "peak memory grew by {growth} bytes (before {before} KiB, after {after_plain} KiB)"
    );
    // Still serving, and nothing of the refused bodies went anywhere.
    let (lines, more) = events(5, 911);
    assert_eq!(post_good(&h, event_list(&lines)).await, 200);
    let status = h.proc.stop().await;
    assert!(status.success(), "{status}");
    assert_eq!(audit_ids(&h.s.output()), [ids, more].concat());
    assert!(read_jsonl(&h.s.dead_letters()).is_empty());
    figure(&format!(
        "security: webhook_memory peak_growth_bytes={growth} limit_bytes={} inflated_claim_bytes={inflated}",
        4 * MAX_BODY
    ));
}

/// Reads until the server answers or closes: (what it said, how long it took).
async fn until_cut_off(rd: &mut tokio::net::tcp::OwnedReadHalf) -> (String, Duration) {
    let t = Instant::now();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 1024];
    let cut = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rd.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the connection was still open after 20 s");
    (
        String::from_utf8_lossy(&buf)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        t.elapsed(),
    )
}

/// Connects, sends `first`, then nothing more: what the server said and when it gave up.
async fn stall(addr: SocketAddr, first: String) -> (String, Duration) {
    let (mut rd, mut wr) = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap()
        .into_split();
    wr.write_all(first.as_bytes()).await.unwrap();
    let out = until_cut_off(&mut rd).await;
    drop(wr);
    out
}

/// Sends `head`, then a byte of body every 50 ms.
async fn trickle(addr: SocketAddr, head: String) -> (String, Duration) {
    let (mut rd, mut wr) = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap()
        .into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        for _ in 0..600 {
            tick.tick().await;
            if wr.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let out = until_cut_off(&mut rd).await;
    sender.abort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_that_stall_or_trickle_are_cut_off() {
    // Slack approvals put the (internet-facing) interactivity endpoint on the telemetry listener.
    let slack = "respond:\n  slack:\n    bot_token: xoxb-slow-senders\n    api_url: https://127.0.0.1:9/api\n    approvals:\n      signing_secret: slow-senders-secret\n      approvers: [U_ALICE]\n";
    let h = start("    read_timeout: 1s", slack).await;
    let head = |path: &str, kind: &str, len: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: {kind}\r\ncontent-length: {len}\r\n\r\n"
        )
    };
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let (
        (hook_headers_said, hook_headers),
        (hook_body_said, hook_body),
        (hook_trickle_said, hook_trickle),
        (telemetry_headers_said, telemetry_headers),
        (interaction_said, interaction_body),
    ) = tokio::join!(
        // Headers that never end: the connection is closed.
        stall(h.addr, "POST /audit HTTP/1.1\r\nhost: x\r\nauthoriz".into()),
        // A body that stops halfway: 408.
        stall(h.addr, format!("{}{{\"kind\":", head("/audit", json, 1000))),
        // A body that keeps coming, a byte at a time: the limit is on the whole body, not per read.
        trickle(h.addr, head("/audit", json, 100_000)),
        stall(h.telemetry, "GET /metrics HTTP/1.1\r\nhost: x\r\n".into()),
        stall(
            h.telemetry,
            format!("{}payload=%7B", head("/slack/interactions", form, 1000))
        ),
    );
    for (what, said) in [
        ("stalled headers", &hook_headers_said),
        ("stalled telemetry headers", &telemetry_headers_said),
    ] {
        assert!(said.is_empty() || said.contains(" 408"), "{what}: {said:?}");
    }
    for (what, said) in [
        ("stalled body", &hook_body_said),
        ("trickled body", &hook_trickle_said),
        ("stalled interaction body", &interaction_said),
    ] {
        assert!(said.starts_with("HTTP/1.1 408"), "{what}: {said:?}");
    }
    for (what, took) in [
        ("stalled headers", hook_headers),
        ("stalled body", hook_body),
        ("trickled body", hook_trickle),
    ] {
        assert!(
            took < Duration::from_secs(5),
            "{what}: {took:?} with read_timeout 1s"
        );
    }

    // Honest senders are unaffected.
    let (lines, ids) = events(2, 920);
    assert_eq!(post_good(&h, event_list(&lines)).await, 200);
    let status = h.proc.stop().await;
    assert!(status.success(), "{status}");
    assert_eq!(audit_ids(&h.s.output()), ids);
    figure(&format!(
        "security: webhook_slowloris read_timeout_ms=1000 stalled_headers_closed_ms={} stalled_body_408_ms={} trickled_body_408_ms={}",
        hook_headers.as_millis(),
        hook_body.as_millis(),
        hook_trickle.as_millis()
    ));
    figure(&format!(
        "security: telemetry_slowloris read_timeout_ms={} stalled_headers_closed_ms={} stalled_interaction_body_408_ms={}",
        rampart::telemetry::READ_TIMEOUT.as_millis(),
        telemetry_headers.as_millis(),
        interaction_body.as_millis()
    ));
}
