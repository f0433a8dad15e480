//! A `rampart run` child process for the runs of `rampart bench` that need one (Kafka, webhook latency): its config, its /metrics counters, and its CPU time and peak RSS read from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{setup, BaseConfig, BenchError};

/// CPU time (user + system) of a process (`self` or a pid), from /proc.
pub(super) fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may itself contain spaces and parentheses.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Peak resident set size (VmHWM) of a process in bytes.
fn peak_rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A free loopback port (bound, read and released).
pub(super) fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `rampart run`.
pub(super) struct Rampart {
    proc: Child,
    metrics: String,
    stderr: PathBuf,
    http: reqwest::Client,
}

/// The config of a `rampart run` child: `head` (its source, and a `kafka` connection if any) over
/// the bench's base config, no console, dead letters and state in `dir`, and `respond` (YAML lines
/// indented under `respond:`).
pub(super) fn child_yaml(
    base: &BaseConfig,
    head: &str,
    dir: &Path,
    respond: &str,
) -> Result<String, BenchError> {
    base.render(&format!(
        "{head}output:\n  console: off\ndead_letter:\n  file: {dir}/dead-letter.jsonl\nstate:\n  dir: {dir}/state\nrespond:\n{respond}",
        dir = dir.display(),
    ))
}

impl Rampart {
    /// Writes `yaml` (which must not set `telemetry`) to `dir` and starts the binary on it.
    pub fn spawn(yaml: &str, dir: &Path) -> Result<Self, BenchError> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let cfg = dir.join("rampart.yaml");
        std::fs::write(
            &cfg,
            format!("{yaml}\ntelemetry:\n  listen: 127.0.0.1:{port}\n"),
        )?;
        let stderr = dir.join("rampart.log");
        let proc = Command::new(std::env::current_exe()?)
            .args(["run", "-c"])
            .arg(&cfg)
            .env("RAMPART_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        Ok(Self {
            proc,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            stderr,
            http: reqwest::Client::new(),
        })
    }

    /// The sum of every series of a counter, or None while the endpoint is not up.
    pub async fn counter(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(&self.metrics)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            text.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Polls `name` until it reaches `at_least`; fails with the child's log if it exits or the deadline passes.
    pub async fn wait_for(
        &mut self,
        name: &str,
        at_least: f64,
        deadline: Duration,
    ) -> Result<Instant, BenchError> {
        let end = Instant::now() + deadline;
        loop {
            if self.counter(name).await.unwrap_or(0.0) >= at_least {
                return Ok(Instant::now());
            }
            if let Some(status) = self.proc.try_wait()? {
                return Err(setup(format!(
                    "rampart exited ({status}) before {name} reached {at_least}:\n{}",
                    self.log_tail()
                )));
            }
            if Instant::now() > end {
                return Err(setup(format!(
                    "{name} did not reach {at_least} within {deadline:?}; rampart's log:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails with the child's log if it has exited.
    pub fn alive(&mut self) -> Result<(), BenchError> {
        match self.proc.try_wait()? {
            None => Ok(()),
            Some(status) => Err(setup(format!(
                "rampart exited ({status}):\n{}",
                self.log_tail()
            ))),
        }
    }

    pub fn cpu(&self) -> Duration {
        cpu_of(&self.proc.id().to_string())
    }

    pub fn peak_rss(&self) -> u64 {
        peak_rss_of(self.proc.id())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the child (SIGKILL: its figures are already read, and a graceful
    /// drain would only add time) and reaps it.
    pub fn stop(self) {}
}

impl Drop for Rampart {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}
