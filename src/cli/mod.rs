//! The command line: one function per command over the one pipeline.

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    0
}
