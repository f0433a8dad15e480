//! The rampart binary as a user runs it: check, run on the shipped config, replay, signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn rampart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
    c.env_remove("RAMPART_LOG");
    c
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_lists_every_problem_of_a_broken_config_and_exits_2() {
    let s = Scratch::new();
    let cfg = s.path("broken.yaml");
    // Writes the config, runs `rampart check`, expects exit 2 and every needle on stderr.
    let check = |body: &str, needles: &[&str]| -> String {
        std::fs::write(&cfg, body).unwrap();
        let out = rampart().args(["check", "-c"]).arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        for needle in needles {
            assert!(err.contains(needle), "{needle} missing from:\n{err}");
        }
        err
    };
    check(
        "sources:\n  kafka:\n    group_id: ''\n    topics: []\n    drain_timeout: later\npipeline:\n  workers: 0\ntelemetry:\n  listen: nowhere\nunknown_section: {}\n",
        &["sources.kafka.drain_timeout", "telemetry.listen", "unknown_section"],
    );
    // Structural problems come first; once fixed, the semantic ones are all listed too.
    let err = check(
        "sources:\n  kafka:\n    group_id: ''\n    topics: []\npipeline:\n  workers: 0\n",
        &[
            "sources.kafka: kafka: required",
            "sources.kafka.group_id",
            "sources.kafka.topics",
            "pipeline.workers",
        ],
    );
    assert!(err.contains("4 problems"), "{err}");
}

#[test]
fn check_accepts_the_shipped_default_config() {
    let out = rampart().current_dir(repo()).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("file (examples/audit.jsonl)"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of what the shipped config reads, in a scratch directory, so runs do not touch the checkout.
fn demo_dir() -> Scratch {
    let s = Scratch::new();
    std::fs::copy(repo().join("rampart.yaml"), s.path("rampart.yaml")).unwrap();
    for d in ["examples", "enrichers", "playbooks", "tests/data/geoip"] {
        copy_dir(&repo().join(d), &s.path(d));
    }
    s
}

#[test]
fn run_on_the_shipped_config_prints_every_sample_event_and_dead_letters_the_bad_one() {
    let s = demo_dir();
    let out = rampart()
        .current_dir(s.dir.path())
        .arg("run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Boxed lines are the alerts as their Slack message reads (respond.console).
    let (boxed, events): (Vec<&str>, Vec<&str>) =
        stdout.lines().partition(|l| l.starts_with(['┌', '│', '└']));
    let (alerts, lines): (Vec<&str>, Vec<&str>) =
        events.into_iter().partition(|l| l.starts_with("  ALERT"));
    let headers: Vec<&&str> = boxed.iter().filter(|l| l.starts_with("│ ■")).collect();
    assert!(
        headers.iter().any(|h| h.contains("ran sh -c curl")),
        "{headers:?}"
    );
    assert!(
        boxed
            .iter()
            .any(|l| l.contains("Playbook: cluster-admin-binding")),
        "{boxed:?}"
    );
    let sample = std::fs::read_to_string(s.path("examples/audit.jsonl")).unwrap();
    assert_eq!(lines.len(), sample.lines().count() - 1);
    assert!(lines[0].contains("[demo]"), "{}", lines[0]);
    // The sample holds a few attacks the example playbooks catch.
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("playbook cluster-admin-binding")),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("playbook exec-critical-namespace")),
        "{alerts:?}"
    );
    let dead = read_jsonl(&s.path(".rampart-state/dead-letter.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["file"], "examples/audit.jsonl");
}

#[test]
fn replay_prints_a_summary() {
    let s = demo_dir();
    let out = rampart()
        .current_dir(s.dir.path())
        .args(["replay", "examples/audit.jsonl", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--quiet prints no events");
    let err = String::from_utf8_lossy(&out.stderr);
    let count = |label: &str| -> u64 {
        err.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("events"), 400, "{err}");
    assert_eq!(count("dead-lettered"), 1, "{err}");
    // A row per playbook: fires, distinct dedup keys, errors.
    let row = err
        .lines()
        .find(|l| l.trim_start().starts_with("cluster-admin-binding"))
        .unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols.len() == 4 && cols[1] != "0" && cols[3] == "0", "{err}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_acknowledges_and_exits_zero() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(200, 41);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "sources:\n  files:\n    - path: {}\n      follow: true\n      poll_interval: 20ms\noutput:\n  console: off\n  file: {}\nstate:\n  dir: {}\n",
            log.display(),
            s.output().display(),
            s.path("state").display()
        ),
    )
    .unwrap();
    let child = rampart()
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = s.output();
    eventually("events processed", Duration::from_secs(30), || {
        (audit_ids(&out).len() >= 200).then_some(())
    })
    .await;
    signal(child.id(), "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(audit_ids(&out), ids);
    // The saved position is the end of the file: a restart reads nothing again.
    let checkpoint = std::fs::read_dir(s.path("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("file-")
        })
        .unwrap();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint).unwrap()).unwrap();
    assert_eq!(saved["offset"], std::fs::metadata(&log).unwrap().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_even_at_debug_level() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, _) = events(20, 42);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "kafka:\n  brokers: 127.0.0.1:1\n  properties:\n    security.protocol: SASL_PLAINTEXT\n    sasl.mechanism: PLAIN\n    sasl.username: rampart\n    sasl.password: ${{RAMPART_TEST_KAFKA_PW}}\n    message.timeout.ms: \"500\"\nsources:\n  files: [{{ path: {} }}]\n  webhook:\n    listen: 127.0.0.1:0\n    bearer_token: {{ env: RAMPART_TEST_HOOK_TOKEN }}\ndead_letter:\n  topic: dlq\noutput:\n  console: json\nstate:\n  dir: {}\n",
            log.display(),
            s.path("state").display()
        ),
    )
    .unwrap();
    let pw = "pw-7f3a9c1e-do-not-log";
    let token = "tok-51b2d8e4-do-not-log";
    let child = rampart()
        .args(["run", "-c"])
        .arg(&cfg)
        .env("RAMPART_LOG", "debug")
        .env("RAMPART_TEST_KAFKA_PW", pw)
        .env("RAMPART_TEST_HOOK_TOKEN", token)
        .stdout(std::fs::File::create(s.path("stdout")).unwrap())
        .stderr(std::fs::File::create(s.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    // Wait until it has printed events and librdkafka has logged its failed connection, then stop it.
    let (out_path, err_path) = (s.path("stdout"), s.path("stderr"));
    eventually(
        "events and librdkafka's connection logs",
        Duration::from_secs(30),
        || {
            let out = std::fs::read_to_string(&out_path).unwrap_or_default();
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            (out.lines().count() >= 20 && err.contains("127.0.0.1:1")).then_some(())
        },
    )
    .await;
    signal(child.id(), "-TERM");
    let status = tokio::task::spawn_blocking(move || {
        let mut c = child;
        c.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    let all = std::fs::read_to_string(&out_path).unwrap()
        + std::fs::read_to_string(&err_path).unwrap().as_str();
    assert!(all.contains("DEBUG"), "debug logging was on");
    assert!(!all.contains(pw), "the Kafka password leaked");
    assert!(!all.contains(token), "the webhook token leaked");
}
