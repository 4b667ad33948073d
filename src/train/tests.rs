//! Unit tests of training's parts on synthetic data.

use std::path::Path;

use crate::backbone::{Backbone, EMBEDDING_DIM, Embedding};
use crate::data::jobs::Job;
use crate::data::prep::{
    POST_PAD, PRE_PAD, block_samples, held_out_blocks, negative_blocks, pad_samples,
    pad_with_own_sound,
};
use crate::model::head::Weights;

use crate::audio::vad::locate_word;
use crate::audio::wav::read_wav;
use crate::model::logit::sigmoid;
use crate::timeline::{EMBEDDING_END, HEAD_WINDOW};
use crate::train::calibrate::{calibrate_with, tail_threshold, threshold_keeping_hits};
use crate::train::clips::{Clip, Positive, label, unused_lead};
use crate::train::templates::measure_distances;

/// A long negative recording's blocks: every window in exactly one, each block's embeddings
/// starting with the context its first window reads, the seconds adding up to the file's.
#[test]
fn a_recording_is_cut_into_blocks_that_share_no_window() {
    let samples = 16_000 * 200 + 123; // 200 s: 7 blocks of about 28.6 s
    let held_out = held_out_blocks(Path::new("room.wav"), samples);
    assert_eq!(held_out.len(), 7);
    let pre = crate::timeline::samples_of(PRE_PAD);
    let post = crate::timeline::samples_of(POST_PAD);
    let embeddings = (pre + samples + post - EMBEDDING_END as usize) / 1280 + 1;
    let blocks = negative_blocks(embeddings, samples, &held_out);
    assert_eq!(blocks.len(), 7);
    let mut next_window = HEAD_WINDOW - 1;
    for (range, validation, seconds) in &blocks {
        assert_eq!(range.start + HEAD_WINDOW - 1, next_window, "{blocks:?}");
        assert!(range.len() >= HEAD_WINDOW);
        // About 28.6 s of audio; its windows, one per 80 ms, about as many.
        assert!((seconds - 200.0 / 7.0).abs() < 0.01, "{seconds}");
        let windows = (range.len() + 1 - HEAD_WINDOW) as f64 * 0.08;
        assert!(
            (windows - seconds).abs() < 1.3,
            "{windows} s of windows, {seconds} s"
        );
        next_window = range.end;
        let b = blocks.iter().position(|x| x.0 == *range).unwrap();
        assert_eq!(*validation, held_out[b]);
    }
    assert_eq!(next_window, embeddings);
    let total: f64 = blocks.iter().map(|b| b.2).sum();
    assert!((total - samples as f64 / 16_000.0).abs() < 1e-9);
    // A block's windows are those whose newest sample lies in it.
    let newest = |k: usize| (1280 * k + EMBEDDING_END as usize).saturating_sub(pre);
    for (b, (range, _, _)) in blocks.iter().enumerate() {
        let first = range.start + HEAD_WINDOW - 1;
        let last = range.end - 1;
        let span = block_samples(b, 7, samples);
        assert!(b == 0 || newest(first) > span.start, "block {b}");
        assert!(b == 6 || newest(last) <= span.end, "block {b}");
    }
}

/// The update's threshold floor: where the new weights catch as many old positives as the
/// old weights did at the old threshold, and never above the old threshold.
#[test]
fn the_floor_keeps_the_positives_the_old_threshold_caught() {
    // One hidden unit passing the newest embedding's first value: the score is
    // sigmoid(v + b2), so each clip's best score is set by its embeddings.
    let mut old = Weights::zeros(1);
    old.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
    old.w2[0] = 1.0;
    let values = [-1.0f32, 0.5, 2.0, 3.0, 4.0];
    let clip = |v: f32, fresh: bool| {
        let mut e = [0f32; EMBEDDING_DIM];
        e[0] = v;
        Clip {
            key: [0; 32],
            range: None,
            fresh,
            embeddings: vec![e; HEAD_WINDOW + 2],
            positive: Some(HEAD_WINDOW - 1..HEAD_WINDOW + 2),
            hit: Some(HEAD_WINDOW - 1..HEAD_WINDOW + 2),
            late: None,
            validation: false,
            seconds: 0.0,
            distances: Vec::new(),
        }
    };
    let mut clips: Vec<Clip> = values.iter().map(|&v| clip(v, false)).collect();
    // A new clip of the update: not an old positive, whatever it scores.
    clips.push(clip(10.0, true));
    let old_t = sigmoid(1.5); // catches 2.0, 3.0 and 4.0
    // Every score one logit lower: the third best, 2.0 - 1, keeps all three.
    let mut lower = old.clone();
    lower.b2 = -1.0;
    let t = threshold_keeping_hits(&old, &lower, &clips, old_t);
    assert!((t - sigmoid(1.0)).abs() < 1e-6, "{t}");
    let t = threshold_keeping_hits(&old, &lower, &clips, sigmoid(2.5));
    assert!((t - sigmoid(2.0)).abs() < 1e-6, "{t}");
    // Scores higher: the old threshold stays.
    let mut higher = old.clone();
    higher.b2 = 1.0;
    assert_eq!(threshold_keeping_hits(&old, &higher, &clips, old_t), old_t);
    // Nothing caught before: nothing to keep, the old threshold stays.
    assert_eq!(threshold_keeping_hits(&old, &lower, &clips, 0.999), 0.999);
}

