//! Small filesystem helpers shared by the stages that append to files (dead letters, output).

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Opens `path` for appending, creating it and its parent directories.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}
