//! Pure comparison of a live object with its server-side apply dry run.
//!
//! As Flux's `ssa/manager_diff.go` does: both sides lose the fields the API
//! server sets (`metadata.managedFields`, `resourceVersion`, `generation`,
//! `uid`, `creationTimestamp`, ... and `status`), then what differs is the
//! change. The result is a set of dotted field paths (`spec.vault.path`,
//! `metadata.labels["app.kubernetes.io/name"]`) with their values before and
//! after. Every value under a Secret's `data` / `stringData` is shown as
//! [`SENSITIVE`]: a changed key is listed, its value never is.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::addr::Addr;
use crate::plan::Action;
use crate::state::Fields;

/// What a secret value is shown as.
pub const SENSITIVE: &str = "(sensitive)";

/// The annotation `kubectl apply` (client-side) writes: a full copy of the
/// object, Secret values included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `metadata` fields the API server sets; never part of a change.
const SERVER_SET_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The planned change to one cluster object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectPlan {
    /// The object (`Addr::Kube`).
    pub addr: Addr,
    /// `NoOp`, `Create` or `Update`.
    pub action: Action,
    /// Changed field paths as they are (empty for a create).
    pub before: Fields,
    /// Changed field paths as they will be (every field for a create).
    pub after: Fields,
    /// Paths (in `before` or `after`) whose values are masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
}

impl ObjectPlan {
    /// The plan of an object applying its manifest does not change (what
    /// [`plan_from`] makes of a dry run equal to the live object).
    pub fn unchanged(addr: Addr) -> ObjectPlan {
        ObjectPlan {
            addr,
            action: Action::NoOp,
            before: Fields::default(),
            after: Fields::default(),
            sensitive: Vec::new(),
        }
    }
}

/// Whether `obj` is a Secret (any object of kind `Secret` is treated as one).
pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// A copy of `obj` with every Secret value masked: each value under `data`
/// and `stringData` becomes [`SENSITIVE`] (keys stay visible), and the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation (which holds
/// the values) is masked too. Other objects are returned unchanged.
pub fn mask_secret(obj: &Value) -> Value {
    let mut out = obj.clone();
    if !is_secret(obj) {
        return out;
    }
    if let Some(map) = out.as_object_mut() {
        for field in ["data", "stringData"] {
            match map.get_mut(field) {
                Some(Value::Object(values)) => {
                    for v in values.values_mut() {
                        *v = Value::String(SENSITIVE.into());
                    }
                }
                Some(Value::Null) | None => {}
                Some(other) => *other = Value::String(SENSITIVE.into()),
            }
        }
        if let Some(Value::Object(ann)) = map
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            && let Some(v) = ann.get_mut(LAST_APPLIED)
        {
            *v = Value::String(SENSITIVE.into());
        }
    }
    out
}

/// Plan one object from its live state (None: absent) and the result of a
/// server-side apply dry run of the manifest. Neither is copied: the fields
/// a change is never about are skipped as the two are walked.
pub fn plan_from(addr: Addr, live: Option<&Value>, dry_run: &Value) -> ObjectPlan {
    let secret = is_secret(dry_run) || live.is_some_and(is_secret);
    let action = if live.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    let mut d = Diff::default();
    walk(&mut Vec::new(), live, Some(dry_run), &mut d);
    let action = if action == Action::Update && d.before.is_empty() && d.after.is_empty() {
        Action::NoOp
    } else {
        action
    };
    let mut sensitive = Vec::new();
    if secret {
        for Segments(path) in &d.paths {
            if is_secret_path(path) {
                let rendered = render_path(path);
                if let Some(v) = d.before.get_mut(&rendered) {
                    *v = Value::String(SENSITIVE.into());
                }
                if let Some(v) = d.after.get_mut(&rendered) {
                    *v = Value::String(SENSITIVE.into());
                }
                sensitive.push(rendered);
            }
        }
    }
    sensitive.sort();
    sensitive.dedup();
    ObjectPlan {
        addr,
        action,
        before: d.before.into_iter().collect(),
        after: d.after.into_iter().collect(),
        sensitive,
    }
}

