//! Behavioural baseline: what is normal for each principal (countries, ASNs, agents, networks, actions, hours, request rates) and for its peers and the population, persisted and bounded.
//!
//! - Per principal ([`Profile`]): the values seen (hashed, capped, least recent
//!   evicted), the hours of the week, and a rate model ([`rates`]) in the
//!   principal's time zone ([`zone`]).
//! - Across principals ([`history`]): fixed-size sketches ([`sketch`]) of which
//!   principal and which peer group ([`peers`]) did each action on which day, and
//!   how many principals did each action, use each agent, come from each network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::enrichment::{Identity, RateFlags};
use crate::state::StateStore;

pub mod history;
pub mod peers;
pub mod rates;
pub mod signals;
pub mod sketch;
pub mod zone;

use history::{ComboFacts, History};
use rates::{RateGuards, RateModel, VerbClass};
use signals::{Recent, Signal};

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
    /// The verb classes of the request ([`rates::classes_of`]).
    pub classes: u8,
    /// The namespace acted in (empty for cluster-scoped requests).
    pub namespace: &'a str,
    /// The action as the population sketches know it: verb, resource and namespace, hashed.
    pub action: u64,
    /// Who: team, service-account family, node, time zone.
    pub identity: Option<&'a Identity>,
    /// The request was refused (401 or 403).
    pub refused: bool,
}

/// Limits and learning.
#[derive(Debug, Clone)]
pub struct BaselineSettings {
    pub learning_period: Duration,
    pub max_principals: usize,
    pub max_values: usize,
    pub behaviour: BehaviourSettings,
}

/// Thresholds of the behavioural signals and the size of the population's memory.
#[derive(Debug, Clone)]
pub struct BehaviourSettings {
    /// Off: only the novelty flags (no rates, no population sketches, which then take no memory).
    pub enabled: bool,
    /// Least requests of a class in the hour before its rate can be unusual.
    pub min_volume: u32,
    /// Least hours a bucket has learnt from before its rate can be unusual.
    pub min_samples: u16,
    /// `volume_spike` needs at least this score and this ratio.
    pub spike_score: f32,
    pub spike_ratio: f32,
    /// How far back "new" looks (actions, peers), in days.
    pub window_days: u16,
    /// `first_of_peers` needs a peer group of at least this many principals.
    pub min_peers: u16,
    /// Memory of the population sketches, fixed.
    pub sketch_bytes: usize,
    /// The sketches' name in the store (one per enricher).
    pub scope: String,
}

impl Default for BehaviourSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            min_volume: 10,
            min_samples: 4,
            spike_score: 6.0,
            spike_ratio: 5.0,
            window_days: 30,
            min_peers: 3,
            sketch_bytes: 16 << 20,
            scope: String::new(),
        }
    }
}

/// An action done by at most this many principals is explained as rare.
const RARE_PRINCIPALS: u16 = 2;

/// How often the periodic flush saves the population sketches (a crash loses at most this much of them).
pub const SKETCH_SAVE_INTERVAL: Duration = Duration::from_secs(300);

/// A namespace where at most this many teams work belongs to them (a shared one has more).
const FOREIGN_MAX_GROUPS: u16 = 3;

/// A local hour is quiet for a principal whose usual count of requests in it is below this.
const QUIET_USUAL: f32 = 0.5;

/// A rate is reported (`flags.rate`) from this score on.
const REPORT_SCORE: f32 = 3.0;

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
    /// Request rates by verb class and local hour.
    #[serde(default)]
    rates: RateModel,
}

struct Slot {
    profile: Profile,
    dirty: bool,
    /// The time zone last resolved, its name, and the offset cached for one hour.
    zone: Option<(String, Option<zone::Tz>)>,
    offset_hour: i64,
    offset: i32,
    /// The behavioural signals raised lately (in memory only).
    recent: Recent,
}

