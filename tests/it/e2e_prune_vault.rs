//! `prune: true` for Vault objects: what certplane made and the repository
//! dropped is deleted (roles, auth roles, policies, mounts); what was made
//! by hand never is; a mount holding a CA only with `--allow-destroy-ca`.

use crate::common;

use crate::common::certplane_root;
use common::OpenBao;

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

/// A repository of its own directory (the directory's name is its identity
/// unless `name` is given), with `prune: true`.
fn team_repo(root: &std::path::Path, dir: &str, name: Option<&str>, yaml: &str) -> String {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let meta = name
        .map(|n| format!("metadata: {{name: {n}}}\n"))
        .unwrap_or_default();
    std::fs::write(
        d.join("certplane.yaml"),
        format!("apiVersion: certplane.dev/v1alpha1\nkind: Config\n{meta}spec: {{prune: true}}\n"),
    )
    .unwrap();
    std::fs::write(d.join("vault.yaml"), yaml).unwrap();
    d.to_str().unwrap().to_string()
}

/// A mount with a CA, a role, a policy, an auth mount with an AppRole, and a
/// mount without a CA, all named after `t`.
fn team_objects(t: &str, with_extras: bool) -> String {
    let mut y = format!(
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki_{t}}}
spec: {{ca: {{root: {{commonName: {t} Root, keyType: ec, keyBits: 256, ttl: 8760h}}}}}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: web}}
spec: {{mount: pki_{t}, allowedDomains: [{t}.example.com]}}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {{name: {t}-web}}
spec: {{rules: [{{path: pki_{t}/sign/web, capabilities: [update]}}]}}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {{name: approle_{t}}}
spec: {{type: approle}}
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {{name: {t}-app}}
spec: {{mount: approle_{t}, tokenPolicies: [{t}-web]}}
"#
    );
    if with_extras {
        y.push_str(&format!(
            r#"---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: scratch_{t}}}
spec: {{description: no CA here}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: old}}
spec: {{mount: pki_{t}, allowedDomains: [old.{t}.example.com]}}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {{name: {t}-old}}
spec: {{rules: [{{path: pki_{t}/sign/old, capabilities: [update]}}]}}
"#
        ));
    }
    y
}

fn deletes(run: &common::Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.trim_end().ends_with("(delete)"))
        .map(|l| l.trim().trim_start_matches("- ").to_string())
        .collect()
}

/// Regression: a second repository with `prune: true` and no Vault objects
/// at all, applied to the same Vault, planned to delete the first
/// repository's PKI mount. Objects are owned per repository identity:
/// neither of two pruning repositories plans to delete the other's, and one
/// that removes its own role, policy and mount prunes exactly those.
#[test]
fn regression_two_repositories_never_prune_each_other() {
    let bao = OpenBao::start();
    let root = tempfile::tempdir().unwrap();
    let a = team_repo(root.path(), "team-a", None, &team_objects("a", true));
    let b = team_repo(root.path(), "team-b", None, &team_objects("b", false));
    let empty = team_repo(root.path(), "nothing", None, "");

    certplane_root(&bao, &["apply", "--auto-approve", &a]).expect(0);
    // The mount records its owner next to certplane's tag.
    let mounts = mount_table(&bao, "sys/mounts");
    assert_eq!(
        mounts["pki_a/"]["options"],
        serde_json::json!({"managed-by": "certplane", "certplane-repository": "team-a"}),
        "{mounts}"
    );
    let auths = mount_table(&bao, "sys/auth");
    assert_eq!(
        auths["approle_a/"]["options"]["certplane-repository"],
        "team-a"
    );
    let policy = bao.bao_ok(&["policy", "read", "a-web"]);
    assert!(
        policy.starts_with("# Managed by certplane for repository team-a: "),
        "{policy}"
    );

    // A repository with no Vault objects at all deletes nothing of team-a's.
    let nothing = certplane_root(&bao, &["plan", "--allow-destroy-ca", &empty]);
    nothing.expect(0);
    assert!(deletes(&nothing).is_empty(), "{}", nothing.both());

    // team-b applies beside team-a, and neither plans to delete the other's.
    let b_first = certplane_root(&bao, &["plan", "--allow-destroy-ca", &b]);
    b_first.expect(2);
    assert!(deletes(&b_first).is_empty(), "{}", b_first.both());
    certplane_root(&bao, &["apply", "--auto-approve", &b]).expect(0);
    for (repo, who) in [(&a, "team-a"), (&b, "team-b")] {
        let again = certplane_root(&bao, &["plan", "--allow-destroy-ca", repo]);
        again.expect(0);
        assert!(deletes(&again).is_empty(), "{who}: {}", again.both());
        assert!(!again.stdout.contains("(kept)"), "{who}: {}", again.both());
    }

    // team-a drops its extra role, policy and CA-less mount: exactly those go.
    team_repo(root.path(), "team-a", None, &team_objects("a", false));
    let pruning = certplane_root(&bao, &["plan", &a]);
    pruning.expect(2);
    let mut got = deletes(&pruning);
    got.sort();
    assert_eq!(
        got,
        [
            "vault:pki_a/roles/old (delete)",
            "vault:sys/mounts/scratch_a (delete)",
            "vault:sys/policies/acl/a-old (delete)",
        ],
        "{}",
        pruning.both()
    );
    certplane_root(&bao, &["apply", "--auto-approve", &a]).expect(0);
    assert!(!exists(&bao, "pki_a/roles/old"));
    assert!(!exists(&bao, "sys/policies/acl/a-old"));
    assert!(!bao.bao_ok(&["secrets", "list"]).contains("scratch_a/"));
    for path in [
        "pki_a/roles/web",
        "sys/policies/acl/a-web",
        "auth/approle_a/role/a-app",
        "pki_b/roles/web",
        "sys/policies/acl/b-web",
        "auth/approle_b/role/b-app",
    ] {
        assert!(exists(&bao, path), "{path} survives");
    }
    certplane_root(&bao, &["plan", &a]).expect(0);
    certplane_root(&bao, &["plan", &b]).expect(0);
}

