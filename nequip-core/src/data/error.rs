//! Errors of the data layer. Every message names the file, the frame and the field (or key)
//! concerned, so a user can find the bad input. nequip raises `ValueError`/`KeyError`/`assert`s
//! from many places; here they are one enum per level.

use super::fields::FieldError;

/// A problem inside one frame; [`DataError::Frame`] adds the file and frame index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// A field has the wrong shape, dtype or an inconsistent size.
    #[error("field `{field}`: {msg}")]
    Field { field: String, msg: String },
    /// NaN or infinity in positions, cell or labels.
    #[error("field `{field}`: non-finite value ({value}) at index {index}")]
    NonFinite {
        field: String,
        value: f64,
        index: usize,
    },
    /// A cell that spans no volume along its periodic directions.
    #[error("field `cell`: zero-volume cell ({detail}) with pbc {pbc:?}")]
    DegenerateCell { detail: String, pbc: [bool; 3] },
    /// An atomic number (or symbol) outside the type mapping.
    #[error("field `atomic_numbers`: atom {atom}: unknown species {species} (the type mapping knows {known})")]
    UnknownSpecies {
        atom: usize,
        species: String,
        known: String,
    },
    /// No edge left after removing self edges (nequip's `NEQUIP_ERROR_ON_NO_EDGES`).
    #[error("field `edge_index`: every single atom has no neighbors within the cutoff r_max={r_max} (after eliminating self edges, no edges remain in this system); set `error_on_no_edges: false` (or NEQUIP_ERROR_ON_NO_EDGES=false) to allow such frames")]
    NoEdges { r_max: f64 },
    /// `r_max <= 0` or not finite.
    #[error("field `r_max`: must be a positive finite number, got {0}")]
    BadRMax(f64),
}

/// Any error of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A problem in one frame.
    #[error("{file}: frame {frame}: {source}")]
    Frame {
        file: String,
        frame: usize,
        #[source]
        source: FrameError,
    },
    /// A required key (array, column, info entry) is absent.
    #[error("{file}: missing key `{key}` (found: {available})")]
    MissingKey {
        file: String,
        key: String,
        available: String,
    },
    /// A key's array has the wrong shape.
    #[error("{file}: key `{key}` has shape {shape:?}, expected {expected}")]
    Shape {
        file: String,
        key: String,
        shape: Vec<usize>,
        expected: String,
    },
    /// A key's array has an unusable dtype.
    #[error("{file}: key `{key}` has dtype {found}, expected {expected}")]
    DType {
        file: String,
        key: String,
        found: String,
        expected: String,
    },
    /// Per-frame arrays with different frame counts.
    #[error("{file}: ragged frames: key `{key}` has {found} frames but key `{reference}` has {expected}")]
    Ragged {
        file: String,
        key: String,
        found: usize,
        reference: String,
        expected: usize,
    },
    /// An unparsable line of a text file.
    #[error("{file}: line {line}: frame {frame}: {msg}")]
    Parse {
        file: String,
        line: usize,
        frame: usize,
        msg: String,
    },
    /// A malformed container (bad zip / npy header / cache file).
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    /// An invalid option value (`r_max`, `n_train`, `chemical_symbols`, ...).
    #[error("invalid option `{option}`: {msg}")]
    Option { option: String, msg: String },
    /// A field registration conflict.
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl DataError {
    /// Shorthand for [`DataError::Option`].
    pub fn option(option: &str, msg: impl Into<String>) -> Self {
        DataError::Option {
            option: option.to_string(),
            msg: msg.into(),
        }
    }
    /// Shorthand for [`DataError::Format`].
    pub fn format(file: &str, msg: impl Into<String>) -> Self {
        DataError::Format {
            file: file.to_string(),
            msg: msg.into(),
        }
    }
}

/// Adds file and frame to a [`FrameError`].
pub(crate) trait InFrame<T> {
    fn in_frame(self, file: &str, frame: usize) -> Result<T, DataError>;
}

impl<T> InFrame<T> for Result<T, FrameError> {
    fn in_frame(self, file: &str, frame: usize) -> Result<T, DataError> {
        self.map_err(|source| DataError::Frame {
            file: file.to_string(),
            frame,
            source,
        })
    }
}
