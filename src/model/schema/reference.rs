//! `docs/reference.md`: every kind and field, and both machine formats,
//! written from the JSON Schemas (the files of `schemas/`), so the reference
//! says what the binary accepts and writes.
//!
//! A test regenerates it and fails when the committed file differs (`make
//! docs` rewrites it). Each schema becomes a table of its fields by dotted
//! path (`spec.ca.intermediate.signedBy`), with type, whether it is required
//! and the description the Rust type's doc comment gave it. Types used
//! across kinds that are not objects of their own (`Duration`, `Source`)
//! are described once, under "Common types", and linked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{CLUSTER, COMBINED};

/// The machine formats' schema files, documented after the kinds.
const MACHINE: [&str; 2] = ["plan-output.json", "plan-file.json"];

/// The whole reference, from every schema file by name (as written to
/// `schemas/`).
pub fn markdown(files: &[(String, Value)]) -> String {
    let kinds: Vec<&(String, Value)> = files
        .iter()
        .filter(|(n, _)| n != COMBINED && n != CLUSTER && !MACHINE.contains(&n.as_str()))
        .collect();
    let machine: Vec<&(String, Value)> = MACHINE
        .iter()
        .filter_map(|m| files.iter().find(|(n, _)| n == m))
        .collect();
    let common = common_defs(&kinds);

    let mut out = String::new();
    out.push_str(
        "<!-- Generated from the JSON Schemas in schemas/ (the Rust types): do not edit. Run `make docs`. -->\n\n\
         # certplane reference\n\n\
         Every kind of a certplane repository and every field, then the two machine formats. \
         This page is generated from the JSON Schemas in [`schemas/`](../schemas/) \
         (`certplane schemas DIR` writes the same files), which are generated from the types \
         certplane reads: a test fails when either is stale. What the fields mean together, \
         and what `validate` checks across objects, is in [the format](format.md) and \
         [the cross-checks](cross-checks.md).\n\n\
         A field that is not written is not managed: certplane leaves whatever Vault has there. \
         Field names are camelCase; each maps to the Vault API parameter of the same meaning \
         (snake_case). Cluster objects (cert-manager `Issuer`, `ClusterIssuer`, `Certificate`, \
         and any other Kubernetes manifest) follow their own API; `schemas/cluster.json` \
         checks the cert-manager kinds in editors.\n\n",
    );
    out.push_str("## Kinds\n\n| kind | schema | description |\n|---|---|---|\n");
    for (name, schema) in &kinds {
        let title = title(schema, name);
        let _ = writeln!(
            out,
            "| [`{title}`](#{}) | [`schemas/{name}`](../schemas/{name}) | {} |",
            anchor(&title),
            cell(&first_sentence(&kind_description(schema)))
        );
    }
    let _ = writeln!(
        out,
        "\nEvery kind at once (for files holding several kinds): [`schemas/{COMBINED}`](../schemas/{COMBINED}).\n"
    );

    for (name, schema) in &kinds {
        let title = title(schema, name);
        let _ = writeln!(out, "## {title}\n");
        let desc = kind_description(schema);
        if !desc.is_empty() {
            let _ = writeln!(out, "{}\n", prose(&desc));
        }
        let _ = writeln!(out, "Schema: [`schemas/{name}`](../schemas/{name}).\n");
        table(&mut out, schema, &common);
    }

    out.push_str(
        "## Machine formats\n\n\
         certplane writes two JSON formats, each with its own version field and schema. \
         They are not interchangeable: `apply FILE` reads only a plan file, and refuses a \
         plan report naming it.\n\n",
    );
    for (name, schema) in &machine {
        let title = title(schema, name);
        let _ = writeln!(out, "### {title}\n");
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", prose(d));
        }
        let _ = writeln!(out, "Schema: [`schemas/{name}`](../schemas/{name}).\n");
        if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
            for alt in alts {
                let (alt, _) = resolve(schema, alt);
                let t = alt
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("document");
                let _ = writeln!(out, "#### {t}\n");
                if let Some(d) = alt.get("description").and_then(Value::as_str) {
                    let _ = writeln!(out, "{}\n", prose(d));
                }
                table_of(&mut out, schema, alt, &common);
            }
        } else {
            table(&mut out, schema, &common);
        }
    }

    if !common.is_empty() {
        out.push_str("## Common types\n\n");
        for (name, def) in &common {
            let _ = writeln!(out, "### {name}\n");
            if let Some(d) = def.get("description").and_then(Value::as_str) {
                let _ = writeln!(out, "{}\n", prose(d));
            }
            if let Some(p) = def.get("pattern").and_then(Value::as_str) {
                let _ = writeln!(out, "A string matching `{p}`.\n");
            }
            if let Some(alts) = def.get("oneOf").and_then(Value::as_array) {
                for alt in alts {
                    let keys = alt
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default();
                    let d = alt.get("description").and_then(Value::as_str).unwrap_or("");
                    if let [key] = keys.as_slice() {
                        let _ = writeln!(out, "- `{{{key}: ...}}`: {}", prose(d));
                    }
                }
                out.push('\n');
            }
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Defs that are not objects of their own and appear in more than one
/// kind's schema, identically: described once, linked from each field.
fn common_defs(kinds: &[&(String, Value)]) -> BTreeMap<String, Value> {
    let mut seen: BTreeMap<String, (Value, usize, bool)> = BTreeMap::new();
    for (_, schema) in kinds {
        let Some(defs) = schema.get("$defs").and_then(Value::as_object) else {
            continue;
        };
        for (name, def) in defs {
            let e = seen
                .entry(name.clone())
                .or_insert_with(|| (def.clone(), 0, true));
            e.1 += 1;
            e.2 &= e.0 == *def;
        }
    }
    seen.into_iter()
        .filter(|(_, (def, n, same))| *n > 1 && *same && def.get("properties").is_none())
        .map(|(k, (def, _, _))| (k, def))
        .collect()
}

fn title(schema: &Value, file: &str) -> String {
    schema
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| file.trim_end_matches(".json").to_string())
}

/// A kind's description: its spec type's doc comment (the root's is only
/// "certplane <Kind> (<apiVersion>)", the field's "The desired state").
fn kind_description(schema: &Value) -> String {
    let Some(spec) = schema.get("properties").and_then(|p| p.get("spec")) else {
        return String::new();
    };
    let (core, _) = strip_null(schema, spec);
    let (def, _) = resolve(schema, core);
    def.get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| description(schema, spec))
        .unwrap_or_default()
}

