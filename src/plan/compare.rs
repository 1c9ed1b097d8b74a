//! Whether two plans would make the same writes: the plan approved (shown
//! and confirmed, or saved) against the plan made again under the apply
//! lock. `reason` and notes are for people and are not compared.

use std::collections::BTreeMap;

use super::{Action, Change, Plan};
use crate::addr::Addr;

/// An action in a message: "no change" reads better than "unchanged" in
/// "planned: create; now: no change".
fn word(a: Action) -> &'static str {
    match a {
        Action::NoOp => "no change",
        other => other.label(),
    }
}

/// Whether two changes to the same address write the same. Vault changes
/// compare what they write and what they expect to find; cluster changes
/// (whose live side is a server-side dry run) compare their action.
fn same(a: &Change, b: &Change) -> bool {
    if a.action != b.action || a.kind != b.kind {
        return false;
    }
    if !a.addr.is_vault() {
        return true;
    }
    fn ca(c: &Change) -> Option<(&crate::state::DesiredCa, &Option<String>, &Option<String>)> {
        c.ca.as_ref()
            .map(|x| (&x.desired, &x.existing_id, &x.pending_key))
    }
    a.before == b.before && a.after == b.after && a.sensitive == b.sensitive && ca(a) == ca(b)
}

/// The first pending change (in `approved`'s order, then `now`'s) that is
/// not the same in both plans, with how it differs; `None` when applying
/// `now` writes exactly what `approved` showed.
pub fn first_difference(approved: &Plan, now: &Plan) -> Option<(Addr, String)> {
    let was: BTreeMap<&Addr, &Change> = approved.pending().map(|c| (&c.addr, c)).collect();
    let is: BTreeMap<&Addr, &Change> = now.pending().map(|c| (&c.addr, c)).collect();
    for c in approved.pending() {
        match is.get(&c.addr) {
            None => {
                return Some((
                    c.addr.clone(),
                    format!("planned: {}; now: no change", word(c.action)),
                ));
            }
            Some(n) if !same(c, n) => {
                let why = if c.action == n.action {
                    format!(
                        "the planned {} would now write something else",
                        word(c.action)
                    )
                } else {
                    format!("planned: {}; now: {}", word(c.action), word(n.action))
                };
                return Some((c.addr.clone(), why));
            }
            Some(_) => {}
        }
    }
    now.pending().find(|c| !was.contains_key(&c.addr)).map(|c| {
        (
            c.addr.clone(),
            format!("not planned; now: {}", word(c.action)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceKind;
    use serde_json::json;

    fn change(path: &str, action: Action, after: i64) -> Change {
        Change {
            addr: Addr::parse_vault(path).unwrap(),
            kind: ResourceKind::Role,
            action,
            before: None,
            after: Some([("ttl".to_string(), json!(after))].into_iter().collect()),
            sensitive: vec![],
            reason: Some(format!("reason {after}")),
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        }
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan {
            changes,
            ..Plan::default()
        }
    }

    #[test]
    fn same_writes_are_the_same_plan_whatever_the_reasons() {
        let a = plan(vec![change("p/roles/a", Action::Create, 60)]);
        let mut b = a.clone();
        b.changes[0].reason = Some("other words".into());
        b.changes.push(change("p/roles/b", Action::NoOp, 1));
        assert_eq!(first_difference(&a, &b), None);
    }

    #[test]
    fn each_kind_of_difference_is_named() {
        let a = plan(vec![change("p/roles/a", Action::Create, 60)]);
        let gone = plan(vec![change("p/roles/a", Action::NoOp, 60)]);
        assert_eq!(
            first_difference(&a, &gone),
            Some((
                Addr::parse_vault("p/roles/a").unwrap(),
                "planned: create; now: no change".into()
            ))
        );
        let other = plan(vec![change("p/roles/a", Action::Create, 61)]);
        assert!(
            first_difference(&a, &other)
                .unwrap()
                .1
                .contains("something else")
        );
        let update = plan(vec![change("p/roles/a", Action::Update, 60)]);
        assert_eq!(
            first_difference(&a, &update).unwrap().1,
            "planned: create; now: update"
        );
        let more = plan(vec![
            change("p/roles/a", Action::Create, 60),
            change("p/roles/b", Action::Delete, 0),
        ]);
        assert_eq!(
            first_difference(&a, &more),
            Some((
                Addr::parse_vault("p/roles/b").unwrap(),
                "not planned; now: delete".into()
            ))
        );
    }
}
