//! kill -9 of the rampart process mid-stream: committed offsets never pass an event that was not written, a restart delivers the rest, and every alert reaches the alerts file exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 2;

fn spawn(cfg: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["run", "-c"])
        .arg(cfg)
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The events in the output file. A kill can cut the line being written in
/// two; such a torn line is skipped (its event is re-delivered, since it was
/// never acknowledged).
fn output(s: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.output())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn ids_written(s: &Scratch) -> Vec<String> {
    output(s)
        .iter()
        .map(|v| v["auditID"].as_str().unwrap().to_owned())
        .collect()
}

/// (partition, offset) of every event in the output file.
fn written(s: &Scratch) -> Vec<(i64, i64)> {
    output(s)
        .iter()
        .map(|v| {
            let p = &v["provenance"];
            (
                p["partition"].as_i64().unwrap(),
                p["offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_never_commits_unwritten_events_and_a_restart_delivers_the_rest() {
    let topic = unique("audit");
    let group = unique("group");
    create_topic(&topic, PARTITIONS).await;
    let (lines, ids) = events(3000, 61);
    produce(&topic, &lines, PARTITIONS).await;

    let s = Scratch::new();
    // A stateless playbook: one alert per (user, verb, resource) of every change, whatever the order.
    std::fs::create_dir(s.path("pb")).unwrap();
    std::fs::write(
        s.path("pb/changes.rhai"),
        r#"fn meta() { #{ id: "changes", title: "a change", severity: "medium", dedup_window: "30d",
                          on: #{ verbs: ["create", "delete", "patch"] } } }
fn rule(e) { true }
fn dedup(e) { `${e.user}|${e.verb}|${e.resource}` }
"#,
    )
    .unwrap();
    let expected: HashMap<String, usize> = lines.iter().fold(HashMap::new(), |mut m, l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let verb = v["verb"].as_str().unwrap();
        if ["create", "delete", "patch"].contains(&verb) {
            let key = format!(
                "{}|{verb}|{}",
                v["user"]["username"].as_str().unwrap(),
                v["objectRef"]["resource"].as_str().unwrap_or("")
            );
            *m.entry(key).or_default() += 1;
        }
        m
    });
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "kafka:\n  brokers: {}\nsources:\n  kafka:\n    group_id: {group}\n    topics: [{topic}]\n    commit_interval: 50ms\n    properties:\n      session.timeout.ms: \"6000\"\n      heartbeat.interval.ms: \"500\"\noutput:\n  console: off\n  file: {}\nstate:\n  dir: {}\npipeline:\n  batch_size: 8\n  channel_capacity: 2\nplaybooks:\n  dir: {}\nrespond:\n  alerts_file: {}\n",
            brokers(),
            s.output().display(),
            s.path("state").display(),
            s.path("pb").display(),
            s.path("alerts.jsonl").display(),
        ),
    )
    .unwrap();

    let mut kills = 0;
    for _ in 0..3 {
        let before = written(&s).len();
        let mut child = spawn(&cfg);
        eventually("progress before the kill", WAIT, || {
            (written(&s).len() > before).then_some(())
        })
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // Every committed offset covers only events that reached the output.
        let out: HashSet<(i64, i64)> = written(&s).into_iter().collect();
        let committed = committed(&group, &topic, PARTITIONS);
        for (p, c) in &committed {
            for o in 0..(*c).max(0) {
                assert!(
                    out.contains(&(i64::from(*p), o)),
                    "offset {o} of partition {p} committed but never written"
                );
            }
        }
    }

    let mut child = spawn(&cfg);
    eventually("every event after the restarts", WAIT, || {
        let got: HashSet<String> = ids_written(&s).into_iter().collect();
        (got.len() == ids.len()).then_some(())
    })
    .await;
    let alerts = |s: &Scratch| -> Vec<serde_json::Value> {
        std::fs::read_to_string(s.path("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    eventually("every alert delivered", WAIT, || {
        let n = alerts(&s).iter().filter(|a| a["kind"] == "alert").count();
        (n >= expected.len()).then_some(())
    })
    .await;
    // Every event being in the output file does not mean the restarted instance has read to the
    // end: events the killed one wrote but never committed are read (and written) again. Wait
    // until it has committed everything, then stop it cleanly.
    eventually(
        "the restarted instance to commit every offset",
        WAIT,
        || {
            let sum: i64 = committed(&group, &topic, PARTITIONS).values().sum();
            (sum == 3000).then_some(())
        },
    )
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let all = ids_written(&s);
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct, ids.iter().collect::<HashSet<_>>());
    let per_partition: HashMap<i32, i64> = committed(&group, &topic, PARTITIONS);
    assert_eq!(
        per_partition.values().sum::<i64>(),
        3000,
        "everything committed after a clean stop"
    );

    let alerts = alerts(&s);
    let mut deliveries = HashSet::new();
    for a in &alerts {
        let id = a["delivery"].as_str().unwrap();
        assert!(deliveries.insert(id.to_owned()), "delivered twice: {id}");
    }
    let mut groups: HashMap<String, usize> = HashMap::new();
    for a in alerts.iter().filter(|a| a["kind"] == "alert") {
        *groups
            .entry(a["dedup"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        groups.keys().collect::<HashSet<_>>(),
        expected.keys().collect::<HashSet<_>>(),
        "one alert per group"
    );
    assert!(
        groups.values().all(|n| *n == 1),
        "an alert raised twice: {groups:?}"
    );
    println!(
        "kill -9 survived: {kills}; events produced: {}; written: {} ({} re-delivered after kills); lost: 0; alerts: {} groups from {} matches, each exactly once ({} deliveries in the alerts file, none twice)",
        ids.len(),
        all.len(),
        all.len() - ids.len(),
        groups.len(),
        expected.values().sum::<usize>(),
        alerts.len()
    );
}
