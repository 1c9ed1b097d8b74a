//! The JSON Schemas under `schemas/` (every kind, the plan report of `plan
//! -o json`, the plan file of `plan --out`) are generated from the Rust
//! types and checked in, where editors and users' repositories point at
//! them; this test fails when they differ from what `certplane schemas`
//! writes.
//!
//! Regenerate with `make schemas` (or `CERTPLANE_UPDATE_SCHEMAS=1 cargo test
//! --test it schemas::`).

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn committed_schemas_are_up_to_date() {
    let update = std::env::var_os("CERTPLANE_UPDATE_SCHEMAS").is_some();
    let generated = certplane::cli::schema_files();
    let mut stale = Vec::new();
    if update {
        std::fs::create_dir_all(dir()).unwrap();
    }
    for (name, schema) in &generated {
        let path = dir().join(name);
        let text = certplane::model::schema::render(schema);
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    // A committed schema of a kind that no longer exists is stale too.
    let names: Vec<&str> = generated.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !names.contains(&name.as_str()) {
            if update {
                std::fs::remove_file(dir().join(&name)).unwrap();
            } else {
                stale.push(format!("{name} (no longer generated)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON schemas in schemas/: {}\nregenerate them with `make schemas` (then `make docs`)",
        stale.join(", ")
    );
}

#[test]
fn every_schema_is_an_object_schema_with_a_title() {
    for (name, schema) in certplane::model::schema::all() {
        assert!(schema.get("title").is_some(), "{name}");
        assert!(
            schema.get("properties").is_some() || schema.get("oneOf").is_some(),
            "{name}"
        );
    }
}

/// Every `$schema=` line of the examples names a committed schema.
#[test]
fn example_schema_lines_point_at_committed_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut stack = vec![root];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                continue;
            }
            // CI workflow files are not certplane documents.
            if path.parent().is_some_and(|p| p.ends_with("examples/ci"))
                && path.file_name().is_some_and(|n| n != "certplane.yaml")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{} must start with a $schema line", path.display()));
            let schema = path.parent().unwrap().join(target);
            assert!(
                schema.is_file(),
                "{}: {} does not exist",
                path.display(),
                schema.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no example YAML found");
}

/// Every document of every example matches the schema its `$schema` line
/// names: the schemas an editor is pointed at accept what certplane reads.
#[test]
fn example_documents_match_the_schema_their_line_names() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut stack = vec![root];
    let mut checked = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Some(target) = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            else {
                continue;
            };
            let schema: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(path.parent().unwrap().join(target)).unwrap(),
            )
            .unwrap();
            for doc in certplane::load::yaml::split(&text).unwrap() {
                let value: serde_json::Value =
                    certplane::load::yaml::deserialize(&text, &doc).unwrap();
                if value.is_null() {
                    continue;
                }
                crate::common::jsonschema::assert_valid(
                    &schema,
                    &value,
                    &format!("{} (line {})", path.display(), doc.start_pos.0),
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no example document checked");
}
