//! The whole pipeline against a real cluster and a real OpenBao: a
//! VaultIssuer and the Kubernetes auth mount's token reviewer applied to
//! both halves, a clean re-plan, drift repair, prune, and `verify` logging
//! in with a TokenRequest token through OpenBao's Kubernetes auth (OpenBao
//! reviews it with the reviewer's token, which certplane read from the
//! cluster: the API server refuses the audience-bound token itself as a
//! credential).
//!
//! `make test-cluster` runs it with `CERTPLANE_TEST_KUBECONFIG` naming a
//! kubeconfig of a cluster with the cert-manager CRDs (kind, k3d, ...); a
//! plain `cargo test` reports it as ignored. Whatever happens, a guard
//! deletes what the test made (the namespace, the ClusterRoleBinding, the
//! inventory) on a thread of its own with its own runtime and client, every
//! call bounded in time, so the cleanup cannot hang on the test's runtime.

use crate::common;

use std::path::Path;

use base64::Engine as _;
use common::OpenBao;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;

/// `certplane <args>` against the cluster of `kubeconfig` and `bao`.
fn run(kubeconfig: &str, bao: &OpenBao, args: &[&str]) -> common::Run {
    common::Run::of(
        common::command(bao.dir())
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("VAULT_ADDR", bao.addr())
            .env("VAULT_TOKEN", bao.token()),
    )
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

const REVIEWER: &str = "vault-token-reviewer";

/// The ClusterRoleBinding certplane makes for the reviewer.
fn binding(ns: &str) -> String {
    format!("{ns}-{REVIEWER}-auth-delegator")
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
  kubernetes:
    host: "{server}"
    caCertFile: k8s-ca.pem
    disableLocalCaJwt: true
    # Vault reviews tokens as this account (bound to system:auth-delegator).
    tokenReviewer: {{serviceAccount: {{namespace: {ns}, name: {REVIEWER}}}}}
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
"#
    );
    if with_extra {
        cluster.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra, namespace: {ns}}}\ndata: {{a: b}}\n"
        ));
    }
    std::fs::write(dir.join("cluster.yaml"), cluster).unwrap();
}

/// Deletes what the test made, whatever happened to it: the namespace
/// (with everything in it), the reviewer's ClusterRoleBinding and the
/// inventory ConfigMaps that list the namespace. It runs on a thread of its
/// own with its own runtime and its own client (the test's runtime may be
/// unwinding, and a client of that runtime cannot be driven from a thread
/// that blocks it), each call limited (15 s in the test) and the whole to six times that.
struct Cleanup {
    kubeconfig: String,
    namespace: String,
    /// The time limit of each call.
    limit: std::time::Duration,
    done: bool,
}

impl Cleanup {
    /// Runs the cleanup; `Err` lists what could not be deleted.
    fn run(&mut self) -> Result<(), String> {
        self.done = true;
        let (kubeconfig, ns, limit) = (self.kubeconfig.clone(), self.namespace.clone(), self.limit);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(cleanup(&kubeconfig, &ns, limit)),
                Err(e) => Err(format!("no runtime for the cleanup: {e}")),
            };
            let _ = tx.send(result);
        });
        rx.recv_timeout(limit * 6)
            .unwrap_or_else(|_| Err(format!("the cleanup did not finish within {:?}", limit * 6)))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.run()
        {
            eprintln!("cleanup of {}: {e}", self.namespace);
        }
    }
}

