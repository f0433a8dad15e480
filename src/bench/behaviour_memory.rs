//! `rampart behaviour memory`: resident memory of the behavioural baseline as principals and distinct (principal, action) combinations grow — it must stay flat.
//!
//! Observations go straight to the baseline (no decoding), on the real sled
//! store in a scratch directory, with the default limits: profiles beyond
//! `max_principals` are written back and dropped, the population sketches
//! are fixed in size. RSS is printed as the combinations grow.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use super::BenchError;
use crate::enrich::baseline::{rates, Baseline, BaselineSettings, BehaviourSettings, Observation};
use crate::model::enrichment::{Identity, PrincipalKind};
use crate::state::{SledStore, StateStore};

/// Resident set size of this process now (VmRSS), in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Feeds `combinations` distinct (principal, action) pairs over `principals` principals
/// (teams of 20, ten time zones) and prints the RSS at each tenth.
pub fn run(principals: usize, combinations: usize) -> Result<String, BenchError> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn StateStore> =
        Arc::new(SledStore::open(&dir.path().join("store")).map_err(super::setup)?);
    let defaults = crate::config::BaselineConfig::default();
    let baseline = Baseline::new(
        store,
        BaselineSettings {
            learning_period: defaults.learning_period.get(),
            max_principals: defaults.max_principals,
            max_values: defaults.max_values,
            behaviour: BehaviourSettings::default(),
        },
    );
    let zones = [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Sydney",
        "America/Los_Angeles",
        "Europe/London",
        "Asia/Singapore",
        "America/Sao_Paulo",
        "Africa/Lagos",
        "Asia/Tokyo",
    ];
    let names: Vec<String> = (0..principals)
        .map(|i| format!("user-{i:06}@example.com"))
        .collect();
    let identities: Vec<Identity> = (0..principals)
        .map(|i| Identity {
            kind: PrincipalKind::Human,
            actor: names[i].clone(),
            team: Some(format!("team-{}", i / 20)),
            timezone: Some(zones[i % zones.len()].to_owned()),
            ..Identity::default()
        })
        .collect();
    let mut out = format!(
        "behavioural baseline memory: {principals} principals, {combinations} distinct (principal, action) pairs, sled store, default limits\n\n| pairs | principals resident | RSS MiB | sketches MiB | rate |\n| --- | --- | --- | --- | --- |\n"
    );
    let start = 1_794_787_200; // Monday 2026-11-16
    let step = (combinations / 10).max(1);
    let t0 = Instant::now();
    let mut last = Instant::now();
    for n in 0..combinations {
        let p = n % principals;
        // Each principal's k-th action is new: (n / principals) distinct actions each.
        let k = n / principals;
        let ns = format!("ns-{}", k % 997);
        let verb_resource = if k % 3 == 0 {
            "get secrets"
        } else {
            "list pods"
        };
        let action = crate::state::stable_hash([
            verb_resource.as_bytes(),
            b" in ",
            ns.as_bytes(),
            &(k as u64).to_le_bytes(),
        ]);
        let time = start + (n as i64 * 28 * 86_400) / combinations as i64;
        baseline.observe(
            "prod",
            &names[p],
            &Observation {
                time,
                user_agent: Some("kubectl/v1.31.0 (linux/amd64)"),
                verb_resource,
                namespace: &ns,
                classes: rates::classes_of(
                    verb_resource.split(' ').next().unwrap_or(""),
                    "pods",
                    "",
                    "",
                ),
                action,
                identity: Some(&identities[p]),
                ..Observation::default()
            },
        );
        if (n + 1) % step == 0 {
            let rate = step as f64 / last.elapsed().as_secs_f64().max(1e-9);
            last = Instant::now();
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.0}/s |",
                n + 1,
                baseline.resident(),
                rss_mib(),
                baseline.history().bytes() as f64 / (1 << 20) as f64,
                rate
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{:.0} s; sketch fill {:.0}% (past about 60%, new actions start to be missed, never invented)",
        t0.elapsed().as_secs_f64(),
        100.0 * baseline.history().fill()
    );
    Ok(out)
}
