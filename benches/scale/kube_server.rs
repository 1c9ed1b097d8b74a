//! A scripted loopback Kubernetes API server for `make bench`: discovery
//! for the core group and cert-manager, and an in-memory store answering
//! GET (objects and label-selected lists), server-side apply (`PATCH` with
//! `application/apply-patch+yaml`, stored unless `dryRun=All`), POST, PUT
//! and DELETE. It counts what it serves — requests by kind, TCP connections
//! accepted, most requests in flight at once — and records each request so
//! that the same requests can be replayed raw.
//!
//! Its own endpoints live under `/__bench/`: `stats` (the counters as
//! JSON), `log` (the recorded requests as JSON lines), `reset` (POST:
//! counters and log back to zero; the store is kept).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One request as received (what a raw client replays).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Recorded {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `Content-Type` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body (UTF-8; API requests are JSON).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

/// What the server counted since the last reset.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Stats {
    /// Every API request (the `/__bench/` endpoints not counted).
    pub requests: u64,
    /// Discovery requests (`/api`, `/api/v1`, `/apis`, `/apis/<g>/<v>`).
    pub discovery: u64,
    /// GETs of one object.
    pub gets: u64,
    /// GETs of a collection (lists).
    pub lists: u64,
    /// Server-side applies with `dryRun=All`.
    pub dry_runs: u64,
    /// Every other write (apply, POST, PUT, DELETE).
    pub writes: u64,
    /// TCP connections accepted (the `/__bench/` ones included).
    pub connections: u64,
    /// Most TCP connections accepted since the last reset open at once
    /// when an API request arrived.
    #[serde(default)]
    pub max_open: u64,
    /// Most API requests in flight at once.
    pub max_in_flight: u64,
}

#[derive(Default)]
struct State {
    /// Stored objects by their API path.
    objects: Mutex<BTreeMap<String, Value>>,
    stats: Mutex<Stats>,
    log: Mutex<Vec<Recorded>>,
    in_flight: AtomicU64,
    /// TCP connections accepted since the last reset and open now.
    open: AtomicU64,
    /// Bumped by each reset: a connection counts down `open` when it
    /// closes only if it was accepted since.
    generation: AtomicU64,
    resource_version: AtomicU64,
    /// How long each API request takes.
    delay: Duration,
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener) {
    serve_with(listener, Duration::ZERO).await
}

