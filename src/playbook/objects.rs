//! The parts of a request object the host helpers read (metadata, the pod spec of a Pod or workload template, RBAC subjects, roleRef and rules, exec options), parsed once per event into typed structs, everything else skipped unparsed.
//!
//! Building a full `serde_json::Value` of an 18 KB Deployment (most of it the
//! `last-applied-configuration` annotation) costs tens of microseconds; this
//! view skips what no helper reads. A field the view reads that is `null` or of
//! an unexpected type makes the whole view fail to parse, and the helpers then
//! answer from the full object as before: the view is a speed-up, never a
//! second opinion.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A field that, when present, must hold a `T` (not `null`): absent is `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What the helpers read of a request object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    #[serde(default, deserialize_with = "present")]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "present")]
    spec: Option<Spec>,
    /// RoleBinding / ClusterRoleBinding subjects, parsed further only when asked for.
    #[serde(default)]
    pub subjects: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    pub role_ref: Option<RoleRef>,
    /// Role / ClusterRole rules, parsed further only when asked for.
    #[serde(default)]
    pub rules: Option<Box<RawValue>>,
    /// `PodExecOptions.command` (a list, or one string in some cloud forms).
    #[serde(default)]
    pub command: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub generate_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoleRef {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
}

/// A pod spec, or a workload spec that holds one in `template` or `jobTemplate`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default, deserialize_with = "present")]
    pub containers: Option<Vec<Container>>,
    #[serde(default, deserialize_with = "present")]
    pub init_containers: Option<Vec<Container>>,
    #[serde(default, deserialize_with = "present")]
    pub ephemeral_containers: Option<Vec<Container>>,
    #[serde(default, deserialize_with = "present")]
    pub volumes: Option<Vec<Volume>>,
    #[serde(default, deserialize_with = "present")]
    pub host_network: Option<bool>,
    #[serde(default, rename = "hostPID", deserialize_with = "present")]
    pub host_pid: Option<bool>,
    #[serde(default, rename = "hostIPC", deserialize_with = "present")]
    pub host_ipc: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub security_context: Option<RunAs>,
    #[serde(default, deserialize_with = "present")]
    template: Option<Template>,
    #[serde(default, deserialize_with = "present")]
    job_template: Option<JobTemplate>,
}

#[derive(Debug, Default, Deserialize)]
struct Template {
    #[serde(default, deserialize_with = "present")]
    spec: Option<Box<Spec>>,
}

#[derive(Debug, Default, Deserialize)]
struct JobTemplate {
    #[serde(default, deserialize_with = "present")]
    spec: Option<JobSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct JobSpec {
    #[serde(default, deserialize_with = "present")]
    template: Option<Template>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub security_context: Option<SecurityContext>,
}

/// The user a pod or container runs as.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAs {
    #[serde(default, deserialize_with = "present")]
    pub run_as_user: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub run_as_non_root: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default, deserialize_with = "present")]
    pub privileged: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, deserialize_with = "present")]
    pub run_as_user: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub run_as_non_root: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "present")]
    pub add: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default, deserialize_with = "present")]
    pub host_path: Option<HostPath>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HostPath {
    #[serde(default, deserialize_with = "present")]
    pub path: Option<String>,
}

impl RequestView {
    /// Parses `raw`; `None` when a field the view reads is `null` or of another type.
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// The pod spec: a Pod's own, else a workload's template, else a CronJob's job template
    /// (the same choice as [`super::host_objects::pod_spec`] makes on the full object).
    pub fn pod_spec(&self) -> Option<&Spec> {
        let spec = self.spec.as_ref()?;
        if spec.containers.is_some() {
            return Some(spec);
        }
        spec.template
            .as_ref()
            .and_then(|t| t.spec.as_deref())
            .or_else(|| {
                spec.job_template
                    .as_ref()?
                    .spec
                    .as_ref()?
                    .template
                    .as_ref()?
                    .spec
                    .as_deref()
            })
    }

    /// `spec.containers` of the object itself (a Pod's; Falco's `ka.req.pod.containers`).
    pub fn own_containers(&self) -> &[Container] {
        self.spec
            .as_ref()
            .and_then(|s| s.containers.as_deref())
            .unwrap_or_default()
    }

