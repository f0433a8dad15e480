//! The service accounts: CI deployers and runners, controllers and operators, monitoring, backup, secret syncing, cron jobs and workloads, each with its duties, network and client.
//!
//! Request rates are scaled down from what real controllers do (a lease renewal every few
//! minutes rather than every two seconds, a watch re-established every 5–10 minutes) so the
//! four weeks stay a few million events; the shapes and rhythms are the real ones.

use super::basics::rng;
use super::catalog::{Act, Res, *};
use super::population::{Population, TEAMS};

/// What RBAC grants a service account beyond its own namespace.
#[derive(Debug, Clone)]
pub(crate) enum Perm {
    /// cluster-admin.
    Admin,
    /// get/list/watch everything (with or without secrets).
    Reader { secrets: bool },
    /// Every verb on these resources everywhere.
    Wide(&'static [&'static str]),
    /// admin in its team's namespaces (CI).
    Team,
    /// Its own namespace only.
    Own,
}

/// Which namespaces a watch or poll covers.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    Cluster,
    Own,
    Team,
    Some(Vec<String>),
}

/// Scheduled jobs of cron service accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// Delete completed pods and jobs everywhere (kubectl).
    Cleanup,
    /// Probe a few endpoints (curl).
    Health,
    /// List RBAC objects (python).
    RbacAudit,
    /// A team report: reads its namespace, optionally a database secret.
    Report { secret: bool },
    /// Asks for more than it may (403s every run).
    Overreach,
}

