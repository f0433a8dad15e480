//! The state stage: turns verdicts into alerts — thresholds, dedup windows with updates and follow-ups, entity risk — and writes them to the outbox before the event is acknowledged.
//!
//! Time is stream time: the latest event time seen, advancing with the
//! (tokio) clock while the stream is idle, so replaying last week's log
//! keeps last week's windows and an idle stream still closes them.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::expiry::{self, Tag};
use super::model::{wall_ms, Alert, AlertKind, Contribution, Delivery};
use super::outbox::{Outbox, ALERTS};
use super::risk::{self, RiskSettings};
use super::summary::EventSummary;
use super::{Op, ResponseTargets, Silencer, StateError, StateStore};
use crate::event::AuditEvent;
use crate::model::Verdict;

mod sweep;
pub use sweep::spawn_sweeper;

const DEDUP: &str = "dedup";
const GATE: &str = "gate";
const SEEN: &str = "seen";
const META: &str = "meta";
/// What responders remember per alert (message ids, thread roots), each under keys that begin
/// with its own name; kept for the retention.
pub const RESPONDER_MEMORY: &str = "responder_memory";
/// Most hits one threshold key keeps.
const MAX_HITS: usize = 10_000;

/// How the stage groups, remembers and forgets.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// Dedup window (seconds) for playbooks that do not set one.
    pub dedup_window: i64,
    /// Least event time (seconds) between two count updates of one alert.
    pub update_interval: i64,
    /// How long (seconds) a handled event is remembered, so that a replay of it is recognised.
    pub replay_memory: i64,
    /// How long (seconds) alerts and journal entries are kept.
    pub retention: i64,
    pub risk: RiskSettings,
    /// The responders every alert, update and follow-up goes to.
    pub sinks: Vec<String>,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            dedup_window: 3600,
            update_interval: 60,
            replay_memory: 86_400,
            retention: 30 * 86_400,
            risk: RiskSettings::default(),
            sinks: Vec::new(),
        }
    }
}

/// One dedup window.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DedupEntry {
    alert: String,
    count: u64,
    first: i64,
    last: i64,
    last_update: i64,
    /// The window closes (and the entry expires) here.
    expires: i64,
}

/// One threshold's recent hits: (event time, value hash).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GateEntry {
    hits: Vec<(i64, u64)>,
    expires: i64,
}

/// What the stage did with one verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub alerts: u64,
    pub suppressed: u64,
    pub below_threshold: u64,
    pub replayed: u64,
    pub high_risk: u64,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, o: Self) {
        self.alerts += o.alerts;
        self.suppressed += o.suppressed;
        self.below_threshold += o.below_threshold;
        self.replayed += o.replayed;
        self.high_risk += o.high_risk;
    }
}

struct Clock {
    watermark: Option<i64>,
    at: tokio::time::Instant,
}

impl Clock {
    fn now(&self) -> Option<i64> {
        let idle = i64::try_from(self.at.elapsed().as_secs()).unwrap_or(i64::MAX);
        self.watermark.map(|w| w.saturating_add(idle))
    }
}

/// The state stage over one store.
pub struct StateStage {
    store: Arc<dyn StateStore>,
    outbox: Arc<Outbox>,
    settings: StateSettings,
    clock: Mutex<Clock>,
    /// Serialises read-modify-write of windows between the pipeline and the sweeper.
    lock: Mutex<bool>,
    /// How responses find their targets in the event.
    targets: Option<Arc<dyn ResponseTargets>>,
    silencer: Option<Arc<dyn Silencer>>,
}

impl std::fmt::Debug for StateStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStage")
            .field("settings", &self.settings)
            .finish()
    }
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\u{1f}").into_bytes()
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn load<T: serde::de::DeserializeOwned>(
    store: &dyn StateStore,
    tree: &str,
    k: &[u8],
) -> Result<Option<T>, StateError> {
    store
        .get(tree, k)?
        .map(|v| {
            serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                tree: tree.to_owned(),
                message: e.to_string(),
            })
        })
        .transpose()
}

impl StateStage {
    pub fn open(store: Arc<dyn StateStore>, settings: StateSettings) -> Result<Self, StateError> {
        let watermark = store
            .get(META, b"watermark")?
            .and_then(|v| v.try_into().ok())
            .map(i64::from_be_bytes);
        let outbox = Arc::new(Outbox::open(store.clone())?);
        Ok(Self {
            store,
            outbox,
            settings,
            clock: Mutex::new(Clock {
                watermark,
                at: tokio::time::Instant::now(),
            }),
            lock: Mutex::new(false),
            targets: None,
            silencer: None,
        })
    }

