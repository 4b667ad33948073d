//! Augmented copies of the positive clips: real background mixed in at a random SNR, gain and
//! shift, each a recipe of its own in the embedding cache.

/// Range of the signal-to-noise ratio (dB) at which background is mixed into the augmented
/// copies, drawn uniformly. Reaching up to 35 dB, a third of the copies are nearly clean: with
/// 0–20 dB every copy was audibly noisy and the clean clip was 1 in 7 of what the head saw,
/// and held-out clean clips missed more than noisy ones (`benches/accuracy.sh`, 3 seeds: mean
/// miss at ≤ 0.25 FA/h computer 4.3 → 1.9 %, athena 24.0 → 20.4 %; jarvis 5.6 → 6.4 %).
pub(crate) const SNR_DB: (f64, f64) = (0.0, 35.0);
