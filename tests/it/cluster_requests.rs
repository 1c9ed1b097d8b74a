//! The Kubernetes provider at the HTTP level: a real `kube::Client` over a
//! scripted server that checks every request's method, path, query, content
//! type and body.

use crate::common::{fake, issuer_addr};

use std::time::Duration;

use certplane::addr::KubeRef;
use certplane::cluster::{
    ClusterError, Inventory, InventoryLocation, REPOSITORY_LABEL, Replies, SENSITIVE,
};
use certplane::plan::Action;
use fake::{
    Step, as_stored, cert_manager_v1, cluster, core_v1, finish, list_inventories, live, rbac_v1,
};
use serde_json::{Value, json};

const ISSUERS: &str = "/apis/cert-manager.io/v1/namespaces/sandbox/issuers";
const CM_DISCOVERY: &str = "/apis/cert-manager.io/v1";

fn issuer(path: &str) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "vault-issuer", "namespace": "sandbox"},
        "spec": {"vault": {
            "server": "https://vault.vault:8200",
            "path": path,
            "auth": {"kubernetes": {"mountPath": "/v1/auth/kubernetes", "role": "vault-issuer",
                     "serviceAccountRef": {"name": "vault-issuer"}}}
        }}
    })
}

/// The dry-run body must be the manifest itself.
fn body_is(expected: Value) -> impl Fn(&Value) + Send + 'static {
    move |body| assert_eq!(body, &expected, "apply body")
}

#[tokio::test]
async fn discovery_resolves_scope_and_is_cached_per_group_version() {
    let (c, task) = cluster(vec![Step::get(CM_DISCOVERY).reply(200, cert_manager_v1())]);
    // No namespace: the client's default, as with kubectl.
    let mut m = issuer("pki_int/sign/web");
    m["metadata"].as_object_mut().unwrap().remove("namespace");
    let issuer = c.resolve(&m).await;
    // Cluster-scoped: a namespace in the manifest is dropped.
    let mut ci = issuer_manifest_kind("ClusterIssuer");
    ci["metadata"]["namespace"] = json!("ignored");
    let cluster_issuer = c.resolve(&ci).await;
    let frobnicator =
        json!({"apiVersion":"cert-manager.io/v1","kind":"Frobnicator","metadata":{"name":"x"}});
    let missing_kind = c.resolve(&frobnicator).await;
    // Already as resolved (its namespace written, a ClusterIssuer with
    // none): the manifest itself is the body, not a copy of it.
    let written = issuer_manifest_kind("Issuer");
    let as_written = c.resolve(&written).await;
    let mut ci_plain = issuer_manifest_kind("ClusterIssuer");
    ci_plain["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let cluster_as_written = c.resolve(&ci_plain).await;
    finish(task).await;

    for (obj, manifest) in [(as_written, &written), (cluster_as_written, &ci_plain)] {
        let obj = obj.unwrap();
        assert!(
            matches!(obj.body, std::borrow::Cow::Borrowed(_)),
            "{manifest} was copied"
        );
        assert_eq!(&*obj.body, manifest);
    }

    let issuer = issuer.unwrap();
    assert!(issuer.namespaced);
    assert_eq!(issuer.kube_ref.namespace.as_deref(), Some("default"));
    assert_eq!(issuer.resource.plural, "issuers");
    assert_eq!(issuer.body["metadata"]["namespace"], "default");
    let cluster_issuer = cluster_issuer.unwrap();
    assert!(!cluster_issuer.namespaced);
    assert_eq!(cluster_issuer.kube_ref.namespace, None);
    assert_eq!(
        cluster_issuer.addr().to_string(),
        "cert-manager.io/ClusterIssuer/vault-issuer"
    );
    assert!(cluster_issuer.body["metadata"].get("namespace").is_none());
    let err = missing_kind.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the cluster does not serve cert-manager.io/v1 Frobnicator: install cert-manager (its CRDs) first"
    );
}

fn issuer_manifest_kind(kind: &str) -> Value {
    let mut m = issuer("pki_int/sign/web");
    m["kind"] = json!(kind);
    m
}

#[tokio::test]
async fn crds_not_installed_is_a_clear_error() {
    // What a real API server answers for a group it does not serve.
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply_text(404, "404 page not found\n"),
    ]);
    let res = c.plan_object(&issuer("pki_int/sign/web")).await;
    finish(task).await;
    let err = res.unwrap_err();
    assert!(err.is_not_served(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the cluster does not serve cert-manager.io/v1 Issuer: install cert-manager (its CRDs) first"
    );
}

#[tokio::test]
async fn create_gets_404_then_dry_runs_the_apply() {
    let m = issuer("pki_int/sign/web");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer"))
            .not_found("issuers.cert-manager.io", "vault-issuer"),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(m.clone()))
            .reply(200, as_stored(&m, "", "certplane")),
    ]);
    let res = c.plan_object(&m).await;
    finish(task).await;
    let plan = res.unwrap();
    assert_eq!(plan.addr, issuer_addr());
    assert_eq!(plan.action, Action::Create);
    assert!(plan.before.is_empty());
    assert_eq!(
        plan.after.get("spec.vault.path"),
        Some(&json!("pki_int/sign/web"))
    );
    assert_eq!(
        plan.after.get("metadata.name"),
        Some(&json!("vault-issuer"))
    );
    // Server-set fields are never part of a change.
    assert!(
        plan.after
            .keys()
            .all(|k| !k.contains("managedFields") && !k.contains("uid")),
        "{:?}",
        plan.after
    );
}

#[tokio::test]
async fn live_equal_to_dry_run_is_a_no_op() {
    let m = issuer("pki_int/sign/web");
    let mut live = as_stored(&m, "1000", "certplane");
    live["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    // The dry run returns a new resourceVersion and other managedFields.
    let dry = as_stored(&m, "1001", "certplane-dry");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply(200, live),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(m.clone()))
            .reply(200, dry),
    ]);
    let res = c.plan_object(&m).await;
    finish(task).await;
    let plan = res.unwrap();
    assert_eq!(plan.action, Action::NoOp, "{plan:?}");
    assert!(plan.before.is_empty() && plan.after.is_empty());
}

