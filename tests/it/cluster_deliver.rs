//! AppRole `deliverTo` and `verify`'s credential reading, against a real
//! OpenBao and a scripted API server behind a real `kube::Client`: the
//! Secret is created once with a valid secret ID, left alone while the ID is
//! valid, replaced when it is not; the secret ID never reaches a plan; a
//! TokenRequest carries the Issuer's audience; TLS client certificates are
//! read for mTLS and certificate auth.

use crate::common;
use crate::common::fake;

use std::sync::{Arc, Mutex};

use certplane::cluster::live::LiveCluster;
use certplane::pipeline::{PlanOptions, Targets};
use certplane::plan::Action;
use certplane::verify::{Credentials, credentials};
use common::{OpenBao, b64, unb64};
use fake::{Step, cluster, core_v1, finish};
use serde_json::{Value, json};

const REPO: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: approle}
spec: {type: approle}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: cm}
spec:
  rules: [{path: pki/sign/web, capabilities: [update]}]
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: cm}
spec:
  mount: approle
  tokenPolicies: [cm]
  roleId: certplane-cm
  deliverTo:
    secret: {namespace: sandbox, name: cm-approle}
"#;

const SECRET_PATH: &str = "/api/v1/namespaces/sandbox/secrets/cm-approle";

/// How many secret IDs the AppRole has.
fn secret_ids(bao: &OpenBao) -> usize {
    bao.bao_json(&["list", "-format=json", "auth/approle/role/cm/secret-id"])
        .as_array()
        .map_or(0, Vec::len)
}

fn stored_secret(role_id: &str, secret_id: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cm-approle", "namespace": "sandbox", "resourceVersion": "7"},
        "type": "Opaque",
        "data": {"roleId": b64(role_id), "secretId": b64(secret_id)},
    })
}

