//! `rampart behaviour evaluate`: the behavioural playbooks on four generated weeks with planted, labelled anomalies — recall per kind and false alerts per 100k benign events.
//!
//! The generator (`synth::behaviour`) knows nothing of the detections. Every
//! event goes through the real decoder, the enrichers (identity directory of the
//! generated population, GeoIP, assets, baseline) and the shipped behavioural
//! playbooks; alerts are deduplicated as the state stage does (per playbook and
//! dedup key, within the playbook's window). An incident is caught when any of
//! its events raised an alert; a false alert is an alert raised on a benign event
//! after the learning days.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{setup, BenchError};
use crate::enrich::Enricher;
use crate::event::{decode_record, DecodeOptions};
use crate::playbook::Ev;
use crate::state::MemoryStore;
use crate::synth::behaviour::{AnomalyKind, Label, Scenario, ScenarioOptions};

/// The shipped behavioural playbooks this evaluation measures.
pub const PLAYBOOKS: [&str; 5] = [
    "behaviour_volume_spike.rhai",
    "behaviour_rare_critical_action.rhai",
    "behaviour_first_of_peers.rhai",
    "sa_new_user_agent.rhai",
    "behaviour_secret_reads_new_namespaces.rhai",
];

/// What to evaluate on.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The config whose enrichment is used (its identity directory is replaced by the population's).
    pub config: PathBuf,
    pub seed: u64,
    pub weeks: u32,
    pub incidents_per_kind: usize,
    /// List each missed incident's first events with what the baseline said of them.
    pub trace_misses: bool,
    /// The population: people and service accounts.
    pub humans: usize,
    pub service_accounts: usize,
}

/// One kind's result.
#[derive(Debug, Clone, Default)]
pub struct KindResult {
    pub incidents: usize,
    pub caught: usize,
    /// Incidents caught by each playbook (an incident may count for several).
    pub by_playbook: BTreeMap<String, usize>,
    /// The first alert title of the first caught incident.
    pub example: Option<String>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    pub events: u64,
    pub benign_scored: u64,
    pub false_alerts: u64,
    pub false_by_playbook: BTreeMap<String, u64>,
    /// Examples of false alerts (title), a few per playbook.
    pub false_examples: Vec<String>,
    pub kinds: BTreeMap<AnomalyKind, KindResult>,
    pub seconds: f64,
    /// With `trace_misses`: each missed incident and its first events.
    pub misses: Vec<String>,
}

/// One event and the baseline's facts, for a missed incident's trace.
fn trace(ev: &crate::event::AuditEvent) -> String {
    let o = ev.object_ref.as_ref();
    let b = ev
        .enrichment
        .as_ref()
        .and_then(|e| e.baseline.clone())
        .unwrap_or_default();
    format!(
        "{} {} {}/{} {} -> {} learning {} new_action {} peers_new {} first_of_peers {} peers {} foreign_ns {} rare {} quiet {} spike {} signals {:?}",
        ev.verb,
        o.and_then(|o| o.resource.as_deref()).unwrap_or(""),
        o.and_then(|o| o.namespace.as_deref()).unwrap_or(""),
        o.and_then(|o| o.subresource.as_deref()).unwrap_or(""),
        ev.user_agent.as_deref().unwrap_or(""),
        ev.response_code().unwrap_or(0),
        b.learning,
        b.new_action,
        b.peers_new_action,
        b.first_of_peers,
        b.peers,
        b.foreign_namespace,
        b.rare_action,
        b.quiet_hour,
        b.volume_spike,
        b.signals
    )
}

impl EvalReport {
    pub fn false_per_100k(&self) -> f64 {
        self.false_alerts as f64 * 100_000.0 / self.benign_scored.max(1) as f64
    }

    /// The lowest recall of any kind.
    pub fn min_recall(&self) -> f64 {
        self.kinds
            .values()
            .map(|k| k.caught as f64 / k.incidents.max(1) as f64)
            .fold(1.0, f64::min)
    }
}

