//! The file source: reading once, following like `tail -F` across rotation and truncation, and resuming after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use rampart::pipeline::{self, RunOptions, Running};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

async fn follow(s: &Scratch, log: &Path) -> (Running, CancellationToken) {
    let cfg = s.config(&format!(
        "sources:\n  files:\n    - path: {}\n      follow: true\n      poll_interval: 20ms\n",
        log.display()
    ));
    let shutdown = CancellationToken::new();
    let running = pipeline::start(&cfg, RunOptions::default(), shutdown.clone())
        .await
        .unwrap();
    (running, shutdown)
}

async fn wait_for(s: &Scratch, n: usize) {
    let out = s.output();
    eventually(&format!("{n} events"), WAIT, || {
        (audit_ids(&out).len() >= n).then_some(())
    })
    .await;
}

fn assert_exactly(s: &Scratch, ids: &[String]) {
    let got = audit_ids(&s.output());
    assert_eq!(got.len(), ids.len(), "no event twice, none missing");
    assert_eq!(
        got.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>()
    );
    assert!(
        read_jsonl(&s.dead_letters()).is_empty(),
        "no line was cut in two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_file_once_to_the_end_including_a_last_line_without_newline() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(50, 31);
    std::fs::write(&log, format!("{}\n\n{}", lines[..49].join("\n"), lines[49])).unwrap();
    let cfg = s.config(&format!(
        "sources:\n  files:\n    - path: {}\n",
        log.display()
    ));
    let report = run_to_end(&cfg).await;
    assert_eq!(report.events, 50);
    assert_exactly(&s, &ids);
    let first = &read_jsonl(&s.output())[0];
    assert_eq!(first["provenance"]["line"], 1);
    assert_eq!(first["provenance"]["file"], log.display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_lines_appended_while_running() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(30, 32);
    append(&log, &lines[..10]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 10).await;
    append(&log, &lines[10..20]);
    wait_for(&s, 20).await;
    append(&log, &lines[20..]);
    wait_for(&s, 30).await;
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_exactly(&s, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_new_file_after_rotation_without_losing_the_old_files_last_lines() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(30, 33);
    append(&log, &lines[..10]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 10).await;
    // Lines written just before the rename, then logrotate's create mode.
    append(&log, &lines[10..15]);
    std::fs::rename(&log, s.path("audit.log.1")).unwrap();
    append(&log, &lines[15..]);
    wait_for(&s, 30).await;
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_exactly(&s, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_the_start_again_after_truncation() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(13, 34);
    append(&log, &lines[..10]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 10).await;
    // copytruncate: the file is emptied in place and written again.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &lines[10..]);
    wait_for(&s, 13).await;
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_exactly(&s, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_where_it_stopped_without_loss_or_repeats() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(25, 35);
    append(&log, &lines[..10]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 10).await;
    shutdown.cancel();
    running.wait().await.unwrap();

    append(&log, &lines[10..]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 25).await;
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_exactly(&s, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rotated_while_stopped_is_finished_before_the_new_one() {
    let s = Scratch::new();
    let log = s.path("audit.log");
    let (lines, ids) = events(22, 36);
    append(&log, &lines[..10]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 10).await;
    shutdown.cancel();
    running.wait().await.unwrap();

    append(&log, &lines[10..15]);
    std::fs::rename(&log, s.path("audit.log.1")).unwrap();
    append(&log, &lines[15..]);
    let (running, shutdown) = follow(&s, &log).await;
    wait_for(&s, 22).await;
    shutdown.cancel();
    running.wait().await.unwrap();
    assert_exactly(&s, &ids);
    // The old file's remainder came first.
    let got = audit_ids(&s.output());
    assert_eq!(got[10..15], ids[10..15]);
}
