//! Falco's k8saudit regression suite (66 cases) against the ported pack in `playbooks/falco/`: same rules fire, as often.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Falco priorities, lowest first.
const PRIORITIES: [&str; 8] = [
    "DEBUG",
    "INFORMATIONAL",
    "NOTICE",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
];

fn priority_rank(p: &str) -> usize {
    let p = p.to_ascii_uppercase();
    let p = if p == "INFO" {
        "INFORMATIONAL".to_owned()
    } else {
        p
    };
    PRIORITIES
        .iter()
        .position(|x| *x == p)
        .unwrap_or_else(|| panic!("unknown Falco priority {p}"))
}

/// Falco rule name -> priority, from Falco's ruleset and the custom rule of case 66.
fn falco_priorities() -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for file in [
        "tests/data/falco-k8s-audit/k8s_audit_rules.yaml",
        "tests/data/falco-k8s-audit/rule-overrides/single_rule_with_json_pointer.yaml",
    ] {
        let docs: Vec<serde_yaml::Value> =
            serde_yaml::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
        for d in docs {
            if let (Some(r), Some(p)) = (d["rule"].as_str(), d["priority"].as_str()) {
                out.insert(r.to_owned(), priority_rank(p));
            }
        }
    }
    out
}

/// Each case's `detect_level` in Falco's suite definition: Falco only checks rules at or above it,
/// so a lower-priority rule may also fire there (e.g. the informational "K8s Namespace Created").
/// Cases without one (`detect: False`) must raise nothing at all.
fn detect_levels() -> HashMap<String, usize> {
    let text = std::fs::read_to_string(
        root().join("tests/data/falco-k8s-audit/falco_k8s_audit_tests.yaml"),
    )
    .unwrap();
    let mut out = HashMap::new();
    let mut case = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            if !name.starts_with(' ') {
                case = Some(name.to_owned());
            }
        } else if let Some(level) = line.trim().strip_prefix("detect_level:") {
            out.insert(case.clone().unwrap(), priority_rank(level.trim()));
        }
    }
    out
}

/// Firings beyond a case's detect_counts that Falco's ruleset also raises (`extra_firings.tsv`, with the reason).
fn extra_firings() -> HashMap<String, BTreeMap<String, usize>> {
    let text =
        std::fs::read_to_string(root().join("tests/data/falco-conformance/extra_firings.tsv"))
            .unwrap();
    let mut out: HashMap<String, BTreeMap<String, usize>> = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (rule, n) = cols[1].rsplit_once('=').unwrap();
        assert!(
            cols.len() == 3 && !cols[2].trim().is_empty(),
            "{line}: say why"
        );
        out.entry(cols[0].to_owned())
            .or_default()
            .insert(rule.to_owned(), n.parse().unwrap());
    }
    out
}

struct Case {
    name: String,
    trace: String,
    expected: BTreeMap<String, usize>,
    overrides: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text =
        std::fs::read_to_string(root().join("tests/data/falco-k8s-audit/cases.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let field = |i: usize| cols.get(i).copied().unwrap_or("").trim();
            let split = |s: &str, sep: char| -> Vec<String> {
                s.split(sep)
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            Case {
                name: field(0).to_owned(),
                trace: field(1).to_owned(),
                expected: split(field(2), ',')
                    .iter()
                    .map(|kv| {
                        let (k, v) = kv.rsplit_once('=').unwrap();
                        (k.trim().to_owned(), v.trim().parse().unwrap())
                    })
                    .collect(),
                overrides: split(field(3), ';'),
            }
        })
        .collect()
}

/// The rampart equivalent of one Falco override file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Override {
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    /// Extra playbooks (beside the override file) loaded with the pack, as a Falco rules file adds rules.
    #[serde(default)]
    playbooks: Vec<String>,
}

