//! Observing a real OpenBao: every kind, durations normalised, issuers read
//! from the live mount, one mount-table read for all mounts.

use crate::common;

use certplane::addr::Addr;
use certplane::model::{KeyType, Source};
use certplane::state::{CaMethod, Desired, ResourceKind, Signer};
use certplane::vault::{Vault, VaultSettings, observe};
use common::{OpenBao, desired_ca, resource, root_params};
use serde_json::json;

#[tokio::test]
async fn observe_reads_every_kind_normalised() {
    let bao = OpenBao::start_with_audit();
    bao.bao_ok(&[
        "secrets",
        "enable",
        "-path=pki",
        "-max-lease-ttl=87600h",
        "-description=Root CA",
        "pki",
    ]);
    bao.bao_ok(&["secrets", "enable", "-path=pki_int", "pki"]);
    bao.bao_ok(&[
        "write",
        "pki/config/urls",
        "issuing_certificates=http://v/ca",
    ]);
    bao.bao_ok(&["write", "pki/config/crl", "expiry=48h", "disable=false"]);
    bao.bao_ok(&[
        "write",
        "pki/roles/web",
        "allowed_domains=example.com",
        "ttl=24h",
        "max_ttl=72h",
    ]);
    bao.bao_ok(&[
        "write",
        "pki/issuers/generate/root/internal",
        "common_name=Test Root",
        "key_type=ec",
        "issuer_name=root-2026",
        "ttl=8760h",
    ]);
    bao.bao_ok(&["auth", "enable", "-description=ci", "approle"]);
    bao.bao_ok(&[
        "write",
        "auth/approle/role/cm",
        "token_policies=a,b",
        "token_ttl=1h",
        "secret_id_ttl=0s",
    ]);
    bao.post(
        "sys/policies/acl/issuer",
        &json!({"policy": "path \"pki/sign/web\" {\n  capabilities = [\"update\"]\n}\n"}),
    )
    .await;

    let ca = desired_ca(
        "pki",
        Some("root-2026"),
        "Test Root",
        CaMethod::Root {
            params: root_params("Test Root"),
        },
    );
    let mut issuer = resource("pki/issuer/root-2026", ResourceKind::Issuer, json!({}));
    issuer.ca = Some(Box::new(ca));
    let mut int_issuer = resource("pki_int/issuer/default", ResourceKind::Issuer, json!({}));
    int_issuer.ca = Some(Box::new(desired_ca(
        "pki_int",
        None,
        "Int",
        CaMethod::Intermediate {
            params: Default::default(),
            sign_params: Default::default(),
            export_key: false,
            signer: Signer::Mount {
                mount: "pki".into(),
                issuer_ref: None,
            },
        },
    )));
    let mut absent_issuer = resource("nomount/issuer/default", ResourceKind::Issuer, json!({}));
    absent_issuer.ca = Some(Box::new(desired_ca(
        "nomount",
        None,
        "X",
        CaMethod::Import {
            bundle: Source::Value(String::new()),
        },
    )));
    let desired = Desired {
        resources: vec![
            resource(
                "sys/mounts/pki",
                ResourceKind::Mount,
                json!({"type": "pki"}),
            ),
            resource(
                "sys/mounts/nomount",
                ResourceKind::Mount,
                json!({"type": "pki"}),
            ),
            resource("pki/config/urls", ResourceKind::MountUrls, json!({})),
            resource("pki/config/crl", ResourceKind::MountCrl, json!({})),
            resource("pki/roles/web", ResourceKind::Role, json!({})),
            resource("pki/roles/absent", ResourceKind::Role, json!({})),
            resource("nomount/roles/web", ResourceKind::Role, json!({})),
            resource("sys/policies/acl/issuer", ResourceKind::Policy, json!({})),
            resource("sys/policies/acl/absent", ResourceKind::Policy, json!({})),
            resource("sys/auth/approle", ResourceKind::AuthMount, json!({})),
            resource("auth/approle/role/cm", ResourceKind::AppRole, json!({})),
            resource(
                "auth/kubernetes/role/x",
                ResourceKind::KubernetesAuthRole,
                json!({}),
            ),
            issuer,
            int_issuer,
            absent_issuer,
        ],
    };

    let vault = Vault::connect(
        &VaultSettings::with_token(&bao.addr(), Source::Value("root".into())).unwrap(),
    )
    .await
    .unwrap();
    let audit_before = bao.audit_entries().len();
    let obs = observe(&vault, &desired).await.unwrap();
    let get = |p: &str| obs.resources.get(&Addr::parse_vault(p).unwrap());

    let mount = get("sys/mounts/pki").expect("pki mount");
    assert_eq!(mount["type"], json!("pki"));
    assert_eq!(mount["description"], json!("Root CA"));
    assert_eq!(mount["max_lease_ttl"], json!(87600 * 3600));
    assert_eq!(mount["default_lease_ttl"], json!(0));
    assert!(get("sys/mounts/nomount").is_none());
    assert_eq!(
        get("pki/config/urls").unwrap()["issuing_certificates"],
        json!(["http://v/ca"])
    );
    let crl = get("pki/config/crl").unwrap();
    assert_eq!(crl["expiry"], json!(48 * 3600));
    assert_eq!(crl["disable"], json!(false));
    let role = get("pki/roles/web").unwrap();
    assert_eq!(role["ttl"], json!(86400));
    assert_eq!(role["max_ttl"], json!(259200));
    assert_eq!(role["allowed_domains"], json!(["example.com"]));
    assert!(get("pki/roles/absent").is_none());
    assert!(get("nomount/roles/web").is_none());
    assert!(
        get("sys/policies/acl/issuer").unwrap()["policy"]
            .as_str()
            .unwrap()
            .contains("pki/sign/web")
    );
    assert!(get("sys/policies/acl/absent").is_none());
    let auth = get("sys/auth/approle").unwrap();
    assert_eq!(
        (auth["type"].clone(), auth["description"].clone()),
        (json!("approle"), json!("ci"))
    );
    let approle = get("auth/approle/role/cm").unwrap();
    assert_eq!(approle["token_ttl"], json!(3600));
    assert_eq!(approle["secret_id_ttl"], json!(0));
    assert_eq!(approle["token_policies"], json!(["a", "b"]));
    assert!(get("auth/kubernetes/role/x").is_none());

    let issuers = &obs.issuers["pki"];
    assert_eq!(issuers.len(), 1, "{issuers:?}");
    let root = &issuers[0];
    assert_eq!(root.name, "root-2026");
    assert_eq!(root.common_name, "Test Root");
    assert_eq!(root.issued_by, "Test Root");
    assert_eq!(root.key_type, Some(KeyType::Ec));
    assert_eq!(root.key_bits, 256);
    assert!(root.is_default);
    assert!(root.not_after > obs.now + 364 * 86400);
    assert_eq!(
        obs.issuers["pki_int"],
        vec![],
        "a mount without issuers: empty"
    );
    assert!(
        !obs.issuers.contains_key("nomount"),
        "an absent mount: no entry"
    );
    assert!((obs.now - certplane::vault::observe::unix_now()).abs() < 60);

    // One read of each mount table, no writes, nothing under absent mounts.
    let reqs: Vec<_> = bao.audit_entries().into_iter().skip(audit_before).collect();
    assert_eq!(
        reqs.iter().filter(|(_, p)| p == "sys/mounts").count(),
        1,
        "{reqs:?}"
    );
    assert_eq!(
        reqs.iter().filter(|(_, p)| p == "sys/auth").count(),
        1,
        "{reqs:?}"
    );
    assert!(
        reqs.iter().all(|(op, _)| op == "read" || op == "list"),
        "{reqs:?}"
    );
    assert!(
        !reqs
            .iter()
            .any(|(_, p)| p.starts_with("nomount/") || p.starts_with("auth/kubernetes")),
        "{reqs:?}"
    );
    assert_eq!(vault.requests_made().writes, 0);
}

