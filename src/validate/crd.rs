//! Structural validation of cert-manager objects against an OpenAPI v3
//! schema, as a Kubernetes API server does for a CRD (with strict field
//! validation, as `kubectl apply` and server-side apply with
//! `fieldValidation=Strict` ask for).
//!
//! [`check`] takes any CRD `openAPIV3Schema` as a `serde_json::Value` and
//! understands the keywords cert-manager's CRDs use: `type` (with
//! `x-kubernetes-int-or-string`), `required`, `properties` with unknown-field
//! rejection unless `additionalProperties` or
//! `x-kubernetes-preserve-unknown-fields` allow them, `enum`, `pattern` (see
//! [`super::pattern`]), `minLength`/`maxLength`, `format: byte`, `items`,
//! `anyOf`/`oneOf`. `null` is treated as absent (the API server prunes it).
//!
//! certplane cannot read the CRDs at run time, so [`builtin`] embeds a
//! compact schema set for the fields certplane understands (see
//! [`crate::model::schema::cert_manager`]); `tests/crd_agreement.rs` checks
//! it against the real CRDs. The built-in set adds one keyword of its own,
//! `x-certplane-exactly-one-of`, for the rules cert-manager's validating
//! webhook enforces and the CRD cannot express (one issuer type, one Vault
//! auth method, one Kubernetes token source).

use serde_json::Value;

use super::pattern::Pattern;
use crate::diagnostic::suggest;
pub use crate::model::schema::cert_manager::builtin;

/// A structural problem: the dotted path of the offending field (as in
/// [`crate::model::Origin::at`]), what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    /// `spec.vault.path`, `spec.dnsNames[2]`.
    pub path: String,
    /// Lowercase, no trailing period.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// The `openAPIV3Schema` of the served version `version` (or of the
/// storage version when `version` is `None`) of a CRD document.
pub fn crd_schema<'a>(crd: &'a Value, version: Option<&str>) -> Option<&'a Value> {
    let versions = crd.pointer("/spec/versions")?.as_array()?;
    let v = versions.iter().find(|v| match version {
        Some(want) => v["name"] == want,
        None => v["storage"] == true,
    })?;
    v.pointer("/schema/openAPIV3Schema")
}

/// Every structural problem of `value` against `schema`.
pub fn check(schema: &Value, value: &Value) -> Vec<SchemaError> {
    let mut out = Vec::new();
    walk(schema, value, "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "number" => v.is_number(),
        other => type_name(v) == other,
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "the object" } else { path }
}

fn is_base64(s: &str) -> bool {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .is_ok()
}

/// A problem at `path`.
fn problem(path: &str, message: String, hint: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_string(),
        message,
        hint: hint.into(),
    }
}

