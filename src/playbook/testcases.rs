//! Playbook tests as data: `name.tests.yaml` beside `name.rhai` lists events and the verdict each should (or should not) produce.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{load_dir, Diagnostic, Ev, PlaybookSet, Verdict};
use crate::config::{EnrichConfig, PlaybooksConfig};
use crate::enrich::Enricher;
use crate::event::{decode_record, AuditEvent};
use crate::state::MemoryStore;

/// One case of a tests file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// The audit event, inline.
    #[serde(default)]
    pub event: Option<Value>,
    /// Or a file holding it (one JSON event), relative to the tests file.
    #[serde(default)]
    pub event_file: Option<PathBuf>,
    /// Events run first, to build up state for count/distinct/first_seen (their verdicts are ignored).
    #[serde(default)]
    pub before: Vec<Value>,
    /// Enrichment fields to set over what the enrichers derive (e.g. `identity: { known: false }`),
    /// for the event and the `before` events alike.
    #[serde(default)]
    pub enrichment: Option<Value>,
    /// List entries added for this case only, as `playbooks.lists` would add them
    /// (e.g. `falco_enabled: [all-k8s-audit-events]` for a rule that is off by default).
    #[serde(default)]
    pub lists: std::collections::BTreeMap<String, Vec<String>>,
    pub expect: Expect,
}

/// What the playbook should produce; fields left out are not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub fires: bool,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub score: Option<i64>,
    #[serde(default)]
    pub dedup: Option<String>,
    /// Response kinds in order; `kind!` means "with approval".
    #[serde(default)]
    pub responses: Option<Vec<String>>,
    /// Keys that must be in the context with these values.
    #[serde(default)]
    pub context: Option<serde_json::Map<String, Value>>,
}

/// The outcome of a whole run.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// Printed output: a line per case, a diff per failure.
    pub text: String,
    /// Playbooks with fewer cases than required, or lacking a positive or a negative case.
    pub coverage_problems: Vec<String>,
}

/// Errors that stop a test run before any case runs.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Compile(Vec<Diagnostic>),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

fn file_err(path: &Path, message: impl Into<String>) -> TestRunError {
    TestRunError::File {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Runs every tests file in the directory against the compiled set.
/// Events get `cluster` as their cluster name, as the pipeline's default would give them.
pub async fn run(
    cfg: &PlaybooksConfig,
    enrich: &EnrichConfig,
    cluster: &str,
    min_tests: usize,
) -> Result<Report, TestRunError> {
    let set = load_dir(&cfg.dir, cfg).map_err(TestRunError::Compile)?;
    let enricher = Enricher::build(enrich, Arc::new(MemoryStore::default()), "")
        .map_err(|e| file_err(&cfg.dir, e.to_string()))?;
    let mut report = Report::default();
    for p in set.playbooks() {
        let tests = p.file.with_extension("tests.yaml");
        let cases: Vec<Case> = if tests.exists() {
            let text =
                std::fs::read_to_string(&tests).map_err(|e| file_err(&tests, e.to_string()))?;
            parse_cases(&text).map_err(|e| file_err(&tests, e.to_string()))?
        } else {
            Vec::new()
        };
        let positives = cases.iter().filter(|c| c.expect.fires).count();
        if min_tests > 0 && (cases.len() < min_tests || positives == 0 || positives == cases.len())
        {
            report.coverage_problems.push(format!(
                "{}: {} case(s), {positives} positive; need at least {min_tests} with a positive and a negative",
                p.id,
                cases.len()
            ));
        }
        for case in &cases {
            let mut event = load_event(case, &tests)?;
            event.provenance.cluster = cluster.to_owned();
            // A case with its own list entries runs on a set compiled with them.
            let with_lists;
            let set = if case.lists.is_empty() {
                &set
            } else {
                let mut c = cfg.clone();
                for (k, v) in &case.lists {
                    c.lists
                        .entry(k.clone())
                        .or_default()
                        .extend(v.iter().cloned());
                }
                with_lists = load_dir(&cfg.dir, &c).map_err(TestRunError::Compile)?;
                &with_lists
            };
            set.reset_state();
            for (i, b) in case.before.iter().enumerate() {
                let mut d = decode_record(b.to_string().as_bytes(), &Default::default());
                if d.events.len() != 1 {
                    return Err(file_err(
                        &tests,
                        format!("case {:?}: before[{i}] is not one audit event", case.name),
                    ));
                }
                let mut ev = d.events.remove(0);
                ev.provenance.cluster = cluster.to_owned();
                enricher.enrich(&mut ev).await;
                // The case's enrichment describes its whole context: the events before too.
                let _ = apply_override(&mut ev, case);
                set.evaluate(&Ev::new(ev));
            }
            let diffs = check(set, &enricher, &p.id, event, case).await;
            if diffs.is_empty() {
                report.passed += 1;
                let _ = writeln!(report.text, "ok    {} :: {}", p.id, case.name);
            } else {
                report.failed += 1;
                let _ = writeln!(
                    report.text,
                    "FAIL  {} :: {}  ({})",
                    p.id,
                    case.name,
                    tests.display()
                );
                for d in diffs {
                    let _ = writeln!(report.text, "        {d}");
                }
            }
        }
    }
    Ok(report)
}

/// Parses the text of a tests file into its cases.
///
/// YAML merge keys (`<<: *base`) let a case vary one field of another's event.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, serde_yaml::Error> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(text)?;
    apply_merge(&mut doc)?;
    serde_yaml::from_value(doc)
}

/// Applies merge keys innermost first, so that a mapping merged in has had its
/// own `<<` applied (serde_yaml's `apply_merge` alone works outside-in and
/// leaves that one behind as a literal `<<` key).
fn apply_merge(v: &mut serde_yaml::Value) -> Result<(), serde_yaml::Error> {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            for child in m.values_mut() {
                apply_merge(child)?;
            }
            if m.contains_key("<<") {
                v.apply_merge()?;
            }
        }
        Value::Sequence(items) => {
            for child in items {
                apply_merge(child)?;
            }
        }
        Value::Tagged(t) => apply_merge(&mut t.value)?,
        _ => {}
    }
    Ok(())
}

