//! Stage 3 of the data path: embeddings → scores, by a small network trained for one word.
//!
//! A head looks at the last [`HEAD_WINDOW`] embeddings (16 × 80 ms hops of a 775 ms window:
//! about 2 s of audio) and gives the probability that the word has just ended. Its network is
//! one hidden layer: each embedding is standardised with statistics of the training data, the
//! 16 are concatenated (1536 inputs), then `hidden` ReLU units and one logistic output.
//!
//! # File format (version 2)
//!
//! ```text
//! "HARKHEAD\n"                      magic, 9 bytes
//! u32 LE  n, then n bytes           JSON header (HeadInfo): word, threshold, shapes, backbone
//!                                   sha256, creation time, training summary, and when the
//!                                   head carries templates (crate::model::templates) their cut, their
//!                                   lengths and how many of them updates added (absent: none)
//! u32 LE  m, then m × f32 LE        weights: mean, 1/std, W1 (input-major), b1, w2, b2; then
//!                                   the templates' cepstra, frame after frame
//! 32 bytes                          sha256 of everything before
//! ```
//!
//! Version 1 is the same without templates; it is still read.
//!
//! Files are written atomically; loading checks the magic, the version, the sizes, the checksum
//! and the backbone, and names the file and the problem when one fails.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backbone::{EMBEDDING_DIM, Embedding};
use crate::features::cepstra::CEPSTRA;
use crate::model::logit::sigmoid;
use crate::model::templates::Templates;
use crate::{Error, Result, atomic};

/// Embeddings a head looks at: 16 hops, the word's last ≈ 2 s.
pub const HEAD_WINDOW: usize = 16;
/// Inputs of the network: the window's embeddings side by side.
pub const HEAD_INPUTS: usize = HEAD_WINDOW * EMBEDDING_DIM;
/// The head file format this hark writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 9] = b"HARKHEAD\n";

/// The self-describing part of a head file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeadInfo {
    /// File format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The trigger word, as given to `hark train --word`.
    pub word: String,
    /// Detection threshold on the score (0–1), calibrated for the target false-alarm rate.
    pub threshold: f32,
    /// Seconds after a detection during which the same head cannot fire again.
    pub refractory_seconds: f32,
    /// Embeddings per input window.
    pub window: usize,
    /// Hidden units.
    pub hidden: usize,
    /// sha256 of the backbone model the head was trained on.
    pub backbone_sha256: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// What it was trained on and how well it did on held-out data.
    pub training: TrainingSummary,
}

/// The file's JSON header: the [`HeadInfo`] and, when the head carries templates
/// ([`crate::model::templates::Templates`]), their cut and lengths (their cepstra follow the weights).
#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    info: HeadInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verifier: Option<VerifierShape>,
}

#[derive(Serialize, Deserialize)]
struct VerifierShape {
    cut: f32,
    template_frames: Vec<usize>,
    /// Templates at the end that updates added ([`Templates::added`]); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    added: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Summary of a head's training data and validation results, stored in the head.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainingSummary {
    /// Positive clips used (training + validation).
    pub positive_clips: usize,
    /// Negative files used.
    pub negative_files: usize,
    /// Seconds of negative audio.
    pub negative_seconds: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Epochs run before early stopping picked the best.
    pub epochs: usize,
    /// Miss rate on the held-out validation positives at the threshold.
    pub validation_miss_rate: f64,
    /// False alarms per hour on the held-out validation negatives at the threshold.
    pub validation_fa_per_hour: f64,
    /// Hours of validation negative audio behind that rate.
    pub validation_negative_hours: f64,
    /// The false-alarm rate asked for.
    pub target_fa_per_hour: f64,
    /// Updates applied since training from scratch.
    pub updates: u32,
}

/// The trainable numbers of a head.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Per-dimension mean of the training embeddings.
    pub mean: Vec<f32>,
    /// Per-dimension 1/std of the training embeddings.
    pub inv_std: Vec<f32>,
    /// First layer, `[HEAD_INPUTS][hidden]` row-major.
    pub w1: Vec<f32>,
    /// First layer bias, `[hidden]`.
    pub b1: Vec<f32>,
    /// Output layer, `[hidden]`.
    pub w2: Vec<f32>,
    /// Output bias.
    pub b2: f32,
}

impl Weights {
    /// Zero weights with identity normalisation, for `hidden` units.
    pub fn zeros(hidden: usize) -> Self {
        Weights {
            mean: vec![0.0; EMBEDDING_DIM],
            inv_std: vec![1.0; EMBEDDING_DIM],
            w1: vec![0.0; HEAD_INPUTS * hidden],
            b1: vec![0.0; hidden],
            w2: vec![0.0; hidden],
            b2: 0.0,
        }
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.b1.len()
    }

