//! `verify` against a real OpenBao: the Issuer's own credentials, a
//! throwaway signature through its path, and the chain that comes back; and
//! each way it fails (wrong secret, a policy without the sign path, a sealed
//! Vault). TLS certificate auth against an OpenBao with a mutual-TLS
//! listener: the login as cert-manager makes it, over mTLS.

use crate::common;

use certplane::model::Sensitive;
use certplane::verify::{Connection, Credentials, Probe, check_issuer, probe_for};
use common::{OpenBao, issuer_addr};

const REPO: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca: {root: {commonName: Verify Root, keyType: ec, keyBits: 256, ttl: 87600h}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Verify Intermediate
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
  allowedDomains: [lab.local]
  allowSubdomains: true
  maxTTL: 24h
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: web-sign}
spec:
  rules: [{path: pki_int/sign/web, capabilities: [update]}]
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: web-read-only}
spec:
  rules: [{path: pki_int/cert/*, capabilities: [read]}]
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: approle}
spec: {type: approle}
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: issuer}
spec: {mount: approle, tokenPolicies: [web-sign]}
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: weak}
spec: {mount: approle, tokenPolicies: [web-read-only]}
"#;

struct Fixture {
    bao: OpenBao,
    repo: certplane::model::Repository,
}

async fn fixture() -> Fixture {
    let bao = OpenBao::start();
    let (prepared, _) = common::apply_yaml(&bao, REPO).await;
    Fixture {
        bao,
        repo: prepared.repo,
    }
}

fn approle(bao: &OpenBao, role: &str) -> (String, String) {
    let role_id = bao.bao_ok(&[
        "read",
        "-field=role_id",
        &format!("auth/approle/role/{role}/role-id"),
    ]);
    let secret_id = bao.bao_ok(&[
        "write",
        "-f",
        "-field=secret_id",
        &format!("auth/approle/role/{role}/secret-id"),
    ]);
    (role_id.trim().to_string(), secret_id.trim().to_string())
}

async fn check(f: &Fixture, creds: &Credentials, path: &str) -> certplane::verify::IssuerReport {
    check_issuer(
        issuer_addr(),
        &Connection {
            server: f.bao.addr(),
            ..Connection::default()
        },
        path,
        creds,
        probe_for(&f.repo, path),
    )
    .await
}

#[tokio::test]
async fn a_working_issuer_passes_every_step_and_shows_its_chain() {
    let f = fixture().await;
    let (role_id, secret_id) = approle(&f.bao, "issuer");
    let creds = Credentials::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: Sensitive::new(secret_id.clone()),
    };
    let report = check(&f, &creds, "pki_int/sign/web").await;
    let text = report.render();
    assert!(report.ok(), "{text}");
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.what.as_str())
            .collect::<Vec<_>>(),
        ["vault", "login", "sign", "chain"]
    );
    assert!(text.contains("certplane-verify.lab.local"), "{text}");
    assert!(
        text.contains("certplane-verify.lab.local <- Verify Intermediate <- Verify Root"),
        "{text}"
    );
    assert!(!text.contains(&secret_id), "the secret ID leaked: {text}");
    assert!(!format!("{report:?}").contains(&secret_id));
}

#[tokio::test]
async fn wrong_secret_fails_at_login_without_printing_it() {
    let f = fixture().await;
    let (role_id, _) = approle(&f.bao, "issuer");
    let wrong = "6a9f8e2c-0000-4000-8000-deadbeefcafe".to_string();
    let creds = Credentials::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: Sensitive::new(wrong.clone()),
    };
    let report = check(&f, &creds, "pki_int/sign/web").await;
    assert!(!report.ok());
    let last = report.steps.last().unwrap();
    assert_eq!(last.what, "login", "{}", report.render());
    let why = last.result.as_ref().unwrap_err();
    assert!(
        why.contains("the secret ID in the Issuer's Secret is expired, used up, or was not issued"),
        "{why}"
    );
    assert!(!report.render().contains(&wrong));
}

#[tokio::test]
async fn a_policy_without_the_sign_path_fails_at_sign_with_a_hint() {
    let f = fixture().await;
    let (role_id, secret_id) = approle(&f.bao, "weak");
    let creds = Credentials::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: Sensitive::new(secret_id),
    };
    let report = check(&f, &creds, "pki_int/sign/web").await;
    let last = report.steps.last().unwrap();
    assert_eq!(last.what, "sign", "{}", report.render());
    let why = last.result.as_ref().unwrap_err();
    assert!(
        why.contains("policy grants update on pki_int/sign/web"),
        "{why}"
    );
}

#[tokio::test]
async fn a_name_outside_the_role_is_refused_at_sign() {
    let f = fixture().await;
    let creds = Credentials::Token(Sensitive::new(f.bao.token().into()));
    // A path whose role is not in the repository: the probe name is a
    // generic one that the role refuses.
    let report = check_issuer(
        issuer_addr(),
        &Connection {
            server: f.bao.addr(),
            ..Connection::default()
        },
        "pki_int/sign/web",
        &creds,
        Probe::generic(),
    )
    .await;
    assert_eq!(
        report.steps.last().unwrap().what,
        "sign",
        "{}",
        report.render()
    );
    assert!(!report.ok());
}

#[tokio::test]
async fn a_sealed_vault_fails_at_the_first_step() {
    let f = fixture().await;
    f.bao.bao_ok(&["operator", "seal"]);
    let creds = Credentials::Token(Sensitive::new(f.bao.token().into()));
    let report = check(&f, &creds, "pki_int/sign/web").await;
    assert_eq!(report.steps.len(), 1, "{}", report.render());
    assert_eq!(report.steps[0].what, "vault");
    assert!(
        report.steps[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("sealed")
    );
}

/// Cert auth with a role for cert-manager whose CA is client CA `a`,
/// declared in the repository (a `CertAuthRole`).
const CERT_AUTH: &str = r#"
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: cert}
spec: {type: cert}
---
apiVersion: certplane.dev/v1alpha1
kind: CertAuthRole
metadata: {name: cert-manager}
spec: {mount: cert, certificateFile: client-a-ca.pem, tokenPolicies: [web-sign]}
"#;

/// The repository above with [`CERT_AUTH`], applied to an OpenBao with a
/// mutual-TLS listener.
async fn tls_fixture() -> (common::tls::TlsBao, certplane::model::Repository) {
    let bao = common::tls::TlsBao::start();
    let repo = format!("{REPO}{CERT_AUTH}");
    let (prepared, _) = common::apply_files_at(
        &bao.dev_addr(),
        &[
            ("repo.yaml", &repo),
            ("client-a-ca.pem", &bao.client_a.ca_pem),
        ],
    )
    .await;
    (bao, prepared.repo)
}

/// examples/vault-mtls as a user runs it: its client CA is the harness's
/// CA `a` (the example's own is a placeholder for yours); everything else
/// as committed.
fn mtls_example(bao: &common::tls::TlsBao) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vault-mtls");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    vec![
        ("vault.yaml".into(), read("vault.yaml")),
        ("cluster.yaml".into(), read("cluster.yaml")),
        ("ca/client-ca.pem".into(), bao.client_a.ca_pem.clone()),
    ]
}

#[tokio::test]
async fn the_mtls_example_declares_its_cert_role_and_verify_logs_in_with_it() {
    let bao = common::tls::TlsBao::start();
    let files = mtls_example(&bao);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let (prepared, vault) = common::apply_files_at(&bao.dev_addr(), &files).await;
    // The role is certplane's: applied as declared, and a second plan is
    // clean.
    let role = bao.bao_ok(&["read", "-format=json", "auth/cert/certs/cert-manager"]);
    let role: serde_json::Value = serde_json::from_str(&role).unwrap();
    assert_eq!(
        role["data"]["token_policies"],
        serde_json::json!(["cert-manager-sign"])
    );
    assert_eq!(role["data"]["display_name"], "cert-manager");
    assert_eq!(role["data"]["token_ttl"], 1200);
    let again = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    assert!(
        !again.has_changes(),
        "{}",
        certplane::plan::render::human(&again, Default::default())
    );

    // verify, as cert-manager logs in with the example's Issuer: its mount,
    // role name and sign path, over mutual TLS with a certificate of CA a.
    let issuer = prepared
        .repo
        .manifests
        .iter()
        .find(|m| m.spec["kind"] == "Issuer")
        .unwrap();
    let v = &issuer.spec["spec"]["vault"];
    let cert = &v["auth"]["clientCertificate"];
    let mount = cert["mountPath"]
        .as_str()
        .unwrap()
        .trim_start_matches("/v1/auth/");
    let path = v["path"].as_str().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let report = check_issuer(
        issuer_addr(),
        &Connection {
            server: bao.tls_addr(),
            ca_bundle_pem: Some(bao.server_ca_pem.clone()),
            namespace: None,
            client_identity: Some(Sensitive::new(bao.client_a.identity())),
        },
        path,
        &Credentials::Cert {
            mount: mount.into(),
            name: cert["name"].as_str().map(str::to_string),
            identity: None,
            from: "Secret sandbox/vault-client-tls".into(),
        },
        probe_for(&prepared.repo, path),
    )
    .await;
    let text = report.render();
    assert!(report.ok(), "{text}");
    assert!(
        text.contains("ok    login: TLS certificate auth role cert-manager on auth/cert"),
        "{text}"
    );
    assert!(text.contains("ok    sign:"), "{text}");
}

async fn check_cert(
    bao: &common::tls::TlsBao,
    repo: &certplane::model::Repository,
    transport: &common::tls::ClientCert,
    login: Option<&common::tls::ClientCert>,
    name: &str,
) -> certplane::verify::IssuerReport {
    let _ = rustls::crypto::ring::default_provider().install_default();
    check_issuer(
        issuer_addr(),
        &Connection {
            server: bao.tls_addr(),
            ca_bundle_pem: Some(bao.server_ca_pem.clone()),
            namespace: None,
            client_identity: Some(Sensitive::new(transport.identity())),
        },
        "pki_int/sign/web",
        &Credentials::Cert {
            mount: "cert".into(),
            name: Some(name.into()),
            identity: login.map(|c| Sensitive::new(c.identity())),
            from: "Secret sandbox/vault-client-tls".into(),
        },
        probe_for(repo, "pki_int/sign/web"),
    )
    .await
}

#[tokio::test]
async fn tls_certificate_auth_logs_in_over_mtls_and_signs() {
    let (bao, repo) = tls_fixture().await;
    let report = check_cert(&bao, &repo, &bao.client_a, None, "cert-manager").await;
    let text = report.render();
    assert!(report.ok(), "{text}");
    assert!(
        text.contains("ok    login: TLS certificate auth role cert-manager on auth/cert"),
        "{text}"
    );
    assert!(text.contains("ok    chain:"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!format!("{report:?}").contains(&bao.client_a.key_pem));

    // A login certificate of its own (auth.clientCertificate.secretName),
    // beside the connection's: the login uses it, and only it.
    let report = check_cert(
        &bao,
        &repo,
        &bao.client_b,
        Some(&bao.client_a),
        "cert-manager",
    )
    .await;
    assert!(report.ok(), "{}", report.render());
}

#[tokio::test]
async fn a_certificate_the_role_does_not_trust_fails_at_login_with_the_causes() {
    let (bao, repo) = tls_fixture().await;
    // Client CA b gets through the TLS listener, but the role trusts only a.
    let report = check_cert(&bao, &repo, &bao.client_b, None, "cert-manager").await;
    let last = report.steps.last().unwrap();
    assert_eq!(last.what, "login", "{}", report.render());
    let why = last.result.as_ref().unwrap_err();
    assert!(
        why.contains("check that cert role cert-manager (auth/cert/certs/cert-manager) exists"),
        "{why}"
    );
    assert!(
        why.contains("the CA that signed this client certificate"),
        "{why}"
    );
    // A role name that does not exist fails the same way, naming it.
    let report = check_cert(&bao, &repo, &bao.client_a, None, "cert-manger").await;
    let why = report.steps.last().unwrap().result.clone().unwrap_err();
    assert!(why.contains("cert role cert-manger"), "{why}");
    // Without a client certificate the TLS listener refuses the connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let report = check_issuer(
        issuer_addr(),
        &Connection {
            server: bao.tls_addr(),
            ca_bundle_pem: Some(bao.server_ca_pem.clone()),
            ..Connection::default()
        },
        "pki_int/sign/web",
        &Credentials::Cert {
            mount: "cert".into(),
            name: Some("cert-manager".into()),
            identity: None,
            from: "nowhere".into(),
        },
        probe_for(&repo, "pki_int/sign/web"),
    )
    .await;
    assert_eq!(report.steps[0].what, "vault", "{}", report.render());
    assert!(report.steps[0].result.is_err(), "{}", report.render());
}
