//! The command line tells a CI job the truth through the binary: a usage
//! error exits 1 (never 2, which a PR job reads as "changes found"),
//! `--help`/`--version` exit 0, and `plan -o json`/`-o markdown` on an
//! invalid repository write an error document / an error comment to stdout.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common;

/// `certplane <args>` in `cwd` (also its `HOME`).
fn certplane(args: &[&str], cwd: &Path) -> Output {
    common::command(cwd)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn usage_errors_exit_1_not_2() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["plan", "-o", "markdwn"][..], "markdown"),
        (&["plan", "--nope"][..], "--nope"),
        (&["apply", "--auto-approve", "--render"][..], "--render"),
        (&["frobnicate"][..], "frobnicate"),
        (&["run"][..], "--repo"),
        (&[][..], "Usage"),
    ] {
        let out = certplane(args, dir.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn help_and_version_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["-h"][..],
        &["plan", "--help"][..],
        &["help", "apply"][..],
        &["--version"][..],
        &["-V"][..],
    ] {
        let out = certplane(args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let out = certplane(&["--version"], dir.path());
    assert!(text(&out.stdout).starts_with("certplane "));
}

/// A repository with a role on an undeclared mount (line 5).
fn invalid_repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("pki.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki_int}\nspec:\n  ca:\n    root: {commonName: Test Root}\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("roles.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {name: web}\nspec:\n  mount: pki_itn\n  allowedDomains: [example.com]\n",
    )
    .unwrap();
    repo
}

#[test]
fn plan_json_on_an_invalid_repository_writes_an_error_document() {
    let dir = tempfile::tempdir().unwrap();
    let repo = invalid_repo(dir.path());
    let out = certplane(&["plan", "-o", "json", repo.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(doc["valid"], false, "{doc}");
    assert_eq!(doc["has_changes"], false);
    let e = &doc["errors"][0];
    assert!(e["file"].as_str().unwrap().ends_with("roles.yaml"), "{doc}");
    assert_eq!(e["line"], 5, "{doc}");
    assert!(e["column"].as_u64().unwrap() >= 1);
    assert!(e["message"].as_str().unwrap().contains("pki_itn"), "{doc}");
    assert!(e["hint"].as_str().unwrap().contains("pki_int"), "{doc}");
    // The people's version still goes to stderr.
    assert!(
        text(&out.stderr).contains("roles.yaml:5:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_markdown_on_an_invalid_repository_writes_an_error_comment() {
    let dir = tempfile::tempdir().unwrap();
    let repo = invalid_repo(dir.path());
    let out = certplane(
        &["plan", "-o", "markdown", repo.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let md = text(&out.stdout);
    assert!(md.starts_with("### certplane plan failed"), "{md}");
    assert!(md.contains("roles.yaml:5:"), "{md}");
    assert!(
        md.contains("pki_itn") && md.contains("did you mean"),
        "{md}"
    );
}

#[test]
fn plan_json_without_a_vault_writes_the_error_too() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("pki.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki}\nspec:\n  ca:\n    root: {commonName: Test Root}\n",
    )
    .unwrap();
    let out = certplane(&["plan", "-o", "json", repo.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("vault"),
        "{doc}"
    );
    // A human plan writes nothing to stdout on error.
    let out = certplane(&["plan", repo.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}
