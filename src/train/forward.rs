//! The head's network over many windows at once: the logits training, mining and calibration
//! need, as matrix products (`matrixmultiply`) on up to two threads.

use crate::model::head::HEAD_INPUTS;
use crate::model::head::Weights;
use crate::timeline::HEAD_WINDOW;
use crate::train::clips::Clip;

/// A training example: clip index and the index of the window's newest embedding.
pub(crate) type Example = (u32, u32);

pub(crate) fn window(clips: &[Clip], (c, k): Example) -> &[f32] {
    let k = k as usize;
    clips[c as usize].embeddings[k + 1 - HEAD_WINDOW..=k].as_flattened()
}

/// Logits of many windows at once: matrix products of 1024 windows, half of the windows on a
/// second thread when there are many (each logit is the same bits either way).
pub(crate) fn logits(weights: &Weights, clips: &[Clip], examples: &[Example]) -> Vec<f32> {
    if examples.len() < 4096 {
        return logits_of(weights, clips, examples);
    }
    let (first, second) = examples.split_at(examples.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| logits_of(weights, clips, second));
        let mut out = logits_of(weights, clips, first);
        out.extend(other.join().expect("the logits thread does not panic"));
        out
    })
}

/// [`logits`] on the calling thread.
pub(crate) fn logits_of(weights: &Weights, clips: &[Clip], examples: &[Example]) -> Vec<f32> {
    let h = weights.hidden();
    let mut out = Vec::with_capacity(examples.len());
    let mut x = Vec::new();
    let mut a = Vec::new();
    for chunk in examples.chunks(1024) {
        x.clear();
        for &ex in chunk {
            x.extend_from_slice(window(clips, ex));
        }
        a.clear();
        a.resize(chunk.len() * h, 0.0);
        gemm(chunk.len(), HEAD_INPUTS, h, &x, None, &weights.w1, &mut a);
        for row in a.chunks_exact(h) {
            let z: f32 = row
                .iter()
                .zip(&weights.b1)
                .zip(&weights.w2)
                .map(|((v, b), w)| (v + b).max(0.0) * w)
                .sum();
            out.push(z + weights.b2);
        }
    }
    out
}

/// Row-major `c = a · b`, b being k×n and a either m×k (`a_t` `None`) or, with
/// `a_t = Some(stride)`, the transpose of the first m columns of a k×`stride` matrix.
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_t: Option<usize>,
    b: &[f32],
    c: &mut [f32],
) {
    let (rsa, csa, a_len) = match a_t {
        None => (k, 1, m * k),
        Some(stride) => (1, stride, (k.max(1) - 1) * stride + m),
    };
    assert!(a_t.is_none_or(|stride| stride >= m));
    assert!(a.len() >= a_len && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above keep every index matrixmultiply computes from these strides
    // inside the slices, and `c` does not alias `a` or `b` (it is a distinct &mut).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