/// Writes the behavioural playbooks (and the lists beside them) into `dir`.
fn playbook_dir(config: &crate::config::Config, dir: &Path) -> Result<PathBuf, BenchError> {
    let src = config
        .playbooks
        .as_ref()
        .map(|p| p.dir.clone())
        .unwrap_or_else(|| PathBuf::from("playbooks"));
    let out = dir.join("playbooks");
    std::fs::create_dir_all(out.join("lists"))?;
    for f in PLAYBOOKS {
        let from = src.join(f);
        std::fs::copy(&from, out.join(f)).map_err(|e| setup(format!("{}: {e}", from.display())))?;
        let tests = f.replace(".rhai", ".tests.yaml");
        let _ = std::fs::copy(src.join(&tests), out.join(tests));
    }
    if let Ok(lists) = std::fs::read_dir(src.join("lists")) {
        for l in lists.flatten() {
            std::fs::copy(l.path(), out.join("lists").join(l.file_name()))?;
        }
    }
    Ok(out)
}

/// The enrichers (with the population's directory) and the behavioural playbooks.
struct Harness {
    _tmp: tempfile::TempDir,
    enricher: Enricher,
    set: crate::playbook::PlaybookSet,
    default_window: i64,
    last_alert: HashMap<(String, String), i64>,
}

