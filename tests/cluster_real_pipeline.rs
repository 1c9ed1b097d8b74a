//! The whole pipeline against a real cluster and a real OpenBao: a
//! VaultIssuer applied to both halves, a clean re-plan, drift repair, prune,
//! and `verify` logging in with a TokenRequest token through OpenBao's
//! Kubernetes auth (TokenReview against the same cluster).
//!
//! Runs only when `CERTPLANE_TEST_KUBECONFIG` names a kubeconfig of a cluster
//! with the cert-manager CRDs (kind, k3d, ...); says "skipped" otherwise.

mod common;
#[path = "e2e/support.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::OpenBao;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;

fn kubeconfig() -> Option<String> {
    match std::env::var("CERTPLANE_TEST_KUBECONFIG") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            println!("skipped: CERTPLANE_TEST_KUBECONFIG is not set");
            None
        }
    }
}

fn run(kubeconfig: &str, bao: &OpenBao, args: &[&str]) -> support::Run {
    let out = Command::new(env!("CARGO_BIN_EXE_certplane"))
        .args(args)
        .stdin(Stdio::null())
        .env("KUBECONFIG", kubeconfig)
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.token())
        .env("NO_COLOR", "1")
        .output()
        .expect("run certplane");
    support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: std::time::Duration::ZERO,
    }
}

/// The API server URL and CA of the kubeconfig's current context.
fn server_and_ca(path: &str) -> (String, String) {
    let kc = Kubeconfig::read_from(path).expect("read kubeconfig");
    let ctx_name = kc.current_context.clone().expect("a current context");
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
        .expect("the context");
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .expect("the cluster");
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(d), _) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(d)
                .expect("CA data"),
        )
        .unwrap(),
        (None, Some(file)) => std::fs::read_to_string(file).expect("CA file"),
        _ => panic!("the kubeconfig has no cluster CA"),
    };
    (cluster.server.expect("server"), ca)
}

fn write_repo(dir: &Path, ns: &str, server: &str, with_extra: bool) {
    // The repository identity names its inventory
    // (certplane-system/certplane-inventory-<ns>), which the cleanup removes.
    std::fs::write(
        dir.join("certplane.yaml"),
        format!("apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {{name: {ns}}}\nspec:\n  prune: true\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("vault.yaml"),
        format!(
            r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki}}
spec:
  maxLeaseTTL: 8760h
  ca: {{root: {{commonName: E2E Root, keyType: ec, keyBits: 256, ttl: 8760h}}}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: web}}
spec: {{mount: pki, allowedDomains: [example.com], allowSubdomains: true, maxTTL: 24h, keyType: any}}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {{name: kubernetes}}
spec:
  type: kubernetes
  kubernetes: {{host: "{server}", caCertFile: k8s-ca.pem, disableLocalCaJwt: true}}
"#
        ),
    )
    .unwrap();
    let mut cluster = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: certplane.dev/v1alpha1
kind: VaultIssuer
metadata: {{name: vi, namespace: {ns}}}
spec:
  server: http://127.0.0.1:8200
  role: {{mount: pki, name: web}}
  auth: {{kubernetes: {{mount: kubernetes}}}}
---
# Vault reviews the issuer's token with the token itself.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {ns}-auth-delegator}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}}
subjects: [{{kind: ServiceAccount, name: vi, namespace: {ns}}}]
"#
    );
    if with_extra {
        cluster.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra, namespace: {ns}}}\ndata: {{a: b}}\n"
        ));
    }
    std::fs::write(dir.join("cluster.yaml"), cluster).unwrap();
}

#[tokio::test]
async fn vault_issuer_end_to_end_on_a_real_cluster() {
    let Some(path) = kubeconfig() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let (server, ca) = server_and_ca(&path);
    let ns = format!("certplane-e2e-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k8s-ca.pem"), &ca).unwrap();
    write_repo(dir.path(), &ns, &server, true);
    let repo = dir.path().to_str().unwrap();

    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&path).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    struct Cleanup(kube::Client, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let (client, ns) = (self.0.clone(), self.1.clone());
            let _ = std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async move {
                        use k8s_openapi::api::core::v1::Namespace;
                        use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
                        let dp = kube::api::DeleteParams::default();
                        let _ = kube::Api::<Namespace>::all(client.clone())
                            .delete(&ns, &dp)
                            .await;
                        let _ = kube::Api::<ClusterRoleBinding>::all(client.clone())
                            .delete(&format!("{ns}-auth-delegator"), &dp)
                            .await;
                        let _ = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
                            client,
                            "certplane-system",
                        )
                        .delete(&format!("certplane-inventory-{ns}"), &dp)
                        .await;
                    })
            })
            .join();
        }
    }
    let _cleanup = Cleanup(client.clone(), ns.clone());

    run(&path, &bao, &["plan", repo]).expect(2);
    run(&path, &bao, &["apply", "--auto-approve", repo]).expect(0);
    // One inventory per repository identity, labelled with it; the applied
    // objects carry the identity too (the Namespace, often shared, does not).
    {
        use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
        let inventories: kube::Api<ConfigMap> =
            kube::Api::namespaced(client.clone(), "certplane-system");
        let inv = inventories
            .get(&format!("certplane-inventory-{ns}"))
            .await
            .expect("the repository's inventory");
        let labels = inv.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("certplane.dev/repository").map(String::as_str),
            Some(ns.as_str())
        );
        let sa = kube::Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .get("vi")
            .await
            .expect("the VaultIssuer's ServiceAccount");
        assert_eq!(
            sa.metadata
                .labels
                .unwrap_or_default()
                .get("certplane.dev/repository")
                .map(String::as_str),
            Some(ns.as_str())
        );
    }
    let again = run(&path, &bao, &["plan", repo]);
    again.expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.both());

    // Drift: another manager changes the Issuer's path; certplane repairs it.
    let issuer_ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "cert-manager.io",
        "v1",
        "Issuer",
    ));
    let issuers: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.clone(), &ns, &issuer_ar);
    let patch = serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "vi", "namespace": ns},
        "spec": {"vault": {"path": "pki/sign/other"}}
    });
    issuers
        .patch(
            "vi",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap();
    let drift = run(&path, &bao, &["plan", repo]);
    drift.expect(2);
    assert!(drift.stdout.contains("spec.vault.path"), "{}", drift.both());
    run(&path, &bao, &["apply", "--auto-approve", repo]).expect(0);
    run(&path, &bao, &["plan", repo]).expect(0);

    // verify: a TokenRequest token with the Issuer's audience logs in through
    // OpenBao's Kubernetes auth and signs through the Issuer's path.
    let verify = run(&path, &bao, &["verify", repo, "--vault-addr", &bao.addr()]);
    verify.expect(0);
    assert!(verify.stdout.contains("ok    chain"), "{}", verify.both());

    // Prune: the ConfigMap leaves the repository and the cluster.
    write_repo(dir.path(), &ns, &server, false);
    let pruning = run(&path, &bao, &["plan", repo]);
    pruning.expect(2);
    assert!(
        pruning
            .stdout
            .contains(&format!("core/ConfigMap/{ns}/extra (delete)")),
        "{}",
        pruning.both()
    );
    run(&path, &bao, &["apply", "--auto-approve", repo]).expect(0);
    use k8s_openapi::api::core::v1::ConfigMap;
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), &ns);
    assert!(cms.get_opt("extra").await.unwrap().is_none());
    run(&path, &bao, &["plan", repo]).expect(0);
}
