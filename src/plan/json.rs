//! The plan report: what `plan -o json` writes to stdout, typed, with its
//! JSON Schema (`schemas/plan-output.json`).
//!
//! It is a view of a [`Plan`] for machines (a CI job reading `has_changes`,
//! a dashboard listing changes), not something certplane reads back: the
//! file `apply FILE` reads is the plan file (`plan --out`,
//! `schemas/plan-file.json`), a different format. When there is no plan (an
//! invalid repository, an unreachable Vault) `-o json` writes an
//! [`ErrorReport`] instead, with the same envelope.
//!
//! The report's version is [`REPORT_VERSION`], a string; it changes when a
//! field changes meaning or goes away (added fields do not change it).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::render::privileged;
use super::{Action, Plan, Rotation};
use crate::addr::Addr;
use crate::state::{Fields, ResourceKind};

/// The version of the plan report (`format_version`, a string).
pub const REPORT_VERSION: &str = "1";

/// The file name of the report's JSON Schema under `schemas/`.
pub const SCHEMA_FILE: &str = "plan-output.json";

/// `plan -o json` when a plan was made.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(
    title = "certplane plan report",
    description = "What `certplane plan -o json` writes to stdout when a plan was made. Not a plan file: `apply FILE` reads only what `plan --out FILE` writes."
)]
pub struct PlanReport {
    /// The report's version: always the string "1" for this format.
    #[schemars(extend("const" = REPORT_VERSION))]
    pub format_version: String,
    /// Whether applying the plan would write anything (`plan` exits 2 then).
    pub has_changes: bool,
    /// How many objects get each action: keys `unchanged`, `create`,
    /// `update`, `replace`, `delete` (only those that occur).
    pub summary: BTreeMap<String, usize>,
    /// Every declared object, in apply order, unchanged ones included.
    pub changes: Vec<ReportChange>,
    /// Problems that make the plan unappliable (`plan` exits 1).
    pub errors: Vec<ReportError>,
    /// Objects that left the repository and are kept (not changes).
    pub notes: Vec<ReportNote>,
    /// What the live Vault says will go wrong once applied (a CA that ends
    /// before what it must sign, ...): the plan is still appliable.
    pub warnings: Vec<ReportWarning>,
    /// Objects changed outside certplane since it applied them; their
    /// changes (which repair them) are in `changes`.
    pub drift: Vec<ReportDrift>,
}

/// One object of the plan and what happens to it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportChange {
    /// The object.
    pub address: Addr,
    /// The kind of resource (`mount`, `role`, `policy`, `issuer`, ...).
    pub kind: ResourceKind,
    /// What happens to it (`no_op`: nothing).
    pub action: Action,
    /// The managed fields as they are, by their Vault API name (`null`: the
    /// object does not exist). Secret values are `(sensitive)`.
    pub before: Option<Fields>,
    /// The managed fields as they will be (`null`: deleted). Secret values
    /// are `(sensitive)`.
    pub after: Option<Fields>,
    /// Why, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Present (and true) when the change writes a privileged policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Why the policy is privileged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged_reason: Option<String>,
    /// Keys of `after` whose values are secret (shown as `(sensitive)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// For a CA: the live issuer the change adopts or supersedes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_issuer_id: Option<String>,
    /// For a CA: text for the user (e.g. the CSR to sign by hand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For an intermediate: the key an interrupted apply generated, which
    /// this apply resumes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_key: Option<String>,
    /// For a CA rotation: the stage this change is (README, "Rotating a
    /// CA").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<ReportRotation>,
}

/// A stage of a CA rotation: its kind and details, and its number.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportRotation {
    /// The stage number of the three: 1 make, 2 switch and retire, 3
    /// delete.
    pub number: u8,
    /// The stage (`stage`: `make`, `overlap`, `switch`, ...) and its
    /// details.
    #[serde(flatten)]
    pub stage: Rotation,
}

/// A problem that makes the plan unappliable.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportError {
    /// About what.
    pub address: Addr,
    /// What is wrong, with a hint.
    pub message: String,
}

/// An object that left the repository and stays.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportNote {
    /// The object.
    pub address: Addr,
    /// Why it stays, and what to do about it.
    pub message: String,
    /// Whether it still belongs to this repository (prune would delete it
    /// once turned on).
    pub owned: bool,
}

/// A finding of the live checks: what will go wrong, and the fix.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportWarning {
    /// About what.
    pub address: Addr,
    /// What will go wrong, and the fix.
    pub message: String,
}

/// An object changed outside certplane since certplane applied it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportDrift {
    /// The object.
    pub address: Addr,
    /// The fields that moved, when known (dotted paths).
    pub fields: Vec<String>,
    /// Who moved them (Kubernetes field managers), when known.
    pub changed_by: Vec<String>,
    /// How certplane knows.
    pub reason: String,
}

