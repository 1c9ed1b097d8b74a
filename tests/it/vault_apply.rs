//! Applying hand-built plans to a real OpenBao: mounts, config, roles,
//! policies, auth; every way of making a CA; stale plans; and that observing
//! after apply gives back what was written.

use crate::common;

use std::collections::BTreeMap;

use certplane::addr::Addr;
use certplane::model::Source;
use certplane::pki::x509;
use certplane::plan::{Action, Plan, PlanError};
use certplane::state::{CaMethod, Desired, ResourceKind, Signer};
use certplane::vault::{ApplyError, ApplyEvent, ApplyReport, SecretSources, Vault, apply, observe};
use common::{
    OpenBao, change, desired_ca, fields, issuer_change, rcgen_ca, resource, root_params,
    root_vault, writes_since,
};
use serde_json::{Value, json};

async fn run(vault: &Vault, plan: &Plan) -> Result<(ApplyReport, Vec<ApplyEvent>), ApplyError> {
    run_with(vault, plan, &SecretSources::new()).await
}

async fn run_with(
    vault: &Vault,
    plan: &Plan,
    secrets: &SecretSources,
) -> Result<(ApplyReport, Vec<ApplyEvent>), ApplyError> {
    let mut events = Vec::new();
    let report = apply(vault, plan, secrets, &mut |e| events.push(e)).await?;
    Ok((report, events))
}

fn plan(changes: Vec<certplane::plan::Change>) -> Plan {
    Plan {
        changes,
        ..Default::default()
    }
}

/// The CA certificates (DER) of a mount's issuers, by id.
async fn issuer_certs(bao: &OpenBao, mount: &str) -> BTreeMap<String, (String, Vec<u8>, Value)> {
    let mut out = BTreeMap::new();
    let list = bao.http("LIST", &format!("{mount}/issuers"), None).await.1;
    for id in list["data"]["keys"].as_array().cloned().unwrap_or_default() {
        let id = id.as_str().unwrap().to_string();
        let d = bao.get_data(&format!("{mount}/issuer/{id}")).await.unwrap();
        let der = x509::pem_certificates(d["certificate"].as_str().unwrap())
            .unwrap()
            .remove(0);
        out.insert(
            id,
            (d["issuer_name"].as_str().unwrap_or("").to_string(), der, d),
        );
    }
    out
}

