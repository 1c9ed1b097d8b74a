//! Pure plan tests: inline YAML, loaded and lowered, planned against a
//! hand-built observed state. No Vault, no network.

use std::path::Path;

use certplane::addr::Addr;
use certplane::model::KeyType;
use certplane::plan::{Action, Plan, plan, render};
use certplane::state::{Desired, Observed, ObservedIssuer, ObservedKey, ResourceKind};
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const YEAR: i64 = 365 * 86400;

const REPO: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca:
    root:
      commonName: Lab Root CA
      issuerName: root-2026
      keyType: ec
      keyBits: 384
      ttl: 87600h
      maxPathLength: 1
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Lab Intermediate CA
      issuerName: int-2026
      keyType: ec
      keyBits: 256
      ttl: 43800h
      maxPathLength: 0
      signedBy: {mount: pki}
      rotateBefore: 720h
  urls:
    issuingCertificates: [http://127.0.0.1:8200/v1/pki_int/ca]
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec:
  mount: pki_int
  allowedDomains: [lab.local, lab.internal]
  allowSubdomains: true
  maxTTL: 72h
  ttl: 24h
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: web-issuer}
spec:
  rules:
    - path: pki_int/sign/web
      capabilities: [update]
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: kubernetes}
spec:
  type: kubernetes
  kubernetes:
    host: https://kubernetes.default.svc
    tokenReviewerJwtFrom: {env: CERTPLANE_VAR_TEST_REVIEWER_JWT}
---
apiVersion: certplane.dev/v1alpha1
kind: KubernetesAuthRole
metadata: {name: issuer}
spec:
  mount: kubernetes
  boundServiceAccountNames: [issuer]
  boundServiceAccountNamespaces: [cert-manager]
  tokenPolicies: [web-issuer]
  tokenTTL: 1m
"#;

fn desired_from(yaml: &str) -> Desired {
    let tmp = tempfile::tempdir().unwrap();
    // A fixed directory name: the repository identity (in policy texts).
    let dir = tmp.path().join("lab");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("repo.yaml"), yaml).unwrap();
    let repo = certplane::load::load(&dir).unwrap_or_else(|d| panic!("{d}"));
    certplane::desired::build(&repo).unwrap_or_else(|d| panic!("{d}"))
}

fn issuer(id: &str, name: &str, cn: &str, by: &str, kt: KeyType, bits: u32) -> ObservedIssuer {
    ObservedIssuer {
        id: id.into(),
        name: name.into(),
        common_name: cn.into(),
        issued_by: by.into(),
        key_type: Some(kt),
        key_bits: bits,
        not_after: NOW + 5 * YEAR,
        max_path_length: None,
        cert_sha256: format!("{id}-sha"),
        is_default: true,
        key_id: format!("{id}-key"),
        not_before: NOW - YEAR,
        usage: String::new(),
        certificate: String::new(),
        manual_chain: vec![],
        leaf_not_after_behavior: String::new(),
    }
}

/// The state Vault is in right after a successful apply of `desired`.
fn converged(desired: &Desired) -> Observed {
    let mut o = Observed {
        now: NOW,
        ..Observed::default()
    };
    for r in &desired.resources {
        if r.kind == ResourceKind::Issuer {
            let ca = r.ca.as_ref().unwrap();
            o.issuers.entry(ca.mount.clone()).or_default().push(issuer(
                &format!("{}-id", ca.mount),
                ca.issuer_name.as_deref().unwrap_or(""),
                &ca.identity.common_name,
                ca.identity.issued_by.as_deref().unwrap_or(""),
                ca.identity.key_type.unwrap(),
                ca.identity.key_bits.unwrap(),
            ));
            continue;
        }
        let mut fields = r.fields.clone();
        for k in r.secrets.keys() {
            fields.insert(format!("{k}_set"), json!(true));
        }
        // Vault returns more than certplane manages: never a change.
        fields.insert("some_vault_default", json!("whatever"));
        o.resources.insert(r.addr.clone(), fields);
    }
    o
}

