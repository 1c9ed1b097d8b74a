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

use std::sync::OnceLock;

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
    Schema::new(schema).check(value)
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

/// A schema read once into the keywords [`check`] understands, for the
/// many objects of one kind: no keyword is looked up by name and no
/// pattern compiled again per value.
#[derive(Debug)]
pub struct Schema(Node);

impl Schema {
    /// Reads `schema` (an `openAPIV3Schema` or a part of one).
    pub fn new(schema: &Value) -> Schema {
        Schema(Node::new(schema))
    }

    /// Every structural problem of `value` against this schema.
    pub fn check(&self, value: &Value) -> Vec<SchemaError> {
        let mut out = Vec::new();
        walk(&self.0, value, Path::Root, &mut out);
        out
    }
}

/// The built-in schema of a cert-manager kind, read once.
pub fn builtin_schema(kind: &str) -> Option<&'static Schema> {
    static ISSUER: OnceLock<Schema> = OnceLock::new();
    static CERTIFICATE: OnceLock<Schema> = OnceLock::new();
    let cell = match kind {
        "Issuer" | "ClusterIssuer" => &ISSUER,
        "Certificate" => &CERTIFICATE,
        _ => return None,
    };
    let schema = builtin(kind)?;
    Some(cell.get_or_init(|| Schema::new(schema)))
}

/// What may stand under a key `properties` does not name.
#[derive(Debug)]
enum Additional {
    /// A field the schema does not know is refused.
    Refused,
    /// Anything goes (`additionalProperties: true` or
    /// `x-kubernetes-preserve-unknown-fields`).
    Anything,
    /// Checked against this schema.
    Schema(Box<Node>),
    /// Neither checked nor refused (no `properties` and not `type: object`).
    Unchecked,
}

/// One schema node: the keywords of [`check`], each read once.
#[derive(Debug)]
struct Node {
    int_or_string: bool,
    ty: Option<String>,
    enumeration: Option<Vec<Value>>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    /// The Go pattern as written, and what it compiled to.
    pattern: Option<(String, Result<Pattern, String>)>,
    byte: bool,
    any_of: Option<Vec<Node>>,
    one_of: Option<Vec<Node>>,
    exactly_one_of: Option<Vec<String>>,
    required: Vec<String>,
    /// Each of `properties`, sorted by name.
    properties: Vec<(String, Node)>,
    additional: Additional,
    items: Option<Box<Node>>,
}

impl Node {
    fn new(schema: &Value) -> Node {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let nodes = |v: &Value| v.as_array().map(|a| a.iter().map(Node::new).collect());
        let props = schema["properties"].as_object();
        let additional = &schema["additionalProperties"];
        let additional = if additional.is_object() {
            Additional::Schema(Box::new(Node::new(additional)))
        } else if additional == &Value::Bool(true)
            || schema["x-kubernetes-preserve-unknown-fields"] == true
        {
            Additional::Anything
        } else if props.is_some() || schema["type"] == "object" {
            Additional::Refused
        } else {
            Additional::Unchecked
        };
        Node {
            int_or_string: schema["x-kubernetes-int-or-string"] == true,
            ty: schema["type"].as_str().map(str::to_string),
            enumeration: schema["enum"].as_array().cloned(),
            max_length: schema["maxLength"].as_u64(),
            min_length: schema["minLength"].as_u64(),
            pattern: schema["pattern"].as_str().map(|re| {
                (
                    re.to_string(),
                    Pattern::parse(re).map_err(|e| e.to_string()),
                )
            }),
            byte: schema["format"] == "byte",
            any_of: nodes(&schema["anyOf"]),
            one_of: nodes(&schema["oneOf"]),
            exactly_one_of: schema["x-certplane-exactly-one-of"]
                .as_array()
                .map(|_| strings(&schema["x-certplane-exactly-one-of"])),
            required: strings(&schema["required"]),
            properties: {
                let mut ps: Vec<(String, Node)> = props
                    .map(|ps| ps.iter().map(|(k, v)| (k.clone(), Node::new(v))).collect())
                    .unwrap_or_default();
                ps.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                ps
            },
            additional,
            items: schema["items"]
                .is_object()
                .then(|| Box::new(Node::new(&schema["items"]))),
        }
    }

