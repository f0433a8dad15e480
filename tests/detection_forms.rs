//! The default pack against a day of each managed platform's own system traffic, in that platform's wire form (EKS CloudWatch, AKS diagnostic records, GKE Cloud Logging): nodes, CSI drivers, cloud controllers and agents calling from their provider's addresses raise no alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rampart::enrich::Enricher;
use rampart::event::decode_record;
use rampart::playbook::{load_dir, Ev};
use rampart::state::MemoryStore;
use serde_json::{json, Value};

/// Events per platform: every identity performs every one of its actions many times over.
const EVENTS: usize = 6_000;

/// One system action: who, from where, verb, resource path parts, response code and request body.
struct Action {
    user: &'static str,
    groups: &'static [&'static str],
    ip: &'static str,
    agent: &'static str,
    verb: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    group: &'static str,
    namespace: Option<&'static str>,
    name: Option<&'static str>,
    code: u16,
    body: Option<Value>,
}

#[allow(clippy::too_many_arguments)]
fn act(
    user: &'static str,
    groups: &'static [&'static str],
    ip: &'static str,
    agent: &'static str,
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
    name: Option<&'static str>,
) -> Action {
    Action {
        user,
        groups,
        ip,
        agent,
        verb,
        resource,
        subresource: None,
        group: "",
        namespace,
        name,
        code: 200,
        body: None,
    }
}

const NODES: &[&str] = &["system:nodes", "system:authenticated"];
const SAS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:authenticated",
];
const MASTERS: &[&str] = &["system:masters", "system:authenticated"];

/// A DaemonSet of a node agent (CSI node plugin, CNI), as the platform's add-on manager applies it.
fn node_agent(name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
           "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
             "spec": {"hostNetwork": true, "serviceAccountName": name,
               "volumes": [{"name": "kubelet-dir", "hostPath": {"path": "/var/lib/kubelet", "type": "Directory"}},
                           {"name": "device-dir", "hostPath": {"path": "/dev", "type": "Directory"}}],
               "containers": [{"name": "node", "image": image, "securityContext": {"privileged": true}}]}}}})
}

