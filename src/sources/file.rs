//! The file source: reads a JSON-lines audit log once, or follows it like `tail -F` across rotation and truncation, resuming after a restart.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::registry::{BoxFuture, Source, SourceError, StartContext};
use super::{now_ms, route_key, Ack, Batcher, OffsetTracker, Origin, Record, Router};
use crate::config::FileSourceConfig;
use crate::event::{ClusterHint, SourceKind};

/// Errors of the file source.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("cannot open audit log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read audit log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot save position of {path} in {checkpoint}: {source}")]
    Checkpoint {
        path: PathBuf,
        checkpoint: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file source thread failed: {0}")]
    Thread(String),
}

/// Where a followed file was acknowledged up to, saved across restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Checkpoint {
    dev: u64,
    ino: u64,
    offset: u64,
}

/// How a file source runs, beyond its config.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Directory for the position checkpoint (follow mode only).
    pub state_dir: PathBuf,
    /// Bytes read so far, for progress bars.
    pub progress: Option<Arc<AtomicU64>>,
    /// Longest to wait for acks when switching files or stopping.
    pub drain_timeout: Duration,
    /// Lines handed to a worker at once.
    pub batch_size: usize,
}

/// A running file source.
pub struct FileSource {
    thread: std::thread::JoinHandle<Result<(), FileSourceError>>,
}

impl FileSource {
    /// Opens the file (failing fast if it is missing) and starts reading on its own thread.
    pub fn start(
        cfg: &FileSourceConfig,
        opts: FileOptions,
        cluster: ClusterHint,
        router: Router,
        shutdown: CancellationToken,
    ) -> Result<Self, FileSourceError> {
        let path = cfg.path.clone();
        let file = File::open(&path).map_err(|source| FileSourceError::Open {
            path: path.clone(),
            source,
        })?;
        let reader = Reader {
            label: Arc::from(path.display().to_string()),
            checkpoint: opts.state_dir.join(checkpoint_name(&path)),
            path,
            follow: cfg.follow,
            poll: cfg.poll_interval.get(),
            tracker: Arc::new(OffsetTracker::default()),
            cluster,
            batcher: Some(Batcher::new(router, opts.batch_size)),
            shutdown,
            opts,
            generation: 0,
        };
        let thread = std::thread::Builder::new()
            .name("file-source".into())
            .spawn(move || reader.run(file))
            .map_err(|e| FileSourceError::Thread(e.to_string()))?;
        Ok(Self { thread })
    }

    pub async fn join(self) -> Result<(), FileSourceError> {
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .map_err(|e| FileSourceError::Thread(e.to_string()))?
            .map_err(|_| FileSourceError::Thread("reader thread panicked".into()))?
    }
}

/// `sources.files` (registered in [`super::registry`]): one reader per file.
pub fn start<'a>(
    cx: &'a StartContext<'a>,
    out: &'a mut Vec<Box<dyn Source>>,
) -> BoxFuture<'a, Result<(), SourceError>> {
    Box::pin(async move {
        let cfg = cx.config;
        // A file read to its end waits for its acknowledgements as long as a Kafka source would.
        let drain = cfg
            .sources
            .kafka
            .as_ref()
            .map_or(cfg.pipeline.shutdown_grace.get(), |k| k.drain_timeout.get());
        for f in &cfg.sources.files {
            let opts = FileOptions {
                state_dir: cx.state_dir.clone(),
                progress: cx.progress.clone(),
                drain_timeout: drain,
                batch_size: cfg.pipeline.batch_size,
            };
            let hint = f.cluster.as_deref().map(Arc::from);
            let src = FileSource::start(f, opts, hint, cx.router.clone(), cx.shutdown.clone())?;
            out.push(Box::new(src));
        }
        Ok(())
    })
}

impl Source for FileSource {
    fn join(self: Box<Self>) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { Ok(FileSource::join(*self).await?) })
    }
}

fn checkpoint_name(path: &Path) -> String {
    let s = path.display().to_string();
    let stem: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("file-{stem}-{:016x}.json", route_key(&s, 0))
}

