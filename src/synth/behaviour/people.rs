//! The people: who they are, where they connect from (offices, homes, phones, co-working, trips), which clients they run, and how those drift over the weeks.

use super::basics::{rng, zone, Draw, ZONES};
use super::places::{draw_ip, region, site_of, PRIVACY_VPN, SITES};

/// What a person does for a living, which sets their groups and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Dev,
    Data,
    Platform,
    Sre,
    Security,
}

impl Role {
    pub fn group(self) -> &'static str {
        match self {
            Role::Dev => "developers",
            Role::Data => "data-engineers",
            Role::Platform => "platform",
            Role::Sre => "sre",
            Role::Security => "security",
        }
    }
    /// Cluster administrators.
    pub fn admin(self) -> bool {
        matches!(self, Role::Platform | Role::Sre)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Office,
    Hybrid,
    Remote,
}

/// Where a person is connected from for half a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    Office,
    Home,
    Tether,
    Coworking,
    PrivacyVpn,
    CloudDev,
    Travel,
}

/// A trip: other hours, other addresses.
#[derive(Debug, Clone)]
pub(crate) struct Trip {
    pub from: i64,
    pub to: i64,
    pub zone: usize,
    pub hotel: String,
    /// An office visited (its site), whose private range they use by day.
    pub office: Option<usize>,
}

/// Optional clients and the day each came into use (`i64::MIN`: always).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    pub k9s: Option<i64>,
    pub lens: Option<i64>,
    pub helm: Option<&'static str>,
    pub rollouts: bool,
    pub python: Option<&'static str>,
    pub curl: Option<&'static str>,
    pub go: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Human {
    pub username: String,
    pub display: String,
    pub team: usize,
    /// Day (from the scenario start) and new team of a move.
    pub moved: Option<(i64, usize)>,
    /// First day of work (`i64::MIN` for people there from before the start).
    pub joined: i64,
    pub zone: usize,
    pub site: usize,
    pub style: Style,
    pub home_via_vpn: bool,
    home_isp: u64,
    home_period: i64,
    pub coworking: bool,
    pub privacy_vpn: bool,
    pub cloud_dev: bool,
    /// Events on an ordinary working day.
    pub level: f64,
    pub start_h: f64,
    pub len_h: f64,
    pub weekend_p: f64,
    pub evening_p: f64,
    pub pto: Vec<i64>,
    pub os: usize,
    pub kubectl: usize,
    pub upgrade: Option<(i64, usize)>,
    pub tools: Tools,
    pub trip: Option<Trip>,
    pub p_secret: f64,
    pub p_exec: f64,
    pub p_write: f64,
    pub p_wander: f64,
    pub seed: u64,
}

const FIRST: &[&str] = &[
    "aisha",
    "ben",
    "carla",
    "deepak",
    "elena",
    "farid",
    "grace",
    "hiro",
    "ines",
    "jonas",
    "kavya",
    "liam",
    "maria",
    "nikhil",
    "olga",
    "pedro",
    "qing",
    "rahul",
    "sofia",
    "tomas",
    "uma",
    "victor",
    "wei",
    "ximena",
    "yusuf",
    "zoe",
    "amara",
    "bjorn",
    "chen",
    "dana",
    "emil",
    "fatima",
    "gustav",
    "hana",
    "ivan",
    "julia",
    "kenji",
    "lena",
    "mateo",
    "nadia",
    "oscar",
    "priya",
    "ravi",
    "sara",
    "theo",
    "valentina",
    "william",
    "yara",
    "anders",
    "bianca",
    "camille",
    "diego",
    "erik",
    "freya",
    "gabriel",
    "helena",
    "ishaan",
    "jin",
    "kofi",
    "lucia",
];
const LAST: &[&str] = &[
    "khan",
    "novak",
    "silva",
    "sharma",
    "petrova",
    "haddad",
    "kim",
    "tanaka",
    "garcia",
    "schmidt",
    "iyer",
    "murphy",
    "rossi",
    "patel",
    "ivanova",
    "costa",
    "li",
    "gupta",
    "moreau",
    "berg",
    "nair",
    "dubois",
    "zhang",
    "lopez",
    "yilmaz",
    "walker",
    "okafor",
    "lindqvist",
    "wang",
    "cohen",
    "fischer",
    "rahman",
    "larsen",
    "sato",
    "popov",
    "weber",
    "nakamura",
    "hoffmann",
    "alvarez",
    "mensah",
    "nilsson",
    "reddy",
    "das",
    "martin",
    "brown",
    "romano",
    "taylor",
    "santos",
    "andersson",
    "ferrari",
    "laurent",
    "torres",
    "johansson",
    "jensen",
    "leclerc",
    "meyer",
    "menon",
    "park",
    "asante",
    "ortiz",
];

pub(crate) const KUBECTL: &[(&str, &str)] = &[
    ("v1.28.9", "587f5fe"),
    ("v1.29.6", "062798d"),
    ("v1.29.10", "f0ed631"),
    ("v1.30.2", "3968350"),
    ("v1.30.5", "74e84a9"),
    ("v1.31.1", "948afe5"),
    ("v1.31.3", "c83cbee"),
    ("v1.32.0", "70d3cc9"),
];
pub(crate) const OS: &[&str] = &[
    "darwin/arm64",
    "darwin/amd64",
    "linux/amd64",
    "windows/amd64",
];

