//! The Kubernetes provider against a real API server: `make test-cluster`
//! runs it with `CERTPLANE_TEST_KUBECONFIG` naming a kubeconfig of a cluster
//! with the cert-manager CRDs (kind, k3d, ...); a plain `cargo test` reports
//! it as ignored.
//!
//! The flow: apply a namespace-scoped Issuer, ServiceAccount, Role,
//! RoleBinding and Secret (and a ClusterIssuer) into a fresh namespace,
//! re-plan (no changes), repair drift after an out-of-band edit by another
//! field manager, prune what left the desired set (but not what another
//! repository's inventory lists), clean up. The inventories live in the
//! test namespace, named per repository identity.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use certplane::addr::{Addr, KubeRef};
use certplane::cluster::{
    Cluster, ClusterError, Inventory, InventoryLocation, ObjectPlan, apply_rank,
};
use certplane::model::config::ClusterTarget;
use certplane::plan::Action;
use futures::FutureExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::free_port;
use crate::common::kube::{loopback_kubeconfig, test_cluster_kubeconfig};

/// The repository identity the flow records its inventory under.
const REPO: &str = "real-test";

const SECRET_VALUE: &str = "real-cluster-secret-value-1";
const DRIFTED_VALUE: &str = "drifted-secret-value-2";

fn manifests(ns: &str, cluster_issuer: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "vault-issuer", "namespace": ns}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "vault-token", "namespace": ns},
               "stringData": {"token": SECRET_VALUE}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "vault-issuer-tokenrequest", "namespace": ns},
               "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                          "resourceNames": ["vault-issuer"], "verbs": ["create"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "vault-issuer-tokenrequest", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vault-issuer-tokenrequest"},
               "subjects": [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}]}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "vault-issuer", "namespace": ns},
               "spec": {"vault": {
                   "server": "https://vault.vault:8200",
                   "path": "pki_int/sign/example-dot-com",
                   "auth": {"kubernetes": {"mountPath": "/v1/auth/kubernetes", "role": "vault-issuer",
                            "serviceAccountRef": {"name": "vault-issuer"}}}}}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
               "metadata": {"name": cluster_issuer},
               "spec": {"selfSigned": {}}}),
    ]
}

fn kube_ref(m: &Value) -> KubeRef {
    let api_version = m["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    KubeRef {
        group: group.into(),
        version: version.into(),
        kind: m["kind"].as_str().unwrap().into(),
        namespace: m["metadata"]["namespace"].as_str().map(String::from),
        name: m["metadata"]["name"].as_str().unwrap().into(),
    }
}

fn assert_no_secret(plan: &ObjectPlan) {
    let shown = format!("{plan:?} {}", serde_json::to_string(plan).unwrap());
    for v in [SECRET_VALUE, DRIFTED_VALUE] {
        assert!(!shown.contains(v), "a secret value leaked into {shown}");
    }
}

#[tokio::test]
#[ignore = "needs a test cluster: set CERTPLANE_TEST_KUBECONFIG and run `make test-cluster`"]
async fn apply_replan_drift_and_prune_on_a_real_cluster() {
    let path = test_cluster_kubeconfig();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let suffix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    let ns = format!("certplane-test-{suffix}-{}", std::process::id());
    let cluster_issuer = format!("certplane-test-{suffix}");
    let cluster = Cluster::connect_kubeconfig(&path, None)
        .await
        .expect("connect")
        .with_inventory_namespace(ns.clone());

    let outcome = AssertUnwindSafe(flow(&cluster, &ns, &cluster_issuer))
        .catch_unwind()
        .await;

    // Clean up whatever happened.
    let ci = KubeRef {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        kind: "ClusterIssuer".into(),
        namespace: None,
        name: cluster_issuer.clone(),
    };
    let namespace = KubeRef {
        group: "".into(),
        version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: ns.clone(),
    };
    let ci_cleanup = cluster.delete_object(&ci).await;
    let ns_cleanup = cluster.delete_object(&namespace).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    ci_cleanup.expect("delete the ClusterIssuer");
    ns_cleanup.expect("delete the test namespace");
}

