//! `intermediate.deliverKeyTo`, against a real OpenBao and a scripted API
//! server behind a real `kube::Client`: plan checks that the Secret can be
//! written before any key is made; apply writes the key Vault exported, with
//! the certificate and chain, into the Secret right after the Vault half;
//! the key never reaches a plan, an event or a report; without a cluster
//! (`--render`) nothing is generated.

use crate::common;
use crate::common::fake;

use std::sync::{Arc, Mutex};

use certplane::cluster::live::LiveCluster;
use certplane::cluster::render::RenderDir;
use certplane::pipeline::{PlanOptions, Targets};
use certplane::plan::Action;
use common::{OpenBao, unb64};
use fake::{Step, cluster, core_v1, finish};
use serde_json::{Value, json};

const REPO: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_root}
spec:
  maxLeaseTTL: 87600h
  ca: {root: {commonName: Mesh Root, issuerName: root, keyType: ec, keyBits: 256, ttl: 87600h, maxPathLength: 1}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: istioca}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Mesh Intermediate
      issuerName: istioca
      keyType: rsa
      keyBits: 2048
      ttl: 43800h
      maxPathLength: 0
      exportKey: true
      deliverKeyTo:
        secret: {namespace: istio-system, name: cacerts}
        format: istio
      signedBy: {mount: pki_root}
"#;

const CACERTS: &str = "/api/v1/namespaces/istio-system/secrets/cacerts";
/// The inventory of the repository `lab` (see [`prepare`]).
const INVENTORY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory-lab";

/// The repository `lab` (its directory's name: the identity).
fn prepare() -> (tempfile::TempDir, certplane::pipeline::Prepared) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("lab");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("repo.yaml"), REPO).unwrap();
    let prepared = certplane::pipeline::prepare(&repo).unwrap_or_else(|d| panic!("{d}"));
    (dir, prepared)
}

#[tokio::test]
async fn the_exported_key_goes_into_the_secret_once_and_nowhere_else() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let (_dir, prepared) = prepare();
    let vault = common::root_vault(&bao.addr()).await;

    let delivered = Arc::new(Mutex::new(Value::Null));
    let seen = delivered.clone();
    let (c, task) = cluster(vec![
        // plan: what this repository applied before (nothing), then a dry
        // run of the Secret, before any key exists.
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(CACERTS).not_found("secrets", "cacerts"),
        Step::apply(CACERTS, true)
            .body(|b| {
                assert_eq!(b["metadata"]["namespace"], "istio-system");
                assert_eq!(unb64(&b["data"]["ca-key.pem"]), "");
            })
            .reply(
                200,
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "cacerts", "namespace": "istio-system"}}),
            ),
        // apply: the key, right after the Vault half.
        Step::apply(CACERTS, false)
            .body(move |b| *seen.lock().unwrap() = b.clone())
            .reply(
                200,
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "cacerts", "namespace": "istio-system"}}),
            ),
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
    ]);
    let side = LiveCluster::new(c);
    let plan = certplane::pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    assert!(plan.errored.is_empty(), "{:?}", plan.errored);
    let issuer = plan
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "vault:istioca/issuer/istioca")
        .unwrap();
    assert_eq!(issuer.action, Action::Create);
    assert!(
        issuer.reason.as_deref().unwrap_or_default().contains(
            "its exported key is delivered to Secret istio-system/cacerts (istio format)"
        ),
        "{:?}",
        issuer.reason
    );

    let mut events = Vec::new();
    let done = certplane::pipeline::apply(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        &plan,
        Default::default(),
        &mut |e| events.push(format!("{e:?}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", certplane::vault::error_chain(&e)));
    finish(task).await;

    // The Secret holds Istio's four files: the key matches the certificate
    // of the issuer Vault made, and the chain ends at the root.
    let secret = delivered.lock().unwrap().clone();
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["metadata"]["annotations"]["certplane.dev/exported-key-of"],
        "vault:istioca/issuer/istioca"
    );
    let key_pem = unb64(&secret["data"]["ca-key.pem"]);
    let cert_pem = unb64(&secret["data"]["ca-cert.pem"]);
    let chain_pem = unb64(&secret["data"]["cert-chain.pem"]);
    let root_pem = unb64(&secret["data"]["root-cert.pem"]);
    let live = bao.bao_json(&["read", "istioca/issuer/istioca"]);
    assert_eq!(
        cert_pem.trim(),
        live["data"]["certificate"].as_str().unwrap().trim()
    );
    let vault_root = bao.bao_json(&["read", "pki_root/issuer/root"]);
    assert_eq!(
        root_pem.trim(),
        vault_root["data"]["certificate"].as_str().unwrap().trim()
    );
    assert!(chain_pem.starts_with(cert_pem.trim()) && chain_pem.contains(root_pem.trim()));
    {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&key_pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem))
            .expect("an RSA private key");
        let spki = key.to_public_key().to_public_key_der().unwrap();
        let der = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .unwrap()
            .1;
        let cert = der.parse_x509().unwrap();
        assert_eq!(
            cert.public_key().raw,
            spki.as_bytes(),
            "the key is the certificate's"
        );
    }

    // The key is in the Secret and nowhere else.
    let key_line = key_pem.lines().nth(1).unwrap().to_string();
    let shown = format!(
        "{plan:?}{done:?}{events:?}{}{}",
        certplane::plan::render::human(&plan, Default::default()),
        certplane::plan::render::json(&plan),
    );
    assert!(!shown.contains(&key_line), "the exported key leaked");
    assert!(
        events
            .iter()
            .any(|e| e.contains("istio-system") && e.contains("cacerts")),
        "{events:?}"
    );

    // Only on creation: a second plan neither checks nor writes the Secret
    // (it reads only the inventory, which does not list it).
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
    ]);
    let again = certplane::pipeline::plan(
        Targets::new(Some(&vault), Some(&LiveCluster::new(c))),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    finish(task).await;
    assert!(
        !again.has_changes() && again.errored.is_empty(),
        "{again:?}"
    );
}

