//! The playbook sandbox under attack: no files, sockets, processes or sleeping; data too large is stopped before it is built; and through the real `rampart run`, every fault is counted and logged while the other playbooks still alert and nothing a script prints reaches stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::spawned;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rampart::config::PlaybooksConfig;
use rampart::event::decode_record;
use rampart::playbook::{load_dir, Ev, Evaluation};
use spawned::Spawned;

fn playbook(id: &str, rule: &str) -> String {
    format!("fn meta() {{ #{{ id: \"{id}\", title: \"{id} fired\", severity: \"medium\", on: #{{}} }} }}\nfn rule(e) {{\n{rule}\n}}\nfn dedup(e) {{ e.audit_id }}\n")
}

fn write_all(dir: &Path, cases: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (id, rule) in cases {
        std::fs::write(dir.join(format!("{id}.rhai")), playbook(id, rule)).unwrap();
    }
}

fn evaluate(dir: &Path, cfg: &PlaybooksConfig) -> (Evaluation, Duration) {
    let set = load_dir(dir, cfg).unwrap_or_else(|d| panic!("{d:?}"));
    let raw = serde_json::json!({"auditID": "a", "stage": "ResponseComplete", "verb": "get", "requestURI": "/x",
        "user": {"username": "alice"}, "objectRef": {"resource": "pods", "namespace": "default", "name": "n"}})
    .to_string();
    let ev = decode_record(raw.as_bytes(), &Default::default())
        .events
        .remove(0);
    let t = Instant::now();
    let e = set.evaluate(&Ev::new(ev));
    (e, t.elapsed())
}

fn config(dir: &Path) -> PlaybooksConfig {
    PlaybooksConfig {
        dir: dir.to_owned(),
        ..PlaybooksConfig::default()
    }
}

/// Reaching out: none of these exists for a playbook, however it is called.
const ESCAPES: &[(&str, &str)] = &[
    ("open", "open(\"/etc/passwd\")"),
    ("read_file", "read_file(\"/etc/passwd\")"),
    ("file_type", "File(\"/etc/passwd\")"),
    (
        "import_fs",
        "import \"fs\" as fs; fs::read(\"/etc/passwd\")",
    ),
    ("fn_ptr", "Fn(\"open\").call(\"/etc/passwd\")"),
    ("fn_eval", "Fn(\"eval\").call(\"open('/etc/passwd')\")"),
    ("call_eval", "call(Fn(\"eval\"), \"1\")"),
    ("connect", "connect(\"127.0.0.1:80\")"),
    ("tcp", "TcpStream(\"127.0.0.1:80\")"),
    ("http_get", "http_get(\"http://127.0.0.1/\")"),
    ("system", "system(\"id\")"),
    ("env", "env(\"HOME\")"),
    ("sleep", "sleep(10)"),
    ("sleep_huge", "sleep(1e300)"),
    ("sleep_by_ptr", "Fn(\"sleep\").call(10)"),
];

#[test]
fn playbooks_cannot_reach_files_sockets_processes_or_the_thread() {
    let s = Scratch::new();
    let dir = s.path("pb");
    write_all(&dir, ESCAPES);
    write_all(&dir, &[("zz_good", "e.verb == \"get\"")]);
    let (e, took) = evaluate(&dir, &config(&dir));
    assert_eq!(
        e.verdicts
            .iter()
            .map(|v| v.playbook.as_str())
            .collect::<Vec<_>>(),
        ["zz_good"],
        "{:#?}",
        e.faults
    );
    assert_eq!(e.faults.len(), ESCAPES.len(), "{:#?}", e.faults);
    for f in &e.faults {
        assert_eq!(f.kind, "error", "{f}");
        let file = format!("{}.rhai:", f.playbook);
        assert!(f.location.contains(&file), "{f}");
    }
    // Where rhai knows the spot, the fault names it: file:line:col.
    let at = |id: &str| {
        e.faults
            .iter()
            .find(|f| f.playbook == id)
            .unwrap()
            .location
            .clone()
    };
    assert!(at("open").ends_with("open.rhai:3:1"), "{}", at("open"));
    assert!(at("import_fs").ends_with("import_fs.rhai:3:8"));
    assert!(at("sleep").ends_with("sleep.rhai:3:1"));
    // rhai's sleep() would have held this thread for 10 s (and sleep(1e300) would panic it).
    assert!(took < Duration::from_secs(2), "took {took:?}");
    figure(&format!(
        "security: sandbox_escapes attempts={} faulted={} other_verdicts_kept=1 elapsed_ms={}",
        ESCAPES.len(),
        e.faults.len(),
        took.as_millis()
    ));
}

