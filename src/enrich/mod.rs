//! Enrichment: identity (who), network and GeoIP (from where), asset class (to what), behavioural baseline (is it normal).
//!
//! The result is one documented shape, [`Enrichment`], attached to each
//! event as `enrichment` with the parts `identity`, `network`, `asset` and
//! `baseline` that playbooks read and alerts show.

pub mod asset;
pub mod baseline;
pub mod geoip;
pub mod identity;
pub mod identity_api;
mod matcher;
pub mod network;

pub use matcher::{Cidr, Pattern};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::EnrichConfig;
use crate::event::AuditEvent;
use crate::state::StateStore;
use asset::AssetClassifier;
use baseline::{Baseline, BaselineSettings, Observation};
use geoip::{DbKind, GeoDb};
use identity::Directory;
use identity_api::IdentityApi;
use network::NetworkEnricher;

/// Errors building the enrichers; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("GeoIP database {path}: {message}")]
    GeoIp { path: PathBuf, message: String },
}

pub use crate::model::enrichment::Enrichment;

/// All enrichers, built once and shared by the workers.
#[derive(Debug)]
pub struct Enricher {
    directory: Option<Directory>,
    api: Option<IdentityApi>,
    network: NetworkEnricher,
    assets: AssetClassifier,
    baseline: Option<Baseline>,
    reload_interval: Duration,
    flush_interval: Duration,
}

impl Enricher {
    /// Opens every file the config names; the first that is missing or broken fails the build.
    /// `scope` names this enricher's population sketches in the store (`""` for the default one).
    pub fn build(
        cfg: &EnrichConfig,
        store: Arc<dyn StateStore>,
        scope: &str,
    ) -> Result<Self, EnrichError> {
        let directory = cfg
            .identity
            .directory
            .as_deref()
            .map(Directory::load)
            .transpose()?;
        let api = cfg.identity.api.as_ref().map(|a| {
            IdentityApi::new(
                a.url.clone(),
                a.token.clone(),
                a.timeout.get(),
                a.ttl.get(),
                a.negative_ttl.get(),
            )
        });
        let classes = cfg
            .network
            .classes
            .iter()
            .map(|c| (c.cidr, c.label.clone()))
            .collect();
        let mut network = NetworkEnricher::new(cfg.network.trusted_proxies.clone(), classes);
        let g = &cfg.network.geoip;
        network.city = g
            .city
            .as_deref()
            .map(|p| GeoDb::open(DbKind::City, p))
            .transpose()?;
        network.asn = g
            .asn
            .as_deref()
            .map(|p| GeoDb::open(DbKind::Asn, p))
            .transpose()?;
        network.anonymous = g
            .anonymous
            .as_deref()
            .map(|p| GeoDb::open(DbKind::Anonymous, p))
            .transpose()?;
        let user_rules = cfg
            .assets
            .rules
            .as_deref()
            .map(AssetClassifier::load)
            .transpose()?
            .unwrap_or_default();
        let assets = AssetClassifier::new(user_rules, cfg.assets.builtin_defaults);
        let b = &cfg.baseline;
        let baseline = b.enabled.then(|| {
            Baseline::new(
                store,
                BaselineSettings {
                    learning_period: b.learning_period.get(),
                    max_principals: b.max_principals,
                    max_values: b.max_values,
                    behaviour: behaviour_settings(&b.behaviour, scope),
                },
            )
        });
        Ok(Self {
            directory,
            api,
            network,
            assets,
            baseline,
            reload_interval: g.reload_interval.get(),
            flush_interval: b.flush_interval.get(),
        })
    }

