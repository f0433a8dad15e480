//! Configuration: serde types for `rampart.yaml`, each field documented, with defaults beside it.

mod load;
mod units;
mod validate;

pub use load::{load_file, load_str, ConfigError, Problem};
pub use units::{ByteSize, Seconds, Secret};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::enrich::Cidr;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How each event's cluster name is found.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// The Kafka connection shared by the source, the dead-letter topic and the webhook bridge.
    #[serde(default)]
    pub kafka: Option<KafkaConnection>,
    /// Where audit events come from.
    #[serde(default)]
    pub sources: SourcesConfig,
    /// How records are decoded into events.
    #[serde(default)]
    pub decode: DecodeConfig,
    /// Where undecodable records go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Identity, network, asset and baseline enrichment.
    #[serde(default)]
    pub enrich: EnrichConfig,
    /// The rhai playbooks; no playbook stage when absent.
    #[serde(default)]
    pub playbooks: Option<PlaybooksConfig>,
    /// Where decoded events are written (until responders take over).
    #[serde(default)]
    pub output: OutputConfig,
    /// Worker count, channel sizes, shutdown.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Metrics and health endpoints.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Local state (file positions; later the state store).
    #[serde(default)]
    pub state: StateConfig,
}

/// Cluster-name resolution, in precedence order: header, key, topic, annotation, default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Name used when nothing else says which cluster an event is from.
    #[serde(default = "default_cluster")]
    pub default: String,
    /// Kafka header carrying the cluster name.
    #[serde(default = "default_cluster_header")]
    pub header: Option<String>,
    /// Take the cluster name from the Kafka record key.
    #[serde(default)]
    pub from_key: bool,
    /// Topic name to cluster name.
    #[serde(default)]
    pub topics: BTreeMap<String, String>,
    /// Event annotation carrying the cluster name.
    #[serde(default)]
    pub annotation: Option<String>,
}

fn default_cluster() -> String {
    "default".to_owned()
}
fn default_cluster_header() -> Option<String> {
    Some("cluster".to_owned())
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            default: default_cluster(),
            header: default_cluster_header(),
            from_key: false,
            topics: BTreeMap::new(),
            annotation: None,
        }
    }
}

/// Connection to the Kafka cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConnection {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// librdkafka properties passed through as they are (security.protocol,
    /// sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ...).
    /// Values are secrets as far as logs are concerned.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

/// The sources; any combination may be enabled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub kafka: Option<KafkaSourceConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub files: Vec<FileSourceConfig>,
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// The Kafka consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Consumer group id; instances sharing it split the partitions.
    pub group_id: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Offset reset policy for a group without committed offsets.
    #[serde(default)]
    pub start_from: StartFrom,
    /// How long outstanding events may take to finish before partitions are released.
    #[serde(default = "default_drain")]
    pub drain_timeout: Seconds,
    /// How often offsets are committed (stored offsets only ever cover finished events).
    #[serde(default = "default_commit_interval")]
    pub commit_interval: Seconds,
    /// How often consumer lag is refreshed for the metric.
    #[serde(default = "default_lag_interval")]
    pub lag_interval: Seconds,
    /// Extra librdkafka properties for the consumer only.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

fn default_drain() -> Seconds {
    Seconds::from_secs(10)
}
fn default_commit_interval() -> Seconds {
    Seconds::from_secs(1)
}
fn default_lag_interval() -> Seconds {
    Seconds::from_secs(10)
}

/// The API server's webhook audit backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Request path the API server posts to.
    #[serde(default = "default_webhook_path")]
    pub path: String,
    /// Largest accepted body, before and after gzip.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// TLS server certificate and key (PEM); add `client_ca` for mTLS.
    #[serde(default)]
    pub tls: Option<WebhookTls>,
    /// Bearer token the API server must present (its kubeconfig `token`).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Produce each batch to this Kafka topic (acks=all) and answer once it is durable there.
    #[serde(default)]
    pub bridge_topic: Option<String>,
    /// Longest a request waits for its batch to be durable before answering 503.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: Seconds,
    /// Cluster name for events received here (overrides the default).
    #[serde(default)]
    pub cluster: Option<String>,
}

fn default_webhook_path() -> String {
    "/audit".to_owned()
}
fn default_max_body() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}
fn default_ack_timeout() -> Seconds {
    Seconds::from_secs(30)
}

/// TLS for the webhook listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mTLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A JSON-lines audit log file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    pub path: PathBuf,
    /// Keep reading as the file grows, across rotation and truncation (`tail -F`).
    #[serde(default)]
    pub follow: bool,
    /// How often a followed file is checked for growth and rotation.
    #[serde(default = "default_poll")]
    pub poll_interval: Seconds,
    /// Cluster name for events from this file.
    #[serde(default)]
    pub cluster: Option<String>,
}

