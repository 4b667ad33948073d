//! Learning from feedback while listening: the user marks a detection as a false alarm or says
//! a wake word was missed; hark keeps that audio, updates the head in the background and swaps
//! the new head in without stopping.
//!
//! Everything lives in a folder beside the head, `<head>.learn/`:
//!
//! ```text
//! inbox/      feedback marks, one file each (`hark feedback`, or a key press in `listen`)
//! recent/     audio around the last few detections (2 s before, 0.5 s after)
//! negative/   false alarms waiting for the next update
//! positive/   missed wake words (the last 4 s before the mark) waiting for the next update
//! learned/    clips an update has used (or refused, with the reason in the log)
//! listening   the process id of the `hark listen --learn` using this folder
//! ```
//!
//! Nothing is lost on power loss: marks, clips and heads are written atomically (temporary
//! file, fsync, rename), a clip moves out of `negative/`/`positive/` only after the head that
//! learned from it is on disk, and clips still waiting are learned at the next start. At worst
//! a clip is learned twice.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::audio::history::AudioHistory;
use crate::backbone::Backbone;
use crate::data::cache::Cache;
use crate::data::folders::{Split, wav_files};
use crate::detect::actions::{SAVE_AFTER, SAVE_BEFORE, file_safe, write_around};
use crate::detect::detector::Detection;
use crate::detect::session::DetectionSink;
use crate::model::head::Head;
use crate::train::{self, TrainOptions};
use crate::{Error, Result};

/// Detection clips kept in `recent/` for marking.
pub const RECENT_KEPT: usize = 5;
/// Seconds of audio kept as a missed wake word: the word and the pause before the mark.
pub const MISSED_SECONDS: f64 = 4.0;
/// How often the inbox is looked at.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What the user says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// The last detection was not the wake word.
    FalseAlarm,
    /// The wake word was just said and not detected.
    Missed,
}

impl Feedback {
    /// The name used on the command line and in mark files.
    pub fn name(self) -> &'static str {
        match self {
            Feedback::FalseAlarm => "false-alarm",
            Feedback::Missed => "missed",
        }
    }

    /// The feedback named `s` (as [`Feedback::name`] prints it).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "false-alarm" => Some(Feedback::FalseAlarm),
            "missed" => Some(Feedback::Missed),
            _ => None,
        }
    }
}

/// The learning folder of one head, `<head>.learn/`.
#[derive(Debug, Clone)]
pub struct LearnDir {
    root: PathBuf,
}

