//! A playbook's `meta().on`: what it looks at, checked natively before any script runs, so that most traffic runs no playbook at all.
//!
//! Verbs and resources are indexed by the set; everything else is checked
//! here. Each key only ever skips events the playbook's own checks would
//! reject, so a selector is a speed-up, never a second opinion.

use serde::Deserialize;

use crate::enrich::asset::Tier;
use crate::enrich::identity::{derive, is_system_user, PrincipalKind};
use crate::enrich::Pattern;
use crate::event::AuditEvent;

/// Where the client is, for `on.networks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkScope {
    /// A configured or built-in internal range.
    Internal,
    /// A known client address outside every internal range, or any other address of `sourceIPs`
    /// outside the private ranges.
    Public,
    /// Outside, and flagged by the anonymous-IP database (Tor exit, VPN, public proxy, or anonymous).
    Anonymizer,
}

/// What a playbook looks at; anything left out matches everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    pub subresources: Option<Vec<String>>,
    pub stages: Option<Vec<String>>,
    pub users: Option<Vec<Pattern>>,
    pub namespaces: Option<Vec<Pattern>>,
    /// The kinds of principal (identity enrichment): human, service_account, node, system, anonymous.
    pub actors: Option<Vec<PrincipalKind>>,
    /// `false` skips what `is_system_user(e)` is true for: control-plane users and kube-system service accounts.
    pub system_users: Option<bool>,
    pub networks: Option<Vec<NetworkScope>>,
    /// Response status codes.
    pub codes: Option<Vec<u16>>,
    /// `true`: only impersonated requests; `false`: only direct ones.
    pub impersonation: Option<bool>,
    /// Asset tiers (asset enrichment) of the object acted on: low, medium, high, critical.
    pub tiers: Option<Vec<Tier>>,
    /// Baseline flags (`new_country`, `new_asn`, `new_user_agent`, `new_verb_resource`,
    /// `new_source_network`, `unusual_hour`, `volume_spike`, `first_of_peers`, `new_action`):
    /// only events past the learning period with one of them set.
    pub baseline: Option<Vec<BaselineFlag>>,
    /// Substrings of the raw request object: only events whose request body contains one of them
    /// (an event without a request body has none).
    pub request_contains: Option<Vec<String>>,
    /// `where`: field tests the set checks with the lists (see `prefilter`).
    pub filters: Vec<super::prefilter::Clause>,
    /// `where_any`: alternatives, at least one of which must hold.
    pub filters_any: Vec<Vec<super::prefilter::Clause>>,
}

/// A baseline flag `on.baseline` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineFlag {
    NewCountry,
    NewAsn,
    NewUserAgent,
    NewVerbResource,
    NewSourceNetwork,
    UnusualHour,
    /// This hour's count of a verb class is far above the principal's usual for the hour.
    VolumeSpike,
    /// None of the principal's peers did this action within the history window.
    FirstOfPeers,
    /// The principal had not done this action (verb, resource, namespace) within the history window.
    NewAction,
}

fn any_or_all<T>(set: Option<&Vec<T>>, ok: impl Fn(&T) -> bool) -> bool {
    set.is_none_or(|s| s.iter().any(ok))
}

impl Selector {
    /// Everything but verb and resource (which the set's index decides).
    pub fn admits(&self, ev: &AuditEvent) -> bool {
        let o = ev.object_ref.as_ref();
        let sub = o.and_then(|o| o.subresource.as_deref()).unwrap_or("");
        let ns = o.and_then(|o| o.namespace.as_deref()).unwrap_or("");
        let user = ev.user.username.as_str();
        any_or_all(self.subresources.as_ref(), |x| x == sub)
            && any_or_all(self.stages.as_ref(), |x| x == ev.stage.as_str())
            && any_or_all(self.users.as_ref(), |p| p.matches(user))
            && any_or_all(self.namespaces.as_ref(), |p| p.matches(ns))
            && any_or_all(self.codes.as_ref(), |c| {
                ev.response_status.as_ref().and_then(|s| s.code) == Some(i32::from(*c))
            })
            && self.system_users.is_none_or(|s| s || !is_system_user(user))
            && self
                .impersonation
                .is_none_or(|i| i == ev.impersonated_user.is_some())
            && self.actors_admit(ev)
            && self.networks_admit(ev)
            // Without enrichment the tier is unknown: let the script decide.
            && self.tiers.as_ref().is_none_or(|t| {
                ev.enrichment
                    .as_ref()
                    .is_none_or(|e| t.contains(&e.asset.tier))
            })
            && self.baseline_admits(ev)
            && self.request_contains.as_ref().is_none_or(|subs| {
                ev.request_object
                    .as_ref()
                    // A `\u` escape could spell any key: such a body is never skipped.
                    .is_some_and(|r| {
                        let raw = r.get();
                        raw.contains("\\u") || subs.iter().any(|s| raw.contains(s.as_str()))
                    })
            })
    }

