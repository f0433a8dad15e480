//! The organisation: teams and the namespaces they own, the people in them, on-call rotations, the objects in each namespace, who may do what (RBAC), and the identity directory.

use std::collections::HashSet;
use std::fmt::Write;

use super::basics::{mix, rng, zone, Draw};
use super::catalog::{Act, Decision};
use super::people::{make_human, Human, Role, Trip};
use super::places::CONFERENCE;
use super::services::{build_sas, Perm, Sa};
use super::ScenarioOptions;

pub(crate) struct TeamDef {
    pub name: &'static str,
    pub role: Role,
    pub namespaces: &'static [&'static str],
    pub weight: f64,
    pub neighbors: &'static [&'static str],
    pub zones: &'static [(usize, f64)],
}

use zone::*;
pub(crate) const TEAMS: &[TeamDef] = &[
    TeamDef {
        name: "payments",
        role: Role::Dev,
        namespaces: &["payments", "payments-worker", "payments-ledger"],
        weight: 12.0,
        neighbors: &["checkout", "identity"],
        zones: &[(BERLIN, 4.0), (LONDON, 3.0), (KOLKATA, 3.0)],
    },
    TeamDef {
        name: "checkout",
        role: Role::Dev,
        namespaces: &["checkout", "checkout-web", "cart"],
        weight: 12.0,
        neighbors: &["payments", "search"],
        zones: &[(LA, 5.0), (NY, 3.0), (KOLKATA, 2.0)],
    },
    TeamDef {
        name: "search",
        role: Role::Dev,
        namespaces: &["search", "search-indexer"],
        weight: 9.0,
        neighbors: &["data", "checkout"],
        zones: &[(LA, 4.0), (KOLKATA, 3.0), (SHANGHAI, 2.0)],
    },
    TeamDef {
        name: "data",
        role: Role::Data,
        namespaces: &["data", "data-pipelines", "airflow", "spark"],
        weight: 12.0,
        neighbors: &["search", "growth"],
        zones: &[(NY, 4.0), (LONDON, 3.0), (KOLKATA, 2.0), (SHANGHAI, 1.0)],
    },
    TeamDef {
        name: "mobile-api",
        role: Role::Dev,
        namespaces: &["mobile-api", "mobile-push"],
        weight: 10.0,
        neighbors: &["identity", "checkout"],
        zones: &[(BERLIN, 3.0), (STOCKHOLM, 3.0), (PARIS, 2.0), (LA, 2.0)],
    },
    TeamDef {
        name: "identity",
        role: Role::Dev,
        namespaces: &["identity", "auth"],
        weight: 8.0,
        neighbors: &["mobile-api", "payments"],
        zones: &[(NY, 4.0), (LA, 2.0), (SYDNEY, 3.0)],
    },
    TeamDef {
        name: "growth",
        role: Role::Dev,
        namespaces: &["growth", "experiments", "notifications"],
        weight: 10.0,
        neighbors: &["data", "mobile-api"],
        zones: &[(LONDON, 4.0), (SINGAPORE, 3.0), (SYDNEY, 3.0)],
    },
    TeamDef {
        name: "platform",
        role: Role::Platform,
        namespaces: &[
            "platform-tools",
            "argocd",
            "cert-manager",
            "external-secrets",
            "velero",
            "ingress-nginx",
            "kube-system",
        ],
        weight: 8.0,
        neighbors: &[],
        zones: &[(BERLIN, 3.0), (LA, 3.0), (KOLKATA, 2.0), (LONDON, 1.0)],
    },
    TeamDef {
        name: "sre",
        role: Role::Sre,
        namespaces: &["monitoring", "logging", "sre-tools"],
        weight: 8.0,
        neighbors: &[],
        zones: &[
            (LA, 2.0),
            (LONDON, 2.0),
            (SYDNEY, 2.0),
            (SINGAPORE, 1.0),
            (KOLKATA, 2.0),
            (NY, 1.0),
        ],
    },
    TeamDef {
        name: "security",
        role: Role::Security,
        namespaces: &["security", "vault"],
        weight: 5.0,
        neighbors: &[],
        zones: &[(NY, 3.0), (LONDON, 3.0), (BERLIN, 1.0)],
    },
];