/// Serves the API on `listener` until the process ends, answering each API
/// request `delay` after it arrived (tests: a server that takes its time,
/// so that the requests a client keeps in flight show in `max_in_flight`).
pub async fn serve_with(listener: TcpListener, delay: Duration) {
    let state = Arc::new(State {
        delay,
        ..State::default()
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Under the lock a reset takes: counted in the generation it opened in.
        let generation = match state.stats.lock() {
            Ok(mut s) => {
                s.connections += 1;
                state.open.fetch_add(1, Ordering::SeqCst);
                state.generation.load(Ordering::SeqCst)
            }
            Err(_) => u64::MAX,
        };
        let state = state.clone();
        tokio::spawn(async move {
            // Closed (by either side) when this ends.
            let closed = Closed(state.clone(), generation);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(closed);
        });
    }
}

/// One open connection, accepted in a generation: counted down when it
/// closes, if no reset came since.
struct Closed(Arc<State>, u64);

impl Drop for Closed {
    fn drop(&mut self) {
        // One lock with the reset: a reset zeroes `open` and bumps the
        // generation together.
        if let Ok(_s) = self.0.stats.lock()
            && self.0.generation.load(Ordering::SeqCst) == self.1
        {
            self.0.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: u16, reason: &str, message: String) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// Serves one request. An API request counts as in flight from its
/// arrival until its reply is ready.
async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path().starts_with("/__bench/") {
        return bench_endpoint(state, req.method(), &req.uri().path()["/__bench/".len()..]);
    }
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(mut s) = state.stats.lock() {
        s.max_in_flight = s.max_in_flight.max(now);
        s.max_open = s.max_open.max(state.open.load(Ordering::SeqCst));
    }
    let response = api_request(state, req).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn api_request(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return status(400, "BadRequest", format!("cannot read the body: {e}")),
    };
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if let Ok(mut log) = state.log.lock() {
        log.push(Recorded {
            method: method.to_string(),
            uri: if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            },
            content_type: content_type.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    api(state, &method, &path, &query, &body)
}

fn bench_endpoint(state: &State, method: &Method, what: &str) -> Response<Full<Bytes>> {
    match (method, what) {
        (&Method::GET, "stats") => {
            let s = state.stats.lock().map(|s| s.clone()).unwrap_or_default();
            reply(StatusCode::OK, &json!(s))
        }
        (&Method::GET, "log") => {
            let log = state.log.lock().map(|l| l.clone()).unwrap_or_default();
            let lines: Vec<String> = log
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .collect();
            let mut r = Response::new(Full::new(Bytes::from(lines.join("\n"))));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-ndjson"),
            );
            r
        }
        (&Method::POST, "reset") => {
            if let (Ok(mut s), Ok(mut l)) = (state.stats.lock(), state.log.lock()) {
                *s = Stats::default();
                l.clear();
                state.generation.fetch_add(1, Ordering::SeqCst);
                state.open.store(0, Ordering::SeqCst);
            }
            reply(StatusCode::OK, &json!({}))
        }
        _ => status(404, "NotFound", format!("no bench endpoint {what}")),
    }
}

/// Where a request path points.
#[derive(Debug, PartialEq)]
enum Target {
    Discovery(Value),
    /// A collection: its path, and the prefix of its objects' paths.
    Collection(String),
    /// One object: its path.
    Object {
        path: String,
    },
}

fn count(state: &State, f: impl FnOnce(&mut Stats)) {
    if let Ok(mut s) = state.stats.lock() {
        s.requests += 1;
        f(&mut s);
    }
}

fn api(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Some(target) = target(path) else {
        count(state, |_| {});
        return status(404, "NotFound", format!("the server could not find {path}"));
    };
    let dry_run = query.split('&').any(|p| p == "dryRun=All");
    match (method, target) {
        (&Method::GET, Target::Discovery(v)) => {
            count(state, |s| s.discovery += 1);
            reply(StatusCode::OK, &v)
        }
        (&Method::GET, Target::Collection(prefix)) => {
            count(state, |s| s.lists += 1);
            let selector = label_selector(query);
            let objects = state.objects.lock().map(|o| o.clone()).unwrap_or_default();
            let items: Vec<&Value> = objects
                .iter()
                .filter(|(p, _)| {
                    p.strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with('/') && !rest[1..].contains('/'))
                })
                .map(|(_, v)| v)
                .filter(|v| {
                    selector
                        .iter()
                        .all(|(k, want)| v["metadata"]["labels"][k].as_str() == Some(want))
                })
                .collect();
            reply(
                StatusCode::OK,
                &json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        (&Method::GET, Target::Object { path }) => {
            count(state, |s| s.gets += 1);
            match state
                .objects
                .lock()
                .ok()
                .and_then(|o| o.get(&path).cloned())
            {
                Some(v) => reply(StatusCode::OK, &v),
                None => not_found(&path),
            }
        }
        (&Method::PATCH, Target::Object { path }) => {
            count(state, |s| {
                if dry_run {
                    s.dry_runs += 1
                } else {
                    s.writes += 1
                }
            });
            let Ok(mut manifest) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the apply body is not JSON".into());
            };
            let manager = query
                .split('&')
                .find_map(|p| p.strip_prefix("fieldManager="))
                .unwrap_or("unknown");
            let mut objects = match state.objects.lock() {
                Ok(o) => o,
                Err(_) => return status(500, "InternalError", "store poisoned".into()),
            };
            let existing = objects.get(&path);
            let created = existing.is_none();
            stamp(state, &mut manifest, existing, manager, dry_run);
            if !dry_run {
                objects.insert(path, manifest.clone());
            }
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            reply(code, &manifest)
        }
        (&Method::PUT, Target::Object { path }) => {
            count(state, |s| s.writes += 1);
            let Ok(mut manifest) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON".into());
            };
            let Ok(mut objects) = state.objects.lock() else {
                return status(500, "InternalError", "store poisoned".into());
            };
            let existing = objects.get(&path);
            stamp(state, &mut manifest, existing, "unknown", dry_run);
            if !dry_run {
                objects.insert(path, manifest.clone());
            }
            reply(StatusCode::OK, &manifest)
        }
        (&Method::POST, Target::Collection(prefix)) => {
            count(state, |s| s.writes += 1);
            let Ok(mut manifest) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON".into());
            };
            let Some(name) = manifest["metadata"]["name"].as_str().map(str::to_string) else {
                return status(422, "Invalid", "metadata.name is required".into());
            };
            let path = format!("{prefix}/{name}");
            let Ok(mut objects) = state.objects.lock() else {
                return status(500, "InternalError", "store poisoned".into());
            };
            if objects.contains_key(&path) {
                return status(409, "AlreadyExists", format!("{path} already exists"));
            }
            stamp(state, &mut manifest, None, "unknown", dry_run);
            if !dry_run {
                objects.insert(path, manifest.clone());
            }
            reply(StatusCode::CREATED, &manifest)
        }
        (&Method::DELETE, Target::Object { path }) => {
            count(state, |s| s.writes += 1);
            match state.objects.lock().ok().and_then(|mut o| o.remove(&path)) {
                Some(_) => reply(
                    StatusCode::OK,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ),
                None => not_found(&path),
            }
        }
        (m, _) => {
            count(state, |_| {});
            status(
                405,
                "MethodNotAllowed",
                format!("{m} is not allowed on {path}"),
            )
        }
    }
}

fn not_found(path: &str) -> Response<Full<Bytes>> {
    let name = path.rsplit('/').next().unwrap_or_default();
    status(404, "NotFound", format!("{name:?} not found"))
}

/// The server-set fields: kept from the stored object when there is one
/// (a dry run never moves the resource version).
fn stamp(
    state: &State,
    manifest: &mut Value,
    existing: Option<&Value>,
    manager: &str,
    dry_run: bool,
) {
    let api_version = manifest["apiVersion"].clone();
    let Some(meta) = manifest.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let old = existing.map(|o| &o["metadata"]);
    let keep = |k: &str| old.and_then(|m| m.get(k)).cloned();
    let next = || state.resource_version.fetch_add(1, Ordering::SeqCst) + 1;
    let rv = match keep("resourceVersion") {
        Some(rv) if dry_run => rv,
        _ => json!(next().to_string()),
    };
    let uid =
        keep("uid").unwrap_or_else(|| json!(format!("00000000-0000-4000-8000-{:012}", next())));
    meta.insert("uid".into(), uid);
    meta.insert("resourceVersion".into(), rv);
    meta.insert(
        "creationTimestamp".into(),
        keep("creationTimestamp").unwrap_or_else(|| json!("2026-01-01T00:00:00Z")),
    );
    meta.insert("generation".into(), keep("generation").unwrap_or(json!(1)));
    meta.insert(
        "managedFields".into(),
        json!([{"manager": manager, "operation": "Apply", "apiVersion": api_version,
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
    );
}

/// `labelSelector=k%3Dv,k2%3Dv2` as pairs (equality selectors only).
fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| p.strip_prefix("labelSelector="))
        .flat_map(|s| {
            let s = s
                .replace("%2F", "/")
                .replace("%2f", "/")
                .replace("%3D", "=")
                .replace("%3d", "=")
                .replace("%2C", ",")
                .replace("%2c", ",");
            s.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim_end_matches('=').to_string(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What a path names: discovery, a collection or one object.
fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest): (String, &[&str]) = match parts.as_slice() {
        ["api"] => {
            return Some(Target::Discovery(
                json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
            ));
        }
        ["apis"] => return Some(Target::Discovery(api_groups())),
        ["api", "v1"] => return Some(Target::Discovery(core_v1())),
        ["apis", "cert-manager.io", "v1"] => return Some(Target::Discovery(cert_manager_v1())),
        ["apis", "cert-manager.io"] => return Some(Target::Discovery(cert_manager_group())),
        ["api", "v1", rest @ ..] => ("/api/v1".to_string(), rest),
        ["apis", g, v, rest @ ..] if *g == "cert-manager.io" || *g == "coordination.k8s.io" => {
            (format!("/apis/{g}/{v}"), rest)
        }
        _ => return None,
    };
    let collection = |c: &[&str]| format!("{group_version}/{}", c.join("/"));
    match rest {
        ["namespaces", ns, plural] => Some(Target::Collection(collection(&[
            "namespaces",
            *ns,
            *plural,
        ]))),
        ["namespaces", _, _, _] | [_, _] => Some(Target::Object {
            path: path.trim_end_matches('/').to_string(),
        }),
        [plural] => Some(Target::Collection(collection(&[*plural]))),
        _ => None,
    }
}

fn resource(name: &str, singular: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]})
}

/// `/api/v1`: the core kinds certplane uses.
pub fn core_v1() -> Value {
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        resource("configmaps", "configmap", "ConfigMap", true),
        resource("namespaces", "namespace", "Namespace", false),
        resource("secrets", "secret", "Secret", true),
        resource("serviceaccounts", "serviceaccount", "ServiceAccount", true),
    ]})
}

