//! Rendering a plan for people (a per-object, per-field diff) and for
//! machines (JSON). The same [`Plan`] feeds both; neither decides anything.

use std::fmt::Write;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::diff::same_value;
use super::{Action, Change, Plan};
use crate::model::Duration;
use crate::state::ResourceKind;

/// Why a change touches a privileged object, if it does: a policy that
/// replaces `default`, grants `sudo`, or grants on a wildcard over every
/// path, `sys/` or the auth methods (see [`crate::validate::privilege`]).
/// Such a policy passed `validate` only because it opted in; the plan says
/// so next to the change.
pub fn privileged(c: &Change) -> Option<String> {
    if c.kind != ResourceKind::Policy || !c.action.is_change() {
        return None;
    }
    let Some(crate::addr::VaultAddr::Policy { name }) = c.addr.as_vault() else {
        return None;
    };
    let hcl = [c.after.as_ref(), c.before.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|f| f.get("policy").and_then(Value::as_str))
        .unwrap_or_default();
    let reasons = crate::validate::privilege::hcl_reasons(name, hcl);
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Output style of the human renderer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours (off when `NO_COLOR` is set or stdout is not a terminal).
    pub color: bool,
}

impl Style {
    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The symbol and colour of an action's line.
fn symbol(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::NoOp => (" ", "0"),
        Action::Create => ("+", "32"),
        Action::Update => ("~", "33"),
        Action::Replace => ("-/+", "35"),
        Action::Delete => ("-", "31"),
    }
}

/// Whether a field holds a duration in seconds (shown Go-style).
fn is_duration(key: &str) -> bool {
    key == "ttl" || key.ends_with("_ttl") || key == "expiry" || key == "not_before_duration"
}

fn show(key: &str, v: &Value) -> String {
    match v {
        Value::Number(n) if is_duration(key) => n
            .as_u64()
            .map(|s| Duration::from_secs(s).to_string())
            .unwrap_or_else(|| n.to_string()),
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}

fn multiline(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) if s.contains('\n') => Some(s),
        _ => None,
    }
}

fn field_lines(out: &mut impl Write, c: &Change, style: Style) {
    let after = c.after.as_ref();
    let before = c.before.as_ref();
    let keys: Vec<&str> = match (c.action, after) {
        (Action::Update, Some(a)) => a
            .keys()
            .filter(|k| {
                // A secret is written whenever its object is (Vault and the
                // providers list it only then): shown, masked, even when
                // both sides read `(sensitive)`.
                c.is_sensitive(k) || !same_value(&a[*k], before.and_then(|b| b.get(k)))
            })
            .collect(),
        // A replaced CA: only the identity fields that the live issuer has
        // and that differ (lifetime is not known from the live side).
        (Action::Replace, Some(a)) => a
            .keys()
            .filter(|k| {
                before
                    .and_then(|b| b.get(k))
                    .is_some_and(|b| !same_value(&a[*k], Some(b)))
            })
            .collect(),
        (_, Some(a)) => a.keys().collect(),
        (_, None) => before.map(|b| b.keys().collect()).unwrap_or_default(),
    };
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    for key in keys {
        let new = after.and_then(|a| a.get(key));
        let old = before.and_then(|b| b.get(key));
        if let (Some(o), Some(n)) = (multiline(old).or(Some("")), multiline(new))
            && c.action != Action::Create
        {
            let _ = writeln!(
                out,
                "      {}",
                style.paint(symbol(c.action).1, &format!("{key}:"))
            );
            for d in TextDiff::from_lines(o, n).iter_all_changes() {
                let (sign, code) = match d.tag() {
                    ChangeTag::Delete => ("-", "31"),
                    ChangeTag::Insert => ("+", "32"),
                    ChangeTag::Equal => (" ", "0"),
                };
                let line = format!("        {sign} {}", d.value().trim_end_matches('\n'));
                let _ = writeln!(out, "{}", style.paint(code, &line));
            }
            continue;
        }
        // Field lines take their change's colour; an update's old value is
        // red and its new value green.
        let (_, code) = symbol(c.action);
        if let Some(text) = multiline(new) {
            let _ = writeln!(out, "      {}", style.paint(code, &format!("{key}:")));
            for l in text.lines() {
                let _ = writeln!(out, "{}", style.paint(code, &format!("        {l}")));
            }
            continue;
        }
        let line = match (c.action, old, new) {
            (Action::Update | Action::Replace, o, Some(n)) => format!(
                "{key:width$} = {} -> {}",
                style.paint("31", &show(key, o.unwrap_or(&Value::Null))),
                style.paint("32", &show(key, n))
            ),
            (_, _, Some(n)) => style.paint(code, &format!("{key:width$} = {}", show(key, n))),
            (_, Some(o), None) => style.paint(code, &format!("{key:width$} = {}", show(key, o))),
            (_, None, None) => continue,
        };
        let _ = writeln!(out, "      {line}");
    }
}