fn load_event(case: &Case, tests: &Path) -> Result<AuditEvent, TestRunError> {
    let raw = match (&case.event, &case.event_file) {
        (Some(v), _) => v.to_string(),
        (None, Some(f)) => {
            let path = tests.parent().unwrap_or(Path::new(".")).join(f);
            std::fs::read_to_string(&path).map_err(|e| file_err(&path, e.to_string()))?
        }
        (None, None) => {
            return Err(file_err(
                tests,
                format!("case {:?} has neither event nor event_file", case.name),
            ))
        }
    };
    let mut d = decode_record(raw.trim().as_bytes(), &Default::default());
    match d.events.len() {
        1 => Ok(d.events.remove(0)),
        _ => Err(file_err(
            tests,
            format!(
                "case {:?}: the event does not decode as one audit event ({})",
                case.name,
                d.failures
                    .first()
                    .map_or("several events".to_owned(), |f| f.error.to_string())
            ),
        )),
    }
}

/// Sets `patch`'s fields over `base`, recursively.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Sets the case's `enrichment` fields over what the enrichers derived.
fn apply_override(ev: &mut AuditEvent, case: &Case) -> Result<(), String> {
    if let (Some(patch), Some(e)) = (&case.enrichment, ev.enrichment.as_deref()) {
        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
        merge(&mut v, patch);
        let e = serde_json::from_value(v).map_err(|err| {
            format!("enrichment override does not fit the enrichment shape: {err}")
        })?;
        ev.enrichment = Some(Box::new(e));
    }
    Ok(())
}

async fn check(
    set: &PlaybookSet,
    enricher: &Enricher,
    id: &str,
    mut ev: AuditEvent,
    case: &Case,
) -> Vec<String> {
    enricher.enrich(&mut ev).await;
    if let Err(e) = apply_override(&mut ev, case) {
        return vec![e];
    }
    let evaluation = set.evaluate(&Ev::new(ev));
    let mut diffs: Vec<String> = evaluation
        .faults
        .iter()
        .filter(|f| f.playbook == id)
        .map(|f| format!("fault: {f}"))
        .collect();
    let verdict: Option<&Verdict> = evaluation.verdicts.iter().find(|v| v.playbook == id);
    let e = &case.expect;
    match (e.fires, verdict) {
        (false, None) => {}
        (false, Some(v)) => diffs.push(format!(
            "fires: expected no verdict, got {:?} ({:?})",
            v.title, v.severity
        )),
        (true, None) => diffs.push("fires: expected a verdict, got none".to_owned()),
        (true, Some(v)) => {
            let mut cmp = |field: &str, want: Option<String>, got: String| {
                if let Some(w) = want {
                    if w != got {
                        diffs.push(format!("{field}:\n          - {w}\n          + {got}"));
                    }
                }
            };
            cmp("title", e.title.clone(), v.title.clone());
            cmp(
                "severity",
                e.severity.clone(),
                format!("{:?}", v.severity).to_lowercase(),
            );
            cmp("score", e.score.map(|s| s.to_string()), v.score.to_string());
            cmp("dedup", e.dedup.clone(), v.dedup.clone());
            let got: Vec<String> = v
                .responses
                .iter()
                .map(|r| format!("{}{}", r.kind, if r.approval { "!" } else { "" }))
                .collect();
            cmp(
                "responses",
                e.responses.as_ref().map(|r| r.join(", ")),
                got.join(", "),
            );
            if let Some(ctx) = &e.context {
                for (k, want) in ctx {
                    match v.context.get(k) {
                        Some(got) if got == want => {}
                        got => diffs.push(format!(
                            "context.{k}:\n          - {want}\n          + {}",
                            got.map_or("(absent)".to_owned(), ToString::to_string)
                        )),
                    }
                }
            }
        }
    }
    diffs
}
