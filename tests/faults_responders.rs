//! Fault injection: Slack and the Kubernetes API fail for two minutes — first answering 5xx and 429, then accepting connections and never answering — while audit events keep arriving: rampart stays ready and keeps consuming, alerts and revocations wait in the outbox, client timeouts keep the hangs from blocking it, memory stays bounded, and once both recover every alert is posted exactly once and every judged binding deleted exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, faults, scenario};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{brokers, create_topic, unique, Scratch};
use fake_kube::{Fault, On};
use fake_slack::Behave;
use faults::{env_or, free_port, metric, produce_fast, ready, Rampart};
use scenario::{Grouping, Scenario};

const PARTITIONS: i32 = 2;
const TOKEN: &str = "xoxb-faults-responders-token";

/// Waits out `d` of a deliberate fault, checking every second that rampart stays up and ready
/// and sampling its memory; returns the highest VmRSS seen (KiB).
async fn hold(r: &mut Rampart, d: Duration, what: &str) -> u64 {
    let until = Instant::now() + d;
    let mut peak = 0;
    while Instant::now() < until {
        assert!(
            r.exited().is_none(),
            "rampart exited during {what}:\n{}",
            r.log_text()
        );
        let (ok, body) = ready(r.port).await.expect("telemetry answers");
        assert!(
            ok,
            "not ready during {what} (a responder outage must not stop intake): {body}"
        );
        peak = peak.max(r.memory_kib().0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_kubernetes_failing_then_hanging_for_minutes_delay_but_never_lose_or_repeat_work()
{
    let started = Instant::now();
    let n: usize = env_or("FAULTS_RESPONDER_EVENTS", 30_000);
    let errors = Duration::from_secs(env_or("FAULTS_RESPONDER_ERROR_SECS", 30));
    let hang = Duration::from_secs(env_or("FAULTS_RESPONDER_HANG_SECS", 90));
    let kube = fake_kube::FakeKube::start().await;
    let slack = fake_slack::FakeSlack::start(TOKEN, "/hooks/unused").await;
    let sc = Scenario::build(n, 31, 0, 30, Grouping::PerEvent, Some(&kube));
    let topic = unique("faults-responders");
    let group = unique("faults-responders-group");
    create_topic(&topic, PARTITIONS).await;
    let s = Scratch::new();
    Scenario::write_playbooks(&s.path("pb"), Grouping::PerEvent);
    let port = free_port();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{}output:\n  console: off\nstate:\n  dir: {}\n  risk:\n    threshold: 0\nplaybooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:{port}\n{}",
            faults::kafka_yaml(&brokers(), &group, &topic),
            s.path("state").display(),
            s.path("pb").display(),
            scenario::responders_yaml(&slack, TOKEN, &kube),
        ),
    )
    .unwrap();
    let offsets = faults::Offsets::new(&brokers(), &group, &topic, PARTITIONS);

    // Both services fail from the start: Slack with 503 and 429, the API server with 429 on reads
    // (the binding is read before it is deleted) and 500 on writes.
    slack.outage_cycle(vec![Behave::Unavailable, Behave::RateLimit(1)]);
    kube.fault(On::Reads, Fault::Throttle(1), usize::MAX);
    kube.fault(On::Writes, Fault::ServerError, usize::MAX);
    let mut r = Rampart::spawn(&cfg, port, &s.path("rampart.log"));
    faults::until("ready", Duration::from_secs(60), || async {
        ready(port).await.filter(|(ok, _)| *ok)
    })
    .await;
    let baseline = r.memory_kib().0;
    let outage = Instant::now();
    produce_fast(&brokers(), &topic, &sc.lines, PARTITIONS).await;
    common::eventually(
        "every record committed while the responders are down",
        Duration::from_secs(180),
        || {
            assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
            (offsets.sum() >= n as i64).then_some(())
        },
    )
    .await;
    let consumed_after = outage.elapsed();
    let rss_queued = r.memory_kib().0;
    let mut peak = hold(
        &mut r,
        errors.saturating_sub(consumed_after),
        "the 5xx/429 outage",
    )
    .await;
    // Every alert (and every revocation) waits in the outbox; the gauge is refreshed every 5 s.
    let queued = faults::until(
        "every alert counted in the outbox",
        Duration::from_secs(15),
        || async {
            metric(port, "rampart_outbox_pending")
                .await
                .filter(|n| *n as usize >= sc.titles.len() + sc.bindings.len())
        },
    )
    .await;
    assert!(
        slack.messages().is_empty(),
        "nothing posted while Slack fails"
    );
    assert!(
        scenario::deletes(&kube).is_empty(),
        "nothing deleted while the API fails"
    );

    // Then both hang: connections accepted, never answered.
    slack.outage(Behave::Hang);
    kube.heal();
    kube.fault(On::Reads, Fault::Hang, usize::MAX);
    kube.fault(On::Writes, Fault::Hang, usize::MAX);
    let (slack_before, kube_before) = (slack.requests().len(), kube.requests().len());
    peak = peak.max(hold(&mut r, hang, "the hang").await);
    let (_, hwm) = r.memory_kib();
    let slack_hung = slack.requests().len() - slack_before;
    let kube_hung = kube.requests().len() - kube_before;
    // Without client timeouts one request would hang for the whole time and nothing follow it.
    assert!(
        slack_hung >= 5,
        "Slack calls during the hang: {slack_hung} (timeouts must end them)"
    );
    assert!(
        kube_hung >= 5,
        "API calls during the hang: {kube_hung} (timeouts must end them)"
    );
    assert!(slack.messages().is_empty() && scenario::deletes(&kube).is_empty());

    // Recovery: everything queued goes out, once.
    slack.recover();
    kube.heal();
    let recovered = Instant::now();
    common::eventually(
        "every alert and revocation delivered after the recovery",
        Duration::from_secs(240),
        || {
            let posted = scenario::slack_messages(&slack);
            let deleted = scenario::deletes(&kube);
            (sc.titles.iter().all(|t| posted.contains_key(t))
                && sc.bindings.iter().all(|b| deleted.contains_key(b)))
            .then_some(())
        },
    )
    .await;
    let drained_after = recovered.elapsed();
    let status = r.term(Duration::from_secs(60)).await;
    assert!(status.success(), "clean stop: {status}\n{}", r.log_text());

    let posted = scenario::slack_messages(&slack);
    let duplicates: Vec<_> = posted.iter().filter(|(_, n)| **n > 1).collect();
    let deleted = scenario::deletes(&kube);
    let twice: Vec<_> = deleted.iter().filter(|(_, n)| **n > 1).collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    eprintln!(
        "faults_responders: warnings and errors logged:\n{}",
        r.log_summary()
    );
    faults::report(&format!(
        "faults: responder_outage={}s(5xx/429)+{}s(hang) produced={n} alerts_queued={queued} slack_calls_during_hang={slack_hung} kube_calls_during_hang={kube_hung} rss_baseline={:.0}MiB rss_all_queued={:.0}MiB rss_peak_outage={:.0}MiB hwm={:.0}MiB delivered_within={:.0}s slack_alerts={} slack_duplicates={} revocations={} duplicate_revocations={} wall={:.0}s",
        errors.as_secs(),
        hang.as_secs(),
        mib(baseline),
        mib(rss_queued),
        mib(peak),
        mib(hwm),
        drained_after.as_secs_f64(),
        posted.len(),
        duplicates.len(),
        deleted.len(),
        twice.len(),
        started.elapsed().as_secs_f64(),
    ));
    assert!(
        duplicates.is_empty(),
        "Slack messages repeated: {duplicates:?}"
    );
    assert!(
        twice.is_empty(),
        "bindings deleted more than once: {twice:?}"
    );
    assert_eq!(
        posted.keys().cloned().collect::<HashSet<_>>(),
        sc.titles,
        "every expected alert, nothing else"
    );
    for b in &sc.bindings {
        assert!(
            kube.get("ClusterRoleBinding", None, b).is_none(),
            "{b} still exists"
        );
    }
    // Bounded memory: the queued work lives in sled on disk, not in memory. Once everything was
    // queued, two minutes of failing and hanging calls (hundreds of retries, timeouts, lookups)
    // may not grow the process by more than 32 MiB: a leak per attempt or per hung connection
    // would, and so would holding the queued deliveries in memory.
    let growth = peak.saturating_sub(rss_queued);
    assert!(
        growth < 32 << 10,
        "memory grew by {:.0} MiB during the outage (from {:.0} to {:.0} MiB)",
        mib(growth),
        mib(rss_queued),
        mib(peak)
    );
}
