//! Entity risk: every alert adds its score to the actor's and the client address's risk, which halves every half-life; crossing the threshold raises one high-risk alert listing what added up.

use serde::{Deserialize, Serialize};

use super::expiry::{self, Tag};
use super::model::{Alert, AlertKind, Contribution};
use super::{Op, StateError, StateStore};
use crate::model::Severity;

pub const TREE: &str = "risk";
/// Contributions as separate entries, from stores written before they moved into [`RiskEntry`]:
/// the sweeper still removes them as they fall due.
pub const CONTRIBUTIONS: &str = "risk_contributions";
/// How many contributions an entity keeps (the most recent).
const MAX_CONTRIBUTIONS: usize = 10;
/// The pseudo-playbook id of high-risk alerts.
pub const PLAYBOOK: &str = "rampart.high_risk_entity";

/// Risk settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskSettings {
    /// Risk at which one high-risk alert is raised; 0 disables risk alerts.
    pub threshold: f64,
    /// Seconds of event time in which risk halves.
    pub half_life: i64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            threshold: 150.0,
            half_life: 3600,
        }
    }
}

/// One entity's risk as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEntry {
    pub value: f64,
    /// Event time of `value`.
    pub at: i64,
    /// False after a high-risk alert, until the risk has fallen below half the threshold.
    pub armed: bool,
    pub expires: i64,
    /// The most recent contributions (at most `MAX_CONTRIBUTIONS`, oldest first).
    #[serde(default)]
    pub recent: Vec<Contribution>,
    /// Where the expiry index points: rewritten only when `expires` passes it, so that a busy
    /// entity costs one index entry per half-life rather than one per alert.
    #[serde(default)]
    pub indexed: i64,
}

/// `value` at `at`, seen from `now`.
pub fn decayed(value: f64, at: i64, now: i64, half_life: i64) -> f64 {
    let age = (now - at).max(0) as f64;
    value * 0.5f64.powf(age / half_life.max(1) as f64)
}

/// When a risk of `value` has decayed below 1.
fn expires(value: f64, at: i64, half_life: i64) -> i64 {
    let halvings = value.max(1.0).log2().ceil() as i64 + 1;
    at.saturating_add(halvings.saturating_mul(half_life.max(1)))
}

/// Where an entity's risk is stored: an entity is a principal or an address in one cluster.
fn entity_key(cluster: &str, entity: &str) -> String {
    format!("{cluster}\u{1f}{entity}")
}

/// Reads an entity's current risk in `cluster`.
pub fn current(
    store: &dyn StateStore,
    cluster: &str,
    entity: &str,
    now: i64,
    s: RiskSettings,
) -> Result<f64, StateError> {
    Ok(load(store, &entity_key(cluster, entity))?
        .map_or(0.0, |e| decayed(e.value, e.at, now, s.half_life)))
}

fn load(store: &dyn StateStore, entity: &str) -> Result<Option<RiskEntry>, StateError> {
    store
        .get(TREE, entity.as_bytes())?
        .map(|v| {
            serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                tree: TREE.to_owned(),
                message: e.to_string(),
            })
        })
        .transpose()
}

/// Adds `c` to `entity`'s risk in `cluster`; returns the writes, the new risk, and the high-risk alert when it crosses the threshold.
pub fn add(
    store: &dyn StateStore,
    entity: &str,
    c: Contribution,
    cluster: &str,
    s: RiskSettings,
) -> Result<(Vec<Op>, f64, Option<Alert>), StateError> {
    let now = c.at;
    let key = entity_key(cluster, entity);
    let mut e = load(store, &key)?.unwrap_or(RiskEntry {
        value: 0.0,
        at: now,
        armed: true,
        expires: now,
        recent: Vec::new(),
        indexed: 0,
    });
    let before = decayed(e.value, e.at, now, s.half_life);
    if before < s.threshold / 2.0 {
        e.armed = true;
    }
    e.value = before + c.score as f64;
    e.at = now.max(e.at);
    e.expires = expires(e.value, e.at, s.half_life);
    let horizon = now.saturating_sub(8 * s.half_life.max(1));
    e.recent.retain(|r| r.at > horizon);
    e.recent.push(c);
    if e.recent.len() > MAX_CONTRIBUTIONS {
        e.recent.drain(..e.recent.len() - MAX_CONTRIBUTIONS);
    }
    let mut alert = None;
    if s.threshold > 0.0 && e.armed && e.value >= s.threshold {
        e.armed = false;
        alert = Some(high_risk(entity, &e, e.recent.clone(), cluster));
    }
    let mut ops = Vec::with_capacity(2);
    if e.expires > e.indexed {
        e.indexed = e.expires.saturating_add(s.half_life.max(1));
        ops.push(expiry::put(e.indexed, Tag::Risk, key.as_bytes()));
    }
    ops.push(Op::Put(
        TREE,
        key.into_bytes(),
        serde_json::to_vec(&e).unwrap_or_default(),
    ));
    Ok((ops, e.value, alert))
}