impl Slot {
    /// The principal's UTC offset at `time` (cached for the hour; UTC without a known zone).
    fn offset(&mut self, time: i64, tz_name: Option<&str>) -> i32 {
        let hour = time.div_euclid(3600);
        let same_zone = self.zone.as_ref().map(|(n, _)| n.as_str()) == tz_name;
        if same_zone && hour == self.offset_hour {
            return self.offset;
        }
        if !same_zone {
            self.zone = tz_name.map(|n| (n.to_owned(), zone::parse(n)));
        }
        self.offset_hour = hour;
        self.offset = match &self.zone {
            Some((_, Some(tz))) => zone::offset(*tz, time),
            _ => 0,
        };
        self.offset
    }
}

/// Baselines for all principals, sharded for concurrent workers.
pub struct Baseline {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    store: Arc<dyn StateStore>,
    settings: BaselineSettings,
    history: History,
    /// When the sketches were last saved.
    sketch_saved: Mutex<Option<std::time::Instant>>,
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
        let b = &settings.behaviour;
        let bytes = if b.enabled { b.sketch_bytes } else { 0 };
        let history = History::new(bytes, b.window_days, &b.scope);
        history.load(store.as_ref());
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            store,
            settings,
            history,
            sketch_saved: Mutex::new(None),
        }
    }

    /// The population sketches (memory, fill).
    pub fn history(&self) -> &History {
        &self.history
    }

    fn shard(&self, key_hash: u64) -> &Mutex<HashMap<String, Slot>> {
        &self.shards[(key_hash as usize) % SHARDS]
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
        let key_hash = hash(principal.as_bytes());
        let behaviour = self.settings.behaviour.enabled;
        let cluster_key = hash(cluster.as_bytes());
        let group = o.identity.and_then(peers::group);
        let facts = behaviour.then(|| {
            let ns = if o.namespace.is_empty() {
                0
            } else {
                hash(o.namespace.as_bytes())
            };
            self.history.observe(
                cluster_key,
                key_hash,
                group.map(|g| (g.key(cluster), g.is_team())),
                (o.action, ns),
                sketch::day(o.time),
            )
        });
        let mut shard = self
            .shard(key_hash)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !shard.contains_key(principal) {
            let (profile, fresh) = self.load(principal, cluster.len(), o.time);
            let cap = (self.settings.max_principals / SHARDS).max(1);
            if shard.len() >= cap {
                self.evict(&mut shard, cap / 10 + 1);
            }
            shard.insert(
                principal.to_owned(),
                Slot {
                    profile,
                    dirty: fresh,
                    zone: None,
                    offset_hour: i64::MIN,
                    offset: 0,
                    recent: Recent::default(),
                },
            );
        }
        let Some(slot) = shard.get_mut(principal) else {
            return BaselineFlags::default();
        };
        let tz = o.identity.and_then(|i| i.timezone.as_deref());
        let offset = slot.offset(o.time, tz);
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
        let agent = o.user_agent.map(|a| hash(agent_family(a).as_bytes()));
        let new_agent = agent.map(|a| p.see(AGENT, a, t, cap));
        let new_vr = p.see(VERB_RESOURCE, hash(o.verb_resource.as_bytes()), t, cap);
        let net = o.network.map(|n| hash(n.as_bytes()));
        let new_net = net.map(|n| p.see(NETWORK, n, t, cap));
        let how = hour_of_week(t);
        let seen_hour = p.hours[how / 8] & (1 << (how % 8)) != 0;
        p.hours[how / 8] |= 1 << (how % 8);
        if behaviour {
            p.rates.count(t, offset, o.classes);
        }
        if !learning {
            flags.new_country = new_country.unwrap_or(false);
            flags.new_asn = new_asn.unwrap_or(false);
            flags.new_user_agent = new_agent.unwrap_or(false);
            flags.new_verb_resource = new_vr;
            flags.new_source_network = new_net.unwrap_or(false);
            flags.unusual_hour = !seen_hour;
            if behaviour {
                self.rate(&p.rates, o.classes, tz, &mut flags);
            }
        }
        let Some(f) = facts else {
            return flags;
        };
        self.peer_facts(&f, o, &mut flags);
        if !learning {
            record(&mut slot.recent, o, &flags);
            flags.signals = slot.recent.names(t);
        }
        drop(shard);
        self.population(
            cluster_key,
            (agent, new_agent),
            (net, new_net),
            o,
            &mut flags,
        );
        if let (true, Some(g)) = (flags.first_of_peers, group) {
            let g = g.describe();
            flags.explain.push(format!(
                "no one in {g} has done {} in {} in the last {} days",
                o.verb_resource,
                place(o),
                self.history.window_days()
            ));
            flags.peer_group = Some(g);
        }
        flags
    }

    /// Sets what the population sketches say of the action.
    fn peer_facts(&self, f: &ComboFacts, o: &Observation<'_>, flags: &mut BaselineFlags) {
        let has_group = f.peers > 0;
        flags.new_action = f.new_for_principal;
        flags.action_principals = u32::from(f.principals);
        flags.peers = u32::from(f.peers);
        flags.peers_new_action = if has_group {
            f.new_for_peers
        } else {
            f.new_for_principal
        };
        if flags.learning {
            return;
        }
        flags.first_of_peers = f.new_for_peers && f.peers >= self.settings.behaviour.min_peers;
        flags.namespace_groups = u32::from(f.namespace_groups);
        // Another group's namespace: no peer worked there, and only a few groups do.
        flags.foreign_namespace = f.foreign_namespace
            && f.peers >= self.settings.behaviour.min_peers
            && f.namespace_groups <= FOREIGN_MAX_GROUPS;
        if f.new_for_principal && f.principals <= RARE_PRINCIPALS && sensitive_action(o.classes) {
            flags.rare_action = true;
            flags.explain.push(format!(
                "{} in {}: new for this principal, done by about {} principal(s) of the cluster in recent weeks",
                o.verb_resource,
                place(o),
                f.principals
            ));
        }
    }

    /// A stored profile of the principal (or its older, un-clustered one), or a new one:
    /// (profile, to be written).
    fn load(&self, principal: &str, cluster_len: usize, time: i64) -> (Profile, bool) {
        let legacy = &principal[cluster_len + 1..];
        let read = |k: &str| {
            self.store
                .get(TREE, k.as_bytes())
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<Profile>(&b).ok())
        };
        if let Some(p) = read(principal) {
            return (p, false);
        }
        if let Some(p) = read(legacy) {
            return (p, true);
        }
        let p = Profile {
            first_seen: time,
            last_seen: time,
            ..Profile::default()
        };
        (p, true)
    }

    /// Sets `rate` and `volume_spike` from the principal's rate model.
    fn rate(&self, m: &RateModel, classes: u8, tz: Option<&str>, flags: &mut BaselineFlags) {
        let b = &self.settings.behaviour;
        let guards = RateGuards {
            min_volume: b.min_volume,
            min_samples: b.min_samples,
        };
        let all = m.score(VerbClass::All);
        flags.quiet_hour = all.samples >= b.min_samples && all.usual < QUIET_USUAL;
        let sensitive = classes & !(VerbClass::All.bit() | VerbClass::Read.bit());
        let Some(r) = m
            .most_unusual(sensitive, guards)
            .filter(|r| r.score >= REPORT_SCORE)
            .or_else(|| m.most_unusual(classes, guards))
            .filter(|r| r.score >= REPORT_SCORE)
        else {
            return;
        };
        let when = match tz {
            Some(z) => format!("{} {z}", rates::bucket_name(r.bucket)),
            None => format!("{} UTC", rates::bucket_name(r.bucket)),
        };
        flags.volume_spike = r.score >= b.spike_score && r.ratio() >= b.spike_ratio;
        if flags.volume_spike {
            flags.explain.push(format!(
                "{:.0}x this principal's usual {} for {when} (usual {:.0} \u{b1} {:.0}, now {})",
                r.ratio(),
                r.class.noun(),
                r.usual,
                r.spread,
                r.now
            ));
        }
        flags.rate = Some(RateFlags {
            class: r.class.name().to_owned(),
            now: r.now,
            usual: r.usual,
            spread: r.spread,
            ratio: r.ratio(),
            score: r.score,
            when,
        });
    }

    /// Sets how many principals share the agent and the network, and explains a new agent.
    fn population(
        &self,
        cluster: u64,
        (agent, new_agent): (Option<u64>, Option<bool>),
        (net, new_net): (Option<u64>, Option<bool>),
        o: &Observation<'_>,
        flags: &mut BaselineFlags,
    ) {
        let h = &self.history;
        if let Some(a) = agent {
            flags.agent_principals =
                u32::from(h.users_of(cluster, pair_tag(AGENT, a), new_agent.unwrap_or(false)));
        }
        if let Some(n) = net {
            flags.network_principals =
                u32::from(h.users_of(cluster, pair_tag(NETWORK, n), new_net.unwrap_or(false)));
        }
        if flags.new_user_agent {
            let family = o.user_agent.map_or("", agent_family);
            flags.explain.push(format!(
                "first use of {family} by this principal; about {} principals of the cluster use it",
                flags.agent_principals
            ));
        }
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

    /// Persists every changed profile and, at most every [`SKETCH_SAVE_INTERVAL`], the
    /// population sketches (whose pages most events touch: saving them costs about 0.1 s of CPU).
    pub fn flush_periodic(&self) {
        let due = {
            let mut last = self.sketch_saved.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= SKETCH_SAVE_INTERVAL);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        self.flush_profiles(due);
    }

    /// Persists every changed profile and the population sketches (at shutdown).
    pub fn flush(&self) {
        self.flush_profiles(true);
    }

    fn flush_profiles(&self, sketches: bool) {
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
        if sketches {
            if let Err(e) = self.history.save(self.store.as_ref()) {
                tracing::error!(error = %e, "cannot persist the population sketches");
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

/// Where an action happened, for explanations.
fn place<'a>(o: &Observation<'a>) -> &'a str {
    if o.namespace.is_empty() {
        "the cluster scope"
    } else {
        o.namespace
    }
}

/// Secret and RBAC actions: what a rare action and a refusal are judged on.
fn sensitive_action(classes: u8) -> bool {
    classes & (VerbClass::Secrets.bit() | VerbClass::Rbac.bit()) != 0
}

/// Records the signals this event raised.
fn record(recent: &mut Recent, o: &Observation<'_>, flags: &BaselineFlags) {
    let t = o.time;
    let raised = [
        (
            flags.new_source_network || flags.new_asn || flags.new_country,
            Signal::NewNetwork,
        ),
        (flags.new_user_agent, Signal::NewAgent),
        (flags.quiet_hour, Signal::QuietHour),
        (flags.volume_spike, Signal::VolumeSpike),
        (flags.first_of_peers, Signal::FirstOfPeers),
        (flags.rare_action, Signal::RareAction),
        (
            o.refused && (sensitive_action(o.classes) || o.classes & VerbClass::Exec.bit() != 0),
            Signal::Refused,
        ),
        (flags.foreign_namespace, Signal::ForeignNamespace),
    ];
    for (on, s) in raised {
        if on {
            recent.record(s, t);
        }
    }
}

/// A value hash tagged with its table, so an agent and a network never share a count.
fn pair_tag(table: usize, value: u64) -> u64 {
    history::pair(table as u64 + 1, value)
}

/// The product part of a user agent (`kubectl/v1.30.1 (darwin/arm64) ...` is `kubectl`), so upgrades are not "new".
pub fn agent_family(ua: &str) -> &str {
    ua.split(['/', ' ']).next().unwrap_or(ua)
}

#[cfg(test)]
mod tests;
