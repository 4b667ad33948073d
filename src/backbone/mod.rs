//! Stage 2 of the data path: log-mel frames → 96-d embeddings, through the frozen
//! speech_embedding CNN run by tract.
//!
//! The network is planned once ([`Backbone::builtin`] or [`Backbone::from_file`]) and run
//! many times by cheap [`BackboneStream`]s, one per stream of audio (tract's "plan once, run
//! many"). A stream takes one 8-frame group (80 ms) at a time and computes only the new time
//! columns of every layer, keeping the rest as state: every convolution of the network is
//! "valid" along time and its three time-poolings make a total stride of 8 frames, exactly the
//! hop, so a streaming network does 11.2 MFLOP per hop where the 76-frame window does 83.9.
//! The streaming plan is built per layer from the ONNX weights (`convnet`), with tract's
//! matrix kernels doing the arithmetic. Files go through the same streaming code.
//!
//! Embedding `k` of a frame sequence is the network's output on the 76 frames `8k … 8k+75`,
//! available once group `k+9` (frames `8k+72 … 8k+79`) has arrived: the first embedding of a
//! stream needs 10 groups (80 frames, 13 152 samples ≈ 0.82 s), and each further 80 ms adds one.
//! [`WindowedBackbone`] computes the same windows one at a time, as openWakeWord does, through
//! tract's ONNX runtime; it is the reference the streaming path is tested against (within
//! 1e-4: the sums run in another order) and benchmarked against.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::features::mel::{FrameStream, MelFrame, N_MELS};
use crate::timeline::{FRAME_HOP, GROUP_FRAMES, GROUP_SPAN};
use crate::{Error, Result};

pub mod embedder;
mod layers;
mod pack;
mod plan;

pub use crate::timeline::{FIRST_WINDOW_END, WINDOW_FRAMES};

/// Size of one embedding.
pub const EMBEDDING_DIM: usize = 96;
/// Groups a stream takes before its first embedding.
const FIRST_GROUPS: u64 = (FIRST_WINDOW_END / GROUP_FRAMES) as u64;
/// Groups per call of the whole-sequence path ([`Backbone::sequence`]). Four beat eight on
/// this project's 2-core machine (`cargo bench --bench pipeline`, alternating runs of one
/// session: 181.1 and 184.3 µs per hop against 282.9 and 195.0; the stream 195.7–202.2) and
/// vary less: the eight-group plan's bigger products slow down sharply when the caches are
/// shared with a busy neighbour. Sixteen were slower still.
pub const SEQUENCE_GROUPS: usize = 4;

/// One 96-d embedding: 80 ms of audio seen in 775 ms of context.
pub type Embedding = [f32; EMBEDDING_DIM];

/// sha256 of the `embedding_model.onnx` hark is built and tested with.
pub const BUILTIN_SHA256: &str = "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f";

static BUILTIN_MODEL: &[u8] = include_bytes!("../../models/embedding_model.onnx");

/// The bytes of the built-in model.
#[cfg(test)]
pub(crate) fn builtin_model_bytes() -> &'static [u8] {
    BUILTIN_MODEL
}

/// Number of embeddings a sequence of `frames` frames yields.
pub fn embedding_count(frames: usize) -> usize {
    if frames < FIRST_WINDOW_END {
        0
    } else {
        (frames - FIRST_WINDOW_END) / GROUP_FRAMES + 1
    }
}

/// The frozen backbone, planned once. Cloning is cheap and shares the plan, so threads can
/// each run their own [`BackboneStream`].
#[derive(Clone)]
pub struct Backbone {
    inner: Arc<Planned>,
}

struct Planned {
    /// The streaming plan: one group of 8 frames in, one embedding out.
    stream: plan::Plan,
    /// The whole-sequence plan or why it could not be made, on first use (its kernel choice
    /// takes about 0.5 s; threads asking meanwhile wait for it rather than plan again).
    sequence: std::sync::OnceLock<std::result::Result<Arc<plan::Plan>, String>>,
    /// The model bytes, for planning the windowed reference when it is asked for (borrowed
    /// from the binary for the built-in model, so they are not held twice).
    bytes: Cow<'static, [u8]>,
    sha256: String,
    origin: PathBuf,
}

