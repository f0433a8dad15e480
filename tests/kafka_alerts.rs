//! rampart's topics on the real broker: every alert, update and follow-up produced once as an alert document, keyed by dedup group, with its delivery id in a header; and, optionally, every enriched event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::sync::Arc;
use std::time::Duration;

use rampart::config::KafkaConnection;
use rampart::event::AuditEvent;
use rampart::playbook::{Severity, Verdict};
use rampart::respond::kafka_alerts::{KafkaAlerts, KafkaAlertsConfig};
use rampart::respond::Responder;
use rampart::state::model::Status;
use rampart::state::{MemoryStore, StateSettings, StateStage};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;

const T0: i64 = 1_767_225_600;

fn event(id: &str, user: &str, t: i64) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": id,
        "stage": "ResponseComplete",
        "verb": "delete",
        "requestURI": "/api/v1/namespaces/prod/events/x",
        "user": {"username": user},
        "objectRef": {"resource": "events", "namespace": "prod", "name": "x"},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(t),
    }))
    .unwrap();
    ev.provenance.cluster = "prod".into();
    ev.verdicts = vec![Verdict {
        playbook: "events-deleted".into(),
        title: format!("{user} deleted events"),
        severity: Severity::Medium,
        score: 30,
        dedup: user.into(),
        context: Default::default(),
        responses: Vec::new(),
        mitre: vec!["T1070".into()],
        gating: Default::default(),
    }];
    ev
}

/// A consumer of `topic` from its start, in a group of its own.
fn reader(topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::brokers())
        .set("group.id", common::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

#[tokio::test]
async fn alerts_updates_and_follow_ups_reach_the_topic_once_keyed_by_dedup_group() {
    let topic = common::unique("alerts");
    common::create_topic(&topic, 3).await;
    let conn: KafkaConnection =
        serde_yaml::from_str(&format!("brokers: {}", common::brokers())).unwrap();
    let cfg: KafkaAlertsConfig = serde_yaml::from_str(&format!("topic: {topic}")).unwrap();
    let responder: Arc<dyn Responder> = Arc::new(KafkaAlerts::new(&cfg, &conn).unwrap());
    assert!(responder.takes_every_alert());
    let st = Arc::new(
        StateStage::open(
            Arc::new(MemoryStore::default()),
            StateSettings {
                dedup_window: 600,
                update_interval: 60,
                sinks: vec!["kafka".into()],
                ..StateSettings::default()
            },
        )
        .unwrap(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = rampart::respond::dispatch::spawn(
        st.clone(),
        vec![responder],
        Default::default(),
        stop.clone(),
    );
    // mallory: an alert, an update two minutes later; trent: one alert. The same events again: nothing.
    let evs = [
        event("a1", "mallory", T0),
        event("t1", "trent", T0 + 10),
        event("a2", "mallory", T0 + 120),
    ];
    for round in 0..2 {
        for ev in &evs {
            st.process(ev).unwrap();
        }
        st.commit().unwrap();
        if round == 0 {
            common::eventually("3 deliveries journaled", Duration::from_secs(30), || {
                let j = st.outbox().journal_entries().unwrap();
                (j.len() == 3 && j.iter().all(|e| e.status == Status::Done)).then_some(())
            })
            .await;
        }
    }
    let consumer = reader(&topic);
    let mut got = Vec::new();
    // Read until three records arrived, then a little longer to see that no fourth follows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let wait = if got.len() >= 3 { 2 } else { 30 };
        match tokio::time::timeout(Duration::from_secs(wait), consumer.recv()).await {
            Ok(m) => {
                let m = m.unwrap();
                let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                let doc: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                let header = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "rampart-delivery"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8(v.to_vec()).unwrap());
                got.push((key, m.partition(), doc, header));
            }
            Err(_) if got.len() >= 3 => break,
            Err(_) => {}
        }
    }
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(got.len(), 3, "exactly once each: {got:#?}");
    let mallory: Vec<_> = got
        .iter()
        .filter(|g| g.0 == "prod/events-deleted/mallory")
        .collect();
    assert_eq!(mallory.len(), 2, "the alert and its update share a key");
    assert_eq!(mallory[0].1, mallory[1].1, "and so a partition, in order");
    assert_eq!(mallory[0].2["kind"], "alert");
    assert_eq!(mallory[1].2["kind"], "update");
    assert_eq!(mallory[1].2["count"], 2);
    assert_eq!(mallory[1].2["thread"], "prod/a1/events-deleted");
    for (_, _, doc, header) in &got {
        assert_eq!(doc["delivery"].as_str(), header.as_deref());
        assert_eq!(doc["mitre"][0], "T1070");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_enriched_event_can_go_to_a_topic_before_its_source_is_acknowledged() {
    let topic = common::unique("enriched");
    common::create_topic(&topic, 2).await;
    let s = common::Scratch::new();
    let (lines, ids) = common::events(500, 11);
    let audit = s.path("audit.jsonl");
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let mut cfg = s.config(&format!(
        "kafka:\n  brokers: {}\nsources:\n  files:\n    - path: {}\n",
        common::brokers(),
        audit.display()
    ));
    cfg.output.kafka_topic = Some(topic.clone());
    let report = common::run_to_end(&cfg).await;
    assert_eq!(report.events, 500);

    let consumer = reader(&topic);
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 500 && tokio::time::Instant::now() < deadline {
        if let Ok(m) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            let m = m.unwrap();
            assert_eq!(m.key(), Some(&b"default"[..]), "keyed by cluster");
            let ev: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            assert!(ev["enrichment"].is_object(), "enriched: {ev}");
            seen.insert(ev["auditID"].as_str().unwrap().to_owned());
        }
    }
    let want: std::collections::HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        seen, want,
        "every event, on the topic before the file position was stored"
    );
}
