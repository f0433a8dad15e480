//! The triage loop on a running rampart, driven as on-call drives it: `rampart alerts mark` records a false positive through the running instance's API, `rampart tune` suggests the allowlist entry that would have silenced it, `--apply` writes it, hot reload picks it up and the next identical event raises nothing; `rampart suppressions add` silences a principal before any responder runs (the alert is kept and counted), revoking it lets alerts through again; the API refuses the unauthenticated and the read-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

const APPROVER: &str = "approver-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef00";

const PLAYBOOK: &str = r#"
fn meta() {
    #{
        id: "secret-read",
        title: "Secret read",
        severity: "high",
        on: #{ verbs: ["get"], resources: ["secrets"],
               where: #{ user: #{ not_in_glob_lists: ["secret_readers"] } } },
        dedup_window: "1m",
    }
}
fn rule(e) { true }
fn title(e) { `${e.user} read ${e.namespace}/${e.name}` }
fn dedup(e) { `${e.user}|${e.namespace}/${e.name}` }
"#;

fn event(id: &str, user: &str, secret: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": "ResponseComplete", "verb": "get",
        "requestURI": format!("/api/v1/namespaces/payments/secrets/{secret}"),
        "user": {"username": user}, "sourceIPs": ["10.20.0.7"],
        "objectRef": {"resource": "secrets", "namespace": "payments", "name": secret, "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-12-07T10:00:00.000000Z",
        "stageTimestamp": "2026-12-07T10:00:00.100000Z",
    })
}

/// Posts events to the webhook source; it answers once they are durable in the state stage.
async fn post(url: &str, events: &[Value]) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "webhook answered {}", r.status());
}

