//! `rampart bench`: the end-to-end benchmark — rampart's own CPU cost per event in process with 1, 10 and the full pack, its own alert latency through the webhook source (no broker), and, given a broker, its Kafka rate against a bare consumer, alert latency at a fixed load, peak RSS and CPU per million events.
//!
//! Every figure is measured in one run on the same machine, so ratios
//! compare like with like; the table ends with each target and whether it
//! was met. Nothing here is pass/fail: a missed target is printed, not hidden.

pub mod behaviour;
mod behaviour_cost;
pub mod behaviour_memory;
mod child;
mod inprocess;
mod kafka;
mod latency;
mod previous;
mod sink;
mod webhook_latency;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

/// What `rampart bench` measures and on what.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The config whose enrichment and playbooks are measured (its sources, outputs and responders are replaced).
    pub config: PathBuf,
    /// Events in the in-process runs and in each Kafka round.
    pub events: usize,
    /// A Kafka-compatible broker; without one the Kafka part is skipped.
    pub brokers: Option<String>,
    /// Offered load for the latency runs (webhook and Kafka), events/s.
    pub rate: u64,
    /// Length of the latency runs.
    pub latency_for: Duration,
    /// Alternating bare/rampart rounds on the broker.
    pub rounds: usize,
    /// Partitions of the benchmark topics.
    pub partitions: i32,
    /// Generator seed.
    pub seed: u64,
    /// A checkout of the previous build (with `target/release/rampart`) to measure side by side.
    pub previous: Option<PathBuf>,
}

/// Why the benchmark could not run (a figure that is merely poor is not an error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// The user's config as YAML, stripped of everything a benchmark run replaces.
#[derive(Debug, Clone)]
pub(crate) struct BaseConfig(Mapping);

impl BaseConfig {
    fn load(path: &Path) -> Result<Self, BenchError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| setup(format!("{}: {e}", path.display())))?;
        // Validate it as rampart would, so a broken config fails here and not in a child.
        crate::config::load_str(&text, &path.display().to_string()).map_err(setup)?;
        let Value::Mapping(mut m) =
            serde_yaml::from_str(&text).map_err(|e| setup(format!("{}: {e}", path.display())))?
        else {
            return Err(setup(format!("{}: not a mapping", path.display())));
        };
        for key in [
            "sources",
            "kafka",
            "output",
            "dead_letter",
            "telemetry",
            "respond",
        ] {
            m.remove(key);
        }
        Ok(Self(m))
    }

    /// The playbook directories this config loads: `playbooks.dir` and every pack.
    fn playbook_dirs(&self) -> Vec<PathBuf> {
        let Some(pb) = self.0.get("playbooks") else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = pb
            .get("dir")
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .into_iter()
            .collect();
        if let Some(Value::Sequence(packs)) = pb.get("packs") {
            dirs.extend(packs.iter().filter_map(Value::as_str).map(PathBuf::from));
        }
        dirs
    }

    /// This config with `playbooks.dir` and `playbooks.packs` replaced.
    fn with_playbooks(&self, dir: &Path, packs: &[PathBuf]) -> Self {
        let mut m = self.0.clone();
        let mut pb = match m.get("playbooks") {
            Some(Value::Mapping(p)) => p.clone(),
            _ => Mapping::new(),
        };
        pb.insert("dir".into(), path_value(dir));
        pb.insert(
            "packs".into(),
            Value::Sequence(packs.iter().map(|p| path_value(p)).collect()),
        );
        m.insert("playbooks".into(), Value::Mapping(pb));
        Self(m)
    }

    /// The config as YAML with `extra` (a YAML mapping) merged over the top level.
    fn render(&self, extra: &str) -> Result<String, BenchError> {
        let mut m = self.0.clone();
        if let Value::Mapping(e) = serde_yaml::from_str::<Value>(extra).map_err(setup)? {
            for (k, v) in e {
                if let (Some(Value::Mapping(old)), Value::Mapping(new)) = (m.get_mut(&k), &v) {
                    for (k2, v2) in new {
                        old.insert(k2.clone(), v2.clone());
                    }
                } else {
                    m.insert(k, v);
                }
            }
        }
        serde_yaml::to_string(&m).map_err(setup)
    }
}