fn change<'a>(p: &'a Plan, addr: &str) -> &'a certplane::plan::Change {
    p.changes
        .iter()
        .find(|c| c.addr.to_string() == addr)
        .unwrap_or_else(|| panic!("no change for {addr}"))
}

fn position(p: &Plan, addr: &str) -> usize {
    p.changes
        .iter()
        .position(|c| c.addr.to_string() == addr)
        .unwrap()
}

#[test]
fn empty_vault_creates_everything_in_dependency_order() {
    let d = desired_from(REPO);
    let p = plan(&d, &Observed::default());
    assert!(p.errored.is_empty());
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
    let pos = |a| position(&p, a);
    assert!(pos("vault:sys/mounts/pki") < pos("vault:pki/issuer/root-2026"));
    assert!(pos("vault:pki/issuer/root-2026") < pos("vault:pki_int/issuer/int-2026"));
    assert!(pos("vault:sys/mounts/pki_int") < pos("vault:pki_int/roles/web"));
    assert!(pos("vault:pki_int/issuer/int-2026") < pos("vault:pki_int/roles/web"));
    assert!(pos("vault:sys/policies/acl/web-issuer") < pos("vault:auth/kubernetes/role/issuer"));
    assert!(pos("vault:sys/auth/kubernetes") < pos("vault:auth/kubernetes/config"));
    assert!(p.has_changes());
}

#[test]
fn converged_vault_is_a_no_op() {
    let d = desired_from(REPO);
    let p = plan(&d, &converged(&d));
    let pending: Vec<_> = p.pending().map(|c| c.addr.to_string()).collect();
    assert!(pending.is_empty(), "unexpected changes: {pending:?}");
    assert!(!p.has_changes());
    assert_eq!(
        render::summary_line(&p),
        "No changes. The live state matches the repository (10 objects)."
    );
}

/// Regression: "(1 objects)".
#[test]
fn one_unchanged_object_is_one_object() {
    let d = desired_from(REPO);
    let mut p = plan(&d, &converged(&d));
    p.changes.truncate(1);
    assert_eq!(
        render::summary_line(&p),
        "No changes. The live state matches the repository (1 object)."
    );
}

#[test]
fn changed_role_field_is_an_update_naming_only_that_field() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    let role = Addr::parse_vault("pki_int/roles/web").unwrap();
    o.resources
        .get_mut(&role)
        .unwrap()
        .insert("max_ttl", json!(3600));
    // Order of a list is not a change.
    o.resources
        .get_mut(&role)
        .unwrap()
        .insert("allowed_domains", json!(["lab.internal", "lab.local"]));
    let p = plan(&d, &o);
    let c = change(&p, "vault:pki_int/roles/web");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.reason.as_deref(), Some("changed: max_ttl"));
    assert_eq!(c.before.as_ref().unwrap()["max_ttl"], json!(3600));
    assert_eq!(c.after.as_ref().unwrap()["max_ttl"], json!(259_200));
    assert_eq!(p.pending().count(), 1);
}

#[test]
fn secret_parameter_not_set_in_vault_is_an_update_and_never_shown() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    o.resources
        .get_mut(&Addr::parse_vault("auth/kubernetes/config").unwrap())
        .unwrap()
        .insert("token_reviewer_jwt_set", json!(false));
    let p = plan(&d, &o);
    let c = change(&p, "vault:auth/kubernetes/config");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.sensitive, vec!["token_reviewer_jwt".to_string()]);
    assert_eq!(
        c.after.as_ref().unwrap()["token_reviewer_jwt"],
        json!("(sensitive)")
    );
    let human = render::human(&p, render::Style::default());
    assert!(
        human.contains("token_reviewer_jwt = (none) -> \"(sensitive)\""),
        "{human}"
    );
}

#[test]
fn unnamed_default_issuer_with_the_same_identity_is_adopted_not_regenerated() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    // As a hand-written script leaves it: a default root without a name.
    o.issuers.get_mut("pki").unwrap()[0].name = String::new();
    let p = plan(&d, &o);
    let c = change(&p, "vault:pki/issuer/root-2026");
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        c.ca.as_ref().unwrap().existing_id.as_deref(),
        Some("pki-id")
    );
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .contains("name the existing issuer")
    );
}

