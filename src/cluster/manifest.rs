//! What every cluster provider does to a manifest before planning it: its
//! address, the repository label, why the plan shows it (what it was
//! generated from, the privilege a ClusterRoleBinding grants), and the
//! order kinds are applied in.

use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::{Map, Value, json};

use super::inventory::REPOSITORY_LABEL;
use super::prune::apply_rank;
use crate::addr::{Addr, KubeRef};
use crate::plan::{Action, Change, PlanNote};
use crate::state::ResourceKind;

/// The identity of a manifest as written (no discovery: a namespaced object
/// without a namespace keeps `None`).
pub fn kube_ref(manifest: &Value) -> KubeRef {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    KubeRef {
        group: group.to_string(),
        version: version.to_string(),
        kind: manifest["kind"].as_str().unwrap_or_default().to_string(),
        namespace: manifest["metadata"]["namespace"]
            .as_str()
            .map(str::to_string),
        name: manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `manifest` labelled as the repository `identity`'s
/// (`certplane.dev/repository`). A Namespace is left as written: several
/// repositories often declare the same one, and its ownership is read from
/// the inventories instead.
pub fn owned_manifest(manifest: &Value, identity: &str) -> Value {
    let mut m = manifest.clone();
    if is_namespace(&m) {
        return m;
    }
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if labels.is_null() {
            *labels = json!({});
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(REPOSITORY_LABEL.into(), json!(identity));
        }
    }
    m
}

/// A manifest as [`owned_manifest`] makes it, serialized without making
/// it: the repository label is written into `metadata.labels` on the way
/// out. A plan sends each of its manifests this way, and copies only those
/// it changes.
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a> {
    /// The manifest as written.
    pub manifest: &'a Value,
    /// The repository identity to label it with; `None`: as written.
    pub identity: Option<&'a str>,
}

impl<'a> Labelled<'a> {
    /// `manifest` as it is written (already labelled, or never to be).
    pub fn as_written(manifest: &'a Value) -> Labelled<'a> {
        Labelled {
            manifest,
            identity: None,
        }
    }

    /// The same label on another manifest (the one sent for this one).
    pub fn on(self, manifest: &'a Value) -> Labelled<'a> {
        Labelled { manifest, ..self }
    }

    /// The manifest as [`owned_manifest`] makes it (a copy).
    pub fn to_owned_manifest(self) -> Value {
        match self.identity {
            Some(identity) => owned_manifest(self.manifest, identity),
            None => self.manifest.clone(),
        }
    }
}

impl Serialize for Labelled<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (Some(identity), Some(top)) = (self.identity, self.manifest.as_object()) else {
            return self.manifest.serialize(s);
        };
        if is_namespace(self.manifest) || !top.get("metadata").is_some_and(Value::is_object) {
            return self.manifest.serialize(s);
        }
        let mut map = s.serialize_map(Some(top.len()))?;
        for (k, v) in top {
            match v {
                Value::Object(meta) if k == "metadata" => {
                    map.serialize_entry(k, &LabelledMeta { meta, identity })?;
                }
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// `metadata` with the repository label (as [`owned_manifest`] has it: a
/// `labels` that is neither a map nor null stays as written).
struct LabelledMeta<'a> {
    meta: &'a Map<String, Value>,
    identity: &'a str,
}

impl Serialize for LabelledMeta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let identity = self.identity;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.meta {
            match v {
                Value::Object(labels) if k == "labels" => {
                    map.serialize_entry(k, &Labels { labels, identity })?;
                }
                Value::Null if k == "labels" => {
                    map.serialize_entry(k, &Labels::ours(identity))?;
                }
                _ => map.serialize_entry(k, v)?,
            }
        }
        if !self.meta.contains_key("labels") {
            map.serialize_entry("labels", &Labels::ours(identity))?;
        }
        map.end()
    }
}

/// `labels` with the repository label set to `identity`.
struct Labels<'a> {
    labels: &'a Map<String, Value>,
    identity: &'a str,
}

impl<'a> Labels<'a> {
    /// The repository label alone.
    fn ours(identity: &'a str) -> Labels<'a> {
        static NONE: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        Labels {
            labels: &NONE,
            identity,
        }
    }
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.labels.iter().filter(|(k, _)| *k != REPOSITORY_LABEL) {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry(REPOSITORY_LABEL, self.identity)?;
        map.end()
    }
}

/// Whether `m` is a Namespace (never labelled: see [`owned_manifest`]).
pub fn is_namespace(m: &Value) -> bool {
    m["apiVersion"] == "v1" && m["kind"] == "Namespace"
}

/// Why the plan shows a manifest: what it was generated from, and what a
/// ClusterRoleBinding grants.
pub fn generated_from(manifest: &Value) -> Option<String> {
    let from = manifest["metadata"]["annotations"][crate::expand::GENERATED_FROM]
        .as_str()
        .map(|f| format!("generated from {f}"));
    match (from, privilege(manifest)) {
        (Some(f), Some(p)) => Some(format!("{f}; {p}")),
        (f, p) => f.or(p),
    }
}

/// What a ClusterRoleBinding grants, said in the plan: a cluster-wide
/// privilege is never applied without being shown.
fn privilege(manifest: &Value) -> Option<String> {
    if manifest["kind"] != "ClusterRoleBinding" {
        return None;
    }
    let role = manifest["roleRef"]["name"].as_str()?;
    let subjects: Vec<String> = manifest["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let kind = s["kind"].as_str().unwrap_or_default();
            match s["namespace"].as_str() {
                Some(ns) => format!("{kind} {ns}/{}", s["name"].as_str().unwrap_or_default()),
                None => format!("{kind} {}", s["name"].as_str().unwrap_or_default()),
            }
        })
        .collect();
    let what = if role == crate::expand::AUTH_DELEGATOR {
        " (create TokenReviews and SubjectAccessReviews: what Vault's Kubernetes auth needs to check tokens)"
    } else {
        ""
    };
    Some(format!(
        "grants ClusterRole {role}{what} cluster-wide to {}",
        subjects.join(", ")
    ))
}

/// A cluster change with nothing but its address, action and manifest.
pub fn change(addr: Addr, action: Action, manifest: Option<Value>) -> Change {
    Change {
        addr,
        kind: ResourceKind::ClusterObject,
        action,
        before: None,
        after: None,
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: Default::default(),
        manifest: manifest.map(Box::new),
    }
}

/// Where a change goes in apply order (kind order; Vault first).
pub fn rank(c: &Change) -> u8 {
    match &c.addr {
        Addr::Kube(k) => apply_rank(&k.group, &k.kind),
        Addr::Vault(_) => 0,
    }
}

/// What planning the cluster half found.
#[derive(Debug, Default)]
pub struct ClusterPlan {
    /// Changes, in apply order (deletes last, in reverse order).
    pub changes: Vec<Change>,
    /// Objects that left the repository and stay.
    pub notes: Vec<PlanNote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_labelled_with_the_repository_but_namespaces_are_not() {
        let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "vi", "labels": {"team": "a"}}});
        let labelled = owned_manifest(&issuer, "homelab");
        assert_eq!(labelled["metadata"]["labels"]["team"], "a");
        assert_eq!(labelled["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
        let bare = owned_manifest(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": null}}),
            "homelab",
        );
        assert_eq!(bare["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}});
        assert_eq!(owned_manifest(&ns, "homelab"), ns);
    }

    #[test]
    fn a_labelled_manifest_is_sent_as_the_labelled_copy_reads() {
        let cases = [
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                "metadata": {"name": "vi", "labels": {"team": "a", "z": "b"}}, "spec": {"x": 1}}),
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                "metadata": {"name": "vi"}, "spec": {}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": null},
                "data": {"k": "dg=="}}),
            // Another repository's label is replaced, not kept beside ours.
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {(REPOSITORY_LABEL): "other", "a": "b"}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": "not a map"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "not a map"}),
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}}),
            json!(["not", "an", "object"]),
        ];
        for m in &cases {
            let sent = Labelled {
                manifest: m,
                identity: Some("homelab"),
            };
            let read = serde_json::to_value(sent).expect("serializes");
            assert_eq!(read, owned_manifest(m, "homelab"), "{m}");
            assert_eq!(read, sent.to_owned_manifest(), "{m}");
            let bytes = serde_json::to_vec(&sent).expect("serializes");
            assert_eq!(
                serde_json::from_slice::<Value>(&bytes).expect("JSON"),
                read,
                "{m}"
            );
            assert_eq!(
                serde_json::to_value(Labelled::as_written(m)).expect("serializes"),
                *m
            );
        }
    }
}
