//! The API surface the scenario touches (resources and subresources) and how one request becomes an audit.k8s.io/v1 Event line.
//!
//! Benign and anomalous requests go through the same [`render`]: the level, stage, annotation
//! set, response-status shape, URI query style (chosen from the user agent alone) and latency
//! distribution never depend on the label.

use std::fmt::Write;

use super::basics::{push_rfc3339, Draw, MICROS};
use crate::synth::Rng;

/// A resource type as `objectRef` names it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Res {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
}

macro_rules! res {
    ($($id:ident = $name:literal, $group:literal, $version:literal, $ns:literal;)*) => {
        $(pub(crate) static $id: Res = Res { name: $name, group: $group, version: $version, namespaced: $ns };)*
    };
}

res! {
    PODS = "pods", "", "v1", true;
    SERVICES = "services", "", "v1", true;
    ENDPOINTS = "endpoints", "", "v1", true;
    CONFIGMAPS = "configmaps", "", "v1", true;
    SECRETS = "secrets", "", "v1", true;
    EVENTS = "events", "", "v1", true;
    SERVICEACCOUNTS = "serviceaccounts", "", "v1", true;
    PVCS = "persistentvolumeclaims", "", "v1", true;
    NAMESPACES = "namespaces", "", "v1", false;
    NODES = "nodes", "", "v1", false;
    DEPLOYMENTS = "deployments", "apps", "v1", true;
    REPLICASETS = "replicasets", "apps", "v1", true;
    STATEFULSETS = "statefulsets", "apps", "v1", true;
    DAEMONSETS = "daemonsets", "apps", "v1", true;
    JOBS = "jobs", "batch", "v1", true;
    CRONJOBS = "cronjobs", "batch", "v1", true;
    ENDPOINTSLICES = "endpointslices", "discovery.k8s.io", "v1", true;
    INGRESSES = "ingresses", "networking.k8s.io", "v1", true;
    INGRESSCLASSES = "ingressclasses", "networking.k8s.io", "v1", false;
    NETWORKPOLICIES = "networkpolicies", "networking.k8s.io", "v1", true;
    HPAS = "horizontalpodautoscalers", "autoscaling", "v2", true;
    PDBS = "poddisruptionbudgets", "policy", "v1", true;
    ROLES = "roles", "rbac.authorization.k8s.io", "v1", true;
    ROLEBINDINGS = "rolebindings", "rbac.authorization.k8s.io", "v1", true;
    CLUSTERROLES = "clusterroles", "rbac.authorization.k8s.io", "v1", false;
    CLUSTERROLEBINDINGS = "clusterrolebindings", "rbac.authorization.k8s.io", "v1", false;
    LEASES = "leases", "coordination.k8s.io", "v1", true;
    CRDS = "customresourcedefinitions", "apiextensions.k8s.io", "v1", false;
    VWCS = "validatingwebhookconfigurations", "admissionregistration.k8s.io", "v1", false;
    MWCS = "mutatingwebhookconfigurations", "admissionregistration.k8s.io", "v1", false;
    APISERVICES = "apiservices", "apiregistration.k8s.io", "v1", false;
    TOKENREVIEWS = "tokenreviews", "authentication.k8s.io", "v1", false;
    POD_METRICS = "pods", "metrics.k8s.io", "v1beta1", true;
    APPLICATIONS = "applications", "argoproj.io", "v1alpha1", true;
    APPSETS = "applicationsets", "argoproj.io", "v1alpha1", true;
    APPPROJECTS = "appprojects", "argoproj.io", "v1alpha1", true;
    ROLLOUTS = "rollouts", "argoproj.io", "v1alpha1", true;
    CERTIFICATES = "certificates", "cert-manager.io", "v1", true;
    CERTREQUESTS = "certificaterequests", "cert-manager.io", "v1", true;
    ISSUERS = "issuers", "cert-manager.io", "v1", true;
    CLUSTERISSUERS = "clusterissuers", "cert-manager.io", "v1", false;
    EXTERNALSECRETS = "externalsecrets", "external-secrets.io", "v1beta1", true;
    SECRETSTORES = "secretstores", "external-secrets.io", "v1beta1", true;
    CLUSTERSECRETSTORES = "clustersecretstores", "external-secrets.io", "v1beta1", false;
    SERVICEMONITORS = "servicemonitors", "monitoring.coreos.com", "v1", true;
    PODMONITORS = "podmonitors", "monitoring.coreos.com", "v1", true;
    PROMRULES = "prometheusrules", "monitoring.coreos.com", "v1", true;
    BACKUPS = "backups", "velero.io", "v1", true;
    SCHEDULES = "schedules", "velero.io", "v1", true;
    POLICYREPORTS = "policyreports", "wgpolicyk8s.io", "v1alpha2", true;
    CLUSTERPOLICIES = "clusterpolicies", "kyverno.io", "v1", false;
    VULNREPORTS = "vulnerabilityreports", "aquasecurity.github.io", "v1alpha1", true;
    SPARKAPPS = "sparkapplications", "sparkoperator.k8s.io", "v1beta2", true;
    TGBS = "targetgroupbindings", "elbv2.k8s.aws", "v1beta1", true;
    DATABASES = "databases", "db.example.com", "v1", true;
    FLAGS = "featureflags", "flags.example.com", "v1", true;
    QUEUES = "queues", "messaging.example.com", "v1alpha1", true;
    PIPELINES = "pipelines", "pipelines.example.com", "v1", true;
}

