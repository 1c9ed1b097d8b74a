//! `prune: true` for Vault objects: what certplane made and the repository
//! dropped is deleted (roles, auth roles, policies, mounts); what was made
//! by hand never is; a mount holding a CA only with `--allow-destroy-ca`.

mod common;
#[path = "e2e/support.rs"]
mod support;

use common::OpenBao;
use support::certplane_root;

fn repo(dir: &std::path::Path, full: bool, prune: bool) {
    let mut y = String::from(
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: keep}
spec: {ca: {root: {commonName: Keep Root, keyType: ec, keyBits: 256, ttl: 8760h}}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: r1}
spec: {mount: keep, allowedDomains: [example.com]}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: p1}
spec: {rules: [{path: keep/sign/r1, capabilities: [update]}]}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: approle}
spec: {type: approle}
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: a1}
spec: {mount: approle, tokenPolicies: [p1]}
"#,
    );
    if full {
        y.push_str(
            r#"---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: old_ca}
spec: {ca: {root: {commonName: Old Root, keyType: ec, keyBits: 256, ttl: 8760h}}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: r2}
spec: {mount: keep, allowedDomains: [example.org]}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: p2}
spec: {rules: [{path: keep/sign/r2, capabilities: [update]}]}
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: a2}
spec: {mount: approle, tokenPolicies: [p2]}
"#,
        );
    }
    std::fs::write(dir.join("vault.yaml"), y).unwrap();
    let config = dir.join("certplane.yaml");
    if prune {
        std::fs::write(
            &config,
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {prune: true}\n",
        )
        .unwrap();
    } else {
        let _ = std::fs::remove_file(&config);
    }
}

fn exists(bao: &OpenBao, path: &str) -> bool {
    bao.bao(&["read", path]).status.success()
}

#[test]
fn prune_deletes_only_what_certplane_manages_and_guards_cas() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    repo(dir.path(), true, true);
    certplane_root(&bao, &["apply", "--auto-approve", d]).expect(0);
    // Made by hand: never certplane's to delete.
    bao.bao_ok(&["secrets", "enable", "-path=handmade", "pki"]);
    bao.bao_ok(&[
        "write",
        "keep/roles/hand-role",
        "allowed_domains=example.net",
    ]);
    let hcl = dir.path().join("hand.hcl.txt");
    std::fs::write(
        &hcl,
        "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n",
    )
    .unwrap();
    bao.bao_ok(&["policy", "write", "handpol", hcl.to_str().unwrap()]);

    // Objects leave the repository; without prune nothing is deleted.
    repo(dir.path(), false, false);
    let kept = certplane_root(&bao, &["plan", d]);
    kept.expect(0);

    // With prune: a mount holding a CA stops the plan unless allowed.
    repo(dir.path(), false, true);
    let guarded = certplane_root(&bao, &["plan", d]);
    guarded.expect(1);
    assert!(
        guarded.stdout.contains("--allow-destroy-ca"),
        "{}",
        guarded.both()
    );
    assert!(
        guarded.stdout.contains("vault:sys/mounts/old_ca"),
        "{}",
        guarded.both()
    );
    certplane_root(&bao, &["apply", "--auto-approve", d]).expect(1);
    assert!(
        exists(&bao, "keep/roles/r2"),
        "nothing applied from an errored plan"
    );

    let allowed = certplane_root(&bao, &["plan", "--allow-destroy-ca", d]);
    allowed.expect(2);
    for addr in [
        "vault:keep/roles/r2 (delete)",
        "vault:keep/roles/hand-role (delete)",
        "vault:sys/policies/acl/p2 (delete)",
        "vault:auth/approle/role/a2 (delete)",
        "vault:sys/mounts/old_ca (delete)",
    ] {
        assert!(allowed.stdout.contains(addr), "{addr}\n{}", allowed.both());
    }
    assert!(!allowed.stdout.contains("handmade"), "{}", allowed.both());
    assert!(!allowed.stdout.contains("handpol"), "{}", allowed.both());
    certplane_root(&bao, &["apply", "--auto-approve", "--allow-destroy-ca", d]).expect(0);

    assert!(!exists(&bao, "keep/roles/r2"));
    assert!(!exists(&bao, "sys/policies/acl/p2"));
    assert!(!exists(&bao, "auth/approle/role/a2"));
    assert!(!bao.bao_ok(&["secrets", "list"]).contains("old_ca/"));
    // Kept: declared objects and everything made by hand.
    assert!(exists(&bao, "keep/roles/r1"));
    assert!(exists(&bao, "sys/policies/acl/p1"));
    assert!(exists(&bao, "sys/policies/acl/handpol"));
    assert!(bao.bao_ok(&["secrets", "list"]).contains("handmade/"));
    certplane_root(&bao, &["plan", d]).expect(0);
}
