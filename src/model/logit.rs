//! Scores and logits: a head's network gives a logit, detection compares its probability.

/// Logistic function: logit → probability.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}
