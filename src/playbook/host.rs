//! The host API: the only way a playbook reaches anything — event fields, enrichment, helpers over request objects, lists, response constructors.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use rhai::{Array, Dynamic, Engine, Map};
use serde_json::Value;

use crate::event::AuditEvent;

use super::objects::RequestView;

/// The event as a playbook sees it: shared, with request/response objects and
/// enrichment converted only when a script first touches them.
#[derive(Clone)]
pub struct Ev(Arc<EvInner>);

struct EvInner {
    ev: AuditEvent,
    /// Event time, parsed once on first use: every playbook call and the risk update need it
    /// (and most events run no playbook).
    time: OnceLock<i64>,
    request: OnceLock<Option<Value>>,
    response: OnceLock<Option<Value>>,
    request_dyn: OnceLock<Dynamic>,
    response_dyn: OnceLock<Dynamic>,
    /// The typed parts of the request object (`None`: no object, or one the view cannot read).
    view: OnceLock<Option<RequestView>>,
    /// identity, network, asset, baseline: each converted on first use.
    enrichment: [OnceLock<Dynamic>; 4],
}

/// The enrichment parts a script reads as `e.identity`, `e.network`, `e.asset`, `e.baseline`.
const PARTS: [&str; 4] = ["identity", "network", "asset", "baseline"];

impl Ev {
    pub fn new(ev: AuditEvent) -> Self {
        Self(Arc::new(EvInner {
            time: OnceLock::new(),
            ev,
            request: OnceLock::new(),
            response: OnceLock::new(),
            request_dyn: OnceLock::new(),
            response_dyn: OnceLock::new(),
            view: OnceLock::new(),
            enrichment: Default::default(),
        }))
    }

    pub fn event(&self) -> &AuditEvent {
        &self.0.ev
    }

    /// When the API server received the request, seconds since the epoch.
    pub fn time(&self) -> i64 {
        *self.0.time.get_or_init(|| self.0.ev.event_time())
    }

    /// Gives the event back once no script holds it (they never keep it).
    pub fn into_event(self) -> AuditEvent {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.ev,
            Err(shared) => shared.ev.clone(),
        }
    }

    pub fn request(&self) -> Option<&Value> {
        self.0
            .request
            .get_or_init(|| {
                self.0
                    .ev
                    .request_object
                    .as_ref()
                    .and_then(|r| serde_json::from_str(r.get()).ok())
            })
            .as_ref()
    }

    pub(super) fn response(&self) -> Option<&Value> {
        self.0
            .response
            .get_or_init(|| {
                self.0
                    .ev
                    .response_object
                    .as_ref()
                    .and_then(|r| serde_json::from_str(r.get()).ok())
            })
            .as_ref()
    }

    /// The request object as parsed so far: `Some` only once a helper needed all of it.
    pub(super) fn request_if_parsed(&self) -> Option<Option<&Value>> {
        self.0.request.get().map(Option::as_ref)
    }

    /// The typed view of the request object, parsed on first use and shared by every playbook.
    pub fn view(&self) -> Option<&RequestView> {
        self.0
            .view
            .get_or_init(|| {
                let raw = self.0.ev.request_object.as_ref()?;
                RequestView::parse(raw.get())
            })
            .as_ref()
    }

    fn enrichment_part(&self, part: usize) -> Dynamic {
        self.0.enrichment[part]
            .get_or_init(|| {
                let Some(e) = self.0.ev.enrichment.as_deref() else {
                    return Dynamic::from(Map::new());
                };
                let converted = match part {
                    0 => rhai::serde::to_dynamic(&e.identity),
                    1 => rhai::serde::to_dynamic(&e.network),
                    2 => rhai::serde::to_dynamic(&e.asset),
                    _ => match &e.baseline {
                        Some(b) => rhai::serde::to_dynamic(b),
                        None => Ok(Dynamic::from(Map::new())),
                    },
                };
                converted.unwrap_or_else(|_| Dynamic::from(Map::new()))
            })
            .clone()
    }
}

pub(super) fn json_dyn(v: Option<&Value>) -> Dynamic {
    v.and_then(|v| rhai::serde::to_dynamic(v).ok())
        .unwrap_or(Dynamic::UNIT)
}

pub(super) fn opt(s: Option<&str>) -> Dynamic {
    s.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_owned()))
}

pub(super) fn strings<'a>(it: impl IntoIterator<Item = &'a str>) -> Array {
    it.into_iter()
        .map(|s| Dynamic::from(s.to_owned()))
        .collect()
}

