//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads a 2-D float32 fixture as rows.
pub fn npy_rows(name: &str) -> Vec<Vec<f32>> {
    let (shape, values) = hark::npy::read(&fixture(name)).unwrap();
    assert_eq!(shape.len(), 2, "{name} is not 2-D");
    values.chunks_exact(shape[1]).map(<[f32]>::to_vec).collect()
}

/// A small deterministic generator (64-bit LCG), so tests need no RNG crate and never flake.
pub struct Lcg(pub u64);

impl Lcg {
    /// Next value uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Next integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_f64() * (hi - lo + 1) as f64) as usize
    }
}

/// Largest absolute difference between two equally long sequences of rows.
pub fn max_abs_diff<A: AsRef<[f32]>, B: AsRef<[f32]>>(a: &[A], b: &[B]) -> f32 {
    assert_eq!(a.len(), b.len(), "different number of rows");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.as_ref().len(), y.as_ref().len());
            x.as_ref()
                .iter()
                .zip(y.as_ref())
                .map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// The committed real-speech fixture, 16 kHz mono.
pub fn speech() -> Vec<f32> {
    hark::audio::wav::read_wav(&fixture("speech.wav")).unwrap()
}
