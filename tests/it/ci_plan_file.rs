//! CI mode against a real OpenBao: `plan -o markdown --out plan.json`, then
//! `apply plan.json`. The saved plan holds no secret value (an inline CA
//! bundle and an inline token reviewer JWT are re-read from the repository
//! at apply time); a plan is refused when the repository changed since, and
//! an apply stops with "plan is stale" when a live object moved, writing
//! nothing after it.

use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

const JWT: &str = "eyJhbGciOiJub25lIn0.c2VjcmV0LXJldmlld2VyLWp3dA.sig-secret-reviewer";

/// homelab, plus an imported CA whose bundle (with its key) is written
/// inline, and an inline token reviewer JWT.
fn repo_with_inline_secrets(root: &Path) -> (std::path::PathBuf, String) {
    let repo = root.join("repo");
    copy_dir(&homelab(), &repo);
    let (cert, key) = rcgen_ca("Inline Imported CA");
    let bundle = format!("{cert}{key}");
    let indented: String = bundle.lines().map(|l| format!("          {l}\n")).collect();
    std::fs::write(
        repo.join("imported.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata:\n  name: pki_imported\nspec:\n  ca:\n    import:\n      pemBundleFrom:\n        value: |\n{indented}"
        ),
    )
    .unwrap();
    let auth = std::fs::read_to_string(repo.join("auth.yaml")).unwrap();
    // The reviewer's JWT inline instead of homelab's reviewer ServiceAccount.
    let sa = "    tokenReviewer:\n      serviceAccount: {namespace: vault-auth, name: vault-token-reviewer}\n";
    assert!(auth.contains(sa), "{auth}");
    let auth = auth.replace(sa, &format!("    tokenReviewerJwtFrom: {{value: {JWT}}}\n"));
    std::fs::write(repo.join("auth.yaml"), auth).unwrap();
    let key_body = pem_body_lines(&key).into_iter().nth(1).unwrap();
    (repo, key_body)
}

fn run(bao: &OpenBao, args: &[&str]) -> Run {
    certplane_root(bao, args)
}

#[test]
fn saved_plan_is_applied_exactly_and_holds_no_secret() {
    let bao = OpenBao::start();
    let (repo, key_line) = repo_with_inline_secrets(bao.dir());
    let repo = repo.to_str().unwrap();
    let render = bao.dir().join("rendered");
    let render = render.to_str().unwrap();
    let file = bao.dir().join("plan.json");
    let file_s = file.to_str().unwrap();

    let planned = run(
        &bao,
        &[
            "plan", "-o", "markdown", "--render", render, "--out", file_s, repo,
        ],
    );
    planned.expect(2);
    let md = &planned.stdout;
    assert!(md.contains("| Action | Object | Reason |"), "{md}");
    assert!(
        md.contains("| create | `vault:sys/mounts/pki_int` |"),
        "{md}"
    );
    let details = md.find("<details>").expect("a details block");
    assert!(md[details..].contains("token_reviewer_jwt"), "{md}");
    assert!(md[details..].contains("(sensitive)"), "{md}");
    assert!(!md.contains(JWT) && !md.contains(&key_line), "{md}");

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(JWT),
        "the reviewer JWT leaked into the plan file"
    );
    assert!(
        !text.contains(&key_line),
        "the CA key leaked into the plan file"
    );
    assert!(
        !text.contains("PRIVATE KEY"),
        "a key leaked into the plan file"
    );
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["format_version"], json!(3));
    // Every address, of a change or an error, is its one string form.
    assert!(
        saved["plan"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["addr"]
                .as_str()
                .is_some_and(|a| a.contains(':') || a.contains('/'))),
        "{text}"
    );
    assert_eq!(saved["repository_hash"].as_str().unwrap().len(), 64);

    // Nothing was applied by plan.
    assert!(read(&bao, "sys/mounts/pki_int/tune").is_none());

    let applied = run(&bao, &["apply", "--auto-approve", file_s]);
    applied.expect(0);
    assert!(
        applied.stdout.contains("Apply complete!"),
        "{}",
        applied.both()
    );
    // The secrets reached Vault, read from the repository.
    let imported = default_issuer_pem(&bao, "pki_imported");
    assert!(imported.contains("BEGIN CERTIFICATE"), "{imported}");
    let again = run(&bao, &["plan", "--render", render, repo]);
    again.expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.both());
}

