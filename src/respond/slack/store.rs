//! Slack's part of the responders' memory (keys `slack/<alert id>`): which Slack messages each alert became (channel, id, ts), the posts under way, its responses and their decisions — so repeats do not post twice and threads and edits survive restarts; and `slack_channels`, the channel ids learned from Slack's answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::playbook::ResponseRequest;
use crate::state::expiry::{self, Tag};
use crate::state::model::wall_ms;
use crate::state::{Op, StateError, StateStore};

/// The tree, shared by the responders; Slack's keys are `slack/<alert id>`.
pub const TREE: &str = crate::state::stage::RESPONDER_MEMORY;

fn key(alert_id: &str) -> Vec<u8> {
    format!("slack/{alert_id}").into_bytes()
}

/// Where builds before the shared responder memory kept the records, keyed by bare alert id.
const LEGACY_TREE: &str = "slack_messages";

/// Moves records an older build kept in [`LEGACY_TREE`] into the shared tree, each with its own
/// expiry from now, so that alerts posted before an upgrade keep their threads and edits.
/// Returns how many moved; a store without the old tree moves nothing.
pub fn migrate_legacy(store: &dyn StateStore, retention: i64) -> Result<usize, StateError> {
    let old = store.scan(LEGACY_TREE)?;
    if old.is_empty() {
        return Ok(0);
    }
    let until = i64::try_from(wall_ms() / 1000)
        .unwrap_or(0)
        .saturating_add(retention);
    let mut ops = Vec::with_capacity(old.len() * 3);
    for (k, v) in &old {
        let new = key(&String::from_utf8_lossy(k));
        ops.push(expiry::put(until, Tag::ResponderMemory, &new));
        ops.push(Op::Put(TREE, new, v.clone()));
        ops.push(Op::Delete(LEGACY_TREE, k.clone()));
    }
    store.apply(&ops)?;
    store.flush()?;
    Ok(old.len())
}
/// Channel name (as routed) → channel id, as Slack answered posts; bounded by the channels used.
pub const CHANNELS: &str = "slack_channels";

/// One posted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The channel as routed (`#sec-alerts`), or `webhook`.
    pub channel: String,
    /// The channel id and message timestamp Slack gave it (bot mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

/// A post under way, recorded (durably) before the call: after a crash or a timeout, a repeat
/// looks for the message in the channel before posting again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sending {
    /// The channel as the post names it (`#sec-alerts`, or an id for thread replies).
    pub channel: String,
    /// The channel's id when known (thread replies name it; Slack's earlier answers taught it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The thread the message goes into, when it is a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    /// Wall-clock milliseconds when the post was first sent.
    pub at_ms: u64,
}

/// What one alert became in Slack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The delivery that posted it.
    pub delivery: String,
    pub posts: Vec<Post>,
    /// The alert's requested responses (updates carry none; their edits show these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseRequest>,
    /// Decided approvals: delivery id → the status line shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decisions: BTreeMap<String, String>,
    /// What on-call did from the triage buttons: `mark` / `snooze` → the line shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triage: BTreeMap<String, String>,
    /// Wall-clock milliseconds of the first post.
    pub at_ms: u64,
    /// Posts sent whose answer is not recorded yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sending: Vec<Sending>,
}

impl Record {
    pub fn post(&self, channel: &str) -> Option<&Post> {
        self.posts.iter().find(|p| p.channel == channel)
    }
    pub fn sending(&self, channel: &str) -> Option<&Sending> {
        self.sending.iter().find(|s| s.channel == channel)
    }
}

/// Reads and writes records; writes are serialised and flushed.
#[derive(Debug)]
pub struct Messages {
    store: Arc<dyn StateStore>,
    lock: Mutex<()>,
    /// Seconds a record is kept (the state's retention): then the sweeper removes it.
    pub(super) retention: i64,
    /// `slack_channels`, read through.
    channels: Mutex<HashMap<String, String>>,
}

fn corrupt(e: &serde_json::Error) -> StateError {
    StateError::Corrupt {
        tree: TREE.to_owned(),
        message: e.to_string(),
    }
}