    /// The schema of the field `key`, if `properties` names it.
    fn property(&self, key: &str) -> Option<&Node> {
        self.properties
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.properties[i].1)
    }
}

/// Where a value is, written out only when a problem is found there:
/// `spec.dnsNames[2]`.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn is_root(&self) -> bool {
        matches!(self, Path::Root)
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !parent.is_root() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// Checks `value` at `path` against `schema`, then its fields or items
/// against theirs.
fn walk(schema: &Node, value: &Value, path: Path<'_>, out: &mut Vec<SchemaError>) {
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
            if let Some(item_schema) = &schema.items {
                for (i, v) in items.iter().enumerate() {
                    walk(item_schema, v, Path::Index(&path, i), out);
                }
            }
        }
        _ => {}
    }
}

/// `type` (or `x-kubernetes-int-or-string`): whether the value has it;
/// nothing more is checked of a value of the wrong type.
fn type_matches(schema: &Node, value: &Value, path: Path<'_>, out: &mut Vec<SchemaError>) -> bool {
    if schema.int_or_string {
        if !(value.is_string() || type_name(value) == "integer") {
            let path = path.to_string();
            out.push(problem(
                &path,
                format!(
                    "{}: wrong type: expected an integer or a string, got {}",
                    shown(&path),
                    type_name(value)
                ),
                "write a number or a quantity such as 100Mi",
            ));
            return false;
        }
    } else if let Some(want) = schema.ty.as_deref()
        && !type_ok(want, value)
    {
        let hint = match want {
            "string" => "quote the value: durations, names and numbers-as-text are strings",
            "array" => "write a list: `[a, b]` or one `- item` per line",
            "object" => "write a mapping of `key: value`",
            "boolean" => "write true or false",
            _ => "write a number without quotes",
        };
        let path = path.to_string();
        out.push(problem(
            &path,
            format!(
                "{}: wrong type: expected {want}, got {}",
                shown(&path),
                type_name(value)
            ),
            hint,
        ));
        return false;
    }
    true
}