fn path_value(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// The `*.rhai` files directly in `dir`, sorted.
fn playbook_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Sizes of the generated stream, for the header.
struct StreamShape {
    avg: usize,
    min: usize,
    max: usize,
    /// Shares below 1 KB, 1–4 KB, 4–20 KB, above.
    buckets: [f64; 4],
}

fn shape(lines: &[String]) -> StreamShape {
    let mut b = [0usize; 4];
    for l in lines {
        let i = match l.len() {
            0..1024 => 0,
            1024..4096 => 1,
            4096..20480 => 2,
            _ => 3,
        };
        b[i] += 1;
    }
    let n = lines.len().max(1);
    StreamShape {
        avg: lines.iter().map(String::len).sum::<usize>() / n,
        min: lines.iter().map(String::len).min().unwrap_or(0),
        max: lines.iter().map(String::len).max().unwrap_or(0),
        buckets: b.map(|c| 100.0 * c as f64 / n as f64),
    }
}

/// Runs the benchmark and returns the printed report (also printed as it goes).
pub async fn run(opts: &BenchOptions) -> Result<String, BenchError> {
    let base = BaseConfig::load(&opts.config)?;
    let work = tempfile::Builder::new().prefix("rampart-bench").tempdir()?;
    let mut out = String::new();
    let mut say = |s: String| {
        println!("{s}");
        let _ = writeln!(out, "{s}");
    };

    let mut gen = crate::synth::Generator::wide(opts.seed);
    let mut mix = [0usize; 4];
    let lines: Vec<String> = (0..opts.events)
        .map(|_| {
            let (ev, t) = gen.next_event();
            mix[t as usize] += 1;
            ev.to_string()
        })
        .collect();
    let s = shape(&lines);
    let pct = |c: usize| 100.0 * c as f64 / opts.events.max(1) as f64;
    say(format!(
        "rampart bench: {} events per run (seed {}), {} cores\nstream: {:.1}% system, {:.1}% human, {:.1}% CI, {:.1}% attacks; {} B avg ({}–{} B; <1 KB {:.0}%, 1–4 KB {:.0}%, 4–20 KB {:.0}%, >20 KB {:.0}%)\nconfig: {} (its enrichment and playbooks; sources, outputs and responders replaced)\n",
        opts.events,
        opts.seed,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        pct(mix[0]), pct(mix[1]), pct(mix[2]), pct(mix[3]),
        s.avg, s.min, s.max, s.buckets[0], s.buckets[1], s.buckets[2], s.buckets[3],
        opts.config.display(),
    ));

    let log = work.path().join("audit.jsonl");
    std::fs::write(&log, lines.join("\n") + "\n")?;
    let rows = inprocess::run_all(&base, &log, work.path(), &mut say).await?;
    let full = rows
        .iter()
        .find(|r| r.default_pack)
        .map(inprocess::Row::per_core);
    let with_falco = rows
        .iter()
        .find(|r| r.with_falco)
        .map(inprocess::Row::per_core);
    let base_us = rows
        .iter()
        .find(|r| r.playbooks == 0)
        .map(inprocess::Row::cpu_us);
    let (on, off) = behaviour_cost::run(&opts.config, &lines).await?;
    say(format!(
        "behavioural analytics (rate models, population sketches, peer groups), the enrichers alone on this stream, one thread, best of 3 alternating:\n  with {on:.2} µs per event, without {off:.2} µs: {:.2} µs added\n",
        on - off
    ));
    match &opts.previous {
        Some(prev) => previous::run(prev, &log, opts.events, work.path(), &mut say)?,
        None => say("before and after: skipped (pass --previous DIR, a checkout of the previous build with target/release/rampart; scripts/bench.sh builds one with PREVIOUS=<git rev>)\n".into()),
    }

    let webhook_p99 = webhook_latency::run(&base, opts, work.path(), &mut say).await?;

    let mut kafka_ratio = None;
    let mut latency_p99 = None;
    match &opts.brokers {
        None => say("Kafka: skipped (no broker; pass --brokers or set RAMPART_KAFKA_BROKERS; scripts/bench.sh starts one)\n".into()),
        Some(brokers) => {
            let k = kafka::Bench::new(brokers, opts.partitions, &base, work.path()).await?;
            kafka_ratio = Some(k.throughput(&lines, opts.rounds, &mut say).await?);
            latency_p99 = latency::run(&k, opts, &mut say).await?;
        }
    }

    say("targets:".into());
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    if let Some(f) = full {
        say(format!(
            "  in-process, default pack, realistic mix: {f:.0} events/s/core (target >= 150,000): {}",
            verdict(f >= 150_000.0)
        ));
    }
    if let Some(f) = with_falco {
        say(format!(
            "  in-process, default + Falco pack: {f:.0} events/s/core (target >= 100,000): {}",
            verdict(f >= 100_000.0)
        ));
    }
    if let Some(us) = base_us {
        say(format!(
            "  in-process, base pipeline (decode, enrich, state; no playbooks): {us:.2} µs CPU per event (target <= 4): {}",
            verdict(us <= 4.0)
        ));
    }
    if let Some(r) = kafka_ratio {
        say(format!(
            "  Kafka end to end vs bare consumer: {r:.2} (target >= 0.90): {}",
            verdict(r >= 0.9)
        ));
    }
    if let Some(l) = latency_p99 {
        say(format!(
            "  alert latency p99 at {} events/s: {:.1} ms producer to Slack stand-in, of which rampart {:.1} ms (target <= 50 ms): {}",
            opts.rate,
            l.p99 * 1e3,
            l.own_p99 * 1e3,
            if l.p99 <= 0.050 {
                "met"
            } else if l.own_p99 <= 0.050 {
                "met for rampart's share; NOT met end to end (the broker's latency is above it)"
            } else {
                "NOT met"
            }
        ));
    }
    say(format!(
        "  rampart's own alert latency p99 at {} events/s, webhook to Slack stand-in: {} (target <= 10 ms): {}",
        opts.rate,
        webhook_p99.map_or("no alert timed".into(), |p| format!("{:.1} ms", p * 1e3)),
        verdict(webhook_p99.is_some_and(|p| p <= 0.010))
    ));
    say(format!(
        "  behavioural analytics' cost per event: {:.2} µs (target <= 1): {}",
        on - off,
        verdict(on - off <= 1.0)
    ));
    say("  RSS with 1M live dedup keys: `cargo bench --bench state` (target <= 200 MB)".into());
    say("  behavioural evaluation and memory at 100k principals: `rampart behaviour evaluate`, `rampart behaviour memory`".into());
    Ok(out)
}

/// Percentile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn the_base_config_keeps_enrichment_and_playbooks_and_drops_io() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "sources:\n  files: [{ path: x.jsonl }]\nplaybooks:\n  dir: pb\n  packs: [pb2]\n  reload_interval: 2s\nrespond:\n  console: true\n",
        )
        .unwrap();
        let b = BaseConfig::load(&p).unwrap();
        assert_eq!(
            b.playbook_dirs(),
            [PathBuf::from("pb"), PathBuf::from("pb2")]
        );
        let text = b
            .with_playbooks(Path::new("other"), &[])
            .render("output:\n  console: off\nplaybooks:\n  on_error: skip\n")
            .unwrap();
        let v: Value = serde_yaml::from_str(&text).unwrap();
        assert!(v.get("sources").is_none() && v.get("respond").is_none());
        assert_eq!(v["playbooks"]["dir"], Value::from("other"));
        assert_eq!(v["playbooks"]["reload_interval"], Value::from("2s"));
        assert_eq!(v["playbooks"]["on_error"], Value::from("skip"));
        assert_eq!(v["output"]["console"], Value::from("off"));
    }
}