impl Harness {
    fn new(config: &Path, scenario: &Scenario) -> Result<Self, BenchError> {
        let tmp = tempfile::tempdir()?;
        let directory = tmp.path().join("identity.yaml");
        std::fs::write(&directory, scenario.directory_yaml())?;
        let mut cfg = crate::config::load_file(config).map_err(setup)?;
        cfg.enrich.identity.directory = Some(directory);
        cfg.enrich.identity.api = None;
        let dir = playbook_dir(&cfg, tmp.path())?;
        let pcfg = crate::config::PlaybooksConfig {
            dir: dir.clone(),
            ..cfg.playbooks.clone().unwrap_or_default()
        };
        let set = crate::playbook::load_dir(&dir, &pcfg).map_err(|d| {
            setup(
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let enricher =
            Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").map_err(setup)?;
        Ok(Self {
            _tmp: tmp,
            enricher,
            set,
            default_window: cfg.state.dedup_window.get().as_secs() as i64,
            last_alert: HashMap::new(),
        })
    }

    /// The alerts (playbook, title) one JSON line raises, deduplicated as the state stage does;
    /// `seen` is given what the baseline said of each event.
    async fn alerts(
        &mut self,
        line: &str,
        t: &mut i64,
        mut seen: impl FnMut(&crate::event::AuditEvent),
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for mut ev in decode_record(line.as_bytes(), &DecodeOptions::default()).events {
            *t = ev.event_time();
            self.enricher.enrich(&mut ev).await;
            seen(&ev);
            for v in self.set.evaluate(&Ev::new(ev)).verdicts {
                let window = v.gating.window.unwrap_or(self.default_window);
                let key = (v.playbook.clone(), v.dedup.clone());
                if self
                    .last_alert
                    .get(&key)
                    .is_some_and(|&at| *t - at < window)
                {
                    continue;
                }
                self.last_alert.insert(key, *t);
                out.push((v.playbook, v.title));
            }
        }
        out
    }
}

/// A fresh install replaying `days` of the population's benign traffic: alerts per playbook.
pub async fn fresh_install(
    config: &Path,
    seed: u64,
    days: u32,
) -> Result<(u64, BTreeMap<String, u64>), BenchError> {
    let mut scenario = Scenario::new(ScenarioOptions {
        seed,
        ..ScenarioOptions::default()
    });
    let mut h = Harness::new(config, &scenario)?;
    let start = ScenarioOptions::default().start + 7 * 86_400;
    let lines: Vec<String> = scenario.background(start, days).collect();
    let mut alerts = BTreeMap::new();
    let mut t = 0;
    for line in &lines {
        for (p, _) in h.alerts(line, &mut t, |_| ()).await {
            *alerts.entry(p).or_default() += 1;
        }
    }
    Ok((lines.len() as u64, alerts))
}

/// Runs the evaluation.
pub async fn evaluate(opts: &EvalOptions) -> Result<EvalReport, BenchError> {
    let started = Instant::now();
    let mut scenario = Scenario::new(ScenarioOptions {
        seed: opts.seed,
        weeks: opts.weeks,
        incidents_per_kind: opts.incidents_per_kind,
        humans: opts.humans,
        service_accounts: opts.service_accounts,
        ..ScenarioOptions::default()
    });
    let scored_from = ScenarioOptions::default().start
        + i64::from(ScenarioOptions::default().learning_days) * 86_400;
    let mut h = Harness::new(&opts.config, &scenario)?;
    let mut report = EvalReport::default();
    for inc in scenario.incidents() {
        report.kinds.entry(inc.kind).or_default().incidents += 1;
    }
    let mut caught: HashMap<u32, (AnomalyKind, Vec<String>)> = HashMap::new();
    let mut false_examples: HashMap<String, usize> = HashMap::new();
    let mut traces: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut t = 0;
    for (line, label) in scenario.events() {
        let mut traced = None;
        let alerts = h
            .alerts(&line, &mut t, |ev| {
                if opts.trace_misses {
                    traced = Some(trace(ev));
                }
            })
            .await;
        if let (Some(line), Label::Anomaly { incident, .. }) = (&traced, label) {
            let lines = traces.entry(incident).or_default();
            if lines.len() < 8 {
                lines.push(line.clone());
            }
        }
        report.events += 1;
        let scored = t >= scored_from;
        if scored && label == Label::Benign {
            report.benign_scored += 1;
        }
        for (playbook, title) in alerts {
            match label {
                Label::Anomaly { kind, incident } => {
                    let e = caught.entry(incident).or_insert((kind, Vec::new()));
                    if !e.1.contains(&playbook) {
                        e.1.push(playbook.clone());
                    }
                    let k = report.kinds.entry(kind).or_default();
                    if k.example.is_none() {
                        k.example = Some(title.clone());
                    }
                }
                Label::Benign if scored => {
                    report.false_alerts += 1;
                    *report
                        .false_by_playbook
                        .entry(playbook.clone())
                        .or_default() += 1;
                    let n = false_examples.entry(playbook).or_default();
                    if *n < 3 || opts.trace_misses {
                        *n += 1;
                        report.false_examples.push(match &traced {
                            Some(tr) => format!("{title}\n      {tr}"),
                            None => title,
                        });
                    }
                }
                Label::Benign => {}
            }
        }
    }
    for inc in scenario.incidents() {
        if opts.trace_misses && !caught.contains_key(&inc.id) {
            report.misses.push(format!(
                "{} #{} {}:\n    {}",
                inc.kind.name(),
                inc.id,
                inc.principal,
                traces.remove(&inc.id).unwrap_or_default().join("\n    ")
            ));
        }
    }
    for (kind, playbooks) in caught.into_values() {
        let k = report.kinds.entry(kind).or_default();
        k.caught += 1;
        for p in playbooks {
            *k.by_playbook.entry(p).or_default() += 1;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The report as printed.
pub fn render(opts: &EvalOptions, r: &EvalReport) -> String {
    let mut s = format!(
        "behavioural evaluation: seed {}, {} weeks, {} people, {} service accounts, {} incidents per kind; {} events in {:.0} s\n\n",
        opts.seed, opts.weeks, opts.humans, opts.service_accounts, opts.incidents_per_kind, r.events, r.seconds
    );
    let _ = writeln!(
        s,
        "| anomaly | incidents | caught | recall | caught by |\n| --- | --- | --- | --- | --- |"
    );
    for kind in AnomalyKind::ALL {
        let Some(k) = r.kinds.get(&kind) else {
            continue;
        };
        let by: Vec<String> = k
            .by_playbook
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0}% | {} |",
            kind.name(),
            k.incidents,
            k.caught,
            100.0 * k.caught as f64 / k.incidents.max(1) as f64,
            by.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nfalse alerts: {} on {} benign events after the learning days = {:.2} per 100k",
        r.false_alerts,
        r.benign_scored,
        r.false_per_100k()
    );
    for (p, n) in &r.false_by_playbook {
        let _ = writeln!(s, "  {p}: {n}");
    }
    for e in &r.false_examples {
        let _ = writeln!(s, "  e.g. {e}");
    }
    for m in &r.misses {
        let _ = writeln!(s, "missed {m}");
    }
    let _ = writeln!(s, "\nexamples of caught incidents:");
    for kind in AnomalyKind::ALL {
        if let Some(e) = r.kinds.get(&kind).and_then(|k| k.example.as_ref()) {
            let _ = writeln!(s, "  {}: {e}", kind.name());
        }
    }
    let recall_met = r.min_recall() >= 0.9;
    let fp_met = r.false_per_100k() <= 1.0;
    let _ = writeln!(
        s,
        "\ntargets: recall >= 90% on every kind: {} (lowest {:.0}%); false alerts <= 1 per 100k: {} ({:.2})",
        if recall_met { "met" } else { "NOT met" },
        100.0 * r.min_recall(),
        if fp_met { "met" } else { "NOT met" },
        r.false_per_100k()
    );
    s
}
