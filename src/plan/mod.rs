//! The plan: a pure function of (desired, observed), with Terraform's shape.
//!
//! [`plan`] does no I/O. Apply reads the [`Plan`], never the YAML; `reason`
//! is for people, never for decisions.

mod compare;
mod diff;
pub mod findings;
pub mod json;
pub mod markdown;
pub mod render;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::addr::Addr;
use crate::state::{DesiredCa, Fields, ResourceKind};

pub use compare::Approved;
pub(crate) use diff::children_wait;
pub use diff::{
    KEPT_PRUNE_OFF, KEPT_UNRECORDED, OwnershipOptions, Streamed, ownership, plan, plan_streamed,
    same_value,
};

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Already as declared.
    NoOp,
    /// Does not exist yet.
    Create,
    /// Exists with other parameters; written in place.
    Update,
    /// A CA whose identity changed: a new issuer is made beside the old one,
    /// which stays until nothing depends on it. Never an in-place edit.
    Replace,
    /// Exists but is no longer declared (prune).
    Delete,
}

impl Action {
    /// Whether applying it writes to the target.
    pub fn is_change(self) -> bool {
        !matches!(self, Action::NoOp)
    }

    /// Its name in plans, summaries and metrics: `unchanged`, `create`,
    /// `update`, `replace`, `delete`.
    pub fn label(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// What is happening while it is applied (`creating`); a replace is
    /// always a CA's, and says so.
    pub fn progressive(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "creating",
            Action::Update => "updating",
            Action::Replace => "replacing (new issuer)",
            Action::Delete => "deleting",
        }
    }

    /// What happened once it is applied (`created`).
    pub fn past(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "created",
            Action::Update => "updated",
            Action::Replace => "replaced (new issuer; the old one stays)",
            Action::Delete => "deleted",
        }
    }
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// What it is about.
    pub addr: Addr,
    /// The resource kind (selects the provider's calls).
    pub kind: ResourceKind,
    /// What happens.
    pub action: Action,
    /// The managed fields as they are (`null`: does not exist, or an
    /// unchanged object compared field by field, whose live fields are its
    /// `after` and are not kept twice: read them with [`Change::live`]).
    pub before: Option<Fields>,
    /// The managed fields as they will be (`null`: deleted).
    pub after: Option<Fields>,
    /// Keys of `after` whose values are secret: shown as `(sensitive)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an issuer: how to make the CA and what it replaces (boxed: a
    /// CA is rare, and a plan holds one change per object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<Box<CaChange>>,
    /// Addresses that must be applied first.
    #[serde(default, skip_serializing_if = "<[Addr]>::is_empty")]
    pub depends_on: crate::state::Addrs,
    /// For a cluster object a plan creates or updates: the whole manifest
    /// to server-side apply (an unchanged object's is not kept; never
    /// rendered: a Secret's values live here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Box<serde_json::Value>>,
}

impl Change {
    /// The managed fields as they are: `before`, or for an unchanged object
    /// that does not keep them, `after` (the same values). Only a create has
    /// no live side (a plan file edited to make an unchanged object an
    /// update still reads as the same live state: the edit is what differs).
    pub fn live(&self) -> Option<&Fields> {
        match (&self.before, self.action) {
            (None, Action::Create) => None,
            (None, _) => self.after.as_ref(),
            (before, _) => before.as_ref(),
        }
    }

    /// Whether the value of `key` is secret (shown as `(sensitive)`).
    pub fn is_sensitive(&self, key: &str) -> bool {
        self.sensitive.iter().any(|s| s == key)
    }

    /// Makes an unchanged object a change of `action` (`why` added to its
    /// reason), keeping its live fields as `before`.
    pub fn become_change(&mut self, action: Action) {
        if self.action == Action::NoOp && self.before.is_none() {
            self.before = self.after.clone();
        }
        self.action = action;
    }
}

