//! Whether two plans would make the same writes: the plan approved (shown
//! and confirmed, or saved) against the plan made again under the apply
//! lock. `reason` and notes are for people and are not compared.

use std::collections::BTreeMap;

use super::{Action, Change, Plan};
use crate::addr::Addr;
use crate::state::ResourceKind;

/// An action in a message: "no change" reads better than "unchanged" in
/// "planned: create; now: no change".
fn word(a: Action) -> &'static str {
    match a {
        Action::NoOp => "no change",
        other => other.label(),
    }
}

/// What one approved change writes: enough to tell whether a change made
/// later writes the same, without keeping the change.
#[derive(Clone, Debug)]
struct Approved1 {
    addr: Addr,
    kind: ResourceKind,
    action: Action,
    /// Vault changes: a SHA-256 of what it writes and what it expects to
    /// find (`before`, `after`, `sensitive`, and a CA's desired state,
    /// adopted issuer and pending key); `None` for cluster changes (whose
    /// live side is a server-side dry run: only their action is compared)
    /// and for a change that could not be hashed (never the same as any).
    writes: Option<[u8; 32]>,
}

/// An approved plan reduced to what [`Approved::first_difference`] compares:
/// a few dozen bytes per pending change instead of the plan, so that an
/// apply does not hold the plan it showed while it plans again under the
/// apply lock.
#[derive(Clone, Debug, Default)]
pub struct Approved {
    changes: Vec<Approved1>,
}

/// `serde_json` into a SHA-256, with no buffer in between.
struct Sha256(ring::digest::Context);

impl std::io::Write for Sha256 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The hash of what a Vault change writes and expects to find.
fn writes(c: &Change) -> Option<[u8; 32]> {
    let ca =
        c.ca.as_ref()
            .map(|x| (&x.desired, &x.existing_id, &x.pending_key));
    let mut h = Sha256(ring::digest::Context::new(&ring::digest::SHA256));
    serde_json::to_writer(&mut h, &(&c.before, &c.after, &c.sensitive, ca)).ok()?;
    h.0.finish().as_ref().try_into().ok()
}

impl Approved1 {
    fn of(c: &Change) -> Approved1 {
        Approved1 {
            addr: c.addr.clone(),
            kind: c.kind,
            action: c.action,
            writes: if c.addr.is_vault() { writes(c) } else { None },
        }
    }

    /// Whether `now`, a change to the same address, writes the same.
    fn same(&self, now: &Change) -> bool {
        if self.action != now.action || self.kind != now.kind {
            return false;
        }
        if !now.addr.is_vault() {
            return true;
        }
        self.writes.is_some() && self.writes == writes(now)
    }
}

impl Approved {
    /// The pending changes of `plan`, reduced.
    pub fn of(plan: &Plan) -> Approved {
        // Sized exactly: grown by doubling, the list of 10,000 changes
        // would hold room for 16,384 through the apply.
        let mut changes = Vec::with_capacity(plan.pending().count());
        changes.extend(plan.pending().map(Approved1::of));
        Approved { changes }
    }

    /// How many changes were approved.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether nothing was approved.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The first pending change (in the approved order, then `now`'s) that
    /// is not the same in both plans, with how it differs; `None` when
    /// applying `now` writes exactly what was approved.
    pub fn first_difference(&self, now: &Plan) -> Option<(Addr, String)> {
        let was: BTreeMap<&Addr, &Approved1> = self.changes.iter().map(|c| (&c.addr, c)).collect();
        let is: BTreeMap<&Addr, &Change> = now.pending().map(|c| (&c.addr, c)).collect();
        for c in &self.changes {
            match is.get(&c.addr) {
                None => {
                    return Some((
                        c.addr.clone(),
                        format!("planned: {}; now: no change", word(c.action)),
                    ));
                }
                Some(n) if !c.same(n) => {
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
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn first_difference(approved: &Plan, now: &Plan) -> Option<(Addr, String)> {
        Approved::of(approved).first_difference(now)
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

    #[test]
    fn vault_changes_compare_what_they_write_and_cluster_changes_their_action() {
        let a = plan(vec![change("p/roles/a", Action::Update, 60)]);
        let mut before = a.clone();
        before.changes[0].before = Some([("ttl".to_string(), json!(30))].into_iter().collect());
        assert!(
            first_difference(&a, &before).is_some(),
            "what it expects to find"
        );
        let mut secret = a.clone();
        secret.changes[0].sensitive = vec!["ttl".into()];
        assert!(
            first_difference(&a, &secret).is_some(),
            "which keys are secret"
        );
        let mut kind = a.clone();
        kind.changes[0].kind = ResourceKind::Policy;
        assert!(first_difference(&a, &kind).is_some(), "the kind");

        let kube = |after: i64| {
            let mut c = change("p/roles/x", Action::Update, after);
            c.addr = "cert-manager.io/Issuer/ns/vault".parse().unwrap();
            plan(vec![c])
        };
        assert_eq!(first_difference(&kube(1), &kube(2)), None);
    }

    #[test]
    fn the_reduced_plan_keeps_only_the_pending_changes() {
        let a = plan(vec![
            change("p/roles/a", Action::Create, 60),
            change("p/roles/b", Action::NoOp, 1),
        ]);
        let approved = Approved::of(&a);
        assert_eq!(approved.len(), 1);
        // Held through the apply: no room to grow into.
        assert_eq!(approved.changes.capacity(), 1);
        assert!(Approved::of(&plan(vec![])).is_empty());
    }
}
