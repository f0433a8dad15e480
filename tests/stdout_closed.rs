//! `rampart run | head`: once its stdout is closed, rampart stops as if shut down, exits 0, and a
//! SIGTERM after that is still heard — every shutdown ends within a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped config, reading a large followed log (so the run never ends by itself) and
/// printing events and alerts to stdout; no fixed telemetry port, so tests can run side by side.
fn config(s: &Scratch) -> PathBuf {
    let log = s.path("audit.log");
    let generated = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["generate", "-n", "20000"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    std::fs::write(&log, &generated.stdout).unwrap();
    let shipped = std::fs::read_to_string(repo().join("rampart.yaml")).unwrap();
    let mut cfg = shipped.clone();
    for (from, to) in [
        (
            "path: examples/audit.jsonl\n      follow: false".to_owned(),
            format!("path: {}\n      follow: true", log.display()),
        ),
        (
            "listen: 127.0.0.1:9464".to_owned(),
            "listen: 127.0.0.1:0".to_owned(),
        ),
        (
            "dir: .rampart-state".to_owned(),
            format!("dir: {}", s.path("state").display()),
        ),
        (
            ".rampart-state/".to_owned(),
            format!("{}/", s.path("state").display()),
        ),
        (
            "dir: playbooks".to_owned(),
            format!("dir: {}", repo().join("playbooks").display()),
        ),
        (
            "enrichers/".to_owned(),
            format!("{}/", repo().join("enrichers").display()),
        ),
        (
            "tests/data/".to_owned(),
            format!("{}/", repo().join("tests/data").display()),
        ),
    ] {
        assert!(cfg.contains(&from), "rampart.yaml no longer has {from:?}");
        cfg = cfg.replace(&from, &to);
    }
    let path = s.path("rampart.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Starts `rampart run`, reads a little of its stdout, then closes the pipe.
fn run_and_close_stdout(s: &Scratch) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .env_remove("RAMPART_LOG")
        .args(["run", "-c"])
        .arg(config(s))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(s.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 8192];
    stdout.read_exact(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains(" by "),
        "event lines on stdout"
    );
    drop(stdout);
    child
}

/// Waits for the child's exit, at most `bound`; kills it and fails the test past that.
fn exits_within(child: &mut Child, bound: Duration, s: &Scratch) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rampart still running {bound:?} after its stdout was closed; stderr:\n{}",
                std::fs::read_to_string(s.path("stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_stdout_stops_the_run_cleanly_with_exit_zero() {
    let s = Scratch::new();
    let mut child = run_and_close_stdout(&s);
    let (status, took) = exits_within(&mut child, Duration::from_secs(20), &s);
    let stderr = std::fs::read_to_string(s.path("stderr")).unwrap_or_default();
    assert!(status.success(), "{status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("stdout is closed"), "{stderr}");
    assert!(
        !stderr.contains("retry_in"),
        "no retry into the broken pipe:\n{stderr}"
    );
    eprintln!("exited {took:?} after stdout was closed");
}

#[test]
fn sigterm_after_stdout_is_closed_ends_the_run_promptly() {
    let s = Scratch::new();
    let mut child = run_and_close_stdout(&s);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, took) = exits_within(&mut child, Duration::from_secs(20), &s);
    let stderr = std::fs::read_to_string(s.path("stderr")).unwrap_or_default();
    assert!(status.success(), "{status:?}; stderr:\n{stderr}");
    eprintln!("exited {took:?} after SIGTERM");
}