    /// Standardises one embedding with the training statistics.
    pub fn normalize(&self, e: &Embedding) -> Embedding {
        std::array::from_fn(|i| (e[i] - self.mean[i]) * self.inv_std[i])
    }

    /// Logit of one window of [`HEAD_INPUTS`] standardised values; `hidden` is scratch space.
    pub fn logit(&self, x: &[f32], hidden: &mut Vec<f32>) -> f32 {
        let h = self.hidden();
        hidden.clear();
        hidden.extend_from_slice(&self.b1);
        for (xi, row) in x.iter().zip(self.w1.chunks_exact(h)) {
            for (a, w) in hidden.iter_mut().zip(row) {
                *a += xi * w;
            }
        }
        hidden
            .iter()
            .zip(&self.w2)
            .map(|(a, w)| a.max(0.0) * w)
            .sum::<f32>()
            + self.b2
    }

    fn flat(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.len());
        v.extend(&self.mean);
        v.extend(&self.inv_std);
        v.extend(&self.w1);
        v.extend(&self.b1);
        v.extend(&self.w2);
        v.push(self.b2);
        v
    }

    fn len(&self) -> usize {
        2 * EMBEDDING_DIM + self.w1.len() + 2 * self.hidden() + 1
    }

    fn from_flat(v: &[f32], hidden: usize) -> Option<Self> {
        let mut rest = v;
        let mut take = |n: usize| {
            let (a, b) = rest.split_at_checked(n)?;
            rest = b;
            Some(a.to_vec())
        };
        let w = Weights {
            mean: take(EMBEDDING_DIM)?,
            inv_std: take(EMBEDDING_DIM)?,
            w1: take(HEAD_INPUTS * hidden)?,
            b1: take(hidden)?,
            w2: take(hidden)?,
            b2: take(1)?[0],
        };
        rest.is_empty().then_some(w)
    }
}

/// A trained head: what it detects, how, and its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// The self-describing header.
    pub info: HeadInfo,
    /// The network.
    pub weights: Weights,
    /// Templates that vet its candidates, if it has them.
    pub templates: Option<Templates>,
}

impl Head {
    /// Score (0–1) of one window of [`HEAD_WINDOW`] raw embeddings, oldest first.
    pub fn score(&self, window: &[Embedding]) -> f32 {
        let x: Vec<f32> = window
            .iter()
            .flat_map(|e| self.weights.normalize(e))
            .collect();
        sigmoid(self.weights.logit(&x, &mut Vec::new()))
    }

