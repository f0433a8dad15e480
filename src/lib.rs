//! rampart: an enrichment and response pipeline for Kubernetes audit logs.
//!
//! The module map follows the flow of an event, left to right:
//!
//! - [`config`]: `rampart.yaml` types, loading with `${ENV}` interpolation, validation that reports every problem.
//! - [`sources`]: Kafka (consumer group, offsets stored only after acknowledgement), the API server's webhook backend, log files.
//! - [`model`]: the shared vocabulary at the bottom: enrichment facts, verdicts, severities and response requests.
//! - [`event`]: the audit.k8s.io Event model, decoders for every wire form, cluster name, provenance.
//! - [`deadletter`]: where undecodable records go, with the reason and the original bytes.
//! - [`enrich`]: identity, network/GeoIP, asset class and behavioural baseline for each event.
//! - [`playbook`]: rhai playbooks — compiled once, indexed by verb and resource, sandboxed — producing verdicts.
//! - [`state`]: verdicts become alerts — thresholds, dedup windows, follow-ups, entity risk — written to a durable outbox (sled) before the event is acknowledged; the journal of outcomes.
//! - [`pipeline`]: bounded channels, workers, acknowledgements back to the sources, ordered shutdown.
//! - [`respond`]: the dispatcher that takes work from the outbox (retries, backoff, dry-run, journal) and the responders; the console output of events.
//! - [`telemetry`]: logs, Prometheus metrics, health endpoints.
//! - [`triage`]: outcomes, suppressions, the tuning report and the bearer-token API; [`console`]: the web console over them.
//! - [`internal_events`]: one type per noteworthy happening, whose `emit()` logs and counts it.
//! - [`fsutil`]: appending to files (dead letters, output).
//! - [`journal_cli`]: `rampart alerts` / `rampart actions`.
//! - [`app`]: the jobs behind each CLI subcommand; [`cli`]: the command line.
//! - [`synth`]: a generator of realistic audit traffic for demos, tests and benchmarks; [`bench`]: `rampart bench`, the end-to-end benchmark.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod deadletter;
pub mod enrich;
pub mod event;
pub mod fsutil;
pub mod internal_events;
pub mod journal_cli;
pub mod model;
pub mod pipeline;
pub mod playbook;
pub mod respond;
pub mod sources;
pub mod state;
pub mod synth;
pub mod telemetry;
pub mod triage;

/// Events are allocated on one thread and freed on another, many times a
/// second; mimalloc handles that pattern far better than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
