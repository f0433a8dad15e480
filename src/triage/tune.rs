//! The tuning report (`rampart tune`, `/api/tune`, the console's Tuning page): per playbook its fires, dedup keys, outcomes, precision and suppressions; the noisiest principals; and, from alerts marked false positive, the allowlist entries that would have silenced them, which `--apply` writes to the list file hot reload reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Outcome, Suppression, Verdict};
use crate::playbook::{Allowlist, PlaybookSet};
use crate::state::model::{Alert, AlertKind};
use crate::state::summary::EventSummary;

/// One playbook's line of the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlaybookRow {
    pub playbook: String,
    /// Alerts raised (first alerts of their dedup windows).
    pub alerts: u64,
    /// Matches, counting those a dedup window folded into an alert.
    pub fires: u64,
    /// Distinct dedup keys among its alerts.
    pub dedup_keys: u64,
    pub true_positive: u64,
    pub benign: u64,
    pub false_positive: u64,
    /// Alerts no one has marked yet.
    pub unmarked: u64,
    /// Of the alerts marked, the share that were right to fire (true positive or benign).
    pub precision: Option<f64>,
    /// Alerts a suppression silenced.
    pub suppressed: u64,
    /// Suppressions in force that name it.
    pub active_suppressions: u64,
}

/// A principal behind many alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrincipalRow {
    pub principal: String,
    pub alerts: u64,
    pub false_positive: u64,
    pub playbooks: Vec<String>,
}

/// An allowlist entry that would have silenced alerts marked false positive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suggestion {
    pub playbook: String,
    pub list: String,
    /// The `where` field the list is tested against, and the value the alerts had there.
    pub field: String,
    pub value: String,
    /// The false-positive alerts it would have silenced.
    pub alerts: Vec<String>,
    /// The other playbooks that read the same list (an entry silences them too).
    pub also_silences: Vec<String>,
    /// The file `--apply` writes.
    pub file: PathBuf,
}

impl Suggestion {
    /// `LIST=VALUE`, as `rampart tune --apply` takes it.
    pub fn key(&self) -> String {
        format!("{}={}", self.list, self.value)
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub playbooks: Vec<PlaybookRow>,
    pub principals: Vec<PrincipalRow>,
    pub suggestions: Vec<Suggestion>,
    /// Playbooks with false positives that nothing could be suggested for (no principal, no allowlist).
    pub without_allowlist: Vec<String>,
}

/// The report as `rampart tune` prints it.
pub fn render(r: &Report) -> String {
    let mut s = format!(
        "{:<36}  {:>6}  {:>6}  {:>5}  {:>4}  {:>6}  {:>4}  {:>8}  {:>9}  {:>10}\n",
        "PLAYBOOK",
        "ALERTS",
        "FIRES",
        "KEYS",
        "TP",
        "BENIGN",
        "FP",
        "UNMARKED",
        "PRECISION",
        "SUPPRESSED"
    );
    for p in &r.playbooks {
        s.push_str(&format!(
            "{:<36}  {:>6}  {:>6}  {:>5}  {:>4}  {:>6}  {:>4}  {:>8}  {:>9}  {:>10}\n",
            p.playbook,
            p.alerts,
            p.fires,
            p.dedup_keys,
            p.true_positive,
            p.benign,
            p.false_positive,
            p.unmarked,
            p.precision
                .map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0)),
            format!("{} ({} on)", p.suppressed, p.active_suppressions),
        ));
    }
    if !r.principals.is_empty() {
        s.push_str("\nNoisiest principals:\n");
        for p in &r.principals {
            s.push_str(&format!(
                "  {:>5} alert(s), {} false positive(s)  {}  ({})\n",
                p.alerts,
                p.false_positive,
                p.principal,
                p.playbooks.join(", ")
            ));
        }
    }
    if r.suggestions.is_empty() {
        s.push_str("\nNo allowlist suggestions: no alert marked false positive has a value an allowlist could take.\n");
    } else {
        s.push_str("\nAllowlist entries that would have silenced the false positives (apply with `rampart tune --apply LIST=VALUE`):\n");
        for x in &r.suggestions {
            s.push_str(&format!(
                "  {}  [{} by {}; {} alert(s); file {}]{}\n",
                x.key(),
                x.playbook,
                x.field,
                x.alerts.len(),
                x.file.display(),
                if x.also_silences.is_empty() {
                    String::new()
                } else {
                    format!("; also silences {}", x.also_silences.join(", "))
                }
            ));
        }
    }
    for p in &r.without_allowlist {
        s.push_str(&format!(
            "  {p}: false positives, but nothing to suggest (no principal on the events, no allowlist in its meta().on.where)\n"
        ));
    }
    s
}

/// How many principals the report lists.
const TOP_PRINCIPALS: usize = 10;