/// The markdown anchor GitHub makes of a heading.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

/// A doc comment as one paragraph per blank-line-separated block.
fn prose(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn first_sentence(text: &str) -> String {
    let one = prose(text).replace("\n\n", " ");
    match one.find(". ") {
        Some(i) => one[..=i].to_string(),
        None => one,
    }
}

/// Text fit for a table cell.
fn cell(text: &str) -> String {
    prose(text).replace("\n\n", "<br>").replace('|', "\\|")
}

/// Follows a `$ref` into the root's `$defs`: the schema and the def's name.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> (&'a Value, Option<&'a str>) {
    let Some(r) = s.get("$ref").and_then(Value::as_str) else {
        return (s, None);
    };
    let name = r.trim_start_matches("#/$defs/");
    match root.get("$defs").and_then(|d| d.get(name)) {
        Some(def) => (def, Some(name)),
        None => (s, None),
    }
}

/// A property's description: its own, else its type's.
fn description(root: &Value, s: &Value) -> Option<String> {
    if let Some(d) = s.get("description").and_then(Value::as_str) {
        return Some(d.to_string());
    }
    let (core, _) = strip_null(root, s);
    let (def, _) = resolve(root, core);
    def.get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The schema without its `null` alternative (`Option<T>`), and whether it
/// had one.
fn strip_null<'a>(root: &'a Value, s: &'a Value) -> (&'a Value, bool) {
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = alts.iter().filter(|a| !is_null(a)).collect();
        if non_null.len() == 1 && alts.len() == 2 {
            return (non_null[0], true);
        }
    }
    let _ = root;
    (s, false)
}

fn is_null(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null")
}

/// The JSON types a schema names, without `null`.
fn types(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    }
}

/// A value as the reference shows it: a string without quotes, unless it
/// would read as a number or a boolean (`"1"`).
fn shown(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.parse::<f64>().is_err() && s != "true" && s != "false" => s.to_string(),
        _ => v.to_string(),
    }
}

/// The values of an enum-like schema (`enum`, `const`, or `oneOf` consts),
/// each with its description.
fn values(s: &Value) -> Option<Vec<(String, Option<String>)>> {
    if let Some(c) = s.get("const") {
        return Some(vec![(shown(c), None)]);
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return Some(e.iter().map(|v| (shown(v), None)).collect());
    }
    let alts = s.get("oneOf").and_then(Value::as_array)?;
    alts.iter()
        .map(|a| {
            let c = a.get("const").or_else(|| {
                a.get("enum")
                    .and_then(Value::as_array)
                    .filter(|e| e.len() == 1)
                    .map(|e| &e[0])
            })?;
            let d = a
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((shown(c), d))
        })
        .collect()
}

