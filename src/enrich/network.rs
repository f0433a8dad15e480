//! Network: from where — the real client address behind trusted proxies, internal ranges by label, GeoIP/ASN/anonymiser facts for the rest.

use std::net::IpAddr;

use super::geoip::GeoDb;
use super::matcher::Cidr;
use crate::event::AuditEvent;

pub use crate::model::enrichment::Network;

/// Labelled ranges checked before any database: user ranges first, then these.
const BUILTIN_CLASSES: &[(&str, &str)] = &[
    ("127.0.0.0/8", "internal/loopback"),
    ("::1/128", "internal/loopback"),
    ("169.254.169.254/32", "internal/cloud-metadata"),
    ("fd00:ec2::254/128", "internal/cloud-metadata"),
    ("169.254.0.0/16", "internal/link-local"),
    ("fe80::/10", "internal/link-local"),
    ("10.0.0.0/8", "internal/private"),
    ("172.16.0.0/12", "internal/private"),
    ("192.168.0.0/16", "internal/private"),
    ("fc00::/7", "internal/private"),
    ("100.64.0.0/10", "internal/cgnat"),
];

/// The network enricher.
#[derive(Debug, Default)]
pub struct NetworkEnricher {
    trusted_proxies: Vec<Cidr>,
    classes: Vec<(Cidr, String)>,
    pub city: Option<GeoDb>,
    pub asn: Option<GeoDb>,
    pub anonymous: Option<GeoDb>,
}

impl NetworkEnricher {
    pub fn new(trusted_proxies: Vec<Cidr>, user_classes: Vec<(Cidr, String)>) -> Self {
        let mut classes = user_classes;
        for (c, label) in BUILTIN_CLASSES {
            if let Ok(cidr) = Cidr::parse(c) {
                classes.push((cidr, (*label).to_owned()));
            }
        }
        Self {
            trusted_proxies,
            classes,
            ..Self::default()
        }
    }

    /// `sourceIPs` lists X-Forwarded-For entries, then X-Real-Ip, then the
    /// connection's address. Walking from the connection end and skipping
    /// trusted proxies finds the client without trusting a header the client
    /// itself could have written.
    pub fn client_ip(&self, source_ips: &[String]) -> Option<IpAddr> {
        let parsed: Vec<IpAddr> = source_ips
            .iter()
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        parsed
            .iter()
            .rev()
            .find(|ip| !self.trusted_proxies.iter().any(|c| c.contains(**ip)))
            .or_else(|| parsed.first())
            .copied()
    }

    pub fn enrich(&self, ev: &AuditEvent) -> Network {
        let mut n = Network::default();
        let Some(ip) = self.client_ip(&ev.source_ips) else {
            return n;
        };
        n.client_ip = Some(ip_text(ip));
        if let Some((_, label)) = self.classes.iter().find(|(c, _)| c.contains(ip)) {
            n.internal = true;
            n.class = Some(label.clone());
            return n;
        }
        for db in [&self.city, &self.asn, &self.anonymous]
            .into_iter()
            .flatten()
        {
            db.lookup_into(ip, &mut n.geo);
        }
        n
    }

    /// Reloads any database whose file changed.
    pub fn reload(&self) {
        for db in [&self.city, &self.asn, &self.anonymous]
            .into_iter()
            .flatten()
        {
            db.reload_if_changed();
        }
    }
}

