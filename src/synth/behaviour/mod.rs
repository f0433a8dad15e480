//! A seeded scenario of weeks of Kubernetes audit traffic from a population of people and service accounts, with planted, labelled incidents, for evaluating behavioural detections.
//!
//! The population ([`Scenario::directory_yaml`]) is about ten teams owning a few namespaces
//! each, people with time zones, habits, addresses and clients that drift (upgrades, trips,
//! new tools, a joiner, a team move, a new namespace), and service accounts from CI to
//! controllers, backups and cron jobs. [`Scenario::events`] streams it hour by hour in time
//! order, each line an `audit.k8s.io/v1` Event at Metadata level, labelled benign or with the
//! incident it belongs to. Incidents never carry a marker of their own: every user agent
//! family, source address and namespace they use is used by benign principals too, and they
//! are rendered by the same code as everything else.

mod anomalies;
mod basics;
mod catalog;
mod commands;
mod duties;
mod humans;
mod insiders;
mod jobs;
mod people;
mod places;
mod platform;
mod population;
mod services;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use basics::{days_from_civil, rng, DAY, HOUR, MICROS};
use catalog::Act;
use population::{Population, Who};

/// What to generate.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub seed: u64,
    /// Length of the scenario.
    pub weeks: u32,
    pub humans: usize,
    pub service_accounts: usize,
    /// Incidents of each [`AnomalyKind`].
    pub incidents_per_kind: usize,
    /// No incident starts before this many days have passed.
    pub learning_days: u32,
    /// Epoch seconds of the first instant (midnight UTC).
    pub start: i64,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            weeks: 4,
            humans: 240,
            service_accounts: 120,
            incidents_per_kind: 20,
            learning_days: 14,
            // Monday 2026-10-05T00:00:00Z.
            start: days_from_civil(2026, 10, 5) * DAY,
        }
    }
}

/// The kinds of planted incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// A person's credential used by someone else, from elsewhere, for discovery and secrets.
    StolenHumanAccount,
    /// A CI service account's token used outside the runners.
    StolenCiToken,
    /// One secret read every 5–30 minutes for days, mostly in unfamiliar namespaces.
    SlowSecretHarvest,
    /// An administrator's RBAC changes, secret reads and deletions at 01:00–05:00 local time.
    OffHoursAdmin,
    /// A service account with a client family it has never used.
    NewTool,
    /// Something no peer of the principal has done.
    FirstOfPeers,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::StolenHumanAccount,
        AnomalyKind::StolenCiToken,
        AnomalyKind::SlowSecretHarvest,
        AnomalyKind::OffHoursAdmin,
        AnomalyKind::NewTool,
        AnomalyKind::FirstOfPeers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::StolenHumanAccount => "stolen-human-account",
            AnomalyKind::StolenCiToken => "stolen-ci-token",
            AnomalyKind::SlowSecretHarvest => "slow-secret-harvest",
            AnomalyKind::OffHoursAdmin => "off-hours-admin",
            AnomalyKind::NewTool => "new-tool",
            AnomalyKind::FirstOfPeers => "first-of-peers",
        }
    }
}

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Benign,
    Anomaly { kind: AnomalyKind, incident: u32 },
}

/// One planted incident: its principal and the span of its labelled events (epoch seconds).
#[derive(Debug, Clone)]
pub struct Incident {
    pub id: u32,
    pub kind: AnomalyKind,
    pub principal: String,
    pub start: i64,
    pub end: i64,
}

/// A request before it is rendered.
pub(crate) struct Req {
    /// Received, microseconds since the epoch.
    pub at: i64,
    pub who: Who,
    pub ip: String,
    pub agent: String,
    pub act: Act,
}

/// A generated scenario: population, incidents, and the streams.
pub struct Scenario {
    opts: ScenarioOptions,
    pop: Population,
    incidents: Vec<Incident>,
    planned: Vec<anomalies::Planned>,
}

impl Scenario {
    pub fn new(opts: ScenarioOptions) -> Self {
        let start = opts.start.div_euclid(DAY) * DAY;
        let opts = ScenarioOptions { start, ..opts };
        let pop = Population::build(&opts);
        let (incidents, planned) =
            anomalies::plan(&pop, opts.incidents_per_kind, opts.learning_days);
        Self {
            opts,
            pop,
            incidents,
            planned,
        }
    }

