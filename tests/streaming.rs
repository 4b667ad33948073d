//! Streaming with chunks of any size gives exactly the result of one call over the whole input,
//! for frames and embeddings; streaming, whole-sequence and windowed backbones agree.

mod common;

use common::{Lcg, max_abs_diff, speech};
use hark::backbone::embedder::{Embedder, embed_samples};
use hark::backbone::{Backbone, SEQUENCE_GROUPS};
use hark::features::mel::{self as frontend, FrameStream, MelSpec};

fn chunked<'a>(x: &'a [f32], rng: &mut Lcg, max: usize) -> Vec<&'a [f32]> {
    let mut out = Vec::new();
    let mut rest = x;
    while !rest.is_empty() {
        let n = rng.range(1, max).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

#[test]
fn frames_stream_equals_batch_for_random_chunks() {
    let x = speech();
    let batch = frontend::frames(&mut MelSpec::new(), &x);
    for (seed, max) in [(1, 1), (2, 7), (3, 500), (4, 5000), (5, 80_000)] {
        let mut rng = Lcg(seed);
        let mut stream = FrameStream::new();
        let mut got = Vec::new();
        for c in chunked(&x, &mut rng, max) {
            stream.push(c, &mut got);
        }
        assert_eq!(got.len(), batch.len(), "chunks up to {max}");
        // Same arithmetic on the same samples: identical, not just close.
        assert_eq!(max_abs_diff(&got, &batch), 0.0, "chunks up to {max}");
    }
}

#[test]
fn embeddings_stream_equals_batch_for_random_chunks() {
    // A minute of real speech (the 15.9 s fixture four times), chunks from 1 sample to 5 s.
    let x = speech().repeat(4);
    let backbone = Backbone::builtin().unwrap();
    let batch = embed_samples(&backbone, &x).unwrap();
    assert!(batch.len() > 60 * 12);
    let mut embedder = Embedder::new(&backbone).unwrap();
    for (seed, max) in [(11, 1), (12, 300), (13, 4000), (14, 80_000)] {
        embedder.reset().unwrap();
        let mut rng = Lcg(seed);
        let mut got = Vec::new();
        for c in chunked(&x, &mut rng, max) {
            embedder.push(c, &mut got).unwrap();
        }
        assert_eq!(got.len(), batch.len(), "chunks up to {max}");
        // One code path: the same arithmetic, identical numbers.
        assert_eq!(max_abs_diff(&got, &batch), 0.0, "chunks up to {max}");
        assert_eq!(embedder.produced(), batch.len() as u64);
    }
}

#[test]
fn streaming_and_whole_sequence_backbones_equal_windowed_over_a_minute() {
    let x = speech().repeat(4);
    let frames = frontend::frames(&mut MelSpec::new(), &x);
    let backbone = Backbone::builtin().unwrap();
    let streamed = backbone.embed(&frames).unwrap();
    let windowed = backbone.windowed().unwrap().embed(&frames).unwrap();
    assert_eq!(streamed.len(), windowed.len());
    assert!(streamed.len() >= 750);
    let err = max_abs_diff(&streamed, &windowed);
    assert!(err <= 1e-4, "max error {err}");
    // The whole-sequence path: SEQUENCE_GROUPS groups of 8 frames per call, the last call
    // padded with zeros.
    assert!(!frames.len().is_multiple_of(SEQUENCE_GROUPS * 8));
    let batch = backbone.sequence().unwrap().embed(&frames).unwrap();
    assert_eq!(batch.len(), windowed.len());
    let err = max_abs_diff(&batch, &windowed);
    assert!(err <= 1e-4, "whole sequence: max error {err}");
    // Several groups per call sum in the same order as one: the same numbers.
    assert_eq!(max_abs_diff(&batch, &streamed), 0.0);
    // Not trivially equal: the embeddings move with the speech.
    assert!(max_abs_diff(&streamed[..1], &streamed[100..101]) > 0.1);
}

/// A sequence that starts with a second of digital silence (as `train` pads clean clips and
/// negative files) takes its first calls from a copy made once; the embeddings are those of
/// running them, bit for bit, whatever the sequence before it left in the state.
#[test]
fn a_silent_lead_gives_the_embeddings_of_running_it() {
    let backbone = Backbone::builtin().unwrap();
    let x = speech();
    let padded = |lead: usize, x: &[f32]| {
        let mut v = vec![0.0; lead];
        v.extend_from_slice(x);
        frontend::frames(&mut MelSpec::new(), &v)
    };
    let second = padded(16_000, &x);
    // The lead the path reuses: 96 frames of silence, alike.
    assert!(second[..96].iter().all(|f| f == &second[0]));
    assert!(second[100..].iter().any(|f| f != &second[0]));
    let mut sequence = backbone.sequence().unwrap();
    for (name, frames) in [
        ("1 s lead", second.clone()),
        ("no lead", padded(0, &x)),
        ("0.5 s lead", padded(8_000, &x)),
        ("1 s lead again", second),
        ("2 s lead", padded(32_000, &x[..16_000])),
        ("1 s lead, a click in it", {
            let mut v = vec![0.0; 16_000];
            v[4_000] = 0.01;
            v.extend_from_slice(&x);
            frontend::frames(&mut MelSpec::new(), &v)
        }),
    ] {
        let streamed = backbone.embed(&frames).unwrap();
        let got = sequence.embed(&frames).unwrap();
        assert_eq!(got.len(), streamed.len(), "{name}");
        assert!(!got.is_empty(), "{name}");
        assert_eq!(max_abs_diff(&got, &streamed), 0.0, "{name}");
    }
}

/// The windowed stream (`listen --windowed-backbone`, the benchmark's openWakeWord-style
/// comparison) gives the streaming embeddings at the same points of the stream.
#[test]
fn windowed_stream_equals_the_streaming_backbone() {
    let x = speech();
    let backbone = Backbone::builtin().unwrap();
    let run = |mut e: Embedder| {
        let mut out = Vec::new();
        let mut counts = Vec::new();
        for c in x.chunks(3_000) {
            counts.push(e.push(c, &mut out).unwrap());
        }
        (out, counts)
    };
    let (streamed, at) = run(Embedder::new(&backbone).unwrap());
    let (windowed, at_w) = run(Embedder::windowed(&backbone).unwrap());
    assert_eq!(at, at_w, "embeddings complete at the same chunks");
    assert!(streamed.len() > 150);
    let err = max_abs_diff(&windowed, &streamed);
    assert!(err <= 1e-4, "max error {err}");
}

/// `embed_jobs` (what training and evaluation embed through) hands out the longest jobs first
/// and, on a fresh backbone, streams some while one thread plans the whole-sequence path: every
/// job's embeddings are still those of streaming its audio, bit for bit, in job order, and a
/// second call takes them all from the cache.
#[test]
fn embed_jobs_gives_each_job_its_streamed_embeddings_in_order() {
    use hark::data::{cache::Cache, jobs::Job, jobs::embed_jobs};
    let backbone = Backbone::builtin().unwrap();
    let x = speech();
    let mut rng = Lcg(7);
    // 40 jobs (enough for the whole-sequence path): stretches of the speech of 0.3–4 s, their
    // lengths in no order, some given with no length hint.
    let audio: Vec<Vec<f32>> = (0..40)
        .map(|_| {
            let len = rng.range(4_800, 64_000);
            let start = rng.range(0, x.len() - len);
            x[start..start + len].to_vec()
        })
        .collect();
    let jobs: Vec<Job> = audio
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let a = a.clone();
            let mut key = [0u8; 32];
            key[0] = i as u8;
            key[1] = 0xE7;
            Job {
                key,
                samples: if i % 7 == 3 { 0 } else { a.len() },
                make: Box::new(move || Ok(a.clone())),
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path().to_path_buf()));
    let got = embed_jobs(&backbone, &cache, &jobs, &|| {}).unwrap();
    assert_eq!(got.len(), jobs.len());
    for (i, (a, g)) in audio.iter().zip(&got).enumerate() {
        let want = embed_samples(&backbone, a).unwrap();
        assert_eq!(g.len(), want.len(), "job {i}");
        assert_eq!(max_abs_diff(g, &want), 0.0, "job {i}");
    }
    let hits = cache.hits();
    let again = embed_jobs(&backbone, &cache, &jobs, &|| {}).unwrap();
    assert_eq!(cache.hits() - hits, jobs.len());
    assert_eq!(again, got);
}
