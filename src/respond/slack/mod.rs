//! The Slack responder: every alert as a Block Kit message in its routed channels, follow-ups threaded under it, count updates editing it, per-channel pacing, Slack's rate limits, and Approve / Reject buttons for responses that wait for a human.
//!
//! - [`config`]: `respond.slack` and its validation.
//! - [`route`]: which channels an alert goes to.
//! - [`blocks`]: the message.
//! - [`client`]: HTTP calls and how Slack's answers are sorted.
//! - [`store`]: the `slack_messages` tree (threads, edits and repeats across restarts).
//! - [`reconcile`]: posts sent but never confirmed are looked up before posting again.
//! - [`pace`]: one message per channel per interval.
//! - [`interact`]: the interactivity endpoint for approvals and triage.
//! - [`triage`]: the triage buttons (True positive, Benign, False positive, Snooze 24h).

pub mod blocks;
pub mod client;
pub mod config;
pub mod interact;
pub mod pace;
pub mod reconcile;
pub mod route;
pub mod store;
pub mod triage;

pub use client::ClientError;
pub use config::{ApprovalsConfig, Route, SlackConfig};
pub use interact::{
    router, router_with, Approvals, DecideError, DecideOutcome, Interactions, PayloadError,
};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::state::model::{AlertKind, Delivery, Status};
use crate::state::StateStore;
use blocks::{Message, View};
use client::{Client, Failure};
use route::Routing;
use store::{Messages, Post, Record, Sending};

/// Longest a delivery waits inside one attempt for its channel's turn; beyond, it is retried later.
const MAX_PACE_WAIT: Duration = Duration::from_secs(10);
/// The pacing key of the incoming webhook's one channel.
const WEBHOOK: &str = "webhook";

/// Posts alerts to Slack.
pub struct SlackResponder {
    cfg: SlackConfig,
    client: Arc<Client>,
    messages: Arc<Messages>,
    pacer: pace::Pacer,
}

impl std::fmt::Debug for SlackResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackResponder")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// One thing to do in Slack for a delivery.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A new message; in a thread under `thread_ts` when set.
    Post {
        channel: String,
        thread_ts: Option<String>,
        broadcast: bool,
    },
    /// Edit an earlier message.
    Edit {
        channel: String,
        channel_id: String,
        ts: String,
    },
}

impl Step {
    fn channel(&self) -> &str {
        match self {
            Step::Post { channel, .. } | Step::Edit { channel, .. } => channel,
        }
    }
    fn describe(&self) -> String {
        match self {
            Step::Post {
                channel,
                thread_ts: Some(_),
                ..
            } => format!("reply in a thread in {channel}"),
            Step::Post { channel, .. } => format!("post to {channel}"),
            Step::Edit { channel, .. } => format!("edit the message in {channel}"),
        }
    }
}

fn retry(error: String, after: Option<Duration>) -> Retry {
    Retry { error, after }
}

fn state_err(e: &crate::state::StateError) -> Retry {
    retry(format!("slack_messages unreadable: {e}"), None)
}

/// `respond.slack`, and its approval endpoint (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        let Some(s) = &cx.config.respond.slack else {
            return Ok(());
        };
        let retention =
            i64::try_from(cx.config.state.retention.get().as_secs()).unwrap_or(i64::MAX);
        let moved = store::migrate_legacy(&*cx.store, retention)?;
        if moved > 0 {
            tracing::info!(
                records = moved,
                "Slack message records moved to the responders' shared memory"
            );
        }
        let slack = SlackResponder::new(s.clone(), cx.store.clone())?.with_retention(retention);
        if let Some(i) = slack.interactions() {
            out.approval_ttl = s.approvals.as_ref().map(|a| a.ttl.get());
            // Approve/Reject requests reach the outbox, triage buttons the triage, through the
            // telemetry listener.
            out.routes.push(Box::new(move |cx| {
                tracing::info!(
                    path = i.path(),
                    "serving Slack interactivity (approvals, triage)"
                );
                interact::router_with(cx.state, Some(cx.triage), i)
            }));
        }
        out.responders.push(Arc::new(slack));
        Ok(())
    })
}

impl SlackResponder {
    /// Builds the responder; `store` keeps what it remembers of each alert's messages.
    pub fn new(cfg: SlackConfig, store: Arc<dyn StateStore>) -> Result<Self, ClientError> {
        let client = Arc::new(Client::new(&cfg)?);
        Ok(Self {
            pacer: pace::Pacer::new(cfg.channel_interval.get()),
            cfg,
            client,
            messages: Arc::new(Messages::new(store)),
        })
    }

    /// Keeps message records for `secs` (the state's retention; 30 days by default).
    pub fn with_retention(mut self, secs: i64) -> Self {
        if let Some(m) = Arc::get_mut(&mut self.messages) {
            m.retention = secs;
        }
        self
    }

