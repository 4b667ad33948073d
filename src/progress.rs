//! How long work reports how far it has got. The library calls a [`Progress`]; the program
//! decides what to show (the `hark` command draws progress bars on a terminal).

/// Receives the stages of long work (training, evaluation) and how far each has got. Every
/// method has a default that does nothing, so [`Silent`] is all a caller that shows nothing
/// needs. Calls may come from several threads at once.
pub trait Progress: Sync {
    /// A stage begins: `what` it does and how many steps it has (0 while that is not known).
    fn begin(&self, what: &str, total: usize) {
        let _ = (what, total);
    }
    /// `done` of `total` steps of the current stage are finished.
    fn at(&self, done: usize, total: usize) {
        let _ = (done, total);
    }
    /// A short note on the current stage (for example the validation loss of an epoch).
    fn note(&self, text: &str) {
        let _ = text;
    }
    /// The current stage is over.
    fn end(&self) {}
}

/// Shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
