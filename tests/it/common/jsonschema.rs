//! A JSON Schema checker for the keywords certplane's schemas use (those
//! schemars writes, plus `const`, `pattern` and `maxItems`): `$ref` into
//! `$defs`, `type`, `properties`, `required`, `additionalProperties`,
//! `items`, `enum`, `const`, `oneOf`, `anyOf`, `allOf`, `not`, `pattern`,
//! `minimum`, `maxItems`, `minLength`. A keyword it does not know fails the
//! check (so a schema cannot silently pass by using one), except
//! annotations (`title`, `description`, `default`, `format`, `$schema`,
//! `examples`, `x-*`).

use serde_json::{Map, Value};

/// Every place `doc` breaks `schema` (empty: valid), each as
/// `<JSON pointer>: <why>`.
pub fn errors(schema: &Value, doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, doc, "", &mut out);
    out
}

/// Panics naming every place `doc` breaks `schema`.
#[track_caller]
pub fn assert_valid(schema: &Value, doc: &Value, what: &str) {
    let errs = errors(schema, doc);
    assert!(
        errs.is_empty(),
        "{what} does not match its schema:\n  {}\n{doc:#}",
        errs.join("\n  ")
    );
}

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "format",
    "$schema",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let obj: &Map<String, Value> = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            out.push(format!("{at}: no value is allowed here"));
            return;
        }
        Value::Object(o) => o,
        _ => {
            out.push(format!(
                "{at}: the schema is neither an object nor a boolean"
            ));
            return;
        }
    };
    for (k, s) in obj {
        match k.as_str() {
            "$ref" => {
                let name = s.as_str().and_then(|r| r.strip_prefix("#/$defs/"));
                match name.and_then(|n| root.get("$defs").and_then(|d| d.get(n))) {
                    Some(def) => check(root, def, v, at, out),
                    None => out.push(format!("{at}: unresolved $ref {s}")),
                }
            }
            "$defs" => {}
            "type" => {
                let ok = match s {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
                    _ => false,
                };
                if !ok {
                    out.push(format!("{at}: {v} is not of type {s}"));
                }
            }
            "properties" => {
                if let (Some(props), Some(o)) = (s.as_object(), v.as_object()) {
                    for (name, ps) in props {
                        if let Some(x) = o.get(name) {
                            check(root, ps, x, &format!("{at}/{name}"), out);
                        }
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in s.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !o.contains_key(r) {
                            out.push(format!("{at}: missing required {r}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = obj.get("properties").and_then(Value::as_object);
                    for (name, x) in o {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        if s == &Value::Bool(false) {
                            out.push(format!("{at}: unknown property {name}"));
                        } else {
                            check(root, s, x, &format!("{at}/{name}"), out);
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, x) in a.iter().enumerate() {
                        check(root, s, x, &format!("{at}/{i}"), out);
                    }
                }
            }
            "enum" => {
                if !s.as_array().is_some_and(|e| e.contains(v)) {
                    out.push(format!("{at}: {v} is not one of {s}"));
                }
            }
            "const" => {
                if s != v {
                    out.push(format!("{at}: {v} is not {s}"));
                }
            }
            "oneOf" | "anyOf" => {
                let alts = s.as_array().map(Vec::as_slice).unwrap_or_default();
                let matching = alts
                    .iter()
                    .filter(|a| errors_at(root, a, v).is_empty())
                    .count();
                let ok = if k == "oneOf" {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    let why: Vec<String> = alts
                        .iter()
                        .map(|a| errors_at(root, a, v).join("; "))
                        .collect();
                    out.push(format!(
                        "{at}: {matching} of the {} alternatives of {k} match ({})",
                        alts.len(),
                        why.join(" | ")
                    ));
                }
            }
            "allOf" => {
                for a in s.as_array().into_iter().flatten() {
                    check(root, a, v, at, out);
                }
            }
            "not" => {
                if errors_at(root, s, v).is_empty() {
                    out.push(format!("{at}: matches what `not` excludes"));
                }
            }
            "pattern" => {
                if let (Some(p), Some(text)) = (s.as_str(), v.as_str()) {
                    match regex::Regex::new(p) {
                        Ok(re) if re.is_match(text) => {}
                        Ok(_) => out.push(format!("{at}: {text:?} does not match {p}")),
                        Err(e) => out.push(format!("{at}: bad pattern {p}: {e}")),
                    }
                }
            }
            "minimum" => {
                if let (Some(min), Some(x)) = (s.as_f64(), v.as_f64())
                    && x < min
                {
                    out.push(format!("{at}: {x} is below {min}"));
                }
            }
            "maxItems" => {
                if let (Some(max), Some(a)) = (s.as_u64(), v.as_array())
                    && a.len() as u64 > max
                {
                    out.push(format!("{at}: more than {max} items"));
                }
            }
            "minLength" => {
                if let (Some(min), Some(t)) = (s.as_u64(), v.as_str())
                    && (t.chars().count() as u64) < min
                {
                    out.push(format!("{at}: shorter than {min}"));
                }
            }
            k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
            other => out.push(format!(
                "{at}: the checker does not know the keyword {other}"
            )),
        }
    }
}

fn errors_at(root: &Value, schema: &Value, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(root, schema, v, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_checker_finds_what_breaks_a_schema() {
        let schema = json!({
            "$defs": {"V": {"type": "string", "const": "1"}},
            "type": "object",
            "required": ["v", "n"],
            "additionalProperties": false,
            "properties": {
                "v": {"$ref": "#/$defs/V"},
                "n": {"type": ["integer", "null"], "minimum": 0},
                "l": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                "h": {"type": "string", "pattern": "^[0-9a-f]{4}$"},
                "o": {"oneOf": [{"required": ["x"]}, {"required": ["y"]}]}
            }
        });
        assert!(
            errors(
                &schema,
                &json!({"v": "1", "n": null, "l": ["a"], "h": "00ff", "o": {"x": 1}})
            )
            .is_empty()
        );
        for bad in [
            json!({"v": 1, "n": 0}),
            json!({"v": "1"}),
            json!({"v": "1", "n": -1}),
            json!({"v": "1", "n": 0, "extra": true}),
            json!({"v": "1", "n": 0, "l": ["c"]}),
            json!({"v": "1", "n": 0, "l": ["a", "a", "a"]}),
            json!({"v": "1", "n": 0, "h": "xyz"}),
            json!({"v": "1", "n": 0, "o": {"x": 1, "y": 2}}),
        ] {
            assert!(!errors(&schema, &bad).is_empty(), "{bad} passed");
        }
        assert!(!errors(&json!({"unknownKeyword": 1}), &json!(1)).is_empty());
    }
}