async fn default_issuer(bao: &OpenBao, mount: &str) -> String {
    bao.get_data(&format!("{mount}/config/issuers"))
        .await
        .unwrap()["default"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn root_intermediate_config_roles_policy_auth_then_observe_gives_them_back() {
    let bao = OpenBao::start_with_audit();
    let vault = root_vault(&bao.addr()).await;
    let (k8s_ca, _) = rcgen_ca("k8s CA");
    let int_ca = desired_ca(
        "pki_int",
        Some("int-2026"),
        "Example Intermediate",
        CaMethod::Intermediate {
            params: fields(
                json!({"common_name": "Example Intermediate", "key_type": "ec", "key_bits": 256}),
            ),
            sign_params: fields(
                json!({"common_name": "Example Intermediate", "ttl": 43800 * 3600, "max_path_length": 0}),
            ),
            export_key: true,
            signer: Signer::Mount {
                mount: "pki".into(),
                issuer_ref: Some("root-2026".into()),
            },
        },
    );
    let mut changes = vec![
        change(
            "sys/mounts/pki",
            ResourceKind::Mount,
            Action::Create,
            None,
            Some(json!({"type": "pki", "description": "Root", "max_lease_ttl": 87600 * 3600})),
        ),
        issuer_change(
            desired_ca(
                "pki",
                Some("root-2026"),
                "Example Root",
                CaMethod::Root {
                    params: root_params("Example Root"),
                },
            ),
            Action::Create,
            None,
        ),
        change(
            "sys/mounts/pki_int",
            ResourceKind::Mount,
            Action::Create,
            None,
            Some(
                json!({"type": "pki", "description": "Int", "max_lease_ttl": 43800 * 3600, "default_lease_ttl": 720 * 3600}),
            ),
        ),
        issuer_change(int_ca, Action::Create, None),
        change(
            "pki_int/config/urls",
            ResourceKind::MountUrls,
            Action::Create,
            None,
            Some(
                json!({"issuing_certificates": ["http://v/v1/pki_int/ca"], "crl_distribution_points": ["http://v/v1/pki_int/crl"], "ocsp_servers": []}),
            ),
        ),
        change(
            "pki_int/config/crl",
            ResourceKind::MountCrl,
            Action::Create,
            None,
            Some(json!({"expiry": 72 * 3600, "disable": false})),
        ),
        change(
            "pki_int/roles/web",
            ResourceKind::Role,
            Action::Create,
            None,
            Some(
                json!({"allowed_domains": ["example.com"], "allow_subdomains": true, "ttl": 86400, "max_ttl": 259200, "key_type": "ec", "key_bits": 256}),
            ),
        ),
        change(
            "sys/policies/acl/pki-int-issuer",
            ResourceKind::Policy,
            Action::Create,
            None,
            Some(
                json!({"policy": "path \"pki_int/sign/web\" {\n  capabilities = [\"update\"]\n}\n"}),
            ),
        ),
        change(
            "sys/auth/kubernetes",
            ResourceKind::AuthMount,
            Action::Create,
            None,
            Some(json!({"type": "kubernetes", "description": "k8s"})),
        ),
        change(
            "auth/kubernetes/config",
            ResourceKind::AuthConfig,
            Action::Create,
            None,
            Some(
                json!({"kubernetes_host": "https://kubernetes.default.svc", "kubernetes_ca_cert": k8s_ca, "disable_local_ca_jwt": true, "token_reviewer_jwt": "(sensitive)"}),
            ),
        ),
        change(
            "auth/kubernetes/role/issuer",
            ResourceKind::KubernetesAuthRole,
            Action::Create,
            None,
            Some(
                json!({"bound_service_account_names": ["issuer"], "bound_service_account_namespaces": ["cert-manager"], "audience": "vault://cert-manager/issuer", "token_policies": ["pki-int-issuer"], "token_ttl": 60}),
            ),
        ),
        change(
            "sys/auth/approle",
            ResourceKind::AuthMount,
            Action::Create,
            None,
            Some(json!({"type": "approle"})),
        ),
        change(
            "auth/approle/role/cm",
            ResourceKind::AppRole,
            Action::Create,
            None,
            Some(
                json!({"token_policies": ["pki-int-issuer"], "token_ttl": 3600, "token_max_ttl": 14400, "secret_id_ttl": 0}),
            ),
        ),
    ];
    changes[9].sensitive = vec!["token_reviewer_jwt".into()];
    let p = plan(changes);
    let jwt = "eyJhbGciOiJSUzI1NiJ9.reviewer-secret-jwt-value.sig";
    let mut secrets = SecretSources::new();
    secrets
        .entry(Addr::parse_vault("auth/kubernetes/config").unwrap())
        .or_default()
        .insert("token_reviewer_jwt".into(), Source::Value(jwt.into()));
    let (report, events) = run_with(&vault, &p, &secrets).await.unwrap();
    assert_eq!(report.applied.len(), p.changes.len(), "{report:?}");
    assert!(report.waiting.is_empty());
    let dones = events
        .iter()
        .filter(|e| matches!(e, ApplyEvent::Done { .. }))
        .count();
    assert_eq!(dones, p.changes.len());
    assert!(
        !format!("{report:?} {events:?}").contains("reviewer-secret"),
        "secret in report"
    );

    // The chain: root self-signed, intermediate signed by the root.
    let roots = issuer_certs(&bao, "pki").await;
    assert_eq!(roots.len(), 1);
    let (root_id, (root_name, root_der, _)) = roots.iter().next().unwrap();
    assert_eq!(root_name, "root-2026");
    assert_eq!(&default_issuer(&bao, "pki").await, root_id);
    assert!(x509::is_signed_by(root_der, root_der));
    let ints = issuer_certs(&bao, "pki_int").await;
    let (int_id, (_, int_der, _)) = ints
        .iter()
        .find(|(_, (n, _, _))| n == "int-2026")
        .expect("named intermediate");
    assert_eq!(&default_issuer(&bao, "pki_int").await, int_id);
    assert!(
        x509::is_signed_by(int_der, root_der),
        "intermediate signed by the root"
    );
    let info = x509::parse_der(int_der).unwrap();
    assert_eq!(info.common_name, "Example Intermediate");
    assert_eq!(info.path_len, Some(0));
    assert_eq!(
        report.applied[3].issuer_id.as_deref(),
        Some(int_id.as_str())
    );

    // A leaf can be issued through the role, and not for another domain.
    let (s, body) = bao
        .http(
            "POST",
            "pki_int/issue/web",
            Some(&json!({"common_name": "a.example.com"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = bao
        .http(
            "POST",
            "pki_int/issue/web",
            Some(&json!({"common_name": "a.other.org"})),
        )
        .await;
    assert_eq!(s, 400);
    // The secret reached Vault.
    let cfg = bao.get_data("auth/kubernetes/config").await.unwrap();
    assert_eq!(cfg["token_reviewer_jwt_set"], json!(true));

    // Observing gives back what was written, on every managed key.
    let desired = Desired {
        resources: p
            .changes
            .iter()
            .filter(|c| c.kind != ResourceKind::Issuer)
            .map(|c| resource(&c.addr.vault_path().unwrap(), c.kind, json!({})))
            .collect(),
    };
    let obs = observe(&vault, &desired).await.unwrap();
    for c in p.changes.iter().filter(|c| c.kind != ResourceKind::Issuer) {
        let live = obs
            .resources
            .get(&c.addr)
            .unwrap_or_else(|| panic!("{} not observed", c.addr));
        for (k, want) in c.after.as_ref().unwrap() {
            if c.is_sensitive(k) {
                assert_eq!(
                    live.get(&format!("{k}_set")),
                    Some(&json!(true)),
                    "{}: {k}",
                    c.addr
                );
                continue;
            }
            let have = live
                .get(k)
                .unwrap_or_else(|| panic!("{}: {k} missing in {live:?}", c.addr));
            let same = match (want, have) {
                (Value::String(a), Value::String(b)) => a.trim_end() == b.trim_end(),
                _ => want == have,
            };
            assert!(same, "{}: {k}: wrote {want}, read {have}", c.addr);
        }
    }
    // One signing call on the parent, no other write to it after its root.
    let w = writes_since(&bao, 0);
    assert_eq!(
        w.iter()
            .filter(|(_, p)| p == "pki/issuer/root-2026/sign-intermediate")
            .count(),
        1,
        "{w:?}"
    );
}

#[tokio::test]
async fn external_signing_keeps_the_key_out_of_everything() {
    let bao = OpenBao::start();
    let vault = root_vault(&bao.addr()).await;
    let (ca_cert, ca_key) = rcgen_ca("Offline Root");
    let key_file = bao.dir().join("root.key");
    std::fs::write(&key_file, &ca_key).unwrap();
    let ca = desired_ca(
        "pki_ext",
        Some("ext"),
        "External Intermediate",
        CaMethod::Intermediate {
            params: fields(
                json!({"common_name": "External Intermediate", "key_type": "ec", "key_bits": 256}),
            ),
            sign_params: fields(
                json!({"common_name": "External Intermediate", "ttl": 365 * 86400, "max_path_length": 1}),
            ),
            export_key: false,
            signer: Signer::External {
                ca_cert_pem: ca_cert.clone(),
                ca_key: Source::File(key_file),
            },
        },
    );
    let p = plan(vec![
        change(
            "sys/mounts/pki_ext",
            ResourceKind::Mount,
            Action::Create,
            None,
            Some(json!({"type": "pki"})),
        ),
        issuer_change(ca, Action::Create, None),
    ]);
    let (report, events) = run(&vault, &p).await.unwrap();
    let shown = format!("{report:?}{events:?}");
    let key_body: String = ca_key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !shown.contains(&key_body[..40]),
        "key material in the report"
    );
    let id = report.applied[1].issuer_id.clone().unwrap();
    let certs = issuer_certs(&bao, "pki_ext").await;
    let (name, der, _) = &certs[&id];
    assert_eq!(name, "ext");
    let ca_der = x509::pem_certificates(&ca_cert).unwrap().remove(0);
    assert!(
        x509::is_signed_by(der, &ca_der),
        "signed by the external CA"
    );
    let info = x509::parse_der(der).unwrap();
    assert_eq!(
        (info.common_name.as_str(), info.issued_by.as_str()),
        ("External Intermediate", "Offline Root")
    );
    assert!(info.is_ca);
    assert_eq!(info.path_len, Some(1));
    assert_eq!(default_issuer(&bao, "pki_ext").await, id);
}

#[tokio::test]
async fn manual_signing_writes_the_csr_then_imports_the_certificate() {
    let bao = OpenBao::start();
    let vault = root_vault(&bao.addr()).await;
    let cert_file = bao.dir().join("ca/int.pem");
    let csr_file = bao.dir().join("ca/int.pem.csr");
    let method = |cert: Option<String>, csr: Option<String>| CaMethod::Intermediate {
        params: fields(
            json!({"common_name": "Manual Intermediate", "key_type": "ec", "key_bits": 256}),
        ),
        sign_params: fields(json!({})),
        export_key: false,
        signer: Signer::Manual {
            certificate_file: cert_file.clone(),
            certificate_pem: cert,
            csr_file: csr_file.clone(),
            csr_pem: csr,
        },
    };
    bao.bao_ok(&["secrets", "enable", "-path=pki_man", "pki"]);
    let first = plan(vec![issuer_change(
        desired_ca(
            "pki_man",
            Some("man"),
            "Manual Intermediate",
            method(None, None),
        ),
        Action::Create,
        None,
    )]);
    let (report, events) = run(&vault, &first).await.unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(report.waiting.len(), 1);
    let csr = std::fs::read_to_string(&csr_file).unwrap();
    assert!(csr.contains("BEGIN CERTIFICATE REQUEST"));
    assert_eq!(report.waiting[0].csr_pem, csr);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ApplyEvent::Note { text, .. } if text.contains(&csr)))
    );
    assert!(
        issuer_certs(&bao, "pki_man").await.is_empty(),
        "no issuer before the signature"
    );

    // Still unsigned: the existing CSR is shown again, nothing is written.
    let again = plan(vec![issuer_change(
        desired_ca(
            "pki_man",
            Some("man"),
            "Manual Intermediate",
            method(None, Some(csr.clone())),
        ),
        Action::Create,
        None,
    )]);
    let (report, _) = run(&vault, &again).await.unwrap();
    assert_eq!(report.waiting.len(), 1);

    // Sign it by hand (rcgen), commit it, apply again.
    let (ca_cert, ca_key) = rcgen_ca("Hand Root");
    let signed = certplane::pki::sign::sign_intermediate_csr(
        &csr,
        &ca_cert,
        &certplane::model::Sensitive::new(ca_key),
        Some(30 * 86400),
        Some(0),
    )
    .unwrap();
    let pem = format!("{}{}", signed.certificate_pem, signed.chain_pem);
    let last = plan(vec![issuer_change(
        desired_ca(
            "pki_man",
            Some("man"),
            "Manual Intermediate",
            method(Some(pem), Some(csr)),
        ),
        Action::Create,
        None,
    )]);
    let (report, _) = run(&vault, &last).await.unwrap();
    let id = report.applied[0].issuer_id.clone().unwrap();
    let certs = issuer_certs(&bao, "pki_man").await;
    assert_eq!(certs[&id].0, "man");
    let ca_der = x509::pem_certificates(&ca_cert).unwrap().remove(0);
    assert!(x509::is_signed_by(&certs[&id].1, &ca_der));
    assert_eq!(default_issuer(&bao, "pki_man").await, id);
}

#[tokio::test]
async fn import_from_a_bundle() {
    let bao = OpenBao::start();
    let vault = root_vault(&bao.addr()).await;
    let (cert, key) = rcgen_ca("Imported Root");
    let bundle = bao.dir().join("bundle.pem");
    std::fs::write(&bundle, format!("{cert}{key}")).unwrap();
    let p = plan(vec![
        change(
            "sys/mounts/pki_imp",
            ResourceKind::Mount,
            Action::Create,
            None,
            Some(json!({"type": "pki"})),
        ),
        issuer_change(
            desired_ca(
                "pki_imp",
                Some("imported"),
                "Imported Root",
                CaMethod::Import {
                    bundle: Source::File(bundle),
                },
            ),
            Action::Create,
            None,
        ),
    ]);
    let (report, events) = run(&vault, &p).await.unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!format!("{report:?}{events:?}").contains(&key_body[..40]));
    let id = report.applied[1].issuer_id.clone().unwrap();
    let certs = issuer_certs(&bao, "pki_imp").await;
    assert_eq!(certs[&id].0, "imported");
    assert_eq!(
        x509::parse_der(&certs[&id].1).unwrap().sha256,
        x509::parse_pem(&cert).unwrap().sha256
    );
    assert_eq!(default_issuer(&bao, "pki_imp").await, id);
}

#[tokio::test]
async fn adopt_then_rotate_keeps_the_old_issuer() {
    let bao = OpenBao::start();
    let vault = root_vault(&bao.addr()).await;
    bao.bao_ok(&["secrets", "enable", "pki"]);
    let out = bao.bao_json(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Old Root",
        "key_type=ec",
    ]);
    let old_id = out["data"]["issuer_id"].as_str().unwrap().to_string();

    // Update: adopt the unnamed issuer under the declared name.
    let root = |cn: &str| {
        desired_ca(
            "pki",
            Some("root"),
            cn,
            CaMethod::Root {
                params: root_params(cn),
            },
        )
    };
    run(
        &vault,
        &plan(vec![issuer_change(
            root("Old Root"),
            Action::Update,
            Some(&old_id),
        )]),
    )
    .await
    .unwrap();
    assert_eq!(issuer_certs(&bao, "pki").await[&old_id].0, "root");

    // Replace (rotation stage 1): a new root beside the old one, which
    // keeps its name and stays the default.
    let (report, _) = run(
        &vault,
        &plan(vec![issuer_change(
            root("New Root"),
            Action::Replace,
            Some(&old_id),
        )]),
    )
    .await
    .unwrap();
    let new_id = report.applied[0].issuer_id.clone().unwrap();
    assert_ne!(new_id, old_id);
    let certs = issuer_certs(&bao, "pki").await;
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[&old_id].0, "root");
    assert_eq!(certs[&new_id].0, "");
    assert_eq!(default_issuer(&bao, "pki").await, old_id);
    // Stage 2: the new root takes the name and the default; the old one is
    // renamed and retired, and kept.
    let mut switch = issuer_change(root("New Root"), Action::Update, Some(&new_id));
    if let Some(ca) = switch.ca.as_mut() {
        ca.pending_key = ca.desired.pending_key_name();
        ca.rotation = Some(certplane::plan::Rotation::Switch {
            old: old_id.clone(),
            retire: true,
        });
    }
    run(&vault, &plan(vec![switch])).await.unwrap();
    let certs = issuer_certs(&bao, "pki").await;
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[&new_id].0, "root");
    assert_eq!(certs[&old_id].0, format!("root-{}", &old_id[..8]));
    assert_eq!(
        x509::parse_der(&certs[&new_id].1).unwrap().common_name,
        "New Root"
    );
    assert_eq!(default_issuer(&bao, "pki").await, new_id);

    // An Update that names an issuer which no longer exists is stale.
    let err = run(
        &vault,
        &plan(vec![issuer_change(
            root("New Root"),
            Action::Update,
            Some("00000000-0000-0000-0000-000000000000"),
        )]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApplyError::Stale { .. }), "{err}");
}