impl std::fmt::Debug for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backbone")
            .field("origin", &self.inner.origin)
            .field("sha256", &self.inner.sha256)
            .finish()
    }
}

impl Backbone {
    /// The copy of `embedding_model.onnx` compiled into the binary.
    pub fn builtin() -> Result<Self> {
        Self::plan(
            Cow::Borrowed(BUILTIN_MODEL),
            Path::new("<built-in embedding_model.onnx>"),
        )
    }

    /// Loads an ONNX backbone from a file, e.g. to try another export of the same network.
    ///
    /// The file must be an ONNX export of speech_embedding: `[N, 76, 32, 1]` log-mel windows in,
    /// 96 values per window out, with the reference graph's layout (its two Reshape constants
    /// are what the streaming plan re-shapes). Anything else is refused with an error naming
    /// the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Loads a backbone from ONNX bytes; `origin` names them in errors and in [`Backbone::origin`].
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self> {
        Self::plan(Cow::Owned(bytes.to_vec()), origin)
    }

    fn plan(bytes: Cow<'static, [u8]>, origin: &Path) -> Result<Self> {
        let fail = |problem: String| Error::Backbone {
            path: origin.to_path_buf(),
            problem,
        };
        let stream = plan_stream(&bytes).map_err(|e| {
            fail(format!(
                "not a usable speech_embedding ONNX model ({})",
                root_cause(&e)
            ))
        })?;
        let backbone = Backbone {
            inner: Arc::new(Planned {
                stream,
                sequence: std::sync::OnceLock::new(),
                sha256: hex(&Sha256::digest(&bytes)),
                bytes,
                origin: origin.to_path_buf(),
            }),
        };
        // A model with the right shapes can still be the wrong network; one real run checks
        // that it works and produces finite numbers (not needed for the reference model,
        // whose bytes are known, and skipped so start-up touches less memory).
        if backbone.is_reference() {
            return Ok(backbone);
        }
        let probe = vec![[0.5f32; N_MELS]; FIRST_WINDOW_END];
        let emb = backbone.embed(&probe).map_err(|e| fail(e.to_string()))?;
        if emb.len() != 1 || emb[0].iter().any(|v| !v.is_finite()) {
            return Err(fail("produces non-finite embeddings".into()));
        }
        Ok(backbone)
    }

    /// sha256 (hex) of the model bytes: heads record it so they are never run on another backbone.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Where the model came from.
    pub fn origin(&self) -> &Path {
        &self.inner.origin
    }

    /// True if this is the exact model hark was built and tested with.
    pub fn is_reference(&self) -> bool {
        self.inner.sha256 == BUILTIN_SHA256
    }

    /// A new stream at its start.
    pub fn stream(&self) -> Result<BackboneStream> {
        Ok(BackboneStream {
            state: self.spawn()?,
            backbone: self.clone(),
            input: Vec::with_capacity(GROUP_FRAMES * N_MELS),
            groups: 0,
            windowed: None,
        })
    }

    /// A stream that runs the windowed reference instead (see [`Backbone::windowed`]): the same
    /// embeddings at the same points of the stream as [`Backbone::stream`], at about seven times
    /// the cost. For comparisons (`hark listen --windowed-backbone`), not for use.
    pub fn windowed_stream(&self) -> Result<BackboneStream> {
        let mut stream = self.stream()?;
        stream.windowed = Some((
            self.windowed()?,
            Vec::with_capacity(FIRST_WINDOW_END + GROUP_FRAMES),
        ));
        Ok(stream)
    }

