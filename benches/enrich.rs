//! Enrichment cost per event on a realistic mix: identity, network/GeoIP (City+ASN+Anonymous), assets, baseline.
//!
//! `cargo bench --bench enrich` prints median, p99 and mean per event, for
//! each enricher added in turn. Figures, not pass/fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::config::load_str;
use rampart::enrich::Enricher;
use rampart::event::AuditEvent;
use rampart::state::MemoryStore;
use rampart::synth::Generator;

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

fn config(level: usize) -> String {
    let mut s = String::from("sources:\n  files: [{ path: x }]\nenrich:\n");
    s += &format!(
        "  identity:\n    directory: {}\n",
        repo("enrichers/identity.yaml")
    );
    if level >= 1 {
        s += &format!(
            "  network:\n    classes: [{{ cidr: 10.244.0.0/16, label: internal/pod-network }}]\n    geoip:\n      city: {}\n      asn: {}\n      anonymous: {}\n",
            repo("tests/data/geoip/GeoIP2-City-Test.mmdb"),
            repo("tests/data/geoip/GeoLite2-ASN-Test.mmdb"),
            repo("tests/data/geoip/GeoIP2-Anonymous-IP-Test.mmdb")
        );
    }
    s += &format!(
        "  assets:\n    rules: {}\n    builtin_defaults: {}\n",
        repo("enrichers/assets.yaml"),
        level >= 2
    );
    s += &format!(
        "  baseline:\n    enabled: {}\n    learning_period: 1h\n",
        level >= 3
    );
    s
}

fn main() {
    let events: Vec<AuditEvent> = Generator::new(21).events(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "enrichment cost per event, realistic mix of {} events (one core)\n",
        events.len()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "enrichers", "median", "p99", "mean"
    );
    for (level, name) in [
        "identity (derived + directory)",
        "+ network (ranges, City+ASN+Anonymous)",
        "+ assets (rules + built-ins)",
        "+ baseline (all four)",
    ]
    .iter()
    .enumerate()
    {
        let cfg = load_str(&config(level), "bench").unwrap();
        let enricher = Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").unwrap();
        let mut times: Vec<Duration> = Vec::with_capacity(events.len() * 2);
        rt.block_on(async {
            // Two passes: the second sees warm baselines, as a long-running process does.
            for _ in 0..2 {
                for ev in &events {
                    let mut ev = ev.clone();
                    let t = Instant::now();
                    enricher.enrich(&mut ev).await;
                    times.push(t.elapsed());
                    std::hint::black_box(&ev);
                }
            }
        });
        let total: Duration = times.iter().sum();
        times.sort_unstable();
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "{:<44} {:>8.2}µs {:>8.2}µs {:>8.2}µs",
            name,
            pct(0.5).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            total.as_secs_f64() * 1e6 / times.len() as f64
        );
    }
}
