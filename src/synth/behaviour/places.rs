//! Where people connect from: office ranges, home ISP ranges, mobile carrier-grade NAT, co-working spaces, a privacy VPN and a conference venue.
//!
//! Public addresses come from ranges that MaxMind's test databases answer (GeoLite2-City-Test,
//! GeoLite2-ASN-Test) plus a few ranges they do not know (India, Singapore). The only
//! anonymiser range used is the commercial VPN (anonymous-VPN in the Anonymous-IP test
//! database) that some employees use for privacy; nothing from the Tor-exit ranges.

use super::basics::zone;

/// Offices: time zone and private range.
pub(crate) const SITES: &[(usize, &str)] = &[
    (zone::LA, "10.20.1."),
    (zone::NY, "10.20.2."),
    (zone::LONDON, "10.20.3."),
    (zone::BERLIN, "10.20.5."),
    (zone::KOLKATA, "10.20.6."),
    (zone::SINGAPORE, "10.20.7."),
    (zone::SYDNEY, "10.20.9."),
];

pub(super) fn site_of(z: usize) -> usize {
    match z {
        zone::LA => 0,
        zone::NY => 1,
        zone::LONDON => 2,
        zone::BERLIN | zone::STOCKHOLM | zone::PARIS => 3,
        zone::KOLKATA => 4,
        zone::SINGAPORE | zone::SHANGHAI => 5,
        _ => 6,
    }
}

pub(super) type Range = (u8, (u8, u8), (u8, u8), (u8, u8));
const ANY: (u8, u8) = (0, 255);
const HOST: (u8, u8) = (1, 254);

/// Home ISP ranges, mobile carrier-grade NAT addresses and co-working addresses of each zone's region.
pub(super) fn region(
    z: usize,
) -> (
    &'static [Range],
    &'static [&'static str],
    &'static [&'static str],
) {
    match z {
        zone::LA | zone::NY => (
            &[
                (73, ANY, ANY, HOST),
                (71, (144, 159), ANY, HOST),
                (70, (160, 191), ANY, HOST),
                (98, (192, 255), ANY, HOST),
                (216, (160, 160), (83, 83), (56, 63)),
                (12, (81, 81), (96, 127), HOST),
            ],
            &[
                "72.97.18.5",
                "72.97.18.77",
                "72.101.4.19",
                "174.205.9.33",
                "174.205.9.87",
                "97.137.64.12",
            ],
            &["216.160.83.58", "73.45.188.20"],
        ),
        zone::LONDON => (
            &[
                (81, (128, 159), ANY, HOST),
                (2, (125, 125), (160, 160), (216, 223)),
            ],
            &["31.94.12.7", "31.94.12.90", "31.120.3.44", "31.120.3.201"],
            &["2.125.160.219", "81.139.7.200"],
        ),
        zone::BERLIN => (
            &[
                (79, (192, 255), ANY, HOST),
                (84, (128, 191), ANY, HOST),
                (91, (0, 63), ANY, HOST),
                (87, (128, 191), ANY, HOST),
            ],
            &["80.187.101.14", "80.187.101.203", "80.187.96.7"],
            &["91.12.30.7"],
        ),
        zone::STOCKHOLM => (
            &[
                (89, (160, 160), (0, 127), HOST),
                (82, (99, 99), (0, 63), HOST),
                (89, (160, 160), (20, 20), (112, 127)),
            ],
            &["89.160.97.3", "89.160.97.41"],
            &["89.160.20.115"],
        ),
        zone::PARIS => (
            &[
                (78, (192, 255), ANY, HOST),
                (83, (206, 206), (16, 31), HOST),
                (89, (80, 95), ANY, HOST),
            ],
            &["176.140.2.9", "176.140.2.77"],
            &["78.193.44.2"],
        ),
        zone::KOLKATA => (
            &[
                (49, (36, 47), ANY, HOST),
                (106, (51, 51), ANY, HOST),
                (122, (161, 161), ANY, HOST),
            ],
            &["49.44.3.17", "49.44.3.129", "49.44.77.8"],
            &["106.51.77.12"],
        ),
        zone::SINGAPORE => (
            &[
                (116, (86, 89), ANY, HOST),
                (202, (196, 196), (224, 239), HOST),
            ],
            &["116.86.200.3", "116.86.200.45"],
            &["202.196.230.10"],
        ),
        zone::SHANGHAI => (
            &[
                (175, (16, 16), (199, 199), HOST),
                (183, (0, 63), ANY, HOST),
                (27, (192, 223), ANY, HOST),
            ],
            &["117.136.12.9", "117.136.12.87"],
            &["183.14.2.200"],
        ),
        _ => (
            &[(1, (128, 159), ANY, HOST)],
            &["1.152.97.4", "1.152.97.66", "1.152.110.9"],
            &["1.132.47.9"],
        ),
    }
}

/// Exits of the commercial VPN some people use for privacy (anonymous-VPN in the test database).
pub(crate) const PRIVACY_VPN: &[&str] = &[
    "1.2.3.4",
    "1.2.3.90",
    "1.2.44.7",
    "1.2.44.129",
    "1.2.160.3",
    "1.2.160.200",
];
/// Conference venue addresses (several travellers at once).
pub(crate) const CONFERENCE: &[&str] = &["12.81.92.10", "12.81.92.11", "12.81.92.12"];

pub(super) fn draw_ip(r: &mut crate::synth::Rng, ranges: &[Range]) -> String {
    let (a, b, c, d) = ranges[r.below(ranges.len())];
    let mut pick = |(lo, hi): (u8, u8)| lo as i64 + r.below((hi - lo) as usize + 1) as i64;
    format!("{a}.{}.{}.{}", pick(b), pick(c), pick(d))
}