/// One drifted object, on one line.
pub fn drift_line(d: &super::Drift) -> String {
    let mut line = d.addr.to_string();
    if !d.fields.is_empty() {
        let _ = write!(line, ": {}", d.fields.join(", "));
    }
    if !d.changed_by.is_empty() {
        let _ = write!(line, " (changed by {})", d.changed_by.join(", "));
    }
    let _ = write!(line, "; {}", d.reason);
    line
}

/// The plan for people: what changed outside certplane, each change with
/// its changed fields, then a summary.
pub fn human(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    human_to(&mut out, plan, style);
    out
}

/// [`human`], written to `out` as it is made (a plan of 10,000 creates is
/// printed, not first held as one string).
pub fn human_to(out: &mut impl Write, plan: &Plan, style: Style) {
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "33",
                "Objects changed outside certplane since it applied them (the plan repairs them):"
            )
        );
        for d in &plan.drift {
            let _ = writeln!(out, "  ~ {}", drift_line(d));
        }
        let _ = out.write_char('\n');
    }
    for e in &plan.errored {
        let _ = writeln!(
            out,
            "{} {}: {}",
            style.paint("31", "error:"),
            e.addr,
            e.message
        );
    }
    for c in &plan.changes {
        let (sym, code) = symbol(c.action);
        let note = c.ca.as_ref().and_then(|ca| ca.note.as_deref());
        let waiting =
            c.ca.as_ref()
                .and_then(|ca| ca.rotation.as_ref())
                .is_some_and(|r| r.waits());
        if !c.action.is_change() && note.is_none() && !waiting {
            continue;
        }
        let head = format!("{sym} {} ({})", c.addr, c.action.label());
        let _ = writeln!(out, "  {}", style.paint(code, &head));
        if let Some(why) = privileged(c) {
            let line = format!("      ! (privileged) {why}");
            let _ = writeln!(out, "{}", style.paint("1;31", &line));
        }
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "      # {reason}");
        }
        if c.action.is_change() {
            field_lines(out, c, style);
        }
        if let Some(note) = note {
            for l in note.lines() {
                let _ = writeln!(out, "      {l}");
            }
        }
        let _ = out.write_char('\n');
    }
    for n in &plan.notes {
        let head = format!("! {} (kept)", n.addr);
        let _ = writeln!(out, "  {}", style.paint("33", &head));
        let _ = writeln!(out, "      # {}\n", n.message);
    }
    for w in &plan.warnings {
        let head = format!("! {} (warning)", w.addr);
        let _ = writeln!(out, "  {}", style.paint("1;33", &head));
        let _ = writeln!(out, "      # {}\n", w.message);
    }
    let _ = writeln!(out, "{}", summary_line(plan));
}

