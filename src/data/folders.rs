//! Training and evaluation data on disk: folders of WAV files, the train/test split by a hash
//! of the file name, and content hashes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Which half of a folder to use. The half of a file is fixed by a hash of its file name, so
/// `train --split train` and `eval --split test` never share a clip, wherever the data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// Every file.
    #[default]
    All,
    /// Files whose name hashes even.
    Train,
    /// Files whose name hashes odd.
    Test,
}

impl Split {
    /// True if `path` belongs to this half.
    pub fn keeps(self, path: &Path) -> bool {
        match self {
            Split::All => true,
            Split::Train => !name_hash_is_odd(path),
            Split::Test => name_hash_is_odd(path),
        }
    }
}

fn name_hash_is_odd(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or(&[]);
    Sha256::digest(name)[0] & 1 == 1
}

/// A number in `[0, 1)` fixed by the file name and `salt`, for splits inside training.
pub fn name_fraction(path: &Path, salt: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(
        path.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or(&[]),
    );
    let d = h.finalize();
    f64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]])) / 4_294_967_296.0
}

/// Every `.wav` file under `dirs` (searched recursively; a file may also be named directly)
/// that belongs to `split`, sorted by path. A missing folder is an error naming it.
pub fn wav_files(dirs: &[PathBuf], split: Split) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in dirs {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if meta.is_file() {
            out.push(dir.clone());
            continue;
        }
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
                let entry = entry.map_err(|e| Error::io(&d, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
                {
                    out.push(path);
                }
            }
        }
    }
    out.retain(|p| split.keeps(p));
    out.sort();
    out.dedup();
    Ok(out)
}

/// sha256 of a file's bytes.
pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(h.finalize().into())
}
