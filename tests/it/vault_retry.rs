//! Busy answers from Vault (429, 503 with `Retry-After`), injected by a
//! loopback proxy in front of a real OpenBao: reads and idempotent writes
//! are retried, honouring `Retry-After`, a bounded number of times; a CA
//! generation or a secret-ID creation is never sent twice.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{certplane, copy_dir, homelab, list, read};
use certplane::vault::VaultError;
use common::OpenBao;
use common::proxy::FaultProxy;

#[tokio::test]
async fn a_busy_read_is_retried_after_the_pause_vault_asks_for() {
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let vault = common::root_vault(&proxy.addr()).await;
    proxy.fail("GET", "sys/mounts", 503, Some(1), 2);
    let started = Instant::now();
    let mounts = vault.read("sys/mounts").await.unwrap().unwrap();
    assert!(mounts.get("sys/").is_some(), "{mounts}");
    let seen = proxy.seen_at("GET", "sys/mounts");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].injected && seen[1].injected && !seen[2].injected);
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After: 1 was not honoured: {gap:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_says_how_many() {
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let vault = common::root_vault(&proxy.addr()).await;
    proxy.fail("GET", "sys/policies/acl/default", 429, Some(0), 100);
    let err = vault.read("sys/policies/acl/default").await.unwrap_err();
    assert!(matches!(err, VaultError::Busy { attempts: 4, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("429") && msg.contains("4 times") && msg.contains("sys/policies/acl/default"),
        "{msg}"
    );
    assert_eq!(
        proxy.seen_at("GET", "sys/policies/acl/default").len(),
        4,
        "{:?}",
        proxy.seen()
    );
}

#[tokio::test]
async fn a_huge_retry_after_is_capped() {
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let vault = common::root_vault(&proxy.addr()).await;
    proxy.fail("GET", "sys/auth", 503, Some(86400), 1);
    let started = Instant::now();
    assert!(vault.read("sys/auth").await.unwrap().is_some());
    let waited = started.elapsed();
    assert!(
        waited >= certplane::vault::client::MAX_RETRY_AFTER
            && waited < certplane::vault::client::MAX_RETRY_AFTER + Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_secret_id_creation_is_never_sent_twice() {
    let bao = OpenBao::start();
    bao.bao_ok(&["auth", "enable", "approle"]);
    bao.bao_ok(&["write", "auth/approle/role/cm", "token_policies=default"]);
    let proxy = FaultProxy::start(&bao.addr());
    let vault = common::root_vault(&proxy.addr()).await;
    proxy.fail("POST", "auth/approle/role/cm/secret-id", 503, Some(0), 1);
    let err = vault
        .write("auth/approle/role/cm/secret-id", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(
        proxy
            .seen_at("POST", "auth/approle/role/cm/secret-id")
            .len(),
        1
    );
    let accessors = bao.bao(&["list", "auth/approle/role/cm/secret-id"]);
    assert!(
        !accessors.status.success() || String::from_utf8_lossy(&accessors.stdout).trim().is_empty(),
        "a secret ID was made: {}",
        String::from_utf8_lossy(&accessors.stdout)
    );
}

/// `certplane apply` of homelab through the proxy.
fn apply_through(
    proxy: &FaultProxy,
    home: &std::path::Path,
    repo: &std::path::Path,
) -> common::Run {
    let addr = proxy.addr();
    certplane(
        &["apply", "--auto-approve", repo.to_str().unwrap()],
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", common::openbao::ROOT_TOKEN),
        ],
        home,
    )
}

#[test]
fn an_apply_rides_out_busy_answers_to_reads_and_role_writes() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let proxy = FaultProxy::start(&bao.addr());
    proxy.fail("GET", "sys/mounts", 503, Some(1), 1);
    proxy.fail("POST", "pki_int/roles/homelab-dot-local", 429, Some(1), 2);
    proxy.fail("POST", "sys/policies/acl/homelab", 503, None, 1);
    let run = apply_through(&proxy, bao.dir(), &repo);
    run.expect(0);
    assert_eq!(
        read(&bao, "pki_int/roles/homelab-dot-local").unwrap()["ttl"],
        serde_json::json!(86400)
    );
    assert_eq!(
        proxy
            .seen_at("POST", "pki_int/roles/homelab-dot-local")
            .len(),
        3
    );
    assert_eq!(proxy.seen_at("POST", "sys/policies/acl/homelab").len(), 2);
}

#[test]
fn a_ca_generation_is_never_sent_twice() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let proxy = FaultProxy::start(&bao.addr());
    let path = "pki/issuers/generate/root/internal";
    proxy.fail("POST", path, 503, Some(0), 1);
    let run = apply_through(&proxy, bao.dir(), &repo);
    run.expect(1);
    assert!(
        run.stderr.contains("503") && run.stderr.contains(path),
        "{}",
        run.both()
    );
    assert_eq!(proxy.seen_at("POST", path).len(), 1, "{:?}", proxy.seen());
    assert!(list(&bao, "pki/issuers").is_empty(), "a CA was made");
}