/// A mount or policy another repository owns is never taken over: the plan
/// errors, names the owner and says how to share one identity.
#[test]
fn a_declared_object_of_another_repository_is_a_plan_error() {
    let bao = OpenBao::start();
    let root = tempfile::tempdir().unwrap();
    let a = team_repo(root.path(), "team-a", None, &team_objects("a", false));
    certplane_root(&bao, &["apply", "--auto-approve", &a]).expect(0);
    // The same objects from another place (another directory name).
    let copy = team_repo(root.path(), "ci-checkout", None, &team_objects("a", false));
    let conflict = certplane_root(&bao, &["plan", &copy]);
    conflict.expect(1);
    for needle in [
        "vault:sys/mounts/pki_a: this mount belongs to the repository \"team-a\"",
        "vault:sys/policies/acl/a-web: this policy belongs to the repository \"team-a\"",
        "metadata.name",
    ] {
        assert!(
            conflict.stdout.contains(needle),
            "{needle}\n{}",
            conflict.both()
        );
    }
    certplane_root(&bao, &["apply", "--auto-approve", &copy]).expect(1);
    // Named like the first, it is the same repository: nothing to do.
    let named = team_repo(
        root.path(),
        "ci-checkout",
        Some("team-a"),
        &team_objects("a", false),
    );
    certplane_root(&bao, &["plan", &named]).expect(0);
}

