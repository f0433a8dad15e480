//! Triage: what on-call says of an alert (its outcome: true positive, benign or false positive) and what it chooses not to be told again (suppressions with an author, a reason and an expiry).
//!
//! Both live in the state store beside the alerts: outcomes in [`OUTCOMES`], keyed by the alert
//! they judge and forgotten with it; suppressions in [`SUPPRESSIONS`], kept in memory too so that
//! the state stage can ask, for every alert it raises, whether a suppression silences it
//! ([`crate::state::Silencer`]). Marking and suppressing are the same calls from the command line,
//! the HTTP API, the web console and Slack's buttons.

pub mod access;
pub mod api;
pub mod cli;
pub mod tune;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::enrich::Cidr;
use crate::state::expiry::{self, Tag};
use crate::state::model::{wall_ms, Alert};
use crate::state::outbox::ALERTS;
use crate::state::{Op, StateError, StateStore};

pub use crate::state::outbox::OUTCOMES;
/// Suppressions by id.
pub const SUPPRESSIONS: &str = "suppressions";
/// How long a suppression that expired or was revoked is still listed (milliseconds).
const KEEP_ENDED_MS: u64 = 30 * 86_400_000;

/// What a human found an alert to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A real attack or a policy breach that needed the alert.
    TruePositive,
    /// What the playbook looks for happened, and it was expected (a sanctioned break-glass).
    Benign,
    /// The playbook fired on something it should not have: tune it.
    FalsePositive,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [
        Verdict::TruePositive,
        Verdict::Benign,
        Verdict::FalsePositive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true_positive",
            Verdict::Benign => "benign",
            Verdict::FalsePositive => "false_positive",
        }
    }
    /// A verdict from its name, or its short forms `tp`, `fp`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "true_positive" | "tp" => Some(Verdict::TruePositive),
            "benign" => Some(Verdict::Benign),
            "false_positive" | "fp" => Some(Verdict::FalsePositive),
            _ => None,
        }
    }
    /// How on-call reads it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true positive",
            Verdict::Benign => "benign",
            Verdict::FalsePositive => "false positive",
        }
    }
}

/// One alert's outcome: who judged it, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The alert judged (the first alert of its thread).
    pub alert: String,
    pub playbook: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Who marked it, as the place they marked it from names them (console user, Slack user, `$USER`).
    pub by: String,
    pub at_ms: u64,
}

/// What a suppression silences, besides its playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// One dedup group of one playbook in one cluster: "snooze this".
    Group { cluster: String, dedup: String },
    /// Everything one principal (user or service account) does.
    Principal { name: String },
    /// Everything aimed at one namespace.
    Namespace { name: String },
    /// Everything from a source network (an address or a CIDR).
    Network { cidr: String },
}

impl Scope {
    /// "principal alice@example.com"
    pub fn describe(&self) -> String {
        match self {
            Scope::Group { cluster, dedup } => format!("group {dedup:?} in {cluster}"),
            Scope::Principal { name } => format!("principal {name}"),
            Scope::Namespace { name } => format!("namespace {name}"),
            Scope::Network { cidr } => format!("network {cidr}"),
        }
    }

    fn matches(&self, a: &Alert) -> bool {
        let ev = a.event();
        match self {
            Scope::Group { cluster, dedup } => a.cluster == *cluster && a.dedup == *dedup,
            Scope::Principal { name } => {
                ev.user.username == *name
                    || ev
                        .impersonated_user
                        .as_ref()
                        .is_some_and(|u| u.username == *name)
            }
            Scope::Namespace { name } => ev
                .object_ref
                .as_ref()
                .and_then(|o| o.namespace.as_deref())
                .is_some_and(|ns| ns == name),
            Scope::Network { cidr } => Cidr::parse(cidr).is_ok_and(|c| {
                ev.source_ips
                    .iter()
                    .filter_map(|ip| ip.parse().ok())
                    .any(|ip| c.contains(ip))
            }),
        }
    }
}

/// A standing decision not to be alerted: by whom, why, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub id: String,
    /// The playbook it silences; every playbook when absent (only for a principal, namespace or network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(flatten)]
    pub scope: Scope,
    pub author: String,
    pub reason: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// Who revoked it before it expired, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