    /// The file's bytes (see the module docs for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            info: self.info.clone(),
            verifier: self.templates.as_ref().map(|t| VerifierShape {
                cut: t.cut,
                template_frames: t.words.iter().map(Vec::len).collect(),
                added: t.added,
            }),
        };
        let json = serde_json::to_vec(&header).expect("a header always serialises");
        let mut flat = self.weights.flat();
        for word in self.templates.iter().flat_map(|t| &t.words) {
            flat.extend(word.iter().flatten());
        }
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + json.len() + flat.len() * 4 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&(flat.len() as u32).to_le_bytes());
        for v in flat {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Writes the head to `path` atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic::write_bytes(path, &self.to_bytes())
    }

    /// Reads a head file. With `backbone_sha256`, a head trained on another backbone is refused.
    pub fn load(path: &Path, backbone_sha256: Option<&str>) -> Result<Head> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let head = Self::from_bytes(&bytes, path)?;
        if let Some(sha) = backbone_sha256 {
            head.check_backbone(sha, path)?;
        }
        Ok(head)
    }

    /// Refuses a head trained on another backbone than the one with sha256 `sha`; `path`
    /// names the head in the error.
    pub fn check_backbone(&self, sha: &str, path: &Path) -> Result<()> {
        if self.info.backbone_sha256 == sha {
            return Ok(());
        }
        Err(Error::Head {
            path: path.to_path_buf(),
            problem: format!(
                "was trained on another backbone (sha256 {}…), this one is {}…; retrain it with this backbone",
                &self.info.backbone_sha256.get(..12).unwrap_or(""),
                &sha.get(..12).unwrap_or("")
            ),
        })
    }

    /// Parses a head file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Head> {
        let fail = |problem: String| Error::Head {
            path: path.to_path_buf(),
            problem,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(fail(
                if MAGIC.starts_with(bytes) {
                    "truncated (shorter than the header)"
                } else {
                    "not a hark head file (bad magic)"
                }
                .into(),
            ));
        }
        let truncated = |need: usize| {
            fail(format!(
                "truncated: {} bytes, the header says at least {need}",
                bytes.len()
            ))
        };
        let read_u32 = |at: usize| -> Result<usize> {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
                .ok_or_else(|| truncated(at + 4))
        };
        let json_at = MAGIC.len() + 4;
        let json_len = read_u32(MAGIC.len())?;
        let json = bytes
            .get(json_at..json_at + json_len)
            .ok_or_else(|| truncated(json_at + json_len))?;
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| fail(format!("corrupt header ({e})")))?;
        let format = value.get("format").and_then(|v| v.as_u64()).unwrap_or(0);
        if format > u64::from(FORMAT_VERSION) {
            return Err(fail(format!(
                "made by a newer hark (format {format}); this hark reads format {FORMAT_VERSION}"
            )));
        }
        let Header { info, verifier } =
            serde_json::from_value(value).map_err(|e| fail(format!("corrupt header ({e})")))?;
        let n_at = json_at + json_len;
        let n = read_u32(n_at)?;
        let data_at = n_at + 4;
        let end = data_at + n * 4;
        if bytes.len() < end + 32 {
            return Err(truncated(end + 32));
        }
        if bytes.len() > end + 32 {
            return Err(fail(format!(
                "corrupt: {} bytes after the checksum",
                bytes.len() - end - 32
            )));
        }
        if Sha256::digest(&bytes[..end]).as_slice() != &bytes[end..] {
            return Err(fail("corrupt (checksum mismatch)".into()));
        }
        if info.window != HEAD_WINDOW || info.hidden == 0 || info.hidden > 4096 {
            return Err(fail(format!(
                "unsupported shape: window {}, hidden {}",
                info.window, info.hidden
            )));
        }
        let flat: Vec<f32> = bytes[data_at..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let n_weights = Weights::zeros(info.hidden).len();
        let template_floats: usize = verifier
            .iter()
            .flat_map(|v| &v.template_frames)
            .sum::<usize>()
            * CEPSTRA;
        if flat.len() != n_weights + template_floats {
            return Err(fail(format!(
                "holds {} numbers, a {}-unit head{} has {}",
                flat.len(),
                info.hidden,
                if template_floats > 0 {
                    " with its templates"
                } else {
                    ""
                },
                n_weights + template_floats
            )));
        }
        if let Some(v) = verifier
            .as_ref()
            .filter(|v| v.added > v.template_frames.len())
        {
            return Err(fail(format!(
                "corrupt header: {} added templates of {}",
                v.added,
                v.template_frames.len()
            )));
        }
        let (flat, rest) = flat.split_at(n_weights);
        let templates = verifier.map(|v| {
            let mut frames = rest
                .chunks_exact(CEPSTRA)
                .map(|c| -> crate::features::cepstra::Cepstrum { c.try_into().unwrap() });
            Templates {
                cut: v.cut,
                words: v
                    .template_frames
                    .iter()
                    .map(|&n| frames.by_ref().take(n).collect())
                    .collect(),
                added: v.added,
            }
        });
        let weights =
            Weights::from_flat(flat, info.hidden).expect("the numbers' count was checked above");
        if flat.iter().any(|v| !v.is_finite()) || !(0.0..=1.0).contains(&info.threshold) {
            return Err(fail(
                "holds non-finite weights or a threshold outside 0–1".into(),
            ));
        }
        Ok(Head {
            info,
            weights,
            templates,
        })
    }
}

/// A head run over a stream of embeddings: keeps the last [`HEAD_WINDOW`] (standardised) and
/// scores each new one. No allocation after construction.
#[derive(Debug, Clone)]
pub struct Scorer {
    head: Head,
    /// Two copies of a 16-slot ring side by side, so the window is always one contiguous slice.
    ring: Vec<f32>,
    pushed: u64,
    hidden: Vec<f32>,
}

impl Scorer {
    /// A scorer for `head` at the start of a stream.
    pub fn new(head: Head) -> Self {
        let hidden = Vec::with_capacity(head.weights.hidden());
        Scorer {
            head,
            ring: vec![0.0; 2 * HEAD_INPUTS],
            pushed: 0,
            hidden,
        }
    }

    /// The head being run.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Takes the next embedding; returns the score once [`HEAD_WINDOW`] have arrived.
    pub fn push(&mut self, e: &Embedding) -> Option<f32> {
        let slot = (self.pushed % HEAD_WINDOW as u64) as usize;
        let x = self.head.weights.normalize(e);
        for at in [slot, slot + HEAD_WINDOW] {
            self.ring[at * EMBEDDING_DIM..][..EMBEDDING_DIM].copy_from_slice(&x);
        }
        self.pushed += 1;
        if self.pushed < HEAD_WINDOW as u64 {
            return None;
        }
        let window = &self.ring[(slot + 1) * EMBEDDING_DIM..][..HEAD_INPUTS];
        Some(sigmoid(self.head.weights.logit(window, &mut self.hidden)))
    }

