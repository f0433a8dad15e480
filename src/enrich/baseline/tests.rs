//! Unit tests of the baseline: learning, novelty, caps, persistence, clusters.
use super::*;
use crate::state::MemoryStore;

const DAY: i64 = 86_400;

fn baseline(store: Arc<dyn StateStore>) -> Baseline {
    Baseline::new(
        store,
        BaselineSettings {
            learning_period: Duration::from_secs(7 * DAY as u64),
            max_principals: 1000,
            max_values: 4,
            behaviour: BehaviourSettings::default(),
        },
    )
}

fn obs(time: i64, country: &'static str) -> Observation<'static> {
    Observation {
        time,
        country: Some(country),
        asn: Some(1221),
        user_agent: Some("kubectl/v1.30.1 (darwin/arm64)"),
        verb_resource: "get pods",
        network: Some("81.2.69.0/24"),
        ..Observation::default()
    }
}

// Monday 2026-11-16 10:00 UTC
const T0: i64 = 1_794_823_200;

#[test]
fn nothing_is_flagged_during_learning_and_novelty_is_flagged_after() {
    let b = baseline(Arc::new(MemoryStore::default()));
    let f = b.observe("", "alice", &obs(T0, "GB"));
    assert!(f.learning);
    let f = b.observe("", "alice", &obs(T0 + DAY, "SE"));
    assert!(f.learning && !f.new_country, "learning: no flags");
    let after = T0 + 8 * DAY;
    let f = b.observe("", "alice", &obs(after, "GB"));
    assert!(!f.learning && !f.new_country, "{f:?}");
    let f = b.observe("", "alice", &obs(after, "CN"));
    assert!(f.new_country);
    let mut o = obs(after, "GB");
    o.verb_resource = "delete secrets";
    o.user_agent = Some("curl/8.5.0");
    o.asn = Some(7018);
    o.network = Some("12.81.92.0/24");
    let f = b.observe("", "alice", &o);
    assert!(
        f.new_verb_resource
            && f.new_user_agent
            && f.new_asn
            && f.new_source_network
            && !f.new_country
    );
    let f = b.observe("", "alice", &o);
    assert!(
        !f.new_verb_resource && !f.new_user_agent,
        "seen once is known"
    );
    let mut upgraded = obs(after, "GB");
    upgraded.user_agent = Some("kubectl/v1.31.0 (linux/amd64)");
    assert!(
        !b.observe("", "alice", &upgraded).new_user_agent,
        "a new kubectl version is not a new agent"
    );
}

#[test]
fn an_hour_never_active_is_unusual() {
    let b = baseline(Arc::new(MemoryStore::default()));
    for day in 0..8 {
        b.observe("", "bob", &obs(T0 + day * DAY, "GB")); // 10:00 every day
    }
    assert!(!b.observe("", "bob", &obs(T0 + 14 * DAY, "GB")).unusual_hour);
    assert!(
        b.observe("", "bob", &obs(T0 + 14 * DAY + 5 * 3600 + 7200, "GB"))
            .unusual_hour,
        "17:00 never seen"
    );
}

#[test]
fn values_are_capped_with_least_recent_eviction() {
    let b = baseline(Arc::new(MemoryStore::default()));
    let after = T0 + 8 * DAY;
    b.observe("", "carol", &obs(T0, "GB"));
    for (i, c) in ["SE", "US", "CN", "BT", "DE"].iter().enumerate() {
        b.observe("", "carol", &obs(after + i as i64, c));
    }
    // cap 4: GB (oldest) was evicted, so it is new again
    assert!(b.observe("", "carol", &obs(after + 10, "GB")).new_country);
    assert!(!b.observe("", "carol", &obs(after + 11, "DE")).new_country);
}

#[test]
fn profiles_are_capped_and_survive_a_restart_through_the_store() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
    let b = Baseline::new(
        store.clone(),
        BaselineSettings {
            learning_period: Duration::ZERO,
            max_principals: 32,
            max_values: 8,
            behaviour: BehaviourSettings::default(),
        },
    );
    for i in 0..200 {
        b.observe("", &format!("user-{i}"), &obs(T0 + i, "GB"));
    }
    assert!(b.resident() <= 32 + SHARDS, "resident {}", b.resident());
    b.flush();
    // A new process with the same store: user-0 is known, so GB is not new.
    let again = Baseline::new(
        store,
        BaselineSettings {
            learning_period: Duration::ZERO,
            max_principals: 32,
            max_values: 8,
            behaviour: BehaviourSettings::default(),
        },
    );
    let f = again.observe("", "user-0", &obs(T0 + 1000, "GB"));
    assert_eq!(f.first_seen, T0);
    assert!(!f.new_country);
    assert!(
        again
            .observe("", "user-0", &obs(T0 + 1001, "SE"))
            .new_country
    );
}

#[test]
fn each_cluster_has_its_own_history_and_an_older_profile_is_taken_over() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
    let b = baseline(store.clone());
    let after = T0 + 8 * DAY;
    b.observe("prod", "alice", &obs(T0, "GB"));
    let f = b.observe("prod", "alice", &obs(after, "GB"));
    assert!(!f.learning && !f.new_country);
    let f = b.observe("staging", "alice", &obs(after, "GB"));
    assert!(f.learning, "alice is new to staging: {f:?}");
    assert_eq!(f.first_seen, after);

    // A profile stored under the principal alone (before histories were per cluster).
    let old = Profile {
        first_seen: T0,
        last_seen: T0,
        ..Profile::default()
    };
    store
        .apply(&[crate::state::Op::Put(
            TREE,
            b"bob".to_vec(),
            serde_json::to_vec(&old).unwrap(),
        )])
        .unwrap();
    let f = baseline(store).observe("prod", "bob", &obs(after, "GB"));
    assert_eq!(f.first_seen, T0, "bob's history carried over: {f:?}");
    assert!(!f.learning);
}

#[test]
fn hour_of_week_starts_on_monday() {
    assert_eq!(hour_of_week(T0), 10);
    assert_eq!(hour_of_week(0), 3 * 24); // Thursday 00:00
}