    /// Embeddings of a whole frame sequence, through a fresh [`BackboneStream`]: the same code
    /// and the same numbers as streaming the frames.
    pub fn embed(&self, frames: &[MelFrame]) -> Result<Vec<Embedding>> {
        let mut stream = self.stream()?;
        let mut out = Vec::with_capacity(embedding_count(frames.len()));
        for group in frames.chunks_exact(GROUP_FRAMES) {
            if let Some(e) = stream.push_group(group)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Plans the windowed reference: the network run on each whole 76-frame window, as
    /// openWakeWord runs it. Slower (it recomputes 68 of every 76 frames); for tests and benchmarks.
    pub fn windowed(&self) -> Result<WindowedBackbone> {
        let state = window_plan(&self.inner.bytes)
            .and_then(|p| p.spawn())
            .map_err(|e| self.failure(format!("cannot plan the windowed model ({e})")))?;
        Ok(WindowedBackbone {
            state,
            backbone: self.clone(),
            input: Vec::with_capacity(WINDOW_FRAMES * N_MELS),
        })
    }

    /// Whether the whole-sequence path's plan has been made (or has failed): from then on
    /// [`Backbone::sequence`] returns without waiting.
    pub fn sequence_planned(&self) -> bool {
        self.inner.sequence.get().is_some()
    }

    /// Plans the whole-sequence path: the convolutions run over [`SEQUENCE_GROUPS`] groups
    /// (0.32 s) of a file's frames per call instead of one (see [`SequenceBackbone`]). The plan
    /// is made once per backbone, taking about half a second; other callers wait for it.
    pub fn sequence(&self) -> Result<SequenceBackbone> {
        let plan = self
            .inner
            .sequence
            .get_or_init(|| {
                layers::Network::from_onnx(&self.inner.bytes, N_MELS)
                    .and_then(|network| plan::Plan::new(&network, SEQUENCE_GROUPS))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| self.failure(format!("cannot plan the whole-sequence path ({e})")))?;
        let state = plan
            .spawn()
            .map_err(|e| self.failure(format!("cannot start the whole-sequence path ({e})")))?;
        Ok(SequenceBackbone {
            plan,
            state,
            backbone: self.clone(),
            input: Vec::with_capacity(SEQUENCE_GROUPS * GROUP_FRAMES * N_MELS),
            silence: None,
        })
    }

    fn spawn(&self) -> Result<plan::State> {
        self.inner
            .stream
            .spawn()
            .map_err(|e| self.failure(format!("cannot start a stream ({e})")))
    }

    fn failure(&self, problem: String) -> Error {
        Error::Backbone {
            path: self.inner.origin.clone(),
            problem,
        }
    }
}

/// One stream through the backbone: the recent time columns of every layer, kept between
/// groups so each group costs only its new columns.
pub struct BackboneStream {
    state: plan::State,
    backbone: Backbone,
    input: Vec<f32>,
    groups: u64,
    /// The windowed reference and its last frames, when this stream runs it instead.
    windowed: Option<(WindowedBackbone, Vec<MelFrame>)>,
}

impl std::fmt::Debug for BackboneStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackboneStream")
            .field("backbone", &self.backbone)
            .field("groups", &self.groups)
            .finish()
    }
}

impl BackboneStream {
    /// Feeds the next group of 8 frames; returns the embedding it completes (none for the
    /// first 9 groups of a stream, while the first window fills).
    pub fn push_group(&mut self, group: &[MelFrame]) -> Result<Option<Embedding>> {
        if group.len() != GROUP_FRAMES {
            return Err(Error::Invalid(format!(
                "the backbone takes groups of {GROUP_FRAMES} frames, got {}",
                group.len()
            )));
        }
        if let Some((window, frames)) = &mut self.windowed {
            // The last 80 frames; embedding k is the window of frames 8k…8k+75, produced when
            // frame 8k+79 arrives, as the streaming plan produces it.
            frames.extend_from_slice(group);
            let excess = frames.len().saturating_sub(FIRST_WINDOW_END);
            frames.drain(..excess);
            self.groups += 1;
            if self.groups < FIRST_GROUPS {
                return Ok(None);
            }
            return window.embed_window(&frames[..WINDOW_FRAMES]).map(Some);
        }
        self.input.clear();
        self.input.extend(group.iter().flatten());
        let output = self
            .backbone
            .inner
            .stream
            .run(&mut self.state, &self.input)
            .map_err(|e| self.backbone.failure(e.to_string()))?;
        self.groups += 1;
        if self.groups < FIRST_GROUPS {
            return Ok(None);
        }
        output.try_into().map(Some).map_err(|_| {
            self.backbone
                .failure(format!("returned {} values", output.len()))
        })
    }

