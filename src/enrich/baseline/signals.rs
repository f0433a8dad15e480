//! Recent signals per principal: which behavioural signals it raised in the last two hours of event time, so a playbook can ask for two at once.
//!
//! One unusual fact is often innocent (a trip, a new tool, a late night); a
//! stolen credential tends to raise several within minutes. The last time of
//! each signal is kept per principal, in memory with its profile.

/// How long a signal stays recent, in seconds of event time.
pub const WINDOW: i64 = 2 * 3600;

/// The signals, as `e.baseline.signals` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A country, ASN or public network the principal never used.
    NewNetwork,
    /// A user agent product the principal never used.
    NewAgent,
    /// Active at a local hour (weekday or weekend) at which the principal is usually idle.
    QuietHour,
    VolumeSpike,
    FirstOfPeers,
    /// A secret or RBAC action new for the principal that about two principals or fewer do.
    RareAction,
    /// A secret, RBAC or exec request refused (401 or 403).
    Refused,
    /// A namespace in which no peer did anything within the history window.
    ForeignNamespace,
}

const COUNT: usize = 8;

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::NewNetwork => "new_network",
            Signal::NewAgent => "new_agent",
            Signal::QuietHour => "quiet_hour",
            Signal::VolumeSpike => "volume_spike",
            Signal::FirstOfPeers => "first_of_peers",
            Signal::RareAction => "rare_action",
            Signal::Refused => "refused",
            Signal::ForeignNamespace => "foreign_namespace",
        }
    }

    const EVERY: [Signal; COUNT] = [
        Signal::NewNetwork,
        Signal::NewAgent,
        Signal::QuietHour,
        Signal::VolumeSpike,
        Signal::FirstOfPeers,
        Signal::RareAction,
        Signal::Refused,
        Signal::ForeignNamespace,
    ];
}

/// The last event time of each signal (0: never).
#[derive(Debug, Clone, Copy, Default)]
pub struct Recent([i64; COUNT]);

impl Recent {
    pub fn record(&mut self, s: Signal, time: i64) {
        let t = &mut self.0[s as usize];
        *t = (*t).max(time);
    }

    /// The signals raised within [`WINDOW`] before `now` (or at it), in a fixed order.
    pub fn names(&self, now: i64) -> Vec<String> {
        if self.0.iter().all(|&t| t == 0 || now - t > WINDOW) {
            return Vec::new();
        }
        Signal::EVERY
            .iter()
            .filter(|s| {
                let t = self.0[**s as usize];
                t != 0 && now - t <= WINDOW
            })
            .map(|s| s.name().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_stay_recent_for_two_hours_of_event_time() {
        let mut r = Recent::default();
        assert!(r.names(1000).is_empty());
        r.record(Signal::NewNetwork, 1000);
        r.record(Signal::QuietHour, 1500);
        assert_eq!(r.names(1500), ["new_network", "quiet_hour"]);
        assert_eq!(r.names(1000 + WINDOW + 1), ["quiet_hour"]);
        assert!(r.names(1500 + WINDOW + 1).is_empty());
        r.record(Signal::NewNetwork, 900);
        assert!(
            r.names(1500 + WINDOW + 1).is_empty(),
            "an older time does not go back"
        );
    }
}