/// The CA part of an issuer change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaChange {
    /// The CA to make (Create / Replace) or to adopt (Update).
    pub desired: DesiredCa,
    /// The live issuer this change acts on: adopted (Update) or superseded
    /// (Replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// Text to show the user with the plan (e.g. a CSR to sign by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The key an interrupted apply generated for this CA (its name,
    /// `certplane-pending-...`): a Create or Replace resumes
    /// with it instead of generating another; an Update finishes the issuer
    /// already imported with it (names it, makes it the default, clears the
    /// key's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key: Option<String>,
    /// The stage of a rotation this change is (README, "Rotating a CA").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// A stage of a CA rotation, as the plan decided it from the live issuers
/// (nothing else records where a rotation is: each plan finds it again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum Rotation {
    /// Stage 1: a new issuer is made beside `old` (its key keeps certplane's
    /// pending name, which marks it as the rotation's); `old` stays the
    /// default.
    Make {
        /// The issuer being superseded.
        old: String,
    },
    /// Between stage 1 and 2 (the change is unchanged): the new issuer is
    /// published beside `old` until `until` (its notBefore plus the
    /// declared overlap, Unix seconds).
    Overlap {
        /// The issuer being superseded.
        old: String,
        /// When stage 2 may run.
        until: i64,
    },
    /// Between stage 1 and 2 (the change is unchanged): the overlap is over,
    /// but a trust bundle the mount publishes (`trustBundle`) does not hold
    /// the new issuer yet; stage 2 waits until it does (the apply that
    /// shows this writes it).
    Published {
        /// The issuer being superseded.
        old: String,
        /// The bundle objects that do not hold the new issuer yet.
        waiting: Vec<String>,
    },
    /// Stage 1 of a child whose parent mount rotates (`followParent:
    /// crossSign`): the existing key of `old` is signed by the parent's new
    /// issuer too (`parent`; `None`: the one the parent's rotation makes
    /// earlier in the same apply, found by its key's pending name) and
    /// imported as a twin issuer beside `old`; then `manual_chain` on both
    /// twins. A twin already there (an interrupted apply) only gets its
    /// chains.
    CrossSign {
        /// The child's current issuer.
        old: String,
        /// The parent's new issuer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    /// Stage 2: the new issuer (the change's `existing_id`) becomes the
    /// default and takes the declared name; `old` gets its superseded name
    /// and, with `retire`, `usage: read-only,crl-signing`.
    Switch {
        /// The superseded issuer.
        old: String,
        /// Retire it now (no issuer of a child mount still chains to it).
        retire: bool,
    },
    /// Stage 2, later: a superseded issuer is retired once no child chains
    /// to it any more.
    Retire {
        /// The issuer.
        id: String,
    },
    /// Stage 1 waits: a child CA whose rotation waits for its parent mount
    /// to make its new issuer the default.
    Parent {
        /// The parent mount.
        mount: String,
    },
    /// Stage 2 waits: a superseded issuer is retired once no child chains
    /// to it.
    Children {
        /// The issuer.
        id: String,
    },
    /// Stage 3 waits: a retired issuer is deleted at `after`.
    Expiring {
        /// The issuer.
        id: String,
        /// When it may be deleted (Unix seconds).
        after: i64,
    },
    /// Stage 3: a retired issuer is deleted after its notAfter plus the
    /// safety buffer (`not_after + buffer`, Unix seconds: re-checked at
    /// apply).
    Delete {
        /// The issuer.
        id: String,
        /// When it may be deleted.
        after: i64,
    },
}

impl Rotation {
    /// The stage number (1 make, 2 switch and retire, 3 delete) of the three.
    pub fn stage(&self) -> u8 {
        match self {
            Rotation::Make { .. }
            | Rotation::Overlap { .. }
            | Rotation::Published { .. }
            | Rotation::Parent { .. }
            | Rotation::CrossSign { .. } => 1,
            Rotation::Switch { .. } | Rotation::Retire { .. } | Rotation::Children { .. } => 2,
            Rotation::Delete { .. } | Rotation::Expiring { .. } => 3,
        }
    }