struct Reader {
    path: PathBuf,
    label: Arc<str>,
    checkpoint: PathBuf,
    follow: bool,
    poll: Duration,
    tracker: Arc<OffsetTracker>,
    cluster: ClusterHint,
    batcher: Option<Batcher>,
    shutdown: CancellationToken,
    opts: FileOptions,
    /// Bumped on every rotation or truncation so positions of different files never mix.
    generation: u64,
}

/// One open file being read.
struct Open {
    reader: BufReader<File>,
    dev: u64,
    ino: u64,
    /// Byte offset of the next unread line.
    pos: u64,
    /// Line number of the next line, when known (reading started at the top).
    line: Option<u64>,
}

impl Open {
    fn new(file: File, path: &Path) -> Result<Self, FileSourceError> {
        let meta = file.metadata().map_err(|source| FileSourceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            dev: meta.dev(),
            ino: meta.ino(),
            pos: 0,
            line: Some(1),
        })
    }

    fn seek(&mut self, pos: u64, path: &Path) -> Result<(), FileSourceError> {
        self.reader
            .seek(SeekFrom::Start(pos))
            .map_err(|source| FileSourceError::Read {
                path: path.to_owned(),
                source,
            })?;
        self.pos = pos;
        self.line = if pos == 0 { Some(1) } else { None };
        Ok(())
    }
}

enum Step {
    /// The pipeline is gone or shutdown began.
    Stop,
    /// Reached the end of what is there now.
    Eof,
}

impl Reader {
    fn run(mut self, file: File) -> Result<(), FileSourceError> {
        let mut open = Open::new(file, &self.path)?;
        if self.follow {
            self.resume(&mut open)?;
        }
        let mut partial: Vec<u8> = Vec::new();
        let mut last_save = Instant::now();
        let result = loop {
            match self.read_available(&mut open, &mut partial) {
                Err(e) => break Err(e),
                Ok(Step::Stop) => break Ok(()),
                Ok(Step::Eof) if !self.follow => {
                    // A last line without a newline still counts when reading once.
                    if !partial.is_empty() {
                        let line = std::mem::take(&mut partial);
                        let len = line.len() as u64;
                        self.send_line(&mut open, line, len);
                    }
                    break Ok(());
                }
                Ok(Step::Eof) => {}
            }
            if last_save.elapsed() >= Duration::from_secs(1) {
                self.save(&open)?;
                last_save = Instant::now();
            }
            if self.shutdown.is_cancelled() {
                break Ok(());
            }
            std::thread::sleep(self.poll);
            if let Err(e) = self.check_rotation(&mut open, &mut partial) {
                break Err(e);
            }
        };
        if let Some(mut b) = self.batcher.take() {
            let _ = b.flush();
        }
        let slots = [self.generation];
        let left = self.tracker.wait_drained(&slots, self.opts.drain_timeout);
        if left > 0 {
            tracing::warn!(file = %self.label, pending = left, "stopped before all lines were acknowledged");
        }
        if self.follow {
            self.save(&open)?;
        }
        result
    }