impl Messages {
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self {
            store,
            lock: Mutex::new(()),
            retention: 30 * 86_400,
            channels: Mutex::default(),
        }
    }

    pub fn get(&self, alert_id: &str) -> Result<Option<Record>, StateError> {
        self.store
            .get(TREE, &key(alert_id))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    fn modify(&self, alert_id: &str, f: impl FnOnce(&mut Record)) -> Result<(), StateError> {
        self.modify_and(alert_id, f, Vec::new())
    }

    /// Rewrites a record (and applies `more` with it), durably.
    fn modify_and(
        &self,
        alert_id: &str,
        f: impl FnOnce(&mut Record),
        more: Vec<Op>,
    ) -> Result<(), StateError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.get(alert_id)?;
        let new = old.is_none();
        let mut r = old.unwrap_or_default();
        f(&mut r);
        let v = serde_json::to_vec(&r).map_err(|e| corrupt(&e))?;
        let mut ops = vec![Op::Put(TREE, key(alert_id), v)];
        if new {
            let now = i64::try_from(wall_ms() / 1000).unwrap_or(0);
            ops.push(expiry::put(
                now.saturating_add(self.retention),
                Tag::ResponderMemory,
                &key(alert_id),
            ));
        }
        ops.extend(more);
        self.store.apply(&ops)?;
        self.store.flush()
    }

    /// Records, durably and before the call, that a message is about to be posted.
    pub fn begin_post(
        &self,
        alert_id: &str,
        delivery: &str,
        responses: &[ResponseRequest],
        sending: Sending,
    ) -> Result<(), StateError> {
        self.modify(alert_id, |r| {
            if r.posts.is_empty() {
                r.delivery = delivery.to_owned();
                r.responses = responses.to_vec();
            }
            r.sending.retain(|s| s.channel != sending.channel);
            r.sending.push(sending);
        })
    }

    /// Forgets a post under way that Slack certainly refused (rate limited, or an error answer).
    pub fn cancel_post(&self, alert_id: &str, channel: &str) -> Result<(), StateError> {
        self.modify(alert_id, |r| r.sending.retain(|s| s.channel != channel))
    }

    /// The id of a channel routed by name, as Slack's answers told (ids are their own).
    pub fn channel_id(&self, channel: &str) -> Result<Option<String>, StateError> {
        let is_id = channel.starts_with(['C', 'G', 'D'])
            && channel
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if is_id {
            return Ok(Some(channel.to_owned()));
        }
        if let Some(id) = self.cached(channel) {
            return Ok(Some(id));
        }
        let id = self
            .store
            .get(CHANNELS, channel.as_bytes())?
            .and_then(|v| String::from_utf8(v).ok());
        if let Some(id) = &id {
            self.cache(channel, id);
        }
        Ok(id)
    }

    fn cached(&self, channel: &str) -> Option<String> {
        let c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        c.get(channel).cloned()
    }

    fn cache(&self, channel: &str, id: &str) {
        let mut c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(channel.to_owned(), id.to_owned());
    }

    /// Records a message right after Slack accepted it (durable on return).
    pub fn add_post(
        &self,
        alert_id: &str,
        delivery: &str,
        responses: &[ResponseRequest],
        post: Post,
    ) -> Result<(), StateError> {
        let mut learned = Vec::new();
        if let Some(id) = &post.channel_id {
            if self.cached(&post.channel).as_ref() != Some(id) {
                learned.push(Op::Put(
                    CHANNELS,
                    post.channel.as_bytes().to_vec(),
                    id.as_bytes().to_vec(),
                ));
            }
        }
        let name_id = post.channel_id.clone().map(|id| (post.channel.clone(), id));
        self.modify_and(
            alert_id,
            |r| {
                if r.posts.is_empty() {
                    r.delivery = delivery.to_owned();
                    r.at_ms = wall_ms();
                    r.responses = responses.to_vec();
                }
                r.sending.retain(|s| s.channel != post.channel);
                r.posts.retain(|p| p.channel != post.channel);
                r.posts.push(post);
            },
            learned,
        )?;
        if let Some((name, id)) = name_id {
            self.cache(&name, &id);
        }
        Ok(())
    }

    /// Records a decision's status line, so later edits (count updates) keep showing it.
    pub fn decide(&self, alert_id: &str, delivery_id: &str, line: &str) -> Result<(), StateError> {
        if self.get(alert_id)?.is_none() {
            return Ok(());
        }
        self.modify(alert_id, |r| {
            r.decisions.insert(delivery_id.to_owned(), line.to_owned());
        })
    }

    /// Records a triage line (`key` is `mark` or `snooze`), so later edits keep showing it; the
    /// record as it now is, or `None` when the alert has none.
    pub fn triaged(
        &self,
        alert_id: &str,
        key: &str,
        line: &str,
    ) -> Result<Option<Record>, StateError> {
        if self.get(alert_id)?.is_none() {
            return Ok(None);
        }
        self.modify(alert_id, |r| {
            r.triage.insert(key.to_owned(), line.to_owned());
        })?;
        self.get(alert_id)
    }
}
