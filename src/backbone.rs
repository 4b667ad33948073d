//! Stage 2 of the data path: log-mel frames → 96-d embeddings, through the frozen
//! speech_embedding CNN run by tract.
//!
//! The model is parsed, type-checked and optimised once ([`Backbone::builtin`] or
//! [`Backbone::from_file`]); every later call reuses the same plan and state.
//!
//! Embedding `k` of a frame sequence is computed from the 76 frames `8k+4 … 8k+79`: the window
//! that ends with clamp group `k+9`, exactly as openWakeWord slides it (the last 76 frames
//! whenever a new group of 8 has arrived). The first embedding of a stream therefore needs
//! 10 groups (80 frames, 13 152 samples ≈ 0.82 s), and each further 80 ms adds one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::frontend::{GROUP_FRAMES, MelFrame, N_MELS};
use crate::{Error, Result};

/// Frames in one backbone input window (0.775 s).
pub const WINDOW_FRAMES: usize = 76;
/// Size of one embedding.
pub const EMBEDDING_DIM: usize = 96;
/// Frames a stream must hold before its first embedding: 10 groups.
pub const FIRST_WINDOW_END: usize = 80;
/// Frames skipped at the start of each window's first group.
const WINDOW_OFFSET: usize = FIRST_WINDOW_END - WINDOW_FRAMES;

/// One 96-d embedding: 80 ms of audio seen in 775 ms of context.
pub type Embedding = [f32; EMBEDDING_DIM];

/// sha256 of the `embedding_model.onnx` hark is built and tested with.
pub const BUILTIN_SHA256: &str = "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f";

static BUILTIN_MODEL: &[u8] = include_bytes!("../models/embedding_model.onnx");

/// Number of embeddings a sequence of `frames` frames yields.
pub fn embedding_count(frames: usize) -> usize {
    if frames < FIRST_WINDOW_END {
        0
    } else {
        (frames - FIRST_WINDOW_END) / GROUP_FRAMES + 1
    }
}

/// The frozen backbone, planned once and ready to run.
pub struct Backbone {
    /// Plan for one window (streaming), shapes fixed so tract can specialise its kernels.
    state: TypedSimpleState,
    /// The same network run over a whole frame sequence at once (see [`sequence_plan`]),
    /// planned on first use; `Some(None)` for a model whose graph hark cannot re-shape.
    sequence: Option<Option<TypedSimpleState>>,
    /// The model bytes, kept for planning the sequence path when it is first asked for.
    bytes: Vec<u8>,
    sha256: String,
    origin: PathBuf,
    input: Vec<f32>,
}

