//! Fault injection: the Kafka broker stops for 60 s in the middle of a run and comes back — rampart keeps running, reports not-ready while the broker is gone, resumes on its own, and loses no record.
//!
//! How the broker "stops": the test runs its own tansu broker behind a TCP proxy it owns (tansu
//! advertises the proxy, so every client connection goes through it) and takes the proxy down:
//! every open connection is reset and the port is closed, so reconnects are refused — what
//! clients see when a broker process dies — then it listens again on the same port. tansu
//! itself keeps running because its only storage here is memory; a real broker's log would
//! survive its restart, and so does tansu's data this way. SIGSTOP/SIGCONT of tansu was the
//! other candidate, but a frozen process keeps its connections open and accepts new ones into
//! the kernel backlog: that is a hung broker (timeouts), not a stopped one (refusals and
//! resets), and it would not exercise reconnection and the group coordinator's loss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{faults, scenario};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{unique, Scratch};
use faults::{env_or, free_port, ledger, produce_fast, ready, Rampart};
use scenario::{Grouping, Scenario};

const PARTITIONS: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_gone_for_60s_makes_rampart_not_ready_then_it_resumes_and_loses_nothing() {
    let started = Instant::now();
    let outage = Duration::from_secs(env_or("FAULTS_BROKER_OUTAGE_SECS", 60));
    let (n1, n2): (usize, usize) = (env_or("FAULTS_BROKER_EVENTS", 20_000), 5_000);
    let s = Scratch::new();
    let broker = faults::OwnBroker::start(&s.path("tansu.log")).await;
    let brokers = broker.brokers();
    let topic = unique("faults-broker");
    let group = unique("faults-broker-group");
    faults::create_topic_at(&brokers, &topic, PARTITIONS).await;
    let sc = Scenario::build(n1 + n2, 11, 500, 0, Grouping::PerActorVerbResource, None);
    let (first, second) = sc.lines.split_at(n1);
    let mut produced = produce_fast(&brokers, &topic, first, PARTITIONS).await;

    Scenario::write_playbooks(&s.path("pb"), Grouping::PerActorVerbResource);
    let port = free_port();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{}output:\n  console: off\n  file: {}\ndead_letter:\n  file: {}\nstate:\n  dir: {}\n  risk:\n    threshold: 0\nplaybooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:{port}\nrespond:\n  alerts_file: {}\n",
            faults::kafka_yaml(&brokers, &group, &topic),
            s.output().display(),
            s.dead_letters().display(),
            s.path("state").display(),
            s.path("pb").display(),
            s.path("alerts.jsonl").display(),
        ),
    )
    .unwrap();
    let offsets = faults::Offsets::new(&brokers, &group, &topic, PARTITIONS);
    let mut r = Rampart::spawn(&cfg, port, &s.path("rampart.log"));
    faults::until("ready", Duration::from_secs(60), || async {
        ready(port).await.filter(|(ok, _)| *ok)
    })
    .await;
    // Mid-run: some of the first batch committed, not all of it.
    common::eventually(
        "a fifth of the records committed",
        Duration::from_secs(120),
        || (offsets.sum() >= (n1 / 5) as i64).then_some(()),
    )
    .await;
    let committed_at_stop = offsets.sum();
    assert!(
        committed_at_stop < n1 as i64,
        "the outage must start mid-run"
    );

    broker.proxy.down().await;
    let down = Instant::now();
    let (_, body) = faults::until(
        "not ready after the broker stopped",
        Duration::from_secs(30),
        || async { ready(port).await.filter(|(ok, _)| !*ok) },
    )
    .await;
    let not_ready_after = down.elapsed();
    assert!(body.contains("kafka"), "/readyz says why: {body}");
    // The broker stays away for the outage; rampart must stay up and not ready all along.
    while down.elapsed() < outage {
        assert!(
            r.exited().is_none(),
            "rampart exited during the outage:\n{}",
            r.log_text()
        );
        let (ok, body) = ready(port)
            .await
            .expect("telemetry answers during the outage");
        assert!(
            !ok,
            "ready while the broker is down ({:?} in): {body}",
            down.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    broker.proxy.up();
    let back = Instant::now();
    faults::until(
        "ready again after the broker returned",
        Duration::from_secs(90),
        || async { ready(port).await.filter(|(ok, _)| *ok) },
    )
    .await;
    let ready_after = back.elapsed();
    // New records after the restart are consumed too.
    produced.extend(produce_fast(&brokers, &topic, second, PARTITIONS).await);
    common::eventually("every record committed", Duration::from_secs(180), || {
        assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
        (offsets.sum() >= (n1 + n2) as i64).then_some(())
    })
    .await;
    let status = r.term(Duration::from_secs(60)).await;
    assert!(status.success(), "clean stop: {status}\n{}", r.log_text());

    let l = ledger(&s.output(), &s.dead_letters());
    let lost = l.lost(&produced);
    assert_eq!(l.torn, 0, "torn lines: {:?}", l.first_torn);
    let poison: std::collections::HashSet<(i32, i64)> =
        sc.poison.iter().map(|i| produced[*i]).collect();
    assert_eq!(
        l.dead_lettered, poison,
        "exactly the undecodable records are dead-lettered"
    );
    // Alerts: each expected one exactly once in the alerts file, whatever was re-read.
    let mut alerts: HashMap<String, usize> = HashMap::new();
    for a in common::read_jsonl(&s.path("alerts.jsonl")) {
        if a["kind"] == "alert" {
            let t = a["title"]
                .as_str()
                .unwrap()
                .trim_matches(['«', '»'])
                .to_owned();
            *alerts.entry(t).or_default() += 1;
        }
    }
    let duplicates = alerts.values().filter(|n| **n > 1).count();
    faults::report(&format!(
        "faults: broker_outage={}s produced={} processed={} dead_lettered={} lost={} redelivered={} alerts={} alert_duplicates={duplicates} committed_at_stop={committed_at_stop} not_ready_after={:.1}s ready_after_return={:.1}s wall={:.0}s",
        outage.as_secs(),
        produced.len(),
        l.processed.len(),
        l.dead_lettered.len(),
        lost.len(),
        l.redelivered,
        alerts.len(),
        not_ready_after.as_secs_f64(),
        ready_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    ));
    assert!(
        lost.is_empty(),
        "records lost: {:?}",
        &lost[..lost.len().min(20)]
    );
    assert_eq!(l.processed.len() + l.dead_lettered.len(), produced.len());
    assert_eq!(
        alerts
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        sc.titles.iter().map(|t| t.to_owned()).collect(),
        "every expected alert"
    );
    assert_eq!(duplicates, 0, "alerts repeated: {alerts:?}");
}