/// Namespaces that every team reads now and then.
pub(crate) const SHARED: &[&str] = &["monitoring", "ingress-nginx", "logging", "default"];
/// Namespaces created during the scenario: name, team, day.
const LATER: &[(&str, &str, i64)] = &[
    ("payments-fraud", "payments", 10),
    ("search-vector", "search", 17),
];

pub(crate) struct Team {
    pub name: &'static str,
    pub role: Role,
    pub ns: Vec<usize>,
    pub neighbors: Vec<usize>,
    pub members: Vec<usize>,
    pub rotation: Vec<usize>,
    /// The zone most of the team works in (for CI rhythms).
    pub main_zone: usize,
}

pub(crate) struct Namespace {
    pub name: String,
    pub team: Option<usize>,
    /// First day it exists (`i64::MIN`: always).
    pub from: i64,
    pub apps: Vec<String>,
    pub secrets: Vec<String>,
    pub configmaps: Vec<String>,
}

/// A principal of the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Who {
    Human(usize),
    Sa(usize),
}

pub(crate) struct Population {
    pub seed: u64,
    /// Epoch seconds of day 0.
    pub start: i64,
    /// Days the scenario runs.
    pub days: i64,
    pub teams: Vec<Team>,
    pub ns: Vec<Namespace>,
    pub humans: Vec<Human>,
    pub sas: Vec<Sa>,
    /// `user` JSON of each person before and after a team move.
    human_json: Vec<[String; 2]>,
    sa_json: Vec<String>,
    sa_names: Vec<String>,
}

fn apps_of(name: &str, r: &mut crate::synth::Rng) -> Vec<String> {
    let fixed: &[&str] = match name {
        "kube-system" => &[
            "coredns",
            "aws-node",
            "kube-proxy",
            "ebs-csi-controller",
            "cluster-autoscaler",
            "metrics-server",
            "aws-load-balancer-controller",
            "external-dns",
        ],
        "monitoring" => &[
            "prometheus-server",
            "grafana",
            "alertmanager",
            "kube-state-metrics",
            "node-exporter",
            "prometheus-operator",
            "blackbox-exporter",
        ],
        "logging" => &["fluent-bit", "loki", "loki-gateway"],
        "ingress-nginx" => &["ingress-nginx-controller", "ingress-nginx-defaultbackend"],
        "argocd" => &[
            "argocd-server",
            "argocd-repo-server",
            "argocd-application-controller",
            "argocd-redis",
            "argocd-applicationset-controller",
        ],
        "cert-manager" => &[
            "cert-manager",
            "cert-manager-cainjector",
            "cert-manager-webhook",
        ],
        "external-secrets" => &[
            "external-secrets",
            "external-secrets-webhook",
            "external-secrets-cert-controller",
        ],
        "velero" => &["velero", "node-agent"],
        "vault" => &["vault", "vault-agent-injector"],
        "security" => &["kyverno", "trivy-operator", "falco", "kyverno-cleanup"],
        "default" => &["nginx-test"],
        _ => &[],
    };
    if !fixed.is_empty() {
        return fixed.iter().map(|s| s.to_string()).collect();
    }
    let suffixes = [
        "api",
        "worker",
        "web",
        "consumer",
        "scheduler",
        "gateway",
        "sync",
        "admin",
        "grpc",
        "cron",
    ];
    let mut picked: Vec<&str> = Vec::new();
    for _ in 0..r.int(2, 5) {
        let s = suffixes[r.below(suffixes.len())];
        if !picked.contains(&s) {
            picked.push(s);
        }
    }
    picked.iter().map(|s| format!("{name}-{s}")).collect()
}

fn objects(apps: &[String], ns: &str, r: &mut crate::synth::Rng) -> (Vec<String>, Vec<String>) {
    let mut secrets = vec![format!("{ns}-registry-pull")];
    let mut configmaps = vec!["kube-root-ca.crt".to_owned()];
    for a in apps {
        configmaps.push(format!("{a}-config"));
        for (p, s) in [
            (0.6, "db-credentials"),
            (0.5, "tls"),
            (0.4, "api-keys"),
            (0.3, "env"),
        ] {
            if r.chance(p) {
                secrets.push(format!("{a}-{s}"));
            }
        }
        if r.chance(0.5) {
            secrets.push(format!("sh.helm.release.v1.{a}.v{}", r.int(3, 60)));
        }
    }
    (secrets, configmaps)
}

