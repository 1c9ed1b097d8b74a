//! Offline cross-checks of a loaded repository (FORMAT.md section 3).

pub mod suggest;