    /// Starts a new stream.
    pub fn reset(&mut self) {
        self.pushed = 0;
    }
}

/// Scores of every window of a whole embedding sequence: `scores[i]` belongs to embedding
/// `i + HEAD_WINDOW - 1`. The same arithmetic as [`Scorer`].
pub fn score_all(head: &Head, embeddings: &[Embedding]) -> Vec<f32> {
    let mut scorer = Scorer::new(head.clone());
    embeddings.iter().filter_map(|e| scorer.push(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head {
        let mut weights = Weights::zeros(4);
        for (i, w) in weights.w1.iter_mut().enumerate() {
            *w = (i % 7) as f32 * 0.01 - 0.03;
        }
        weights.w2 = vec![0.5, -0.25, 1.0, 0.1];
        weights.b2 = -0.2;
        Head {
            info: HeadInfo {
                format: FORMAT_VERSION,
                word: "computer".into(),
                threshold: 0.7,
                refractory_seconds: 1.0,
                window: HEAD_WINDOW,
                hidden: 4,
                backbone_sha256: "ab".repeat(32),
                created_unix: 1,
                training: TrainingSummary::default(),
            },
            weights,
            templates: None,
        }
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let h = head();
        let bytes = h.to_bytes();
        let back = Head::from_bytes(&bytes, Path::new("h")).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.to_bytes(), bytes);
    }

    fn with_templates() -> Head {
        let mut h = head();
        let frame = |k: usize| -> crate::features::cepstra::Cepstrum {
            std::array::from_fn(|i| (k * 12 + i) as f32 * 0.5)
        };
        h.templates = Some(Templates {
            cut: 31.5,
            words: vec![(0..20).map(frame).collect(), (20..45).map(frame).collect()],
            added: 1,
        });
        h
    }

    #[test]
    fn templates_round_trip_under_the_checksum() {
        let h = with_templates();
        let bytes = h.to_bytes();
        let back = Head::from_bytes(&bytes, Path::new("h")).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.to_bytes(), bytes);
        // `body` with its checksum recomputed, read as `name`: the refusal's message.
        let refusal = |mut body: Vec<u8>, name: &str| {
            let sum = Sha256::digest(&body);
            body.extend_from_slice(&sum);
            Head::from_bytes(&body, Path::new(name))
                .unwrap_err()
                .to_string()
        };
        // A file cut inside the templates is refused by its size.
        let json_len = u32::from_le_bytes(bytes[9..13].try_into().unwrap()) as usize;
        let n_at = 13 + json_len;
        let n = u32::from_le_bytes(bytes[n_at..n_at + 4].try_into().unwrap()) as usize;
        let mut short = bytes[..n_at].to_vec();
        short.extend_from_slice(&((n - CEPSTRA) as u32).to_le_bytes());
        short.extend_from_slice(&bytes[n_at + 4..n_at + 4 + (n - CEPSTRA) * 4]);
        let err = refusal(short, "short.head");
        assert!(
            err.contains("short.head") && err.contains("with its templates"),
            "{err}"
        );
        // More added templates than templates is refused too.
        let json = std::str::from_utf8(&bytes[13..n_at]).unwrap();
        assert!(json.contains(r#""added":1"#), "{json}");
        let json = json.replace(r#""added":1"#, r#""added":3"#);
        let mut bad = bytes[..9].to_vec();
        bad.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bad.extend_from_slice(json.as_bytes());
        bad.extend_from_slice(&bytes[n_at..bytes.len() - 32]);
        let err = refusal(bad, "bad.head");
        assert!(
            err.contains("bad.head") && err.contains("3 added templates of 2"),
            "{err}"
        );
    }

    #[test]
    fn a_format_1_head_still_loads() {
        let mut h = head();
        h.info.format = 1;
        let back = Head::from_bytes(&h.to_bytes(), Path::new("old.head")).unwrap();
        assert_eq!(back, h);
        assert!(back.templates.is_none());
    }

    #[test]
    fn logit_matches_a_direct_sum() {
        let h = head();
        let x: Vec<f32> = (0..HEAD_INPUTS).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut want = h.weights.b2;
        for j in 0..4 {
            let mut a = h.weights.b1[j];
            for (i, xi) in x.iter().enumerate() {
                a += xi * h.weights.w1[i * 4 + j];
            }
            want += a.max(0.0) * h.weights.w2[j];
        }
        let got = h.weights.logit(&x, &mut Vec::new());
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
}
