//! Small filesystem helpers shared by the stages that append to files (dead letters, output).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Opens `path` for appending, creating it and its parent directories.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// How far back from the end a torn last line is looked for.
const TAIL: u64 = 1 << 20;

/// [`open_append`] for a JSON-lines file whose lines are acknowledged only once written: a last
/// line without its newline is a write a crash cut short (a kill can stop a `write` between
/// pages), so it is cut off before appending; its record was never acknowledged and comes again.
/// Returns the file and how many bytes were cut.
pub fn open_append_lines(path: &Path) -> std::io::Result<(File, u64)> {
    let f = open_append(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok((f, 0));
    }
    let mut r = File::open(path)?;
    let from = len.saturating_sub(TAIL);
    r.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    r.read_to_end(&mut tail)?;
    if tail.ends_with(b"\n") {
        return Ok((f, 0));
    }
    let keep = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => from + i as u64 + 1,
        // A torn line longer than the tail looked at: keep everything before the tail.
        None if from > 0 => from,
        None => 0,
    };
    OpenOptions::new().write(true).open(path)?.set_len(keep)?;
    Ok((f, len - keep))
}

/// Replaces `path`'s content with `bytes` at once: written beside it, synced, then renamed over it,
/// so that a reader (hot reload) sees the old file or the new one, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_torn_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let (mut f, cut) = open_append_lines(&path).unwrap();
        assert_eq!(cut, 5);
        f.write_all(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"c\":3}\n"
        );
        // A whole file is left alone.
        let (_, cut) = open_append_lines(&path).unwrap();
        assert_eq!(cut, 0);
    }
}