/// With a cut, the threshold is set on the scores the template check leaves: a held-out
/// false alarm the check drops no longer holds it up, one it lowers holds it up less, one
/// it passes counts as before; a positive copy the check drops counts as missed.
#[test]
fn the_threshold_is_set_on_the_checked_scores() {
    // Score = sigmoid(max(0, the newest embedding's first value) - 1).
    let mut w = Weights::zeros(1);
    w.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
    w.w2[0] = 1.0;
    w.b2 = -1.0;
    let embedding = |v: f32| {
        let mut e = [0f32; EMBEDDING_DIM];
        e[0] = v;
        e
    };
    // An hour of held-out negatives, quiet (score 0.27) but for one window at 0.982.
    let alarm = HEAD_WINDOW + 40;
    let mut embeddings = vec![embedding(0.0); 2000];
    embeddings[alarm] = embedding(5.0);
    let negative = |d: f32| Clip {
        key: [0; 32],
        range: None,
        fresh: false,
        embeddings: embeddings.clone(),
        positive: None,
        hit: None,
        late: None,
        validation: true,
        seconds: 3600.0,
        distances: vec![(alarm as u32, d)],
    };
    // A held-out positive copy scoring 0.9997 at its best window, 12 hops in.
    let mut best = vec![embedding(0.0); HEAD_WINDOW + 20];
    best[HEAD_WINDOW + 11] = embedding(9.0);
    let positive = |d: f32| Clip {
        embeddings: best.clone(),
        positive: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
        hit: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
        seconds: 0.0,
        distances: vec![((HEAD_WINDOW + 11) as u32, d)],
        ..negative(0.0)
    };
    let cut = 10.0;
    let threshold = |clips: &[Clip], cut: Option<f32>| {
        let c = calibrate_with(&w, clips, 0.5, false, 0.5, cut);
        (c.threshold, c.miss, c.fa_per_hour)
    };
    // Without a cut, and with the alarm within the ease: the network's 0.982 sets it.
    for (cut, d) in [(None, 50.0), (Some(cut), 5.0)] {
        let (t, miss, fa) = threshold(&[negative(d), positive(5.0)], cut);
        assert!(t > sigmoid(4.0) && t < sigmoid(4.1), "{cut:?} {d}: {t}");
        assert_eq!((miss, fa), (0.0, 0.0));
    }
    // Beyond the cut: dropped, so the lowest threshold tried stands.
    let (t, _, fa) = threshold(&[negative(10.5), positive(5.0)], Some(cut));
    assert_eq!((t, fa), (0.5, 0.0));
    // At 0.8 of the cut: the alarm's logit 4 lowered by 8 × 0.2 to 2.4.
    let (t, _, _) = threshold(&[negative(8.0), positive(5.0)], Some(cut));
    assert!(t > sigmoid(2.4) && t < sigmoid(2.5), "{t}");
    // A positive copy beyond the cut is missed at every threshold.
    let (_, miss, _) = threshold(&[negative(5.0), positive(11.0)], Some(cut));
    assert_eq!(miss, 1.0);
}