/// The value `field` (a `where` field name) has on the alert's event; empty when absent.
pub fn field_value(ev: &EventSummary, field: &str) -> String {
    let o = ev.object_ref.as_ref();
    let part = |f: fn(&crate::event::ObjectReference) -> Option<&String>| {
        o.and_then(f).cloned().unwrap_or_default()
    };
    match field {
        "user" => ev.user.username.clone(),
        "verb" => ev.verb.clone(),
        "resource" => part(|o| o.resource.as_ref()),
        "subresource" => part(|o| o.subresource.as_ref()),
        "namespace" => part(|o| o.namespace.as_ref()),
        "name" => part(|o| o.name.as_ref()),
        "api_group" => part(|o| o.api_group.as_ref()),
        "uri" => ev.request_uri.clone(),
        "user_agent" => ev.user_agent.clone().unwrap_or_default(),
        "source_ip" => ev.source_ips.first().cloned().unwrap_or_default(),
        "impersonated" => ev
            .impersonated_user
            .as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_default(),
        "stage" => ev.stage.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        other => other
            .strip_prefix("annotations.")
            .and_then(|k| ev.annotations.get(k).cloned())
            .unwrap_or_default(),
    }
}

/// Where the lists of a playbook set are written: the first directory (`dir`, then each pack) that
/// already has `lists/NAME.yaml`, else `dir`'s `lists/`.
pub fn list_file(cfg: &crate::config::PlaybooksConfig, list: &str) -> PathBuf {
    let name = format!("{list}.yaml");
    std::iter::once(&cfg.dir)
        .chain(&cfg.packs)
        .map(|d| d.join("lists").join(&name))
        .find(|p| p.exists())
        .unwrap_or_else(|| cfg.dir.join("lists").join(&name))
}

/// Builds the report from the retained alerts, their outcomes and the suppressions; `playbooks`
/// (the live set and its config) supplies the allowlists.
pub fn report(
    alerts: &[Alert],
    outcomes: &HashMap<String, Outcome>,
    suppressions: &[Suppression],
    playbooks: Option<(&PlaybookSet, &crate::config::PlaybooksConfig)>,
    now_ms: u64,
) -> Report {
    let roots: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Alert)
        .collect();
    let mut rows: BTreeMap<&str, PlaybookRow> = BTreeMap::new();
    let mut keys: HashMap<&str, BTreeSet<(&str, &str)>> = HashMap::new();
    let mut people: HashMap<&str, (u64, u64, BTreeSet<&str>)> = HashMap::new();
    for a in &roots {
        let r = rows.entry(&a.playbook).or_default();
        r.alerts += 1;
        r.fires += a.count.max(1);
        keys.entry(&a.playbook)
            .or_default()
            .insert((&a.cluster, &a.dedup));
        if a.suppressed.is_some() {
            r.suppressed += 1;
        }
        let verdict = outcomes.get(&a.id).map(|o| o.verdict);
        match verdict {
            Some(Verdict::TruePositive) => r.true_positive += 1,
            Some(Verdict::Benign) => r.benign += 1,
            Some(Verdict::FalsePositive) => r.false_positive += 1,
            None => r.unmarked += 1,
        }
        let who = a.event().user.username.as_str();
        if !who.is_empty() {
            let p = people.entry(who).or_default();
            p.0 += 1;
            p.1 += u64::from(verdict == Some(Verdict::FalsePositive));
            p.2.insert(&a.playbook);
        }
    }
    for s in suppressions.iter().filter(|s| s.active(now_ms)) {
        if let Some(p) = &s.playbook {
            rows.entry(p).or_default().active_suppressions += 1;
        }
    }
    let mut playbook_rows: Vec<PlaybookRow> = rows
        .into_iter()
        .map(|(name, mut r)| {
            r.playbook = name.to_owned();
            r.dedup_keys = keys.get(name).map_or(0, |k| k.len() as u64);
            let marked = r.true_positive + r.benign + r.false_positive;
            r.precision = (marked > 0).then(|| (r.true_positive + r.benign) as f64 / marked as f64);
            r
        })
        .collect();
    playbook_rows.sort_by(|a, b| b.fires.cmp(&a.fires).then(a.playbook.cmp(&b.playbook)));
    let mut principals: Vec<PrincipalRow> = people
        .into_iter()
        .map(|(p, (n, fp, pbs))| PrincipalRow {
            principal: p.to_owned(),
            alerts: n,
            false_positive: fp,
            playbooks: pbs.into_iter().map(str::to_owned).collect(),
        })
        .collect();
    principals.sort_by(|a, b| b.alerts.cmp(&a.alerts).then(a.principal.cmp(&b.principal)));
    principals.truncate(TOP_PRINCIPALS);
    let (suggestions, without_allowlist) = match playbooks {
        Some((set, cfg)) => suggest(&roots, outcomes, set, cfg),
        None => (Vec::new(), Vec::new()),
    };
    Report {
        playbooks: playbook_rows,
        principals,
        suggestions,
        without_allowlist,
    }
}