/// A dry run that answers the live object byte for byte is a no-op, and
/// neither reply is read further than the object's name; the same object
/// in other bytes (indented, keys in another order) is read and compared,
/// and is a no-op too. A Secret is always read (its live values go into the
/// redactor before the dry run), and a live object about another name stops
/// before the dry run.
#[tokio::test]
async fn a_dry_run_answering_the_live_object_byte_for_byte_is_a_no_op_not_parsed() {
    let m = issuer("pki_int/sign/web");
    let stored = as_stored(&m, "1000", "certplane");
    let text = serde_json::to_string(&stored).unwrap();
    let pretty = serde_json::to_string_pretty(&stored).unwrap();
    let mut other = stored.clone();
    other["metadata"]["name"] = json!("someone-else");
    let s = secret(json!({"token": "c2VjcmV0LXRva2Vu"}), json!(null));
    let mut s_stored = s.clone();
    s_stored.as_object_mut().unwrap().remove("stringData");
    s_stored["metadata"]["resourceVersion"] = json!("9");
    let s_text = serde_json::to_string(&s_stored).unwrap();
    let secret_path = "/api/v1/namespaces/sandbox/secrets/vault-token";
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply_text(200, &text),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(m.clone()))
            .reply_text(200, &text),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply_text(200, &text),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true).reply_text(200, &pretty),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply(200, other),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(secret_path).reply_text(200, &s_text),
        Step::apply(secret_path, true).reply_text(200, &s_text),
    ]);
    let same = c.observe_object(&m).await;
    let reordered = c.observe_object(&m).await;
    let about_another = c.observe_object(&m).await;
    let secret_seen = c.observe_object(&s).await;
    finish(task).await;

    let same = same.unwrap();
    assert!(matches!(same.replies, Replies::Same), "{same:?}");
    let reordered = reordered.unwrap();
    assert!(
        matches!(reordered.replies, Replies::Read { live: Some(_), .. }),
        "{reordered:?}"
    );
    for o in [&same, &reordered] {
        let plan = o.plan();
        assert_eq!(plan.action, Action::NoOp, "{plan:?}");
        assert!(plan.before.is_empty() && plan.after.is_empty(), "{plan:?}");
        assert_eq!(
            plan.addr.to_string(),
            "cert-manager.io/Issuer/sandbox/vault-issuer"
        );
    }
    assert_eq!(same.plan(), reordered.plan());
    let err = about_another.unwrap_err();
    assert!(
        matches!(err, ClusterError::BadReply { op: "get", .. }),
        "{err:?}"
    );
    let secret_seen = secret_seen.unwrap();
    assert!(
        matches!(secret_seen.replies, Replies::Read { live: Some(_), .. }),
        "a Secret is read: {secret_seen:?}"
    );
    assert_eq!(secret_seen.plan().action, Action::NoOp);
    assert!(
        !format!("{secret_seen:?}").contains("c2VjcmV0LXRva2Vu"),
        "{secret_seen:?}"
    );
}

#[tokio::test]
async fn a_changed_path_is_reported_as_that_field() {
    let m = issuer("pki_int/sign/web");
    let live = as_stored(&issuer("pki_int/issue/web"), "1000", "certplane");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply(200, live),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(m.clone()))
            .reply(200, as_stored(&m, "1000", "certplane")),
    ]);
    let res = c.plan_object(&m).await;
    finish(task).await;
    let plan = res.unwrap();
    assert_eq!(plan.action, Action::Update);
    assert_eq!(
        plan.before,
        [("spec.vault.path".to_string(), json!("pki_int/issue/web"))].into()
    );
    assert_eq!(
        plan.after,
        [("spec.vault.path".to_string(), json!("pki_int/sign/web"))].into()
    );
    assert!(plan.sensitive.is_empty());
}

fn secret(data: Value, string_data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": "vault-token", "namespace": "sandbox"},
           "data": data, "stringData": string_data})
}

#[tokio::test]
async fn secret_diff_is_masked() {
    // base64 of "old-token-value-1" and "new-token-value-2".
    let old_b64 = "b2xkLXRva2VuLXZhbHVlLTE=";
    let new_b64 = "bmV3LXRva2VuLXZhbHVlLTI=";
    let m = secret(
        json!({"token": new_b64}),
        json!({"extra": "plain-secret-extra"}),
    );
    let live = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "vault-token", "namespace": "sandbox", "resourceVersion": "7", "uid": "u"},
        "data": {"token": old_b64, "kept": "a2VwdC12YWx1ZS0z"}});
    let dry = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "vault-token", "namespace": "sandbox", "resourceVersion": "7", "uid": "u"},
        "data": {"token": new_b64, "kept": "a2VwdC12YWx1ZS0z", "extra": "cGxhaW4tc2VjcmV0LWV4dHJh"}});
    let (c, task) = cluster(vec![
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get("/api/v1/namespaces/sandbox/secrets/vault-token").reply(200, live),
        Step::apply("/api/v1/namespaces/sandbox/secrets/vault-token", true)
            .body(move |b| {
                // stringData is sent as data (base64), as the server stores it.
                assert!(b.get("stringData").is_none(), "{b}");
                assert_eq!(
                    b["data"],
                    json!({"token": new_b64, "extra": "cGxhaW4tc2VjcmV0LWV4dHJh"})
                );
                assert_eq!(
                    b["metadata"],
                    json!({"name": "vault-token", "namespace": "sandbox"})
                );
            })
            .reply(200, dry),
    ]);
    let res = c.plan_object(&m).await;
    finish(task).await;
    let plan = res.unwrap();
    assert_eq!(plan.action, Action::Update);
    assert_eq!(plan.before.get("data.token"), Some(&json!(SENSITIVE)));
    assert_eq!(plan.after.get("data.token"), Some(&json!(SENSITIVE)));
    assert_eq!(plan.after.get("data.extra"), Some(&json!(SENSITIVE)));
    assert!(
        !plan.after.contains_key("data.kept"),
        "an unchanged key is not a change"
    );
    assert_eq!(plan.sensitive, vec!["data.extra", "data.token"]);
    let shown = format!("{plan:?}\n{}", serde_json::to_string(&plan).unwrap());
    for leaked in [
        old_b64,
        new_b64,
        "old-token-value-1",
        "new-token-value-2",
        "plain-secret-extra",
        "cGxhaW4tc2VjcmV0LWV4dHJh",
        "a2VwdC12YWx1ZS0z",
        "kept-value-3",
    ] {
        assert!(!shown.contains(leaked), "{leaked} leaked into {shown}");
    }
}

