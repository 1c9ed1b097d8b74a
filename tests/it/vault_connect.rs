//! Connecting to a real OpenBao: token and AppRole login, and the one-line
//! errors of a sealed, unreachable or misconfigured Vault.

use crate::common;

use std::time::{Duration, Instant};

use certplane::model::Source;
use certplane::vault::{AuthSettings, Vault, VaultError, VaultSettings};
use common::{OpenBao, logins_since};

fn token_settings(addr: &str, token: &str) -> VaultSettings {
    VaultSettings::with_token(addr, Source::Value(token.to_string())).unwrap()
}

#[tokio::test]
async fn token_login_checks_the_token_once_and_reads() {
    let bao = OpenBao::start_with_audit();
    let vault = Vault::connect(&token_settings(&bao.addr(), bao.token()))
        .await
        .unwrap();
    let mounts = vault.read("sys/mounts").await.unwrap().unwrap();
    assert!(
        mounts.get("secret/").is_some() || mounts.get("sys/").is_some(),
        "{mounts}"
    );
    let lookups = bao
        .audit_entries()
        .into_iter()
        .filter(|(_, p)| p == "auth/token/lookup-self")
        .count();
    assert_eq!(lookups, 1);
    assert!(logins_since(&bao, 0).is_empty());
    let n = vault.requests_made();
    assert_eq!((n.writes, n.logins), (0, 0));
    assert!(n.reads >= 3, "{n:?}");
    // A missing path is None, not an error.
    assert!(vault.read("sys/policies/acl/nope").await.unwrap().is_none());
    assert!(vault.list("pki/issuers").await.unwrap().is_none());
}

#[tokio::test]
async fn a_bad_token_is_invalid_or_expired() {
    let bao = OpenBao::start();
    let err = Vault::connect(&token_settings(&bao.addr(), "s.not-a-real-token"))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::TokenInvalid { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("invalid or expired"), "{msg}");
    assert!(!msg.contains("s.not-a-real-token"), "{msg}");
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_an_error_not_a_panic() {
    let bao = OpenBao::start();
    let err = Vault::connect(&token_settings(&bao.addr(), "abc\ndef ghi"))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::MalformedToken { .. }), "{err}");
    assert!(!err.to_string().contains("ghi"), "{err}");
}

#[tokio::test]
async fn approle_logs_in_exactly_once() {
    let bao = OpenBao::start_with_audit();
    bao.bao_ok(&["auth", "enable", "approle"]);
    bao.bao_ok(&[
        "write",
        "auth/approle/role/certplane",
        "token_policies=default",
        "token_ttl=10m",
    ]);
    let role_id = bao.bao_json(&["read", "auth/approle/role/certplane/role-id"])["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao.bao_json(&["write", "-f", "auth/approle/role/certplane/secret-id"])["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_file = bao.dir().join("secret-id");
    std::fs::write(&secret_file, format!("{secret_id}\n")).unwrap();

    let mut settings = token_settings(&bao.addr(), "unused");
    settings.auth = AuthSettings::AppRole {
        mount: "approle".into(),
        role_id: role_id.clone(),
        secret_id: Source::File(secret_file),
    };
    let before = logins_since(&bao, 0).len();
    let vault = Vault::connect(&settings).await.unwrap();
    // The token works: lookup-self is allowed by the default policy.
    assert!(
        vault
            .read("auth/token/lookup-self")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        vault
            .read("auth/token/lookup-self")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        logins_since(&bao, 0).len() - before,
        1,
        "{:?}",
        logins_since(&bao, 0)
    );
    assert_eq!(vault.requests_made().logins, 1);
    // The token has no rights on sys/mounts: the error names the path.
    let err = vault.read("sys/mounts").await.unwrap_err();
    assert!(matches!(err, VaultError::PermissionDenied { .. }), "{err}");
    assert!(err.to_string().contains("sys/mounts"), "{err}");

    // A wrong secret ID: a login error that never shows the secret.
    settings.auth = AuthSettings::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: Source::Value("0f1e2d3c-aaaa-bbbb-cccc-1234567890ab".into()),
    };
    let err = Vault::connect(&settings).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::LoginFailed { .. }), "{msg}");
    assert!(msg.contains("auth/approle/login"), "{msg}");
    assert!(!msg.contains("0f1e2d3c-aaaa"), "{msg}");
    assert!(!format!("{err:?}").contains("0f1e2d3c-aaaa"));
}

