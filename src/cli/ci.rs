//! CI mode: `plan --out FILE` saves the reviewed plan, `apply FILE` applies
//! exactly that plan — and only if it is what the repository produces.
//!
//! The file holds the whole [`Plan`] with a format version and a hash of the
//! repository's input: the YAML files the loader read and the files their
//! sources and paths name (never the plan file itself, render output or any
//! other file). It never holds a secret value: secret parameters are
//! `(sensitive)` in the plan already and their sources are re-read from the
//! repository at apply time; a CA key or bundle written inline in the
//! repository is blanked in the file; a plan carrying a Secret manifest is
//! refused.
//!
//! A plan file is not trusted. `apply FILE` checks the hash (the repository
//! changed: refused), then plans again from the repository and the live
//! state, exactly as `plan` did, and compares: a change whose live side
//! moved is "plan is stale"; any other difference (an added policy, a
//! widened role, another action) means the file was edited, and it is
//! refused naming each change. Nothing is written in either case. What is
//! applied is the plan made now, which equals the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ExitStatus;
use super::commands::{fail, locked_driver, report};
use crate::model::Source;
use crate::pipeline::hash::repository_hash;
use crate::pipeline::{Driver, PlanOptions, Prepared};
use crate::plan::{Action, Change, Plan};
use crate::state::{CaMethod, Signer};
use crate::vault::Vault;

/// The version of the plan file format this build writes and reads (3:
/// every address is its one string form, `vault:pki/roles/web`).
pub const FORMAT_VERSION: u32 = 3;

/// The JSON Schema of the plan file.
pub fn schema() -> Value {
    schemars::schema_for!(PlanFile).to_value()
}

/// What stands in for an inline secret value in a saved plan.
const REDACTED: &str = "(redacted: read from the repository at apply time)";

/// The file name of the plan file's JSON Schema under `schemas/`.
pub const SCHEMA_FILE: &str = "plan-file.json";

/// A saved plan: what `plan --out FILE` writes and `apply FILE` reads
/// (schema `schemas/plan-file.json`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "certplane plan file",
    description = "What `certplane plan --out FILE` writes and `certplane apply FILE` reads: the whole plan with the hash of the repository it was made from. Not the plan report of `plan -o json` (schemas/plan-output.json)."
)]
pub struct PlanFile {
    /// The plan file format's version (an integer); `apply` refuses a file
    /// of another version.
    #[schemars(extend("const" = FORMAT_VERSION))]
    pub format_version: u32,
    /// The certplane version that made it.
    pub certplane_version: String,
    /// The repository directory, as given to `plan`.
    pub repository: PathBuf,
    /// SHA-256 (hex) of the repository's input: every YAML file certplane
    /// read and every file they name. `apply` refuses the file when the
    /// repository hashes otherwise.
    #[schemars(extend("pattern" = "^[0-9a-f]{64}$"))]
    pub repository_hash: String,
    /// `--render DIR` of the plan, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<PathBuf>,
    /// `--allow-destroy-ca` of the plan: `apply` must be given it too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_destroy_ca: bool,
    /// The plan.
    pub plan: Plan,
}

/// The inline sources (secret values) of a plan's CA changes.
fn inline_sources(plan: &mut Plan) -> Vec<&mut Source> {
    let mut out = Vec::new();
    for c in &mut plan.changes {
        let Some(ca) = c.ca.as_mut() else { continue };
        match &mut ca.desired.method {
            CaMethod::Import { bundle } => out.push(bundle),
            CaMethod::Intermediate {
                signer: Signer::External { ca_key, .. },
                ..
            } => out.push(ca_key),
            _ => {}
        }
    }
    out.into_iter()
        .filter(|s| matches!(s, Source::Value(_)))
        .collect()
}

/// The plan as it is saved: inline secret values blanked.
fn for_file(plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    for s in inline_sources(&mut plan) {
        *s = Source::Value(REDACTED.into());
    }
    plan
}

/// Why a plan cannot be saved: it carries a Secret's values.
fn secret_manifest(plan: &Plan) -> Option<String> {
    plan.changes.iter().find_map(|c| {
        let m = c.manifest.as_ref()?;
        let is_secret = m.get("kind").and_then(|k| k.as_str()) == Some("Secret");
        let has_values = ["data", "stringData"].iter().any(|k| {
            m.get(*k)
                .and_then(|d| d.as_object())
                .is_some_and(|d| d.values().any(|v| v.as_str().is_none_or(|s| !s.is_empty())))
        });
        (is_secret && has_values).then(|| c.addr.to_string())
    })
}