/// Objects made by an older certplane (tagged, no repository recorded) are
/// adopted by the repository that declares them, and never deleted on the
/// basis of the missing identity.
#[test]
fn objects_of_an_older_certplane_are_adopted_when_declared_and_never_pruned() {
    let bao = OpenBao::start();
    let root = tempfile::tempdir().unwrap();
    // What an older certplane left: tagged mounts and a marked policy.
    for path in ["pki_old", "pki_gone"] {
        bao.bao_ok(&[
            "secrets",
            "enable",
            &format!("-path={path}"),
            "-options=managed-by=certplane",
            "pki",
        ]);
    }
    bao.bao_ok(&[
        "write",
        "pki_old/roles/stray",
        "allowed_domains=example.net",
    ]);
    let hcl = root.path().join("old.hcl.txt");
    std::fs::write(
        &hcl,
        "# Managed by certplane: edits here are overwritten.\n\npath \"pki_old/sign/web\" {\n  capabilities = [\"update\"]\n}\n",
    )
    .unwrap();
    bao.bao_ok(&["policy", "write", "old-web", hcl.to_str().unwrap()]);
    bao.bao_ok(&["policy", "write", "old-gone", hcl.to_str().unwrap()]);

    let repo = team_repo(
        root.path(),
        "adopter",
        None,
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_old}
spec: {}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec: {mount: pki_old, allowedDomains: [example.com]}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: old-web}
spec: {rules: [{path: pki_old/sign/web, capabilities: [update]}]}
"#,
    );
    let plan = certplane_root(&bao, &["plan", &repo]);
    plan.expect(2);
    for needle in [
        "vault:sys/mounts/pki_old (update)",
        "adopt: record the repository adopter as its owner",
        "vault:sys/policies/acl/old-web (update)",
        // Under a mount it adopts, a stray role is this repository's.
        "vault:pki_old/roles/stray (delete)",
    ] {
        assert!(plan.stdout.contains(needle), "{needle}\n{}", plan.both());
    }
    // Undeclared and without an owner: noted, never deleted.
    assert!(
        !plan.stdout.contains("pki_gone (delete)"),
        "{}",
        plan.both()
    );
    assert!(
        !plan.stdout.contains("old-gone (delete)"),
        "{}",
        plan.both()
    );
    assert!(
        plan.stdout.contains("vault:sys/mounts/pki_gone (kept)"),
        "{}",
        plan.both()
    );
    certplane_root(&bao, &["apply", "--auto-approve", &repo]).expect(0);
    let mounts = mount_table(&bao, "sys/mounts");
    assert_eq!(
        mounts["pki_old/"]["options"]["certplane-repository"],
        "adopter"
    );
    assert!(mounts["pki_gone/"].is_object(), "never pruned: {mounts}");
    assert!(exists(&bao, "sys/policies/acl/old-gone"));
    let again = certplane_root(&bao, &["plan", &repo]);
    again.expect(0);
    assert!(!again.stdout.contains("adopt: record"), "{}", again.both());
}

/// Regression: with prune off, a removed Vault role stayed while plan said
/// the live state matches. It is kept, and the plan says so (exit 0).
#[test]
fn regression_with_prune_off_a_removed_role_is_reported_as_kept() {
    let bao = OpenBao::start();
    let root = tempfile::tempdir().unwrap();
    let repo = team_repo(root.path(), "team-a", None, &team_objects("a", true));
    certplane_root(&bao, &["apply", "--auto-approve", &repo]).expect(0);
    let dir = root.path().join("team-a");
    std::fs::write(
        dir.join("certplane.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {prune: false}\n",
    )
    .unwrap();
    team_repo_objects(&dir, &team_objects("a", false));
    let plan = certplane_root(&bao, &["plan", &repo]);
    plan.expect(0);
    for needle in [
        "! vault:pki_a/roles/old (kept)",
        "! vault:sys/policies/acl/a-old (kept)",
        "! vault:sys/mounts/scratch_a (kept)",
        "kept because prune is off",
        "3 object(s) no longer in the repository are kept",
    ] {
        assert!(plan.stdout.contains(needle), "{needle}\n{}", plan.both());
    }
    assert!(
        !plan.stdout.contains("The live state matches"),
        "{}",
        plan.both()
    );
    let json = certplane_root(&bao, &["plan", "-o", "json", &repo]);
    json.expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["has_changes"], false);
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(3), "{v}");
    assert!(exists(&bao, "pki_a/roles/old"));
}

/// A mount table (`sys/mounts`, `sys/auth`), by path with the trailing `/`.
fn mount_table(bao: &OpenBao, path: &str) -> serde_json::Value {
    bao.bao_json(&["read", path])["data"].clone()
}

fn team_repo_objects(dir: &std::path::Path, yaml: &str) {
    std::fs::write(dir.join("vault.yaml"), yaml).unwrap();
}

/// A repository with cert auth and the given `CertAuthRole` names, each
/// trusting `ca.pem`.
fn cert_repo(dir: &std::path::Path, roles: &[&str]) {
    let mut y = String::from(
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: certs}\nspec: {prune: true}\n",
    );
    std::fs::write(dir.join("certplane.yaml"), y).unwrap();
    y = String::from(
        "apiVersion: certplane.dev/v1alpha1\nkind: AuthMount\nmetadata: {name: cert}\nspec: {type: cert}\n",
    );
    for r in roles {
        y.push_str(&format!(
            "---\napiVersion: certplane.dev/v1alpha1\nkind: CertAuthRole\nmetadata: {{name: {r}}}\n\
             spec: {{mount: cert, certificateFile: ca.pem, allowedCommonNames: [\"{r}.*\"]}}\n"
        ));
    }
    std::fs::write(dir.join("vault.yaml"), y).unwrap();
}

