//! The population's memory in fixed space: the last day each principal and each peer group did each thing, and how many principals did it.

use std::sync::atomic::{AtomicU16, Ordering};

use super::sketch::{new_within, Counts, Stamps};
use crate::state::{StateError, StateStore};

/// What the history says of one (principal, action) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComboFacts {
    /// The principal had not done it within the window.
    pub new_for_principal: bool,
    /// About how many principals of the cluster have done it recently (this one included).
    pub principals: u16,
    /// No member of the principal's peer group had done it within the window.
    pub new_for_peers: bool,
    /// About how many principals the peer group has (active in recent weeks).
    pub peers: u16,
    /// No member of the group did anything at all in the action's namespace within the window.
    pub foreign_namespace: bool,
    /// About how many teams have worked in the action's namespace (0 for cluster scope or a principal not in a team).
    pub namespace_groups: u16,
}

/// Shared by every worker; lock-free.
pub struct History {
    stamps: Stamps,
    population: Counts,
    /// Counts that do not age: members of each group, groups working in each namespace.
    structure: Counts,
    /// The week (days / 7) of the last halving of the population counts.
    week: AtomicU16,
    window_days: u16,
    name: String,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("bytes", &self.bytes())
            .field("window_days", &self.window_days)
            .finish()
    }
}

