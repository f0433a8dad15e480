//! Playbooks: rhai scripts that score events, title them, pick a dedup key and request responses — compiled once, indexed, sandboxed.
//!
//! A playbook is one `.rhai` file with `fn meta()` (id, title, severity,
//! MITRE ids, what it looks at) and `fn rule(e)` or `fn score(e)`, plus
//! optional `title`, `severity`, `dedup`, `context` and `respond`. See
//! `playbooks/README.md` for the contract and the host API.

mod exceptions;
pub mod host;
mod host_detect;
mod host_falco;
mod host_objects;
mod list_refs;
mod load;
mod objects;
mod prefilter;
pub mod sandbox;
mod selector;
pub mod state_api;
mod tally;
pub mod terms;
pub mod testcases;

pub use crate::model::verdict::{self, ResponseRequest, Severity, Verdict};
pub use exceptions::LIST as EXCEPTIONS;
pub use host::Ev;
pub use host_objects::exec_command;
pub use load::{load_dir, load_dir_with, Diagnostic};
pub use prefilter::Allowlist;
pub use selector::{NetworkScope, Selector};
pub use tally::{cost_table, Tally, TallyRow};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Scope, AST};

/// One compiled playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub mitre: Vec<String>,
    pub tags: Vec<String>,
    pub owner: Option<String>,
    pub runbook: Option<String>,
    pub falco_rule: Option<String>,
    pub file: PathBuf,
    pub on: Selector,
    /// Dedup window and threshold, handed to the state stage with every verdict.
    pub gating: verdict::Gating,
    ast: AST,
    has_rule: bool,
    has: [bool; 5],
}

impl Playbook {
    /// The lists that exempt values from this playbook (`meta().on.where`'s `not_in_lists` and
    /// `not_in_glob_lists`): where a false positive's value goes to silence it.
    pub fn allowlists(&self) -> Vec<Allowlist> {
        let mut v = prefilter::allowlists(&self.on.filters);
        for alt in &self.on.filters_any {
            v.extend(prefilter::allowlists(alt));
        }
        v
    }
}

const OPTIONAL: [&str; 5] = ["title", "severity", "dedup", "context", "respond"];

/// A playbook that failed on an event: a limit, or a runtime error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub playbook: String,
    /// `file:line:col` where the script stopped.
    pub location: String,
    /// `limit` (operations, depth, size, deadline) or `error`.
    pub kind: &'static str,
    pub message: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: playbook {} {}: {}",
            self.location, self.playbook, self.kind, self.message
        )
    }
}

/// Everything the playbooks said about one event.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub verdicts: Vec<Verdict>,
    pub faults: Vec<Fault>,
    /// How many playbooks ran (after indexing).
    pub ran: usize,
    /// (playbook index in the set, nanoseconds) of every playbook that ran; filled only by [`PlaybookSet::evaluate_timed`].
    pub timings: Vec<(usize, u64)>,
}

/// A compiled, indexed set of playbooks and the sandboxed engine they run in.
pub struct PlaybookSet {
    engine: Engine,
    state: Arc<state_api::WindowState>,
    lists: Arc<host::Lists>,
    playbooks: Vec<Playbook>,
    /// verb → resource → playbooks; `*` stands for any. Looked up by `&str`, no allocation per event,
    /// with a fast hash (the keys are the playbooks' own, not an attacker's).
    index: Index,
    timeout: Duration,
    /// `lists/exceptions.yaml`: what each playbook is exempt from.
    exceptions: exceptions::Exceptions,
}

impl std::fmt::Debug for PlaybookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybookSet")
            .field("playbooks", &self.playbooks.len())
            .finish()
    }
}

const ANY: &str = "*";

type FastMap<V> = HashMap<String, V, foldhash::fast::FixedState>;
type Index = FastMap<FastMap<Vec<usize>>>;