/// Registers the event type, its fields, the helpers, lists and response constructors.
/// Named lists: global ones, and per-cluster entries that extend them.
#[derive(Debug, Default)]
pub struct Lists {
    pub global: HashMap<String, HashSet<String>>,
    pub per_cluster: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl Lists {
    /// Every entry of list `name`: the global ones, then the cluster's own.
    pub(super) fn entries<'a>(
        &'a self,
        cluster: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let global = self.global.get(name).into_iter().flatten();
        let local = self
            .per_cluster
            .get(cluster)
            .and_then(|c| c.get(name))
            .into_iter()
            .flatten();
        global.chain(local)
    }

    /// Whether list `name` is defined, globally or for some cluster.
    pub(super) fn defined(&self, name: &str) -> bool {
        self.global.contains_key(name) || self.per_cluster.values().any(|c| c.contains_key(name))
    }

    /// Whether list `name` (globs allowed when `glob`) already holds `value` for `cluster`.
    pub fn holds(&self, cluster: &str, name: &str, glob: bool, value: &str) -> bool {
        if glob {
            super::host_detect::list_matches(self, cluster, name, value)
        } else {
            self.contains(cluster, name, value)
        }
    }

    pub(super) fn contains(&self, cluster: &str, name: &str, value: &str) -> bool {
        self.global.get(name).is_some_and(|s| s.contains(value))
            || self
                .per_cluster
                .get(cluster)
                .and_then(|c| c.get(name))
                .is_some_and(|s| s.contains(value))
    }