/// Splits `n` over weights (largest remainder), each at least one when there are enough.
fn apportion(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    if n >= weights.len() {
        out.iter_mut().for_each(|c| *c = (*c).max(1));
    }
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let mut i = 0;
    while out.iter().sum::<usize>() < n {
        out[order[i % order.len()]] += 1;
        i += 1;
    }
    while out.iter().sum::<usize>() > n {
        let big = (0..out.len()).max_by_key(|&i| out[i]).unwrap_or(0);
        out[big] -= 1;
    }
    out
}

impl Population {
    pub fn build(opts: &ScenarioOptions) -> Self {
        let seed = opts.seed;
        let days = i64::from(opts.weeks.max(1)) * 7;
        let r = &mut rng(&[seed, 100]);
        let mut ns: Vec<Namespace> = Vec::new();
        let mut add_ns = |name: &str, team: Option<usize>, from: i64, ns: &mut Vec<Namespace>| {
            if let Some(i) = ns.iter().position(|n| n.name == name) {
                return i;
            }
            let apps = apps_of(name, r);
            let (secrets, configmaps) = objects(&apps, name, r);
            ns.push(Namespace {
                name: name.to_owned(),
                team,
                from,
                apps,
                secrets,
                configmaps,
            });
            ns.len() - 1
        };
        let mut teams: Vec<Team> = Vec::new();
        for (t, def) in TEAMS.iter().enumerate() {
            let idx = def
                .namespaces
                .iter()
                .map(|n| add_ns(n, Some(t), i64::MIN, &mut ns))
                .collect();
            let main_zone = def
                .zones
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(LONDON, |z| z.0);
            teams.push(Team {
                name: def.name,
                role: def.role,
                ns: idx,
                neighbors: Vec::new(),
                members: Vec::new(),
                rotation: Vec::new(),
                main_zone,
            });
        }
        add_ns("default", None, i64::MIN, &mut ns);
        for (name, team, day) in LATER {
            let t = TEAMS.iter().position(|d| d.name == *team).unwrap_or(0);
            let i = add_ns(name, Some(t), *day, &mut ns);
            teams[t].ns.push(i);
        }
        for (t, def) in TEAMS.iter().enumerate() {
            teams[t].neighbors = def
                .neighbors
                .iter()
                .filter_map(|n| TEAMS.iter().position(|d| d.name == *n))
                .collect();
        }
        let counts = apportion(
            opts.humans,
            &TEAMS.iter().map(|t| t.weight).collect::<Vec<_>>(),
        );
        let mut humans = Vec::new();
        let mut used = HashSet::new();
        for (t, &c) in counts.iter().enumerate() {
            for _ in 0..c {
                let idx = humans.len();
                humans.push(make_human(
                    seed,
                    idx,
                    t,
                    TEAMS[t].role,
                    TEAMS[t].zones,
                    days,
                    &mut used,
                ));
                teams[t].members.push(idx);
            }
        }
        let n = humans.len();
        let mut special: HashSet<usize> = HashSet::new();
        // Joiners: no history before their first day.
        for k in 0..(n / 80).max(1).min(n) {
            let i = (k * 37 + 5) % n;
            if special.insert(i) {
                humans[i].joined = [8, 15, 22][k % 3].min(days - 1);
                humans[i].upgrade = None;
            }
        }
        // One developer moves to a neighbouring team.
        if let Some(i) = (0..n)
            .map(|k| (k * 53 + n / 2) % n)
            .find(|i| !special.contains(i) && TEAMS[humans[*i].team].role == Role::Dev)
        {
            let from = humans[i].team;
            if let Some(&to) = teams[from].neighbors.first() {
                humans[i].moved = Some((12.min(days - 1), to));
                special.insert(i);
            }
        }
        // A conference: several people from different teams in one venue for a few days.
        if days > 19 {
            for k in 0..5.min(n) {
                let i = (k * 71 + 13) % n;
                if special.insert(i) {
                    humans[i].trip = Some(Trip {
                        from: 15,
                        to: 18,
                        zone: zone::LA,
                        hotel: CONFERENCE[k % CONFERENCE.len()].to_owned(),
                        office: None,
                    });
                }
            }
        }
        for team in &mut teams {
            team.rotation = team
                .members
                .iter()
                .copied()
                .filter(|i| humans[*i].joined == i64::MIN && humans[*i].moved.is_none())
                .collect();
        }
        let mut pop = Population {
            seed,
            start: opts.start,
            days,
            teams,
            ns,
            humans,
            sas: Vec::new(),
            human_json: Vec::new(),
            sa_json: Vec::new(),
            sa_names: Vec::new(),
        };
        pop.sas = build_sas(&pop, opts.service_accounts);
        pop.human_json = pop
            .humans
            .iter()
            .map(|h| {
                let j = |t: usize| format!("{{\"username\":\"{}\",\"groups\":[\"{}\",\"team-{}\",\"system:authenticated\"]}}", h.username, TEAMS[t].role.group(), TEAMS[t].name);
                [j(h.team), j(h.moved.map_or(h.team, |m| m.1))]
            })
            .collect();
        pop.sa_names = pop
            .sas
            .iter()
            .map(|s| format!("system:serviceaccount:{}:{}", s.ns, s.name))
            .collect();
        pop.sa_json = pop
            .sas
            .iter()
            .map(|s| format!("{{\"username\":\"system:serviceaccount:{}:{}\",\"uid\":\"{}\",\"groups\":[\"system:serviceaccounts\",\"system:serviceaccounts:{}\",\"system:authenticated\"]}}", s.ns, s.name, s.uid, s.ns))
            .collect();
        pop
    }