impl PlaybookSet {
    fn new(
        engine: Engine,
        state: Arc<state_api::WindowState>,
        lists: Arc<host::Lists>,
        playbooks: Vec<Playbook>,
        timeout: Duration,
        exceptions: exceptions::Exceptions,
    ) -> Self {
        let mut index = Index::default();
        for (i, p) in playbooks.iter().enumerate() {
            let verbs = if p.on.verbs.is_empty() {
                vec![ANY.to_owned()]
            } else {
                p.on.verbs.clone()
            };
            let resources = if p.on.resources.is_empty() {
                vec![ANY.to_owned()]
            } else {
                p.on.resources.clone()
            };
            for v in &verbs {
                for r in &resources {
                    index
                        .entry(v.clone())
                        .or_default()
                        .entry(r.clone())
                        .or_default()
                        .push(i);
                }
            }
        }
        Self {
            engine,
            state,
            lists,
            playbooks,
            index,
            timeout,
            exceptions,
        }
    }

    /// The lists the playbooks read, as loaded.
    pub fn lists(&self) -> &host::Lists {
        &self.lists
    }

    /// Forgets the state helpers' memory (between test cases).
    pub fn reset_state(&self) {
        self.state.clear();
    }

    pub fn playbooks(&self) -> &[Playbook] {
        &self.playbooks
    }

    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// The playbooks that look at this event, in load order.
    pub fn candidates(&self, ev: &crate::event::AuditEvent) -> Vec<usize> {
        let o = ev.object_ref.as_ref();
        let resource = o.and_then(|o| o.resource.as_deref()).unwrap_or("");
        let mut out: Vec<usize> = Vec::new();
        for key in [
            (ev.verb.as_str(), resource),
            (ev.verb.as_str(), ANY),
            (ANY, resource),
            (ANY, ANY),
        ] {
            if let Some(ids) = self
                .index
                .get(key.0)
                .and_then(|by_resource| by_resource.get(key.1))
            {
                out.extend(ids);
            }
        }
        out.sort_unstable();
        out.dedup();
        out.retain(|i| {
            let p = &self.playbooks[*i];
            p.on.admits(ev)
                && prefilter::admits(&p.on.filters, ev, &p.id, &self.lists)
                && (p.on.filters_any.is_empty()
                    || p.on
                        .filters_any
                        .iter()
                        .any(|g| prefilter::admits(g, ev, &p.id, &self.lists)))
                && !self.exceptions.exempts(*i, &p.id, ev, &self.lists)
        });
        out
    }

    /// Runs every relevant playbook; a fault in one never stops the others.
    pub fn evaluate(&self, ev: &Ev) -> Evaluation {
        self.evaluate_timed(ev, false)
    }

    /// [`Self::evaluate`], timing each playbook when `timed` (for profiles: the clock costs about 50 ns a playbook).
    pub fn evaluate_timed(&self, ev: &Ev, timed: bool) -> Evaluation {
        let ids = self.candidates(ev.event());
        let mut out = Evaluation {
            ran: ids.len(),
            ..Evaluation::default()
        };
        for i in ids {
            let p = &self.playbooks[i];
            let started = timed.then(std::time::Instant::now);
            let result = self.run(p, ev);
            if let Some(t) = started {
                out.timings.push((i, t.elapsed().as_nanos() as u64));
            }
            match result {
                Ok(Some(v)) => {
                    // Every verdict adds its score to the actor's and the client address's risk.
                    let now = ev.time();
                    let cluster = &ev.event().provenance.cluster;
                    self.state
                        .add_risk(cluster, &ev.event().user.username, v.score as f64, now);
                    if let Some(ip) = ev.event().source_ips.first() {
                        self.state.add_risk(cluster, ip, v.score as f64, now);
                    }
                    crate::internal_events::PlaybookFired { playbook: &p.id }.emit();
                    out.verdicts.push(v);
                }
                Ok(None) => {}
                Err(f) => {
                    crate::internal_events::PlaybookFaulted {
                        playbook: &p.id,
                        kind: f.kind,
                        fault: &f,
                    }
                    .emit();
                    out.faults.push(f);
                }
            }
        }
        out
    }

