//! Enrichment settings: identity directory and API, network ranges and GeoIP databases, asset rules, baselines.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Seconds, Secret};
use crate::enrich::Cidr;

/// Enrichment settings; every part works with no files at all (derived identity, built-in ranges and asset classes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub assets: AssetsConfig,
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
    pub url: String,
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
    #[serde(default)]
    pub geoip: GeoIpConfig,
}

/// One labelled range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrClass {
    pub cidr: Cidr,
    pub label: String,
}

/// MaxMind databases (each optional) and how often their files are checked for updates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    #[serde(default)]
    pub city: Option<PathBuf>,
    #[serde(default)]
    pub asn: Option<PathBuf>,
    #[serde(default)]
    pub anonymous: Option<PathBuf>,
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
        }
    }
}
