//! The workload of the fault-injection suites: synthetic audit traffic with undecodable records and ClusterRoleBinding grants mixed in, three stateless playbooks (so the expected alerts follow from the input alone, whatever the order or the faults), and how to count what reached the fake Slack and the fake Kubernetes API.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Value};

use super::fake_kube::FakeKube;
use super::fake_slack::FakeSlack;

/// Verbs the `changes` playbook alerts on (lease renewals aside).
const CHANGE_VERBS: [&str; 4] = ["create", "delete", "patch", "update"];

/// How the `changes` playbook groups its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One alert per (user, verb, resource) for the whole run: few alerts, many updates.
    PerActorVerbResource,
    /// One alert per change: many alerts.
    PerEvent,
}

impl Grouping {
    fn rhai(self) -> &'static str {
        match self {
            Grouping::PerActorVerbResource => "`${e.user}|${e.verb}|${e.resource}`",
            Grouping::PerEvent => "e.audit_id",
        }
    }
    fn key(self, v: &Value) -> String {
        match self {
            Grouping::PerActorVerbResource => format!(
                "{}|{}|{}",
                v["user"]["username"].as_str().unwrap(),
                v["verb"].as_str().unwrap(),
                v["objectRef"]["resource"].as_str().unwrap_or("")
            ),
            Grouping::PerEvent => v["auditID"].as_str().unwrap().to_owned(),
        }
    }
}

/// The records to produce and what they must lead to.
pub struct Scenario {
    pub lines: Vec<String>,
    /// Indexes of the records that cannot be decoded.
    pub poison: Vec<usize>,
    /// ClusterRoleBindings granted in the stream, each to be deleted exactly once.
    pub bindings: Vec<String>,
    /// Every alert title the run must post to Slack exactly once.
    pub titles: HashSet<String>,
}

/// A ClusterRoleBinding grant as the API server audits it, `obj` being the binding as stored.
fn grant(obj: &Value, id: &str, at: &str) -> String {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "clusterrolebindings", "name": obj["metadata"]["name"], "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": obj["metadata"]["name"]}, "subjects": obj["subjects"], "roleRef": obj["roleRef"]},
        "responseObject": obj,
        "requestReceivedTimestamp": at,
        "stageTimestamp": at,
    })
    .to_string()
}

