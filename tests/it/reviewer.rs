//! The token reviewer of Kubernetes auth, against a real OpenBao, a scripted
//! API server behind a real `kube::Client` (the Secret reads certplane
//! makes) and a loopback TokenReview endpoint that behaves as a real API
//! server does (only the reviewer's token is a credential; the
//! audience-bound token under review is refused with 401).
//!
//! * the reviewer's token goes from its `kubernetes.io/service-account-token`
//!   Secret to `auth/<mount>/config` after the cluster half, and Vault then
//!   reviews logins with it; it never reaches a plan, an event or a report;
//! * without a reviewer, Vault reviews a token with that token, the API
//!   server refuses it, and `verify` says why instead of only "permission
//!   denied".

use crate::common;
use crate::common::fake;

use std::time::Duration;

use base64::Engine as _;
use certplane::addr::{Addr, KubeRef};
use certplane::cluster::live::LiveCluster;
use certplane::model::Sensitive;
use certplane::pipeline::{PlanOptions, Targets};
use certplane::plan::{Action, Change, Plan};
use certplane::state::{ClusterSecretKey, ResourceKind};
use certplane::verify::{Connection, Credentials, IssuerReport, Probe, check_issuer};
use common::tokenreview::TokenReviewServer;
use common::{OpenBao, issuer_addr};
use fake::{Step, cluster, finish};
use serde_json::{Value, json};

/// The inventory of the repository `lab` (the directory's name).
const INVENTORY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory-lab";
const TOKEN_SECRET: &str = "/api/v1/namespaces/vault-auth/secrets/vault-token-reviewer-token";
const AUDIENCE: &str = "vault://sandbox/vault-issuer";

fn repo(host: &str, reviewer: &str) -> String {
    format!(
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki}}
spec:
  maxLeaseTTL: 8760h
  ca: {{root: {{commonName: Reviewer Root, keyType: ec, keyBits: 256, ttl: 8760h}}}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: web}}
spec: {{mount: pki, allowedDomains: [example.com], allowSubdomains: true, maxTTL: 24h, keyType: any}}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {{name: web-sign}}
spec:
  rules: [{{path: pki/sign/web, capabilities: [update]}}]
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {{name: kubernetes}}
spec:
  type: kubernetes
  kubernetes:
    host: {host}
    caCertFile: k8s-ca.pem
    disableLocalCaJwt: true
{reviewer}---
apiVersion: certplane.dev/v1alpha1
kind: KubernetesAuthRole
metadata: {{name: issuer}}
spec:
  mount: kubernetes
  boundServiceAccountNames: [vault-issuer]
  boundServiceAccountNamespaces: [sandbox]
  audience: {AUDIENCE}
  tokenPolicies: [web-sign]
"#
    )
}

const SA_REVIEWER: &str =
    "    tokenReviewer: {serviceAccount: {namespace: vault-auth, name: vault-token-reviewer}}\n";

fn write_repo(dir: &std::path::Path, text: &str) {
    std::fs::write(dir.join("repo.yaml"), text).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/homelab/ca/k8s-ca.pem"
        ),
        dir.join("k8s-ca.pem"),
    )
    .unwrap();
}

fn token_secret(token: Option<&str>) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "vault-token-reviewer-token", "namespace": "vault-auth",
            "annotations": {"kubernetes.io/service-account.name": "vault-token-reviewer"}},
        "type": "kubernetes.io/service-account-token",
    });
    if let Some(t) = token {
        let b = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        s["data"] = json!({"token": b(t), "namespace": b("vault-auth"), "ca.crt": b("PEM")});
    }
    s
}

async fn login_as_issuer(bao: &OpenBao, jwt: &str) -> IssuerReport {
    check_issuer(
        issuer_addr(),
        &Connection {
            server: bao.addr(),
            ..Connection::default()
        },
        "pki/sign/web",
        &Credentials::Kubernetes {
            mount: "kubernetes".into(),
            role: "issuer".into(),
            jwt: Sensitive::new(jwt.into()),
        },
        Probe {
            common_name: Some("verify.example.com".into()),
            ..Probe::generic()
        },
    )
    .await
}