/// Whether `out` would be read back as repository input (a YAML file
/// inside the repository).
fn inside_as_yaml(out: &Path, root: &Path) -> bool {
    let yaml = matches!(
        out.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (Ok(p), Ok(r)) = (parent.canonicalize(), root.canonicalize()) else {
        return false;
    };
    yaml && p.starts_with(r)
}

/// Writes `plan` to `out`. Errors are printed.
pub fn write_plan(
    out: &Path,
    dir: &Path,
    render: Option<&Path>,
    options: PlanOptions,
    prepared: &Prepared,
    plan: &Plan,
) -> Result<(), ExitStatus> {
    if let Some(addr) = secret_manifest(plan) {
        eprintln!(
            "error: cannot save the plan: {addr} is a Secret with values, and a plan file never holds secrets; \
             keep Secrets out of the repository (e.g. deliver them with deliverTo) to use --out"
        );
        return Err(ExitStatus::Error);
    }
    if inside_as_yaml(out, &prepared.repo.root) {
        eprintln!(
            "error: cannot save the plan to {}: a YAML file inside the repository is repository input; \
             name it plan.json (the hash covers only the repository's YAML and the files it names)",
            out.display()
        );
        return Err(ExitStatus::Error);
    }
    let hash = repository_hash(&prepared.repo).map_err(|e| fail(&e))?;
    let file = PlanFile {
        format_version: FORMAT_VERSION,
        certplane_version: env!("CARGO_PKG_VERSION").into(),
        repository: dir.to_path_buf(),
        repository_hash: hash,
        render: render.map(Path::to_path_buf),
        allow_destroy_ca: options.allow_destroy_ca,
        plan: for_file(plan),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| fail(&e))?;
    std::fs::write(out, text + "\n").map_err(|e| {
        eprintln!("error: cannot write the plan to {}: {e}", out.display());
        ExitStatus::Error
    })?;
    eprintln!("Saved the plan to {}.", out.display());
    Ok(())
}

/// One way a saved plan differs from the plan made now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The live state of this change moved since the plan was made.
    Stale(String),
    /// The file says something the repository does not produce.
    Edited(String),
    /// The file deletes an object the plan made now does not: edited, or
    /// the object is gone (the caller checks which).
    UnmatchedDelete(usize),
}

/// A JSON value for a message, shortened.
fn shown(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => "(none)".to_string(),
        Some(v) => v.to_string(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// The paths at which two JSON values differ (`prefix.key`), with both
/// values; arrays and scalars are compared whole.
fn diff_paths(prefix: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{prefix}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_paths(&p, va, vb, out),
                    (va, vb) => out.push((p, shown(va), shown(vb))),
                }
            }
        }
        _ if a != b => out.push((prefix.to_string(), shown(Some(a)), shown(Some(b)))),
        _ => {}
    }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Whether a change's live side may move with the clock alone: a CA with
/// `rotateBefore` comes closer to its rotation every day, and a rotation in
/// progress to its next stage (an overlap, a retired issuer's expiry).
fn time_dependent(c: &Change) -> bool {
    c.ca.as_ref()
        .is_some_and(|ca| ca.desired.rotate_before.is_some() || ca.rotation.is_some())
}

