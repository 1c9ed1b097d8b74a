//! Prune through the whole pipeline (plan, then apply), against a real
//! OpenBao and a scripted API server behind a real `kube::Client` that
//! checks the method, path and body of every request: delivered Secrets
//! belong to the repository's inventory, removing the last cluster object
//! prunes it, and with prune off a removed object is kept and said so.

use crate::common;
use crate::common::fake;

use std::path::Path;
use std::sync::{Arc, Mutex};

use certplane::addr::KubeRef;
use certplane::cluster::live::LiveCluster;
use certplane::cluster::{Inventory, InventoryLocation, REPOSITORY_LABEL};
use certplane::pipeline::{self, PlanOptions, Targets};
use certplane::plan::Action;
use common::{OpenBao, b64, unb64};
use fake::{Step, cert_manager_v1, cluster, core_v1, finish, list_inventories, live};
use serde_json::{Value, json};

const SECRET_PATH: &str = "/api/v1/namespaces/sandbox/secrets/cm-approle";
const CONFIGMAPS: &str = "/api/v1/namespaces/certplane-system/configmaps";
const LEGACY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory";

fn inventory_path(identity: &str) -> String {
    format!("{CONFIGMAPS}/certplane-inventory-{identity}")
}

fn inventory_cm(identity: &str, inv: &Inventory) -> Value {
    inv.to_configmap(
        &InventoryLocation::of("certplane-system", identity),
        Some(identity),
    )
}

fn write_repo(dir: &Path, config: &str, objects: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("certplane.yaml"), config).unwrap();
    std::fs::write(dir.join("repo.yaml"), objects).unwrap();
}

const APPROLE_REPO: &str = r#"
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

fn secret_ref() -> KubeRef {
    KubeRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some("sandbox".into()),
        name: "cm-approle".into(),
    }
}

/// Regression: prune deleted every `AppRole.deliverTo` Secret. Each apply
/// re-created then deleted it, `plan` never exited 0, the Issuer lost its
/// credential and Vault got a new secret ID every run.
#[tokio::test]
async fn regression_a_delivered_secret_belongs_to_the_inventory() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start_with_audit();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    write_repo(
        &dir,
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: approle-repo}\nspec: {prune: true}\n",
        APPROLE_REPO,
    );
    let prepared = pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(prepared.repo.identity, "approle-repo");
    let vault = common::root_vault(&bao.addr()).await;
    let inventory = inventory_path("approle-repo");

    // First plan and apply: the Secret is delivered and recorded.
    let delivered = Arc::new(Mutex::new(String::new()));
    let seen = delivered.clone();
    let expected_inventory = inventory_cm("approle-repo", &Inventory::new([secret_ref()]));
    let (c, task) = cluster(vec![
        // plan: the delivery, then the (empty) inventory
        Step::get(SECRET_PATH).not_found("secrets", "cm-approle"),
        Step::get(&inventory).not_found("configmaps", "certplane-inventory-approle-repo"),
        // apply: the Secret (read again first: still absent), then the
        // inventory that now lists it
        Step::get(SECRET_PATH).not_found("secrets", "cm-approle"),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::apply(SECRET_PATH, false)
            .body(move |b| {
                assert_eq!(b["metadata"]["labels"][REPOSITORY_LABEL], "approle-repo");
                assert_eq!(unb64(&b["data"]["roleId"]), "certplane-cm");
                *seen.lock().unwrap() = unb64(&b["data"]["secretId"]);
            })
            .reply(
                200,
                json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "cm-approle", "namespace": "sandbox"}}),
            ),
        Step::get(&inventory).not_found("configmaps", "certplane-inventory-approle-repo"),
        Step::apply(&inventory, false)
            .body(move |b| assert_eq!(b, &expected_inventory))
            .reply(
                200,
                inventory_cm("approle-repo", &Inventory::new([secret_ref()])),
            ),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let side = LiveCluster::new(c);
    let plan = pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        plan.changes.iter().all(|ch| ch.action != Action::Delete),
        "{:?}",
        plan.changes
    );
    pipeline::apply(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        &plan,
        Default::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    finish(task).await;
    let secret_id = delivered.lock().unwrap().clone();
    assert!(!secret_id.is_empty());

    // Second plan: the Secret holds a valid secret ID and is in the
    // inventory: no change, no delete, no new secret ID.
    let audit_before = bao.audit_entries().len();
    let stored = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cm-approle", "namespace": "sandbox",
                     "labels": {REPOSITORY_LABEL: "approle-repo"}},
        "data": {"roleId": b64("certplane-cm"), "secretId": b64(&secret_id)}});
    let (c, task) = cluster(vec![
        Step::get(SECRET_PATH).reply(200, stored),
        Step::get(&inventory).reply(
            200,
            inventory_cm("approle-repo", &Inventory::new([secret_ref()])),
        ),
    ]);
    let side = LiveCluster::new(c);
    let again = pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    finish(task).await;
    let pending: Vec<String> = again
        .pending()
        .map(|ch| format!("{} {:?}", ch.addr, ch.action))
        .collect();
    assert!(pending.is_empty(), "the second plan changes {pending:?}");
    assert!(again.notes.is_empty(), "{:?}", again.notes);
    // Only the validity check of the held secret ID reached Vault as a write.
    let w = common::writes_since(&bao, audit_before);
    assert!(
        w.iter()
            .all(|(_, p)| p == "auth/approle/role/cm/secret-id/lookup"),
        "{w:?}"
    );
}

