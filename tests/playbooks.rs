//! The playbook engine: indexing, sandbox limits, compile diagnostics, hot reload, and `rampart test` / `check` as users run them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::path::Path;
use std::process::Command;

use common::*;
use rampart::config::PlaybooksConfig;
use rampart::event::{decode_record, AuditEvent};
use rampart::playbook::{load_dir, Ev, PlaybookHandle};

fn cfg(dir: &Path) -> PlaybooksConfig {
    PlaybooksConfig {
        dir: dir.to_owned(),
        ..PlaybooksConfig::default()
    }
}

/// A scratch directory with an empty playbook directory `pb` in it.
fn playbook_dir() -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new();
    let dir = s.path("pb");
    std::fs::create_dir(&dir).unwrap();
    (s, dir)
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn playbook(id: &str, on: &str, rule: &str) -> String {
    format!("fn meta() {{ #{{ id: \"{id}\", title: \"{id} fired\", severity: \"medium\", on: #{{ {on} }} }} }}\nfn rule(e) {{\n{rule}\n}}\n")
}

fn event(verb: &str, resource: &str) -> AuditEvent {
    let raw = serde_json::json!({"auditID": "a", "stage": "ResponseComplete", "verb": verb, "requestURI": "/x",
        "user": {"username": "alice"}, "objectRef": {"resource": resource, "namespace": "default", "name": "n"}})
    .to_string();
    decode_record(raw.as_bytes(), &Default::default())
        .events
        .remove(0)
}

