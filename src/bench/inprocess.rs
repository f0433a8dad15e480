//! The in-process part of `rampart bench`: file source → decode → enrich → playbooks → state on sled, no broker and no responders, timed in CPU seconds so the figure is rampart's own cost per event.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{playbook_files, setup, BaseConfig, BenchError};
use crate::pipeline::{self, RunOptions};
use crate::playbook::{cost_table, PlaybookSet, Tally};

/// One measured playbook set.
pub(super) struct Row {
    label: String,
    pub playbooks: usize,
    events: u64,
    cpu: Duration,
    wall: Duration,
    alerts: u64,
    /// The set the config loads as it is.
    pub default_pack: bool,
    /// The config's set plus the Falco pack.
    pub with_falco: bool,
}

impl Row {
    /// Events per CPU-second of the whole process (every thread).
    pub fn per_core(&self) -> f64 {
        self.events as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    /// CPU µs per event.
    pub fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64
    }
}

/// CPU time (user + system) of this process, from /proc.
pub(super) fn cpu_time() -> Duration {
    super::child::cpu_of("self")
}

/// A playbook set to measure.
struct Set {
    label: String,
    dir: PathBuf,
    packs: Vec<PathBuf>,
    count: usize,
    default_pack: bool,
    with_falco: bool,
}

/// The first `n` playbooks of `dir` (by file name) in a directory of their own, with `dir`'s lists.
fn first(dir: &Path, n: usize, work: &Path) -> Result<Set, BenchError> {
    let to = work.join(format!("playbooks-{n}"));
    std::fs::create_dir_all(&to)?;
    let files = playbook_files(dir);
    for f in files.iter().take(n) {
        std::fs::copy(f, to.join(f.file_name().unwrap_or_default()))?;
    }
    let lists = dir.join("lists");
    if lists.is_dir() {
        std::fs::create_dir_all(to.join("lists"))?;
        for e in std::fs::read_dir(&lists)?.filter_map(Result::ok) {
            std::fs::copy(e.path(), to.join("lists").join(e.file_name()))?;
        }
    }
    Ok(Set {
        label: if n == 0 {
            "none (base pipeline)".to_owned()
        } else {
            format!("first {}", n.min(files.len()))
        },
        dir: to,
        packs: Vec::new(),
        count: n.min(files.len()),
        default_pack: false,
        with_falco: false,
    })
}

/// The sets: 1, 10, the config's own (the default pack), and that plus the Falco pack when it ships beside it.
fn sets(base: &BaseConfig, work: &Path) -> Result<Vec<Set>, BenchError> {
    let dirs = base.playbook_dirs();
    let Some(main) = dirs.first() else {
        return Err(setup("the config loads no playbooks (playbooks.dir)"));
    };
    let packs: Vec<PathBuf> = dirs[1..].to_vec();
    let count = |ds: &[PathBuf]| ds.iter().map(|d| playbook_files(d).len()).sum::<usize>();
    let mut out = vec![
        first(main, 0, work)?,
        first(main, 1, work)?,
        first(main, 10, work)?,
    ];
    out.push(Set {
        label: "config's set".into(),
        dir: main.clone(),
        packs: packs.clone(),
        count: count(&dirs),
        default_pack: true,
        with_falco: false,
    });
    let falco = main.join("falco");
    if falco.is_dir() && !packs.contains(&falco) {
        let mut with = packs;
        with.push(falco);
        let mut all = vec![main.clone()];
        all.extend(with.iter().cloned());
        out.push(Set {
            label: "config's + Falco pack".into(),
            dir: main.clone(),
            packs: with,
            count: count(&all),
            default_pack: false,
            with_falco: true,
        });
    }
    Ok(out)
}