#[test]
fn data_beyond_the_size_limits_is_refused_before_it_is_built() {
    let s = Scratch::new();
    let dir = s.path("pb");
    let lets: String = (0..300).map(|i| format!("let v{i} = {i};\n")).collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "string_pad",
            "let s = \"\"; s.pad(1000000000, 'x'); true".into(),
        ),
        ("array_pad", "let a = []; a.pad(1000000000, 0); true".into()),
        ("blob", "let b = blob(1000000000); true".into()),
        (
            "split",
            "let s = \"x\"; while s.len() < 30000 { s += s; } s.split(\"\"); true".into(),
        ),
        (
            "debug_text",
            "let a = []; a.pad(9999, \"xxxxxxx\"); a.to_debug(); true".into(),
        ),
        ("nested_arrays", "let a = []; loop { a = [a, a]; }".into()),
        ("variables", format!("{lets}true")),
    ];
    let refs: Vec<(&str, &str)> = cases.iter().map(|(i, r)| (*i, r.as_str())).collect();
    write_all(&dir, &refs);
    write_all(&dir, &[("zz_good", "true")]);
    let mut cfg = config(&dir);
    // Generous operations and time, so that the size limits (not the budget) must stop them.
    cfg.limits.max_operations = 100_000_000;
    cfg.limits.timeout = rampart::config::Seconds::from_secs(10);
    let (e, took) = evaluate(&dir, &cfg);
    assert_eq!(e.verdicts.len(), 1, "{:#?}", e.faults);
    let got: Vec<(&str, &str, &str)> = e
        .faults
        .iter()
        .map(|f| (f.playbook.as_str(), f.kind, f.message.as_str()))
        .collect();
    assert_eq!(got.len(), cases.len(), "{got:#?}");
    for (id, kind, message) in &got {
        assert_eq!(*kind, "limit", "{id}: {message}");
        assert!(
            message.contains("too large") || message.contains("Too many variables"),
            "{id}: {message}"
        );
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Expressions nested past the depth limit do not even compile, and say where.
    let deep = format!("let x = {}1{}; true", "(".repeat(200), ")".repeat(200));
    std::fs::write(dir.join("deep.rhai"), playbook("deep", &deep)).unwrap();
    let errs = load_dir(&dir, &cfg).err().unwrap();
    assert!(errs[0].to_string().contains("deep.rhai:3:"), "{}", errs[0]);
    figure(&format!(
        "security: sandbox_sizes attempts={} stopped={} elapsed_ms={} deep_expression=refused_at_compile",
        cases.len(),
        got.len(),
        took.as_millis()
    ));
}

