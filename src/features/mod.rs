//! Stage 1 of the data path: 16 kHz samples → frames of features. [`mel`] is the backbone's
//! front end (a rustfft twin of `melspectrogram.onnx`, and MFCC); [`cepstra`] are the wide-band
//! cepstra the template check matches.

pub mod cepstra;
pub mod mel;