async fn measure(
    base: &BaseConfig,
    set: &Set,
    log: &Path,
    state: &Path,
    opts: RunOptions,
) -> Result<(Row, Option<Arc<PlaybookSet>>), BenchError> {
    let yaml = base.with_playbooks(&set.dir, &set.packs).render(&format!(
        "sources:\n  files:\n    - path: {}\n      follow: false\noutput:\n  console: off\ndead_letter:\n  file: {}\nstate:\n  dir: {}\n",
        log.display(),
        state.join("dead-letter.jsonl").display(),
        state.display()
    ))?;
    let cfg = crate::config::load_str(&yaml, "bench").map_err(setup)?;
    let cpu0 = cpu_time();
    let t = Instant::now();
    let running = pipeline::start(&cfg, opts, CancellationToken::new())
        .await
        .map_err(setup)?;
    let playbooks = running.playbooks.as_ref().map(|h| h.current());
    let report = running.wait().await.map_err(setup)?;
    let row = Row {
        label: set.label.clone(),
        playbooks: set.count,
        events: report.events,
        cpu: cpu_time().saturating_sub(cpu0),
        wall: t.elapsed(),
        alerts: report.alerts,
        default_pack: set.default_pack,
        with_falco: set.with_falco,
    };
    Ok((row, playbooks))
}

/// The costliest playbooks of the largest set: one more pass with every playbook run timed.
async fn profile(
    base: &BaseConfig,
    set: &Set,
    log: &Path,
    work: &Path,
    say: &mut impl FnMut(String),
) -> Result<(), BenchError> {
    let tally = Arc::new(Tally::default());
    let opts = RunOptions {
        tally: Some(tally.clone()),
        profile: true,
        ..RunOptions::default()
    };
    let state = work.join("state-profile");
    let (row, playbooks) = measure(base, set, log, &state, opts).await?;
    let _ = std::fs::remove_dir_all(&state);
    let Some(playbooks) = playbooks else {
        return Ok(());
    };
    let table = cost_table(&tally.rows(&playbooks), row.events);
    say(format!(
        "where the playbook time goes ({}, one more pass timing every playbook run; the {} costliest of {}; all: `rampart replay FILE --quiet --profile`):",
        set.label, TOP, set.count
    ));
    for line in table.lines().filter(|l| !l.is_empty()).take(TOP + 2) {
        say(line.to_owned());
    }
    say(String::new());
    Ok(())
}

/// Rows of the playbook cost table the bench prints.
const TOP: usize = 12;

/// Measures every set (best of two passes, each on a fresh state directory) and prints a table.
pub(super) async fn run_all(
    base: &BaseConfig,
    log: &Path,
    work: &Path,
    say: &mut impl FnMut(String),
) -> Result<Vec<Row>, BenchError> {
    say("in process (file source -> decode -> enrich (identity, GeoIP City/ASN/Anonymous, assets, baseline) -> playbooks -> state on sled -> no responders), CPU time of all threads, best of 2:".into());
    say(format!(
        "  {:<24} {:>9} {:>14} {:>12} {:>13} {:>8}",
        "playbooks", "count", "events/s/core", "µs CPU/ev", "events/s wall", "alerts"
    ));
    let mut rows = Vec::new();
    let sets = sets(base, work)?;
    for (i, set) in sets.iter().enumerate() {
        let mut best: Option<Row> = None;
        for pass in 0..2 {
            let state = work.join(format!("state-{i}-{pass}"));
            let (row, _) = measure(base, set, log, &state, RunOptions::default()).await?;
            let _ = std::fs::remove_dir_all(&state);
            if best.as_ref().is_none_or(|b| row.cpu < b.cpu) {
                best = Some(row);
            }
        }
        let Some(r) = best else { continue };
        say(format!(
            "  {:<24} {:>9} {:>14.0} {:>12.2} {:>13.0} {:>8}",
            r.label,
            r.playbooks,
            r.per_core(),
            r.cpu.as_secs_f64() * 1e6 / r.events.max(1) as f64,
            r.events as f64 / r.wall.as_secs_f64().max(1e-9),
            r.alerts
        ));
        rows.push(r);
    }
    say(String::new());
    if let Some(largest) = sets.iter().max_by_key(|s| s.count) {
        profile(base, largest, log, work, say).await?;
    }
    Ok(rows)
}