#[test]
fn changed_common_name_is_a_rotation_and_cascades_to_the_child() {
    let d = desired_from(&REPO.replace("Lab Root CA", "Lab Root CA G2"));
    let mut o = converged(&desired_from(REPO));
    o.now = NOW;
    let p = plan(&d, &o);
    let root = change(&p, "vault:pki/issuer/root-2026");
    assert_eq!(root.action, Action::Replace);
    assert!(
        root.reason.as_deref().unwrap().contains("commonName"),
        "{root:?}"
    );
    assert!(
        root.reason
            .as_deref()
            .unwrap()
            .starts_with("rotation 1/3: commonName"),
        "{root:?}"
    );
    assert!(
        root.reason
            .as_deref()
            .unwrap()
            .contains("a new issuer is made beside pki-id")
    );
    // The intermediate was signed by the old root: it is signed again, by
    // the new root, once that is the default (stage 2 of the root).
    let int = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(int.action, Action::NoOp);
    let why = int.reason.as_deref().unwrap();
    assert!(
        why.starts_with("rotation 1/3 waits for its parent pki") && why.contains("signedBy"),
        "{why}"
    );
    assert!(
        position(&p, "vault:pki/issuer/root-2026") < position(&p, "vault:pki_int/issuer/int-2026")
    );
}

#[test]
fn changed_key_type_is_a_rotation_never_an_update() {
    let d = desired_from(&REPO.replace(
        "keyType: ec\n      keyBits: 384",
        "keyType: rsa\n      keyBits: 4096",
    ));
    let p = plan(&d, &converged(&desired_from(REPO)));
    let root = change(&p, "vault:pki/issuer/root-2026");
    assert_eq!(root.action, Action::Replace);
    assert!(
        root.reason
            .as_deref()
            .unwrap()
            .contains("keyType ec -> rsa")
    );
}

#[test]
fn rotate_before_starts_a_new_issuer_when_the_ca_is_close_to_expiry() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    o.issuers.get_mut("pki_int").unwrap()[0].not_after = NOW + 10 * 86400;
    let p = plan(&d, &o);
    let c = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(c.action, Action::Replace);
    assert!(
        c.reason.as_deref().unwrap().contains("expires in 240h"),
        "{c:?}"
    );
    // Far from expiry: nothing.
    o.issuers.get_mut("pki_int").unwrap()[0].not_after = NOW + 40 * 86400;
    assert_eq!(
        change(&plan(&d, &o), "vault:pki_int/issuer/int-2026").action,
        Action::NoOp
    );
}

#[test]
fn a_mount_of_another_type_at_the_path_is_a_plan_error() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    o.resources
        .get_mut(&Addr::parse_vault("sys/mounts/pki").unwrap())
        .unwrap()
        .insert("type", json!("kv"));
    let p = plan(&d, &o);
    assert_eq!(p.errored.len(), 1);
    assert!(p.errored[0].message.contains("type \"kv\" already exists"));
}

#[test]
fn manual_signing_goes_from_csr_to_import() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: offline_int}
spec:
  ca:
    intermediate:
      commonName: Offline Intermediate
      signedBy: {manual: {certificateFile: int.pem}}
