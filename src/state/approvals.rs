//! Responses that wait for a human: parked out of their queue until approved, rejected or expired, with every decision durable and the first one final.

use serde::{Deserialize, Serialize};

use super::expiry::{self, Tag};
use super::model::{Decision, Delivery, JournalEntry, Status};
use super::outbox::{Outbox, JOURNAL, OUTBOX};
use super::{Op, StateError};

/// Parked responses by delivery id.
pub const PARKED: &str = "approvals";
/// Decisions by delivery id (the first one wins).
pub const DECISIONS: &str = "decisions";

/// A response waiting for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    pub delivery: Delivery,
    /// Wall-clock milliseconds after which it is expired instead of executed.
    pub expires_ms: u64,
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    /// Approved: the response is queued to run now.
    Approved,
    /// Rejected: the response is discarded.
    Rejected,
    /// Someone decided first; this decision changed nothing.
    AlreadyDecided(Decision),
    /// Nobody decided in time; the response was discarded.
    Expired,
    /// No response waits under that id.
    Unknown,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(tree: &str, v: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(v).map_err(|e| StateError::Corrupt {
        tree: tree.to_owned(),
        message: e.to_string(),
    })
}

fn who(d: &Decision) -> String {
    format!(
        "{} by {} at {}",
        if d.approve { "approved" } else { "rejected" },
        d.by,
        crate::event::time::format_rfc3339(i64::try_from(d.at_ms / 1000).unwrap_or(0))
    )
}

impl Outbox {
    /// The decision recorded for `id`, if any.
    pub fn decision(&self, id: &str) -> Result<Option<Decision>, StateError> {
        self.store()
            .get(DECISIONS, id.as_bytes())?
            .map(|v| decode(DECISIONS, &v))
            .transpose()
    }

    /// Takes `d` (queued under `key`) out of its queue to wait for a decision until `expires_ms`,
    /// journaled as pending; one durable write.
    pub fn park(&self, key: &[u8], d: &Delivery, expires_ms: u64) -> Result<(), StateError> {
        let until =
            crate::event::time::format_rfc3339(i64::try_from(expires_ms / 1000).unwrap_or(0));
        let j = JournalEntry::of(
            d,
            Status::Pending,
            format!("waiting for approval until {until}"),
        );
        let p = Parked {
            delivery: d.clone(),
            expires_ms,
        };
        self.store().apply(&[
            Op::Put(PARKED, d.id.as_bytes().to_vec(), json(&p)),
            Op::Put(JOURNAL, d.id.as_bytes().to_vec(), json(&j)),
            Op::Delete(OUTBOX, key.to_vec()),
        ])?;
        self.store().flush()
    }

    /// Responses waiting for a decision.
    pub fn parked(&self) -> Result<Vec<Parked>, StateError> {
        self.store()
            .scan(PARKED)?
            .iter()
            .map(|(_, v)| decode(PARKED, v))
            .collect()
    }

    /// Records a human's decision on the response `id`: the first decision wins. An approved
    /// response goes back to the end of its queue carrying the decision; a rejected one is journaled.
    /// `keep_until` is the stream time until which the decision is remembered.
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        keep_until: i64,
    ) -> Result<DecideOutcome, StateError> {
        let _one_at_a_time = self.decide_lock();
        if let Some(first) = self.decision(id)? {
            return Ok(DecideOutcome::AlreadyDecided(first));
        }
        let remember = [
            Op::Put(DECISIONS, id.as_bytes().to_vec(), json(&decision)),
            expiry::put(keep_until, Tag::Decision, id.as_bytes()),
        ];
        let Some(raw) = self.store().get(PARKED, id.as_bytes())? else {
            if let Some(j) = self.journal(id)? {
                return Ok(if j.status == Status::Expired {
                    DecideOutcome::Expired
                } else {
                    DecideOutcome::Unknown
                });
            }
            // Not parked yet (its responder has not reached it): the decision waits for it.
            if self.queued(id)? {
                self.store().apply(&remember)?;
                self.store().flush()?;
                return Ok(outcome(&decision));
            }
            return Ok(DecideOutcome::Unknown);
        };
        let p: Parked = decode(PARKED, &raw)?;
        if p.expires_ms <= decision.at_ms {
            self.expire(&p)?;
            return Ok(DecideOutcome::Expired);
        }
        let mut ops = remember.to_vec();
        ops.push(Op::Delete(PARKED, id.as_bytes().to_vec()));
        let mut d = p.delivery;
        if decision.approve {
            d.approved = Some(decision.clone());
            ops.push(self.enqueue(&d));
            let j = JournalEntry::of(
                &d,
                Status::Pending,
                format!("{}; executing", who(&decision)),
            );
            ops.push(Op::Put(JOURNAL, id.as_bytes().to_vec(), json(&j)));
        } else {
            let j = JournalEntry::of(&d, Status::Rejected, who(&decision));
            ops.push(Op::Put(JOURNAL, id.as_bytes().to_vec(), json(&j)));
        }
        self.store().apply(&ops)?;
        self.store().flush()?;
        self.wake();
        Ok(outcome(&decision))
    }

    /// Journals as expired every parked response whose time ran out; returns how many.
    pub fn expire_parked(&self, now_ms: u64) -> Result<usize, StateError> {
        let _one_at_a_time = self.decide_lock();
        let due: Vec<Parked> = self
            .parked()?
            .into_iter()
            .filter(|p| p.expires_ms <= now_ms)
            .collect();
        for p in &due {
            self.expire(p)?;
        }
        Ok(due.len())
    }

    fn expire(&self, p: &Parked) -> Result<(), StateError> {
        let j = JournalEntry::of(
            &p.delivery,
            Status::Expired,
            "no one approved or rejected it in time; not executed".into(),
        );
        self.store().apply(&[
            Op::Delete(PARKED, p.delivery.id.as_bytes().to_vec()),
            Op::Put(JOURNAL, p.delivery.id.as_bytes().to_vec(), json(&j)),
        ])?;
        self.store().flush()
    }

    /// True when `id` is still in its responder's queue (`…/<responder>.<n>` names the queue).
    fn queued(&self, id: &str) -> Result<bool, StateError> {
        let Some((_, action)) = id.rsplit_once('/') else {
            return Ok(false);
        };
        let responder = action.split('.').next().unwrap_or(action);
        let mut from = responder.as_bytes().to_vec();
        from.push(0);
        loop {
            let batch = self.head_from(responder, &from, 256)?;
            if batch.is_empty() {
                return Ok(false);
            }
            if batch.iter().any(|(_, d)| d.id == id) {
                return Ok(true);
            }
            from = batch.last().map(|(k, _)| k.clone()).unwrap_or_default();
            from.push(0);
        }
    }
}

fn outcome(d: &Decision) -> DecideOutcome {
    if d.approve {
        DecideOutcome::Approved
    } else {
        DecideOutcome::Rejected
    }
}
