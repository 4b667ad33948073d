//! Training and evaluation data: folders of WAV files, the train/test split, and the on-disk
//! embedding cache that lets retraining skip the backbone for audio it has seen.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::backbone::{Backbone, EMBEDDING_DIM, Embedding};
use crate::frontend::{FrameStream, GROUP_FRAMES};
use crate::{Error, Result, atomic};

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

/// The embedding cache: one file per recipe (audio content hash, padding, augmentation, backbone),
/// holding its embeddings and a CRC-32 (corruption, not tampering, is the threat; it checks at
/// memory speed, which matters when an update replays thousands of entries). Corrupt or
/// truncated entries are recomputed.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
    corrupt: std::sync::Arc<AtomicUsize>,
    hits: std::sync::Arc<AtomicUsize>,
}

const CACHE_MAGIC: &[u8; 8] = b"HARKEMB2";

impl Cache {
    /// A cache in `dir` (created on first write); `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Cache {
            dir,
            corrupt: Default::default(),
            hits: Default::default(),
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
            eprintln!("hark: warning: cannot cache embeddings: {e}");
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

/// One piece of audio to embed: its cache key and how to make its samples.
pub struct Job {
    /// Cache key ([`cache_key`]).
    pub key: [u8; 32],
    /// Produces the 16 kHz samples (only called on a cache miss).
    pub make: Box<dyn Fn() -> Result<Vec<f32>> + Send + Sync>,
    /// About how many samples `make` returns (0 if not known): [`embed_jobs`] starts the
    /// longest first, so no core is left embedding one long file after the others are done.
    pub samples: usize,
}

/// Jobs from which [`embed_jobs`] runs the backbone's whole-sequence path: it is faster per
/// clip but takes about half a second to plan.
const SEQUENCE_MIN_JOBS: usize = 32;

/// Embeds every job through the backbone (its whole-sequence path for many jobs, the stream
/// for a few: the same numbers), from the cache where possible, on all
/// cores, longest job first; `tick` is called once per finished job. Results are in job order,
/// and the same for any number of threads.
pub fn embed_jobs(
    backbone: &Backbone,
    cache: &Cache,
    jobs: &[Job],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Vec<Embedding>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    // Longest first (a stable sort: equal lengths keep the jobs' order).
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].samples));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let planning = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Vec<Embedding>>>> = Mutex::new(vec![None; jobs.len()]);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let work = || -> Result<()> {
                    // Many clips: the whole-sequence path (planned once, on the first miss);
                    // a few: the stream, which is planned already. Same numbers either way.
                    let mut sequence = None;
                    let mut stream = backbone.stream()?;
                    let mut frames = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= jobs.len() || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let i = order[n];
                        let job = &jobs[i];
                        let emb = match cache.get(&job.key) {
                            Some(e) => e,
                            None => {
                                let samples = (job.make)()?;
                                frames.clear();
                                FrameStream::new().push(&samples, &mut frames);
                                // One thread plans the whole-sequence path; the others
                                // stream meanwhile rather than wait for it.
                                if jobs.len() >= SEQUENCE_MIN_JOBS
                                    && sequence.is_none()
                                    && (backbone.sequence_planned()
                                        || !planning.swap(true, Ordering::Relaxed))
                                {
                                    sequence = Some(backbone.sequence()?);
                                }
                                let out = match sequence.as_mut() {
                                    Some(sequence) => sequence.embed(&frames)?,
                                    None => {
                                        stream.reset()?;
                                        frames
                                            .chunks_exact(GROUP_FRAMES)
                                            .filter_map(|g| stream.push_group(g).transpose())
                                            .collect::<Result<Vec<_>>>()?
                                    }
                                };
                                cache.put(&job.key, &out);
                                out
                            }
                        };
                        results.lock().unwrap()[i] = Some(emb);
                        tick();
                    }
                };
                if let Err(e) = work() {
                    failed.store(true, Ordering::Relaxed);
                    first_error.lock().unwrap().get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}
