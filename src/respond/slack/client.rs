//! Calls to Slack — `chat.postMessage`, `chat.update`, incoming webhooks, `response_url` — and Slack's answers sorted into success, retry later (429, 5xx, timeouts, `ratelimited`) and permanent failure; no URL or token ever reaches an error text.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use super::config::SlackConfig;
use crate::config::Secret;

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again, after `after` when Slack said.
    Retry {
        error: String,
        after: Option<Duration>,
        /// Sent, but no usable answer came back (a timeout, a dropped connection): Slack may have
        /// acted on it. False when Slack answered with an error or the request never left.
        unanswered: bool,
    },
    /// Will not succeed as it is (bad channel, token, payload).
    Fatal(String),
}

/// A message Slack accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The channel id (chat.update needs the id, not the name).
    pub channel: String,
    pub ts: String,
}

/// Pages of 200 messages a lookup of an unconfirmed post reads before giving up.
pub const LOOKUP_PAGES: usize = 10;

/// Slack over HTTPS with the configured credentials.
pub struct Client {
    http: reqwest::Client,
    api_url: String,
    token: Option<Secret>,
    webhook: Option<Secret>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("slack::Client")
            .field("api_url", &self.api_url)
            .field("token", &self.token)
            .field("webhook", &self.webhook)
            .finish()
    }
}

/// Only a Slack error code (`channel_not_found`) is repeated, never free text.
fn code(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .then_some(s)
}

/// What to tell a human about a Web API error code.
fn hint(error: &str) -> &'static str {
    match error {
        "channel_not_found" => " (no such channel, or a private channel the app is not in)",
        "not_in_channel" => " (invite the app to the channel: /invite @app)",
        "is_archived" | "channel_is_archived" => " (the channel is archived)",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            " (check respond.slack.bot_token)"
        }
        "missing_scope" => " (the app needs the chat:write scope)",
        "msg_too_long" | "invalid_blocks" | "invalid_blocks_format" | "too_many_attachments" => {
            " (Slack refused the message's shape)"
        }
        "message_not_found" | "cant_update_message" | "edit_window_closed" => {
            " (the original message can no longer be edited)"
        }
        _ => "",
    }
}

/// Web API errors that go away by themselves.
fn transient(error: &str) -> bool {
    matches!(
        error,
        "ratelimited"
            | "rate_limited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout"
            | "team_added_to_org"
    )
}

/// Why the Slack client cannot be built (at start-up; the run does not begin).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("respond.slack.ca_file: cannot read {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("respond.slack.ca_file: {}: {message}", path.display())]
    CaInvalid {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot build the Slack HTTP client: {0}")]
    Http(String),
}

impl Client {
    /// A client trusting the built-in roots plus `ca_file`, with the configured timeout.
    pub fn new(cfg: &SlackConfig) -> Result<Self, ClientError> {
        let timeout = cfg.timeout.get();
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|source| ClientError::CaRead {
                path: ca.clone(),
                source,
            })?;
            let invalid = |message: String| ClientError::CaInvalid {
                path: ca.clone(),
                message,
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid(e.without_url().to_string()))?;
            if certs.is_empty() {
                return Err(invalid("no certificate found".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Http(e.without_url().to_string()))?;
        Ok(Self {
            http,
            api_url: cfg.api_url.trim_end_matches('/').to_owned(),
            token: cfg.bot_token.clone(),
            webhook: cfg.webhook_url.clone(),
            timeout,
        })
    }

    fn transport(&self, what: &str, e: reqwest::Error) -> Failure {
        // A connection that never opened carried nothing; anything later may have reached Slack.
        let connect = e.is_connect();
        let error = if e.is_timeout() {
            format!("{what}: no answer within {:?}", self.timeout)
        } else {
            // The URL may be the webhook (a credential) or a response_url: never shown.
            let e = e.without_url();
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            format!("{what}: {msg}")
        };
        Failure::Retry {
            error,
            after: None,
            unanswered: !connect,
        }
    }

    /// Sorts a non-2xx HTTP status; 2xx is `None`.
    fn status(what: &str, status: StatusCode, h: &HeaderMap, body: &str) -> Option<Failure> {
        if status.is_success() {
            return None;
        }
        let detail = code(body).map(|c| format!(" {c}")).unwrap_or_default();
        Some(if status == StatusCode::TOO_MANY_REQUESTS {
            Failure::Retry {
                error: format!("{what}: rate limited (HTTP 429)"),
                after: Some(crate::respond::retry_after(h).unwrap_or(Duration::from_secs(1))),
                unanswered: false,
            }
        } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            Failure::Retry {
                error: format!("{what}: HTTP {}{detail}", status.as_u16()),
                after: crate::respond::retry_after(h),
                unanswered: false,
            }
        } else {
            Failure::Fatal(format!(
                "{what}: HTTP {}{detail}{}",
                status.as_u16(),
                hint(detail.trim())
            ))
        })
    }