#[tokio::test]
async fn an_unreachable_vault_is_one_line_and_quick() {
    let addr = format!("http://127.0.0.1:{}", common::free_port());
    let start = Instant::now();
    let err = Vault::connect(&token_settings(&addr, "root"))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    let msg = err.to_string();
    assert!(matches!(err, VaultError::Unreachable { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("cannot reach vault at {addr}: ")),
        "{msg}"
    );
    assert!(
        msg.to_lowercase().contains("refused"),
        "the cause is shown: {msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn a_sealed_vault_says_so() {
    let bao = OpenBao::start();
    bao.bao_ok(&["operator", "seal"]);
    let start = Instant::now();
    let err = Vault::connect(&token_settings(&bao.addr(), bao.token()))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        err.to_string(),
        format!(
            "vault at {} is sealed; unseal it (bao operator unseal) and run again",
            bao.addr()
        )
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // A listener that accepts and then says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(4) {
            held.push(s);
            std::thread::sleep(Duration::from_secs(8));
        }
    });
    let mut settings = token_settings(&addr, "root");
    settings.request_timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = Vault::connect(&settings).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, VaultError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("within 2s (the request timeout"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connect_timeout_is_named_with_its_own_value() {
    // Regression: a 5 s connect timeout was reported as "within 30s".
    let hole = common::proxy::Blackhole::start();
    let mut settings = token_settings(&hole.addr(), "root");
    settings.connect_timeout = Duration::from_secs(1);
    settings.request_timeout = Duration::from_secs(30);
    let start = Instant::now();
    let err = Vault::connect(&settings).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, VaultError::ConnectTimeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("within 1s (the connect timeout)"), "{msg}");
    assert!(!msg.contains("30s"), "{msg}");
}

#[test]
fn the_binary_reports_the_connect_timeout_it_used() {
    let hole = common::proxy::Blackhole::start();
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("pki.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki}\nspec:\n  ca:\n    root: {commonName: Test Root}\n",
    )
    .unwrap();
    let start = Instant::now();
    let out = common::command(home.path())
        .args(["plan", repo.to_str().unwrap()])
        .env("VAULT_ADDR", hole.addr())
        .env("VAULT_TOKEN", "root")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(
        stderr.contains("no connection within 5s (the connect timeout)"),
        "{stderr}"
    );
    assert!(!stderr.contains("30s"), "{stderr}");
}

