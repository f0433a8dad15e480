//! Fuzz target: the config loader (`config::load_str`) on any text: it never panics, and every problem it reports has a message and, unless it is about the document as a whole, the path of what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::config::{load_str, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let err = match load_str(text, "fuzz.yaml") {
        Ok(config) => {
            let _ = format!("{config:?}");
            return;
        }
        Err(e) => e,
    };
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    let shown = err.to_string();
    let problems = err.problems();
    assert!(!problems.is_empty(), "an error without problems: {shown}");
    for p in &problems {
        assert!(!p.message.trim().is_empty(), "no message at {:?}", p.path);
        assert!(
            !p.path.is_empty() || about_the_document(&p.message) || has_unnamed_section(text),
            "a problem without a path: {}",
            p.message
        );
    }
});

/// Problems that concern the whole document, so have no path to name.
fn about_the_document(message: &str) -> bool {
    message.starts_with("invalid YAML: ") || message == "the config must be a mapping of sections"
}

/// Whether a top-level key's path reads as empty: `""`, `"."` (the root's own
/// path, which the loader shows as empty) or a key that is not a string.
fn has_unnamed_section(text: &str) -> bool {
    let unnamed = |k: &serde_yaml::Value| k.as_str().is_none_or(|k| k.is_empty() || k == ".");
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(m)) => m.keys().any(unnamed),
        _ => false,
    }
}