async fn flow(cluster: &Cluster, ns: &str, cluster_issuer: &str) {
    cluster
        .apply_object(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .await
        .expect("create the test namespace");

    let mut desired = manifests(ns, cluster_issuer);
    desired.sort_by_key(|m| {
        let r = kube_ref(m);
        apply_rank(&r.group, &r.kind)
    });

    // Plan: everything is new.
    for m in &desired {
        let plan = cluster
            .plan_object(m)
            .await
            .unwrap_or_else(|e| panic!("plan {m}: {e:?}"));
        assert_eq!(plan.action, Action::Create, "{plan:?}");
        assert_eq!(plan.addr, Addr::from(kube_ref(m)));
        assert_no_secret(&plan);
    }

    // Apply, then record the inventory.
    for m in &desired {
        cluster
            .apply_object(m)
            .await
            .unwrap_or_else(|e| panic!("apply {m}: {e:?}"));
    }
    let all = Inventory::new(desired.iter().map(kube_ref));
    cluster
        .write_inventory(REPO, &all)
        .await
        .expect("write inventory");
    assert_eq!(
        cluster.inventory_location(REPO),
        InventoryLocation {
            namespace: ns.to_string(),
            name: format!("certplane-inventory-{REPO}"),
        }
    );
    assert_eq!(
        cluster.read_inventory(REPO).await.expect("read inventory"),
        all
    );

    // Re-plan: nothing to do.
    for m in &desired {
        let plan = cluster
            .plan_object(m)
            .await
            .unwrap_or_else(|e| panic!("re-plan {m}: {e:?}"));
        assert_eq!(plan.action, Action::NoOp, "{plan:?}");
    }

    // Drift: another field manager edits the Issuer's path and the Secret.
    let drifter = PatchParams {
        field_manager: Some("certplane-test-drifter".into()),
        ..Default::default()
    };
    let (issuer_ar, _) = cluster
        .api_resource("cert-manager.io/v1", "Issuer")
        .await
        .expect("discover Issuer");
    let issuers: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().clone(), ns, &issuer_ar);
    issuers
        .patch(
            "vault-issuer",
            &drifter,
            &Patch::Merge(json!({"spec": {"vault": {"path": "pki_int/issue/example-dot-com"}}})),
        )
        .await
        .expect("out-of-band edit of the Issuer");
    let (secret_ar, _) = cluster
        .api_resource("v1", "Secret")
        .await
        .expect("discover Secret");
    let secrets: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().clone(), ns, &secret_ar);
    use base64::Engine as _;
    let drifted = base64::engine::general_purpose::STANDARD.encode(DRIFTED_VALUE);
    secrets
        .patch(
            "vault-token",
            &drifter,
            &Patch::Merge(json!({"data": {"token": drifted}})),
        )
        .await
        .expect("out-of-band edit of the Secret");

    let issuer = desired.iter().find(|m| m["kind"] == "Issuer").unwrap();
    let plan = cluster.plan_object(issuer).await.expect("plan after drift");
    assert_eq!(plan.action, Action::Update, "{plan:?}");
    assert_eq!(
        plan.before,
        [(
            "spec.vault.path".to_string(),
            json!("pki_int/issue/example-dot-com")
        )]
        .into()
    );
    assert_eq!(
        plan.after,
        [(
            "spec.vault.path".to_string(),
            json!("pki_int/sign/example-dot-com")
        )]
        .into()
    );
    let secret = desired.iter().find(|m| m["kind"] == "Secret").unwrap();
    let plan = cluster
        .plan_object(secret)
        .await
        .expect("plan the drifted Secret");
    assert_eq!(plan.action, Action::Update, "{plan:?}");
    assert_eq!(plan.sensitive, vec!["data.token"]);
    assert_no_secret(&plan);

    for m in [issuer, secret] {
        cluster.apply_object(m).await.expect("repair drift");
        let plan = cluster.plan_object(m).await.expect("plan after repair");
        assert_eq!(plan.action, Action::NoOp, "{plan:?}");
    }

    // Prune: the Secret and the ClusterIssuer leave the desired set, but
    // another repository's inventory lists the ClusterIssuer: only the
    // Secret goes, and the ClusterIssuer leaves this repository's inventory.
    let ci = desired
        .iter()
        .find(|m| m["kind"] == "ClusterIssuer")
        .unwrap();
    let theirs = Inventory::new([kube_ref(ci)])
        .to_configmap(&InventoryLocation::of(ns, "team-b"), Some("team-b"));
    cluster
        .apply_object(&theirs)
        .await
        .expect("write another repository's inventory");
    let current = Inventory::new(
        desired
            .iter()
            .filter(|m| m["kind"] != "Secret" && m["kind"] != "ClusterIssuer")
            .map(kube_ref),
    );
    let report = cluster
        .prune_and_record(REPO, &current)
        .await
        .expect("prune");
    assert!(report.is_complete(), "{report:?}");
    let deleted: Vec<&str> = report.deleted.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(deleted, ["Secret"], "{report:?}");
    assert!(
        cluster
            .get_object(&kube_ref(ci))
            .await
            .expect("read the ClusterIssuer")
            .is_some(),
        "another repository's object survives"
    );
    assert_eq!(
        cluster.read_inventory(REPO).await.expect("read inventory"),
        current
    );
    let plan = cluster
        .plan_object(secret)
        .await
        .expect("plan the pruned Secret");
    assert_eq!(plan.action, Action::Create, "the pruned Secret is gone");
    // Pruning again finds nothing stale.
    let again = cluster
        .prune_and_record(REPO, &current)
        .await
        .expect("prune again");
    assert!(
        again.deleted.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}

/// Runs everywhere: a kubeconfig pointing at a closed loopback port gives a
/// clean error within the time limit, and an unknown context is named.
#[tokio::test]
async fn unreachable_cluster_and_unknown_context_are_clean_errors() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port that was free a moment ago: nothing listens there.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = loopback_kubeconfig(dir.path(), "test", free_port());

    let cluster = Cluster::connect_kubeconfig(Path::new(&path), None)
        .await
        .expect("connect");
    assert_eq!(cluster.default_namespace(), "sandbox");
    assert_eq!(cluster.field_manager(), "certplane");
    let err = cluster
        .plan_object(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                             "stringData": {"k": "unreachable-secret-value"}}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Discovery { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("unreachable-secret-value"));

    let named = ClusterTarget {
        context: Some("test".into()),
        field_manager: Some("other".into()),
        render: None,
    };
    let other = Cluster::connect_kubeconfig(&path, Some(&named))
        .await
        .expect("connect to a named context");
    assert_eq!(other.field_manager(), "other");

    let target = ClusterTarget {
        context: Some("nope".into()),
        field_manager: Some("other".into()),
        render: None,
    };
    let err = Cluster::connect_kubeconfig(&path, Some(&target))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}