/// Compares one change of the file (`s`) with the same change made now
/// (`f`, redacted as the file is).
fn compare_change(s: &Change, f: &Change, out: &mut Vec<Finding>) {
    let addr = &s.addr;
    let now = f.live();
    // An unchanged object keeps no `before` (its live side is its `after`);
    // an update without one was never written by certplane: the file was
    // edited, which the comparison below names, not a moved object.
    let then = match (&s.before, s.action) {
        (None, Action::Update | Action::Replace | Action::Delete) => now,
        _ => s.live(),
    };
    let live_then = (json(&then), s.ca.as_ref().map(|c| &c.existing_id));
    let live_now = (json(&now), f.ca.as_ref().map(|c| &c.existing_id));
    if live_then != live_now {
        let mut d = Vec::new();
        diff_paths("before", &live_then.0, &live_now.0, &mut d);
        let detail = d
            .first()
            .map(|(p, a, b)| format!(" ({p}: was {a}, is now {b})"))
            .unwrap_or_default();
        out.push(Finding::Stale(format!(
            "{addr} changed since the plan was made{detail}"
        )));
        return;
    }
    let mut edited = Vec::new();
    let mut differing = Vec::new();
    let sides: [(&str, Value, Value, bool); 8] = [
        ("kind", json(&s.kind), json(&f.kind), true),
        ("action", json(&s.action), json(&f.action), true),
        ("after", json(&s.after), json(&f.after), true),
        ("sensitive", json(&s.sensitive), json(&f.sensitive), true),
        ("depends_on", json(&s.depends_on), json(&f.depends_on), true),
        (
            "ca",
            json(&s.ca.as_ref().map(|c| (&c.desired, &c.note))),
            json(&f.ca.as_ref().map(|c| (&c.desired, &c.note))),
            true,
        ),
        ("reason", json(&s.reason), json(&f.reason), true),
        // Manifests may be long: name the field, not the values.
        ("manifest", json(&s.manifest), json(&f.manifest), false),
    ];
    for (name, a, b, values) in &sides {
        if a == b {
            continue;
        }
        differing.push(*name);
        let mut d = Vec::new();
        diff_paths(name, a, b, &mut d);
        for (p, x, y) in d {
            edited.push(if *values {
                format!("{addr}: {p}: the file says {x}, the repository produces {y}")
            } else {
                format!("{addr}: {p} differs from what the repository produces")
            });
        }
    }
    if edited.is_empty() {
        return;
    }
    // The same CA and the same live issuer, planned at another time: a
    // rotation may have come due.
    if time_dependent(f) && differing.iter().all(|n| matches!(*n, "action" | "reason")) {
        out.push(Finding::Stale(format!(
            "{addr}: its CA came closer to rotateBefore or to its next rotation stage since the plan was made"
        )));
    } else {
        out.extend(edited.into_iter().map(Finding::Edited));
    }
}

/// How the saved plan differs from the plan made now (`fresh`, redacted as
/// the file is). Empty: they are the same.
pub fn compare(saved: &Plan, fresh: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    let key = |c: &Change| (c.addr.to_string(), json(&c.kind).to_string());
    let now: BTreeMap<_, &Change> = fresh.changes.iter().map(|c| (key(c), c)).collect();
    let then: BTreeMap<_, &Change> = saved.changes.iter().map(|c| (key(c), c)).collect();
    if then.len() != saved.changes.len() {
        out.push(Finding::Edited("the file lists a change twice".to_string()));
    }
    for (i, s) in saved.changes.iter().enumerate() {
        match now.get(&key(s)) {
            Some(f) => compare_change(s, f, &mut out),
            None if s.action == Action::Delete => out.push(Finding::UnmatchedDelete(i)),
            None => out.push(Finding::Edited(format!(
                "{}: in the file ({}), not declared by the repository",
                s.addr,
                json(&s.action).as_str().unwrap_or("?")
            ))),
        }
    }
    for f in &fresh.changes {
        if then.contains_key(&key(f)) {
            continue;
        }
        out.push(if f.action == Action::Delete {
            Finding::Stale(format!(
                "{} is to be deleted now but is not in the file: it appeared since the plan \
                 was made, or its delete was removed from the file",
                f.addr
            ))
        } else {
            Finding::Edited(format!(
                "{}: declared by the repository ({}), missing from the file",
                f.addr,
                json(&f.action).as_str().unwrap_or("?")
            ))
        });
    }
    let order = |p: &Plan| -> Vec<_> {
        p.changes
            .iter()
            .map(key)
            .filter(|k| then.contains_key(k) && now.contains_key(k))
            .collect()
    };
    if out.is_empty() && order(saved) != order(fresh) {
        out.push(Finding::Edited(
            "the order of the changes differs from the repository's".to_string(),
        ));
    }
    if json(&saved.errored) != json(&fresh.errored)
        && !out.iter().any(|f| matches!(f, Finding::Stale(_)))
    {
        out.push(Finding::Edited(format!(
            "errors: the file lists {}, the repository produces {}",
            saved.errored.len(),
            fresh.errored.len()
        )));
    }
    out
}

/// Settles each [`Finding::UnmatchedDelete`]: a Vault object that still
/// exists means the delete was added to the file; one that is gone means
/// the live state moved.
async fn settle(
    saved: &Plan,
    findings: Vec<Finding>,
    vault: &Vault,
) -> Result<Vec<Finding>, ExitStatus> {
    let mut out = Vec::with_capacity(findings.len());
    for f in findings {
        let Finding::UnmatchedDelete(i) = f else {
            out.push(f);
            continue;
        };
        let c = &saved.changes[i];
        let exists = match c.addr.vault_path() {
            Some(_) => crate::vault::observe_one(vault, &c.addr, c.kind)
                .await
                .map_err(|e| fail(&e))?
                .is_some(),
            // A cluster object: the plan made now would delete it if the
            // repository pruned it; say both possibilities.
            None => {
                out.push(Finding::Edited(format!(
                    "{}: the file deletes it; the repository and the live state do not \
                     (the file was edited, or the object is gone)",
                    c.addr
                )));
                continue;
            }
        };
        out.push(if exists {
            Finding::Edited(format!(
                "{}: the file deletes it; the repository does not (it is not pruned by this repository)",
                c.addr
            ))
        } else {
            Finding::Stale(format!("{} no longer exists", c.addr))
        });
    }
    Ok(out)
}

