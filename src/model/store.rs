//! The files that go with a head on disk: `<head>.replay` (what it was trained on, written by
//! training) and `<head>.prev` / `<head>.replay.prev` (the version before the last update).
//! They change together: [`commit`] writes a new version with the old one kept, [`rollback`]
//! swaps the two back. Every write is atomic ([`crate::atomic`]).

use std::path::{Path, PathBuf};

use crate::model::head::Head;
use crate::{Error, Result, atomic};

/// `<file>.prev`: where the previous version of a head (or its replay manifest) is kept.
pub fn previous_path(path: &Path) -> PathBuf {
    atomic::beside(path, ".prev")
}

/// `<head>.replay`: where the replay manifest of the head at `head` lives.
pub fn replay_path(head: &Path) -> PathBuf {
    atomic::beside(head, ".replay")
}

/// Writes `head` and its manifest `replay` (serialised) over `path` and its `.replay`, keeping
/// the ones they replace (`old`, and the manifest on disk) as `.prev`. The previous version is
/// written first, so a crash at any point leaves a loadable head and a way back.
pub fn commit(path: &Path, head: &Head, replay: &[u8], old: &Head) -> Result<()> {
    let replay_path = replay_path(path);
    atomic::write_bytes(&previous_path(path), &old.to_bytes())?;
    atomic::write_bytes(
        &previous_path(&replay_path),
        &std::fs::read(&replay_path).map_err(|e| Error::io(&replay_path, e))?,
    )?;
    atomic::write_bytes(&replay_path, replay)?;
    head.save(path)
}

/// Swaps the head at `path` (and its manifest, when both versions have one) with its `.prev`
/// version; returns the head now at `path`. Both versions must load before anything is
/// touched.
pub fn rollback(path: &Path) -> Result<Head> {
    let prev = previous_path(path);
    if !prev.exists() {
        return Err(Error::Data(format!(
            "{}: no previous version to roll back to",
            prev.display()
        )));
    }
    let old = Head::load(&prev, None)?;
    let current = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let replay_path = replay_path(path);
    let replays = (
        std::fs::read(previous_path(&replay_path)),
        std::fs::read(&replay_path),
    );
    atomic::write_bytes(path, &old.to_bytes())?;
    atomic::write_bytes(&prev, &current)?;
    if let (Ok(old_replay), Ok(cur_replay)) = replays {
        atomic::write_bytes(&replay_path, &old_replay)?;
        atomic::write_bytes(&previous_path(&replay_path), &cur_replay)?;
    }
    Ok(old)
}
