//! `examples/ci`: the workflows parse as YAML, log in to Vault with the CI's
//! OIDC token (GitHub `id-token: write`, GitLab `id_tokens`), and every
//! `certplane ...` command in them is a valid command line. The workflow
//! (the operator), not the repository, names the Vault and the JWT login:
//! each command, with the workflow's variables, resolves to that address
//! and login; the repository's certplane.yaml names neither, loads next to
//! them, and cannot read `CI_OIDC_TOKEN`. The apply jobs wait for the apply
//! lock (`--lock-timeout`) instead of failing while another certplane holds it.

use std::path::Path;

use certplane::model::Source;
use certplane::operator::EnvRefusal;
use certplane::vault::AuthSettings;
use certplane::vault::connect::Env;
use clap::Parser;
use serde_json::Value;

use crate::common;

fn example(name: &str) -> (String, Value) {
    let path = common::in_repo("examples/ci").join(name);
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
            .any(|c| c == "certplane apply --auto-approve --lock-timeout 5m plan.json"),
        "{joined:?}"
    );
    // Every applying command waits for the apply lock (issue 7 follow-up):
    // with the default 0s, a job fails at once while another certplane
    // (an earlier merge's job, the `run` loop) applies to the same Vault.
    for c in &cmds {
        if let certplane::cli::Command::Apply { lock, .. } =
            certplane::cli::Cli::try_parse_from(c).unwrap().command
        {
            assert!(lock.lock_timeout.as_secs() >= 60, "{c:?}");
        }
    }
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

// ---------------------------------------------------------------------------
// The workflows, run: their certplane steps are extracted from the files and
// run as the CI system would (bash -eo pipefail, the workflow's env, a fresh
// checkout per job, the plan file handed over as an artifact) against a real
// OpenBao, logging in with a CI OIDC token through JWT auth.

use common::OpenBao;

/// A checkout of the repository the example workflows run in: homelab's
/// objects and `examples/ci/certplane.yaml`, whose placeholder Vault
/// address (if it still has one) is pointed at the test's OpenBao.
fn checkout(dir: &Path, vault_addr: &str) {
    common::copy_dir(&common::homelab(), dir);
    let config = std::fs::read_to_string(common::in_repo("examples/ci/certplane.yaml")).unwrap();
    let config = config.replace("https://vault.example.com:8200", vault_addr);
    std::fs::write(dir.join("certplane.yaml"), config).unwrap();
}

/// `${{ ctx.NAME }}` (GitHub expressions) as `${NAME}`: the test provides
/// variables and secrets through the environment.
fn expand_expressions(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find("}}") else {
            break;
        };
        let expr = rest[at + 3..at + end].trim();
        let name = expr.rsplit('.').next().unwrap_or(expr);
        out.push_str(&format!("${{{name}}}"));
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    out
}

/// String values of a YAML mapping (an `env:` or `variables:` block).
fn vars_of(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One script of a job that runs certplane (installing it excluded), with
/// the variables the workflow sets for it.
struct Step {
    script: String,
    env: Vec<(String, String)>,
}

fn runs_certplane(script: &str) -> bool {
    script.contains("certplane ") && !script.contains("cargo install")
}

fn github_steps(v: &Value, job: &str) -> Vec<Step> {
    let mut base = vars_of(&v["env"]);
    base.extend(vars_of(&v["jobs"][job]["env"]));
    v["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let script = s["run"].as_str()?;
            runs_certplane(script).then(|| {
                let mut env = base.clone();
                env.extend(vars_of(&s["env"]));
                Step {
                    script: expand_expressions(script),
                    env,
                }
            })
        })
        .collect()
}

fn gitlab_steps(v: &Value, job: &str) -> Vec<Step> {
    let mut env = vars_of(&v["variables"]);
    if let Some(t) = v[job]["extends"].as_str() {
        env.extend(vars_of(&v[t]["variables"]));
    }
    env.extend(vars_of(&v[job]["variables"]));
    v[job]["script"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|s| runs_certplane(s))
        .map(|s| Step {
            script: s.to_string(),
            env: env.clone(),
        })
        .collect()
}

/// What the CI system and the test give every step.
struct Ci {
    bao: OpenBao,
    jwt: String,
    home: tempfile::TempDir,
}

