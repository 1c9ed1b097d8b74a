//! Exit codes as a type: Terraform's `-detailed-exitcode`, which CI users
//! already know.

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success; nothing to change (0).
    Clean,
    /// Error: invalid input, unreachable target, failed apply (1).
    Error,
    /// Success; `plan` found changes (2).
    Changes,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
        }
    }
}
