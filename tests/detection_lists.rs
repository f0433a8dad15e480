//! Lists a playbook reads must exist: `rampart check` and `rampart run` refuse a playbook that reads a list defined nowhere, naming the file, line and list; a list from a file or the config satisfies it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::process::Command;

use common::*;

const PLAYBOOK: &str = "// reads an allowlist\nfn meta() { #{ title: \"t\", severity: \"low\" } }\nfn rule(e) {\n    !in_list_glob(\"trusted_bots\", e.user)\n}\n";

/// A scratch directory with `playbooks/uses_list.rhai`, an empty audit log and a config naming both.
fn setup(config_lists: &str) -> Scratch {
    let s = Scratch::new();
    let dir = s.path("playbooks");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("uses_list.rhai"), PLAYBOOK).unwrap();
    let log = s.path("a.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        s.path("rampart.yaml"),
        format!(
            "sources:\n  files: [{{ path: {}, follow: false }}]\nplaybooks:\n  dir: {}\n{config_lists}state:\n  dir: {}\n",
            log.display(),
            dir.display(),
            s.path("state").display()
        ),
    )
    .unwrap();
    s
}

fn rampart(s: &Scratch, cmd: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .current_dir(s.dir.path())
        .env_remove("RAMPART_LOG")
        .arg(cmd)
        .output()
        .unwrap()
}

#[test]
fn check_and_run_refuse_a_playbook_reading_an_undefined_list() {
    let s = setup("");
    for cmd in ["check", "run"] {
        let out = rampart(&s, cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("uses_list.rhai:4:6"), "{cmd}: {err}");
        assert!(
            err.contains("\"trusted_bots\" is defined nowhere"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn a_list_file_or_a_config_list_defines_it() {
    let s = setup("");
    std::fs::create_dir(s.path("playbooks/lists")).unwrap();
    std::fs::write(s.path("playbooks/lists/trusted_bots.yaml"), "[]\n").unwrap();
    let out = rampart(&s, "check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = setup("  lists:\n    trusted_bots: [\"ci-*\"]\n");
    let out = rampart(&s, "check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