#[tokio::test]
async fn a_server_error_quoting_a_secret_value_is_redacted() {
    let m = secret(json!({}), json!({"password": "correct-horse-battery"}));
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
        "message": "Secret \"vault-token\" is invalid: stringData[password]: Invalid value: \"correct-horse-battery\"",
        "details": {"name": "vault-token", "kind": "secrets",
            "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: \"correct-horse-battery\"", "field": "stringData[password]"}]}});
    let (c, task) = cluster(vec![
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get("/api/v1/namespaces/sandbox/secrets/vault-token")
            .not_found("secrets", "vault-token"),
        Step::apply("/api/v1/namespaces/sandbox/secrets/vault-token", true).reply(422, status),
    ]);
    let res = c.plan_object(&m).await;
    finish(task).await;
    let err = res.unwrap_err();
    let mut shown = format!("{err} {err:?}");
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&err);
    while let Some(e) = cur {
        shown.push_str(&format!(" {e} {e:?}"));
        cur = e.source();
    }
    assert!(!shown.contains("correct-horse-battery"), "{shown}");
    assert!(
        shown.contains("Invalid value"),
        "the rest of the message stays: {shown}"
    );
}

#[tokio::test]
async fn apply_is_a_forced_server_side_apply_with_the_field_manager() {
    let mut m = issuer("pki_int/sign/web");
    m["metadata"].as_object_mut().unwrap().remove("namespace");
    let mut sent = m.clone();
    sent["metadata"]["namespace"] = json!("default");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::apply(
            "/apis/cert-manager.io/v1/namespaces/default/issuers/vault-issuer",
            false,
        )
        .body(body_is(sent.clone()))
        .reply(200, as_stored(&sent, "5", "certplane")),
    ]);
    let res = c.apply_object(&m).await;
    finish(task).await;
    res.unwrap();
}

#[tokio::test]
async fn cluster_scoped_objects_use_cluster_paths() {
    let m = issuer_manifest_kind("ClusterIssuer");
    let mut sent = m.clone();
    sent["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::apply(
            "/apis/cert-manager.io/v1/clusterissuers/vault-issuer",
            false,
        )
        .body(body_is(sent.clone()))
        .reply(200, as_stored(&sent, "5", "certplane")),
    ]);
    let res = c.apply_object(&m).await;
    finish(task).await;
    res.unwrap();
}

#[tokio::test]
async fn invalid_manifests_make_no_request() {
    let (c, task) = cluster(vec![]);
    let no_name = c
        .plan_object(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}}))
        .await;
    let bad_version = c
        .plan_object(&json!({"apiVersion": "a/b/c", "kind": "Secret", "metadata": {"name": "x"}}))
        .await;
    let path_name = c
        .plan_object(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "../../x"}}),
        )
        .await;
    finish(task).await;
    assert!(
        matches!(path_name, Err(ClusterError::InvalidManifest { .. })),
        "{path_name:?}"
    );
    assert!(
        matches!(no_name, Err(ClusterError::InvalidManifest { .. })),
        "{no_name:?}"
    );
    assert!(
        matches!(bad_version, Err(ClusterError::InvalidManifest { .. })),
        "{bad_version:?}"
    );
}

#[tokio::test]
async fn bad_replies_are_errors_not_panics() {
    let m = issuer("pki_int/sign/web");
    let mut other = as_stored(&m, "3", "certplane");
    other["metadata"]["name"] = json!("someone-else");
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply_text(200, "<html>proxy</html>"),
        Step::get(format!("{ISSUERS}/vault-issuer"))
            .not_found("issuers.cert-manager.io", "vault-issuer"),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true).reply(200, other),
    ]);
    let not_json = c.plan_object(&m).await;
    let wrong_object = c.plan_object(&m).await;
    finish(task).await;
    assert!(
        matches!(not_json, Err(ClusterError::Request { op: "get", .. })),
        "{not_json:?}"
    );
    let err = wrong_object.unwrap_err();
    assert!(matches!(err, ClusterError::BadReply { .. }), "{err:?}");
}