/// Extra request parameters a request may carry in its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    None,
    /// A label selector (already URL-encoded: `app%3Dweb`).
    Selector(String),
    /// A container, for logs and exec.
    Container(&'static str),
}

/// One API request, before it is authorised and rendered.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    pub verb: &'static str,
    pub res: &'static Res,
    pub sub: Option<&'static str>,
    pub ns: Option<String>,
    pub name: Option<String>,
    /// An outcome other than success, if the object is missing or conflicts (authorisation still comes first).
    pub fail: Option<u16>,
    pub query: Query,
}

impl Act {
    pub fn new(
        verb: &'static str,
        res: &'static Res,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Self {
            verb,
            res,
            sub: None,
            ns: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            fail: None,
            query: Query::None,
        }
    }
    pub fn sub(mut self, sub: &'static str) -> Self {
        self.sub = Some(sub);
        self
    }
    pub fn fail(mut self, code: u16) -> Self {
        self.fail = Some(code);
        self
    }
    pub fn query(mut self, q: Query) -> Self {
        self.query = q;
        self
    }
    /// Whether this only reads.
    pub fn is_read(&self) -> bool {
        matches!(self.verb, "get" | "list" | "watch")
            && !matches!(self.sub, Some("exec" | "portforward" | "attach"))
    }
}

/// How a client spells its query strings, judged by its user agent alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Kubectl,
    ClientGo,
    Plain,
}

fn style(agent: &str) -> Style {
    let family = agent.split(['/', ' ']).next().unwrap_or("");
    match family {
        "kubectl" | "k9s" | "kubectl-argo-rollouts" | "Lens" | "Helm" => Style::Kubectl,
        "python-requests" | "curl" | "Go-http-client" | "OpenAPI-Generator" => Style::Plain,
        _ => Style::ClientGo,
    }
}

/// Who made the request (the event's `user`, a pre-rendered JSON object) and from where, with what.
pub(crate) struct Who<'a> {
    pub username: &'a str,
    pub user_json: &'a str,
    pub ip: &'a str,
    pub agent: &'a str,
}

/// The authoriser's answer: allowed with a reason, or forbidden.
pub(crate) type Decision = Option<String>;

fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn uri(act: &Act, agent: &str, rng: &mut Rng) -> String {
    let r = act.res;
    let mut u = String::with_capacity(96);
    if r.group.is_empty() {
        let _ = write!(u, "/api/{}", r.version);
    } else {
        let _ = write!(u, "/apis/{}/{}", r.group, r.version);
    }
    if r.namespaced {
        if let Some(ns) = &act.ns {
            let _ = write!(u, "/namespaces/{ns}");
        }
    }
    let _ = write!(u, "/{}", r.name);
    if let Some(n) = &act.name {
        let _ = write!(u, "/{n}");
    }
    if let Some(s) = act.sub {
        let _ = write!(u, "/{s}");
    }
    let st = style(agent);
    let mut q: Vec<String> = Vec::new();
    match (&act.query, act.sub) {
        (Query::Container(c), Some("log")) => {
            q.push(format!("container={c}"));
            if st == Style::Kubectl && rng.chance(0.5) {
                q.push(format!(
                    "tailLines={}",
                    [20, 50, 100, 200, 500][rng.below(5)]
                ));
            }
        }
        (Query::Container(c), Some("exec" | "attach")) => {
            let cmd = ["sh", "bash", "env", "ls", "cat"][rng.below(5)];
            q.push(format!(
                "command={cmd}&container={c}&stdin=true&stdout=true&tty=true"
            ));
        }
        (Query::Selector(s), _) => q.push(format!("labelSelector={s}")),
        _ => {}
    }
    match (act.verb, st) {
        ("list", Style::Kubectl) => q.push("limit=500".into()),
        ("list", Style::ClientGo) => q.push("limit=500&resourceVersion=0".into()),
        ("watch", Style::ClientGo) => {
            let t = 300 + rng.below(300);
            q.push(format!(
                "allowWatchBookmarks=true&resourceVersion={}&timeout={}m{}s&timeoutSeconds={t}&watch=true",
                40_000_000 + rng.below(9_000_000),
                t / 60,
                t % 60
            ));
        }
        ("watch", _) => q.push(format!(
            "resourceVersion={}&watch=true",
            40_000_000 + rng.below(9_000_000)
        )),
        ("patch", Style::Kubectl) if act.sub.is_none() => {
            q.push("fieldManager=kubectl-client-side-apply&fieldValidation=Strict".into())
        }
        ("create", Style::Kubectl) if act.sub.is_none() => {
            q.push("fieldManager=kubectl-create&fieldValidation=Strict".into())
        }
        _ => {}
    }
    q.sort();
    if !q.is_empty() {
        u.push('?');
        u.push_str(&q.join("&"));
    }
    u
}

