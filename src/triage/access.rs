//! Who may use the console and the triage API: named users, each with a role and a bearer token (`console.users` in the config).

use serde::Deserialize;

use crate::config::{Problem, Seconds, Secret};

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads alerts, suppressions, the tuning report and playbook health.
    Viewer,
    /// Also marks alerts, creates and revokes suppressions, and approves or rejects responses.
    Approver,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
        }
    }
}

/// One person or tool allowed in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    /// The name outcomes, suppressions and approvals are recorded under.
    pub name: String,
    pub role: Role,
    /// The bearer token it signs in with (at least 24 characters); `{ env: NAME }` or `{ file: PATH }`.
    pub token: Secret,
}

/// The web console (`/console` on the telemetry listener) and the triage API (`/api/outcomes`, `/api/suppressions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Who may sign in; the console and the triage API are off while this is empty.
    #[serde(default)]
    pub users: Vec<ConsoleUser>,
    /// How long a console sign-in lasts.
    #[serde(default = "default_session")]
    pub session: Seconds,
}

fn default_session() -> Seconds {
    Seconds::from_secs(12 * 3600)
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            session: default_session(),
        }
    }
}

/// Shortest token accepted.
const MIN_TOKEN: usize = 24;

impl ConsoleConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        let mut names = std::collections::HashSet::new();
        let mut tokens = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("console.users[{i}]");
            if u.name.trim().is_empty() {
                p.push(Problem {
                    path: format!("{at}.name"),
                    message: "must not be empty".into(),
                });
            } else if !names.insert(u.name.as_str()) {
                p.push(Problem {
                    path: format!("{at}.name"),
                    message: format!("{:?} is listed twice", u.name),
                });
            }
            if u.token.expose().chars().count() < MIN_TOKEN {
                p.push(Problem {
                    path: format!("{at}.token"),
                    message: format!(
                        "must be at least {MIN_TOKEN} characters (e.g. `openssl rand -hex 24`)"
                    ),
                });
            } else if !tokens.insert(u.token.expose()) {
                p.push(Problem {
                    path: format!("{at}.token"),
                    message: "is the same as another user's".into(),
                });
            }
        }
        if self.session.get().is_zero() {
            p.push(Problem {
                path: "console.session".into(),
                message: "must be greater than zero".into(),
            });
        }
    }
}

/// A user the request proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// The users and their tokens.
#[derive(Clone)]
pub struct Access {
    users: Vec<ConsoleUser>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Access {
    pub fn new(cfg: &ConsoleConfig) -> Self {
        Self {
            users: cfg.users.clone(),
        }
    }

    /// Nobody may sign in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user whose token this is (compared in constant time, every user tried).
    pub fn by_token(&self, token: &str) -> Option<User> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for u in &self.users {
            let t = u.token.expose().as_bytes();
            if bool::from(t.ct_eq(token.as_bytes())) {
                found = Some(User {
                    name: u.name.clone(),
                    role: u.role,
                });
            }
        }
        found
    }

    /// The user an `Authorization: Bearer …` header names.
    pub fn by_header(&self, headers: &http::HeaderMap) -> Option<User> {
        let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        self.by_token(token.trim())
    }

    /// The token the command line uses to reach a running instance: `RAMPART_TOKEN`, else the
    /// first approver's from the config.
    pub fn cli_token(&self) -> Option<String> {
        std::env::var("RAMPART_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| {
                self.users
                    .iter()
                    .find(|u| u.role == Role::Approver)
                    .map(|u| u.token.expose().to_owned())
            })
    }
}