fn copy_rhai(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rhai") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

struct Outcome {
    fired: BTreeMap<String, usize>,
    dead_letters: u64,
    events: u64,
}

async fn run_case(case: &Case) -> Outcome {
    let s = Scratch::new();
    let pack = s.path("pack");
    std::fs::create_dir_all(pack.join("lists")).unwrap();
    let src = root().join("playbooks/falco");
    copy_rhai(&src, &pack);
    for entry in std::fs::read_dir(src.join("lists")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, pack.join("lists").join(p.file_name().unwrap())).unwrap();
    }
    // Override files apply in order; their list entries add to the pack's lists, as Falco's `append: true`.
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let data = root().join("tests/data/falco-conformance");
    for o in &case.overrides {
        let text = std::fs::read_to_string(data.join(format!("{o}.yaml")))
            .unwrap_or_else(|e| panic!("override {o}: {e}"));
        let o: Override = serde_yaml::from_str(&text).unwrap();
        for (k, v) in o.lists {
            lists.entry(k).or_default().extend(v);
        }
        for p in o.playbooks {
            std::fs::copy(data.join(&p), pack.join(&p)).unwrap();
        }
    }
    let lists_yaml: String = lists
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let trace = root()
        .join("tests/data/falco-k8s-audit/traces")
        .join(&case.trace);
    let cfg = s.config(&format!(
        "sources:\n  files:\n    - path: {}\nplaybooks:\n  dir: {}\n  lists:\n{}",
        trace.display(),
        pack.display(),
        if lists_yaml.is_empty() {
            "    {}\n".to_owned()
        } else {
            lists_yaml
        }
    ));
    let falco_rule: HashMap<String, String> =
        rampart::playbook::load_dir(&pack, cfg.playbooks.as_ref().unwrap())
            .unwrap_or_else(|d| {
                panic!(
                    "{}",
                    d.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
            .playbooks()
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.falco_rule
                        .clone()
                        .expect("every pack playbook names its Falco rule"),
                )
            })
            .collect();
    let report = run_to_end(&cfg).await;
    let mut fired = BTreeMap::new();
    if s.output().exists() {
        for ev in read_jsonl(&s.output()) {
            for v in ev["verdicts"].as_array().cloned().unwrap_or_default() {
                let id = v["playbook"].as_str().unwrap();
                *fired.entry(falco_rule[id].clone()).or_insert(0) += 1;
            }
        }
    }
    Outcome {
        fired,
        dead_letters: report.dead_letters,
        events: report.events,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falco_k8saudit_suite_reaches_the_same_verdicts() {
    let cases = cases();
    assert_eq!(cases.len(), 66);
    let priorities = falco_priorities();
    let levels = detect_levels();
    let extras = extra_firings();
    let mut table = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let out = run_case(case).await;
        let level = levels.get(&case.name).copied();
        let mut problems = Vec::new();
        for (rule, want) in &case.expected {
            let got = out.fired.get(rule).copied().unwrap_or(0);
            if got != *want {
                problems.push(format!("{rule}: want {want}, got {got}"));
            }
        }
        let extra = extras.get(&case.name).cloned().unwrap_or_default();
        for (rule, want) in &extra {
            let got = out.fired.get(rule).copied().unwrap_or(0);
            if got != *want {
                problems.push(format!(
                    "{rule} (extra_firings.tsv): want {want}, got {got}"
                ));
            }
        }
        for (rule, got) in &out.fired {
            let checked = match level {
                None => true,
                Some(l) => priorities.get(rule).is_none_or(|p| *p >= l),
            };
            if !case.expected.contains_key(rule) && !extra.contains_key(rule) && checked {
                problems.push(format!("{rule}: want 0, got {got}"));
            }
        }
        if case.trace == "fal_01_003.json" && out.dead_letters != 1 {
            problems.push(format!(
                "malformed trace: want 1 dead letter, got {}",
                out.dead_letters
            ));
        }
        if case.trace != "fal_01_003.json" && (out.dead_letters != 0 || out.events == 0) {
            problems.push(format!(
                "{} events, {} dead letters",
                out.events, out.dead_letters
            ));
        }
        if problems.is_empty() {
            passed += 1;
        }
        table.push(format!(
            "{:<4} {:<62} fired {:?}{}",
            if problems.is_empty() { "ok" } else { "FAIL" },
            case.name,
            out.fired,
            if problems.is_empty() {
                String::new()
            } else {
                format!("\n       {}", problems.join("\n       "))
            }
        ));
    }
    assert_eq!(
        passed,
        cases.len(),
        "{passed}/{} Falco cases pass:\n{}",
        cases.len(),
        table.join("\n")
    );
}