async fn alerts(telemetry: &str) -> Vec<Value> {
    reqwest::get(format!("{telemetry}/api/alerts?limit=1000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the rampart binary; returns its stdout, failing the test on a non-zero exit.
fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env("RAMPART_TOKEN", APPROVER)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rampart {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The alerts-file lines delivered so far, by alert id.
fn delivered(path: &Path) -> Vec<String> {
    if !path.exists() {
        return Vec::new();
    }
    common::read_jsonl(path)
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn metric(telemetry: &str, line_start: &str) -> Option<f64> {
    let text = reqwest::get(format!("{telemetry}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The recorded outcomes, as a viewer reads them from the triage API.
async fn recorded_outcomes(telemetry: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{telemetry}/api/outcomes"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `rampart tune --apply ENTRY`, then waits until the running instance has reloaded the list.
async fn apply_and_reload(config: &Path, telemetry: &str, entry: &str) -> String {
    let before = metric(telemetry, "rampart_playbook_reloads_total")
        .await
        .unwrap_or(0.0);
    let said = cli(config, &["tune", "--apply", entry]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while metric(telemetry, "rampart_playbook_reloads_total")
        .await
        .unwrap_or(0.0)
        <= before
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{entry} was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_positive_becomes_an_allowlist_entry_and_a_suppression_silences_before_responders()
{
    let s = common::Scratch::new();
    let pb = s.path("playbooks");
    std::fs::create_dir_all(pb.join("lists")).unwrap();
    std::fs::write(pb.join("secret_read.rhai"), PLAYBOOK).unwrap();
    std::fs::write(
        pb.join("lists/secret_readers.yaml"),
        "# Who reads secrets as a matter of course.\n- \"system:serviceaccount:vault:*\"\n",
    )
    .unwrap();
    let alerts_file = s.path("alerts.jsonl");
    let console = format!(
        "console:\n  users:\n    - name: oncall\n      role: approver\n      token: {APPROVER}\n    - name: auditor\n      role: viewer\n      token: {VIEWER}\n"
    );
    let rest = format!(
        "playbooks:\n  dir: {}\n  reload_interval: 100ms\nrespond:\n  alerts_file: {}\ntelemetry:\n  listen: 127.0.0.1:0\n{console}",
        pb.display(),
        alerts_file.display()
    );
    let (running, url, shutdown) = common::start_webhook(&s, "", &rest).await;
    let addr = running.telemetry_addr.unwrap();
    let telemetry = format!("http://{addr}");
    // A failed assertion stops the pipeline too (its listener would keep the runtime alive).
    let _stop_on_panic = shutdown.clone().drop_guard();
    // The command line's config: the same store (locked by the running instance) and its listener.
    let cli_cfg = s.path("cli.yaml");
    std::fs::write(
        &cli_cfg,
        format!(
            "sources:\n  files:\n    - path: /dev/null\nstate:\n  dir: {}\nplaybooks:\n  dir: {}\ntelemetry:\n  listen: {addr}\n{console}",
            s.path("state").display(),
            pb.display()
        ),
    )
    .unwrap();

    // A CI job reads a secret: an alert, delivered.
    post(
        &url,
        &[event("e1", "system:serviceaccount:ci:deployer", "db")],
    )
    .await;
    let first = "default/e1/secret-read";
    common::eventually("the first alert delivered", Duration::from_secs(20), || {
        delivered(&alerts_file)
            .contains(&first.to_owned())
            .then_some(())
    })
    .await;

    // On-call marks it a false positive from the command line, through the running instance.
    let said = cli(
        &cli_cfg,
        &[
            "alerts",
            "mark",
            first,
            "--fp",
            "--note",
            "CI reads its own DB secret",
        ],
    );
    assert!(said.contains("marked false positive by oncall"), "{said}");
    let outcomes: Vec<Value> = recorded_outcomes(&telemetry).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["verdict"], "false_positive");
    assert_eq!(outcomes[0]["by"], "oncall");
    assert_eq!(
        metric(
            &telemetry,
            "rampart_alert_outcomes_total{playbook=\"secret-read\",outcome=\"false_positive\"}"
        )
        .await,
        Some(1.0)
    );

    // The tuning report suggests the entry that would have silenced it.
    let report: Value = serde_json::from_str(&cli(&cli_cfg, &["tune", "--json"])).unwrap();
    let row = &report["playbooks"][0];
    assert_eq!(row["playbook"], "secret-read");
    assert_eq!(
        (row["alerts"].as_u64(), row["false_positive"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(row["precision"].as_f64(), Some(0.0));
    let sug = &report["suggestions"][0];
    assert_eq!(sug["list"], "secret_readers");
    assert_eq!(sug["field"], "user");
    assert_eq!(sug["value"], "system:serviceaccount:ci:deployer");
    let table = cli(&cli_cfg, &["tune"]);
    assert!(
        table.contains("secret_readers=system:serviceaccount:ci:deployer"),
        "{table}"
    );

    // Applying it writes the list file and says so; hot reload picks it up.
    let said = apply_and_reload(
        &cli_cfg,
        &telemetry,
        "secret_readers=system:serviceaccount:ci:deployer",
    )
    .await;
    assert!(
        said.contains("added \"system:serviceaccount:ci:deployer\""),
        "{said}"
    );
    assert!(said.contains("hot reload"), "{said}");
    let list = std::fs::read_to_string(pb.join("lists/secret_readers.yaml")).unwrap();
    assert!(
        list.starts_with("# Who reads secrets"),
        "comments kept: {list}"
    );
    assert!(list.contains("- \"system:serviceaccount:ci:deployer\"  # rampart tune: 1 false positive(s) of secret-read, applied by oncall"), "{list}");

    // The next such read (another secret: a dedup group of its own) raises nothing; someone
    // else's still alerts.
    post(
        &url,
        &[event(
            "e2",
            "system:serviceaccount:ci:deployer",
            "db-replica",
        )],
    )
    .await;
    post(&url, &[event("e3", "mallory@example.com", "db")]).await;
    let ids: Vec<String> = alerts(&telemetry)
        .await
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&"default/e3/secret-read".to_owned()),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"default/e2/secret-read".to_owned()),
        "silenced by the allowlist: {ids:?}"
    );

    // A false positive no list of the playbook's own fits as well: an exception for this playbook
    // and this principal, which touches no other playbook.
    cli(
        &cli_cfg,
        &["alerts", "mark", "default/e3/secret-read", "--fp"],
    );
    let report: Value = serde_json::from_str(&cli(&cli_cfg, &["tune", "--json"])).unwrap();
    let values: Vec<(&str, &str)> = report["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["list"].as_str().unwrap(), s["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        values,
        [
            ("secret_readers", "mallory@example.com"),
            ("exceptions", "secret-read user=mallory@example.com")
        ],
        "the applied entry is no longer suggested"
    );
    let said = apply_and_reload(
        &cli_cfg,
        &telemetry,
        "exceptions=secret-read user=mallory@example.com",
    )
    .await;
    assert!(said.contains("lists/exceptions.yaml"), "{said}");
    post(&url, &[event("e3b", "mallory@example.com", "db-other")]).await;
    let ids: Vec<String> = alerts(&telemetry)
        .await
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !ids.contains(&"default/e3b/secret-read".to_owned()),
        "exempted by the exception: {ids:?}"
    );

    // A suppression for a principal: the alert is kept and counted, but no responder hears of it.
    let said = cli(
        &cli_cfg,
        &[
            "suppressions",
            "add",
            "--playbook",
            "secret-read",
            "--principal",
            "bob@example.com",
            "--for",
            "2h",
            "--reason",
            "rotating the payments DB",
        ],
    );
    let sid = said.split_whitespace().next().unwrap().to_owned();
    assert!(said.contains("principal bob@example.com"), "{said}");
    post(&url, &[event("e4", "bob@example.com", "db")]).await;
    // An unsuppressed alert after it: once that one is delivered, the one before would have been.
    post(&url, &[event("e5", "eve@example.com", "db")]).await;
    common::eventually(
        "the alert after the suppressed one delivered",
        Duration::from_secs(20),
        || {
            delivered(&alerts_file)
                .contains(&"default/e5/secret-read".to_owned())
                .then_some(())
        },
    )
    .await;
    let got = delivered(&alerts_file);
    assert!(
        !got.contains(&"default/e4/secret-read".to_owned()),
        "suppressed before any responder: {got:?}"
    );
    let all = alerts(&telemetry).await;
    let bob = all
        .iter()
        .find(|a| a["id"] == "default/e4/secret-read")
        .expect("the suppressed alert is kept");
    assert_eq!(bob["suppressed"].as_str(), Some(sid.as_str()));
    assert_eq!(
        metric(
            &telemetry,
            "rampart_alerts_suppressed_total{playbook=\"secret-read\"}"
        )
        .await,
        Some(1.0)
    );
    let listed = cli(&cli_cfg, &["suppressions"]);
    assert!(
        listed.contains(&sid)
            && listed.contains("active")
            && listed.contains("rotating the payments DB"),
        "{listed}"
    );

    // Revoked, it stops applying.
    let said = cli(&cli_cfg, &["suppressions", "revoke", &sid]);
    assert!(said.contains("revoked by oncall"), "{said}");
    post(&url, &[event("e6", "bob@example.com", "api-key")]).await;
    common::eventually("bob alerts again", Duration::from_secs(20), || {
        delivered(&alerts_file)
            .contains(&"default/e6/secret-read".to_owned())
            .then_some(())
    })
    .await;
    assert!(cli(&cli_cfg, &["suppressions"]).contains("revoked"));

    // The API refuses whoever brings no token, and a viewer's writes.
    let c = reqwest::Client::new();
    let anon = c
        .post(format!("{telemetry}/api/outcomes"))
        .json(&json!({"alert": first, "outcome": "tp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let wrong = c
        .get(format!("{telemetry}/api/tune"))
        .bearer_auth("not-a-token-of-anyone-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let viewer = c
        .post(format!("{telemetry}/api/outcomes"))
        .bearer_auth(VIEWER)
        .json(&json!({"alert": first, "outcome": "tp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 403);
    let body = viewer.text().await.unwrap();
    assert!(!body.contains(VIEWER), "no token in answers");
    let still: Vec<Value> = recorded_outcomes(&telemetry).await;
    assert_eq!(
        still[0]["verdict"], "false_positive",
        "refused writes changed nothing"
    );

    shutdown.cancel();
    running.wait().await.unwrap();
}
