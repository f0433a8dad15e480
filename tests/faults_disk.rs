//! Fault injection: the state directory's disk fills up mid-run, and a state directory that is read-only — rampart says so clearly, reports not-ready (or refuses to start), acknowledges nothing it could not make durable, and after a restart with space nothing is lost or repeated.
//!
//! The state directory is a small tmpfs the test mounts (and unmounts, even on panic); this needs
//! root (or CAP_SYS_ADMIN), which CI has. Without it the tests fail and say so rather than pass.
//! A directory that turns read-only under a running rampart cannot be staged: the kernel refuses
//! `mount -o remount,ro` while files are open for writing (EBUSY), and sled keeps its files open;
//! the read-only case is therefore a state directory that is read-only when rampart starts
//! (a volume mounted read-only, `readOnlyRootFilesystem` without a writable volume).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, faults, scenario};

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{brokers, create_topic, unique, Scratch};
use faults::{env_or, free_port, ledger, produce_fast, ready, Rampart};
use scenario::{Grouping, Scenario};

const PARTITIONS: i32 = 2;
const TOKEN: &str = "xoxb-faults-disk-token";

/// A tmpfs mounted for the test; unmounted when dropped (lazily, so even a busy one goes).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "these tests need to mount a tmpfs (run them as root or with CAP_SYS_ADMIN): mount -t tmpfs -o {options} tmpfs {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` until it refuses more; returns the filler file and its size.
fn fill(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // The last partial chunk: byte by byte is too slow; a smaller chunk finishes the job.
    let small = vec![0u8; 512];
    while let Ok(n @ 1..) = f.write(&small) {
        written += n as u64;
    }
    (path, written)
}