#[tokio::test]
async fn a_secret_id_is_delivered_once_and_replaced_only_when_invalid() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let (prepared, vault) = common::apply_yaml(&bao, REPO).await;

    // 1. No Secret yet: create it with the role ID and a fresh secret ID.
    let delivered = Arc::new(Mutex::new(String::new()));
    let seen = delivered.clone();
    let (c, task) = cluster(vec![
        Step::get(SECRET_PATH).not_found("secrets", "cm-approle"),
        // apply: the Secret is read again first (still absent, as planned).
        Step::get(SECRET_PATH).not_found("secrets", "cm-approle"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::apply(SECRET_PATH, false)
            .body(move |b| {
                assert_eq!(unb64(&b["data"]["roleId"]), "certplane-cm");
                *seen.lock().unwrap() = unb64(&b["data"]["secretId"]);
                assert_eq!(
                    b["metadata"]["annotations"]["certplane.dev/approle"],
                    "auth/approle/role/cm"
                );
            })
            // The server answers with the stored object (values not read back).
            .reply(200, stored_secret("certplane-cm", "stored")),
    ]);
    let changes = certplane::cluster::deliver::plan(&vault, &c, &prepared.repo)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Create);
    assert_eq!(
        changes[0].after.as_ref().unwrap()["data.roleId"],
        json!("certplane-cm")
    );
    let mut applied = Vec::new();
    let n = certplane::cluster::deliver::apply(&vault, &c, &changes, &mut |a, act| {
        applied.push((a.to_string(), act))
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
    finish(task).await;
    let secret_id = delivered.lock().unwrap().clone();
    assert!(!secret_id.is_empty());
    // Vault knows it.
    let lookup = bao.bao_json(&[
        "write",
        "-format=json",
        "auth/approle/role/cm/secret-id/lookup",
        &format!("secret_id={secret_id}"),
    ]);
    assert!(lookup["data"].is_object(), "{lookup}");
    // Nothing of it in the plan, its Debug or its JSON.
    let plan = certplane::plan::Plan {
        changes: changes.clone(),
        ..Default::default()
    };
    let shown = format!(
        "{changes:?}{}{}",
        certplane::plan::render::json(&plan),
        certplane::plan::render::human(&plan, Default::default())
    );
    assert!(!shown.contains(&secret_id));

    // 2. The Secret holds a valid ID: nothing to do, no new secret ID.
    let before = secret_ids(&bao);
    let (c, task) = cluster(vec![
        Step::get(SECRET_PATH).reply(200, stored_secret("certplane-cm", &secret_id)),
    ]);
    let changes = certplane::cluster::deliver::plan(&vault, &c, &prepared.repo)
        .await
        .unwrap();
    assert_eq!(changes[0].action, Action::NoOp, "{:?}", changes[0].reason);
    finish(task).await;
    assert_eq!(secret_ids(&bao), before);

    // 3. An ID Vault does not know: replaced.
    let (c, task) = cluster(vec![Step::get(SECRET_PATH).reply(
        200,
        stored_secret("certplane-cm", "00000000-0000-4000-8000-000000000000"),
    )]);
    let changes = certplane::cluster::deliver::plan(&vault, &c, &prepared.repo)
        .await
        .unwrap();
    assert_eq!(changes[0].action, Action::Update);
    assert!(
        changes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("expired or unknown"),
        "{:?}",
        changes[0].reason
    );
    finish(task).await;
    // The plan line shows the key that changes (masked), not the role ID,
    // which the Secret already holds (regression: `data.roleId = (none) ->
    // ...` and no secretId line).
    let plan = certplane::plan::Plan {
        changes: changes.clone(),
        ..Default::default()
    };
    let human = certplane::plan::render::human(&plan, Default::default());
    assert!(
        human.contains("      data.secretId = \"(sensitive)\" -> \"(sensitive)\"\n"),
        "{human}"
    );
    assert!(!human.contains("data.roleId"), "{human}");
    assert!(!human.contains("00000000-0000-4000-8000"), "{human}");

    // A Secret with another role ID: that line shows both role IDs.
    let (c, task) = cluster(vec![Step::get(SECRET_PATH).reply(
        200,
        stored_secret("old-role-id", "00000000-0000-4000-8000-000000000000"),
    )]);
    let changes = certplane::cluster::deliver::plan(&vault, &c, &prepared.repo)
        .await
        .unwrap();
    finish(task).await;
    let human = certplane::plan::render::human(
        &certplane::plan::Plan {
            changes,
            ..Default::default()
        },
        Default::default(),
    );
    assert!(
        human.contains("data.roleId   = \"old-role-id\" -> \"certplane-cm\""),
        "{human}"
    );
}

#[tokio::test]
async fn verify_reads_approle_secrets_and_requests_tokens_with_the_issuer_audience() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let approle_issuer = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "vi", "namespace": "sandbox"},
        "spec": {"vault": {"server": "http://127.0.0.1:1", "path": "pki/sign/web",
            "auth": {"appRole": {"path": "approle", "roleId": "rid",
                "secretRef": {"name": "cm-approle", "key": "secretId"}}}}}
    });
    let (c, task) = cluster(vec![
        Step::get(SECRET_PATH).reply(200, stored_secret("rid", "the-secret-id")),
    ]);
    match credentials(&c, &approle_issuer, "cert-manager")
        .await
        .unwrap()
    {
        Credentials::AppRole {
            mount,
            role_id,
            secret_id,
        } => {
            assert_eq!((mount.as_str(), role_id.as_str()), ("approle", "rid"));
            assert_eq!(secret_id.expose(), "the-secret-id");
            assert_eq!(format!("{secret_id:?}"), "(sensitive)");
        }
        other => panic!("{other:?}"),
    }
    finish(task).await;

    let k8s_issuer = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "vi", "namespace": "sandbox"},
        "spec": {"vault": {"server": "http://127.0.0.1:1", "path": "pki/sign/web",
            "auth": {"kubernetes": {"mountPath": "/v1/auth/kubernetes", "role": "sandbox-vi",
                "serviceAccountRef": {"name": "vi", "audiences": ["extra"]}}}}}
    });
    let (c, task) = cluster(vec![
        Step::new("POST", "/api/v1/namespaces/sandbox/serviceaccounts/vi/token")
            .body(|b| {
                assert_eq!(b["kind"], "TokenRequest");
                assert_eq!(
                    b["spec"]["audiences"],
                    json!(["vault://sandbox/vi", "extra"])
                );
                assert_eq!(b["spec"]["expirationSeconds"], 600);
            })
            .reply(
                201,
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "metadata": {"name": "vi", "namespace": "sandbox"},
                    "spec": {"audiences": ["vault://sandbox/vi", "extra"]},
                    "status": {"token": "eyJ.fake.jwt", "expirationTimestamp": "2030-01-01T00:00:00Z"}}),
            ),
    ]);
    match credentials(&c, &k8s_issuer, "cert-manager").await.unwrap() {
        Credentials::Kubernetes { mount, role, jwt } => {
            assert_eq!(
                (mount.as_str(), role.as_str()),
                ("kubernetes", "sandbox-vi")
            );
            assert_eq!(jwt.expose(), "eyJ.fake.jwt");
        }
        other => panic!("{other:?}"),
    }
    finish(task).await;

    // A Secret without the key: a clear error, no panic.
    let (c, task) = cluster(vec![Step::get(SECRET_PATH).reply(
        200,
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "cm-approle", "namespace": "sandbox"}, "data": {}}),
    )]);
    let err = credentials(&c, &approle_issuer, "cert-manager")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Secret sandbox/cm-approle has no key secretId");
    finish(task).await;
}