fn set_role_ttl(repo: &Path, ttl: &str) {
    let roles = std::fs::read_to_string(repo.join("roles.yaml")).unwrap();
    let roles = roles.replace("  ttl: 24h\n", &format!("  ttl: {ttl}\n"));
    std::fs::write(repo.join("roles.yaml"), roles).unwrap();
}

fn set_int_max_lease(repo: &Path, ttl: &str) {
    let pki = std::fs::read_to_string(repo.join("pki.yaml")).unwrap();
    let pki = pki.replace("maxLeaseTTL: 43800h", &format!("maxLeaseTTL: {ttl}"));
    std::fs::write(repo.join("pki.yaml"), pki).unwrap();
}

#[test]
fn a_changed_repository_or_moved_object_refuses_the_plan() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let repo_s = repo.to_str().unwrap();
    let render = bao.dir().join("rendered");
    let render = render.to_str().unwrap();
    run(
        &bao,
        &["apply", "--auto-approve", "--render", render, repo_s],
    )
    .expect(0);

    // The repository changes after the plan: refused, nothing written.
    set_role_ttl(&repo, "12h");
    let file = bao.dir().join("plan.json");
    let file_s = file.to_str().unwrap();
    run(&bao, &["plan", "--render", render, "--out", file_s, repo_s]).expect(2);
    std::fs::write(repo.join("notes.yaml"), "# a later commit\n").unwrap();
    let refused = run(&bao, &["apply", "--auto-approve", file_s]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("plan is stale") && refused.stderr.contains("changed since"),
        "{}",
        refused.both()
    );
    let role = read(&bao, "pki_int/roles/homelab-dot-local").unwrap();
    assert_eq!(role["ttl"], json!(86400), "nothing may be written: {role}");
    std::fs::remove_file(repo.join("notes.yaml")).unwrap();

    // The live state moves after the plan: apply plans again, finds the
    // mount's tune moved ("plan is stale"), and writes nothing at all.
    set_int_max_lease(&repo, "40000h");
    run(&bao, &["plan", "--render", render, "--out", file_s, repo_s]).expect(2);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let order: Vec<String> = saved["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| c["addr"].to_string())
        .collect();
    assert_eq!(order.len(), 2, "{order:?}");
    assert!(order[0].contains("sys/mounts/pki_int"), "{order:?}");
    bao.bao_ok(&["secrets", "tune", "-max-lease-ttl=30000h", "pki_int"]);
    let stale = run(&bao, &["apply", "--auto-approve", "--plan", file_s, repo_s]);
    stale.expect(1);
    assert!(
        stale.stderr.contains("plan is stale") && stale.stderr.contains("pki_int"),
        "{}",
        stale.both()
    );
    let role = read(&bao, "pki_int/roles/homelab-dot-local").unwrap();
    assert_eq!(
        role["ttl"],
        json!(86400),
        "nothing after the stale object: {role}"
    );
    let tune = read(&bao, "sys/mounts/pki_int/tune").unwrap();
    assert_eq!(tune["max_lease_ttl"], json!(30000 * 3600), "{tune}");
}

/// The change at `addr` (a Vault path) of a saved plan.
fn change_at<'a>(saved: &'a mut Value, addr: &str) -> &'a mut Value {
    saved["plan"]["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["addr"] == format!("vault:{addr}").as_str())
        .unwrap_or_else(|| panic!("no change at {addr}"))
}

