//! Planted incidents: whom each one happens to, when, from where and with which client, and the requests it makes.
//!
//! Every address, client and namespace an incident uses is one that benign principals use too:
//! stolen credentials come from other employees' public addresses (homes, phones, co-working,
//! the privacy VPN, cloud dev boxes) with a client string other people send; insiders use their
//! own address and client. Requests are built by the same command builders as benign work.

use std::collections::{HashMap, HashSet};

use super::basics::{rng, Draw, DAY, HOUR, MICROS};
use super::catalog::*;
use super::commands::{self as c, pace, Cmd, Names};
use super::humans::{whereabouts, Plans};
use super::population::{Population, Who};
use super::{AnomalyKind, Incident, Req};
use crate::synth::Rng;

/// An incident's request, ready to merge into the stream.
pub(crate) struct Planned {
    pub incident: usize,
    pub req: Req,
}

pub(super) fn public(ip: &str) -> bool {
    !(ip.starts_with("10.") || ip.starts_with("192.168.") || ip.starts_with("172."))
}

/// Addresses each person connects from over the scenario, with how many half-days.
fn usage(pop: &Population, plans: &mut Plans) -> Vec<HashMap<String, u32>> {
    let mut all = Vec::new();
    for hi in 0..pop.humans.len() {
        let mut m: HashMap<String, u32> = HashMap::new();
        for d in 0..pop.days {
            for half in [10, 15, 21, 23] {
                let t = pop.start + d * DAY + half * HOUR;
                if let Some((ip, _)) = whereabouts(pop, plans, hi, t) {
                    *m.entry(ip).or_default() += 1;
                }
            }
        }
        all.push(m);
    }
    all
}

pub(super) struct Planner<'a> {
    pub(super) pop: &'a Population,
    pub(super) plans: Plans,
    pub(super) r: Rng,
    pub(super) used: HashSet<Who>,
    pub(super) ips: Vec<HashMap<String, u32>>,
    /// No incident starts before this instant (the end of the learning days).
    pub(super) min_t: i64,
    pub(super) out: Vec<Planned>,
    pub(super) incidents: Vec<Incident>,
}

pub(crate) fn plan(
    pop: &Population,
    per_kind: usize,
    learning_days: u32,
) -> (Vec<Incident>, Vec<Planned>) {
    let mut plans = Plans::new(pop.humans.len());
    let ips = usage(pop, &mut plans);
    let first = i64::from(learning_days).min(pop.days - 1);
    let mut p = Planner {
        pop,
        plans,
        r: rng(&[pop.seed, 80]),
        used: HashSet::new(),
        ips,
        min_t: pop.start + first * DAY,
        out: Vec::new(),
        incidents: Vec::new(),
    };
    for kind in AnomalyKind::ALL {
        for i in 0..per_kind {
            let span = (pop.days - first - 3).max(1) as f64;
            let day = first + ((i as f64 + p.r.unit()) * span / per_kind as f64) as i64;
            p.incident(kind, day);
        }
    }
    p.out.sort_by_key(|x| x.req.at);
    (p.incidents, p.out)
}

impl<'a> Planner<'a> {
    /// A principal from `candidates` not used yet (or any, when all are).
    pub(super) fn choose(&mut self, candidates: Vec<Who>) -> Option<Who> {
        let fresh: Vec<Who> = candidates
            .iter()
            .copied()
            .filter(|w| !self.used.contains(w))
            .collect();
        let pool = if fresh.is_empty() { candidates } else { fresh };
        let w = *pool.get(self.r.below(pool.len().max(1)))?;
        self.used.insert(w);
        Some(w)
    }

    pub(super) fn steady_humans(&self, f: impl Fn(usize) -> bool) -> Vec<Who> {
        (0..self.pop.humans.len())
            .filter(|&i| {
                let h = &self.pop.humans[i];
                h.joined == i64::MIN && h.moved.is_none() && h.trip.is_none() && f(i)
            })
            .map(Who::Human)
            .collect()
    }

    /// An instant on `day` at a local time of day (seconds) for a person, never in the learning days.
    pub(super) fn at_local(&self, hi: usize, day: i64, tod: i64) -> i64 {
        let off = self.pop.humans[hi]
            .zone_on(day)
            .offset_at(self.pop.start + day * DAY + tod);
        self.zoned(day, tod, off)
    }

    /// `tod` on `day` in a zone `off` seconds from UTC, moved a day on if that falls in the learning days.
    pub(super) fn zoned(&self, day: i64, tod: i64, off: i64) -> i64 {
        let t = self.pop.start + day * DAY + tod - off;
        if t < self.min_t {
            t + DAY
        } else {
            t
        }
    }

