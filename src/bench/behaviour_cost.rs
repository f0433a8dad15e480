//! The per-event cost of behavioural analytics: the enrichers on the realistic mix with and without them, in one process, alternating.

use std::sync::Arc;
use std::time::Instant;

use super::{setup, BenchError};
use crate::enrich::Enricher;
use crate::event::{decode_record, AuditEvent, DecodeOptions};
use crate::state::MemoryStore;

/// (µs per event with, µs per event without): best of three alternating rounds over `lines`.
pub async fn run(config: &std::path::Path, lines: &[String]) -> Result<(f64, f64), BenchError> {
    let cfg = crate::config::load_file(config).map_err(setup)?;
    let mut off = cfg.enrich.clone();
    off.baseline.behaviour.enabled = false;
    let with = Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").map_err(setup)?;
    let without = Enricher::build(&off, Arc::new(MemoryStore::default()), "").map_err(setup)?;
    let opts = DecodeOptions::default();
    let mut events: Vec<AuditEvent> = lines
        .iter()
        .flat_map(|l| decode_record(l.as_bytes(), &opts).events)
        .collect();
    let n = events.len().max(1) as f64;
    let (mut best_on, mut best_off) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        for (enricher, best) in [(&with, &mut best_on), (&without, &mut best_off)] {
            let t = Instant::now();
            for ev in &mut events {
                enricher.enrich(ev).await;
            }
            *best = best.min(t.elapsed().as_secs_f64() * 1e6 / n);
        }
    }
    Ok((best_on, best_off))
}
