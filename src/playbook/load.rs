//! Loading a playbook directory: compile every file, check the contract, report every problem as `file:line:col: message`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic, Scope};
use serde::Deserialize;

use super::verdict::{Gating, Threshold};
use super::{host, sandbox, Playbook, PlaybookSet, Selector, Severity, OPTIONAL};
use crate::config::PlaybooksConfig;
use crate::enrich::Pattern;

/// One problem in a playbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

fn diag(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line,
        col,
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    #[serde(default)]
    id: Option<String>,
    title: String,
    #[serde(default)]
    description: String,
    severity: String,
    #[serde(default)]
    mitre: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    runbook: Option<String>,
    #[serde(default)]
    falco_rule: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    on: On,
    /// Matches with the same dedup key inside this window collapse into one alert.
    #[serde(default)]
    dedup_window: Option<String>,
    #[serde(default)]
    threshold: Option<MetaThreshold>,
    /// Responders only record what they would do for this playbook (trying a new playbook out).
    #[serde(default)]
    dry_run: bool,
}

/// `threshold: #{ count: 20, window: "10m" }` or `#{ distinct: 10, of: "name", window: "5m" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaThreshold {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    distinct: Option<u64>,
    #[serde(default)]
    of: Option<String>,
    window: String,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct On {
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    subresources: Option<Vec<String>>,
    #[serde(default)]
    stages: Option<Vec<String>>,
    #[serde(default)]
    users: Option<Vec<Pattern>>,
    #[serde(default)]
    namespaces: Option<Vec<Pattern>>,
    #[serde(default)]
    actors: Option<Vec<crate::enrich::identity::PrincipalKind>>,
    #[serde(default)]
    system_users: Option<bool>,
    #[serde(default)]
    networks: Option<Vec<super::NetworkScope>>,
    #[serde(default)]
    codes: Option<Vec<u16>>,
    #[serde(default)]
    impersonation: Option<bool>,
    #[serde(default)]
    tiers: Option<Vec<crate::enrich::asset::Tier>>,
    #[serde(default)]
    baseline: Option<Vec<super::selector::BaselineFlag>>,
    #[serde(default)]
    request_contains: Option<Vec<String>>,
    /// Field tests checked natively before the script (see `prefilter`).
    #[serde(default, rename = "where")]
    where_: std::collections::BTreeMap<String, super::prefilter::Tests>,
    /// Alternatives, at least one of which must hold (each as `where`).
    #[serde(default)]
    where_any: Vec<std::collections::BTreeMap<String, super::prefilter::Tests>>,
}

/// The `.rhai` files of a directory, sorted.
fn playbook_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rhai"));
    files.sort();
    files
}