    /// Day index (from the scenario start, UTC days) of an instant.
    pub fn day_of(&self, t: i64) -> i64 {
        (t - self.start).div_euclid(86_400)
    }

    pub fn ns_index(&self, name: &str) -> Option<usize> {
        self.ns.iter().position(|n| n.name == name)
    }

    /// Namespaces of a team that exist on a day.
    pub fn team_ns(&self, team: usize, day: i64) -> Vec<usize> {
        self.teams[team]
            .ns
            .iter()
            .copied()
            .filter(|&i| self.ns[i].from <= day)
            .collect()
    }

    /// The person on call for a team in the week holding `day`.
    pub fn on_call(&self, team: usize, day: i64) -> Option<usize> {
        let rot = &self.teams[team].rotation;
        (!rot.is_empty()).then(|| {
            rot[(day.div_euclid(7) + team as i64 * 3).rem_euclid(rot.len() as i64) as usize]
        })
    }

    pub fn username(&self, who: Who) -> String {
        self.name_of(who).to_owned()
    }

    pub fn name_of(&self, who: Who) -> &str {
        match who {
            Who::Human(i) => &self.humans[i].username,
            Who::Sa(i) => &self.sa_names[i],
        }
    }

    pub fn user_json(&self, who: Who, day: i64) -> &str {
        match who {
            Who::Human(i) => {
                let moved = matches!(self.humans[i].moved, Some((d, _)) if day >= d);
                &self.human_json[i][usize::from(moved)]
            }
            Who::Sa(i) => &self.sa_json[i],
        }
    }

