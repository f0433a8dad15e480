//! Responders acting on triage: when on-call marks an alert or snoozes its group, each responder may queue follow-up work (PagerDuty acknowledges or resolves its incident), written to the outbox in the same batch as the mark or the suppression.

use std::sync::Arc;

use super::Responder;
use crate::state::outbox::Outbox;
use crate::state::{Op, StateError};
use crate::triage::{Change, Observer};

/// The configured responders as a [`crate::triage::Observer`], over the stage's outbox.
pub struct FollowUps {
    responders: Vec<Arc<dyn Responder>>,
    outbox: Arc<Outbox>,
}

impl FollowUps {
    pub fn new(responders: Vec<Arc<dyn Responder>>, outbox: Arc<Outbox>) -> Self {
        Self { responders, outbox }
    }
}

impl Observer for FollowUps {
    fn writes(&self, change: &Change<'_>) -> Result<Vec<Op>, StateError> {
        let mut ops = Vec::new();
        for r in &self.responders {
            for d in r.after_triage(change, &self.outbox)? {
                tracing::info!(responder = r.name(), delivery = %d.id, "queued after triage");
                ops.push(self.outbox.enqueue(&d));
            }
        }
        Ok(ops)
    }

    fn committed(&self) {
        self.outbox.wake();
    }
}