/// `Plan: 2 to create, 1 to update, 0 to replace. 5 unchanged.` or
/// `No changes. ...`.
/// With ` N warning(s) (see above).` when the plan has live warnings.
pub fn summary_line(plan: &Plan) -> String {
    let mut line = summary_base(plan);
    if !plan.warnings.is_empty() {
        let n = plan.warnings.len();
        let _ = write!(
            line,
            " {n} warning{} (see above).",
            if n == 1 { "" } else { "s" }
        );
    }
    line
}

fn summary_base(plan: &Plan) -> String {
    let s = plan.summary();
    let n = |k: &str| s.get(k).copied().unwrap_or(0);
    let kept = plan.notes.len();
    if !plan.has_changes() && kept > 0 {
        return format!(
            "No changes. The repository's {} objects match the live state, but {kept} object(s) \
             no longer in the repository are kept (see the notes above).",
            n("unchanged")
        );
    }
    if !plan.has_changes() {
        let unchanged = n("unchanged");
        return format!(
            "No changes. The live state matches the repository ({unchanged} object{}).",
            if unchanged == 1 { "" } else { "s" }
        );
    }
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to replace",
        n("create"),
        n("update"),
        n("replace")
    );
    if n("delete") > 0 {
        let _ = write!(line, ", {} to delete", n("delete"));
    }
    let _ = write!(line, ". {} unchanged.", n("unchanged"));
    let privileged = plan.pending().filter(|c| privileged(c).is_some()).count();
    if privileged > 0 {
        let _ = write!(
            line,
            " {privileged} privileged change{} (marked \"(privileged)\").",
            if privileged == 1 { "" } else { "s" }
        );
    }
    if kept > 0 {
        let _ = write!(
            line,
            " {kept} no longer in the repository and kept (see the notes)."
        );
    }
    if !plan.drift.is_empty() {
        let _ = write!(
            line,
            " {} changed outside certplane (drift).",
            plan.drift.len()
        );
    }
    line
}