#[tokio::test]
async fn discovery_failure_other_than_404_is_not_called_not_served() {
    let (c, task) = cluster(vec![Step::get(CM_DISCOVERY).reply(
        503,
        json!({"kind": "Status", "status": "Failure", "code": 503, "reason": "ServiceUnavailable", "message": "unavailable"}),
    )]);
    let res = c.plan_object(&issuer("pki_int/sign/web")).await;
    finish(task).await;
    assert!(
        matches!(res, Err(ClusterError::Discovery { .. })),
        "{res:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out() {
    let (c, task) = cluster(vec![Step::get(CM_DISCOVERY).hang()]);
    let c = c.with_timeout(Duration::from_secs(5));
    let res = c.plan_object(&issuer("pki_int/sign/web")).await;
    task.abort();
    match res {
        Err(ClusterError::Timeout { after, .. }) => assert_eq!(after, Duration::from_secs(5)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// The identity the inventory tests record under.
const REPO: &str = "homelab";
const INVENTORY: &str =
    "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory-homelab";
const LEGACY: &str = "/api/v1/namespaces/certplane-system/configmaps/certplane-inventory";

fn kref(group: &str, kind: &str, name: &str) -> KubeRef {
    KubeRef {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: Some("sandbox".into()),
        name: name.into(),
    }
}

fn location(identity: &str) -> InventoryLocation {
    InventoryLocation::of("certplane-system", identity)
}

fn inventory_cm(inv: &Inventory) -> Value {
    let mut cm = inv.to_configmap(&location(REPO), Some(REPO));
    cm["metadata"]["resourceVersion"] = json!("42");
    cm
}

/// The shared inventory of an older certplane.
fn legacy_cm(inv: &Inventory) -> Value {
    let mut cm = inv.to_configmap(&InventoryLocation::legacy("certplane-system"), None);
    cm["metadata"]["resourceVersion"] = json!("7");
    cm
}

#[tokio::test]
async fn inventory_is_per_repository_in_a_labelled_configmap() {
    let inv = Inventory::new([
        kref("cert-manager.io", "Issuer", "vault-issuer"),
        kref("", "Secret", "s"),
    ]);
    let expected_body = inv.to_configmap(&location(REPO), Some(REPO));
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).not_found("configmaps", "certplane-inventory-homelab"),
        Step::get(INVENTORY).reply(200, inventory_cm(&inv)),
        Step::apply(INVENTORY, false)
            .body(move |b| {
                assert_eq!(b, &expected_body);
                assert_eq!(b["metadata"]["name"], "certplane-inventory-homelab");
                assert_eq!(
                    b["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                    "certplane"
                );
                assert_eq!(b["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
                let entries: Vec<KubeRef> =
                    serde_json::from_str(b["data"]["entries"].as_str().unwrap()).unwrap();
                assert_eq!(entries.len(), 2);
            })
            .reply(200, inventory_cm(&inv)),
        // No shared inventory of an older version to migrate.
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let first = c.read_inventory(REPO).await;
    let second = c.read_inventory(REPO).await;
    let written = c.write_inventory(REPO, &inv).await;
    finish(task).await;
    assert_eq!(first.unwrap(), Inventory::default(), "never written: empty");
    assert_eq!(second.unwrap(), inv);
    written.unwrap();
}

#[tokio::test]
async fn writing_the_inventory_creates_its_namespace_when_missing() {
    let inv = Inventory::new([kref("", "Secret", "s")]);
    let ns_missing = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound",
        "message": "namespaces \"certplane-system\" not found",
        "details": {"name": "certplane-system", "kind": "namespaces"}});
    let (c, task) = cluster(vec![
        Step::apply(INVENTORY, false).reply(404, ns_missing),
        Step::apply("/api/v1/namespaces/certplane-system", false)
            .body(|b| {
                assert_eq!(b["kind"], "Namespace");
                assert_eq!(b["metadata"]["name"], "certplane-system");
            })
            .reply(200, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "certplane-system"}})),
        Step::apply(INVENTORY, false).reply(200, inventory_cm(&inv)),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let res = c.write_inventory(REPO, &inv).await;
    finish(task).await;
    res.unwrap();
}

#[tokio::test]
async fn a_foreign_configmap_is_not_taken_for_the_inventory() {
    let (c, task) = cluster(vec![Step::get(INVENTORY).reply(
        200,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "certplane-inventory-homelab", "namespace": "certplane-system"},
               "data": {"entries": "[]"}}),
    )]);
    let res = c.read_inventory(REPO).await;
    finish(task).await;
    assert!(
        matches!(res, Err(ClusterError::Inventory { .. })),
        "{res:?}"
    );
}

#[tokio::test]
async fn prune_deletes_stale_objects_in_reverse_order_and_keeps_a_survivor() {
    let kept = kref("cert-manager.io", "Certificate", "kept");
    let stale = [
        kref("", "Secret", "token"),
        kref("", "ServiceAccount", "vault-issuer"),
        kref(
            "rbac.authorization.k8s.io",
            "Role",
            "vault-issuer-tokenrequest",
        ),
        kref(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "vault-issuer-tokenrequest",
        ),
        kref("cert-manager.io", "Issuer", "vault-issuer"),
        kref("cert-manager.io", "Certificate", "web"),
    ];
    let previous = Inventory::new(stale.iter().cloned().chain([kept.clone()]));
    let current = Inventory::new([kept.clone()]);
    let survivor = kref("cert-manager.io", "Issuer", "vault-issuer");
    let expected_next =
        Inventory::new([kept, survivor.clone()]).to_configmap(&location(REPO), Some(REPO));
    let gone = |p: &str| json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": p}});
    let background =
        |b: &Value| assert_eq!(b["propagationPolicy"], "Background", "delete options: {b}");
    let unrelated = Inventory::new([kref("", "ConfigMap", "elsewhere")])
        .to_configmap(&location("team-b"), Some("team-b"));
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).reply(200, inventory_cm(&previous)),
        // Whose is what is stale: the other inventories (this one's own is
        // in the list too, and skipped)...
        list_inventories(vec![inventory_cm(&previous), unrelated]),
        // ...then each object, in delete order, for its label (this
        // repository's, or none: written by an older certplane).
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/certificates/web")
            .reply(200, live(&stale[5], Some(REPO))),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vault-issuer")
            .reply(200, live(&stale[4], None)),
        Step::get("/apis/rbac.authorization.k8s.io/v1").reply(200, rbac_v1()),
        Step::get("/apis/rbac.authorization.k8s.io/v1/namespaces/sandbox/rolebindings/vault-issuer-tokenrequest")
            .reply(200, live(&stale[3], Some(REPO))),
        Step::get("/apis/rbac.authorization.k8s.io/v1/namespaces/sandbox/roles/vault-issuer-tokenrequest")
            .reply(200, live(&stale[2], Some(REPO))),
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get("/api/v1/namespaces/sandbox/secrets/token").reply(200, live(&stale[0], Some(REPO))),
        Step::get("/api/v1/namespaces/sandbox/serviceaccounts/vault-issuer")
            .reply(200, live(&stale[1], Some(REPO))),
        // Certificates first...
        Step::delete("/apis/cert-manager.io/v1/namespaces/sandbox/certificates/web")
            .body(background)
            .reply(200, gone("web")),
        // ...then Issuers: this one fails and must survive in the inventory...
        Step::delete("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/vault-issuer").reply(
            500,
            json!({"kind": "Status", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd timeout"}),
        ),
        // ...then RoleBindings (gone since it was read: fine), Roles...
        Step::delete("/apis/rbac.authorization.k8s.io/v1/namespaces/sandbox/rolebindings/vault-issuer-tokenrequest")
            .not_found("rolebindings.rbac.authorization.k8s.io", "vault-issuer-tokenrequest"),
        Step::delete("/apis/rbac.authorization.k8s.io/v1/namespaces/sandbox/roles/vault-issuer-tokenrequest")
            .reply(200, gone("vault-issuer-tokenrequest")),
        // ...then Secrets and ServiceAccounts.
        Step::delete("/api/v1/namespaces/sandbox/secrets/token").reply(200, gone("token")),
        Step::delete("/api/v1/namespaces/sandbox/serviceaccounts/vault-issuer").reply(200, gone("vault-issuer")),
        Step::apply(INVENTORY, false)
            .body(move |b| assert_eq!(b, &expected_next, "the survivor stays in the inventory"))
            .reply(200, json!({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "certplane-inventory-homelab", "namespace": "certplane-system"}})),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let res = c.prune_and_record(REPO, &current).await;
    finish(task).await;
    let report = res.unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, survivor);
    assert!(
        report.failed[0]
            .1
            .to_string()
            .contains("delete cert-manager.io/Issuer/sandbox/vault-issuer")
    );
    let deleted: Vec<String> = report.deleted.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        deleted,
        [
            "cert-manager.io/Certificate/sandbox/web",
            "rbac.authorization.k8s.io/Role/sandbox/vault-issuer-tokenrequest",
            "core/Secret/sandbox/token",
            "core/ServiceAccount/sandbox/vault-issuer",
        ]
    );
    assert_eq!(report.absent.len(), 1);
}