/// Prints why a saved plan is refused.
fn refuse(file: &Path, findings: &[Finding]) -> ExitStatus {
    let edited: Vec<&String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Edited(s) => Some(s),
            _ => None,
        })
        .collect();
    let stale: Vec<&String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Stale(s) => Some(s),
            _ => None,
        })
        .collect();
    let mut msg = String::new();
    if !edited.is_empty() {
        let _ = writeln!(
            msg,
            "error: the plan file {} does not match what the repository produces: it was changed \
             after `plan`; refused, nothing was applied",
            file.display()
        );
        for e in &edited {
            let _ = writeln!(msg, "  {e}");
        }
        for s in &stale {
            let _ = writeln!(msg, "  (also stale) {s}");
        }
        msg.push_str(
            "hint: make the plan again from the repository (certplane plan --out FILE) and review it",
        );
    } else if let Some(first) = stale.first() {
        let _ = write!(
            msg,
            "error: plan is stale: {first}; run plan again (nothing was applied)"
        );
        for s in stale.iter().skip(1) {
            let _ = write!(msg, "\n  also: {s}");
        }
    }
    eprintln!("{msg}");
    ExitStatus::Error
}

/// Reads and checks a saved plan: its format version, and the flags it was
/// made with against those given to `apply`.
fn read_plan_file(
    file: &Path,
    render: Option<&Path>,
    allow_destroy_ca: bool,
) -> Result<PlanFile, ExitStatus> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read the plan {}: {e}", file.display());
        ExitStatus::Error
    })?;
    let doc = match serde_json::from_str::<Value>(&text) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!(
                "error: {} is not a certplane plan file: it is not JSON ({e}); make one with `certplane plan --out {}`",
                file.display(),
                file.display()
            );
            return Err(ExitStatus::Error);
        }
    };
    if crate::plan::json::is_report(&doc) {
        eprintln!(
            "error: {} is a `plan -o json` report, not a plan file: apply reads only the plan file that `plan --out FILE` writes; \
             make one with `certplane plan --out {} [DIR]` (`-o json` may be given too: the report goes to stdout, the plan file to FILE)",
            file.display(),
            file.display()
        );
        return Err(ExitStatus::Error);
    }
    let version = doc.get("format_version").and_then(Value::as_u64);
    if let Some(v) = version
        && v != u64::from(FORMAT_VERSION)
    {
        eprintln!(
            "error: {} has plan format version {v}, this certplane reads version {FORMAT_VERSION}; run plan again",
            file.display(),
        );
        return Err(ExitStatus::Error);
    }
    let saved: PlanFile = serde_json::from_value(doc).map_err(|e| {
        eprintln!(
            "error: {} is not a certplane plan file (format version {FORMAT_VERSION}, schemas/plan-file.json): {e}; make one with `certplane plan --out FILE`",
            file.display()
        );
        ExitStatus::Error
    })?;
    if saved.allow_destroy_ca && !allow_destroy_ca {
        eprintln!(
            "error: {} was planned with --allow-destroy-ca; give apply --allow-destroy-ca as well to destroy CAs",
            file.display()
        );
        return Err(ExitStatus::Error);
    }
    if let (Some(given), Some(planned)) = (render, saved.render.as_deref())
        && given != planned
    {
        eprintln!(
            "error: {} was planned with --render {}, not {}; run plan again with the directory you apply to",
            file.display(),
            planned.display(),
            given.display()
        );
        return Err(ExitStatus::Error);
    }
    Ok(saved)
}