/// The plan for machines: the plan report of `plan -o json`
/// ([`super::json::PlanReport`], schema `schemas/plan-output.json`).
pub fn json(plan: &Plan) -> Value {
    super::json::to_value(&super::json::PlanReport::new(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use serde_json::json;

    fn policy(name: &str, action: Action, hcl: &str) -> Change {
        let fields = json!({"policy": format!("# Managed by certplane\n{hcl}")});
        let f: crate::state::Fields = fields.as_object().unwrap().clone().into_iter().collect();
        Change {
            addr: crate::addr::VaultAddr::policy(name).into(),
            kind: ResourceKind::Policy,
            action,
            before: (action == Action::Delete).then(|| f.clone()),
            after: (action != Action::Delete).then_some(f),
            sensitive: vec![],
            reason: None,
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        }
    }

    #[test]
    fn json_writes_every_address_as_its_one_string() {
        let kube = Addr::from(crate::addr::KubeRef {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            kind: "Issuer".into(),
            namespace: Some("sandbox".into()),
            name: "vault-issuer".into(),
        });
        let plan = Plan {
            changes: vec![policy("web", Action::Create, "")],
            errored: vec![
                crate::plan::PlanError {
                    addr: crate::addr::VaultAddr::mount("pki").into(),
                    message: "m".into(),
                },
                crate::plan::PlanError {
                    addr: kube.clone(),
                    message: "k".into(),
                },
            ],
            notes: vec![crate::plan::PlanNote {
                addr: kube,
                message: "n".into(),
                owned: true,
            }],
            drift: vec![],
            warnings: vec![crate::plan::PlanWarning {
                addr: crate::addr::VaultAddr::issuer("pki", None).into(),
                message: "w".into(),
            }],
        };
        let v = json(&plan);
        assert_eq!(v["warnings"][0]["address"], "vault:pki/issuer/default");
        assert_eq!(v["warnings"][0]["message"], "w");
        assert_eq!(v["changes"][0]["address"], "vault:sys/policies/acl/web");
        assert_eq!(v["errors"][0]["address"], "vault:sys/mounts/pki");
        assert_eq!(
            v["errors"][1]["address"],
            "cert-manager.io/Issuer/sandbox/vault-issuer"
        );
        assert_eq!(
            v["notes"][0]["address"],
            "cert-manager.io/Issuer/sandbox/vault-issuer"
        );
    }

    #[test]
    fn privileged_policy_changes_are_marked_in_every_output() {
        let sudo = "path \"sys/*\" {\n  capabilities = [\"read\", \"sudo\"]\n}\n";
        let plain = "path \"pki/sign/web\" {\n  capabilities = [\"update\"]\n}\n";
        let plan = Plan {
            changes: vec![
                policy("admin", Action::Create, sudo),
                policy("default", Action::Update, plain),
                policy("web", Action::Create, plain),
                policy("old-admin", Action::NoOp, sudo),
            ],
            ..Plan::default()
        };
        let human = human(&plan, Style { color: false });
        let marked: Vec<&str> = human
            .lines()
            .filter(|l| l.contains("(privileged)"))
            .collect();
        assert_eq!(marked.len(), 2 + 1, "two changes and the summary:\n{human}");
        assert!(
            human.contains("! (privileged) it grants sudo on sys/*"),
            "{human}"
        );
        assert!(human.contains("Vault's built-in default policy"), "{human}");
        assert!(human.contains("2 privileged changes"), "{human}");

        let v = json(&plan);
        let flags: Vec<bool> = v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["privileged"] == true)
            .collect();
        assert_eq!(flags, [true, true, false, false]);
        assert!(
            v["changes"][0]["privileged_reason"]
                .as_str()
                .unwrap()
                .contains("wildcard over sys/")
        );

        let md = crate::plan::markdown::markdown(&plan);
        assert!(
            md.contains(
                "| create | `vault:sys/policies/acl/admin` | **(privileged)** it grants sudo"
            ),
            "{md}"
        );
        assert!(
            md.contains("| create | `vault:sys/policies/acl/web` |  |"),
            "{md}"
        );
    }

    #[test]
    fn field_lines_are_coloured_only_when_asked() {
        let role = |action: Action, before: Option<Value>, after: Value| Change {
            addr: Addr::parse_vault("pki/roles/web").unwrap(),
            kind: ResourceKind::Role,
            action,
            before: before.map(|b| b.as_object().unwrap().clone().into_iter().collect()),
            after: Some(after.as_object().unwrap().clone().into_iter().collect()),
            sensitive: vec![],
            reason: None,
            ca: None,
            depends_on: Default::default(),
            manifest: None,
        };
        let mut created = role(Action::Create, None, json!({"max_ttl": 3600}));
        created.addr = Addr::parse_vault("pki/roles/api").unwrap();
        let plan = Plan {
            changes: vec![
                role(
                    Action::Update,
                    Some(json!({"ttl": 3600, "key_type": "ec"})),
                    json!({"ttl": 7200, "key_type": "ec"}),
                ),
                created,
            ],
            ..Plan::default()
        };
        let colour = human(&plan, Style { color: true });
        // The update's field line: old value red, new value green.
        assert!(
            colour.contains("      ttl = \x1b[31m1h\x1b[0m -> \x1b[32m2h\x1b[0m\n"),
            "{colour}"
        );
        // The create's field line: green, as its header.
        assert!(
            colour.contains("      \x1b[32mmax_ttl = 1h\x1b[0m\n"),
            "{colour}"
        );
        assert!(
            colour.contains("\x1b[33m~ vault:pki/roles/web (update)\x1b[0m"),
            "{colour}"
        );
        let plain = human(&plan, Style { color: false });
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("      ttl = 1h -> 2h\n"), "{plain}");
        assert!(plain.contains("      max_ttl = 1h\n"), "{plain}");
    }
}
