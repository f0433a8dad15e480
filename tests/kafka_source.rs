//! The Kafka source against a real broker: delivery, restarts, poison records, consumer groups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::*;
use rampart::config::{KafkaConnection, KafkaSourceConfig, Seconds, Secret, StartFrom};
use rampart::event::ClusterResolver;
use rampart::pipeline::{self, RunOptions};
use rampart::sources::kafka::KafkaSource;
use rampart::sources::{Record, Router};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn kafka_yaml(topics: &[&str], group: &str, extra: &str) -> String {
    format!(
        "kafka:\n  brokers: {}\nsources:\n  kafka:\n    group_id: {group}\n    topics: [{}]\n    drain_timeout: 5s\n    properties:\n      session.timeout.ms: \"6000\"\n      heartbeat.interval.ms: \"500\"\n{extra}",
        brokers(),
        topics.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_produced_event_exactly_once_and_commits_the_end() {
    let topic = unique("audit");
    let group = unique("group");
    create_topic(&topic, 3).await;
    let (lines, ids) = events(300, 11);
    produce(&topic, &lines, 3).await;

    let s = Scratch::new();
    let cfg = s.config(&kafka_yaml(&[&topic], &group, ""));
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    let out = s.output();
    eventually("all events in the output", WAIT, || {
        (audit_ids(&out).len() >= 300).then_some(())
    })
    .await;
    // Committed offsets reach each partition's end once the events are acknowledged.
    eventually("offsets committed", WAIT, || {
        let c = committed(&group, &topic, 3);
        (c.values().sum::<i64>() == 300).then_some(())
    })
    .await;
    // Consumer lag is exported per partition from librdkafka's statistics.
    let lag_line = format!("rampart_kafka_consumer_lag{{topic=\"{topic}\",partition=\"0\"}} 0");
    eventually("lag metric at zero", WAIT, || {
        rampart::telemetry::install_recorder()
            .render()
            .contains(&lag_line)
            .then_some(())
    })
    .await;
    shutdown.cancel();
    let report = running.wait().await.unwrap();

    let got = audit_ids(&out);
    assert_eq!(got.len(), 300, "no duplicates without a restart");
    assert_eq!(
        got.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>()
    );
    assert_eq!(report.events, 300);
    assert_eq!(report.dead_letters, 0);
    // Provenance points back to the exact record.
    let first = &read_jsonl(&out)[0];
    assert_eq!(first["provenance"]["topic"], topic.as_str());
    assert!(first["provenance"]["offset"].is_i64());
}

fn source_config(group: &str, topic: &str) -> (KafkaConnection, KafkaSourceConfig) {
    let conn = KafkaConnection {
        brokers: brokers(),
        properties: Default::default(),
    };
    let cfg = KafkaSourceConfig {
        group_id: group.to_owned(),
        topics: vec![topic.to_owned()],
        start_from: StartFrom::Earliest,
        drain_timeout: Seconds::from_millis(300),
        commit_interval: Seconds::from_millis(100),
        lag_interval: Seconds::from_secs(1),
        partition_assignment: Default::default(),
        group_instance_id: None,
        session_timeout: Seconds::from_secs(6),
        properties: [
            ("session.timeout.ms".to_owned(), Secret::new("6000")),
            ("heartbeat.interval.ms".to_owned(), Secret::new("500")),
            (
                "debug".to_owned(),
                Secret::new(std::env::var("RDKAFKA_DEBUG").unwrap_or("generic".into())),
            ),
        ]
        .into(),
    };
    (conn, cfg)
}

fn start_source(
    group: &str,
    topic: &str,
) -> (KafkaSource, mpsc::Receiver<Vec<Record>>, CancellationToken) {
    let (conn, cfg) = source_config(group, topic);
    let (tx, rx) = mpsc::channel(1000);
    let shutdown = CancellationToken::new();
    let resolver = ClusterResolver::new(&Default::default());
    let src = KafkaSource::start(
        &conn,
        &cfg,
        resolver,
        Router::new(vec![tx]),
        16,
        Default::default(),
        shutdown.clone(),
    )
    .unwrap();
    (src, rx, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_redelivers_everything_not_acknowledged_and_commits_nothing_unacknowledged() {
    rampart::telemetry::init_logging(
        &std::env::var("RAMPART_LOG").unwrap_or("warn".into()),
        rampart::telemetry::LogFormat::Text,
    );
    let topic = unique("audit");
    let group = unique("group");
    create_topic(&topic, 1).await;
    let (lines, _) = events(100, 12);
    produce(&topic, &lines, 1).await;

    // First run: acknowledge offsets 0..40 and 50, then stop abruptly.
    let (src, mut rx, shutdown) = start_source(&group, &topic);
    let mut held = Vec::new();
    while held.len() < 100 {
        let batch = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        held.extend(batch);
    }
    let offsets: Vec<i64> = held.iter().map(|r| r.origin.offset.unwrap()).collect();
    assert_eq!(
        offsets,
        (0..100).collect::<Vec<_>>(),
        "partition order is kept"
    );
    let mut unacked = Vec::new();
    for r in held {
        let o = r.origin.offset.unwrap();
        if o < 40 || o == 50 {
            r.ack.ack();
        } else {
            unacked.push(r);
        }
    }
    shutdown.cancel();
    drop(rx);
    src.join().await.unwrap();
    drop(unacked); // never acknowledged: the "crash" lost them downstream
    assert_eq!(
        committed(&group, &topic, 1)[&0],
        40,
        "committed past an unacknowledged record"
    );

    // Second run: everything from 40 on comes again, including 50.
    let (src, mut rx, shutdown) = start_source(&group, &topic);
    let mut seen = BTreeSet::new();
    while seen.len() < 60 {
        let batch = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        for r in batch {
            seen.insert(r.origin.offset.unwrap());
            r.ack.ack();
        }
    }
    assert_eq!(seen, (40..100).collect::<BTreeSet<_>>());
    shutdown.cancel();
    drop(rx);
    src.join().await.unwrap();
    assert_eq!(committed(&group, &topic, 1)[&0], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_lands_in_the_dead_letter_topic_and_its_offset_advances() {
    let topic = unique("audit");
    let dlq = unique("dlq");
    let group = unique("group");
    create_topic(&topic, 1).await;
    create_topic(&dlq, 1).await;
    let (mut lines, _) = events(2, 13);
    lines.insert(1, r#"{"kind": 0}"#.to_owned());
    produce(&topic, &lines, 1).await;

    let s = Scratch::new();
    let cfg = s.config(&kafka_yaml(
        &[&topic],
        &group,
        &format!("dead_letter:\n  topic: {dlq}\n"),
    ));
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    eventually("offset past the poison record", WAIT, || {
        (committed(&group, &topic, 1)[&0] == 3).then_some(())
    })
    .await;
    shutdown.cancel();
    let report = running.wait().await.unwrap();
    assert_eq!(report.dead_letters, 1);
    assert_eq!(audit_ids(&s.output()).len(), 2);

    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[&dlq]).unwrap();
    let msg = loop {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            break m.unwrap();
        }
    };
    assert_eq!(msg.payload().unwrap(), br#"{"kind": 0}"#);
    let headers = msg.headers().unwrap();
    let header = |k: &str| {
        headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert!(
        header("rampart.reason").unwrap().contains("kind"),
        "{:?}",
        header("rampart.reason")
    );
    assert_eq!(header("rampart.topic").unwrap(), topic);
    assert_eq!(header("rampart.offset").unwrap(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_in_one_group_split_partitions_and_a_rebalance_loses_nothing() {
    let topic = unique("audit");
    let group = unique("group");
    create_topic(&topic, 4).await;
    let (lines, ids) = events(600, 14);

    let a = Scratch::new();
    let b = Scratch::new();
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let cfg_a = a.config(&kafka_yaml(&[&topic], &group, ""));
    let cfg_b = b.config(&kafka_yaml(&[&topic], &group, ""));
    let run_a = pipeline::start(&cfg_a, RunOptions::default(), stop_a.clone())
        .await
        .unwrap();
    produce(&topic, &lines[..200], 4).await;
    eventually("first batch through A", WAIT, || {
        (audit_ids(&a.output()).len() >= 200).then_some(())
    })
    .await;

    let run_b = pipeline::start(&cfg_b, RunOptions::default(), stop_b.clone())
        .await
        .unwrap();
    produce(&topic, &lines[200..400], 4).await;
    let union = |a: &Scratch, b: &Scratch| {
        audit_ids(&a.output())
            .into_iter()
            .chain(audit_ids(&b.output()))
            .collect::<HashSet<_>>()
    };
    eventually("second batch through A and B", WAIT, || {
        (union(&a, &b).len() >= 400).then_some(())
    })
    .await;
    // B joined the group and was given a share of the partitions.
    eventually("B to receive a share", WAIT, || {
        (!audit_ids(&b.output()).is_empty()).then_some(())
    })
    .await;

    stop_a.cancel();
    run_a.wait().await.unwrap();
    produce(&topic, &lines[400..], 4).await;
    eventually("third batch after A left", WAIT, || {
        (union(&a, &b).len() >= 600).then_some(())
    })
    .await;
    stop_b.cancel();
    run_b.wait().await.unwrap();

    let all = union(&a, &b);
    assert_eq!(
        all,
        ids.iter().cloned().collect::<HashSet<_>>(),
        "nothing lost across rebalances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarting_under_cooperative_rebalancing_loses_nothing() {
    let topic = unique("audit");
    let group = unique("group");
    create_topic(&topic, 4).await;
    let (lines, ids) = events(600, 15);
    // The default assignment is cooperative-sticky: a member joining or leaving moves only
    // the partitions that change hands. (Static membership, `group_instance_id`, is not
    // exercised here: tansu 0.6 never evicts a static member that died, see operator guide.)
    let a = Scratch::new();
    let b = Scratch::new();
    let cfg_a = a.config(&kafka_yaml(&[&topic], &group, ""));
    let cfg_b = b.config(&kafka_yaml(&[&topic], &group, ""));
    let union = |a: &Scratch, b: &Scratch| {
        audit_ids(&a.output())
            .into_iter()
            .chain(audit_ids(&b.output()))
            .collect::<HashSet<_>>()
    };

    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let run_a = pipeline::start(&cfg_a, RunOptions::default(), stop_a.clone())
        .await
        .unwrap();
    let run_b = pipeline::start(&cfg_b, RunOptions::default(), stop_b.clone())
        .await
        .unwrap();
    produce(&topic, &lines[..300], 4).await;
    eventually("the first half through A and B", WAIT, || {
        (union(&a, &b).len() >= 300).then_some(())
    })
    .await;

    // A restarts with its state directory (a pod rescheduled with its claim) while events keep
    // coming.
    stop_a.cancel();
    run_a.wait().await.unwrap();
    produce(&topic, &lines[300..], 4).await;
    let stop_a = CancellationToken::new();
    let run_a = pipeline::start(&cfg_a, RunOptions::default(), stop_a.clone())
        .await
        .unwrap();
    eventually("every event after the restart", WAIT, || {
        (union(&a, &b).len() >= 600).then_some(())
    })
    .await;
    stop_a.cancel();
    stop_b.cancel();
    run_a.wait().await.unwrap();
    run_b.wait().await.unwrap();
    assert_eq!(
        union(&a, &b),
        ids.iter().cloned().collect::<HashSet<_>>(),
        "nothing lost"
    );
    assert!(
        !audit_ids(&a.output()).is_empty() && !audit_ids(&b.output()).is_empty(),
        "both members were given partitions"
    );
}
