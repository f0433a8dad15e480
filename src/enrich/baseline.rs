//! Behavioural baseline: what is normal for each principal (countries, ASNs, agents, networks, verb+resource, hours), persisted and bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::StateStore;

const TREE: &str = "baseline";
const SHARDS: usize = 16;

pub use crate::model::enrichment::BaselineFlags;

/// The facts of one event a baseline compares.
#[derive(Debug, Default)]
pub struct Observation<'a> {
    pub time: i64,
    pub country: Option<&'a str>,
    pub asn: Option<u32>,
    pub user_agent: Option<&'a str>,
    pub verb_resource: &'a str,
    /// The client's /24 (IPv4) or /48 (IPv6), public addresses only.
    pub network: Option<&'a str>,
}

/// Limits and learning.
#[derive(Debug, Clone)]
pub struct BaselineSettings {
    pub learning_period: Duration,
    pub max_principals: usize,
    pub max_values: usize,
}

const COUNTRY: usize = 0;
const ASN: usize = 1;
const AGENT: usize = 2;
const VERB_RESOURCE: usize = 3;
const NETWORK: usize = 4;

/// One principal's history; values are kept as hashes to stay small.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Profile {
    first_seen: i64,
    last_seen: i64,
    /// (value hash, last seen) per table.
    tables: [Vec<(u64, i64)>; 5],
    /// Hours of the week (Monday 00:00 = 0) with activity, as bits.
    hours: [u8; 21],
}

struct Slot {
    profile: Profile,
    dirty: bool,
}

