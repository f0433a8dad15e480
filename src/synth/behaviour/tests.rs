//! Tests of the behaviour scenario: determinism, order, decoding, labels, and that incidents leave no marker of their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;
use crate::event::{decode_record, DecodeOptions};

fn small() -> ScenarioOptions {
    ScenarioOptions {
        seed: 7,
        weeks: 3,
        humans: 70,
        service_accounts: 100,
        incidents_per_kind: 4,
        learning_days: 10,
        ..Default::default()
    }
}

fn family(agent: &str) -> String {
    agent.split(['/', ' ']).next().unwrap_or("").to_owned()
}

#[test]
fn the_same_seed_gives_the_same_stream() {
    let opts = ScenarioOptions {
        weeks: 1,
        humans: 30,
        service_accounts: 90,
        incidents_per_kind: 1,
        learning_days: 2,
        ..small()
    };
    let take = |seed: u64| -> Vec<(String, Label)> {
        Scenario::new(ScenarioOptions {
            seed,
            ..opts.clone()
        })
        .events()
        .take(20_000)
        .collect()
    };
    let a = take(3);
    assert_eq!(a, take(3));
    assert_ne!(a, take(4));
    let mut sc = Scenario::new(ScenarioOptions {
        seed: 3,
        ..opts.clone()
    });
    let day = opts.start + 2 * 86_400;
    let quiet: Vec<String> = sc.background(day, 1).take(5000).collect();
    assert_eq!(
        quiet,
        Scenario::new(ScenarioOptions { seed: 3, ..opts })
            .background(day, 1)
            .take(5000)
            .collect::<Vec<_>>()
    );
    assert!(quiet.iter().all(|l| crate::event::time::parse_rfc3339(
        &l[l.find("requestReceivedTimestamp").unwrap() + 27..][..27]
    )
    .unwrap()
        >= day));
}

/// Everything one pass over the stream learns.
#[derive(Default)]
struct Seen {
    events: usize,
    per_incident: BTreeMap<u32, usize>,
    /// (agent family, source address, namespace) of benign and of anomalous events.
    benign: [HashSet<String>; 3],
    anomalous: [HashSet<String>; 3],
    /// Per principal: benign families and addresses.
    families: HashMap<String, HashSet<String>>,
    addresses: HashMap<String, HashSet<String>>,
    /// Benign (verb, resource, subresource, namespace) per principal.
    acts: HashMap<String, HashSet<String>>,
    /// Anomalous acts per incident.
    incident_acts: HashMap<u32, Vec<(String, String, String)>>,
    forbidden: [usize; 2],
}

fn act_key(ev: &crate::event::AuditEvent) -> String {
    let o = ev.object_ref.as_ref();
    format!(
        "{} {} {} {}",
        ev.verb,
        o.and_then(|o| o.resource.clone()).unwrap_or_default(),
        o.and_then(|o| o.subresource.clone()).unwrap_or_default(),
        o.and_then(|o| o.namespace.clone()).unwrap_or_default()
    )
}

fn scan(sc: &mut Scenario) -> Seen {
    let mut s = Seen::default();
    let mut last = String::new();
    for (line, label) in sc.events() {
        s.events += 1;
        let d = decode_record(line.as_bytes(), &DecodeOptions::default());
        assert!(
            d.failures.is_empty() && d.events.len() == 1,
            "{line}: {:?}",
            d.failures
        );
        let ev = &d.events[0];
        let at = ev.request_received_timestamp.clone().unwrap_or_default();
        assert!(at >= last, "out of order: {at} after {last}");
        last = at;
        let fam = family(ev.user_agent.as_deref().unwrap_or(""));
        let ip = ev.source_ips.first().cloned().unwrap_or_default();
        let ns = ev
            .object_ref
            .as_ref()
            .and_then(|o| o.namespace.clone())
            .unwrap_or_default();
        let user = ev.user.username.clone();
        let forbidden = ev
            .response_status
            .as_ref()
            .is_some_and(|r| r.code == Some(403));
        match label {
            Label::Benign => {
                s.benign[0].insert(fam.clone());
                s.benign[1].insert(ip.clone());
                s.benign[2].insert(ns);
                s.families.entry(user.clone()).or_default().insert(fam);
                s.addresses.entry(user.clone()).or_default().insert(ip);
                s.acts.entry(user).or_default().insert(act_key(ev));
                s.forbidden[0] += usize::from(forbidden);
            }
            Label::Anomaly { incident, .. } => {
                *s.per_incident.entry(incident).or_default() += 1;
                s.anomalous[0].insert(fam.clone());
                s.anomalous[1].insert(ip.clone());
                s.anomalous[2].insert(ns);
                s.incident_acts
                    .entry(incident)
                    .or_default()
                    .push((act_key(ev), fam, ip));
                s.forbidden[1] += usize::from(forbidden);
            }
        }
    }
    s
}

