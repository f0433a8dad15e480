//! What one command line (kubectl, k9s, helm, a script) sends to the API server, and how a run of commands spreads over time.
//!
//! People and planted incidents both build their requests from these, so an incident's
//! `kubectl get secrets -A` looks exactly like anybody else's.

use super::basics::Draw;
use super::catalog::{Act, Query, Res, *};
use super::population::Population;
use crate::synth::Rng;

/// One command: the requests it sends back to back.
pub(crate) type Cmd = Vec<Act>;

/// Requests of a run of commands with their offsets (microseconds) from the first: tens of
/// milliseconds within a command, a person's think time between commands.
pub(crate) fn pace(cmds: Vec<Cmd>, think: f64, r: &mut Rng) -> Vec<(i64, Act)> {
    let mut out = Vec::new();
    let mut t = 0i64;
    for (i, cmd) in cmds.into_iter().enumerate() {
        if i > 0 {
            t += us(r.lognormal(think, 0.8).clamp(0.8, 600.0));
        }
        for (j, a) in cmd.into_iter().enumerate() {
            if j > 0 {
                t += us(r.uniform(0.015, 0.25));
            }
            out.push((t, a));
        }
    }
    out
}

/// Names of things in a namespace, as of a day.
pub(crate) struct Names<'a> {
    pub pop: &'a Population,
    pub ns: usize,
    pub day: i64,
}

impl Names<'_> {
    pub fn ns(&self) -> &str {
        &self.pop.ns[self.ns].name
    }
    pub fn app(&self, r: &mut Rng) -> (usize, String) {
        let apps = &self.pop.ns[self.ns].apps;
        let i = r.below(apps.len());
        (i, apps[i].clone())
    }
    /// A running pod, or (rarely) one already replaced, which answers 404.
    pub fn pod(&self, r: &mut Rng) -> (String, bool) {
        let (a, _) = self.app(r);
        let stale = r.chance(0.03);
        let day = if stale { self.day - 4 } else { self.day };
        (self.pop.pod(self.ns, a, day, r.below(3) as u64), stale)
    }
    pub fn secret(&self, r: &mut Rng) -> String {
        r.pick(&self.pop.ns[self.ns].secrets).clone()
    }
    pub fn configmap(&self, r: &mut Rng) -> String {
        r.pick(&self.pop.ns[self.ns].configmaps).clone()
    }
}

fn named(verb: &'static str, res: &'static Res, ns: &str, name: &str) -> Act {
    Act::new(verb, res, Some(ns), Some(name))
}

pub(crate) fn list(res: &'static Res, ns: Option<&str>) -> Cmd {
    vec![Act::new("list", res, ns, None)]
}

pub(crate) fn get(res: &'static Res, ns: &str, name: &str) -> Cmd {
    vec![named("get", res, ns, name)]
}

/// `kubectl describe pod`: the pod, then its events.
pub(crate) fn describe_pod(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (pod, stale) = n.pod(r);
    let mut a = named("get", &PODS, n.ns(), &pod);
    if stale {
        return vec![a.fail(404)];
    }
    a.fail = None;
    vec![
        a,
        Act::new("list", &EVENTS, Some(n.ns()), None)
            .query(Query::Selector(format!("involvedObject.name%3D{pod}"))),
    ]
}

pub(crate) fn logs(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (pod, stale) = n.pod(r);
    let mut cmd = vec![named("get", &PODS, n.ns(), &pod)];
    if stale {
        cmd[0].fail = Some(404);
        return cmd;
    }
    cmd.push(
        named("get", &PODS, n.ns(), &pod)
            .sub("log")
            .query(Query::Container("app")),
    );
    cmd
}

pub(crate) fn exec(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (pod, _) = n.pod(r);
    vec![
        named("get", &PODS, n.ns(), &pod),
        named("create", &PODS, n.ns(), &pod)
            .sub("exec")
            .query(Query::Container("app")),
    ]
}

pub(crate) fn port_forward(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (_, app) = n.app(r);
    let (pod, _) = n.pod(r);
    vec![
        named("get", &SERVICES, n.ns(), &app),
        Act::new("list", &PODS, Some(n.ns()), None).query(Query::Selector(format!("app%3D{app}"))),
        named("create", &PODS, n.ns(), &pod).sub("portforward"),
    ]
}

