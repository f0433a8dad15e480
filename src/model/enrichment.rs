//! What the enrichers add to an event: identity, network, asset and baseline facts, as every later stage reads them.

use serde::{Deserialize, Serialize};

/// Everything the enrichers add to an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    pub identity: Identity,
    pub network: Network,
    pub asset: Asset,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineFlags>,
}

/// What kind of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    #[default]
    Human,
    ServiceAccount,
    Node,
    System,
    Anonymous,
}

/// Identity facts for one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: PrincipalKind,
    /// Who authenticated (the real actor, also under impersonation).
    pub actor: String,
    /// The identity the actor impersonated, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sa_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sa_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How the actor authenticated, when the event says: oidc, aws-iam, gcp-iam, azure-ad, serviceaccount-token, x509.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// A cloud IAM identity (an AWS ARN, a GCP principal) behind the Kubernetes user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_principal: Option<String>,
    /// Found in the directory (or the identity API).
    pub known: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oncall: Option<String>,
    /// `human` or `bot`, as the directory says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_kind: Option<String>,
    /// The IANA time zone the directory gives (`Europe/Berlin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Network facts for one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// The client: the nearest address in `sourceIPs` that is not a trusted proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Inside a configured or built-in internal range.
    pub internal: bool,
    /// The range's label, e.g. `internal/pod-network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(flatten)]
    pub geo: GeoInfo,
}

/// What the databases say about one address; every field optional ("no data" is not an error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeoInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    pub anonymous: bool,
    pub anonymous_vpn: bool,
    pub tor_exit: bool,
    pub hosting: bool,
    pub public_proxy: bool,
}

/// How much harm a change to the asset can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

/// Asset facts for one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub tier: Tier,
    pub data_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Which rule decided: `assets.yaml#3` or `builtin:secrets`.
    pub rule: String,
}

/// What changed compared with the principal's history, and how unusual the principal's behaviour is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineFlags {
    /// Still inside the learning period: nothing is flagged.
    pub learning: bool,
    /// First time this principal was seen, seconds since the epoch.
    pub first_seen: i64,
    pub new_country: bool,
    pub new_asn: bool,
    pub new_user_agent: bool,
    pub new_verb_resource: bool,
    pub new_source_network: bool,
    pub unusual_hour: bool,
    /// The most unusual request rate among this event's verb classes this hour, once the
    /// hour has the minimum volume and its bucket enough history (sensitive classes first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateFlags>,
    /// `rate` is past both the score and the ratio thresholds (and the principal past learning).
    pub volume_spike: bool,
    /// The principal had not done this verb on this resource in this namespace within the history window.
    pub new_action: bool,
    /// About how many principals of the cluster did this action recently (this one included).
    pub action_principals: u32,
    /// No one in the principal's peer group (team, service-account family, node pool) did this
    /// action within the history window, and the group has enough members.
    pub first_of_peers: bool,
    /// The peer group, when `first_of_peers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_group: Option<String>,
    /// About how many principals the peer group has (active in recent weeks).
    pub peers: u32,
    /// No peer (or, without a peer group, not the principal) did this action within the window; not gated by `min_peers`.
    pub peers_new_action: bool,
    /// Another group's namespace: no peer did anything in it within the window (groups of
    /// `min_peers` or more), and, for a person, about three teams or fewer work in it (a shared
    /// namespace has more).
    pub foreign_namespace: bool,
    /// About how many teams have worked in this namespace (for a person; 0 otherwise).
    pub namespace_groups: u32,
    /// A secret or RBAC action new for the principal that about two principals or fewer do.
    pub rare_action: bool,
    /// The principal is usually idle at this local hour (weekday or weekend).
    pub quiet_hour: bool,
    /// The behavioural signals the principal raised in the last two hours of event time, this
    /// event's included: `new_network`, `new_agent`, `quiet_hour`, `volume_spike`,
    /// `first_of_peers`, `rare_action`, `refused`, `foreign_namespace`.
    pub signals: Vec<String>,
    /// About how many principals of the cluster use this user agent's family.
    pub agent_principals: u32,
    /// About how many principals of the cluster come from this source network (public /24).
    pub network_principals: u32,
    /// One sentence per signal raised, for alerts: "14x this principal's usual secret requests ...".
    pub explain: Vec<String>,
}

/// How unusual this hour's count of one verb class is for the principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateFlags {
    /// `all`, `read`, `write`, `delete`, `exec`, `secrets` or `rbac`.
    pub class: String,
    /// Requests of the class so far this hour.
    pub now: u32,
    /// The usual count for this hour (weekday or weekend, local hour) and its spread.
    pub usual: f32,
    pub spread: f32,
    /// `now` over the usual count (at least 1).
    pub ratio: f32,
    /// `(now - usual) / sqrt(spread^2 + usual + 1)`.
    pub score: f32,
    /// The bucket, in the principal's time zone: `weekdays 03:00`.
    pub when: String,
}

impl PrincipalKind {
    /// The name it is serialised under (`service_account`).
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Human => "human",
            PrincipalKind::ServiceAccount => "service_account",
            PrincipalKind::Node => "node",
            PrincipalKind::System => "system",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

impl Tier {
    /// The name it is serialised under (`critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
            Tier::Critical => "critical",
        }
    }
}
