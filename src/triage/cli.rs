//! `rampart alerts mark`, `rampart suppressions` and `rampart tune`: the triage from the command line, on the store directly or, while a running rampart holds it, through that instance's triage API with a console user's token.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::access::Access;
use super::api::Desk;
use super::tune::Report;
use super::{NewSuppression, Outcome, Scope, Suppression, Triage, Verdict};
use crate::config::{self, Config};
use crate::state::model::wall_ms;
use crate::state::{SledStore, StateStage};

/// Errors of the triage commands.
#[derive(Debug, thiserror::Error)]
pub enum TriageCliError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Triage(#[from] super::TriageError),
    #[error("{0}")]
    Store(String),
    #[error("the running rampart at {addr} answered: {message}")]
    Api {
        addr: std::net::SocketAddr,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
}

/// The store itself, or the running instance that holds it.
enum Target {
    Local(Box<Desk>),
    Running {
        addr: std::net::SocketAddr,
        token: String,
    },
}

fn open(cfg: &Config) -> Result<Target, TriageCliError> {
    match SledStore::open(&cfg.state.dir.join("store")) {
        Ok(store) => {
            let store: Arc<dyn crate::state::StateStore> = Arc::new(store);
            let settings = cfg.state.settings(Vec::new());
            let triage = Arc::new(
                Triage::open(store.clone(), settings.retention)
                    .map_err(|e| TriageCliError::Store(e.to_string()))?,
            );
            let state = Arc::new(
                StateStage::open(store, settings)
                    .map_err(|e| TriageCliError::Store(e.to_string()))?,
            );
            // The report's allowlist suggestions need the playbooks; without them it still counts.
            let playbooks = cfg
                .playbooks_with_clusters()
                .and_then(|p| crate::playbook::PlaybookHandle::load(&p).ok())
                .map(Arc::new);
            Ok(Target::Local(Box::new(Desk {
                triage,
                state,
                access: Access::new(&cfg.console),
                playbooks,
            })))
        }
        Err(open_err) => {
            let Some(addr) = cfg.telemetry.listen else {
                return Err(TriageCliError::Store(open_err.to_string()));
            };
            let Some(token) = Access::new(&cfg.console).cli_token() else {
                return Err(TriageCliError::Usage(format!(
                    "the store is locked by a running rampart; reaching it at {addr} needs a console user's token: set RAMPART_TOKEN, or add an approver under console.users"
                )));
            };
            Ok(Target::Running { addr, token })
        }
    }
}

/// Calls the running instance's triage API.
async fn call<T: DeserializeOwned>(
    addr: std::net::SocketAddr,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> Result<T, TriageCliError> {
    let url = format!("http://{addr}{path}");
    let client = reqwest::Client::new();
    let req = match &body {
        Some(b) => client.post(&url).json(b),
        None => client.get(&url),
    };
    let api = |message: String| TriageCliError::Api { addr, message };
    let resp = req
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| api(e.without_url().to_string()))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| api(e.without_url().to_string()))?;
    if !status.is_success() {
        let why = v["error"].as_str().unwrap_or("no reason given").to_owned();
        return Err(api(format!("{status}: {why}")));
    }
    serde_json::from_value(v).map_err(|e| api(e.to_string()))
}

/// Who the command line records as the author, when it writes the store itself.
fn local_user(by: Option<&str>) -> String {
    by.map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{u}"))
}

/// `rampart alerts mark ID --fp --note …`
pub async fn mark(
    config_path: &Path,
    id: &str,
    verdict: Verdict,
    note: &str,
    by: Option<&str>,
) -> Result<String, TriageCliError> {
    let cfg = config::load_file(config_path)?;
    let o: Outcome = match open(&cfg)? {
        Target::Local(d) => d.triage.mark(id, verdict, note, &local_user(by))?,
        Target::Running { addr, token } => {
            let body = json!({ "alert": id, "outcome": verdict.as_str(), "note": note });
            call(addr, &token, "/api/outcomes", Some(body)).await?
        }
    };
    Ok(format!(
        "{} marked {} by {}{}",
        o.alert,
        o.verdict.label(),
        o.by,
        if o.note.is_empty() {
            String::new()
        } else {
            format!(": {}", o.note)
        }
    ))
}

/// What `rampart suppressions add` was asked to silence.
#[derive(Debug, Clone, Default)]
pub struct SuppressArgs {
    /// Snooze this alert's dedup group.
    pub alert: Option<String>,
    pub playbook: Option<String>,
    pub principal: Option<String>,
    pub namespace: Option<String>,
    pub network: Option<String>,
    pub reason: String,
    pub duration: std::time::Duration,
    pub by: Option<String>,
}

