//! The expiry index: one ordered tree of (when, what) so that retention touches only what is due, never a full scan.

use super::{Op, StateError, StateStore};

pub const TREE: &str = "expiry";

/// Which tree an index entry points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Dedup = 1,
    Gate = 2,
    Seen = 3,
    Risk = 4,
    Alert = 5,
    Journal = 6,
    RiskContribution = 7,
    Decision = 8,
    ResponderMemory = 9,
    /// An alert's outcome (triage), forgotten with the alert.
    Outcome = 10,
}

impl Tag {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Tag::Dedup,
            2 => Tag::Gate,
            3 => Tag::Seen,
            4 => Tag::Risk,
            5 => Tag::Alert,
            6 => Tag::Journal,
            7 => Tag::RiskContribution,
            8 => Tag::Decision,
            9 => Tag::ResponderMemory,
            10 => Tag::Outcome,
            _ => return None,
        })
    }
}

fn at_bytes(at: i64) -> [u8; 8] {
    u64::try_from(at.max(0)).unwrap_or(0).to_be_bytes()
}

/// The index write that makes `key` of `tag`'s tree expire at `at` (stream seconds).
pub fn put(at: i64, tag: Tag, key: &[u8]) -> Op {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&at_bytes(at));
    k.push(tag as u8);
    k.extend_from_slice(key);
    Op::Put(TREE, k, Vec::new())
}

/// An index entry that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: i64,
    pub tag: Tag,
    pub key: Vec<u8>,
    index_key: Vec<u8>,
}

impl Due {
    /// The write that removes this index entry.
    pub fn done(&self) -> Op {
        Op::Delete(TREE, self.index_key.clone())
    }
}

/// Up to `limit` entries due at or before `now`, oldest first.
pub fn due(store: &dyn StateStore, now: i64, limit: usize) -> Result<Vec<Due>, StateError> {
    let to = at_bytes(now.saturating_add(1));
    let entries = store.range(TREE, &[], Some(&to), limit)?;
    Ok(entries
        .into_iter()
        .filter_map(|(k, _)| {
            let at = i64::try_from(u64::from_be_bytes(k.get(..8)?.try_into().ok()?)).ok()?;
            let tag = Tag::from_byte(*k.get(8)?)?;
            Some(Due {
                at,
                tag,
                key: k[9..].to_vec(),
                index_key: k,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    #[test]
    fn returns_only_what_is_due_in_time_order() {
        let s = MemoryStore::default();
        s.apply(&[
            put(300, Tag::Dedup, b"late"),
            put(100, Tag::Seen, b"early"),
            put(200, Tag::Gate, b"middle"),
        ])
        .unwrap();
        let d = due(&s, 200, 10).unwrap();
        assert_eq!(
            d.iter()
                .map(|d| (d.at, d.tag, d.key.clone()))
                .collect::<Vec<_>>(),
            vec![
                (100, Tag::Seen, b"early".to_vec()),
                (200, Tag::Gate, b"middle".to_vec())
            ]
        );
        s.apply(&[d[0].done()]).unwrap();
        assert_eq!(due(&s, 1000, 10).unwrap().len(), 2);
    }
}