/// The distances training calibrates with are measured where they belong: for a block of
/// a long recording, at each window scoring 0.5 or more, on the file's audio up to that
/// window's end (the block's first embedding is not the file's); for a positive copy at its
/// best window only; nowhere in clips outside the validation split.
#[test]
fn distances_are_measured_at_the_candidates_in_the_audio_that_made_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train");
    let path = dir.join("computer/computer-en-099d6097-ce0f-403a-b30d-0ced99f1e44e.wav");
    let clip = read_wav(&path).unwrap();
    let mut cepstra = crate::features::cepstra::Cepstra::new();
    let span = locate_word(&clip).unwrap();
    let words = vec![cepstra.template(&clip, span.start..span.end).unwrap()];
    // The "file": the clip padded, long enough for 60 embeddings.
    let audio = pad_samples(&clip, 16_000, 16_000 * 3);
    let job = |x: Vec<f32>| Job {
        key: [0; 32],
        samples: x.len(),
        make: Box::new(move || Ok(x.clone())),
    };
    let jobs = vec![job(audio.clone()), job(audio.clone())];
    // Score = sigmoid(max(0, the newest embedding's first value) - 1): 0.27 at 0, 0.98 at 5.
    let mut w = Weights::zeros(1);
    w.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
    w.w2[0] = 1.0;
    w.b2 = -1.0;
    let values = |high: &[(usize, f32)]| {
        let mut e = vec![[0f32; EMBEDDING_DIM]; HEAD_WINDOW + 20];
        for &(k, v) in high {
            e[k][0] = v;
        }
        e
    };
    let (a, b) = (HEAD_WINDOW + 2, HEAD_WINDOW + 9);
    let block = || Clip {
        key: [0; 32],
        range: Some([30, 30 + HEAD_WINDOW + 20]),
        fresh: false,
        embeddings: values(&[(a, 5.0), (b, 3.0)]),
        positive: None,
        hit: None,
        late: None,
        validation: true,
        seconds: 2.0,
        distances: Vec::new(),
    };
    // A positive copy whose hit windows tie at the top: the first of them is measured.
    let copy = Clip {
        range: None,
        embeddings: values(&[(a, 6.0), (b, 6.0), (b + 1, 2.0)]),
        positive: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
        hit: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
        seconds: 0.0,
        ..block()
    };
    let training = Clip {
        validation: false,
        ..block()
    };
    let mut clips = vec![block(), copy, training];
    let sources = [1, 0, 1];
    measure_distances(&words, &w, &mut clips, &sources, &jobs, &|_, _| {}).unwrap();
    let mut at = |first: usize, k: usize| {
        let end = crate::timeline::samples_at_embedding((first + k) as u64) as usize;
        let d =
            crate::model::templates::Templates::distance_to(&words, &mut cepstra, &audio[..end]);
        (k as u32, d)
    };
    assert_eq!(clips[0].distances, vec![at(30, a), at(30, b)]);
    assert_ne!(
        clips[0].distances[0].1,
        at(0, a).1,
        "the block's offset matters"
    );
    assert_eq!(clips[1].distances, vec![at(0, a)]);
    assert!(clips[2].distances.is_empty());
}

/// Short files are one block, kept for training; longer ones split evenly.
#[test]
fn only_recordings_longer_than_45_s_are_cut() {
    assert_eq!(
        held_out_blocks(Path::new("a.wav"), 16_000 * 44),
        vec![false]
    );
    assert_eq!(held_out_blocks(Path::new("a.wav"), 16_000 * 46).len(), 2);
    let hour = held_out_blocks(Path::new("room.wav"), 16_000 * 3600);
    assert_eq!(hour.len(), 120);
    let held = hour.iter().filter(|&&v| v).count();
    assert!((12..=36).contains(&held), "{held} of 120 blocks held out");
    assert_eq!(block_samples(119, 120, 16_000 * 3600).end, 16_000 * 3600);
    let blocks = negative_blocks(10, 16_000, &[false]);
    assert_eq!(blocks, vec![(0..10, false, 1.0)]);
}