#[test]
fn a_playbook_for_create_pods_never_runs_on_get_secrets() {
    let (_scratch, dir) = playbook_dir();
    // This rule would fire on anything it ran on.
    write(
        &dir,
        "pods.rhai",
        &playbook("pods", "verbs: [\"create\"], resources: [\"pods\"]", "true"),
    );
    write(&dir, "all.rhai", &playbook("all", "", "true"));
    let set = load_dir(&dir, &cfg(&dir)).unwrap();
    let on = |verb, res| {
        let e = set.evaluate(&Ev::new(event(verb, res)));
        (
            e.ran,
            e.verdicts
                .into_iter()
                .map(|v| v.playbook)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(on("get", "secrets"), (1, vec!["all".to_owned()]));
    assert_eq!(
        on("create", "pods"),
        (2, vec!["all".to_owned(), "pods".to_owned()])
    );
}

#[test]
fn where_and_where_any_decide_natively_which_events_a_rule_sees() {
    let (_scratch, dir) = playbook_dir();
    std::fs::create_dir(dir.join("lists")).unwrap();
    write(&dir, "lists/ops.yaml", "- \"al*\"\n");
    // Rules that fire on anything they run on: only the pre-filters decide.
    write(
        &dir,
        "not_ops.rhai",
        &playbook(
            "not-ops",
            "where: #{ user: #{ not_in_glob_lists: [\"ops\"] }, code: #{ lt: 400 } }",
            "true",
        ),
    );
    write(
        &dir,
        "ops_only.rhai",
        &playbook(
            "ops-only",
            "where: #{ user: #{ in_glob_lists: [\"ops\"] } }",
            "true",
        ),
    );
    write(
        &dir,
        "either.rhai",
        &playbook(
            "either",
            "where_any: [#{ verb: #{ matches: [\"delete\"] } }, #{ resource: #{ matches: [\"secret*\"] } }]",
            "true",
        ),
    );
    let set = load_dir(&dir, &cfg(&dir)).unwrap();
    let fired = |verb, res| {
        set.evaluate(&Ev::new(event(verb, res)))
            .verdicts
            .into_iter()
            .map(|v| v.playbook)
            .collect::<Vec<_>>()
    };
    // alice matches the glob list entry al*: not-ops never runs for her, ops-only always does.
    assert_eq!(fired("get", "pods"), ["ops-only"]);
    assert_eq!(fired("delete", "pods"), ["either", "ops-only"]);
    assert_eq!(fired("get", "secrets"), ["either", "ops-only"]);

    // A list the pre-filter names that is defined nowhere fails the load with the file.
    write(
        &dir,
        "bad.rhai",
        &playbook(
            "bad",
            "where: #{ user: #{ in_lists: [\"nowhere\"] } }",
            "true",
        ),
    );
    let err = load_dir(&dir, &cfg(&dir)).unwrap_err();
    assert!(
        err.iter()
            .any(|d| d.to_string().contains("bad.rhai") && d.to_string().contains("\"nowhere\"")),
        "{err:?}"
    );
}

#[test]
fn every_sandbox_limit_stops_its_script_and_the_other_playbooks_still_answer() {
    let (_scratch, dir) = playbook_dir();
    write(&dir, "a_loop.rhai", &playbook("loop", "", "loop { }"));
    write(
        &dir,
        "b_recursion.rhai",
        &format!(
            "{}fn down(n) {{ down(n + 1) }}\n",
            playbook("recursion", "", "down(0)")
        ),
    );
    write(
        &dir,
        "c_huge.rhai",
        &playbook("huge", "", "let s = \"x\"; loop { s += s; }"),
    );
    write(
        &dir,
        "d_array.rhai",
        &playbook("array", "", "let a = []; loop { a.push(1); }"),
    );
    write(
        &dir,
        "e_good.rhai",
        &playbook("good", "", "e.verb == \"get\""),
    );
    let mut c = cfg(&dir);
    c.limits.max_operations = 1_000_000_000_000; // so that the deadline, not the operation count, stops the loop
    c.limits.timeout = rampart::config::Seconds::from_millis(100);
    let set = load_dir(&dir, &c).unwrap();
    let e = set.evaluate(&Ev::new(event("get", "pods")));
    assert_eq!(e.verdicts.len(), 1, "{:?}", e.faults);
    assert_eq!(e.verdicts[0].playbook, "good");
    let faults: Vec<(&str, &str)> = e
        .faults
        .iter()
        .map(|f| (f.playbook.as_str(), f.kind))
        .collect();
    assert_eq!(
        faults,
        [
            ("loop", "limit"),
            ("recursion", "limit"),
            ("huge", "limit"),
            ("array", "limit")
        ]
    );
    let looped = &e.faults[0];
    assert_eq!(looped.message, "deadline exceeded");
    assert!(
        looped.location.contains("a_loop.rhai:"),
        "{}",
        looped.location
    );

    // With the default operation budget the loop stops on operations instead.
    let set = load_dir(&dir, &cfg(&dir)).unwrap();
    let e = set.evaluate(&Ev::new(event("get", "pods")));
    assert!(
        e.faults[0].message.contains("operations"),
        "{}",
        e.faults[0].message
    );
}

#[test]
fn scripts_cannot_import_modules_or_eval() {
    let (_scratch, dir) = playbook_dir();
    write(&dir, "eval.rhai", &playbook("eval", "", "eval(\"1\")"));
    let errs = load_dir(&dir, &cfg(&dir)).err().unwrap();
    assert!(errs[0].to_string().contains("eval.rhai:3:"), "{}", errs[0]);
    std::fs::remove_file(dir.join("eval.rhai")).unwrap();
    // import compiles, but nothing can be resolved: the call faults and reads nothing.
    write(
        &dir,
        "import.rhai",
        &playbook("import", "", "import \"/etc/passwd\" as p; true"),
    );
    let set = load_dir(&dir, &cfg(&dir)).unwrap();
    let e = set.evaluate(&Ev::new(event("get", "pods")));
    assert!(e.verdicts.is_empty());
    assert_eq!(e.faults.len(), 1);
    assert!(
        e.faults[0].message.contains("/etc/passwd"),
        "{}",
        e.faults[0].message
    );
}

#[test]
fn compile_and_contract_errors_are_all_reported_with_file_line_and_column() {
    let (_scratch, dir) = playbook_dir();
    write(&dir, "syntax.rhai", "fn meta() { #{ id: \"x\", title: \"t\", severity: \"low\" } }\nfn rule(e) {\n  e.verb == \n}\n");
    write(
        &dir,
        "norule.rhai",
        "fn meta() { #{ title: \"t\", severity: \"low\" } }\n",
    );
    write(
        &dir,
        "badsev.rhai",
        "fn meta() { #{ title: \"t\", severity: \"urgent\" } }\nfn rule(e) { true }\n",
    );
    write(&dir, "typo.rhai", "fn meta() { #{ title: \"t\", severity: \"low\", on: #{ verb: [\"get\"] } } }\nfn rule(e) { true }\n");
    write(&dir, "fine.rhai", &playbook("fine", "", "true"));
    let errs = load_dir(&dir, &cfg(&dir)).err().unwrap();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 4, "{text:#?}");
    let find = |f: &str| {
        text.iter()
            .find(|t| t.contains(f))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        find("syntax.rhai").contains("syntax.rhai:4:1:"),
        "{text:#?}"
    );
    assert!(find("norule.rhai").contains("missing fn rule(e) or fn score(e)"));
    assert!(find("badsev.rhai").contains("unknown severity \"urgent\""));
    assert!(find("typo.rhai").contains("unknown field `verb`"));
}

#[test]
fn hot_reload_swaps_the_set_and_a_broken_edit_keeps_the_old_one() {
    let (_scratch, dir) = playbook_dir();
    write(&dir, "one.rhai", &playbook("one", "", "true"));
    let handle = PlaybookHandle::load(&cfg(&dir)).unwrap();
    let ids = |h: &PlaybookHandle| {
        h.current()
            .playbooks()
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&handle), ["one"]);
    write(&dir, "two.rhai", &playbook("two", "", "true"));
    assert!(handle.reload_if_changed());
    assert_eq!(ids(&handle), ["one", "two"]);
    write(&dir, "two.rhai", "fn meta() { #{ title: ");
    assert!(!handle.reload_if_changed(), "a broken set is refused");
    assert_eq!(ids(&handle), ["one", "two"], "the old set keeps running");
    std::fs::remove_file(dir.join("two.rhai")).unwrap();
    assert!(handle.reload_if_changed());
    assert_eq!(ids(&handle), ["one"]);
}