#[test]
fn a_scenario_is_ordered_decodable_labelled_and_leaves_no_marker() {
    let opts = small();
    let mut sc = Scenario::new(opts.clone());
    let incidents = sc.incidents().to_vec();
    let seen = scan(&mut sc);
    assert!(seen.events > 100_000, "{}", seen.events);

    // Every kind has its incidents, each with labelled events, none in the learning days.
    for kind in AnomalyKind::ALL {
        let of: Vec<&Incident> = incidents.iter().filter(|i| i.kind == kind).collect();
        assert_eq!(of.len(), opts.incidents_per_kind, "{}", kind.name());
        for i in of {
            assert!(
                i.start >= opts.start + i64::from(opts.learning_days) * 86_400,
                "{i:?}"
            );
            assert!(
                i.end <= opts.start + i64::from(opts.weeks) * 7 * 86_400,
                "{i:?}"
            );
            assert!(
                seen.per_incident.get(&i.id).copied().unwrap_or(0) >= 1,
                "{i:?}"
            );
        }
    }
    let principals: HashSet<&str> = incidents.iter().map(|i| i.principal.as_str()).collect();
    assert_eq!(
        principals.len(),
        incidents.len(),
        "one principal per incident"
    );

    // No marker: what incidents use, benign principals use too.
    for (k, what) in ["agent family", "address", "namespace"].iter().enumerate() {
        let extra: Vec<&String> = seen.anomalous[k].difference(&seen.benign[k]).collect();
        assert!(extra.is_empty(), "{what} only incidents use: {extra:?}");
    }
    // And benign traffic gets refused too.
    assert!(seen.forbidden[0] > 100, "{:?}", seen.forbidden);

    for i in &incidents {
        let acts = &seen.incident_acts[&i.id];
        let fams = seen.families.get(&i.principal).cloned().unwrap_or_default();
        let addrs = seen
            .addresses
            .get(&i.principal)
            .cloned()
            .unwrap_or_default();
        match i.kind {
            AnomalyKind::StolenHumanAccount | AnomalyKind::StolenCiToken => {
                assert!(
                    acts.iter().all(|a| !addrs.contains(&a.2)),
                    "{i:?} from an address of its own"
                );
            }
            AnomalyKind::NewTool => assert!(
                acts.iter().all(|a| !fams.contains(&a.1)),
                "{i:?} with a known client {fams:?}"
            ),
            AnomalyKind::SlowSecretHarvest | AnomalyKind::OffHoursAdmin => {
                assert!(
                    acts.iter().all(|a| fams.contains(&a.1)),
                    "{i:?} with a client of its own"
                );
                if !i.principal.starts_with("system:") {
                    assert!(
                        acts.iter().all(|a| addrs.contains(&a.2)),
                        "{i:?} from an address of its own"
                    );
                }
            }
            AnomalyKind::FirstOfPeers => {
                let sa = i.principal.starts_with("system:serviceaccount:");
                let peers: Vec<&String> = seen
                    .acts
                    .keys()
                    .filter(|p| {
                        *p != &i.principal
                            && if sa {
                                p.contains(":ci:ci-runner-")
                            } else {
                                same_team(&sc, p, &i.principal)
                            }
                    })
                    .collect();
                let novel = acts
                    .iter()
                    .any(|a| peers.iter().all(|p| !seen.acts[*p].contains(&a.0)));
                assert!(novel, "{i:?}: every act was done by a peer");
            }
        }
    }
}

fn same_team(sc: &Scenario, a: &str, b: &str) -> bool {
    let team = |u: &str| {
        sc.pop
            .humans
            .iter()
            .find(|h| h.username == u)
            .map(|h| h.team)
    };
    team(a).is_some() && team(a) == team(b)
}

#[test]
fn the_directory_parses_and_gives_every_person_a_time_zone() {
    let sc = Scenario::new(ScenarioOptions {
        humans: 50,
        service_accounts: 90,
        incidents_per_kind: 1,
        ..Default::default()
    });
    let y: serde_yaml::Value = serde_yaml::from_str(&sc.directory_yaml()).unwrap();
    let users = y["users"].as_sequence().unwrap();
    assert_eq!(users.len(), 50);
    assert!(users
        .iter()
        .all(|u| u["timezone"].as_str().is_some_and(|z| z.contains('/'))
            && u["kind"].as_str() == Some("human")));
    assert_eq!(y["service_accounts"].as_sequence().unwrap().len(), 90);
    let dir: crate::enrich::identity::Directory =
        serde_yaml::from_str(&sc.directory_yaml()).unwrap();
    drop(dir);
}

/// The default scenario's volume and speed (release: `cargo test --release -- --ignored defaults`).
#[test]
#[ignore]
fn defaults_volume_and_time() {
    let t = std::time::Instant::now();
    let mut sc = Scenario::new(ScenarioOptions::default());
    let mut n = 0usize;
    let mut bytes = 0usize;
    let mut labelled = BTreeMap::new();
    for (line, label) in sc.events() {
        n += 1;
        bytes += line.len();
        if let Label::Anomaly { kind, .. } = label {
            *labelled.entry(kind.name()).or_insert(0usize) += 1;
        }
    }
    eprintln!(
        "{n} events, {} MB, {:?}, labelled {labelled:?}",
        bytes >> 20,
        t.elapsed()
    );
}