    /// One Web API method (JSON body); the parsed answer when `ok` is true.
    async fn api(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        let token = self.token(method)?;
        let resp = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(method, e))?;
        self.answer(method, resp).await
    }

    /// One read method (query parameters); the parsed answer when `ok` is true.
    async fn api_get(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        let token = self.token(method)?;
        let resp = self
            .http
            .get(format!("{}/{method}", self.api_url))
            .bearer_auth(token.expose())
            .query(query)
            .send()
            .await
            .map_err(|e| self.transport(method, e))?;
        self.answer(method, resp).await
    }

    fn token(&self, method: &str) -> Result<&Secret, Failure> {
        self.token
            .as_ref()
            .ok_or_else(|| Failure::Fatal(format!("{method} needs respond.slack.bot_token")))
    }

    async fn answer(&self, method: &str, resp: reqwest::Response) -> Result<Value, Failure> {
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.map_err(|e| self.transport(method, e))?;
        if let Some(f) = Self::status(method, status, &headers, &text) {
            return Err(f);
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| Failure::Retry {
            error: format!("{method}: the answer is not JSON"),
            after: None,
            // A success status with a body that does not parse: it may have been done.
            unanswered: true,
        })?;
        if v["ok"].as_bool() == Some(true) {
            return Ok(v);
        }
        let error = v["error"]
            .as_str()
            .and_then(code)
            .unwrap_or("unknown_error");
        if transient(error) {
            return Err(Failure::Retry {
                error: format!("{method}: {error}"),
                after: crate::respond::retry_after(&headers).or(if error.contains("rate") {
                    Some(Duration::from_secs(1))
                } else {
                    None
                }),
                unanswered: false,
            });
        }
        Err(Failure::Fatal(format!("{method}: {error}{}", hint(error))))
    }

    /// The message carrying `metadata` `{event_type, event_payload: {alert: alert_id}}` posted to
    /// `channel_id` (in the thread `thread_ts`, when given) at `oldest_s` or later, if Slack has it:
    /// `conversations.history` (or `.replies`) with metadata, up to [`LOOKUP_PAGES`] pages.
    pub async fn find_message(
        &self,
        channel_id: &str,
        thread_ts: Option<&str>,
        oldest_s: u64,
        event_type: &str,
        alert_id: &str,
    ) -> Result<Option<Posted>, Failure> {
        let method = if thread_ts.is_some() {
            "conversations.replies"
        } else {
            "conversations.history"
        };
        let oldest = format!("{oldest_s}.000000");
        let mut cursor = String::new();
        for _ in 0..LOOKUP_PAGES {
            let mut q = vec![
                ("channel", channel_id),
                ("oldest", oldest.as_str()),
                ("inclusive", "true"),
                ("include_all_metadata", "true"),
                ("limit", "200"),
            ];
            if let Some(ts) = thread_ts {
                q.push(("ts", ts));
            }
            if !cursor.is_empty() {
                q.push(("cursor", cursor.as_str()));
            }
            let v = self.api_get(method, &q).await?;
            let found = v["messages"].as_array().into_iter().flatten().find(|m| {
                m["metadata"]["event_type"] == event_type
                    && m["metadata"]["event_payload"]["alert"] == alert_id
            });
            if let Some(ts) = found.and_then(|m| m["ts"].as_str()) {
                return Ok(Some(Posted {
                    channel: channel_id.to_owned(),
                    ts: ts.to_owned(),
                }));
            }
            cursor = v["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() || v["has_more"].as_bool() == Some(false) {
                return Ok(None);
            }
        }
        Err(Failure::Fatal(format!(
            "{method}: more than {} messages since the post began",
            LOOKUP_PAGES * 200
        )))
    }

    /// `chat.postMessage`.
    pub async fn post_message(&self, body: &Value) -> Result<Posted, Failure> {
        let v = self.api("chat.postMessage", body).await?;
        match (v["channel"].as_str(), v["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(Posted {
                channel: channel.to_owned(),
                ts: ts.to_owned(),
            }),
            _ => Err(Failure::Fatal(
                "chat.postMessage: the answer names no channel and ts".into(),
            )),
        }
    }

    /// `chat.update`.
    pub async fn update(&self, body: &Value) -> Result<(), Failure> {
        self.api("chat.update", body).await.map(drop)
    }

    /// Posts to the incoming webhook.
    pub async fn webhook(&self, body: &Value) -> Result<(), Failure> {
        let Some(url) = &self.webhook else {
            return Err(Failure::Fatal(
                "no respond.slack.webhook_url is configured".into(),
            ));
        };
        self.post_plain("incoming webhook", url.expose(), body)
            .await
    }

    /// Answers an interaction through its `response_url` (https only).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), Failure> {
        if !response_url.starts_with("https://") {
            return Err(Failure::Fatal("response_url is not an https URL".into()));
        }
        self.post_plain("response_url", response_url, body).await
    }

    async fn post_plain(&self, what: &str, url: &str, body: &Value) -> Result<(), Failure> {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(what, e))?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap_or_default();
        match Self::status(what, status, &headers, &text) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_error_codes_are_repeated() {
        assert_eq!(code("channel_not_found"), Some("channel_not_found"));
        assert_eq!(
            code("<html>https://hooks.slack.com/services/T/B/X</html>"),
            None
        );
        let f = Client::status(
            "incoming webhook",
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            "channel_not_found",
        );
        assert_eq!(
            f,
            Some(Failure::Fatal(
                "incoming webhook: HTTP 404 channel_not_found (no such channel, or a private channel the app is not in)".into()
            ))
        );
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            "7".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            Client::status("x", StatusCode::TOO_MANY_REQUESTS, &h, ""),
            Some(Failure::Retry {
                error: "x: rate limited (HTTP 429)".into(),
                after: Some(Duration::from_secs(7)),
                unanswered: false,
            })
        );
    }
}
