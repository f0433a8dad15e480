//! The `slack_messages` tree: which Slack messages each alert became (channel, id, ts), its responses and their decisions — so repeats do not post twice and threads and edits survive restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::playbook::ResponseRequest;
use crate::state::expiry::{self, Tag};
use crate::state::model::wall_ms;
use crate::state::{Op, StateError, StateStore};

/// The tree, keyed by alert id.
pub const TREE: &str = crate::state::stage::SLACK_MESSAGES;

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
    /// Wall-clock milliseconds of the first post.
    pub at_ms: u64,
}

impl Record {
    pub fn post(&self, channel: &str) -> Option<&Post> {
        self.posts.iter().find(|p| p.channel == channel)
    }
}

/// Reads and writes records; writes are serialised and flushed.
#[derive(Debug)]
pub struct Messages {
    store: Arc<dyn StateStore>,
    lock: Mutex<()>,
    /// Seconds a record is kept (the state's retention): then the sweeper removes it.
    pub(super) retention: i64,
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
        }
    }

    pub fn get(&self, alert_id: &str) -> Result<Option<Record>, StateError> {
        self.store
            .get(TREE, alert_id.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    fn modify(&self, alert_id: &str, f: impl FnOnce(&mut Record)) -> Result<(), StateError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.get(alert_id)?;
        let new = old.is_none();
        let mut r = old.unwrap_or_default();
        f(&mut r);
        let v = serde_json::to_vec(&r).map_err(|e| corrupt(&e))?;
        let mut ops = vec![Op::Put(TREE, alert_id.as_bytes().to_vec(), v)];
        if new {
            let now = i64::try_from(wall_ms() / 1000).unwrap_or(0);
            ops.push(expiry::put(
                now.saturating_add(self.retention),
                Tag::SlackMessage,
                alert_id.as_bytes(),
            ));
        }
        self.store.apply(&ops)?;
        self.store.flush()
    }

    /// Records a message right after Slack accepted it (durable on return).
    pub fn add_post(
        &self,
        alert_id: &str,
        delivery: &str,
        responses: &[ResponseRequest],
        post: Post,
    ) -> Result<(), StateError> {
        self.modify(alert_id, |r| {
            if r.posts.is_empty() {
                r.delivery = delivery.to_owned();
                r.at_ms = wall_ms();
                r.responses = responses.to_vec();
            }
            r.posts.retain(|p| p.channel != post.channel);
            r.posts.push(post);
        })
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
}
