//! Decode throughput per core (single events and EventList batches) and the in-process pipeline's cost per event.
//!
//! `cargo bench --bench decode` prints a table; figures, not pass/fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::config::load_str;
use rampart::event::{decode_record, DecodeOptions};
use rampart::pipeline::{self, RunOptions};
use rampart::synth::Generator;
use tokio_util::sync::CancellationToken;

/// CPU time (user + system) of this process, from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Best of `rounds` single-threaded passes over `records`; returns events/s.
fn bench_decode(records: &[Vec<u8>], events_per_record: usize, rounds: usize) -> f64 {
    let opts = DecodeOptions::default();
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut n = 0;
        for r in records {
            n += decode_record(r, &opts).events.len();
        }
        assert_eq!(n, records.len() * events_per_record);
        best = best.min(t.elapsed());
    }
    rate(records.len() * events_per_record, best)
}

/// The same events at RequestResponse level, carrying the object the API
/// server returned (a Lease, as for kubelet heartbeats): about 1.7-1.9 KB each.
fn with_response_objects(mix: &[String]) -> Vec<String> {
    mix.iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["level"] = "RequestResponse".into();
            v["responseObject"] = serde_json::json!({
                "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                "metadata": {"name": format!("ip-10-0-1-{}.ec2.internal", i % 200), "namespace": "kube-node-lease",
                    "uid": format!("6c3f1f3e-8a2b-4f0e-9d1c-{:012x}", i), "resourceVersion": (1_000_000 + i).to_string(),
                    "creationTimestamp": "2026-11-01T08:00:00Z",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": format!("ip-10-0-1-{}.ec2.internal", i % 200), "uid": "0c9e4c2a-1b7d-4f57-9a55-3d2f1f0a6b11"}],
                    "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "coordination.k8s.io/v1", "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:ownerReferences": {".": {}, "k:{\"uid\":\"0c9e4c2a\"}": {}}}, "f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}, "f:renewTime": {}}}}]},
                "spec": {"holderIdentity": format!("ip-10-0-1-{}.ec2.internal", i % 200), "leaseDurationSeconds": 40, "renewTime": "2026-11-20T10:00:00.000000Z"}
            });
            v.to_string()
        })
        .collect()
}

fn main() {
    let only_pipeline = std::env::var("RAMPART_BENCH_ONLY").is_ok_and(|v| v == "pipeline");
    let avg = |v: &[String]| v.iter().map(String::len).sum::<usize>() / v.len();
    if !only_pipeline {
        let mix: Vec<String> = Generator::new(99).lines(50_000);
        let sized = with_response_objects(&mix);
        println!("rampart decode benchmark (one core, best of 5 passes)\n");
        println!(
            "{:<44} {:>10} {:>14}",
            "input", "avg bytes", "events/s/core"
        );
        for (name, set) in [
            ("realistic mix, single events", &mix),
            ("~1.7 KB events, single events", &sized),
        ] {
            let records: Vec<Vec<u8>> = set.iter().map(|l| l.as_bytes().to_vec()).collect();
            println!(
                "{:<44} {:>10} {:>14.0}",
                name,
                avg(set),
                bench_decode(&records, 1, 5)
            );
        }
        for (name, set) in [
            ("realistic mix, EventList of 100", &mix),
            ("~1.7 KB events, EventList of 100", &sized),
        ] {
            let records: Vec<Vec<u8>> = set
            .chunks(100)
            .map(|c| format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#, c.join(",")).into_bytes())
            .collect();
            println!(
                "{:<44} {:>10} {:>14.0}",
                name,
                avg(set),
                bench_decode(&records, 100, 5)
            );
        }
    }
    // The whole in-process path: file source, workers (decode, default enrichers), output (off), acks.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let n = 300_000;
    std::fs::write(&log, Generator::new(5).lines(n).join("\n") + "\n").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for workers in [1, 2] {
        let yaml = format!(
            "sources:\n  files:\n    - path: {}\noutput:\n  console: off\nstate:\n  dir: {}\npipeline:\n  workers: {workers}\n",
            log.display(),
            dir.path().join("state").display()
        );
        let cfg = load_str(&yaml, "bench").unwrap();
        let cpu0 = cpu_time();
        let t = Instant::now();
        let report = rt.block_on(async {
            pipeline::start(
                &cfg,
                RunOptions {
                    progress: Some(Arc::default()),
                    ..RunOptions::default()
                },
                CancellationToken::new(),
            )
            .await
            .unwrap()
            .wait()
            .await
            .unwrap()
        });
        let wall = t.elapsed();
        let cpu = cpu_time() - cpu0;
        assert_eq!(report.events as usize, n);
        println!(
            "\nin-process pipeline (file -> decode -> enrich -> output off), {workers} worker(s), {n} events:\n  {:.0} events/s wall, {:.2} CPU s, {:.0} events per CPU-second, {:.2} µs CPU per event",
            rate(n, wall),
            cpu.as_secs_f64(),
            rate(n, cpu),
            cpu.as_secs_f64() * 1e6 / n as f64
        );
    }
}
