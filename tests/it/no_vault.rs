//! A repository without Vault objects (examples/acme-dns01: an ACME issuer
//! and a certificate) does not need a Vault: plan, apply and verify run
//! without connecting to one (regression: they demanded a reachable Vault).
//! A loopback listener stands in for `VAULT_ADDR` and counts connections.

use crate::common::{Decoy, certplane, copy_dir, in_repo};

#[test]
fn an_acme_only_repository_plans_applies_and_verifies_without_vault() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    copy_dir(&in_repo("examples/acme-dns01"), &repo);
    let repo = repo.to_str().unwrap();
    let vault = Decoy::start();
    let addr = vault.addr();
    for env in [
        vec![("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "unused")],
        // No Vault settings at all: no "no vault address" error either.
        vec![],
    ] {
        let plan = certplane(&["plan", repo], &env, home.path());
        plan.expect(2);
        assert!(
            plan.stdout
                .contains("cert-manager.io/ClusterIssuer/letsencrypt-dns"),
            "{}",
            plan.both()
        );
        assert!(!plan.stdout.contains("vault:"), "{}", plan.both());
        certplane(&["apply", "--auto-approve", repo], &env, home.path()).expect(0);
        let again = certplane(&["plan", repo], &env, home.path());
        again.expect(0);
        assert!(again.stdout.contains("No changes"), "{}", again.both());
        let verify = certplane(&["verify", repo], &env, home.path());
        verify.expect(0);
        assert!(
            verify.stdout.contains("no Vault issuers to verify"),
            "{}",
            verify.both()
        );
        std::fs::remove_dir_all(home.path().join("rendered")).unwrap();
    }
    assert_eq!(vault.connections(), 0, "certplane connected to Vault");
}

/// The same repository with `prune: true` and a Vault configured does
/// connect: Vault objects it applied before may have to be pruned.
#[test]
fn a_pruning_repository_without_vault_objects_still_reaches_vault() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    copy_dir(&in_repo("examples/acme-dns01"), &repo);
    std::fs::write(
        repo.join("certplane.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  prune: true\n",
    )
    .unwrap();
    let vault = Decoy::start();
    let addr = vault.addr();
    let plan = certplane(
        &["plan", repo.to_str().unwrap()],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", "unused")],
        home.path(),
    );
    plan.expect(1);
    assert!(vault.connections() > 0, "{}", plan.both());
}

/// A saved plan of a repository without Vault objects is checked against
/// the live state before applying, as with Vault objects: objects that
/// appeared since make it stale, and nothing is written.
#[test]
fn a_saved_plan_without_vault_objects_is_stale_when_the_objects_moved() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    copy_dir(&in_repo("examples/acme-dns01"), &repo);
    let repo = repo.to_str().unwrap();
    let saved = home.path().join("plan.json");
    let saved = saved.to_str().unwrap();
    certplane(&["plan", "--out", saved, repo], &[], home.path()).expect(2);
    certplane(&["apply", "--auto-approve", repo], &[], home.path()).expect(0);
    let rendered = home.path().join("rendered");
    let files = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for ns in std::fs::read_dir(dir).unwrap() {
            for f in std::fs::read_dir(ns.unwrap().path()).unwrap() {
                out.push(f.unwrap().path());
            }
        }
        out.sort();
        out
    };
    let all = files(&rendered);
    assert_eq!(all.len(), 3, "{all:?}");
    std::fs::remove_file(&all[0]).unwrap();

    let stale = certplane(
        &["apply", "--auto-approve", "--plan", saved, repo],
        &[],
        home.path(),
    );
    stale.expect(1);
    assert!(
        stale.stderr.contains("plan is stale")
            && stale
                .stderr
                .contains("cert-manager.io/Certificate/ingress/wildcard-example-com"),
        "{}",
        stale.both()
    );
    assert_eq!(files(&rendered).len(), 2, "nothing was written");
}