/// For `d`: rampart stays up and its probe answers, "not ready", every quarter second.
async fn not_ready_for(r: &mut Rampart, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        assert!(r.exited().is_none(), "rampart stays up:\n{}", r.log_text());
        let (ok, body) = ready(r.port)
            .await
            .expect("/readyz answers while the disk is full");
        assert!(!ok, "ready while the disk is full: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn config(s: &Scratch, brokers: &str, group: &str, topic: &str, port: u16, rest: &str) -> PathBuf {
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{}output:\n  console: off\n  file: {}\ndead_letter:\n  file: {}\nstate:\n  dir: {}\n  risk:\n    threshold: 0\npipeline:\n  shutdown_grace: 10s\nplaybooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:{port}\n{rest}",
            faults::kafka_yaml(brokers, group, topic),
            s.output().display(),
            s.dead_letters().display(),
            s.path("state").display(),
            s.path("pb").display(),
        ),
    )
    .unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_disk_is_reported_not_ready_acknowledges_nothing_and_a_restart_loses_nothing()
{
    let started = Instant::now();
    let n: usize = env_or("FAULTS_DISK_EVENTS", 20_000);
    let s = Scratch::new();
    let size_mib: u64 = 64;
    let _state = Tmpfs::mount(&s.path("state"), &format!("size={size_mib}m"));
    let kube = fake_kube::FakeKube::start().await;
    let slack = fake_slack::FakeSlack::start(TOKEN, "/hooks/unused").await;
    let sc = Scenario::build(n, 23, 500, 10, Grouping::PerEvent, Some(&kube));
    let topic = unique("faults-disk");
    let group = unique("faults-disk-group");
    create_topic(&topic, PARTITIONS).await;
    let produced = produce_fast(&brokers(), &topic, &sc.lines, PARTITIONS).await;
    Scenario::write_playbooks(&s.path("pb"), Grouping::PerEvent);
    let port = free_port();
    let responders = scenario::responders_yaml(&slack, TOKEN, &kube);
    let cfg = config(&s, &brokers(), &group, &topic, port, &responders);
    let offsets = faults::Offsets::new(&brokers(), &group, &topic, PARTITIONS);
    let log = s.path("rampart.log");

    let mut r = Rampart::spawn(&cfg, port, &log);
    common::eventually(
        "a quarter of the records committed",
        Duration::from_secs(120),
        || {
            assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
            (offsets.sum() >= (n / 4) as i64).then_some(())
        },
    )
    .await;
    let (filler, filled) = fill(&s.path("state"));
    let full = Instant::now();
    let (_, body) = faults::until(
        "not ready once the disk is full",
        Duration::from_secs(60),
        || async { ready(port).await.filter(|(ok, _)| !*ok) },
    )
    .await;
    let not_ready_after = full.elapsed();
    assert!(
        body.contains("No space left on device")
            && body.contains(&s.path("state").display().to_string()),
        "/readyz names the state directory and the cause: {body}"
    );
    // Nothing is acknowledged while nothing can be made durable: the committed offsets stand still
    // (in-flight commits of earlier, durable work land first), and the probes keep answering.
    not_ready_for(&mut r, Duration::from_secs(2)).await;
    let committed_when_full = offsets.sum();
    not_ready_for(&mut r, Duration::from_secs(5)).await;
    let committed_later = offsets.sum();
    assert_eq!(
        committed_later, committed_when_full,
        "acknowledged while the disk was full"
    );
    // Every committed record reached the output or the dead letters (at-least-once held throughout).
    let l = ledger(&s.output(), &s.dead_letters());
    let uncovered = l.uncovered(&offsets.committed());
    assert!(
        uncovered.is_empty(),
        "committed but never written: {uncovered:?}"
    );

    // Space comes back; sled refuses writes after an I/O error until it is reopened, so rampart
    // is restarted (SIGTERM: it ends with the error, non-zero).
    std::fs::remove_file(&filler).unwrap();
    let status = r.term(Duration::from_secs(60)).await;
    let stderr = r.log_text();
    assert!(
        !status.success(),
        "a run that could not make its work durable ends in error"
    );
    let error_line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line at exit:\n{stderr}"))
        .to_owned();
    assert!(
        error_line.contains("No space left on device"),
        "{error_line}"
    );

    let mut r = Rampart::spawn(&cfg, port, &log);
    common::eventually(
        "every record committed after the restart",
        Duration::from_secs(180),
        || {
            assert!(r.exited().is_none(), "rampart exited:\n{}", r.log_text());
            (offsets.sum() >= n as i64).then_some(())
        },
    )
    .await;
    common::eventually(
        "every alert and revocation delivered",
        Duration::from_secs(120),
        || {
            let posted = scenario::slack_messages(&slack);
            let deleted = scenario::deletes(&kube);
            (sc.titles.iter().all(|t| posted.contains_key(t))
                && sc.bindings.iter().all(|b| deleted.contains_key(b)))
            .then_some(())
        },
    )
    .await;
    let status = r.term(Duration::from_secs(60)).await;
    assert!(status.success(), "clean stop: {status}\n{}", r.log_text());

    let l2 = ledger(&s.output(), &s.dead_letters());
    let lost = l2.lost(&produced);
    let posted = scenario::slack_messages(&slack);
    let duplicates: Vec<_> = posted.iter().filter(|(_, n)| **n > 1).collect();
    let deleted = scenario::deletes(&kube);
    let twice: Vec<_> = deleted.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "faults_disk: warnings and errors logged:\n{}",
        r.log_summary()
    );
    faults::report(&format!(
        "faults: disk_full state_tmpfs={size_mib}MiB filler={}MiB produced={} processed={} dead_lettered={} lost={} redelivered={} committed_when_full={committed_when_full} committed_while_full={} not_ready_after={:.1}s exit_error={error_line:?} slack_alerts={} slack_duplicates={} revocations={} duplicate_revocations={} wall={:.0}s",
        filled >> 20,
        produced.len(),
        l2.processed.len(),
        l2.dead_lettered.len(),
        lost.len(),
        l2.redelivered,
        committed_later - committed_when_full,
        not_ready_after.as_secs_f64(),
        posted.len(),
        duplicates.len(),
        deleted.len(),
        twice.len(),
        started.elapsed().as_secs_f64(),
    ));
    assert_eq!(l2.torn, 0, "torn lines: {:?}", l2.first_torn);
    assert!(
        lost.is_empty(),
        "records lost: {:?}",
        &lost[..lost.len().min(20)]
    );
    let poison: HashSet<(i32, i64)> = sc.poison.iter().map(|i| produced[*i]).collect();
    assert_eq!(l2.dead_lettered, poison);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_directory_is_refused_at_start_with_a_clear_error_and_nothing_is_consumed(
) {
    let s = Scratch::new();
    let _state = Tmpfs::mount(&s.path("state"), "ro,size=1m");
    let topic = unique("faults-ro");
    let group = unique("faults-ro-group");
    create_topic(&topic, PARTITIONS).await;
    let sc = Scenario::build(200, 29, 0, 0, Grouping::PerEvent, None);
    produce_fast(&brokers(), &topic, &sc.lines, PARTITIONS).await;
    Scenario::write_playbooks(&s.path("pb"), Grouping::PerEvent);
    let port = free_port();
    let cfg = config(&s, &brokers(), &group, &topic, port, "");
    let offsets = faults::Offsets::new(&brokers(), &group, &topic, PARTITIONS);
    let started = Instant::now();
    let mut r = Rampart::spawn(&cfg, port, &s.path("rampart.log"));
    // Polled by hand: both "exited" and "ever answered ready" matter.
    let mut ever_ready = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = r.exited() {
            break st;
        }
        ever_ready |= ready(port).await.is_some_and(|(ok, _)| ok);
        assert!(
            Instant::now() < deadline,
            "rampart neither refused nor stopped within 60s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let stderr = r.log_text();
    let error_line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line:\n{stderr}"))
        .to_owned();
    let committed = offsets.sum();
    faults::report(&format!(
        "faults: read_only_state exit_code={:?} after={:.1}s ever_ready={ever_ready} committed={committed} error={error_line:?}",
        status.code(),
        started.elapsed().as_secs_f64(),
    ));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!ever_ready, "ready with a read-only state directory");
    assert!(
        error_line.contains("Read-only file system")
            && error_line.contains(&s.path("state").display().to_string()),
        "the error names the directory and the cause: {error_line}"
    );
    assert_eq!(committed, 0, "nothing consumed");
    assert!(!s.output().exists() || std::fs::read(s.output()).unwrap().is_empty());
}