/// Reads a saved plan, checks it against the repository, connects, plans
/// again and compares: what `apply` needs, the plan made now, which equals
/// the file (and the driver that made it). `allow_destroy_ca` is the flag
/// given to `apply`.
pub async fn planned_from_file(
    file: &Path,
    dir: Option<&Path>,
    render: Option<&Path>,
    allow_destroy_ca: bool,
    lock: &super::lock::LockArgs,
) -> Result<(Driver, Prepared, Plan), ExitStatus> {
    let saved = read_plan_file(file, render, allow_destroy_ca)?;
    let dir = dir.unwrap_or(&saved.repository);
    let render = render.or(saved.render.as_deref());
    let options = PlanOptions {
        allow_destroy_ca: saved.allow_destroy_ca,
    };
    let mut driver = locked_driver(render, options, lock, dir)?;
    let prepared = driver.prepare(dir).map_err(|e| report(&e))?;
    let hash = repository_hash(&prepared.repo).map_err(|e| fail(&e))?;
    if hash != saved.repository_hash {
        eprintln!(
            "error: plan is stale: the repository {} changed since the plan was made \
             (its YAML files or the files they name); run plan again",
            dir.display()
        );
        return Err(ExitStatus::Error);
    }
    let fresh = driver.plan(&prepared).await.map_err(|e| report(&e))?;
    let findings = compare(&saved.plan, &for_file(&fresh));
    if !findings.is_empty() {
        // Without Vault (no Vault objects) there is no delete to settle.
        let findings = if crate::pipeline::needs_vault(&prepared) {
            let vault = driver
                .vault_for(&prepared.repo)
                .await
                .map_err(|e| report(&e))?;
            settle(&saved.plan, findings, &vault).await?
        } else {
            findings
        };
        if !findings.is_empty() {
            return Err(refuse(file, &findings));
        }
    }
    Ok((driver, prepared, fresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::state::ResourceKind;
    use serde_json::json;

    fn role(action: Action, domains: &[&str], live: &[&str]) -> Change {
        let fields = |d: &[&str]| {
            Some(
                [("allowed_domains".to_string(), json!(d))]
                    .into_iter()
                    .collect(),
            )
        };
        Change {
            addr: Addr::parse_vault("pki/roles/web").unwrap(),
            kind: ResourceKind::Role,
            action,
            before: fields(live),
            after: fields(domains),
            sensitive: vec![],
            reason: None,
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
    fn the_same_plan_has_no_findings() {
        let p = plan(vec![role(Action::Update, &["a.test"], &["b.test"])]);
        assert!(compare(&p, &p.clone()).is_empty());
    }

    #[test]
    fn a_widened_field_is_an_edit_naming_address_and_field() {
        let fresh = plan(vec![role(Action::Update, &["a.test"], &["b.test"])]);
        let saved = plan(vec![role(Action::Update, &["*"], &["b.test"])]);
        let f = compare(&saved, &fresh);
        assert_eq!(f.len(), 1, "{f:?}");
        let Finding::Edited(m) = &f[0] else {
            panic!("{f:?}")
        };
        assert!(m.contains("vault:pki/roles/web"), "{m}");
        assert!(m.contains("after.allowed_domains"), "{m}");
        assert!(m.contains("[\"*\"]") && m.contains("[\"a.test\"]"), "{m}");
    }

    #[test]
    fn a_moved_live_object_is_stale_not_an_edit() {
        let fresh = plan(vec![role(Action::Update, &["a.test"], &["c.test"])]);
        let saved = plan(vec![role(Action::Update, &["a.test"], &["b.test"])]);
        let f = compare(&saved, &fresh);
        assert!(
            matches!(&f[..], [Finding::Stale(m)] if m.contains("before.allowed_domains")),
            "{f:?}"
        );
    }

    #[test]
    fn an_added_change_a_changed_action_and_a_removed_change_are_edits() {
        let fresh = plan(vec![role(Action::NoOp, &["a.test"], &["a.test"])]);
        let mut extra = role(Action::Create, &["x"], &[]);
        extra.addr = Addr::parse_vault("sys/policies/acl/evil").unwrap();
        extra.kind = ResourceKind::Policy;
        let saved = plan(vec![role(Action::Delete, &["a.test"], &["a.test"]), extra]);
        let f = compare(&saved, &fresh);
        let text = format!("{f:?}");
        assert!(
            text.contains("action: the file says \\\"delete\\\""),
            "{text}"
        );
        assert!(
            text.contains("sys/policies/acl/evil: in the file"),
            "{text}"
        );
        let f = compare(&plan(vec![]), &fresh);
        assert!(
            matches!(&f[..], [Finding::Edited(m)] if m.contains("missing from the file")),
            "{f:?}"
        );
    }

    #[test]
    fn an_added_delete_needs_the_live_state_to_be_settled() {
        let fresh = plan(vec![]);
        let saved = plan(vec![role(Action::Delete, &[], &["a"])]);
        assert_eq!(compare(&saved, &fresh), vec![Finding::UnmatchedDelete(0)]);
    }
}
