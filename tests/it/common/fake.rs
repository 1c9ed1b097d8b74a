//! A scripted API server behind a real `kube::Client` (the style of kube-rs
//! controller-rs `src/fixtures.rs`): each step names the request it expects
//! (method, path, query, content type, body) and the reply it gives.

use std::collections::BTreeMap;
use std::time::Duration;

use certplane::addr::KubeRef;
use certplane::cluster::{Cluster, REPOSITORY_LABEL};
use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A check of a request body.
type BodyCheck = Box<dyn Fn(&Value) + Send>;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and its reply.
pub struct Step {
    method: &'static str,
    path: String,
    /// Query parameters that must be present with these values.
    query: Vec<(&'static str, &'static str)>,
    /// Query parameters that must be absent.
    no_query: Vec<&'static str>,
    content_type: Option<&'static str>,
    body: Option<BodyCheck>,
    status: StatusCode,
    reply: Reply,
}

/// What the server answers.
pub enum Reply {
    Json(Value),
    Text(String),
    /// Never answer (to test time limits).
    Hang,
}

impl Step {
    pub fn new(method: &'static str, path: impl Into<String>) -> Step {
        Step {
            method,
            path: path.into(),
            query: Vec::new(),
            no_query: Vec::new(),
            content_type: None,
            body: None,
            status: StatusCode::OK,
            reply: Reply::Json(json!({})),
        }
    }

    pub fn get(path: impl Into<String>) -> Step {
        Step::new("GET", path)
    }

    /// A server-side apply: PATCH with the apply content type, `force` and
    /// certplane's field manager; `dry_run` says whether `dryRun=All` must be
    /// present or absent.
    pub fn apply(path: impl Into<String>, dry_run: bool) -> Step {
        let mut s = Step::new("PATCH", path)
            .query("fieldManager", "certplane")
            .query("force", "true")
            .content_type("application/apply-patch+yaml");
        if dry_run {
            s = s.query("dryRun", "All");
        } else {
            s.no_query.push("dryRun");
        }
        s
    }

    pub fn delete(path: impl Into<String>) -> Step {
        Step::new("DELETE", path)
    }

    pub fn query(mut self, k: &'static str, v: &'static str) -> Step {
        self.query.push((k, v));
        self
    }

    pub fn content_type(mut self, ct: &'static str) -> Step {
        self.content_type = Some(ct);
        self
    }

    /// Check the request body (parsed as JSON).
    pub fn body(mut self, check: impl Fn(&Value) + Send + 'static) -> Step {
        self.body = Some(Box::new(check));
        self
    }

    pub fn reply(mut self, status: u16, body: Value) -> Step {
        self.status = StatusCode::from_u16(status).expect("status code");
        self.reply = Reply::Json(body);
        self
    }

    pub fn reply_text(mut self, status: u16, body: &str) -> Step {
        self.status = StatusCode::from_u16(status).expect("status code");
        self.reply = Reply::Text(body.into());
        self
    }

    pub fn hang(mut self) -> Step {
        self.reply = Reply::Hang;
        self
    }

    /// Reply 404 with the Status a real API server sends for a missing object.
    pub fn not_found(self, resource: &str, name: &str) -> Step {
        self.reply(404, status_not_found(resource, name))
    }
}

/// The Status of a 404 for `resource` `name`.
pub fn status_not_found(resource: &str, name: &str) -> Value {
    let (group, kind) = match resource.split_once('.') {
        Some((k, g)) => (g, k),
        None => ("", resource),
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{resource} \"{name}\" not found"),
        "reason": "NotFound",
        "details": {"name": name, "group": group, "kind": kind},
        "code": 404
    })
}

/// A cluster over a scripted server, and the task running the script.
pub fn cluster(script: Vec<Step>) -> (Cluster, JoinHandle<()>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let task = tokio::spawn(run(handle, script));
    (Cluster::from_client(client, "certplane"), task)
}

async fn run(mut handle: Handle, script: Vec<Step>) {
    let n = script.len();
    for (i, step) in script.into_iter().enumerate() {
        let (req, send) = handle.next_request().await.unwrap_or_else(|| {
            panic!(
                "step {i}/{n}: the client stopped before {} {}",
                step.method, step.path
            )
        });
        let what = format!("step {i}/{n} ({} {})", step.method, step.path);
        assert_eq!(req.method().as_str(), step.method, "{what}: method");
        assert_eq!(req.uri().path(), step.path, "{what}: path");
        let query = parse_query(req.uri().query().unwrap_or(""));
        for (k, v) in &step.query {
            assert_eq!(
                query.get(*k).map(String::as_str),
                Some(*v),
                "{what}: query {k} in {query:?}"
            );
        }
        for k in &step.no_query {
            assert!(
                !query.contains_key(*k),
                "{what}: query {k} must be absent: {query:?}"
            );
        }
        if let Some(ct) = step.content_type {
            let got = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            assert_eq!(got, Some(ct), "{what}: content type");
        }
        let bytes = req.into_body().collect_bytes().await.expect("request body");
        if let Some(check) = &step.body {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{what}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            check(&body);
        }
        let reply = match step.reply {
            Reply::Json(v) => serde_json::to_vec(&v).expect("reply"),
            Reply::Text(t) => t.into_bytes(),
            Reply::Hang => {
                // Keep the responder alive past any client time limit.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(send);
                return;
            }
        };
        let response = Response::builder()
            .status(step.status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(reply))
            .expect("response");
        send.send_response(response);
    }
    // No request beyond the script.
    if let Ok(Some((req, _))) =
        tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await
    {
        panic!(
            "unexpected request after the script: {} {}",
            req.method(),
            req.uri()
        );
    }
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

/// Wait for the script to finish (its assertions fail the test).
pub async fn finish(task: JoinHandle<()>) {
    match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the fake server task failed: {e}"),
        Err(_) => panic!("the fake server did not see every scripted request"),
    }
}

