//! What `plan -o json` and `plan -o markdown` write to stdout when there is
//! no plan (an invalid repository, an unreachable Vault): a machine-readable
//! error document, or an error comment for the pull request. A CI job that
//! posts stdout then shows why, instead of an empty comment.

use std::fmt::Write as _;

use serde_json::Value;

use crate::plan::json::{ErrorEntry, ErrorReport};

use crate::model::Location;

/// One reason there is no plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, for a problem in the repository's files.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// The error document: the plan report's envelope (`format_version`,
/// `has_changes`, `changes`, `errors`) with `valid: false` and one entry per
/// problem (`file`, `line`, `column` when it is about a file; `message`;
/// `hint`): [`ErrorReport`], in `schemas/plan-output.json`.
pub fn json(problems: &[Problem]) -> Value {
    let errors = problems
        .iter()
        .map(|p| ErrorEntry {
            file: p.location.as_ref().map(|l| l.file.display().to_string()),
            line: p.location.as_ref().map(|l| l.line),
            column: p.location.as_ref().map(|l| l.column),
            message: p.message.clone(),
            hint: p.hint.clone(),
        })
        .collect();
    crate::plan::json::to_value(&ErrorReport::new(errors))
}

/// Escapes what would break a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The error comment: a heading, a count, then a table of where, what and
/// how to fix.
pub fn markdown(problems: &[Problem]) -> String {
    let mut out = String::from("### certplane plan failed\n\n");
    let _ = writeln!(
        out,
        "**{} error{}; no plan was made and nothing can be applied until {} fixed.**\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        if problems.len() == 1 {
            "it is"
        } else {
            "they are"
        }
    );
    out.push_str("| Where | Error | Hint |\n|---|---|---|\n");
    for p in problems {
        let at = p
            .location
            .as_ref()
            .map(|l| format!("`{}`", cell(&l.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {at} | {} | {} |",
            cell(&p.message),
            cell(p.hint.as_deref().unwrap_or(""))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems() -> Vec<Problem> {
        vec![
            Problem {
                location: Some(Location {
                    file: std::path::Path::new("repo/roles.yaml").into(),
                    line: 5,
                    column: 3,
                }),
                message: "role web: mount pki_itn is not a declared PkiMount".into(),
                hint: Some("did you mean pki_int?".into()),
            },
            Problem {
                location: None,
                message: "cannot reach vault at http://127.0.0.1:1: refused | closed".into(),
                hint: None,
            },
        ]
    }

    #[test]
    fn the_json_document_has_file_line_message_and_hint() {
        let v = json(&problems());
        assert_eq!(v["valid"], false);
        assert_eq!(v["errors"][0]["file"], "repo/roles.yaml");
        assert_eq!(v["errors"][0]["line"], 5);
        assert_eq!(v["errors"][0]["column"], 3);
        assert_eq!(v["errors"][0]["hint"], "did you mean pki_int?");
        assert!(v["errors"][1].get("file").is_none());
    }

    #[test]
    fn the_comment_is_a_table_with_escaped_cells() {
        let m = markdown(&problems());
        assert!(m.starts_with("### certplane plan failed\n"), "{m}");
        assert!(m.contains("**2 errors;"), "{m}");
        assert!(
            m.contains("| `repo/roles.yaml:5:3` | role web: mount pki_itn is not a declared PkiMount | did you mean pki_int? |"),
            "{m}"
        );
        assert!(m.contains("refused \\| closed"), "{m}");
    }
}
