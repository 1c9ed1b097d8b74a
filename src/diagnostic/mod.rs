//! A problem in the user's files: where it is, what is wrong, how to fix it.
//!
//! Loading and validation collect every [`Diagnostic`] they find rather than
//! stopping at the first, so one run shows the user everything to fix.
//! [`suggest`] finds the "did you mean" for a misspelt name; loading and
//! validation both use it, so it lives here rather than in either.

pub mod suggest;

use std::fmt;

use serde::Serialize;

use crate::model::Location;

/// One problem with a position and a hint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where (file:line:column).
    pub location: Location,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            location,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.location, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// A non-empty list of diagnostics, as one error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn render(d: &[Diagnostic]) -> String {
    let mut out = d
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    out.push_str(&format!(
        "\n{} error{} found; nothing was applied",
        d.len(),
        if d.len() == 1 { "" } else { "s" }
    ));
    out
}