    /// Alerts that `silencer` silences are stored and counted but go to no responder.
    #[must_use]
    pub fn with_silencer(mut self, silencer: Arc<dyn Silencer>) -> Self {
        self.silencer = Some(silencer);
        self
    }

    fn silenced(&self, a: &Alert) -> Option<String> {
        self.silencer.as_ref()?.silenced_by(a)
    }

    /// Responses will carry what `targets` finds for them in the event that raised the alert.
    #[must_use]
    pub fn with_targets(mut self, targets: Arc<dyn ResponseTargets>) -> Self {
        self.targets = Some(targets);
        self
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub fn settings(&self) -> &StateSettings {
        &self.settings
    }

    /// Stream time: `None` until the first event.
    pub fn now(&self) -> Option<i64> {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).now()
    }

    fn observe(&self, t: i64) {
        let mut c = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        if c.now().is_none_or(|now| t > now) {
            c.watermark = Some(t);
            c.at = tokio::time::Instant::now();
        }
    }

    /// Judges every verdict of `ev`; the writes are durable after [`StateStage::commit`].
    pub fn process(&self, ev: &AuditEvent) -> Result<Outcome, StateError> {
        let mut out = Outcome::default();
        if ev.verdicts.is_empty() {
            return Ok(out);
        }
        let t = ev.event_time();
        self.observe(t);
        let mut dirty = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        *dirty = true;
        for v in &ev.verdicts {
            out += self.verdict(ev, v, t)?;
        }
        Ok(out)
    }

    fn verdict(&self, ev: &AuditEvent, v: &Verdict, t: i64) -> Result<Outcome, StateError> {
        let s = &*self.store;
        let cluster = ev.provenance.cluster.as_str();
        let seen_key = key(&[cluster, &ev.audit_id, &v.playbook]);
        let mut out = Outcome::default();
        let id = format!("{cluster}/{}/{}", ev.audit_id, v.playbook);
        if !ev.audit_id.is_empty()
            && (s.get(SEEN, &seen_key)?.is_some() || s.get(ALERTS, id.as_bytes())?.is_some())
        {
            out.replayed = 1;
            return Ok(out);
        }
        let group = key(&[&v.playbook, cluster, &v.dedup]);
        let mut ops = Vec::new();
        if let Some(th) = &v.gating.threshold {
            let mut g: GateEntry = load(s, GATE, &group)?.unwrap_or_default();
            g.hits.retain(|(at, _)| *at > t - th.window);
            let value = v.gating.value.as_deref().unwrap_or("");
            g.hits.push((t, super::stable_hash([value.as_bytes()])));
            if g.hits.len() > MAX_HITS {
                g.hits.remove(0);
            }
            let n = if th.distinct.is_some() {
                let mut vals: Vec<u64> = g.hits.iter().map(|h| h.1).collect();
                vals.sort_unstable();
                vals.dedup();
                vals.len()
            } else {
                g.hits.len()
            } as u64;
            g.expires = g.expires.max(t + th.window);
            ops.push(Op::Put(GATE, group.clone(), json(&g)));
            ops.push(expiry::put(g.expires, Tag::Gate, &group));
            if n < th.at_least {
                out.below_threshold = 1;
            }
        }
        if out.below_threshold == 0 {
            match load::<DedupEntry>(s, DEDUP, &group)? {
                Some(d) if t < d.expires => {
                    out.suppressed = 1;
                    self.suppress(d, &group, t, &mut ops)?;
                }
                expired => {
                    if let Some(d) = expired {
                        // The window closed before the sweeper saw it: summarise it first.
                        self.close(&d, &mut ops)?;
                    }
                    out.alerts = 1;
                    out.high_risk = self.raise(ev, v, id, t, &group, &mut ops)?;
                }
            }
        }
        let forget = t + self.settings.replay_memory;
        // An event that raised an alert is remembered by the alert itself (kept longer).
        let remembered = out.alerts == 1 && self.settings.retention >= self.settings.replay_memory;
        if !remembered {
            ops.push(Op::Put(
                SEEN,
                seen_key.clone(),
                forget.to_be_bytes().to_vec(),
            ));
            ops.push(expiry::put(forget, Tag::Seen, &seen_key));
        }
        s.apply(&ops)?;
        Ok(out)
    }