async fn cleanup(kubeconfig: &str, ns: &str, limit: std::time::Duration) -> Result<(), String> {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let bounded = |what: String| {
        move |r: Result<Result<(), kube::Error>, tokio::time::error::Elapsed>| match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!("{what}: timed out")),
        }
    };
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?,
        &KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let dp = kube::api::DeleteParams::default();
    let mut failed = Vec::new();
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let bindings: kube::Api<ClusterRoleBinding> = kube::Api::all(client.clone());
    let results = [
        bounded(format!("namespace {ns}"))(
            tokio::time::timeout(limit, async {
                namespaces.delete(ns, &dp).await.map(|_| ())
            })
            .await,
        ),
        bounded(format!("clusterrolebinding {}", binding(ns)))(
            tokio::time::timeout(limit, async {
                bindings.delete(&binding(ns), &dp).await.map(|_| ())
            })
            .await,
        ),
    ];
    failed.extend(results.into_iter().filter_map(Result::err));
    // The inventories (one per repository, or the shared one) that list
    // this namespace: the test's own.
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "certplane-system");
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=certplane");
    match tokio::time::timeout(limit, cms.list(&lp)).await {
        Ok(Ok(list)) => {
            for cm in list.items {
                let mentions = cm
                    .data
                    .as_ref()
                    .is_some_and(|d| d.values().any(|v| v.contains(&format!("\"{ns}\""))));
                let Some(name) = cm.metadata.name.filter(|_| mentions) else {
                    continue;
                };
                if let Err(e) = bounded(format!("inventory configmap {name}"))(
                    tokio::time::timeout(limit, async { cms.delete(&name, &dp).await.map(|_| ()) })
                        .await,
                ) {
                    failed.push(e);
                }
            }
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
        Ok(Err(e)) => failed.push(format!("listing the inventories: {e}")),
        Err(_) => failed.push("listing the inventories: timed out".into()),
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

#[tokio::test]
#[ignore = "needs a test cluster: set CERTPLANE_TEST_KUBECONFIG and run `make test-cluster`"]
async fn vault_issuer_end_to_end_on_a_real_cluster() {
    let path = common::kube::test_cluster_kubeconfig()
        .display()
        .to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ns = format!("certplane-e2e-{}", std::process::id());
    // From here on, whatever happens, the guard cleans up.
    let mut cleanup = Cleanup {
        kubeconfig: path.clone(),
        namespace: ns.clone(),
        limit: std::time::Duration::from_secs(15),
        done: false,
    };
    let bao = OpenBao::start();
    let (server, ca) = server_and_ca(&path);
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

    let first = run(&path, &bao, &["plan", repo]);
    first.expect(2);
    // The reviewer's privilege is in the plan.
    assert!(
        first.stdout.contains(&format!(
            "rbac.authorization.k8s.io/ClusterRoleBinding/{} (create)",
            binding(&ns)
        )) && first
            .stdout
            .contains("grants ClusterRole system:auth-delegator"),
        "{}",
        first.both()
    );
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

    // The reviewer's token reached Vault (and no output).
    let config = bao.bao_json(&["read", "auth/kubernetes/config"]);
    assert_eq!(config["data"]["token_reviewer_jwt_set"], true, "{config}");

    // verify: a TokenRequest token with the Issuer's audience logs in through
    // OpenBao's Kubernetes auth (reviewed with the reviewer's token) and
    // signs through the Issuer's path.
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

    cleanup.run().expect("clean up the test's objects");
}

/// A loopback API server for the cleanup guard: answers the deletes and the
/// inventory list the cleanup makes (or, `silent`, never answers), and
/// records the requests.
fn fake_api(silent: bool) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let request = line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let request = request.trim_end_matches('?').to_string();
            log.lock().unwrap().push(request.clone());
            if silent {
                held.push(stream);
                continue;
            }
            let ok = r#"{"kind":"Status","apiVersion":"v1","status":"Success","code":200}"#;
            let body = if request.starts_with("GET /api/v1/namespaces/certplane-system/configmaps")
            {
                r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[
                  {"metadata":{"name":"certplane-inventory-mine","namespace":"certplane-system"},
                   "data":{"entries":"[{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Namespace\",\"namespace\":null,\"name\":\"certplane-e2e-test\"},{\"kind\":\"ConfigMap\",\"namespace\":\"certplane-e2e-test\",\"name\":\"extra\"}]"}},
                  {"metadata":{"name":"certplane-inventory-other","namespace":"certplane-system"},
                   "data":{"entries":"[{\"kind\":\"ConfigMap\",\"namespace\":\"another-team\",\"name\":\"x\"}]"}}]}"#
            } else {
                ok
            };
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// Regression: the cleanup ran on the test's runtime from a blocked thread
/// and deadlocked, leaving the namespace, the ClusterRoleBinding and the
/// inventory behind. Run from a blocked current-thread runtime (as a panic
/// unwinding through the test would), it finishes and deletes exactly the
/// test's objects; against a server that never answers it gives up in
/// bounded time.
#[tokio::test]
async fn the_cleanup_finishes_from_a_blocked_runtime_and_deletes_only_the_tests_objects() {
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = fake_api(false);
    let mut guard = Cleanup {
        kubeconfig: common::kube::loopback_kubeconfig(dir.path(), "t", port)
            .display()
            .to_string(),
        namespace: "certplane-e2e-test".into(),
        limit: std::time::Duration::from_secs(5),
        done: false,
    };
    // Blocking this runtime's only thread, as Drop does.
    let started = std::time::Instant::now();
    guard.run().expect("the cleanup");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let mut requests = seen.lock().unwrap().clone();
    requests.sort();
    assert_eq!(
        requests,
        [
            "DELETE /api/v1/namespaces/certplane-e2e-test",
            "DELETE /api/v1/namespaces/certplane-system/configmaps/certplane-inventory-mine",
            "DELETE /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/certplane-e2e-test-vault-token-reviewer-auth-delegator",
            "GET /api/v1/namespaces/certplane-system/configmaps?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcertplane",
        ]
    );

    // A server that never answers: an error, in bounded time.
    let (port, _) = fake_api(true);
    let mut guard = Cleanup {
        kubeconfig: common::kube::loopback_kubeconfig(dir.path(), "t", port)
            .display()
            .to_string(),
        namespace: "certplane-e2e-test".into(),
        limit: std::time::Duration::from_millis(500),
        done: false,
    };
    let started = std::time::Instant::now();
    let err = guard.run().unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