/// A token made by the root token with `policies` and `ttl`.
fn child_token(bao: &OpenBao, policies: &str, ttl: &str) -> String {
    let out = bao.bao_ok(&[
        "token",
        "create",
        "-format=json",
        &format!("-policy={policies}"),
        &format!("-ttl={ttl}"),
        &format!("-explicit-max-ttl={ttl}"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["auth"]["client_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_token_revoked_mid_run_is_called_revoked_not_a_policy_problem() {
    // Regression: a revoked token was blamed on the policy ("must grant
    // read on sys/mounts").
    let bao = OpenBao::start();
    let token = child_token(&bao, "root", "1h");
    let vault = Vault::connect(&token_settings(&bao.addr(), &token))
        .await
        .unwrap();
    assert!(vault.read("sys/mounts").await.unwrap().is_some());
    bao.bao_ok(&["token", "revoke", &token]);
    let err = vault.read("sys/mounts").await.unwrap_err();
    assert!(matches!(err, VaultError::TokenRejected { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("invalid, expired or revoked") && msg.contains("sys/mounts"),
        "{msg}"
    );
    assert!(!msg.contains("must grant"), "{msg}");
    assert!(!msg.contains(&token), "{msg}");
    // Writes too.
    let err = vault
        .write(
            "sys/policies/acl/x",
            &serde_json::json!({"policy": "path \"a\" { capabilities = [\"read\"] }"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::TokenRejected { .. }), "{err}");
}

#[tokio::test]
async fn an_expired_token_is_called_expired_and_a_missing_policy_still_names_the_policy() {
    let bao = OpenBao::start();
    let short = child_token(&bao, "root", "2s");
    let vault = Vault::connect(&token_settings(&bao.addr(), &short))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let err = vault.read("sys/mounts").await.unwrap_err();
    assert!(matches!(err, VaultError::TokenRejected { .. }), "{err}");

    // A valid token whose policy lacks the path: the policy is named.
    let weak = child_token(&bao, "default", "1h");
    let vault = Vault::connect(&token_settings(&bao.addr(), &weak))
        .await
        .unwrap();
    let err = vault.read("sys/mounts").await.unwrap_err();
    assert!(matches!(err, VaultError::PermissionDenied { .. }), "{err}");
    assert!(err.to_string().contains("must grant"), "{err}");
}

#[tokio::test]
async fn jwt_login_with_a_ci_token() {
    let bao = OpenBao::start_with_audit();
    let signer = common::jwt::Signer::new();
    bao.bao_ok(&["auth", "enable", "jwt"]);
    bao.post(
        "auth/jwt/config",
        &serde_json::json!({"jwt_validation_pubkeys": [signer.public_pem()], "bound_issuer": "https://ci.test"}),
    )
    .await;
    bao.post(
        "auth/jwt/role/ci",
        &serde_json::json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["certplane"], "token_policies": ["default"]}),
    )
    .await;
    let jwt = signer.token("pipeline-42", "certplane", 600);
    let claims = jwt.split('.').nth(1).unwrap().to_string();

    let mut settings = token_settings(&bao.addr(), "unused");
    settings.auth = AuthSettings::Jwt {
        mount: "jwt".into(),
        role: "ci".into(),
        jwt: Source::Value(jwt.clone()),
    };
    let vault = Vault::connect(&settings).await.unwrap();
    let me = vault.read("auth/token/lookup-self").await.unwrap().unwrap();
    assert_eq!(me["meta"]["role"], serde_json::json!("ci"), "{me}");
    assert_eq!(logins_since(&bao, 0), vec!["auth/jwt/login".to_string()]);

    // A wrong role: a one-line error without the JWT.
    settings.auth = AuthSettings::Jwt {
        mount: "jwt".into(),
        role: "nope".into(),
        jwt: Source::Value(jwt.clone()),
    };
    let err = Vault::connect(&settings).await.unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(matches!(err, VaultError::LoginFailed { .. }), "{msg}");
    assert!(!msg.contains(&claims), "{msg}");
}

/// The driver's session: the same settings reuse one login; other settings
/// (a new commit's `certplane.yaml`, here another request timeout) log in
/// again; a token revoked under it is found dead and replaced.
#[tokio::test]
async fn the_session_logs_in_once_per_settings_and_again_when_the_token_dies() {
    use certplane::pipeline::Session;
    let bao = OpenBao::start_with_audit();
    bao.bao_ok(&["auth", "enable", "approle"]);
    bao.bao_ok(&[
        "write",
        "auth/approle/role/certplane",
        "token_policies=default",
        "token_ttl=10m",
    ]);
    let role_id = bao.bao_json(&["read", "auth/approle/role/certplane/role-id"])["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao.bao_json(&["write", "-f", "auth/approle/role/certplane/secret-id"])["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut settings = token_settings(&bao.addr(), "unused");
    settings.auth = AuthSettings::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: Source::Value(secret_id),
    };
    let mut session = Session::new();
    let first = session.vault(&settings).await.unwrap();
    let again = session.vault(&settings).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "one login reused");
    assert_eq!(session.stats().logins, 1);
    assert_eq!(logins_since(&bao, 0).len(), 1);

    let mut other = settings.clone();
    other.request_timeout = Duration::from_secs(7);
    let moved = session.vault(&other).await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &moved));
    assert_eq!(session.stats().logins, 2);

    // Revoked under the session: a refused call finds it dead, the next
    // use logs in again and works.
    bao.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    let err = moved.read("sys/policies/acl/default").await.unwrap_err();
    assert!(session.token_died(&err).await, "{err}");
    let fresh = session.vault(&other).await.unwrap();
    assert!(
        fresh
            .read("auth/token/lookup-self")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(session.stats().logins, 3);
    let approle_logins = logins_since(&bao, 0)
        .iter()
        .filter(|p| *p == "auth/approle/login")
        .count();
    assert_eq!(approle_logins, 3);
}