#[tokio::test]
async fn stale_and_errored_plans_stop_before_writing() {
    let bao = OpenBao::start_with_audit();
    let vault = root_vault(&bao.addr()).await;
    bao.bao_ok(&["secrets", "enable", "pki"]);

    // Errored: refused outright.
    let mut p = plan(vec![change(
        "pki/roles/a",
        ResourceKind::Role,
        Action::Create,
        None,
        Some(json!({"ttl": 60})),
    )]);
    p.errored.push(PlanError {
        addr: Addr::parse_vault("pki/roles/a").unwrap(),
        message: "bad".into(),
    });
    let n = writes_since(&bao, 0).len();
    let err = run(&vault, &p).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan has 1 error(s); fix them and run plan again"
    );
    assert_eq!(writes_since(&bao, 0).len(), n);

    // Create of something that appeared since the plan.
    let p = plan(vec![change(
        "pki/roles/web",
        ResourceKind::Role,
        Action::Create,
        None,
        Some(json!({"ttl": 60})),
    )]);
    bao.bao_ok(&["write", "pki/roles/web", "ttl=120"]);
    let n = writes_since(&bao, 0).len();
    let err = run(&vault, &p).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plan is stale: vault:pki/roles/web changed since the plan was made; run plan again"
    );
    assert_eq!(writes_since(&bao, 0).len(), n, "nothing written");

    // Update whose "before" no longer holds.
    let p = plan(vec![change(
        "pki/roles/web",
        ResourceKind::Role,
        Action::Update,
        Some(json!({"ttl": 60})),
        Some(json!({"ttl": 90})),
    )]);
    let err = run(&vault, &p).await.unwrap_err();
    assert!(matches!(err, ApplyError::Stale { .. }), "{err}");
    // ... and with the right "before" it applies.
    let p = plan(vec![change(
        "pki/roles/web",
        ResourceKind::Role,
        Action::Update,
        Some(json!({"ttl": 120})),
        Some(json!({"ttl": 90})),
    )]);
    run(&vault, &p).await.unwrap();
    assert_eq!(
        bao.get_data("pki/roles/web").await.unwrap()["ttl"],
        json!(90)
    );

    // A root made out of band since the plan.
    let p = plan(vec![issuer_change(
        desired_ca(
            "pki",
            Some("r"),
            "R",
            CaMethod::Root {
                params: root_params("R"),
            },
        ),
        Action::Create,
        None,
    )]);
    bao.bao_ok(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Other",
        "issuer_name=r",
        "key_type=ec",
    ]);
    let err = run(&vault, &p).await.unwrap_err();
    assert!(matches!(err, ApplyError::Stale { .. }), "{err}");

    // Mount tune on Update, delete on Delete.
    let p = plan(vec![change(
        "sys/mounts/pki",
        ResourceKind::Mount,
        Action::Update,
        Some(json!({"max_lease_ttl": 315360000, "description": ""})),
        Some(json!({"max_lease_ttl": 3600 * 24 * 400, "description": "tuned"})),
    )]);
    let err = run(&vault, &p).await.unwrap_err();
    assert!(
        matches!(err, ApplyError::Stale { .. }),
        "max_lease_ttl was 0 (system default), not as before: {err}"
    );
    let p = plan(vec![change(
        "sys/mounts/pki",
        ResourceKind::Mount,
        Action::Update,
        Some(json!({"max_lease_ttl": 0, "description": ""})),
        Some(json!({"max_lease_ttl": 3600 * 24 * 400, "description": "tuned"})),
    )]);
    run(&vault, &p).await.unwrap();
    let m = bao.get_data("sys/mounts/pki").await.unwrap();
    assert_eq!(
        (
            m["description"].clone(),
            m["config"]["max_lease_ttl"].clone()
        ),
        (json!("tuned"), json!(3600 * 24 * 400))
    );
    let p = plan(vec![change(
        "pki/roles/web",
        ResourceKind::Role,
        Action::Delete,
        Some(json!({})),
        None,
    )]);
    run(&vault, &p).await.unwrap();
    assert!(bao.get_data("pki/roles/web").await.is_none());
}