"#;
    std::fs::write(dir.path().join("m.yaml"), yaml).unwrap();
    let load = |dir: &Path| {
        let repo = certplane::load::load(dir).unwrap_or_else(|d| panic!("{d}"));
        certplane::desired::build(&repo).unwrap_or_else(|d| panic!("{d}"))
    };
    let addr = "vault:offline_int/issuer/default";
    // 1. Nothing yet: create (generate key + CSR).
    let p = plan(&load(dir.path()), &Observed::default());
    assert_eq!(change(&p, addr).action, Action::Create);
    assert!(
        change(&p, addr)
            .reason
            .as_deref()
            .unwrap()
            .contains("int.pem.csr")
    );
    // 2. CSR written, certificate not yet: nothing to apply; the CSR is shown.
    std::fs::write(
        dir.path().join("int.pem.csr"),
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .unwrap();
    let p = plan(&load(dir.path()), &Observed::default());
    let c = change(&p, addr);
    assert_eq!(c.action, Action::NoOp);
    assert!(
        c.ca.as_ref()
            .unwrap()
            .note
            .as_deref()
            .unwrap()
            .contains("CERTIFICATE REQUEST")
    );
    assert!(render::human(&p, render::Style::default()).contains("BEGIN CERTIFICATE REQUEST"));
    // 3. Certificate committed: import it.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Offline Intermediate");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    std::fs::write(
        dir.path().join("int.pem"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    let p = plan(&load(dir.path()), &Observed::default());
    assert_eq!(change(&p, addr).action, Action::Create);
    assert!(
        change(&p, addr)
            .reason
            .as_deref()
            .unwrap()
            .contains("import the signed certificate")
    );
}

#[test]
fn human_plan_snapshot() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    o.resources
        .remove(&Addr::parse_vault("pki_int/roles/web").unwrap());
    o.resources
        .get_mut(&Addr::parse_vault("sys/policies/acl/web-issuer").unwrap())
        .unwrap()
        .insert(
            "policy",
            json!("# Managed by certplane for repository lab: edits here are overwritten.\n\npath \"pki_int/sign/web\" {\n  capabilities = [\"read\"]\n}\n"),
        );
    o.resources
        .get_mut(&Addr::parse_vault("sys/mounts/pki_int").unwrap())
        .unwrap()
        .insert("max_lease_ttl", json!(86400));
    o.issuers.get_mut("pki").unwrap()[0].common_name = "Old Root".into();
    let p = plan(&d, &o);
    insta::assert_snapshot!(render::human(&p, render::Style::default()));
}

#[test]
fn json_plan_snapshot_has_no_secrets() {
    let d = desired_from(REPO);
    let p = plan(&d, &Observed::default());
    let v = render::json(&p);
    let text = serde_json::to_string(&v).unwrap();
    assert!(
        !text.contains("CERTPLANE_VAR_TEST_REVIEWER_JWT"),
        "source names stay out of the plan JSON"
    );
    assert_eq!(v["has_changes"], json!(true));
    insta::assert_json_snapshot!(v);
}

/// Only the live mount tables can tell that a new mount would lie inside
/// one made by hand: Vault would refuse it after the writes before it, so
/// the plan is errored (nothing is applied).
#[test]
fn a_new_mount_inside_or_around_a_live_mount_is_a_plan_error() {
    let d = desired_from(
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki/int}\nspec: {}\n---\napiVersion: certplane.dev/v1alpha1\nkind: AuthMount\nmetadata: {name: k8s}\nspec: {type: approle}\n",
    );
    let mut o = Observed {
        now: NOW,
        ..Observed::default()
    };
    o.live_mounts.secrets = ["sys", "cubbyhole", "pki_int", "pki"]
        .map(String::from)
        .into();
    o.live_mounts.auth = ["token", "k8s/team-a"].map(String::from).into();
    let p = plan(&d, &o);
    let errors: Vec<(String, &str)> = p
        .errored
        .iter()
        .map(|e| (e.addr.to_string(), e.message.as_str()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "vault:sys/mounts/pki/int");
    assert!(
        errors[0].1.contains("Vault already has a mount at pki/"),
        "{errors:?}"
    );
    assert_eq!(errors[1].0, "vault:sys/auth/k8s");
    assert!(
        errors[1].1.contains("at k8s/team-a/ (sys/auth)"),
        "{errors:?}"
    );
    // Without the neighbours, the same plan is clean.
    o.live_mounts.secrets = ["pki_int"].map(String::from).into();
    o.live_mounts.auth.clear();
    assert!(plan(&d, &o).errored.is_empty());
}

// Interrupted intermediates (issue 7): what an apply that stopped half-way
// left in the child mount is resumed, finished or cleaned up, never
// generated again.

const PENDING: &str = "certplane-pending-int-2026-ec256";

