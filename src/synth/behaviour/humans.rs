//! People's days: when they work (local hours, lunch, meetings, evenings, weekends, on-call nights), from where, and what they do, one UTC hour at a time.

use super::basics::{rng, weekday, Draw, DAY, HOUR, MICROS};
use super::catalog::{Act, NAMESPACES, NODES, PODS, *};
use super::commands::{self as c, pace, Cmd, Names};
use super::people::{Human, Loc, Role};
use super::population::{Population, Who, SHARED};
use super::Req;
use crate::synth::Rng;

/// Why a person is at the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Work,
    Evening,
    Weekend,
    /// Paged while on call.
    Night,
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Seconds into the local day.
    pub start: i64,
    pub end: i64,
    /// Requests expected over the session.
    pub events: f64,
    pub kind: Kind,
    lunch: (i64, i64),
    meetings: Vec<(i64, i64)>,
}

impl Session {
    fn weight(&self, tod: i64) -> f64 {
        if tod < self.start
            || tod >= self.end
            || self.meetings.iter().any(|m| (m.0..m.1).contains(&tod))
        {
            return 0.0;
        }
        let lunch = if (self.lunch.0..self.lunch.1).contains(&tod) {
            0.25
        } else {
            1.0
        };
        let ramp = if tod - self.start < 1200 { 0.6 } else { 1.0 };
        lunch * ramp
    }
    /// Requests per second at a time of day.
    pub fn rate(&self, tod: i64) -> f64 {
        let w = self.weight(tod);
        if w == 0.0 {
            return 0.0;
        }
        let busy: i64 =
            (self.end - self.start) - self.meetings.iter().map(|m| m.1 - m.0).sum::<i64>();
        w * self.events / (busy.max(600) as f64)
    }
}

/// One person's local day.
#[derive(Debug, Clone)]
pub(crate) struct DayPlan {
    /// Scenario day (UTC-day index from the start) this local day is counted as.
    pub rel: i64,
    pub sessions: Vec<Session>,
    pub am: Loc,
    pub pm: Loc,
}

impl DayPlan {
    pub fn at(&self, tod: i64) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|s| (s.start..s.end).contains(&tod))
    }
    /// Location and the address salt for a session at a time of day.
    pub fn loc(&self, h: &Human, s: &Session, tod: i64) -> (Loc, u64) {
        match s.kind {
            Kind::Work => {
                let pm = tod >= 13 * HOUR;
                (if pm { self.pm } else { self.am }, pm as u64)
            }
            k => (h.location(self.rel, true, false), 2 + k as u64),
        }
    }
}

/// A team's day: 2–3× busier with probability 8% (an incident, a release).
pub(crate) fn busy(pop: &Population, team: usize, rel: i64) -> f64 {
    let r = &mut rng(&[pop.seed, 61, team as u64, rel as u64]);
    if r.chance(0.08) {
        r.uniform(2.0, 3.0)
    } else {
        1.0
    }
}