impl Suppression {
    /// In force at `now_ms`: not revoked, not expired.
    pub fn active(&self, now_ms: u64) -> bool {
        self.revoked_ms.is_none() && now_ms < self.expires_ms
    }
    /// "active", "expired" or "revoked".
    pub fn state(&self, now_ms: u64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if now_ms >= self.expires_ms {
            "expired"
        } else {
            "active"
        }
    }
    /// True when it silences `a` at `now_ms`.
    pub fn silences(&self, a: &Alert, now_ms: u64) -> bool {
        self.active(now_ms)
            && self.playbook.as_deref().is_none_or(|p| p == a.playbook)
            && self.scope.matches(a)
    }
}

/// What a person asks to suppress.
#[derive(Debug, Clone, Deserialize)]
pub struct NewSuppression {
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(flatten)]
    pub scope: Scope,
    pub reason: String,
    /// How long it lasts, in seconds.
    pub for_secs: u64,
}

/// Errors of marking and suppressing.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("no alert {0:?} (see `rampart alerts`)")]
    NoAlert(String),
    #[error("no suppression {0:?} (see `rampart suppressions`)")]
    NoSuppression(String),
    #[error("suppression {0} has already ended")]
    Ended(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What triage has just changed, for those who act on it ([`Observer`]).
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// `alert` (the first of its thread) was marked.
    Marked {
        alert: &'a Alert,
        outcome: &'a Outcome,
    },
    /// A suppression was created; `alerts` are the retained first alerts it silences now.
    Suppressed {
        suppression: &'a Suppression,
        alerts: &'a [Alert],
    },
}

/// Acts on triage's changes durably (the responders: PagerDuty resolves what was paged). The
/// writes it returns are made in the same batch as the change, before it; triage names no responder.
pub trait Observer: Send + Sync {
    /// The writes that go with `change` (e.g. deliveries queued in the outbox).
    fn writes(&self, change: &Change<'_>) -> Result<Vec<Op>, StateError>;
    /// The change and its writes are durable (e.g. wake the dispatcher).
    fn committed(&self) {}
}

/// The registered observers.
#[derive(Default)]
struct Observers(std::sync::RwLock<Vec<Arc<dyn Observer>>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} observer(s)", self.list().len())
    }
}

