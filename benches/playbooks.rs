//! Playbook stage cost per event with 1, 10 and 60 playbooks, on a realistic mix and on a worst case where every playbook runs on every event.
//!
//! `cargo bench --bench playbooks` prints events/s per core. Figures, not pass/fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rampart::config::{load_str, PlaybooksConfig};
use rampart::enrich::Enricher;
use rampart::event::AuditEvent;
use rampart::playbook::{load_dir, Ev};
use rampart::state::MemoryStore;
use rampart::synth::Generator;

const RESOURCES: &[&str] = &[
    "pods",
    "deployments",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "secrets",
    "configmaps",
    "clusterrolebindings",
    "rolebindings",
    "clusterroles",
    "roles",
    "serviceaccounts",
    "nodes",
    "namespaces",
    "services",
    "ingresses",
    "networkpolicies",
    "mutatingwebhookconfigurations",
    "certificatesigningrequests",
];
const VERBS: &[&str] = &["create", "update", "delete"];

/// Detection-like playbooks: selective `on`, a few field checks, helpers on the request object.
fn synth_playbook(i: usize, match_all: bool) -> String {
    let resource = RESOURCES[i % RESOURCES.len()];
    let verb = VERBS[(i / RESOURCES.len()) % VERBS.len()];
    let on = if match_all {
        String::new()
    } else {
        format!("verbs: [\"{verb}\"], resources: [\"{resource}\"]")
    };
    format!(
        r#"fn meta() {{ #{{ id: "synthetic-{i}", title: "synthetic {i}", severity: "medium", on: #{{ {on} }} }} }}
fn rule(e) {{
    if is_system_user(e) || e.code >= 400 {{ return false; }}
    let ns = e.namespace ?? "";
    if in_list("allowed_namespaces", ns) {{ return false; }}
    (e.asset.tier == "critical" && !e.identity.known) || has_privileged_container(e) || e.verb == "{verb}-never"
}}
fn title(e) {{ `${{e.user}} {verb} ${{e.resource}} ${{e.name ?? ""}}` }}
"#
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = load_str("sources:\n  files: [{ path: x }]\n", "bench").unwrap();
    let enricher = Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").unwrap();
    let events: Vec<AuditEvent> = Generator::new(31)
        .events(100_000)
        .into_iter()
        .map(|mut ev| {
            rt.block_on(enricher.enrich(&mut ev));
            ev
        })
        .collect();
    println!(
        "playbook stage, one core, {} enriched events (enrichment not timed)\n",
        events.len()
    );
    println!(
        "{:<12} {:<34} {:>14} {:>12} {:>10}",
        "playbooks", "mix", "events/s/core", "runs/event", "fires"
    );
    for (n, match_all, mix) in [
        (1, false, "realistic (88% system reads)"),
        (10, false, "realistic (88% system reads)"),
        (60, false, "realistic (88% system reads)"),
        (60, true, "worst case (every playbook runs)"),
    ] {
        let pdir = dir.path().join(format!("set-{n}-{match_all}"));
        std::fs::create_dir_all(&pdir).unwrap();
        // The shipped playbooks first, then synthetic ones up to n.
        let mut count = 0;
        if !match_all {
            for f in [
                "cluster_admin_binding.rhai",
                "exec_critical_namespace.rhai",
                "secret_read_unknown_human.rhai",
            ] {
                if count < n {
                    std::fs::copy(shipped.join(f), pdir.join(f)).unwrap();
                    count += 1;
                }
            }
        }
        for i in count..n {
            std::fs::write(
                pdir.join(format!("synthetic_{i:02}.rhai")),
                synth_playbook(i, match_all),
            )
            .unwrap();
        }
        let mut pcfg = PlaybooksConfig {
            dir: pdir.clone(),
            ..PlaybooksConfig::default()
        };
        pcfg.lists
            .insert("admin_roles".into(), vec!["cluster-admin".into()]);
        pcfg.lists
            .insert("allowed_namespaces".into(), vec!["monitoring".into()]);
        let set = load_dir(&pdir, &pcfg).unwrap();
        assert_eq!(set.len(), n);
        let mut best = f64::MAX;
        let mut runs = 0;
        let mut fires = 0;
        for _ in 0..3 {
            runs = 0;
            fires = 0;
            let t = Instant::now();
            for ev in &events {
                let wrapped = Ev::new(ev.clone());
                let e = set.evaluate(&wrapped);
                runs += e.ran;
                fires += e.verdicts.len();
                std::hint::black_box(wrapped.into_event());
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<12} {:<34} {:>14.0} {:>12.2} {:>10}",
            n,
            mix,
            events.len() as f64 / best,
            runs as f64 / events.len() as f64,
            fires
        );
    }
    println!("\n(each pass clones every event into the playbook wrapper; the pipeline moves it instead, so these figures are conservative)");
}