    /// A new alert: stored, queued for every sink and requested response, added to risk.
    fn raise(
        &self,
        ev: &AuditEvent,
        v: &Verdict,
        id: String,
        t: i64,
        group: &[u8],
        ops: &mut Vec<Op>,
    ) -> Result<u64, StateError> {
        let cluster = &ev.provenance.cluster;
        let window = v.gating.window.unwrap_or(self.settings.dedup_window);
        let mut alert = Alert {
            id: id.clone(),
            kind: AlertKind::Alert,
            thread: None,
            playbook: v.playbook.clone(),
            title: v.title.clone(),
            severity: v.severity,
            score: v.score,
            mitre: v.mitre.clone(),
            cluster: cluster.clone(),
            dedup: v.dedup.clone(),
            count: 1,
            first_seen: t,
            last_seen: t,
            risk: None,
            context: v.context.clone(),
            responses: v.responses.clone(),
            event: Some(Box::new(EventSummary::of(ev))),
            contributions: Vec::new(),
            suppressed: None,
            dry_run: v.gating.dry_run,
        };
        let mut high = Vec::new();
        // A suppressed alert is kept (and counted) but reaches no responder and adds to no risk.
        alert.suppressed = self.silenced(&alert);
        let silent = alert.suppressed.is_some();
        // A playbook on trial (dry-run) adds to no one's risk.
        let entities = std::iter::once(ev.user.username.as_str())
            .chain(ev.source_ips.first().map(String::as_str))
            .filter(|e| !e.is_empty() && !v.gating.dry_run && !silent);
        for (i, entity) in entities.enumerate() {
            let c = Contribution {
                alert: id.clone(),
                playbook: v.playbook.clone(),
                title: v.title.clone(),
                score: v.score,
                at: t,
            };
            let (mut w, value, a) =
                risk::add(&*self.store, entity, c, cluster, self.settings.risk)?;
            if i == 0 {
                alert.risk = Some(value);
            }
            high.extend(a);
            ops.append(&mut w);
        }
        for (i, r) in v.responses.iter().enumerate() {
            if silent || self.settings.sinks.contains(&r.kind) {
                // An alert sink already gets this alert; it reads the request (e.g. a
                // channel) from `alert.responses` instead of delivering twice.
                continue;
            }
            let mut d = self.delivery(&alert, &r.kind, &format!("{}.{i}", r.kind));
            d.response = Some(r.clone());
            d.target = self.targets.as_ref().and_then(|t| t.target(&r.kind, ev));
            ops.push(self.outbox.enqueue(&d));
        }
        if !silent {
            self.to_sinks(&alert, ops);
        }
        for a in &mut high {
            // Snoozed from its own card (its entity's group): kept, sent to no one.
            a.suppressed = self.silenced(a);
            if a.suppressed.is_none() {
                self.to_sinks(a, ops);
            }
            ops.push(Op::Put(ALERTS, a.id.clone().into_bytes(), json(a)));
            ops.push(expiry::put(
                t + self.settings.retention,
                Tag::Alert,
                a.id.as_bytes(),
            ));
        }
        ops.push(Op::Put(ALERTS, id.clone().into_bytes(), json(&alert)));
        ops.push(expiry::put(
            t + self.settings.retention,
            Tag::Alert,
            id.as_bytes(),
        ));
        let d = DedupEntry {
            alert: id,
            count: 1,
            first: t,
            last: t,
            last_update: t,
            expires: t + window,
        };
        ops.push(Op::Put(DEDUP, group.to_vec(), json(&d)));
        ops.push(expiry::put(d.expires, Tag::Dedup, group));
        Ok(high.len() as u64)
    }

    /// A later match in an open window: the window's count grows (the stored alert is
    /// rewritten only with an update, at most every `update_interval`, and when the window closes).
    fn suppress(
        &self,
        mut d: DedupEntry,
        group: &[u8],
        t: i64,
        ops: &mut Vec<Op>,
    ) -> Result<(), StateError> {
        d.count += 1;
        d.last = d.last.max(t);
        if t - d.last_update >= self.settings.update_interval
            && self.announce(&d, AlertKind::Update, ops)?
        {
            d.last_update = t;
        }
        ops.push(Op::Put(DEDUP, group.to_vec(), json(&d)));
        Ok(())
    }

