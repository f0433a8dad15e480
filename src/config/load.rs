//! Loading `rampart.yaml`: YAML parse, `${ENV}` interpolation, and deserialisation that reports every problem at once.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::Config;

/// One thing wrong with the config, at a dotted path such as `sources.kafka.topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem found, for callers that want them one by one.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { path, source } => vec![Problem {
                path: String::new(),
                message: format!("cannot read {}: {source}", path.display()),
            }],
            ConfigError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    let mut s = format!(
        "{} problem{} in {file}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

/// Reads, interpolates, parses and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `name` names it in messages.
pub fn load_str(text: &str, name: &str) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        file: name.to_owned(),
        problems,
    };
    let mut doc: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Mapping::new()),
        Ok(v) => v,
        Err(e) => {
            return Err(invalid(vec![Problem {
                path: String::new(),
                message: format!("invalid YAML: {e}"),
            }]))
        }
    };
    let mut problems = Vec::new();
    interpolate(&mut doc, &mut String::new(), &mut problems);
    let Value::Mapping(map) = &doc else {
        return Err(invalid(vec![Problem {
            path: String::new(),
            message: "the config must be a mapping of sections".to_owned(),
        }]));
    };
    // Deserialise each top-level section on its own so that one bad section
    // does not hide the problems of the others.
    for (key, value) in map {
        let mut one = Mapping::new();
        one.insert(key.clone(), value.clone());
        if let Err(p) = deserialize(Value::Mapping(one)) {
            problems.push(p);
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let config = deserialize(doc).map_err(|p| invalid(vec![p]))?;
    let problems = super::validate::validate(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(invalid(problems))
    }
}

fn deserialize(doc: Value) -> Result<Config, Problem> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        Problem {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Replaces `${NAME}` and `${NAME:-default}` in every string; `$$` is a literal `$`.
fn interpolate(v: &mut Value, path: &mut String, problems: &mut Vec<Problem>) {
    match v {
        Value::String(s) if s.contains('$') => match expand(s) {
            Ok(out) => *s = out,
            Err(e) => problems.push(Problem {
                path: path.clone(),
                message: e.to_string(),
            }),
        },
        Value::Mapping(m) => {
            for (k, child) in m.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k.as_str().unwrap_or("?"));
                interpolate(child, path, problems);
                path.truncate(len);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate(child, path, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Why `${...}` interpolation failed in one string.
#[derive(Debug, thiserror::Error)]
enum ExpandError {
    #[error("unterminated ${{...}} in {0:?}")]
    Unterminated(String),
    #[error("environment variable {0} is not set")]
    Unset(String),
}

fn expand(s: &str) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| ExpandError::Unterminated(s.to_owned()))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match (std::env::var(name), default) {
                (Ok(v), _) => out.push_str(&v),
                (Err(_), Some(d)) => out.push_str(d),
                (Err(_), None) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_a_valid_default_config_with_no_sources_reported() {
        let err = load_str("", "t").unwrap_err();
        assert_eq!(err.problems()[0].path, "sources");
    }

    #[test]
    fn reports_every_problem_at_once_with_paths() {
        let yaml = r#"
sources:
  kafka:
    group_id: g
    topics: [audit]
    drain_timeout: soon
pipeline:
  workers: many
bogus: 1
telemetry:
  listen: "not an address"
"#;
        let err = load_str(yaml, "t.yaml").unwrap_err();
        let paths: Vec<String> = err.problems().into_iter().map(|p| p.path).collect();
        assert!(
            paths.contains(&"sources.kafka.drain_timeout".to_owned()),
            "{paths:?}"
        );
        assert!(paths.contains(&"pipeline.workers".to_owned()), "{paths:?}");
        assert!(paths.contains(&"telemetry.listen".to_owned()), "{paths:?}");
        assert!(err.to_string().contains("bogus"), "{err}");
        assert_eq!(paths.len(), 4);
    }

    #[test]
    fn semantic_problems_are_all_reported_too() {
        let yaml = r#"
sources:
  kafka: { group_id: "", topics: [] }
dead_letter: { file: dlq.jsonl, topic: dlq }
pipeline: { workers: 0 }
"#;
        let err = load_str(yaml, "t.yaml").unwrap_err();
        let text = err.to_string();
        for needle in [
            "sources.kafka.group_id",
            "sources.kafka.topics",
            "kafka: required",
            "dead_letter",
            "pipeline.workers",
        ] {
            assert!(text.contains(needle), "missing {needle} in:\n{text}");
        }
    }

    #[test]
    fn bad_behaviour_settings_are_reported_with_their_paths() {
        let yaml = r#"
sources: { files: [{ path: a.jsonl }] }
enrich:
  baseline:
    behaviour: { history_window: 1h, spike_ratio: 0.5, sketch_memory: 1KiB }
"#;
        let text = load_str(yaml, "t.yaml").unwrap_err().to_string();
        for needle in [
            "enrich.baseline.behaviour.history_window",
            "spike_ratio at least 1",
            "enrich.baseline.behaviour.sketch_memory",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn interpolates_environment_variables_with_defaults() {
        std::env::set_var("RAMPART_TEST_BROKERS", "k1:9092");
        assert_eq!(expand("${RAMPART_TEST_BROKERS}").unwrap(), "k1:9092");
        assert_eq!(
            expand("a-${RAMPART_TEST_UNSET_X:-dflt}-b").unwrap(),
            "a-dflt-b"
        );
        assert_eq!(expand("cost: $$5").unwrap(), "cost: $5");
        assert!(expand("${RAMPART_TEST_UNSET_X}")
            .unwrap_err()
            .to_string()
            .contains("RAMPART_TEST_UNSET_X"));
    }

    #[test]
    fn missing_environment_variables_are_reported_at_their_path() {
        let yaml =
            "kafka:\n  brokers: ${RAMPART_TEST_UNSET_Y}\nsources:\n  files: [{ path: a.log }]\n";
        let err = load_str(yaml, "t").unwrap_err();
        assert_eq!(err.problems()[0].path, "kafka.brokers");
    }
}