    /// Groups fed since the start of the stream.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// Starts a new stream: forgets every layer's columns (the plan is kept).
    pub fn reset(&mut self) -> Result<()> {
        self.state.reset();
        self.groups = 0;
        if let Some((_, frames)) = &mut self.windowed {
            frames.clear();
        }
        Ok(())
    }
}

/// The reference path: the network on one whole 76-frame window per call.
pub struct WindowedBackbone {
    state: TypedSimpleState,
    backbone: Backbone,
    input: Vec<f32>,
}

impl std::fmt::Debug for WindowedBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowedBackbone")
            .field("backbone", &self.backbone)
            .finish()
    }
}

impl WindowedBackbone {
    /// Embedding of one window of exactly [`WINDOW_FRAMES`] frames.
    pub fn embed_window(&mut self, window: &[MelFrame]) -> Result<Embedding> {
        if window.len() != WINDOW_FRAMES {
            return Err(Error::Invalid(format!(
                "a backbone window is {WINDOW_FRAMES} frames, got {}",
                window.len()
            )));
        }
        let origin = self.backbone.origin().to_path_buf();
        let output = run_frames(&mut self.state, &mut self.input, window, &origin)?;
        to_embedding(&output, &origin)
    }

    /// Embeddings of a whole frame sequence, window `k` being frames `8k … 8k+75`.
    pub fn embed(&mut self, frames: &[MelFrame]) -> Result<Vec<Embedding>> {
        (0..embedding_count(frames.len()))
            .map(|k| self.embed_window(&frames[k * GROUP_FRAMES..][..WINDOW_FRAMES]))
            .collect()
    }
}

/// The whole-sequence path ("batch"): the streaming plan laid out for [`SEQUENCE_GROUPS`]
/// groups per call, so each convolution is one product over 32 new frames instead of 8. The
/// frames after the end of the sequence are zeros; no embedding it returns depends on them.
/// Gives the streaming embeddings (bit-identical: every kernel it may pick sums in the same
/// order); `train` and `update` embed their clips with it.
pub struct SequenceBackbone {
    plan: Arc<plan::Plan>,
    state: plan::State,
    backbone: Backbone,
    input: Vec<f32>,
    /// The calls a silent lead makes, run once on the first sequence that starts with one.
    silence: Option<SilentLead>,
}

/// Calls of the whole-sequence path whose input frames a second of digital silence fills
/// (96 of the 97 frames of zeros before a sound): `train` pads every clean clip and negative
/// file with that second, so the calls, the same for every such sequence, run once per
/// [`SequenceBackbone`] and are copied, sparing about a tenth of the backbone's work in
/// training.
const SILENT_CALLS: usize = 3;

/// What [`SILENT_CALLS`] calls over silence give: their input frames, the stream's state after
/// them and their output rows.
struct SilentLead {
    frames: Vec<MelFrame>,
    state: plan::State,
    values: Vec<f32>,
}

impl std::fmt::Debug for SequenceBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceBackbone")
            .field("backbone", &self.backbone)
            .finish()
    }
}

impl SequenceBackbone {
    /// Embeddings of a whole frame sequence, embedding `k` being the window of frames
    /// `8k … 8k+75`.
    pub fn embed(&mut self, frames: &[MelFrame]) -> Result<Vec<Embedding>> {
        let total = embedding_count(frames.len());
        let mut out = Vec::with_capacity(total);
        let per_call = SEQUENCE_GROUPS * GROUP_FRAMES;
        // Output row r of call s is embedding 8·s + r − 9.
        let lag = FIRST_GROUPS as usize - 1;
        let emit = |call: usize, values: &[f32], out: &mut Vec<Embedding>| {
            for (r, e) in values.chunks_exact(EMBEDDING_DIM).enumerate() {
                let k = (call * SEQUENCE_GROUPS + r).checked_sub(lag);
                if k.is_some_and(|k| k < total) {
                    out.push(e.try_into().expect("chunks of EMBEDDING_DIM"));
                }
            }
        };
        let mut call = 0usize;
        if total > 0 && self.starts_silent(frames)? {
            let lead = self.silence.as_ref().expect("made by starts_silent");
            self.state.copy_from(&lead.state);
            for (s, values) in lead
                .values
                .chunks_exact(SEQUENCE_GROUPS * EMBEDDING_DIM)
                .enumerate()
            {
                emit(s, values, &mut out);
            }
            call = SILENT_CALLS;
        } else {
            self.state.reset();
        }
        while out.len() < total {
            self.input.clear();
            let start = (call * per_call).min(frames.len());
            let end = ((call + 1) * per_call).min(frames.len());
            self.input.extend(frames[start..end].iter().flatten());
            self.input.resize(per_call * N_MELS, 0.0);
            let values = self
                .plan
                .run(&mut self.state, &self.input)
                .map_err(|e| self.backbone.failure(e.to_string()))?;
            emit(call, values, &mut out);
            call += 1;
        }
        Ok(out)
    }