fn eks_actions() -> Vec<Action> {
    let node = "system:node:ip-192-168-12-34.eu-west-1.compute.internal";
    let kubelet = "kubelet/v1.30.2-eks-1552ad0 (linux/amd64) kubernetes/1552ad0";
    vec![
        act(node, NODES, "3.5.140.2", kubelet, "update", "leases", Some("kube-node-lease"), Some("ip-192-168-12-34.eu-west-1.compute.internal")),
        act(node, NODES, "3.5.140.2", kubelet, "get", "pods", Some("kube-system"), Some("aws-node-x7k2p")),
        act(node, NODES, "3.5.140.2", kubelet, "get", "secrets", Some("shop"), Some("cart-tls")),
        act("system:serviceaccount:kube-system:ebs-csi-controller-sa", SAS, "54.240.197.233", "aws-ebs-csi-driver/v1.35.0", "list", "persistentvolumes", None, None),
        act("system:serviceaccount:kube-system:ebs-csi-controller-sa", SAS, "54.240.197.233", "aws-ebs-csi-driver/v1.35.0", "update", "volumeattachments", None, Some("csi-4f1c")),
        act("system:serviceaccount:kube-system:aws-node", SAS, "3.5.140.2", "aws-vpc-cni/v1.18.3", "get", "nodes", None, Some("ip-192-168-12-34.eu-west-1.compute.internal")),
        act("system:serviceaccount:kube-system:aws-load-balancer-controller", SAS, "52.94.133.131", "aws-load-balancer-controller/v2.8.2", "list", "ingresses", None, None),
        act("eks:cloud-controller-manager", &["system:authenticated"], "3.5.140.2", "aws-cloud-controller-manager/v1.30.2", "patch", "nodes", None, Some("ip-192-168-12-34.eu-west-1.compute.internal")),
        act("eks:certificate-controller", &["system:authenticated"], "3.5.140.2", "eks-certificate-controller", "list", "certificatesigningrequests", None, None),
        act("eks:addon-manager", &["system:authenticated"], "3.5.140.2", "eks-addon-manager", "get", "configmaps", Some("kube-system"), Some("aws-auth")),
        Action {
            verb: "patch",
            resource: "daemonsets",
            group: "apps",
            body: Some(node_agent("ebs-csi-node", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/aws-ebs-csi-driver:v1.35.0")),
            ..act("eks:addon-manager", &["system:authenticated"], "3.5.140.2", "eks-addon-manager", "patch", "daemonsets", Some("kube-system"), Some("ebs-csi-node"))
        },
        Action {
            verb: "create",
            resource: "pods",
            code: 201,
            body: Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "ebs-csi-node-", "namespace": "kube-system"},
                "spec": {"hostNetwork": true, "volumes": [{"name": "kubelet-dir", "hostPath": {"path": "/var/lib/kubelet"}}],
                         "containers": [{"name": "node", "image": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/aws-ebs-csi-driver:v1.35.0", "securityContext": {"privileged": true}}]}})),
            ..act("system:serviceaccount:kube-system:daemon-set-controller", SAS, "3.5.140.2", "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:daemon-set-controller", "create", "pods", Some("kube-system"), None)
        },
        Action {
            subresource: Some("token"),
            code: 201,
            ..act("eks:pod-identity-mutating-webhook", &["system:authenticated"], "3.5.140.2", "eks-pod-identity-webhook", "create", "serviceaccounts", Some("shop"), Some("cart"))
        },
    ]
}

fn aks_actions() -> Vec<Action> {
    let node = "system:node:aks-nodepool1-12345678-vmss000000";
    let kubelet = "kubelet/v1.30.3 (linux/amd64) kubernetes/5a1b2c3";
    vec![
        act(
            node,
            NODES,
            "20.42.1.5",
            kubelet,
            "update",
            "leases",
            Some("kube-node-lease"),
            Some("aks-nodepool1-12345678-vmss000000"),
        ),
        act(
            node,
            NODES,
            "20.42.1.5",
            kubelet,
            "get",
            "configmaps",
            Some("kube-system"),
            Some("kube-root-ca.crt"),
        ),
        act(
            "aksService",
            MASTERS,
            "20.61.2.7",
            "aks-resource-provider",
            "get",
            "configmaps",
            Some("kube-system"),
            Some("coredns-custom"),
        ),
        act(
            "aksService",
            MASTERS,
            "20.61.2.7",
            "aks-resource-provider",
            "list",
            "nodes",
            None,
            None,
        ),
        act(
            "masterclient",
            MASTERS,
            "20.61.2.7",
            "kubectl/v1.30.3",
            "get",
            "secrets",
            Some("kube-system"),
            Some("azure-identity-certificate"),
        ),
        act(
            "system:serviceaccount:kube-system:csi-azuredisk-node-sa",
            SAS,
            "20.42.1.5",
            "csi-azuredisk-node/v1.30.4",
            "get",
            "nodes",
            None,
            Some("aks-nodepool1-12345678-vmss000000"),
        ),
        act(
            "system:serviceaccount:kube-system:cloud-node-manager",
            SAS,
            "20.42.1.5",
            "cloud-node-manager/v1.30.3",
            "patch",
            "nodes",
            None,
            Some("aks-nodepool1-12345678-vmss000000"),
        ),
        act(
            "system:serviceaccount:kube-system:konnectivity-agent",
            SAS,
            "20.42.1.5",
            "konnectivity-agent/v0.1.8",
            "get",
            "configmaps",
            Some("kube-system"),
            Some("konnectivity-agent"),
        ),
        act(
            "system:serviceaccount:kube-system:ama-logs",
            SAS,
            "20.42.1.5",
            "ama-logs/3.1.22",
            "list",
            "pods",
            None,
            None,
        ),
        act(
            "system:serviceaccount:gatekeeper-system:gatekeeper-admin",
            &["system:serviceaccounts", "system:authenticated"],
            "20.42.1.5",
            "gatekeeper/v3.17.1",
            "list",
            "constrainttemplates",
            None,
            None,
        ),
        Action {
            resource: "daemonsets",
            group: "apps",
            body: Some(node_agent(
                "csi-azuredisk-node",
                "mcr.microsoft.com/oss/kubernetes-csi/azuredisk-csi:v1.30.4",
            )),
            ..act(
                "aksService",
                MASTERS,
                "20.61.2.7",
                "aks-resource-provider",
                "update",
                "daemonsets",
                Some("kube-system"),
                Some("csi-azuredisk-node"),
            )
        },
        Action {
            group: "rbac.authorization.k8s.io",
            body: Some(
                json!({"kind": "ClusterRole", "metadata": {"name": "system:azure-cloud-provider"},
                "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]}]}),
            ),
            ..act(
                "aksService",
                MASTERS,
                "20.61.2.7",
                "aks-resource-provider",
                "update",
                "clusterroles",
                None,
                Some("system:azure-cloud-provider"),
            )
        },
    ]
}

fn gke_actions() -> Vec<Action> {
    let node = "system:node:gke-prod-default-pool-1a2b3c4d-x9yz";
    let kubelet = "kubelet/v1.30.5-gke.1014001 (linux/amd64) kubernetes/8c6c8e2";
    let robot = "service-123456789012@container-engine-robot.iam.gserviceaccount.com";
    vec![
        act(
            node,
            NODES,
            "35.200.1.9",
            kubelet,
            "update",
            "leases",
            Some("kube-node-lease"),
            Some("gke-prod-default-pool-1a2b3c4d-x9yz"),
        ),
        act(
            node,
            NODES,
            "35.200.1.9",
            kubelet,
            "get",
            "secrets",
            Some("shop"),
            Some("cart-tls"),
        ),
        act(
            robot,
            &["system:authenticated"],
            "34.78.10.2",
            "google-api-go-client/0.5 GoogleContainerEngine",
            "list",
            "nodes",
            None,
            None,
        ),
        act(
            robot,
            &["system:authenticated"],
            "34.78.10.2",
            "google-api-go-client/0.5 GoogleContainerEngine",
            "get",
            "configmaps",
            Some("kube-system"),
            Some("cluster-autoscaler-status"),
        ),
        act(
            "system:gcp-controller-manager",
            &["system:authenticated"],
            "34.78.10.2",
            "gcp-controller-manager/v1.30.5",
            "update",
            "certificatesigningrequests",
            None,
            Some("node-csr-abc"),
        ),
        act(
            "system:l7-lb-controller",
            &["system:authenticated"],
            "34.78.10.2",
            "glbc/v1.30.0",
            "list",
            "ingresses",
            None,
            None,
        ),
        act(
            "system:clustermetrics",
            &["system:authenticated"],
            "34.78.10.2",
            "cluster-metrics/v0.1",
            "list",
            "pods",
            None,
            None,
        ),
        act(
            "system:serviceaccount:kube-system:pdcsi-node-sa",
            SAS,
            "35.200.1.9",
            "gce-pd-csi-driver/v1.13.2",
            "get",
            "nodes",
            None,
            Some("gke-prod-default-pool-1a2b3c4d-x9yz"),
        ),
        act(
            "system:serviceaccount:kube-system:gke-metadata-server",
            SAS,
            "35.200.1.9",
            "gke-metadata-server/v0.4.301",
            "list",
            "serviceaccounts",
            None,
            None,
        ),
        act(
            "system:serviceaccount:gmp-system:collector",
            &["system:serviceaccounts", "system:authenticated"],
            "35.200.1.9",
            "prometheus-engine/v0.13.0",
            "list",
            "pods",
            None,
            None,
        ),
        Action {
            group: "apps",
            body: Some(node_agent(
                "pdcsi-node",
                "gke.gcr.io/gcp-compute-persistent-disk-csi-driver:v1.13.2-gke.0",
            )),
            ..act(
                robot,
                &["system:authenticated"],
                "34.78.10.2",
                "google-api-go-client/0.5 GoogleContainerEngine",
                "update",
                "daemonsets",
                Some("kube-system"),
                Some("pdcsi-node"),
            )
        },
        Action {
            group: "rbac.authorization.k8s.io",
            body: Some(
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "system:gke-metrics"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:controller:node-controller"},
                "subjects": [{"kind": "User", "name": "system:clustermetrics"}]}),
            ),
            ..act(
                robot,
                &["system:authenticated"],
                "34.78.10.2",
                "google-api-go-client/0.5 GoogleContainerEngine",
                "update",
                "clusterrolebindings",
                None,
                Some("system:gke-metrics"),
            )
        },
    ]
}

/// The plain audit.k8s.io Event for action `a`, the `i`th of the day.
fn event(a: &Action, i: usize) -> Value {
    let secs = i * 14; // 6 000 events over a day
    let ts = format!(
        "2026-11-20T{:02}:{:02}:{:02}.000000Z",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    );
    let prefix = if a.group.is_empty() {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{}/v1", a.group)
    };
    let mut uri = prefix;
    if let Some(ns) = a.namespace {
        uri.push_str(&format!("/namespaces/{ns}"));
    }
    uri.push_str(&format!("/{}", a.resource));
    if let Some(n) = a.name {
        uri.push_str(&format!("/{n}"));
    }
    if let Some(s) = a.subresource {
        uri.push_str(&format!("/{s}"));
    }
    let mut oref = json!({"resource": a.resource, "apiVersion": "v1"});
    if !a.group.is_empty() {
        oref["apiGroup"] = json!(a.group);
    }
    for (k, v) in [
        ("namespace", a.namespace),
        ("name", a.name),
        ("subresource", a.subresource),
    ] {
        if let Some(v) = v {
            oref[k] = json!(v);
        }
    }
    let mut ev = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": if a.body.is_some() { "RequestResponse" } else { "Metadata" },
        "auditID": format!("bg-{i:06}"), "stage": "ResponseComplete", "requestURI": uri, "verb": a.verb,
        "user": {"username": a.user, "groups": a.groups}, "sourceIPs": [a.ip], "userAgent": a.agent,
        "objectRef": oref, "responseStatus": {"metadata": {}, "code": a.code},
        "requestReceivedTimestamp": ts, "stageTimestamp": ts,
        "annotations": {"authorization.k8s.io/decision": "allow"}
    });
    if let Some(b) = &a.body {
        ev["requestObject"] = b.clone();
    }
    ev
}

fn eks_form(ev: &Value, i: usize) -> String {
    json!({"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/prod-eks/cluster",
           "logStream": "kube-apiserver-audit-5f2c0e", "subscriptionFilters": ["rampart"],
           "logEvents": [{"id": format!("{i:056}"), "timestamp": 1_795_132_800_000_i64 + i as i64 * 14_000, "message": ev.to_string()}]})
    .to_string()
}

fn aks_form(ev: &Value, _i: usize) -> String {
    json!({"records": [{"time": ev["requestReceivedTimestamp"], "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS",
        "properties": {"log": ev.to_string(), "stream": "stdout", "pod": "kube-apiserver-7d9f8c6b5-abcde"}}]})
    .to_string()
}

fn gke_form(ev: &Value, i: usize) -> String {
    let o = &ev["objectRef"];
    let group = o["apiGroup"].as_str().unwrap_or("core");
    let mut rn = format!("{group}/v1");
    if let Some(ns) = o["namespace"].as_str() {
        rn.push_str(&format!("/namespaces/{ns}"));
    }
    rn.push_str(&format!("/{}", o["resource"].as_str().unwrap()));
    if let Some(n) = o["name"].as_str() {
        rn.push_str(&format!("/{n}"));
    }
    let method_group = if group == "core" {
        "core".to_owned()
    } else {
        group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    let sub = o["subresource"]
        .as_str()
        .map(|s| format!(".{s}"))
        .unwrap_or_default();
    let method = format!(
        "io.k8s.{method_group}.v1.{}{sub}.{}",
        o["resource"].as_str().unwrap(),
        ev["verb"].as_str().unwrap()
    );
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": ev["user"]["username"]},
        "authorizationInfo": [{"granted": true, "permission": method, "resource": rn}],
        "methodName": method,
        "requestMetadata": {"callerIp": ev["sourceIPs"][0], "callerSuppliedUserAgent": ev["userAgent"]},
        "resourceName": rn, "serviceName": "k8s.io", "status": {"code": 0}
    });
    if let Some(b) = ev.get("requestObject") {
        payload["request"] = b.clone();
    }
    json!({"protoPayload": payload, "insertId": format!("gke-bg-{i}"),
           "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod-gke", "location": "europe-west1", "project_id": "acme-prod"}},
           "timestamp": ev["requestReceivedTimestamp"], "receiveTimestamp": ev["requestReceivedTimestamp"],
           "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
           "operation": {"id": format!("gke-bg-{i}"), "producer": "k8s.io", "first": true, "last": true}})
    .to_string()
}

