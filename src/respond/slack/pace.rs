//! Per-channel pacing: at most one message per interval per channel, and a channel Slack rate-limited stays quiet for its `Retry-After` (tokio time, so paused-time tests can measure it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Channels remembered before old entries are pruned.
const PRUNE_AT: usize = 1024;

/// When each channel may next be written to.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Mutex::default(),
        }
    }

    /// Takes the channel's next slot if it comes within `max_wait`: `Ok(slot)`, else `Err(wait)` and nothing is taken.
    pub fn reserve(&self, channel: &str, max_wait: Duration) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut m = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = m.get(channel).map_or(now, |n| (*n).max(now));
        if slot - now > max_wait {
            return Err(slot - now);
        }
        m.insert(channel.to_owned(), slot + self.interval);
        if m.len() > PRUNE_AT {
            m.retain(|_, t| *t > now);
        }
        Ok(slot)
    }

    /// Waits for the channel's next slot (at most `max_wait`; `Err(wait)` when it is further off).
    pub async fn wait(&self, channel: &str, max_wait: Duration) -> Result<(), Duration> {
        let slot = self.reserve(channel, max_wait)?;
        tokio::time::sleep_until(slot).await;
        Ok(())
    }

    /// Called when a write has been answered: the next one waits a full interval from now, so that
    /// Slack, which counts arrivals, sees them at least an interval apart even when this one arrived late.
    pub fn finished(&self, channel: &str) {
        self.hold(channel, self.interval);
    }

    /// Keeps the channel quiet for `after` (Slack said so).
    pub fn hold(&self, channel: &str, after: Duration) {
        let until = Instant::now() + after;
        let mut m = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(channel.to_owned()).or_insert(until);
        *e = (*e).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_writes_per_channel_and_honours_holds() {
        let p = Pacer::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let max = Duration::from_secs(10);
        let mut at = Vec::new();
        for ch in ["#a", "#a", "#b", "#a"] {
            p.wait(ch, max)
                .await
                .unwrap_or_else(|_| panic!("within max"));
            at.push((ch, (Instant::now() - t0).as_millis()));
        }
        assert_eq!(at, [("#a", 0), ("#a", 1000), ("#b", 1000), ("#a", 2000)]);
        p.hold("#b", Duration::from_secs(30));
        assert_eq!(p.reserve("#b", max), Err(Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(25)).await;
        let before = Instant::now();
        p.wait("#b", max)
            .await
            .unwrap_or_else(|_| panic!("within max"));
        assert_eq!((Instant::now() - before).as_secs(), 5);
    }
}