    fn call(&self, p: &Playbook, name: &str, ev: &Ev) -> Result<Dynamic, Fault> {
        let opts = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let event = ev.event();
        state_api::with_context(&p.id, ev.time(), &event.provenance.cluster, || {
            sandbox::with_deadline(self.timeout, || {
                self.engine.call_fn_with_options::<Dynamic>(
                    opts,
                    &mut Scope::new(),
                    &p.ast,
                    name,
                    (ev.clone(),),
                )
            })
        })
        .map_err(|e| fault(p, name, &e))
    }

    fn run(&self, p: &Playbook, ev: &Ev) -> Result<Option<Verdict>, Fault> {
        let score = if p.has_rule {
            let fired = self.call(p, "rule", ev)?;
            match fired.as_bool() {
                // A rule's score follows its (possibly raised) severity, set below.
                Ok(true) => 0,
                Ok(false) => return Ok(None),
                Err(t) => {
                    return Err(contract(
                        p,
                        "rule",
                        format!("must return a bool, returned {t}"),
                    ))
                }
            }
        } else {
            let s = self.call(p, "score", ev)?;
            let s = s
                .as_int()
                .or_else(|_| s.as_float().map(|f| f as i64))
                .map_err(|t| contract(p, "score", format!("must return a number, returned {t}")))?;
            if s <= 0 {
                return Ok(None);
            }
            s
        };
        let text = |d: Dynamic| {
            if d.is_string() {
                d.into_string().ok()
            } else {
                Some(d.to_string())
            }
        };
        let title = if p.has[0] {
            text(self.call(p, "title", ev)?).unwrap_or_default()
        } else {
            p.title.clone()
        };
        let severity = if p.has[1] {
            let s = self.call(p, "severity", ev)?.to_string();
            Severity::parse(&s)
                .ok_or_else(|| contract(p, "severity", format!("unknown severity {s:?}")))?
        } else {
            p.severity
        };
        let score = if p.has_rule {
            severity.default_score()
        } else {
            score
        };
        let dedup = if p.has[2] {
            text(self.call(p, "dedup", ev)?).unwrap_or_default()
        } else {
            format!(
                "{}|{}",
                ev.event().provenance.cluster,
                ev.event().user.username
            )
        };
        let context = if p.has[3] {
            to_json_map(p, "context", self.call(p, "context", ev)?)?
        } else {
            serde_json::Map::new()
        };
        let responses = if p.has[4] {
            responses(p, self.call(p, "respond", ev)?)?
        } else {
            Vec::new()
        };
        Ok(Some(Verdict {
            playbook: p.id.clone(),
            title,
            severity,
            score,
            dedup,
            context,
            responses,
            mitre: p.mitre.clone(),
            gating: verdict::Gating {
                value: p
                    .gating
                    .threshold
                    .as_ref()
                    .and_then(|t| t.distinct.as_deref())
                    .map(|f| host::field(ev.event(), f)),
                ..p.gating.clone()
            },
        }))
    }
}

fn contract(p: &Playbook, func: &str, message: String) -> Fault {
    Fault {
        playbook: p.id.clone(),
        location: format!("{}:{func}", p.file.display()),
        kind: "error",
        message,
    }
}

fn fault(p: &Playbook, func: &str, e: &EvalAltResult) -> Fault {
    let pos = e.position();
    let location = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", p.file.display()),
        (Some(l), None) => format!("{}:{l}", p.file.display()),
        _ => format!("{}:{func}", p.file.display()),
    };
    let limit = matches!(
        e,
        EvalAltResult::ErrorTooManyOperations(..)
            | EvalAltResult::ErrorStackOverflow(..)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorTerminated(..)
            | EvalAltResult::ErrorTooManyVariables(..)
    );
    let message = match e {
        EvalAltResult::ErrorTerminated(..) => sandbox::DEADLINE_EXCEEDED.to_owned(),
        other => other.to_string(),
    };
    Fault {
        playbook: p.id.clone(),
        location,
        kind: if limit { "limit" } else { "error" },
        message,
    }
}

fn to_json_map(
    p: &Playbook,
    func: &str,
    d: Dynamic,
) -> Result<serde_json::Map<String, serde_json::Value>, Fault> {
    if d.is_unit() {
        return Ok(serde_json::Map::new());
    }
    match rhai::serde::from_dynamic::<serde_json::Value>(&d) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(contract(
            p,
            func,
            format!("must return a map, returned {}", d.type_name()),
        )),
    }
}