/// The alternatives of a "exactly one of these keys" schema (`oneOf` of
/// objects with one property each): key, the property's schema, and the
/// alternative's description.
fn one_of_keys(s: &Value) -> Option<Vec<(String, &Value, Option<String>)>> {
    let alts = s.get("oneOf").and_then(Value::as_array)?;
    alts.iter()
        .map(|a| {
            let props = a.get("properties").and_then(Value::as_object)?;
            if props.len() != 1 {
                return None;
            }
            let (k, v) = props.iter().next()?;
            let d = a
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((k.clone(), v, d))
        })
        .collect()
}

/// One row of a field table.
struct Row {
    path: String,
    ty: String,
    required: bool,
    description: String,
}

/// The field table of a schema's root.
fn table(out: &mut String, root: &Value, common: &BTreeMap<String, Value>) {
    table_of(out, root, root, common);
}

fn table_of(out: &mut String, root: &Value, s: &Value, common: &BTreeMap<String, Value>) {
    let mut rows = Vec::new();
    let mut visiting = BTreeSet::new();
    fields(root, s, "", common, &mut visiting, &mut rows);
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            r.path,
            r.ty,
            if r.required { "yes" } else { "" },
            cell(&r.description)
        );
    }
    out.push('\n');
}

/// The rows of an object schema's properties (sorted by name: the order of
/// the schema files), each followed by its own fields.
fn fields(
    root: &Value,
    s: &Value,
    prefix: &str,
    common: &BTreeMap<String, Value>,
    visiting: &mut BTreeSet<String>,
    rows: &mut Vec<Row>,
) {
    let (s, _) = resolve(root, s);
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, p) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        field(
            root,
            p,
            path,
            required.contains(&name.as_str()),
            None,
            common,
            visiting,
            rows,
        );
    }
}