/// `/apis/cert-manager.io/v1`.
pub fn cert_manager_v1() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "cert-manager.io/v1", "resources": [
        resource("certificaterequests", "certificaterequest", "CertificateRequest", true),
        resource("certificates", "certificate", "Certificate", true),
        resource("clusterissuers", "clusterissuer", "ClusterIssuer", false),
        resource("issuers", "issuer", "Issuer", true),
    ]})
}

fn cert_manager_group() -> Value {
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": "cert-manager.io",
           "versions": [{"groupVersion": "cert-manager.io/v1", "version": "v1"}],
           "preferredVersion": {"groupVersion": "cert-manager.io/v1", "version": "v1"}})
}

fn api_groups() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [cert_manager_group()]})
}

// Run by the `it` test binary (tests/it/bench_harness.rs includes this
// file); the bench binary itself has no test harness.
#[cfg(test)]
#[allow(unused_imports)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_discovery_collections_and_objects() {
        assert!(matches!(target("/api/v1"), Some(Target::Discovery(_))));
        assert_eq!(
            target("/apis/cert-manager.io/v1/namespaces/bench/certificates"),
            Some(Target::Collection(
                "/apis/cert-manager.io/v1/namespaces/bench/certificates".into()
            ))
        );
        assert_eq!(
            target("/api/v1/namespaces/bench"),
            Some(Target::Object {
                path: "/api/v1/namespaces/bench".into()
            })
        );
        assert_eq!(target("/apis/example.com/v1/widgets"), None);
        assert_eq!(
            label_selector("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcertplane"),
            vec![(
                "app.kubernetes.io/managed-by".to_string(),
                "certplane".to_string()
            )]
        );
    }
}
