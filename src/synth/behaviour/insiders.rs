//! Incidents by insiders and by compromised workloads that keep their usual address and client: slow secret harvests, off-hours administration, a new tool, a first among peers.

use super::anomalies::Planner;
use super::basics::{rng, weekday, Draw, DAY, HOUR, MICROS};
use super::catalog::*;
use super::commands::{self as c, Cmd};
use super::humans::{local, whereabouts, Kind};
use super::people::Role;
use super::population::Who;
use super::AnomalyKind;
use crate::synth::Rng;

impl Planner<'_> {
    pub(super) fn harvest(&mut self, day: i64) {
        let pop = self.pop;
        let human = self.r.chance(0.5);
        let day = if human { self.weekday_from(day) } else { day };
        let cands: Vec<Who> = if human {
            self.steady_humans(|i| {
                pop.teams[pop.humans[i].team].role != Role::Security
                    && !pop.humans[i].pto.contains(&day)
            })
        } else {
            (0..pop.sas.len())
                .filter(|&i| {
                    !pop.sas[i].reads_secrets() && pop.sas[i].always_on() && pop.sas[i].from <= day
                })
                .map(Who::Sa)
                .collect()
        };
        let Some(who) = self.choose(cands) else {
            return;
        };
        let total = self.r.int(20, 80);
        let until = pop.start + (day + self.r.int(1, 3)).min(pop.days) * DAY;
        let (own, foreign): (Vec<usize>, Vec<usize>) = match who {
            Who::Human(hi) => {
                let t = pop.humans[hi].team;
                (pop.team_ns(t, day), self.foreign_ns(t, day))
            }
            Who::Sa(si) => {
                let sa = &pop.sas[si];
                let own: Vec<usize> = pop.ns_index(&sa.ns).into_iter().collect();
                (
                    own.clone(),
                    (0..pop.ns.len())
                        .filter(|i| {
                            !own.contains(i) && pop.ns[*i].team.is_some() && pop.ns[*i].from <= day
                        })
                        .collect(),
                )
            }
        };
        let mut t = match who {
            Who::Human(hi) => {
                let tod = self.r.int(10 * HOUR, 12 * HOUR);
                self.at_local(hi, day, tod)
            }
            Who::Sa(_) => pop.start + day * DAY + self.r.int(0, DAY - 1),
        };
        let mut reqs = Vec::new();
        while (reqs.len() as i64) < total && t < until {
            t += self.r.int(300, 1800);
            let (ip, agent) = match who {
                Who::Human(hi) => match whereabouts(pop, &mut self.plans, hi, t) {
                    Some((ip, Kind::Work)) => (ip, pop.humans[hi].kubectl_on(pop.day_of(t))),
                    _ => continue,
                },
                Who::Sa(si) => (
                    pop.sas[si].ip(pop.day_of(t), self.r.next_u64()),
                    pop.sas[si].agent_on(pop.day_of(t)).to_owned(),
                ),
            };
            let ns = if self.r.chance(0.7) || own.is_empty() {
                foreign[self.r.below(foreign.len())]
            } else {
                own[self.r.below(own.len())]
            };
            let n = self.names(ns, pop.day_of(t));
            let secret = n.secret(&mut self.r);
            reqs.push((
                t * MICROS + self.r.below(MICROS as usize) as i64,
                ip,
                agent,
                Act::new("get", &SECRETS, Some(n.ns()), Some(&secret)),
            ));
        }
        let start = reqs.first().map_or(t, |x| x.0 / MICROS);
        self.emit(AnomalyKind::SlowSecretHarvest, who, start, reqs);
    }

    pub(super) fn off_hours(&mut self, day: i64) {
        let pop = self.pop;
        let calm = |i: usize| {
            let h = &pop.humans[i];
            pop.teams[h.team].role.admin()
                && pop.on_call(h.team, day) != Some(i)
                && pop.on_call(h.team, day + 1) != Some(i)
        };
        let strict = self.steady_humans(|i| {
            calm(i)
                && pop.humans[i].evening_p == 0.0
                && pop.humans[i].weekend_p <= 0.02
                && (pop.humans[i].home_via_vpn
                    || pop.humans[i].style != super::people::Style::Office)
        });
        let cands = if strict.iter().any(|w| !self.used.contains(w)) {
            strict
        } else {
            self.steady_humans(calm)
        };
        let Some(who @ Who::Human(hi)) = self.choose(cands) else {
            return;
        };
        let tod = self.r.int(HOUR + 300, 4 * HOUR + 1200);
        let t0 = self.at_local(hi, day, tod);
        let h = &pop.humans[hi];
        let (ld, _) = local(pop, h, t0);
        let rel = ld - pop.start.div_euclid(DAY);
        // Their usual network from home: today's home address if they use it, else their most used non-office one.
        let home = h.home_ip(rel);
        let office = super::places::SITES[h.site].1;
        let ip = if self.ips[hi].get(&home).copied().unwrap_or(0) >= 2 {
            home
        } else {
            let mut seen: Vec<(&String, &u32)> = self.ips[hi]
                .iter()
                .filter(|(ip, _)| !ip.starts_with(office))
                .collect();
            seen.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            seen.first().map_or(home, |s| s.0.clone())
        };
        let agent = h.kubectl_on(rel);
        let r = &mut rng(&[pop.seed, 83, hi as u64, day as u64]);
        let any = |r: &mut Rng| loop {
            let i = r.below(pop.ns.len());
            if pop.ns[i].team.is_some() && pop.ns[i].from <= rel {
                return i;
            }
        };
        let mut cmds: Vec<Cmd> = vec![
            c::list(&CLUSTERROLEBINDINGS, None),
            vec![Act::new("get", &CLUSTERROLES, None, Some("cluster-admin"))],
        ];
        for _ in 0..r.int(1, 2) {
            cmds.push(c::bind_cluster_role(r));
        }
        let targets: Vec<usize> = (0..r.int(1, 3)).map(|_| any(r)).collect();
        for &ns in &targets {
            let n = self.names(ns, rel);
            cmds.push(c::list(&ROLEBINDINGS, Some(n.ns())));
            if r.chance(0.6) {
                cmds.push(c::bind_role(&n, r));
            }
            cmds.push(c::list(&SECRETS, Some(n.ns())));
        }
        let want = r.int(15, 50) as usize;
        while cmds.iter().map(Vec::len).sum::<usize>() < want.saturating_sub(4) {
            let n = self.names(targets[r.below(targets.len())], rel);
            cmds.push(match r.below(5) {
                0 => c::list(&PODS, Some(n.ns())),
                1 => c::delete_any(&n, r),
                _ => c::get(&SECRETS, n.ns(), &n.secret(r)),
            });
        }
        let n = self.names(targets[0], rel);
        cmds.push(c::delete_any(&n, r));
        let minutes = r.uniform(10.0, 38.0);
        let reqs = self
            .timed(t0, minutes, cmds)
            .into_iter()
            .map(|(at, a)| (at, ip.clone(), agent.clone(), a))
            .collect();
        self.emit(AnomalyKind::OffHoursAdmin, who, t0, reqs);
    }

    /// Client strings of a family that some principal other than `si` sends.
    pub(super) fn agents_of(&self, family: &str, si: usize) -> Vec<String> {
        let pop = self.pop;
        let mut v: Vec<String> = Vec::new();
        for (i, sa) in pop.sas.iter().enumerate() {
            if i != si {
                v.extend(sa.agents.iter().map(|a| a.1.clone()));
            }
        }
        for h in &pop.humans {
            v.extend(
                [h.tools.python, h.tools.curl]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            if h.tools.go {
                v.push("Go-http-client/2.0".into());
            }
        }
        v.retain(|a| {
            a.split(['/', ' ']).next() == Some(family)
                && (family != "kubectl" || a.contains("linux/amd64"))
        });
        v.sort();
        v.dedup();
        v
    }

    pub(super) fn new_tool(&mut self, day: i64) {
        let pop = self.pop;
        const NEW: [&str; 4] = ["kubectl", "python-requests", "curl", "Go-http-client"];
        let cands = (0..pop.sas.len())
            .filter(|&i| {
                pop.sas[i].from <= day
                    && NEW
                        .iter()
                        .any(|f| !pop.sas[i].families().iter().any(|g| g == f))
            })
            .map(Who::Sa)
            .collect();
        let Some(who @ Who::Sa(si)) = self.choose(cands) else {
            return;
        };
        let sa = &pop.sas[si];
        let fams: Vec<&str> = NEW
            .iter()
            .copied()
            .filter(|f| !sa.families().iter().any(|g| g == f) && !self.agents_of(f, si).is_empty())
            .collect();
        let Some(&fam) = fams.get(self.r.below(fams.len().max(1))) else {
            return;
        };
        let options = self.agents_of(fam, si);
        let agent = options[self.r.below(options.len())].clone();
        let t0 = if sa.always_on() {
            pop.start + day * DAY + self.r.int(0, DAY - HOUR)
        } else {
            let z = sa
                .team
                .map_or(super::basics::zone::LONDON, |t| pop.teams[t].main_zone);
            let mut d = day;
            while weekday(pop.start.div_euclid(DAY) + d) >= 5 {
                d += 1;
            }
            let tod = self.r.int(10 * HOUR, 16 * HOUR);
            self.zoned(
                d,
                tod,
                super::basics::ZONES[z].offset_at(pop.start + d * DAY + tod),
            )
        };
        let d = pop.day_of(t0);
        let home = pop.ns_index(&sa.ns).unwrap_or(0);
        let ns = match sa.team {
            Some(t) if sa.ci.is_some() => pop.team_ns(t, d)[0],
            _ => home,
        };
        let r = &mut rng(&[pop.seed, 84, si as u64, day as u64]);
        let n = self.names(ns, d);
        let mut cmds: Vec<Cmd> = vec![c::list(&PODS, Some(n.ns()))];
        let want = r.int(5, 30) as usize;
        while cmds.iter().map(Vec::len).sum::<usize>() < want {
            cmds.push(match r.below(7) {
                0 => c::get(&CONFIGMAPS, n.ns(), &n.configmap(r)),
                1 => c::list(&SECRETS, Some(n.ns())),
                2 => c::get(&SECRETS, n.ns(), &n.secret(r)),
                3 => c::list(&NAMESPACES, None),
                4 => c::get(&DEPLOYMENTS, n.ns(), &n.app(r).1),
                5 => c::list(&SERVICES, Some(n.ns())),
                _ => c::list(&PODS, Some(n.ns())),
            });
        }
        let pick = r.next_u64();
        let minutes = r.uniform(2.0, 30.0);
        let reqs = self
            .timed(t0, minutes, cmds)
            .into_iter()
            .map(|(at, a)| (at, sa.ip(pop.day_of(at / MICROS), pick), agent.clone(), a))
            .collect();
        self.emit(AnomalyKind::NewTool, who, t0, reqs);
    }

    pub(super) fn first_of_peers(&mut self, day: i64) {
        let pop = self.pop;
        let runner = self.r.chance(0.3);
        let d = self.weekday_from(day);
        let cands = if runner {
            (0..pop.sas.len())
                .filter(|&i| pop.sas[i].family == "ci-runner")
                .map(Who::Sa)
                .collect()
        } else {
            self.steady_humans(|i| {
                matches!(pop.teams[pop.humans[i].team].role, Role::Dev | Role::Data)
                    && !pop.humans[i].pto.contains(&d)
            })
        };
        let Some(who) = self.choose(cands) else {
            return;
        };
        let r = &mut rng(&[pop.seed, 85, day as u64, self.incidents.len() as u64]);
        let (team, t0) = match who {
            Who::Human(hi) => {
                let mut t = self.at_local(hi, d, r.int(10 * HOUR, 15 * HOUR));
                for _ in 0..48 {
                    if matches!(
                        whereabouts(pop, &mut self.plans, hi, t),
                        Some((_, Kind::Work))
                    ) {
                        break;
                    }
                    t += 600;
                }
                (pop.humans[hi].team, t)
            }
            Who::Sa(si) => {
                let z = pop.teams[pop.sas[si].team.unwrap_or(0)].main_zone;
                let tod = r.int(10 * HOUR, 16 * HOUR);
                (
                    pop.sas[si].team.unwrap_or(0),
                    self.zoned(
                        d,
                        tod,
                        super::basics::ZONES[z].offset_at(pop.start + d * DAY + tod),
                    ),
                )
            }
        };
        let d = pop.day_of(t0);
        let mut foreign = self.foreign_ns(team, d);
        foreign.retain(|&i| pop.ns[i].team.is_some_and(|t| !pop.teams[t].role.admin()));
        let ns = if r.chance(0.4) || foreign.is_empty() {
            pop.ns_index("kube-system").unwrap_or(0)
        } else {
            foreign[r.below(foreign.len())]
        };
        let n = self.names(ns, d);
        let cmds: Vec<Cmd> = match (r.below(3), who) {
            (0, _) => {
                let mut v = Vec::new();
                if r.chance(0.5) {
                    v.push(c::list(&SECRETS, Some(n.ns())));
                }
                for _ in 0..r.int(1, 3) {
                    v.push(c::get(&SECRETS, n.ns(), &n.secret(r)));
                }
                v
            }
            (1, _) | (_, Who::Sa(_)) => vec![c::bind_cluster_role(r)],
            _ => vec![c::exec(&n, r)],
        };
        let (ip, agent) = match who {
            Who::Human(hi) => (
                whereabouts(pop, &mut self.plans, hi, t0)
                    .map_or_else(|| pop.humans[hi].home_ip(d), |w| w.0),
                pop.humans[hi].kubectl_on(d),
            ),
            Who::Sa(si) => (
                pop.sas[si].ip(d, r.next_u64()),
                pop.sas[si].agent_on(d).to_owned(),
            ),
        };
        let reqs = self
            .timed(t0, 1.5, cmds)
            .into_iter()
            .map(|(at, a)| (at, ip.clone(), agent.clone(), a))
            .collect();
        self.emit(AnomalyKind::FirstOfPeers, who, t0, reqs);
    }
}