    /// What the interactivity endpoint needs, when approvals are configured: pass it to [`router`].
    pub fn interactions(&self) -> Option<Interactions> {
        let a = self.cfg.approvals.as_ref()?;
        Some(Interactions::new(
            a,
            self.client.clone(),
            self.messages.clone(),
        ))
    }

    fn view<'a>(&'a self, root_id: &'a str, rec: Option<&'a Record>, d: &'a Delivery) -> View<'a> {
        let responses = match rec {
            // Updates and follow-ups carry no responses: show the first alert's.
            Some(r) if d.alert.kind != AlertKind::Alert => &r.responses[..],
            _ => &d.alert.responses[..],
        };
        View {
            link_template: self.cfg.link_template.as_deref(),
            buttons: self.cfg.approvals.is_some(),
            root_id,
            responses,
            decisions: rec.map(|r| &r.decisions),
            triage: self.cfg.approvals.is_some(),
            triaged: rec.map(|r| &r.triage),
        }
    }

    /// The steps for `d` in bot mode, or the effect when there is nothing to do.
    fn plan(&self, d: &Delivery) -> Result<Result<Vec<Step>, Effect>, Retry> {
        let a = &d.alert;
        let root = a.root();
        let root_rec = self.messages.get(root).map_err(|e| state_err(&e))?;
        let top = |chs: Vec<String>| -> Vec<Step> {
            chs.into_iter()
                .map(|channel| Step::Post {
                    channel,
                    thread_ts: None,
                    broadcast: false,
                })
                .collect()
        };
        let routed = || match route::channels(&self.cfg, a) {
            Routing::Channels(c) => Ok(c),
            Routing::Nowhere(why) => Err(Effect::with_status(
                Status::Skipped,
                format!("not posted: {why}"),
            )),
        };
        let earlier: Vec<&Post> = root_rec
            .iter()
            .flat_map(|r| r.posts.iter())
            .filter(|p| p.ts.is_some() && p.channel_id.is_some())
            .collect();
        Ok(match a.kind {
            AlertKind::Alert => routed().map(top),
            AlertKind::Update if earlier.is_empty() => Err(Effect::done(
                "nothing to edit: the first alert has no Slack message",
            )),
            AlertKind::Update => Ok(earlier
                .into_iter()
                .filter_map(|p| {
                    Some(Step::Edit {
                        channel: p.channel.clone(),
                        channel_id: p.channel_id.clone()?,
                        ts: p.ts.clone()?,
                    })
                })
                .collect()),
            AlertKind::FollowUp if earlier.is_empty() => routed().map(top),
            AlertKind::FollowUp => Ok(earlier
                .into_iter()
                .map(|p| Step::Post {
                    channel: p.channel_id.clone().unwrap_or_else(|| p.channel.clone()),
                    thread_ts: p.ts.clone(),
                    broadcast: false,
                })
                .collect()),
            AlertKind::HighRisk => match routed() {
                Err(e) => Err(e),
                Ok(chs) => {
                    let mut steps = Vec::new();
                    for channel in chs {
                        // Thread under the earliest contributing alert posted in this channel.
                        let mut thread_ts = None;
                        for c in &a.contributions {
                            let rec = self.messages.get(&c.alert).map_err(|e| state_err(&e))?;
                            if let Some(ts) = rec.and_then(|r| r.post(&channel)?.ts.clone()) {
                                thread_ts = Some(ts);
                                break;
                            }
                        }
                        let broadcast = thread_ts.is_some();
                        steps.push(Step::Post {
                            channel,
                            thread_ts,
                            broadcast,
                        });
                    }
                    Ok(steps)
                }
            },
        })
    }

    fn body(&self, step: &Step, m: &Message) -> Value {
        match step {
            Step::Post {
                channel,
                thread_ts,
                broadcast,
            } => {
                let mut b = json!({"channel": channel, "text": m.text, "blocks": m.blocks,
                    "unfurl_links": false, "unfurl_media": false});
                if let Some(ts) = thread_ts {
                    b["thread_ts"] = json!(ts);
                    if *broadcast {
                        b["reply_broadcast"] = json!(true);
                    }
                }
                b
            }
            Step::Edit { channel_id, ts, .. } => {
                json!({"channel": channel_id, "ts": ts, "text": m.text, "blocks": m.blocks})
            }
        }
    }