async fn fires_on(
    actions: Vec<Action>,
    form: fn(&Value, usize) -> String,
) -> (usize, BTreeMap<String, Vec<String>>, Vec<String>) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = rampart::config::load_file(&repo.join("rampart.yaml")).unwrap();
    let pcfg = cfg.playbooks.clone().unwrap_or_default();
    let set = load_dir(&repo.join(&pcfg.dir), &pcfg).unwrap();
    let enricher = Enricher::build(&cfg.enrich, Arc::new(MemoryStore::default()), "").unwrap();
    let mut fires: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut faults = Vec::new();
    let mut decoded = 0;
    for i in 0..EVENTS {
        let line = form(&event(&actions[i % actions.len()], i), i);
        for mut ev in decode_record(line.as_bytes(), &Default::default()).events {
            decoded += 1;
            enricher.enrich(&mut ev).await;
            let out = set.evaluate(&Ev::new(ev));
            for v in out.verdicts {
                fires.entry(v.playbook.clone()).or_default().push(v.title);
            }
            faults.extend(out.faults.iter().map(|f| f.to_string()));
        }
    }
    (decoded, fires, faults)
}

async fn assert_quiet(platform: &str, actions: Vec<Action>, form: fn(&Value, usize) -> String) {
    let (decoded, fires, faults) = fires_on(actions, form).await;
    assert_eq!(
        decoded, EVENTS,
        "{platform}: every record decodes to one event"
    );
    assert!(
        faults.is_empty(),
        "{platform}: playbook faults: {:?}",
        &faults[..faults.len().min(5)]
    );
    common::assert_no_fires(
        &fires,
        &format!("{platform}: the default pack fired on the platform's own traffic"),
    );
}

#[tokio::test]
async fn a_day_of_eks_system_traffic_raises_no_alert() {
    assert_quiet("eks", eks_actions(), eks_form).await;
}

#[tokio::test]
async fn a_day_of_aks_system_traffic_raises_no_alert() {
    assert_quiet("aks", aks_actions(), aks_form).await;
}

#[tokio::test]
async fn a_day_of_gke_system_traffic_raises_no_alert() {
    assert_quiet("gke", gke_actions(), gke_form).await;
}

#[tokio::test]
async fn a_node_credential_from_outside_its_provider_is_still_noticed() {
    // The same EKS node, but calling from an address that belongs to no cloud provider.
    let mut actions = eks_actions();
    actions.truncate(1);
    actions[0].ip = "175.16.199.1";
    let (_, fires, _) = fires_on(actions, eks_form).await;
    assert!(
        fires.contains_key("stolen-token-public-ip"),
        "fired: {:?}",
        fires.keys()
    );
}