/// The plan of person `hi` for local day `ld` (days since the epoch in their local time).
pub(crate) fn plan(pop: &Population, hi: usize, ld: i64) -> DayPlan {
    let h = &pop.humans[hi];
    let rel = ld - pop.start.div_euclid(DAY);
    let r = &mut rng(&[pop.seed, 60, hi as u64, ld as u64]);
    let mut p = DayPlan {
        rel,
        sessions: Vec::new(),
        am: h.location(rel, false, true),
        pm: h.location(rel, true, true),
    };
    if rel < h.joined || h.pto.contains(&rel) {
        return p;
    }
    let team = h.team_at(rel);
    let wd = weekday(ld);
    let sick = r.chance(0.03);
    let mins = |x: f64| (x * 60.0) as i64;
    if wd < 5 && !sick {
        let start = mins(h.start_h * 60.0 + r.normal() * 20.0);
        let end = (start + mins(h.len_h * 60.0 + r.normal() * 30.0)).min(DAY - 1800);
        let l0 = mins(r.uniform(11.75, 13.5) * 60.0);
        let lunch = (l0, l0 + mins(r.uniform(30.0, 60.0)));
        let meetings = (0..r.int(0, 3))
            .map(|_| {
                let m0 = start + (r.unit() * (end - start - 3600).max(1) as f64) as i64;
                (
                    m0 / 1800 * 1800,
                    m0 / 1800 * 1800 + *r.pick(&[1800, 1800, 3600]),
                )
            })
            .collect();
        let ramp = if h.joined != i64::MIN && rel - h.joined < 7 {
            0.5
        } else {
            1.0
        };
        let events = (h.level * r.lognormal(1.0, 0.45) * busy(pop, team, rel) * ramp).min(450.0);
        p.sessions.push(Session {
            start,
            end,
            events,
            kind: Kind::Work,
            lunch,
            meetings,
        });
    }
    let on_call = pop.on_call(team, rel) == Some(hi);
    if wd >= 5 && r.chance(h.weekend_p + if on_call { 0.3 } else { 0.0 }) {
        let start = mins(r.uniform(9.0, 20.0) * 60.0);
        let len = mins(r.uniform(20.0, 120.0));
        p.sessions.push(Session {
            start,
            end: start + len,
            events: h.level * r.uniform(0.1, 0.4),
            kind: Kind::Weekend,
            lunch: (0, 0),
            meetings: Vec::new(),
        });
    }
    if wd < 5 && r.chance(h.evening_p + if on_call { 0.15 } else { 0.0 }) {
        let start = mins(r.uniform(20.0, 22.5) * 60.0);
        let len = mins(r.uniform(10.0, 45.0));
        p.sessions.push(Session {
            start,
            end: start + len,
            events: r.uniform(5.0, 40.0),
            kind: Kind::Evening,
            lunch: (0, 0),
            meetings: Vec::new(),
        });
    }
    if on_call && r.chance(0.12) {
        let start = if r.chance(0.4) {
            mins(r.uniform(22.0, 23.25) * 60.0)
        } else {
            mins(r.uniform(0.5, 4.5) * 60.0)
        };
        let end = (start + mins(r.uniform(15.0, 90.0))).min(DAY - 1);
        p.sessions.retain(|s| s.end <= start || s.start >= end);
        p.sessions.push(Session {
            start,
            end,
            events: r.uniform(10.0, 80.0),
            kind: Kind::Night,
            lunch: (0, 0),
            meetings: Vec::new(),
        });
    }
    p
}

/// Last two plans per person, so an hour costs no re-planning.
pub(crate) struct Plans {
    /// Per person: two (local day, plan) slots; `i64::MIN` marks an empty one.
    slots: Vec<[(i64, DayPlan); 2]>,
}

impl Plans {
    pub fn new(n: usize) -> Self {
        let empty = (
            i64::MIN,
            DayPlan {
                rel: 0,
                sessions: Vec::new(),
                am: Loc::Home,
                pm: Loc::Home,
            },
        );
        Self {
            slots: vec![[empty.clone(), empty]; n],
        }
    }
    pub fn get(&mut self, pop: &Population, hi: usize, ld: i64) -> &DayPlan {
        let s = &mut self.slots[hi];
        let k = if s[0].0 == ld {
            0
        } else if s[1].0 == ld {
            1
        } else {
            let older = usize::from(s[1].0 < s[0].0);
            s[older] = (ld, plan(pop, hi, ld));
            older
        };
        &s[k].1
    }
}

/// Local day and seconds into it of a UTC instant for a person (trips move their clock).
pub(crate) fn local(pop: &Population, h: &Human, t: i64) -> (i64, i64) {
    let off = h.zone_on(pop.day_of(t)).offset_at(t);
    let l = t + off;
    (l.div_euclid(DAY), l.rem_euclid(DAY))
}

/// Where a person connects from at an instant if they are working then: address and the session.
pub(crate) fn whereabouts(
    pop: &Population,
    plans: &mut Plans,
    hi: usize,
    t: i64,
) -> Option<(String, Kind)> {
    let h = &pop.humans[hi];
    let (ld, tod) = local(pop, h, t);
    let p = plans.get(pop, hi, ld);
    let s = p.at(tod)?;
    let (loc, salt) = p.loc(h, s, tod);
    Some((h.ip(loc, p.rel, salt), s.kind))
}

/// Mean requests per task, to turn a request rate into a task rate.
const PER_TASK: f64 = 4.0;

/// Every person's requests in the hour starting at `hour` (epoch seconds).
pub(crate) fn hour(pop: &Population, plans: &mut Plans, hour: i64, salt: u64, out: &mut Vec<Req>) {
    for hi in 0..pop.humans.len() {
        let r = &mut rng(&[pop.seed, salt, 62, hi as u64, hour as u64]);
        for slot in 0..12 {
            let t0 = hour + slot * 300;
            let h = &pop.humans[hi];
            let (ld, tod) = local(pop, h, t0 + 150);
            let p = plans.get(pop, hi, ld);
            let Some(s) = p.at(tod) else { continue };
            let tasks = r.poisson(s.rate(tod) * 300.0 / PER_TASK);
            if tasks == 0 {
                continue;
            }
            let (kind, (loc, ipsalt), rel) = (s.kind, p.loc(h, s, tod), p.rel);
            let ip = h.ip(loc, rel, ipsalt);
            for _ in 0..tasks {
                let at = (t0 * MICROS) + r.below(300 * MICROS as usize) as i64;
                let (agent, cmds) = task(pop, hi, rel, kind, r);
                for (dt, act) in pace(cmds, 8.0, r) {
                    out.push(Req {
                        at: at + dt,
                        who: Who::Human(hi),
                        ip: ip.clone(),
                        agent: agent.clone(),
                        act,
                    });
                }
            }
        }
    }
}

