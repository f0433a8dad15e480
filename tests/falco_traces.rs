//! Every audit event in Falco's k8saudit regression traces decodes; the deliberately malformed one is dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::Path;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_falco_trace_decodes_and_the_malformed_one_is_dead_lettered() {
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/falco-k8s-audit/traces");
    let mut files: Vec<_> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 47);
    let s = Scratch::new();
    let mut expected_ids = Vec::new();
    let mut all = String::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(id) = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["auditID"].as_str().map(str::to_owned))
            {
                expected_ids.push(id);
            }
            all.push_str(line);
            all.push('\n');
        }
    }
    let log = s.path("traces.jsonl");
    std::fs::write(&log, all).unwrap();
    let cfg = s.config(&format!(
        "sources:\n  files:\n    - path: {}\n",
        log.display()
    ));
    let report = run_to_end(&cfg).await;
    assert_eq!(
        report.events, 51,
        "the README of the suite counts 51 events"
    );
    assert_eq!(report.dead_letters, 1);
    assert_eq!(audit_ids(&s.output()), expected_ids);
    let dead = read_jsonl(&s.dead_letters());
    assert_eq!(dead[0]["original"], r#"{"kind": 0}"#);
    assert!(dead[0]["reason"].as_str().unwrap().contains("kind"));
}