    /// A window closes: its final count on the alert, and a follow-up summary when matches were
    /// suppressed. The caller removes the window (sweep) or replaces it (a new alert).
    fn close(&self, d: &DedupEntry, ops: &mut Vec<Op>) -> Result<(), StateError> {
        if d.count > 1 {
            self.announce(d, AlertKind::FollowUp, ops)?;
        }
        Ok(())
    }

    /// Writes the window's count onto its alert and sends an update or follow-up threaded under
    /// it; false when the alert has already expired.
    fn announce(
        &self,
        d: &DedupEntry,
        kind: AlertKind,
        ops: &mut Vec<Op>,
    ) -> Result<bool, StateError> {
        let Some(mut a) = load::<Alert>(&*self.store, ALERTS, d.alert.as_bytes())? else {
            return Ok(false);
        };
        a.count = d.count;
        a.last_seen = d.last;
        ops.push(Op::Put(ALERTS, a.id.clone().into_bytes(), json(&a)));
        // Silenced when it was raised, or snoozed since: the count grows, no one is told.
        if a.suppressed.is_some() || self.silenced(&a).is_some() {
            return Ok(true);
        }
        let mut n = a.clone();
        n.kind = kind;
        n.thread = Some(a.id.clone());
        n.responses.clear();
        if kind == AlertKind::Update {
            n.id = format!("{}/update/{}", a.id, d.count);
        } else {
            n.id = format!("{}/follow_up", a.id);
            n.title = format!("{} — {}", a.title, a.summary());
        }
        self.to_sinks(&n, ops);
        Ok(true)
    }

    fn delivery(&self, a: &Alert, responder: &str, action: &str) -> Delivery {
        Delivery {
            id: format!("{}/{action}", a.id),
            responder: responder.to_owned(),
            alert: a.clone(),
            response: None,
            enqueued_ms: wall_ms(),
            attempts: 0,
            not_before_ms: 0,
            target: None,
            approved: None,
        }
    }

    fn to_sinks(&self, a: &Alert, ops: &mut Vec<Op>) {
        for sink in &self.settings.sinks {
            ops.push(self.outbox.enqueue(&self.delivery(a, sink, sink)));
        }
    }

    /// Makes every write so far durable; only then may the events be acknowledged.
    pub fn commit(&self) -> Result<(), StateError> {
        let mut dirty = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*dirty {
            return Ok(());
        }
        if let Some(now) = self.now() {
            self.store.put(META, b"watermark", &now.to_be_bytes())?;
        }
        self.store.flush()?;
        *dirty = false;
        drop(dirty);
        self.outbox.wake();
        Ok(())
    }

    /// False while the store cannot make writes durable (a write or flush failed and a flush now
    /// still fails): callers then leave it alone instead of reading and writing into the failure —
    /// sled, after an I/O error, can spin on reads of what it could not write.
    pub fn store_usable(&self) -> bool {
        self.store.failure().is_none() || self.store.flush().is_ok()
    }

    /// Live dedup windows.
    pub fn open_windows(&self) -> Result<usize, StateError> {
        self.store.len(DEDUP)
    }

    /// Every retained alert, newest first, with the counts of windows still open.
    pub fn alerts(&self) -> Result<Vec<Alert>, StateError> {
        alerts_with_live_counts(&*self.store, &self.outbox)
    }
}

/// The outbox's alerts with the count and last sighting of each still-open window folded in.
pub fn alerts_with_live_counts(
    store: &dyn StateStore,
    outbox: &Outbox,
) -> Result<Vec<Alert>, StateError> {
    let mut alerts = outbox.alerts()?;
    let mut live = std::collections::HashMap::new();
    for (_, v) in store.scan(DEDUP)? {
        if let Ok(d) = serde_json::from_slice::<DedupEntry>(&v) {
            live.insert(d.alert.clone(), (d.count, d.last));
        }
    }
    for a in &mut alerts {
        if let Some((count, last)) = live.get(&a.id) {
            a.count = a.count.max(*count);
            a.last_seen = a.last_seen.max(*last);
        }
    }
    Ok(alerts)
}

impl StateStage {
    /// An entity's current risk in `cluster`, in stream time.
    pub fn risk(&self, cluster: &str, entity: &str) -> Result<f64, StateError> {
        let now = self.now().unwrap_or(0);
        risk::current(&*self.store, cluster, entity, now, self.settings.risk)
    }
}