fn key(id: &str, name: &str) -> ObservedKey {
    ObservedKey {
        id: id.into(),
        name: name.into(),
    }
}

/// Vault with everything but the intermediate, whose mount holds `keys`.
fn intermediate_missing(d: &Desired, keys: Vec<ObservedKey>) -> Observed {
    let mut o = converged(d);
    o.issuers.remove("pki_int");
    o.keys.insert("pki_int".into(), keys);
    o
}

#[test]
fn a_pending_key_of_the_declared_ca_is_resumed_not_regenerated() {
    let d = desired_from(REPO);
    let o = intermediate_missing(&d, vec![key("k1", PENDING)]);
    let p = plan(&d, &o);
    let c = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.ca.as_ref().unwrap().pending_key.as_deref(), Some(PENDING));
    assert_eq!(
        c.reason.as_deref(),
        Some(
            "intermediate pending: key certplane-pending-int-2026-ec256 generated, not yet signed; apply resumes it (no new key)"
        )
    );
    assert_eq!(p.pending().count(), 1, "nothing is deleted");
    let shown = render::human(&p, render::Style::default());
    assert!(shown.contains("intermediate pending"), "{shown}");
    let json = render::json(&p);
    let issuer = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "vault:pki_int/issuer/int-2026")
        .unwrap();
    assert_eq!(issuer["pending_key"], json!(PENDING));
}

#[test]
fn a_pending_key_of_another_type_is_deleted_after_a_new_one_is_made() {
    let d = desired_from(REPO);
    let stale = "certplane-pending-int-2026-rsa2048";
    let o = intermediate_missing(
        &d,
        vec![key("k1", stale), key("k2", "made-by-hand"), key("k3", "")],
    );
    let p = plan(&d, &o);
    let issuer = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(issuer.action, Action::Create);
    assert_eq!(issuer.ca.as_ref().unwrap().pending_key, None);
    let addr = format!("vault:pki_int/key/{stale}");
    let del = change(&p, &addr);
    assert_eq!(del.action, Action::Delete);
    assert_eq!(del.kind, ResourceKind::PkiKey);
    assert_eq!(del.before.as_ref().unwrap()["key_id"], json!("k1"));
    assert!(position(&p, "vault:pki_int/issuer/int-2026") < position(&p, &addr));
    let touched: Vec<String> = p.pending().map(|c| c.addr.to_string()).collect();
    assert_eq!(
        touched.len(),
        2,
        "keys without the pending name stay: {touched:?}"
    );
}

#[test]
fn a_leftover_pending_key_next_to_a_complete_ca_is_deleted() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    o.keys.insert(
        "pki_int".into(),
        vec![key("pki_int-id-key", ""), key("k9", PENDING)],
    );
    let p = plan(&d, &o);
    assert_eq!(
        change(&p, "vault:pki_int/issuer/int-2026").action,
        Action::NoOp
    );
    let del = change(&p, &format!("vault:pki_int/key/{PENDING}"));
    assert_eq!(del.action, Action::Delete);
    assert_eq!(p.pending().count(), 1);
}

#[test]
fn an_issuer_imported_but_not_named_is_finished_not_made_again() {
    let d = desired_from(REPO);
    let mut o = intermediate_missing(&d, vec![key("k1", PENDING)]);
    // set-signed made it; the apply stopped before naming it.
    let mut i = issuer(
        "new",
        "",
        "Lab Intermediate CA",
        "Lab Root CA",
        KeyType::Ec,
        256,
    );
    i.key_id = "k1".into();
    i.is_default = false;
    o.issuers.insert("pki_int".into(), vec![i]);
    let p = plan(&d, &o);
    let c = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(c.action, Action::Update);
    let ca = c.ca.as_ref().unwrap();
    assert_eq!(ca.existing_id.as_deref(), Some("new"));
    assert_eq!(ca.pending_key.as_deref(), Some(PENDING));
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .starts_with("finish an interrupted apply: issuer new was imported with key"),
        "{:?}",
        c.reason
    );
    assert_eq!(
        p.pending().count(),
        1,
        "the key is not deleted: it is in use"
    );
}