impl std::fmt::Debug for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backbone")
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Backbone {
    /// The copy of `embedding_model.onnx` compiled into the binary.
    pub fn builtin() -> Result<Self> {
        Self::from_bytes(BUILTIN_MODEL, Path::new("<built-in embedding_model.onnx>"))
    }

    /// Loads an ONNX backbone from a file, e.g. to try another export of the same network.
    ///
    /// The file must be an ONNX model taking `[N, 76, 32, 1]` log-mel windows and returning a
    /// 96-d embedding per window; anything else is refused with an error naming the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Loads a backbone from ONNX bytes; `origin` names them in errors and in [`Backbone::origin`].
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self> {
        let fail = |problem: String| Error::Backbone {
            path: origin.to_path_buf(),
            problem,
        };
        let sha256 = hex(&Sha256::digest(bytes));
        let spawn = || {
            plan(bytes).and_then(|p| p.spawn()).map_err(|e| {
                fail(format!(
                    "not a usable speech_embedding ONNX model ({})",
                    root_cause(&e)
                ))
            })
        };
        let state = spawn()?;
        let mut backbone = Backbone {
            state,
            sequence: None,
            bytes: bytes.to_vec(),
            sha256,
            origin: origin.to_path_buf(),
            input: Vec::new(),
        };
        // A model with the right shapes can still be the wrong network; one real call checks
        // that it runs and produces finite numbers.
        let probe = vec![[0.5f32; N_MELS]; FIRST_WINDOW_END];
        let emb = backbone
            .embed_latest(&probe)
            .map_err(|e| fail(e.to_string()))?;
        if emb.iter().any(|v| !v.is_finite()) {
            return Err(fail("produces non-finite embeddings".into()));
        }
        Ok(backbone)
    }

    /// sha256 (hex) of the model bytes: heads record it so they are never run on another backbone.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where the model came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// True if this is the exact model hark was built and tested with.
    pub fn is_reference(&self) -> bool {
        self.sha256 == BUILTIN_SHA256
    }

    /// Embeddings of a whole frame sequence (see the module docs for the windowing), one
    /// 76-frame window at a time through the same plan as streaming, so a file and a stream of
    /// the same audio give the same embeddings.
    pub fn embed(&mut self, frames: &[MelFrame]) -> Result<Vec<Embedding>> {
        (0..embedding_count(frames.len()))
            .map(|k| {
                self.embed_latest(&frames[k * GROUP_FRAMES..k * GROUP_FRAMES + FIRST_WINDOW_END])
            })
            .collect()
    }

    /// Embeddings of a whole frame sequence computed column by column instead of window by
    /// window: equal to [`Backbone::embed`] within 1e-4 (`tests/backbone.rs`), not bit for bit.
    ///
    /// Every convolution of the network is "valid" along time and its three time-poolings make
    /// a total stride of 8 frames, exactly the hop, so running it once over the whole sequence
    /// yields every window's embedding while computing each time column once (tested equal to
    /// the windowed path in `tests/backbone.rs`). Long recordings go in segments of
    /// [`SEGMENT`] embeddings to bound memory.
    pub fn embed_sequence(&mut self, frames: &[MelFrame]) -> Result<Vec<Embedding>> {
        let n = embedding_count(frames.len());
        if self.sequence.is_none() {
            self.sequence = Some(sequence_plan(&self.bytes).and_then(|p| p.spawn()).ok());
        }
        if !matches!(self.sequence, Some(Some(_))) {
            return self.embed(frames);
        }
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let count = SEGMENT.min(n - start);
            let first = start * GROUP_FRAMES + WINDOW_OFFSET;
            let len = WINDOW_FRAMES + (count - 1) * GROUP_FRAMES;
            out.extend(self.run_sequence(&frames[first..first + len], count)?);
            start += count;
        }
        Ok(out)
    }

    fn run_sequence(&mut self, frames: &[MelFrame], count: usize) -> Result<Vec<Embedding>> {
        let state = self
            .sequence
            .as_mut()
            .and_then(Option::as_mut)
            .expect("checked by the caller");
        let output = run_frames(state, &mut self.input, frames, &self.origin)?;
        let values = as_values(&output)?;
        if values.len() != count * EMBEDDING_DIM {
            return Err(Error::Backbone {
                path: self.origin.clone(),
                problem: format!("returned {} values for {count} windows", values.len()),
            });
        }
        // The output is channels-first, [1, 96, count, 1]: column k is embedding k.
        Ok((0..count)
            .map(|k| std::array::from_fn(|c| values[c * count + k]))
            .collect())
    }

    /// Embedding of the newest window of a stream: `frames` holds the last 80 frames
    /// (10 groups); the window is its last 76.
    pub fn embed_latest(&mut self, frames: &[MelFrame]) -> Result<Embedding> {
        if frames.len() != FIRST_WINDOW_END {
            return Err(Error::Invalid(format!(
                "the backbone needs the last {FIRST_WINDOW_END} frames, got {}",
                frames.len()
            )));
        }
        let output = run_frames(
            &mut self.state,
            &mut self.input,
            &frames[WINDOW_OFFSET..],
            &self.origin,
        )?;
        let values = as_values(&output)?;
        values.try_into().map_err(|_| Error::Backbone {
            path: self.origin.clone(),
            problem: format!("returned {} values, expected {EMBEDDING_DIM}", values.len()),
        })
    }
}