    async fn deliver_bot(&self, d: &Delivery, dry_run: bool) -> Result<Effect, Retry> {
        let steps = match self.plan(d)? {
            Ok(s) => s,
            Err(effect) => return Ok(effect),
        };
        let a = &d.alert;
        let root = a.root().to_owned();
        let root_rec = self.messages.get(&root).map_err(|e| state_err(&e))?;
        // A repeat of this delivery (crash before the journal): what it already posted.
        let own = self.messages.get(&a.id).map_err(|e| state_err(&e))?;
        let msg = blocks::render(a, &self.view(&root, root_rec.as_ref(), d));
        if dry_run {
            let top: Vec<&str> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Post {
                        channel,
                        thread_ts: None,
                        ..
                    } => Some(channel.as_str()),
                    _ => None,
                })
                .collect();
            let what = if top.len() == steps.len() {
                format!("post to {}", top.join(", "))
            } else {
                steps
                    .iter()
                    .map(Step::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Ok(Effect::with_status(
                Status::DryRun,
                format!("would {what}: {}", a.title),
            ));
        }
        let (mut done, mut failed, mut undo) = (Vec::new(), Vec::new(), Vec::new());
        for step in &steps {
            let ch = step.channel().to_owned();
            let posted_before = matches!(step, Step::Post { .. })
                && a.kind != AlertKind::Update
                && own.as_ref().and_then(|r| r.post(&ch)).is_some();
            if posted_before {
                done.push(format!("already posted to {ch}"));
                continue;
            }
            if let Step::Post { .. } = step {
                let unconfirmed = own.as_ref().and_then(|r| r.sending(&ch));
                if let Some(p) = self.reconcile(d, &ch, unconfirmed).await? {
                    undo.push(json!({"channel": p.channel, "ts": p.ts}));
                    done.push(format!("found the message already posted to {ch}"));
                    continue;
                }
            }
            if let Err(wait) = self.pacer.wait(&ch, MAX_PACE_WAIT).await {
                return Err(retry(format!("{ch} is rate limited"), Some(wait)));
            }
            if let Step::Post { thread_ts, .. } = step {
                // Durable before the call: a repeat after a crash or a timeout knows to look first.
                let sending = Sending {
                    channel: ch.clone(),
                    channel_id: thread_ts
                        .as_ref()
                        .map(|_| ch.clone())
                        .or_else(|| self.messages.channel_id(&ch).ok().flatten()),
                    thread_ts: thread_ts.clone(),
                    at_ms: crate::state::model::wall_ms(),
                };
                self.messages
                    .begin_post(&a.id, &d.id, &a.responses, sending)
                    .map_err(|e| state_err(&e))?;
            }
            let mut body = self.body(step, &msg);
            if matches!(step, Step::Post { .. }) {
                body["metadata"] = reconcile::metadata(&a.id);
            }
            let res = match step {
                Step::Post { .. } => self.client.post_message(&body).await.map(Some),
                Step::Edit { .. } => self.client.update(&body).await.map(|()| None),
            };
            self.pacer.finished(&ch);
            match res {
                Ok(Some(p)) => {
                    undo.push(json!({"channel": p.channel, "ts": p.ts}));
                    let post = Post {
                        channel: ch.clone(),
                        channel_id: Some(p.channel),
                        ts: Some(p.ts),
                    };
                    if let Err(e) = self.messages.add_post(&a.id, &d.id, &a.responses, post) {
                        // Posted but not remembered: a repeat looks it up (the post under way is recorded).
                        tracing::error!(delivery = %d.id, error = %e, "Slack message posted but not recorded");
                    }
                    done.push(match step {
                        Step::Post {
                            thread_ts: Some(_), ..
                        } => format!("replied in a thread in {ch}"),
                        _ => format!("posted to {ch}"),
                    });
                }
                Ok(None) => done.push(format!("edited the message in {ch}")),
                Err(Failure::Retry {
                    error,
                    after,
                    unanswered,
                }) => {
                    if let Some(after) = after {
                        self.pacer.hold(&ch, after);
                    }
                    if !unanswered {
                        // Slack answered with an error (or never got it): not posted, no lookup next time.
                        self.forget_sending(step, &a.id, &ch);
                    }
                    return Err(retry(error, after));
                }
                Err(Failure::Fatal(e)) => {
                    self.forget_sending(step, &a.id, &ch);
                    failed.push(format!("{ch}: {e}"));
                }
            }
        }
        Ok(outcome(done, failed, undo))
    }

    /// For a post sent earlier but never confirmed: the message when Slack already has it (now
    /// recorded), None when it must be posted. Cannot tell: posts anyway, and says so.
    async fn reconcile(
        &self,
        d: &Delivery,
        ch: &str,
        unconfirmed: Option<&Sending>,
    ) -> Result<Option<client::Posted>, Retry> {
        let Some(s) = unconfirmed else {
            return Ok(None);
        };
        let a = &d.alert;
        match reconcile::find(&self.client, &self.messages, &a.id, s).await {
            Ok(reconcile::Outcome::Posted(p)) => {
                tracing::info!(delivery = %d.id, channel = ch, "an unconfirmed post reached Slack; not posting again");
                let post = Post {
                    channel: ch.to_owned(),
                    channel_id: Some(p.channel.clone()),
                    ts: Some(p.ts.clone()),
                };
                self.messages
                    .add_post(&a.id, &d.id, &a.responses, post)
                    .map_err(|e| state_err(&e))?;
                Ok(Some(p))
            }
            Ok(reconcile::Outcome::Absent) => Ok(None),
            Ok(reconcile::Outcome::Unknown(why)) => {
                tracing::warn!(delivery = %d.id, channel = ch, reason = %why, "cannot tell whether an unconfirmed post reached Slack; posting again (it may show twice)");
                Ok(None)
            }
            Err(Failure::Retry { error, after, .. }) => Err(retry(
                format!("looking for an unconfirmed post in {ch}: {error}"),
                after,
            )),
            Err(Failure::Fatal(e)) => Err(retry(e, None)),
        }
    }