    /// Picks up where the last run stopped: the same file, or its rotated predecessor.
    fn resume(&mut self, open: &mut Open) -> Result<(), FileSourceError> {
        let Some(cp) = std::fs::read(&self.checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).ok())
        else {
            return Ok(());
        };
        let size = open.reader.get_ref().metadata().map_or(0, |m| m.len());
        if cp.dev == open.dev && cp.ino == open.ino {
            if cp.offset <= size {
                open.seek(cp.offset, &self.path)?;
                tracing::info!(file = %self.label, offset = cp.offset, "resuming");
            }
            return Ok(());
        }
        // The file was rotated while we were stopped: finish the old one first.
        if let Some(old) = self.find_rotated(&cp) {
            tracing::info!(file = %self.label, rotated = %old.display(), offset = cp.offset, "finishing rotated file first");
            if let Ok(f) = File::open(&old) {
                let mut prev = Open::new(f, &old)?;
                prev.seek(cp.offset, &old)?;
                let mut partial = Vec::new();
                if let Ok(Step::Stop) = self.read_available(&mut prev, &mut partial) {
                    return Ok(());
                }
                if !partial.is_empty() {
                    let len = partial.len() as u64;
                    self.send_line(&mut prev, partial, len);
                }
                self.next_generation();
            }
        } else {
            tracing::warn!(file = %self.label, "file was replaced while stopped and the old one is gone; reading the new one from the start");
        }
        Ok(())
    }

    fn find_rotated(&self, cp: &Checkpoint) -> Option<PathBuf> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty())?;
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.dev() == cp.dev && m.ino() == cp.ino)
            })
    }

    /// Reads every complete line there is now. A trailing partial line waits in `partial`.
    fn read_available(
        &mut self,
        open: &mut Open,
        partial: &mut Vec<u8>,
    ) -> Result<Step, FileSourceError> {
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(Step::Stop);
            }
            let mut buf = std::mem::take(partial);
            let n = open.reader.read_until(b'\n', &mut buf).map_err(|source| {
                FileSourceError::Read {
                    path: self.path.clone(),
                    source,
                }
            })?;
            if n == 0 || buf.last() != Some(&b'\n') {
                *partial = buf;
                // Nothing more for now: hand over what has been read.
                let flushed = self.batcher.as_mut().is_some_and(|b| b.flush().is_ok());
                return Ok(if flushed { Step::Eof } else { Step::Stop });
            }
            let len = buf.len() as u64;
            if !self.send_line(open, buf, len) {
                return Ok(Step::Stop);
            }
        }
    }

    /// Sends one line (with its newline, if any) as a record; false when the pipeline is gone.
    fn send_line(&mut self, open: &mut Open, mut line: Vec<u8>, len: u64) -> bool {
        let start = open.pos;
        open.pos += len;
        let line_no = open.line;
        open.line = open.line.map(|l| l + 1);
        if let Some(p) = &self.opts.progress {
            p.fetch_add(len, Ordering::Relaxed);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        let (s, e) = (to_i64(start), to_i64(open.pos));
        self.tracker.register(self.generation, s, e);
        let record = Record {
            bytes: Bytes::from(line),
            origin: Origin {
                source: SourceKind::File,
                file: Some(self.label.clone()),
                line: line_no,
                offset: Some(s),
                received_at_ms: now_ms(),
                ..Origin::default()
            },
            cluster: self.cluster.clone(),
            route_key: route_key(&self.label, 0),
            ack: Ack::tracked(self.tracker.clone(), self.generation, s),
        };
        match &mut self.batcher {
            Some(b) => b.push(record).is_ok(),
            None => false,
        }
    }

    /// `tail -F`: notices a replaced file (new inode) or a truncated one.
    fn check_rotation(
        &mut self,
        open: &mut Open,
        partial: &mut Vec<u8>,
    ) -> Result<(), FileSourceError> {
        let current_len = open
            .reader
            .get_ref()
            .metadata()
            .map_or(open.pos, |m| m.len());
        if current_len < open.pos {
            tracing::info!(file = %self.label, "file truncated; reading from the start");
            self.next_generation();
            partial.clear();
            open.seek(0, &self.path)?;
            return Ok(());
        }
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(()); // between rename and re-create
        };
        if meta.ino() == open.ino && meta.dev() == open.dev {
            return Ok(());
        }
        // Rotated: finish the old file (still open), then switch.
        if let Step::Stop = self.read_available(open, partial)? {
            return Ok(());
        }
        if !partial.is_empty() {
            let line = std::mem::take(partial);
            let len = line.len() as u64;
            self.send_line(open, line, len);
        }
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(_) => return Ok(()),
        };
        tracing::info!(file = %self.label, "file rotated; following the new one");
        self.next_generation();
        *open = Open::new(file, &self.path)?;
        self.save(open)
    }

    /// Starts a new position space once the previous file's lines are acknowledged.
    fn next_generation(&mut self) {
        if let Some(b) = self.batcher.as_mut() {
            let _ = b.flush();
        }
        let left = self
            .tracker
            .wait_drained(&[self.generation], self.opts.drain_timeout);
        if left > 0 {
            tracing::warn!(file = %self.label, pending = left, "switching files before all lines were acknowledged");
        }
        self.tracker.forget(self.generation);
        self.generation += 1;
    }

    /// Saves the acknowledged position of the current file (atomically, by rename).
    fn save(&self, open: &Open) -> Result<(), FileSourceError> {
        if !self.follow {
            return Ok(());
        }
        let offset = self
            .tracker
            .lock()
            .get(&self.generation)
            .and_then(|p| p.committable())
            .map_or(open.pos, |c| u64::try_from(c).unwrap_or(0));
        let cp = Checkpoint {
            dev: open.dev,
            ino: open.ino,
            offset,
        };
        let err = |source| FileSourceError::Checkpoint {
            path: self.path.clone(),
            checkpoint: self.checkpoint.clone(),
            source,
        };
        std::fs::create_dir_all(&self.opts.state_dir).map_err(err)?;
        let tmp = self.checkpoint.with_extension("tmp");
        let body = serde_json::to_vec(&cp).unwrap_or_default();
        std::fs::write(&tmp, body).map_err(err)?;
        std::fs::rename(&tmp, &self.checkpoint).map_err(err)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::sync::mpsc;

    fn reader(path: &Path, tx: mpsc::Sender<Vec<Record>>) -> Reader {
        Reader {
            path: path.to_owned(),
            label: Arc::from("t"),
            checkpoint: path.with_extension("cp"),
            follow: true,
            poll: Duration::from_millis(10),
            tracker: Arc::new(OffsetTracker::default()),
            cluster: None,
            batcher: Some(Batcher::new(Router::new(vec![tx]), 100)),
            shutdown: CancellationToken::new(),
            opts: FileOptions {
                state_dir: path.parent().unwrap().to_owned(),
                progress: None,
                drain_timeout: Duration::from_millis(10),
                batch_size: 100,
            },
            generation: 0,
        }
    }

    #[test]
    fn a_partial_last_line_waits_until_its_newline_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let (tx, mut rx) = mpsc::channel(10);
        let mut r = reader(&path, tx);
        let mut open = Open::new(File::open(&path).unwrap(), &path).unwrap();
        let mut partial = Vec::new();
        assert!(matches!(
            r.read_available(&mut open, &mut partial).unwrap(),
            Step::Eof
        ));
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.len(), 1, "half a line is not a record");
        assert_eq!(&batch[0].bytes[..], b"{\"a\":1}");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2}\n")
            .unwrap();
        assert!(matches!(
            r.read_available(&mut open, &mut partial).unwrap(),
            Step::Eof
        ));
        let rec = rx.try_recv().unwrap().remove(0);
        assert_eq!(&rec.bytes[..], b"{\"b\":2}");
        assert_eq!(rec.origin.line, Some(2));
        assert_eq!(rec.origin.offset, Some(8));
    }

    #[test]
    fn checkpoints_only_acknowledged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "{}\n{}\n{}\n").unwrap();
        let (tx, mut rx) = mpsc::channel(10);
        let mut r = reader(&path, tx);
        let mut open = Open::new(File::open(&path).unwrap(), &path).unwrap();
        r.read_available(&mut open, &mut Vec::new()).unwrap();
        // keep `r` alive: its tracker receives the acks
        let mut batch = rx.try_recv().unwrap().into_iter();
        let first = batch.next().unwrap();
        let second = batch.next().unwrap();
        second.ack.ack();
        r.save(&open).unwrap();
        let cp: Checkpoint =
            serde_json::from_slice(&std::fs::read(&r.checkpoint).unwrap()).unwrap();
        assert_eq!(cp.offset, 0, "the first line is not acknowledged yet");
        first.ack.ack();
        r.save(&open).unwrap();
        let cp: Checkpoint =
            serde_json::from_slice(&std::fs::read(&r.checkpoint).unwrap()).unwrap();
        assert_eq!(cp.offset, 6, "up to the unacknowledged third line");
    }
}
