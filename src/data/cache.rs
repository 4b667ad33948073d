//! The on-disk embedding cache that lets retraining skip the backbone for audio it has seen.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::backbone::{Backbone, EMBEDDING_DIM, Embedding};
use crate::{Error, atomic};

/// The embedding cache: one file per recipe (audio content hash, padding, augmentation, backbone),
/// holding its embeddings and a CRC-32 (corruption, not tampering, is the threat; it checks at
/// memory speed, which matters when an update replays thousands of entries). Corrupt or
/// truncated entries are recomputed.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
    corrupt: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
    /// The first failed write, if any.
    write_problem: Arc<Mutex<Option<String>>>,
}

const CACHE_MAGIC: &[u8; 8] = b"HARKEMB2";

impl Cache {
    /// A cache in `dir` (created on first write); `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Cache {
            dir,
            corrupt: Default::default(),
            hits: Default::default(),
            write_problem: Default::default(),
        }
    }

    /// `$HARK_CACHE`, else `$XDG_CACHE_HOME/hark`, else `~/.cache/hark`.
    pub fn default_dir() -> Option<PathBuf> {
        let env = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("HARK_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("hark")))
            .or_else(|| env("HOME").map(|d| d.join(".cache/hark")))
    }

    /// Entries served intact so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Why embeddings could not be cached, if a write has failed (the first such failure; the
    /// work goes on without caching them).
    pub fn write_problem(&self) -> Option<String> {
        self.write_problem.lock().unwrap().clone()
    }

    /// Entries found corrupt (and recomputed) so far.
    pub fn corrupt_entries(&self) -> usize {
        self.corrupt.load(Ordering::Relaxed)
    }

    fn path(&self, key: &[u8; 32]) -> Option<PathBuf> {
        let hex = crate::backbone::hex(key);
        Some(
            self.dir
                .as_ref()?
                .join(&hex[..2])
                .join(format!("{hex}.emb")),
        )
    }

    /// The cached embeddings for `key`, if present and intact.
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<Embedding>> {
        let path = self.path(key)?;
        let bytes = std::fs::read(&path).ok()?;
        let parsed = (|| {
            let body = bytes.get(..bytes.len().checked_sub(4)?)?;
            if crc32fast::hash(body).to_le_bytes() != bytes[body.len()..] {
                return None;
            }
            let rest = body.strip_prefix(CACHE_MAGIC)?;
            let n = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
            let data = rest.get(8..)?;
            if data.len() != n.checked_mul(EMBEDDING_DIM * 4)? {
                return None;
            }
            Some(
                data.chunks_exact(EMBEDDING_DIM * 4)
                    .map(|c| {
                        std::array::from_fn(|i| {
                            f32::from_le_bytes(c[i * 4..i * 4 + 4].try_into().unwrap())
                        })
                    })
                    .collect(),
            )
        })();
        let counter = if parsed.is_some() {
            &self.hits
        } else {
            &self.corrupt
        };
        counter.fetch_add(1, Ordering::Relaxed);
        parsed
    }

    /// Stores embeddings under `key` (atomically, but not waiting for the disk: an entry a power
    /// loss damages fails its CRC and is recomputed; a failure to cache is not an error for the
    /// caller's work, so it is reported and ignored).
    pub fn put(&self, key: &[u8; 32], embeddings: &[Embedding]) {
        let Some(path) = self.path(key) else { return };
        let mut bytes = Vec::with_capacity(16 + embeddings.len() * EMBEDDING_DIM * 4 + 4);
        bytes.extend_from_slice(CACHE_MAGIC);
        bytes.extend_from_slice(&(embeddings.len() as u64).to_le_bytes());
        for v in embeddings.iter().flatten() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let sum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        let result = path
            .parent()
            .map_or(Ok(()), |d| {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))
            })
            .and_then(|()| atomic::write_bytes_unsynced(&path, &bytes));
        if let Err(e) = result {
            // Reported once, by the caller (`Cache::write_problem`): caching is an optimisation.
            self.write_problem
                .lock()
                .unwrap()
                .get_or_insert(e.to_string());
        }
    }
}

/// Cache key of a recipe: what audio, how padded or augmented, on which backbone.
pub fn cache_key(backbone: &Backbone, recipe: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hark-embeddings-v2\0");
    h.update(backbone.sha256().as_bytes());
    h.update(recipe);
    h.finalize().into()
}