#[test]
fn a_mounted_configmap_reloads_when_kubernetes_swaps_its_data() {
    // A ConfigMap volume: each key is a link `name -> ..data/name`, and `..data` links to a
    // timestamped directory that the kubelet replaces, atomically, when the ConfigMap changes.
    let (_scratch, dir) = playbook_dir();
    let version = |n: &str, ids: &[&str]| {
        let v = dir.join(n);
        std::fs::create_dir_all(&v).unwrap();
        for id in ids {
            write(&v, &format!("{id}.rhai"), &playbook(id, "", "true"));
        }
    };
    version("..2026_12_07_v1", &["one", "two"]);
    std::os::unix::fs::symlink("..2026_12_07_v1", dir.join("..data")).unwrap();
    for id in ["one", "two"] {
        std::os::unix::fs::symlink(format!("..data/{id}.rhai"), dir.join(format!("{id}.rhai")))
            .unwrap();
    }
    let handle = PlaybookHandle::load(&cfg(&dir)).unwrap();
    let titles = |h: &PlaybookHandle| {
        let set = h.current();
        let mut t: Vec<String> = set.playbooks().iter().map(|p| p.title.clone()).collect();
        t.sort();
        t
    };
    assert_eq!(titles(&handle), ["one fired", "two fired"]);
    assert!(!handle.reload_if_changed(), "nothing changed yet");

    version("..2026_12_07_v2", &[]);
    write(
        &dir.join("..2026_12_07_v2"),
        "one.rhai",
        &playbook("one", "", "true").replace("one fired", "one edited"),
    );
    write(
        &dir.join("..2026_12_07_v2"),
        "two.rhai",
        &playbook("two", "", "true"),
    );
    std::os::unix::fs::symlink("..2026_12_07_v2", dir.join("..data.tmp")).unwrap();
    std::fs::rename(dir.join("..data.tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_12_07_v1")).unwrap();
    assert!(handle.reload_if_changed(), "the swap is an edit");
    assert_eq!(titles(&handle), ["one edited", "two fired"]);
}

#[test]
fn editing_a_list_file_changes_verdicts_without_touching_scripts() {
    let s = Scratch::new();
    let dir = s.path("pb");
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    write(
        &dir,
        "allow.rhai",
        &playbook("allow", "", "!in_list(\"trusted_users\", e.user)"),
    );
    write(&dir, "lists/trusted_users.yaml", "- bob\n");
    let handle = PlaybookHandle::load(&cfg(&dir)).unwrap();
    let fires = |h: &PlaybookHandle| {
        !h.current()
            .evaluate(&Ev::new(event("get", "pods")))
            .verdicts
            .is_empty()
    };
    assert!(fires(&handle), "alice is not trusted yet");
    write(&dir, "lists/trusted_users.yaml", "- bob\n- alice\n");
    assert!(handle.reload_if_changed());
    assert!(!fires(&handle), "alice is trusted now");
    write(&dir, "lists/trusted_users.yaml", "alice: nope\n");
    assert!(
        !handle.reload_if_changed(),
        "a malformed list file is refused"
    );
    assert!(!fires(&handle), "and the previous lists stay");
}

