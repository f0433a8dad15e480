//! The store stays bounded under a steady stream of new dedup keys: distinct keys by the hundred thousand, each expiring; every tree is back to empty after expiry and the size on disk levels off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart::event::AuditEvent;
use rampart::playbook::{Severity, Verdict};
use rampart::state::{SledStore, StateSettings, StateStage, StateStore};

/// Distinct dedup keys in total (RAMPART_DISK_KEYS=1000000 for the full run; the suite uses fewer to spare CI's disk).
fn total_keys() -> usize {
    std::env::var("RAMPART_DISK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn event(i: usize, t: i64) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": format!("{i:016x}-0000-4000-8000-000000000000"),
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": format!("/api/v1/namespaces/ns-{}/secrets/s-{i}", i % 97),
        "user": {"username": format!("system:serviceaccount:ci:deployer-{}", i % 13)},
        "objectRef": {"resource": "secrets", "namespace": format!("ns-{}", i % 97), "name": format!("s-{i}")},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(t),
    }))
    .unwrap();
    ev.provenance.cluster = "prod".into();
    ev.verdicts = vec![Verdict {
        playbook: "secret-read".into(),
        title: "secret read".into(),
        severity: Severity::Low,
        score: 1,
        dedup: format!("key-{i}"),
        context: Default::default(),
        responses: Vec::new(),
        mitre: Vec::new(),
        gating: Default::default(),
    }];
    ev
}

#[tokio::test]
async fn distinct_dedup_keys_by_the_hundred_thousand_expire_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let settings = StateSettings {
        dedup_window: 60,
        replay_memory: 60,
        retention: 60,
        risk: rampart::state::risk::RiskSettings {
            threshold: 150.0,
            half_life: 60,
        },
        ..StateSettings::default()
    };
    let st = StateStage::open(store.clone(), settings).unwrap();
    let total = total_keys();
    let rounds = 4;
    let per_round = total / rounds;
    let mut sizes = Vec::new();
    let started = std::time::Instant::now();
    let mut i = 0;
    for round in 0..rounds {
        // Each round's keys are an hour of stream time after the last: everything before has expired.
        let base = 1_767_225_600 + round as i64 * 3600;
        for k in 0..per_round {
            let o = st
                .process(&event(i, base + (k * 50 / per_round) as i64))
                .unwrap();
            assert_eq!(o.alerts, 1);
            i += 1;
            if k % 10_000 == 9_999 {
                st.commit().unwrap();
            }
        }
        st.commit().unwrap();
        let live = st.open_windows().unwrap();
        assert!(live >= per_round, "every key of this round is live");
        // Stream time moves past every window; the sweeper empties the store of them.
        st.process(&event(usize::MAX - round, base + 3000)).unwrap();
        st.sweep().unwrap();
        assert_eq!(
            st.open_windows().unwrap(),
            1,
            "only the marker event's window is left"
        );
        store.flush().unwrap();
        let size = store.size_on_disk().unwrap();
        println!(
            "round {round}: {per_round} new keys ({i} in total), peak live windows {live}, after expiry {} alerts kept, size on disk {:.1} MiB, {:.0} keys/s",
            st.alerts().unwrap().len(),
            size as f64 / (1 << 20) as f64,
            i as f64 / started.elapsed().as_secs_f64()
        );
        sizes.push(size);
    }
    // Everything of the last round has expired but the marker: the live state does not grow with the keys seen.
    for tree in ["dedup", "seen", "alerts", "risk_contributions"] {
        let n = store.len(tree).unwrap();
        assert!(n <= 2, "{tree} still holds {n} entries after expiry");
    }
    assert!(
        store.len("expiry").unwrap() <= 12,
        "the expiry index drained"
    );
    println!("size on disk after each round (bytes): {sizes:?}");
    let (first, last) = (sizes[0] as f64, *sizes.last().unwrap() as f64);
    assert!(
        last <= first * 1.5,
        "the store grew with the number of keys seen: {sizes:?}"
    );
}
