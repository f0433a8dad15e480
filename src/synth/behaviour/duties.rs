//! Service accounts at work, one UTC hour at a time: watches, leases, polls, CI deploys and test runs, cron jobs, backups, secret refreshes, syncs and batch pods.

use super::basics::{rng, weekday, zone, Draw, DAY, HOUR, MICROS, ZONES};
use super::catalog::*;
use super::commands::{self as c, pace, Cmd, Names};
use super::jobs::{cron, deploy, tests};
use super::population::{Population, Who};
use super::services::{Duty, Sa, Scope};
use super::Req;
use crate::synth::Rng;

/// Share of the company at work at an instant (0–1), weighting each zone by its people.
pub(crate) fn activity(pop: &Population, t: i64) -> f64 {
    let mut w = [0usize; 10];
    for h in &pop.humans {
        w[h.zone] += 1;
    }
    let total: usize = w.iter().sum::<usize>().max(1);
    let mut a = 0.0;
    for (z, n) in w.iter().enumerate() {
        let l = t + ZONES[z].offset_at(t);
        let (d, hr) = (l.div_euclid(DAY), l.rem_euclid(DAY) / HOUR);
        if weekday(d) < 5 && (9..18).contains(&hr) {
            a += *n as f64;
        }
    }
    a / total as f64
}

fn rand_in_hour(hour: i64, r: &mut Rng) -> i64 {
    hour * MICROS + r.below(3600 * MICROS as usize) as i64
}

pub(super) struct Out<'a> {
    pub(super) pop: &'a Population,
    pub(super) i: usize,
    pub(super) day: i64,
    pub(super) out: &'a mut Vec<Req>,
}

impl Out<'_> {
    pub(super) fn sa(&self) -> &Sa {
        &self.pop.sas[self.i]
    }
    fn push(&mut self, at: i64, pick: u64, act: Act) {
        let sa = &self.pop.sas[self.i];
        let ip = sa.ip(self.day, pick);
        let agent = sa.agent_on(self.day).to_owned();
        self.out.push(Req {
            at,
            who: Who::Sa(self.i),
            ip,
            agent,
            act,
        });
    }
    fn run(&mut self, at: i64, pick: u64, cmds: Vec<Cmd>, think: f64, r: &mut Rng) {
        for (dt, act) in pace(cmds, think, r) {
            self.push(at + dt, pick, act);
        }
    }
    fn targets(&self, scope: &Scope) -> Vec<Option<String>> {
        let sa = self.sa();
        match scope {
            Scope::Cluster => vec![None],
            Scope::Own => vec![Some(sa.ns.clone())],
            Scope::Team => {
                let mut v: Vec<Option<String>> = Vec::new();
                for t in 0..self.pop.teams.len() {
                    v.extend(
                        self.pop
                            .team_ns(t, self.day)
                            .into_iter()
                            .map(|i| Some(self.pop.ns[i].name.clone())),
                    );
                }
                v
            }
            Scope::Some(list) => list
                .iter()
                .filter(|n| {
                    self.pop
                        .ns_index(n)
                        .is_some_and(|i| self.pop.ns[i].from <= self.day)
                })
                .map(|n| Some(n.clone()))
                .collect(),
        }
    }
    pub(super) fn random_team_ns(&self, r: &mut Rng) -> usize {
        let t = r.below(self.pop.teams.len());
        let ns = self.pop.team_ns(t, self.day);
        ns[r.below(ns.len())]
    }
}

/// Times in the hour of something every `period` seconds with a fixed phase.
fn ticks(hour: i64, period: i64, phase: i64) -> impl Iterator<Item = i64> {
    let first = hour + (phase - hour).rem_euclid(period);
    (0..)
        .map(move |k| first + k * period)
        .take_while(move |t| *t < hour + HOUR)
}

/// Local days of a zone that overlap the hour.
fn local_days(hour: i64, z: usize) -> Vec<(i64, i64)> {
    let off = ZONES[z].offset_at(hour);
    let (a, b) = (
        (hour + off).div_euclid(DAY),
        (hour + HOUR - 1 + off).div_euclid(DAY),
    );
    if a == b {
        vec![(a, off)]
    } else {
        vec![(a, off), (b, off)]
    }
}