    /// A public address some other person uses, never `victim`.
    pub(super) fn borrowed_ip(&mut self, victim: Option<usize>) -> String {
        let mine: HashSet<&String> = victim
            .map(|v| self.ips[v].keys().collect())
            .unwrap_or_default();
        let mut users: HashMap<&String, u32> = HashMap::new();
        for (hi, m) in self.ips.iter().enumerate() {
            for (ip, n) in m {
                if Some(hi) != victim && public(ip) && *n >= 3 && !mine.contains(ip) {
                    *users.entry(ip).or_default() += 1;
                }
            }
        }
        let mut pool: Vec<(&String, u32)> = users.into_iter().collect();
        pool.sort();
        let shared: Vec<&String> = pool.iter().filter(|p| p.1 >= 2).map(|p| p.0).collect();
        let pick = if !shared.is_empty() && self.r.chance(0.7) {
            shared[self.r.below(shared.len())]
        } else {
            pool[self.r.below(pool.len())].0
        };
        pick.clone()
    }

    /// A kubectl client string someone else sends (linux preferred), other than `not`.
    pub(super) fn other_kubectl(&mut self, day: i64, not: &str) -> String {
        let mut seen: Vec<String> = self
            .pop
            .humans
            .iter()
            .map(|h| h.kubectl_on(day))
            .filter(|a| a != not && (a.contains("linux") || self.r.chance(0.2)))
            .collect();
        seen.sort();
        seen.dedup();
        seen[self.r.below(seen.len())].clone()
    }

    pub(super) fn emit(
        &mut self,
        kind: AnomalyKind,
        who: Who,
        start: i64,
        reqs: Vec<(i64, String, String, Act)>,
    ) {
        if reqs.is_empty() {
            return;
        }
        let id = self.incidents.len();
        let (first, last) = (
            reqs.iter().map(|x| x.0).min().unwrap_or(start),
            reqs.iter().map(|x| x.0).max().unwrap_or(start),
        );
        self.incidents.push(Incident {
            id: id as u32 + 1,
            kind,
            principal: self.pop.username(who),
            start: first.div_euclid(MICROS),
            end: last.div_euclid(MICROS) + 1,
        });
        for (at, ip, agent, act) in reqs {
            self.out.push(Planned {
                incident: id,
                req: Req {
                    at,
                    who,
                    ip,
                    agent,
                    act,
                },
            });
        }
    }

    /// Plans one incident, with another principal if the first choice yields no request.
    fn incident(&mut self, kind: AnomalyKind, day: i64) {
        let before = self.incidents.len();
        for _ in 0..6 {
            match kind {
                AnomalyKind::StolenHumanAccount => self.stolen_human(day),
                AnomalyKind::StolenCiToken => self.stolen_ci(day),
                AnomalyKind::SlowSecretHarvest => self.harvest(day),
                AnomalyKind::OffHoursAdmin => self.off_hours(day),
                AnomalyKind::NewTool => self.new_tool(day),
                AnomalyKind::FirstOfPeers => self.first_of_peers(day),
            }
            if self.incidents.len() > before {
                return;
            }
        }
    }

    /// The first weekday from `day` on.
    pub(super) fn weekday_from(&self, day: i64) -> i64 {
        let mut d = day;
        while super::basics::weekday(self.pop.start.div_euclid(DAY) + d) >= 5 {
            d += 1;
        }
        d
    }

    /// Namespaces a team never works in: not its own, its neighbours' or the shared ones.
    pub(super) fn foreign_ns(&self, team: usize, day: i64) -> Vec<usize> {
        let t = &self.pop.teams[team];
        (0..self.pop.ns.len())
            .filter(|&i| {
                let n = &self.pop.ns[i];
                n.from <= day
                    && n.team
                        .is_some_and(|o| o != team && !t.neighbors.contains(&o))
                    && !super::population::SHARED.contains(&n.name.as_str())
            })
            .collect()
    }