#[test]
fn a_key_in_use_that_kept_the_pending_name_gets_it_cleared_first() {
    let d = desired_from(REPO);
    // An issuer of another identity (an older CN) uses a pending-named key
    // that the new CA would be generated under.
    let mut o = intermediate_missing(&d, vec![key("k1", PENDING)]);
    let mut old = issuer("old", "", "Old CN", "Lab Root CA", KeyType::Ec, 256);
    old.key_id = "k1".into();
    old.is_default = false;
    o.issuers.insert("pki_int".into(), vec![old]);
    let p = plan(&d, &o);
    let addr = format!("vault:pki_int/key/{PENDING}");
    let rename = change(&p, &addr);
    assert_eq!(rename.action, Action::Update);
    assert_eq!(rename.after.as_ref().unwrap()["key_name"], json!(""));
    let issuer = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(issuer.action, Action::Create);
    assert_eq!(issuer.ca.as_ref().unwrap().pending_key, None);
    assert!(position(&p, &addr) < position(&p, "vault:pki_int/issuer/int-2026"));
}

/// Ownership, pure: the plan of a converged repository (identity `lab`)
/// against what the survey found in Vault.
#[test]
fn ownership_adopts_refuses_prunes_and_notes_by_repository() {
    use certplane::plan::{KEPT_PRUNE_OFF, OwnershipOptions, ownership};
    use certplane::state::{Orphan, Owner, Ownership};
    let d = desired_from(REPO);
    let mut o = converged(&d);
    // An older certplane wrote the policy (no repository in its marker).
    o.resources
        .get_mut(&Addr::parse_vault("sys/policies/acl/web-issuer").unwrap())
        .unwrap()
        .insert(
            "policy",
            json!("# Managed by certplane: edits here are overwritten.\n\npath \"pki_int/sign/web\" {\n  capabilities = [\"update\"]\n}\n"),
        );
    let base = plan(&d, &o);
    let orphan = |path: &str, kind, owner| Orphan {
        addr: Addr::parse_vault(path).unwrap(),
        kind,
        holds_ca: false,
        owner,
    };
    let lab = || Owner::Repository("lab".into());
    let owned = Ownership {
        mounts: [
            (
                Addr::parse_vault("sys/mounts/pki").unwrap(),
                Owner::Unrecorded,
            ),
            (Addr::parse_vault("sys/mounts/pki_int").unwrap(), lab()),
        ]
        .into_iter()
        .collect(),
        orphans: vec![
            orphan("pki_int/roles/old", ResourceKind::Role, lab()),
            orphan(
                "sys/mounts/theirs",
                ResourceKind::Mount,
                Owner::Repository("team-b".into()),
            ),
            orphan(
                "sys/policies/acl/ancient",
                ResourceKind::Policy,
                Owner::Unrecorded,
            ),
        ],
    };
    let run = |prune| {
        let mut p = base.clone();
        let options = OwnershipOptions {
            identity: "lab",
            prune,
            allow_destroy_ca: false,
        };
        ownership(&mut p, &owned, options);
        p
    };
    let get = |p: &Plan, a: &str| {
        p.changes
            .iter()
            .find(|c| c.addr == Addr::parse_vault(a).unwrap())
            .cloned()
            .unwrap()
    };

    let p = run(true);
    assert!(p.errored.is_empty(), "{:?}", p.errored);
    // The untagged-by-repository mount is adopted: its identity is written.
    let pki = get(&p, "sys/mounts/pki");
    assert_eq!(pki.action, Action::Update);
    assert_eq!(
        pki.after.as_ref().unwrap()["options"],
        json!({"managed-by": "certplane", "certplane-repository": "lab"})
    );
    assert_eq!(
        pki.before.as_ref().unwrap()["options"],
        json!({"managed-by": "certplane"})
    );
    assert_eq!(get(&p, "sys/mounts/pki_int").action, Action::NoOp);
    let policy = get(&p, "sys/policies/acl/web-issuer");
    assert_eq!(policy.action, Action::Update);
    assert!(
        policy.reason.as_deref().unwrap().contains("adopt"),
        "{policy:?}"
    );
    // Only this repository's orphan is deleted; the unrecorded one is noted.
    let deletes: Vec<String> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.addr.to_string())
        .collect();
    assert_eq!(deletes, ["vault:pki_int/roles/old"]);
    let notes: Vec<String> = p.notes.iter().map(|n| n.addr.to_string()).collect();
    assert_eq!(notes, ["vault:sys/policies/acl/ancient"]);

    // Prune off: this repository's orphan is kept, and said so.
    let p = run(false);
    assert!(p.changes.iter().all(|c| c.action != Action::Delete));
    let kept: Vec<(String, &str, bool)> = p
        .notes
        .iter()
        .map(|n| (n.addr.to_string(), n.message.as_str(), n.owned))
        .collect();
    assert!(
        kept.contains(&("vault:pki_int/roles/old".into(), KEPT_PRUNE_OFF, true)),
        "{kept:?}"
    );

    // A declared mount another repository owns: the plan errors.
    let mut foreign = owned.clone();
    foreign.mounts.insert(
        Addr::parse_vault("sys/mounts/pki_int").unwrap(),
        Owner::Repository("team-b".into()),
    );
    let mut p = base.clone();
    ownership(
        &mut p,
        &foreign,
        OwnershipOptions {
            identity: "lab",
            prune: true,
            allow_destroy_ca: false,
        },
    );
    assert_eq!(p.errored.len(), 1, "{:?}", p.errored);
    assert_eq!(
        p.errored[0].addr,
        Addr::parse_vault("sys/mounts/pki_int").unwrap()
    );
    assert!(p.errored[0].message.contains("\"team-b\""));
}