/// Start times (epoch seconds) of a team's CI jobs on a local day.
fn ci_starts(pop: &Population, sa: &Sa, ld: i64, off: i64, per_day: f64) -> Vec<i64> {
    let r = &mut rng(&[sa.seed, 50, ld as u64]);
    let weekend = weekday(ld) >= 5;
    let n = if weekend {
        u32::from(r.chance(0.15))
    } else {
        r.poisson(
            per_day
                * super::humans::busy(pop, sa.team.unwrap_or(0), ld - pop.start.div_euclid(DAY))
                    .sqrt(),
        )
    };
    (0..n)
        .map(|_| ld * DAY - off + (r.uniform(9.3, 18.5) * HOUR as f64) as i64)
        .collect()
}

/// One service account's requests in the hour starting at `hour`.
pub(crate) fn hour(pop: &Population, i: usize, hour: i64, salt: u64, out: &mut Vec<Req>) {
    let sa = &pop.sas[i];
    let day = pop.day_of(hour);
    if day < sa.from {
        return;
    }
    let mut o = Out { pop, i, day, out };
    for (k, duty) in sa.duties.iter().enumerate() {
        let r = &mut rng(&[pop.seed, salt, 70, i as u64, hour as u64, k as u64]);
        duty_hour(&mut o, duty, hour, r);
    }
}

