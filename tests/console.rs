//! The web console as on-call uses it, in a real headless Chromium driven over WebDriver: sign in, filter the alerts, open one, mark it false positive, snooze its group, approve a waiting response; and what it refuses: unauthenticated requests, cross-site and token-less POSTs, a viewer's writes, markup in attacker-controlled fields.
//!
//! Needs `chromium` and `chromium-driver` (scripts/deps.sh installs them). With
//! `RAMPART_CONSOLE_SCREENSHOTS=1` it saves the main pages as PNG to docs/console/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;
use support::webdriver::Browser;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::state::model::Status;
use serde_json::{json, Value};

const APPROVER: &str = "approver-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef00";
const EVIL_USER: &str = "<script>document.title='pwned'</script>@evil";
const EXEC: (&str, &str, Option<&str>) = ("create", "pods", Some("exec"));
const SECRET: (&str, &str, Option<&str>) = ("get", "secrets", None);

fn now_rfc3339(offset: i64) -> String {
    let secs = (rampart::state::model::wall_ms() / 1000) as i64 + offset;
    rampart::event::time::format_rfc3339(secs)
}

fn event(
    id: &str,
    user: &str,
    ip: &str,
    (verb, resource, sub): (&str, &str, Option<&str>),
    ns: &str,
) -> Value {
    let t = now_rfc3339(0);
    let mut obj =
        json!({"resource": resource, "namespace": ns, "name": "web-0", "apiVersion": "v1"});
    if let Some(s) = sub {
        obj["subresource"] = s.into();
    }
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": "ResponseComplete", "verb": verb,
        "requestURI": format!("/api/v1/namespaces/{ns}/{resource}/web-0"),
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [ip], "userAgent": "kubectl/v1.34.0",
        "objectRef": obj,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": t, "stageTimestamp": t,
    })
}

