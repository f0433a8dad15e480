//! The alerts file: every alert, update and follow-up as one JSON line, written exactly once per delivery id even across crashes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::state::model::Delivery;

/// How much of the file's end is read at start to learn which deliveries it already holds.
const TAIL: u64 = 16 << 20;

/// Appends alerts to a JSON-lines file, fsynced per line.
pub struct AlertsFile {
    path: PathBuf,
    inner: Arc<Mutex<(File, HashSet<String>)>>,
}

/// What is read back of a line of the file ([`super::alert_document`]): its delivery id.
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    delivery: std::borrow::Cow<'a, str>,
}

/// `respond.alerts_file` (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> super::BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        if let Some(path) = &cx.config.respond.alerts_file {
            let f = AlertsFile::open(path).map_err(|source| RespondError::AlertsFile {
                path: path.clone(),
                source,
            })?;
            out.responders.push(std::sync::Arc::new(f));
        }
        Ok(())
    })
}

impl AlertsFile {
    /// Opens (creating) the file and reads its tail: a delivery written just before a crash is not written again.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut f = crate::fsutil::open_append(path)?;
        let len = f.metadata()?.len();
        let mut seen = HashSet::new();
        if len > 0 {
            let mut r = File::open(path)?;
            r.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
            let mut buf = Vec::new();
            r.read_to_end(&mut buf)?;
            for line in buf.split(|b| *b == b'\n') {
                if let Ok(l) = serde_json::from_slice::<Line<'_>>(line) {
                    seen.insert(l.delivery.into_owned());
                }
            }
            if !buf.ends_with(b"\n") {
                // A torn last line from a crash: end it so the next line stands alone.
                f.write_all(b"\n")?;
            }
        }
        Ok(Self {
            path: path.to_owned(),
            inner: Arc::new(Mutex::new((f, seen))),
        })
    }

    fn write(
        inner: &Mutex<(File, HashSet<String>)>,
        id: String,
        buf: &[u8],
    ) -> std::io::Result<bool> {
        let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.1.contains(&id) {
            return Ok(false);
        }
        g.0.write_all(buf)?;
        g.0.sync_data()?;
        g.1.insert(id);
        Ok(true)
    }
}

impl Responder for AlertsFile {
    fn name(&self) -> &str {
        "alerts_file"
    }

    fn takes_every_alert(&self) -> bool {
        true
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        // The file is rampart's own record, written in dry-run too.
        Box::pin(async move {
            let mut buf = super::alert_document(d);
            buf.push(b'\n');
            let (inner, id) = (self.inner.clone(), d.id.clone());
            let written = tokio::task::spawn_blocking(move || Self::write(&inner, id, &buf))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            match written {
                Ok(true) => Ok(Effect::done(format!("written to {}", self.path.display()))),
                Ok(false) => Ok(Effect::done(format!("already in {}", self.path.display()))),
                Err(e) => Err(Retry {
                    error: format!("cannot write {}: {e}", self.path.display()),
                    after: None,
                }),
            }
        })
    }
}