    /// rampart's identity directory YAML (`enrichers/identity.yaml` format) for the population.
    pub fn directory_yaml(&self) -> String {
        self.pop.directory_yaml()
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// The whole scenario in event-time order (by `requestReceivedTimestamp`), one hour at a time.
    pub fn events(&mut self) -> impl Iterator<Item = (String, Label)> + '_ {
        let end = self.opts.start + i64::from(self.opts.weeks.max(1)) * 7 * DAY;
        Stream::new(self, self.opts.start, end, 0, true)
    }

    /// Benign traffic only, of `days` days from `start`: the same population and habits, a fresh draw of what they do.
    pub fn background(&mut self, start: i64, days: u32) -> impl Iterator<Item = String> + '_ {
        Stream::new(self, start, start + i64::from(days) * DAY, 1, false).map(|(line, _)| line)
    }
}

struct Stream<'a> {
    sc: &'a Scenario,
    plans: humans::Plans,
    hour: i64,
    from: i64,
    end: i64,
    salt: u64,
    anomalies: bool,
    next_planned: usize,
    pending: Vec<(Req, Label)>,
    ready: VecDeque<(String, Label)>,
}

impl<'a> Stream<'a> {
    fn new(sc: &'a Scenario, from: i64, end: i64, salt: u64, anomalies: bool) -> Self {
        let next_planned = sc.planned.partition_point(|p| p.req.at < from * MICROS);
        Self {
            plans: humans::Plans::new(sc.pop.humans.len()),
            hour: from.div_euclid(HOUR) * HOUR,
            from,
            end,
            salt,
            anomalies,
            next_planned,
            pending: Vec::new(),
            ready: VecDeque::new(),
            sc,
        }
    }

    /// Generates one hour and renders what is complete.
    fn step(&mut self) {
        let (sc, pop, h) = (self.sc, &self.sc.pop, self.hour);
        let mut fresh: Vec<Req> = Vec::new();
        humans::hour(pop, &mut self.plans, h, self.salt, &mut fresh);
        for i in 0..pop.sas.len() {
            duties::hour(pop, i, h, self.salt, &mut fresh);
        }
        self.pending
            .extend(fresh.into_iter().map(|r| (r, Label::Benign)));
        if self.anomalies {
            while let Some(p) = sc
                .planned
                .get(self.next_planned)
                .filter(|p| p.req.at < (h + HOUR) * MICROS)
            {
                let inc = &sc.incidents[p.incident];
                let req = Req {
                    at: p.req.at,
                    who: p.req.who,
                    ip: p.req.ip.clone(),
                    agent: p.req.agent.clone(),
                    act: p.req.act.clone(),
                };
                self.pending.push((
                    req,
                    Label::Anomaly {
                        kind: inc.kind,
                        incident: inc.id,
                    },
                ));
                self.next_planned += 1;
            }
        }
        self.pending.sort_by_key(|(r, _)| r.at);
        let cut = self
            .pending
            .partition_point(|(r, _)| r.at < (h + HOUR) * MICROS);
        let r = &mut rng(&[pop.seed, self.salt, 90, h as u64]);
        for (req, label) in self.pending.drain(..cut) {
            if req.at < self.from * MICROS || req.at >= self.end * MICROS {
                continue;
            }
            let day = pop.day_of(req.at.div_euclid(MICROS));
            let decision = pop.authorize(req.who, day, &req.act);
            let who = catalog::Who {
                username: pop.name_of(req.who),
                user_json: pop.user_json(req.who, day),
                ip: &req.ip,
                agent: &req.agent,
            };
            let mut line = String::with_capacity(900);
            catalog::render(&mut line, req.at, &who, &req.act, &decision, r);
            self.ready.push_back((line, label));
        }
        self.hour += HOUR;
    }
}

impl Iterator for Stream<'_> {
    type Item = (String, Label);

    fn next(&mut self) -> Option<Self::Item> {
        while self.ready.is_empty() {
            if self.hour >= self.end {
                return None;
            }
            self.step();
        }
        self.ready.pop_front()
    }
}