/// `rampart suppressions add …`
pub async fn suppress(config_path: &Path, a: SuppressArgs) -> Result<String, TriageCliError> {
    let cfg = config::load_file(config_path)?;
    let target = open(&cfg)?;
    let mut playbook = a.playbook.clone();
    let scopes = [
        a.principal.clone().map(|name| Scope::Principal { name }),
        a.namespace.clone().map(|name| Scope::Namespace { name }),
        a.network.clone().map(|cidr| Scope::Network { cidr }),
    ];
    let mut given: Vec<Scope> = scopes.into_iter().flatten().collect();
    if let Some(id) = &a.alert {
        let alert = match &target {
            Target::Local(d) => d.triage.alert(id)?,
            Target::Running { addr, .. } => {
                let all: Vec<crate::state::model::Alert> = {
                    let url = format!("http://{addr}/api/alerts?limit=1000000");
                    reqwest::get(&url)
                        .await
                        .and_then(reqwest::Response::error_for_status)
                        .map_err(|e| TriageCliError::Api {
                            addr: *addr,
                            message: e.without_url().to_string(),
                        })?
                        .json()
                        .await
                        .map_err(|e| TriageCliError::Api {
                            addr: *addr,
                            message: e.to_string(),
                        })?
                };
                all.into_iter()
                    .find(|x| x.id == *id)
                    .ok_or_else(|| super::TriageError::NoAlert(id.clone()))?
            }
        };
        playbook = Some(alert.playbook.clone());
        given.push(Scope::Group {
            cluster: alert.cluster.clone(),
            dedup: alert.dedup.clone(),
        });
    }
    let [scope] = <[Scope; 1]>::try_from(given).map_err(|_| {
        TriageCliError::Usage(
            "name exactly one of --alert (its dedup group), --principal, --namespace or --network"
                .into(),
        )
    })?;
    let n = NewSuppression {
        playbook,
        scope,
        reason: a.reason.clone(),
        for_secs: a.duration.as_secs(),
    };
    let s: Suppression = match target {
        Target::Local(d) => d.triage.suppress(n, &local_user(a.by.as_deref()))?,
        Target::Running { addr, token } => {
            let mut body = serde_json::to_value(&n.scope).unwrap_or_default();
            body["playbook"] = json!(n.playbook);
            body["reason"] = json!(n.reason);
            body["for"] = json!(format!("{}s", n.for_secs));
            call(addr, &token, "/api/suppressions", Some(body)).await?
        }
    };
    Ok(format!(
        "{} suppresses {} for {} until {} ({})",
        s.id,
        s.playbook.as_deref().unwrap_or("every playbook"),
        s.scope.describe(),
        crate::event::time::format_rfc3339(i64::try_from(s.expires_ms / 1000).unwrap_or(0)),
        s.reason
    ))
}

/// `rampart suppressions revoke ID`
pub async fn revoke(
    config_path: &Path,
    id: &str,
    by: Option<&str>,
) -> Result<String, TriageCliError> {
    let cfg = config::load_file(config_path)?;
    let s: Suppression = match open(&cfg)? {
        Target::Local(d) => d.triage.revoke(id, &local_user(by))?,
        Target::Running { addr, token } => {
            call(
                addr,
                &token,
                "/api/suppressions/revoke",
                Some(json!({ "id": id })),
            )
            .await?
        }
    };
    Ok(format!(
        "{} revoked by {}",
        s.id,
        s.revoked_by.as_deref().unwrap_or("?")
    ))
}

/// `rampart suppressions`: every suppression still listed, as a table or JSON.
pub async fn list(config_path: &Path, as_json: bool) -> Result<String, TriageCliError> {
    let cfg = config::load_file(config_path)?;
    let all: Vec<Suppression> = match open(&cfg)? {
        Target::Local(d) => d.triage.suppressions().to_vec(),
        Target::Running { addr, token } => call(addr, &token, "/api/suppressions", None).await?,
    };
    if as_json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        ));
    }
    let now = wall_ms();
    let time = |ms: u64| crate::event::time::format_rfc3339(i64::try_from(ms / 1000).unwrap_or(0));
    let mut s = format!(
        "{:<10}  {:<7}  {:<20}  {:<28}  {:<40}  {:<16}  {}\n",
        "ID", "STATE", "UNTIL", "PLAYBOOK", "SCOPE", "AUTHOR", "REASON"
    );
    for x in &all {
        s.push_str(&format!(
            "{:<10}  {:<7}  {:<20}  {:<28}  {:<40}  {:<16}  {}\n",
            x.id,
            x.state(now),
            time(x.revoked_ms.unwrap_or(x.expires_ms).min(x.expires_ms)),
            x.playbook.as_deref().unwrap_or("*"),
            x.scope.describe(),
            x.author,
            x.reason
        ));
    }
    s.push_str(&format!("{} suppression(s)\n", all.len()));
    Ok(s)
}

/// `rampart tune [--apply LIST=VALUE]`: the report, or the suggestion applied.
pub async fn tune(
    config_path: &Path,
    as_json: bool,
    apply: Option<&str>,
    by: Option<&str>,
) -> Result<String, TriageCliError> {
    let cfg = config::load_file(config_path)?;
    let target = open(&cfg)?;
    if let Some(entry) = apply {
        let Some((list, value)) = entry.split_once('=') else {
            return Err(TriageCliError::Usage(format!(
                "--apply {entry:?}: write LIST=VALUE, as the report shows it"
            )));
        };
        return match target {
            Target::Local(d) => Ok(d.apply(list, value, &local_user(by))?),
            Target::Running { addr, token } => {
                let v: Value = call(
                    addr,
                    &token,
                    "/api/tune/apply",
                    Some(json!({ "list": list, "value": value })),
                )
                .await?;
                Ok(v["result"].as_str().unwrap_or_default().to_owned())
            }
        };
    }
    let report: Report = match target {
        Target::Local(d) => d
            .report()
            .map_err(|e| TriageCliError::Store(e.to_string()))?,
        Target::Running { addr, token } => call(addr, &token, "/api/tune", None).await?,
    };
    if as_json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ));
    }
    Ok(super::tune::render(&report))
}