/// Regression (one inventory per cluster): a prune-enabled apply of one
/// repository deleted another repository's objects, namespaces included.
/// Nothing another inventory lists (the shared one of older versions
/// included), nothing labelled with another repository, no namespace that
/// holds another repository's objects is ever deleted; what is already gone
/// needs no delete. The shared inventory loses what this repository now owns.
#[tokio::test]
async fn regression_prune_never_deletes_another_repository_s_objects() {
    let kept = kref("cert-manager.io", "Issuer", "kept");
    let listed_by_b = kref("cert-manager.io", "Certificate", "b-cert");
    let labelled_b = kref("", "Secret", "b-secret");
    let gone = kref("", "ConfigMap", "gone");
    let mine = kref("cert-manager.io", "Certificate", "mine");
    let ns = |name: &str| KubeRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: name.into(),
    };
    let shared_ns = ns("shared");
    let b_ns = ns("team-b-ns");
    let previous = Inventory::new([
        kept.clone(),
        listed_by_b.clone(),
        labelled_b.clone(),
        gone.clone(),
        mine.clone(),
        shared_ns.clone(),
        b_ns.clone(),
    ]);
    let current = Inventory::new([kept.clone()]);
    let team_b = Inventory::new([
        listed_by_b.clone(),
        KubeRef {
            namespace: Some("team-b-ns".into()),
            ..kref("", "ServiceAccount", "b-sa")
        },
    ]);
    let in_shared = KubeRef {
        namespace: Some("shared".into()),
        ..kref("", "Secret", "old")
    };
    let legacy = Inventory::new([kept.clone(), in_shared.clone()]);
    let expected_next = current.to_configmap(&location(REPO), Some(REPO));
    let legacy_left = Inventory::new([in_shared])
        .to_configmap(&InventoryLocation::legacy("certplane-system"), None);
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).reply(200, inventory_cm(&previous)),
        list_inventories(vec![
            team_b.to_configmap(&location("team-b"), Some("team-b")),
            legacy_cm(&legacy),
        ]),
        // Delete order: the Certificate not listed elsewhere is read...
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/certificates/mine")
            .reply(200, live(&mine, Some(REPO))),
        // ...the ConfigMap is gone, the Secret is labelled for team-b...
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get("/api/v1/namespaces/sandbox/configmaps/gone").not_found("configmaps", "gone"),
        Step::get("/api/v1/namespaces/sandbox/secrets/b-secret")
            .reply(200, live(&labelled_b, Some("team-b"))),
        // ...and both namespaces hold others' objects: never read, never deleted.
        Step::delete("/apis/cert-manager.io/v1/namespaces/sandbox/certificates/mine").reply(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        Step::apply(INVENTORY, false)
            .body(move |b| assert_eq!(b, &expected_next, "only what this repository keeps"))
            .reply(200, inventory_cm(&current)),
        // The shared inventory gives up what this repository owns now.
        Step::get(LEGACY).reply(200, legacy_cm(&legacy)),
        Step::apply(LEGACY, false)
            .body(move |b| assert_eq!(b, &legacy_left))
            .reply(200, legacy_cm(&Inventory::default())),
    ]);
    let res = c.prune_and_record(REPO, &current).await;
    finish(task).await;
    let report = res.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.deleted, vec![mine]);
    assert!(report.absent.is_empty());
}