/// New positives in an update are padded with their own sound: the samples next to each
/// edge of the clip continue it, mirrored, the word's surroundings only; a clip with
/// too little sound beside the word is padded with zeros on that side.
#[test]
fn padding_with_own_sound_continues_the_clip() {
    // 0.5 s of hum, a "word" from 0.5 to 1.0 s, 0.05 s after it.
    let clip: Vec<f32> = (0..16_800)
        .map(|i| {
            let hum = 0.01 * (i as f32 * 0.05).sin();
            if (8_000..16_000).contains(&i) {
                0.5
            } else {
                hum
            }
        })
        .collect();
    let (pre, post) = (20_000, 8_000);
    let v = pad_with_own_sound(&clip, 8_000..16_000, pre, post);
    assert_eq!(v.len(), pre + clip.len() + post);
    assert_eq!(&v[pre..pre + clip.len()], &clip[..]);
    // Mirrored at the clip's start: the sample before it is its first, and so on back.
    assert_eq!(v[pre - 1], clip[0]);
    assert_eq!(v[pre - 2], clip[1]);
    // Only the hum before the word (less a 0.05 s margin) is repeated, never the word.
    let lead = &v[..pre];
    assert!(lead.iter().all(|&x| x.abs() <= 0.01));
    assert!(lead.iter().filter(|&&x| x != 0.0).count() > pre / 2);
    // 0.05 s after the word is under 0.1 s: zeros.
    assert!(v[pre + clip.len()..].iter().all(|&x| x == 0.0));
    // With sound after the word too, the tail continues the clip's end.
    let mut longer = clip.clone();
    longer.extend((0..4_000).map(|i| 0.01 * (i as f32 * 0.07).cos()));
    let w = pad_with_own_sound(&longer, 8_000..16_000, pre, post);
    let end = pre + longer.len();
    assert_eq!(w[end], longer[longer.len() - 1]);
    assert!(w[end..].iter().all(|&x| x.abs() <= 0.01));
    assert!(w[end..].iter().any(|&x| x != 0.0));
}

fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// Alarms falling exponentially with the logit: the fit recovers where they meet the target.
#[test]
fn tail_threshold_follows_an_exponential_tail() {
    // 100 alarms per hour at logit 0, ten times fewer every 2 logits: 0.5 per hour at
    // logit 2·log10(200) = 4.602.
    let fa = |t: f32| 100.0 * 10f64.powf(-f64::from(logit(t)) / 2.0);
    let t = tail_threshold(&fa, 0.45, 0.5).unwrap();
    assert!((logit(t) - 4.602).abs() < 0.1, "logit {}", logit(t));
    // Whole alarms on 0.45 h: the same tail, counted, still lands close.
    let counted = |t: f32| (fa(t) * 0.45).floor() / 0.45;
    let t = tail_threshold(&counted, 0.45, 0.5).unwrap();
    assert!((logit(t) - 4.602).abs() < 0.5, "logit {}", logit(t));
    assert!(sigmoid(4.0) < t);
}

/// Embeddings of padded audio, as training computes them.
fn embed(backbone: &Backbone, samples: &[f32]) -> Vec<Embedding> {
    let mut frames = Vec::new();
    crate::features::mel::FrameStream::new().push(samples, &mut frames);
    backbone.embed(&frames).unwrap()
}

/// Trimming a copy's unused lead leaves every window training reads as it was: the same
/// embeddings, bit for bit, under the shifted labels. (Trimming one hop more fails it.)
#[test]
fn trimming_the_unused_lead_keeps_the_labelled_windows() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train");
    let path = dir.join("computer/computer-en-099d6097-ce0f-403a-b30d-0ced99f1e44e.wav");
    let clip = read_wav(&path).unwrap();
    let backbone = Backbone::builtin().unwrap();
    for validation in [false, true] {
        let p = Positive {
            path: path.clone(),
            hash: [0; 32],
            span: locate_word(&clip).unwrap(),
            len: clip.len(),
            validation,
        };
        let pre = 27_000;
        let trim = unused_lead(&p, pre);
        assert!(trim >= 2 * crate::timeline::GROUP_HOP, "trim {trim}");
        let padded = pad_samples(&clip, pre, 8000);
        let full = embed(&backbone, &padded);
        let trimmed = embed(&backbone, &padded[trim..]);
        let (pos, hit, late) = label(&p, pre);
        let (pos_t, hit_t, late_t) = label(&p, pre - trim);
        let hop = trim / 1280;
        assert_eq!(pos_t.start + hop, pos.start);
        assert_eq!(late_t + hop, late);
        if validation {
            assert_eq!(hit_t.start + hop, hit.start);
        }
        assert_eq!(trimmed.len() + hop, full.len());
        assert!(trimmed[..] == full[hop..], "kept embeddings changed");
    }
}

#[test]
fn tail_threshold_needs_a_tail() {
    // Too few alarms at any threshold to fit anything.
    assert_eq!(tail_threshold(&|_| 0.0, 0.45, 0.5), None);
    assert_eq!(tail_threshold(&|_| 5.0, 0.0, 0.5), None);
}