#[tokio::test]
async fn the_reviewer_token_goes_from_its_secret_to_vault_and_nowhere_else() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let reviewer = common::tokenreview::sa_jwt("vault-auth", "vault-token-reviewer", &[]);
    let api = TokenReviewServer::start(&reviewer);
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    std::fs::create_dir(&dir).unwrap();
    write_repo(&dir, &repo(&api.url(), SA_REVIEWER));
    let mut prepared = certplane::pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));

    // The reviewer's cluster objects are part of the repository...
    let kinds: Vec<String> = prepared
        .repo
        .manifests
        .iter()
        .map(|m| format!("{}/{}", m.spec["kind"].as_str().unwrap(), m.meta.name))
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount/vault-token-reviewer",
            "Secret/vault-token-reviewer-token",
            "ClusterRoleBinding/vault-auth-vault-token-reviewer-auth-delegator"
        ]
    );
    // ...and exist already here: the plan has no cluster object to apply.
    prepared.repo.manifests.clear();

    let vault = common::root_vault(&bao.addr()).await;
    // Planning reads only the inventory (nothing recorded); applying reads
    // the token Secret (first before the API server filled it in, then with
    // the token), then prune reads the inventory again (no cluster object:
    // nothing to record).
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-lab"),
        Step::get(TOKEN_SECRET).reply(200, token_secret(None)),
        Step::get(TOKEN_SECRET).reply(200, token_secret(Some(&reviewer))),
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
    let config = plan
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "vault:auth/kubernetes/config")
        .expect("the auth config is planned");
    assert_eq!(config.action, Action::Create);
    assert_eq!(config.sensitive, ["token_reviewer_jwt"]);
    let reason = config.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("ServiceAccount vault-auth/vault-token-reviewer")
            && reason.contains("written after the cluster half"),
        "{reason}"
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
    // The config was written last, after the cluster half.
    let last = done.changes.last().unwrap();
    assert_eq!(last.addr.to_string(), "vault:auth/kubernetes/config");
    let cfg = bao.bao_json(&["read", "auth/kubernetes/config"]);
    assert_eq!(cfg["data"]["token_reviewer_jwt_set"], json!(true), "{cfg}");

    // Vault now reviews a login with the reviewer's token: the API server
    // accepts that credential, and the issuer logs in and signs.
    let jwt = api.issue("sandbox", "vault-issuer", &[AUDIENCE]);
    let report = login_as_issuer(&bao, &jwt).await;
    assert!(report.ok(), "{}", report.render());
    let review = api.reviews().last().cloned().unwrap();
    assert_eq!(
        review.bearer, reviewer,
        "Vault reviewed with the reviewer's token"
    );
    assert_eq!(review.token, jwt);
    assert_eq!(review.status, 201);

    // A second plan: nothing to do (Vault says the reviewer JWT is set);
    // the cluster is asked only for the inventory.
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
    assert!(!again.has_changes(), "{again:?}");

    // The token is nowhere but in Vault.
    let shown = format!(
        "{plan:?}{again:?}{done:?}{events:?}{}{}{}",
        certplane::plan::render::human(&plan, Default::default()),
        certplane::plan::render::json(&plan),
        report.render()
    );
    assert!(!shown.contains(&reviewer), "the reviewer token leaked");
    assert!(!shown.contains(&jwt), "the login token leaked");
}