const POLICY_ONLY: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: left}
spec:
  rules: [{path: pki/sign/web, capabilities: [update]}]
"#;

fn issuer_ref() -> KubeRef {
    KubeRef {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        kind: "Issuer".into(),
        namespace: Some("sandbox".into()),
        name: "vi".into(),
    }
}

fn account_ref() -> KubeRef {
    KubeRef {
        group: String::new(),
        version: "v1".into(),
        kind: "ServiceAccount".into(),
        namespace: Some("sandbox".into()),
        name: "vi".into(),
    }
}

/// Regression: with no cluster objects left, prune did nothing and plan
/// said "No changes" (SA, Role, RoleBinding, Issuer, Certificate stayed).
#[tokio::test]
async fn regression_removing_the_last_cluster_object_prunes_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("last");
    write_repo(
        &dir,
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {prune: true}\n",
        POLICY_ONLY,
    );
    let prepared = pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(prepared.repo.identity, "last", "derived from the directory");
    assert!(prepared.repo.manifests.is_empty());
    let vault = common::root_vault(&bao.addr()).await;
    let inventory = inventory_path("last");
    let previous = Inventory::new([issuer_ref(), account_ref()]);
    let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
    let empty = inventory_cm("last", &Inventory::default());
    let (c, task) = cluster(vec![
        // plan
        Step::get(&inventory).reply(200, inventory_cm("last", &previous)),
        list_inventories(vec![inventory_cm("last", &previous)]),
        Step::get("/apis/cert-manager.io/v1").reply(200, cert_manager_v1()),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vi")
            .reply(200, live(&issuer_ref(), Some("last"))),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get("/api/v1/namespaces/sandbox/serviceaccounts/vi")
            .reply(200, live(&account_ref(), Some("last"))),
        // apply: Issuers before ServiceAccounts, then the emptied inventory
        Step::delete("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vi")
            .reply(200, gone.clone()),
        Step::delete("/api/v1/namespaces/sandbox/serviceaccounts/vi").reply(200, gone),
        Step::get(&inventory).reply(200, inventory_cm("last", &previous)),
        Step::apply(&inventory, false)
            .body(move |b| assert_eq!(b, &empty))
            .reply(200, inventory_cm("last", &Inventory::default())),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let side = LiveCluster::new(c);
    let plan = pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    let deletes: Vec<String> = plan
        .pending()
        .filter(|ch| ch.action == Action::Delete)
        .map(|ch| ch.addr.to_string())
        .collect();
    assert_eq!(
        deletes,
        [
            "cert-manager.io/Issuer/sandbox/vi",
            "core/ServiceAccount/sandbox/vi"
        ]
    );
    let shown = certplane::plan::render::human(&plan, Default::default());
    assert!(shown.contains("2 to delete"), "{shown}");
    let mut done = Vec::new();
    pipeline::apply(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        &plan,
        Default::default(),
        &mut |e| {
            if let certplane::vault::ApplyEvent::Done { addr, action } = e {
                done.push((addr.to_string(), action));
            }
        },
    )
    .await
    .unwrap();
    finish(task).await;
    assert!(done.contains(&(
        "cert-manager.io/Issuer/sandbox/vi".to_string(),
        Action::Delete
    )));

    // Then: nothing left to prune.
    let (c, task) = cluster(vec![
        Step::get(&inventory).reply(200, inventory_cm("last", &Inventory::default())),
    ]);
    let side = LiveCluster::new(c);
    let after = pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    finish(task).await;
    assert!(!after.has_changes(), "{:?}", after.changes);
}

/// With prune off, an object that left the repository stays, stays in the
/// inventory, and the plan says so: not a change for the exit code, but no
/// claim that the live state matches.
#[tokio::test]
async fn with_prune_off_a_removed_object_is_kept_and_noted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kept");
    write_repo(
        &dir,
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {prune: false}\n",
        POLICY_ONLY,
    );
    let prepared = pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    let vault = common::root_vault(&bao.addr()).await;
    let inventory = inventory_path("kept");
    let previous = Inventory::new([issuer_ref(), account_ref()]);
    let (c, task) = cluster(vec![
        Step::get(&inventory).reply(200, inventory_cm("kept", &previous)),
        list_inventories(vec![inventory_cm("kept", &previous)]),
        Step::get("/apis/cert-manager.io/v1").reply(200, cert_manager_v1()),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vi")
            .reply(200, live(&issuer_ref(), Some("kept"))),
        Step::get("/api/v1").reply(200, core_v1()),
        // Already gone: no note for it.
        Step::get("/api/v1/namespaces/sandbox/serviceaccounts/vi")
            .not_found("serviceaccounts", "vi"),
    ]);
    let side = LiveCluster::new(c);
    let plan = pipeline::plan(
        Targets::new(Some(&vault), Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap();
    finish(task).await;
    assert!(plan.changes.iter().all(|ch| ch.action != Action::Delete));
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert_eq!(
        plan.notes[0].addr.to_string(),
        "cert-manager.io/Issuer/sandbox/vi"
    );
    assert!(plan.notes[0].owned);
    let shown = certplane::plan::render::human(&plan, Default::default());
    assert!(shown.contains("kept because prune is off"), "{shown}");
    assert!(!shown.contains("The live state matches"), "{shown}");
    let json = certplane::plan::render::json(&plan);
    assert_eq!(
        json["notes"][0]["address"],
        "cert-manager.io/Issuer/sandbox/vi"
    );
}