/// One field's row, then the rows of what it holds.
#[allow(clippy::too_many_arguments)] // one recursive walk: the arguments are its state
fn field(
    root: &Value,
    p: &Value,
    path: String,
    required: bool,
    fallback: Option<String>,
    common: &BTreeMap<String, Value>,
    visiting: &mut BTreeSet<String>,
    rows: &mut Vec<Row>,
) {
    let (core, _) = strip_null(root, p);
    let (def, def_name) = resolve(root, core);
    let mut description = description(root, p).or(fallback).unwrap_or_default();
    if let Some(d) = p.get("default").or_else(|| def.get("default"))
        && !d.is_null()
        && !d.is_object()
        && d != &Value::Array(vec![])
    {
        let _ = write!(description, " Default: `{d}`.");
    }
    if let Some(name) = def_name.filter(|n| common.contains_key(*n)) {
        rows.push(Row {
            path,
            ty: format!("[{name}](#{})", anchor(name)),
            required,
            description,
        });
        return;
    }
    // A type already being expanded on this path (a recursive type).
    if let Some(name) = def_name {
        if visiting.contains(name) {
            rows.push(Row {
                path,
                ty: format!("`{name}` (as above)"),
                required,
                description,
            });
            return;
        }
        visiting.insert(name.to_string());
    }
    let mut children: Vec<(String, &Value, bool, Option<String>)> = Vec::new();
    let ty = if let Some(vals) = values(def) {
        let with_docs: Vec<String> = vals
            .iter()
            .filter_map(|(v, d)| d.as_ref().map(|d| format!("`{v}`: {}", prose(d))))
            .collect();
        if !with_docs.is_empty() {
            description.push_str("<br>");
            description.push_str(&with_docs.join("<br>"));
        }
        vals.iter()
            .map(|(v, _)| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ")
    } else if let Some(keys) = one_of_keys(def) {
        for (k, v, d) in &keys {
            children.push((format!("{path}.{k}"), v, false, d.clone()));
        }
        let names: Vec<String> = keys.iter().map(|(k, _, _)| format!("`{k}`")).collect();
        format!("exactly one of {}", names.join(", "))
    } else if let Some(alts) = def
        .get("oneOf")
        .or_else(|| def.get("anyOf"))
        .and_then(Value::as_array)
    {
        let names: Vec<String> = alts.iter().map(|a| short_type(root, a, common)).collect();
        format!("one of {}", names.join(", "))
    } else {
        short_type(root, def, common)
    };
    rows.push(Row {
        path: path.clone(),
        ty,
        required,
        description,
    });
    // What the field holds.
    if def.get("properties").is_some() {
        fields(root, def, &path, common, visiting, rows);
    } else if types(def) == ["array"] {
        if let Some(items) = def.get("items") {
            let (item, _) = resolve(root, strip_null(root, items).0);
            if item.get("properties").is_some() || one_of_keys(item).is_some() {
                let (item_core, item_name) = resolve(root, items);
                let _ = item_core;
                let keep = item_name.is_some_and(|n| !visiting.contains(n));
                if let Some(n) = item_name.filter(|_| keep) {
                    visiting.insert(n.to_string());
                }
                if one_of_keys(item).is_some() {
                    for (k, v, d) in one_of_keys(item).unwrap_or_default() {
                        children.push((format!("{path}[].{k}"), v, false, d));
                    }
                } else {
                    fields(root, item, &format!("{path}[]"), common, visiting, rows);
                }
                if let Some(n) = item_name.filter(|_| keep) {
                    visiting.remove(n);
                }
            }
        }
    } else if let Some(ap) = def.get("additionalProperties").filter(|a| a.is_object()) {
        let (val, _) = resolve(root, strip_null(root, ap).0);
        if val.get("properties").is_some() {
            fields(root, val, &format!("{path}.<name>"), common, visiting, rows);
        }
    }
    for (cpath, v, creq, d) in children {
        field(root, v, cpath, creq, d, common, visiting, rows);
    }
    if let Some(name) = def_name {
        visiting.remove(name);
    }
}

/// A type in a few words: `string`, `list of string`, `map of string`,
/// `object`, a link to a common type.
fn short_type(root: &Value, s: &Value, common: &BTreeMap<String, Value>) -> String {
    if s == &Value::Bool(true) || s.as_object().is_some_and(Map::is_empty) {
        return "any".into();
    }
    let (core, _) = strip_null(root, s);
    let (def, name) = resolve(root, core);
    if let Some(n) = name.filter(|n| common.contains_key(*n)) {
        return format!("[{n}](#{})", anchor(n));
    }
    if let Some(vals) = values(def) {
        return vals
            .iter()
            .map(|(v, _)| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if one_of_keys(def).is_some() {
        return "object (exactly one key)".into();
    }
    let ts = types(def);
    match ts.as_slice() {
        ["array"] => match def.get("items") {
            Some(items) => format!("list of {}", short_type(root, items, common)),
            None => "list".into(),
        },
        ["object"] => match def.get("additionalProperties") {
            _ if def.get("properties").is_some() => "object".into(),
            Some(Value::Bool(false)) => "object".into(),
            Some(ap) if ap.is_object() && ap.as_object().is_some_and(|o| !o.is_empty()) => {
                format!("map of {}", short_type(root, ap, common))
            }
            _ => "map (any keys)".into(),
        },
        [] => match def.get("anyOf").or_else(|| def.get("oneOf")) {
            Some(Value::Array(alts)) => alts
                .iter()
                .filter(|a| !is_null(a))
                .map(|a| short_type(root, a, common))
                .collect::<Vec<_>>()
                .join(" or "),
            _ => "any".into(),
        },
        ts => ts.join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files() -> Vec<(String, Value)> {
        super::super::all()
    }

    #[test]
    fn every_kind_and_every_spec_field_has_a_row() {
        let files = files();
        let md = markdown(&files);
        for (name, schema) in &files {
            if name == COMBINED || name == CLUSTER {
                continue;
            }
            let title = schema["title"].as_str().unwrap();
            assert!(md.contains(&format!("\n## {title}\n")), "{title}");
            let (spec, _) = resolve(schema, &schema["properties"]["spec"]);
            for field in spec["properties"].as_object().into_iter().flatten() {
                assert!(
                    md.contains(&format!("| `spec.{}` |", field.0)),
                    "{title}: spec.{} has no row",
                    field.0
                );
            }
        }
    }

    #[test]
    fn one_of_keys_are_rows_of_their_own_and_common_types_are_linked() {
        let md = markdown(&files());
        assert!(
            md.contains("| `spec.ca` | exactly one of `root`, `import`, `intermediate` |"),
            "{md}"
        );
        assert!(
            md.contains("| `spec.ca.intermediate.signedBy.mount` |"),
            "{md}"
        );
        assert!(md.contains("[Duration](#duration)"), "{md}");
        assert!(md.contains("\n### Source\n"), "{md}");
        assert!(md.contains("- `{env: ...}`: "), "{md}");
    }

    #[test]
    fn a_recursive_type_is_named_not_expanded_forever() {
        let schema = json!({
            "title": "T",
            "$defs": {"Node": {"type": "object", "properties": {
                "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                "value": {"type": "string", "description": "A | value"}
            }}},
            "type": "object",
            "properties": {"spec": {"$ref": "#/$defs/Node"}}
        });
        let md = markdown(&[("t.json".into(), schema)]);
        assert!(md.contains("| `spec.next` | `Node` (as above) |"), "{md}");
        assert!(
            md.contains("| `spec.value` | string |  | A \\| value |"),
            "{md}"
        );
    }
}
