//! The default pack against a day of realistic background traffic: none of its playbooks may fire on it, and they do fire on the generator's attacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rampart::enrich::Enricher;
use rampart::event::decode_record;
use rampart::playbook::{load_dir, Ev, PlaybookSet};
use rampart::state::MemoryStore;
use rampart::synth::{Generator, Traffic};

/// The playbooks written for issue #7 (the detections Falco's k8saudit rules lack).
const DETECTIONS: &[&str] = &[
    "rbac-permission-enumeration",
    "forbidden-burst-public-ip",
    "anonymizer-access",
    "stolen-token-public-ip",
    "sa-token-minted-by-human",
    "sa-token-secret-created",
    "privileged-impersonation",
    "exec-suspicious-command",
    "dangerous-workload-spec",
    "rbac-escalation-verbs",
    "kubelet-proxy-access",
    "admission-webhook-changed",
    "csr-created-or-approved",
    "coredns-config-modified",
    "events-deleted",
    "rampart-tampering",
    "secrets-list-all-namespaces",
    "rbac-change-then-workload",
    "human-new-location-critical",
];

/// A day's worth of background events at the generator's pace (one event every 7 ms of event time
/// makes ~12 300 events an hour; 30 000 cover the busy part of a day with every principal many times).
const BACKGROUND_EVENTS: usize = 30_000;

/// MaxMind's test database marks this address as Tor exit, VPN, proxy and hosting all at once; the
/// generator uses it as one of its ordinary human addresses. Background traffic from a Tor exit is not
/// background, so it is moved to a plain address in the same country (GB, Boxford).
const TEST_DB_TOR_EXIT: &str = "81.2.69.142";
const PLAIN_GB: &str = "2.125.160.216";

async fn setup() -> (PlaybookSet, Enricher) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = rampart::config::load_file(&repo.join("rampart.yaml")).unwrap();
    let pcfg = cfg.playbooks.clone().unwrap_or_default();
    let set = load_dir(&repo.join(&pcfg.dir), &pcfg).unwrap();
    let enricher = Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").unwrap();
    for id in DETECTIONS {
        assert!(
            set.playbooks().iter().any(|p| p.id == *id),
            "playbook {id} is not loaded"
        );
    }
    (set, enricher)
}

/// Runs `lines` through enrichment and the playbook set; returns fires per detection and every fault.
async fn replay(
    set: &PlaybookSet,
    enricher: &Enricher,
    lines: &[String],
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut fires: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut faults = Vec::new();
    for line in lines {
        for mut ev in decode_record(line.as_bytes(), &Default::default()).events {
            ev.provenance.cluster = "demo".into();
            enricher.enrich(&mut ev).await;
            let out = set.evaluate(&Ev::new(ev));
            // Every playbook of the default pack counts, not only the ones named above.
            for v in out.verdicts {
                fires.entry(v.playbook.clone()).or_default().push(v.title);
            }
            faults.extend(
                out.faults
                    .iter()
                    .map(|f| format!("{}: {}", f.playbook, f.location)),
            );
        }
    }
    (fires, faults)
}

fn generate(keep: impl Fn(Traffic) -> bool, count: usize) -> Vec<String> {
    let mut generator = Generator::new(20_261_120);
    let mut lines = Vec::with_capacity(count);
    while lines.len() < count {
        let (ev, traffic) = generator.next_event();
        if keep(traffic) {
            lines.push(ev.to_string().replace(TEST_DB_TOR_EXIT, PLAIN_GB));
        }
    }
    lines
}

#[tokio::test]
async fn a_day_of_background_traffic_fires_none_of_the_detections() {
    let (set, enricher) = setup().await;
    let lines = generate(|t| t != Traffic::Attack, BACKGROUND_EVENTS);
    let (fires, faults) = replay(&set, &enricher, &lines).await;
    assert!(
        faults.is_empty(),
        "playbook faults: {:?}",
        &faults[..faults.len().min(10)]
    );
    common::assert_no_fires(&fires, "detections fired on background traffic");
}

#[tokio::test]
async fn the_generators_attacks_are_noticed() {
    let (set, enricher) = setup().await;
    // Attacks only, without the address rewrite: the Tor exit is the point here.
    let mut generator = Generator::new(7);
    let mut lines = Vec::new();
    while lines.len() < 300 {
        let (ev, traffic) = generator.next_event();
        if traffic == Traffic::Attack {
            lines.push(ev.to_string());
        }
    }
    let (fires, faults) = replay(&set, &enricher, &lines).await;
    assert!(faults.is_empty(), "playbook faults: {faults:?}");
    for id in ["anonymizer-access", "exec-suspicious-command"] {
        assert!(
            fires.contains_key(id),
            "{id} did not fire on the attacks; fired: {:?}",
            fires.keys()
        );
    }
}
