//! State-stage cost: per event at realistic alert rates, per alert, and memory with one million live dedup keys (on sled).
//!
//! `cargo bench --bench state` prints a table; figures, not pass/fail.
//! `RAMPART_BENCH_KEYS` changes the live-key count (default 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use rampart::event::AuditEvent;
use rampart::playbook::{Severity, Verdict};
use rampart::state::{SledStore, StateSettings, StateStage, StateStore};
use rampart::synth::Generator;

fn verdict(playbook: &str, dedup: String) -> Verdict {
    Verdict {
        playbook: playbook.into(),
        title: "bench".into(),
        severity: Severity::Medium,
        score: 40,
        dedup,
        context: Default::default(),
        responses: Vec::new(),
        mitre: Vec::new(),
        gating: Default::default(),
    }
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn stage(dir: &std::path::Path) -> (Arc<dyn StateStore>, StateStage) {
    let store: Arc<dyn StateStore> = Arc::new(SledStore::open(dir).unwrap());
    let st = StateStage::open(
        store.clone(),
        StateSettings {
            sinks: vec!["alerts_file".into()],
            ..StateSettings::default()
        },
    )
    .unwrap();
    (store, st)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let template = Generator::new(5).events(1).remove(0);
    let keys: usize = std::env::var("RAMPART_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let (store, st) = stage(dir.path());
    let base_rss = proc_status("VmRSS:");
    let started = Instant::now();
    for i in 0..keys {
        let mut ev = template.clone();
        ev.audit_id = format!("{i:016x}");
        ev.verdicts.push(verdict("bench", format!("principal-{i}")));
        st.process(&ev).unwrap();
        if i % 4096 == 4095 {
            st.commit().unwrap();
        }
    }
    st.commit().unwrap();
    let el = started.elapsed();
    println!(
        "{} live dedup keys: {:.0} alerts/s into the outbox, {:.1} µs each; RSS {:.0} MiB (peak {:.0} MiB, {:.0} MiB before), {:.0} MiB on disk, {} open windows",
        keys,
        keys as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / keys as f64,
        proc_status("VmRSS:") as f64 / 1024.0,
        proc_status("VmHWM:") as f64 / 1024.0,
        base_rss as f64 / 1024.0,
        store.size_on_disk().unwrap() as f64 / (1 << 20) as f64,
        st.open_windows().unwrap()
    );

    let events: Vec<AuditEvent> = Generator::new(5).events(200_000);
    println!(
        "state stage on sled, {} synthetic events, commit (fsync) every 1024 events",
        events.len()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10} {:>11}",
        "matches per event", "ns/event", "µs/match", "alerts", "deduped"
    );
    for (label, every) in [
        ("none (most traffic)", 0usize),
        ("0.1%", 1000),
        ("1%", 100),
        ("10%", 10),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_store, st) = stage(dir.path());
        let mut evs = events.clone();
        let mut matches = 0u64;
        for (i, ev) in evs.iter_mut().enumerate() {
            if every > 0 && i % every == 0 {
                // Realistic dedup keys: a few hundred principals × playbooks.
                let key = format!("{}|{}", ev.user.username, i % 300);
                ev.verdicts.push(verdict("bench", key));
                matches += 1;
            }
        }
        let started = Instant::now();
        let mut alerts = 0;
        let mut deduped = 0;
        for (i, ev) in evs.iter().enumerate() {
            let o = st.process(ev).unwrap();
            alerts += o.alerts;
            deduped += o.suppressed;
            if i % 1024 == 1023 {
                st.commit().unwrap();
            }
        }
        st.commit().unwrap();
        let el = started.elapsed();
        println!(
            "{:<34} {:>12.0} {:>12.1} {:>10} {:>11}",
            label,
            el.as_nanos() as f64 / evs.len() as f64,
            if matches > 0 {
                el.as_secs_f64() * 1e6 / matches as f64
            } else {
                0.0
            },
            alerts,
            deduped
        );
    }
}
