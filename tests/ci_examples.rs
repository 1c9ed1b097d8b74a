//! `examples/ci`: the workflows parse as YAML, log in to Vault with the CI's
//! OIDC token (GitHub `id-token: write`, GitLab `id_tokens`), and every
//! `certplane ...` command in them is a valid command line. The workflow
//! (the operator), not the repository, names the Vault and the JWT login:
//! each command, with the workflow's variables, resolves to that address
//! and login; the repository's certplane.yaml names neither, loads next to
//! them, and cannot read `CI_OIDC_TOKEN`.

use std::path::Path;

use certplane::model::Source;
use certplane::operator::EnvRefusal;
use certplane::vault::AuthSettings;
use certplane::vault::connect::Env;
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

/// The variables a workflow sets (GitHub `env:`, GitLab `variables:`), plus
/// the OIDC token the job obtains.
fn workflow_env(vars: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .as_object()
        .expect("a mapping of variables")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    out.push(("CI_OIDC_TOKEN".into(), "eyJ.the-job-token".into()));
    out
}

/// Each command, run with the workflow's variables, talks to the workflow's
/// Vault with a JWT login from `CI_OIDC_TOKEN`, and no repository may read
/// that variable.
fn check_operator(text: &str, vars: &[(String, String)]) {
    let var = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let env = Env {
        var: &var,
        home: None,
    };
    for c in commands(text) {
        let cli = certplane::cli::Cli::try_parse_from(&c).unwrap();
        let op = cli
            .operator
            .operator(false, &env)
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        let addr = op
            .vault
            .address
            .as_ref()
            .expect("the workflow names the vault");
        assert_eq!(
            (addr.value.as_str(), addr.from.as_str()),
            ("https://vault.example.com:8200", "VAULT_ADDR"),
            "{c:?}"
        );
        let auth = op
            .vault
            .auth
            .as_ref()
            .expect("the workflow chooses the login");
        assert_eq!(
            auth.value,
            AuthSettings::Jwt {
                mount: "jwt".into(),
                role: "ci".into(),
                jwt: Source::Env("CI_OIDC_TOKEN".into())
            },
            "{c:?}"
        );
        assert!(
            matches!(
                op.env.check("CI_OIDC_TOKEN"),
                Err(EnvRefusal::Credential(_))
            ),
            "{c:?}"
        );
    }
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
    check_operator(&text, &workflow_env(&v["env"]));
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
    check_operator(&text, &workflow_env(&v["variables"]));
}

#[test]
fn the_repository_config_names_no_vault_and_loads_under_the_workflow() {
    let (_, v) = example("certplane.yaml");
    assert_eq!(v["kind"], "Config");
    assert!(
        v["spec"].get("vault").is_none(),
        "the Vault connection is the workflow's: {v}"
    );
    // The loader accepts it as a certplane Config (next to a PkiMount), for
    // the workflow's operator: nothing in it conflicts.
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
    let (_, gh) = example("github-actions.yml");
    let vars = workflow_env(&gh["env"]);
    let var = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let env = Env {
        var: &var,
        home: None,
    };
    let cli = certplane::cli::Cli::try_parse_from(["certplane", "plan", "."]).unwrap();
    let op = cli.operator.operator(false, &env).unwrap();
    let prepared = certplane::pipeline::prepare_for(dir.path(), &op);
    assert!(prepared.is_ok(), "{}", prepared.unwrap_err());
    // A pull request that points the repository at another Vault is refused.
    std::fs::write(
        dir.path().join("certplane.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: https://attacker.example.com\n",
    )
    .unwrap();
    let refused = certplane::pipeline::prepare_for(dir.path(), &op).unwrap_err();
    assert!(
        refused.to_string().contains("certplane.yaml:5:"),
        "{refused}"
    );
}