fn rampart(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
    c.current_dir(dir).env_remove("RAMPART_LOG");
    c
}

#[test]
fn rampart_test_passes_on_the_shipped_playbooks_and_shows_a_diff_for_a_wrong_expectation() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = rampart(repo)
        .args(["test", "--min-tests", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // The Falco pack too: every ported rule has a positive and a negative case.
    let out = rampart(repo)
        .args(["test", "playbooks/falco", "--min-tests", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("COVERAGE"), "{stdout}");

    let s = Scratch::new();
    let dir = s.path("playbooks");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "exec_critical_namespace.rhai",
        "exec_critical_namespace.tests.yaml",
    ] {
        std::fs::copy(repo.join("playbooks").join(f), dir.join(f)).unwrap();
    }
    // The lists it reads must exist (a list defined nowhere fails the load).
    std::fs::create_dir(dir.join("lists")).unwrap();
    std::fs::write(
        dir.join("lists/critical_namespaces.yaml"),
        "[kube-system]\n",
    )
    .unwrap();
    let tests = dir.join("exec_critical_namespace.tests.yaml");
    let text = std::fs::read_to_string(&tests).unwrap().replacen(
        "severity: critical",
        "severity: medium",
        1,
    );
    std::fs::write(&tests, text).unwrap();
    let out = rampart(s.dir.path())
        .args(["test", "playbooks"])
        .env("RAMPART_TEST_UNUSED", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  exec-critical-namespace :: a download-and-run command in kube-system is critical"), "{stdout}");
    assert!(
        stdout.contains("severity:\n          - medium\n          + critical"),
        "{stdout}"
    );
    assert!(stdout.contains("3 passed, 1 failed"), "{stdout}");
    // --min-tests also wants a negative case for each playbook.
    write(&dir, "exec_critical_namespace.tests.yaml", "- name: only positive\n  event: { auditID: a, stage: ResponseComplete, verb: create, user: { username: bob }, objectRef: { resource: pods, subresource: exec, namespace: kube-system } }\n  expect: { fires: true }\n");
    let out = rampart(s.dir.path())
        .args(["test", "playbooks", "--min-tests", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("COVERAGE  exec-critical-namespace: 1 case(s), 1 positive"));
}

#[test]
fn check_and_run_refuse_a_broken_playbook_set_with_exit_2() {
    let s = Scratch::new();
    let dir = s.path("playbooks");
    std::fs::create_dir(&dir).unwrap();
    write(
        &dir,
        "broken.rhai",
        "fn meta() { #{ title: \"t\", severity: \"low\" } }\nfn rule(e) { e.verb == }\n",
    );
    let log = s.path("a.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        s.path("rampart.yaml"),
        format!(
            "sources:\n  files: [{{ path: {} }}]\nplaybooks:\n  dir: {}\nstate:\n  dir: {}\n",
            log.display(),
            dir.display(),
            s.path("state").display()
        ),
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = rampart(s.dir.path()).arg(cmd).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("broken.rhai:2:"), "{cmd}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_added_under_a_running_pipeline_is_used_by_the_next_events() {
    let (s, dir) = playbook_dir();
    write(&dir, "quiet.rhai", &playbook("quiet", "", "false"));
    let cfg = s.config(&format!(
        "sources:\n  webhook:\n    listen: 127.0.0.1:0\nplaybooks:\n  dir: {}\n  reload_interval: 50ms\n",
        dir.display()
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = rampart::pipeline::start(&cfg, Default::default(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/audit", running.webhook_addr.unwrap());
    let client = reqwest::Client::new();
    let post = |n: usize| {
        let (lines, _) = events(1, 900 + n as u64);
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(lines[0].clone())
            .send()
    };
    assert_eq!(post(0).await.unwrap().status(), 200);
    assert!(read_jsonl(&s.output())[0]["verdicts"].is_null());
    write(&dir, "loud.rhai", &playbook("loud", "", "true"));
    let mut n = 0;
    loop {
        n += 1;
        assert_eq!(post(n).await.unwrap().status(), 200);
        let last = read_jsonl(&s.output()).pop().unwrap();
        if last["verdicts"][0]["playbook"] == "loud" {
            break;
        }
        assert!(n < 400, "the new playbook was never used");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_error_dead_letter_a_faulting_playbook_dead_letters_the_event_and_it_still_flows() {
    let (s, dir) = playbook_dir();
    write(
        &dir,
        "throws.rhai",
        &playbook("throws", "", "throw \"boom\";"),
    );
    write(&dir, "fires.rhai", &playbook("fires", "", "true"));
    let cfg = s.config(&format!(
        "sources:\n  webhook:\n    listen: 127.0.0.1:0\nplaybooks:\n  dir: {}\n  on_error: dead_letter\n",
        dir.display()
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = rampart::pipeline::start(&cfg, Default::default(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/audit", running.webhook_addr.unwrap());
    let (lines, ids) = events(1, 77);
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(lines[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    shutdown.cancel();
    running.wait().await.unwrap();
    let out = read_jsonl(&s.output());
    assert_eq!(
        out[0]["auditID"],
        ids[0].as_str(),
        "the event still reaches the output"
    );
    assert_eq!(
        out[0]["verdicts"][0]["playbook"], "fires",
        "the other playbook's verdict stands"
    );
    let dead = read_jsonl(&s.dead_letters());
    assert_eq!(dead.len(), 1);
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("throws.rhai:3:") && reason.contains("boom"),
        "{reason}"
    );
    assert!(dead[0]["original"].as_str().unwrap().contains(&ids[0]));
}

#[test]
fn verdicts_add_to_entity_risk_which_other_playbooks_read() {
    let (_scratch, dir) = playbook_dir();
    write(&dir, "a_weak.rhai", &playbook("weak", "", "true")); // medium: 40 points per event
    write(
        &dir,
        "b_risky.rhai",
        "fn meta() { #{ id: \"risky\", title: \"high-risk entity\", severity: \"high\" } }\nfn score(e) { let r = risk(e.user); if r >= 80.0 { r.to_int() } else { 0 } }\n",
    );
    let set = load_dir(&dir, &cfg(&dir)).unwrap();
    let fired = |set: &rampart::playbook::PlaybookSet| {
        set.evaluate(&Ev::new(event("get", "pods")))
            .verdicts
            .into_iter()
            .map(|v| (v.playbook, v.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(fired(&set), [("weak".to_owned(), 40)]);
    assert_eq!(
        fired(&set),
        [("weak".to_owned(), 40), ("risky".to_owned(), 80)],
        "two weak signals add up"
    );
}

#[test]
fn a_pack_loads_beside_the_playbook_directory_with_its_own_lists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = rampart::playbook::load_dir(
        &repo.join("playbooks"),
        &rampart::config::PlaybooksConfig {
            dir: repo.join("playbooks"),
            ..Default::default()
        },
    )
    .unwrap()
    .len();
    let cfg = rampart::config::PlaybooksConfig {
        dir: repo.join("playbooks"),
        packs: vec![repo.join("playbooks/falco")],
        ..Default::default()
    };
    let set = rampart::playbook::load_dir(&cfg.dir, &cfg).unwrap();
    assert_eq!(
        set.len(),
        own + 48,
        "the 48 Falco playbooks join the own ones"
    );
    // A privileged pod: the pack's rule fires, reading its own lists (the trusted images).
    let trace = std::fs::read_to_string(
        repo.join("tests/data/falco-k8s-audit/traces/create_nginx_pod_privileged.json"),
    )
    .unwrap();
    let line = trace.lines().find(|l| l.contains("\"create\"")).unwrap();
    let mut d = rampart::event::decode_record(line.as_bytes(), &Default::default());
    let ev = d.events.remove(0);
    let verdicts = set.evaluate(&rampart::playbook::Ev::new(ev)).verdicts;
    assert!(
        verdicts
            .iter()
            .any(|v| v.playbook == "create-privileged-pod"),
        "{verdicts:?}"
    );
    let bad = rampart::config::PlaybooksConfig {
        packs: vec![repo.join("playbooks/nope")],
        ..cfg
    };
    let err = rampart::playbook::load_dir(&bad.dir, &bad).unwrap_err();
    assert!(err
        .iter()
        .any(|d| d.to_string().contains("pack directory not found")));
}