fn metric(text: &str, name: &str, playbook: &str, kind: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains(&format!("playbook=\"{playbook}\"")))
        .filter(|l| kind.is_none_or(|k| l.contains(&format!("kind=\"{k}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_real_pipeline_faults_are_counted_and_logged_and_the_others_still_alert() {
    let s = Scratch::new();
    let dir = s.path("pb");
    let bad: &[(&str, &str, &str)] = &[
        ("spin", "loop { }", "limit"),
        // rhai applies max_map_size to values built by functions, not to `m[k] = v`, and does not
        // count key bytes: these two are stopped by the operation budget and the deadline.
        (
            "map_entries",
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
            "limit",
        ),
        ("recurse", "fn_down(0)", "limit"),
        (
            "map_keys",
            "let s = \"x\"; while s.len() < 30000 { s += s; } let m = #{}; let i = 0; loop { m[s + i] = i; i += 1; }",
            "limit",
        ),
        ("reads", "read_file(\"/etc/passwd\")", "error"),
        ("dials", "connect(\"127.0.0.1:80\")", "error"),
        ("sleeps", "sleep(5)", "error"),
        ("throws", "throw \"planted-throw-4b1e\"", "error"),
    ];
    std::fs::create_dir_all(&dir).unwrap();
    for (id, rule, _) in bad {
        let body = format!("{}fn fn_down(n) {{ fn_down(n + 1) }}\n", playbook(id, rule));
        std::fs::write(dir.join(format!("{id}.rhai")), body).unwrap();
    }
    write_all(
        &dir,
        &[
            (
                "prints",
                "print(\"planted-print-4b1e\"); debug(\"planted-debug-4b1e\"); true",
            ),
            ("good", "true"),
        ],
    );
    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "sources:\n  webhook:\n    listen: 127.0.0.1:0\n    ack_timeout: 30s\ntelemetry:\n  listen: 127.0.0.1:0\nplaybooks:\n  dir: {}\noutput:\n  console: json\nrespond:\n  alerts_file: {}\nstate:\n  dir: {}\n",
            dir.display(),
            s.path("alerts.jsonl").display(),
            s.path("state").display()
        ),
    )
    .unwrap();
    let mut proc = Spawned::start(
        s.dir.path(),
        "rampart",
        &[
            "--log-level",
            "info,playbook=debug",
            "--log-format",
            "json",
            "run",
            "-c",
            cfg.to_str().unwrap(),
        ],
        &[],
    );
    let hook = proc.addr_logged("webhook source listening").await;
    let telemetry = proc.addr_logged("telemetry listening").await;
    let rss_before = proc.memory_kib("VmHWM");
    let n = 5;
    let (lines, ids) = events(n, 930);
    let t = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("http://{hook}/audit"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"kind":"EventList","items":[{}]}}"#,
            lines.join(",")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let took = t.elapsed();
    // sleep(5) on each of the 5 events would have held the batch for 25 s.
    assert!(took < Duration::from_secs(5), "the batch took {took:?}");
    let rss_after = proc.memory_kib("VmHWM");
    let alerts = s.path("alerts.jsonl");
    let good = eventually(
        "the good playbook's alerts",
        Duration::from_secs(30),
        || {
            let a: Vec<_> = read_jsonl(&alerts)
                .into_iter()
                .filter(|a| a["playbook"] == "good")
                .collect();
            (a.len() == n).then_some(a)
        },
    )
    .await;
    let metrics = reqwest::get(format!("http://{telemetry}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status = proc.stop().await;
    assert!(status.success(), "{status}");

    let mut alerted: Vec<String> = good
        .iter()
        .map(|a| a["event"]["auditID"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(alerted, want, "every event still alerted");
    let name = "rampart_playbook_faults_total";
    for (id, _, kind) in bad {
        assert_eq!(
            metric(&metrics, name, id, Some(kind)),
            n as f64,
            "{id} ({kind}):\n{metrics}"
        );
    }
    let fires = metric(&metrics, "rampart_playbook_fires_total", "good", None);
    assert_eq!(fires, n as f64);
    assert_eq!(
        metric(&metrics, "rampart_playbook_fires_total", "prints", None),
        n as f64
    );

    let stdout = proc_text(&s, "rampart.stdout");
    let stderr = proc_text(&s, "rampart.stderr");
    for l in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|_| panic!("a line on stdout that is not an event: {l}"));
    }
    assert_eq!(stdout.lines().count(), n, "one line per event on stdout");
    let printed = "planted-print-4b1e";
    assert!(!stdout.contains(printed) && !stdout.contains("planted-debug-4b1e"));
    assert!(
        stderr.contains(printed) && stderr.contains("planted-debug-4b1e"),
        "print and debug ran, into the log"
    );
    // Each fault is logged with its playbook's file (and line:col where rhai knows it).
    let faults: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("playbook fault"))
        .map(str::to_owned)
        .collect();
    assert_eq!(faults.len(), n * bad.len(), "{stderr}");
    assert!(faults.iter().any(|l| l.contains("reads.rhai:3:1")));
    assert!(faults
        .iter()
        .any(|l| l.contains("planted-throw-4b1e") && l.contains("throws.rhai:3:1")));
    figure(&format!(
        "security: sandbox_pipeline events={n} faulting_playbooks={} faults_counted={} good_alerts={}/{n} stdout_print_leaks=0 batch_ms={} peak_rss_kib_before={rss_before} peak_rss_kib_after={rss_after}",
        bad.len(),
        faults.len(),
        good.len(),
        took.as_millis()
    ));
}

fn proc_text(s: &Scratch, name: &str) -> String {
    std::fs::read_to_string(s.path(name)).unwrap()
}
