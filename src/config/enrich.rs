//! Enrichment settings: identity directory and API, network ranges and GeoIP databases, asset rules, baselines.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Seconds, Secret};
use crate::enrich::Cidr;

/// Enrichment settings; every part works with no files at all (derived identity, built-in ranges and asset classes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Who: the identity directory and an optional identity API.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// From where: trusted proxies, labelled ranges, GeoIP.
    #[serde(default)]
    pub network: NetworkConfig,
    /// To what: asset tier and data class of the object acted on.
    #[serde(default)]
    pub assets: AssetsConfig,
    /// Is it normal: the per-principal behavioural baseline.
    #[serde(default)]
    pub baseline: BaselineConfig,
}

/// Who: the directory file and an optional identity API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Users, groups and service accounts with team, Slack handle, on-call (`enrichers/identity.yaml`).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Looks up principals the directory does not know.
    #[serde(default)]
    pub api: Option<IdentityApiConfig>,
}

/// An HTTP identity directory: `GET url` with `{user}` replaced, answering a JSON person or 404.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityApiConfig {
    /// URL template; `{user}` is replaced by the (URL-encoded) principal.
    pub url: String,
    /// Bearer token sent with each request.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Longest an event waits for an answer.
    #[serde(default = "default_api_timeout")]
    pub timeout: Seconds,
    /// How long an answer is cached.
    #[serde(default = "default_api_ttl")]
    pub ttl: Seconds,
    /// How long a miss, an error or a timeout is cached.
    #[serde(default = "default_api_negative_ttl")]
    pub negative_ttl: Seconds,
}

fn default_api_timeout() -> Seconds {
    Seconds::from_millis(200)
}
fn default_api_ttl() -> Seconds {
    Seconds::from_secs(600)
}
fn default_api_negative_ttl() -> Seconds {
    Seconds::from_secs(60)
}

/// From where: proxies, labelled ranges, GeoIP databases.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Proxies and load balancers in front of the API server; skipped when finding the client.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// Ranges labelled instead of looked up (pod and service CIDRs, node subnets, VPN), checked before the built-in private ranges.
    #[serde(default)]
    pub classes: Vec<CidrClass>,
    /// MaxMind databases (see `enrichers/README.md`).
    #[serde(default)]
    pub geoip: GeoIpConfig,
}

/// One labelled range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrClass {
    /// The range, e.g. `10.244.0.0/16`.
    pub cidr: Cidr,
    /// The label shown instead of a place, e.g. `internal/pod-network`.
    pub label: String,
}

/// MaxMind databases (each optional) and how often their files are checked for updates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// GeoIP2/GeoLite2 City database (country, city, coordinates).
    #[serde(default)]
    pub city: Option<PathBuf>,
    /// GeoLite2 ASN database (AS number and organisation).
    #[serde(default)]
    pub asn: Option<PathBuf>,
    /// GeoIP2 Anonymous-IP database (VPN, Tor exit, public proxy, hosting).
    #[serde(default)]
    pub anonymous: Option<PathBuf>,
    /// How often the database files are checked for replacement (swapped in while running).
    #[serde(default = "default_reload")]
    pub reload_interval: Seconds,
}

fn default_reload() -> Seconds {
    Seconds::from_secs(60)
}

impl Default for GeoIpConfig {
    fn default() -> Self {
        Self {
            city: None,
            asn: None,
            anonymous: None,
            reload_interval: default_reload(),
        }
    }
}

/// To what: the asset rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetsConfig {
    /// Rules matched before the built-in ones (`enrichers/assets.yaml`).
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Keep the built-in classes (secrets, RBAC, admission webhooks, kube-system, ...).
    #[serde(default = "yes")]
    pub builtin_defaults: bool,
}

fn yes() -> bool {
    true
}

impl Default for AssetsConfig {
    fn default() -> Self {
        Self {
            rules: None,
            builtin_defaults: true,
        }
    }
}

/// Is this normal for this principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// Keep a behavioural baseline per principal (new country, ASN, agent, action, network, unusual hour).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// After a principal is first seen, how long it is only learned, never flagged.
    #[serde(default = "default_learning")]
    pub learning_period: Seconds,
    /// Principals kept in memory; the least recently active are written back and dropped.
    #[serde(default = "default_max_principals")]
    pub max_principals: usize,
    /// Values kept per principal and table (countries, ASNs, agents, ...), least recent evicted.
    #[serde(default = "default_max_values")]
    pub max_values: usize,
    /// How often changed baselines are persisted.
    #[serde(default = "default_flush")]
    pub flush_interval: Seconds,
    /// Behavioural analytics: request rates per principal, rarity across the population, peer groups.
    #[serde(default)]
    pub behaviour: BehaviourConfig,
}

/// Thresholds of the behavioural signals (`e.baseline.rate`, `volume_spike`, `first_of_peers`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourConfig {
    /// Rate models, population sketches and peer groups on top of the baseline's novelty flags.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Least requests of one verb class in an hour before the hour's rate can be unusual.
    #[serde(default = "default_min_volume")]
    pub min_volume: u32,
    /// Least hours a rate bucket (weekday or weekend, local hour) has learnt from before it judges.
    #[serde(default = "default_min_samples")]
    pub min_samples: u16,
    /// `volume_spike` needs a score (standard deviations, with Poisson noise) of at least this.
    #[serde(default = "default_spike_score")]
    pub spike_score: f32,
    /// `volume_spike` also needs this many times the usual count.
    #[serde(default = "default_spike_ratio")]
    pub spike_ratio: f32,
    /// How far back "new" looks for actions and peers (whole days).
    #[serde(default = "default_history_window")]
    pub history_window: Seconds,
    /// `first_of_peers` needs a peer group of at least this many principals.
    #[serde(default = "default_min_peers")]
    pub min_peers: u16,
    /// Fixed memory of the population sketches (which principal and group did what, and how many did).
    #[serde(default = "default_sketch_memory")]
    pub sketch_memory: ByteSize,
}

fn default_min_volume() -> u32 {
    10
}
fn default_min_samples() -> u16 {
    4
}
fn default_spike_score() -> f32 {
    6.0
}
fn default_spike_ratio() -> f32 {
    5.0
}
fn default_history_window() -> Seconds {
    Seconds::from_secs(30 * 86_400)
}
fn default_min_peers() -> u16 {
    3
}
fn default_sketch_memory() -> ByteSize {
    ByteSize(16 << 20)
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_volume: default_min_volume(),
            min_samples: default_min_samples(),
            spike_score: default_spike_score(),
            spike_ratio: default_spike_ratio(),
            history_window: default_history_window(),
            min_peers: default_min_peers(),
            sketch_memory: default_sketch_memory(),
        }
    }
}

fn default_learning() -> Seconds {
    Seconds::from_secs(7 * 86_400)
}
fn default_max_principals() -> usize {
    50_000
}
fn default_max_values() -> usize {
    32
}
fn default_flush() -> Seconds {
    Seconds::from_secs(10)
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            learning_period: default_learning(),
            max_principals: default_max_principals(),
            max_values: default_max_values(),
            flush_interval: default_flush(),
            behaviour: BehaviourConfig::default(),
        }
    }
}