/// The fields of a planned update that another field manager changed after
/// certplane's applied them: each changed field (dotted path) that the live
/// object's `managedFields` give to a manager other than `field_manager`,
/// on an object `field_manager` has applied before, with those managers.
/// Empty when certplane never applied the object (a first apply or a
/// takeover is no drift). A field another manager removed is owned by no
/// one and is not found here. Pure.
pub fn changed_outside(
    live: &Value,
    dry_run: &Value,
    field_manager: &str,
) -> Vec<(String, Vec<String>)> {
    let managed: Vec<&Value> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let manager = |m: &Value| m["manager"].as_str().unwrap_or_default().to_string();
    let applied = managed
        .iter()
        .any(|m| manager(m) == field_manager && m["operation"] == "Apply");
    if !applied {
        return Vec::new();
    }
    let mut d = Diff::default();
    walk(&mut Vec::new(), Some(live), Some(dry_run), &mut d);
    let mut out = Vec::new();
    for Segments(path) in &d.paths {
        let holders = |ours: bool| -> Vec<String> {
            managed
                .iter()
                .filter(|m| (manager(m) == field_manager) == ours)
                .filter(|m| holds(&m["fieldsV1"], path))
                .map(|m| manager(m))
                .collect()
        };
        let others = holders(false);
        if !others.is_empty() && holders(true).is_empty() {
            out.push((render_path(path), others));
        }
    }
    out
}

/// Whether a `fieldsV1` set holds the field at `segments` (or the whole of
/// it: a list is one field here).
fn holds(fields: &Value, segments: &[String]) -> bool {
    let mut node = fields;
    for seg in segments {
        match node.get(format!("f:{seg}")) {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

/// Whether the field `key` of the object at `path` is left out of a
/// change: the fields the API server sets (`status`, and
/// [`SERVER_SET_METADATA`] under `metadata`), and `apiVersion` / `kind`
/// (they are the address).
fn hidden(path: &[&str], key: &str) -> bool {
    match path {
        [] => matches!(key, "status" | "apiVersion" | "kind"),
        ["metadata"] => SERVER_SET_METADATA.contains(&key),
        _ => false,
    }
}

/// The fields of the object at `path` a change can be about.
fn shown<'a>(
    path: &[&str],
    obj: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, &'a Value)> {
    let at_top = path.is_empty() || path == ["metadata"];
    obj.iter()
        .filter(move |(k, _)| !(at_top && hidden(path, k)))
        .map(|(k, v)| (k.as_str(), v))
}

/// `v` as a change shows it: an object at `path` without its hidden fields
/// (copied only then, and only to be recorded).
fn as_shown<'a>(path: &[&str], v: &'a Value) -> Cow<'a, Value> {
    match v {
        Value::Object(m) if m.keys().any(|k| hidden(path, k)) => Cow::Owned(Value::Object(
            shown(path, m)
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )),
        _ => Cow::Borrowed(v),
    }
}

/// A path segment list whose values are secret.
fn is_secret_path(segments: &[String]) -> bool {
    match segments {
        [first, ..] if first == "data" || first == "stringData" => true,
        [m, a, k, ..] => m == "metadata" && a == "annotations" && k == LAST_APPLIED,
        _ => false,
    }
}

#[derive(Default)]
struct Diff {
    before: BTreeMap<String, Value>,
    after: BTreeMap<String, Value>,
    /// Every recorded path, as segments.
    paths: Vec<Segments>,
}

struct Segments(Vec<String>);

/// Record the leaves that differ between `before` and `after` under `path`,
/// leaving out the [`hidden`] fields. Objects are descended into; arrays
/// and scalars are leaves. Nothing is copied but what is recorded.
fn walk<'a>(
    path: &mut Vec<&'a str>,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    out: &mut Diff,
) {
    let any = |path: &[&str], m: &Map<String, Value>| shown(path, m).next().is_some();
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) if any(path, b) || any(path, a) => {
            let mut keys: Vec<&'a str> = shown(path, b)
                .chain(shown(path, a))
                .map(|(k, _)| k)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                path.push(key);
                walk(path, b.get(key), a.get(key), out);
                path.pop();
            }
        }
        (Some(Value::Object(one)), None) | (None, Some(Value::Object(one))) if any(path, one) => {
            let fields: Vec<(&'a str, &'a Value)> = shown(path, one).collect();
            for (key, v) in fields {
                path.push(key);
                if before.is_some() {
                    walk(path, Some(v), None, out);
                } else {
                    walk(path, None, Some(v), out);
                }
                path.pop();
            }
        }
        _ => {
            let b = before.map(|v| as_shown(path, v));
            let a = after.map(|v| as_shown(path, v));
            if b == a {
                return;
            }
            let rendered = render_path(path);
            if let Some(b) = b {
                out.before.insert(rendered.clone(), b.into_owned());
            }
            if let Some(a) = a {
                out.after.insert(rendered, a.into_owned());
            }
            out.paths
                .push(Segments(path.iter().map(|s| s.to_string()).collect()));
        }
    }
}

