//! New terms: `new_term(entity, value, window)`, true the first time a value is seen for an entity within a history window; persisted, in fixed memory.
//!
//! Elastic's "new terms" rule type for playbooks. Each (playbook, cluster,
//! entity, value) is stamped with the day it was last seen in a fixed-size
//! sketch of day stamps, kept across reloads and saved to the state store, so
//! a restart does not make every value new again. The sketch may take a value
//! never seen for one already seen (a missed term, never an invented one):
//! about 1% at 400,000 terms in the window.

use std::sync::{Arc, OnceLock};

use crate::enrich::baseline::sketch::{self, new_within, Stamps};
use crate::state::StateStore;

/// Memory of the sketch.
const BYTES: usize = 8 << 20;
/// Its name in the store.
const NAME: &str = "new-terms";

/// The terms seen, shared by every playbook set the handle loads.
pub struct Terms {
    stamps: Stamps,
    store: OnceLock<Arc<dyn StateStore>>,
}

impl std::fmt::Debug for Terms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terms")
    }
}

impl Default for Terms {
    fn default() -> Self {
        Self {
            stamps: Stamps::new(BYTES),
            store: OnceLock::new(),
        }
    }
}

impl Terms {
    /// Reads the terms saved in `store` and saves there from now on.
    pub fn attach(&self, store: Arc<dyn StateStore>) {
        self.stamps.load(store.as_ref(), NAME);
        let _ = self.store.set(store);
    }

    /// Writes the changed pages (a no-op without a store).
    pub fn save(&self) {
        if let Some(store) = self.store.get() {
            if let Err(e) = self.stamps.save(store.as_ref(), NAME) {
                tracing::error!(error = %e, "cannot persist the new-terms history");
            }
        }
    }

    /// Stamps `value` for `entity` at the calling playbook's event time; true when it was not
    /// seen within `window` seconds (whole days, at least one).
    pub fn is_new(&self, entity: &str, value: &str, window: i64) -> bool {
        let (playbook, time) = super::state_api::current();
        let key = super::state_api::with_cluster(|cluster| {
            crate::state::stable_hash([
                playbook.as_bytes(),
                b"\x1f",
                cluster.as_bytes(),
                b"\x1f",
                entity.as_bytes(),
                b"\x1f",
                value.as_bytes(),
            ])
        });
        let days = u16::try_from((window + 86_399) / 86_400)
            .unwrap_or(u16::MAX)
            .max(1);
        let today = sketch::day(time);
        new_within(self.stamps.stamp(key, today), today, days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::state_api::with_context;
    use crate::state::MemoryStore;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_794_787_200;

    #[test]
    fn a_value_is_new_once_per_window_per_entity_playbook_and_cluster() {
        let t = Terms::default();
        let new = |pb: &str, at: i64, cluster: &str, entity: &str, value: &str| {
            with_context(pb, at, cluster, || t.is_new(entity, value, 30 * DAY))
        };
        assert!(new("p", T0, "prod", "ci/deployer", "kubectl"));
        assert!(!new("p", T0 + 60, "prod", "ci/deployer", "kubectl"));
        assert!(
            new("p", T0, "prod", "ci/other", "kubectl"),
            "another entity"
        );
        assert!(
            new("q", T0, "prod", "ci/deployer", "kubectl"),
            "another playbook"
        );
        assert!(
            new("p", T0, "staging", "ci/deployer", "kubectl"),
            "another cluster"
        );
        assert!(!new("p", T0 + 20 * DAY, "prod", "ci/deployer", "kubectl"));
        assert!(
            new("p", T0 + 51 * DAY, "prod", "ci/deployer", "kubectl"),
            "31 days after it was last seen"
        );
    }

    #[test]
    fn the_history_survives_a_restart_through_the_store() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
        let t = Terms::default();
        t.attach(store.clone());
        assert!(with_context("p", T0, "", || t.is_new("sa", "curl", DAY)));
        t.save();
        let again = Terms::default();
        again.attach(store);
        assert!(!with_context("p", T0 + 10, "", || again.is_new("sa", "curl", DAY)));
    }
}