/// An exported key is never resumed: its private key left Vault with the
/// apply that stopped and was not delivered. The pending key is deleted
/// before the issuer change, which makes (and exports) a new one.
#[test]
fn a_pending_exported_key_is_deleted_first_not_resumed() {
    let exported = REPO.replace(
        "      signedBy: {mount: pki}\n",
        "      exportKey: true\n      signedBy: {mount: pki}\n",
    );
    let d = desired_from(&exported);
    let o = intermediate_missing(&d, vec![key("k1", PENDING)]);
    let p = plan(&d, &o);
    let issuer = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(issuer.action, Action::Create);
    assert_eq!(issuer.ca.as_ref().unwrap().pending_key, None, "not resumed");
    let addr = format!("vault:pki_int/key/{PENDING}");
    let del = change(&p, &addr);
    assert_eq!(del.action, Action::Delete);
    assert!(
        del.reason
            .as_deref()
            .unwrap()
            .contains("cannot be read again"),
        "{:?}",
        del.reason
    );
    assert!(
        position(&p, &addr) < position(&p, "vault:pki_int/issuer/int-2026"),
        "the old key goes first, so the new one can take its name"
    );
}

/// The intermediate mount of `REPO` in the middle of a rotation: the old
/// issuer (default, named int-2026) and the new one stage 1 made, whose key
/// keeps certplane's pending name.
fn mid_rotation(d: &Desired) -> Observed {
    let mut o = converged(d);
    let ints = o.issuers.get_mut("pki_int").unwrap();
    let mut new = ints[0].clone();
    new.id = "new-int".into();
    new.name = String::new();
    new.is_default = false;
    new.key_id = "new-key".into();
    new.cert_sha256 = "new-sha".into();
    new.not_before = NOW - 60;
    ints.push(new);
    o.keys.insert(
        "pki_int".into(),
        vec![
            key("pki_int-id-key", ""),
            key("new-key", "certplane-pending-int-2026-ec256"),
        ],
    );
    o
}