    /// Whether `frames` begin with the frames of a silent lead (bit for bit), running the
    /// lead's calls the first time it is asked.
    fn starts_silent(&mut self, frames: &[MelFrame]) -> Result<bool> {
        let per_call = SEQUENCE_GROUPS * GROUP_FRAMES;
        let n = SILENT_CALLS * per_call;
        if frames.len() < n {
            return Ok(false);
        }
        if self.silence.is_none() {
            let mut lead = Vec::new();
            FrameStream::new().push(&vec![0.0; n * FRAME_HOP + GROUP_SPAN], &mut lead);
            lead.truncate(n);
            let mut state = self
                .plan
                .spawn()
                .map_err(|e| self.backbone.failure(e.to_string()))?;
            let mut values = Vec::with_capacity(SILENT_CALLS * SEQUENCE_GROUPS * EMBEDDING_DIM);
            for call in lead.chunks_exact(per_call) {
                self.input.clear();
                self.input.extend(call.iter().flatten());
                let v = self
                    .plan
                    .run(&mut state, &self.input)
                    .map_err(|e| self.backbone.failure(e.to_string()))?;
                values.extend_from_slice(v);
            }
            self.silence = Some(SilentLead {
                frames: lead,
                state,
                values,
            });
        }
        let lead = &self.silence.as_ref().expect("made above").frames;
        let bits = |f: &MelFrame| f.map(f32::to_bits);
        Ok(frames[..n]
            .iter()
            .zip(lead)
            .all(|(a, b)| bits(a) == bits(b)))
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
fn output_values(output: &TValue) -> Result<&[f32]> {
    output
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| Error::Invalid(format!("backbone output: {e}")))
}

/// The embedding in a plan's output tensor.
fn to_embedding(output: &TValue, origin: &Path) -> Result<Embedding> {
    let values = output_values(output)?;
    values.try_into().map_err(|_| Error::Backbone {
        path: origin.to_path_buf(),
        problem: format!("returned {} values, expected {EMBEDDING_DIM}", values.len()),
    })
}

/// The streaming plan: the network's layers read from the model and laid out for one group of
/// 8 frames per call, each layer keeping the columns it still needs; the first embedding
/// comes out of the 10th group.
fn plan_stream(bytes: &[u8]) -> TractResult<plan::Plan> {
    let network = layers::Network::from_onnx(bytes, N_MELS)?;
    crate::memory::release_startup();
    if network.stride() != GROUP_FRAMES
        || network.lag() != FIRST_GROUPS as usize - 1
        || network.out_dim() != EMBEDDING_DIM
    {
        return Err(TractError::msg(format!(
            "streams {} values every {} frames after {} groups, not one {EMBEDDING_DIM}-d \
             embedding per {GROUP_FRAMES} frames after {FIRST_GROUPS}",
            network.out_dim(),
            network.stride(),
            network.lag() + 1
        )));
    }
    let plan = plan::Plan::new(&network, 1)?;
    drop(network);
    crate::memory::release_startup();
    Ok(plan)
}

/// The windowed plan, shapes fixed at one `[1, 76, 32, 1]` window so tract can pick and pack
/// its kernels once (batching windows measured slower per window in tract).
fn window_plan(bytes: &[u8]) -> TractResult<Arc<TypedRunnableModel>> {
    let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(bytes))?;
    model.set_input_fact(0, f32::fact([1, WINDOW_FRAMES, N_MELS, 1]).into())?;
    model.into_optimized()?.into_runnable()
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