#[tokio::test]
async fn a_failed_write_in_a_run_of_roles_does_not_stop_the_others() {
    let bao = OpenBao::start_with_audit();
    let vault = root_vault(&bao.addr()).await;
    bao.bao_ok(&["secrets", "enable", "pki"]);
    // Three independent role creates, written concurrently; `b` appeared
    // since the plan, so its write is refused as stale.
    let p = plan(
        ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                change(
                    &format!("pki/roles/{name}"),
                    ResourceKind::Role,
                    Action::Create,
                    None,
                    Some(json!({"ttl": 60})),
                )
            })
            .collect(),
    );
    bao.bao_ok(&["write", "pki/roles/b", "ttl=120"]);
    let mut events = Vec::new();
    let err = apply(&vault, &p, &SecretSources::new(), &mut |e| events.push(e))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApplyError::Stale { addr } if addr.to_string() == "vault:pki/roles/b"),
        "{err}"
    );
    // The others were written, and each is reported as done.
    for name in ["a", "c"] {
        let role = bao.get_data(&format!("pki/roles/{name}")).await;
        assert_eq!(role.map(|r| r["ttl"].clone()), Some(json!(60)), "{name}");
    }
    let done: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ApplyEvent::Done { addr, .. } => Some(addr.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(done, ["vault:pki/roles/a", "vault:pki/roles/c"]);
    assert_eq!(
        bao.get_data("pki/roles/b").await.unwrap()["ttl"],
        json!(120)
    );
}