impl Observers {
    fn list(&self) -> Vec<Arc<dyn Observer>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Outcomes and suppressions over one store.
#[derive(Debug)]
pub struct Triage {
    store: Arc<dyn StateStore>,
    /// How long (seconds) alerts are kept, and with them their outcomes.
    retention: i64,
    /// The suppressions still listed, for the stage's check on every alert.
    live: ArcSwap<Vec<Suppression>>,
    /// Serialises writers (read, then write).
    write: std::sync::Mutex<()>,
    observers: Observers,
}

fn corrupt(tree: &str, e: &serde_json::Error) -> StateError {
    StateError::Corrupt {
        tree: tree.to_owned(),
        message: e.to_string(),
    }
}

impl Triage {
    /// Over `store`, whose alerts are kept `retention` seconds.
    pub fn open(store: Arc<dyn StateStore>, retention: i64) -> Result<Self, StateError> {
        let t = Self {
            store,
            retention,
            live: ArcSwap::from_pointee(Vec::new()),
            write: std::sync::Mutex::new(()),
            observers: Observers::default(),
        };
        t.reload()?;
        Ok(t)
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Registers `o`: every later mark and suppression asks it for writes to make with the change.
    pub fn observe(&self, o: Arc<dyn Observer>) {
        self.observers
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(o);
    }

    /// The observers' writes for `change`.
    fn observed(&self, change: &Change<'_>) -> Result<Vec<Op>, StateError> {
        let mut ops = Vec::new();
        for o in self.observers.list() {
            ops.extend(o.writes(change)?);
        }
        Ok(ops)
    }

    /// Tells the observers that a change and their writes are durable.
    fn committed(&self) {
        self.observers.list().iter().for_each(|o| o.committed());
    }

    /// The retained first alerts that `s` silences now (for its observers).
    fn silenced_alerts(&self, s: &Suppression) -> Result<Vec<Alert>, StateError> {
        let now = wall_ms();
        let mut out = Vec::new();
        for (_, v) in self.store.scan(ALERTS)? {
            let a: Alert = serde_json::from_slice(&v).map_err(|e| corrupt(ALERTS, &e))?;
            if a.thread.is_none() && s.silences(&a, now) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Reads the suppressions again, dropping those ended long enough ago.
    fn reload(&self) -> Result<(), StateError> {
        let now = wall_ms();
        let mut keep = Vec::new();
        for (k, v) in self.store.scan(SUPPRESSIONS)? {
            let s: Suppression =
                serde_json::from_slice(&v).map_err(|e| corrupt(SUPPRESSIONS, &e))?;
            let ended = s.revoked_ms.unwrap_or(s.expires_ms).min(s.expires_ms);
            if !s.active(now) && now.saturating_sub(ended) > KEEP_ENDED_MS {
                self.store.delete(SUPPRESSIONS, &k)?;
            } else {
                keep.push(s);
            }
        }
        keep.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        self.live.store(Arc::new(keep));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The alert `id` names, followed to the first alert of its thread.
    pub fn alert(&self, id: &str) -> Result<Alert, TriageError> {
        let load = |id: &str| -> Result<Option<Alert>, TriageError> {
            Ok(self
                .store
                .get(ALERTS, id.as_bytes())?
                .map(|v| serde_json::from_slice::<Alert>(&v).map_err(|e| corrupt(ALERTS, &e)))
                .transpose()?)
        };
        let a = load(id)?.ok_or_else(|| TriageError::NoAlert(id.to_owned()))?;
        match a.thread.as_deref() {
            Some(root) if root != a.id => Ok(load(root)?.unwrap_or(a)),
            _ => Ok(a),
        }
    }

    /// Records what `by` found the alert `id` to be; a later mark replaces an earlier one.
    pub fn mark(
        &self,
        id: &str,
        verdict: Verdict,
        note: &str,
        by: &str,
    ) -> Result<Outcome, TriageError> {
        let a = self.alert(id)?;
        let o = Outcome {
            alert: a.id.clone(),
            playbook: a.playbook.clone(),
            verdict,
            note: note.trim().to_owned(),
            by: by.to_owned(),
            at_ms: wall_ms(),
        };
        let v = serde_json::to_vec(&o).map_err(|e| corrupt(OUTCOMES, &e))?;
        let mut ops = self.observed(&Change::Marked {
            alert: &a,
            outcome: &o,
        })?;
        let _g = self.lock();
        let before = self.outcome(&a.id)?;
        // Forgotten with the alert: the same retention, counted from the alert's first sighting.
        // The observers' writes go first: a crash in between leaves the mark to be made again.
        ops.push(Op::Put(OUTCOMES, a.id.as_bytes().to_vec(), v));
        ops.push(expiry::put(
            a.first_seen.saturating_add(self.retention),
            Tag::Outcome,
            a.id.as_bytes(),
        ));
        self.store.apply(&ops)?;
        self.store.flush()?;
        self.committed();
        crate::internal_events::AlertMarked {
            playbook: &o.playbook,
            verdict: o.verdict.as_str(),
            replaced: before.map(|b| b.verdict.as_str()),
        }
        .emit();
        Ok(o)
    }

    /// The outcome recorded for alert `id` (the first of its thread).
    pub fn outcome(&self, id: &str) -> Result<Option<Outcome>, StateError> {
        self.store
            .get(OUTCOMES, id.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(OUTCOMES, &e)))
            .transpose()
    }

    /// Every outcome recorded, by alert id.
    pub fn outcomes(&self) -> Result<std::collections::HashMap<String, Outcome>, StateError> {
        self.store
            .scan(OUTCOMES)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice::<Outcome>(&v)
                    .map(|o| (o.alert.clone(), o))
                    .map_err(|e| corrupt(OUTCOMES, &e))
            })
            .collect()
    }

    /// Creates a suppression by `author`.
    pub fn suppress(&self, n: NewSuppression, author: &str) -> Result<Suppression, TriageError> {
        validate(&n)?;
        let now = wall_ms();
        let _g = self.lock();
        let id = format!(
            "s-{:08x}",
            crate::state::stable_hash([
                now.to_be_bytes().as_slice(),
                author.as_bytes(),
                serde_json::to_string(&n.scope)
                    .unwrap_or_default()
                    .as_bytes(),
            ]) as u32
        );
        let s = Suppression {
            id,
            playbook: n.playbook.filter(|p| !p.is_empty()),
            scope: n.scope,
            author: author.to_owned(),
            reason: n.reason.trim().to_owned(),
            created_ms: now,
            expires_ms: now.saturating_add(n.for_secs.saturating_mul(1000)),
            revoked_by: None,
            revoked_ms: None,
        };
        let ops = if self.observers.list().is_empty() {
            Vec::new()
        } else {
            let alerts = self.silenced_alerts(&s)?;
            self.observed(&Change::Suppressed {
                suppression: &s,
                alerts: &alerts,
            })?
        };
        self.write_suppression(&s, ops)?;
        self.committed();
        crate::internal_events::SuppressionChanged {
            playbook: s.playbook.as_deref().unwrap_or("*"),
            change: "created",
        }
        .emit();
        Ok(s)
    }

    /// Ends a suppression before its expiry.
    pub fn revoke(&self, id: &str, by: &str) -> Result<Suppression, TriageError> {
        let _g = self.lock();
        let mut s = self
            .live
            .load()
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| TriageError::NoSuppression(id.to_owned()))?;
        let now = wall_ms();
        if !s.active(now) {
            return Err(TriageError::Ended(id.to_owned()));
        }
        s.revoked_by = Some(by.to_owned());
        s.revoked_ms = Some(now);
        self.write_suppression(&s, Vec::new())?;
        crate::internal_events::SuppressionChanged {
            playbook: s.playbook.as_deref().unwrap_or("*"),
            change: "revoked",
        }
        .emit();
        Ok(s)
    }