    fn baseline_admits(&self, ev: &AuditEvent) -> bool {
        let Some(flags) = &self.baseline else {
            return true;
        };
        // Without enrichment nothing is known: let the script decide.
        let Some(e) = &ev.enrichment else {
            return true;
        };
        let Some(b) = &e.baseline else {
            return false;
        };
        !b.learning
            && flags.iter().any(|f| match f {
                BaselineFlag::NewCountry => b.new_country,
                BaselineFlag::NewAsn => b.new_asn,
                BaselineFlag::NewUserAgent => b.new_user_agent,
                BaselineFlag::NewVerbResource => b.new_verb_resource,
                BaselineFlag::NewSourceNetwork => b.new_source_network,
                BaselineFlag::UnusualHour => b.unusual_hour,
                BaselineFlag::VolumeSpike => b.volume_spike,
                BaselineFlag::FirstOfPeers => b.first_of_peers,
                BaselineFlag::NewAction => b.new_action,
            })
    }

    fn actors_admit(&self, ev: &AuditEvent) -> bool {
        let Some(kinds) = &self.actors else {
            return true;
        };
        let kind = match &ev.enrichment {
            Some(e) => e.identity.kind,
            None => derive(ev).kind,
        };
        kinds.contains(&kind)
    }

    fn networks_admit(&self, ev: &AuditEvent) -> bool {
        let Some(scopes) = &self.networks else {
            return true;
        };
        // Without enrichment nothing is known about the network: let the script decide.
        let Some(n) = ev.enrichment.as_ref().map(|e| &e.network) else {
            return true;
        };
        scopes.iter().any(|s| match s {
            NetworkScope::Internal => n.internal,
            // Every address of sourceIPs is judged: the client (with the configured internal
            // ranges), and the others (proxies, X-Forwarded-For) against the private ranges.
            NetworkScope::Public => {
                !n.internal && n.client_ip.is_some()
                    || ev.source_ips.iter().any(|ip| {
                        n.client_ip.as_deref() != Some(ip.as_str())
                            && ip.parse::<std::net::IpAddr>().is_ok()
                            && !super::host_detect::is_private_ip(ip)
                    })
            }
            NetworkScope::Anonymizer => {
                !n.internal
                    && (n.geo.tor_exit
                        || n.geo.anonymous_vpn
                        || n.geo.public_proxy
                        || n.geo.anonymous)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, code: i32) -> AuditEvent {
        let line = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a",
            "stage": "ResponseComplete", "requestURI": "/api/v1/pods", "verb": "list",
            "user": {"username": user}, "sourceIPs": ["10.0.0.1"],
            "objectRef": {"resource": "pods", "namespace": "default"},
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": "2026-11-20T10:00:00Z", "stageTimestamp": "2026-11-20T10:00:00Z"
        })
        .to_string();
        crate::event::decode_record(line.as_bytes(), &Default::default())
            .events
            .remove(0)
    }

    #[test]
    fn each_key_narrows_and_absent_keys_match_everything() {
        let human = event("alice@example.com", 403);
        let node = event("system:node:ip-10-0-0-1", 200);
        let controller = event(
            "system:serviceaccount:kube-system:replicaset-controller",
            200,
        );
        let ci = event("system:serviceaccount:ci:deployer", 200);
        assert!(Selector::default().admits(&human));

        let humans = Selector {
            actors: Some(vec![PrincipalKind::Human]),
            ..Selector::default()
        };
        assert!(humans.admits(&human) && !humans.admits(&node) && !humans.admits(&ci));

        let no_system = Selector {
            system_users: Some(false),
            ..Selector::default()
        };
        assert!(no_system.admits(&human) && no_system.admits(&ci));
        assert!(!no_system.admits(&node) && !no_system.admits(&controller));

        let forbidden = Selector {
            codes: Some(vec![403]),
            ..Selector::default()
        };
        assert!(forbidden.admits(&human) && !forbidden.admits(&node));

        let impersonated = Selector {
            impersonation: Some(true),
            ..Selector::default()
        };
        assert!(!impersonated.admits(&human));

        // Unenriched events: the network is unknown, so a network key does not skip them.
        let public = Selector {
            networks: Some(vec![NetworkScope::Public]),
            ..Selector::default()
        };
        assert!(public.admits(&human));

        // A request-body key skips events without that text in their body (or without a body).
        let host_path = Selector {
            request_contains: Some(vec!["hostPath".into()]),
            ..Selector::default()
        };
        assert!(!host_path.admits(&human));

        // A baseline key skips events in the learning period, and lets unenriched ones through.
        let novel = Selector {
            baseline: Some(vec![BaselineFlag::NewUserAgent]),
            ..Selector::default()
        };
        assert!(novel.admits(&human));
        let mut learning = human.clone();
        learning.enrichment = Some(Box::new(crate::enrich::Enrichment {
            baseline: Some(crate::enrich::baseline::BaselineFlags {
                learning: true,
                new_user_agent: true,
                ..Default::default()
            }),
            ..Default::default()
        }));
        assert!(!novel.admits(&learning));
        if let Some(b) = learning
            .enrichment
            .as_mut()
            .and_then(|e| e.baseline.as_mut())
        {
            b.learning = false;
        }
        assert!(novel.admits(&learning));
    }
}