/// A reviewer token Secret that this apply creates (first apply, or a
/// Secret re-created since): the config is written again even though Vault
/// says a reviewer JWT is set, since Vault cannot tell an old token from a
/// new one.
#[tokio::test]
async fn a_new_token_secret_makes_the_config_be_written_again() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().unwrap();
    write_repo(
        dir.path(),
        &repo("https://kubernetes.example:6443", SA_REVIEWER),
    );
    let prepared = certplane::pipeline::prepare(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let vault = common::root_vault(&bao.addr()).await;
    bao.bao_ok(&["auth", "enable", "kubernetes"]);
    bao.bao_ok(&[
        "write",
        "auth/kubernetes/config",
        "kubernetes_host=https://kubernetes.example:6443",
        &format!(
            "kubernetes_ca_cert=@{}",
            dir.path().join("k8s-ca.pem").display()
        ),
        "disable_local_ca_jwt=true",
        "token_reviewer_jwt=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbGQifQ.c2ln",
    ]);
    let mut plan = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    let config = |p: &Plan| {
        p.changes
            .iter()
            .find(|c| c.kind == ResourceKind::AuthConfig)
            .cloned()
            .unwrap()
    };
    assert_eq!(config(&plan).action, Action::NoOp);
    let mut same = plan.clone();
    certplane::cluster::reviewer::plan_live(&mut same, &prepared.desired);
    assert_eq!(config(&same).action, Action::NoOp);

    plan.changes.push(Change {
        addr: Addr::from(KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("vault-auth".into()),
            name: "vault-token-reviewer-token".into(),
        }),
        kind: ResourceKind::ClusterObject,
        action: Action::Create,
        before: None,
        after: None,
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: Default::default(),
        manifest: None,
    });
    certplane::cluster::reviewer::plan_live(&mut plan, &prepared.desired);
    let c = config(&plan);
    assert_eq!(c.action, Action::Update);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .contains("created by this apply"),
        "{:?}",
        c.reason
    );
    let (first, later) = certplane::cluster::reviewer::split(&plan, &prepared.desired);
    assert!(
        first
            .changes
            .iter()
            .all(|c| c.kind != ResourceKind::AuthConfig)
    );
    assert_eq!(later.len(), 1);
}

/// Without a reviewer Vault reviews the token with that same token; a real
/// API server refuses such a credential (401), Vault answers "permission
/// denied", and verify names the usual causes.
#[tokio::test]
async fn without_a_reviewer_the_login_fails_and_verify_says_why() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = TokenReviewServer::start("the-only-reviewer");
    let bao = OpenBao::start();
    // A repository cannot say this (validate refuses it): made by hand.
    let yaml = repo(&api.url(), SA_REVIEWER).replace(
        SA_REVIEWER,
        "    tokenReviewerJwtFrom: {value: placeholder.jwt.x}\n",
    );
    let ca = include_str!("../../examples/homelab/ca/k8s-ca.pem");
    common::apply_files_at(&bao.addr(), &[("repo.yaml", &yaml), ("k8s-ca.pem", ca)]).await;
    bao.bao_ok(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host={}", api.url()),
        &format!(
            "kubernetes_ca_cert=@{}",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/homelab/ca/k8s-ca.pem"
            )
        ),
        "disable_local_ca_jwt=true",
    ]);
    let jwt = api.issue("sandbox", "vault-issuer", &[AUDIENCE]);
    let report = login_as_issuer(&bao, &jwt).await;
    let last = report.steps.last().unwrap();
    assert_eq!(last.what, "login", "{}", report.render());
    let why = last.result.as_ref().unwrap_err();
    for part in [
        "permission denied",
        "no token reviewer",
        "system:auth-delegator",
        "audience-bound",
    ] {
        assert!(why.contains(part), "{part:?} not in: {why}");
    }
    assert!(!why.contains(&jwt));
    // What the API server saw: the token under review as the credential.
    let review = api.reviews().last().cloned().unwrap();
    assert_eq!((review.bearer.as_str(), review.status), (jwt.as_str(), 401));

    // A role that wants another audience: rejected before any review, and
    // verify says it is the audience.
    bao.bao_ok(&[
        "write",
        "auth/kubernetes/role/issuer",
        "bound_service_account_names=vault-issuer",
        "bound_service_account_namespaces=sandbox",
        "audience=vault://sandbox/other",
        "token_policies=web-sign",
    ]);
    let report = login_as_issuer(&bao, &jwt).await;
    let why = report.steps.last().unwrap().result.clone().unwrap_err();
    assert!(why.contains("audience"), "{why}");
    assert!(why.contains("vault://<namespace>/<issuer>"), "{why}");

    // A role name that does not exist.
    let report = check_issuer(
        issuer_addr(),
        &Connection {
            server: bao.addr(),
            ..Connection::default()
        },
        "pki/sign/web",
        &Credentials::Kubernetes {
            mount: "kubernetes".into(),
            role: "isuer".into(),
            jwt: Sensitive::new(jwt.clone()),
        },
        Probe::generic(),
    )
    .await;
    let why = report.steps.last().unwrap().result.clone().unwrap_err();
    assert!(why.contains("role isuer does not exist"), "{why}");
}