    /// A `/metadata/...` field, for the pointers playbooks ask most often.
    pub fn metadata_field(&self, pointer: &str) -> Option<Option<&str>> {
        let m = self.metadata.as_ref();
        let field = match pointer {
            "/metadata/name" => m.and_then(|m| m.name.as_deref()),
            "/metadata/generateName" => m.and_then(|m| m.generate_name.as_deref()),
            "/metadata/namespace" => m.and_then(|m| m.namespace.as_deref()),
            _ => return None,
        };
        Some(field)
    }
}

impl Spec {
    /// Init, regular and ephemeral containers, in that order.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        [
            &self.init_containers,
            &self.containers,
            &self.ephemeral_containers,
        ]
        .into_iter()
        .flatten()
        .flatten()
    }

    /// `network`, `pid`, `ipc`: the host namespaces the pod shares.
    pub fn host_namespaces(&self) -> Vec<&'static str> {
        [
            (self.host_network, "network"),
            (self.host_pid, "pid"),
            (self.host_ipc, "ipc"),
        ]
        .into_iter()
        .filter(|(on, _)| *on == Some(true))
        .map(|(_, name)| name)
        .collect()
    }

    /// Paths of the pod's hostPath volumes.
    pub fn host_paths(&self) -> impl Iterator<Item = &str> {
        self.volumes
            .iter()
            .flatten()
            .filter_map(|v| v.host_path.as_ref()?.path.as_deref())
    }

    /// Containers that run, or may run, as root (see `host_detect::root_containers`).
    pub fn root_containers(&self) -> Vec<String> {
        let pod = self.security_context.as_ref();
        let pod_user = pod.and_then(|p| p.run_as_user);
        let pod_nonroot = pod.and_then(|p| p.run_as_non_root);
        self.all_containers()
            .filter(|c| {
                let sc = c.security_context.as_ref();
                let user = sc.and_then(|s| s.run_as_user).or(pod_user);
                let nonroot = sc.and_then(|s| s.run_as_non_root).or(pod_nonroot);
                match user {
                    Some(0) => true,
                    Some(_) => false,
                    None => nonroot != Some(true),
                }
            })
            .map(|c| c.name.as_deref().unwrap_or("?").to_owned())
            .collect()
    }
}

impl Container {
    pub fn privileged(&self) -> bool {
        self.security_context.as_ref().and_then(|s| s.privileged) == Some(true)
    }

    pub fn added_capabilities(&self) -> &[String] {
        self.security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|c| c.add.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn view(v: &Value) -> Option<RequestView> {
        RequestView::parse(&v.to_string())
    }

    #[test]
    fn reads_pod_specs_where_the_full_object_does() {
        let dep = json!({"metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"}},
            "spec": {"replicas": 3, "template": {"spec": {"hostPID": true, "containers": [{"name": "a", "image": "nginx",
              "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
              "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "tmp", "emptyDir": {}}]}}}});
        let v = view(&dep).unwrap();
        assert_eq!(v.metadata_field("/metadata/name"), Some(Some("web")));
        assert_eq!(v.metadata_field("/spec/type"), None);
        let spec = v.pod_spec().unwrap();
        assert_eq!(spec.host_namespaces(), ["pid"]);
        assert_eq!(spec.host_paths().collect::<Vec<_>>(), ["/"]);
        let c: Vec<_> = spec.all_containers().collect();
        assert!(c[0].privileged());
        assert_eq!(c[0].added_capabilities(), ["SYS_ADMIN"]);
        assert!(v.own_containers().is_empty());

        let cron = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "c"}]}}}}}});
        let v = view(&cron).unwrap();
        assert_eq!(
            v.pod_spec()
                .unwrap()
                .all_containers()
                .next()
                .unwrap()
                .image
                .as_deref(),
            Some("c")
        );
    }

    #[test]
    fn a_null_or_mistyped_field_it_reads_leaves_the_answer_to_the_full_object() {
        assert!(view(&json!({"spec": {"hostPID": "yes"}})).is_none());
        assert!(view(&json!({"spec": {"containers": null}})).is_none());
        assert!(view(&json!({"metadata": {"name": 7}})).is_none());
        // Fields it does not read may hold anything.
        assert!(view(&json!({"spec": {"type": 3, "ports": null}, "data": {"x": [1]}})).is_some());
    }
}
