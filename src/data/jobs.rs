//! Embedding many pieces of audio at once: jobs (a cache key and how to make the samples),
//! run on every core, longest first, through the cache.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::backbone::{Backbone, Embedding};
use crate::data::cache::Cache;
use crate::features::mel::FrameStream;
use crate::timeline::GROUP_FRAMES;
use crate::{Error, Result};

/// One piece of audio to embed: its cache key and how to make its samples.
pub struct Job {
    /// Cache key ([`crate::data::cache::cache_key`]).
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