/// A namespace for a person's next task.
pub(crate) fn pick_ns(pop: &Population, h: &Human, rel: i64, r: &mut Rng) -> usize {
    let team = h.team_at(rel);
    let own = pop.team_ns(team, rel);
    let any = |r: &mut Rng| loop {
        let i = r.below(pop.ns.len());
        if pop.ns[i].from <= rel {
            return i;
        }
    };
    let shared = |r: &mut Rng| pop.ns_index(SHARED[r.below(SHARED.len())]).unwrap_or(0);
    let focus = |r: &mut Rng| {
        let w: Vec<f64> = own
            .iter()
            .map(|&i| 0.2 + (super::basics::mix(&[h.seed, i as u64]) % 100) as f64 / 100.0)
            .collect();
        own[r.weighted(&w)]
    };
    let x = r.unit();
    match pop.teams[team].role {
        Role::Platform | Role::Sre => match x {
            x if x < 0.35 => focus(r),
            x if x < 0.5 => pop.ns_index("kube-system").unwrap_or(0),
            x if x < 0.9 => any(r),
            _ => shared(r),
        },
        Role::Security => match x {
            x if x < 0.3 => focus(r),
            x if x < 0.9 => any(r),
            _ => pop.ns_index("kube-system").unwrap_or(0),
        },
        _ => {
            let nb = &pop.teams[team].neighbors;
            if x < 0.82 || own.is_empty() {
                if own.is_empty() {
                    shared(r)
                } else {
                    focus(r)
                }
            } else if x < 0.94 {
                shared(r)
            } else if x < 0.94 + h.p_wander && !nb.is_empty() {
                let ns = pop.team_ns(nb[r.below(nb.len())], rel);
                ns[r.below(ns.len())]
            } else {
                focus(r)
            }
        }
    }
}