    pub(super) fn names(&self, ns: usize, day: i64) -> Names<'a> {
        Names {
            pop: self.pop,
            ns,
            day,
        }
    }

    /// Paces commands over about `minutes` from `t0` (epoch seconds).
    pub(super) fn timed(&mut self, t0: i64, minutes: f64, cmds: Vec<Cmd>) -> Vec<(i64, Act)> {
        let think = (minutes * 60.0 / cmds.len().max(1) as f64).max(2.0);
        let start = t0 * MICROS + self.r.below(MICROS as usize) as i64;
        pace(cmds, think, &mut self.r)
            .into_iter()
            .map(|(dt, a)| (start + dt, a))
            .collect()
    }

    fn stolen_human(&mut self, day: i64) {
        let Some(who @ Who::Human(hi)) = self.choose(self.steady_humans(|_| true)) else {
            return;
        };
        let h = &self.pop.humans[hi];
        let tod = if self.r.chance(0.5) {
            self.r.int(10 * HOUR, 16 * HOUR)
        } else {
            (self.r.int(19 * HOUR, 31 * HOUR)) % DAY
        };
        let t0 = self.at_local(hi, day, tod);
        let ip = self.borrowed_ip(Some(hi));
        let d = self.pop.day_of(t0);
        let agent = self.other_kubectl(d, &h.kubectl_on(d));
        let team = h.team;
        let own = self.pop.team_ns(team, d);
        let mut targets = vec![own[self.r.below(own.len())]];
        let foreign = self.foreign_ns(team, d);
        for _ in 0..self.r.int(2, 4) {
            targets.push(foreign[self.r.below(foreign.len())]);
        }
        if self.r.chance(0.5) {
            targets.push(self.pop.ns_index("kube-system").unwrap_or(0));
        }
        let r = &mut rng(&[self.pop.seed, 81, hi as u64, day as u64]);
        let mut cmds: Vec<Cmd> = vec![c::list(&NAMESPACES, None), c::list(&PODS, None)];
        if r.chance(0.6) {
            cmds.push(c::list(&SECRETS, None));
        }
        for &ns in &targets {
            let n = self.names(ns, d);
            cmds.push(c::list(&SECRETS, Some(n.ns())));
            cmds.push(c::list(&CONFIGMAPS, Some(n.ns())));
            if r.chance(0.5) {
                cmds.push(c::list(&PODS, Some(n.ns())));
            }
        }
        let want = r.int(15, 60) as usize;
        while cmds.iter().map(Vec::len).sum::<usize>() < want.saturating_sub(3) {
            let n = self.names(targets[r.below(targets.len())], d);
            cmds.push(c::get(&SECRETS, n.ns(), &n.secret(r)));
            if r.chance(0.2) {
                cmds.push(c::get(&CONFIGMAPS, n.ns(), &n.configmap(r)));
            }
        }
        let n = self.names(own[r.below(own.len())], d);
        if r.chance(0.4) {
            cmds.push(c::bind_role(&n, r));
        }
        if r.chance(0.3) {
            cmds.push(c::exec(&n, r));
        }
        let minutes = r.uniform(10.0, 55.0);
        let reqs = self
            .timed(t0, minutes, cmds)
            .into_iter()
            .map(|(at, a)| (at, ip.clone(), agent.clone(), a))
            .collect();
        self.emit(AnomalyKind::StolenHumanAccount, who, t0, reqs);
    }

    fn stolen_ci(&mut self, day: i64) {
        let pop = self.pop;
        let cands = (0..pop.sas.len())
            .filter(|&i| pop.sas[i].ci.is_some() && pop.sas[i].from <= day)
            .map(Who::Sa)
            .collect();
        let Some(who @ Who::Sa(si)) = self.choose(cands) else {
            return;
        };
        let t0 = pop.start + day * DAY + self.r.int(0, DAY - HOUR);
        let d = pop.day_of(t0);
        let ip = self.borrowed_ip(None);
        let agent = if self.r.chance(0.5) {
            self.other_kubectl(d, "")
        } else {
            (*self
                .r
                .pick(&["python-requests/2.31.0", "python-requests/2.32.3"]))
            .to_owned()
        };
        let team = pop.sas[si].team.unwrap_or(0);
        let own = pop.team_ns(team, d);
        let foreign = self.foreign_ns(team, d);
        let r = &mut rng(&[pop.seed, 82, si as u64, day as u64]);
        let mut cmds: Vec<Cmd> = vec![c::list(&NAMESPACES, None)];
        if r.chance(0.5) {
            cmds.push(c::list(&SECRETS, None));
        }
        let mut targets = vec![own[r.below(own.len())]];
        for _ in 0..r.int(1, 3) {
            targets.push(foreign[r.below(foreign.len())]);
        }
        let want = r.int(10, 40) as usize;
        for &ns in &targets {
            let n = self.names(ns, d);
            cmds.push(c::list(&SECRETS, Some(n.ns())));
            cmds.push(c::get(&SECRETS, n.ns(), &n.secret(r)));
        }
        while cmds.iter().map(Vec::len).sum::<usize>() < want.saturating_sub(2) {
            let n = self.names(targets[r.below(targets.len())], d);
            cmds.push(if r.chance(0.6) {
                c::get(&SECRETS, n.ns(), &n.secret(r))
            } else {
                c::list(&PODS, Some(n.ns()))
            });
        }
        if r.chance(0.3) {
            let n = self.names(own[r.below(own.len())], d);
            let (_, app) = n.app(r);
            cmds.push(vec![Act::new(
                "create",
                &PODS,
                Some(n.ns()),
                Some(&format!("{app}-{:x}", r.below(0xfffff))),
            )]);
        }
        let minutes = r.uniform(5.0, 30.0);
        let reqs = self
            .timed(t0, minutes, cmds)
            .into_iter()
            .map(|(at, a)| (at, ip.clone(), agent.clone(), a))
            .collect();
        self.emit(AnomalyKind::StolenCiToken, who, t0, reqs);
    }
}
