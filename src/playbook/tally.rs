//! Per-playbook counts over a run: fires, dedup keys, faults and, in timed runs, how often each playbook ran and what it cost.

use std::collections::{BTreeMap, HashSet};

use super::{Evaluation, PlaybookSet};

/// Per-playbook counts over a run (for `rampart replay`'s summary).
#[derive(Debug, Default)]
pub struct Tally {
    inner: std::sync::Mutex<BTreeMap<String, TallyRow>>,
}

/// One playbook's counts.
#[derive(Debug, Default, Clone)]
pub struct TallyRow {
    pub fires: u64,
    pub dedup_keys: HashSet<String>,
    pub faults: u64,
    /// Events the playbook ran on, and the wall time it took on them (timed runs only).
    pub runs: u64,
    pub nanos: u64,
}

impl Tally {
    pub fn record(&self, e: &Evaluation) {
        self.record_in(e, None);
    }

    /// Records an evaluation of `set`, whose timings name its playbooks by index.
    pub fn record_in(&self, e: &Evaluation, set: Option<&PlaybookSet>) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = set {
            for &(i, ns) in &e.timings {
                if let Some(p) = set.playbooks.get(i) {
                    let row = match t.get_mut(&p.id) {
                        Some(row) => row,
                        None => t.entry(p.id.clone()).or_default(),
                    };
                    row.runs += 1;
                    row.nanos += ns;
                }
            }
        }
        for v in &e.verdicts {
            let row = t.entry(v.playbook.clone()).or_default();
            row.fires += 1;
            row.dedup_keys.insert(v.dedup.clone());
        }
        for f in &e.faults {
            t.entry(f.playbook.clone()).or_default().faults += 1;
        }
    }

    /// Rows for every playbook of `set`, in id order, zeros included.
    pub fn rows(&self, set: &PlaybookSet) -> Vec<(String, TallyRow)> {
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = set.playbooks().iter().map(|p| p.id.clone()).collect();
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let row = t.get(&id).cloned().unwrap_or_default();
                (id, row)
            })
            .collect()
    }
}

/// The playbooks costliest first (`--profile`): on how many events each ran, its wall time per run
/// and per event of the stream, and its share of all playbook time.
pub fn cost_table(rows: &[(String, TallyRow)], events: u64) -> String {
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by(|a, b| b.1.nanos.cmp(&a.1.nanos).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = rows.iter().map(|(_, r)| r.nanos).sum();
    let mut s = format!(
        "\n\n  playbook time: {:.2} µs per event in all (wall clock, timed runs)\n  {:<40} {:>9} {:>10} {:>11} {:>7} {:>8} {:>7}",
        total as f64 / 1e3 / events.max(1) as f64,
        "playbook (costliest first)",
        "ran on",
        "µs/run",
        "µs/event",
        "share",
        "fires",
        "errors"
    );
    for (id, row) in rows {
        s.push_str(&format!(
            "\n  {:<40} {:>8.1}% {:>10.2} {:>11.3} {:>6.1}% {:>8} {:>7}",
            id,
            100.0 * row.runs as f64 / events.max(1) as f64,
            row.nanos as f64 / 1e3 / row.runs.max(1) as f64,
            row.nanos as f64 / 1e3 / events.max(1) as f64,
            100.0 * row.nanos as f64 / total.max(1) as f64,
            row.fires,
            row.faults
        ));
    }
    s
}
