//! Fault injection: kill -9 of the rampart binary ten times during a 100k-record Kafka run with Slack and Kubernetes responders on loopback fakes — in the end every record is processed or dead-lettered, every expected alert is in Slack exactly once, and every judged binding was deleted exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, faults, scenario};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{brokers, create_topic, unique, Scratch};
use faults::{env_or, free_port, produce_fast, Rampart};
use scenario::{Grouping, Scenario};

const PARTITIONS: i32 = 4;
const TOKEN: &str = "xoxb-faults-kill-token";
/// Longest any one phase may take (progress between kills, the final catch-up).
const PHASE: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_kill_9s_in_a_100k_run_lose_no_record_and_repeat_no_alert_or_revocation() {
    let started = Instant::now();
    let n: usize = env_or("FAULTS_EVENTS", 100_000);
    let kills: usize = env_or("FAULTS_KILLS", 10);
    let kube = fake_kube::FakeKube::start().await;
    let slack = fake_slack::FakeSlack::start(TOKEN, "/hooks/unused").await;
    let sc = Scenario::build(n, 7, 1000, 40, Grouping::PerActorVerbResource, Some(&kube));
    let topic = unique("faults-kill");
    let group = unique("faults-kill-group");
    create_topic(&topic, PARTITIONS).await;
    let produced = produce_fast(&brokers(), &topic, &sc.lines, PARTITIONS).await;
    eprintln!(
        "faults_kill: {n} records produced in {:?}",
        started.elapsed()
    );

    let s = Scratch::new();
    Scenario::write_playbooks(&s.path("pb"), Grouping::PerActorVerbResource);
    let port = free_port();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{}output:\n  console: off\n  file: {}\ndead_letter:\n  file: {}\nstate:\n  dir: {}\n  risk:\n    threshold: 0\nplaybooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:{port}\n{}",
            faults::kafka_yaml(&brokers(), &group, &topic),
            s.output().display(),
            s.dead_letters().display(),
            s.path("state").display(),
            s.path("pb").display(),
            scenario::responders_yaml(&slack, TOKEN, &kube),
        ),
    )
    .unwrap();
    let log = s.path("rampart.log");
    let mut l = faults::Ledger::default();
    let offsets = faults::Offsets::new(&brokers(), &group, &topic, PARTITIONS);

    // Kill i lands once the group has committed i/(kills+1) of the records: spread over the run.
    for k in 1..=kills {
        let mut r = Rampart::spawn(&cfg, port, &log);
        let target = (n * k / (kills + 1)) as i64;
        common::eventually(
            &format!("progress to {target} before kill {k}"),
            PHASE,
            || {
                assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
                (offsets.sum() >= target).then_some(())
            },
        )
        .await;
        r.kill9();
        // An offset is committed only once its record is durable: every committed record is written.
        l.update(&s.output(), &s.dead_letters());
        let uncovered = l.uncovered(&offsets.committed());
        assert!(
            uncovered.is_empty(),
            "kill {k}: committed but never written: {uncovered:?}"
        );
    }

    let mut r = Rampart::spawn(&cfg, port, &log);
    faults::until("ready after the last restart", PHASE, || async {
        faults::ready(port).await.filter(|(ok, _)| *ok)
    })
    .await;
    common::eventually(
        "every record committed after the last restart",
        PHASE,
        || {
            assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
            (offsets.sum() >= n as i64).then_some(())
        },
    )
    .await;
    common::eventually("every alert and revocation delivered", PHASE, || {
        let posted = scenario::slack_messages(&slack);
        let deleted = scenario::deletes(&kube);
        (sc.titles.iter().all(|t| posted.contains_key(t))
            && sc.bindings.iter().all(|b| deleted.contains_key(b)))
        .then_some(())
    })
    .await;
    let status = r.term(Duration::from_secs(60)).await;
    assert!(status.success(), "clean stop: {status}\n{}", r.log_text());

    l.update(&s.output(), &s.dead_letters());
    let lost = l.lost(&produced);
    assert_eq!(l.torn, 0, "torn lines: {:?}", l.first_torn);
    assert!(
        lost.is_empty(),
        "records lost: {:?}",
        &lost[..lost.len().min(20)]
    );
    let poison: std::collections::HashSet<(i32, i64)> =
        sc.poison.iter().map(|i| produced[*i]).collect();
    assert_eq!(
        l.dead_lettered, poison,
        "exactly the undecodable records are dead-lettered"
    );
    assert!(l.processed.is_disjoint(&l.dead_lettered));

    let posted = scenario::slack_messages(&slack);
    let duplicates: HashMap<&String, &usize> = posted.iter().filter(|(_, n)| **n > 1).collect();
    let unexpected: Vec<&String> = posted.keys().filter(|t| !sc.titles.contains(*t)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected Slack messages: {unexpected:?}"
    );
    let deleted = scenario::deletes(&kube);
    let twice: Vec<(&String, &usize)> = deleted.iter().filter(|(_, n)| **n > 1).collect();
    for b in &sc.bindings {
        assert!(
            kube.get("ClusterRoleBinding", None, b).is_none(),
            "{b} still exists"
        );
    }
    let found = r
        .log_text()
        .matches("an unconfirmed post reached Slack")
        .count();
    let figures = format!(
        "faults: kills={kills} produced={} processed={} dead_lettered={} lost={} redelivered={} slack_alerts={} slack_duplicates={} slack_unconfirmed_found={found} slack_lookups={} revocations={} duplicate_revocations={} wall={:.0}s",
        produced.len(),
        l.processed.len(),
        l.dead_lettered.len(),
        lost.len(),
        l.redelivered,
        posted.len(),
        duplicates.len(),
        slack.to("conversations.history").len() + slack.to("conversations.replies").len(),
        deleted.len(),
        twice.len(),
        started.elapsed().as_secs_f64(),
    );
    eprintln!(
        "faults_kill: warnings and errors logged:\n{}",
        r.log_summary()
    );
    faults::report(&figures);
    if !duplicates.is_empty() {
        for (ts, ch, body) in slack.messages() {
            let text = body.to_string();
            if duplicates.keys().any(|t| text.contains(t.as_str())) {
                let id = text
                    .split("alert `")
                    .nth(1)
                    .and_then(|r| r.split('`').next());
                eprintln!("repeated: ts={ts} channel={ch} alert={id:?}");
            }
        }
        eprintln!(
            "{}",
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("librdkafka"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        duplicates.is_empty(),
        "Slack messages repeated: {duplicates:?}"
    );
    assert!(
        twice.is_empty(),
        "bindings deleted more than once: {twice:?}"
    );
    assert_eq!(
        l.processed.len() + l.dead_lettered.len(),
        produced.len(),
        "processed + dead-lettered = produced"
    );
}