#[test]
fn stage_two_switches_the_default_and_retires_the_old_issuer() {
    let d = desired_from(REPO);
    let p = plan(&d, &mid_rotation(&d));
    let c = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(c.action, Action::Update);
    let ca = c.ca.as_ref().unwrap();
    assert_eq!(ca.existing_id.as_deref(), Some("new-int"));
    assert_eq!(
        ca.rotation,
        Some(certplane::plan::Rotation::Switch {
            old: "pki_int-id".into(),
            retire: true
        })
    );
    let why = c.reason.as_deref().unwrap();
    assert!(
        why.starts_with("rotation 2/3: make the new issuer new-int")
            && why.contains("retire pki_int-id (usage read-only,crl-signing")
            && why.contains("safety buffer 24h"),
        "{why}"
    );
    // The pending key is the rotation's: not cleared by a change of its own.
    assert!(
        p.changes
            .iter()
            .all(|c| c.kind != ResourceKind::PkiKey || !c.action.is_change()),
        "{:?}",
        p.changes
    );
}

#[test]
fn stage_two_waits_for_the_declared_overlap_and_the_plan_says_until_when() {
    let d = desired_from(&REPO.replace(
        "      rotateBefore: 720h\n",
        "      rotateBefore: 720h\n      rotation: {overlap: 1h, safetyBuffer: 2h}\n",
    ));
    let p = plan(&d, &mid_rotation(&d));
    let c = change(&p, "vault:pki_int/issuer/int-2026");
    assert_eq!(c.action, Action::NoOp);
    assert!(
        matches!(
            c.ca.as_ref().unwrap().rotation,
            Some(certplane::plan::Rotation::Overlap { until, .. }) if until == NOW - 60 + 3600
        ),
        "{c:?}"
    );
    assert!(!p.has_changes());
    let text = render::human(&p, render::Style { color: false });
    assert!(
        text.contains("rotation 2/3 (make it the default) waits for the overlap 1h")
            && text.contains("(in 59m)"),
        "{text}"
    );
    // Once the overlap passed, it switches.
    let mut o = mid_rotation(&d);
    o.now = NOW + 3600;
    assert_eq!(
        change(&plan(&d, &o), "vault:pki_int/issuer/int-2026").action,
        Action::Update
    );
}

#[test]
fn a_retired_issuer_is_deleted_only_after_its_not_after_and_the_buffer() {
    let d = desired_from(REPO);
    let mut o = converged(&d);
    let ints = o.issuers.get_mut("pki_int").unwrap();
    let mut old = ints[0].clone();
    old.id = "0123456789ab".into();
    old.name = "int-2026-01234567".into();
    old.is_default = false;
    old.key_id = "old-key".into();
    old.cert_sha256 = "old-sha".into();
    old.usage = "crl-signing,read-only".into();
    old.not_after = NOW - 3600;
    ints.push(old);
    let addr = "vault:pki_int/issuer/int-2026-01234567";
    // Expired an hour ago, buffer a day: it waits.
    let p = plan(&d, &o);
    let c = change(&p, addr);
    assert_eq!(c.action, Action::NoOp);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .starts_with("rotation 3/3 waits: the retired issuer 0123456789ab is deleted after"),
        "{c:?}"
    );
    assert!(!p.has_changes());
    // A day and an hour after: deleted.
    o.now = NOW + 86_400;
    let p = plan(&d, &o);
    let c = change(&p, addr);
    assert_eq!(c.action, Action::Delete);
    assert!(c.reason.as_deref().unwrap().starts_with("rotation 3/3:"));
    assert!(position(&p, "vault:pki_int/issuer/int-2026") < position(&p, addr));
    // Not retired (stage 2 stopped before it): retired first, never deleted.
    o.issuers.get_mut("pki_int").unwrap()[1].usage =
        "crl-signing,issuing-certificates,ocsp-signing,read-only".into();
    let c = change(&plan(&d, &o), addr).clone();
    assert_eq!(c.action, Action::Update);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .starts_with("rotation 2/3: retire the superseded issuer 0123456789ab"),
        "{c:?}"
    );
    // An issuer named by hand is never touched.
    o.issuers.get_mut("pki_int").unwrap()[1].name = "kept-by-hand".into();
    assert!(
        plan(&d, &o)
            .changes
            .iter()
            .all(|c| !c.addr.to_string().contains("kept-by-hand"))
    );
}