fn duty_hour(o: &mut Out<'_>, duty: &Duty, hour: i64, r: &mut Rng) {
    let (pop, sa) = (o.pop, &o.pop.sas[o.i]);
    match duty {
        Duty::Watch(res, scope) => {
            for ns in o.targets(scope) {
                for _ in 0..r.poisson(7.5) {
                    o.push(
                        rand_in_hour(hour, r),
                        r.next_u64(),
                        Act::new("watch", res, ns.as_deref(), None),
                    );
                }
                if r.chance(0.3) {
                    o.push(
                        rand_in_hour(hour, r),
                        r.next_u64(),
                        Act::new("list", res, ns.as_deref(), None),
                    );
                }
            }
        }
        Duty::Lease(period) => {
            let name = format!("{}-leader-election", sa.name);
            for t in ticks(hour, *period, (sa.seed % *period as u64) as i64) {
                let at = t * MICROS + r.below(1_500_000) as i64;
                o.push(at, 0, Act::new("get", &LEASES, Some(&sa.ns), Some(&name)));
                o.push(
                    at + 3000 + r.below(30_000) as i64,
                    0,
                    Act::new("update", &LEASES, Some(&sa.ns), Some(&name))
                        .fail_if(r.chance(0.004), 409),
                );
            }
        }
        Duty::Poll(acts, period) => {
            for t in ticks(hour, *period, (sa.seed % *period as u64) as i64) {
                let at = t * MICROS + r.below(2_000_000) as i64;
                o.run(at, 0, vec![acts.clone()], 1.0, r);
            }
        }
        Duty::Emit(per_hour) => {
            for _ in 0..r.poisson(*per_hour) {
                let name = format!("{}.{:016x}", sa.name, r.next_u64() >> 4);
                o.push(
                    rand_in_hour(hour, r),
                    0,
                    Act::new("create", &EVENTS, Some(&sa.ns), Some(&name)),
                );
            }
        }
        Duty::Reconcile(res, per_hour, scope) => {
            let targets = o.targets(scope);
            for _ in 0..r.poisson(*per_hour) {
                let ns = if res.namespaced {
                    targets[r.below(targets.len())].clone()
                } else {
                    None
                };
                let name = match ns.as_deref().and_then(|n| pop.ns_index(n)) {
                    Some(nsi) if res.name == "secrets" => Names {
                        pop,
                        ns: nsi,
                        day: o.day,
                    }
                    .secret(r),
                    Some(nsi) => {
                        Names {
                            pop,
                            ns: nsi,
                            day: o.day,
                        }
                        .app(r)
                        .1
                    }
                    None => c::node_name(r),
                };
                let verb = if r.chance(0.5) { "update" } else { "patch" };
                o.push(
                    rand_in_hour(hour, r),
                    r.next_u64(),
                    Act::new(verb, res, ns.as_deref(), Some(&name)).fail_if(r.chance(0.01), 409),
                );
            }
        }
        Duty::Deploy(helm) => {
            let z = sa.team.map_or(zone::LONDON, |t| pop.teams[t].main_zone);
            let per_day = 2.0 + sa.team.map_or(0, |t| pop.teams[t].members.len()) as f64 / 4.0;
            for (ld, off) in local_days(hour, z) {
                for (j, t) in ci_starts(pop, sa, ld, off, per_day.min(12.0))
                    .into_iter()
                    .enumerate()
                {
                    if t.div_euclid(HOUR) == hour.div_euclid(HOUR) {
                        let jr = &mut rng(&[sa.seed, 51, ld as u64, j as u64]);
                        let cmds = deploy(o, *helm, jr);
                        o.run(
                            t * MICROS + jr.below(MICROS as usize) as i64,
                            jr.next_u64(),
                            cmds,
                            1.5,
                            jr,
                        );
                    }
                }
            }
        }
        Duty::Tests => {
            let z = sa.team.map_or(zone::LONDON, |t| pop.teams[t].main_zone);
            for (ld, off) in local_days(hour, z) {
                for (j, t) in ci_starts(pop, sa, ld, off, 6.0).into_iter().enumerate() {
                    if t.div_euclid(HOUR) == hour.div_euclid(HOUR) {
                        let jr = &mut rng(&[sa.seed, 52, ld as u64, j as u64]);
                        let cmds = tests(o, jr);
                        o.run(
                            t * MICROS + jr.below(MICROS as usize) as i64,
                            jr.next_u64(),
                            cmds,
                            4.0,
                            jr,
                        );
                    }
                }
            }
        }
        Duty::Cron(job, period, minute) => {
            let period = i64::from(*period) * 60;
            for t in ticks(hour, period, i64::from(*minute) * 60) {
                let cmds = cron(o, *job, r);
                o.run(
                    t * MICROS + r.below(3 * MICROS as usize) as i64,
                    0,
                    cmds,
                    0.3,
                    r,
                );
            }
        }
        Duty::Backup => {
            if hour.rem_euclid(DAY) == HOUR {
                let mut cmds: Vec<Cmd> = vec![
                    vec![Act::new(
                        "create",
                        &BACKUPS,
                        Some(&sa.ns),
                        Some(&format!("daily-{}", hour / DAY)),
                    )],
                    c::list(&NAMESPACES, None),
                ];
                for res in [&CLUSTERROLES, &CLUSTERROLEBINDINGS, &CRDS, &NODES] {
                    cmds.push(c::list(res, None));
                }
                for nsi in 0..pop.ns.len() {
                    if pop.ns[nsi].from <= o.day {
                        for res in [
                            &PODS,
                            &DEPLOYMENTS,
                            &REPLICASETS,
                            &STATEFULSETS,
                            &SERVICES,
                            &CONFIGMAPS,
                            &SECRETS,
                            &SERVICEACCOUNTS,
                            &PVCS,
                            &ROLEBINDINGS,
                            &ROLES,
                            &INGRESSES,
                            &JOBS,
                            &CRONJOBS,
                            &HPAS,
                            &NETWORKPOLICIES,
                        ] {
                            cmds.push(c::list(res, Some(&pop.ns[nsi].name)));
                        }
                    }
                }
                cmds.push(vec![Act::new(
                    "patch",
                    &BACKUPS,
                    Some(&sa.ns),
                    Some(&format!("daily-{}", hour / DAY)),
                )]);
                o.run(
                    hour * MICROS + r.below(90 * MICROS as usize) as i64,
                    0,
                    cmds,
                    1.2,
                    r,
                );
            }
        }
        Duty::Refresh => {
            for nsi in o
                .targets(&Scope::Team)
                .into_iter()
                .flatten()
                .filter_map(|n| pop.ns_index(&n))
            {
                let names = Names {
                    pop,
                    ns: nsi,
                    day: o.day,
                };
                for k in 0..1u64 {
                    let minute = super::basics::mix(&[sa.seed, nsi as u64, k]) % 3600;
                    let at = (hour + minute as i64) * MICROS + r.below(MICROS as usize) as i64;
                    let secret = pop.ns[nsi].secrets
                        [(k as usize * 3 + 1) % pop.ns[nsi].secrets.len()]
                    .clone();
                    let mut cmd = vec![Act::new("get", &SECRETS, Some(names.ns()), Some(&secret))];
                    if r.chance(0.3) {
                        cmd.push(Act::new(
                            "update",
                            &SECRETS,
                            Some(names.ns()),
                            Some(&secret),
                        ));
                    }
                    cmd.push(
                        Act::new("update", &EXTERNALSECRETS, Some(names.ns()), Some(&secret))
                            .sub("status"),
                    );
                    o.run(at, 0, vec![cmd], 1.0, r);
                }
            }
        }
        Duty::Sync => {
            for _ in 0..r.poisson(3.0 + 30.0 * activity(pop, hour)) {
                let n = Names {
                    pop,
                    ns: o.random_team_ns(r),
                    day: o.day,
                };
                let (_, app) = n.app(r);
                let appname = format!(
                    "{}-{}",
                    pop.ns[n.ns].team.map_or("platform", |t| pop.teams[t].name),
                    n.ns()
                );
                let mut cmd = vec![Act::new(
                    "get",
                    &APPLICATIONS,
                    Some("argocd"),
                    Some(&appname),
                )];
                for res in [&DEPLOYMENTS, &SERVICES, &CONFIGMAPS] {
                    if r.chance(0.6) {
                        cmd.push(Act::new("patch", res, Some(n.ns()), Some(&app)));
                    }
                }
                cmd.push(Act::new(
                    "patch",
                    &APPLICATIONS,
                    Some("argocd"),
                    Some(&appname),
                ));
                o.run(rand_in_hour(hour, r), 0, vec![cmd], 1.0, r);
            }
        }
        Duty::Follow(peak, secrets) => {
            for _ in 0..r.poisson(peak * (0.25 + activity(pop, hour))) {
                let n = Names {
                    pop,
                    ns: o.random_team_ns(r),
                    day: o.day,
                };
                let (pod, _) = n.pod(r);
                let mut cmd = vec![Act::new("get", &PODS, Some(n.ns()), Some(&pod))];
                if *secrets {
                    let scan = format!("scan-vulnerabilityreport-{:x}", r.below(0xffffff));
                    cmd.push(Act::new(
                        "get",
                        &SECRETS,
                        Some(n.ns()),
                        Some(&format!("{}-registry-pull", n.ns())),
                    ));
                    cmd.push(Act::new("create", &JOBS, Some(&sa.ns), Some(&scan)));
                    cmd.push(Act::new(
                        "create",
                        &VULNREPORTS,
                        Some(n.ns()),
                        Some(&format!("replicaset-{pod}")),
                    ));
                }
                o.run(rand_in_hour(hour, r), r.next_u64(), vec![cmd], 1.0, r);
            }
        }
        Duty::Batch(ns) => {
            let Some(nsi) = pop.ns_index(ns) else { return };
            let hod = hour.rem_euclid(DAY) / HOUR;
            let pods = match (ns.as_str(), hod) {
                ("spark", 22 | 23 | 0..=3) => r.int(5, 20),
                ("spark", _) => 0,
                (_, 2) => r.int(20, 40),
                _ => r.int(2, 6),
            };
            for p in 0..pods {
                let n = Names {
                    pop,
                    ns: nsi,
                    day: o.day,
                };
                let pod = format!("{}-{:x}-{p}", n.app(r).1, r.below(0xffffff));
                let mut cmds = vec![vec![Act::new("create", &PODS, Some(n.ns()), Some(&pod))]];
                for _ in 0..r.int(2, 6) {
                    cmds.push(vec![Act::new("get", &PODS, Some(n.ns()), Some(&pod))]);
                }
                cmds.push(vec![Act::new("get", &PODS, Some(n.ns()), Some(&pod))
                    .sub("log")
                    .query(Query::Container("base"))]);
                cmds.push(vec![Act::new("delete", &PODS, Some(n.ns()), Some(&pod))]);
                let at = (hour + 300 + r.below(3000) as i64) * MICROS;
                o.run(at, p as u64, cmds, 40.0, r);
            }
        }
        Duty::Reviews(per_hour) => {
            for _ in 0..r.poisson(per_hour * (0.3 + activity(pop, hour))) {
                o.push(
                    rand_in_hour(hour, r),
                    r.next_u64(),
                    Act::new("create", &TOKENREVIEWS, None, None),
                );
            }
        }
        Duty::Ui(per_hour) => {
            for _ in 0..r.poisson(per_hour * activity(pop, hour)) {
                let n = Names {
                    pop,
                    ns: o.random_team_ns(r),
                    day: o.day,
                };
                let app = format!(
                    "{}-{}",
                    pop.ns[n.ns].team.map_or("platform", |t| pop.teams[t].name),
                    n.ns()
                );
                let cmds = vec![
                    c::get(&APPLICATIONS, "argocd", &app),
                    c::logs(&n, r),
                    c::list(&EVENTS, Some(n.ns())),
                ];
                o.run(rand_in_hour(hour, r), r.next_u64(), cmds, 6.0, r);
            }
        }
    }
}