#[tokio::test]
async fn the_emptied_shared_inventory_is_deleted() {
    let inv = Inventory::new([kref("", "Secret", "s")]);
    let (c, task) = cluster(vec![
        Step::apply(INVENTORY, false).reply(200, inventory_cm(&inv)),
        Step::get(LEGACY).reply(200, legacy_cm(&inv)),
        Step::delete(LEGACY).reply(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
    ]);
    let res = c.write_inventory(REPO, &inv).await;
    finish(task).await;
    res.unwrap();
}

/// Discovery answers built from the real cert-manager CRDs resolve every
/// kind with the scope the CRD declares. The CRDs are test data outside the
/// repository (`CERTPLANE_CRDS_DIR`, see `build.rs`): without them this test
/// is ignored, and under CI (`CI=true`) it fails.
#[tokio::test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
async fn discovery_from_the_real_cert_manager_crds() {
    let dir = std::path::Path::new(env!("CERTPLANE_CRDS_FIXTURES"));
    let mut resources = Vec::new();
    let mut expected = Vec::new();
    for file in [
        "issuers",
        "clusterissuers",
        "certificates",
        "certificaterequests",
    ] {
        let path = dir.join(format!("cert-manager.io_{file}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the cert-manager CRD fixture {} ({e}): set CERTPLANE_CRDS_DIR",
                path.display()
            )
        });
        let crd: Value = serde_saphyr::from_str(&text).expect("CRD YAML");
        let names = &crd["spec"]["names"];
        let namespaced = crd["spec"]["scope"] == "Namespaced";
        let kind = names["kind"].as_str().unwrap().to_string();
        resources.push(json!({"name": names["plural"], "singularName": names["singular"], "namespaced": namespaced,
            "kind": kind, "verbs": ["get", "list", "patch", "create", "delete"], "shortNames": names["shortNames"]}));
        resources.push(
            json!({"name": format!("{}/status", names["plural"].as_str().unwrap()),
            "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "patch"]}),
        );
        expected.push((
            kind,
            names["plural"].as_str().unwrap().to_string(),
            namespaced,
        ));
    }
    let list = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "cert-manager.io/v1", "resources": resources});
    let (c, task) = cluster(vec![Step::get(CM_DISCOVERY).reply(200, list)]);
    let mut got = Vec::new();
    for (kind, _, _) in &expected {
        got.push(c.api_resource("cert-manager.io/v1", kind).await);
    }
    finish(task).await;
    for ((kind, plural, namespaced), res) in expected.iter().zip(got) {
        let (ar, scope) = res.unwrap();
        assert_eq!(&ar.plural, plural, "{kind}");
        assert_eq!(
            scope == kube::discovery::Scope::Namespaced,
            *namespaced,
            "{kind}"
        );
    }
}

/// The provider's futures can be spawned (the pipeline runs them on tokio).
#[tokio::test]
async fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let (svc, _handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let c =
        certplane::cluster::Cluster::from_client(kube::Client::new(svc, "default"), "certplane");
    let m = json!({});
    send(&c.plan_object(&m));
    send(&c.apply_object(&m));
    send(&c.read_inventory(REPO));
    send(&c.prune_and_record(REPO, &Inventory::default()));
}

/// An object applied at a version the server no longer serves is deleted
/// through the version it serves now; one whose kind is gone altogether
/// (CRD removed, objects with it) is simply absent.
#[tokio::test]
async fn prune_follows_a_removed_version_and_skips_a_removed_kind() {
    let old = KubeRef {
        version: "v1beta1".into(),
        ..kref("cert-manager.io", "Issuer", "old")
    };
    let widget = kref("example.com", "Widget", "w");
    let previous = Inventory::new([old.clone(), widget.clone()]);
    let groups = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "cert-manager.io",
         "versions": [{"groupVersion": "cert-manager.io/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "cert-manager.io/v1", "version": "v1"}}]});
    let empty = Inventory::default().to_configmap(&location(REPO), Some(REPO));
    let (c, task) = cluster(vec![
        Step::get(INVENTORY).reply(200, inventory_cm(&previous)),
        list_inventories(vec![]),
        // Unknown kinds sort first; its group is gone: nothing to read.
        Step::get("/apis/example.com/v1").reply_text(404, "404 page not found\n"),
        Step::get("/apis").reply(200, groups.clone()),
        // The Issuer's old version is gone; v1 serves it.
        Step::get("/apis/cert-manager.io/v1beta1").reply_text(404, "404 page not found\n"),
        Step::get("/apis").reply(200, groups.clone()),
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/old").reply(
            200,
            live(
                &KubeRef {
                    version: "v1".into(),
                    ..old.clone()
                },
                None,
            ),
        ),
        // Deleting goes through the same discovery (the removed version is
        // not cached as served).
        Step::get("/apis/cert-manager.io/v1beta1").reply_text(404, "404 page not found\n"),
        Step::get("/apis").reply(200, groups),
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::delete("/apis/cert-manager.io/v1/namespaces/sandbox/issuers/old").reply(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        Step::apply(INVENTORY, false)
            .body(move |b| assert_eq!(b, &empty))
            .reply(200, inventory_cm(&Inventory::default())),
        Step::get(LEGACY).not_found("configmaps", "certplane-inventory"),
    ]);
    let res = c.prune_and_record(REPO, &Inventory::default()).await;
    finish(task).await;
    let report = res.unwrap();
    assert_eq!(report.deleted, vec![old]);
    assert!(report.absent.is_empty(), "gone already: not even tried");
    assert!(report.is_complete());
}

/// The cluster half of a plan of the one manifest `m`, as the repository
/// `REPO` (with prune).
async fn plan_one(
    c: &certplane::cluster::Cluster,
    m: Value,
) -> Result<certplane::cluster::manifest::ClusterPlan, ClusterError> {
    use certplane::cluster::live::{LiveOptions, plan_live};
    use certplane::model::{Loaded, Meta, Origin};
    let manifests = vec![Loaded {
        meta: Meta::default(),
        origin: Origin::default(),
        spec: m,
    }];
    let options = LiveOptions {
        identity: REPO,
        prune: true,
        also_owned: &[],
    };
    plan_live(c, &manifests, options).await
}

/// The cluster half of a plan labels every object with the repository
/// identity (the dry run is of the labelled manifest), says when it takes an
/// object over from another repository, and reads this repository's
/// inventory.
#[tokio::test]
async fn planned_objects_carry_the_repository_label_and_takeovers_are_named() {
    let m = issuer("pki_int/sign/web");
    let mut labelled = m.clone();
    labelled["metadata"]["labels"] = json!({REPOSITORY_LABEL: REPO});
    let mut theirs = labelled.clone();
    theirs["metadata"]["labels"][REPOSITORY_LABEL] = json!("team-b");
    let live = as_stored(&theirs, "1000", "certplane");
    let dry = as_stored(&labelled, "1001", "certplane");
    let inv = Inventory::new([kref("cert-manager.io", "Issuer", "vault-issuer")]);
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply(200, live),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(labelled.clone()))
            .reply(200, dry),
        Step::get(INVENTORY).reply(200, inventory_cm(&inv)),
    ]);
    let res = plan_one(&c, m).await;
    finish(task).await;
    let planned = res.unwrap();
    assert!(planned.notes.is_empty());
    let [change] = planned.changes.as_slice() else {
        panic!("{:?}", planned.changes);
    };
    assert_eq!(change.action, Action::Update);
    assert_eq!(
        change.manifest.as_deref(),
        Some(&labelled),
        "applied as planned"
    );
    let reason = change.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("takes the object over from the repository \"team-b\""),
        "{reason}"
    );
}