/// Microseconds the API server took, by verb.
fn latency(act: &Act, rng: &mut Rng) -> i64 {
    let median = match act.verb {
        "list" => 30_000.0,
        "watch" => 4_000.0,
        "create" | "update" | "patch" | "delete" => 12_000.0,
        _ => 3_000.0,
    };
    (rng.lognormal(median, 0.7) as i64).clamp(300, 950_000)
}

/// One audit event line for a request received at `at` (microseconds since the epoch).
pub(crate) fn render(
    out: &mut String,
    at: i64,
    who: &Who<'_>,
    act: &Act,
    decision: &Decision,
    rng: &mut Rng,
) {
    let (ip, agent) = (who.ip, who.agent);
    let code = match (decision, act.fail) {
        (None, _) => 403,
        (Some(_), Some(c)) => c,
        (Some(_), None) => match (act.verb, act.sub) {
            (_, Some("exec" | "portforward" | "attach")) => 101,
            ("create", _) => 201,
            _ => 200,
        },
    };
    let _ = write!(
        out,
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}\",\"stage\":\"ResponseComplete\",\"requestURI\":",
        rng.next_u64() as u32,
        rng.below(0x10000),
        rng.below(0x1000),
        8 + rng.below(4),
        rng.below(0x1000),
        rng.next_u64() & 0xffff_ffff_ffff
    );
    push_str(out, &uri(act, agent, rng));
    let _ = write!(
        out,
        ",\"verb\":\"{}\",\"user\":{},\"sourceIPs\":[",
        act.verb, who.user_json
    );
    push_str(out, ip);
    out.push_str("],\"userAgent\":");
    push_str(out, agent);
    let _ = write!(out, ",\"objectRef\":{{\"resource\":\"{}\"", act.res.name);
    let ns = if act.res.name == "namespaces" {
        act.name.as_ref()
    } else {
        act.ns.as_ref().filter(|_| act.res.namespaced)
    };
    if let Some(ns) = ns {
        out.push_str(",\"namespace\":");
        push_str(out, ns);
    }
    if let Some(n) = &act.name {
        out.push_str(",\"name\":");
        push_str(out, n);
    }
    if !act.res.group.is_empty() {
        let _ = write!(out, ",\"apiGroup\":\"{}\"", act.res.group);
    }
    let _ = write!(out, ",\"apiVersion\":\"{}\"", act.res.version);
    if let Some(s) = act.sub {
        let _ = write!(out, ",\"subresource\":\"{s}\"");
    }
    out.push_str("},\"responseStatus\":{\"metadata\":{}");
    if code >= 400 {
        let kind = act.res.name;
        let what = match &act.name {
            Some(n) => format!("{kind} \"{n}\""),
            None => kind.to_owned(),
        };
        let (reason, message) = match code {
            403 => {
                let resource = match act.sub {
                    Some(s) => format!("{kind}/{s}"),
                    None => kind.to_owned(),
                };
                let verb = format!("{} resource \"{resource}\"", act.verb);
                let place = match ns {
                    Some(ns) if act.res.namespaced => format!("in the namespace \"{ns}\""),
                    _ => "at the cluster scope".to_owned(),
                };
                ("Forbidden", format!("{what} is forbidden: User \"{}\" cannot {verb} in API group \"{}\" {place}", who.username, act.res.group))
            }
            404 => ("NotFound", format!("{what} not found")),
            _ => {
                if act.verb == "create" {
                    ("AlreadyExists", format!("{what} already exists"))
                } else {
                    ("Conflict", format!("Operation cannot be fulfilled on {what}: the object has been modified; please apply your changes to the latest version and try again"))
                }
            }
        };
        out.push_str(",\"status\":\"Failure\",\"message\":");
        push_str(out, &message);
        let _ = write!(out, ",\"reason\":\"{reason}\",\"details\":{{");
        if let Some(n) = &act.name {
            out.push_str("\"name\":");
            push_str(out, n);
            out.push(',');
        }
        let _ = write!(out, "\"kind\":\"{kind}\"}}");
    }
    let _ = write!(out, ",\"code\":{code}}},\"requestReceivedTimestamp\":\"");
    push_rfc3339(out, at);
    out.push_str("\",\"stageTimestamp\":\"");
    push_rfc3339(out, at + latency(act, rng));
    out.push_str("\",\"annotations\":{\"authorization.k8s.io/decision\":");
    match decision {
        Some(reason) => {
            out.push_str("\"allow\",\"authorization.k8s.io/reason\":");
            push_str(out, reason);
        }
        None => out.push_str("\"forbid\",\"authorization.k8s.io/reason\":\"\""),
    }
    out.push_str("}}");
}

/// Microseconds from seconds.
pub(crate) fn us(secs: f64) -> i64 {
    (secs * MICROS as f64) as i64
}
