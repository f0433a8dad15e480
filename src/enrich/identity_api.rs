//! Optional lookup of principals the directory does not know, through an HTTP identity API, with a TTL cache and a hard timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::identity::Person;
use crate::config::Secret;

/// Looks principals up at `url` (with `{user}` replaced by the URL-encoded name).
///
/// `200` with a JSON [`Person`] is a hit, `404` a known miss; anything else,
/// including no answer within `timeout`, counts as a miss for `negative_ttl`,
/// so a slow or failing directory costs each principal at most one timeout.
#[derive(Debug)]
pub struct IdentityApi {
    client: reqwest::Client,
    url: String,
    token: Option<Secret>,
    timeout: Duration,
    ttl: Duration,
    negative_ttl: Duration,
    max_entries: usize,
    cache: Mutex<HashMap<String, (Instant, Option<Person>)>>,
}

impl IdentityApi {
    pub fn new(
        url: String,
        token: Option<Secret>,
        timeout: Duration,
        ttl: Duration,
        negative_ttl: Duration,
    ) -> Self {
        Self {
            client: reqwest::Client::new(),
            url,
            token,
            timeout,
            ttl,
            negative_ttl,
            max_entries: 100_000,
            cache: Mutex::default(),
        }
    }

    fn cached(&self, user: &str) -> Option<Option<Person>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(user)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, p)| p.clone())
    }

    /// The directory entry for `user`, from the cache or the API.
    pub async fn lookup(&self, user: &str) -> Option<Person> {
        if let Some(hit) = self.cached(user) {
            return hit;
        }
        let url = self.url.replace("{user}", &encode(user));
        let mut req = self.client.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let answer = tokio::time::timeout(self.timeout, async {
            let resp = req.send().await.ok()?;
            match resp.status().as_u16() {
                200 => resp.json::<Person>().await.ok().map(Some),
                404 => Some(None),
                _ => None,
            }
        })
        .await;
        let (person, ttl) = match answer {
            Ok(Some(found)) => {
                let ttl = if found.is_some() {
                    self.ttl
                } else {
                    self.negative_ttl
                };
                (found, ttl)
            }
            Ok(None) => (None, self.negative_ttl),
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "identity API did not answer in time");
                (None, self.negative_ttl)
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.max_entries {
            let now = Instant::now();
            cache.retain(|_, (exp, _)| *exp > now);
            if cache.len() >= self.max_entries {
                cache.clear();
            }
        }
        cache.insert(user.to_owned(), (Instant::now() + ttl, person.clone()));
        person
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_user_names_for_the_path() {
        assert_eq!(encode("alice@example.com"), "alice%40example.com");
        assert_eq!(
            encode("system:serviceaccount:a:b"),
            "system%3Aserviceaccount%3Aa%3Ab"
        );
    }
}