/// An address as text; IPv4 (nearly every client) without the formatting machinery, which
/// costs more than the rest of the network enrichment of a private address.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn writes_addresses_as_the_standard_library_does() {
        for a in [0u8, 1, 9, 10, 99, 100, 199, 255] {
            for b in [0u8, 7, 42, 250] {
                let ip = IpAddr::from([a, b, b.wrapping_add(a), 255 - a]);
                assert_eq!(super::ip_text(ip), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(super::ip_text(v6), "2001:db8::1");
    }
    use super::*;
    use crate::enrich::geoip::DbKind;
    use std::path::PathBuf;

    fn db(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/geoip")
            .join(name)
    }

    fn with_dbs() -> NetworkEnricher {
        let mut n = NetworkEnricher::new(
            vec![Cidr::parse("10.0.0.0/8").unwrap()],
            vec![(
                Cidr::parse("10.244.0.0/16").unwrap(),
                "internal/pod-network".into(),
            )],
        );
        n.city = Some(GeoDb::open(DbKind::City, &db("GeoIP2-City-Test.mmdb")).unwrap());
        n.asn = Some(GeoDb::open(DbKind::Asn, &db("GeoLite2-ASN-Test.mmdb")).unwrap());
        n.anonymous =
            Some(GeoDb::open(DbKind::Anonymous, &db("GeoIP2-Anonymous-IP-Test.mmdb")).unwrap());
        n
    }

    fn ev(ips: &[&str]) -> AuditEvent {
        let raw = serde_json::json!({"auditID": "1", "stage": "ResponseComplete", "verb": "get", "user": {"username": "u"}, "sourceIPs": ips}).to_string();
        crate::event::decode_record(raw.as_bytes(), &Default::default())
            .events
            .remove(0)
    }

    #[test]
    fn every_test_database_address_has_its_documented_answer() {
        let n = with_dbs();
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("81.2.69.142", Some("GB"), Some("London")),
            ("2.125.160.216", Some("GB"), Some("Boxford")),
            ("89.160.20.112", Some("SE"), Some("Linköping")),
            ("216.160.83.56", Some("US"), Some("Milton")),
            ("175.16.199.1", Some("CN"), Some("Changchun")),
            ("67.43.156.1", Some("BT"), None),
        ];
        for (ip, country, city) in cases {
            let g = n.enrich(&ev(&[ip])).geo;
            assert_eq!(
                (g.country.as_deref(), g.city.as_deref()),
                (*country, *city),
                "{ip}"
            );
        }
        let london = n.enrich(&ev(&["81.2.69.142"])).geo;
        assert!(
            london.anonymous
                && london.anonymous_vpn
                && london.hosting
                && london.public_proxy
                && london.tor_exit
        );
        assert!(london.latitude.is_some());
        let telstra = n.enrich(&ev(&["1.128.0.1"])).geo;
        assert_eq!(
            (telstra.asn, telstra.as_org.as_deref()),
            (Some(1221), Some("Telstra Pty Ltd"))
        );
        let att = n.enrich(&ev(&["12.81.92.1"])).geo;
        assert_eq!(
            (att.asn, att.as_org.as_deref()),
            (Some(7018), Some("AT&T Services"))
        );
        let vpn = n.enrich(&ev(&["1.124.213.1"])).geo;
        assert!(vpn.anonymous_vpn && vpn.tor_exit && !vpn.hosting);
        let plain = n.enrich(&ev(&["2.125.160.216"])).geo;
        assert!(!plain.anonymous && plain.asn.is_none());
    }

    #[test]
    fn private_and_configured_ranges_are_labelled_not_looked_up() {
        let n = with_dbs();
        for (ip, label) in [
            ("10.244.3.7", "internal/pod-network"),
            ("10.0.0.1", "internal/private"),
            ("192.168.1.1", "internal/private"),
            ("169.254.169.254", "internal/cloud-metadata"),
            ("127.0.0.1", "internal/loopback"),
            ("::1", "internal/loopback"),
        ] {
            let net = n.enrich(&ev(&[ip]));
            assert!(net.internal, "{ip}");
            assert_eq!(net.class.as_deref(), Some(label), "{ip}");
            assert_eq!(
                net.geo,
                crate::model::GeoInfo::default(),
                "{ip} was looked up"
            );
        }
    }

    #[test]
    fn the_client_is_found_behind_trusted_proxies_only() {
        let n = with_dbs(); // 10.0.0.0/8 is trusted
                            // client, then a trusted proxy that connected to the API server
        assert_eq!(
            n.client_ip(&["81.2.69.142".into(), "10.0.0.9".into()]),
            "81.2.69.142".parse().ok()
        );
        // a forged X-Forwarded-For entry before an untrusted hop is not believed
        assert_eq!(
            n.client_ip(&["1.1.1.1".into(), "89.160.20.112".into()]),
            "89.160.20.112".parse().ok()
        );
        // everything trusted: the first entry
        assert_eq!(
            n.client_ip(&["10.1.1.1".into(), "10.0.0.9".into()]),
            "10.1.1.1".parse().ok()
        );
        assert_eq!(n.client_ip(&[]), None);
    }

    #[test]
    fn corrupt_and_wrong_databases_fail_at_start_with_their_path() {
        for (kind, name) in [
            (DbKind::City, "GeoIP2-City-Test-Broken-Double-Format.mmdb"),
            (DbKind::City, "GeoIP2-City-Test-Invalid-Node-Count.mmdb"),
            (DbKind::City, "GeoLite2-ASN-Test.mmdb"),
            (DbKind::Asn, "missing.mmdb"),
        ] {
            let err = GeoDb::open(kind, &db(name)).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
