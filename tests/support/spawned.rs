//! The `rampart` binary as a child process: stdout and stderr captured to files, listen addresses read from its JSON logs, peak memory from /proc, SIGTERM to stop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A running `rampart` process.
pub struct Spawned {
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A failed test must not leave its rampart running.
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The binary under test.
pub fn rampart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
    c.env_remove("RAMPART_LOG");
    c
}

/// Runs `rampart ARGS` to its end: (exit status, stdout, stderr).
pub fn output(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let out = rampart()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Spawned {
    /// Starts `rampart ARGS` with `env`, its output going to `NAME.stdout` / `NAME.stderr` in `dir`.
    pub fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = rampart()
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The `addr` field of the JSON log line whose message is `message` (run with `--log-format json`).
    pub async fn addr_logged(&mut self, message: &str) -> SocketAddr {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.stderr_text().lines().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == message).then(|| v["addr"].as_str()?.parse().ok())?
            });
            if let Some(a) = found {
                return a;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "rampart exited ({status}) before logging {message:?}:\n{}",
                    self.stderr_text()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rampart did not log {message:?}:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A field of /proc/PID/status in KiB (`VmHWM`: peak resident memory; `VmRSS`: now).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status:\n{status}"))
    }

    /// SIGTERM, then waits (at most a minute) for the exit.
    pub async fn stop(mut self) -> ExitStatus {
        let child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let wait = tokio::task::spawn_blocking(move || {
            let mut c = child;
            c.wait()
        });
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("rampart did not stop within a minute of SIGTERM")
            .unwrap()
            .unwrap()
    }
}