/// An unchanged object's manifest is not copied into the plan (a no-op
/// plan of many objects would hold every one of them twice); its reason
/// stays. The dry run was still of the labelled manifest.
#[tokio::test]
async fn an_unchanged_object_carries_its_reason_but_no_copy_of_its_manifest() {
    let mut m = issuer("pki_int/sign/web");
    m["metadata"]["annotations"] = json!({(certplane::expand::GENERATED_FROM): "VaultIssuer web"});
    let mut labelled = m.clone();
    labelled["metadata"]["labels"] = json!({REPOSITORY_LABEL: REPO});
    let text = serde_json::to_string(&as_stored(&labelled, "1000", "certplane")).unwrap();
    let inv = Inventory::new([kref("cert-manager.io", "Issuer", "vault-issuer")]);
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer")).reply_text(200, &text),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true)
            .body(body_is(labelled))
            .reply_text(200, &text),
        Step::get(INVENTORY).reply(200, inventory_cm(&inv)),
    ]);
    let res = plan_one(&c, m).await;
    finish(task).await;
    let planned = res.unwrap();
    let [change] = planned.changes.as_slice() else {
        panic!("{:?}", planned.changes);
    };
    assert_eq!(change.action, Action::NoOp);
    assert!(change.manifest.is_none(), "{:?}", change.manifest);
    assert_eq!(
        change.reason.as_deref(),
        Some("generated from VaultIssuer web")
    );
}

/// Every answer of the API server becomes one line: status, reason, the
/// server's message, the object, and a hint. Never a Rust debug dump
/// (regression: a missing namespace printed kube's `ApiError: ... (Status
/// { ... })`).
#[tokio::test]
async fn api_errors_are_one_line_with_status_reason_object_and_hint() {
    let m = issuer("pki_int/sign/web");
    let no_namespace = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "namespaces \"sandbox\" not found", "reason": "NotFound",
        "details": {"name": "sandbox", "kind": "namespaces"}, "code": 404});
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "issuers.cert-manager.io \"vault-issuer\" is forbidden: User \"system:serviceaccount:certplane-system:certplane\" cannot patch resource \"issuers\" in API group \"cert-manager.io\" in the namespace \"sandbox\"",
        "reason": "Forbidden", "details": {"name": "vault-issuer", "group": "cert-manager.io", "kind": "issuers"}, "code": 403});
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Issuer.cert-manager.io \"vault-issuer\" is invalid: spec.vault.server: Required value",
        "reason": "Invalid", "details": {"name": "vault-issuer", "group": "cert-manager.io", "kind": "Issuer",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.vault.server"},
                       {"reason": "FieldValueInvalid", "message": "bad", "field": "spec.vault.path"}]}, "code": 422});
    let (c, task) = cluster(vec![
        Step::get(CM_DISCOVERY).reply(200, cert_manager_v1()),
        Step::get(format!("{ISSUERS}/vault-issuer"))
            .not_found("issuers.cert-manager.io", "vault-issuer"),
        Step::apply(format!("{ISSUERS}/vault-issuer"), true).reply(404, no_namespace),
        Step::apply(format!("{ISSUERS}/vault-issuer"), false).reply(403, forbidden),
        Step::apply(format!("{ISSUERS}/vault-issuer"), false).reply(422, invalid),
    ]);
    let missing = c.plan_object(&m).await.unwrap_err();
    let denied = c.apply_object(&m).await.unwrap_err();
    let refused = c.apply_object(&m).await.unwrap_err();
    finish(task).await;

    assert_eq!(
        missing.to_string(),
        "dry-run apply cert-manager.io/Issuer/sandbox/vault-issuer failed: 404 NotFound: \
         namespaces \"sandbox\" not found; hint: namespace sandbox does not exist: declare it \
         in the repository (apiVersion: v1, kind: Namespace) or create it first"
    );
    let denied = denied.to_string();
    assert!(
        denied.starts_with(
            "apply cert-manager.io/Issuer/sandbox/vault-issuer failed: 403 Forbidden: issuers.cert-manager.io"
        ),
        "{denied}"
    );
    assert!(denied.ends_with("; hint: certplane's identity is not allowed to do this: grant it in RBAC (deploy/rbac.yaml lists what certplane needs)"), "{denied}");
    let refused = refused.to_string();
    assert!(
        refused.contains("422 Invalid: Issuer.cert-manager.io \"vault-issuer\" is invalid: spec.vault.server: Required value (fields: spec.vault.path); hint: the API server refused"),
        "{refused}"
    );
    for e in [&missing.to_string(), &denied, &refused] {
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(
            !e.contains("Status {") && !e.contains("ApiError"),
            "no debug dump: {e}"
        );
    }
    // Nothing more is appended by a cause chain (the CLI prints the chain).
    assert!(std::error::Error::source(&missing).is_none());
}

/// A cluster-only repository named `homelab`: the namespace `sandbox` and
/// the ServiceAccount `app` in it, annotated `team: b`.
fn sandbox_repo() -> (tempfile::TempDir, certplane::pipeline::Prepared) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(REPO);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("cluster.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: sandbox}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\n\
         metadata: {name: app, namespace: sandbox, annotations: {team: b}}\n",
    )
    .unwrap();
    let op = certplane::operator::Operator::default();
    let prepared = certplane::pipeline::prepare_for(&dir, &op).unwrap_or_else(|d| panic!("{d}"));
    (tmp, prepared)
}

const NAMESPACE: &str = "/api/v1/namespaces/sandbox";
const ACCOUNT: &str = "/api/v1/namespaces/sandbox/serviceaccounts/app";

