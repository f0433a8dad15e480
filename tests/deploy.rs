//! The configs shipped in deploy/ are valid rampart configs (the manifests themselves are validated by scripts/validate-deploy.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn every_overlay_config_is_a_valid_rampart_config() {
    std::env::set_var("KAFKA_PASSWORD", "not-a-real-password");
    std::env::set_var("POD_NAME", "rampart-0");
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

/// Where the StatefulSet mounts what, mapped onto this checkout: the image's default pack and
/// enrichers, the base's local-playbooks ConfigMap, and scratch for the state volume.
fn mapped_overlay_config(overlay: &Path, scratch: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(overlay.join("rampart.yaml")).unwrap();
    let tls = scratch.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(tls.join(f), "").unwrap();
    }
    text.replace(
        "/etc/rampart/local-playbooks",
        &root
            .join("deploy/kustomize/base/local-playbooks")
            .display()
            .to_string(),
    )
    .replace(
        "/etc/rampart/playbooks",
        &root.join("playbooks").display().to_string(),
    )
    .replace(
        "/etc/rampart/enrichers",
        &root.join("enrichers").display().to_string(),
    )
    .replace("/etc/rampart/tls", &tls.display().to_string())
    .replace(
        "/var/lib/rampart",
        &scratch.join("state").display().to_string(),
    )
}

#[test]
fn every_overlay_passes_rampart_check_with_the_default_pack_it_deploys() {
    let overlays = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kustomize/overlays");
    let mut n = 0;
    for dir in std::fs::read_dir(&overlays).unwrap() {
        let dir = dir.unwrap().path();
        let scratch = std::env::temp_dir().join(format!(
            "rampart-deploy-{}-{}",
            std::process::id(),
            dir.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&scratch).unwrap();
        let cfg = scratch.join("rampart.yaml");
        std::fs::write(&cfg, mapped_overlay_config(&dir, &scratch)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["check", "-c"])
            .arg(&cfg)
            .env("KAFKA_PASSWORD", "not-a-real-password")
            .env("POD_NAME", "rampart-0")
            .env("SLACK_BOT_TOKEN", "xoxb-not-a-real-token")
            .env("SLACK_SIGNING_SECRET", "not-a-real-signing-secret")
            .env_remove("RAMPART_LOG")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{}: {text}", dir.display());
        // Where playbooks run, both shipped packs are deployed whole, not a handful of them (the
        // webhook receiver only bridges batches into the topic).
        let bridge = std::fs::read_to_string(dir.join("rampart.yaml"))
            .unwrap()
            .contains("bridge_topic:");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let playbooks: usize = ["playbooks", "playbooks/falco"]
            .iter()
            .map(|pack| {
                std::fs::read_dir(root.join(pack))
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|x| x == "rhai")
                    })
                    .count()
            })
            .sum();
        assert!(
            bridge || text.contains(&format!("{playbooks} playbooks")),
            "{}: {text}",
            dir.display()
        );
        std::fs::remove_dir_all(&scratch).unwrap();
        n += 1;
    }
    assert_eq!(n, 2);
}
