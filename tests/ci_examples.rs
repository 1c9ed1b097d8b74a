//! `examples/ci`: the workflows parse as YAML, log in to Vault with the CI's
//! OIDC token (GitHub `id-token: write`, GitLab `id_tokens`), and every
//! `certplane ...` command in them is a valid command line. The config file
//! loads as a certplane Config with JWT auth reading `CI_OIDC_TOKEN`.

use std::path::Path;

use clap::Parser;
use serde_json::Value;

fn example(name: &str) -> (String, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/ci")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    (text, v)
}

/// The `certplane ...` commands of a workflow, shell redirections and
/// `||` tails cut off.
fn commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let l = l
                .trim()
                .trim_start_matches("- ")
                .trim_start_matches("run: ");
            let at = l.find("certplane ")?;
            if at != 0 || l.starts_with("certplane policy . >") {
                return None;
            }
            let cmd = l.split(['>', '|']).next().unwrap();
            Some(cmd.split_whitespace().map(str::to_string).collect())
        })
        .collect()
}

fn check_commands(text: &str) -> usize {
    let cmds = commands(text);
    for c in &cmds {
        let parsed = certplane::cli::Cli::try_parse_from(c);
        assert!(parsed.is_ok(), "{c:?}: {}", parsed.unwrap_err());
    }
    let joined: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
    assert!(
        joined
            .iter()
            .any(|c| c.contains("plan -o markdown --out plan.json")),
        "{joined:?}"
    );
    assert!(
        joined
            .iter()
            .any(|c| c == "certplane apply --auto-approve plan.json"),
        "{joined:?}"
    );
    cmds.len()
}

#[test]
fn github_actions_plans_on_pull_requests_and_applies_the_saved_plan() {
    let (text, v) = example("github-actions.yml");
    assert_eq!(v["permissions"]["id-token"], "write");
    assert!(v["jobs"]["plan"].is_object() && v["jobs"]["apply"].is_object());
    assert!(text.contains("ACTIONS_ID_TOKEN_REQUEST_URL") && text.contains("CI_OIDC_TOKEN"));
    assert!(check_commands(&text) >= 2);
}

#[test]
fn gitlab_ci_plans_on_merge_requests_and_applies_the_saved_plan() {
    let (text, v) = example("gitlab-ci.yml");
    assert_eq!(
        v[".certplane"]["id_tokens"]["CI_OIDC_TOKEN"]["aud"],
        "vault"
    );
    assert!(v["plan"].is_object() && v["apply"].is_object());
    assert!(check_commands(&text) >= 2);
}

#[test]
fn the_config_logs_in_with_jwt_from_the_ci_token() {
    let (_, v) = example("certplane.yaml");
    assert_eq!(v["kind"], "Config");
    let jwt = &v["spec"]["vault"]["auth"]["jwt"];
    assert_eq!(jwt["mountPath"], "jwt");
    assert_eq!(jwt["role"], "ci");
    assert_eq!(jwt["tokenFrom"]["env"], "CI_OIDC_TOKEN");
    // And the loader accepts it as a certplane Config (next to a PkiMount).
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/certplane.yaml"),
        dir.path().join("certplane.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pki.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata:\n  name: pki\nspec:\n  ca:\n    root: {commonName: CI Root}\n",
    )
    .unwrap();
    let prepared = certplane::pipeline::prepare(dir.path());
    assert!(prepared.is_ok(), "{}", prepared.unwrap_err());
}