#[derive(Debug, Clone)]
pub(crate) enum Duty {
    /// Watches re-established every 5–10 minutes, with an occasional relist.
    Watch(&'static Res, Scope),
    /// Leader election: get + update a lease every `period` seconds.
    Lease(i64),
    /// Requests repeated every `period` seconds.
    Poll(Vec<Act>, i64),
    /// Events (the Kubernetes kind) emitted per hour.
    Emit(f64),
    /// Status writes on its own kind of object, per hour.
    Reconcile(&'static Res, f64, Scope),
    /// CI deploys during the team's working hours (`true`: with Helm).
    Deploy(bool),
    /// CI test runs during the team's working hours.
    Tests,
    /// A job every `period` minutes, at `minute` past.
    Cron(Job, u32, u32),
    /// Nightly backup of every namespace at 01:00 UTC.
    Backup,
    /// external-secrets refreshes: each managed secret read (and sometimes written) hourly.
    Refresh,
    /// Argo CD syncs and status patches through the working day.
    Sync,
    /// Per-pod look-ups following activity in the cluster; `true`: reads image-pull secrets too.
    Follow(f64, bool),
    /// Batch pods in a namespace (hourly and a big nightly run).
    Batch(String),
    /// TokenReviews for pods logging in, per hour.
    Reviews(f64),
    /// Argo CD UI use: reads across team namespaces in the working day, per hour.
    Ui(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ci {
    Deployer,
    Runner,
}

#[derive(Debug, Clone)]
pub(crate) struct Sa {
    pub ns: String,
    pub name: String,
    pub team: Option<usize>,
    pub uid: String,
    pub perm: Perm,
    /// User agents by first day of use.
    pub agents: Vec<(i64, String)>,
    /// Pod replicas (0: CI runner machines instead of pods).
    pub replicas: u32,
    pub duties: Vec<Duty>,
    /// First day it exists.
    pub from: i64,
    pub ci: Option<Ci>,
    /// Its peer family (`ci-runner`, `deployer`, `operator`, ...).
    pub family: &'static str,
    pub seed: u64,
}

impl Sa {
    pub fn agent_on(&self, day: i64) -> &str {
        self.agents
            .iter()
            .rev()
            .find(|(d, _)| *d <= day)
            .or(self.agents.first())
            .map_or("", |(_, a)| a.as_str())
    }
    /// User-agent families it ever uses (text before the first '/' or ' ').
    pub fn families(&self) -> Vec<String> {
        self.agents
            .iter()
            .map(|(_, a)| a.split(['/', ' ']).next().unwrap_or("").to_owned())
            .collect()
    }
    /// The source address of a request at `t` from replica `replica` (or one CI job `job`).
    pub fn ip(&self, day: i64, pick: u64) -> String {
        if self.replicas == 0 {
            return format!("10.20.4.{}", 10 + rng(&[self.seed, 40, pick]).below(60));
        }
        let replica = pick % u64::from(self.replicas);
        let period = 5 + (self.seed % 8) as i64;
        let epoch = (day + (self.seed % 13) as i64).div_euclid(period);
        let r = &mut rng(&[self.seed, 41, replica, epoch as u64]);
        let node = if self.replicas > 8 {
            replica as usize % 64
        } else {
            r.below(64)
        };
        format!("10.244.{node}.{}", 2 + r.below(250))
    }
    /// Whether any duty touches secrets.
    pub fn reads_secrets(&self) -> bool {
        self.duties.iter().any(|d| match d {
            Duty::Watch(r, _) | Duty::Reconcile(r, _, _) => r.name == "secrets",
            Duty::Poll(acts, _) => acts.iter().any(|a| a.res.name == "secrets"),
            Duty::Deploy(helm) => *helm,
            Duty::Cron(Job::Report { secret }, _, _) => *secret,
            Duty::Refresh | Duty::Backup | Duty::Follow(_, true) => true,
            _ => false,
        })
    }
    /// Whether it works around the clock (controllers) rather than in bursts of working hours (CI).
    pub fn always_on(&self) -> bool {
        self.ci.is_none()
    }
}

pub(super) const CG: &str = "(linux/amd64) kubernetes/$Format";

pub(super) struct Spec {
    pub(super) ns: String,
    pub(super) name: String,
    pub(super) team: Option<usize>,
    pub(super) perm: Perm,
    pub(super) agents: Vec<(i64, String)>,
    pub(super) replicas: u32,
    pub(super) duties: Vec<Duty>,
    pub(super) ci: Option<Ci>,
    pub(super) family: &'static str,
    pub(super) from: i64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn spec(
    ns: &str,
    name: &str,
    team: Option<usize>,
    perm: Perm,
    agent: &str,
    replicas: u32,
    family: &'static str,
    duties: Vec<Duty>,
) -> Spec {
    Spec {
        ns: ns.into(),
        name: name.into(),
        team,
        perm,
        agents: vec![(i64::MIN, agent.into())],
        replicas,
        duties,
        ci: None,
        family,
        from: i64::MIN,
    }
}

pub(super) fn watch(list: &[&'static Res], scope: Scope) -> Vec<Duty> {
    list.iter().map(|r| Duty::Watch(r, scope.clone())).collect()
}

pub(super) fn team_of(name: &str) -> Option<usize> {
    TEAMS.iter().position(|t| t.name == name)
}

/// CI, operators and cron jobs of each team, then workloads, until `n` service accounts.
pub(crate) fn build_sas(pop: &Population, n: usize) -> Vec<Sa> {
    let days = pop.days;
    let mut specs = super::platform::platform(days);
    let mut per_team: Vec<Spec> = Vec::new();
    let kubectl_ci = |day: i64| {
        if day >= 12.min(days - 1) {
            "kubectl/v1.31.3 (linux/amd64) kubernetes/c83cbee"
        } else {
            "kubectl/v1.30.5 (linux/amd64) kubernetes/74e84a9"
        }
    };
    for (t, team) in pop.teams.iter().enumerate() {
        let helm = t % 2 == 0;
        let mut dep = spec(
            "ci",
            &format!("deployer-{}", team.name),
            Some(t),
            Perm::Team,
            if helm {
                "Helm/3.15.4"
            } else {
                kubectl_ci(i64::MIN)
            },
            0,
            "deployer",
            vec![Duty::Deploy(helm)],
        );
        if !helm {
            dep.agents.push((12.min(days - 1), kubectl_ci(days).into()));
        }
        dep.ci = Some(Ci::Deployer);
        per_team.push(dep);
        for k in 1..=3 {
            let agent = match (t + k) % 4 {
                0 => "python-requests/2.31.0",
                1 => "OpenAPI-Generator/30.1.0/python",
                _ => "kubectl/v1.30.5 (linux/amd64) kubernetes/74e84a9",
            };
            let mut run = spec(
                "ci",
                &format!("ci-runner-{}-{k}", team.name),
                Some(t),
                Perm::Team,
                agent,
                0,
                "ci-runner",
                vec![Duty::Tests],
            );
            run.ci = Some(Ci::Runner);
            if agent.starts_with("python-requests") {
                run.agents
                    .push((18.min(days - 1), "python-requests/2.32.3".into()));
            } else if agent.starts_with("kubectl") {
                run.agents.push((12.min(days - 1), kubectl_ci(days).into()));
            }
            per_team.push(run);
        }
    }
    for (t, team) in pop.teams.iter().enumerate() {
        let home = &pop.ns[team.ns[0]].name;
        let crd = [&DATABASES, &FLAGS, &QUEUES, &PIPELINES][t % 4];
        let mut op = spec(
            home,
            &format!("{}-operator", team.name),
            Some(t),
            Perm::Own,
            &format!("manager/v0.0.0 {CG}"),
            1,
            "operator",
            watch(&[crd, &DEPLOYMENTS, &CONFIGMAPS], Scope::Own),
        );
        op.duties.extend([
            Duty::Lease(240),
            Duty::Reconcile(crd, 4.0, Scope::Own),
            Duty::Emit(2.0),
        ]);
        if t % 3 == 0 {
            op.duties.push(Duty::Watch(&SECRETS, Scope::Own));
        }
        per_team.push(op);
        let second = &pop.ns[team.ns[1.min(team.ns.len() - 1)]].name;
        let (agent, job) = match t % 5 {
            0 => ("python-requests/2.31.0", Job::Report { secret: true }),
            1 => ("Go-http-client/2.0", Job::Report { secret: false }),
            2 => (
                "kubectl/v1.30.5 (linux/amd64) kubernetes/74e84a9",
                Job::Report { secret: false },
            ),
            3 => ("curl/8.5.0", Job::Report { secret: false }),
            _ => ("python-requests/2.32.3", Job::Overreach),
        };
        per_team.push(spec(
            second,
            &format!("{}-report", team.name),
            Some(t),
            Perm::Own,
            agent,
            1,
            "cron",
            vec![Duty::Cron(
                job,
                [60, 15, 30, 1440][t % 4],
                (t as u32 * 7) % 60,
            )],
        ));
    }
    specs.extend(per_team);
    // Workloads that talk to the API (leader election, config reloads), new namespaces first.
    let mut fill = Vec::new();
    let mut order: Vec<usize> = (0..pop.ns.len()).filter(|&i| pop.ns[i].from > 0).collect();
    order.extend((0..pop.ns.len()).filter(|&i| pop.ns[i].team.is_some() && pop.ns[i].from <= 0));
    let mut round = 0;
    while specs.len() + fill.len() < n && round < 8 {
        for &i in &order {
            let nsd = &pop.ns[i];
            let Some(app) = nsd.apps.get(round) else {
                continue;
            };
            if matches!(
                nsd.name.as_str(),
                "kube-system"
                    | "argocd"
                    | "monitoring"
                    | "logging"
                    | "cert-manager"
                    | "external-secrets"
                    | "velero"
                    | "ingress-nginx"
                    | "security"
                    | "vault"
                    | "spark"
                    | "airflow"
            ) {
                continue;
            }
            let agent = if (i + round) % 3 == 0 {
                "Go-http-client/2.0".to_owned()
            } else {
                format!("{app}/v0.0.0 {CG}")
            };
            let mut w = spec(
                &nsd.name,
                app,
                nsd.team,
                Perm::Own,
                &agent,
                1 + (i % 3) as u32,
                "workload",
                watch(&[&CONFIGMAPS], Scope::Own),
            );
            if (i + round) % 2 == 0 {
                w.duties.push(Duty::Lease(600));
            }
            w.from = if nsd.from > 0 {
                nsd.from
            } else if fill.len() == 5 {
                16.min(days - 1)
            } else {
                i64::MIN
            };
            fill.push(w);
            if specs.len() + fill.len() >= n {
                break;
            }
        }
        round += 1;
    }
    specs.extend(fill);
    specs.truncate(n);
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let r = &mut rng(&[pop.seed, 2, i as u64]);
            Sa {
                uid: format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    r.next_u64() as u32,
                    r.below(0x10000),
                    r.below(0x1000),
                    r.below(0x1000),
                    r.next_u64() & 0xffff_ffff_ffff
                ),
                seed: r.next_u64(),
                ns: s.ns,
                name: s.name,
                team: s.team,
                perm: s.perm,
                agents: s.agents,
                replicas: s.replicas,
                duties: s.duties,
                from: s.from,
                ci: s.ci,
                family: s.family,
            }
        })
        .collect()
}
