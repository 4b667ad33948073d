//! The crate's error type: every failure names the file (when there is one) and the problem.

use std::path::{Path, PathBuf};

/// Result alias used throughout hark.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in hark, each variant worded for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// An audio file could not be used; `problem` says why in plain words.
    #[error("{}: {problem}", path.display())]
    Audio {
        /// The audio file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A backbone model file is missing, corrupt, or not the model hark was built for.
    #[error("backbone {}: {problem}", path.display())]
    Backbone {
        /// Where the model came from (`<built-in>` for the embedded copy).
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A head file is missing, corrupt, from a newer hark, or made for another backbone.
    #[error("head {}: {problem}", path.display())]
    Head {
        /// The head file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Training data cannot make a head: `problem` says what is missing and where.
    #[error("{0}")]
    Data(String),
    /// An output file could not be written in the requested format.
    #[error("{}: {problem}", path.display())]
    Output {
        /// The file that was to be written.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The audio device could not be found, opened or read.
    #[error("{0}")]
    Device(String),
    /// The caller asked for something that cannot be done (bad parameters, wrong shapes).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// An I/O error tagged with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An audio error tagged with the path it concerns.
    pub fn audio(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Audio {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
}