/// `enum`: the value is one of the listed ones.
fn enumeration(schema: &Node, value: &Value, path: Path<'_>, out: &mut Vec<SchemaError>) {
    let Some(options) = &schema.enumeration else {
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
    let path = path.to_string();
    out.push(problem(
        &path,
        format!("{}: {got:?} is not an allowed value", shown(&path)),
        hint,
    ));
}

/// `maxLength`, `minLength`, `pattern` and `format: byte` of a string.
fn string(schema: &Node, s: &str, path: Path<'_>, out: &mut Vec<SchemaError>) {
    let len = || s.chars().count() as u64;
    if let Some(max) = schema.max_length
        && len() > max
    {
        let path = path.to_string();
        out.push(problem(
            &path,
            format!("{}: longer than {max} characters ({})", shown(&path), len()),
            format!("shorten it to at most {max} characters"),
        ));
    }
    if let Some(min) = schema.min_length
        && len() < min
    {
        let path = path.to_string();
        out.push(problem(
            &path,
            format!("{}: shorter than {min} character(s)", shown(&path)),
            "give it a value",
        ));
    }
    if let Some((re, compiled)) = &schema.pattern {
        match compiled {
            Ok(p) if !p.is_match(s) => {
                let path = path.to_string();
                out.push(problem(
                    &path,
                    format!("{}: {s:?} does not match the pattern {re}", shown(&path)),
                    "fix the value to the expected format",
                ));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(pattern = re, error = %e, "pattern not checked"),
        }
    }
    if schema.byte && !is_base64(s) {
        let path = path.to_string();
        out.push(problem(
            &path,
            format!("{}: not valid base64", shown(&path)),
            "this field holds base64-encoded bytes: encode the PEM, e.g. with `base64 -w0 ca.pem`",
        ));
    }
}

/// `anyOf` (at least one form) and `oneOf` (exactly one form).
fn alternatives(schema: &Node, value: &Value, path: Path<'_>, out: &mut Vec<SchemaError>) {
    for (any, options) in [(true, &schema.any_of), (false, &schema.one_of)] {
        let Some(options) = options else {
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
        let ok = if any { passing >= 1 } else { passing == 1 };
        if !ok {
            let path = path.to_string();
            out.push(problem(
                &path,
                format!("{}: does not match the allowed forms", shown(&path)),
                "check the value against the CRD",
            ));
        }
    }
}

/// `x-certplane-exactly-one-of`: the webhook's "exactly one of" rule.
fn exactly_one_of(
    schema: &Node,
    map: &serde_json::Map<String, Value>,
    path: Path<'_>,
    out: &mut Vec<SchemaError>,
) {
    let Some(names) = &schema.exactly_one_of else {
        return;
    };
    let set: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| map.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    if set.len() != 1 {
        let path = path.to_string();
        let message = if set.is_empty() {
            format!("{}: none of {} is set", shown(&path), names.join(", "))
        } else {
            format!("{}: {} are set together", shown(&path), set.join(" and "))
        };
        out.push(problem(
            &path,
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
    schema: &Node,
    map: &serde_json::Map<String, Value>,
    path: Path<'_>,
    out: &mut Vec<SchemaError>,
) {
    for r in &schema.required {
        if map.get(r).is_none_or(Value::is_null) {
            let path = path.to_string();
            out.push(problem(
                &path,
                format!("missing field {}", join(&path, r)),
                format!("add `{r}:` under {}", shown(&path)),
            ));
        }
    }
    for (k, v) in map {
        if path.is_root() && k == "metadata" {
            // ObjectMeta: validated by the API server itself, not by
            // the CRD's schema (which says only `type: object`).
            continue;
        }
        let p = Path::Key(&path, k);
        if let Some(sub) = schema.property(k) {
            walk(sub, v, p, out);
            continue;
        }
        match &schema.additional {
            Additional::Schema(sub) => walk(sub, v, p, out),
            Additional::Anything | Additional::Unchecked => {}
            Additional::Refused => {
                let known: Vec<&str> = schema.properties.iter().map(|(k, _)| k.as_str()).collect();
                let hint = match suggest::closest(k, known.iter().copied()) {
                    Some(c) => format!("did you mean {c}? allowed here: {}", known.join(", ")),
                    None if known.is_empty() => "remove it".to_string(),
                    None => format!("remove it; allowed here: {}", known.join(", ")),
                };
                out.push(problem(
                    &p.to_string(),
                    format!("unknown field {k} in {}", shown(&path.to_string())),
                    hint,
                ));
            }
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
    fn the_builtin_schemas_are_read_once_and_check_as_the_documents_do() {
        let cert = builtin_schema("Certificate").unwrap();
        assert!(std::ptr::eq(cert, builtin_schema("Certificate").unwrap()));
        assert!(std::ptr::eq(
            builtin_schema("Issuer").unwrap(),
            builtin_schema("ClusterIssuer").unwrap()
        ));
        assert!(builtin_schema("Ingress").is_none());
        let bad = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "x"},
            "spec": {"secretName": "x", "dnsNames": ["a", 7], "duration": 5,
                "privateKey": {"algorithm": "ECDSAA"}, "issuerRef": {"name": "i"},
                "usages": ["server auth", "nope"], "secretNam": "y"}});
        let errs = cert.check(&bad);
        assert_eq!(errs, check(builtin("Certificate").unwrap(), &bad));
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "spec.dnsNames[1]",
            "spec.duration",
            "spec.privateKey.algorithm",
            "spec.usages[1]",
            "spec.secretNam",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
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