/// `/apis/cert-manager.io/v1` as a server with cert-manager v1 serves it.
pub fn cert_manager_v1() -> Value {
    let r = |name: &str, kind: &str, namespaced: bool, short: &[&str]| {
        json!({"name": name, "singularName": name.trim_end_matches('s'), "namespaced": namespaced, "kind": kind,
               "verbs": ["delete","deletecollection","get","list","patch","create","update","watch"],
               "shortNames": short, "categories": ["cert-manager"], "storageVersionHash": "x"})
    };
    let status = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": format!("{name}/status"), "singularName": "", "namespaced": namespaced, "kind": kind,
               "verbs": ["get","patch","update"]})
    };
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "cert-manager.io/v1",
        "resources": [
            r("certificaterequests", "CertificateRequest", true, &["cr", "crs"]),
            status("certificaterequests", "CertificateRequest", true),
            r("certificates", "Certificate", true, &["cert", "certs"]),
            status("certificates", "Certificate", true),
            r("clusterissuers", "ClusterIssuer", false, &["ciss"]),
            status("clusterissuers", "ClusterIssuer", false),
            r("issuers", "Issuer", true, &["iss"]),
            status("issuers", "Issuer", true),
        ]
    })
}

/// `/api/v1`, the kinds certplane uses.
pub fn core_v1() -> Value {
    let r = |name: &str, singular: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
               "verbs": ["create","delete","deletecollection","get","list","patch","update","watch"]})
    };
    json!({
        "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [
            r("configmaps", "configmap", "ConfigMap", true),
            r("namespaces", "namespace", "Namespace", false),
            {"name": "namespaces/status", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["get","patch","update"]},
            r("secrets", "secret", "Secret", true),
            r("serviceaccounts", "serviceaccount", "ServiceAccount", true),
            {"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io",
             "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
        ]
    })
}

/// `/apis/rbac.authorization.k8s.io/v1`.
pub fn rbac_v1() -> Value {
    let r = |name: &str, singular: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
               "verbs": ["create","delete","deletecollection","get","list","patch","update","watch"]})
    };
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "rbac.authorization.k8s.io/v1",
        "resources": [
            r("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false),
            r("clusterroles", "clusterrole", "ClusterRole", false),
            r("rolebindings", "rolebinding", "RoleBinding", true),
            r("roles", "role", "Role", true),
        ]
    })
}

/// What the API server adds to an object it stores.
pub fn as_stored(manifest: &Value, resource_version: &str, manager: &str) -> Value {
    let mut v = manifest.clone();
    let meta = v["metadata"].as_object_mut().expect("metadata");
    meta.insert("uid".into(), json!("6f1c8f0e-0000-4000-8000-000000000001"));
    meta.insert("resourceVersion".into(), json!(resource_version));
    meta.insert("generation".into(), json!(1));
    meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
    meta.insert(
        "managedFields".into(),
        json!([{"manager": manager, "operation": "Apply", "apiVersion": "cert-manager.io/v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]),
    );
    v
}

/// The list of inventories (`LIST configmaps` in `certplane-system` with
/// certplane's label) answering `items`.
pub fn list_inventories(items: Vec<Value>) -> Step {
    Step::get("/api/v1/namespaces/certplane-system/configmaps")
        .query("labelSelector", "app.kubernetes.io%2Fmanaged-by%3Dcertplane")
        .reply(
            200,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
        )
}

/// A live object as a GET returns it, labelled with `owner` (a repository
/// identity) if any.
pub fn live(r: &KubeRef, owner: Option<&str>) -> Value {
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    let mut v = json!({"apiVersion": api_version, "kind": r.kind,
        "metadata": {"name": r.name, "uid": "u", "resourceVersion": "3"}});
    if let Some(ns) = &r.namespace {
        v["metadata"]["namespace"] = json!(ns);
    }
    if let Some(o) = owner {
        v["metadata"]["labels"] = json!({REPOSITORY_LABEL: o});
    }
    v
}
