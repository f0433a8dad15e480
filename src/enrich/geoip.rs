//! MaxMind GeoIP2/GeoLite2 City, ASN and Anonymous-IP databases: opened and probed at start, reloaded when the file changes.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use maxminddb::{Mmap, Reader};
use serde::Deserialize;

use super::EnrichError;

pub use crate::model::enrichment::GeoInfo;

#[derive(Deserialize)]
struct CityRec<'a> {
    #[serde(borrow, default)]
    country: Option<CountryRec<'a>>,
    #[serde(borrow, default)]
    city: Option<CityNames<'a>>,
    #[serde(default)]
    location: Option<Location>,
}
#[derive(Deserialize)]
struct CountryRec<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}
#[derive(Deserialize)]
struct CityNames<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}
#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}
#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}
#[derive(Deserialize)]
struct AsnRec<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}
#[derive(Deserialize)]
struct AnonRec {
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
}

/// Which database a file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    City,
    Asn,
    Anonymous,
}

/// Addresses whose records a probe decodes to prove a database readable.
const PROBES: &[&str] = &[
    "81.2.69.142",
    "2.125.160.216",
    "1.128.0.1",
    "1.1.1.1",
    "8.8.8.8",
    "2001:4860:4860::8888",
];

/// One database file, swappable under readers.
pub struct GeoDb {
    kind: DbKind,
    path: PathBuf,
    reader: ArcSwap<Reader<Mmap>>,
    mtime: Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GeoDb({:?}, {})", self.kind, self.path.display())
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn open(kind: DbKind, path: &Path) -> Result<Reader<Mmap>, EnrichError> {
    let bad = |message: String| EnrichError::GeoIp {
        path: path.to_owned(),
        message,
    };
    // SAFETY: the mapping is read-only and only read through maxminddb. GeoIP
    // updaters replace the file by rename, which leaves this mapping on the old
    // inode; modifying a database in place while rampart runs is unsupported
    // (README, "GeoIP").
    #[allow(unsafe_code)]
    let reader = unsafe { Reader::open_mmap(path) }.map_err(|e| bad(e.to_string()))?;
    let db_type = reader.metadata().database_type.clone();
    let expected = match kind {
        DbKind::City => db_type.contains("City") || db_type.contains("Country"),
        DbKind::Asn => db_type.contains("ASN") || db_type.contains("ISP"),
        DbKind::Anonymous => db_type.contains("Anonymous"),
    };
    if !expected {
        return Err(bad(format!("is a {db_type} database, not a {kind:?} one")));
    }
    // Decode a few records so a corrupt data section fails now, not per event.
    for probe in PROBES {
        let ip: IpAddr = probe.parse().map_err(|_| bad("bad probe".into()))?;
        decode(kind, &reader, ip)
            .map_err(|e| bad(format!("unreadable record for {probe}: {e}")))?;
    }
    Ok(reader)
}

fn decode(
    kind: DbKind,
    r: &Reader<Mmap>,
    ip: IpAddr,
) -> Result<GeoInfo, maxminddb::MaxMindDbError> {
    let mut g = GeoInfo::default();
    let found = r.lookup(ip)?;
    match kind {
        DbKind::City => {
            if let Some(c) = found.decode::<CityRec<'_>>()? {
                g.country = c.country.and_then(|c| c.iso_code).map(str::to_owned);
                g.city = c
                    .city
                    .and_then(|c| c.names)
                    .and_then(|n| n.en)
                    .map(str::to_owned);
                if let Some(l) = c.location {
                    g.latitude = l.latitude;
                    g.longitude = l.longitude;
                }
            }
        }
        DbKind::Asn => {
            if let Some(a) = found.decode::<AsnRec<'_>>()? {
                g.asn = a.autonomous_system_number;
                g.as_org = a.autonomous_system_organization.map(str::to_owned);
            }
        }
        DbKind::Anonymous => {
            if let Some(a) = found.decode::<AnonRec>()? {
                g.anonymous = a.is_anonymous.unwrap_or(false);
                g.anonymous_vpn = a.is_anonymous_vpn.unwrap_or(false);
                g.tor_exit = a.is_tor_exit_node.unwrap_or(false);
                g.hosting = a.is_hosting_provider.unwrap_or(false);
                g.public_proxy = a.is_public_proxy.unwrap_or(false);
            }
        }
    }
    Ok(g)
}

impl GeoDb {
    /// Opens and probes the database; a missing, corrupt or wrong-type file fails with its path.
    pub fn open(kind: DbKind, path: &Path) -> Result<Self, EnrichError> {
        let reader = open(kind, path)?;
        Ok(Self {
            kind,
            path: path.to_owned(),
            reader: ArcSwap::from_pointee(reader),
            mtime: Mutex::new(mtime(path)),
        })
    }

    /// Reloads when the file's modification time changed; a bad new file is logged and the old one kept.
    pub fn reload_if_changed(&self) -> bool {
        let now = mtime(&self.path);
        let mut seen = self.mtime.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_none() || now == *seen {
            return false;
        }
        match open(self.kind, &self.path) {
            Ok(reader) => {
                self.reader.store(Arc::new(reader));
                *seen = now;
                tracing::info!(path = %self.path.display(), "GeoIP database reloaded");
                true
            }
            Err(e) => {
                *seen = now;
                tracing::error!(error = %e, "GeoIP database not reloaded; keeping the previous one");
                false
            }
        }
    }

    /// Adds what this database knows about `ip` to `into`.
    pub fn lookup_into(&self, ip: IpAddr, into: &mut GeoInfo) {
        let reader = self.reader.load();
        match decode(self.kind, &reader, ip) {
            Ok(g) => match self.kind {
                DbKind::City => {
                    into.country = g.country;
                    into.city = g.city;
                    into.latitude = g.latitude;
                    into.longitude = g.longitude;
                }
                DbKind::Asn => {
                    into.asn = g.asn;
                    into.as_org = g.as_org;
                }
                DbKind::Anonymous => {
                    into.anonymous = g.anonymous;
                    into.anonymous_vpn = g.anonymous_vpn;
                    into.tor_exit = g.tor_exit;
                    into.hosting = g.hosting;
                    into.public_proxy = g.public_proxy;
                }
            },
            Err(e) => {
                crate::internal_events::GeoIpLookupFailed {
                    path: &self.path,
                    error: &e,
                }
                .emit();
            }
        }
    }
}