    fn values<'a>(&'a self, cluster: &str, name: &str) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .global
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if let Some(extra) = self.per_cluster.get(cluster).and_then(|c| c.get(name)) {
            v.extend(extra.iter().map(String::as_str));
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The event fields a threshold may count distinct values of (`meta().threshold.of`).
pub const FIELDS: &[&str] = &[
    "user",
    "source_ip",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "uri",
    "user_agent",
    "code",
];

/// The value of one of [`FIELDS`] on `ev` (empty when absent).
pub fn field(ev: &AuditEvent, name: &str) -> String {
    let o = ev.object_ref.as_ref();
    let part = |f: fn(&crate::event::ObjectReference) -> Option<&String>| {
        o.and_then(f).cloned().unwrap_or_default()
    };
    match name {
        "user" => ev.user.username.clone(),
        "source_ip" => ev.source_ips.first().cloned().unwrap_or_default(),
        "verb" => ev.verb.clone(),
        "resource" => part(|o| o.resource.as_ref()),
        "subresource" => part(|o| o.subresource.as_ref()),
        "namespace" => part(|o| o.namespace.as_ref()),
        "name" => part(|o| o.name.as_ref()),
        "uri" => ev.request_uri.clone(),
        "user_agent" => ev.user_agent.clone().unwrap_or_default(),
        "code" => ev
            .response_code()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// `new_term`'s history window when the playbook names none.
const DEFAULT_TERM_WINDOW: i64 = 30 * 86_400;

pub fn register(
    engine: &mut Engine,
    lists: Arc<Lists>,
    state: Arc<super::state_api::WindowState>,
    terms: Arc<super::terms::Terms>,
) {
    engine.register_type_with_name::<Ev>("Event");
    super::host_falco::register(engine);
    super::host_detect::register(engine, lists.clone());
    // Plain fields.
    engine.register_get("verb", |e: &mut Ev| e.event().verb.clone());
    engine.register_get("stage", |e: &mut Ev| e.event().stage.as_str().to_owned());
    engine.register_get("uri", |e: &mut Ev| e.event().request_uri.clone());
    engine.register_get("audit_id", |e: &mut Ev| e.event().audit_id.clone());
    engine.register_get("user", |e: &mut Ev| e.event().user.username.clone());
    engine.register_get("groups", |e: &mut Ev| {
        strings(e.event().user.groups.iter().map(String::as_str))
    });
    engine.register_get("impersonated", |e: &mut Ev| {
        opt(e
            .event()
            .impersonated_user
            .as_ref()
            .map(|u| u.username.as_str()))
    });
    engine.register_get("user_agent", |e: &mut Ev| {
        opt(e.event().user_agent.as_deref())
    });
    engine.register_get("source_ips", |e: &mut Ev| {
        strings(e.event().source_ips.iter().map(String::as_str))
    });
    engine.register_get("cluster", |e: &mut Ev| e.event().provenance.cluster.clone());
    engine.register_get("code", |e: &mut Ev| {
        i64::from(e.event().response_code().unwrap_or(0))
    });
    engine.register_get("time", |e: &mut Ev| e.time());
    let oref = |f: fn(&crate::event::ObjectReference) -> Option<&String>| {
        move |e: &mut Ev| {
            opt(e
                .event()
                .object_ref
                .as_ref()
                .and_then(f)
                .map(String::as_str))
        }
    };
    engine.register_get("resource", oref(|o| o.resource.as_ref()));
    engine.register_get("subresource", oref(|o| o.subresource.as_ref()));
    engine.register_get("namespace", oref(|o| o.namespace.as_ref()));
    engine.register_get("name", oref(|o| o.name.as_ref()));
    engine.register_get("api_group", oref(|o| o.api_group.as_ref()));
    engine.register_get("annotations", |e: &mut Ev| {
        e.event()
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
            .collect::<Map>()
    });
    // Objects and enrichment, converted on first use.
    engine.register_get("request", |e: &mut Ev| {
        e.0.request_dyn
            .get_or_init(|| json_dyn(e.request()))
            .clone()
    });
    engine.register_get("response", |e: &mut Ev| {
        e.0.response_dyn
            .get_or_init(|| json_dyn(e.response()))
            .clone()
    });
    for (i, part) in PARTS.into_iter().enumerate() {
        engine.register_get(part, move |e: &mut Ev| e.enrichment_part(i));
    }
    engine.register_fn("is_system_user", |e: &mut Ev| {
        crate::enrich::identity::is_system_user(&e.event().user.username)
    });
    super::host_objects::register(engine, lists.clone());
    // Lists from config, so users tune without editing scripts; a cluster's own entries extend them.
    let l = lists.clone();
    engine.register_fn("in_list", move |name: &str, value: &str| {
        super::state_api::with_cluster(|cluster| l.contains(cluster, name, value))
    });
    engine.register_fn("list", move |name: &str| {
        super::state_api::with_cluster(|cluster| strings(lists.values(cluster, name)))
    });
    // State helpers, scoped to the calling playbook, in event time.
    use super::state_api::window_secs;
    let st = state.clone();
    engine.register_fn(
        "count",
        move |key: &str, window: Dynamic| -> Result<i64, Box<rhai::EvalAltResult>> {
            Ok(st.count(key, window_secs(&window).map_err(|e| e.to_string())?))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "distinct",
        move |key: &str, value: &str, window: Dynamic| -> Result<i64, Box<rhai::EvalAltResult>> {
            Ok(st.distinct(key, value, window_secs(&window).map_err(|e| e.to_string())?))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "threshold",
        move |key: &str, n: i64, window: Dynamic| -> Result<bool, Box<rhai::EvalAltResult>> {
            Ok(st.threshold(key, n, window_secs(&window).map_err(|e| e.to_string())?))
        },
    );
    let st = state.clone();
    engine.register_fn("first_seen", move |key: &str| st.first_seen(key));
    let t = terms.clone();
    engine.register_fn(
        "new_term",
        move |entity: Dynamic,
              value: Dynamic,
              window: Dynamic|
              -> Result<bool, Box<rhai::EvalAltResult>> {
            let window = window_secs(&window).map_err(|e| e.to_string())?;
            Ok(!entity.is_unit()
                && !value.is_unit()
                && t.is_new(&entity.to_string(), &value.to_string(), window))
        },
    );
    engine.register_fn("new_term", move |entity: Dynamic, value: Dynamic| -> bool {
        !entity.is_unit()
            && !value.is_unit()
            && terms.is_new(&entity.to_string(), &value.to_string(), DEFAULT_TERM_WINDOW)
    });
    let st = state.clone();
    engine.register_fn(
        "sequence",
        move |key: &str,
              step: i64,
              total: i64,
              within: Dynamic|
              -> Result<bool, Box<rhai::EvalAltResult>> {
            Ok(st.sequence(
                key,
                step,
                total,
                window_secs(&within).map_err(|e| e.to_string())?,
            ))
        },
    );
    engine.register_fn("risk", move |entity: &str| state.risk(entity));
    // Response constructors: data in the verdict; the responders execute them.
    engine.register_fn("slack", |channel: &str| {
        response("slack", [("channel", channel)])
    });
    engine.register_fn("revoke_binding", || {
        response("revoke_binding", [("mode", "remove_subject")])
    });
    engine.register_fn("delete_binding", || {
        response("revoke_binding", [("mode", "delete")])
    });
    engine.register_fn("webhook", |name: &str| {
        response("webhook", [("name", name)])
    });
    engine.register_fn("kafka_alert", || response("kafka", []));
    engine.register_fn("with_approval", |mut r: Map| {
        r.insert("approval".into(), Dynamic::TRUE);
        r
    });
}

fn response<const N: usize>(kind: &str, params: [(&str, &str); N]) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), Dynamic::from(kind.to_owned()));
    for (k, v) in params {
        m.insert(k.into(), Dynamic::from(v.to_owned()));
    }
    m
}