/// TLS certificate auth: verify reads the client certificate and key from
/// the Secrets the Issuer names, as cert-manager does (`clientCertSecretRef`
/// and `clientKeySecretRef` for the connection, `auth.clientCertificate`
/// for the login), and never shows the key.
#[tokio::test]
async fn verify_reads_the_client_certificate_of_mtls_and_cert_auth() {
    use certplane::verify::client_identity;
    let _ = rustls::crypto::ring::default_provider().install_default();
    const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n";
    let tls_secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "vault-client-tls", "namespace": "sandbox"},
        "data": {"tls.crt": b64(CERT), "tls.key": b64(KEY)}});
    let issuer = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "vi", "namespace": "sandbox"},
        "spec": {"vault": {"server": "https://127.0.0.1:1", "path": "pki/sign/web",
            "clientCertSecretRef": {"name": "vault-client-tls", "key": "tls.crt"},
            "clientKeySecretRef": {"name": "vault-client-tls", "key": "tls.key"},
            "auth": {"clientCertificate": {"mountPath": "/v1/auth/cert", "name": "cert-manager",
                "secretName": "vault-client-tls"}}}}
    });
    const TLS_PATH: &str = "/api/v1/namespaces/sandbox/secrets/vault-client-tls";
    let (c, task) = cluster(vec![
        Step::get(TLS_PATH).reply(200, tls_secret.clone()),
        Step::get(TLS_PATH).reply(200, tls_secret.clone()),
        Step::get(TLS_PATH).reply(200, tls_secret.clone()),
        Step::get(TLS_PATH).reply(200, tls_secret.clone()),
    ]);
    let identity = client_identity(&c, &issuer, "cert-manager")
        .await
        .unwrap()
        .expect("an mTLS identity");
    assert!(identity.expose().contains(CERT) && identity.expose().contains(KEY));
    match credentials(&c, &issuer, "cert-manager").await.unwrap() {
        creds @ Credentials::Cert { .. } => {
            let shown = format!("{creds:?}");
            assert!(!shown.contains("c2VjcmV0"), "{shown}");
            let Credentials::Cert {
                mount,
                name,
                identity,
                from,
            } = creds
            else {
                unreachable!()
            };
            assert_eq!(mount, "cert");
            assert_eq!(name.as_deref(), Some("cert-manager"));
            assert!(identity.unwrap().expose().contains(KEY));
            assert_eq!(from, "certificate from Secret sandbox/vault-client-tls");
        }
        other => panic!("{other:?}"),
    }
    finish(task).await;

    // Without secretName, the login uses the connection's certificate; with
    // neither, a clear error.
    let mut no_secret_name = issuer.clone();
    no_secret_name["spec"]["vault"]["auth"]["clientCertificate"]
        .as_object_mut()
        .unwrap()
        .remove("secretName");
    let (c, task) = cluster(vec![]);
    match credentials(&c, &no_secret_name, "cert-manager")
        .await
        .unwrap()
    {
        Credentials::Cert { identity, from, .. } => {
            assert!(identity.is_none());
            assert_eq!(
                from,
                "the mTLS certificate from Secret sandbox/vault-client-tls"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut neither = no_secret_name.clone();
    let v = neither["spec"]["vault"].as_object_mut().unwrap();
    v.remove("clientCertSecretRef");
    v.remove("clientKeySecretRef");
    let err = credentials(&c, &neither, "cert-manager")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("auth.clientCertificate names no certificate"),
        "{err}"
    );
    assert_eq!(
        client_identity(&c, &neither, "cert-manager").await.unwrap(),
        None
    );
    // One of the two refs only: an error, no request.
    let mut half = issuer.clone();
    half["spec"]["vault"]
        .as_object_mut()
        .unwrap()
        .remove("clientKeySecretRef");
    let err = client_identity(&c, &half, "cert-manager")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mutual TLS needs both"), "{err}");
    finish(task).await;

    // A Secret whose key is not a PEM key: named, not shown.
    let mut bad = tls_secret.clone();
    bad["data"]["tls.key"] = json!(b64("not a key at all"));
    let (c, task) = cluster(vec![
        Step::get(TLS_PATH).reply(200, bad.clone()),
        Step::get(TLS_PATH).reply(200, bad),
    ]);
    let err = client_identity(&c, &issuer, "cert-manager")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Secret sandbox/vault-client-tls key tls.key holds no PEM private key"
    );
    finish(task).await;
}