impl Ci {
    fn start() -> Ci {
        let bao = OpenBao::start_with_audit();
        let jwt = common::ci_jwt(&bao, "ci", "vault");
        Ci {
            bao,
            jwt,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs a job's steps in `dir`, stopping at the first that fails;
    /// returns each step's (exit code, stderr).
    fn run_job(&self, dir: &Path, steps: &[Step]) -> Vec<(i32, String)> {
        let bin = Path::new(env!("CARGO_BIN_EXE_certplane")).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut out = Vec::new();
        for step in steps {
            let mut cmd = std::process::Command::new("bash");
            cmd.args([
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "-c",
                &step.script,
            ])
            .current_dir(dir)
            .stdin(std::process::Stdio::null());
            common::clean_env(&mut cmd);
            for (k, v) in &step.env {
                cmd.env(k, v);
            }
            let addr = self.bao.addr();
            cmd.env("PATH", &path)
                .env("HOME", self.home.path())
                .env("NO_COLOR", "1")
                .env("CI", "true")
                .env("CI_OIDC_TOKEN", &self.jwt)
                .env("VAULT_ADDR", &addr)
                .env("GITHUB_OUTPUT", dir.join(".github_output"))
                .env("GITHUB_STEP_SUMMARY", dir.join(".github_step_summary"))
                .env("GITHUB_ENV", dir.join(".github_env"));
            let o = cmd.output().unwrap();
            let code = o.status.code().unwrap_or(-1);
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            assert!(
                !stderr.contains(&self.jwt),
                "the CI token was printed: {stderr}"
            );
            out.push((code, stderr));
            if code != 0 {
                break;
            }
        }
        out
    }

    fn logins(&self) -> usize {
        self.bao
            .audit_entries()
            .iter()
            .filter(|(_, p)| p == "auth/jwt/login")
            .count()
    }

    /// After the apply job: the PKI is in Vault and the cluster half is rendered.
    fn assert_applied(&self, checkout: &Path) {
        let role = common::read(&self.bao, "pki_int/roles/homelab-dot-local").unwrap();
        assert_eq!(role["ttl"], 86400, "{role}");
        assert!(
            checkout
                .join("rendered/_cluster/clusterissuer.cert-manager.io-homelab.yaml")
                .is_file()
        );
    }
}

#[test]
fn the_github_workflow_plans_then_applies_the_saved_plan_against_openbao() {
    let ci = Ci::start();
    let (_, v) = example("github-actions.yml");
    let work = tempfile::tempdir().unwrap();
    let plan_job = work.path().join("plan-job");
    checkout(&plan_job, &ci.bao.addr());
    let plan_steps = github_steps(&v, "plan");
    assert!(!plan_steps.is_empty());
    let ran = ci.run_job(&plan_job, &plan_steps);
    assert!(ran.iter().all(|(c, _)| *c == 0), "{ran:?}");
    let output = std::fs::read_to_string(plan_job.join(".github_output")).unwrap();
    assert!(output.contains("exitcode=2"), "{output}");
    let md = std::fs::read_to_string(plan_job.join("plan.md")).unwrap();
    assert!(md.starts_with("### certplane plan"), "{md}");
    assert!(plan_job.join("plan.json").is_file());
    assert!(ci.logins() >= 1, "no JWT login");

    // The apply job: a fresh checkout of the same commit, and the artifact.
    let apply_job = work.path().join("apply-job");
    checkout(&apply_job, &ci.bao.addr());
    std::fs::copy(plan_job.join("plan.json"), apply_job.join("plan.json")).unwrap();
    let apply_steps = github_steps(&v, "apply");
    assert!(!apply_steps.is_empty());
    let ran = ci.run_job(&apply_job, &apply_steps);
    assert!(ran.iter().all(|(c, _)| *c == 0), "{ran:?}");
    ci.assert_applied(&apply_job);
}

#[test]
fn the_gitlab_pipeline_plans_then_applies_the_saved_plan_against_openbao() {
    let ci = Ci::start();
    let (_, v) = example("gitlab-ci.yml");
    let work = tempfile::tempdir().unwrap();
    let plan_job = work.path().join("plan-job");
    checkout(&plan_job, &ci.bao.addr());
    let plan_steps = gitlab_steps(&v, "plan");
    assert!(!plan_steps.is_empty());
    let ran = ci.run_job(&plan_job, &plan_steps);
    assert!(ran.iter().all(|(c, _)| *c == 0), "{ran:?}");
    assert!(plan_job.join("plan.json").is_file() && plan_job.join("plan.md").is_file());

    let apply_job = work.path().join("apply-job");
    checkout(&apply_job, &ci.bao.addr());
    for f in ["plan.json", "plan.md"] {
        std::fs::copy(plan_job.join(f), apply_job.join(f)).unwrap();
    }
    let ran = ci.run_job(&apply_job, &gitlab_steps(&v, "apply"));
    assert!(ran.iter().all(|(c, _)| *c == 0), "{ran:?}");
    ci.assert_applied(&apply_job);
}

#[test]
fn a_plan_file_from_another_commit_is_refused_by_the_apply_job() {
    let ci = Ci::start();
    let (_, v) = example("github-actions.yml");
    let work = tempfile::tempdir().unwrap();
    let plan_job = work.path().join("plan-job");
    checkout(&plan_job, &ci.bao.addr());
    let ran = ci.run_job(&plan_job, &github_steps(&v, "plan"));
    assert!(ran.iter().all(|(c, _)| *c == 0), "{ran:?}");
    // main moved on after the plan: the apply job checks out another commit.
    let apply_job = work.path().join("apply-job");
    checkout(&apply_job, &ci.bao.addr());
    let roles = apply_job.join("roles.yaml");
    let text = std::fs::read_to_string(&roles).unwrap();
    std::fs::write(&roles, text.replace("ttl: 24h", "ttl: 12h")).unwrap();
    std::fs::copy(plan_job.join("plan.json"), apply_job.join("plan.json")).unwrap();
    let ran = ci.run_job(&apply_job, &github_steps(&v, "apply"));
    let (code, stderr) = ran.last().unwrap();
    assert_eq!(*code, 1, "{stderr}");
    assert!(stderr.contains("plan is stale"), "{stderr}");
    assert!(
        ci.bao
            .bao(&["read", "pki_int/roles/homelab-dot-local"])
            .status
            .code()
            != Some(0)
    );
}

/// Writes the apply lock as another certplane holding it would have (a live
/// lease of 5 minutes), or its release.
fn hold_lock(bao: &OpenBao, released: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let record = serde_json::json!({"data": {
        "holder": {"host": "merge-job-41", "pid": 77, "repository": "/builds/pki", "version": "0.1.0"},
        "since": now - 5,
        "expires": now + 300,
        "released": released,
    }});
    let file = bao.dir().join("lock-record.json");
    std::fs::write(&file, record.to_string()).unwrap();
    bao.bao_ok(&[
        "write",
        "certplane/data/lock",
        &format!("@{}", file.display()),
    ]);
}

/// Issue 7 follow-up: the apply job of the previous merge (or the `run`
/// loop) holds the apply lock when this merge's apply job starts. With the
/// default `--lock-timeout 0s` the job failed at once; the workflows wait.
#[test]
fn the_apply_job_waits_for_another_certplane_holding_the_apply_lock() {
    for (file, steps) in [
        (
            "github-actions.yml",
            github_steps as fn(&Value, &str) -> Vec<Step>,
        ),
        ("gitlab-ci.yml", gitlab_steps),
    ] {
        let ci = Ci::start();
        let (_, v) = example(file);
        let work = tempfile::tempdir().unwrap();
        let plan_job = work.path().join("plan-job");
        checkout(&plan_job, &ci.bao.addr());
        let ran = ci.run_job(&plan_job, &steps(&v, "plan"));
        assert!(ran.iter().all(|(c, _)| *c == 0), "{file}: {ran:?}");

        ci.bao
            .bao_ok(&["secrets", "enable", "-path=certplane", "-version=2", "kv"]);
        hold_lock(&ci.bao, false);
        let apply_job = work.path().join("apply-job");
        checkout(&apply_job, &ci.bao.addr());
        std::fs::copy(plan_job.join("plan.json"), apply_job.join("plan.json")).unwrap();
        let apply_steps = steps(&v, "apply");
        let started = std::time::Instant::now();
        let ran = std::thread::scope(|s| {
            let job = s.spawn(|| ci.run_job(&apply_job, &apply_steps));
            std::thread::sleep(std::time::Duration::from_secs(3));
            // Nothing was applied while the other certplane held the lock.
            assert!(
                ci.bao
                    .bao(&["read", "pki_int/roles/homelab-dot-local"])
                    .status
                    .code()
                    != Some(0),
                "{file}: applied under another holder's lock"
            );
            hold_lock(&ci.bao, true);
            job.join().unwrap()
        });
        assert!(ran.iter().all(|(c, _)| *c == 0), "{file}: {ran:?}");
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(3),
            "{file}: did not wait: {:?}",
            started.elapsed()
        );
        ci.assert_applied(&apply_job);
    }
}
