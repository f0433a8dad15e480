//! Playbook settings: the directory, the lists scripts read, the error policy and the sandbox limits.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::Seconds;

/// Playbooks: where they are, the lists they read, and the sandbox limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybooksConfig {
    /// Directory of `.rhai` playbooks (and their `.tests.yaml` files).
    #[serde(default = "default_playbook_dir")]
    pub dir: PathBuf,
    /// More directories of playbooks (each with its own `lists/`) loaded with `dir`, e.g. the
    /// Falco pack `playbooks/falco`. Relative to the working directory, like `dir`.
    #[serde(default)]
    pub packs: Vec<PathBuf>,
    /// Named lists playbooks read with `in_list(name, value)`: allowlists users extend without editing scripts.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// How often the directory is checked for edits (hot reload; links are followed, so an edited ConfigMap volume reloads too).
    #[serde(default = "default_playbook_reload")]
    pub reload_interval: Seconds,
    /// What a playbook fault does to the event besides being counted and logged.
    #[serde(default)]
    pub on_error: OnPlaybookError,
    /// Sandbox limits for every playbook call.
    #[serde(default)]
    pub limits: PlaybookLimits,
    /// Per-cluster list entries (from `clusters.<name>.lists`), filled in when the config loads.
    #[serde(skip)]
    pub cluster_lists: BTreeMap<String, BTreeMap<String, Vec<String>>>,
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
            packs: Vec::new(),
            lists: BTreeMap::new(),
            reload_interval: default_playbook_reload(),
            on_error: OnPlaybookError::default(),
            limits: PlaybookLimits::default(),
            cluster_lists: BTreeMap::new(),
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
    /// Most rhai operations one call may run.
    #[serde(default = "default_max_ops")]
    pub max_operations: u64,
    /// Deepest function-call nesting.
    #[serde(default = "default_call_depth")]
    pub max_call_depth: usize,
    /// Longest string a script may build, in bytes.
    #[serde(default = "default_max_string")]
    pub max_string_size: usize,
    /// Most elements in an array.
    #[serde(default = "default_max_collection")]
    pub max_array_size: usize,
    /// Most entries in an object map.
    #[serde(default = "default_max_collection")]
    pub max_map_size: usize,
    /// Wall-clock limit per call.
    #[serde(default = "default_playbook_timeout")]
    pub timeout: Seconds,
    /// Keys the state helpers (count, distinct, first_seen, sequence) keep in memory across all playbooks.
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