pub(crate) fn kubectl_agent(version: usize, os: usize) -> String {
    let (v, commit) = KUBECTL[version.min(KUBECTL.len() - 1)];
    format!("kubectl/{v} ({}) kubernetes/{commit}", OS[os])
}

impl Human {
    pub fn team_at(&self, day: i64) -> usize {
        match self.moved {
            Some((d, t)) if day >= d => t,
            _ => self.team,
        }
    }
    pub fn trip_on(&self, day: i64) -> Option<&Trip> {
        self.trip.as_ref().filter(|t| (t.from..t.to).contains(&day))
    }
    /// The zone whose hours they keep that day (a trip moves them).
    pub fn zone_on(&self, day: i64) -> &'static super::basics::Zone {
        &ZONES[self.trip_on(day).map_or(self.zone, |t| t.zone)]
    }
    pub fn kubectl_on(&self, day: i64) -> String {
        let v = match self.upgrade {
            Some((d, v)) if day >= d => v,
            _ => self.kubectl,
        };
        kubectl_agent(v, self.os)
    }
    pub fn home_ip(&self, day: i64) -> String {
        if self.home_via_vpn {
            let moved = rng(&[self.seed, 11, day as u64]).chance(0.05);
            let host = if moved {
                2 + rng(&[self.seed, 12, day as u64]).below(250)
            } else {
                2 + (self.seed % 250) as usize
            };
            return format!("10.20.{}.{host}", 16 + self.seed % 8);
        }
        let epoch = (day + (self.seed % 97) as i64).div_euclid(self.home_period);
        draw_ip(
            &mut rng(&[self.home_isp, epoch as u64]),
            region(self.zone).0,
        )
    }
    /// The address of a location on a day (`salt` varies per-session pools).
    pub fn ip(&self, loc: Loc, day: i64, salt: u64) -> String {
        let fort = day.div_euclid(14) as u64;
        match loc {
            Loc::Office => {
                let r = &mut rng(&[self.seed, 13, fort]);
                format!("{}{}", SITES[self.site].1, 10 + r.below(240))
            }
            Loc::Home => self.home_ip(day),
            Loc::Tether => {
                let m = region(self.zone).1;
                m[rng(&[self.seed, 14, day as u64, salt]).below(m.len())].to_owned()
            }
            Loc::Coworking => {
                region(self.zone).2[(self.seed % 2) as usize % region(self.zone).2.len()].to_owned()
            }
            Loc::PrivacyVpn => PRIVACY_VPN
                [rng(&[self.seed, 15, day as u64, salt]).below(PRIVACY_VPN.len())]
            .to_owned(),
            Loc::CloudDev => format!(
                "71.160.223.{}",
                10 + rng(&[self.seed, 16, day as u64]).below(30)
            ),
            Loc::Travel => match self.trip_on(day) {
                Some(t) => match t.office {
                    Some(s) if salt % 3 != 0 => {
                        format!("{}{}", SITES[s].1, 10 + rng(&[self.seed, 17]).below(240))
                    }
                    _ => t.hotel.clone(),
                },
                None => self.home_ip(day),
            },
        }
    }
    /// Where they are for half a day of ordinary work.
    pub fn location(&self, day: i64, pm: bool, work: bool) -> Loc {
        if self.trip_on(day).is_some() {
            return Loc::Travel;
        }
        let r = &mut rng(&[self.seed, 18, day as u64, pm as u64]);
        if !work {
            return if r.chance(0.06) {
                Loc::Tether
            } else {
                Loc::Home
            };
        }
        // Half-days follow the morning's choice most of the time.
        let r2 = &mut rng(&[self.seed, 18, day as u64, 0]);
        let r = if r.chance(0.75) { r2 } else { r };
        let (office, cowork) = match self.style {
            Style::Office => (0.85, 0.0),
            Style::Hybrid => (0.45, 0.03),
            Style::Remote => (0.0, 0.12),
        };
        let x = r.unit();
        let loc = if x < office {
            Loc::Office
        } else if x < office + 0.03 {
            Loc::Tether
        } else if self.coworking && x < office + 0.03 + cowork {
            Loc::Coworking
        } else {
            Loc::Home
        };
        if loc != Loc::Office && self.cloud_dev && r.chance(0.4) {
            return Loc::CloudDev;
        }
        if loc == Loc::Home && self.privacy_vpn && r.chance(0.3) {
            return Loc::PrivacyVpn;
        }
        loc
    }
}