/// `spec.vault.path`; a key that is not a plain word is quoted:
/// `metadata.labels["app.kubernetes.io/name"]`.
pub fn render_path<S: AsRef<str>>(segments: &[S]) -> String {
    let mut s = String::new();
    for seg in segments {
        let seg = seg.as_ref();
        let plain = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        } else {
            s.push('[');
            s.push_str(&Value::String(seg.to_string()).to_string());
            s.push(']');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::addr::KubeRef;

    fn addr() -> Addr {
        Addr::from(KubeRef {
            group: "".into(),
            version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("ns".into()),
            name: "s".into(),
        })
    }

    /// What the observation takes for a dry run that answers the live
    /// object byte for byte is what comparing the two would say.
    #[test]
    fn unchanged_is_the_plan_of_a_dry_run_equal_to_the_live_object() {
        for obj in [
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"k": "dg=="}, "status": {"x": 1}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
                   "labels": {"a": "b"}, "managedFields": [{"manager": "m"}]},
                   "data": {"k": "v"}}),
        ] {
            assert_eq!(
                plan_from(addr(), Some(&obj), &obj),
                ObjectPlan::unchanged(addr())
            );
        }
    }

    #[test]
    fn quotes_keys_that_are_not_words() {
        let p = ["metadata", "labels", "app.kubernetes.io/name"].map(String::from);
        assert_eq!(
            render_path(&p),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
    }

    #[test]
    fn secret_change_lists_the_key_not_the_value() {
        let live = json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","resourceVersion":"1"},
            "data":{"token":"b2xkLXRva2Vu","same":"eA=="}});
        let dry = json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","resourceVersion":"1"},
            "data":{"token":"bmV3LXRva2Vu","same":"eA==","added":"YWRkZWQ="}});
        let p = plan_from(addr(), Some(&live), &dry);
        assert_eq!(p.action, Action::Update);
        assert_eq!(p.before.get("data.token"), Some(&json!(SENSITIVE)));
        assert_eq!(p.after.get("data.token"), Some(&json!(SENSITIVE)));
        assert_eq!(p.after.get("data.added"), Some(&json!(SENSITIVE)));
        assert!(!p.after.contains_key("data.same"));
        assert_eq!(p.sensitive, vec!["data.added", "data.token"]);
        let text = format!("{p:?}");
        assert!(!text.contains("b2xk") && !text.contains("bmV3") && !text.contains("YWRk"));
    }

    #[test]
    fn server_fields_and_status_are_not_changes() {
        let live = json!({"kind":"X","metadata":{"name":"a","uid":"u1","resourceVersion":"5","generation":3,
            "managedFields":[{"manager":"other"}],"creationTimestamp":"t"},"spec":{"a":1},"status":{"ready":true}});
        let dry = json!({"kind":"X","metadata":{"name":"a","uid":"u1","resourceVersion":"6","generation":4,
            "managedFields":[{"manager":"certplane"}]},"spec":{"a":1}});
        assert_eq!(plan_from(addr(), Some(&live), &dry).action, Action::NoOp);
    }

    #[test]
    fn fields_named_like_server_fields_below_the_top_are_compared() {
        let live = json!({"kind":"X","metadata":{"name":"a","uid":"u1"},
            "spec":{"status":"on","metadata":{"uid":"x"},"kind":"A"},"status":{"ready":true}});
        let dry = json!({"apiVersion":"v2","kind":"Y","metadata":{"name":"a","uid":"u2"},
            "spec":{"status":"off","metadata":{"uid":"y"},"kind":"B"}});
        let p = plan_from(addr(), Some(&live), &dry);
        assert_eq!(p.action, Action::Update);
        let changed: Vec<&str> = p.after.keys().collect();
        assert_eq!(changed, ["spec.kind", "spec.metadata.uid", "spec.status"]);
        // A metadata of server-set fields only is shown without them.
        let live = json!({"kind":"X","metadata":{"uid":"u1","resourceVersion":"1"},"spec":{"a":1}});
        let dry = json!({"kind":"X","spec":{"a":1}});
        let p = plan_from(addr(), Some(&live), &dry);
        assert_eq!(p.before, Fields::from([("metadata", json!({}))]));
        assert!(p.after.is_empty());
        let created = plan_from(addr(), None, &live);
        let fields: Vec<&str> = created.after.keys().collect();
        assert_eq!(fields, ["metadata", "spec.a"]);
        assert_eq!(created.after.get("metadata"), Some(&json!({})));
    }

    #[test]
    fn removed_and_nested_added_fields_are_leaves() {
        let live = json!({"kind":"X","metadata":{"name":"a"},"spec":{"old":"x","list":[1,2]}});
        let dry = json!({"kind":"X","metadata":{"name":"a"},"spec":{"list":[1,3],"new":{"deep":{"v":true}}}});
        let p = plan_from(addr(), Some(&live), &dry);
        assert_eq!(
            p.before,
            Fields::from([("spec.old", json!("x")), ("spec.list", json!([1, 2]))])
        );
        assert_eq!(
            p.after,
            Fields::from([
                ("spec.new.deep.v", json!(true)),
                ("spec.list", json!([1, 3]))
            ])
        );
    }

    #[test]
    fn a_changed_last_applied_annotation_on_a_secret_is_masked() {
        let live = json!({"kind":"Secret","metadata":{"name":"s","annotations":{LAST_APPLIED:"{\"data\":{\"k\":\"b2xkLXZhbHVl\"}}"}}});
        let dry = json!({"kind":"Secret","metadata":{"name":"s","annotations":{}}});
        let p = plan_from(addr(), Some(&live), &dry);
        let path = format!("metadata.annotations[{:?}]", LAST_APPLIED);
        assert_eq!(p.before.get(&path), Some(&json!(SENSITIVE)), "{p:?}");
        assert!(!format!("{p:?}").contains("b2xk"));
    }

    fn managed(entries: Value) -> Value {
        json!({"kind":"X","metadata":{"name":"a","managedFields": entries},
            "spec":{"vault":{"path":"pki/sign/edited","server":"https://v"}}})
    }

    #[test]
    fn a_field_certplane_applied_that_another_manager_holds_is_drift() {
        let dry = json!({"kind":"X","metadata":{"name":"a"},
            "spec":{"vault":{"path":"pki/sign/web","server":"https://v"}}});
        let live = managed(json!([
            {"manager":"certplane","operation":"Apply","fieldsV1":{"f:spec":{"f:vault":{"f:server":{}}}}},
            {"manager":"kubectl-edit","operation":"Update","fieldsV1":{"f:spec":{"f:vault":{"f:path":{}}}}}
        ]));
        assert_eq!(
            changed_outside(&live, &dry, "certplane"),
            vec![(
                "spec.vault.path".to_string(),
                vec!["kubectl-edit".to_string()]
            )]
        );
        // Never applied by certplane: a first apply, no drift.
        let theirs = managed(json!([
            {"manager":"kubectl-edit","operation":"Update","fieldsV1":{"f:spec":{"f:vault":{"f:path":{}}}}}
        ]));
        assert!(changed_outside(&theirs, &dry, "certplane").is_empty());
        // Still held by certplane (shared with another): not drift.
        let shared = managed(json!([
            {"manager":"certplane","operation":"Apply","fieldsV1":{"f:spec":{"f:vault":{"f:path":{}}}}},
            {"manager":"other","operation":"Apply","fieldsV1":{"f:spec":{"f:vault":{"f:path":{}}}}}
        ]));
        assert!(changed_outside(&shared, &dry, "certplane").is_empty());
    }

    #[test]
    fn mask_secret_masks_values_and_last_applied() {
        let s = json!({"kind":"Secret","metadata":{"name":"s","annotations":{LAST_APPLIED:"{\"data\":{\"k\":\"c2VjcmV0\"}}"}},
            "data":{"k":"c2VjcmV0"},"stringData":{"p":"hunter2"}});
        let m = mask_secret(&s);
        assert_eq!(m["data"]["k"], json!(SENSITIVE));
        assert_eq!(m["stringData"]["p"], json!(SENSITIVE));
        assert_eq!(m["metadata"]["annotations"][LAST_APPLIED], json!(SENSITIVE));
        let cm = json!({"kind":"ConfigMap","data":{"k":"v"}});
        assert_eq!(mask_secret(&cm), cm);
    }
}