/// Two keys combined into one (order matters).
pub fn pair(a: u64, b: u64) -> u64 {
    a.rotate_left(17) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

const MEMBERS: u64 = 0x6d65_6d62_6572_7321;

impl History {
    /// `bytes` in all: three quarters for the day stamps, most of the rest for the counts.
    pub fn new(bytes: usize, window_days: u16, name: &str) -> Self {
        Self {
            stamps: Stamps::new(bytes / 4 * 3),
            population: Counts::new(bytes / 16 * 3),
            structure: Counts::new(bytes / 16),
            week: AtomicU16::new(0),
            window_days,
            name: name.to_owned(),
        }
    }

    /// Ages the population counts by half each week.
    fn age(&self, day: u16) {
        let week = day / 7;
        let last = self.week.load(Ordering::Relaxed);
        if last == 0 {
            let _ = self
                .week
                .compare_exchange(0, week, Ordering::Relaxed, Ordering::Relaxed);
        } else if week > last
            && self
                .week
                .compare_exchange(last, week, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.population.halve();
        }
    }

    /// Records that `principal` (in peer group `group`) did `action` in `cluster` on `day`.
    /// All three are stable hashes; `cluster` scopes the population counts.
    /// `namespace` is the hash of the action's namespace (0 for cluster-scoped requests).
    pub fn observe(
        &self,
        cluster: u64,
        principal: u64,
        group: Option<(u64, bool)>,
        (action, namespace): (u64, u64),
        day: u16,
    ) -> ComboFacts {
        self.age(day);
        let w = self.window_days;
        let mine = self.stamps.stamp(pair(principal, action), day);
        let new_for_principal = new_within(mine, day, w);
        let everyone = pair(cluster, action);
        let principals = if new_for_principal {
            self.population.add(everyone)
        } else {
            self.population.get(everyone)
        };
        let Some((g, team)) = group else {
            return ComboFacts {
                new_for_principal,
                principals,
                ..ComboFacts::default()
            };
        };
        let members = pair(g, MEMBERS);
        // A member counts once (the group's size does not age).
        let peers = if self.stamps.stamp(pair(principal, members), day) == 0 {
            self.structure.add(members)
        } else {
            self.structure.get(members)
        };
        let theirs = self.stamps.stamp(pair(g, action), day);
        let (mut foreign_namespace, mut namespace_groups) = (false, 0);
        if namespace != 0 {
            let groups = pair(namespace, MEMBERS);
            foreign_namespace =
                new_within(self.stamps.stamp(pair(members, namespace), day), day, w);
            // Teams are counted (service-account families of operators work everywhere).
            namespace_groups = if !team {
                0
            } else if foreign_namespace {
                self.structure.add(pair(cluster, groups))
            } else {
                self.structure.get(pair(cluster, groups))
            };
        }
        ComboFacts {
            new_for_principal,
            principals,
            new_for_peers: new_within(theirs, day, w),
            peers,
            foreign_namespace,
            namespace_groups,
        }
    }

    /// Counts one more principal using `value` (an agent family, a network) when it is new
    /// to that principal; returns about how many principals use it.
    pub fn users_of(&self, cluster: u64, value: u64, new_for_principal: bool) -> u16 {
        let k = pair(cluster, value);
        if new_for_principal {
            self.population.add(k)
        } else {
            self.population.get(k)
        }
    }

    pub fn window_days(&self) -> u16 {
        self.window_days
    }

    pub fn bytes(&self) -> usize {
        self.stamps.bytes() + self.population.bytes() + self.structure.bytes()
    }

    /// Share of the day-stamp cells in use: near 1, novelty starts to be missed.
    pub fn fill(&self) -> f64 {
        self.stamps.fill()
    }

    pub fn load(&self, store: &dyn StateStore) {
        self.stamps.load(store, &format!("{}/stamps", self.name));
        self.population
            .load(store, &format!("{}/population", self.name));
        self.structure
            .load(store, &format!("{}/structure", self.name));
        if let Ok(Some(w)) = store.get(super::sketch::TREE, self.week_key().as_bytes()) {
            if let Ok(b) = <[u8; 2]>::try_from(w.as_slice()) {
                self.week.store(u16::from_le_bytes(b), Ordering::Relaxed);
            }
        }
    }

    pub fn save(&self, store: &dyn StateStore) -> Result<(), StateError> {
        self.stamps.save(store, &format!("{}/stamps", self.name))?;
        self.population
            .save(store, &format!("{}/population", self.name))?;
        self.structure
            .save(store, &format!("{}/structure", self.name))?;
        store.put(
            super::sketch::TREE,
            self.week_key().as_bytes(),
            &self.week.load(Ordering::Relaxed).to_le_bytes(),
        )
    }

    fn week_key(&self) -> String {
        format!("{}/week", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novelty_is_per_principal_and_per_group_within_the_window() {
        let h = History::new(1 << 20, 30, "t");
        let (prod, alice, bob, payments, read_ks, ks, ns2) = (1, 10, 11, 100, 1000, 77, 78);
        let f = h.observe(prod, alice, Some((payments, true)), (read_ks, ks), 500);
        assert!(f.new_for_principal && f.new_for_peers && f.foreign_namespace);
        assert_eq!((f.principals, f.peers, f.namespace_groups), (1, 1, 1));
        let f = h.observe(prod, bob, Some((payments, true)), (read_ks, ks), 501);
        assert!(
            f.new_for_principal && !f.new_for_peers,
            "alice did it first"
        );
        assert!(!f.foreign_namespace, "alice worked in the namespace");
        assert_eq!((f.principals, f.peers), (2, 2));
        let f = h.observe(prod, bob, Some((payments, true)), (read_ks, ks), 502);
        assert!(!f.new_for_principal);
        assert_eq!(
            (f.principals, f.peers),
            (2, 2),
            "a repeat is not another principal"
        );
        let f = h.observe(prod, bob, Some((payments, true)), (2000, ns2), 502);
        assert!(f.foreign_namespace && f.new_for_peers);
        let f = h.observe(prod, 12, Some((200, true)), (3000, ks), 503);
        assert_eq!(
            f.namespace_groups, 2,
            "a second group works in the namespace"
        );
        let f = h.observe(prod, alice, Some((payments, true)), (read_ks, ks), 540);
        assert!(f.new_for_principal && f.new_for_peers, "38 days later");
        let f = h.observe(2, alice, Some((payments, true)), (2000, 0), 540);
        assert_eq!(f.principals, 1, "another cluster's count");
        assert!(!f.foreign_namespace, "cluster scope is no namespace");
        let f = h.observe(prod, bob, Some((payments, true)), (read_ks, ks), 600);
        assert_eq!(f.peers, 2, "the group's size does not age");
    }

    #[test]
    fn population_counts_age_by_half_each_week() {
        let h = History::new(1 << 20, 30, "t");
        for p in 0..8 {
            h.observe(1, p, None, (7, 0), 700);
        }
        assert_eq!(h.observe(1, 0, None, (7, 0), 701).principals, 8);
        assert_eq!(h.observe(1, 0, None, (7, 0), 707).principals, 4);
    }
}