    /// Whether this stage waits (its change is unchanged until a time or
    /// another CA allows it).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Rotation::Overlap { .. }
                | Rotation::Published { .. }
                | Rotation::Parent { .. }
                | Rotation::Children { .. }
                | Rotation::Expiring { .. }
        )
    }
}

/// Something the planner could not decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanError {
    /// About what.
    pub addr: Addr,
    /// Why, with a hint.
    pub message: String,
}

/// Something a user must know that is not a change: an object certplane
/// made that is no longer in the repository and stays (prune is off, or it
/// cannot be told to be this repository's). Never counts as a change for
/// the exit code, but keeps "the live state matches" from being claimed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanNote {
    /// About what.
    pub addr: Addr,
    /// Why it stays, and what to do about it.
    pub message: String,
    /// Whether the object still belongs to this repository (a cluster
    /// object stays in its inventory, so that turning prune on deletes it).
    #[serde(default)]
    pub owned: bool,
}

/// Something in the live state that will cause an outage unless fixed,
/// found at plan time (a CA with less life left than the leaves asked of
/// it, an expiring CA that cuts leaves short). Names the object and the
/// fix. Not a change and not an error: the plan (which may hold the fix)
/// can still be applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanWarning {
    /// About what.
    pub addr: Addr,
    /// What will go wrong, and the fix.
    pub message: String,
}

/// An object changed outside certplane since certplane applied it
/// (Terraform's "objects changed outside"): its change in the plan repairs
/// it. certplane says so only where it knows what it applied (see the
/// README, "Drift"): a cluster field its field manager applied that another
/// field manager holds now, and, in `run` and `watch`, any change found for
/// the very input certplane already applied in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Drift {
    /// The object.
    pub addr: Addr,
    /// The fields that moved, when known (dotted paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Who moved them (field managers), when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_by: Vec<String>,
    /// How certplane knows, for people.
    pub reason: String,
}

/// The whole plan, in apply order (dependencies first).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Every declared resource, including no-ops.
    pub changes: Vec<Change>,
    /// Objects changed outside certplane since it applied them (their
    /// changes are in `changes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    /// Problems that make the plan unappliable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errored: Vec<PlanError>,
    /// Objects that left the repository and stay, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<PlanNote>,
    /// Live findings that foretell an outage ([`findings`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<PlanWarning>,
}

impl Plan {
    /// Whether applying it would write anything.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    /// The changes that write, in order.
    pub fn pending(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action.is_change())
    }

    /// Count of changes by action.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for c in &self.changes {
            *m.entry(c.action.label()).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_label_and_its_verbs() {
        let all = [
            Action::NoOp,
            Action::Create,
            Action::Update,
            Action::Replace,
            Action::Delete,
        ];
        let labels: Vec<&str> = all.iter().map(|a| a.label()).collect();
        assert_eq!(
            labels,
            ["unchanged", "create", "update", "replace", "delete"]
        );
        assert_eq!(Action::Create.progressive(), "creating");
        assert_eq!(Action::Delete.past(), "deleted");
        assert!(Action::Replace.past().contains("the old one stays"));
        let plan = Plan {
            changes: all
                .iter()
                .map(|&action| Change {
                    addr: Addr::parse_vault("pki/roles/a").unwrap(),
                    kind: ResourceKind::Role,
                    action,
                    before: None,
                    after: None,
                    sensitive: vec![],
                    reason: None,
                    ca: None,
                    depends_on: Default::default(),
                    manifest: None,
                })
                .collect(),
            ..Plan::default()
        };
        assert!(plan.summary().keys().all(|k| labels.contains(k)));
        assert_eq!(plan.summary().len(), 5);
    }
}
