//! Before and after in one run: the previous build (a checkout with its release binary, `--previous DIR`) and this one replay the same stream with their own default pack, Falco pack and no playbooks, each as a child process, alternating, so both figures come from the same machine at the same time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{setup, BaseConfig, BenchError};

/// CPU time (user + system) of this process's waited-for children, from /proc.
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(13).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(14).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// One build: its binary and the checkout its config and playbooks come from.
struct Build {
    binary: PathBuf,
    root: PathBuf,
}

impl Build {
    /// CPU µs per event of `replay` over `log` with `config` (start-up included: loading the
    /// GeoIP databases and compiling the playbooks, the same for both builds).
    fn replay(&self, config: &Path, log: &Path, events: usize) -> Result<f64, BenchError> {
        let before = children_cpu();
        let out = Command::new(&self.binary)
            .args(["replay", "--quiet", "-c"])
            .arg(config)
            .arg(log)
            .current_dir(&self.root)
            .env("RAMPART_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| setup(format!("{}: {e}", self.binary.display())))?;
        if !out.status.success() {
            return Err(setup(format!(
                "{} replay -c {} failed ({}): {}",
                self.binary.display(),
                config.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let cpu = children_cpu().saturating_sub(before);
        Ok(cpu.as_secs_f64() * 1e6 / events.max(1) as f64)
    }

    /// Bench configs for this build's own sets: no playbooks, the default pack, default + Falco.
    fn configs(
        &self,
        work: &Path,
        log: &Path,
        tag: &str,
    ) -> Result<Vec<(&'static str, PathBuf)>, BenchError> {
        let base = BaseConfig::load(&self.root.join("rampart.yaml"))?;
        let playbooks = self.root.join("playbooks");
        let empty = work.join(format!("{tag}-no-playbooks"));
        std::fs::create_dir_all(empty.join("lists"))?;
        let sets: [(&'static str, PathBuf, Vec<PathBuf>); 3] = [
            ("no playbooks", empty, Vec::new()),
            ("default pack", playbooks.clone(), Vec::new()),
            (
                "default + Falco",
                playbooks.clone(),
                vec![playbooks.join("falco")],
            ),
        ];
        let mut out = Vec::new();
        for (i, (label, dir, packs)) in sets.into_iter().enumerate() {
            // A source, because a config must have one (the replay replaces it with the stream).
            let yaml = base.with_playbooks(&dir, &packs).render(&format!(
                "sources:\n  files:\n    - path: {}\n      follow: false\noutput:\n  console: off\ndead_letter:\n  file: {}\n",
                log.display(),
                work.join(format!("{tag}-{i}-dead-letter.jsonl")).display()
            ))?;
            let path = work.join(format!("{tag}-{i}.yaml"));
            std::fs::write(&path, yaml)?;
            out.push((label, path));
        }
        Ok(out)
    }
}

/// Prints both builds' CPU per event for each set, best of 2 alternating runs.
pub(super) fn run(
    previous: &Path,
    log: &Path,
    events: usize,
    work: &Path,
    say: &mut impl FnMut(String),
) -> Result<(), BenchError> {
    let root = previous
        .canonicalize()
        .map_err(|e| setup(format!("--previous {}: {e}", previous.display())))?;
    let prev = Build {
        binary: root.join("target/release/rampart"),
        root,
    };
    if !prev.binary.is_file() {
        return Err(setup(format!(
            "--previous: no {} (build it with cargo build --release there)",
            prev.binary.display()
        )));
    }
    let this = Build {
        binary: std::env::current_exe()?,
        root: std::env::current_dir()?,
    };
    let (pc, tc) = (
        prev.configs(work, log, "prev")?,
        this.configs(work, log, "this")?,
    );
    say(format!(
        "before and after (each build replays the stream with its own playbooks as a child process, start-up included; CPU µs per event, best of 2 alternating):\n  previous: {}",
        prev.root.display()
    ));
    say(format!(
        "  {:<20} {:>12} {:>12} {:>8}",
        "playbooks", "previous", "this", "ratio"
    ));
    for ((label, p), (_, t)) in pc.iter().zip(&tc) {
        let (mut best_p, mut best_t) = (f64::MAX, f64::MAX);
        for _ in 0..2 {
            best_p = best_p.min(prev.replay(p, log, events)?);
            best_t = best_t.min(this.replay(t, log, events)?);
        }
        say(format!(
            "  {label:<20} {best_p:>12.2} {best_t:>12.2} {:>8.2}",
            best_t / best_p.max(1e-9)
        ));
    }
    say(String::new());
    Ok(())
}