fn default_poll() -> Seconds {
    Seconds::from_millis(250)
}

/// Decoder settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// Fields under which log shippers wrap the event JSON.
    #[serde(default = "default_wrapped")]
    pub wrapped_fields: Vec<String>,
}

fn default_wrapped() -> Vec<String> {
    vec!["log".to_owned(), "message".to_owned()]
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            wrapped_fields: default_wrapped(),
        }
    }
}

/// Dead-letter destination: a JSON-lines file or a Kafka topic (exactly one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// How decoded events are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Every event as a line, alerts under it.
    #[default]
    Text,
    /// Only events a playbook fired on, with their alerts.
    Alerts,
    /// Every event as JSON.
    Json,
    Off,
}

/// The console / JSON-lines output of decoded events.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// What goes to stdout.
    #[serde(default)]
    pub console: OutputFormat,
    /// Also append every event as JSON to this file.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Pipeline sizing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker tasks; records of one partition always go to the same worker.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Capacity, in batches, of each bounded channel between stages; with
    /// `batch_size` it bounds the records in flight (backpressure beyond it).
    #[serde(default = "default_capacity")]
    pub channel_capacity: usize,
    /// Most records handed from a source to a worker at once.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How long shutdown may take to drain and commit before it gives up.
    #[serde(default = "default_grace")]
    pub shutdown_grace: Seconds,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_capacity() -> usize {
    16
}
fn default_batch() -> usize {
    256
}
fn default_grace() -> Seconds {
    Seconds::from_secs(30)
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            channel_capacity: default_capacity(),
            batch_size: default_batch(),
            shutdown_grace: default_grace(),
        }
    }
}

/// Metrics and health.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Address for `/metrics`, `/healthz`, `/readyz`; off when absent.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// Local state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Directory for rampart's own state (file positions).
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".rampart-state")
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: default_state_dir(),
        }
    }
}

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

/// Playbooks: where they are, the lists they read, and the sandbox limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybooksConfig {
    /// Directory of `.rhai` playbooks (and their `.tests.yaml` files).
    #[serde(default = "default_playbook_dir")]
    pub dir: PathBuf,
    /// Named lists playbooks read with `in_list(name, value)`: allowlists users extend without editing scripts.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// How often the directory is checked for edits (hot reload).
    #[serde(default = "default_playbook_reload")]
    pub reload_interval: Seconds,
    /// What a playbook fault does to the event besides being counted and logged.
    #[serde(default)]
    pub on_error: OnPlaybookError,
    #[serde(default)]
    pub limits: PlaybookLimits,
}

fn default_playbook_dir() -> PathBuf {
    PathBuf::from("playbooks")
}
fn default_playbook_reload() -> Seconds {
    Seconds::from_secs(2)
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        Self {
            dir: default_playbook_dir(),
            lists: BTreeMap::new(),
            reload_interval: default_playbook_reload(),
            on_error: OnPlaybookError::default(),
            limits: PlaybookLimits::default(),
        }
    }
}

/// Policy for playbook faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPlaybookError {
    /// Skip that playbook for the event; the others' verdicts stand.
    #[default]
    Skip,
    /// Also write the event and the fault to the dead-letter sink.
    DeadLetter,
}

/// The sandbox every playbook call runs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookLimits {
    #[serde(default = "default_max_ops")]
    pub max_operations: u64,
    #[serde(default = "default_call_depth")]
    pub max_call_depth: usize,
    #[serde(default = "default_max_string")]
    pub max_string_size: usize,
    #[serde(default = "default_max_collection")]
    pub max_array_size: usize,
    #[serde(default = "default_max_collection")]
    pub max_map_size: usize,
    /// Wall-clock limit per call.
    #[serde(default = "default_playbook_timeout")]
    pub timeout: Seconds,
    /// Keys the state helpers (count, distinct, first_seen) keep in memory across all playbooks.
    #[serde(default = "default_state_keys")]
    pub max_state_keys: usize,
}

fn default_state_keys() -> usize {
    200_000
}

fn default_max_ops() -> u64 {
    100_000
}
fn default_call_depth() -> usize {
    32
}
fn default_max_string() -> usize {
    64 * 1024
}
fn default_max_collection() -> usize {
    10_000
}
fn default_playbook_timeout() -> Seconds {
    Seconds::from_millis(50)
}

impl Default for PlaybookLimits {
    fn default() -> Self {
        Self {
            max_operations: default_max_ops(),
            max_call_depth: default_call_depth(),
            max_string_size: default_max_string(),
            max_array_size: default_max_collection(),
            max_map_size: default_max_collection(),
            timeout: default_playbook_timeout(),
            max_state_keys: default_state_keys(),
        }
    }
}