    /// Adds identity, network, asset and baseline facts to the event.
    pub async fn enrich(&self, ev: &mut AuditEvent) {
        let mut identity = identity::derive(ev);
        let person = self
            .directory
            .as_ref()
            .and_then(|d| d.lookup(&identity, &ev.user.groups))
            .cloned();
        match person {
            Some(p) => identity::apply(&mut identity, &p),
            None => {
                if let Some(api) = &self.api {
                    if let Some(p) = api.lookup(&identity.actor).await {
                        identity::apply(&mut identity, &p);
                    }
                }
            }
        }
        let network = self.network.enrich(ev);
        let asset = self.assets.classify(ev);
        let baseline = self.baseline.as_ref().map(|b| {
            let resource = ev.resource_path();
            let verb_resource = format!("{} {resource}", ev.verb);
            let net = (!network.internal)
                .then(|| network.client_ip.as_deref().and_then(prefix_of))
                .flatten();
            let o = ev.object_ref.as_ref();
            let namespace = o.and_then(|o| o.namespace.as_deref()).unwrap_or("");
            b.observe(
                &ev.provenance.cluster,
                &identity.actor,
                &Observation {
                    time: ev.event_time(),
                    country: network.geo.country.as_deref(),
                    asn: network.geo.asn,
                    user_agent: ev.user_agent.as_deref(),
                    verb_resource: &verb_resource,
                    network: net.as_deref(),
                    namespace,
                    classes: baseline::rates::classes_of(
                        &ev.verb,
                        o.and_then(|o| o.resource.as_deref()).unwrap_or(""),
                        o.and_then(|o| o.subresource.as_deref()).unwrap_or(""),
                        o.and_then(|o| o.api_group.as_deref()).unwrap_or(""),
                    ),
                    action: crate::state::stable_hash([
                        verb_resource.as_bytes(),
                        b" in ",
                        namespace.as_bytes(),
                    ]),
                    identity: Some(&identity),
                    refused: matches!(ev.response_code(), Some(401 | 403)),
                },
            )
        });
        ev.enrichment = Some(Box::new(Enrichment {
            identity,
            network,
            asset,
            baseline,
        }));
    }

    /// Reloads changed GeoIP databases and persists baselines in the background until shutdown.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut reload = tokio::time::interval(me.reload_interval);
            let mut flush = tokio::time::interval(me.flush_interval);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = reload.tick() => {
                        let m = me.clone();
                        let _ = tokio::task::spawn_blocking(move || m.network.reload()).await;
                    }
                    _ = flush.tick() => {
                        let m = me.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            if let Some(b) = &m.baseline {
                                b.flush_periodic();
                            }
                        })
                        .await;
                    }
                }
            }
        })
    }

    /// Persists baselines now.
    pub fn flush(&self) {
        if let Some(b) = &self.baseline {
            b.flush();
        }
    }
}

fn behaviour_settings(
    c: &crate::config::BehaviourConfig,
    scope: &str,
) -> baseline::BehaviourSettings {
    let days = c.history_window.get().as_secs() / 86_400;
    baseline::BehaviourSettings {
        enabled: c.enabled,
        min_volume: c.min_volume,
        min_samples: c.min_samples,
        spike_score: c.spike_score,
        spike_ratio: c.spike_ratio,
        window_days: u16::try_from(days.max(1)).unwrap_or(u16::MAX),
        min_peers: c.min_peers,
        sketch_bytes: usize::try_from(c.sketch_memory.0).unwrap_or(usize::MAX),
        scope: scope.to_owned(),
    }
}

/// The enricher for each cluster: the default, and those with their own settings (`clusters.<name>.enrich`).
#[derive(Debug)]
pub struct Enrichers {
    default: Arc<Enricher>,
    per_cluster: std::collections::HashMap<String, Arc<Enricher>>,
}

impl Enrichers {
    /// Builds the default and every per-cluster enricher; they share one state store.
    pub fn build(
        cfg: &crate::config::Config,
        store: Arc<dyn StateStore>,
    ) -> Result<Self, EnrichError> {
        let default = Arc::new(Enricher::build(&cfg.enrich, store.clone(), "")?);
        let mut per_cluster = std::collections::HashMap::new();
        for (name, o) in &cfg.clusters {
            if let Some(e) = &o.enrich {
                per_cluster.insert(
                    name.clone(),
                    Arc::new(Enricher::build(e, store.clone(), name)?),
                );
            }
        }
        Ok(Self {
            default,
            per_cluster,
        })
    }

    pub fn for_cluster(&self, cluster: &str) -> &Enricher {
        self.per_cluster.get(cluster).unwrap_or(&self.default)
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Enricher>> {
        std::iter::once(&self.default).chain(self.per_cluster.values())
    }

    /// Background reloads and baseline flushes for every enricher.
    pub fn spawn_maintenance(
        &self,
        shutdown: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.all()
            .map(|e| e.spawn_maintenance(shutdown.clone()))
            .collect()
    }

    pub fn flush(&self) {
        for e in self.all() {
            e.flush();
        }
    }
}

/// The /24 (IPv4) or /48 (IPv6) an address is in, as text.
fn prefix_of(ip: &str) -> Option<String> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}
