//! Throughput of the data path, measured in one run on the same audio.
//!
//! ```sh
//! cargo bench --bench pipeline                      # an hour tiled from tests/fixtures/speech.wav
//! cargo bench --bench pipeline -- DIR [MINUTES]     # an hour (or MINUTES) tiled from DIR's WAVs
//! ```
//!
//! Reports, per 80 ms hop (one group of 8 frames, one embedding): the front end streaming, the
//! backbone per window (one 76-frame window per hop), streaming (8 new frames per call) and
//! over a whole sequence at once, against the FLOP floor; then the real-time factor and
//! CPU seconds per audio hour of the whole `hark embed` path (read WAV → frames → embeddings →
//! .npy) on the long recording.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hark::backbone::embedder::embed_samples;
use hark::backbone::{Backbone, EMBEDDING_DIM};
use hark::features::mel::{self as frontend, FrameStream, GROUP_FRAMES, MelSpec};
use hark::memory::process_cpu_seconds;

/// FLOPs of the streaming backbone per 80 ms hop, as `benches/flops.py` counts them from the
/// graph (2·Cout·Cin·kt·kf·Fout per new time column of every convolution).
const STREAM_FLOP_PER_HOP: f64 = 11.2e6;

/// This core's attainable f32 throughput: the best of several 512×512×512 matrix products
/// (matrixmultiply's packed AVX/FMA kernels, one thread), in GFLOP/s.
fn peak_gflops() -> f64 {
    const N: usize = 512;
    let a: Vec<f32> = (0..N * N).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..N * N).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0f32; N * N];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        // SAFETY: a, b and c are N×N row-major buffers, exactly the strides passed.
        unsafe {
            matrixmultiply::sgemm(
                N,
                N,
                N,
                1.0,
                a.as_ptr(),
                N as isize,
                1,
                b.as_ptr(),
                N as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                N as isize,
                1,
            );
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&c);
    2.0 * (N * N * N) as f64 / best / 1e9
}

