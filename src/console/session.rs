//! Console sign-ins: random session ids kept in memory until they expire, each with its own CSRF token; the cookie, and the same-origin check on every POST.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use super::ConsoleError;
use crate::triage::access::User;

/// The session cookie's name.
pub const COOKIE: &str = "rampart_console";
/// Most sessions kept at once; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token every state-changing form carries back.
    pub csrf: String,
    expires: Instant,
}

/// The sessions, in memory (a restart signs everyone out).
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
    rng: SystemRandom,
}

/// 32 random bytes, hex.
fn random_hex(rng: &SystemRandom) -> Result<String, ConsoleError> {
    let mut b = [0u8; 32];
    rng.fill(&mut b).map_err(|_| ConsoleError::Random)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Sessions {
    /// Sessions that last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs `user` in: the new session's id (for the cookie).
    pub fn create(&self, user: User) -> Result<String, ConsoleError> {
        let id = random_hex(&self.rng)?;
        let csrf = random_hex(&self.rng)?;
        let now = Instant::now();
        let mut m = self.lock();
        m.retain(|_, s| s.expires > now);
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            id.clone(),
            Session {
                user,
                csrf,
                expires: now + self.ttl,
            },
        );
        Ok(id)
    }

    /// The live session `id` names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut m = self.lock();
        match m.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    /// Signs the session out.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The session the request's cookie names, with its id.
    pub fn from_headers(&self, h: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(h, COOKIE)?;
        self.get(&id).map(|s| (id, s))
    }

    /// The `Set-Cookie` value that signs a browser in.
    pub fn set_cookie(&self, id: &str) -> String {
        format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}",
            self.ttl.as_secs()
        )
    }
}

/// The `Set-Cookie` value that signs a browser out.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// True when the form's token is the session's (compared in constant time).
pub fn csrf_ok(session: &Session, sent: Option<&str>) -> bool {
    let Some(sent) = sent else { return false };
    bool::from(session.csrf.as_bytes().ct_eq(sent.as_bytes()))
}

/// The `host[:port]` of an absolute URL (`http://host:port/path`).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// True unless the request says it comes from another site: its `Origin` (or, without one, its
/// `Referer`) must name the host it was sent to. A request with neither passes (the CSRF token
/// still has to match).
pub fn same_origin(h: &HeaderMap) -> bool {
    let host = h
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase());
    let from = h
        .get(http::header::ORIGIN)
        .or_else(|| h.get(http::header::REFERER));
    let Some(from) = from else { return true };
    let (Some(host), Ok(from)) = (host, from.to_str()) else {
        return false;
    };
    authority(from.trim()).is_some_and(|a| a.eq_ignore_ascii_case(&host))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::triage::access::Role;

    fn alice() -> User {
        User {
            name: "alice".into(),
            role: Role::Approver,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn sessions_are_random_and_found_by_their_cookie() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.create(alice()).unwrap();
        let b = s.create(alice()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let h = headers(&[("cookie", &format!("other=1; {COOKIE}={a}; x=y"))]);
        let (id, found) = s.from_headers(&h).unwrap();
        assert_eq!(id, a);
        assert_eq!(found.user, alice());
        assert_ne!(
            found.csrf,
            s.get(&b).unwrap().csrf,
            "a CSRF token per session"
        );
        s.remove(&a);
        assert!(s.from_headers(&h).is_none());
        assert!(s.get("not-a-session").is_none());
    }

    #[test]
    fn sessions_expire() {
        let s = Sessions::new(Duration::from_millis(1));
        let a = s.create(alice()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.get(&a).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let s = Sessions::new(Duration::from_secs(3600));
        let c = s.set_cookie("abc");
        assert!(c.contains("HttpOnly"));
        assert!(c.contains("SameSite=Strict"));
        assert!(c.contains("Path=/console"));
        assert!(c.contains("Max-Age=3600"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let s = Sessions::new(Duration::from_secs(60));
        let sess = s.get(&s.create(alice()).unwrap()).unwrap();
        assert!(csrf_ok(&sess, Some(&sess.csrf.clone())));
        assert!(!csrf_ok(&sess, None));
        assert!(!csrf_ok(&sess, Some("")));
        assert!(!csrf_ok(&sess, Some(&sess.csrf[..63])));
        assert!(!csrf_ok(&sess, Some(&format!("{}0", sess.csrf))));
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let host = ("host", "127.0.0.1:9000");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9000")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:9000/console/alerts?x=1")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9000.evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("referer", "http://evil.example/console")
        ])));
        // Origin wins over Referer.
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example"),
            ("referer", "http://127.0.0.1:9000/console")
        ])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example")])));
    }
}