#[test]
fn cert_auth_roles_that_left_are_pruned_and_hand_made_ones_under_other_mounts_are_not() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("ca.pem"), common::rcgen_ca("Client CA").0).unwrap();
    cert_repo(dir.path(), &["c1", "c2"]);
    let applied = certplane_root(&bao, &["apply", "--auto-approve", d]);
    applied.expect(0);
    assert!(exists(&bao, "auth/cert/certs/c2"), "{}", applied.both());
    let c1 = bao.bao_json(&["read", "auth/cert/certs/c1"]);
    assert_eq!(
        c1["data"]["allowed_common_names"],
        serde_json::json!(["c1.*"])
    );
    certplane_root(&bao, &["plan", d]).expect(0);
    // A cert mount made by hand, with a role: never certplane's.
    bao.bao_ok(&["auth", "enable", "-path=handcert", "cert"]);
    let ca = dir.path().join("ca.pem");
    bao.bao_ok(&[
        "write",
        "auth/handcert/certs/hand",
        &format!("certificate=@{}", ca.display()),
    ]);

    cert_repo(dir.path(), &["c1"]);
    let plan = certplane_root(&bao, &["plan", d]);
    plan.expect(2);
    assert!(
        plan.stdout.contains("- vault:auth/cert/certs/c2 (delete)"),
        "{}",
        plan.both()
    );
    assert!(!plan.stdout.contains("handcert"), "{}", plan.both());
    certplane_root(&bao, &["apply", "--auto-approve", d]).expect(0);
    assert!(!exists(&bao, "auth/cert/certs/c2"));
    assert!(exists(&bao, "auth/cert/certs/c1"));
    assert!(exists(&bao, "auth/handcert/certs/hand"));
    certplane_root(&bao, &["plan", d]).expect(0);
}

/// The survey every plan makes lists the roles of each mount of the
/// repository concurrently, not one mount after another: with each list
/// held 300 ms by a proxy, the lists of 6 mounts all arrive before the
/// first is answered, and what is found keeps the table's order.
#[tokio::test]
async fn the_survey_lists_the_mounts_of_the_repository_concurrently() {
    use certplane::model::Source;
    use certplane::state::{Desired, ResourceKind};
    use certplane::vault::{Vault, VaultSettings};
    use common::proxy::{Fault, FaultKind, FaultProxy};
    use std::time::Duration;

    let bao = OpenBao::start();
    let mounts: Vec<String> = (0..6).map(|i| format!("team{i}")).collect();
    let mut desired = Desired::default();
    for m in &mounts {
        bao.bao_ok(&[
            "secrets",
            "enable",
            &format!("-path={m}"),
            "-options=managed-by=certplane",
            "-options=certplane-repository=survey",
            "pki",
        ]);
        bao.bao_ok(&[
            "write",
            &format!("{m}/roles/gone"),
            "allowed_domains=x.test",
        ]);
        desired.resources.push(common::resource(
            &format!("sys/mounts/{m}"),
            ResourceKind::Mount,
            serde_json::json!({"type": "pki"}),
        ));
    }
    let proxy = FaultProxy::start(&bao.addr());
    const HOLD: Duration = Duration::from_millis(300);
    for m in &mounts {
        proxy.fault(Fault {
            method: "LIST".into(),
            path: format!("{m}/roles"),
            kind: FaultKind::Delay(HOLD),
            times: 1,
        });
    }
    let vault = Vault::connect(
        &VaultSettings::with_token(&proxy.addr(), Source::Value("root".into())).unwrap(),
    )
    .await
    .unwrap();

    let owned = certplane::vault::prune::survey(&vault, &desired, "survey")
        .await
        .unwrap();
    let found: Vec<String> = owned.orphans.iter().map(|o| o.addr.to_string()).collect();
    let want: Vec<String> = mounts
        .iter()
        .map(|m| format!("vault:{m}/roles/gone"))
        .collect();
    assert_eq!(found, want, "every mount's undeclared role, in table order");
    let lists: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "LIST" && s.path.ends_with("/roles"))
        .collect();
    assert_eq!(lists.len(), mounts.len(), "{lists:?}");
    let first = lists.iter().map(|s| s.at).min().unwrap();
    let last = lists.iter().map(|s| s.at).max().unwrap();
    assert!(
        last - first < HOLD,
        "the lists went one after another: {:?} between the first and the last",
        last - first
    );
}
