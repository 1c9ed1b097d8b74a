//! Drift: what changed outside certplane since certplane applied it
//! (Terraform's "objects changed outside"). certplane has no state file, so
//! it says so only where it knows what it applied:
//!
//! * on the cluster, in every mode: a field certplane's field manager
//!   applied that another field manager holds now (the object's
//!   `managedFields`; see [`crate::cluster::diff::changed_outside`]);
//! * in `run` and `watch`, for every target: a change found for the very
//!   input (the repository's files, by [`super::hash`]) the same process
//!   applied in full, or found in sync, before ([`since_applied`]): the
//!   input did not move, so the live state did.
//!
//! Everything else a plan finds is a change, not drift: certplane cannot
//! tell an edit of the repository from an edit of the live state.

use std::collections::BTreeSet;

use crate::plan::{Action, Change, Drift, Plan};

/// Why a change of an input applied before is drift.
fn reason(action: Action) -> &'static str {
    match action {
        Action::Create => "gone since certplane applied this same input",
        Action::Delete => "appeared since certplane applied this same input",
        _ => "changed since certplane applied this same input",
    }
}

/// The fields a change writes differently from what is live (a secret
/// shows as `(sensitive)` on both sides when it is set).
fn moved_fields(c: &Change) -> Vec<String> {
    let (Some(before), Some(after)) = (&c.before, &c.after) else {
        return Vec::new();
    };
    let changed = after
        .iter()
        .filter(|(k, v)| before.get(k) != Some(*v))
        .map(|(k, _)| k);
    let removed = before.keys().filter(|k| !after.contains_key(k));
    changed
        .chain(removed)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Marks every pending change of `plan` as drift (the plan was made for an
/// input applied in full before), keeping what the providers already said
/// about an object.
pub fn since_applied(plan: &mut Plan) {
    let known: BTreeSet<_> = plan.drift.iter().map(|d| d.addr.clone()).collect();
    let found: Vec<Drift> = plan
        .pending()
        .filter(|c| !known.contains(&c.addr))
        .map(|c| Drift {
            addr: c.addr.clone(),
            fields: moved_fields(c),
            changed_by: Vec::new(),
            reason: reason(c.action).to_string(),
        })
        .collect();
    plan.drift.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::state::ResourceKind;
    use serde_json::{Value, json};

    fn change(action: Action, before: Option<Value>, after: Option<Value>) -> Change {
        let fields = |v: Value| v.as_object().unwrap().clone().into_iter().collect();
        Change {
            addr: Addr::parse_vault("pki/roles/web").unwrap(),
            kind: ResourceKind::Role,
            action,
            before: before.map(fields),
            after: after.map(fields),
            sensitive: vec![],
            reason: None,
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        }
    }

    #[test]
    fn every_pending_change_of_an_applied_input_is_drift_naming_its_fields() {
        let mut plan = Plan {
            changes: vec![
                change(
                    Action::Update,
                    Some(json!({"ttl": 3600, "max_ttl": 7200, "old": 1})),
                    Some(json!({"ttl": 86400, "max_ttl": 7200})),
                ),
                change(
                    Action::NoOp,
                    Some(json!({"ttl": 1})),
                    Some(json!({"ttl": 1})),
                ),
            ],
            ..Plan::default()
        };
        since_applied(&mut plan);
        assert_eq!(plan.drift.len(), 1, "{:?}", plan.drift);
        assert_eq!(plan.drift[0].fields, ["old", "ttl"]);
        assert_eq!(
            plan.drift[0].reason,
            "changed since certplane applied this same input"
        );
        // What a provider said already about an object stays as it said it.
        let said = plan.drift.clone();
        since_applied(&mut plan);
        assert_eq!(plan.drift, said);
    }

    #[test]
    fn a_deleted_object_is_gone_and_a_recreated_one_appeared() {
        let mut plan = Plan {
            changes: vec![
                change(Action::Create, None, Some(json!({"ttl": 1}))),
                change(Action::Delete, Some(json!({})), None),
            ],
            ..Plan::default()
        };
        since_applied(&mut plan);
        let reasons: Vec<&str> = plan.drift.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "gone since certplane applied this same input",
                "appeared since certplane applied this same input"
            ]
        );
    }

    #[test]
    fn drift_is_shown_in_every_output() {
        let mut plan = Plan {
            changes: vec![change(
                Action::Update,
                Some(json!({"ttl": 3600})),
                Some(json!({"ttl": 86400})),
            )],
            ..Plan::default()
        };
        plan.drift.push(Drift {
            addr: Addr::parse_vault("pki/roles/web").unwrap(),
            fields: vec!["ttl".into()],
            changed_by: vec!["kubectl-edit".into()],
            reason: "another field manager holds them now".into(),
        });
        let style = crate::plan::render::Style { color: false };
        let human = crate::plan::render::human(&plan, style);
        assert!(
            human.starts_with(
                "Objects changed outside certplane since it applied them (the plan repairs them):\n  \
                 ~ vault:pki/roles/web: ttl (changed by kubectl-edit); another field manager holds them now\n"
            ),
            "{human}"
        );
        assert!(
            human
                .trim_end()
                .ends_with("1 changed outside certplane (drift)."),
            "{human}"
        );
        let v = crate::plan::render::json(&plan);
        assert_eq!(
            v["drift"],
            json!([{"address": "vault:pki/roles/web", "fields": ["ttl"],
                    "changed_by": ["kubectl-edit"], "reason": "another field manager holds them now"}])
        );
        let md = crate::plan::markdown::markdown(&plan);
        assert!(
            md.contains(
                "> **changed outside certplane** vault:pki/roles/web: ttl (changed by kubectl-edit)"
            ),
            "{md}"
        );
        let none = crate::plan::render::json(&Plan::default());
        assert_eq!(none["drift"], json!([]));
    }
}