/// Runs one plan on `frames` as a `[1, T, 32, 1]` input (staged in `buf`, reused across
/// calls); returns the first output.
fn run_frames(
    state: &mut TypedSimpleState,
    buf: &mut Vec<f32>,
    frames: &[MelFrame],
    origin: &Path,
) -> Result<TValue> {
    buf.clear();
    buf.extend(frames.iter().flatten());
    let tensor = Tensor::from_shape(&[1, frames.len(), N_MELS, 1], buf)
        .map_err(|e| Error::Invalid(format!("backbone input: {e}")))?;
    let mut outputs = state
        .run(tvec![tensor.into()])
        .map_err(|e| Error::Invalid(format!("backbone {}: {e}", origin.display())))?;
    Ok(outputs.remove(0))
}

/// The values of a plan's output tensor.
fn as_values(output: &TValue) -> Result<&[f32]> {
    output
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| Error::Invalid(format!("backbone output: {e}")))
}

/// Embeddings per call of the sequence plan: bounds its activations to a few tens of MB.
const SEGMENT: usize = 256;

/// The backbone re-shaped to take a whole frame sequence `[1, T, 32, 1]` and return
/// `[1, 96, n, 1]`: its two Reshape constants (`[-1,1,76,32]` in, `[-1,1,1,96]` out) are the
/// only things that fix the window length, so they are replaced by time-agnostic ones.
fn sequence_plan(bytes: &[u8]) -> TractResult<Arc<TypedRunnableModel>> {
    let onnx = tract_onnx::onnx();
    let mut proto = onnx.proto_model_for_read(&mut std::io::Cursor::new(bytes))?;
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| TractError::msg("no graph"))?;
    let mut patched = 0;
    for init in &mut graph.initializer {
        let shape: Option<[i64; 4]> = match init.name.as_str() {
            "new_shape__262" => Some([1, 1, -1, N_MELS as i64]),
            "new_shape__273" => Some([1, EMBEDDING_DIM as i64, -1, 1]),
            _ => None,
        };
        if let Some(shape) = shape {
            init.int64_data.clear();
            init.raw_data = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
            patched += 1;
        }
    }
    if patched != 2 {
        return Err(TractError::msg("not the reference graph layout"));
    }
    let mut model = onnx.model_for_proto_model(&proto)?;
    let time = model.sym("T");
    model.set_input_fact(
        0,
        f32::fact(tract_onnx::tract_core::dims!(1, time, N_MELS, 1)).into(),
    )?;
    model.into_optimized()?.into_runnable()
}

/// Parses, shapes and optimises the model for one window per call. Fixed shapes let tract
/// pick and pack its kernels once; batching windows measured slower per window
/// (8.1 ms at batch 16, 5.5 ms with a symbolic batch, 4.8 ms fixed at 1; benches/pipeline.rs), so every path runs one
/// window at a time.
fn plan(bytes: &[u8]) -> TractResult<Arc<TypedRunnableModel>> {
    let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(bytes))?;
    model.set_input_fact(0, f32::fact([1, WINDOW_FRAMES, N_MELS, 1]).into())?;
    let model = model.into_optimized()?;
    let out = model.output_fact(0)?;
    let volume: Option<i64> = out
        .shape
        .iter()
        .skip(1)
        .map(|d| d.to_i64().ok())
        .product::<Option<i64>>();
    if volume != Some(EMBEDDING_DIM as i64) {
        return Err(TractError::msg(format!(
            "output shape {:?} is not {EMBEDDING_DIM} values per window",
            out.shape
        )));
    }
    model.into_runnable()
}

fn root_cause(e: &TractError) -> String {
    e.chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Lower-case hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_count_matches_the_windowing() {
        assert_eq!(embedding_count(79), 0);
        assert_eq!(embedding_count(80), 1);
        assert_eq!(embedding_count(87), 1);
        assert_eq!(embedding_count(88), 2);
    }

    #[test]
    fn builtin_model_is_the_reference() {
        let b = Backbone::builtin().unwrap();
        assert!(b.is_reference());
        assert_eq!(b.sha256(), BUILTIN_SHA256);
    }
}
