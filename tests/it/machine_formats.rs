//! The two machine formats: the plan report of `plan -o json` and the plan
//! file of `plan --out FILE`. What the binary writes matches the committed
//! schemas (`schemas/plan-output.json`, `schemas/plan-file.json`), each
//! carries its own version, and giving `apply` a report instead of a plan
//! file is refused naming both formats.

use std::path::{Path, PathBuf};

use crate::common::jsonschema::assert_valid;
use crate::common::*;
use serde_json::Value;

fn committed(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make schemas`)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `examples/homelab` planned against an empty OpenBao (a root and an
/// intermediate CA to make, roles, policies, auth, rendered cluster
/// objects), then applied and changed, so both formats are seen with CA
/// changes, updates, no-ops and notes.
#[test]
fn what_plan_writes_matches_the_committed_schemas() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let dir = repo.to_str().unwrap();
    let file = bao.dir().join("plan.json");
    let file_s = file.to_str().unwrap();
    let report_schema = committed("plan-output.json");
    let file_schema = committed("plan-file.json");

    let first = certplane_root(&bao, &["plan", "-o", "json", "--out", file_s, dir]);
    first.expect(2);
    let report = json_plan(&first);
    assert_valid(&report_schema, &report, "the plan report");
    assert_eq!(report["format_version"], "1");
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "issuer"),
        "{report:#}"
    );
    let saved = read_json(&file);
    assert_valid(&file_schema, &saved, "the plan file");
    assert_eq!(saved["format_version"], certplane_plan_file_version());
    assert!(
        saved["plan"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.get("ca").is_some()),
        "no CA change in {saved:#}"
    );
    // Each document fails the other's schema: they are two formats.
    assert!(!crate::common::jsonschema::errors(&file_schema, &report).is_empty());
    assert!(!crate::common::jsonschema::errors(&report_schema, &saved).is_empty());

    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    // An update of a role.
    edit(&repo, "roles.yaml", "ttl: 24h", "ttl: 12h");
    let roles = std::fs::read_to_string(repo.join("roles.yaml")).unwrap();
    assert!(roles.contains("ttl: 12h"), "{roles}");
    let second = certplane_root(&bao, &["plan", "-o", "json", "--out", file_s, dir]);
    second.expect(2);
    let report = json_plan(&second);
    assert_valid(&report_schema, &report, "the plan report of an update");
    assert_valid(
        &file_schema,
        &read_json(&file),
        "the plan file of an update",
    );
}

/// The version `apply` reads, from the committed schema (its `const`).
fn certplane_plan_file_version() -> Value {
    committed("plan-file.json")["properties"]["format_version"]["const"].clone()
}

/// No plan: the error report matches the schema too.
#[test]
fn the_error_report_matches_the_schema() {
    let home = tempfile::tempdir().unwrap();
    let run = certplane(
        &[
            "plan",
            "-o",
            "json",
            &in_repo("tests/bad/bad_duration").display().to_string(),
        ],
        &[],
        home.path(),
    );
    run.expect(1);
    let doc = json_plan(&run);
    assert_eq!(doc["valid"], false, "{doc:#}");
    assert_valid(&committed("plan-output.json"), &doc, "the error report");
}

/// `apply report.json` names the format it was given and how to make a
/// plan file, before connecting to anything; so does a file that is not
/// JSON at all.
#[test]
fn apply_of_a_plan_report_names_the_formats() {
    let home = tempfile::tempdir().unwrap();
    let decoy = Decoy::start();
    let env = [
        ("VAULT_ADDR", decoy.addr()),
        ("VAULT_TOKEN", "t".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The error report of an invalid repository: `plan -o json` output.
    let bad = in_repo("tests/bad/bad_duration").display().to_string();
    let report = certplane(&["plan", "-o", "json", &bad], &[], home.path());
    let path = home.path().join("plan-report.json");
    std::fs::write(&path, &report.stdout).unwrap();
    // And a plan report of a plan, built from the library's own type.
    let plan_report = home.path().join("report-of-a-plan.json");
    std::fs::write(
        &plan_report,
        serde_json::to_string_pretty(&certplane::plan::render::json(
            &certplane::plan::Plan::default(),
        ))
        .unwrap(),
    )
    .unwrap();

    for file in [&path, &plan_report] {
        let f = file.to_str().unwrap();
        let run = certplane(&["apply", "--auto-approve", f], &env, home.path());
        run.expect(1);
        let err = &run.stderr;
        assert!(
            err.contains(&format!("{f} is a `plan -o json` report, not a plan file")),
            "{}",
            run.both()
        );
        assert!(err.contains("make one with `certplane plan --out"), "{err}");
        assert!(!err.contains("invalid type"), "{err}");
    }

    let garbage = home.path().join("notes.json");
    std::fs::write(&garbage, "this is not json\n").unwrap();
    let g = garbage.to_str().unwrap();
    let run = certplane(&["apply", "--auto-approve", g], &env, home.path());
    run.expect(1);
    assert!(
        run.stderr
            .contains(&format!("{g} is not a certplane plan file: it is not JSON")),
        "{}",
        run.both()
    );
    assert_eq!(decoy.connections(), 0, "nothing may be contacted");
}