/// Makes the people of one team slot; `day_span` is the scenario length in days.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_human(
    seed: u64,
    idx: usize,
    team: usize,
    role: Role,
    zones: &[(usize, f64)],
    day_span: i64,
    used: &mut std::collections::HashSet<String>,
) -> Human {
    let r = &mut rng(&[seed, 1, idx as u64]);
    let (mut first, mut last) = (FIRST[r.below(FIRST.len())], LAST[r.below(LAST.len())]);
    let mut username = format!("{first}.{last}@example.com");
    let mut n = 2;
    while used.contains(&username) {
        if n < 5 {
            first = FIRST[r.below(FIRST.len())];
            last = LAST[r.below(LAST.len())];
            username = format!("{first}.{last}@example.com");
        } else {
            username = format!("{first}.{last}{n}@example.com");
        }
        n += 1;
    }
    used.insert(username.clone());
    let cap = |s: &str| s[..1].to_uppercase() + &s[1..];
    let z = zones[r.weighted(&zones.iter().map(|z| z.1).collect::<Vec<_>>())].0;
    let has_office = matches!(
        z,
        zone::LA
            | zone::NY
            | zone::LONDON
            | zone::BERLIN
            | zone::KOLKATA
            | zone::SINGAPORE
            | zone::SYDNEY
    );
    let style = match (has_office, r.unit()) {
        (false, _) => Style::Remote,
        (true, x) if x < 0.3 => Style::Office,
        (true, x) if x < 0.8 => Style::Hybrid,
        _ => Style::Remote,
    };
    let admin = role.admin();
    let level = (r.lognormal(85.0, 0.7) * if admin { 1.4 } else { 1.0 }).clamp(15.0, 400.0);
    let weekend_p = [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.1, 0.1, 0.3][r.below(10)];
    let evening_p = [0.0, 0.0, 0.0, 0.0, 0.0, 0.08, 0.08, 0.08, 0.25, 0.25][r.below(10)];
    let mut pto = Vec::new();
    if r.chance(0.4) {
        let from = r.int(0, day_span - 1);
        pto.extend(from..(from + r.int(1, 5)).min(day_span));
    }
    let os = r.weighted(&[0.55, 0.1, 0.3, 0.05]);
    let kubectl = r.weighted(&[0.05, 0.1, 0.1, 0.2, 0.2, 0.15, 0.15, 0.05]);
    let upgrade = (r.chance(0.3) && kubectl + 1 < KUBECTL.len()).then(|| {
        (
            r.int(3, (day_span - 2).max(3)),
            (kubectl + 1 + r.below(2)).min(KUBECTL.len() - 1),
        )
    });
    let later = |r: &mut crate::synth::Rng| {
        if r.chance(0.2) {
            Some(r.int(5, (day_span - 3).max(5)))
        } else {
            Some(i64::MIN)
        }
    };
    let tools = Tools {
        k9s: if r.chance(if admin { 0.35 } else { 0.15 }) {
            later(r)
        } else {
            None
        },
        lens: if r.chance(0.06) { later(r) } else { None },
        helm: r
            .chance(if admin { 0.6 } else { 0.25 })
            .then(|| *r.pick(&["Helm/3.15.4", "Helm/3.16.2"])),
        rollouts: r.chance(0.3),
        python: r
            .chance(if role == Role::Data { 0.3 } else { 0.07 })
            .then(|| *r.pick(&["python-requests/2.31.0", "python-requests/2.32.3"])),
        curl: r
            .chance(if admin { 0.2 } else { 0.03 })
            .then(|| *r.pick(&["curl/8.5.0", "curl/7.81.0", "curl/8.7.1"])),
        go: r.chance(0.03),
    };
    let trip = r.chance(0.05).then(|| {
        let from = r.int(2, (day_span - 6).max(2));
        let dest = r.below(SITES.len());
        let tz = SITES[dest].0;
        Trip {
            from,
            to: from + r.int(2, 5),
            zone: tz,
            hotel: draw_ip(r, region(tz).0),
            office: r.chance(0.6).then_some(dest),
        }
    });
    let (secret, exec) = match role {
        Role::Platform | Role::Sre => (r.uniform(0.01, 0.05), r.uniform(0.01, 0.05)),
        Role::Security => (r.uniform(0.02, 0.06), r.uniform(0.0, 0.01)),
        _ => (r.uniform(0.0, 0.03), r.uniform(0.0, 0.03)),
    };
    Human {
        display: format!("{} {}", cap(first), cap(last)),
        username,
        team,
        moved: None,
        joined: i64::MIN,
        zone: z,
        site: site_of(z),
        style,
        home_via_vpn: r.chance(0.35),
        home_isp: r.next_u64(),
        home_period: *r.pick(&[9, 14, 21, 60, 60]),
        coworking: style == Style::Remote && r.chance(0.3),
        privacy_vpn: r.chance(0.04),
        cloud_dev: r.chance(0.05),
        level,
        start_h: (r.normal() * 0.7 + if z == zone::KOLKATA { 10.0 } else { 9.0 }).clamp(7.0, 11.5),
        len_h: (r.normal() * 0.7 + 9.0).clamp(7.5, 11.0),
        weekend_p,
        evening_p,
        pto,
        os,
        kubectl,
        upgrade,
        tools,
        trip,
        p_secret: secret,
        p_exec: exec,
        p_write: r.uniform(0.05, 0.2),
        p_wander: r.uniform(0.01, 0.05),
        seed: r.next_u64(),
    }
}