/// The check an apply makes before each write reads one mount's entry, not
/// the mount table: a mount that exists, one that does not (Vault's 400
/// "No secret engine mount at"), an auth mount, a role found after its
/// mount; and a token that may read the table but not the entry (a mount
/// being pruned, `delete` granted by hand) gets the entry from the table.
#[tokio::test]
async fn the_check_before_a_write_reads_one_mount_entry() {
    use certplane::addr::VaultAddr;
    use certplane::vault::observe_one;

    let bao = OpenBao::start_with_audit();
    bao.bao_ok(&[
        "secrets",
        "enable",
        "-path=pki/int",
        "-description=int",
        "pki",
    ]);
    bao.bao_ok(&["write", "pki/int/roles/web", "allowed_domains=example.com"]);
    bao.bao_ok(&["auth", "enable", "-path=k8s", "kubernetes"]);
    // `sys/mounts/team/int` answers with `team`'s entry.
    bao.bao_ok(&["secrets", "enable", "-path=team", "pki"]);
    let root = Vault::connect(
        &VaultSettings::with_token(&bao.addr(), Source::Value("root".into())).unwrap(),
    )
    .await
    .unwrap();
    let mount = Addr::from(VaultAddr::mount("pki/int"));
    let before = bao.audit_entries().len();

    let live = one(&root, VaultAddr::mount("pki/int"), ResourceKind::Mount)
        .await
        .expect("the mount exists");
    assert_eq!(live["type"], json!("pki"));
    assert_eq!(live["description"], json!("int"));
    assert_eq!(
        one(&root, VaultAddr::mount("nope"), ResourceKind::Mount).await,
        None
    );
    let live = one(&root, VaultAddr::auth_mount("k8s"), ResourceKind::AuthMount)
        .await
        .expect("the auth mount exists");
    assert_eq!(live["type"], json!("kubernetes"));
    assert_eq!(
        one(
            &root,
            VaultAddr::auth_mount("nope"),
            ResourceKind::AuthMount
        )
        .await,
        None
    );
    let live = one(&root, VaultAddr::role("pki/int", "web"), ResourceKind::Role)
        .await
        .expect("the role exists");
    assert_eq!(live["allowed_domains"], json!(["example.com"]));
    assert_eq!(
        one(&root, VaultAddr::mount("team/int"), ResourceKind::Mount).await,
        None,
        "team/int is not a mount: the entry Vault gives for it is team's"
    );
    assert_eq!(
        one(
            &root,
            VaultAddr::role("team/int", "web"),
            ResourceKind::Role
        )
        .await,
        None
    );
    assert_eq!(
        one(&root, VaultAddr::role("nope", "web"), ResourceKind::Role).await,
        None
    );
    let reqs: Vec<_> = bao.audit_entries().into_iter().skip(before).collect();
    assert!(
        !reqs
            .iter()
            .any(|(_, p)| p == "sys/mounts" || p == "sys/auth"),
        "no mount table read: {reqs:?}"
    );
    assert!(
        !reqs
            .iter()
            .any(|(_, p)| p.starts_with("nope/") || p.starts_with("team/")),
        "nothing read under a mount that does not exist: {reqs:?}"
    );

    // The table, not the entry.
    bao.post(
        "sys/policies/acl/prune-only",
        &json!({"policy": "path \"sys/mounts\" {\n  capabilities = [\"read\"]\n}\n\
                           path \"sys/mounts/pki/int\" {\n  capabilities = [\"delete\"]\n}\n"}),
    )
    .await;
    let token = bao
        .post(
            "auth/token/create",
            &json!({"policies": ["prune-only"], "ttl": "10m"}),
        )
        .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let pruner =
        Vault::connect(&VaultSettings::with_token(&bao.addr(), Source::Value(token)).unwrap())
            .await
            .unwrap();
    let live = observe_one(&pruner, &mount, ResourceKind::Mount)
        .await
        .unwrap()
        .expect("found in the table");
    assert_eq!(live["description"], json!("int"));
}

/// `observe_one` of `addr`, which must not fail.
async fn one(
    vault: &Vault,
    addr: certplane::addr::VaultAddr,
    kind: ResourceKind,
) -> Option<certplane::state::Fields> {
    certplane::vault::observe_one(vault, &Addr::from(addr), kind)
        .await
        .unwrap()
}
