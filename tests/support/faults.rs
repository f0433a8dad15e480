//! What the fault-injection suites share: the rampart binary as a child process (its log, kill -9, SIGTERM, RSS), its telemetry (/readyz, /metrics), a fast one-record-per-batch producer, and the final ledger of which records were processed or dead-lettered.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// `name` from the environment (for quicker local iteration), else `default`.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints a suite's figures (`faults: …`) straight to stderr: the test harness captures only
/// `print!`/`eprint!`, so the line shows in every run (CI's log included), `--nocapture` or not.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A free loopback port (for the telemetry listener, which must keep its port across restarts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rampart run` as a child process, its stderr appended to a log file.
pub struct Rampart {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Rampart {
    /// Starts `rampart run -c cfg`; `port` is the config's `telemetry.listen` port.
    pub fn spawn(cfg: &Path, port: u16, log: &Path) -> Self {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["run", "-c"])
            .arg(cfg)
            .args(["--log-level", "warn,rampart=info"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            log: log.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no drain, no flush, no commit.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// None while running.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM, then waits (up to `within`) for the exit.
    pub async fn term(&mut self, within: Duration) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.exited() {
                return st;
            }
            if Instant::now() > deadline {
                let log = self.log_text();
                let tail: Vec<&str> = log.lines().filter(|l| !l.contains("librdkafka")).collect();
                panic!(
                    "rampart did not exit within {within:?} of SIGTERM{}; its log ends:\n{}",
                    self.dump_stacks(),
                    tail[tail.len().saturating_sub(40)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every thread's stack (with gdb, when installed) into a file; says where, for a hang's report.
    pub fn dump_stacks(&self) -> String {
        let path = std::env::temp_dir().join(format!("rampart-{}-stacks.txt", self.pid()));
        match Command::new("gdb")
            .args([
                "-p",
                &self.pid().to_string(),
                "-batch",
                "-ex",
                "thread apply all bt 40",
            ])
            .output()
        {
            Ok(out) if std::fs::write(&path, &out.stdout).is_ok() => {
                format!(" (thread stacks in {})", path.display())
            }
            _ => String::new(),
        }
    }

    /// (VmRSS, VmHWM) in KiB: resident memory now and its peak.
    pub fn memory_kib(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| -> u64 {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Warnings and errors in the log (without librdkafka's), grouped with counts: what the faults caused.
    pub fn log_summary(&self) -> String {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for l in self.log_text().lines() {
            if !(l.contains("WARN") || l.contains("ERROR")) || l.contains("librdkafka") {
                continue;
            }
            // Drop the timestamp and ANSI colours; keep the message and the error, not ids.
            let plain: String = strip_ansi(l);
            let msg = plain.split_once(' ').map_or(plain.as_str(), |x| x.1);
            let key: String = msg
                .split_whitespace()
                .filter(|w| {
                    !w.starts_with("delivery=")
                        && !w.starts_with("retry_in=")
                        && !w.starts_with("attempts=")
                })
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                // Numbers (names, counts, offsets) vary; the kind of message does not.
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(160)
                .collect();
            *counts.entry(key).or_default() += 1;
        }
        counts
            .iter()
            .map(|(k, n)| format!("  {n:>6} × {k}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything the process (and earlier ones sharing the log) wrote to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// GET `path` on the telemetry listener: (status, body), or None when nothing answers.
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let r = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.unwrap_or_default()))
}

/// Some(true) on 200 from /readyz, Some(false) on any other answer, None when nothing answers.
pub async fn ready(port: u16) -> Option<(bool, String)> {
    get(port, "/readyz").await.map(|(s, b)| (s == 200, b))
}

/// The sum of a metric over all its label sets (0 when absent), None when nothing answers.
pub async fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics").await?;
    Some(metric_in(&text, name))
}

pub fn metric_in(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls an async check until it returns Some or `timeout` passes.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Produces `payloads` round-robin over `partitions`, one record per batch (tansu 0.6's memory engine
/// cannot resume a fetch inside a batch; see support::common), with several producers in parallel so that
/// 100k records take seconds. Returns each payload's (partition, offset).
pub async fn produce_fast(
    brokers: &str,
    topic: &str,
    payloads: &[String],
    partitions: i32,
) -> Vec<(i32, i64)> {
    const PRODUCERS: usize = 4;
    let producers: Vec<FutureProducer> = (0..PRODUCERS)
        .map(|_| {
            ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("acks", "all")
                .set("linger.ms", "0")
                .set("batch.num.messages", "1")
                .set("max.in.flight.requests.per.connection", "50")
                .set("queue.buffering.max.messages", "1000000")
                .create()
                .unwrap()
        })
        .collect();
    let sends = payloads.iter().enumerate().map(|(i, p)| {
        let rec: FutureRecord<'_, (), str> = FutureRecord::to(topic)
            .payload(p.as_str())
            .partition(i as i32 % partitions);
        producers[i % PRODUCERS].send(rec, Duration::from_secs(120))
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| {
            let d = r.map_err(|(e, _)| e).unwrap();
            (d.partition, d.offset)
        })
        .collect()
}

/// Which records (partition, offset) the run accounted for, from the output file and the dead-letter file.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Records with at least one event in the output.
    pub processed: HashSet<(i32, i64)>,
    /// Records in the dead-letter file.
    pub dead_lettered: HashSet<(i32, i64)>,
    /// Output lines beyond the first for a record: re-deliveries after faults.
    pub redelivered: usize,
    /// Lines that do not parse (a write torn by a kill), and the first of them (file, start, end).
    pub torn: usize,
    pub first_torn: Option<String>,
    /// How far each file has been read (complete lines only).
    read_to: (usize, usize),
}

#[derive(serde::Deserialize)]
struct OutLine {
    provenance: Position,
}

#[derive(serde::Deserialize)]
struct Position {
    partition: Option<i32>,
    offset: Option<i64>,
}

/// Reads the output (events as JSON lines) and dead-letter files.
pub fn ledger(output: &Path, dead_letters: &Path) -> Ledger {
    let mut l = Ledger::default();
    l.update(output, dead_letters);
    l
}

/// The complete lines of `path` from byte `from` on, and where they end.
fn lines_from(path: &Path, from: usize) -> (Vec<Vec<u8>>, usize) {
    use std::io::{Read, Seek};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (Vec::new(), from);
    };
    f.seek(std::io::SeekFrom::Start(from as u64)).unwrap();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = buf[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (lines, from + complete)
}

impl Ledger {
    /// Reads what was appended to the two files since the last call.
    pub fn update(&mut self, output: &Path, dead_letters: &Path) {
        let (out, to) = lines_from(output, self.read_to.0);
        self.read_to.0 = to;
        for line in out {
            match serde_json::from_slice::<OutLine>(&line) {
                Ok(o) => {
                    let at = (
                        o.provenance.partition.unwrap(),
                        o.provenance.offset.unwrap(),
                    );
                    if !self.processed.insert(at) {
                        self.redelivered += 1;
                    }
                }
                Err(_) => self.tear(output, &line),
            }
        }
        let (dl, to) = lines_from(dead_letters, self.read_to.1);
        self.read_to.1 = to;
        for line in dl {
            match serde_json::from_slice::<Position>(&line) {
                Ok(p) => {
                    self.dead_lettered
                        .insert((p.partition.unwrap(), p.offset.unwrap()));
                }
                Err(_) => self.tear(dead_letters, &line),
            }
        }
    }

    /// Records below a committed offset that are neither processed nor dead-lettered (must be none:
    /// an offset is committed only after its record is durable).
    pub fn uncovered(&self, committed: &std::collections::HashMap<i32, i64>) -> Vec<(i32, i64)> {
        let mut v: Vec<(i32, i64)> = committed
            .iter()
            .flat_map(|(p, c)| (0..*c).map(move |o| (*p, o)))
            .filter(|at| !self.processed.contains(at) && !self.dead_lettered.contains(at))
            .collect();
        v.sort_unstable();
        v.truncate(20);
        v
    }

    fn tear(&mut self, file: &Path, line: &[u8]) {
        self.torn += 1;
        let text = String::from_utf8_lossy(line);
        let head: String = text.chars().take(120).collect();
        let tail: String = text
            .chars()
            .rev()
            .take(120)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        self.first_torn.get_or_insert_with(|| {
            format!("{} ({} bytes): {head} … {tail}", file.display(), line.len())
        });
    }

    /// Produced records neither processed nor dead-lettered.
    pub fn lost(&self, produced: &[(i32, i64)]) -> Vec<(i32, i64)> {
        produced
            .iter()
            .filter(|p| !self.processed.contains(p) && !self.dead_lettered.contains(p))
            .copied()
            .collect()
    }
}

/// A kafka connection and source section for `rampart.yaml` (fast commits and group turnover for tests).
pub fn kafka_yaml(brokers: &str, group: &str, topic: &str) -> String {
    format!(
        "kafka:\n  brokers: {brokers}\nsources:\n  kafka:\n    group_id: {group}\n    topics: [{topic}]\n    commit_interval: 100ms\n    lag_interval: 1s\n    drain_timeout: 5s\n    properties:\n      session.timeout.ms: \"6000\"\n      heartbeat.interval.ms: \"500\"\n"
    )
}

/// A tansu broker of the test's own (memory storage), reached only through a [`super::tcp_proxy::TcpProxy`]:
/// clients bootstrap at the proxy and tansu advertises the proxy, so every connection goes through it.
pub struct OwnBroker {
    child: Child,
    pub proxy: std::sync::Arc<super::tcp_proxy::TcpProxy>,
}

impl OwnBroker {
    pub async fn start(log: &Path) -> Self {
        let listen = free_port();
        let upstream: std::net::SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
        let proxy = super::tcp_proxy::TcpProxy::start(upstream);
        let tansu = std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
            .ok()
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("tansu"));
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(&tansu)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{upstream}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{}", proxy.addr))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (scripts/deps.sh installs it)",
                    tansu.display()
                )
            });
        let b = Self { child, proxy };
        // Polled with a deadline (this module does not depend on support::common).
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(upstream).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen within 30s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b
    }

    /// The bootstrap address clients use (the proxy).
    pub fn brokers(&self) -> String {
        self.proxy.addr.to_string()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn create_topic_at(brokers: &str, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap()
    {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Reads a group's committed offsets (without joining the group).
pub struct Offsets {
    consumer: rdkafka::consumer::BaseConsumer,
    topic: String,
    partitions: i32,
}

impl Offsets {
    pub fn new(brokers: &str, group: &str, topic: &str, partitions: i32) -> Self {
        Self {
            consumer: ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", group)
                .create()
                .unwrap(),
            topic: topic.to_owned(),
            partitions,
        }
    }

    /// Committed offsets summed over the partitions: the records behind them (0 when unknown).
    pub fn sum(&self) -> i64 {
        self.committed().values().sum()
    }

    /// The committed offset of each partition (0 when none or unknown).
    pub fn committed(&self) -> std::collections::HashMap<i32, i64> {
        use rdkafka::consumer::Consumer;
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        self.consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .map(|r| {
                r.elements()
                    .iter()
                    .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(0).max(0)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