/// A local HTTP endpoint for the `soar` webhook: counts what it receives.
async fn soar() -> (String, Arc<Mutex<u32>>) {
    let got = Arc::new(Mutex::new(0u32));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let g = g.clone();
            async move {
                *g.lock().unwrap() += 1;
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// A client that keeps no cookies and follows no redirects.
/// A console page's HTML, fetched with the session cookie.
async fn console_page(base: &str, path: &str, cookie: &str) -> String {
    plain()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn api(base: &str, path: &str) -> Value {
    plain()
        .get(format!("{base}{path}"))
        .bearer_auth(APPROVER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Signs in with `token` over plain HTTP: the session cookie and the page's CSRF token.
async fn sign_in(base: &str, token: &str) -> (String, String) {
    let r = plain()
        .post(format!("{base}/console/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = console_page(base, "/console/suppressions", &cookie).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_triages_in_the_console_and_forgeries_change_nothing() {
    let browser = Browser::start().await;
    let (hook, hook_calls) = soar().await;
    let s = common::Scratch::new();
    let playbooks = s.path("playbooks");
    std::fs::create_dir_all(playbooks.join("lists")).unwrap();
    std::fs::write(
        playbooks.join("exec.rhai"),
        r#"fn meta() { #{ id: "exec-into-pod", title: "exec into a pod", severity: "high",
    on: #{ verbs: ["create"], resources: ["pods"] } } }
fn rule(e) { true }
fn respond(e) { [with_approval(webhook("soar"))] }
"#,
    )
    .unwrap();
    std::fs::write(
        playbooks.join("secrets.rhai"),
        r#"fn meta() { #{ id: "secret-read", title: "secret read by a person", severity: "medium",
    on: #{ verbs: ["get"], resources: ["secrets"], where: #{ user: #{ not_in_lists: ["secret_readers"] } } } } }
fn rule(e) { true }
"#,
    )
    .unwrap();
    std::fs::write(
        playbooks.join("flaky.rhai"),
        r#"fn meta() { #{ id: "flaky", title: "throws on every config map list", severity: "low",
    on: #{ verbs: ["list"], resources: ["configmaps"] } } }
fn rule(e) { throw "flaky by design"; }
"#,
    )
    .unwrap();
    std::fs::write(
        playbooks.join("lists/secret_readers.yaml"),
        "- vault@example.com\n",
    )
    .unwrap();
    let rest = format!(
        "playbooks:\n  dir: {}\n  reload_interval: 100ms\ntelemetry:\n  listen: 127.0.0.1:0\nrespond:\n  webhooks:\n    - name: soar\n      url: {hook}\nconsole:\n  session: 1h\n  users:\n    - {{ name: alice, role: approver, token: {APPROVER} }}\n    - {{ name: victor, role: viewer, token: {VIEWER} }}\n",
        playbooks.display()
    );
    let (running, url, shutdown) = common::start_webhook(&s, "", &rest).await;
    // A failing assertion stops the pipeline too (its listener would keep the runtime alive).
    let _stop = shutdown.clone().drop_guard();
    let items = vec![
        event(
            "ev-exec",
            "alice@example.com",
            "203.0.113.7",
            EXEC,
            "payments",
        ),
        event(
            "ev-secret",
            "bob@example.com",
            "198.51.100.9",
            SECRET,
            "payments",
        ),
        event("ev-evil", EVIL_USER, "192.0.2.66", SECRET, "default"),
        event(
            "ev-flaky",
            "dave@example.com",
            "198.51.100.30",
            ("list", "configmaps", None),
            "default",
        ),
    ];
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    let r = reqwest::Client::new()
        .post(&url)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let st = running.state.clone();
    common::eventually("three alerts", Duration::from_secs(20), || {
        (st.alerts().unwrap().len() >= 3).then_some(())
    })
    .await;
    let exec_alert = "default/ev-exec/exec-into-pod";
    let parked = common::eventually("a response waiting", Duration::from_secs(20), || {
        st.outbox()
            .parked()
            .unwrap()
            .into_iter()
            .find(|p| p.delivery.alert.id == exec_alert)
    })
    .await;
    let delivery = parked.delivery.id.clone();
    let base = format!("http://{}", running.telemetry_addr.unwrap());

    // Unauthenticated: pages redirect to the sign-in, writes are refused, nothing changes.
    let r = plain()
        .get(format!("{base}/console/alerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    let r = plain()
        .post(format!("{base}/console/mark"))
        .form(&[("alert", exec_alert), ("outcome", "benign")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A wrong token signs no one in, and is not echoed.
    let r = plain()
        .post(format!("{base}/console/login"))
        .form(&[("token", "guessed-token-guessed-token-000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(!r.text().await.unwrap().contains("guessed-token"));

    // Sign in in the browser.
    browser.go(&format!("{base}/console/alerts")).await;
    assert!(browser.url().await.ends_with("/console/login"));
    browser.type_into("#token", APPROVER).await;
    browser.click("#signin").await;
    browser.wait_text("3 of 3 alerts").await;
    assert!(browser.url().await.ends_with("/console/alerts"));

    // Markup in a username is text, not markup: no script element, the title untouched.
    let src = browser.source().await;
    assert!(!src.contains("<script>"), "raw markup in the page");
    assert!(
        src.contains("&lt;script&gt;"),
        "the username is shown, escaped"
    );
    assert_eq!(browser.js("return document.scripts.length").await, 0);
    assert_eq!(
        browser.js("return document.title").await,
        "Alerts · rampart"
    );

    // Filter: high and above, by principal.
    browser
        .click("select[name=severity] option[value=high]")
        .await;
    browser.type_into("input[name=principal]", "alice").await;
    browser.click("#apply-filters").await;
    let t = browser.wait_text("1 of 3 alerts").await;
    assert!(t.contains("exec into a pod"), "{t}");
    assert!(browser.url().await.contains("principal=alice"));
    // Unmarked filter sees all three before any mark.
    browser
        .go(&format!("{base}/console/alerts?outcome=unmarked&range=1h"))
        .await;
    browser.wait_text("3 of 3 alerts").await;

    // Open the alert, mark it false positive.
    browser
        .go(&format!("{base}/console/alerts?principal=alice"))
        .await;
    browser.click("#alerts a[href*='ev-exec']").await;
    let t = browser.wait_text("Enrichment").await;
    assert!(
        t.contains("exec into a pod") && t.contains("payments"),
        "{t}"
    );
    browser.screenshot("alert").await;
    browser
        .click("#mark select[name=outcome] option[value=false_positive]")
        .await;
    browser
        .type_into("#mark input[name=note]", "ops drill")
        .await;
    browser.click("#mark button").await;
    browser.wait_text("marked false positive by alice").await;
    let outcomes = api(&base, "/api/outcomes").await;
    let o = outcomes
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["alert"] == exec_alert)
        .unwrap_or_else(|| panic!("{outcomes}"));
    assert_eq!(o["verdict"], "false_positive");
    assert_eq!(o["by"], "alice");
    assert_eq!(o["note"], "ops drill");

    // Snooze its group for 24h.
    browser.click("#snooze button").await;
    browser.wait_text("snoozed for exec-into-pod").await;
    let sups = api(&base, "/api/suppressions").await;
    let snooze = sups
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scope"] == "group")
        .unwrap_or_else(|| panic!("{sups}"))
        .clone();
    assert_eq!(snooze["playbook"], "exec-into-pod");
    assert_eq!(snooze["author"], "alice");
    assert_eq!(snooze["state"], "active");
    let day = snooze["expires_ms"].as_u64().unwrap() - snooze["created_ms"].as_u64().unwrap();
    assert_eq!(day, 86_400_000);

    // Approve the waiting response: it runs, once.
    browser.go(&format!("{base}/console/approvals")).await;
    browser.wait_text(&delivery).await;
    browser.screenshot("approvals").await;
    browser
        .click(&format!(
            "tr[data-delivery='{delivery}'] input[value=approve] ~ button"
        ))
        .await;
    browser.wait_text("approved by alice; it runs now").await;
    let done = common::eventually("the approved response ran", Duration::from_secs(20), || {
        st.outbox()
            .journal(&delivery)
            .unwrap()
            .filter(|j| j.status == Status::Done)
    })
    .await;
    assert_eq!(done.responder, "webhook");
    assert_eq!(
        st.outbox().decision(&delivery).unwrap().unwrap().by,
        "alice"
    );
    assert!(st.outbox().parked().unwrap().is_empty());
    assert_eq!(*hook_calls.lock().unwrap(), 1);
    browser.go(&format!("{base}/console/approvals")).await;
    let t = browser.wait_text("No response is waiting").await;
    assert!(t.contains("approved") && t.contains("alice"), "{t}");

    // The other pages.
    browser.go(&format!("{base}/console/suppressions")).await;
    browser.wait_text("group").await;
    browser
        .click("#new-suppression select[name=scope] option[value=namespace]")
        .await;
    browser
        .type_into("#new-suppression input[name=value]", "payments")
        .await;
    browser
        .type_into("#new-suppression input[name=reason]", "load test this week")
        .await;
    browser.click("#new-suppression button").await;
    browser
        .wait_text("namespace payments suppressed for every playbook")
        .await;
    let sups = api(&base, "/api/suppressions").await;
    assert!(
        sups.as_array()
            .unwrap()
            .iter()
            .any(|x| x["scope"] == "namespace"
                && x["name"] == "payments"
                && x["reason"] == "load test this week"),
        "{sups}"
    );
    browser.screenshot("suppressions").await;
    // An alert the namespace suppression silences is stored, badged, and sent nowhere.
    let late = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
        "items": [event("ev-late", "carol@example.com", "198.51.100.20", SECRET, "payments")]});
    let r = reqwest::Client::new()
        .post(&url)
        .json(&late)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let late_alert = common::eventually("the silenced alert", Duration::from_secs(20), || {
        st.alerts()
            .unwrap()
            .into_iter()
            .find(|a| a.id == "default/ev-late/secret-read")
    })
    .await;
    assert!(late_alert.suppressed.is_some());
    browser
        .go(&format!("{base}/console/alerts?principal=carol"))
        .await;
    let t = browser.wait_text("1 of 4 alerts").await;
    assert!(t.contains("suppressed"), "{t}");
    // Mark the secret read false positive, so the tuning page suggests an allowlist entry.
    let r = plain()
        .post(format!("{base}/api/outcomes"))
        .bearer_auth(APPROVER)
        .json(&json!({"alert": "default/ev-secret/secret-read", "outcome": "fp", "note": "bob rotates secrets"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    browser.go(&format!("{base}/console/tuning")).await;
    browser.wait_text("bob@example.com").await;
    browser.screenshot("tuning").await;
    browser
        .click("#suggestions tr[data-key=\"secret_readers=bob@example.com\"] button")
        .await;
    browser.wait_text("added \"bob@example.com\"").await;
    let list = std::fs::read_to_string(playbooks.join("lists/secret_readers.yaml")).unwrap();
    assert!(list.contains("bob@example.com"), "{list}");
    // A broken edit is refused; the health page says why while the previous set keeps running.
    std::fs::write(
        playbooks.join("broken.rhai"),
        "fn meta() { #{ id: \"broken\", title: \"half written\" \n",
    )
    .unwrap();
    let handle = running.playbooks.clone().unwrap();
    common::eventually("the broken edit refused", Duration::from_secs(20), || {
        handle.rejected()
    })
    .await;
    browser.go(&format!("{base}/console/health")).await;
    let t = browser.wait_text("Playbooks loaded").await;
    assert!(
        t.contains("was refused") && t.contains("broken.rhai"),
        "{t}"
    );
    assert!(t.contains("Playbooks loaded: 3"), "{t}");
    assert!(
        rampart::internal_events::playbook_faults()
            .get("flaky")
            .is_some_and(|n| *n >= 1),
        "the fault was counted"
    );
    let row = browser
        .js("return [...document.querySelectorAll('#playbooks tr')].find(r => r.innerText.includes('flaky')).querySelector('strong').innerText")
        .await;
    assert!(
        row.as_str().is_some_and(|n| n.parse::<u64>().unwrap() >= 1),
        "{row}"
    );
    assert!(
        t.contains("exec-into-pod") && t.contains("secret-read"),
        "{t}"
    );
    browser.screenshot("health").await;
    browser.go(&format!("{base}/console/alerts")).await;
    let t = browser.wait_text("false positive").await;
    assert!(t.contains("unmarked"), "{t}");
    browser.screenshot("alerts").await;

    // Forgeries with a real session cookie: cross-site, missing or wrong CSRF token, a viewer.
    let (cookie, csrf) = sign_in(&base, APPROVER).await;
    let before = api(&base, "/api/suppressions").await;
    let revoke = |origin: Option<&'static str>, token: String, cookie: String| {
        let id = snooze["id"].as_str().unwrap().to_owned();
        let base = base.clone();
        async move {
            let mut req = plain()
                .post(format!("{base}/console/revoke"))
                .header("cookie", cookie)
                .form(&[("id", id), ("csrf", token)]);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        revoke(Some("http://evil.example"), csrf.clone(), cookie.clone()).await,
        403
    );
    assert_eq!(revoke(None, String::new(), cookie.clone()).await, 403);
    assert_eq!(revoke(None, "0".repeat(64), cookie.clone()).await, 403);
    let (viewer_cookie, viewer_csrf) = sign_in(&base, VIEWER).await;
    assert_eq!(revoke(None, viewer_csrf, viewer_cookie.clone()).await, 403);
    assert_eq!(
        api(&base, "/api/suppressions").await,
        before,
        "nothing changed"
    );
    let r = plain()
        .post(format!("{base}/console/decide"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[
            ("delivery", delivery.as_str()),
            ("decision", "reject"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(st.outbox().decision(&delivery).unwrap().unwrap().approve);
    // A later decision, however well-formed, changes nothing and says who decided first.
    let r = plain()
        .post(format!("{base}/console/decide"))
        .header("cookie", &cookie)
        .form(&[
            ("delivery", delivery.as_str()),
            ("decision", "reject"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = console_page(&base, "/console/approvals", &cookie).await;
    assert!(page.contains("was already approved by alice"), "{page}");
    assert!(st.outbox().decision(&delivery).unwrap().unwrap().approve);
    assert_eq!(
        st.outbox().journal(&delivery).unwrap().unwrap().status,
        Status::Done
    );
    // A viewer sees the pages without the buttons.
    let page = plain()
        .get(format!(
            "{base}/console/alert?id={}",
            "default%2Fev-exec%2Fexec-into-pod"
        ))
        .header("cookie", &viewer_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("exec into a pod"));
    assert!(!page.contains("action=\"/console/mark\""));
    // The same-origin revoke with the right token works.
    assert_eq!(
        revoke(Some("http://evil.example"), csrf.clone(), cookie.clone()).await,
        403
    );
    let ok = plain()
        .post(format!("{base}/console/revoke"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .form(&[("id", snooze["id"].as_str().unwrap()), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let after = api(&base, "/api/suppressions").await;
    let revoked = after
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == snooze["id"])
        .unwrap();
    assert_eq!(revoked["state"], "revoked", "{after}");
    assert_eq!(revoked["revoked_by"], "alice");

    // Sign out: the cookie no longer works.
    browser.go(&format!("{base}/console/alerts")).await;
    browser.click("header form button").await;
    browser.wait_text("Sign in to the rampart console").await;
    browser.go(&format!("{base}/console/health")).await;
    assert!(browser.url().await.ends_with("/console/login"));
    browser.quit().await;

    shutdown.cancel();
    running.wait().await.unwrap();
}
