//! One rampart serving several clusters: per-cluster enrichment settings and list entries, and the cluster on every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::Path;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_cluster_directory_and_lists_apply_only_to_that_clusters_events() {
    let s = Scratch::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let event = serde_json::json!({"auditID": "x", "stage": "ResponseComplete", "verb": "get", "requestURI": "/api/v1/namespaces/default/pods",
        "user": {"username": "alice@example.com"}, "sourceIPs": ["10.0.0.1"], "objectRef": {"resource": "pods", "namespace": "default"}})
    .to_string();
    for c in ["dev", "prod"] {
        std::fs::write(
            s.path(&format!("{c}.log")),
            event.replace("\"x\"", &format!("\"{c}-1\"")) + "\n",
        )
        .unwrap();
    }
    std::fs::write(
        s.path("dev-identity.yaml"),
        "users:\n  - { match: alice@example.com, team: dev-sandbox }\n",
    )
    .unwrap();
    let pb = s.path("pb");
    std::fs::create_dir(&pb).unwrap();
    std::fs::write(
        pb.join("untrusted.rhai"),
        "fn meta() { #{ title: \"untrusted user\", severity: \"low\" } }\nfn rule(e) { !in_list(\"trusted_users\", e.user) }\n",
    )
    .unwrap();
    let cfg = s.config(&format!(
        r#"sources:
  files:
    - {{ path: {dev}, cluster: dev }}
    - {{ path: {prod}, cluster: prod }}
enrich:
  identity:
    directory: {global}
playbooks:
  dir: {pb}
  lists:
    trusted_users: [bob@example.com]
clusters:
  dev:
    enrich:
      identity:
        directory: {devdir}
    lists:
      trusted_users: [alice@example.com]
"#,
        dev = s.path("dev.log").display(),
        prod = s.path("prod.log").display(),
        global = repo.join("enrichers/identity.yaml").display(),
        pb = pb.display(),
        devdir = s.path("dev-identity.yaml").display(),
    ));
    run_to_end(&cfg).await;
    let out = read_jsonl(&s.output());
    let by = |c: &str| {
        out.iter()
            .find(|e| e["provenance"]["cluster"] == c)
            .unwrap()
            .clone()
    };
    let (dev, prod) = (by("dev"), by("prod"));
    assert_eq!(dev["enrichment"]["identity"]["team"], "dev-sandbox");
    assert_eq!(prod["enrichment"]["identity"]["team"], "payments");
    assert!(dev["verdicts"].is_null(), "alice is trusted in dev: {dev}");
    assert_eq!(prod["verdicts"][0]["playbook"], "untrusted");
}

#[test]
fn cluster_overrides_are_validated_with_their_path() {
    let err = rampart::config::load_str(
        "sources:\n  files: [{ path: a.log }]\nclusters:\n  dev:\n    enrich:\n      identity:\n        api: { url: \"ftp://x\" }\n",
        "t",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("clusters.dev.enrich.identity.api.url"),
        "{err}"
    );
}
