//! CI mode against a real OpenBao: `plan -o markdown --out plan.json`, then
//! `apply plan.json`. The saved plan holds no secret value (an inline CA
//! bundle and an inline token reviewer JWT are re-read from the repository
//! at apply time); a plan is refused when the repository changed since, and
//! an apply stops with "plan is stale" when a live object moved, writing
//! nothing after it.

mod common;
#[path = "e2e/support.rs"]
mod support;

use std::path::Path;

use common::OpenBao;
use serde_json::{Value, json};
use support::*;

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
    assert_eq!(saved["format_version"], json!(1));
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

    // The live state moves after the plan: the mount tune is re-read and
    // found changed; apply stops there and the role after it stays as it was.
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
