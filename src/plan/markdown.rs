//! Rendering a plan as Markdown for a pull-request comment: a table of
//! changes by action, then the per-object diff in a collapsible
//! `<details>` block. Secrets are already `(sensitive)` in the plan.

use std::fmt::Write as _;

use super::render::{Style, human, privileged, summary_line};
use super::{Action, Plan};

/// Escapes the characters that would break a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The plan as a PR comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### certplane plan\n\n");
    for e in &plan.errored {
        let _ = writeln!(out, "> **error** `{}`: {}", e.addr, cell(&e.message));
    }
    if !plan.errored.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    for n in &plan.notes {
        let _ = writeln!(
            out,
            "> **kept** `{}`: {}",
            cell(&n.addr.to_string()),
            cell(&n.message)
        );
    }
    if !plan.notes.is_empty() {
        out.push('\n');
    }
    for w in &plan.warnings {
        let _ = writeln!(
            out,
            "> **warning** `{}`: {}",
            cell(&w.addr.to_string()),
            cell(&w.message)
        );
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    for d in &plan.drift {
        let _ = writeln!(
            out,
            "> **changed outside certplane** {}",
            cell(&super::render::drift_line(d))
        );
    }
    if !plan.drift.is_empty() {
        out.push('\n');
    }
    let pending: Vec<_> = plan.pending().collect();
    if pending.is_empty() {
        return out;
    }
    out.push_str("| Action | Object | Reason |\n|---|---|---|\n");
    for order in [
        Action::Create,
        Action::Update,
        Action::Replace,
        Action::Delete,
    ] {
        for c in pending.iter().filter(|c| c.action == order) {
            let mut reason = c.reason.clone().unwrap_or_default();
            if let Some(why) = privileged(c) {
                reason = format!("**(privileged)** {why}. {reason}")
                    .trim_end()
                    .to_string();
            }
            let _ = writeln!(
                out,
                "| {} | `{}` | {} |",
                c.action.label(),
                cell(&c.addr.to_string()),
                cell(&reason)
            );
        }
    }
    // The body of the human renderer, without colours; its summary line is
    // already above.
    let body = human(plan, Style { color: false });
    let body = body
        .trim_end()
        .strip_suffix(summary_line(plan).as_str())
        .unwrap_or(&body)
        .trim_end();
    let _ = write!(
        out,
        "\n<details><summary>Per-object diff</summary>\n\n```diff\n{}\n```\n\n</details>\n",
        body.replace("```", "'''")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::plan::Change;
    use crate::state::ResourceKind;
    use serde_json::json;

    fn change(path: &str, action: Action, after: serde_json::Value) -> Change {
        Change {
            addr: Addr::parse_vault(path).unwrap(),
            kind: ResourceKind::Role,
            action,
            before: None,
            after: Some(after.as_object().unwrap().clone().into_iter().collect()),
            sensitive: vec![],
            reason: Some("a | b".into()),
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        }
    }

    #[test]
    fn table_then_details_and_secrets_stay_masked() {
        let mut secret = change(
            "auth/k8s/config",
            Action::Create,
            json!({"token_reviewer_jwt": "(sensitive)", "kubernetes_host": "https://k"}),
        );
        secret.sensitive = vec!["token_reviewer_jwt".into()];
        let plan = Plan {
            notes: vec![],
            changes: vec![
                change("pki/roles/a", Action::Create, json!({"ttl": 60})),
                secret,
                change("pki/roles/b", Action::NoOp, json!({"ttl": 60})),
            ],
            ..Plan::default()
        };
        let md = markdown(&plan);
        assert!(
            md.contains("| create | `vault:pki/roles/a` | a \\| b |"),
            "{md}"
        );
        assert!(!md.contains("pki/roles/b`"), "no-ops are not listed: {md}");
        let details = md.find("<details>").expect("details block");
        assert!(md.find("| Action |").unwrap() < details);
        assert!(md[details..].contains("token_reviewer_jwt"), "{md}");
        assert!(md[details..].contains("(sensitive)"), "{md}");
        assert!(md.contains("Plan: 2 to create"), "{md}");
        assert!(md.trim_end().ends_with("</details>"), "{md}");
    }

    #[test]
    fn kept_objects_are_shown_without_claiming_a_match() {
        let plan = Plan {
            changes: vec![change("pki/roles/b", Action::NoOp, json!({"ttl": 60}))],
            errored: vec![],
            drift: vec![],
            notes: vec![crate::plan::PlanNote {
                addr: Addr::parse_vault("pki/roles/old").unwrap(),
                message: crate::plan::KEPT_PRUNE_OFF.into(),
                owned: true,
            }],
            warnings: vec![crate::plan::PlanWarning {
                addr: Addr::parse_vault("pki/issuer/root").unwrap(),
                message: "CA root of mount pki expired".into(),
            }],
        };
        let md = markdown(&plan);
        assert!(
            md.contains("> **warning** `vault:pki/issuer/root`: CA root of mount pki expired"),
            "{md}"
        );
        assert!(md.contains("1 warning (see above)."), "{md}");
        assert!(
            md.contains("> **kept** `vault:pki/roles/old`: no longer in the repository; kept because prune is off"),
            "{md}"
        );
        assert!(
            md.contains("1 object(s) no longer in the repository are kept"),
            "{md}"
        );
        assert!(!md.contains("The live state matches"), "{md}");
        assert!(!plan.has_changes(), "a note is not a change");
    }

    #[test]
    fn no_changes_has_no_table() {
        let plan = Plan::default();
        let md = markdown(&plan);
        assert!(md.contains("No changes"), "{md}");
        assert!(!md.contains("<details>"), "{md}");
    }
}
