//! Slack posts whose answer never arrived (rampart killed, or the call timed out while Slack did post): a repeat finds the message by the alert id in its metadata instead of posting it twice; when Slack does not have it, or answered with an error, the repeat posts it once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_slack, slack_kit};

use std::sync::Arc;

use fake_slack::{Behave, FakeSlack};
use rampart::playbook::Severity;
use rampart::respond::Responder;
use rampart::state::model::{AlertKind, Status};
use rampart::state::MemoryStore;
use slack_kit::*;

/// A responder whose channel id is known (a first alert was posted), over `store`.
async fn warmed_up(
    fake: &FakeSlack,
    store: &Arc<MemoryStore>,
) -> rampart::respond::slack::SlackResponder {
    let r = responder(bot_cfg(fake), store);
    let e = deliver(&r, &delivery(&alert("prod-eu/warm/p", Severity::High, "p"))).await;
    assert_eq!(e.status, Status::Done, "{e:?}");
    r
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_after_a_restart_and_not_posted_again() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let r = warmed_up(&fake, &store).await;
    let a = alert("prod-eu/a-1/p", Severity::High, "p");
    let d = delivery(&a);
    fake.script("chat.postMessage", Behave::Lost);
    let lost = r.deliver(&d, false).await;
    assert!(lost.is_err(), "no answer: retried later ({lost:?})");
    assert_eq!(fake.messages().len(), 2, "Slack did post it");

    // The repeat comes from a new process over the same state (as after kill -9).
    let r = responder(bot_cfg(&fake), &store);
    let e = deliver(&r, &d).await;
    assert_eq!(e.status, Status::Done);
    assert_eq!(e.detail, "found the message already posted to #sec");
    assert_eq!(fake.messages().len(), 2, "not posted twice");
    assert_eq!(fake.to("conversations.history").len(), 1);
    let (ts, _, _) = fake.messages().pop().unwrap();
    assert_eq!(e.undo["slack_messages"][0]["ts"], ts.as_str());

    // It is recorded now: a further repeat neither looks nor posts.
    let e = deliver(&r, &d).await;
    assert_eq!(e.detail, "already posted to #sec");
    assert_eq!(fake.to("conversations.history").len(), 1);
    assert_eq!(fake.to("chat.postMessage").len(), 2);

    // A thread reply whose answer was lost is found among the thread's replies.
    let f = derived(&a, AlertKind::FollowUp, 7);
    fake.script("chat.postMessage", Behave::Lost);
    assert!(r.deliver(&delivery(&f), false).await.is_err());
    let e = deliver(&r, &delivery(&f)).await;
    assert_eq!(
        e.detail, "found the message already posted to CSEC",
        "{e:?}"
    );
    assert_eq!(fake.to("conversations.replies").len(), 1);
    assert_eq!(fake.messages().len(), 3);
}

#[tokio::test]
async fn a_post_that_never_reached_slack_is_looked_up_then_posted_once() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let r = warmed_up(&fake, &store).await;
    let d = delivery(&alert("prod-eu/a-2/p", Severity::High, "p"));
    fake.script("chat.postMessage", Behave::Hang);
    assert!(r.deliver(&d, false).await.is_err());
    let e = deliver(&r, &d).await;
    assert_eq!(e.detail, "posted to #sec");
    assert_eq!(fake.to("conversations.history").len(), 1, "looked first");
    assert_eq!(fake.messages().len(), 2, "posted once");
}

#[tokio::test]
async fn a_post_slack_answered_with_an_error_is_retried_without_a_lookup() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let r = warmed_up(&fake, &store).await;
    let d = delivery(&alert("prod-eu/a-3/p", Severity::High, "p"));
    for b in [Behave::Unavailable, Behave::RateLimit(0)] {
        fake.script("chat.postMessage", b);
        assert!(r.deliver(&d, false).await.is_err());
    }
    let e = deliver(&r, &d).await;
    assert_eq!(e.detail, "posted to #sec");
    assert!(
        fake.to("conversations.history").is_empty(),
        "Slack said no: nothing to look up"
    );
    assert_eq!(fake.messages().len(), 2);
    // Every message carries its alert id for such lookups.
    for (_, _, body) in fake.messages() {
        assert_eq!(body["metadata"]["event_type"], "rampart_alert");
        assert!(body["metadata"]["event_payload"]["alert"]
            .as_str()
            .unwrap()
            .starts_with("prod-eu/"));
    }
}