/// Whether a due index entry still points at the stored entry.
pub fn is_expired(store: &dyn StateStore, entity: &[u8], at: i64) -> Result<bool, StateError> {
    let e = load(store, &String::from_utf8_lossy(entity))?;
    Ok(e.is_some_and(|e| e.expires <= at))
}

fn high_risk(
    entity: &str,
    e: &RiskEntry,
    contributions: Vec<Contribution>,
    cluster: &str,
) -> Alert {
    let first = contributions.iter().map(|c| c.at).min().unwrap_or(e.at);
    // Named after the alert that crossed the threshold (itself `cluster/audit id/playbook`):
    // unique whichever instance raises it, and the same when a replay raises it again.
    let crossing = contributions.last().map_or("", |c| c.alert.as_str());
    let mut context = serde_json::Map::new();
    context.insert("entity".into(), entity.into());
    context.insert(
        "risk".into(),
        serde_json::json!((e.value * 10.0).round() / 10.0),
    );
    Alert {
        id: format!("risk/{cluster}/{entity}/{crossing}"),
        kind: AlertKind::HighRisk,
        thread: None,
        playbook: PLAYBOOK.to_owned(),
        title: format!(
            "High-risk entity {entity}: risk {:.0} from {} alert(s)",
            e.value,
            contributions.len()
        ),
        severity: Severity::High,
        score: e.value.round() as i64,
        mitre: Vec::new(),
        cluster: cluster.to_owned(),
        dedup: entity.to_owned(),
        count: contributions.len() as u64,
        first_seen: first,
        last_seen: e.at,
        risk: Some(e.value),
        context,
        responses: Vec::new(),
        event: None,
        contributions,
        suppressed: None,
        dry_run: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn c(score: i64, at: i64) -> Contribution {
        Contribution {
            alert: format!("a{at}"),
            playbook: "p".into(),
            title: "t".into(),
            score,
            at,
        }
    }

    #[test]
    fn decays_by_half_every_half_life_and_expires_below_one() {
        assert_eq!(decayed(80.0, 0, 3600, 3600), 40.0);
        assert_eq!(decayed(80.0, 0, 0, 3600), 80.0);
        let at = expires(80.0, 0, 3600);
        assert!(decayed(80.0, 0, at, 3600) < 1.0);
    }

    #[test]
    fn crossing_the_threshold_alerts_once_until_the_risk_has_fallen() {
        let s = MemoryStore::default();
        let set = RiskSettings::default();
        let add_at = |score, at| {
            let (ops, v, a) = add(&s, "mallory", c(score, at), "prod", set).unwrap();
            s.apply(&ops).unwrap();
            (v, a)
        };
        assert!(add_at(70, 0).1.is_none());
        let (v, a) = add_at(90, 60);
        let a = a.expect("70 + 90 crosses 150");
        assert!(v > 150.0 && a.contributions.len() == 2, "{a:?}");
        assert!(
            add_at(90, 120).1.is_none(),
            "one alert, not one per contribution"
        );
        // Six hours later the risk has decayed below 75: re-armed, and a new burst alerts again.
        assert!(add_at(90, 6 * 3600).1.is_none());
        assert!(add_at(90, 6 * 3600 + 1).1.is_some());
    }
}