    /// Drops the record of a post Slack answered with an error, or that never left (not posted).
    fn forget_sending(&self, step: &Step, alert_id: &str, ch: &str) {
        if matches!(step, Step::Post { .. }) {
            if let Err(e) = self.messages.cancel_post(alert_id, ch) {
                tracing::debug!(error = %e, "could not clear a refused post");
            }
        }
    }

    async fn deliver_webhook(&self, d: &Delivery, dry_run: bool) -> Result<Effect, Retry> {
        let a = &d.alert;
        if a.kind == AlertKind::Update {
            return Ok(Effect::with_status(
                Status::Skipped,
                "incoming webhooks cannot edit messages; the follow-up carries the final count",
            ));
        }
        if !route::severe_enough(&self.cfg, a) && route::requested(a).is_empty() {
            return Ok(Effect::with_status(
                Status::Skipped,
                format!(
                    "not posted: severity below min_severity {:?}",
                    self.cfg.min_severity.unwrap_or_default()
                )
                .to_lowercase(),
            ));
        }
        if dry_run {
            return Ok(Effect::with_status(
                Status::DryRun,
                format!("would post to the incoming webhook's channel: {}", a.title),
            ));
        }
        let own = self.messages.get(&a.id).map_err(|e| state_err(&e))?;
        if own.as_ref().and_then(|r| r.post(WEBHOOK)).is_some() {
            return Ok(Effect::done(
                "already posted to the incoming webhook's channel",
            ));
        }
        let root = a.root().to_owned();
        let msg = blocks::render(a, &self.view(&root, None, d));
        if let Err(wait) = self.pacer.wait(WEBHOOK, MAX_PACE_WAIT).await {
            return Err(retry(
                "the incoming webhook is rate limited".into(),
                Some(wait),
            ));
        }
        let body = json!({"text": msg.text, "blocks": msg.blocks, "unfurl_links": false});
        let res = self.client.webhook(&body).await;
        self.pacer.finished(WEBHOOK);
        match res {
            Ok(()) => {
                let post = Post {
                    channel: WEBHOOK.to_owned(),
                    channel_id: None,
                    ts: None,
                };
                if let Err(e) = self.messages.add_post(&a.id, &d.id, &a.responses, post) {
                    tracing::error!(delivery = %d.id, error = %e, "Slack message posted but not recorded");
                }
                Ok(Effect::done("posted to the incoming webhook's channel"))
            }
            Err(Failure::Retry { error, after, .. }) => {
                if let Some(after) = after {
                    self.pacer.hold(WEBHOOK, after);
                }
                Err(retry(error, after))
            }
            Err(Failure::Fatal(e)) => Ok(Effect::with_status(Status::Failed, e)),
        }
    }
}

fn outcome(done: Vec<String>, failed: Vec<String>, undo: Vec<Value>) -> Effect {
    let mut e = if failed.is_empty() {
        Effect::done(done.join(", "))
    } else if done.is_empty() {
        Effect::with_status(
            Status::Failed,
            format!("Slack refused: {}", failed.join("; ")),
        )
    } else {
        Effect::with_status(
            Status::Failed,
            format!("{}; Slack refused: {}", done.join(", "), failed.join("; ")),
        )
    };
    if !undo.is_empty() {
        e.undo = json!({"slack_messages": undo});
    }
    e
}

/// Deliveries of different alert threads in flight at once.
const SLACK_CONCURRENCY: usize = 4;

impl Responder for SlackResponder {
    fn name(&self) -> &str {
        "slack"
    }

    fn takes_every_alert(&self) -> bool {
        true
    }

    fn concurrency(&self) -> usize {
        // Alerts of different threads post side by side (one thread's messages stay in order):
        // one alert's post no longer waits behind the durable writes and round trips of every
        // alert before it. The pacer still holds each channel to one message per interval.
        SLACK_CONCURRENCY
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            if self.cfg.bot_mode() {
                self.deliver_bot(d, dry_run).await
            } else {
                self.deliver_webhook(d, dry_run).await
            }
        })
    }
}