/// `plan -o json` when no plan could be made: an invalid repository, an
/// unreachable Vault.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(
    title = "certplane plan error report",
    description = "What `certplane plan -o json` writes to stdout when no plan could be made (`plan` exits 1)."
)]
pub struct ErrorReport {
    /// The report's version: always the string "1" for this format.
    #[schemars(extend("const" = REPORT_VERSION))]
    pub format_version: String,
    /// Always false: there is no plan.
    #[schemars(extend("const" = false))]
    pub valid: bool,
    /// Always false.
    #[schemars(extend("const" = false))]
    pub has_changes: bool,
    /// Always empty.
    #[schemars(extend("maxItems" = 0))]
    pub changes: Vec<ReportChange>,
    /// Why there is no plan, one entry per problem.
    pub errors: Vec<ErrorEntry>,
}

/// One reason there is no plan.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorEntry {
    /// The file, for a problem in the repository's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Its column (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Everything `plan -o json` may write: the schema's root.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(
    title = "certplane plan -o json",
    description = "What `certplane plan -o json` writes to stdout: a plan report, or an error report when no plan could be made. Not a plan file (`plan --out FILE`, schemas/plan-file.json), which is the only JSON `apply FILE` reads."
)]
pub enum PlanOutput {
    /// A plan was made.
    Plan(PlanReport),
    /// No plan could be made.
    Failed(ErrorReport),
}

impl PlanReport {
    /// The report of `plan`. Secrets are already `(sensitive)` in the plan;
    /// CA sources (key files, bundles) are not part of this view at all.
    pub fn new(plan: &Plan) -> PlanReport {
        let changes = plan
            .changes
            .iter()
            .map(|c| {
                let why = privileged(c);
                let ca = c.ca.as_ref();
                ReportChange {
                    address: c.addr.clone(),
                    kind: c.kind,
                    action: c.action,
                    before: c.live().cloned(),
                    after: c.after.clone(),
                    reason: c.reason.clone(),
                    privileged: why.is_some().then_some(true),
                    privileged_reason: why,
                    sensitive: c.sensitive.clone(),
                    existing_issuer_id: ca.and_then(|ca| ca.existing_id.clone()),
                    note: ca.and_then(|ca| ca.note.clone()),
                    pending_key: ca.and_then(|ca| ca.pending_key.clone()),
                    rotation: ca
                        .and_then(|ca| ca.rotation.clone())
                        .map(|r| ReportRotation {
                            number: r.stage(),
                            stage: r,
                        }),
                }
            })
            .collect();
        PlanReport {
            format_version: REPORT_VERSION.into(),
            has_changes: plan.has_changes(),
            summary: plan
                .summary()
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            changes,
            errors: plan
                .errored
                .iter()
                .map(|e| ReportError {
                    address: e.addr.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            notes: plan
                .notes
                .iter()
                .map(|n| ReportNote {
                    address: n.addr.clone(),
                    message: n.message.clone(),
                    owned: n.owned,
                })
                .collect(),
            warnings: plan
                .warnings
                .iter()
                .map(|w| ReportWarning {
                    address: w.addr.clone(),
                    message: w.message.clone(),
                })
                .collect(),
            drift: plan
                .drift
                .iter()
                .map(|d| ReportDrift {
                    address: d.addr.clone(),
                    fields: d.fields.clone(),
                    changed_by: d.changed_by.clone(),
                    reason: d.reason.clone(),
                })
                .collect(),
        }
    }
}

impl ErrorReport {
    /// The error report of these problems.
    pub fn new(errors: Vec<ErrorEntry>) -> ErrorReport {
        ErrorReport {
            format_version: REPORT_VERSION.into(),
            valid: false,
            has_changes: false,
            changes: Vec::new(),
            errors,
        }
    }
}

/// A report as a JSON value (keys sorted).
pub fn to_value<T: Serialize>(report: &T) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// The JSON Schema of everything `plan -o json` writes.
/// Made for serialization: a field the report leaves out when empty is not
/// required.
pub fn schema() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<PlanOutput>()
        .to_value()
}

/// Whether `doc` looks like a plan report or an error report (what `plan -o
/// json` writes) rather than a plan file: its `format_version` is a string,
/// or it has the report's top-level keys and no `plan`.
pub fn is_report(doc: &Value) -> bool {
    let Some(obj) = doc.as_object() else {
        return false;
    };
    obj.get("format_version").is_some_and(Value::is_string)
        || (!obj.contains_key("plan")
            && obj.contains_key("has_changes")
            && obj.contains_key("changes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_both_documents_and_pins_the_version() {
        let s = schema();
        let text = s.to_string();
        assert!(text.contains("certplane plan report"), "{s:#}");
        assert!(text.contains("certplane plan error report"), "{s:#}");
        assert_eq!(s["anyOf"].as_array().map(Vec::len), Some(2), "{s:#}");
        assert!(text.contains(r#""const":"1""#), "{s:#}");
    }

    #[test]
    fn a_report_is_told_from_a_plan_file() {
        let report = to_value(&PlanReport::new(&Plan::default()));
        assert!(is_report(&report));
        assert!(is_report(&to_value(&ErrorReport::new(vec![]))));
        let file = serde_json::json!({"format_version": 3, "plan": {"changes": []}});
        assert!(!is_report(&file));
        assert!(!is_report(&serde_json::json!([1, 2])));
    }
}