/// `kubectl rollout restart` and a little `rollout status`.
pub(crate) fn rollout_restart(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let (_, app) = n.app(r);
    let mut cmds = vec![vec![
        named("get", &DEPLOYMENTS, n.ns(), &app),
        named("patch", &DEPLOYMENTS, n.ns(), &app),
    ]];
    let mut status = vec![named("get", &DEPLOYMENTS, n.ns(), &app)];
    for _ in 0..r.int(1, 4) {
        status.push(named("get", &DEPLOYMENTS, n.ns(), &app));
    }
    cmds.push(status);
    cmds
}

pub(crate) fn scale(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (_, app) = n.app(r);
    vec![
        named("get", &DEPLOYMENTS, n.ns(), &app).sub("scale"),
        named("patch", &DEPLOYMENTS, n.ns(), &app).sub("scale"),
    ]
}

pub(crate) fn delete_pod(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (pod, stale) = n.pod(r);
    let a = named("delete", &PODS, n.ns(), &pod);
    vec![if stale { a.fail(404) } else { a }]
}

pub(crate) fn create_job(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (_, app) = n.app(r);
    let job = format!("{app}-manual-{:x}", r.below(0xfffff));
    vec![
        named("get", &CRONJOBS, n.ns(), &format!("{app}-cron")),
        named("create", &JOBS, n.ns(), &job).fail_if(r.chance(0.02), 409),
    ]
}

pub(crate) fn secrets(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if r.chance(0.6) {
        cmds.push(list(&SECRETS, Some(n.ns())));
    }
    for _ in 0..r.int(1, 2) {
        cmds.push(get(&SECRETS, n.ns(), &n.secret(r)));
    }
    cmds
}

pub(crate) fn edit_configmap(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let cm = n.configmap(r);
    vec![
        named("get", &CONFIGMAPS, n.ns(), &cm),
        named("patch", &CONFIGMAPS, n.ns(), &cm),
    ]
}

pub(crate) fn network(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let (_, app) = n.app(r);
    vec![
        get(&SERVICES, n.ns(), &app),
        get(&ENDPOINTS, n.ns(), &app),
        list(&INGRESSES, Some(n.ns())),
    ]
}

pub(crate) fn node_name(r: &mut Rng) -> String {
    format!("ip-10-0-{}-{}.ec2.internal", r.below(4), 10 + r.below(60))
}

/// `kubectl describe node`.
pub(crate) fn describe_node(r: &mut Rng) -> Cmd {
    let node = node_name(r);
    vec![
        Act::new("get", &NODES, None, Some(&node)),
        Act::new("list", &PODS, None, None)
            .query(Query::Selector(format!("spec.nodeName%3D{node}"))),
        Act::new("list", &EVENTS, None, None),
    ]
}

pub(crate) fn rbac_read(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let mut cmds = vec![list(&ROLEBINDINGS, Some(n.ns()))];
    if r.chance(0.5) {
        cmds.push(list(&CLUSTERROLEBINDINGS, None));
    }
    if r.chance(0.4) {
        cmds.push(vec![Act::new(
            "get",
            &CLUSTERROLES,
            None,
            Some(*r.pick(&["admin", "edit", "view", "cluster-admin", "engineering-view"])),
        )]);
    }
    cmds
}

/// A binding in a namespace: create, or patch one that exists.
pub(crate) fn bind_role(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (_, app) = n.app(r);
    let name = format!(
        "{app}-{}",
        r.pick(&["view", "edit", "deployer", "debug", "oncall"])
    );
    if r.chance(0.5) {
        vec![named("create", &ROLEBINDINGS, n.ns(), &name)]
    } else {
        vec![
            named("get", &ROLEBINDINGS, n.ns(), &name),
            named("patch", &ROLEBINDINGS, n.ns(), &name),
        ]
    }
}

/// A cluster-wide binding: create, or patch one that exists.
pub(crate) fn bind_cluster_role(r: &mut Rng) -> Cmd {
    let name = format!(
        "{}-{}",
        r.pick(&[
            "oncall",
            "sre",
            "platform",
            "debug",
            "break-glass",
            "ci",
            "audit"
        ]),
        r.pick(&["admin", "view", "edit", "readers", "access"])
    );
    if r.chance(0.5) {
        vec![Act::new("create", &CLUSTERROLEBINDINGS, None, Some(&name))]
    } else {
        vec![
            Act::new("get", &CLUSTERROLEBINDINGS, None, Some(&name)),
            Act::new("patch", &CLUSTERROLEBINDINGS, None, Some(&name)),
        ]
    }
}

