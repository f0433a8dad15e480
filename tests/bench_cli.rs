//! `rampart bench` end to end on a small stream: every section runs (the webhook latency without a broker, the Kafka ones against the real broker) and prints figures, and the targets are judged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::process::Command;

/// The number in the column after `label` on the line that starts with it.
fn figure(out: &str, line_start: &str, column: usize) -> f64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(line_start))
        .unwrap_or_else(|| panic!("no line starting {line_start:?} in:\n{out}"));
    line.trim_start()[line_start.len()..]
        .split_whitespace()
        .nth(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no figure {column} on {line:?}"))
}

#[test]
fn bench_measures_every_section_on_the_real_broker() {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "bench",
            "-n",
            "3000",
            "--rounds",
            "1",
            "--rate",
            "1000",
            "--latency-for",
            "4s",
            "--brokers",
        ])
        .arg(common::brokers())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAMPART_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In process: events/s/core for each set, and the config's set raises alerts.
    for set in ["first 1", "first 10", "config's set"] {
        assert!(figure(&stdout, set, 1) > 0.0, "{set}: {stdout}");
    }
    assert!(figure(&stdout, "config's set", 4) > 0.0, "{stdout}");
    // rampart's own latency, webhook to Slack stand-in (no broker): every
    // batch was posted and answered, and alerts were timed.
    assert!(
        stdout.contains("rampart's own alert latency (no broker): 1000 events/s"),
        "{stdout}"
    );
    assert!(!stdout.contains(" failed, e.g. "), "{stdout}");
    let alerting = stdout
        .lines()
        .find(|l| l.contains(" alerting events, "))
        .unwrap_or_else(|| panic!("no alerting events line in:\n{stdout}"));
    let timed: usize = alerting
        .split(", ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of timed alerts on {alerting:?}"));
    assert!(timed > 0, "{alerting}");
    assert!(
        stdout.contains(
            "rampart's own alert latency p99 at 1000 events/s, webhook to Slack stand-in: "
        ) && !stdout.contains("no alert timed"),
        "{stdout}"
    );
    // Kafka: the bare consumer and rampart both consumed everything (at this
    // size the rates are not comparable: one fetch brings the whole topic).
    assert!(figure(&stdout, "1 ", 0) > 0.0, "{stdout}");
    assert!(figure(&stdout, "1 ", 1) > 0.0, "{stdout}");
    assert!(figure(&stdout, "1 ", 4) > 0.0, "peak RSS: {stdout}");
    // Latency: alerts reached the Slack stand-in and were timed.
    assert!(stdout.contains("new alerts posted"), "{stdout}");
    assert!(!stdout.contains(" 0 new alerts posted"), "{stdout}");
    assert!(
        stdout.contains("alert latency p99 at 1000 events/s"),
        "{stdout}"
    );
    eprintln!("{stdout}");
}