    /// Writes `s` after `first` (the observers' writes), durably.
    fn write_suppression(&self, s: &Suppression, mut first: Vec<Op>) -> Result<(), TriageError> {
        let v = serde_json::to_vec(s).map_err(|e| corrupt(SUPPRESSIONS, &e))?;
        first.push(Op::Put(SUPPRESSIONS, s.id.as_bytes().to_vec(), v));
        self.store.apply(&first)?;
        self.store.flush()?;
        self.reload()?;
        Ok(())
    }

    /// Every suppression still listed (active, or ended within the last 30 days), newest first.
    pub fn suppressions(&self) -> Arc<Vec<Suppression>> {
        self.live.load_full()
    }

    /// The active suppression that silences `a` now, if any.
    pub fn silencing(&self, a: &Alert) -> Option<String> {
        let now = wall_ms();
        self.live
            .load()
            .iter()
            .find(|s| s.silences(a, now))
            .map(|s| s.id.clone())
    }
}

impl crate::state::Silencer for Triage {
    fn silenced_by(&self, a: &Alert) -> Option<String> {
        let id = self.silencing(a)?;
        crate::internal_events::AlertSuppressed {
            playbook: &a.playbook,
        }
        .emit();
        Some(id)
    }
}

fn validate(n: &NewSuppression) -> Result<(), TriageError> {
    let bad = |m: String| Err(TriageError::Invalid(m));
    if n.reason.trim().is_empty() {
        return bad("a suppression needs a reason".into());
    }
    if n.for_secs == 0 {
        return bad("a suppression needs a duration (e.g. 24h, 7d)".into());
    }
    if n.for_secs > 90 * 86_400 {
        return bad("a suppression lasts at most 90 days: renew it if it is still needed".into());
    }
    let empty = |s: &str| s.trim().is_empty();
    match &n.scope {
        Scope::Group { cluster, dedup }
            if n.playbook.as_deref().is_none_or(empty) || empty(cluster) || empty(dedup) =>
        {
            return bad("a group snooze needs the playbook, the cluster and the dedup key".into());
        }
        Scope::Principal { name } | Scope::Namespace { name } if empty(name) => {
            return bad("a principal or namespace suppression needs a name".into());
        }
        Scope::Network { cidr } => {
            if let Err(e) = Cidr::parse(cidr) {
                return bad(format!("network: {e}"));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