/// Baselines for all principals, sharded for concurrent workers.
pub struct Baseline {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    store: Arc<dyn StateStore>,
    settings: BaselineSettings,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Value hashes are persisted, so they must not change with the Rust version (DefaultHasher may).
fn hash(s: &[u8]) -> u64 {
    crate::state::stable_hash([s])
}

/// Hour of the week, Monday 00:00 UTC = 0.
pub fn hour_of_week(epoch_secs: i64) -> usize {
    let days = epoch_secs.div_euclid(86_400);
    let hour = epoch_secs.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (Monday = 0 makes it 3).
    ((days + 3).rem_euclid(7) * 24 + hour) as usize
}

impl Profile {
    /// Records `value` in `table`; returns whether it was new. Evicts the least recent at the cap.
    fn see(&mut self, table: usize, value: u64, now: i64, cap: usize) -> bool {
        let t = &mut self.tables[table];
        if let Some(e) = t.iter_mut().find(|(v, _)| *v == value) {
            e.1 = e.1.max(now);
            return false;
        }
        if t.len() >= cap {
            if let Some((i, _)) = t.iter().enumerate().min_by_key(|(_, (_, seen))| *seen) {
                t.swap_remove(i);
            }
        }
        t.push((value, now));
        true
    }
}

impl Baseline {
    pub fn new(store: Arc<dyn StateStore>, settings: BaselineSettings) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            store,
            settings,
        }
    }

    fn shard(&self, principal: &str) -> &Mutex<HashMap<String, Slot>> {
        &self.shards[(hash(principal.as_bytes()) as usize) % SHARDS]
    }

    /// Compares the event with the principal's history in `cluster`, then adds it.
    ///
    /// A principal of one cluster is not the same principal in another: each has its own
    /// history. A profile stored before histories were per cluster (under the principal alone)
    /// is the starting point of each cluster's history of the principal, so an upgrade sends no
    /// one back to learning.
    pub fn observe(&self, cluster: &str, principal: &str, o: &Observation<'_>) -> BaselineFlags {
        // Built by hand: `format!` costs about ten times as much on this per-event path.
        let mut key = String::with_capacity(cluster.len() + 1 + principal.len());
        key.push_str(cluster);
        key.push('\u{1f}');
        key.push_str(principal);
        let principal = key.as_str();
        let legacy = &principal[cluster.len() + 1..];
        let mut shard = self
            .shard(principal)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !shard.contains_key(principal) {
            let read = |k: &str| {
                self.store
                    .get(TREE, k.as_bytes())
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<Profile>(&b).ok())
            };
            let (loaded, moved) = match read(principal) {
                Some(p) => (Some(p), false),
                None => {
                    let old = read(legacy);
                    let moved = old.is_some();
                    (old, moved)
                }
            };
            let fresh = loaded.is_none() || moved;
            let profile = loaded.unwrap_or(Profile {
                first_seen: o.time,
                last_seen: o.time,
                ..Profile::default()
            });
            let cap = (self.settings.max_principals / SHARDS).max(1);
            if shard.len() >= cap {
                self.evict(&mut shard, cap / 10 + 1);
            }
            shard.insert(
                principal.to_owned(),
                Slot {
                    profile,
                    dirty: fresh,
                },
            );
        }
        let Some(slot) = shard.get_mut(principal) else {
            return BaselineFlags::default();
        };
        let p = &mut slot.profile;
        slot.dirty = true;
        p.first_seen = p.first_seen.min(o.time);
        p.last_seen = p.last_seen.max(o.time);
        let learning_secs =
            i64::try_from(self.settings.learning_period.as_secs()).unwrap_or(i64::MAX);
        let learning = o.time < p.first_seen.saturating_add(learning_secs);
        let cap = self.settings.max_values;
        let t = o.time;
        let mut flags = BaselineFlags {
            learning,
            first_seen: p.first_seen,
            ..BaselineFlags::default()
        };
        let new_country = o
            .country
            .map(|c| p.see(COUNTRY, hash(c.as_bytes()), t, cap));
        let new_asn = o.asn.map(|a| p.see(ASN, u64::from(a), t, cap));
        let new_agent = o
            .user_agent
            .map(|a| p.see(AGENT, hash(agent_family(a).as_bytes()), t, cap));
        let new_vr = p.see(VERB_RESOURCE, hash(o.verb_resource.as_bytes()), t, cap);
        let new_net = o
            .network
            .map(|n| p.see(NETWORK, hash(n.as_bytes()), t, cap));
        let how = hour_of_week(t);
        let seen_hour = p.hours[how / 8] & (1 << (how % 8)) != 0;
        p.hours[how / 8] |= 1 << (how % 8);
        if !learning {
            flags.new_country = new_country.unwrap_or(false);
            flags.new_asn = new_asn.unwrap_or(false);
            flags.new_user_agent = new_agent.unwrap_or(false);
            flags.new_verb_resource = new_vr;
            flags.new_source_network = new_net.unwrap_or(false);
            flags.unusual_hour = !seen_hour;
        }
        flags
    }

    /// Writes back and drops the least recently active profiles of a shard.
    fn evict(&self, shard: &mut HashMap<String, Slot>, n: usize) {
        let mut by_age: Vec<(i64, String)> = shard
            .iter()
            .map(|(k, s)| (s.profile.last_seen, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age.into_iter().take(n) {
            if let Some(slot) = shard.remove(&key) {
                if slot.dirty {
                    self.write(&key, &slot.profile);
                }
            }
        }
    }

    fn write(&self, principal: &str, p: &Profile) {
        if let Ok(bytes) = serde_json::to_vec(p) {
            if let Err(e) = self.store.put(TREE, principal.as_bytes(), &bytes) {
                tracing::error!(error = %e, "cannot persist baseline");
            }
        }
    }

    /// Persists every changed profile (called periodically and at shutdown).
    pub fn flush(&self) {
        for shard in &self.shards {
            let dirty: Vec<(String, Profile)> = {
                let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
                s.iter_mut()
                    .filter(|(_, slot)| slot.dirty)
                    .map(|(k, slot)| {
                        slot.dirty = false;
                        (k.clone(), slot.profile.clone())
                    })
                    .collect()
            };
            for (k, p) in dirty {
                self.write(&k, &p);
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "cannot flush the state store");
        }
    }

    /// Profiles held in memory (for tests and metrics).
    pub fn resident(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

/// The product part of a user agent (`kubectl/v1.30.1 (darwin/arm64) ...` is `kubectl`), so upgrades are not "new".
pub fn agent_family(ua: &str) -> &str {
    ua.split(['/', ' ']).next().unwrap_or(ua)
}

#[cfg(test)]
mod tests {
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
}