/// For each alert marked false positive, an entry per allowlist of its playbook that does not
/// already hold the alert's value; merged across alerts, the playbook's most specific lists first.
fn suggest(
    roots: &[&Alert],
    outcomes: &HashMap<String, Outcome>,
    set: &PlaybookSet,
    cfg: &crate::config::PlaybooksConfig,
) -> (Vec<Suggestion>, Vec<String>) {
    let allow: HashMap<&str, Vec<Allowlist>> = set
        .playbooks()
        .iter()
        .map(|p| (p.id.as_str(), p.allowlists()))
        .collect();
    let readers = |list: &str| -> Vec<&str> {
        let mut v: Vec<&str> = allow
            .iter()
            .filter(|(_, a)| a.iter().any(|l| l.list == list))
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    };
    let mut out: Vec<Suggestion> = Vec::new();
    let mut without = BTreeSet::new();
    for a in roots {
        if outcomes.get(&a.id).map(|o| o.verdict) != Some(Verdict::FalsePositive) {
            continue;
        }
        let lists = allow
            .get(a.playbook.as_str())
            .map_or(&[][..], Vec::as_slice);
        // The playbook's own lists first, then an exception (this playbook, this principal),
        // then lists other playbooks read too.
        let mut options: Vec<(usize, Allowlist)> = lists
            .iter()
            .map(|l| (readers(&l.list).len().min(2) * 2, l.clone()))
            .collect();
        options.push((
            3,
            Allowlist {
                field: "user".into(),
                list: crate::playbook::EXCEPTIONS.into(),
                glob: false,
            },
        ));
        options.sort_by_key(|(rank, _)| *rank);
        // Already silenced by an entry added since (its own allowlist, or an exception).
        let silenced = options.iter().any(|(_, l)| {
            let v = entry(a, l);
            !v.is_empty() && set.lists().holds(&a.cluster, &l.list, l.glob, &v)
        });
        if silenced {
            continue;
        }
        let mut any = false;
        for (_, l) in options {
            let value = entry(a, &l);
            if value.is_empty() {
                continue;
            }
            any = true;
            match out
                .iter_mut()
                .find(|s| s.playbook == a.playbook && s.list == l.list && s.value == value)
            {
                Some(s) => s.alerts.push(a.id.clone()),
                None => out.push(Suggestion {
                    playbook: a.playbook.clone(),
                    list: l.list.clone(),
                    field: l.field.clone(),
                    value,
                    alerts: vec![a.id.clone()],
                    also_silences: readers(&l.list)
                        .into_iter()
                        .filter(|p| *p != a.playbook && l.list != crate::playbook::EXCEPTIONS)
                        .map(str::to_owned)
                        .collect(),
                    file: list_file(cfg, &l.list),
                }),
            }
        }
        if !any {
            without.insert(a.playbook.clone());
        }
    }
    (out, without.into_iter().collect())
}

/// The entry of list `l` that would exempt `a`'s event (`""` when the event lacks the field):
/// the field's value, or for an exception `PLAYBOOK user=VALUE`.
fn entry(a: &Alert, l: &Allowlist) -> String {
    let v = field_value(a.event(), &l.field);
    if l.list == crate::playbook::EXCEPTIONS && !v.is_empty() {
        format!("{} {}={v}", a.playbook, l.field)
    } else {
        v
    }
}

/// Errors of applying a suggestion.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a YAML list of strings: {message}")]
    NotAList { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Adds `value` to the list file at `path` (created if missing), keeping its comments and entries;
/// `why` becomes a comment on the entry. Returns false when the value was already there.
pub fn apply(path: &Path, value: &str, why: &str) -> Result<bool, ApplyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ApplyError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let parse = |t: &str| -> Result<Vec<String>, ApplyError> {
        if t.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_yaml::from_str::<Option<Vec<String>>>(t)
            .map(Option::unwrap_or_default)
            .map_err(|e| ApplyError::NotAList {
                path: path.to_owned(),
                message: e.to_string(),
            })
    };
    let mut values = parse(&text)?;
    if values.iter().any(|v| v == value) {
        return Ok(false);
    }
    let quoted = serde_json::to_string(value).unwrap_or_default();
    let why = why.replace(['\n', '\r'], " ");
    let line = format!("- {quoted}  # {why}\n");
    let mut appended = text.clone();
    if !appended.is_empty() && !appended.ends_with('\n') {
        appended.push('\n');
    }
    appended.push_str(&line);
    values.push(value.to_owned());
    // A block list takes the line as it is; a flow list (`[]`, `["a"]`) is rewritten as a block.
    let new = if parse(&appended).ok().as_ref() == Some(&values) {
        appended
    } else {
        let comments: String = text
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let body: String = values[..values.len() - 1]
            .iter()
            .map(|v| format!("- {}\n", serde_json::to_string(v).unwrap_or_default()))
            .collect();
        format!("{comments}{body}{line}")
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ApplyError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    crate::fsutil::write_atomic(path, new.as_bytes()).map_err(|source| ApplyError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(true)
}