    /// A pod of an app as it is named on a day (ReplicaSet hashes change with rollouts).
    pub fn pod(&self, ns: usize, app: usize, day: i64, replica: u64) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let epoch = (day + (app as i64 % 3)).div_euclid(3);
        let mut h = mix(&[self.seed, 7, ns as u64, app as u64, epoch as u64]);
        let mut s = format!("{}-", self.ns[ns].apps[app % self.ns[ns].apps.len()]);
        for i in 0..15 {
            if i == 10 {
                s.push('-');
                h = mix(&[h, replica]);
            }
            s.push(ALPHA[(h % ALPHA.len() as u64) as usize] as char);
            h /= ALPHA.len() as u64;
            if h < 1000 {
                h = mix(&[h, i]);
            }
        }
        s
    }

    /// What RBAC says to a request: the allowing binding, or `None` (forbidden).
    pub fn authorize(&self, who: Who, day: i64, act: &Act) -> Decision {
        let ns_team = act
            .ns
            .as_deref()
            .and_then(|n| self.ns_index(n))
            .and_then(|i| self.ns[i].team);
        match who {
            Who::Human(i) => {
                let team = self.humans[i].team_at(day);
                let (role, tname) = (self.teams[team].role, self.teams[team].name);
                let g = role.group();
                if role.admin() {
                    return Some(format!("RBAC: allowed by ClusterRoleBinding \"{g}-cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"{g}\""));
                }
                if act.res.namespaced && ns_team == Some(team) {
                    let ns = act.ns.as_deref().unwrap_or("");
                    return Some(format!("RBAC: allowed by RoleBinding \"team-admin/{ns}\" of ClusterRole \"admin\" to Group \"team-{tname}\""));
                }
                if role == Role::Security && act.is_read() {
                    return Some("RBAC: allowed by ClusterRoleBinding \"security-audit\" of ClusterRole \"security-audit\" to Group \"security\"".to_owned());
                }
                let viewable = act.is_read()
                    && act.res.name != "secrets"
                    && !matches!(act.res.group, "rbac.authorization.k8s.io");
                viewable.then(|| format!("RBAC: allowed by ClusterRoleBinding \"engineering-view\" of ClusterRole \"engineering-view\" to Group \"{g}\""))
            }
            Who::Sa(i) => {
                let sa = &self.sas[i];
                let to = format!("to ServiceAccount \"{}/{}\"", sa.name, sa.ns);
                let own = act.ns.as_deref() == Some(sa.ns.as_str()) && act.res.namespaced;
                let team_ns = act.res.namespaced && ns_team.is_some() && ns_team == sa.team;
                match &sa.perm {
                    Perm::Admin => Some(format!("RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"cluster-admin\" {to}", sa.name)),
                    _ if own => Some(format!("RBAC: allowed by RoleBinding \"{}/{}\" of Role \"{}\" {to}", sa.name, sa.ns, sa.name)),
                    Perm::Team if team_ns => {
                        let ns = act.ns.as_deref().unwrap_or("");
                        Some(format!("RBAC: allowed by RoleBinding \"ci-deploy/{ns}\" of ClusterRole \"admin\" {to}"))
                    }
                    Perm::Team | Perm::Own if act.res.name == "namespaces" && act.is_read() => {
                        Some(format!("RBAC: allowed by ClusterRoleBinding \"namespace-reader\" of ClusterRole \"namespace-reader\" {to}"))
                    }
                    Perm::Reader { secrets } if act.is_read() && (*secrets || act.res.name != "secrets") => {
                        Some(format!("RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" {to}", sa.name, sa.name))
                    }
                    Perm::Wide(list) if list.contains(&act.res.name) => {
                        Some(format!("RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" {to}", sa.name, sa.name))
                    }
                    _ => None,
                }
            }
        }
    }

    /// rampart's identity directory for the population.
    pub fn directory_yaml(&self) -> String {
        let mut y =
            String::from("# Identity directory of the behaviour scenario (generated).\nusers:\n");
        for h in &self.humans {
            let team = self.teams[h.moved.map_or(h.team, |m| m.1)].name;
            let _ = writeln!(y, "  - match: \"{}\"\n    name: \"{}\"\n    team: \"{team}\"\n    email: \"{}\"\n    kind: human\n    timezone: \"{}\"", h.username, h.display, h.username, super::basics::ZONES[h.zone].name);
        }
        y.push_str("service_accounts:\n");
        for s in &self.sas {
            let _ = writeln!(y, "  - match: \"{}/{}\"", s.ns, s.name);
            if let Some(t) = s.team {
                let _ = writeln!(y, "    team: \"{}\"", self.teams[t].name);
            }
            y.push_str("    kind: bot\n");
        }
        y.push_str("groups: []\n");
        y
    }
}
