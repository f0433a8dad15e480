//! Configuration: serde types for `rampart.yaml`, each field documented, with defaults beside it.

mod enrich;
mod load;
mod playbooks;
pub mod reference;
mod state;
mod units;
mod validate;

pub use crate::respond::config::RespondConfig;
pub use enrich::*;
pub use playbooks::*;
pub use state::{RiskConfig, StateConfig};

pub use load::{load_file, load_str, ConfigError, Problem};
pub use units::{ByteSize, Seconds, Secret};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

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
    /// Per-cluster overrides: enrichment settings and extra list entries for one cluster's events.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterOverride>,
    /// Where the enriched events are written: stdout, a JSON-lines file, a topic.
    #[serde(default)]
    pub output: OutputConfig,
    /// Worker count, channel sizes, shutdown.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Metrics and health endpoints.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Local state: the store, dedup windows, risk, retention.
    #[serde(default)]
    pub state: StateConfig,
    /// What every responder shares: dry-run, the alerts file, retries.
    #[serde(default)]
    pub respond: RespondConfig,
    /// The web console and the triage API: who may sign in, with what role.
    #[serde(default)]
    pub console: crate::triage::access::ConsoleConfig,
}

/// What differs for one cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterOverride {
    /// Enrichment settings for this cluster's events, replacing `enrich` (its own directory, ranges, assets).
    #[serde(default)]
    pub enrich: Option<EnrichConfig>,
    /// Entries added to the named playbook lists for this cluster's events.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
}

impl Config {
    /// The playbook settings with the per-cluster list entries folded in.
    pub fn playbooks_with_clusters(&self) -> Option<PlaybooksConfig> {
        self.playbooks.clone().map(|mut p| {
            p.cluster_lists = self
                .clusters
                .iter()
                .filter(|(_, o)| !o.lists.is_empty())
                .map(|(c, o)| (c.clone(), o.lists.clone()))
                .collect();
            p
        })
    }
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
    /// The Kafka consumer (needs the top-level `kafka` connection).
    #[serde(default)]
    pub kafka: Option<KafkaSourceConfig>,
    /// The API server's webhook audit backend.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// JSON-lines audit log files, read once or followed.
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

/// How a consumer group shares partitions out when an instance joins or leaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionAssignment {
    /// Incremental: only the partitions that move stop; the others keep flowing (Kafka's cooperative-sticky assignor).
    #[default]
    CooperativeSticky,
    /// Eager: every instance gives up every partition on each rebalance (librdkafka's range assignor).
    Range,
    /// Eager, partitions dealt out in turn (librdkafka's roundrobin assignor).
    Roundrobin,
}

impl PartitionAssignment {
    /// librdkafka's `partition.assignment.strategy` value.
    pub fn strategy(self) -> &'static str {
        match self {
            Self::CooperativeSticky => "cooperative-sticky",
            Self::Range => "range",
            Self::Roundrobin => "roundrobin",
        }
    }
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
    /// How partitions move between instances on a rebalance; every instance of a group must agree.
    #[serde(default)]
    pub partition_assignment: PartitionAssignment,
    /// This instance's stable name in the group (static membership: write `${POD_NAME}` in a
    /// StatefulSet). A restart within `session_timeout` then gets its partitions back without a
    /// rebalance. Unique per instance; two live instances with one name fence each other.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// How long the group waits for a silent instance before handing its partitions to the others.
    #[serde(default = "default_session_timeout")]
    pub session_timeout: Seconds,
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
fn default_session_timeout() -> Seconds {
    Seconds::from_secs(45)
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
    /// Longest a client may take to send its request headers, and then its whole body (408 after
    /// that), so that slow or stalled senders cannot hold connections and buffers forever.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Seconds,
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
fn default_read_timeout() -> Seconds {
    Seconds::from_secs(30)
}

/// TLS for the webhook listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTls {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mTLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A JSON-lines audit log file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The JSON-lines audit log (one event, EventList or wrapped event per line).
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
    /// Append dead letters to this JSON-lines file (synced before the record is acknowledged); without `file` or `topic`, `<state.dir>/dead-letter.jsonl`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Produce dead letters to this topic on the `kafka` connection (the original bytes as the value, the reason and provenance in `rampart.*` headers).
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
    /// Also produce every enriched event (with its verdicts) as JSON to this topic on the
    /// `kafka` connection, keyed by cluster; acknowledged by the broker before the source is.
    #[serde(default)]
    pub kafka_topic: Option<String>,
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

/// The number of CPUs (2 when unknown).
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
