//! The sweeper: closes dedup windows that are due (emitting their follow-ups) and forgets whatever has expired, on the stage's stream time.

use std::sync::Arc;

use super::{load, DedupEntry, GateEntry, StateStage, DEDUP, GATE, RESPONDER_MEMORY, SEEN};
use crate::state::expiry::{self, Tag};
use crate::state::outbox::ALERTS;
use crate::state::{risk, Op, StateError};

impl StateStage {
    /// Closes due windows (emitting follow-ups) and forgets what has expired; returns how many entries went.
    pub fn sweep(&self) -> Result<usize, StateError> {
        if !self.store_usable() {
            return Ok(0);
        }
        let Some(now) = self.now() else { return Ok(0) };
        let mut removed = 0;
        loop {
            let due = expiry::due(&*self.store, now, 4096)?;
            if due.is_empty() {
                break;
            }
            let mut dirty = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let s = &*self.store;
            for d in &due {
                let mut ops = Vec::new();
                // Entries rewritten with a later expiry keep their stale index entries; only a due one goes.
                let (tree, gone) = match d.tag {
                    Tag::Dedup => match load::<DedupEntry>(s, DEDUP, &d.key)? {
                        Some(e) if e.expires <= d.at => {
                            self.close(&e, &mut ops)?;
                            (DEDUP, true)
                        }
                        _ => (DEDUP, false),
                    },
                    Tag::Gate => (
                        GATE,
                        load::<GateEntry>(s, GATE, &d.key)?.is_some_and(|g| g.expires <= d.at),
                    ),
                    Tag::Seen => (
                        SEEN,
                        s.get(SEEN, &d.key)?
                            .and_then(|v| v.try_into().ok())
                            .is_some_and(|v| i64::from_be_bytes(v) <= d.at),
                    ),
                    Tag::Risk => (risk::TREE, risk::is_expired(s, &d.key, d.at)?),
                    Tag::Alert => (ALERTS, true),
                    Tag::Journal => (crate::state::outbox::JOURNAL, true),
                    Tag::RiskContribution => (risk::CONTRIBUTIONS, true),
                    Tag::Decision => (crate::state::approvals::DECISIONS, true),
                    Tag::ResponderMemory => (RESPONDER_MEMORY, true),
                    Tag::Outcome => (crate::state::outbox::OUTCOMES, true),
                };
                if gone {
                    removed += 1;
                    ops.push(Op::Delete(tree, d.key.clone()));
                }
                ops.push(d.done());
                s.apply(&ops)?;
            }
            *dirty = true;
        }
        self.commit()?;
        Ok(removed)
    }
}

/// Runs [`StateStage::sweep`] every `every` until shutdown.
pub fn spawn_sweeper(
    stage: Arc<StateStage>,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let st = stage.clone();
                    match tokio::task::spawn_blocking(move || st.sweep()).await {
                        Ok(Ok(n)) if n > 0 => tracing::debug!(removed = n, "state swept"),
                        Ok(Err(e)) => tracing::error!(error = %e, "state sweep failed; retrying next tick"),
                        _ => {}
                    }
                }
            }
        }
    })
}
