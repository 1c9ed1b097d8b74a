//! JSON Schemas of every certplane kind, generated from the Rust types, and
//! the built-in schemas of the cert-manager kinds certplane reads
//! ([`cert_manager`]).
//!
//! The files under `schemas/` are these, checked in; `tests/schemas.rs`
//! fails when they are stale (`CERTPLANE_UPDATE_SCHEMAS=1 cargo test --test
//! schemas` rewrites them). Editors use them through a
//! `# yaml-language-server: $schema=...` line at the top of each file.

pub mod cert_manager;
pub mod reference;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::model::{API_VERSION, ConfigSpec, Document, VaultIssuerSpec};

/// The file holding every kind at once (`oneOf`), for multi-kind files.
pub const COMBINED: &str = "certplane.json";

/// The schema file name of a kind (`PkiMount` -> `pkimount.json`).
pub fn file_name(kind: &str) -> String {
    format!("{}.json", kind.to_lowercase())
}

/// The schema of `Document<S>` with `apiVersion` and `kind` pinned.
fn kind_schema<S: JsonSchema>(kind: &str, needs_name: bool) -> Value {
    pinned(kind, schemars::schema_for!(Document<S>), needs_name)
}

/// A document's schema with `apiVersion` and `kind` pinned (and
/// `metadata` required when the kind needs a name).
fn pinned(kind: &str, schema: schemars::Schema, needs_name: bool) -> Value {
    let mut v = schema.to_value();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("title".into(), json!(kind));
        obj.insert(
            "description".into(),
            json!(format!("certplane {kind} ({API_VERSION})")),
        );
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "apiVersion".into(),
                json!({"description": "Always certplane.dev/v1alpha1.", "type": "string", "const": API_VERSION}),
            );
            props.insert(
                "kind".into(),
                json!({"description": "The kind.", "type": "string", "const": kind}),
            );
        }
        if needs_name && let Some(req) = obj.get_mut("required").and_then(Value::as_array_mut) {
            if !req.iter().any(|r| r == "metadata") {
                req.push(json!("metadata"));
            }
            req.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    v
}

/// Every kind's schema by file name, sorted, then the combined schema.
pub fn all() -> Vec<(String, Value)> {
    // Every Vault kind (the one list in `crate::model`), then the others.
    let mut kinds: Vec<(String, Value)> = crate::model::vault_document_schemas()
        .into_iter()
        .map(|(kind, schema)| (kind, pinned(kind, schema, true)))
        .chain([
            ("Config", kind_schema::<ConfigSpec>("Config", false)),
            (
                "VaultIssuer",
                kind_schema::<VaultIssuerSpec>("VaultIssuer", true),
            ),
        ])
        .map(|(k, v)| (file_name(k), v))
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    let combined = combine(&kinds);
    kinds.push((COMBINED.to_string(), combined));
    kinds.push((CLUSTER.to_string(), cluster()));
    kinds
}

/// The file for cluster manifests: cert-manager's Issuer, ClusterIssuer and
/// Certificate from the built-in schemas of [`cert_manager`] (their
/// `x-kubernetes-*` keywords are ignored by editors), any other Kubernetes
/// object loosely.
pub const CLUSTER: &str = "cluster.json";

fn cluster() -> Value {
    let kinds = ["Issuer", "ClusterIssuer", "Certificate"];
    let mut one_of: Vec<Value> = kinds
        .iter()
        .filter_map(|k| {
            let mut s = cert_manager::builtin(k)?.clone();
            s["properties"]["apiVersion"] = json!({"const": "cert-manager.io/v1"});
            s["properties"]["kind"] = json!({"const": k});
            Some(s)
        })
        .collect();
    one_of.push(json!({
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "not": {
            "properties": {
                "apiVersion": {"const": "cert-manager.io/v1"},
                "kind": {"enum": kinds},
            },
            "required": ["apiVersion", "kind"],
        },
    }));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cluster",
        "description": "A Kubernetes manifest in a certplane repository (cert-manager kinds checked)",
        "oneOf": one_of,
    })
}

/// One schema accepting any kind: `oneOf` the kinds, their `$defs` merged.
fn combine(kinds: &[(String, Value)]) -> Value {
    let mut defs = Map::new();
    let mut one_of = Vec::new();
    let mut dialect = Value::Null;
    for (_, schema) in kinds {
        let mut s = schema.clone();
        if let Some(obj) = s.as_object_mut() {
            if let Some(d) = obj.remove("$schema") {
                dialect = d;
            }
            if let Some(Value::Object(d)) = obj.remove("$defs") {
                for (k, v) in d {
                    defs.entry(k).or_insert(v);
                }
            }
        }
        one_of.push(s);
    }
    json!({
        "$schema": dialect,
        "title": "certplane",
        "description": format!("Any certplane document ({API_VERSION})"),
        "oneOf": one_of,
        "$defs": defs,
    })
}

/// The text of a schema file: pretty JSON and a final newline.
pub fn render(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_api_version_and_kind() {
        let all = all();
        let (_, role) = all.iter().find(|(n, _)| n == "pkirole.json").unwrap();
        assert_eq!(role["properties"]["kind"]["const"], "PkiRole");
        assert_eq!(role["properties"]["apiVersion"]["const"], API_VERSION);
        assert!(
            role["required"]
                .as_array()
                .unwrap()
                .contains(&json!("metadata"))
        );
        let (_, combined) = all.iter().find(|(n, _)| n == COMBINED).unwrap();
        assert_eq!(
            combined["oneOf"].as_array().unwrap().len(),
            crate::model::VAULT_KINDS.len() + 2,
            "every Vault kind, Config and VaultIssuer"
        );
    }
}
