//! Writing files people keep (snapshots, journals, config includes) so that a crash or a full
//! disk never leaves half of one behind.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `text` to a temporary file beside `path`, syncs it, and renames it over `path`:
/// readers see the old file or the new one, never part of either.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgopt-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