/// A Secret that cannot be written (here: its namespace is missing) stops
/// the plan before a key is made; without a cluster (`--render`) too.
#[tokio::test]
async fn a_secret_that_cannot_be_written_stops_the_plan_before_a_key_is_made() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let (dir, prepared) = prepare();
    let vault = common::root_vault(&bao.addr()).await;
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(CACERTS).not_found("secrets", "cacerts"),
        Step::apply(CACERTS, true).reply(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "namespaces \"istio-system\" not found", "reason": "NotFound",
                "details": {"name": "istio-system", "kind": "namespaces"}, "code": 404}),
        ),
    ]);
    let side = LiveCluster::new(c);
    let plan = certplane::pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    finish(task).await;
    assert_eq!(plan.errored.len(), 1, "{:?}", plan.errored);
    let message = &plan.errored[0].message;
    assert!(
        message.contains("namespace istio-system does not exist")
            && message.contains("nothing is generated until it can"),
        "{message}"
    );
    let err = certplane::pipeline::apply(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        &plan,
        Default::default(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("plan has"), "{err}");
    assert!(
        bao.bao(&["read", "istioca/issuer/istioca"]).status.code() != Some(0),
        "no intermediate was made"
    );

    let render = RenderDir::new(dir.path().join("rendered"));
    let plan = certplane::pipeline::plan(
        Targets::new(Some(&vault), Some(&render)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(plan.errored.len(), 1, "{:?}", plan.errored);
    assert!(
        plan.errored[0]
            .message
            .contains("a key is never written to files, so not with --render"),
        "{}",
        plan.errored[0].message
    );
}

/// The key is delivered as soon as its intermediate is made: a Vault write
/// that fails after it (here a role Vault refuses with 400) stops the apply, and the
/// key is in its Secret all the same, not lost with the failed run.
#[tokio::test]
async fn a_later_failure_does_not_lose_the_key() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("repo.yaml"),
        format!(
            "{REPO}---\napiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {{name: broken}}\n\
             spec: {{mount: istioca, allowedDomains: [mesh.local]}}\n"
        ),
    )
    .unwrap();
    let prepared = certplane::pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    // Vault refuses the role (a proxy answers 400 for it), after the key.
    let proxy = common::proxy::FaultProxy::start(&bao.addr());
    proxy.fail("POST", "istioca/roles/broken", 400, None, 1);
    let vault = certplane::vault::Vault::connect(
        &certplane::vault::VaultSettings::with_token(
            &proxy.addr(),
            certplane::model::Source::Value(bao.token().into()),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let delivered = Arc::new(Mutex::new(false));
    let seen = delivered.clone();
    let stored = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"}});
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(CACERTS).not_found("secrets", "cacerts"),
        Step::apply(CACERTS, true).reply(200, stored.clone()),
        Step::apply(CACERTS, false)
            .body(move |b| {
                assert!(!unb64(&b["data"]["ca-key.pem"]).is_empty());
                *seen.lock().unwrap() = true;
            })
            .reply(200, stored),
    ]);
    let side = LiveCluster::new(c);
    let plan = certplane::pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    let err = certplane::pipeline::apply(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        &plan,
        Default::default(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    finish(task).await;
    assert!(
        certplane::vault::error_chain(&err).contains("istioca/roles/broken"),
        "{}",
        certplane::vault::error_chain(&err)
    );
    assert!(
        *delivered.lock().unwrap(),
        "the key was delivered before the failure"
    );
}

/// A copy of `examples/<name>` in a temporary directory of that name (the
/// repository identity).
fn example(name: &str) -> (tempfile::TempDir, certplane::pipeline::Prepared) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let prepared = certplane::pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    (tmp, prepared)
}

/// What the API server answers to an apply of `kind` `name` in `namespace`.
fn stored(kind: &str, namespace: Option<&str>, name: &str) -> Value {
    let api = if kind.ends_with("Issuer") || kind == "Certificate" {
        "cert-manager.io/v1"
    } else {
        "v1"
    };
    let mut meta = json!({"name": name});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": api, "kind": kind, "metadata": meta})
}

/// Regression (issue 8): the first apply of examples/istio-tsb into a
/// cluster without the istio-system namespace failed: the plan's dry run of
/// the exported key's Secret was refused (the namespace does not exist
/// yet), and the AppRole Secret was written before the namespace. The plan
/// accepts a namespace it creates, and the apply makes the namespace first,
/// then the Vault half with the key delivered right after the intermediate,
/// then the AppRole Secret, then the Issuer and the Certificate.
#[tokio::test]
async fn regression_the_first_apply_of_istio_tsb_creates_istio_system_first() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let (_tmp, prepared) = example("istio-tsb");
    let vault = common::root_vault(&bao.addr()).await;
    const NS: &str = "/api/v1/namespaces/istio-system";
    const APPROLE: &str = "/api/v1/namespaces/istio-system/secrets/cert-manager-vault-approle";
    const ISSUER: &str = "/apis/cert-manager.io/v1/namespaces/istio-system/issuers/vault-istio";
    const CERT: &str = "/apis/cert-manager.io/v1/namespaces/istio-system/certificates/istiod";
    const INVENTORY: &str =
        "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory-istio-tsb";
    const LEGACY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory";
    let key_secret = Arc::new(Mutex::new(Value::Null));
    let seen = key_secret.clone();
    let (c, task) = cluster(vec![
        // plan: the AppRole Secret, the namespace (absent: created by this
        // plan, so the Issuer, the Certificate and the key's Secret in it
        // are not dry-run), the inventory.
        Step::get(APPROLE).not_found("secrets", "cert-manager-vault-approle"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(NS).not_found("namespaces", "istio-system"),
        Step::apply(NS, true).reply(200, stored("Namespace", None, "istio-system")),
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-istio-tsb"),
        // apply: the namespace first...
        Step::get(NS).not_found("namespaces", "istio-system"),
        Step::apply(NS, false).reply(200, stored("Namespace", None, "istio-system")),
        // ...the key, right after its intermediate is made...
        Step::apply(CACERTS, false)
            .body(move |b| *seen.lock().unwrap() = b.clone())
            .reply(200, stored("Secret", Some("istio-system"), "cacerts")),
        // ...the AppRole's secret ID...
        Step::get(APPROLE).not_found("secrets", "cert-manager-vault-approle"),
        Step::apply(APPROLE, false)
            .body(|b| assert_eq!(unb64(&b["data"]["roleId"]), "istio-cert-manager"))
            .reply(
                200,
                stored("Secret", Some("istio-system"), "cert-manager-vault-approle"),
            ),
        // ...then the cert-manager objects, and the inventory.
        Step::get("/apis/cert-manager.io/v1").reply(200, fake::cert_manager_v1()),
        Step::get(ISSUER).not_found("issuers.cert-manager.io", "vault-istio"),
        Step::apply(ISSUER, false)
            .reply(200, stored("Issuer", Some("istio-system"), "vault-istio")),
        Step::get(CERT).not_found("certificates.cert-manager.io", "istiod"),
        Step::apply(CERT, false).reply(200, stored("Certificate", Some("istio-system"), "istiod")),
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-istio-tsb"),
        Step::apply(INVENTORY, false).reply(
            200,
            stored(
                "ConfigMap",
                Some("certplane-system"),
                "certplane-inventory-istio-tsb",
            ),
        ),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let side = LiveCluster::new(c);
    let targets = Targets::new(Some(&vault), Some(&side));
    let plan = certplane::pipeline::plan(targets, &prepared, PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.errored.is_empty(), "{:?}", plan.errored);
    let issuer = plan
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "vault:istioca/issuer/istioca")
        .unwrap();
    assert!(
        issuer
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("(into namespace istio-system, which this plan creates first)"),
        "{:?}",
        issuer.reason
    );
    let done =
        certplane::pipeline::apply(targets, &prepared, &plan, Default::default(), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{}", certplane::vault::error_chain(&e)));
    finish(task).await;
    let secret = key_secret.lock().unwrap().clone();
    let live = bao.bao_json(&["read", "istioca/issuer/istioca"]);
    assert_eq!(
        unb64(&secret["data"]["ca-cert.pem"]).trim(),
        live["data"]["certificate"].as_str().unwrap().trim()
    );
    let first = |addr: &str| done.changes.iter().position(|c| c.addr.to_string() == addr);
    let ns = first("core/Namespace/istio-system").expect("the namespace is applied");
    let intermediate = first("vault:istioca/issuer/istioca").expect("the intermediate is made");
    let approle = first("core/Secret/istio-system/cert-manager-vault-approle").unwrap();
    assert!(
        ns < intermediate && intermediate < approle,
        "{:?}",
        done.changes
    );
}