/// The ServiceAccount as stored, annotated `team`, at `version`, with a
/// `status`-like server field that is no part of a comparison.
fn account(team: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "app", "namespace": "sandbox", "uid": "u", "resourceVersion": version,
                     "labels": {REPOSITORY_LABEL: REPO}, "annotations": {"team": team}}})
}

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "sandbox", "uid": "n", "resourceVersion": "1"}})
}

/// Plan of the sandbox repository: the namespace unchanged, the account as
/// `live` (None: absent), both in the inventory.
fn plan_steps(live: Option<Value>) -> Vec<Step> {
    let inv = Inventory::new([
        KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "sandbox".into(),
        },
        KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ServiceAccount".into(),
            namespace: Some("sandbox".into()),
            name: "app".into(),
        },
    ]);
    vec![
        Step::get("/api/v1").reply(200, core_v1()),
        Step::get(NAMESPACE).reply(200, namespace()),
        Step::apply(NAMESPACE, true).reply(200, namespace()),
        match live {
            Some(v) => Step::get(ACCOUNT).reply(200, v),
            None => Step::get(ACCOUNT).not_found("serviceaccounts", "app"),
        },
        Step::apply(ACCOUNT, true).reply(200, account("b", "11")),
        Step::get(INVENTORY).reply(200, inventory_cm(&inv)),
    ]
}

/// Plans the sandbox repository, then applies it; the script covers both.
async fn plan_then_apply(
    script: Vec<Step>,
) -> (
    certplane::plan::Plan,
    Result<(), certplane::pipeline::StepError>,
) {
    use certplane::cluster::live::LiveCluster;
    use certplane::pipeline::{PlanOptions, Targets};
    let (_tmp, prepared) = sandbox_repo();
    let (c, task) = cluster(script);
    let side = LiveCluster::new(c);
    let targets = Targets::new(None, Some(&side));
    let plan = certplane::pipeline::plan(targets, &prepared, PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let applied =
        certplane::pipeline::apply(targets, &prepared, &plan, Default::default(), &mut |_| {})
            .await
            .map(|_| ());
    finish(task).await;
    (plan, applied)
}

/// An object that moved between the plan and the apply (another field
/// manager changed a field the plan changes) stops the apply with "plan is
/// stale" before anything is written to it.
#[tokio::test]
async fn an_object_that_moved_since_the_plan_is_stale() {
    let mut script = plan_steps(Some(account("a", "10")));
    script.extend([
        // apply: re-read (now annotated c), and nothing written.
        Step::get(ACCOUNT).reply(200, account("c", "12")),
        Step::apply(ACCOUNT, true).reply(200, account("b", "13")),
    ]);
    let (plan, applied) = plan_then_apply(script).await;
    let planned = plan
        .changes
        .iter()
        .find(|c| c.addr.to_string() == "core/ServiceAccount/sandbox/app")
        .unwrap();
    assert_eq!(planned.action, Action::Update);
    let e = applied.unwrap_err();
    assert_eq!(e.step(), certplane::pipeline::Step::Apply);
    assert_eq!(
        e.to_string(),
        "plan is stale: core/ServiceAccount/sandbox/app changed since the plan was made \
         (metadata.annotations.team: was \"a\", is now \"c\"); it and the changes after it were \
         not applied; run plan again"
    );
}

/// An object the plan creates that appeared meanwhile is stale too.
#[tokio::test]
async fn an_object_created_since_the_plan_is_stale() {
    let mut script = plan_steps(None);
    script.push(Step::get(ACCOUNT).reply(200, account("b", "12")));
    let (_, applied) = plan_then_apply(script).await;
    let e = applied.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("plan is stale: core/ServiceAccount/sandbox/app changed since the plan was made (it was created since)"),
        "{e}"
    );
}

/// Server-set fields (a new resourceVersion, status) moving between the
/// plan and the apply do not make it stale: the object is applied.
#[tokio::test]
async fn a_new_resource_version_alone_is_not_stale() {
    let mut script = plan_steps(Some(account("a", "10")));
    let mut moved = account("a", "99");
    moved["status"] = json!({"seen": true});
    script.extend([
        Step::get(ACCOUNT).reply(200, moved),
        Step::apply(ACCOUNT, true).reply(200, account("b", "100")),
        Step::apply(ACCOUNT, false).reply(200, account("b", "100")),
        // prune: nothing to delete, the inventory already lists both.
        Step::get(INVENTORY).reply(
            200,
            inventory_cm(&Inventory::new([
                KubeRef {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Namespace".into(),
                    namespace: None,
                    name: "sandbox".into(),
                },
                kref("", "ServiceAccount", "app"),
            ])),
        ),
    ]);
    let (_, applied) = plan_then_apply(script).await;
    applied.unwrap_or_else(|e| panic!("{e}"));
}

/// A field certplane applied that another field manager changed since is
/// drift: the plan names the object, the field and who changed it.
#[tokio::test]
async fn a_field_another_manager_changed_is_drift() {
    use certplane::cluster::live::LiveCluster;
    use certplane::pipeline::{PlanOptions, Targets};
    let (_tmp, prepared) = sandbox_repo();
    let mut edited = account("a", "10");
    edited["metadata"]["managedFields"] = json!([
        {"manager": "certplane", "operation": "Apply", "apiVersion": "v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:certplane.dev/repository": {}}}}},
        {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:team": {}}}}}
    ]);
    let script = plan_steps(Some(edited));
    let (c, task) = cluster(script);
    let side = LiveCluster::new(c);
    let plan = certplane::pipeline::plan(
        Targets::new(None, Some(&side)),
        &prepared,
        PlanOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    finish(task).await;
    let [drift] = plan.drift.as_slice() else {
        panic!("{:?}", plan.drift);
    };
    assert_eq!(drift.addr.to_string(), "core/ServiceAccount/sandbox/app");
    assert_eq!(drift.fields, ["metadata.annotations.team"]);
    assert_eq!(drift.changed_by, ["kubectl-edit"]);
    let human = certplane::plan::render::human(&plan, Default::default());
    assert!(
        human.contains(
            "~ core/ServiceAccount/sandbox/app: metadata.annotations.team (changed by kubectl-edit)"
        ),
        "{human}"
    );
}
