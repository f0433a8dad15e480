//! The work inside one CI deploy, one CI test run and one cron job run.

use super::basics::Draw;
use super::catalog::*;
use super::commands::{self as c, Cmd, Names};
use super::duties::Out;
use super::services::Job;
use crate::synth::Rng;

/// One CI deploy of one to three apps into the team's namespaces (20–200 requests).
pub(super) fn deploy(o: &Out<'_>, helm: bool, r: &mut Rng) -> Vec<Cmd> {
    let (pop, sa) = (o.pop, o.sa());
    let own = pop.team_ns(sa.team.unwrap_or(0), o.day);
    let mut cmds = Vec::new();
    for _ in 0..r.int(1, 3) {
        let n = Names {
            pop,
            ns: own[r.below(own.len())],
            day: o.day,
        };
        let (_, app) = n.app(r);
        if helm {
            cmds.extend(c::helm(&n, r, true));
        } else {
            let mut apply = Vec::new();
            for res in [
                &DEPLOYMENTS,
                &SERVICES,
                &CONFIGMAPS,
                &SERVICEACCOUNTS,
                &INGRESSES,
                &HPAS,
            ] {
                if res.name == "deployments" || r.chance(0.6) {
                    apply.push(Act::new("get", res, Some(n.ns()), Some(&app)));
                    apply.push(Act::new("patch", res, Some(n.ns()), Some(&app)));
                }
            }
            cmds.push(apply);
        }
        for _ in 0..r.int(5, 60) {
            cmds.push(c::get(&DEPLOYMENTS, n.ns(), &app));
        }
        cmds.push(vec![Act::new("list", &PODS, Some(n.ns()), None)
            .query(Query::Selector(format!("app%3D{app}")))]);
    }
    cmds
}

/// One CI test run: fixtures as jobs and pods in a team namespace, logs, clean-up (10–60 requests).
pub(super) fn tests(o: &Out<'_>, r: &mut Rng) -> Vec<Cmd> {
    let (pop, sa) = (o.pop, o.sa());
    let own = pop.team_ns(sa.team.unwrap_or(0), o.day);
    let n = Names {
        pop,
        ns: own[r.below(own.len())],
        day: o.day,
    };
    let (_, app) = n.app(r);
    let job = format!("{app}-it-{:x}", r.below(0xffffff));
    let mut cmds = vec![
        c::get(&CONFIGMAPS, n.ns(), &n.configmap(r)),
        vec![Act::new("create", &JOBS, Some(n.ns()), Some(&job))],
    ];
    for _ in 0..r.int(4, 40) {
        cmds.push(vec![Act::new("get", &JOBS, Some(n.ns()), Some(&job))]);
    }
    let pod = format!("{job}-{:x}", r.below(0xfffff));
    cmds.push(vec![Act::new("list", &PODS, Some(n.ns()), None)
        .query(Query::Selector(format!("job-name%3D{job}")))]);
    cmds.push(vec![Act::new("get", &PODS, Some(n.ns()), Some(&pod))
        .sub("log")
        .query(Query::Container("test"))]);
    cmds.push(vec![Act::new("delete", &JOBS, Some(n.ns()), Some(&job))]);
    cmds
}

pub(super) fn cron(o: &Out<'_>, job: Job, r: &mut Rng) -> Vec<Cmd> {
    let (pop, sa) = (o.pop, o.sa());
    match job {
        Job::Cleanup => {
            let mut cmds = vec![c::list(&PODS, None), c::list(&JOBS, None)];
            for _ in 0..r.int(5, 30) {
                let n = Names {
                    pop,
                    ns: o.random_team_ns(r),
                    day: o.day,
                };
                let (pod, _) = n.pod(r);
                cmds.push(vec![Act::new(
                    "delete",
                    &PODS,
                    Some(n.ns()),
                    Some(&format!("{pod}-done")),
                )]);
            }
            cmds
        }
        Job::Health => vec![
            c::get(&ENDPOINTS, "monitoring", "prometheus-server"),
            c::get(&DEPLOYMENTS, "ingress-nginx", "ingress-nginx-controller"),
        ],
        Job::RbacAudit => {
            let mut cmds = vec![
                c::list(&CLUSTERROLEBINDINGS, None),
                c::list(&CLUSTERROLES, None),
                c::list(&ROLEBINDINGS, None),
                c::list(&SERVICEACCOUNTS, None),
            ];
            for _ in 0..r.int(5, 30) {
                let n = Names {
                    pop,
                    ns: r.below(pop.ns.len()),
                    day: o.day,
                };
                cmds.push(c::list(&ROLES, Some(n.ns())));
            }
            cmds
        }
        Job::Report { secret } => {
            let nsi = pop.ns_index(&sa.ns).unwrap_or(0);
            let n = Names {
                pop,
                ns: nsi,
                day: o.day,
            };
            let mut cmds = vec![
                c::get(&CONFIGMAPS, n.ns(), &n.configmap(r)),
                c::list(&PODS, Some(n.ns())),
            ];
            if secret {
                cmds.insert(0, c::get(&SECRETS, n.ns(), &pop.ns[nsi].secrets[0]));
            }
            cmds
        }
        Job::Overreach => vec![
            c::list(&NAMESPACES, None),
            c::list(&PODS, None),
            c::list(&CONFIGMAPS, Some(&sa.ns)),
        ],
    }
}
