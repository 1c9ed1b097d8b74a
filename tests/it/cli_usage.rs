//! The command line tells a CI job the truth through the binary: a usage
//! error exits 1 (never 2, which a PR job reads as "changes found"),
//! `--help`/`--version` exit 0, and `plan -o json`/`-o markdown` on an
//! invalid repository write an error document / an error comment to stdout.

use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// The commands a user types, from the clap definitions (not a list kept
/// by hand).
fn visible_commands() -> Vec<String> {
    use clap::CommandFactory;
    certplane::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

/// Runs bash's completion of `line` (the words typed so far, the last one
/// being completed) with the script `certplane completions bash` printed.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _certplane certplane '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_from_the_binary_completes_commands_shells_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let out = certplane(&["completions", "bash"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let script = dir.path().join("certplane.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    let commands = bash_complete(&script, &["certplane", ""]);
    for c in visible_commands() {
        assert!(commands.contains(&c), "{c} not completed: {commands:?}");
    }
    assert_eq!(
        bash_complete(&script, &["certplane", "valid"]),
        ["validate"]
    );
    let shells = bash_complete(&script, &["certplane", "completions", ""]);
    for s in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(&s.to_string()), "{shells:?}");
    }
    let formats = bash_complete(&script, &["certplane", "plan", "-o", ""]);
    assert_eq!(formats, ["human", "json", "markdown"]);
    let flags = bash_complete(&script, &["certplane", "apply", "--lock-t"]);
    assert_eq!(flags, ["--lock-timeout"]);
}

#[test]
fn completions_and_man_need_no_vault_and_ignore_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    // Settings every Vault command refuses (approle without a role ID) do
    // not stop the commands that only describe the command line.
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certplane"));
        cmd.args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("CERTPLANE_VAULT_AUTH", "approle")
            .env_remove("VAULT_ADDR")
            .env_remove("CERTPLANE_VAULT_ROLE_ID")
            .stdin(Stdio::null());
        cmd.output().unwrap()
    };
    let refused = run(&["policy", "."]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("needs --vault-role-id"));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("certplane"), "{shell}");
    }
    let out = run(&["man", "pages"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for c in visible_commands() {
        let page = dir.path().join(format!("pages/certplane-{c}.1"));
        assert!(page.is_file(), "{}", page.display());
        assert!(stdout.contains(&format!("certplane-{c}.1")), "{stdout}");
    }
    let root = std::fs::read_to_string(dir.path().join("pages/certplane.1")).unwrap();
    assert!(root.contains(".TH certplane 1"), "{root}");

    // A shell it does not know: a usage error, exit 1.
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("possible values: bash, elvish, fish, powershell, zsh"));
    // A directory it cannot write: an error naming it, exit 1.
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let out = run(&["man", "file"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: cannot write "),
        "{}",
        text(&out.stderr)
    );
}
