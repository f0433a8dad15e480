//! `rampart alerts` and `rampart actions`: the journal as a table or JSON, read from the store or, while rampart runs and holds it, from the running instance.

use crate::cli::JournalQuery;
use crate::config;
use crate::state::model::{Alert, JournalEntry};
pub use crate::state::outbox::Listing;
use crate::state::outbox::Outbox;
use crate::state::SledStore;

/// Errors of a journal query.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot read the journal: {0}")]
    Read(String),
    #[error("{0}")]
    Undo(String),
}

/// The store, or (while a running rampart holds its lock) that instance's `/api`.
enum Journal {
    Store(Outbox),
    Running(std::net::SocketAddr),
}

fn open_journal(cfg: &config::Config) -> Result<Journal, JournalError> {
    match SledStore::open(&cfg.state.dir.join("store")) {
        Ok(store) => Outbox::open(std::sync::Arc::new(store))
            .map(Journal::Store)
            .map_err(|e| JournalError::Read(e.to_string())),
        // sled holds an exclusive lock: a running rampart answers over its telemetry listener.
        Err(open_err) => match cfg.telemetry.listen {
            Some(addr) => Ok(Journal::Running(addr)),
            None => Err(JournalError::Read(open_err.to_string())),
        },
    }
}

async fn fetch(
    addr: std::net::SocketAddr,
    what: Listing,
    limit: usize,
) -> Result<serde_json::Value, JournalError> {
    let url = format!("http://{addr}/api/{}?limit={limit}", what.as_str());
    let get = async {
        reqwest::get(&url)
            .await?
            .error_for_status()?
            .json::<serde_json::Value>()
            .await
    };
    get.await.map_err(|e| {
        JournalError::Read(format!(
            "the store is locked by a running rampart, and it did not answer at {addr}: {}",
            e.without_url()
        ))
    })
}

/// `rampart actions undo ID`: restores a revoked binding from its journal entry and records that it was undone.
pub async fn undo(
    config_path: &std::path::Path,
    id: &str,
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
) -> Result<String, JournalError> {
    let cfg = config::load_file(config_path)?;
    let journal = open_journal(&cfg)?;
    let entry = match &journal {
        Journal::Store(o) => o
            .journal(id)
            .map_err(|e| JournalError::Read(e.to_string()))?,
        Journal::Running(addr) => {
            let all: Vec<JournalEntry> =
                serde_json::from_value(fetch(*addr, Listing::Actions, usize::MAX >> 1).await?)
                    .map_err(|e| JournalError::Read(e.to_string()))?;
            all.into_iter().find(|e| e.id == id)
        }
    };
    let Some(mut entry) = entry else {
        return Err(JournalError::Undo(format!(
            "no action {id:?} in the journal (see `rampart actions`)"
        )));
    };
    use crate::state::model::Status;
    match entry.status {
        Status::Done if !entry.undo.is_null() => {}
        Status::Undone => {
            return Err(JournalError::Undo(format!(
                "{id} was already undone: {}",
                entry.detail
            )))
        }
        s => {
            return Err(JournalError::Undo(format!(
                "{id} is {}: nothing was changed, so there is nothing to undo ({})",
                s.as_str(),
                entry.detail
            )))
        }
    }
    if entry.responder != "revoke_binding" {
        return Err(JournalError::Undo(format!(
            "{id}: only binding revocations can be undone"
        )));
    }
    let mut k = cfg.respond.kubernetes.clone().unwrap_or_default();
    if kubeconfig.is_some() {
        k.kubeconfig = kubeconfig;
        k.context = context;
    } else if context.is_some() {
        k.context = context;
    }
    let done = crate::respond::kubernetes::undo(&k, &entry.undo)
        .await
        .map_err(|e| JournalError::Undo(format!("{id}: {e}")))?;
    match &journal {
        Journal::Store(o) => {
            entry.status = Status::Undone;
            entry.detail = format!("{} — undone: {done}", entry.detail);
            entry.at_ms = crate::state::model::wall_ms();
            o.record(&entry).map_err(|e| JournalError::Read(e.to_string()))?;
            Ok(done)
        }
        Journal::Running(_) => Ok(format!(
            "{done}\n(the running instance's journal still shows it as done: the store is locked; the Kubernetes Event on the binding records the restore)"
        )),
    }
}

/// Renders the listing.
pub async fn list(what: Listing, q: &JournalQuery) -> Result<String, JournalError> {
    let cfg = config::load_file(&q.config)?;
    let value = match open_journal(&cfg)? {
        Journal::Store(outbox) => outbox
            .listing(what, q.limit)
            .map_err(|e| JournalError::Read(e.to_string()))?,
        Journal::Running(addr) => fetch(addr, what, q.limit).await?,
    };
    if q.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ));
    }
    let parse = |e: serde_json::Error| JournalError::Read(e.to_string());
    Ok(match what {
        Listing::Alerts => {
            alerts_table(&serde_json::from_value::<Vec<Alert>>(value).map_err(parse)?)
        }
        Listing::Actions => {
            actions_table(&serde_json::from_value::<Vec<JournalEntry>>(value).map_err(parse)?)
        }
    })
}

fn time(secs: i64) -> String {
    crate::event::time::format_rfc3339(secs)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One row per alert: when, how bad, how often, which playbook, where, what.
pub fn alerts_table(alerts: &[Alert]) -> String {
    let mut s = format!(
        "{:<20}  {:<10}  {:<9}  {:>6}  {:<32}  {:<12}  {}\n",
        "FIRST SEEN", "KIND", "SEVERITY", "COUNT", "PLAYBOOK", "CLUSTER", "TITLE"
    );
    for a in alerts {
        s.push_str(&format!(
            "{:<20}  {:<10}  {:<9}  {:>6}  {:<32}  {:<12}  {}\n",
            time(a.first_seen),
            a.kind.as_str(),
            format!("{:?}", a.severity).to_lowercase(),
            a.count,
            clip(&a.playbook, 32),
            clip(&a.cluster, 12),
            clip(&a.title, 100)
        ));
    }
    s.push_str(&format!("{} alert(s)\n", alerts.len()));
    s
}

/// One row per journal entry: when, outcome, responder, attempts, which delivery, what happened.
pub fn actions_table(entries: &[JournalEntry]) -> String {
    let mut s = format!(
        "{:<20}  {:<8}  {:<16}  {:>3}  {:<60}  {}\n",
        "AT", "STATUS", "RESPONDER", "TRY", "ID", "DETAIL"
    );
    for j in entries {
        let secs = i64::try_from(j.at_ms / 1000).unwrap_or(0);
        s.push_str(&format!(
            "{:<20}  {:<8}  {:<16}  {:>3}  {:<60}  {}\n",
            time(secs),
            j.status.as_str(),
            clip(&j.responder, 16),
            j.attempts,
            clip(&j.id, 60),
            clip(&j.detail, 120)
        ));
    }
    s.push_str(&format!("{} action(s)\n", entries.len()));
    s
}