/// Checks `value` at `path` against `schema`, then its fields or items
/// against theirs.
fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<SchemaError>) {
    if value.is_null() {
        return;
    }
    if !type_matches(schema, value, path, out) {
        return;
    }
    enumeration(schema, value, path, out);
    if let Value::String(s) = value {
        string(schema, s, path, out);
    }
    alternatives(schema, value, path, out);
    match value {
        Value::Object(map) => {
            exactly_one_of(schema, map, path, out);
            object(schema, map, path, out);
        }
        Value::Array(items) => {
            let item_schema = &schema["items"];
            if item_schema.is_object() {
                for (i, v) in items.iter().enumerate() {
                    walk(item_schema, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// `type` (or `x-kubernetes-int-or-string`): whether the value has it;
/// nothing more is checked of a value of the wrong type.
fn type_matches(schema: &Value, value: &Value, path: &str, out: &mut Vec<SchemaError>) -> bool {
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || type_name(value) == "integer") {
            out.push(problem(
                path,
                format!(
                    "{}: wrong type: expected an integer or a string, got {}",
                    shown(path),
                    type_name(value)
                ),
                "write a number or a quantity such as 100Mi",
            ));
            return false;
        }
    } else if let Some(want) = schema["type"].as_str()
        && !type_ok(want, value)
    {
        let hint = match want {
            "string" => "quote the value: durations, names and numbers-as-text are strings",
            "array" => "write a list: `[a, b]` or one `- item` per line",
            "object" => "write a mapping of `key: value`",
            "boolean" => "write true or false",
            _ => "write a number without quotes",
        };
        out.push(problem(
            path,
            format!(
                "{}: wrong type: expected {want}, got {}",
                shown(path),
                type_name(value)
            ),
            hint,
        ));
        return false;
    }
    true
}

/// `enum`: the value is one of the listed ones.
fn enumeration(schema: &Value, value: &Value, path: &str, out: &mut Vec<SchemaError>) {
    let Some(options) = schema["enum"].as_array() else {
        return;
    };
    if options.contains(value) {
        return;
    }
    let names: Vec<String> = options
        .iter()
        .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
        .collect();
    let got = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    let hint = match suggest::closest(&got, names.iter().map(String::as_str)) {
        Some(c) => format!("did you mean {c}? allowed: {}", names.join(", ")),
        None => format!("allowed: {}", names.join(", ")),
    };
    out.push(problem(
        path,
        format!("{}: {got:?} is not an allowed value", shown(path)),
        hint,
    ));
}

/// `maxLength`, `minLength`, `pattern` and `format: byte` of a string.
fn string(schema: &Value, s: &str, path: &str, out: &mut Vec<SchemaError>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64()
        && len > max
    {
        out.push(problem(
            path,
            format!("{}: longer than {max} characters ({len})", shown(path)),
            format!("shorten it to at most {max} characters"),
        ));
    }
    if let Some(min) = schema["minLength"].as_u64()
        && len < min
    {
        out.push(problem(
            path,
            format!("{}: shorter than {min} character(s)", shown(path)),
            "give it a value",
        ));
    }
    if let Some(re) = schema["pattern"].as_str() {
        match Pattern::parse(re) {
            Ok(p) if !p.is_match(s) => out.push(problem(
                path,
                format!("{}: {s:?} does not match the pattern {re}", shown(path)),
                "fix the value to the expected format",
            )),
            Ok(_) => {}
            Err(e) => tracing::debug!(pattern = re, error = %e, "pattern not checked"),
        }
    }
    if schema["format"] == "byte" && !is_base64(s) {
        out.push(problem(
            path,
            format!("{}: not valid base64", shown(path)),
            "this field holds base64-encoded bytes: encode the PEM, e.g. with `base64 -w0 ca.pem`",
        ));
    }
}

/// `anyOf` (at least one form) and `oneOf` (exactly one form).
fn alternatives(schema: &Value, value: &Value, path: &str, out: &mut Vec<SchemaError>) {
    for keyword in ["anyOf", "oneOf"] {
        let Some(options) = schema[keyword].as_array() else {
            continue;
        };
        let passing = options
            .iter()
            .filter(|o| {
                let mut sub = Vec::new();
                walk(o, value, path, &mut sub);
                sub.is_empty()
            })
            .count();
        let ok = if keyword == "anyOf" {
            passing >= 1
        } else {
            passing == 1
        };
        if !ok {
            out.push(problem(
                path,
                format!("{}: does not match the allowed forms", shown(path)),
                "check the value against the CRD",
            ));
        }
    }
}

/// `x-certplane-exactly-one-of`: the webhook's "exactly one of" rule.
fn exactly_one_of(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<SchemaError>,
) {
    let Some(groups) = schema["x-certplane-exactly-one-of"].as_array() else {
        return;
    };
    let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
    let set: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| map.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    if set.len() != 1 {
        let message = if set.is_empty() {
            format!("{}: none of {} is set", shown(path), names.join(", "))
        } else {
            format!("{}: {} are set together", shown(path), set.join(" and "))
        };
        out.push(problem(
            path,
            message,
            format!(
                "set exactly one of {} (cert-manager's webhook rejects anything else)",
                names.join(", ")
            ),
        ));
    }
}

/// `required` fields, then each field against its schema; a field the
/// schema does not know is refused unless `additionalProperties` or
/// `x-kubernetes-preserve-unknown-fields` let it in.
fn object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<SchemaError>,
) {
    if let Some(req) = schema["required"].as_array() {
        for r in req.iter().filter_map(Value::as_str) {
            if map.get(r).is_none_or(Value::is_null) {
                out.push(problem(
                    path,
                    format!("missing field {}", join(path, r)),
                    format!("add `{r}:` under {}", shown(path)),
                ));
            }
        }
    }
    let props = schema["properties"].as_object();
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    let additional = &schema["additionalProperties"];
    for (k, v) in map {
        if path.is_empty() && k == "metadata" {
            // ObjectMeta: validated by the API server itself, not by
            // the CRD's schema (which says only `type: object`).
            continue;
        }
        let p = join(path, k);
        if let Some(sub) = props.and_then(|ps| ps.get(k)) {
            walk(sub, v, &p, out);
        } else if additional.is_object() {
            walk(additional, v, &p, out);
        } else if additional == &Value::Bool(true) || preserve {
            // Anything goes.
        } else if props.is_some() || schema["type"] == "object" {
            let known: Vec<&str> = props
                .map(|ps| ps.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let hint = match suggest::closest(k, known.iter().copied()) {
                Some(c) => format!("did you mean {c}? allowed here: {}", known.join(", ")),
                None if known.is_empty() => "remove it".to_string(),
                None => format!("remove it; allowed here: {}", known.join(", ")),
            };
            out.push(problem(
                &p,
                format!("unknown field {k} in {}", shown(path)),
                hint,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_type_required_unknown_enum_and_length() {
        let schema = json!({"type": "object", "required": ["spec"], "properties": {
        "spec": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 3},
            "algo": {"type": "string", "enum": ["RSA", "ECDSA"]},
            "list": {"type": "array", "items": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
        }}}});
        let errs = check(
            &schema,
            &json!({"spec": {"name": "long", "algo": "ECDSA256", "list": ["a", 1],
                "free": {"x": 1}, "map": {"a": "b", "c": 2}, "nam": "x"}}),
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.algo",
                "spec.list[1]",
                "spec.map.c",
                "spec.nam",
                "spec.name"
            ]
        );
        assert!(errs[0].hint.contains("ECDSA"), "{:?}", errs[0]);
        assert!(errs[3].hint.contains("did you mean name"), "{:?}", errs[3]);
        let errs = check(&schema, &json!({"spec": {"name": null}}));
        assert_eq!(errs[0].message, "missing field spec.name");
    }

    #[test]
    fn exactly_one_of_is_the_webhook_rule() {
        let schema = json!({"type": "object", "x-certplane-exactly-one-of": ["a", "b"],
            "properties": {"a": {"type": "object"}, "b": {"type": "object"}}});
        assert!(check(&schema, &json!({"a": {}})).is_empty());
        assert_eq!(check(&schema, &json!({"a": {}, "b": {}})).len(), 1);
        assert_eq!(check(&schema, &json!({})).len(), 1);
    }

    #[test]
    fn int_or_string_and_byte_format() {
        let schema = json!({"type": "object", "properties": {
            "q": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "b": {"type": "string", "format": "byte"}}});
        assert!(check(&schema, &json!({"q": 1, "b": "UEVN"})).is_empty());
        assert_eq!(check(&schema, &json!({"q": true})).len(), 1);
        assert_eq!(check(&schema, &json!({"b": "not base64!"})).len(), 1);
    }
}