/// The token Secret is read until the API server has filled it in, within
/// a time limit; a Secret that never appears is a clear error.
#[tokio::test]
async fn the_token_is_awaited_and_a_missing_secret_is_a_clear_error() {
    let key = ClusterSecretKey {
        namespace: "vault-auth".into(),
        name: "vault-token-reviewer-token".into(),
        key: "token".into(),
        service_account: "vault-auth/vault-token-reviewer".into(),
    };
    let (c, task) = cluster(vec![
        Step::get(TOKEN_SECRET).not_found("secrets", "vault-token-reviewer-token"),
        Step::get(TOKEN_SECRET).reply(200, token_secret(None)),
        Step::get(TOKEN_SECRET).reply(200, token_secret(Some("eyJ.reviewer.token"))),
    ]);
    let token = certplane::cluster::reviewer::read_token(&c, &key, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(token.expose(), "eyJ.reviewer.token");
    finish(task).await;

    let (c, task) = cluster(vec![
        Step::get(TOKEN_SECRET).not_found("secrets", "vault-token-reviewer-token"),
        Step::get(TOKEN_SECRET).not_found("secrets", "vault-token-reviewer-token"),
        Step::get(TOKEN_SECRET).not_found("secrets", "vault-token-reviewer-token"),
    ]);
    let err = certplane::cluster::reviewer::read_token(&c, &key, Duration::from_millis(1000))
        .await
        .unwrap_err();
    finish(task).await;
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Secret vault-auth/vault-token-reviewer-token (key token) of reviewer ServiceAccount \
             vault-auth/vault-token-reviewer does not exist after 1s"
        ),
        "{text}"
    );
    assert!(
        text.contains("kubernetes.io/service-account-token"),
        "{text}"
    );
}

/// `vaultPodIdentity: true`: Vault reviews with its own pod's account, so
/// a reviewer JWT Vault holds is a change, and the write clears it.
#[tokio::test]
async fn vault_pod_identity_clears_a_reviewer_jwt_vault_has() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().unwrap();
    let text = repo(
        "https://kubernetes.default.svc",
        "    tokenReviewer: {vaultPodIdentity: true}\n",
    )
    .replace("    disableLocalCaJwt: true\n", "");
    write_repo(dir.path(), &text);
    let prepared = certplane::pipeline::prepare(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let vault = common::root_vault(&bao.addr()).await;
    bao.bao_ok(&["auth", "enable", "kubernetes"]);
    bao.bao_ok(&[
        "write",
        "auth/kubernetes/config",
        "kubernetes_host=https://kubernetes.default.svc",
        &format!(
            "kubernetes_ca_cert=@{}",
            dir.path().join("k8s-ca.pem").display()
        ),
        "token_reviewer_jwt=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbGQifQ.c2ln",
    ]);
    let plan = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    let config = plan
        .changes
        .iter()
        .find(|c| c.kind == ResourceKind::AuthConfig)
        .unwrap();
    assert_eq!(config.action, Action::Update);
    assert_eq!(
        config.reason.as_deref(),
        Some("changed: token_reviewer_jwt")
    );
    assert!(config.sensitive.is_empty());
    let human = certplane::plan::render::human(&plan, Default::default());
    assert!(
        human.contains("token_reviewer_jwt = \"(sensitive)\" -> (none)"),
        "{human}"
    );
    let secrets = certplane::vault::secret_sources(&prepared.desired);
    certplane::vault::apply(&vault, &plan, &secrets, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("{}", certplane::vault::error_chain(&e)));
    let cfg = bao.bao_json(&["read", "auth/kubernetes/config"]);
    assert_eq!(cfg["data"]["token_reviewer_jwt_set"], json!(false), "{cfg}");
    assert_eq!(cfg["data"]["disable_local_ca_jwt"], json!(false), "{cfg}");
    let again = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    assert!(!again.has_changes(), "{again:?}");
}