/// Regression (issue 8): the first apply of examples/vault-approle wrote
/// the delivered AppRole Secret before its namespace existed (a real API
/// server refuses it: namespace not found). The namespace is applied first,
/// then the Vault half, then the Secret (with a secret ID Vault knows), then
/// the Issuer and the Certificate, then the inventory.
#[tokio::test]
async fn regression_the_first_apply_of_vault_approle_creates_the_namespace_before_the_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault-approle");
    std::fs::create_dir(&dir).unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vault-approle");
    for entry in std::fs::read_dir(example).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let prepared = certplane::pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    let vault = certplane::vault::Vault::connect(
        &certplane::vault::VaultSettings::with_token(
            &bao.addr(),
            certplane::model::Source::Value(bao.token().into()),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    const NS: &str = "/api/v1/namespaces/sandbox";
    const SECRET: &str = "/api/v1/namespaces/sandbox/secrets/cert-manager-vault-approle";
    const ISSUER: &str = "/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vault-issuer";
    const CERT: &str = "/apis/cert-manager.io/v1/namespaces/sandbox/certificates/web";
    const INVENTORY: &str =
        "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory-vault-approle";
    const LEGACY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory";
    let object = |api: &str, kind: &str, ns: Option<&str>, name: &str| {
        let mut v = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    };
    let delivered = Arc::new(Mutex::new(String::new()));
    let seen = delivered.clone();
    let (c, task) = cluster(vec![
        // plan: the Secret, the namespace (absent: its Issuer and
        // Certificate are planned as creates without a dry run), the
        // inventory.
        Step::get(SECRET).not_found("secrets", "cert-manager-vault-approle"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(NS).not_found("namespaces", "sandbox"),
        Step::apply(NS, true).reply(200, object("v1", "Namespace", None, "sandbox")),
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-vault-approle"),
        // apply: the namespace first...
        Step::get(NS).not_found("namespaces", "sandbox"),
        Step::apply(NS, false).reply(200, object("v1", "Namespace", None, "sandbox")),
        // ...then (after the Vault half) the Secret...
        Step::get(SECRET).not_found("secrets", "cert-manager-vault-approle"),
        Step::apply(SECRET, false)
            .body(move |b| {
                assert_eq!(unb64(&b["data"]["roleId"]), "cert-manager-sandbox");
                *seen.lock().unwrap() = unb64(&b["data"]["secretId"]);
            })
            .reply(
                200,
                object(
                    "v1",
                    "Secret",
                    Some("sandbox"),
                    "cert-manager-vault-approle",
                ),
            ),
        // ...then the cert-manager objects, and the inventory.
        Step::get("/apis/cert-manager.io/v1").reply(200, fake::cert_manager_v1()),
        Step::get(ISSUER).not_found("issuers.cert-manager.io", "vault-issuer"),
        Step::apply(ISSUER, false).reply(
            200,
            object(
                "cert-manager.io/v1",
                "Issuer",
                Some("sandbox"),
                "vault-issuer",
            ),
        ),
        Step::get(CERT).not_found("certificates.cert-manager.io", "web"),
        Step::apply(CERT, false).reply(
            200,
            object("cert-manager.io/v1", "Certificate", Some("sandbox"), "web"),
        ),
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-vault-approle"),
        Step::apply(INVENTORY, false).reply(
            200,
            object(
                "v1",
                "ConfigMap",
                Some("certplane-system"),
                "certplane-inventory-vault-approle",
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
    certplane::pipeline::apply(targets, &prepared, &plan, Default::default(), &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("{}", certplane::vault::error_chain(&e)));
    finish(task).await;
    // The secret ID in the Secret is one Vault made for the role.
    let secret_id = delivered.lock().unwrap().clone();
    let lookup = bao.bao_json(&[
        "write",
        "-format=json",
        "auth/approle/role/cert-manager/secret-id/lookup",
        &format!("secret_id={secret_id}"),
    ]);
    assert!(lookup["data"].is_object(), "{lookup}");
}