fn responses(p: &Playbook, d: Dynamic) -> Result<Vec<ResponseRequest>, Fault> {
    let items: Vec<Dynamic> = if d.is_unit() {
        Vec::new()
    } else if d.is_array() {
        d.into_array().unwrap_or_default()
    } else {
        vec![d]
    };
    items
        .into_iter()
        .map(|item| {
            let mut m = to_json_map(p, "respond", item)?;
            let kind = m.remove("kind").and_then(|k| k.as_str().map(str::to_owned)).unwrap_or_default();
            if !verdict::RESPONSE_KINDS.contains(&kind.as_str()) {
                return Err(contract(p, "respond", format!("unknown response {kind:?}; use slack(), revoke_binding(), webhook(), kafka_alert()")));
            }
            let approval = m.remove("approval").and_then(|a| a.as_bool()).unwrap_or(false);
            Ok(ResponseRequest { kind, approval, params: m })
        })
        .collect()
}

/// The current playbook set, swapped atomically when the files change.
pub struct PlaybookHandle {
    current: ArcSwap<PlaybookSet>,
    dir: PathBuf,
    cfg: crate::config::PlaybooksConfig,
    fingerprint: std::sync::Mutex<Vec<(PathBuf, std::time::SystemTime, u64)>>,
    /// The last reload's diagnostics, while the edit that caused them stands (wall ms, lines).
    rejected: std::sync::Mutex<Option<(u64, Vec<String>)>>,
    /// `new_term`'s history, kept across reloads.
    terms: Arc<terms::Terms>,
}

impl PlaybookHandle {
    /// Loads the directory; any diagnostic refuses the whole set.
    pub fn load(cfg: &crate::config::PlaybooksConfig) -> Result<Self, Vec<Diagnostic>> {
        let terms = Arc::new(terms::Terms::default());
        let set = load_dir_with(&cfg.dir, cfg, terms.clone())?;
        Ok(Self {
            current: ArcSwap::from_pointee(set),
            dir: cfg.dir.clone(),
            cfg: cfg.clone(),
            fingerprint: std::sync::Mutex::new(load::fingerprint_all(cfg)),
            rejected: std::sync::Mutex::default(),
            terms,
        })
    }

    /// `new_term`'s history (attach a store to persist it).
    pub fn terms(&self) -> &terms::Terms {
        &self.terms
    }

    /// The settings it loads from (the directory, the packs, the config's lists).
    pub fn config(&self) -> &crate::config::PlaybooksConfig {
        &self.cfg
    }

    /// Why the last edit was refused (when, and each diagnostic), while the previous set keeps running.
    pub fn rejected(&self) -> Option<(u64, Vec<String>)> {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn current(&self) -> Arc<PlaybookSet> {
        self.current.load_full()
    }

    /// Recompiles when a playbook or list file changed; a broken set is logged and the old one kept.
    pub fn reload_if_changed(&self) -> bool {
        let now = load::fingerprint_all(&self.cfg);
        let mut seen = self.fingerprint.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return false;
        }
        *seen = now;
        match load_dir_with(&self.dir, &self.cfg, self.terms.clone()) {
            Ok(set) => {
                crate::internal_events::PlaybooksReloaded {
                    playbooks: set.len(),
                }
                .emit();
                self.current.store(Arc::new(set));
                *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = None;
                true
            }
            Err(diags) => {
                crate::internal_events::PlaybookReloadRejected {
                    diagnostics: &diags,
                }
                .emit();
                *self.rejected.lock().unwrap_or_else(|e| e.into_inner()) = Some((
                    crate::state::model::wall_ms(),
                    diags.iter().map(ToString::to_string).collect(),
                ));
                false
            }
        }
    }

    /// Checks for changes every `reload_interval` until shutdown.
    pub fn spawn_watch(
        self: &Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.reload_interval.get());
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        let m = me.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            m.terms.save();
                            m.reload_if_changed()
                        })
                        .await;
                    }
                }
            }
        })
    }
}