fn wavs_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            wavs_under(&p, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let minutes: f64 = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(60.0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    match args.first() {
        Some(dir) => wavs_under(Path::new(dir), &mut sources),
        None => sources.push(root.join("tests/fixtures/speech.wav")),
    }
    assert!(!sources.is_empty(), "no WAV files found");
    let target = (minutes * 60.0 * 16_000.0) as usize;
    let mut audio = Vec::with_capacity(target);
    'fill: loop {
        for p in &sources {
            audio.extend(hark::audio::wav::read_wav(p).expect("readable WAV"));
            if audio.len() >= target {
                break 'fill;
            }
        }
    }
    audio.truncate(target);
    let dir = tempfile::tempdir().unwrap();
    let wav_path = dir.path().join("long.wav");
    hark::audio::wav::write_wav(&wav_path, &audio, 16_000).unwrap();
    let audio = hark::audio::wav::read_wav(&wav_path).unwrap();
    let secs = audio.len() as f64 / 16_000.0;
    println!(
        "audio: {:.1} min from {} file(s)",
        secs / 60.0,
        sources.len()
    );

    // Front end, streaming in 10 ms chunks as a live source delivers them.
    let mut stream = FrameStream::new();
    let mut frames = Vec::with_capacity(audio.len() / 160 + 8);
    let t = Instant::now();
    for chunk in audio.chunks(160) {
        stream.push(chunk, &mut frames);
    }
    let front = t.elapsed().as_secs_f64();
    let hops = frames.len() / GROUP_FRAMES;
    println!(
        "front end      : {:8.1} µs per 80 ms hop ({hops} hops)",
        front * 1e6 / hops as f64
    );
    assert_eq!(frames, frontend::frames(&mut MelSpec::new(), &audio));

    // Backbone: the windowed reference (one 76-frame window per hop, as openWakeWord runs
    // it) against the streaming plan hark uses, on the same frames; the windowed one on the
    // first 10 minutes to keep the run short.
    let backbone = Backbone::builtin().unwrap();
    let mut windowed = backbone.windowed().unwrap();
    let window_count = (hops.min(7500)).saturating_sub(10);
    let t = Instant::now();
    for k in 0..window_count {
        std::hint::black_box(
            windowed
                .embed_window(&frames[k * GROUP_FRAMES..][..hark::backbone::WINDOW_FRAMES])
                .unwrap(),
        );
    }
    let windowed_bb = t.elapsed().as_secs_f64() / window_count as f64;
    println!(
        "backbone       : {:8.1} µs per 80 ms hop (windowed: 76 frames per hop)",
        windowed_bb * 1e6
    );
    let mut stream = backbone.stream().unwrap();
    let t = Instant::now();
    for g in frames.chunks_exact(GROUP_FRAMES).take(window_count + 9) {
        std::hint::black_box(stream.push_group(g).unwrap());
    }
    let stream_bb = t.elapsed().as_secs_f64() / (window_count + 9) as f64;
    println!(
        "backbone       : {:8.1} µs per 80 ms hop (streaming: new columns only, {:.1}× less)",
        stream_bb * 1e6,
        windowed_bb / stream_bb
    );
    let mut sequence = backbone.sequence().unwrap();
    let seq_frames = &frames[..(window_count + 9) * GROUP_FRAMES];
    let t = Instant::now();
    let n = std::hint::black_box(sequence.embed(seq_frames).unwrap()).len();
    let sequence_bb = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "backbone       : {:8.1} µs per 80 ms hop (whole sequence, {} groups per call, {:.1}× less)",
        sequence_bb * 1e6,
        hark::backbone::SEQUENCE_GROUPS,
        windowed_bb / sequence_bb
    );
    let peak = peak_gflops();
    let floor = STREAM_FLOP_PER_HOP / (peak * 1e9);
    println!(
        "FLOP floor     : {:8.1} µs per 80 ms hop ({:.1} MFLOP per hop at {peak:.1} GFLOP/s, \
         this core's 512³ f32 matmul); streaming backbone = {:.2}× the floor, whole sequence = {:.2}×",
        floor * 1e6,
        STREAM_FLOP_PER_HOP / 1e6,
        stream_bb / floor,
        sequence_bb / floor
    );

    // The template check the bundled head runs on each candidate (a score of at least 0.5):
    // cepstra of the last 1.9 s and the match against every template, on 50 stretches of the
    // audio.
    let head = hark::model::head::Head::load(&root.join("models/computer.head"), None).unwrap();
    if let Some(templates) = &head.templates {
        let mut cepstra = hark::features::cepstra::Cepstra::new();
        let q = hark::model::templates::QUERY_SAMPLES;
        let starts: Vec<usize> = (0..50).map(|i| i * (audio.len() - q) / 50).collect();
        let t = Instant::now();
        for &s in &starts {
            std::hint::black_box(templates.distance_of(&mut cepstra, &audio[s..s + q]));
        }
        println!(
            "template check : {:8.2} ms per candidate ({} templates)",
            t.elapsed().as_secs_f64() * 1e3 / starts.len() as f64,
            templates.words.len()
        );
    }

    // The whole `hark embed` path on the long file.
    let out = dir.path().join("e.npy");
    let cpu0 = process_cpu_seconds();
    let t = Instant::now();
    let samples = hark::audio::wav::read_wav(&wav_path).unwrap();
    let embeddings = embed_samples(&backbone, &samples).unwrap();
    let flat: Vec<f32> = embeddings.iter().flatten().copied().collect();
    hark::npy::write(&out, &flat, embeddings.len(), EMBEDDING_DIM).unwrap();
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    println!(
        "hark embed     : {:.1} s wall for {:.1} min of audio = {:.0}× real time{}",
        wall,
        secs / 60.0,
        secs / wall,
        cpu.map(|c| format!(", {:.1} CPU-s per audio hour", c * 3600.0 / secs))
            .unwrap_or_default()
    );
}