/// Deleting something of a namespace (a pod, a job, a rolebinding or a secret).
pub(crate) fn delete_any(n: &Names<'_>, r: &mut Rng) -> Cmd {
    let (_, app) = n.app(r);
    match r.below(4) {
        0 => delete_pod(n, r),
        1 => vec![named(
            "delete",
            &JOBS,
            n.ns(),
            &format!("{app}-manual-{:x}", r.below(0xfffff)),
        )],
        2 => vec![named(
            "delete",
            &ROLEBINDINGS,
            n.ns(),
            &format!("{app}-debug"),
        )],
        _ => vec![named("delete", &SECRETS, n.ns(), &n.secret(r))],
    }
}

/// k9s browsing a namespace: lists and watches of several kinds, some logs.
pub(crate) fn k9s(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let mut cmds = vec![
        list(&NAMESPACES, None),
        vec![
            Act::new("list", &PODS, Some(n.ns()), None),
            Act::new("watch", &PODS, Some(n.ns()), None),
        ],
    ];
    for _ in 0..r.int(1, 4) {
        let res = [
            &DEPLOYMENTS,
            &SERVICES,
            &CONFIGMAPS,
            &EVENTS,
            &REPLICASETS,
            &JOBS,
        ][r.below(6)];
        cmds.push(vec![
            Act::new("list", res, Some(n.ns()), None),
            Act::new("watch", res, Some(n.ns()), None),
        ]);
    }
    if r.chance(0.6) {
        cmds.push(logs(n, r));
    }
    cmds
}

/// Lens opening a cluster: namespaces, nodes, pods and events everywhere.
pub(crate) fn lens(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let mut cmds = vec![
        list(&NAMESPACES, None),
        list(&NODES, None),
        vec![
            Act::new("list", &PODS, None, None),
            Act::new("watch", &PODS, None, None),
        ],
        list(&EVENTS, None),
    ];
    if r.chance(0.5) {
        cmds.push(list(&DEPLOYMENTS, Some(n.ns())));
    }
    cmds
}

/// `helm list`/`helm history`, sometimes `helm upgrade`: Helm keeps releases in secrets.
pub(crate) fn helm(n: &Names<'_>, r: &mut Rng, upgrade: bool) -> Vec<Cmd> {
    let (_, app) = n.app(r);
    let owner = Query::Selector(format!("name%3D{app}%2Cowner%3Dhelm"));
    let mut cmds = vec![vec![
        Act::new("list", &SECRETS, Some(n.ns()), None).query(owner.clone())
    ]];
    if upgrade {
        let v = r.int(3, 60);
        cmds.push(vec![
            Act::new("list", &SECRETS, Some(n.ns()), None).query(owner),
            named("get", &DEPLOYMENTS, n.ns(), &app),
            named("patch", &DEPLOYMENTS, n.ns(), &app),
            named("get", &SERVICES, n.ns(), &app),
            named("patch", &SERVICES, n.ns(), &app),
            named(
                "create",
                &SECRETS,
                n.ns(),
                &format!("sh.helm.release.v1.{app}.v{}", v + 1),
            ),
            named(
                "update",
                &SECRETS,
                n.ns(),
                &format!("sh.helm.release.v1.{app}.v{v}"),
            ),
        ]);
    }
    cmds
}

/// The Argo Rollouts plugin: a rollout, its replica sets and pods, sometimes a promote.
pub(crate) fn rollouts(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let (_, app) = n.app(r);
    let mut cmds = vec![vec![
        named("get", &ROLLOUTS, n.ns(), &app),
        Act::new("list", &REPLICASETS, Some(n.ns()), None),
        Act::new("list", &PODS, Some(n.ns()), None),
    ]];
    if r.chance(0.3) {
        cmds.push(vec![named("patch", &ROLLOUTS, n.ns(), &app)]);
    }
    cmds
}

/// A script or small tool: lists in a namespace, a config map or two.
pub(crate) fn script(n: &Names<'_>, r: &mut Rng) -> Vec<Cmd> {
    let mut cmds = vec![list(&PODS, Some(n.ns())), list(&DEPLOYMENTS, Some(n.ns()))];
    if r.chance(0.5) {
        cmds.push(get(&CONFIGMAPS, n.ns(), &n.configmap(r)));
    }
    cmds
}

impl Act {
    pub fn fail_if(self, cond: bool, code: u16) -> Self {
        if cond {
            self.fail(code)
        } else {
            self
        }
    }
}