impl LearnDir {
    /// The folder that belongs to the head at `head`.
    pub fn for_head(head: &Path) -> Self {
        LearnDir {
            root: crate::atomic::beside(head, ".learn"),
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Feedback marks waiting to be read.
    pub fn inbox(&self) -> PathBuf {
        self.root.join("inbox")
    }

    /// Audio of the last detections.
    pub fn recent(&self) -> PathBuf {
        self.root.join("recent")
    }

    /// Clips of `kind` waiting for the next update.
    pub fn waiting(&self, kind: Feedback) -> PathBuf {
        self.root.join(match kind {
            Feedback::FalseAlarm => "negative",
            Feedback::Missed => "positive",
        })
    }

    /// Clips an update has used.
    pub fn learned(&self) -> PathBuf {
        self.root.join("learned")
    }

    fn pid_file(&self) -> PathBuf {
        self.root.join("listening")
    }

    fn create(&self) -> Result<()> {
        for d in [
            self.inbox(),
            self.recent(),
            self.waiting(Feedback::FalseAlarm),
            self.waiting(Feedback::Missed),
            self.learned(),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        Ok(())
    }

    /// Whether a `hark listen --learn` process is using this folder now (Linux; elsewhere
    /// `None`: unknown).
    pub fn listener_running(&self) -> Option<bool> {
        if !Path::new("/proc/self").exists() {
            return None;
        }
        let pid = std::fs::read_to_string(self.pid_file()).ok();
        Some(pid.is_some_and(|p| Path::new("/proc").join(p.trim()).exists()))
    }
}

fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Sends feedback to the `hark listen --learn` running on the head at `head`: writes a mark
/// into its inbox (atomically). Returns the mark's path.
pub fn send(head: &Path, kind: Feedback) -> Result<PathBuf> {
    if !head.is_file() {
        return Err(Error::Data(format!(
            "{}: no such head file (give the --head that `hark listen --learn` runs)",
            head.display()
        )));
    }
    let dir = LearnDir::for_head(head);
    let inbox = dir.inbox();
    std::fs::create_dir_all(&inbox).map_err(|e| Error::io(&inbox, e))?;
    let path = inbox.join(format!(
        "{:024}-{}",
        unix_nanos(SystemTime::now()),
        kind.name()
    ));
    crate::atomic::write_bytes(&path, kind.name().as_bytes())?;
    Ok(path)
}

/// A detection of the learning head in this run, and where its audio went.
#[derive(Debug)]
struct Recent {
    detection: Detection,
    clip: Option<PathBuf>,
    marked: bool,
}

/// What a background update produced.
#[derive(Debug)]
struct Outcome {
    head: Head,
    message: String,
    notes: Vec<String>,
}

/// The learning side of `hark listen --learn` for one head: keeps the audio feedback refers to,
/// reads feedback marks, runs updates on a background thread and hands over the new heads.
#[derive(Debug)]
pub struct Learner {
    head_path: PathBuf,
    word: String,
    dir: LearnDir,
    backbone: Backbone,
    cache: Cache,
    recent: Option<Recent>,
    started: SystemTime,
    last_poll: Option<Instant>,
    job: Option<JoinHandle<Result<Outcome>>>,
    notes: Vec<String>,
}

impl Learner {
    /// Learns for the head at `head_path` (which must have the replay manifest `hark train`
    /// writes beside it); `cache` holds the embeddings its training data left.
    pub fn new(backbone: &Backbone, head_path: &Path, cache: Cache) -> Result<Self> {
        let (head, _) = train::load_for_update(backbone, head_path)?;
        let dir = LearnDir::for_head(head_path);
        dir.create()?;
        crate::atomic::write_bytes(&dir.pid_file(), std::process::id().to_string().as_bytes())?;
        Ok(Learner {
            head_path: head_path.to_path_buf(),
            word: head.info.word,
            dir,
            backbone: backbone.clone(),
            cache,
            recent: None,
            started: SystemTime::now(),
            last_poll: None,
            job: None,
            notes: Vec::new(),
        })
    }

    /// The learning folder.
    pub fn dir(&self) -> &LearnDir {
        &self.dir
    }

    fn save_recent(&mut self, history: &AudioHistory) -> Result<()> {
        let Some(r) = self.recent.as_mut() else {
            return Ok(());
        };
        let d = &r.detection;
        let name = format!(
            "{:024}-{}-{:.2}s.wav",
            unix_nanos(SystemTime::now()),
            file_safe(&d.word),
            d.time
        );
        let path = self.dir.recent().join(name);
        write_around(&path, d, history)?;
        r.clip = Some(path);
        // Keep the newest few (names start with the time they were written).
        let kept = wav_files(&[self.dir.recent()], Split::All)?;
        let excess = kept.len().saturating_sub(RECENT_KEPT);
        for old in &kept[..excess] {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// Reads new feedback, starts an update when clips wait and none runs, and returns the new
    /// head when an update has finished. Cheap to call often: the inbox is read every 200 ms.
    fn poll(&mut self, history: &AudioHistory) -> Result<Option<Head>> {
        if self.last_poll.is_some_and(|t| t.elapsed() < POLL_EVERY) {
            return Ok(None);
        }
        self.last_poll = Some(Instant::now());
        self.read_inbox(history)?;
        let finished = match &self.job {
            Some(job) if job.is_finished() => self.job.take(),
            _ => None,
        };
        let mut out = None;
        if let Some(job) = finished {
            out = self.collect(job, history);
        }
        if self.job.is_none() {
            self.start_update()?;
        }
        Ok(out)
    }

    /// At the end of listening: waits for a running update and returns its head.
    pub fn stop(&mut self, history: &AudioHistory) -> Option<Head> {
        let out = self.job.take().and_then(|job| self.collect(job, history));
        let _ = std::fs::remove_file(self.dir.pid_file());
        out
    }

    fn collect(
        &mut self,
        job: JoinHandle<Result<Outcome>>,
        history: &AudioHistory,
    ) -> Option<Head> {
        match job.join() {
            Ok(Ok(outcome)) => {
                self.notes.extend(outcome.notes);
                self.notes.push(format!(
                    "{}; in use from {:.2} s of audio",
                    outcome.message,
                    history.seconds()
                ));
                Some(outcome.head)
            }
            Ok(Err(e)) => {
                self.notes.push(format!(
                    "learning: the update failed: {e}; still listening with the previous head"
                ));
                None
            }
            Err(_) => {
                self.notes.push(
                    "learning: the update thread crashed; still listening with the previous head"
                        .into(),
                );
                None
            }
        }
    }

    fn read_inbox(&mut self, history: &AudioHistory) -> Result<()> {
        let inbox = self.dir.inbox();
        let mut marks = list(&inbox)?;
        marks.retain(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        });
        let start = unix_nanos(self.started);
        for mark in marks {
            let name = mark
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parsed = name
                .split_once('-')
                .and_then(|(t, k)| Some((t.parse::<u128>().ok()?, Feedback::parse(k)?)));
            let keep_waiting = match parsed {
                None => {
                    self.notes.push(format!(
                        "learning: ignored {}: not a feedback mark",
                        mark.display()
                    ));
                    false
                }
                Some((t, _)) if t < start => {
                    self.notes.push(format!(
                        "learning: ignored feedback sent before this run started ({name})"
                    ));
                    false
                }
                Some((_, Feedback::FalseAlarm)) => self.false_alarm()?,
                Some((t, Feedback::Missed)) => {
                    self.missed(t, history)?;
                    false
                }
            };
            if keep_waiting {
                break;
            }
            std::fs::remove_file(&mark).map_err(|e| Error::io(&mark, e))?;
        }
        Ok(())
    }

    /// Moves the last detection's clip to the false alarms. True if its clip is not written
    /// yet (the mark then waits).
    fn false_alarm(&mut self) -> Result<bool> {
        let Some(r) = self.recent.as_mut() else {
            self.notes.push(
                "learning: a false alarm was marked, but nothing has been detected in this run yet"
                    .into(),
            );
            return Ok(false);
        };
        let Some(clip) = r.clip.clone() else {
            return Ok(true);
        };
        if r.marked {
            self.notes.push(format!(
                "learning: the detection at {:.2} s is already marked as a false alarm",
                r.detection.time
            ));
            return Ok(false);
        }
        let name = clip.file_name().expect("clips have names");
        let to = self.dir.waiting(Feedback::FalseAlarm).join(name);
        std::fs::rename(&clip, &to).map_err(|e| Error::io(&clip, e))?;
        r.marked = true;
        self.notes.push(format!(
            "learning: the detection at {:.2} s (score {:.3}) is a false alarm; learning from it",
            r.detection.time, r.detection.score
        ));
        Ok(false)
    }

    /// Keeps the last seconds of audio as a missed wake word, if a word is in them.
    fn missed(&mut self, mark_time: u128, history: &AudioHistory) -> Result<()> {
        let samples = history.last(MISSED_SECONDS);
        if let Err(why) = crate::audio::vad::locate_word(&samples) {
            self.notes.push(format!(
                "learning: a miss was marked, but the last {MISSED_SECONDS:.0} s hold no usable word ({why}); not kept"
            ));
            return Ok(());
        }
        let path = self
            .dir
            .waiting(Feedback::Missed)
            .join(format!("{mark_time:024}-missed.wav"));
        crate::audio::wav::write_wav(&path, &samples, crate::timeline::SAMPLE_RATE)?;
        self.notes.push(format!(
            "learning: kept the last {:.1} s (up to {:.2} s) as a missed \"{}\"; learning from it",
            crate::timeline::seconds_of(samples.len() as u64),
            history.seconds(),
            self.word
        ));
        Ok(())
    }

    fn start_update(&mut self) -> Result<()> {
        let pick = |kind| wav_files(&[self.dir.waiting(kind)], Split::All);
        let negatives = pick(Feedback::FalseAlarm)?;
        let positives = pick(Feedback::Missed)?;
        if negatives.is_empty() && positives.is_empty() {
            return Ok(());
        }
        let backbone = self.backbone.clone();
        let head_path = self.head_path.clone();
        let learned = self.dir.learned();
        let opts = TrainOptions::for_update(positives, negatives, self.cache.clone());
        let job = std::thread::Builder::new()
            .name("hark-learn".into())
            .spawn(move || update_in_place(&backbone, &head_path, &opts, &learned))
            .map_err(|e| Error::Data(format!("could not start the learning thread: {e}")))?;
        self.job = Some(job);
        Ok(())
    }
}

/// Updates the head at `head_path` from `opts`' clips, writes it (keeping the previous
/// version), then moves the clips to `learned`.
fn update_in_place(
    backbone: &Backbone,
    head_path: &Path,
    opts: &TrainOptions,
    learned: &Path,
) -> Result<Outcome> {
    let (old, replay) = train::load_for_update(backbone, head_path)?;
    let mut notes = Vec::new();
    let clips: Vec<PathBuf> = opts
        .positives
        .iter()
        .chain(&opts.negatives)
        .cloned()
        .collect();
    let report = match train::update(backbone, &old, &replay, opts, &crate::progress::Silent) {
        Ok(r) => r,
        Err(e) => {
            // Clips no update can use would be retried forever: set them aside.
            retire(&clips, learned, &mut notes);
            return Err(e);
        }
    };
    report.commit(head_path, &old)?;
    for (p, why) in &report.skipped {
        notes.push(format!("learning: skipped {}: {why}", p.display()));
    }
    // The cache does not print: a failed write reaches the user through the listener.
    if let Some(e) = opts.cache.write_problem() {
        notes.push(format!("learning: warning: cannot cache embeddings: {e}"));
    }
    retire(&clips, learned, &mut notes);
    let message = format!(
        "learning: head updated from {} false alarm(s) and {} missed word(s) in {:.2} s; {}; now listening with update {} ({})",
        report.new_negatives,
        report.new_positives,
        report.seconds,
        report.threshold_change(old.info.threshold),
        report.head.info.training.updates,
        head_path.display()
    );
    Ok(Outcome {
        head: report.head,
        message,
        notes,
    })
}

fn retire(clips: &[PathBuf], learned: &Path, notes: &mut Vec<String>) {
    for c in clips {
        let Some(name) = c.file_name() else { continue };
        if let Err(e) = std::fs::rename(c, learned.join(name)) {
            notes.push(format!(
                "learning: could not move {} to {}: {e}",
                c.display(),
                learned.display()
            ));
        }
    }
}

/// The entries of `dir`, sorted by name.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// The learner is the session's sink for `--learn`: it reads the stream's history around its
/// head's detections and for missed wake words, and hands over updated heads (as head 0, the
/// head it learns for).
impl DetectionSink for Learner {
    fn history_seconds(&self) -> f64 {
        MISSED_SECONDS.max(SAVE_BEFORE + SAVE_AFTER) + 0.5
    }

    /// Takes the next chunk of the stream the pipeline consumed; saves the audio of the last
    /// detection once it is complete.
    fn audio(&mut self, history: &AudioHistory) -> Result<()> {
        let due = self.recent.as_ref().is_some_and(|r| {
            r.clip.is_none() && r.detection.time + SAVE_AFTER <= history.seconds()
        });
        if due {
            self.save_recent(history)?;
        }
        Ok(())
    }

    /// Takes a detection; only the learning head's own count.
    fn detection(&mut self, d: &Detection, history: &AudioHistory) -> Result<()> {
        if d.word != self.word {
            return Ok(());
        }
        // A detection whose audio is not written yet is written now, with what there is.
        if self.recent.as_ref().is_some_and(|r| r.clip.is_none()) {
            self.save_recent(history)?;
        }
        self.recent = Some(Recent {
            detection: d.clone(),
            clip: None,
            marked: false,
        });
        Ok(())
    }

    fn next_head(&mut self, history: &AudioHistory) -> Result<Option<(usize, Head)>> {
        Ok(self.poll(history)?.map(|h| (0, h)))
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn finish(&mut self, history: &AudioHistory) -> Result<()> {
        self.stop(history);
        Ok(())
    }
}