impl Scenario {
    /// `n` records of synthetic traffic (seeded), every `poison_every`-th replaced by bytes that do
    /// not decode, and (with `kube`) `grants` ClusterRoleBinding grants spread evenly through it,
    /// each binding stored in `kube` as the event shows it (same uid, created at the event's time).
    pub fn build(
        n: usize,
        seed: u64,
        poison_every: usize,
        grants: usize,
        grouping: Grouping,
        kube: Option<&FakeKube>,
    ) -> Self {
        let mut lines = rampart::synth::Generator::new(seed).lines(n);
        let mut bindings = Vec::new();
        let step = n / (grants + 1);
        for g in (0..grants).filter(|_| kube.is_some()) {
            let kube = kube.unwrap();
            let i = step * (g + 1);
            let neighbour: Value = serde_json::from_str(&lines[i]).unwrap();
            let at = neighbour["requestReceivedTimestamp"]
                .as_str()
                .unwrap()
                .to_owned();
            let name = format!("faults-grant-{g}");
            let obj = kube.put(json!({
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "creationTimestamp": format!("{}Z", &at[..19])},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@example.com"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            }));
            lines[i] = grant(&obj, &format!("faults-grant-audit-{g}"), &at);
            bindings.push(name);
        }
        let mut poison = Vec::new();
        if poison_every > 0 {
            for i in (poison_every - 1..n).step_by(poison_every) {
                if lines[i].contains("faults-grant-") {
                    continue;
                }
                lines[i] = format!("{{\"kind\":\"Event\",\"auditID\":\"torn-{i}\",\"verb\":");
                poison.push(i);
            }
        }
        let mut titles = HashSet::new();
        for l in &lines {
            let Ok(v) = serde_json::from_str::<Value>(l) else {
                continue;
            };
            let verb = v["verb"].as_str().unwrap_or("");
            let resource = v["objectRef"]["resource"].as_str().unwrap_or("");
            if CHANGE_VERBS.contains(&verb) && resource != "leases" {
                titles.insert(format!("change {}", grouping.key(&v)));
            }
            if verb == "patch" && resource == "deployments" {
                titles.insert(format!("deploy {}", v["auditID"].as_str().unwrap()));
            }
        }
        titles.extend(bindings.iter().map(|b| format!("revoke {b}")));
        Self {
            lines,
            poison,
            bindings,
            titles,
        }
    }

    /// Writes the three playbooks into `dir`: `changes` (every create/delete/patch/update but lease
    /// renewals, grouped as `grouping` says, for the whole run), `deploys` (one alert per patch of a
    /// Deployment: alerts all through the run) and `grants` (deletes each `faults-grant-*` binding).
    pub fn write_playbooks(dir: &Path, grouping: Grouping) {
        std::fs::create_dir_all(dir).unwrap();
        let key = grouping.rhai();
        std::fs::write(
            dir.join("changes.rhai"),
            format!(
                r#"fn meta() {{ #{{ id: "changes", title: "a change", severity: "medium", dedup_window: "30d",
                          on: #{{ verbs: ["create", "delete", "patch", "update"] }} }} }}
fn rule(e) {{ (e.resource ?? "") != "leases" }}
fn dedup(e) {{ {key} }}
fn title(e) {{ "«change " + dedup(e) + "»" }}
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("deploys.rhai"),
            r#"fn meta() { #{ id: "deploys", title: "a deploy", severity: "low", dedup_window: "30d",
                          on: #{ verbs: ["patch"], resources: ["deployments"] } } }
fn rule(e) { true }
fn dedup(e) { e.audit_id }
fn title(e) { "«deploy " + e.audit_id + "»" }
"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("grants.rhai"),
            r#"fn meta() { #{ id: "grants", title: "a grant", severity: "critical", dedup_window: "30d",
                          on: #{ verbs: ["create"], resources: ["clusterrolebindings"] } } }
fn rule(e) { (e.name ?? "").starts_with("faults-grant-") }
fn dedup(e) { e.name }
fn title(e) { "«revoke " + e.name + "»" }
fn respond(e) { [delete_binding()] }
"#,
        )
        .unwrap();
    }
}

/// The title between « and » in an alert's text.
fn title_of(text: &str) -> Option<String> {
    let start = text.find('«')? + '«'.len_utf8();
    let end = text[start..].find('»')? + start;
    Some(text[start..end].to_owned())
}

/// How many messages Slack accepted per alert title (edits are not messages).
pub fn slack_messages(slack: &FakeSlack) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (_, _, body) in slack.messages() {
        let text = body["text"].as_str().unwrap_or_default();
        let title = title_of(text).unwrap_or_else(|| format!("untitled: {text}"));
        *m.entry(title).or_insert(0) += 1;
    }
    m
}

/// DELETE requests per binding name.
pub fn deletes(kube: &FakeKube) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (method, path) in kube.binding_writes() {
        if method == "DELETE" {
            let name = path.rsplit('/').next().unwrap().to_owned();
            *m.entry(name).or_insert(0) += 1;
        }
    }
    m
}

/// Slack (bot mode, the fake's CA) and Kubernetes (the fake's kubeconfig) responders for `rampart.yaml`,
/// with short timeouts and backoff so that recovery shows within the test's time.
pub fn responders_yaml(slack: &FakeSlack, token: &str, kube: &FakeKube) -> String {
    format!(
        "respond:\n  backoff_min: 200ms\n  backoff_max: 3s\n  slack:\n    bot_token: {token}\n    api_url: {}\n    ca_file: {}\n    default_channel: '#sec'\n    channel_interval: 5ms\n    timeout: 2s\n  kubernetes:\n    kubeconfig: {}\n    context: fake\n    timeout: 2s\n",
        slack.api_url(),
        slack.ca_file.display(),
        kube.kubeconfig.display(),
    )
}
