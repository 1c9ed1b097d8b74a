//! `validate --live`: an Issuer may name a mount, role and auth role that
//! only the live Vault has; without `--live` the same repository is invalid.

use crate::common;

use crate::common::certplane_root;
use common::OpenBao;

const ISSUER: &str = r#"
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: vault-issuer, namespace: sandbox}
spec:
  vault:
    server: https://vault.vault:8200
    path: live_pki/sign/web
    auth:
      kubernetes:
        mountPath: /v1/auth/live_k8s
        role: issuer
        serviceAccountRef: {name: vault-issuer}
"#;

#[test]
fn live_mounts_and_roles_satisfy_references_only_with_live() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("issuer.yaml"), ISSUER).unwrap();
    let d = dir.path().to_str().unwrap();

    let offline = certplane_root(&bao, &["validate", d]);
    offline.expect(1);
    assert!(offline.stderr.contains("live_pki"), "{}", offline.both());

    // Not in Vault either: still invalid with --live.
    certplane_root(&bao, &["validate", "--live", d]).expect(1);

    bao.bao_ok(&["secrets", "enable", "-path=live_pki", "pki"]);
    bao.bao_ok(&["write", "live_pki/roles/web", "allowed_domains=example.com"]);
    bao.bao_ok(&["auth", "enable", "-path=live_k8s", "kubernetes"]);
    bao.bao_ok(&[
        "write",
        "auth/live_k8s/role/issuer",
        "bound_service_account_names=vault-issuer",
        "bound_service_account_namespaces=sandbox",
    ]);
    let live = certplane_root(&bao, &["validate", "--live", d]);
    live.expect(0);
    // Offline, the repository still has to declare what it references.
    certplane_root(&bao, &["validate", d]).expect(1);
}
