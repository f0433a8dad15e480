//! The configs shipped in deploy/ are valid rampart configs (the manifests themselves are validated by scripts/validate-deploy.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn every_overlay_config_is_a_valid_rampart_config() {
    std::env::set_var("KAFKA_PASSWORD", "not-a-real-password");
    std::env::set_var("SLACK_BOT_TOKEN", "xoxb-not-a-real-token");
    std::env::set_var("SLACK_SIGNING_SECRET", "not-a-real-signing-secret");
    let overlays = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kustomize/overlays");
    let mut n = 0;
    for dir in std::fs::read_dir(&overlays).unwrap() {
        let cfg = dir.unwrap().path().join("rampart.yaml");
        let loaded =
            rampart::config::load_file(&cfg).unwrap_or_else(|e| panic!("{}: {e}", cfg.display()));
        // The secret came from the environment and stays redacted.
        let password = &loaded.kafka.as_ref().unwrap().properties["sasl.password"];
        assert_eq!(password.expose(), "not-a-real-password");
        assert_eq!(format!("{password:?}"), "<redacted>");
        let slack = loaded.respond.slack.as_ref().unwrap();
        assert!(!format!("{slack:?}").contains("xoxb-not-a-real-token"));
        assert!(loaded.respond.kubernetes.is_some() && loaded.respond.kafka.is_some());
        n += 1;
    }
    assert_eq!(n, 2);
}
