//! What the CLI prints, pinned by snapshots (`tests/it/snapshots/`): the
//! human output of `validate` (valid and invalid), `plan` (changes and no
//! changes), `apply` and the markdown plan, the whole `plan -o json`
//! document of a plan with changes, notes and errors, and the JSON error
//! document of `plan -o json` on an invalid repository. Each runs the
//! binary as a user would, against a real OpenBao where it needs one; the
//! filters of [`common::snapshot`] blank what differs between runs.

use std::path::{Path, PathBuf};

use crate::common::{self, OpenBao, Run, certplane, certplane_root, snapshot::run_text, write};

/// A small repository with both halves: a root and an intermediate CA, a
/// role, a policy, and a namespace with an Issuer and a Certificate. Its
/// identity is `lab`.
fn lab(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    write(
        &repo,
        "certplane.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: lab}\nspec: {}\n",
    );
    write(
        &repo,
        "vault.yaml",
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  description: Lab root CA
  maxLeaseTTL: 87600h
  ca:
    root: {commonName: Lab Root CA, issuerName: root-2026, keyType: ec, keyBits: 256, ttl: 87600h}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Lab Intermediate CA
      issuerName: int-2026
      keyType: ec
      keyBits: 256
      ttl: 43800h
      signedBy: {mount: pki}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec:
  mount: pki_int
  allowedDomains: [example.com]
  allowSubdomains: true
  keyType: ec
  keyBits: 256
  ttl: 24h
  maxTTL: 720h
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: cert-manager-sign}
spec:
  rules:
    - path: pki_int/sign/web
      capabilities: [update]
"#,
    );
    write(
        &repo,
        "cluster.yaml",
        r#"apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: vault-issuer, namespace: sandbox}
spec:
  vault:
    server: https://vault.vault:8200
    path: pki_int/sign/web
    auth:
      tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: sandbox}
spec:
  secretName: web-tls
  commonName: web.example.com
  dnsNames: [web.example.com]
  duration: 720h
  renewBefore: 240h
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: vault-issuer, kind: Issuer, group: cert-manager.io}
"#,
    );
    repo
}

/// A repository with a role on an undeclared mount (`roles.yaml` line 5).
fn invalid(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    write(
        &repo,
        "pki.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki_int}\nspec:\n  ca:\n    root: {commonName: Test Root}\n",
    );
    write(
        &repo,
        "roles.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {name: web}\nspec:\n  mount: pki_itn\n  allowedDomains: [example.com]\n",
    );
    repo
}

/// Runs `f` with the snapshot filters for `bao`'s scratch directory (the
/// test's `HOME`, holding the repository and the rendered files).
fn with_filters(home: &Path, f: impl FnOnce()) {
    common::snapshot::settings(&[(home, "[HOME]")]).bind(f);
}

#[test]
fn validate_says_valid_with_the_counts() {
    let home = tempfile::tempdir().unwrap();
    let repo = lab(home.path());
    let run = certplane(&["validate", repo.to_str().unwrap()], &[], home.path());
    run.expect(0);
    with_filters(home.path(), || insta::assert_snapshot!(run_text(&run)));
}

#[test]
fn validate_of_an_invalid_repository_names_the_place_and_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let repo = invalid(home.path());
    let run = certplane(&["validate", repo.to_str().unwrap()], &[], home.path());
    run.expect(1);
    with_filters(home.path(), || insta::assert_snapshot!(run_text(&run)));
}

#[test]
fn plan_json_of_an_invalid_repository_is_an_error_document() {
    let home = tempfile::tempdir().unwrap();
    let repo = invalid(home.path());
    let run = certplane(
        &["plan", "-o", "json", repo.to_str().unwrap()],
        &[],
        home.path(),
    );
    run.expect(1);
    let doc = common::json_plan(&run);
    with_filters(home.path(), || {
        insta::assert_json_snapshot!(doc);
        insta::assert_snapshot!("plan_json_of_an_invalid_repository_stderr", run.stderr);
    });
}

/// plan, markdown plan, apply and the plan after it, of the lab repository
/// against a fresh OpenBao.
#[test]
fn plan_apply_and_plan_again() {
    let bao = OpenBao::start();
    let repo = lab(bao.dir());
    let dir = repo.to_str().unwrap();
    let plan = certplane_root(&bao, &["plan", dir]);
    plan.expect(2);
    let markdown = certplane_root(&bao, &["plan", "-o", "markdown", dir]);
    markdown.expect(2);
    let apply = certplane_root(&bao, &["apply", "--auto-approve", dir]);
    apply.expect(0);
    let again = certplane_root(&bao, &["plan", dir]);
    again.expect(0);
    with_filters(bao.dir(), || {
        insta::assert_snapshot!("plan", run_text(&plan));
        insta::assert_snapshot!("plan_markdown", markdown.stdout);
        insta::assert_snapshot!("apply", run_text(&apply));
        insta::assert_snapshot!("plan_no_changes", run_text(&again));
    });
}

/// The whole `plan -o json` document of a plan with every part: after the
/// lab repository is applied, the repository drops its role (kept, prune
/// is off: a note), changes its policy, adds a role and moves the cluster
/// half to it (changes), and declares a mount inside one made by hand (an
/// error).
#[test]
fn plan_json_with_changes_notes_and_errors() {
    let bao = OpenBao::start();
    let repo = lab(bao.dir());
    let dir = repo.to_str().unwrap();
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    bao.bao_ok(&["secrets", "enable", "-path=team", "pki"]);
    let vault = std::fs::read_to_string(repo.join("vault.yaml")).unwrap();
    let role = vault
        .find("apiVersion: certplane.dev/v1alpha1\nkind: PkiRole")
        .unwrap();
    let policy = vault
        .find("apiVersion: certplane.dev/v1alpha1\nkind: Policy")
        .unwrap();
    let vault = format!(
        "{}{}",
        &vault[..role],
        vault[policy..]
            .replace("pki_int/sign/web", "pki_int/sign/api")
            .replace("capabilities: [update]", "capabilities: [create, update]")
    );
    write(
        &repo,
        "vault.yaml",
        &format!(
            "{vault}---\n\
             apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {{name: api}}\n\
             spec:\n  mount: pki_int\n  allowedDomains: [example.com]\n  allowSubdomains: true\n  keyType: ec\n  keyBits: 256\n  ttl: 1h\n  maxTTL: 720h\n\
             ---\n\
             apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {{name: team/int}}\nspec: {{}}\n"
        ),
    );
    common::edit(
        &repo,
        "cluster.yaml",
        "path: pki_int/sign/web",
        "path: pki_int/sign/api",
    );
    common::edit(&repo, "cluster.yaml", "web.example.com", "api.example.com");
    common::edit(
        &repo,
        "cluster.yaml",
        "[web.example.com]",
        "[api.example.com]",
    );
    let run: Run = certplane_root(&bao, &["plan", "-o", "json", dir]);
    run.expect(1);
    let doc = common::json_plan(&run);
    for part in ["changes", "notes", "errors"] {
        assert!(
            doc[part].as_array().is_some_and(|a| !a.is_empty()),
            "no {part}: {doc:#}"
        );
    }
    with_filters(bao.dir(), || insta::assert_json_snapshot!(doc));
}