#[test]
fn a_tampered_plan_file_is_refused_naming_the_change_and_writes_nothing() {
    let bao = OpenBao::start_with_audit();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let repo_s = repo.to_str().unwrap();
    run(&bao, &["apply", "--auto-approve", repo_s]).expect(0);
    set_role_ttl(&repo, "12h");
    let file = bao.dir().join("plan.json");
    let file_s = file.to_str().unwrap();
    run(&bao, &["plan", "--out", file_s, repo_s]).expect(2);
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    const ROLE: &str = "pki_int/roles/homelab-dot-local";

    type Tamper = fn(&mut Value);
    let cases: Vec<(&str, Tamper, &[&str])> = vec![
        (
            "a sys/* sudo policy added",
            |v| {
                let mut evil = change_at(v, "sys/policies/acl/homelab").clone();
                evil["addr"] = json!("vault:sys/policies/acl/evil");
                evil["action"] = json!("create");
                evil["before"] = Value::Null;
                evil["after"] = json!({"policy": "path \"sys/*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"]\n}\n"});
                v["plan"]["changes"].as_array_mut().unwrap().insert(0, evil);
            },
            &[
                "vault:sys/policies/acl/evil",
                "not declared by the repository",
            ],
        ),
        (
            "a role's domains widened",
            |v| {
                let role = change_at(v, ROLE);
                role["after"]["allowed_domains"] = json!(["*"]);
                role["after"]["allow_any_name"] = json!(true);
            },
            &[
                "vault:pki_int/roles/homelab-dot-local: after.allowed_domains: the file says [\"*\"]",
                "after.allow_any_name",
            ],
        ),
        (
            "an auth role bound to *",
            |v| {
                let r = change_at(v, "auth/kubernetes/role/homelab");
                r["action"] = json!("update");
                r["after"]["bound_service_account_names"] = json!(["*"]);
                r["after"]["bound_service_account_namespaces"] = json!(["*"]);
            },
            &[
                "vault:auth/kubernetes/role/homelab: action: the file says \"update\"",
                "after.bound_service_account_names: the file says [\"*\"]",
            ],
        ),
        (
            "an action changed to delete",
            |v| change_at(v, "sys/policies/acl/homelab")["action"] = json!("delete"),
            &[
                "vault:sys/policies/acl/homelab: action: the file says \"delete\", the repository produces \"no_op\"",
            ],
        ),
        (
            "a delete of Vault's own default policy added",
            |v| {
                let mut del = change_at(v, "sys/policies/acl/homelab").clone();
                del["addr"] = json!("vault:sys/policies/acl/default");
                del["action"] = json!("delete");
                del["after"] = Value::Null;
                v["plan"]["changes"].as_array_mut().unwrap().push(del);
            },
            &["vault:sys/policies/acl/default: the file deletes it; the repository does not"],
        ),
        (
            "the reviewed change removed",
            |v| {
                v["plan"]["changes"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|c| c["addr"] != format!("vault:{ROLE}").as_str());
            },
            &[
                "vault:pki_int/roles/homelab-dot-local: declared by the repository (update), missing from the file",
            ],
        ),
    ];
    for (what, tamper, expect) in cases {
        let mut v = original.clone();
        tamper(&mut v);
        let tampered = bao.dir().join("tampered.json");
        std::fs::write(&tampered, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let before = writes_since(&bao, 0);
        let refused = run(
            &bao,
            &["apply", "--auto-approve", tampered.to_str().unwrap()],
        );
        assert_eq!(refused.code, 1, "{what}: {}", refused.both());
        assert!(
            refused
                .stderr
                .contains("does not match what the repository produces"),
            "{what}: {}",
            refused.both()
        );
        for e in expect {
            assert!(
                refused.stderr.contains(e),
                "{what}: no {e:?} in\n{}",
                refused.both()
            );
        }
        assert!(
            !refused.stderr.contains("plan is stale"),
            "{what}: {}",
            refused.both()
        );
        let after = writes_since(&bao, 0);
        assert_eq!(before, after, "{what}: something was written");
    }
    assert!(read(&bao, "sys/policies/acl/evil").is_none());
    assert!(read(&bao, "sys/policies/acl/default").is_some());
    assert_eq!(read(&bao, ROLE).unwrap()["ttl"], json!(86400));

    // A plan made with --allow-destroy-ca needs the flag at apply too.
    let mut v = original.clone();
    v["allow_destroy_ca"] = json!(true);
    let flagged = bao.dir().join("flagged.json");
    std::fs::write(&flagged, serde_json::to_string(&v).unwrap()).unwrap();
    let refused = run(
        &bao,
        &["apply", "--auto-approve", flagged.to_str().unwrap()],
    );
    refused.expect(1);
    assert!(
        refused.stderr.contains("--allow-destroy-ca"),
        "{}",
        refused.both()
    );

    // A file of another format version is refused with what to do.
    let mut v = original.clone();
    v["format_version"] = json!(1);
    std::fs::write(&flagged, serde_json::to_string(&v).unwrap()).unwrap();
    let refused = run(
        &bao,
        &["apply", "--auto-approve", flagged.to_str().unwrap()],
    );
    refused.expect(1);
    assert!(
        refused.stderr.contains("plan format version 1")
            && refused.stderr.contains("run plan again"),
        "{}",
        refused.both()
    );
    // So is a file of version 2, whose addresses were objects
    // (`{"Vault": "pki/roles/web"}`): the version says it before the shape.
    let mut v = original.clone();
    v["format_version"] = json!(2);
    for c in v["plan"]["changes"].as_array_mut().unwrap() {
        if let Some(path) = c["addr"].as_str().and_then(|a| a.strip_prefix("vault:")) {
            c["addr"] = json!({"Vault": path});
        }
    }
    std::fs::write(&flagged, serde_json::to_string(&v).unwrap()).unwrap();
    let refused = run(
        &bao,
        &["apply", "--auto-approve", flagged.to_str().unwrap()],
    );
    refused.expect(1);
    assert!(
        refused
            .stderr
            .contains("has plan format version 2, this certplane reads version 3; run plan again"),
        "{}",
        refused.both()
    );

    // The untouched file applies.
    let before = writes_since(&bao, 0).len();
    run(&bao, &["apply", "--auto-approve", file_s]).expect(0);
    assert_eq!(read(&bao, ROLE).unwrap()["ttl"], json!(43200));
    assert!(writes_since(&bao, 0).len() > before);
}

#[test]
fn files_next_to_the_repository_do_not_change_its_identity() {
    // Regression: `plan . --out plan.json` inside the repository, then
    // `apply plan.json`, said "the repository changed since the plan was made".
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let out = |args: &[&str]| {
        command(bao.dir())
            .args(args)
            .current_dir(&repo)
            .env("VAULT_ADDR", bao.addr())
            .env("VAULT_TOKEN", bao.token())
            .output()
            .unwrap()
    };
    let planned = out(&[
        "plan",
        "--render",
        "../rendered",
        "-o",
        "markdown",
        "--out",
        "plan.json",
        ".",
    ]);
    assert_eq!(
        planned.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    std::fs::write(repo.join("plan.md"), &planned.stdout).unwrap();
    std::fs::write(repo.join("NOTES.txt"), "not repository input\n").unwrap();
    let applied = out(&["apply", "--auto-approve", "plan.json"]);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(bao.dir().join("rendered").is_dir());

    // A file a spec names is repository input: changing it refuses the plan.
    let planned = out(&["plan", "--render", "../rendered", "--out", "plan.json", "."]);
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let pem = std::fs::read_to_string(repo.join("ca/k8s-ca.pem")).unwrap();
    std::fs::write(repo.join("ca/k8s-ca.pem"), format!("{pem}\n")).unwrap();
    let refused = out(&["apply", "--auto-approve", "plan.json"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("changed since the plan was made"),
        "{stderr}"
    );

    // A plan saved as YAML inside the repository would become input: refused.
    let yaml = out(&["plan", "--render", "../rendered", "--out", "plan.yaml", "."]);
    assert_eq!(yaml.status.code(), Some(1));
    assert!(!repo.join("plan.yaml").exists());
}
