//! Atomic file writes: write a temporary file beside the target, fsync it, rename it over the
//! target, fsync the directory. A crash at any moment leaves the old file or the new one,
//! never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `path` through `fill`, atomically. The temporary file is removed if `fill` fails.
pub fn write(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    replace(path, fill, true)
}

/// Writes `bytes` to `path` by the same rename as [`write`](fn@write) but without waiting for the disk
/// (no fsync): other processes see the old file or the new one, never a torn one, but after a
/// power loss the new file may be empty or partly written. Only for files whose reader checks
/// them and can remake them, such as the embedding cache's entries (CRC-checked and recomputed
/// when bad). The two fsyncs made writing a training run's 2 130 cache entries take 1.7–2.3×
/// as long on this project's machine (`benches/fsync_cost.py`), and cost more on SD cards.
pub fn write_bytes_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, |f| f.write_all(bytes), false)
}

fn replace(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
    durable: bool,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hark-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    fill(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file_mut().flush().map_err(|e| Error::io(path, e))?;
    if durable {
        tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // Make the rename itself durable. Not every platform can open a directory; that only
    // weakens durability, never atomicity, so a failure here is ignored.
    if durable && let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write(path, |f| f.write_all(bytes))
}

/// The path beside `path` with `suffix` appended to its name: where a head keeps its previous
/// version (`.prev`), replay manifest (`.replay`) and learning folder (`.learn`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}