/// One task: the client used and its commands.
pub(crate) fn task(
    pop: &Population,
    hi: usize,
    rel: i64,
    kind: Kind,
    r: &mut Rng,
) -> (String, Vec<Cmd>) {
    let h = &pop.humans[hi];
    let role = pop.teams[h.team_at(rel)].role;
    let nsi = pick_ns(pop, h, rel, r);
    let n = Names {
        pop,
        ns: nsi,
        day: rel,
    };
    let own = pop.ns[nsi].team == Some(h.team_at(rel));
    let t = &h.tools;
    let since = |d: Option<i64>| d.is_some_and(|d| rel >= d);
    let kubectl = h.kubectl_on(rel);
    let os = super::people::OS[h.os];
    // Other clients first.
    if since(t.k9s) && r.chance(0.25) {
        return (
            format!("k9s/v0.0.0 ({os}) kubernetes/$Format"),
            c::k9s(&n, r),
        );
    }
    if since(t.lens) && r.chance(0.2) {
        return ("Lens/6.5.2".into(), c::lens(&n, r));
    }
    if let Some(helm) = t.helm.filter(|_| r.chance(0.06)) {
        let upgrade = own && r.chance(0.3);
        return (helm.into(), c::helm(&n, r, upgrade));
    }
    if t.rollouts && r.chance(0.04) {
        return (
            format!("kubectl-argo-rollouts/v0.0.0 ({os}) kubernetes/$Format"),
            c::rollouts(&n, r),
        );
    }
    if let Some(py) = t.python.filter(|_| r.chance(0.06)) {
        return (py.into(), c::script(&n, r));
    }
    if let Some(curl) = t.curl.filter(|_| r.chance(0.04)) {
        let (pod, _) = n.pod(r);
        return (curl.into(), vec![c::get(&PODS, n.ns(), &pod)]);
    }
    if t.go && r.chance(0.05) {
        return ("Go-http-client/2.0".into(), c::script(&n, r));
    }
    let night = kind == Kind::Night;
    let admin = role.admin();
    let mut menu: Vec<(f64, u8)> = vec![
        (30.0, 0),
        (18.0, 1),
        (12.0, 2),
        (10.0, 3),
        (3.0, 4),
        (5.0, 5),
        (5.0, 6),
        (3.0, 7),
        (2.0, 8),
    ];
    let w = h.p_write * if night { 300.0 } else { 100.0 };
    menu.extend([
        (w * 0.35, 10),
        (w * 0.15, 11),
        (w * 0.25, 12),
        (w * 0.1, 13),
        (w * 0.15, 14),
    ]);
    menu.extend([
        (h.p_secret * 100.0, 20),
        (h.p_exec * 100.0, 21),
        (h.p_exec * 50.0, 22),
    ]);
    if admin {
        menu.extend([
            (8.0, 30),
            (5.0, 31),
            (3.0, 32),
            (if night { 2.5 } else { 0.4 }, 33),
            (if night { 1.2 } else { 0.3 }, 34),
            (3.0, 35),
            (2.0, 36),
            (if night { 2.0 } else { 0.5 }, 37),
        ]);
    } else if role == Role::Security {
        menu.extend([(4.0, 40), (6.0, 32), (3.0, 41), (4.0, 31)]);
    } else {
        menu.push((0.15, 33));
    }
    let choice = menu[r.weighted(&menu.iter().map(|m| m.0).collect::<Vec<_>>())].1;
    // People mostly change things where they may; a few try elsewhere and are refused.
    let writes = matches!(choice, 10..=14 | 21 | 22 | 33);
    let mine = pop.team_ns(h.team_at(rel), rel);
    let n = if writes && !own && !admin && !mine.is_empty() && r.chance(0.85) {
        Names {
            pop,
            ns: mine[r.below(mine.len())],
            day: rel,
        }
    } else {
        n
    };
    let cmds: Vec<Cmd> = match choice {
        0 => {
            let mut v = vec![c::list(&PODS, Some(n.ns()))];
            if r.chance(0.6) {
                v.push(c::describe_pod(&n, r));
            }
            v
        }
        1 => (0..r.int(1, 4)).map(|_| c::logs(&n, r)).collect(),
        2 => {
            let (_, app) = n.app(r);
            vec![
                c::list(&DEPLOYMENTS, Some(n.ns())),
                c::list(&REPLICASETS, Some(n.ns())),
                c::get(&DEPLOYMENTS, n.ns(), &app),
            ]
        }
        3 => vec![c::describe_pod(&n, r), c::list(&EVENTS, Some(n.ns()))],
        4 => vec![c::list(&NAMESPACES, None)],
        5 => vec![
            c::list(&CONFIGMAPS, Some(n.ns())),
            c::get(&CONFIGMAPS, n.ns(), &n.configmap(r)),
        ],
        6 => c::network(&n, r),
        7 => vec![
            c::list(&JOBS, Some(n.ns())),
            c::list(&CRONJOBS, Some(n.ns())),
        ],
        8 => vec![
            c::list(&HPAS, Some(n.ns())),
            c::list(&POD_METRICS, Some(n.ns())),
        ],
        10 => c::rollout_restart(&n, r),
        11 => vec![c::scale(&n, r)],
        12 => vec![c::list(&PODS, Some(n.ns())), c::delete_pod(&n, r)],
        13 => vec![c::create_job(&n, r)],
        14 => vec![c::edit_configmap(&n, r)],
        20 => c::secrets(&n, r),
        21 => vec![c::list(&PODS, Some(n.ns())), c::exec(&n, r)],
        22 => vec![c::port_forward(&n, r)],
        30 => vec![c::list(&NODES, None), c::describe_node(r)],
        31 => vec![c::list(&PODS, None)],
        32 => c::rbac_read(&n, r),
        33 => vec![c::bind_role(&n, r)],
        34 => vec![c::bind_cluster_role(r)],
        35 => {
            let app = format!("{}-{}", pop.teams[h.team_at(rel)].name, n.ns());
            vec![
                c::get(&APPLICATIONS, "argocd", &app),
                vec![Act::new("patch", &APPLICATIONS, Some("argocd"), Some(&app))],
            ]
        }
        36 => vec![
            c::list(&CERTIFICATES, Some(n.ns())),
            c::list(&LEASES, Some(n.ns())),
        ],
        37 => {
            let node = c::node_name(r);
            vec![vec![
                Act::new("get", &NODES, None, Some(&node)),
                Act::new("patch", &NODES, None, Some(&node)),
            ]]
        }
        40 => vec![c::list(&SECRETS, None)],
        41 => vec![
            c::list(&NETWORKPOLICIES, None),
            c::list(&SERVICEACCOUNTS, Some(n.ns())),
        ],
        _ => vec![c::list(&PODS, Some(n.ns()))],
    };
    (kubectl, cmds)
}
