//! docs/configuration.md is exactly what `rampart config reference` prints, so the checked-in
//! reference cannot drift from the config types' own documentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_checked_in_configuration_reference_is_what_the_command_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["config", "reference"])
        .env_remove("RAMPART_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if printed != checked_in {
        let line = printed
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| printed.lines().count().min(checked_in.lines().count()));
        panic!(
            "docs/configuration.md is out of date (first difference at line {}); regenerate it:\n  \
             cargo run -- config reference > docs/configuration.md",
            line + 1
        );
    }
}

#[test]
fn the_reference_documents_every_section_of_the_shipped_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["config", "reference"])
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    let shipped =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rampart.yaml"))
            .unwrap();
    // Every top-level key of the shipped config has its section.
    for key in shipped
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && l.contains(':'))
        .map(|l| l.split(':').next().unwrap())
    {
        assert!(md.contains(&format!("## `{key}`")), "no section for {key}");
    }
}