/// What the directory and its `lists/` look like now (files, mtimes, sizes), to notice edits.
/// Links are followed: a mounted ConfigMap's files are links through `..data`, which Kubernetes
/// swaps to a new directory when the ConfigMap changes.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime, u64)> {
    let scan = |d: &Path| -> Vec<(PathBuf, std::time::SystemTime, u64)> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| {
                        let m = std::fs::metadata(e.path()).ok()?;
                        m.is_file().then_some(())?;
                        Some((e.path(), m.modified().ok()?, m.len()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = scan(dir);
    out.extend(scan(&dir.join("lists")));
    out.sort();
    out
}

/// [`fingerprint`] of the directory and every pack.
pub fn fingerprint_all(cfg: &PlaybooksConfig) -> Vec<(PathBuf, std::time::SystemTime, u64)> {
    let mut out = fingerprint(&cfg.dir);
    for p in &cfg.packs {
        out.extend(fingerprint(p));
    }
    out
}

/// `lists/NAME.yaml` files (a YAML sequence of strings each), added to the config's lists.
fn list_files(
    dir: &Path,
    lists: &mut HashMap<String, HashSet<String>>,
    diags: &mut Vec<Diagnostic>,
) {
    let Ok(rd) = std::fs::read_dir(dir.join("lists")) else {
        return;
    };
    let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    for file in files {
        let name = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| diag(&file, 0, 0, format!("cannot read: {e}")))
            .and_then(|text| {
                serde_yaml::from_str::<Vec<String>>(&text).map_err(|e| {
                    let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                    diag(
                        &file,
                        line,
                        col,
                        format!("a list file holds a YAML sequence of strings: {e}"),
                    )
                })
            });
        match parsed {
            Ok(values) => lists.entry(name).or_default().extend(values),
            Err(d) => diags.push(d),
        }
    }
}

/// Compiles every playbook in `dir`; returns all problems of all files at once.
pub fn load_dir(dir: &Path, cfg: &PlaybooksConfig) -> Result<PlaybookSet, Vec<Diagnostic>> {
    load_dir_with(dir, cfg, Arc::default())
}

/// [`load_dir`] with the new-terms history of the set it replaces.
pub fn load_dir_with(
    dir: &Path,
    cfg: &PlaybooksConfig,
    terms: Arc<super::terms::Terms>,
) -> Result<PlaybookSet, Vec<Diagnostic>> {
    if !dir.is_dir() {
        return Err(vec![diag(dir, 0, 0, "playbook directory not found")]);
    }
    let mut lists: HashMap<String, HashSet<String>> = cfg
        .lists
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect();
    let mut diags = Vec::new();
    let dirs: Vec<&Path> = std::iter::once(dir)
        .chain(cfg.packs.iter().map(PathBuf::as_path))
        .collect();
    for d in &dirs {
        if !d.is_dir() {
            diags.push(diag(d, 0, 0, "playbook pack directory not found"));
        }
        list_files(d, &mut lists, &mut diags);
    }
    let per_cluster = cfg
        .cluster_lists
        .iter()
        .map(|(cluster, ls)| {
            let ls = ls
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect();
            (cluster.clone(), ls)
        })
        .collect();
    let mut engine = sandbox::engine(&cfg.limits);
    let state = Arc::new(super::state_api::WindowState::new(
        cfg.limits.max_state_keys,
    ));
    let lists = host::Lists {
        global: lists,
        per_cluster,
    };
    let defined = |name: &str| lists.defined(name);
    let mut known: HashSet<String> = HashSet::new();
    for file in dirs.iter().flat_map(|d| playbook_files(d)) {
        let Ok(source) = std::fs::read_to_string(&file) else {
            continue; // compile() reports it
        };
        for (name, line, col) in super::list_refs::list_refs(&source) {
            if !defined(&name) && known.insert(format!("{}|{name}|{line}", file.display())) {
                diags.push(diag(
                    &file,
                    line,
                    col,
                    format!("list {name:?} is defined nowhere: add lists/{name}.yaml beside the playbooks or playbooks.lists.{name} in the config (an empty list is `[]`)"),
                ));
            }
        }
    }
    let lists = Arc::new(lists);
    host::register(&mut engine, lists.clone(), state.clone(), terms);
    let mut playbooks = Vec::new();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for file in dirs.iter().flat_map(|d| playbook_files(d)) {
        match compile(&engine, &file, cfg) {
            Ok(Some(p)) => {
                let groups = std::iter::once(&p.on.filters).chain(&p.on.filters_any);
                for name in groups.flat_map(|g| super::prefilter::list_names(g)) {
                    if !lists.defined(name) {
                        diags.push(diag(
                            &file,
                            1,
                            1,
                            format!("meta().on.where: list {name:?} is defined nowhere: add lists/{name}.yaml beside the playbooks or playbooks.lists.{name} in the config (an empty list is `[]`)"),
                        ));
                    }
                }
                if let Some(first) = ids.insert(p.id.clone(), file.clone()) {
                    diags.push(diag(
                        &file,
                        1,
                        1,
                        format!(
                            "duplicate playbook id {:?} (also in {})",
                            p.id,
                            first.display()
                        ),
                    ));
                }
                playbooks.push(p);
            }
            Ok(None) => {}
            Err(mut d) => diags.append(&mut d),
        }
    }
    let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let exceptions =
        super::exceptions::Exceptions::build(&lists, &ids).unwrap_or_else(|problems| {
            for p in problems {
                diags.push(diag(
                    &dir.join("lists").join("exceptions.yaml"),
                    0,
                    0,
                    format!("exception {p}"),
                ));
            }
            Default::default()
        });
    if diags.is_empty() {
        Ok(PlaybookSet::new(
            engine,
            state,
            lists,
            playbooks,
            cfg.limits.timeout.get(),
            exceptions,
        ))
    } else {
        Err(diags)
    }
}

/// One file: `Ok(None)` when it is disabled.
fn compile(
    engine: &rhai::Engine,
    file: &Path,
    cfg: &PlaybooksConfig,
) -> Result<Option<Playbook>, Vec<Diagnostic>> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| vec![diag(file, 0, 0, format!("cannot read: {e}"))])?;
    let ast = engine.compile(&source).map_err(|e| {
        let p = e.1;
        vec![diag(
            file,
            p.line().unwrap_or(0),
            p.position().unwrap_or(0),
            e.0.to_string(),
        )]
    })?;
    let fns: HashMap<String, usize> = ast
        .iter_functions()
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect();
    let mut problems = Vec::new();
    let arity = |name: &str, want: usize, problems: &mut Vec<Diagnostic>| match fns.get(name) {
        Some(n) if *n != want => {
            problems.push(diag(
                file,
                1,
                1,
                format!("fn {name} must take {want} parameter(s), not {n}"),
            ));
            false
        }
        Some(_) => true,
        None => false,
    };
    if !fns.contains_key("meta") {
        return Err(vec![diag(
            file,
            1,
            1,
            "missing fn meta() returning the playbook's metadata map",
        )]);
    }
    arity("meta", 0, &mut problems);
    let has_rule = arity("rule", 1, &mut problems);
    let has_score = arity("score", 1, &mut problems);
    if !has_rule && !has_score && problems.is_empty() {
        problems.push(diag(file, 1, 1, "missing fn rule(e) or fn score(e)"));
    }
    if has_rule && has_score {
        problems.push(diag(
            file,
            1,
            1,
            "define fn rule(e) or fn score(e), not both",
        ));
    }
    let has = OPTIONAL.map(|f| arity(f, 1, &mut problems));
    let opts = CallFnOptions::new().eval_ast(false);
    let meta = sandbox::with_deadline(cfg.limits.timeout.get(), || {
        engine.call_fn_with_options::<Dynamic>(opts, &mut Scope::new(), &ast, "meta", ())
    })
    .map_err(|e| {
        let p = e.position();
        vec![diag(
            file,
            p.line().unwrap_or(1),
            p.position().unwrap_or(1),
            format!("fn meta() failed: {e}"),
        )]
    })?;
    let meta: Meta = rhai::serde::from_dynamic(&meta)
        .map_err(|e| vec![diag(file, 1, 1, format!("invalid meta(): {e}"))])?;
    let severity = match Severity::parse(&meta.severity) {
        Some(s) => s,
        None => {
            problems.push(diag(
                file,
                1,
                1,
                format!(
                    "unknown severity {:?}; use info, low, medium, high or critical",
                    meta.severity
                ),
            ));
            Severity::Low
        }
    };
    let secs = |what: &str, s: &str, problems: &mut Vec<Diagnostic>| match humantime::parse_duration(
        s.trim(),
    ) {
        Ok(d) if !d.is_zero() => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        _ => {
            problems.push(diag(
                file,
                1,
                1,
                format!("meta().{what}: invalid duration {s:?}; write e.g. \"10m\""),
            ));
            None
        }
    };
    let dedup_window = meta
        .dedup_window
        .as_deref()
        .and_then(|w| secs("dedup_window", w, &mut problems));
    let threshold = match &meta.threshold {
        None => None,
        Some(t) => {
            let window = secs("threshold.window", &t.window, &mut problems);
            match (t.count, t.distinct, &t.of) {
                (Some(n), None, None) => window.map(|window| Threshold {
                    at_least: n,
                    window,
                    distinct: None,
                }),
                (None, Some(n), Some(of)) if super::host::FIELDS.contains(&of.as_str()) => window
                    .map(|window| Threshold {
                        at_least: n,
                        window,
                        distinct: Some(of.clone()),
                    }),
                (None, Some(_), Some(of)) => {
                    problems.push(diag(
                        file,
                        1,
                        1,
                        format!(
                            "meta().threshold.of: unknown field {of:?}; use one of {}",
                            super::host::FIELDS.join(", ")
                        ),
                    ));
                    None
                }
                _ => {
                    problems.push(diag(
                        file,
                        1,
                        1,
                        "meta().threshold: set count, or distinct with of",
                    ));
                    None
                }
            }
        }
    };
    let mut build = |spec| {
        super::prefilter::build(spec).unwrap_or_else(|errors| {
            problems.extend(errors.into_iter().map(|m| diag(file, 1, 1, m)));
            Vec::new()
        })
    };
    let filters = build(meta.on.where_);
    let filters_any: Vec<_> = meta.on.where_any.into_iter().map(&mut build).collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    if !meta.enabled {
        return Ok(None);
    }
    let id = meta.id.unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    });
    Ok(Some(Playbook {
        id,
        title: meta.title,
        description: meta.description,
        severity,
        mitre: meta.mitre,
        tags: meta.tags,
        owner: meta.owner,
        runbook: meta.runbook,
        falco_rule: meta.falco_rule,
        file: file.to_owned(),
        on: Selector {
            verbs: meta.on.verbs,
            resources: meta.on.resources,
            subresources: meta.on.subresources,
            stages: meta.on.stages,
            users: meta.on.users,
            namespaces: meta.on.namespaces,
            actors: meta.on.actors,
            system_users: meta.on.system_users,
            networks: meta.on.networks,
            codes: meta.on.codes,
            impersonation: meta.on.impersonation,
            tiers: meta.on.tiers,
            baseline: meta.on.baseline,
            request_contains: meta.on.request_contains,
            filters,
            filters_any,
        },
        gating: Gating {
            window: dedup_window,
            threshold,
            value: None,
            dry_run: meta.dry_run,
        },
        ast,
        has_rule,
        has,
    }))
}
