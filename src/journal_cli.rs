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
}

/// Renders the listing.
pub async fn list(what: Listing, q: &JournalQuery) -> Result<String, JournalError> {
    let cfg = config::load_file(&q.config)?;
    let path = cfg.state.dir.join("store");
    let value = match SledStore::open(&path) {
        Ok(store) => {
            let outbox = Outbox::open(std::sync::Arc::new(store))
                .map_err(|e| JournalError::Read(e.to_string()))?;
            outbox
                .listing(what, q.limit)
                .map_err(|e| JournalError::Read(e.to_string()))?
        }
        // sled holds an exclusive lock: a running rampart answers over its telemetry listener.
        Err(open_err) => match cfg.telemetry.listen {
            Some(addr) => {
                let route = what.as_str();
                let url = format!("http://{addr}/api/{route}?limit={}", q.limit);
                let fetch = async {
                    reqwest::get(&url)
                        .await?
                        .error_for_status()?
                        .json::<serde_json::Value>()
                        .await
                };
                fetch.await.map_err(|e| {
                    JournalError::Read(format!(
                        "{open_err}; and the running instance at {addr} did not answer: {e}"
                    ))
                })?
            }
            None => return Err(JournalError::Read(open_err.to_string())),
        },
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
